"""The feedback loop's API: route samples to annotators and see the queue."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import AdminKey, AppDep, ReadKey, ServiceDep
from api.errors import ApiError
from api.params import parse_window
from labeling.label_studio.webhook import parse_webhook, secret_matches
from labeling.queue import RouteRequest
from monitor.errors import FieldError, InvalidInput
from monitor.formats import parse_json

router = APIRouter(prefix="/v1/labeling", tags=["labeling"])
log = logging.getLogger("loopwatch.labeling")


class RouteCreate(BaseModel):
    model: str
    strategy: str = Field(description="uncertainty | errors | drift_region | long_tail | random")
    budget: int = Field(default=50, ge=1, le=10_000)
    finding_id: str | None = None
    alert_id: str | None = None
    start: str | None = None
    end: str | None = None
    column: str | None = Field(default=None, description="drift_region: the drifted feature")
    random_share: float = Field(default=0.1, ge=0, le=1)
    show_model_output: bool | None = Field(
        default=None,
        description="errors: show the model's answer to annotators (pre-selected) instead of labelling blind; "
        "default: the setting LOOPWATCH_LABELING_ERRORS_SHOW_MODEL_OUTPUT (false)",
    )


@router.post("/route")
async def route(body: RouteCreate, app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Select samples by strategy (within the per-model daily budget) and queue them for annotators."""
    start, end = parse_window(body.start, body.end)
    request = RouteRequest(
        model=body.model,
        strategy=body.strategy,
        budget=body.budget,
        start=start,
        end=end,
        finding_id=body.finding_id,
        alert_id=body.alert_id,
        column=body.column,
        random_share=body.random_share,
        show_model_output=body.show_model_output,
        requested_by=principal.id,
    )
    return await run_in_threadpool(lambda: app.labeling.route(principal.id, request))


@router.get("/queue")
def queue(
    app: AppDep,
    _: ReadKey,
    model: str | None = None,
    status: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
) -> dict[str, Any]:
    q = app.labeling.queue
    return {"depth": q.depth(), "samples": q.list(model, status, limit)}


WEBHOOK_HEADER = "x-loopwatch-webhook-secret"


@router.post("/webhook", include_in_schema=False)
async def webhook(request: Request, service: ServiceDep, background: BackgroundTasks) -> dict[str, Any]:
    """Label Studio's ANNOTATION_CREATED/UPDATED/DELETED. Label Studio does not sign webhooks, so a
    shared secret header authenticates them; we answer at once (it waits only ~1 s) and apply the
    annotations afterwards. Duplicates are harmless: applying is idempotent."""
    secret = service.settings.label_studio_webhook_secret
    if secret is None or not secret.get_secret_value():
        raise ApiError(
            503, "not_configured", "Label Studio webhooks are not configured (LOOPWATCH_LABEL_STUDIO_WEBHOOK_SECRET)"
        )
    if not secret_matches(request.headers.get(WEBHOOK_HEADER), secret.get_secret_value()):
        raise ApiError(401, "unauthorized", f"missing or wrong {WEBHOOK_HEADER} header")
    try:
        payload = parse_json(await request.body())
        event = parse_webhook(payload)
    except ValueError as exc:
        raise InvalidInput("webhook payload is not valid", [FieldError(field="payload", reason=str(exc))]) from None
    if not event.annotations and not event.deleted_annotation_ids:
        return {"accepted": 0}
    background.add_task(request.app.state.application.labeling.apply_webhook, event)
    return {"accepted": len(event.annotations) + len(event.deleted_annotation_ids)}


@router.post("/sync")
async def sync_now(app: AppDep, principal: AdminKey) -> dict[str, Any]:
    """Push queued samples to Label Studio and pull every annotation now (the server also does
    this every LOOPWATCH_LABELING_SYNC_INTERVAL_SECONDS)."""
    return await run_in_threadpool(lambda: app.labeling.sync_now(principal.id))
