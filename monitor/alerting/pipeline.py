"""The alert pipeline, stage by stage (after Prometheus Alertmanager's notify pipeline):

    run outcome ─► state (pending/firing/resolved)
                ─► silences and inhibition (a no-data alert mutes the model's other alerts)
                ─► grouping (per model and channel: group_wait, group_interval)
                ─► dedup (one outbox row per alert, kind and repeat number)
                ─► notify (the dispatcher delivers the outbox with retries; repeats every repeat_interval)

``build_pipeline`` assembles it in one place; each stage is a small method so it can be read
and tested on its own.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.alerting.alerts import AlertStore, Transition
from monitor.alerting.notice import AlertNotice
from monitor.alerting.outbox import Outbox, notice_from_json
from monitor.alerting.silences import SilenceStore
from monitor.alerting.slack import LogChannel, NoticeChannel
from monitor.alerting.slack_errors import PermanentSlackError, SlackError, TransientSlackError
from monitor.clock import Clock, utcnow
from monitor.periodic import Periodic
from monitor.references import parse_duration

if TYPE_CHECKING:
    from monitor.scheduling import RunOutcome

log = logging.getLogger("loopwatch.alerts")
MAYBE_DELIVERED = "[maybe delivered]"


@dataclass(frozen=True)
class PipelineConfig:
    public_url: str | None = None
    default_channel: str = "#ml-alerts"


class AlertPipeline:
    def __init__(
        self,
        alerts: AlertStore,
        silences: SilenceStore,
        outbox: Outbox,
        channel: NoticeChannel,
        config: PipelineConfig,
        now: Clock = utcnow,
    ) -> None:
        self.alerts = alerts
        self.silences = silences
        self.outbox = outbox
        self.channel = channel
        self.config = config
        self._now = now
        self.on_delivery: Callable[[str], None] | None = None  # metrics hook: sent | retry | failed

    # -- stage 1: state ----------------------------------------------------------------------

    def on_run(self, outcome: RunOutcome) -> list[Transition]:
        """Subscriber of the monitor runner: update alert state, then plan notifications."""
        transitions = self.alerts.observe(outcome)
        for transition in transitions:
            self.plan(transition)
        return transitions

    # -- stages 2-4: silence/inhibit → group → dedup ------------------------------------------

    def plan(self, transition: Transition) -> bool:
        alert = self.alerts.get(transition.alert_id)
        if transition.kind == "resolved" and not alert["last_notified_at"]:
            return False  # nobody was told it fired (silenced/inhibited): nothing to resolve in Slack
        if self._muted(alert, transition.kind):
            return False
        kind = transition.kind
        return self._enqueue(alert, kind, dedup_key=f"{alert['id']}:{kind}", not_before=self._group_time(alert))

    def _muted(self, alert: dict[str, Any], kind: str) -> bool:
        silence = self.silences.silencing(alert)
        if silence is not None:
            self.alerts.record_event(alert["id"], "silenced", None, {"silence_id": silence["id"], "kind": kind})
            return True
        if alert["detector"] not in ("freshness", "run_error") and self._no_data_firing(alert):
            self.alerts.record_event(alert["id"], "inhibited", None, {"by": "no_data", "kind": kind})
            return True
        return False

    def _no_data_firing(self, alert: dict[str, Any]) -> bool:
        return any(a["finding_status"] == "no_data" for a in self.alerts.list(model=alert["model"], state="firing"))

    def _channel(self, alert: dict[str, Any]) -> str:
        return (alert.get("route") or {}).get("slack_channel") or self.config.default_channel

    def _group_key(self, alert: dict[str, Any]) -> str:
        return f"{alert['model']}|{self._channel(alert)}"

    def _group_time(self, alert: dict[str, Any]) -> datetime:
        """New group: wait group_wait to collect more alerts. A batch already waiting: join it.
        Recently notified group: wait until group_interval after that notification."""
        route = alert.get("route") or {}
        now = self._now()
        key = self._group_key(alert)
        waiting = self.outbox.pending_flush(key)
        if waiting is not None and waiting >= now:
            return waiting
        last = self.outbox.last_sent(key)
        interval = parse_duration(route.get("group_interval", "5m"))
        if last is not None and last + interval > now:
            return last + interval
        return now + parse_duration(route.get("group_wait", "30s"))

    def _enqueue(self, alert: dict[str, Any], kind: str, *, dedup_key: str, not_before: datetime) -> bool:
        notice = self.notice(alert, kind)
        queued = self.outbox.enqueue(
            dedup_key=dedup_key,
            alert_id=alert["id"],
            group_key=self._group_key(alert),
            kind=kind,
            channel=notice.channel,
            notice=notice,
            not_before=not_before,
        )
        if queued:
            self.alerts.record_event(
                alert["id"], f"notification_queued:{kind}", None, {"not_before": not_before.isoformat()}
            )
        return queued

    # -- repeats and updates ----------------------------------------------------------------

    def plan_repeats(self) -> int:
        """Firing, unacknowledged, unmuted alerts are re-notified every repeat_interval (in thread)."""
        now = self._now()
        queued = 0
        for alert in self.alerts.list(state="firing", limit=10_000):
            if alert["acked_by"] or not alert["last_notified_at"]:
                continue
            interval = parse_duration((alert.get("route") or {}).get("repeat_interval", "4h"))
            if datetime.fromisoformat(alert["last_notified_at"]) + interval > now:
                continue
            if self._muted(alert, "repeat"):
                continue
            queued += self._enqueue(
                alert, "repeat", dedup_key=f"{alert['id']}:repeat:{alert['repeats'] + 1}", not_before=now
            )
        return queued

    def plan_update(self, alert_id: str) -> bool:
        """Ack/silence changed: refresh the original Slack message (if there is one)."""
        alert = self.alerts.get(alert_id)
        if not alert["slack_ts"]:
            return False
        return self._enqueue(
            alert, "update", dedup_key=f"{alert_id}:update:{uuid.uuid4().hex[:8]}", not_before=self._now()
        )

    # -- stage 5: notify -------------------------------------------------------------------

    def notice(self, alert: dict[str, Any], kind: str) -> AlertNotice:
        silence = self.silences.silencing(alert)
        base = (self.config.public_url or "").rstrip("/")
        return AlertNotice(
            alert_id=alert["id"],
            fingerprint=alert["fingerprint"],
            status="resolved" if alert["state"] == "resolved" else "firing",
            severity=alert["severity"],
            title=alert["title"],
            model=alert["model"],
            model_version=alert["model_version"],
            segment=alert["segment"],
            detector=alert["detector"],
            metric=alert["metric"],
            value=alert["value"],
            threshold=alert["threshold"],
            window_start=datetime.fromisoformat(alert["last_window_start"]),
            window_end=datetime.fromisoformat(alert["last_window_end"]),
            what_changed=alert["what_changed"] or "",
            started_at=datetime.fromisoformat(alert["started_at"]),
            dashboard_url=f"{base}/models/{alert['model']}/alerts/{alert['id']}" if base else None,
            runbook_url=(alert.get("route") or {}).get("runbook"),
            channel=self._channel(alert),
            kind=kind,  # type: ignore[arg-type]
            acked_by=alert["acked_by"],
            silenced_until=datetime.fromisoformat(silence["ends_at"]) if silence else None,
            error=alert["notify_error"],
        )

    def deliver(self, row: dict[str, Any]) -> str:
        """Send one outbox row; returns sent | retry | failed."""
        alert = self.alerts.get(row["alert_id"])
        kind = row["kind"]
        notice = self.notice(alert, kind) if kind in ("update", "resolved") else notice_from_json(row["payload"])
        channel, ts = row["channel"], alert["slack_ts"]
        try:
            if kind == "new" or not ts:
                if kind == "update":
                    self.outbox.mark_sent(row["id"], None)
                    return "sent"
                if (row.get("last_error") or "").startswith(MAYBE_DELIVERED) and self._reconcile(row, notice, alert):
                    return "sent"
                post_message = getattr(self.channel, "post_message", None)
                if post_message is not None:  # Slack: keep the channel *id* (chat.update needs it after restarts)
                    message = post_message(notice)
                    posted, channel = message.ts, message.channel
                else:
                    posted = self.channel.post(notice)
                self.alerts.set_delivery(alert["id"], channel=channel, ts=posted, error=None, notified=True)
                self.outbox.mark_sent(row["id"], posted)
                return "sent"
            if kind in ("resolved", "update"):
                self.channel.update(alert["slack_channel"] or channel, ts, notice)
                reply_ts = None
                if kind == "resolved":
                    reply_ts = self.channel.reply(alert["slack_channel"] or channel, ts, notice)
                self.alerts.set_delivery(alert["id"], error=None, notified=kind == "resolved")
                self.outbox.mark_sent(row["id"], reply_ts or ts)
                return "sent"
            reply = self.channel.reply(alert["slack_channel"] or channel, ts, notice)  # repeat
            self.alerts.set_delivery(alert["id"], error=None, notified=True, repeat=True)
            self.outbox.mark_sent(row["id"], reply)
            return "sent"
        except TransientSlackError as exc:
            error = f"{MAYBE_DELIVERED} {exc}" if getattr(exc, "maybe_delivered", False) else str(exc)
            at = self.outbox.mark_retry(row["id"], error, row["attempts"], getattr(exc, "retry_after", None))
            log.warning(
                "slack delivery of %s for alert %s delayed until %s: %s", kind, alert["id"], at.isoformat(), exc
            )
            return "retry"
        except PermanentSlackError as exc:
            self.outbox.mark_failed(row["id"], str(exc))
            self.alerts.set_delivery(alert["id"], error=str(exc))
            self.alerts.record_event(alert["id"], "notification_failed", None, {"error": str(exc)})
            log.error("slack delivery for alert %s failed and will not be retried: %s", alert["id"], exc)
            return "failed"

    def _reconcile(self, row: dict[str, Any], notice: AlertNotice, alert: dict[str, Any]) -> bool:
        """After a post that may have reached Slack, adopt that message instead of posting twice."""
        find = getattr(self.channel, "find_posted", None)
        if find is None:
            return False
        try:
            found = find(notice)
        except SlackError as exc:  # e.g. no channels:history scope: post again (a duplicate beats a loss)
            log.warning("could not check Slack for alert %s before re-posting: %s", alert["id"], exc)
            return False
        if found is None:
            return False
        self.alerts.set_delivery(alert["id"], channel=found.channel, ts=found.ts, error=None, notified=True)
        self.outbox.mark_sent(row["id"], found.ts)
        self.alerts.record_event(alert["id"], "notification_reconciled", None, {"ts": found.ts})
        return True

    def dispatch_due(self) -> dict[str, int]:
        """One dispatcher tick: plan repeats, then deliver every due outbox row in order."""
        self.plan_repeats()
        counts = {"sent": 0, "retry": 0, "failed": 0}
        for row in self.outbox.due(self._now()):
            result = self.deliver(row)
            counts[result] += 1
            if self.on_delivery is not None:
                self.on_delivery(result)
        return counts


class Dispatcher(Periodic):
    """Delivers the outbox in the background, ticking every ``interval`` seconds."""

    def __init__(self, pipeline: AlertPipeline, interval: float = 1.0) -> None:
        super().__init__("loopwatch-alert-dispatcher", interval, pipeline.dispatch_due)


def build_pipeline(service: Any, channel: NoticeChannel | None = None, now: Clock = utcnow) -> AlertPipeline:
    """The composition of the stages above for one service."""
    settings = service.settings
    return AlertPipeline(
        alerts=AlertStore(service.db, service.registry, now),
        silences=SilenceStore(service.db, now),
        outbox=Outbox(service.db, now),
        channel=channel or LogChannel(),
        config=PipelineConfig(public_url=settings.public_url, default_channel=settings.slack_channel or "#ml-alerts"),
        now=now,
    )


__all__ = ["AlertPipeline", "Dispatcher", "PipelineConfig", "build_pipeline"]
