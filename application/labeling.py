"""The feedback loop's use cases: route samples for an alert (the policy when one fires, a
person pressing a button) and apply Label Studio's annotations as they arrive."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from labeling.queue import RouteRequest
from labeling.routing import strategy_for_alert, why_labels_cannot_help
from labeling.sync import apply_annotations
from monitor.errors import NotConfigured

if TYPE_CHECKING:
    from labeling.label_studio.models import WebhookEvent
    from labeling.queue import LabelingQueue
    from labeling.sync import LabelSync
    from monitor.alerting.pipeline import AlertPipeline
    from monitor.service import Loopwatch

log = logging.getLogger("loopwatch.labeling")


class LabelingOps:
    def __init__(
        self, service: Loopwatch, pipeline: AlertPipeline, queue: LabelingQueue, sync: LabelSync | None = None
    ) -> None:
        self._service = service
        self._pipeline = pipeline
        self.queue = queue
        self.sync = sync

    def route_for_alert(self, alert_id: str, actor: str, budget: int = 50) -> dict[str, Any]:
        """Route samples for an alert with the strategy that fits it.

        Alerts that labels cannot help with (latency, volume, freshness, data quality, run errors —
        see ``labeling.routing.LABEL_STRATEGY_BY_DETECTOR``) queue nothing and say why, so neither
        the policy nor a button press spends the annotators' budget on them.
        """
        alert = self._pipeline.alerts.get(alert_id)
        reason = why_labels_cannot_help(alert["detector"])
        strategy = strategy_for_alert(alert["detector"], alert["column"])
        if reason is not None or strategy is None:
            return {
                "model": alert["model"],
                "alert_id": alert_id,
                "queued": 0,
                "samples": [],
                "reason": f"no samples routed for a {alert['detector']} alert: {reason}",
            }
        return self.queue.route(
            RouteRequest(model=alert["model"], strategy=strategy, alert_id=alert_id, requested_by=actor, budget=budget)
        )

    def route(self, actor: str, request: RouteRequest) -> dict[str, Any]:
        """Select samples by strategy (within the per-model daily budget) and queue them for
        annotators; audited."""
        result = self.queue.route(request)
        self._service.audit.record(
            actor,
            "labeling.routed",
            request.model,
            {"strategy": request.strategy, "queued": result["queued"], "alert_id": request.alert_id},
        )
        return result

    def sync_now(self, actor: str) -> dict[str, Any]:
        """Push queued samples to Label Studio and pull every annotation now (a server also does
        it every ``labeling_sync_interval_seconds``). Raises NotConfigured without Label Studio."""
        if self.sync is None:
            raise NotConfigured(
                "Label Studio is not configured (LOOPWATCH_LABEL_STUDIO_URL, LOOPWATCH_LABEL_STUDIO_TOKEN)"
            )
        pushed = self.sync.push()
        pulled = self.sync.poll() if pushed.get("error") is None else {"labels": 0, "needs_review": 0}
        self._service.audit.record(actor, "labeling.synced", None, {"pushed": pushed, "pulled": pulled})
        return {"push": pushed, "pull": pulled}

    def apply_webhook(self, event: WebhookEvent) -> None:
        """Apply one Label Studio webhook's annotations to the model whose project they belong
        to. Runs after Label Studio got its answer; a failure is logged and the periodic poll
        catches up. Applying is idempotent, so duplicates are harmless."""
        project = event.project_id or next((a.project_id for a in event.annotations if a.project_id), None)
        row = (
            self._service.db.query_one(
                "SELECT m.name FROM routed_samples r JOIN models m ON m.id = r.model_id WHERE r.project_id = ? LIMIT 1",
                [project],
            )
            if project is not None
            else None
        )
        if row is None:
            log.info("webhook for Label Studio project %s that loopwatch did not create; ignored", project)
            return
        try:
            sync = self.sync
            annotations = sync.backend.resolve_annotators(event.annotations) if sync is not None else event.annotations
            apply_annotations(self._service, row[0], annotations, event.deleted_annotation_ids)
        except Exception:
            log.exception("applying a Label Studio webhook failed; the periodic poll will catch up")
