"""Streaming sources: apply a file of them (all or nothing), list with their status, delete,
and read a source's dead letters. Audited like monitors."""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Protocol

from monitor.errors import FieldError, InvalidInput, NotFound
from monitor.streaming.sources import SourceSpec, parse_source

if TYPE_CHECKING:
    from monitor.service import Loopwatch

OFFLINE = "not running: no loopwatch server holds this data directory"


class Consuming(Protocol):
    """The server's consumers, told when sources change (absent in the offline CLI)."""

    def start(self, spec: SourceSpec) -> None: ...
    def stop(self, name: str, *, forget: bool = False) -> None: ...
    def status(self, spec: SourceSpec) -> dict[str, Any]: ...


class SourceOps:
    def __init__(self, service: Loopwatch, runner: Consuming | None = None) -> None:
        self._service = service
        self._runner = runner

    def attach_runner(self, runner: Consuming | None) -> None:
        self._runner = runner

    def validate(self, items: Any) -> builtins.list[SourceSpec]:
        """Every source checked, every mistake reported at once; nothing is saved by this."""
        if not isinstance(items, list) or not items:
            raise InvalidInput("no sources given", [FieldError(field="sources", reason="expected a non-empty list")])
        specs: builtins.list[SourceSpec] = []
        errors: builtins.list[FieldError] = []
        seen: set[str] = set()
        models = {m.name for m in self._service.registry.list()}
        for i, item in enumerate(items):
            model = item.get("model") if isinstance(item, dict) else None
            if isinstance(model, str) and model not in models:  # checked even when other fields are wrong
                errors.append(FieldError(field=f"sources[{i}].model", reason=f"no model {model!r} is registered"))
            try:
                spec = parse_source(item, i)
            except InvalidInput as exc:
                errors.extend(exc.errors)
                continue
            if spec.name in seen:
                errors.append(FieldError(field=f"sources[{i}].name", reason=f"{spec.name!r} is declared twice"))
            seen.add(spec.name)
            specs.append(spec)
        if errors:
            count = len(errors)
            raise InvalidInput(
                f"sources are not valid, none was saved: {count} error{'s' if count != 1 else ''}", errors
            )
        return specs

    def apply(self, actor: str, items: Any) -> dict[str, Any]:
        """Create or replace the sources: all validated, then saved in one transaction, then (in
        a server) their consumers (re)started."""
        specs = self.validate(items)
        created = self._service.sources.save_all(specs)
        for spec, is_new in zip(specs, created, strict=True):
            self._service.audit.record(actor, "source.saved", spec.name, {"created": is_new, "kind": spec.kind})
            if self._runner is not None:
                self._runner.start(spec)
        return {
            "sources": [self._describe(s) | {"created": c} for s, c in zip(specs, created, strict=True)],
            "created": sum(created),
            "updated": len(created) - sum(created),
        }

    def list(self) -> builtins.list[dict[str, Any]]:
        return [self._describe(spec) for spec in self._service.sources.list()]

    def delete(self, actor: str, name: str) -> None:
        """Forget a source and stop consuming it (its dead letters stay)."""
        self._service.sources.delete(name)
        if self._runner is not None:
            self._runner.stop(name, forget=True)
        self._service.audit.record(actor, "source.deleted", name)

    def dead_letters(self, name: str, limit: int = 100) -> builtins.list[dict[str, Any]]:
        known = {s.name for s in self._service.sources.list()}
        letters = self._service.sources.dead_letters(name, limit)
        if name not in known and not letters:
            raise NotFound(f"no source {name!r}")
        return [d.to_dict() for d in letters]

    def _describe(self, spec: SourceSpec) -> dict[str, Any]:
        status = self._runner.status(spec) if self._runner is not None else {"state": OFFLINE}
        return {**spec.summary(), "status": status}
