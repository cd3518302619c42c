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
from pathlib import Path
from typing import Any, Protocol

import httpx
import pyarrow as pa

from monitor.errors import LoopwatchError, StoreLocked
from monitor.formats import ARROW_STREAM, table_to_arrow_stream
from monitor.keys import hash_key
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings

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
    def model_schema(self, name: str) -> ModelSchema: ...
    def register_model(self, spec: ModelSchema) -> dict[str, Any]: ...
    def create_key(self, scope: str, name: str | None) -> dict[str, Any]: ...
    def ingest(self, model: str, table: pa.Table, kind: str) -> dict[str, int]: ...
    def stats(self, model: str) -> dict[str, Any]: ...
    def save_monitors(self, model: str, monitors: list[Any]) -> dict[str, Any]: ...
    def list_monitors(self, model: str) -> list[dict[str, Any]]: ...
    def run_monitor(self, model: str, name: str, at: str | None) -> dict[str, Any]: ...
    def backfill(self, model: str, start: str, end: str, monitors: list[str] | None) -> dict[str, Any]: ...
    def drop_sealed_file(self, path: str) -> dict[str, Any]: ...


@dataclass
class DirectBackend:
    service: Loopwatch

    def model_schema(self, name: str) -> ModelSchema:
        return self.service.registry.get(name).schema

    def register_model(self, spec: ModelSchema) -> dict[str, Any]:
        result = self.service.registry.register(spec)
        if result.outcome != "unchanged":
            self.service.audit.record("cli", f"model.{result.outcome}", spec.name, {"changes": result.changes})
        return {**result.model.to_dict(), "outcome": result.outcome, "changes": result.changes}

    def create_key(self, scope: str, name: str | None) -> dict[str, Any]:
        key, plaintext = self.service.keys.create(scope, name)
        self.service.audit.record("cli", "key.created", key.id, {"scope": scope, "name": name})
        return {"id": key.id, "scope": key.scope, "name": key.name, "key": plaintext}

    def ingest(self, model: str, table: pa.Table, kind: str) -> dict[str, int]:
        if kind == "labels":
            return self.service.store.ingest_labels(model, table).to_dict()
        return self.service.store.ingest_predictions(model, table).to_dict()

    def stats(self, model: str) -> dict[str, Any]:
        return self.service.store.stats(model)

    def save_monitors(self, model: str, monitors: list[Any]) -> dict[str, Any]:
        from monitor.monitors import monitor_summary, parse_monitor

        specs = [parse_monitor(item, i) for i, item in enumerate(monitors)]
        saved = []
        for spec in specs:
            _, created = self.service.monitors.save(model, spec)
            self.service.audit.record("cli", "monitor.saved", f"{model}/{spec.name}", {"created": created})
            saved.append(monitor_summary(model, spec))
        return {"monitors": saved}

    def list_monitors(self, model: str) -> list[dict[str, Any]]:
        from monitor.monitors import monitor_summary

        return [monitor_summary(m, s) for m, s in self.service.monitors.list(model)]

    def run_monitor(self, model: str, name: str, at: str | None) -> dict[str, Any]:
        from monitor.clock import parse_time
        from monitor.scheduling import outcome_summary

        outcome = self.service.runner.run(model, name, window_end=parse_time(at) if at else None, mode="manual")
        self.service.audit.record("cli", "monitor.run", f"{model}/{name}", {"at": at})
        summary = outcome_summary(outcome)
        if summary.get("live"):  # say plainly that nothing moved alerts: only a server runs the pipeline
            summary["alert_state"] = NO_SERVER_NOTE
        return summary

    def backfill(self, model: str, start: str, end: str, monitors: list[str] | None) -> dict[str, Any]:
        from monitor.clock import parse_time
        from monitor.scheduling import backfill_summary

        outcomes = self.service.runner.backfill(model, parse_time(start), parse_time(end), monitors)
        self.service.audit.record("cli", "monitor.backfill", model, {"from": start, "to": end})
        return backfill_summary(outcomes)

    def drop_sealed_file(self, path: str) -> dict[str, Any]:
        dropped = self.service.store.drop_sealed_file(path)
        self.service.audit.record("cli", "store.file_dropped", dropped["path"], dropped)
        return dropped


@dataclass
class RemoteBackend:
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
        return response.json()

    def model_schema(self, name: str) -> ModelSchema:
        detail = self._check(self.client.get(f"/v1/models/{name}"))
        fields = set(ModelSchema.model_fields)
        return ModelSchema.model_validate({k: v for k, v in detail.items() if k in fields})

    def register_model(self, spec: ModelSchema) -> dict[str, Any]:
        return self._check(self.client.post("/v1/models", json=spec.model_dump(exclude_none=True)))

    def create_key(self, scope: str, name: str | None) -> dict[str, Any]:
        return self._check(self.client.post("/v1/keys", json={"scope": scope, "name": name}))

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

    def run_monitor(self, model: str, name: str, at: str | None) -> dict[str, Any]:
        return self._check(self.client.post(f"/v1/models/{model}/monitors/{name}/run", json={"at": at}))

    def backfill(self, model: str, start: str, end: str, monitors: list[str] | None) -> dict[str, Any]:
        body = {"from": start, "to": end, "monitors": monitors}
        return self._check(self.client.post(f"/v1/models/{model}/backfill", json=body, timeout=3600))

    def drop_sealed_file(self, path: str) -> dict[str, Any]:
        return self._check(self.client.post("/v1/store/drop-file", json={"path": path}))

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
    try:
        yield DirectBackend(service)
    finally:
        service.close()
