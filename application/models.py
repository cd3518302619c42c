"""Register (or evolve) a model's schema; list and show models."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from monitor.schema import ModelSchema
    from monitor.service import Loopwatch


class ModelOps:
    def __init__(self, service: Loopwatch) -> None:
        self._service = service

    def register(self, actor: str, spec: ModelSchema) -> dict[str, Any]:
        """Register a model, or add features/segments (a new schema version); a kind or task
        change is refused (409). ``outcome`` is created, updated or unchanged."""
        result = self._service.registry.register(spec)
        if result.outcome != "unchanged":
            self._service.audit.record(actor, f"model.{result.outcome}", spec.name, {"changes": result.changes})
        return {**result.model.to_dict(), "outcome": result.outcome, "changes": result.changes}

    def list(self) -> builtins.list[dict[str, Any]]:
        return [m.to_dict() for m in self._service.registry.list()]

    def get(self, name: str) -> dict[str, Any]:
        """The schema, its history and the model versions seen."""
        registry = self._service.registry
        return {
            **registry.get(name).to_dict(),
            "versions": registry.versions(name),
            "schema_history": registry.schema_history(name),
        }
