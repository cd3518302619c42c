"""Monitors (create, list, delete, run now), backfill, findings and run records."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, AppDep, ReadKey, ServiceDep
from api.params import parse_time_field, parse_window
from monitor.errors import FieldError, InvalidInput

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
    dry_run: bool = Field(default=False, description="Only count the windows that would run; run nothing.")
    include_empty: bool = Field(
        default=False,
        description="Also run windows holding no predictions (skipped by default; volume and freshness "
        "monitors keep theirs once the model has sent data).",
    )
    engine: Literal["embedded", "spark"] | None = Field(
        default=None,
        description="embedded (DuckDB in the server) or spark (the sealed Parquet plus the hot rows read by the "
        "server's Spark session); default: each monitor's own engine. 503 if the server cannot run Spark.",
    )
    spark_master: str | None = Field(
        default=None,
        description="Spark master URL for the Spark engine (default: the server's spark_master setting). Extra "
        "spark.* settings (LOOPWATCH_SPARK_CONF) and the sealed-file mirror Spark reads (LOOPWATCH_SPARK_SEALED_URI) "
        "are the server's own, never taken from a request.",
    )


@router.post("/v1/models/{model}/monitors", status_code=201)
def save_monitors(
    model: str, body: Annotated[Any, Body()], app: AppDep, principal: AdminKey, response: Response
) -> dict[str, Any]:
    """Create or replace monitors: one monitor object or a list (the YAML `monitors:` entries as
    JSON). Every monitor is validated first and every mistake reported at once (422); then all
    are saved together, or none."""
    result = app.monitors.apply(
        principal.id, model, body if isinstance(body, list) else [body], single=not isinstance(body, list)
    )
    if not result["created"]:
        response.status_code = 200
    return result


@router.get("/v1/models/{model}/monitors")
def list_monitors(model: str, app: AppDep, _: ReadKey) -> list[dict[str, Any]]:
    return app.monitors.list(model)


@router.delete("/v1/models/{model}/monitors/{monitor}", status_code=204)
def delete_monitor(model: str, monitor: str, app: AppDep, principal: AdminKey) -> Response:
    app.monitors.delete(principal.id, model, monitor)
    return Response(status_code=204)


@router.post("/v1/models/{model}/monitors/{monitor}/run")
async def run_monitor(
    model: str, monitor: str, app: AppDep, principal: AdminKey, body: RunRequest | None = None
) -> dict[str, Any]:
    """Run a monitor now (optionally for the window ending `at`). A live run's findings go through
    alerting; a past window (ending more than one schedule period before now) is recorded but
    leaves live alert state alone — the response says so (`live`, `alert_state`)."""
    end = parse_time_field("at", body.at) if body and body.at else None
    return await run_in_threadpool(lambda: app.monitors.run(principal.id, model, monitor, end))


@router.post("/v1/models/{model}/backfill")
async def backfill(model: str, body: BackfillRequest, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Replay the scheduled windows ending in `(from, to]` (e.g. after changing a threshold).
    Findings are recorded (mode `backfill`) but never page anyone. Windows without predictions
    are skipped; `dry_run` only returns the plan (windows, runs, skipped) so a caller can show
    what will happen and drive a long backfill in steps."""
    start, end = parse_time_field("from", body.start), parse_time_field("to", body.end)
    if body.spark_master is not None and body.engine != "spark":
        reason = "spark_master applies to the Spark engine: send engine spark with it"
        raise InvalidInput("spark_master without engine spark", [FieldError(field="spark_master", reason=reason)])
    plan = app.monitors.plan_backfill(model, start, end, body.monitors, include_empty=body.include_empty)
    if body.dry_run:
        return plan.to_dict(with_ends=True)
    result = await run_in_threadpool(
        lambda: app.monitors.backfill(principal.id, plan, engine=body.engine, spark_master=body.spark_master)
    )
    return {**result, "plan": plan.to_dict()}


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
