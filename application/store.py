"""The sealed store: seal past days now, verify every file, drop a damaged one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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
