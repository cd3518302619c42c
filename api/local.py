"""How the CLI reaches the data: directly, or through the server that holds the data directory.

DuckDB allows one writing process per file. A running server writes ``server.json`` (its URL)
and a random per-run token (``.cli-token``, mode 0600) into the data directory; CLI commands
that find the store locked use them to go through the server's API. Whoever can read the data
directory already owns the data, so the token grants nothing new.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx
import pyarrow as pa

from api.params import parse_time_field, parse_window
from monitor.errors import LoopwatchError, StoreLocked
from monitor.formats import ARROW_STREAM, table_to_arrow_stream
from monitor.keys import hash_key
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings

if TYPE_CHECKING:
    from application import Application
    from monitor.sealed_push import Destination, Progress, PushReport

RUNTIME_FILE = "server.json"
NO_SERVER_NOTE = (
    "alert state left alone: no loopwatch server holds this data directory, so the alert pipeline "
    "is not running; the run and its findings were recorded (start the server to alert)"
)
TOKEN_FILE = ".cli-token"


def write_runtime(data_dir: Path, url: str) -> str:
    """Record the running server for CLI commands; returns the token's hash for the app."""
    data_dir.mkdir(parents=True, exist_ok=True)
    token = "lwcli_" + secrets.token_urlsafe(32)
    token_path = data_dir / TOKEN_FILE
    fd = os.open(token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token)
    (data_dir / RUNTIME_FILE).write_text(json.dumps({"url": url, "pid": os.getpid()}))
    return hash_key(token)


def remove_runtime(data_dir: Path) -> None:
    for name in (RUNTIME_FILE, TOKEN_FILE):
        with contextlib.suppress(FileNotFoundError):
            (data_dir / name).unlink()


def running_server(data_dir: Path) -> tuple[str, str] | None:
    """(url, token) of a live server holding ``data_dir``, or ``None``."""
    try:
        info = json.loads((data_dir / RUNTIME_FILE).read_text())
        token = (data_dir / TOKEN_FILE).read_text().strip()
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    try:
        ok = httpx.get(f"{info['url']}/healthz", timeout=3).status_code == 200
    except httpx.HTTPError:
        ok = False
    return (info["url"], token) if ok else None


class Backend(Protocol):
    """Every operation the CLI asks for, answered the same way by the store itself
    (:class:`DirectBackend`, through ``application``) and by the server holding it
    (:class:`RemoteBackend`, through the HTTP API, which calls the same ``application``)."""

    def model_schema(self, name: str) -> ModelSchema: ...
    def register_model(self, spec: ModelSchema) -> dict[str, Any]: ...
    def list_models(self) -> list[dict[str, Any]]: ...
    def create_key(self, scope: str, name: str | None) -> dict[str, Any]: ...
    def list_keys(self) -> list[dict[str, Any]]: ...
    def revoke_key(self, key_id: str) -> dict[str, Any]: ...
    def ingest(self, model: str, table: pa.Table, kind: str) -> dict[str, int]: ...
    def stats(self, model: str) -> dict[str, Any]: ...
    def save_monitors(self, model: str, monitors: list[Any]) -> dict[str, Any]: ...
    def list_monitors(self, model: str) -> list[dict[str, Any]]: ...
    def delete_monitor(self, model: str, name: str) -> None: ...
    def apply_sources(self, sources: list[Any]) -> dict[str, Any]: ...
    def list_sources(self) -> list[dict[str, Any]]: ...
    def delete_source(self, name: str) -> None: ...
    def run_monitor(self, model: str, name: str, at: str | None) -> dict[str, Any]: ...
    def plan_backfill(self, request: BackfillRequest) -> dict[str, Any]: ...
    def backfill(self, request: BackfillRequest) -> dict[str, Any]: ...
    def list_alerts(self, filters: AlertFilter) -> list[dict[str, Any]]: ...
    def ack_alerts(self, alert_ids: list[str]) -> dict[str, Any]: ...
    def silence(
        self, matchers: dict[str, str], duration: str | None, ends_at: str | None, comment: str | None
    ) -> dict[str, Any]: ...
    def list_silences(self, active: bool) -> list[dict[str, Any]]: ...
    def expire_silence(self, silence_id: str) -> dict[str, Any]: ...
    def audit(self, filters: AuditFilter) -> list[dict[str, Any]]: ...
    def seal(self) -> dict[str, Any]: ...
    def drop_sealed_file(self, path: str) -> dict[str, Any]: ...
    def build_dataset(self, request: DatasetRequest) -> dict[str, Any]: ...
    def list_datasets(self) -> list[dict[str, Any]]: ...
    def show_dataset(self, name: str, version: int | None) -> dict[str, Any]: ...
    def diff_datasets(self, name: str, a: int, b: int) -> dict[str, Any]: ...


@dataclass(frozen=True)
class BackfillRequest:
    model: str
    start: str
    end: str
    monitors: list[str] | None = None
    include_empty: bool = False
    engine: str | None = None  # embedded, spark, or None: each monitor's own
    spark_master: str | None = None
    spark_conf: tuple[tuple[str, str], ...] = ()  # the CLI on a free data directory only
    spark_sealed_uri: str | None = None  # the CLI on a free data directory only

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "from": self.start,
            "to": self.end,
            "monitors": self.monitors,
            "include_empty": self.include_empty,
        }
        if self.engine is not None:
            body["engine"] = self.engine
        if self.spark_master is not None:
            body["spark_master"] = self.spark_master
        return body


@dataclass(frozen=True)
class AlertFilter:
    state: str | None = None
    model: str | None = None
    severity: str | None = None
    active: bool | None = None
    limit: int = 200

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    target: str | None = None
    start: str | None = None
    end: str | None = None
    limit: int = 100

    def query(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass(frozen=True)
class DatasetRequest:
    model: str
    name: str
    start: str | None = None
    end: str | None = None
    strategy: str | None = None
    entity_key: str | None = None
    include_review: bool = False
    source: str = "routed"

    def body(self) -> dict[str, Any]:
        return dict(self.__dict__)


CLI_ACTOR = "cli"


@dataclass
class DirectBackend:
    """The CLI on a free data directory: the use cases run here, in this process."""

    service: Loopwatch

    @cached_property
    def app(self) -> Application:
        """Built on first use: ``ingest`` and ``stats`` (the bulk path) need no alert pipeline."""
        from application import Application

        return Application.offline(self.service)

    def model_schema(self, name: str) -> ModelSchema:
        return self.service.registry.get(name).schema

    def register_model(self, spec: ModelSchema) -> dict[str, Any]:
        return self.app.models.register(CLI_ACTOR, spec)

    def list_models(self) -> list[dict[str, Any]]:
        return self.app.models.list()

    def create_key(self, scope: str, name: str | None) -> dict[str, Any]:
        return self.app.keys.create(CLI_ACTOR, scope, name)

    def list_keys(self) -> list[dict[str, Any]]:
        return self.app.keys.list()

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self.app.keys.revoke(CLI_ACTOR, key_id)

    def ingest(self, model: str, table: pa.Table, kind: str) -> dict[str, int]:
        if kind == "labels":
            return self.service.store.ingest_labels(model, table).to_dict()
        return self.service.store.ingest_predictions(model, table).to_dict()

    def stats(self, model: str) -> dict[str, Any]:
        return self.service.store.stats(model)

    def save_monitors(self, model: str, monitors: list[Any]) -> dict[str, Any]:
        return self.app.monitors.apply(CLI_ACTOR, model, monitors)

    def list_monitors(self, model: str) -> list[dict[str, Any]]:
        return self.app.monitors.list(model)

    def apply_sources(self, sources: list[Any]) -> dict[str, Any]:
        return self.app.sources.apply(CLI_ACTOR, sources)

    def list_sources(self) -> list[dict[str, Any]]:
        return self.app.sources.list()

    def delete_source(self, name: str) -> None:
        self.app.sources.delete(CLI_ACTOR, name)

    def delete_monitor(self, model: str, name: str) -> None:
        self.app.monitors.delete(CLI_ACTOR, model, name)

    def run_monitor(self, model: str, name: str, at: str | None) -> dict[str, Any]:
        summary = self.app.monitors.run(CLI_ACTOR, model, name, parse_time_field("at", at) if at else None)
        if summary.get("live"):  # say plainly that nothing moved alerts: only a server runs the pipeline
            summary["alert_state"] = NO_SERVER_NOTE
        return summary

    def _plan(self, request: BackfillRequest) -> Any:
        return self.app.monitors.plan_backfill(
            request.model,
            parse_time_field("from", request.start),
            parse_time_field("to", request.end),
            request.monitors,
            include_empty=request.include_empty,
        )

    def plan_backfill(self, request: BackfillRequest) -> dict[str, Any]:
        return self._plan(request).to_dict(with_ends=True)

    def backfill(self, request: BackfillRequest) -> dict[str, Any]:
        plan = self._plan(request)
        summary = self.app.monitors.backfill(
            CLI_ACTOR,
            plan,
            engine=request.engine,  # type: ignore[arg-type]  # checked by MonitorOps.backfill
            spark_master=request.spark_master,
            spark_conf=dict(request.spark_conf),
            spark_sealed_uri=request.spark_sealed_uri,
        )
        return {**summary, "plan": plan.to_dict()}

    def list_alerts(self, filters: AlertFilter) -> list[dict[str, Any]]:
        return self.app.alerts.list(**filters.query())

    def ack_alerts(self, alert_ids: list[str]) -> dict[str, Any]:
        return self.app.alerts.ack_many(CLI_ACTOR, alert_ids).to_dict()

    def silence(
        self, matchers: dict[str, str], duration: str | None, ends_at: str | None, comment: str | None
    ) -> dict[str, Any]:
        return self.app.alerts.silence(CLI_ACTOR, matchers, ends_at=ends_at, duration=duration, comment=comment)

    def list_silences(self, active: bool) -> list[dict[str, Any]]:
        return self.app.alerts.silences(active=active)

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return self.app.alerts.expire_silence(CLI_ACTOR, silence_id)

    def audit(self, filters: AuditFilter) -> list[dict[str, Any]]:
        since, until = parse_window(filters.start, filters.end)
        return self.app.audit.list(
            limit=filters.limit,
            action=filters.action,
            actor=filters.actor,
            target=filters.target,
            since=since,
            until=until,
        )

    def seal(self) -> dict[str, Any]:
        return self.app.store.seal(CLI_ACTOR)

    def drop_sealed_file(self, path: str) -> dict[str, Any]:
        return self.app.store.drop_file(CLI_ACTOR, path)

    def build_dataset(self, request: DatasetRequest) -> dict[str, Any]:
        from typing import cast

        from labeling.curation import BuildRequest, Source

        start, end = parse_window(request.start, request.end)
        return self.app.datasets.build(
            BuildRequest(
                model=request.model,
                name=request.name,
                start=start,
                end=end,
                strategy=request.strategy,
                entity_key=request.entity_key,
                include_review=request.include_review,
                created_by=CLI_ACTOR,
                source=cast(Source, request.source),
            )
        )

    def list_datasets(self) -> list[dict[str, Any]]:
        return self.app.datasets.list()

    def show_dataset(self, name: str, version: int | None) -> dict[str, Any]:
        return self.app.datasets.show(name, version)

    def diff_datasets(self, name: str, a: int, b: int) -> dict[str, Any]:
        return self.app.datasets.diff(name, a, name, b)


@dataclass
class RemoteBackend:
    """The CLI while a server holds the data directory: the same use cases, over its API."""

    url: str
    token: str

    def __post_init__(self) -> None:
        self.client = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {self.token}"}, timeout=httpx.Timeout(300.0)
        )

    def _check(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            try:
                err = response.json()["error"]
            except (ValueError, KeyError):
                raise LoopwatchError(f"server answered {response.status_code}: {response.text[:500]}") from None
            from monitor.errors import FieldError

            raise LoopwatchError(
                err.get("message", "request failed"),
                [FieldError(e.get("field", "?"), e.get("reason", "?"), e.get("row")) for e in err.get("errors", [])],
                response.status_code,
                err.get("code", "error"),
            )
        if response.status_code == 204:
            return None
        return response.json()

    def model_schema(self, name: str) -> ModelSchema:
        detail = self._check(self.client.get(f"/v1/models/{name}"))
        fields = set(ModelSchema.model_fields)
        return ModelSchema.model_validate({k: v for k, v in detail.items() if k in fields})

    def register_model(self, spec: ModelSchema) -> dict[str, Any]:
        return self._check(self.client.post("/v1/models", json=spec.model_dump(exclude_none=True)))

    def list_models(self) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/models"))

    def create_key(self, scope: str, name: str | None) -> dict[str, Any]:
        return self._check(self.client.post("/v1/keys", json={"scope": scope, "name": name}))

    def list_keys(self) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/keys"))

    def revoke_key(self, key_id: str) -> dict[str, Any]:
        return self._check(self.client.delete(f"/v1/keys/{key_id}"))

    def ingest(self, model: str, table: pa.Table, kind: str) -> dict[str, int]:
        path = f"/v1/models/{model}/{'labels' if kind == 'labels' else 'predictions'}"
        body = table_to_arrow_stream(table)
        return self._check(self.client.post(path, content=body, headers={"Content-Type": ARROW_STREAM}))

    def stats(self, model: str) -> dict[str, Any]:
        return self._check(self.client.get(f"/v1/models/{model}/stats"))

    def save_monitors(self, model: str, monitors: list[Any]) -> dict[str, Any]:
        return self._check(self.client.post(f"/v1/models/{model}/monitors", json=monitors))

    def list_monitors(self, model: str) -> list[dict[str, Any]]:
        return self._check(self.client.get(f"/v1/models/{model}/monitors"))

    def apply_sources(self, sources: list[Any]) -> dict[str, Any]:
        return self._check(self.client.post("/v1/sources", json=sources))

    def list_sources(self) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/sources"))

    def delete_source(self, name: str) -> None:
        self._check(self.client.delete(f"/v1/sources/{name}"))

    def delete_monitor(self, model: str, name: str) -> None:
        self._check(self.client.delete(f"/v1/models/{model}/monitors/{name}"))

    def run_monitor(self, model: str, name: str, at: str | None) -> dict[str, Any]:
        return self._check(self.client.post(f"/v1/models/{model}/monitors/{name}/run", json={"at": at}))

    def plan_backfill(self, request: BackfillRequest) -> dict[str, Any]:
        body = {**request.body(), "dry_run": True}
        return self._check(self.client.post(f"/v1/models/{request.model}/backfill", json=body))

    def backfill(self, request: BackfillRequest) -> dict[str, Any]:
        if request.spark_sealed_uri is not None:
            from monitor.errors import FieldError, InvalidInput

            reason = (
                "a running server holds this data directory and reads sealed files where its own "
                "LOOPWATCH_SPARK_SEALED_URI setting says: leave out --spark-sealed-uri"
            )
            raise InvalidInput(
                "a sealed-file mirror is not accepted by a server",
                [FieldError(field="spark_sealed_uri", reason=reason)],
            )
        if request.spark_conf:
            from monitor.errors import FieldError, InvalidInput

            reason = (
                "a running server holds this data directory and runs the backfill with its own Spark settings "
                "(LOOPWATCH_SPARK_CONF on the server; --spark-master is passed on): leave out --spark-conf"
            )
            raise InvalidInput(
                "spark settings not accepted by a server", [FieldError(field="spark_conf", reason=reason)]
            )
        return self._check(self.client.post(f"/v1/models/{request.model}/backfill", json=request.body(), timeout=3600))

    def list_alerts(self, filters: AlertFilter) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/alerts", params=filters.query()))

    def ack_alerts(self, alert_ids: list[str]) -> dict[str, Any]:
        return self._check(self.client.post("/v1/alerts/ack", json={"alert_ids": alert_ids}))

    def silence(
        self, matchers: dict[str, str], duration: str | None, ends_at: str | None, comment: str | None
    ) -> dict[str, Any]:
        body = {"matchers": matchers, "duration": duration, "ends_at": ends_at, "comment": comment}
        return self._check(self.client.post("/v1/silences", json=body))

    def list_silences(self, active: bool) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/silences", params={"active": active}))

    def expire_silence(self, silence_id: str) -> dict[str, Any]:
        return self._check(self.client.delete(f"/v1/silences/{silence_id}"))

    def audit(self, filters: AuditFilter) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/audit", params=filters.query()))

    def seal(self) -> dict[str, Any]:
        return self._check(self.client.post("/v1/store/seal", timeout=3600))

    def drop_sealed_file(self, path: str) -> dict[str, Any]:
        return self._check(self.client.post("/v1/store/drop-file", json={"path": path}))

    def sealed_catalog(self) -> list[dict[str, Any]]:
        files: list[dict[str, Any]] = self._check(self.client.get("/v1/store/sealed-files"))["files"]
        return files

    def build_dataset(self, request: DatasetRequest) -> dict[str, Any]:
        return self._check(self.client.post("/v1/datasets", json=request.body(), timeout=3600))

    def list_datasets(self) -> list[dict[str, Any]]:
        return self._check(self.client.get("/v1/datasets"))

    def show_dataset(self, name: str, version: int | None) -> dict[str, Any]:
        if version is None:
            listed = {d["name"]: d for d in self.list_datasets()}
            if name not in listed:
                from monitor.errors import NotFound

                raise NotFound(f"no dataset named {name!r}")
            version = int(listed[name]["latest"])
        return self._check(self.client.get(f"/v1/datasets/{name}/versions/{version}"))

    def diff_datasets(self, name: str, a: int, b: int) -> dict[str, Any]:
        return self._check(self.client.get(f"/v1/datasets/{name}/diff", params={"a": a, "b": b}))

    def verify_store(self) -> dict[str, Any]:
        return self._check(self.client.get("/v1/store/verify", timeout=3600))

    def close(self) -> None:
        self.client.close()


def verify_store(settings: Settings) -> dict[str, Any]:
    """Check every sealed file (size + sha256) against the catalog, changing nothing.

    With the data directory free, the catalog is read through a read-only DuckDB connection;
    while a server holds it, the server verifies (``GET /v1/store/verify``) and records damage."""
    import time

    import duckdb

    from monitor.integrity import SealedRecord, check_file

    if not settings.db_path.exists():
        raise LoopwatchError(f"no loopwatch database in {settings.data_dir}", status=404, code="not_found")
    try:
        con = duckdb.connect(str(settings.db_path), read_only=True)
    except duckdb.IOException as exc:
        if "lock" not in str(exc).lower():
            raise LoopwatchError(f"cannot open {settings.db_path} read-only: {exc}") from exc
        remote = _server_holding(settings)
        try:
            return remote.verify_store()
        finally:
            remote.close()
    try:
        con.execute("SET TimeZone = 'UTC'").fetchall()
        rows = con.execute(
            "SELECT s.path, m.name, s.date, s.rows, s.min_ts, s.max_ts, s.bytes, s.sha256 FROM sealed_files s "
            "JOIN models m ON m.id = s.model_id ORDER BY s.path"
        ).fetchall()
    finally:
        con.close()
    from monitor.clock import iso_z

    started = time.perf_counter()
    problems = []
    total = 0
    for row in rows:
        record = SealedRecord(*row)
        total += record.bytes
        reason = check_file(settings.sealed_dir / record.path, record.bytes, record.sha256)
        if reason is not None:
            problems.append(
                {
                    "path": record.path,
                    "model": record.model,
                    "date": record.date.isoformat(),
                    "window_start": iso_z(record.min_ts),
                    "window_end": iso_z(record.max_ts),
                    "reason": reason,
                }
            )
    return {
        "files": len(rows),
        "checked": len(rows),
        "bytes": total,
        "seconds": round(time.perf_counter() - started, 3),
        "problems": problems,
    }


def push_sealed(settings: Settings, destination: Destination, progress: Progress | None = None) -> PushReport:
    """Copy every sealed file to ``destination`` (``loopwatch sealed push``). With the data
    directory free the store itself checks each file (recording damage it finds) and the push is
    audited; while a server holds it, the catalog is listed by the server and the files are copied
    from this process — with this process's credentials, which never reach the server."""
    from application.store import record_from_dict
    from monitor import sealed_push

    with open_backend(settings) as backend:
        if isinstance(backend, DirectBackend):
            return backend.app.store.push(CLI_ACTOR, destination, progress)
        assert isinstance(backend, RemoteBackend)
        records = [record_from_dict(item) for item in backend.sealed_catalog()]
        return sealed_push.push_sealed(records, settings.sealed_dir, destination, progress=progress)


def _server_holding(settings: Settings) -> RemoteBackend:
    """The running server that holds a locked data directory, or StoreLocked saying what to do."""
    server = running_server(settings.data_dir)
    if server is None:
        raise StoreLocked(
            f"the data directory {settings.data_dir} is locked by another process and no running "
            "loopwatch server was found for it; stop that process or point --data-dir elsewhere"
        ) from None
    return RemoteBackend(*server)


@contextlib.contextmanager
def open_backend(settings: Settings) -> Iterator[Backend]:
    """The store itself if free, else the running server that holds it."""
    try:
        service = Loopwatch(settings)
    except StoreLocked:
        remote = _server_holding(settings)
        try:
            yield remote
        finally:
            remote.close()
        return
    direct = DirectBackend(service)
    try:
        yield direct
    finally:
        direct.app.monitors.close()  # a Spark session a backfill started
        service.close()
