"""On-call: alerts (list, show, acknowledge), silences, and the Slack buttons endpoint."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from pydantic import BaseModel, Field

from api.deps import ReadKey, ServiceDep
from api.errors import ApiError
from monitor.alerting.notify.slack.signature import (
    InvalidSlackSignature,
    SlackAction,
    parse_action,
    verify_slack_request,
)
from monitor.alerting.pipeline import AlertPipeline
from monitor.clock import parse_time
from monitor.errors import FieldError, InvalidInput
from monitor.references import parse_duration

router = APIRouter(tags=["alerts"])
log = logging.getLogger("loopwatch.slack")


def _pipeline(request: Request) -> AlertPipeline:
    return request.app.state.alerts


class SilenceCreate(BaseModel):
    matchers: dict[str, str] = Field(description="e.g. {'model': 'harsh-braking', 'segment.firmware': '3.2'}")
    ends_at: str | None = None
    duration: str | None = Field(default=None, description="e.g. 1h, 24h (instead of ends_at)")
    comment: str | None = Field(default=None, max_length=1000)


@router.get("/v1/alerts")
def list_alerts(
    request: Request,
    _: ReadKey,
    state: str | None = None,
    model: str | None = None,
    severity: str | None = None,
    active: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 200,
) -> list[dict[str, Any]]:
    return _pipeline(request).alerts.list(state=state, model=model, severity=severity, active=active, limit=limit)


@router.get("/v1/alerts/{alert_id}")
def get_alert(alert_id: str, request: Request, _: ReadKey) -> dict[str, Any]:
    """The alert, its timeline (fired, notified, acked, silenced, resolved) and its deliveries:
    the groups it belongs to, where each group's message is and the last delivery error."""
    pipeline = _pipeline(request)
    alert = pipeline.alerts.get(alert_id)
    silence = pipeline.silences.silencing(alert)
    return {
        **alert,
        "silenced_by": silence["id"] if silence else None,
        "timeline": pipeline.alerts.events(alert_id),
        "notifications": pipeline.deliveries_json(alert_id),
    }


@router.post("/v1/alerts/{alert_id}/ack")
def ack_alert(alert_id: str, request: Request, service: ServiceDep, principal: ReadKey) -> dict[str, Any]:
    """Acknowledge: repeats stop, the alert still resolves. Who and when go to the audit log."""
    pipeline = _pipeline(request)
    alert = pipeline.alerts.ack(alert_id, principal.id)
    service.audit.record(principal.id, "alert.acknowledged", alert_id)
    pipeline.plan_update(alert_id=alert_id)
    return alert


@router.post("/v1/silences", status_code=201)
def create_silence(body: SilenceCreate, request: Request, service: ServiceDep, principal: ReadKey) -> dict[str, Any]:
    now = service.now()
    if (body.ends_at is None) == (body.duration is None):
        raise InvalidInput("silence is not valid", [FieldError(field="ends_at", reason="give ends_at or duration")])
    try:
        ends = parse_time(body.ends_at) if body.ends_at else now + parse_duration(body.duration or "")
    except ValueError as exc:
        raise InvalidInput("silence is not valid", [FieldError(field="ends_at", reason=str(exc))]) from None
    silence = _pipeline(request).silences.create(body.matchers, ends, principal.id, body.comment)
    service.audit.record(
        principal.id, "silence.created", silence["id"], {"matchers": body.matchers, "ends_at": silence["ends_at"]}
    )
    return silence


@router.get("/v1/silences")
def list_silences(request: Request, _: ReadKey, active: bool = False) -> list[dict[str, Any]]:
    return _pipeline(request).silences.list(active_only=active)


@router.delete("/v1/silences/{silence_id}")
def expire_silence(silence_id: str, request: Request, service: ServiceDep, principal: ReadKey) -> dict[str, Any]:
    silence = _pipeline(request).silences.expire(silence_id, principal.id)
    service.audit.record(principal.id, "silence.expired", silence_id)
    return silence


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
    """Ack, silence or route samples for the group a button belongs to (or the single alert of
    a message posted before grouping); audited as the Slack user."""
    pipeline: AlertPipeline = app.state.alerts
    service = app.state.service
    actor = f"slack:{action.user_name or action.user_id}"
    target = action.group_id or action.alert_id or ""
    try:
        group = pipeline.groups.get(action.group_id) if action.group_id else None
        alert_ids = list(group.alert_ids) if group else [action.alert_id or ""]
        via = {"via": "slack", "group_id": action.group_id} if group else {"via": "slack"}
        if action.action_id == "ack":
            for alert_id in alert_ids:
                alert = pipeline.alerts.get(alert_id)
                if alert["state"] == "resolved" or alert["acked_by"]:
                    continue
                pipeline.alerts.ack(alert_id, actor)
                service.audit.record(actor, "alert.acknowledged", alert_id, via)
        elif action.action_id in ("silence_1h", "silence_24h"):
            hours = 1 if action.action_id == "silence_1h" else 24
            if group is not None and group.labels:  # the group's labels: its alerts and any that would join
                scopes = [dict(group.labels)]
            else:  # one alert, or a group_by: [] group (no labels to match): exactly its alerts
                scopes = [{"alert_id": alert_id} for alert_id in alert_ids]
            ends = service.now() + timedelta(hours=hours)
            for scope in scopes:
                silence = pipeline.silences.create(scope, ends, actor, f"from Slack ({hours}h)")
                service.audit.record(actor, "silence.created", silence["id"], {"matchers": scope, **via})
        elif action.action_id == "route_samples":
            hook = getattr(app.state, "route_samples", None)
            for alert_id in alert_ids:
                pipeline.alerts.record_event(alert_id, "samples_requested", actor, via)
                service.audit.record(actor, "labeling.requested", alert_id, via)
                result = hook(alert_id, actor) if hook is not None else None
                if result and not result.get("queued") and result.get("reason"):
                    # e.g. a latency alert: labels cannot help, so nothing was routed; say so on the timeline
                    pipeline.alerts.record_event(alert_id, "samples_not_routed", actor, {"reason": result["reason"]})
        else:
            log.warning("unknown Slack action %r for %s", action.action_id, target)
            return
        if group is not None:
            pipeline.plan_update(group_id=group.id)
        else:
            pipeline.plan_update(alert_id=action.alert_id)
    except Exception:
        log.exception("Slack action %s on %s failed", action.action_id, target)
