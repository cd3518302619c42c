"""On-call: alerts (list, show, acknowledge), silences, and the Slack buttons endpoint."""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import AppDep, ReadKey, ServiceDep
from api.errors import ApiError
from monitor.alerting.notify.slack.signature import (
    InvalidSlackSignature,
    SlackAction,
    parse_action,
    verify_slack_request,
)
from monitor.errors import FieldError, InvalidInput

router = APIRouter(tags=["alerts"])


class SilenceCreate(BaseModel):
    matchers: dict[str, str] = Field(description="e.g. {'model': 'harsh-braking', 'segment.firmware': '3.2'}")
    ends_at: str | None = None
    duration: str | None = Field(default=None, description="e.g. 1h, 24h (instead of ends_at)")
    comment: str | None = Field(default=None, max_length=1000)


class BulkAck(BaseModel):
    alert_ids: list[str] = Field(min_length=1, max_length=1000)


@router.get("/v1/alerts")
def list_alerts(
    app: AppDep,
    _: ReadKey,
    state: str | None = None,
    model: str | None = None,
    severity: str | None = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[dict[str, Any]]:
    """Alerts across models, most recently changed first (each with `silenced_by`)."""
    return app.alerts.list(state=state, model=model, severity=severity, active=active, limit=limit)


@router.post("/v1/alerts/ack")
def ack_alerts(body: BulkAck, app: AppDep, principal: ReadKey) -> dict[str, Any]:
    """Acknowledge several alerts at once: `acknowledged`, `already` (acknowledged before) and
    `refused` (id → reason: unknown, resolved); one bad id does not stop the others."""
    return app.alerts.ack_many(principal.id, body.alert_ids).to_dict()


@router.get("/v1/alerts/{alert_id}")
def get_alert(alert_id: str, app: AppDep, _: ReadKey) -> dict[str, Any]:
    """The alert, its timeline (fired, notified, acked, silenced, resolved) and its deliveries:
    the groups it belongs to, where each group's message is and the last delivery error."""
    return app.alerts.get(alert_id)


@router.post("/v1/alerts/{alert_id}/ack")
def ack_alert(alert_id: str, app: AppDep, principal: ReadKey) -> dict[str, Any]:
    """Acknowledge: repeats stop, the alert still resolves. Who and when go to the audit log."""
    return app.alerts.ack(principal.id, alert_id)


@router.post("/v1/silences", status_code=201)
def create_silence(body: SilenceCreate, app: AppDep, principal: ReadKey) -> dict[str, Any]:
    return app.alerts.silence(
        principal.id, body.matchers, ends_at=body.ends_at, duration=body.duration, comment=body.comment
    )


@router.get("/v1/silences")
def list_silences(app: AppDep, _: ReadKey, active: bool = False) -> list[dict[str, Any]]:
    return app.alerts.silences(active=active)


@router.delete("/v1/silences/{silence_id}")
def expire_silence(silence_id: str, app: AppDep, principal: ReadKey) -> dict[str, Any]:
    return app.alerts.expire_silence(principal.id, silence_id)


@router.post("/slack/actions", include_in_schema=False)
async def slack_actions(request: Request, service: ServiceDep, background: BackgroundTasks) -> Response:
    """Slack's interactive buttons. Only requests signed with the signing secret within 5 minutes
    are accepted; the answer comes at once and the work happens afterwards (Slack waits 3 s)."""
    secret = service.settings.slack_signing_secret
    if secret is None or not secret.get_secret_value():
        raise ApiError(503, "not_configured", "Slack actions are not configured (LOOPWATCH_SLACK_SIGNING_SECRET)")
    body = await request.body()
    try:
        verify_slack_request(body, request.headers, secret.get_secret_value(), time.time())
    except InvalidSlackSignature as exc:
        raise ApiError(401, "invalid_signature", str(exc)) from None
    try:
        action = parse_action(body)
    except ValueError as exc:
        raise InvalidInput(
            "Slack payload is not a button action", [FieldError(field="payload", reason=str(exc))]
        ) from None
    background.add_task(handle_slack_action, request.app, action)
    return Response(status_code=200)


def handle_slack_action(app: Any, action: SlackAction) -> None:
    """Ack, silence or route samples for the group a button belongs to (``application.alerts``)."""
    app.state.application.alerts.slack_action(action, getattr(app.state, "route_samples", None))
