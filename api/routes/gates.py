"""Release gates over the API: ``POST /v1/gates`` judges a candidate, ``GET /v1/gates`` lists runs.

The response of ``POST`` is the contract a deployment system reads: ``verdict`` (``ship``,
``no_ship``, ``insufficient_evidence``), ``exit_code`` (0, 1, 3 — the CLI's), ``failing``
(criterion and slice) and ``sample_requests`` (labelled rows per slice that would decide what is
undecided). A run is created (201) whatever its verdict; input mistakes are 422 naming the field.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import yaml
from fastapi import APIRouter, BackgroundTasks, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, AppDep, ReadKey

router = APIRouter(prefix="/v1/gates", tags=["gates"])


class PredictionRow(BaseModel):
    prediction_id: str = Field(min_length=1, max_length=512)
    prediction: str | float
    score: float | None = None


class GateCreate(BaseModel):
    spec: str | dict[str, Any] = Field(description="the specification: YAML text or the same as a JSON object")
    dataset: str = Field(description="NAME@VERSION of a dataset version")
    candidate: list[PredictionRow] = Field(min_length=1)
    champion: list[PredictionRow] | None = None


def _table(rows: list[PredictionRow]) -> pa.Table:
    """The rows as a prediction file would hold them: numbers stay numbers (regression),
    anything else is a class name."""
    predictions = [r.prediction for r in rows]
    if all(isinstance(p, float | int) for p in predictions):
        prediction = pa.array(predictions, pa.float64())
    else:
        prediction = pa.array([str(p) for p in predictions], pa.string())
    return pa.table(
        {
            "prediction_id": pa.array([r.prediction_id for r in rows], pa.string()),
            "prediction": prediction,
            "score": pa.array([r.score for r in rows], pa.float64()),
        }
    )


def _announce(request: Request, summary: dict[str, Any]) -> None:
    """After the response: the verdict to the alert receivers (Slack or the log), counted in
    ``loopwatch_notifications_total`` like alert deliveries."""
    receiver, outcome = request.app.state.application.gates.announce(summary)
    request.app.state.metrics.notifications.labels(receiver, outcome).inc()


@router.post("", status_code=201)
async def create(
    body: GateCreate, request: Request, app: AppDep, principal: AdminKey, background: BackgroundTasks
) -> dict[str, Any]:
    """Judge the candidate on the dataset version against the spec; the run's summary. The
    verdict is then announced to the alert receivers (Slack, or the log)."""
    spec_text = body.spec if isinstance(body.spec, str) else yaml.safe_dump(body.spec, sort_keys=False)
    candidate = _table(body.candidate)
    champion = _table(body.champion) if body.champion else None
    result = await run_in_threadpool(
        lambda: app.gates.evaluate(principal.id, spec_text, body.dataset, candidate, champion)
    )
    background.add_task(_announce, request, result)
    return result


@router.get("")
def list_runs(
    app: AppDep,
    _: ReadKey,
    model: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    """Gate runs, newest first (optionally of one model)."""
    return app.gates.list(model, limit)


@router.get("/{run_id}")
def show(run_id: str, app: AppDep, _: ReadKey) -> dict[str, Any]:
    """The run's full report.json."""
    return app.gates.report(run_id)


@router.post("/{run_id}/route")
async def route_requests(run_id: str, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Route the run's sample requests to the labeling queue: random unlabelled predictions of
    each undecided slice in the dataset's window (long-tail slices by the long_tail strategy)."""
    return await run_in_threadpool(lambda: app.gates.route_requests(principal.id, run_id))


@router.get("/{run_id}/report.html")
def report_html(run_id: str, app: AppDep, _: ReadKey) -> FileResponse:
    """The run's readable report (self-contained HTML)."""
    return FileResponse(app.gates.html_path(run_id), media_type="text/html")
