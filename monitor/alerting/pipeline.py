"""The alert pipeline, stage by stage (after Prometheus Alertmanager's notify pipeline):

    run outcome ─► state (pending/firing/resolved)
                ─► silences and inhibition (a no-data alert mutes the model's other alerts)
                ─► routing (the routing tree, or the monitor's own receivers, names the
                   receivers: slack, webhook, pagerduty, email, log …)
                ─► grouping (route group_by labels + receiver + channel: one group, one message
                   per receiver, so each receiver's delivery state is its own)
                ─► timers and dedup (group_wait, group_interval, repeat_interval; one pending
                   flush per group in the outbox)
                ─► notify (the dispatcher renders each due group as it is now and hands it to
                   the Notifier: post once, then update in place; repeats and the resolution
                   note go in the thread)

``build_pipeline`` assembles it in one place; each stage is a small method so it can be read
and tested on its own. The pipeline knows :class:`~monitor.alerting.notify.Notifier` values by
receiver name and the generic notify errors, never a particular receiver. An alert routed to two
receivers joins one group at each; their outbox rows, retries and messages are independent, so
one receiver's outage neither delays nor duplicates another's delivery.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monitor.alerting.alerts import AlertStore, Transition
from monitor.alerting.groups import AlertGroup, GroupStore, group_labels
from monitor.alerting.notice import SEVERITIES, AlertLine, GroupNotice, NoticeKind, Severity
from monitor.alerting.notify import MessageRef, Notifier, NotifyError, PermanentNotifyError, TransientNotifyError
from monitor.alerting.notify.log import LogNotifier
from monitor.alerting.notify.messages import GroupMessage, MessageStore
from monitor.alerting.notify.receivers import Receivers, receivers_from_settings
from monitor.alerting.outbox import Outbox, OutboxRow
from monitor.alerting.silences import SilenceStore
from monitor.clock import Clock, utcnow
from monitor.monitors import RouteSpec
from monitor.periodic import Periodic
from monitor.references import parse_duration

if TYPE_CHECKING:
    from monitor.scheduling import RunOutcome

log = logging.getLogger("loopwatch.alerts")
MAYBE_DELIVERED = "[maybe delivered]"

#: What a delivery did, for metrics: sent | retry | failed.
DeliveryHook = Callable[[str, str], None]  # (receiver, result)


@dataclass(frozen=True)
class PipelineConfig:
    """``labels_help``: does routing samples to annotators help with this detector's alerts?
    Supplied by the composition root (the rule lives in ``labeling.routing``, which the monitor
    may not import); without it every group offers the button."""

    public_url: str | None = None
    labels_help: Callable[[str], bool] | None = None


@dataclass(frozen=True)
class Delivery:
    """A group an alert belongs to and how its message fared (``GET /v1/alerts/{id}``, pages)."""

    group_id: str
    group_state: str
    labels: dict[str, str]
    alerts: int
    receiver: str
    channel: str
    channel_id: str | None
    message_id: str | None
    message_state: str
    last_error: str | None
    outbox: list[dict[str, Any]]


class AlertPipeline:
    def __init__(
        self,
        alerts: AlertStore,
        silences: SilenceStore,
        groups: GroupStore,
        outbox: Outbox,
        messages: MessageStore,
        notifier: Notifier,
        config: PipelineConfig,
        now: Clock = utcnow,
        receivers: Receivers | None = None,
    ) -> None:
        self.alerts = alerts
        self.silences = silences
        self.groups = groups
        self.outbox = outbox
        self.messages = messages
        #: The primary receiver (Slack or the log): one-off announcements go here.
        self.notifier = notifier
        self.receivers = receivers or Receivers.single(notifier)
        self.config = config
        self._now = now
        self.on_delivery: DeliveryHook | None = None

    # -- stage 1: state ----------------------------------------------------------------------

    def on_run(self, outcome: RunOutcome) -> list[Transition]:
        """Subscriber of the monitor runner: update alert state, then plan notifications."""
        transitions = self.alerts.observe(outcome)
        for transition in transitions:
            self.plan(transition)
        return transitions

    # -- stages 2-4: silence/inhibit → group → timers/dedup -----------------------------------

    def plan(self, transition: Transition) -> bool:
        """A firing alert joins its group; a resolved one makes its groups re-render. Returns
        True when this changed what a group's message will show (False: muted, or already
        planned — re-planning after a restart is a no-op)."""
        alert = self.alerts.get(transition.alert_id)
        if transition.kind == "resolved":
            changed = False
            for group in self.groups.of_alert(alert["id"], open_only=True):
                self._schedule(self.groups.touch(group.id))
                changed = True
            return changed  # in no open group: nobody was told it fired, nothing to resolve
        if self._muted(alert, transition.kind):
            return False
        route = self._route(alert)
        labels = group_labels(alert, route.group_by)
        changed = False
        for receiver in self.receivers.receivers_for(alert, route):
            notifier = self.receivers.notifiers[receiver]
            joined = self.groups.join(
                receiver=receiver,
                channel=notifier.destination(route),
                labels=labels,
                route=route,
                alert_id=alert["id"],
            )
            if not joined.joined:
                continue
            at = self._schedule(joined.group)
            self.alerts.record_event(
                alert["id"],
                "notification_queued:new",
                None,
                {"group_id": joined.group.id, "receiver": receiver, "not_before": at.isoformat()},
            )
            changed = True
        return changed

    def plan_update(self, *, alert_id: str | None = None, group_id: str | None = None) -> int:
        """Someone acted (ack, silence, samples): refresh the affected groups' messages now.
        Human actions are not rate-limited by group_interval — the presser waits for them.
        A button pressed on one receiver's message (Slack) also refreshes the other receivers'
        open groups of the same alerts, so e.g. PagerDuty learns of an acknowledgement."""
        if group_id:
            pressed = self.groups.get(group_id)
            siblings = {g.id: g for a in pressed.alert_ids for g in self.groups.of_alert(a, open_only=True)}
            siblings.pop(pressed.id, None)
            groups = [pressed, *siblings.values()]
        else:
            groups = self.groups.of_alert(alert_id or "", open_only=True)
        for group in groups:
            if group.state != "open":
                continue
            self.groups.touch(group.id)
            if group.last_flush_at is not None:  # before the first post, group_wait still applies
                self.outbox.schedule_flush(group.id, self._now())
        return len(groups)

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

    @staticmethod
    def _route(alert: dict[str, Any]) -> RouteSpec:
        return RouteSpec.model_validate(alert.get("route") or {})

    def _schedule(self, group: AlertGroup) -> datetime:
        """When the group's message goes out next (Alertmanager's timers): a new group waits
        group_wait from its creation to collect more alerts; after a notification, changes wait
        until group_interval after it. A flush already waiting is joined (coalesced)."""
        now = self._now()
        if group.last_flush_at is None:
            at = max(now, group.created_at + parse_duration(group.route.group_wait))
        else:
            at = max(now, group.last_flush_at + parse_duration(group.route.group_interval))
        self.outbox.schedule_flush(group.id, at)
        return at

    # -- repeats -------------------------------------------------------------------------------

    def plan_repeats(self) -> int:
        """Groups with a firing, unacknowledged, unmuted alert are re-notified in their thread
        every repeat_interval after the last post or repeat."""
        now = self._now()
        queued = 0
        for group in self.groups.open_groups():
            if group.last_notified_at is None or self.receivers.get(group.receiver) is None:
                continue
            if group.last_notified_at + parse_duration(group.route.repeat_interval) > now:
                continue
            if not self._needs_repeat(group):
                continue
            queued += self.outbox.schedule_repeat(group.id, group.repeats + 1, now)
        return queued

    def _needs_repeat(self, group: AlertGroup) -> bool:
        for alert_id in group.alert_ids:
            alert = self.alerts.get(alert_id)
            if alert["state"] == "firing" and not alert["acked_by"] and self.silences.silencing(alert) is None:
                return True
        return False

    # -- stage 5: notify -----------------------------------------------------------------------

    def notice(self, group: AlertGroup, kind: NoticeKind, message: GroupMessage | None = None) -> GroupNotice:
        """The group as it is now (its alerts read afresh), as the receiver should show it."""
        base = (self.config.public_url or "").rstrip("/")
        alerts = [self.alerts.get(alert_id) for alert_id in group.alert_ids]
        lines = tuple(self._line(alert, base) for alert in alerts)
        firing = [line for line in lines if line.status == "firing"]
        model = group.labels.get("model") or (alerts[0]["model"] if alerts else "")
        acked = {line.acked_by for line in firing}
        silenced = [line.silenced_until for line in firing]
        ended = [datetime.fromisoformat(a["resolved_at"]) for a in alerts if a["resolved_at"]]
        title_parts = [value for value in group.labels.values() if value] or [model or "alerts"]
        return GroupNotice(
            group_id=group.id,
            kind=kind,
            status="firing" if firing else "resolved",
            severity=_worst([line.severity for line in (firing or list(lines))]),
            title=" · ".join(title_parts),
            model=model,
            labels=group.labels,
            alerts=lines,
            channel=group.channel,
            started_at=min((line.started_at for line in lines), default=group.created_at),
            ended_at=max(ended) if ended and not firing else None,
            dashboard_url=f"{base}/models/{model}#alerts" if base and model else None,
            runbook_url=group.route.runbook,
            acked_by=", ".join(sorted(a for a in acked if a)) if firing and None not in acked else None,
            silenced_until=min(s for s in silenced if s) if firing and None not in silenced else None,
            labels_can_help=self._labels_can_help(lines),
        )

    def _labels_can_help(self, lines: tuple[AlertLine, ...] | list[AlertLine]) -> bool:
        """Offer "Send samples to labeling" only if labels help with at least one of the alerts."""
        helps = self.config.labels_help
        return helps is None or any(helps(line.detector) for line in lines)

    def _line(self, alert: dict[str, Any], base: str) -> AlertLine:
        silence = self.silences.silencing(alert) if alert["state"] != "resolved" else None
        return AlertLine(
            alert_id=alert["id"],
            status="resolved" if alert["state"] == "resolved" else "firing",
            severity=alert["severity"],
            title=alert["title"],
            detector=alert["detector"],
            metric=alert["metric"],
            column=alert["column"],
            segment=alert["segment"],
            model_version=alert["model_version"],
            value=alert["value"],
            threshold=alert["threshold"],
            what_changed=alert["what_changed"] or "",
            window_start=datetime.fromisoformat(alert["last_window_start"]),
            window_end=datetime.fromisoformat(alert["last_window_end"]),
            started_at=datetime.fromisoformat(alert["started_at"]),
            resolved_at=datetime.fromisoformat(alert["resolved_at"]) if alert["resolved_at"] else None,
            acked_by=alert["acked_by"],
            silenced_until=datetime.fromisoformat(silence["ends_at"]) if silence else None,
            dashboard_url=f"{base}/models/{alert['model']}/alerts/{alert['id']}" if base else None,
            monitor=alert.get("monitor") or "",
        )

    def deliver(self, row: OutboxRow) -> str:
        """Deliver one outbox row; returns sent | retry | failed."""
        return self._deliver(row, self.groups.get(row.group_id))

    def _deliver(self, row: OutboxRow, group: AlertGroup) -> str:
        receiver = group.receiver
        notifier = self.receivers.get(receiver)
        message = self.messages.get(group.id, receiver)
        try:
            if notifier is None:
                raise PermanentNotifyError(f"receiver {receiver!r} is not configured any more")
            if row.kind == "repeat":
                return self._repeat(notifier, row, group, message)
            return self._flush(notifier, row, group, message)
        except TransientNotifyError as exc:
            error = f"{MAYBE_DELIVERED} {exc}" if exc.maybe_delivered else str(exc)
            at = self.outbox.mark_retry(
                row.id, error, row.attempts, exc.retry_after, maybe_delivered=exc.maybe_delivered
            )
            self.messages.failed(group.id, receiver, group.channel, str(exc), permanent=False)
            log.warning("%s delivery of group %s delayed until %s: %s", receiver, group.id, at.isoformat(), exc)
            return "retry"
        except PermanentNotifyError as exc:
            self.outbox.mark_failed(row.id, str(exc))
            self.messages.failed(group.id, receiver, group.channel, str(exc), permanent=True)
            for alert_id in group.alert_ids:
                self.alerts.record_event(
                    alert_id, "notification_failed", None, {"group_id": group.id, "error": str(exc)}
                )
            log.error("%s delivery of group %s failed and will not be retried: %s", receiver, group.id, exc)
            return "failed"

    def _flush(self, notifier: Notifier, row: OutboxRow, group: AlertGroup, message: GroupMessage | None) -> str:
        """Post the group's message, or rewrite it to show the group as it is now."""
        receiver = group.receiver
        ref = message.ref if message else None
        if ref is None:
            notice = self.notice(group, "new", message)
            if notice.status == "resolved":  # every alert resolved before anyone was told: say nothing
                self._finish(row, group, notice, None, close=True)
                return "sent"
            ref = self._reconcile(notifier, row, notice) if row.maybe_delivered else None
            if ref is None:
                ref = notifier.post(notice)
            else:
                notifier.update(ref, notice)
            self.messages.posted(group.id, receiver, group.channel, ref)
            self._finish(row, group, notice, ref, close=False)
            return "sent"
        resolved = self.notice(group, "resolved", message)
        if resolved.status == "resolved":
            notifier.update(ref, resolved)
            if message is None or message.state != "resolved":
                notifier.reply(ref, resolved)
            self.messages.shown(group.id, receiver, "resolved")
            self._finish(row, group, resolved, ref, close=True)
            return "sent"
        notice = self.notice(group, "update", message)
        notifier.update(ref, notice)
        self.messages.shown(group.id, receiver, "firing")
        self._finish(row, group, notice, ref, close=False)
        return "sent"

    def _finish(
        self, row: OutboxRow, group: AlertGroup, notice: GroupNotice, ref: MessageRef | None, *, close: bool
    ) -> None:
        """Mark the row sent; if the group changed while it was delivered (its version moved),
        flush again after group_interval, so the last word is always the group's latest state.

        Order matters: a change bumps the version *before* it schedules a flush, and the version
        is compared *after* the row is marked sent, so a change can never coalesce into a row
        that is then marked sent without anyone noticing."""
        if ref is not None:
            self.alerts.mark_notified([line.alert_id for line in notice.alerts])
        self.outbox.mark_sent(row.id, ref.message_id if ref else None)
        if not self.groups.flushed(group.id, group.version, close=close):
            self.outbox.schedule_flush(group.id, self._now() + parse_duration(group.route.group_interval))

    def _repeat(self, notifier: Notifier, row: OutboxRow, group: AlertGroup, message: GroupMessage | None) -> str:
        ref = message.ref if message else None
        if ref is None or group.state != "open" or not self._needs_repeat(group):
            self.outbox.mark_sent(row.id, None)  # nothing to repeat (acked, resolved, or never posted)
            return "sent"
        notice = self.notice(group, "repeat", message)
        reply = notifier.reply(ref, notice)
        self.groups.repeated(group.id)
        self.alerts.mark_notified([line.alert_id for line in notice.firing], repeat=True)
        self.outbox.mark_sent(row.id, reply)
        return "sent"

    def _reconcile(self, notifier: Notifier, row: OutboxRow, notice: GroupNotice) -> MessageRef | None:
        """After a post that may have reached the receiver, adopt that message instead of
        posting twice."""
        try:
            found = notifier.find_posted(notice)
        except NotifyError as exc:  # e.g. no history scope: post again (a duplicate beats a loss)
            log.warning("could not check %s for group %s before re-posting: %s", notifier.name, row.group_id, exc)
            return None
        if found is not None:
            for line in notice.alerts:
                self.alerts.record_event(
                    line.alert_id,
                    "notification_reconciled",
                    None,
                    {"group_id": row.group_id, "message_id": found.message_id},
                )
        return found

    def dispatch_due(self) -> dict[str, int]:
        """One dispatcher tick: plan repeats, then deliver every due outbox row in order."""
        self.plan_repeats()
        counts = {"sent": 0, "retry": 0, "failed": 0}
        for row in self.outbox.due(self._now()):
            group = self.groups.get(row.group_id)
            result = self._deliver(row, group)
            counts[result] += 1
            if self.on_delivery is not None:
                self.on_delivery(group.receiver, result)
        return counts

    # -- reads for the API and pages -----------------------------------------------------------

    def deliveries(self, alert_id: str) -> list[Delivery]:
        """The groups an alert belongs to, newest first, with their messages and outbox rows."""
        groups = self.groups.of_alert(alert_id)
        messages = {(m.group_id, m.receiver): m for m in self.messages.of_groups([g.id for g in groups])}
        out = []
        for group in groups:
            message = messages.get((group.id, group.receiver))
            out.append(
                Delivery(
                    group_id=group.id,
                    group_state=group.state,
                    labels=group.labels,
                    alerts=len(group.alert_ids),
                    receiver=group.receiver,
                    channel=group.channel,
                    channel_id=message.channel_id if message else None,
                    message_id=message.message_id if message else None,
                    message_state=message.state if message else "pending",
                    last_error=message.last_error if message else None,
                    outbox=self.outbox.rows([group.id]),
                )
            )
        return out

    def deliveries_json(self, alert_id: str) -> list[dict[str, Any]]:
        return [asdict(d) for d in self.deliveries(alert_id)]


def _worst(severities: list[Severity]) -> Severity:
    return max(severities, key=SEVERITIES.index, default="warning")


class Dispatcher(Periodic):
    """Delivers the outbox in the background, ticking every ``interval`` seconds."""

    def __init__(self, pipeline: AlertPipeline, interval: float = 1.0) -> None:
        super().__init__("loopwatch-alert-dispatcher", interval, pipeline.dispatch_due)


def build_pipeline(
    service: Any,
    notifier: Notifier | None = None,
    now: Clock = utcnow,
    labels_help: Callable[[str], bool] | None = None,
    receivers: Receivers | None = None,
) -> AlertPipeline:
    """The composition of the stages above for one service.

    ``notifier`` is the primary receiver (Slack or the log; default the log); the other
    receivers and the routing tree come from the service's settings
    (:func:`~monitor.alerting.notify.receivers.receivers_from_settings`) unless ``receivers`` is
    given. A bad routing configuration raises ``RoutingError`` here, i.e. at start-up. Saving a
    monitor whose route names an unknown receiver is refused from then on."""
    settings = service.settings
    primary = notifier or LogNotifier()
    chosen = receivers or receivers_from_settings(settings, primary)
    monitors = getattr(service, "monitors", None)
    if monitors is not None:
        monitors.route_check = chosen.check_route
        _warn_unknown_receivers(monitors, chosen)
    return AlertPipeline(
        alerts=AlertStore(service.db, service.registry, now),
        silences=SilenceStore(service.db, now),
        groups=GroupStore(service.db, now),
        outbox=Outbox(service.db, now),
        messages=MessageStore(service.db, now),
        notifier=primary,
        config=PipelineConfig(public_url=settings.public_url, labels_help=labels_help),
        now=now,
        receivers=chosen,
    )


def _warn_unknown_receivers(monitors: Any, receivers: Receivers) -> None:
    """Saved monitors naming receivers that are no longer configured keep running (their alerts
    fall back to the routing tree); say so once at start-up."""
    for model, spec in monitors.list():
        try:
            receivers.check_route(spec.route)
        except ValueError as exc:
            log.error("monitor %s/%s: route.receivers: %s; its alerts follow the routing tree", model, spec.name, exc)


__all__ = ["AlertPipeline", "Delivery", "Dispatcher", "PipelineConfig", "build_pipeline"]
