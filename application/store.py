"""The sealed store: seal past days now, verify every file, drop a damaged one, push the files
to a mirror that Spark reads (``loopwatch sealed push``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from monitor.clock import iso_z
from monitor.integrity import Problem, SealedRecord
from monitor.sealed_push import Destination, Progress, PushReport, open_destination, push_sealed

MIRROR_ACTOR = "loopwatch-sealed-mirror"  # the audit log's actor for the automatic pushes

if TYPE_CHECKING:
    from monitor.service import Loopwatch


class StoreOps:
    def __init__(self, service: Loopwatch) -> None:
        self._service = service

    def seal(self, actor: str) -> dict[str, Any]:
        """Move past days from DuckDB into sealed Parquet now (the server also does it hourly)."""
        sealed = self._service.store.seal()
        files = [{"model": s.model, "date": s.date.isoformat(), "rows": s.rows, "path": str(s.path)} for s in sealed]
        if files:
            self._service.audit.record(actor, "store.sealed", None, {"files": len(files)})
        return {"sealed": files}

    def verify(self, actor: str) -> dict[str, Any]:
        """Hash every sealed file against its recorded size and sha256 (unthrottled). Damage is
        recorded (readiness turns 503) and files found sound again are cleared."""
        report = self._service.store.verify_sealed()
        self._service.audit.record(actor, "store.verified", None, {"problems": len(report["problems"])})
        return report

    def drop_file(self, actor: str, path: str) -> dict[str, Any]:
        """Remove one sealed file from the catalog (moved to ``quarantine/``); re-ingest its window."""
        dropped = self._service.store.drop_sealed_file(path)
        self._service.audit.record(actor, "store.file_dropped", dropped["path"], dropped)
        return dropped

    def push_to_mirror(self, uri: str) -> PushReport:
        """The server's automatic push to ``LOOPWATCH_SEALED_MIRROR`` (opened afresh each time, so a
        mirror that was unreachable is tried again); :class:`~monitor.errors.InvalidInput` when it
        cannot be reached."""
        return self.push(MIRROR_ACTOR, open_destination(uri), quiet=True)

    def catalog(self) -> list[dict[str, Any]]:
        """Every sealed file's record (path under ``sealed/``, model, date, rows, time span, size,
        sha256): what ``loopwatch sealed push`` copies while a server holds the data directory."""
        return [record_to_dict(r) for r in self._service.store.sealed_records()]

    def push(
        self, actor: str, destination: Destination, progress: Progress | None = None, *, quiet: bool = False
    ) -> PushReport:
        """Copy every sealed file to ``destination`` (:func:`monitor.sealed_push.push_sealed`); each file is checked
        here through the store first, so damage found is recorded as the background pass records
        it. Audited with the counts (the destination carries no credentials); ``quiet`` (the
        server's automatic push) audits only a push that copied or failed something."""
        store = self._service.store
        report = push_sealed(
            store.sealed_records(),
            store.sealed_dir,
            destination,
            check_local=lambda r: _reason(store.check_sealed(r)),
            progress=progress,
        )
        if quiet and not report.pushed and not report.failures:
            return report
        self._service.audit.record(
            actor,
            "store.pushed",
            None,
            {k: v for k, v in report.to_dict().items() if k != "failures"} | {"failed": len(report.failures)},
        )
        return report


def record_to_dict(record: SealedRecord) -> dict[str, Any]:
    return {
        "path": record.path,
        "model": record.model,
        "date": record.date.isoformat(),
        "rows": record.rows,
        "min_timestamp": iso_z(record.min_ts),
        "max_timestamp": iso_z(record.max_ts),
        "bytes": record.bytes,
        "sha256": record.sha256,
    }


def record_from_dict(item: dict[str, Any]) -> SealedRecord:
    from datetime import date, datetime

    return SealedRecord(
        path=str(item["path"]),
        model=str(item["model"]),
        date=date.fromisoformat(item["date"]),
        rows=int(item["rows"]),
        min_ts=datetime.fromisoformat(item["min_timestamp"]),
        max_ts=datetime.fromisoformat(item["max_timestamp"]),
        bytes=int(item["bytes"]),
        sha256=str(item["sha256"]),
    )


def _reason(problem: Problem | None) -> str | None:
    return None if problem is None else problem.reason
