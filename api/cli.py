"""The ``loopwatch`` command line.

Commands that change state work whether or not a server holds the data directory: they open
the store directly when it is free, and otherwise go through the running server's API.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from api.cli_gate import gate_app
from monitor.errors import LoopwatchError

if TYPE_CHECKING:
    from monitor.settings import Settings

# Heavy modules (pyarrow, duckdb, the app) are imported inside the commands that need them, so
# quick commands — `loopwatch drift` above all, which CI runs per check — start fast.

app = typer.Typer(help="loopwatch: ML observability and feedback loop.", no_args_is_help=True, add_completion=False)
keys_app = typer.Typer(help="API keys.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry.", no_args_is_help=True)
monitors_app = typer.Typer(help="Monitors: declare, list, run now.", no_args_is_help=True)
dataset_app = typer.Typer(help="Curated, versioned training sets.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(models_app, name="models")
app.add_typer(monitors_app, name="monitors")
store_app = typer.Typer(
    help="Sealed Parquet files: verify against the catalog, drop a damaged one.", no_args_is_help=True
)
app.add_typer(dataset_app, name="dataset")
app.add_typer(store_app, name="store")
sealed_app = typer.Typer(
    help="Sealed Parquet files: push them to a mirror (s3://bucket/prefix or a directory) that Spark reads.",
    no_args_is_help=True,
)
app.add_typer(sealed_app, name="sealed")
app.add_typer(gate_app, name="gate")
alerts_app = typer.Typer(help="On-call: alerts, acknowledgements, silences.", no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
audit_app = typer.Typer(help="The audit log: who did what, when.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
sources_app = typer.Typer(
    help="Streaming sources (MQTT; Kafka declared only): declare, list, delete.", no_args_is_help=True
)
app.add_typer(sources_app, name="sources")

console = Console(stderr=True)
out = Console()

DataDir = Annotated[Path | None, typer.Option("--data-dir", help="Data directory (default ./loopwatch-data).")]
ConfigFile = Annotated[Path | None, typer.Option("--config", help="YAML config file with setting names as keys.")]


def _settings(data_dir: Path | None = None, config: Path | None = None, **extra: Any) -> Settings:
    from pydantic import ValidationError

    from monitor.settings import load_settings

    try:
        return load_settings(config, data_dir=data_dir, **extra)
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None


def _print_version(value: bool) -> None:
    if value:
        from monitor.version import VERSION

        out.print(f"loopwatch {VERSION}", highlight=False)
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """loopwatch: ML observability and feedback loop."""


def _fail(exc: LoopwatchError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    for err in exc.errors[:20]:
        where = f"row {err.row}: " if err.row is not None else ""
        console.print(f"  {where}{err.field}: {err.reason}")
    raise typer.Exit(1)


@app.command()
def serve(
    data_dir: DataDir = None,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    config: ConfigFile = None,
    json_logs: Annotated[bool, typer.Option("--json-logs/--plain-logs")] = True,
) -> None:
    """Run the API, the store and background jobs in one process."""
    settings = _settings(data_dir, config, host=host, port=port)
    _run_server(settings, json_logs=json_logs)


def _run_server(settings: Settings, *, json_logs: bool = True) -> None:
    import uvicorn

    from api.app import create_app
    from api.local import remove_runtime, write_runtime
    from api.logs import configure_logging
    from monitor.memory import tune_allocator

    tune_allocator()  # before uvicorn's and the scheduler's threads create their arenas
    configure_logging(settings.log_level, json_logs)
    url = settings.public_url or f"http://{settings.host}:{settings.port}"
    token_hash = write_runtime(settings.data_dir, f"http://{_client_host(settings.host)}:{settings.port}")
    try:
        uvicorn.run(
            create_app(settings, cli_token_hash=token_hash, on_shutdown=lambda: remove_runtime(settings.data_dir)),
            host=settings.host,
            port=settings.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        remove_runtime(settings.data_dir)
    logging.getLogger("loopwatch").info("stopped (%s)", url)


def _client_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::", "") else host


@keys_app.command("create")
def keys_create(
    scope: Annotated[str, typer.Option(help="ingest | read | admin")],
    name: Annotated[str | None, typer.Option(help="A label for the key, e.g. the service using it.")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create an API key and print it once (only its hash is stored)."""
    from api.local import open_backend

    settings = _settings(data_dir, config)
    try:
        with open_backend(settings) as backend:
            created = backend.create_key(scope, name)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"created key {created['id']} with scope {created['scope']}; it is shown only once:")
    out.print(created["key"], highlight=False, soft_wrap=True)


@keys_app.command("list")
def keys_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Every key: id, scope, name, created, revoked (never the key itself)."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            keys = backend.list_keys()
    except LoopwatchError as exc:
        _fail(exc)
    for key in keys:
        state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
        typer.echo(f"{key['id']}\t{key['scope']}\t{key['name'] or '-'}\tcreated {key['created_at']}\t{state}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id, as `keys list` shows it.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Revoke a key: it stops working at once. Audited."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            key = backend.revoke_key(key_id)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"key {key['id']} ({key['scope']}, {key['name'] or 'unnamed'}) revoked at {key['revoked_at']}")


@models_app.command("list")
def models_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Registered models: name, task, schema version, features and segments."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            models = backend.list_models()
    except LoopwatchError as exc:
        _fail(exc)
    if not models:
        console.print("no models yet; register one with `loopwatch models register FILE`")
    for m in models:
        typer.echo(
            f"{m['name']}\t{m['task']}\tschema v{m['schema_version']}\t{len(m['features'])} features\t"
            f"segments {','.join(m['segments']) or '-'}"
        )


@models_app.command("register")
def models_register(
    file: Annotated[Path, typer.Argument(help="Model YAML or JSON (name, task, classes, features, segments).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Register a model, or add features/segments to it (a new schema version)."""
    import yaml
    from pydantic import ValidationError

    from api.local import open_backend
    from monitor.schema import ModelSchema

    settings = _settings(data_dir, config)
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        console.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(2) from None
    try:
        spec = ModelSchema.model_validate(raw)
    except ValidationError as exc:
        console.print(f"[red]error:[/red] {file} is not a valid model:")
        for err in exc.errors():
            console.print(f"  {'.'.join(str(p) for p in err['loc']) or '(model)'}: {err['msg']}")
        raise typer.Exit(1) from None
    try:
        with open_backend(settings) as backend:
            result = backend.register_model(spec)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"model {result['name']}: {result['outcome']} (schema version {result['schema_version']})")
    for change in result.get("changes", []):
        console.print(f"  {change}")


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(help="Parquet, CSV or JSONL file.", exists=True, dir_okay=False)],
    model: Annotated[str, typer.Option(help="Registered model name.")],
    labels: Annotated[
        bool,
        typer.Option(
            "--labels",
            help="The file holds labels, not predictions (authority ground_truth unless a row names another).",
        ),
    ] = False,
    batch_rows: Annotated[int, typer.Option(help="Rows per batch (≥122,880 skips DuckDB's WAL copy).")] = 245_760,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Load a file of predictions (or labels) with a progress bar. Safe to re-run: resent rows
    are recognised and not duplicated."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from api.local import open_backend
    from monitor.formats import file_row_count, iter_file_batches

    settings = _settings(data_dir, config)
    kind = "labels" if labels else "predictions"
    totals = {"received": 0, "accepted": 0, "duplicates": 0, "applied": 0, "unchanged": 0}
    changed_ids: list[str] = []
    total_rows = file_row_count(file)
    try:
        with (
            open_backend(settings) as backend,
            Progress(
                TextColumn(f"[bold]{kind}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
            ) as progress,
        ):
            task = progress.add_task("ingest", total=total_rows)
            offset = 0
            strings = backend.model_schema(model).string_columns()
            for batch in iter_file_batches(file, batch_rows, strings):
                try:
                    result = backend.ingest(model, batch, kind)
                except LoopwatchError as exc:
                    for err in exc.errors:  # rows are numbered within the file, not the batch
                        if err.row is not None:
                            err.row += offset
                    if offset:
                        exc.message = (
                            f"{exc.message} (in the batch starting at file row {offset}; rows before it were stored)"
                        )
                    raise
                for key, value in result.items():
                    if isinstance(value, int):
                        totals[key] = totals.get(key, 0) + value
                    elif key == "changed_ids" and len(changed_ids) < 20:
                        changed_ids.extend(value[: 20 - len(changed_ids)])
                offset += batch.num_rows
                progress.update(task, advance=batch.num_rows)
    except LoopwatchError as exc:
        _fail(exc)
    if labels:
        console.print(
            f"{totals['received']} labels read, {totals['applied']} applied, {totals['unchanged']} unchanged"
            + (
                f", {totals['conflicts']} in conflict with a label of higher authority (kept, flagged for review)"
                if totals.get("conflicts")
                else ""
            )
        )
    else:
        console.print(
            f"{totals['received']} rows read, {totals['accepted']} stored, {totals['duplicates']} already present"
        )
        if totals.get("changed"):
            console.print(
                f"{totals['changed']} of those already present differ from the stored rows, which were kept "
                f"(a prediction is its id; send a correction under a new id), e.g. {', '.join(changed_ids[:5])}"
            )


@monitors_app.command("apply")
def monitors_apply(
    file: Annotated[Path, typer.Argument(help="YAML with `model:` and `monitors:` (see README).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create or replace the monitors declared in a YAML file. The whole file is checked first and
    every mistake listed at once; then all monitors are saved together, or none."""
    import yaml

    from api.local import open_backend

    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        console.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("model"), str) or not isinstance(raw.get("monitors"), list):
        console.print(f"[red]error:[/red] {file} must have `model: NAME` and a `monitors:` list")
        raise typer.Exit(2)
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            result = backend.save_monitors(raw["model"], raw["monitors"])
    except LoopwatchError as exc:
        _fail(exc)
    for item in result["monitors"]:
        schedule = (item.get("every") and f"every {item['every']}") or f"cron {item.get('cron')}"
        verb = "created" if item.get("created") else "updated"
        console.print(
            f"monitor {raw['model']}/{item['name']} {verb}: {item['detector']}, {schedule}, window {item['window']}"
        )


@monitors_app.command("delete")
def monitors_delete(
    name: Annotated[str, typer.Argument(help="Monitor name.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Delete a monitor (its past runs and findings stay); a server stops scheduling it. Audited."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            backend.delete_monitor(model, name)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"monitor {model}/{name} deleted")


@monitors_app.command("list")
def monitors_list(
    model: Annotated[str, typer.Option(help="Model name.")], data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """The monitors of a model."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            items = backend.list_monitors(model)
    except LoopwatchError as exc:
        _fail(exc)
    for item in items:
        schedule = (item.get("every") and f"every {item['every']}") or f"cron {item.get('cron')}"
        typer.echo(f"{item['name']}\t{item['detector']}\t{schedule}\twindow {item['window']}\t{item['severity']}")


@sources_app.command("apply")
def sources_apply(
    file: Annotated[Path, typer.Argument(help="YAML with a `sources:` list (see README).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Create or replace the streaming sources declared in a YAML file. The whole file is checked
    first and every mistake listed at once; then all are saved together, or none. A running server
    starts consuming them at once."""
    import yaml

    from api.local import open_backend

    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        console.print(f"[red]error:[/red] cannot read {file}: {exc}")
        raise typer.Exit(2) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("sources"), list):
        console.print(f"[red]error:[/red] {file} must have a `sources:` list")
        raise typer.Exit(2)
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            result = backend.apply_sources(raw["sources"])
    except LoopwatchError as exc:
        _fail(exc)
    for item in result["sources"]:
        verb = "created" if item.get("created") else "updated"
        console.print(f"source {item['name']} {verb}: {item['kind']} {item['topic']} → {item['model']}")


@sources_app.command("list")
def sources_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """The declared sources and their consumers' state (name, kind, topic, model, state)."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            items = backend.list_sources()
    except LoopwatchError as exc:
        _fail(exc)
    for item in items:
        typer.echo(f"{item['name']}\t{item['kind']}\t{item['topic']}\t{item['model']}\t{item['status']['state']}")


@sources_app.command("delete")
def sources_delete(
    name: Annotated[str, typer.Argument(help="Source name.")], data_dir: DataDir = None, config: ConfigFile = None
) -> None:
    """Stop consuming a source and forget it (its dead letters stay). Audited."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            backend.delete_source(name)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"source {name} deleted")


@monitors_app.command("run")
def monitors_run(
    model: Annotated[str, typer.Option(help="Model name.")],
    monitor: Annotated[list[str] | None, typer.Option(help="Monitor(s) to run (default: all).")] = None,
    at: Annotated[str | None, typer.Option(help="Window end, ISO-8601 (default: now).")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Run monitors once now (their findings go through alerting like a scheduled run). With --at
    a past window (ending more than one schedule period before now) the run and its findings are
    recorded but live alert state is left alone."""
    import json as jsonlib

    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            names = monitor or [m["name"] for m in backend.list_monitors(model)]
            if not names:
                console.print(f"model {model} has no monitors; add some with `loopwatch monitors apply`")
                raise typer.Exit(1)
            failed = False
            for name in names:
                result = backend.run_monitor(model, name, at)
                bad = [f for f in result.get("findings", []) if f["status"] in ("critical", "no_data")]
                failed |= result["status"] == "failed"
                line = f"{name}: {result['status']}, {len(result.get('findings', []))} findings, {len(bad)} bad"
                console.print(line + (f" — {result['error']}" if result.get("error") else ""))
                if result.get("alert_state", "evaluated") != "evaluated":
                    console.print(f"  note: {result['alert_state']}")
                for finding in bad[:10]:
                    where = finding.get("column") or finding["metric"]
                    seg = f" [{jsonlib.dumps(finding['segment'])}]" if finding.get("segment") else ""
                    console.print(f"  {finding['status']}: {where} {finding['metric']} = {finding['value']}{seg}")
    except LoopwatchError as exc:
        _fail(exc)
    if failed:
        raise typer.Exit(1)


@app.command()
def backfill(
    model: Annotated[str, typer.Option(help="Model name.")],
    start: Annotated[str, typer.Option("--from", help="Range start, ISO-8601.")],
    end: Annotated[str, typer.Option("--to", help="Range end, ISO-8601.")],
    monitor: Annotated[list[str] | None, typer.Option(help="Monitor(s) to replay (default: all).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count the windows that would run; run nothing.")] = False,
    include_empty: Annotated[
        bool, typer.Option("--include-empty", help="Also run windows holding no predictions (skipped by default).")
    ] = False,
    engine: Annotated[
        str | None,
        typer.Option(
            help="embedded (DuckDB) or spark (PySpark over the sealed Parquet plus the hot rows); "
            "default: each monitor's own engine."
        ),
    ] = None,
    spark_master: Annotated[
        str | None,
        typer.Option("--spark-master", help="Spark master URL for --engine spark (default: the spark_master setting)."),
    ] = None,
    spark_conf: Annotated[
        list[str] | None,
        typer.Option("--spark-conf", help="KEY=VALUE Spark setting for --engine spark (repeatable)."),
    ] = None,
    spark_sealed_uri: Annotated[
        str | None,
        typer.Option(
            "--spark-sealed-uri",
            help="For --engine spark: read the sealed files from this mirror (same layout as DATA_DIR/sealed, "
            "kept by `loopwatch sealed push`), e.g. s3a://bucket/prefix (the objects `sealed push "
            "s3://bucket/prefix` wrote) or file:///abs/path; default: the spark_sealed_uri setting, else the "
            "local files. Not accepted when a server holds the data directory (its setting applies).",
        ),
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Replay monitors over history (e.g. after changing a threshold). Findings are recorded but
    nobody is paged. Counts the windows first, skips those without predictions, shows progress.
    ``--engine spark`` reads the sealed Parquet with Spark and runs the same detectors (docs/spark.md)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from api.local import BackfillRequest, open_backend

    if engine not in (None, "embedded", "spark"):
        console.print(f"[red]error:[/red] --engine must be embedded or spark, not {engine!r}")
        raise typer.Exit(2)
    if (spark_master is not None or spark_conf or spark_sealed_uri is not None) and engine != "spark":
        console.print("[red]error:[/red] --spark-master, --spark-conf and --spark-sealed-uri need --engine spark")
        raise typer.Exit(2)
    if spark_sealed_uri is not None:
        from monitor.settings import normalize_sealed_uri

        try:
            spark_sealed_uri = normalize_sealed_uri(spark_sealed_uri)
        except ValueError as exc:
            console.print(f"[red]error:[/red] --spark-sealed-uri: {exc}")
            raise typer.Exit(2) from None
    settings_given = []
    for item in spark_conf or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            console.print(f"[red]error:[/red] --spark-conf takes KEY=VALUE, not {item!r}")
            raise typer.Exit(2)
        settings_given.append((key.strip(), value))
    request = BackfillRequest(
        model, start, end, monitor, include_empty, engine, spark_master, tuple(settings_given), spark_sealed_uri
    )
    totals = {"runs": 0, "failed": 0, "findings": 0, "bad_findings": 0}
    errors: list[str] = []
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            plan = backend.plan_backfill(request)
            console.print(
                f"{plan['runs']} runs planned: {plan['windows']} windows of {len(plan['monitors'])} monitors "
                f"in ({plan['from']}, {plan['to']}]"
            )
            for item in plan["monitors"]:
                console.print(f"  {item['monitor']} ({item['detector']}): {item['runs']} of {item['windows']} windows")
            for warning in plan["warnings"]:
                console.print(f"[yellow]note:[/yellow] {warning}")
            if dry_run or not plan["runs"]:
                raise typer.Exit(0)
            with Progress(
                TextColumn("[bold]backfill"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=console,
            ) as progress:
                task = progress.add_task("backfill", total=plan["runs"])
                for step in _backfill_steps(request, plan):
                    result = backend.backfill(step)
                    for key in totals:
                        totals[key] += int(result.get(key, 0))
                    errors.extend(e for e in result.get("errors", []) if e not in errors)
                    progress.update(task, advance=int(result.get("runs", 0)))
    except LoopwatchError as exc:
        _fail(exc)
    console.print(
        f"{totals['runs']} runs ({totals['failed']} failed), {totals['findings']} findings, "
        f"{totals['bad_findings']} critical/no-data; {plan['skipped_empty']} empty windows skipped"
        + (
            f"; engine {engine}" + (f" at {spark_master}" if spark_master else "")
            if engine not in (None, "embedded")
            else ""
        )
    )
    for error in errors[:10]:
        console.print(f"  error: {error}")


def _backfill_steps(request: Any, plan: dict[str, Any]) -> list[Any]:
    """The plan cut into requests of a few runs each — one monitor, the sub-range ending on its
    n-th planned window — so progress shows whether the store is local or behind a server.
    Whoever runs a step re-plans its sub-range and skips the same empty windows."""
    from dataclasses import replace

    from application.monitors import BACKFILL_STEP_RUNS

    steps = []
    for item in plan["monitors"]:
        ends: list[str] = item.get("ends", [])
        previous = request.start
        for i in range(0, len(ends), BACKFILL_STEP_RUNS):
            last = ends[min(i + BACKFILL_STEP_RUNS, len(ends)) - 1]
            steps.append(replace(request, start=previous, end=last, monitors=[item["monitor"]]))
            previous = last
    return steps


@dataset_app.command("build")
def dataset_build(
    model: Annotated[str, typer.Option(help="Model name.")],
    name: Annotated[str, typer.Option(help="Dataset name.")],
    start: Annotated[str | None, typer.Option("--from", help="Predictions from (ISO-8601).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Predictions before (ISO-8601).")] = None,
    strategy: Annotated[str | None, typer.Option(help="Only samples routed by this strategy.")] = None,
    entity_key: Annotated[str | None, typer.Option(help="Segment/feature naming the entity for splits.")] = None,
    include_review: Annotated[bool, typer.Option(help="Include samples whose annotators disagreed.")] = False,
    source: Annotated[
        str,
        typer.Option(
            help="routed: annotated routed samples; labelled: every prediction in --from/--to with a current "
            "label (any authority); all: both, one row per prediction. labelled and all need --from and --to."
        ),
    ] = "routed",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Build the next immutable version of a training set from annotated samples, or (--source
    labelled|all) from every labelled prediction of a window."""
    from api.local import DatasetRequest, open_backend
    from labeling.curation import SOURCES

    if source not in SOURCES:
        console.print(f"[red]error:[/red] --source must be one of {', '.join(SOURCES)} (got {source!r})")
        raise typer.Exit(2)
    request = DatasetRequest(model, name, start, end, strategy, entity_key, include_review, source)
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            manifest = backend.build_dataset(request)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"{name} v{manifest['version']}: {manifest['rows']} rows, splits {manifest['split_counts']}")
    console.print(f"  content hash {manifest['content_hash']}")


@dataset_app.command("list")
def dataset_list(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Datasets and their versions."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            items = backend.list_datasets()
    except LoopwatchError as exc:
        _fail(exc)
    for item in items:
        typer.echo(
            f"{item['name']}\tv{item['latest']}\t{item['rows']} rows\tmodel {item['model']}\tversions {item['versions']}"
        )


def _dataset_ref(value: str, *, version_required: bool) -> tuple[str, int | None]:
    name, _, version = value.partition("@")
    if not name or (version_required and not version) or (version and not version.isdigit()):
        console.print(f"[red]error:[/red] {value!r}: use NAME@VERSION" + ("" if version_required else " or NAME"))
        raise typer.Exit(2)
    return name, int(version) if version else None


@dataset_app.command("show")
def dataset_show(
    name: Annotated[str, typer.Argument(help="NAME or NAME@VERSION.")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Print a version's manifest (JSON)."""
    import json as jsonlib

    from api.local import open_backend

    ds, version = _dataset_ref(name, version_required=False)
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            manifest = backend.show_dataset(ds, version)
    except LoopwatchError as exc:
        _fail(exc)
    typer.echo(jsonlib.dumps(manifest, indent=2))


@dataset_app.command("diff")
def dataset_diff(
    a: Annotated[str, typer.Argument(help="NAME@VERSION")],
    b: Annotated[str, typer.Argument(help="NAME@VERSION (or just VERSION: the same dataset)")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Rows added/removed, labels changed, class and split counts between two versions."""
    import json as jsonlib

    from api.local import open_backend

    name, va = _dataset_ref(a, version_required=True)
    nb, vb = _dataset_ref(b if "@" in b else f"{name}@{b}", version_required=True)
    if nb != name:
        console.print(f"[red]error:[/red] both versions must be of one dataset ({name} vs {nb})")
        raise typer.Exit(2)
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            diff = backend.diff_datasets(name, va or 0, vb or 0)
    except LoopwatchError as exc:
        _fail(exc)
    typer.echo(jsonlib.dumps(diff, indent=2))


@app.command()
def drift(
    reference: Annotated[Path, typer.Argument(help="Reference Parquet or CSV file.")],
    current: Annotated[Path, typer.Argument(help="Current Parquet or CSV file.")],
    columns: Annotated[str | None, typer.Option(help="Comma-separated columns (default: all supported).")] = None,
    method: Annotated[str | None, typer.Option(help="Force a method: wasserstein, ks, psi, jensenshannon, ...")] = None,
    threshold: Annotated[float | None, typer.Option(help="Override the method's threshold.")] = None,
    format: Annotated[str, typer.Option("--format", help="json | table")] = "table",
    compat: Annotated[
        str | None, typer.Option(help="'evidently': Evidently 0.7's methods, thresholds and verdicts, exactly.")
    ] = None,
) -> None:
    """Column drift between two files, no server needed. Default: the calibrated rule (a column
    drifted when its effect is over the floor and a two-sample test rejects after BH; id-like
    columns skipped); --compat evidently reproduces Evidently 0.7's verdicts.
    Exit status: 0 no dataset drift, 1 dataset drift, 2 bad input."""
    from detectors.__main__ import main as drift_main

    if format not in ("json", "table"):
        console.print("[red]error:[/red] --format must be json or table")
        raise typer.Exit(2)
    argv = [str(reference), str(current), "--format", format]
    if columns:
        argv += ["--columns", columns]
    if method:
        argv += ["--method", method]
    if threshold is not None:
        argv += ["--threshold", str(threshold)]
    if compat is not None:
        if compat != "evidently":
            console.print("[red]error:[/red] --compat must be evidently")
            raise typer.Exit(2)
        argv += ["--compat", compat]
    raise typer.Exit(drift_main(argv))


@app.command()
def report(
    output: Annotated[Path, typer.Option("--output", "-o", help="HTML file to write.")],
    reference: Annotated[Path | None, typer.Argument(help="Reference Parquet/CSV (file mode).")] = None,
    current: Annotated[Path | None, typer.Argument(help="Current Parquet/CSV (file mode).")] = None,
    model: Annotated[str | None, typer.Option(help="Model name (store mode).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="Current window start (store mode).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Current window end (store mode).")] = None,
    reference_start: Annotated[str | None, typer.Option("--reference-from", help="Reference window start.")] = None,
    reference_end: Annotated[str | None, typer.Option("--reference-to", help="Reference window end.")] = None,
    max_rows: Annotated[int, typer.Option(help="Sample each side down to this many rows.")] = 100_000,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Evidently's HTML data-drift report: for two files, or for a model's window vs a reference
    window from the store (through the running server if one holds the data directory)."""
    from dashboards.evidently_report import ReportContext, build_report

    if reference is not None and current is not None:
        from detectors.table_drift import read_table

        try:
            ref_table, cur_table = read_table(str(reference)), read_table(str(current))
            document = build_report(
                ref_table,
                cur_table,
                ReportContext("loopwatch drift report", str(current), str(reference)),
                max_rows=max_rows,
            )
        except (OSError, ValueError) as exc:
            console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from None
    elif model and start and end and reference_start and reference_end:
        document = _store_report(
            _settings(data_dir, config), model, start, end, reference_start, reference_end, max_rows
        )
    else:
        console.print(
            "[red]error:[/red] give REFERENCE CURRENT files, or --model with --from/--to and "
            "--reference-from/--reference-to"
        )
        raise typer.Exit(2)
    output.write_text(document, encoding="utf-8")
    console.print(f"wrote {output} ({len(document) / 1e6:.1f} MB)")


def _store_report(
    settings: Settings, model: str, start: str, end: str, reference_start: str, reference_end: str, max_rows: int
) -> str:
    import httpx

    from api.local import RemoteBackend, running_server
    from monitor.errors import StoreLocked

    params: dict[str, str | int] = {
        "start": start,
        "end": end,
        "reference_start": reference_start,
        "reference_end": reference_end,
        "max_rows": max_rows,
    }
    from monitor.clock import parse_time
    from monitor.service import Loopwatch

    try:
        windows = ((parse_time(start), parse_time(end)), (parse_time(reference_start), parse_time(reference_end)))
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    try:
        service = Loopwatch(settings)
    except StoreLocked:
        server = running_server(settings.data_dir)
        if server is None:
            console.print(f"[red]error:[/red] {settings.data_dir} is locked and no running server was found")
            raise typer.Exit(1) from None
        remote = RemoteBackend(*server)
        try:
            response = remote.client.get(f"/v1/models/{model}/report", params=params, timeout=httpx.Timeout(600.0))
        finally:
            remote.close()
    else:
        from dashboards.evidently_report import window_report

        try:
            return window_report(service, model, windows[0], windows[1], max_rows=max_rows)
        except LoopwatchError as exc:
            _fail(exc)
        finally:
            service.close()
    if response.status_code != 200:
        try:
            err = response.json()["error"]
            detail = "; ".join(f"{e['field']}: {e['reason']}" for e in err.get("errors", []))
            console.print(f"[red]error:[/red] {err['message']}{' — ' + detail if detail else ''}")
        except (ValueError, KeyError):
            console.print(f"[red]error:[/red] server answered {response.status_code}")
        raise typer.Exit(1)
    return response.text


@app.command()
def seal(data_dir: DataDir = None, config: ConfigFile = None) -> None:
    """Move past days from DuckDB into sealed Parquet now (the server also does this hourly)."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            sealed = backend.seal()["sealed"]
    except LoopwatchError as exc:
        _fail(exc)
    for item in sealed:
        console.print(f"sealed {item['rows']} rows of {item['model']} for {item['date']} → {item['path']}")
    if not sealed:
        console.print("nothing to seal: no past day is left in DuckDB")


@store_app.command("verify")
def store_verify(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Check every sealed file's size and sha256 against the catalog; exit 1 on damage, 0 when clean.

    Changes nothing when no server holds the data directory (read-only catalog); otherwise the
    server verifies and records the result (its /readyz follows)."""
    import json

    from api.local import verify_store

    settings = _settings(data_dir, config)
    try:
        report = verify_store(settings)
    except LoopwatchError as exc:
        console.print(f"[red]error:[/red] {exc.message}")
        raise typer.Exit(2) from None
    problems = report["problems"]
    if fmt == "json":
        out.print_json(json.dumps(report))
    else:
        gb = report["bytes"] / 1e9
        console.print(
            f"checked {report['checked']} of {report['files']} sealed files ({gb:.3f} GB) in {report['seconds']} s"
        )
        if problems:
            # One block per file, never truncated: the path is what `store drop-file` takes.
            out.print(f"{len(problems)} damaged sealed file(s):", highlight=False)
            for p in problems:
                out.print(
                    f"DAMAGED  {p['path']}\n         model {p['model']}, date {p['date']}, rows "
                    f"{p['window_start']} – {p['window_end']}\n         {p['reason']}",
                    highlight=False,
                    soft_wrap=True,
                )
            console.print(
                "repair: restore the file from backup, or `loopwatch store drop-file PATH` and re-ingest its window"
            )
        else:
            out.print("all sealed files match the catalog")
    raise typer.Exit(1 if problems else 0)


@store_app.command("drop-file")
def store_drop_file(
    path: Annotated[
        str, typer.Argument(help="The sealed file as `store verify` lists it (model=…/date=…/part-….parquet).")
    ],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Remove a (damaged) sealed file from the catalog; it moves to quarantine/. Audited.

    Its rows leave the store: re-ingest that window from the source to restore them."""
    from api.local import open_backend

    settings = _settings(data_dir, config)
    try:
        with open_backend(settings) as backend:
            dropped = backend.drop_sealed_file(path)
    except LoopwatchError as exc:
        _fail(exc)
    out.print(
        f"dropped {dropped['path']}: {dropped['rows']} rows of {dropped['model']} "
        f"{dropped['window_start']} – {dropped['window_end']} left the store"
        + (f" (file moved to {dropped['moved_to']})" if dropped["moved_to"] else "")
        + "; re-ingest that window to restore them",
        highlight=False,
        soft_wrap=True,
    )


@sealed_app.command("push")
def sealed_push(
    dest: Annotated[
        str,
        typer.Argument(
            help="s3://bucket/prefix (Spark reads the same objects as s3a://bucket/prefix), a local directory "
            "or file:///abs/path."
        ),
    ],
    endpoint_url: Annotated[
        str | None,
        typer.Option(
            "--endpoint-url",
            help="S3 endpoint (MinIO, another S3-compatible server); default AWS_ENDPOINT_URL_S3 / "
            "AWS_ENDPOINT_URL, else AWS's. Credentials come from the environment only (AWS_ACCESS_KEY_ID …).",
        ),
    ] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
) -> None:
    """Copy every sealed file to DEST keeping its path under sealed/ (model=…/date=…/part-….parquet), so
    `--spark-sealed-uri` / LOOPWATCH_SPARK_SEALED_URI can point Spark at it (docs/spark.md).

    Files already there with the catalog's size are skipped; a file damaged here (size or sha256 unlike
    the catalog's) is not pushed and is named; each copy's size is checked after writing (and its sha256
    in a local directory). Exit 0 when every file is mirrored, 1 when any is not, 2 when DEST is unusable."""
    import json

    from api.local import push_sealed
    from monitor.sealed_push import open_destination

    settings = _settings(data_dir, config)
    try:
        destination = open_destination(dest, endpoint_url)
    except LoopwatchError as exc:
        reasons = "; ".join(e.reason for e in exc.errors)
        console.print(f"[red]error:[/red] {exc.message}: {reasons}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None

    def progress(path: str, outcome: str) -> None:
        if fmt != "json" and outcome == "pushed":
            console.print(f"pushed {path}", highlight=False, soft_wrap=True)

    try:
        report = push_sealed(settings, destination, progress)
    except LoopwatchError as exc:
        _fail(exc)
    if fmt == "json":
        out.print_json(json.dumps(report.to_dict()))
    else:
        for failure in report.failures:
            out.print(f"FAILED  {failure.path}\n        {failure.reason}", highlight=False, soft_wrap=True)
        console.print(
            f"{report.files} sealed files → {report.destination}: {report.pushed} pushed ({report.bytes} bytes), "
            f"{report.skipped} already there, {len(report.failures)} failed",
            highlight=False,
            soft_wrap=True,
        )
    raise typer.Exit(1 if report.failures else 0)


@alerts_app.command("list")
def alerts_list(
    state: Annotated[str | None, typer.Option(help="pending | firing | resolved")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    severity: Annotated[str | None, typer.Option(help="info | warning | critical")] = None,
    all_states: Annotated[bool, typer.Option("--all", help="Include resolved alerts (default: active only).")] = False,
    limit: Annotated[int, typer.Option(help="At most this many.")] = 50,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Alerts across models, most recently changed first (active ones unless --all or --state)."""
    import json as jsonlib

    from api.local import AlertFilter, open_backend

    active = None if (all_states or state) else True
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            alerts = backend.list_alerts(AlertFilter(state, model, severity, active, limit))
    except LoopwatchError as exc:
        _fail(exc)
    if fmt == "json":
        typer.echo(jsonlib.dumps(alerts, indent=2, default=str))
        return
    if not alerts:
        console.print("no alerts" + ("" if all_states or state else " active (use --all for resolved ones)"))
    for alert in alerts:
        flags = [f"acked by {alert['acked_by']}"] if alert.get("acked_by") else []
        if alert.get("silenced_by"):
            flags.append(f"silenced by {alert['silenced_by']}")
        where = alert.get("column") or ""
        typer.echo(
            f"{alert['id']}\t{alert['state']}\t{alert['severity']}\t{alert['model']}/{alert['monitor']}"
            f"{' ' + where if where else ''}\tsince {alert.get('started_at') or alert.get('created_at')}"
            + (f"\t{'; '.join(flags)}" if flags else "")
        )


@alerts_app.command("ack")
def alerts_ack(
    alert_ids: Annotated[list[str], typer.Argument(help="One or more alert ids (see `alerts list`).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Acknowledge alerts: repeats stop, each still resolves when its condition clears. Audited."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            result = backend.ack_alerts(alert_ids)
    except LoopwatchError as exc:
        _fail(exc)
    for alert_id in result["acknowledged"]:
        console.print(f"acknowledged {alert_id}")
    for alert_id in result["already"]:
        console.print(f"{alert_id} was already acknowledged")
    for alert_id, reason in result["refused"].items():
        console.print(f"[red]not acknowledged[/red] {alert_id}: {reason}")
    if result["refused"]:
        raise typer.Exit(1)


@alerts_app.command("silence")
def alerts_silence(
    matcher: Annotated[
        list[str], typer.Argument(help="label=value, e.g. model=harsh-braking monitor=drift segment.region=eu")
    ],
    duration: Annotated[str | None, typer.Option("--for", help="How long, e.g. 2h, 1d.")] = None,
    until: Annotated[str | None, typer.Option(help="Until this time (ISO-8601), instead of --for.")] = None,
    comment: Annotated[str | None, typer.Option(help="Why (shown with the silence).")] = None,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Mute alerts whose labels match every LABEL=VALUE, for --for or --until. Audited."""
    from api.local import open_backend

    matchers: dict[str, str] = {}
    for item in matcher:
        label, sep, value = item.partition("=")
        if not sep or not label:
            console.print(f"[red]error:[/red] {item!r} must look like label=value (e.g. model=harsh-braking)")
            raise typer.Exit(2)
        matchers[label] = value
    if duration is None and until is None:
        console.print("[red]error:[/red] give --for (e.g. 2h) or --until")
        raise typer.Exit(2)
    try:
        with open_backend(_settings(data_dir, config)) as backend:
            silence = backend.silence(matchers, duration, until, comment)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"silence {silence['id']} until {silence['ends_at']}: {silence['matchers']}")


@alerts_app.command("silences")
def alerts_silences(
    all_silences: Annotated[bool, typer.Option("--all", help="Include expired silences.")] = False,
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Silences (active ones unless --all)."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            silences = backend.list_silences(not all_silences)
    except LoopwatchError as exc:
        _fail(exc)
    if not silences:
        console.print("no silences" + ("" if all_silences else " active"))
    for si in silences:
        state = f"expired {si['expired_at']}" if si.get("expired_at") else f"until {si['ends_at']}"
        typer.echo(f"{si['id']}\t{state}\t{si['matchers']}\tby {si['created_by']}\t{si.get('comment') or ''}")


@alerts_app.command("expire")
def alerts_expire(
    silence_id: Annotated[str, typer.Argument(help="The silence's id (see `alerts silences`).")],
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """End a silence now. Audited."""
    from api.local import open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            silence = backend.expire_silence(silence_id)
    except LoopwatchError as exc:
        _fail(exc)
    console.print(f"silence {silence['id']} expired at {silence['expired_at']}")


@audit_app.command("list")
def audit_list(
    action: Annotated[str | None, typer.Option(help="Exact action, or a family ending in '.' (alert.).")] = None,
    actor: Annotated[str | None, typer.Option(help="Key id, cli, local-cli, slack:<user>…")] = None,
    target: Annotated[str | None, typer.Option(help="Exact target, or a prefix ending in '/' (MODEL/).")] = None,
    start: Annotated[str | None, typer.Option("--from", help="From (ISO-8601).")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Before (ISO-8601).")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    fmt: Annotated[str, typer.Option("--format", help="table | json")] = "table",
    data_dir: DataDir = None,
    config: ConfigFile = None,
) -> None:
    """Who did what, when: acknowledgements, silences, keys, monitors, datasets, gates."""
    import json as jsonlib

    from api.local import AuditFilter, open_backend

    try:
        with open_backend(_settings(data_dir, config)) as backend:
            entries = backend.audit(AuditFilter(action, actor, target, start, end, limit))
    except LoopwatchError as exc:
        _fail(exc)
    if fmt == "json":
        typer.echo(jsonlib.dumps(entries, indent=2))
        return
    for entry in entries:
        details = jsonlib.dumps(entry["details"]) if entry["details"] else ""
        typer.echo(f"{entry['at']}\t{entry['actor']}\t{entry['action']}\t{entry['target'] or '-'}\t{details}")


@app.command()
def demo(
    data_dir: DataDir = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8080).")] = None,
    serve_after: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after loading.")] = True,
    label_studio: Annotated[
        bool,
        typer.Option(
            "--label-studio/--no-label-studio", help="Start Label Studio (own environment) for the annotators."
        ),
    ] = True,
) -> None:
    """The whole loop on demo data: two models, two weeks of traffic with delayed labels and three
    incidents, monitors backfilled and run (alerts), samples routed to Label Studio; then serve."""
    import os
    import secrets as secrets_lib

    from api.demo import load_demo, run_demo_gates, run_demo_monitors
    from gates.runs import GateRunStore
    from gates.signing import keys_from_settings
    from labeling.curation import DatasetStore
    from monitor.clock import utcnow
    from monitor.service import Loopwatch

    settings = _settings(data_dir, None, port=port)
    # Links in alerts (dashboards) and Label Studio's webhooks need the service's own address.
    os.environ.setdefault("LOOPWATCH_PUBLIC_URL", f"http://{_client_host(settings.host)}:{settings.port}")
    settings = _settings(data_dir, None, port=port)
    ls = _start_label_studio(settings.data_dir) if label_studio else None
    if ls is not None:
        os.environ.setdefault("LOOPWATCH_LABEL_STUDIO_URL", ls["url"])
        os.environ.setdefault("LOOPWATCH_LABEL_STUDIO_TOKEN", ls["token"])
        os.environ.setdefault("LOOPWATCH_LABEL_STUDIO_WEBHOOK_SECRET", secrets_lib.token_hex(16))
        settings = _settings(data_dir, None, port=port)
    try:
        service = Loopwatch(settings)
    except LoopwatchError as exc:
        _fail(exc)
    try:
        now = utcnow()
        console.print(f"loading demo data into {settings.data_dir} …")
        loaded = load_demo(service, now)
        for model, counts in loaded.items():
            console.print(f"  {model}: {counts['predictions']} new predictions, {counts['labels']} new labels")
        console.print("declaring monitors, backfilling two weeks, running them now …")
        summary = run_demo_monitors(service, now)
        console.print(f"  {summary['alerts_fired']} alerts fired; labeling queue {summary['samples_queued']}")
        if summary["canary"]:
            console.print(f"  canary comparison of fleet-events {summary['canary']}")
        verdicts = run_demo_gates(
            service,
            now,
            DatasetStore(service),
            GateRunStore(settings.data_dir / "gates", settings.data_dir / "datasets", keys_from_settings(settings)),
        )
        shown = ", ".join(
            f"{name.removeprefix('candidate-')} {verdict.replace('_', ' ')}" for name, (_, verdict) in verdicts.items()
        )
        console.print(f"  release gate apnea-release on the FN incident's labelled epochs: {shown} (see /gates)")
        if ls is not None:
            from api.app import make_label_sync

            sync = make_label_sync(service, settings)
            if sync is not None:
                pushed = sync.push()
                console.print(
                    f"  pushed {pushed['pushed']} samples to Label Studio"
                    + (f" (error: {pushed['error']})" if pushed["error"] else "")
                )
        key, plaintext = service.keys.create("admin", "demo")
        service.audit.record("cli", "key.created", key.id, {"scope": "admin", "name": "demo"})
    finally:
        service.close()
    base = f"http://{_client_host(settings.host)}:{settings.port}"
    console.print("")
    console.print(f"[bold]loopwatch demo[/bold] at {base}")
    console.print(f"  dashboards: {base}/models   (sign in at {base}/login with the key below)   API: {base}/docs")
    console.print(f"  admin API key (shown once): [bold]{plaintext}[/bold]")
    console.print(
        f"  alerts:    curl -H 'Authorization: Bearer {plaintext}' '{base}/v1/alerts?active=true'", soft_wrap=True
    )
    if ls is not None:
        console.print(f"  Label Studio: {ls['url']}  (user {ls.get('username')}, password {ls.get('password')})")
    if settings.slack_token is None:
        console.print("  Slack: not configured (set SLACK_BOT_TOKEN and LOOPWATCH_SLACK_CHANNEL); alerts are logged")
    if serve_after:
        try:
            _run_server(settings, json_logs=False)
        finally:
            if ls is not None:
                _stop_label_studio(settings.data_dir)


def _label_studio_launcher() -> list[str]:
    import sys

    launcher = Path(__file__).resolve().parent.parent / "deploy" / "label-studio" / "launch.py"
    return [sys.executable, str(launcher)]


def _start_label_studio(data_dir: Path) -> dict[str, Any] | None:
    """Install (once) and start Label Studio on loopback for the demo; None (with the reason) if it can't."""
    import json as jsonlib
    import subprocess

    console.print("starting Label Studio (its own environment; the first time takes about a minute) …")
    try:
        for args, timeout in (
            (["install"], 1200),
            (
                [
                    "start",
                    "--data-dir",
                    str(data_dir / "label-studio"),
                    "--template",
                    str(data_dir / "label-studio-template"),
                ],
                300,
            ),
        ):
            done = subprocess.run(
                _label_studio_launcher() + args, capture_output=True, text=True, timeout=timeout, check=False
            )
            result = jsonlib.loads(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else {}
            if done.returncode != 0 or "error" in result:
                raise RuntimeError(result.get("error") or done.stderr[-500:])
        return result
    except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        console.print(f"  [yellow]Label Studio not started:[/yellow] {exc}; continuing without it")
        return None


def _stop_label_studio(data_dir: Path) -> None:
    import subprocess

    subprocess.run(
        [*_label_studio_launcher(), "stop", "--data-dir", str(data_dir / "label-studio")],
        capture_output=True,
        timeout=60,
        check=False,
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()


__all__ = ["app", "main"]
