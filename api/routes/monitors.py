"""Monitors (create, list, delete, run now), backfill, findings and run records."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, ReadKey, ServiceDep
from api.params import parse_window
from monitor.clock import parse_time
from monitor.errors import FieldError, InvalidInput
from monitor.monitors import MonitorSpec, monitor_summary, parse_monitor
from monitor.scheduling import backfill_summary, outcome_summary

router = APIRouter(tags=["monitors"])


class RunRequest(BaseModel):
    at: str | None = Field(
        default=None,
        description="Window end (ISO-8601); default now. A past window is recorded but never touches live alerts.",
    )


class BackfillRequest(BaseModel):
    start: str = Field(alias="from")
    end: str = Field(alias="to")
    monitors: list[str] | None = None


@router.post("/v1/models/{model}/monitors", status_code=201)
def save_monitors(
    model: str,
    body: Annotated[Any, Body()],
    request: Request,
    service: ServiceDep,
    principal: AdminKey,
    response: Response,
) -> dict[str, Any]:
    """Create or replace monitors: one monitor object or a list (the YAML `monitors:` entries as JSON)."""
    items = body if isinstance(body, list) else [body]
    if not items:
        raise InvalidInput("no monitors given")
    specs: list[MonitorSpec] = [
        parse_monitor(item, i if isinstance(body, list) else None) for i, item in enumerate(items)
    ]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise InvalidInput("monitor names must be unique", [FieldError(field="name", reason=str(names))])
    created = []
    for spec in specs:
        _, is_new = service.monitors.save(model, spec)
        created.append(is_new)
        scheduler = getattr(request.app.state, "scheduler", None)
        if scheduler is not None:
            scheduler.schedule(model, spec)
        service.audit.record(principal.id, "monitor.saved", f"{model}/{spec.name}", {"created": is_new})
    if not any(created):
        response.status_code = 200
    return {"monitors": [monitor_summary(model, s) for s in specs]}


@router.get("/v1/models/{model}/monitors")
def list_monitors(model: str, service: ServiceDep, _: ReadKey) -> list[dict[str, Any]]:
    return [
        {
            **monitor_summary(m, s),
            "next_run_at": (n.isoformat() if (n := service.monitors.next_run(m, s.name)) else None),
        }
        for m, s in service.monitors.list(model)
    ]


@router.delete("/v1/models/{model}/monitors/{monitor}", status_code=204)
def delete_monitor(model: str, monitor: str, request: Request, service: ServiceDep, principal: AdminKey) -> Response:
    service.monitors.delete(model, monitor)
    scheduler = getattr(request.app.state, "scheduler", None)
    if scheduler is not None:
        scheduler.unschedule(model, monitor)
    service.audit.record(principal.id, "monitor.deleted", f"{model}/{monitor}")
    return Response(status_code=204)


@router.post("/v1/models/{model}/monitors/{monitor}/run")
async def run_monitor(
    model: str, monitor: str, service: ServiceDep, principal: AdminKey, body: RunRequest | None = None
) -> dict[str, Any]:
    """Run a monitor now (optionally for the window ending `at`). A live run's findings go through
    alerting; a past window (ending more than one schedule period before now) is recorded but
    leaves live alert state alone — the response says so (`live`, `alert_state`)."""
    end = _time("at", body.at) if body and body.at else None
    service.monitors.get(model, monitor)
    outcome = await run_in_threadpool(lambda: service.runner.run(model, monitor, window_end=end, mode="manual"))
    service.audit.record(principal.id, "monitor.run", f"{model}/{monitor}", {"at": body.at if body else None})
    return outcome_summary(outcome)


@router.post("/v1/models/{model}/backfill")
async def backfill(model: str, body: BackfillRequest, service: ServiceDep, principal: AdminKey) -> dict[str, Any]:
    """Replay every scheduled window in a range (e.g. after changing a threshold). Findings are
    recorded (mode `backfill`) but never page anyone."""
    start, end = _time("from", body.start), _time("to", body.end)
    if end <= start:
        raise InvalidInput("empty range", [FieldError(field="to", reason="must be after from")])
    outcomes = await run_in_threadpool(lambda: service.runner.backfill(model, start, end, body.monitors))
    service.audit.record(principal.id, "monitor.backfill", model, {"from": body.start, "to": body.end})
    return backfill_summary(outcomes)


@router.get("/v1/models/{model}/findings")
def findings(
    model: str,
    service: ServiceDep,
    _: ReadKey,
    monitor: str | None = None,
    status: str | None = None,
    start: str | None = None,
    end: str | None = None,
    include_backfill: bool = True,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[dict[str, Any]]:
    lo, hi = parse_window(start, end)
    return service.runs.findings(
        model, monitor=monitor, status=status, start=lo, end=hi, include_backfill=include_backfill, limit=limit
    )


@router.get("/v1/models/{model}/monitors/{monitor}/decision")
def canary_decision(model: str, monitor: str, service: ServiceDep, _: ReadKey) -> dict[str, Any]:
    """The latest window's promote / hold / roll back of a ``version_comparison`` monitor — the
    contract a deployment system reads (docs/detectors.md, "Canary comparison"). ``decision`` is
    null until a window held both versions."""
    spec = service.monitors.get(model, monitor)
    if spec.detector != "version_comparison":
        raise InvalidInput(
            "not a canary monitor",
            [FieldError(field="monitor", reason=f"{monitor} is a {spec.detector} monitor, not version_comparison")],
        )
    latest = service.runs.findings(model, monitor=monitor, metric="decision", limit=1)
    if not latest:
        return {"model": model, "monitor": monitor, "decision": None, "status": None, "reasons": ["no run yet"]}
    finding = latest[0]
    details = finding["details"]
    return {
        "model": model,
        "monitor": monitor,
        "decision": details.get("decision"),
        "status": finding["status"],
        "candidate": details.get("candidate"),
        "baseline": details.get("baseline"),
        "reasons": details.get("reasons", []),
        "checks": details.get("checks", {}),
        "rows_by_version": details.get("rows_by_version", {}),
        "window_start": finding["window_start"],
        "window_end": finding["window_end"],
        "run_id": finding["run_id"],
    }


@router.get("/v1/models/{model}/runs")
def runs(
    model: str,
    service: ServiceDep,
    _: ReadKey,
    monitor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> list[dict[str, Any]]:
    return service.runs.runs(model, monitor, limit)


@router.get("/v1/runs/{run_id}")
def get_run(run_id: str, service: ServiceDep, _: ReadKey) -> dict[str, Any]:
    """A run record: window, config hash, data fingerprint, code version, duration, findings."""
    return service.runs.get(run_id)


def _time(field: str, value: str) -> Any:
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput("time is not valid", [FieldError(field=field, reason=str(exc))]) from None
