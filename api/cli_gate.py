"""``loopwatch gate evaluate|verify``: the release gate from the command line.

Exit codes are the contract a CI pipeline reads: **0** ship, **1** no-ship, **3** insufficient
evidence, **2** a usage error (bad spec, unknown dataset, prediction file missing rows …).
``verify`` exits 0 when the record is intact and 1 when anything was altered. Neither command
opens the database: a gate reads the dataset version's folder directly, so it runs while a
server holds the data directory.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from monitor.errors import LoopwatchError

if TYPE_CHECKING:
    from gates.signing import SigningKeys

gate_app = typer.Typer(help="Release gates: judge a candidate model version against a spec.", no_args_is_help=True)
console = Console(stderr=True, soft_wrap=True)  # paths and reasons stay on one line (grep-able in CI logs)
out = Console(soft_wrap=True)


def _keys_and_root(data_dir: Path | None, config: Path | None) -> tuple[SigningKeys, Path]:
    from pydantic import ValidationError

    from gates.signing import keys_from_settings
    from monitor.settings import load_settings

    try:
        settings = load_settings(config, data_dir=data_dir)
    except (ValidationError, ValueError) as exc:
        console.print(f"[red]configuration error:[/red] {exc}")
        raise typer.Exit(2) from None
    return keys_from_settings(settings), settings.data_dir / "datasets"


def _usage_error(exc: LoopwatchError) -> None:
    console.print(f"[red]error:[/red] {exc.message}")
    for err in exc.errors[:20]:
        console.print(f"  {err.field}: {err.reason}")
    raise typer.Exit(2)


@gate_app.command("evaluate")
def gate_evaluate(
    spec: Annotated[Path, typer.Option(help="The gate specification (YAML).")],
    dataset: Annotated[str, typer.Option(help="Evaluation set as NAME@VERSION (see `loopwatch dataset list`).")],
    candidate: Annotated[Path, typer.Option(help="Candidate predictions: prediction_id, prediction (+ score).")],
    out_dir: Annotated[Path, typer.Option("--out", help="Directory for report.json, report.html, spec.yaml.")],
    champion: Annotated[Path | None, typer.Option(help="Champion predictions, for non_inferiority.")] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default ./loopwatch-data).")
    ] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file.")] = None,
) -> None:
    """Judge CANDIDATE on a dataset version against SPEC: exit 0 ship, 1 no-ship, 3 insufficient evidence."""
    from gates.report import GateInputs, run_gate, write_report

    keys, root = _keys_and_root(data_dir, config)
    try:
        run = run_gate(GateInputs(spec, dataset, candidate, champion, root), datetime.now(UTC))
    except LoopwatchError as exc:
        _usage_error(exc)
        return
    written = write_report(run, out_dir, keys)
    result = run.result
    colour = {"ship": "green", "no_ship": "red"}.get(result.verdict, "yellow")
    out.print(f"[{colour}]{result.verdict.replace('_', ' ')}[/{colour}] — {run.spec.name} on {dataset}")
    counts = run.report["result"]["summary"]
    out.print(f"  {counts['pass']} passed, {counts['fail']} failed, {counts['insufficient']} undecided")
    for check in result.failing:
        out.print(f"  [red]fails[/red] {check.label} on {check.where}: {check.reason}")
    for request in result.requests[:10]:
        where = "all" if request.slice == "all" else f"{request.slice}={request.value}"
        out.print(f"  needs {request.rows} more labelled rows in {where}")
    signed = f", signed ({written.signature.scheme})" if written.signature else ""
    out.print(f"  report: {written.directory / 'report.html'}{signed}")
    raise typer.Exit(written.exit_code)


@gate_app.command("verify")
def gate_verify(
    directory: Annotated[Path, typer.Argument(help="A report directory written by `gate evaluate`.")],
    data_dir: Annotated[Path | None, typer.Option("--data-dir", help="Where the dataset lives now, if moved.")] = None,
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file.")] = None,
) -> None:
    """Recompute the hashes, the verdict and the page of a report; exit 1 if anything was altered."""
    from gates.report import verify_report

    keys, root = _keys_and_root(data_dir, config)
    result = verify_report(directory, keys, root if data_dir else None)
    if result.ok:
        signed = "signature good, " if result.signed else "unsigned, "
        out.print(f"[green]intact[/green]: {signed}verdict {result.verdict} recomputed from the same inputs")
        raise typer.Exit(0)
    console.print(f"[red]altered or unverifiable[/red]: {directory}")
    for problem in result.problems:
        console.print(f"  {problem}")
    raise typer.Exit(1)
