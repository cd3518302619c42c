"""On-call actions: list and show alerts, acknowledge (one or many), silence, expire silences,
and the same actions pressed as Slack buttons. Each is audited as the person who did it and
refreshes the affected group messages (delivered by a server's dispatcher)."""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor.clock import parse_time
from monitor.errors import Conflict, FieldError, InvalidInput, NotFound
from monitor.references import parse_duration

if TYPE_CHECKING:
    from monitor.alerting.notify.slack.signature import SlackAction
    from monitor.alerting.pipeline import AlertPipeline
    from monitor.service import Loopwatch

log = logging.getLogger("loopwatch.slack")  # button presses are logged with Slack's

# Routes samples for an alert on a person's request: (alert id, actor) → the routing result.
RouteSamples = Callable[[str, str], dict[str, Any]]


@dataclass(frozen=True)
class AckResult:
    """A bulk acknowledgement: who was acknowledged now, who already was, what was refused."""

    acknowledged: builtins.list[str]
    already: builtins.list[str]
    refused: dict[str, str]  # alert id → why (resolved, unknown)

    def to_dict(self) -> dict[str, Any]:
        return {"acknowledged": self.acknowledged, "already": self.already, "refused": self.refused}


class AlertOps:
    def __init__(self, service: Loopwatch, pipeline: AlertPipeline) -> None:
        self._service = service
        self._pipeline = pipeline

    def list(
        self,
        *,
        state: str | None = None,
        model: str | None = None,
        severity: str | None = None,
        active: bool | None = None,
        limit: int = 200,
    ) -> builtins.list[dict[str, Any]]:
        """Alerts across models, most recently changed first, each with its silence (if muted)."""
        alerts = self._pipeline.alerts.list(state=state, model=model, severity=severity, active=active, limit=limit)
        silences = self._pipeline.silences
        muting = silences.list(active_only=True)  # read once, matched against every alert
        for alert in alerts:
            silence = silences.silencing(alert, muting) if alert["state"] != "resolved" else None
            alert["silenced_by"] = silence["id"] if silence else None
        return alerts

    def get(self, alert_id: str) -> dict[str, Any]:
        """The alert, its timeline (fired, notified, acked, silenced, resolved) and deliveries."""
        alert = self._pipeline.alerts.get(alert_id)
        silence = self._pipeline.silences.silencing(alert)
        return {
            **alert,
            "silenced_by": silence["id"] if silence else None,
            "timeline": self._pipeline.alerts.events(alert_id),
            "notifications": self._pipeline.deliveries_json(alert_id),
        }

    def ack(self, actor: str, alert_id: str, via: dict[str, Any] | None = None) -> dict[str, Any]:
        """Acknowledge: repeats stop, the alert still resolves (409 once resolved)."""
        already = bool(self._pipeline.alerts.get(alert_id)["acked_by"])
        alert = self._pipeline.alerts.ack(alert_id, actor)
        if not already:
            self._service.audit.record(actor, "alert.acknowledged", alert_id, via)
            self._pipeline.plan_update(alert_id=alert_id)
        return alert

    def ack_many(self, actor: str, alert_ids: builtins.list[str]) -> AckResult:
        """Acknowledge several alerts (the console's bulk action): each is acknowledged, found
        already acknowledged, or refused with the reason; one bad id does not stop the rest."""
        done: builtins.list[str] = []
        already: builtins.list[str] = []
        refused: dict[str, str] = {}
        for alert_id in dict.fromkeys(alert_ids):
            try:
                if self._pipeline.alerts.get(alert_id)["acked_by"]:
                    already.append(alert_id)
                    continue
                self.ack(actor, alert_id, {"bulk": len(alert_ids)} if len(alert_ids) > 1 else None)
                done.append(alert_id)
            except (NotFound, Conflict) as exc:
                refused[alert_id] = exc.message
        return AckResult(done, already, refused)

    def silence(
        self,
        actor: str,
        matchers: dict[str, str],
        *,
        ends_at: str | None = None,
        duration: str | None = None,
        comment: str | None = None,
    ) -> dict[str, Any]:
        """Mute alerts matching ``matchers`` (labels: model, monitor, severity, alert_id,
        segment.<name>…) until ``ends_at`` or for ``duration``."""
        if (ends_at is None) == (duration is None):
            raise InvalidInput(
                "silence is not valid", [FieldError(field="ends_at", reason="give ends_at or duration (e.g. 2h)")]
            )
        try:
            ends = parse_time(ends_at) if ends_at else self._service.now() + parse_duration(duration or "")
        except ValueError as exc:
            raise InvalidInput(
                "silence is not valid", [FieldError(field="duration" if duration else "ends_at", reason=str(exc))]
            ) from None
        return self._create_silence(actor, matchers, ends, comment, None)

    def _create_silence(
        self, actor: str, matchers: dict[str, str], ends: datetime, comment: str | None, via: dict[str, Any] | None
    ) -> dict[str, Any]:
        silence = self._pipeline.silences.create(matchers, ends, actor, comment)
        self._service.audit.record(
            actor,
            "silence.created",
            silence["id"],
            {"matchers": matchers, "ends_at": silence["ends_at"], **(via or {})},
        )
        return silence

    def silences(self, *, active: bool = False) -> builtins.list[dict[str, Any]]:
        return self._pipeline.silences.list(active_only=active)

    def expire_silence(self, actor: str, silence_id: str) -> dict[str, Any]:
        silence = self._pipeline.silences.expire(silence_id, actor)
        self._service.audit.record(actor, "silence.expired", silence_id)
        return silence

    def slack_action(self, action: SlackAction, route_samples: RouteSamples | None) -> None:
        """Ack, silence or route samples for the group a Slack button belongs to (or the single
        alert of a message posted before grouping); audited as the Slack user. Runs after Slack
        got its answer, so failures are logged, not raised."""
        pipeline = self._pipeline
        actor = f"slack:{action.user_name or action.user_id}"
        target = action.group_id or action.alert_id or ""
        try:
            group = pipeline.groups.get(action.group_id) if action.group_id else None
            alert_ids = list(group.alert_ids) if group else [action.alert_id or ""]
            via: dict[str, Any] = {"via": "slack", "group_id": action.group_id} if group else {"via": "slack"}
            if action.action_id == "ack":
                for alert_id in alert_ids:
                    alert = pipeline.alerts.get(alert_id)
                    if alert["state"] == "resolved" or alert["acked_by"]:
                        continue
                    pipeline.alerts.ack(alert_id, actor)
                    self._service.audit.record(actor, "alert.acknowledged", alert_id, via)
            elif action.action_id in ("silence_1h", "silence_24h"):
                hours = 1 if action.action_id == "silence_1h" else 24
                if group is not None and group.labels:  # the group's labels: its alerts and any that would join
                    scopes = [dict(group.labels)]
                else:  # one alert, or a group_by: [] group (no labels to match): exactly its alerts
                    scopes = [{"alert_id": alert_id} for alert_id in alert_ids]
                ends = self._service.now() + timedelta(hours=hours)
                for scope in scopes:
                    self._create_silence(actor, scope, ends, f"from Slack ({hours}h)", via)
            elif action.action_id == "route_samples":
                for alert_id in alert_ids:
                    pipeline.alerts.record_event(alert_id, "samples_requested", actor, via)
                    self._service.audit.record(actor, "labeling.requested", alert_id, via)
                    result = route_samples(alert_id, actor) if route_samples is not None else None
                    if result and not result.get("queued") and result.get("reason"):
                        # e.g. a latency alert: labels cannot help, so nothing was routed; say so on the timeline
                        pipeline.alerts.record_event(
                            alert_id, "samples_not_routed", actor, {"reason": result["reason"]}
                        )
            else:
                log.warning("unknown Slack action %r for %s", action.action_id, target)
                return
            if group is not None:
                pipeline.plan_update(group_id=group.id)
            else:
                pipeline.plan_update(alert_id=action.alert_id)
        except Exception:
            log.exception("Slack action %s on %s failed", action.action_id, target)
