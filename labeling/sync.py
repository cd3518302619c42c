"""Moving samples between loopwatch's queue and Label Studio, both ways, idempotently.

* ``push``: queued samples become Label Studio tasks (with the model's prediction as a
  pre-annotation, except for samples labelled blind: see ``labeling.queue.is_blind``). If Label Studio is down or slow the samples stay queued with the error
  noted, and the next push retries them; the backend never imports a prediction_id twice.
* ``apply``: annotations (from the webhook or the poll) become labels of authority ``annotator``
  in the store, with annotator, time and source, so the FP/FN detectors see them. They never
  replace a ``ground_truth`` or ``review`` label: a disagreement is recorded as a conflict and
  the sample is flagged for review (``needs_review``). With several annotations on
  a task the majority label wins and the agreement (share of annotators who gave it) is kept;
  disagreements are flagged for review. Applying the same annotations twice changes nothing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from labeling.label_studio.errors import LabelStudioProblem, LabelStudioUnavailable
from labeling.label_studio.models import AnnotationOut, TaskIn
from labeling.label_studio.protocol import LabelingBackend
from monitor.clock import Clock, utcnow
from monitor.service import Loopwatch

log = logging.getLogger("loopwatch.labeling")


class LabelSync:
    def __init__(self, service: Loopwatch, backend: LabelingBackend, now: Clock = utcnow) -> None:
        self._service = service
        self.backend = backend
        self._now = now
        settings = service.settings
        secret = settings.label_studio_webhook_secret
        # With a public URL and a webhook secret, projects get their webhook on first push.
        self._webhook = (
            (f"{settings.public_url.rstrip('/')}/v1/labeling/webhook", secret.get_secret_value())
            if settings.public_url and secret is not None and secret.get_secret_value()
            else None
        )
        self._webhooked: set[int] = set()

    # -- push -----------------------------------------------------------------------------------

    def push(self, model: str | None = None, limit: int = 1000) -> dict[str, Any]:
        """Send queued samples to Label Studio; returns counts and the error if it is unreachable."""
        pushed = 0
        models = [model] if model else [m.name for m in self._service.registry.list()]
        for name in models:
            registered = self._service.registry.get(name)
            rows = self._service.db.query(
                "SELECT prediction_id, reason, prediction_ts, coalesce(blind, strategy = 'errors' AND NOT ?) "
                "FROM routed_samples WHERE model_id = ? AND status = 'queued' ORDER BY priority DESC, routed_at LIMIT ?",
                [self._service.settings.labeling_errors_show_model_output, registered.id, limit],
            )
            if not rows:
                continue
            try:
                project_id = self.backend.ensure_project(registered.schema)
                if self._webhook is not None and project_id not in self._webhooked:
                    self.backend.ensure_webhook(project_id, *self._webhook)
                    self._webhooked.add(project_id)
                tasks = self._tasks(name, rows)
                task_ids = self.backend.import_tasks(project_id, tasks, schema=registered.schema)
                existing = self.backend.existing_tasks(project_id, [t.prediction_id for t in tasks])
            except LabelStudioUnavailable as exc:
                self._note_push_error(registered.id, [r[0] for r in rows], str(exc))
                log.warning("Label Studio unreachable; %d samples of %s stay queued: %s", len(rows), name, exc)
                return {"pushed": pushed, "queued": len(rows), "error": str(exc)}
            except LabelStudioProblem as exc:
                self._note_push_error(registered.id, [r[0] for r in rows], str(exc))
                log.error("Label Studio refused samples of %s: %s", name, exc)
                return {"pushed": pushed, "queued": len(rows), "error": str(exc)}
            now = self._now()
            with self._service.db.transaction() as cur:
                for task in tasks:
                    cur.execute(
                        "UPDATE routed_samples SET status = 'pushed', project_id = ?, task_id = ?, pushed_at = ?, "
                        "push_error = NULL WHERE model_id = ? AND prediction_id = ? AND status = 'queued'",
                        [project_id, existing.get(task.prediction_id), now, registered.id, task.prediction_id],
                    ).fetchall()
            pushed += len(tasks)
            log.info(
                "pushed %d samples of %s to Label Studio project %s (%d new tasks)",
                len(tasks),
                name,
                project_id,
                len(task_ids),
            )
        return {"pushed": pushed, "queued": 0, "error": None}

    def _tasks(self, model: str, rows: list[tuple[Any, ...]]) -> list[TaskIn]:
        registered = self._service.registry.get(model)
        ids = [r[0] for r in rows]
        times = [r[2] for r in rows if r[2] is not None]
        lo = min(times) if times else datetime(2000, 1, 1, tzinfo=UTC)
        hi = max(times) if times else self._now() + timedelta(days=1)
        table = self._service.store.rows_by_ids(model, ids, lo, hi)
        by_id = {row["prediction_id"]: row for row in table.to_pylist()}
        reasons = {r[0]: r[1] for r in rows}
        blind = {r[0]: bool(r[3]) for r in rows}
        tasks = []
        for pid in ids:
            row = by_id.get(pid)
            if row is None:
                continue  # sealed away beyond the recorded time? keep it queued for a later look
            tasks.append(
                TaskIn(
                    prediction_id=pid,
                    features={f: row.get(f) for f in registered.schema.features},
                    prediction=row.get("prediction"),
                    score=row.get("score"),
                    model_version=row.get("model_version") or "",
                    reason=reasons.get(pid) or "",
                    segments={s: row.get(s) for s in registered.schema.segments},
                    blind=blind.get(pid, False),
                )
            )
        return tasks

    def _note_push_error(self, model_id: int, ids: list[str], error: str) -> None:
        with self._service.db.transaction() as cur:
            cur.execute(
                "UPDATE routed_samples SET push_error = ? WHERE model_id = ? AND prediction_id IN (SELECT unnest(?))",
                [error[:1000], model_id, ids],
            ).fetchall()

    # -- pull -------------------------------------------------------------------------------------

    def poll(self, model: str | None = None) -> dict[str, int]:
        """Fallback for missed webhooks: fetch every annotation of the models' projects."""
        totals = {"labels": 0, "needs_review": 0}
        models = [model] if model else [m.name for m in self._service.registry.list()]
        for name in models:
            registered = self._service.registry.get(name)
            projects = [
                r[0]
                for r in self._service.db.query(
                    "SELECT DISTINCT project_id FROM routed_samples WHERE model_id = ? AND project_id IS NOT NULL",
                    [registered.id],
                )
            ]
            for project_id in projects:
                annotations = self.backend.resolve_annotators(self.backend.fetch_annotations(project_id))
                result = self.apply(name, annotations, replace=True)
                for key in totals:
                    totals[key] += result[key]
        return totals

    def apply(
        self,
        model: str,
        annotations: Iterable[AnnotationOut],
        deleted_ids: Iterable[int] = (),
        *,
        replace: bool = False,
    ) -> dict[str, int]:
        """See :func:`apply_annotations`."""
        return apply_annotations(self._service, model, annotations, deleted_ids, replace=replace, now=self._now)


def apply_annotations(
    service: Loopwatch,
    model: str,
    annotations: Iterable[AnnotationOut],
    deleted_ids: Iterable[int] = (),
    *,
    replace: bool = False,
    now: Clock | None = None,
) -> dict[str, int]:
    """Merge annotations into the queue records and write the resulting labels (needs no
    Label Studio connection: webhooks and polls both end here).

    ``replace`` (the poll) means ``annotations`` is the complete set for those tasks."""
    clock = now or service.now
    registered = service.registry.get(model)
    incoming: dict[str, list[AnnotationOut]] = {}
    for annotation in annotations:
        incoming.setdefault(annotation.prediction_id, []).append(annotation)
    deleted = set(deleted_ids)
    affected = set(incoming)
    if deleted:
        rows = service.db.query(
            "SELECT prediction_id, annotations FROM routed_samples WHERE model_id = ? AND annotations IS NOT NULL",
            [registered.id],
        )
        affected |= {pid for pid, anns in rows if deleted & {a["annotation_id"] for a in json.loads(anns)}}
    if not affected:
        return {"labels": 0, "needs_review": 0}
    current = {
        pid: json.loads(anns) if anns else []
        for pid, anns in service.db.query(
            "SELECT prediction_id, annotations FROM routed_samples WHERE model_id = ? AND prediction_id IN "
            "(SELECT unnest(?))",
            [registered.id, sorted(affected)],
        )
    }
    label_rows: list[dict[str, Any]] = []
    review = 0
    at = clock()
    with service.db.transaction() as cur:
        for pid in affected:
            if pid not in current:
                continue  # an annotation on a task loopwatch did not route: ignore
            merged = {} if replace and pid in incoming else {a["annotation_id"]: a for a in current[pid]}
            for ann in incoming.get(pid, []):
                merged[ann.annotation_id] = _record(ann)
            for annotation_id in deleted:
                merged.pop(annotation_id, None)
            records = sorted(merged.values(), key=lambda a: a["annotation_id"])
            votes = [a["label"] for a in records if a["label"] is not None and not a["cancelled"]]
            if votes:
                counts = Counter(votes).most_common()
                label, top = counts[0]
                tie = len(counts) > 1 and counts[1][1] == top
                agreement = top / len(votes)
                needs_review = tie or agreement < 1.0
                status = "annotated"
            else:
                label, agreement, needs_review, status = None, None, bool(records), "pushed"
            review += bool(needs_review)
            cur.execute(
                "UPDATE routed_samples SET annotations = ?, label = ?, agreement = ?, needs_review = ?, status = ?, "
                "annotated_at = CASE WHEN ? THEN ? ELSE annotated_at END WHERE model_id = ? AND prediction_id = ?",
                [
                    json.dumps(records),
                    None if label is None else str(label),
                    agreement,
                    needs_review,
                    status,
                    label is not None,
                    at,
                    registered.id,
                    pid,
                ],
            ).fetchall()
            if label is not None:
                voters = sorted(
                    {
                        a["annotator"] or f"user {a['annotator_id']}"
                        for a in records
                        if a["label"] == label and not a["cancelled"]
                    }
                )
                times = [a["updated_at"] or a["created_at"] for a in records if a["updated_at"] or a["created_at"]]
                label_rows.append(
                    {
                        "prediction_id": pid,
                        "label": label,
                        "timestamp": max(times) if times else at.isoformat(),
                        "annotator": ", ".join(voters)[:200],
                    }
                )
    if label_rows:
        table = pa.table(
            {
                "prediction_id": [r["prediction_id"] for r in label_rows],
                "label": [r["label"] for r in label_rows],
                "timestamp": [r["timestamp"] for r in label_rows],
                "annotator": [r["annotator"] for r in label_rows],
            }
        )
        result = service.store.ingest_labels(model, table, source="label_studio", authority="annotator")
        if result.conflict_ids:
            # The annotators disagree with a label of higher authority (e.g. clinical ground
            # truth): the stored label stays, and the sample is flagged for review.
            with service.db.transaction() as cur:
                flagged = cur.execute(
                    "UPDATE routed_samples SET needs_review = TRUE WHERE model_id = ? AND prediction_id IN "
                    "(SELECT unnest(?)) AND needs_review IS DISTINCT FROM TRUE",
                    [registered.id, list(result.conflict_ids)],
                ).fetchall()[0][0]
            review += int(flagged)
            log.warning(
                "%d annotations of %s disagree with a label of higher authority; kept the stored labels and "
                "flagged the samples for review",
                len(result.conflict_ids),
                model,
            )
    return {"labels": len(label_rows), "needs_review": review}


def _record(annotation: AnnotationOut) -> dict[str, Any]:
    def iso(value: datetime | None) -> str | None:
        return value.astimezone(UTC).isoformat() if value else None

    return {
        "annotation_id": annotation.annotation_id,
        "task_id": annotation.task_id,
        "label": annotation.label,
        "annotator": annotation.annotator_email,
        "annotator_id": annotation.annotator_id,
        "created_at": iso(annotation.created_at),
        "updated_at": iso(annotation.updated_at),
        "cancelled": annotation.was_cancelled,
    }
