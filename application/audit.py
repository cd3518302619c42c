"""The audit log, read back: who acknowledged, silenced, created a key, built a dataset."""

from __future__ import annotations

import builtins
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.service import Loopwatch


class AuditOps:
    def __init__(self, service: Loopwatch) -> None:
        self._service = service

    def list(
        self,
        *,
        limit: int = 100,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        before_id: int | None = None,
    ) -> builtins.list[dict[str, Any]]:
        """Entries newest first (see :meth:`monitor.audit.AuditLog.list` for the filters)."""
        return self._service.audit.list(
            limit, action, actor=actor, target=target, since=since, until=until, before_id=before_id
        )
