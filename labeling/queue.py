"""The labeling queue: what was routed to annotators, why, when, and what came back.

loopwatch owns this state (Label Studio is the annotators' tool): a prediction is never routed
twice (primary key), every routed sample records its strategy, reason, finding and alert, and
budgets cap how many samples per model per day reach annotators.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow.compute as pc

from labeling.routing import (
    STRATEGIES,
    Selected,
    collapse_near_duplicates,
    drift_region,
    errors,
    long_tail,
    pick,
    random_order,
    seed_for,
    uncertainty,
    why_labels_cannot_help,
)
from monitor.clock import Clock, iso_z, utcnow
from monitor.errors import FieldError, InvalidInput
from monitor.service import Loopwatch

DEFAULT_DAILY_BUDGET = 500


MAX_ROUTE_BUDGET = 10_000  # samples one routing call may queue


@dataclass(frozen=True)
class RouteRequest:
    model: str
    strategy: str
    budget: int = 50
    start: datetime | None = None
    end: datetime | None = None
    finding_id: str | None = None
    alert_id: str | None = None
    column: str | None = None
    random_share: float = 0.1
    collapse_duplicates: bool = True
    requested_by: str = "api"
    # For `errors` samples only: None = the setting `labeling_errors_show_model_output` (default
    # False: labelled blind); other strategies always show the model's answer.
    show_model_output: bool | None = None
    # Only predictions of these segment values (e.g. a release gate's undecided slice).
    segments: dict[str, str] | None = None
    # Skip predictions that already have a label (a gate asks for *more* labelled rows).
    unlabelled_only: bool = False
    note: str | None = None  # why, prefixed to each sample's reason (e.g. "gate RUN: region=us needs 120 rows")


def is_blind(strategy: str, show_model_output: bool | None, setting: bool) -> bool:
    """Samples routed as likely errors are labelled blind unless the route or the setting
    ``labeling_errors_show_model_output`` asks to show the model's output: a pre-selected wrong
    answer invites annotators to accept it."""
    if strategy != "errors":
        return False
    return not (setting if show_model_output is None else show_model_output)


class LabelingQueue:
    def __init__(self, service: Loopwatch, now: Clock = utcnow, daily_budget: int = DEFAULT_DAILY_BUDGET) -> None:
        self._service = service
        self._now = now
        self.daily_budget = daily_budget

    def route(self, request: RouteRequest) -> dict[str, Any]:
        """Select samples and add them to the queue; returns what was queued and why."""
        service = self._service
        model = service.registry.get(request.model)
        if request.strategy not in STRATEGIES:
            raise InvalidInput(
                "routing request is not valid",
                [FieldError(field="strategy", reason=f"choose one of {list(STRATEGIES)}")],
            )
        if not 1 <= request.budget <= MAX_ROUTE_BUDGET:
            raise InvalidInput(
                "routing request is not valid",
                [FieldError(field="budget", reason=f"must be between 1 and {MAX_ROUTE_BUDGET}")],
            )
        context = self._context(request)
        start, end = context["start"], context["end"]
        remaining = self.daily_budget - self.routed_today(request.model)
        budget = min(request.budget, max(0, remaining))
        if budget == 0:
            return {
                "model": request.model,
                "strategy": request.strategy,
                "queued": 0,
                "samples": [],
                "budget_left_today": 0,
                "window": [iso_z(start), iso_z(end)],
            }
        table = service.store.scan(request.model, start, end, segments=request.segments)
        if request.unlabelled_only:
            table = table.filter(pc.is_null(table.column("label")))
        schema = model.schema
        ranked: list[Selected]
        if request.strategy == "uncertainty":
            ranked = uncertainty(table, schema.task, schema.classes)
        elif request.strategy == "errors":
            ranked = errors(table, schema.task, schema.classes)
        elif request.strategy == "drift_region":
            column = request.column or context.get("column")
            if not column:
                raise InvalidInput(
                    "routing request is not valid",
                    [
                        FieldError(
                            field="column",
                            reason="drift_region needs the drifted feature (or a finding/alert naming it)",
                        )
                    ],
                )
            ref_start, ref_end = context.get("reference") or (start - (end - start) * 7, start)
            reference = service.store.scan(request.model, ref_start, ref_end, columns=[column], with_labels=False)
            ranked = drift_region(table, reference, column)
        elif request.strategy == "long_tail":
            ranked = long_tail(table, list(schema.segments))
        else:
            ranked = []
        if request.collapse_duplicates:
            ranked = collapse_near_duplicates(table, ranked, list(schema.features))
        randoms = random_order(table, seed_for(request.model, start, end, request.strategy))
        exclude = self._already_routed(request.model, table.column("prediction_id").to_pylist())
        chosen = pick(ranked, randoms, budget, request.random_share, exclude)
        times = dict(zip(table.column("prediction_id").to_pylist(), table.column("timestamp").to_pylist(), strict=True))
        self._insert(model.id, chosen, request, times)
        return {
            "model": request.model,
            "strategy": request.strategy,
            "queued": len(chosen),
            "budget_left_today": remaining - len(chosen),
            "window": [iso_z(start), iso_z(end)],
            "samples": [
                {"prediction_id": c.prediction_id, "reason": c.reason, "priority": round(c.priority, 4)} for c in chosen
            ],
        }

    def _context(self, request: RouteRequest) -> dict[str, Any]:
        """The window (and drifted column) from the finding or alert that triggered routing."""
        service = self._service
        ctx: dict[str, Any] = {"start": request.start, "end": request.end, "column": None}
        sources = (  # the alert first: its column names the drifted feature
            (
                "alert_id",
                request.alert_id,
                "SELECT last_window_start, last_window_end, column_name, detector FROM alerts WHERE id = ?",
            ),
            (
                "finding_id",
                request.finding_id,
                "SELECT window_start, window_end, column_name, detector FROM findings WHERE id = ?",
            ),
        )
        for field, key, sql in sources:
            if not key:
                continue
            row = service.db.query_one(sql, [key])
            if row is None:
                raise InvalidInput(
                    "routing request is not valid", [FieldError(field=field, reason=f"no {field[:-3]} {key!r}")]
                )
            refusal = why_labels_cannot_help(row[3])
            if refusal is not None:
                raise InvalidInput(
                    "routing request is not valid",
                    [FieldError(field=field, reason=f"{field[:-3]} {key!r} is a {row[3]} {field[:-3]}: {refusal}")],
                )
            ctx["start"] = ctx["start"] or row[0]
            ctx["end"] = ctx["end"] or row[1]
            ctx["column"] = ctx["column"] or row[2]
        if ctx["end"] is None:
            ctx["end"] = self._now()
        if ctx["start"] is None:
            ctx["start"] = ctx["end"] - timedelta(days=1)
        if ctx["end"] <= ctx["start"]:
            raise InvalidInput("routing request is not valid", [FieldError(field="end", reason="must be after start")])
        return ctx

    def routed_today(self, model: str) -> int:
        registered = self._service.registry.get(model)
        day = self._now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        row = self._service.db.query_one(
            "SELECT count(*) FROM routed_samples WHERE model_id = ? AND routed_at >= ?", [registered.id, day]
        )
        return int(row[0]) if row else 0

    def _already_routed(self, model: str, ids: list[str]) -> set[str]:
        registered = self._service.registry.get(model)
        rows = self._service.db.query(
            "SELECT prediction_id FROM routed_samples WHERE model_id = ? AND prediction_id IN (SELECT unnest(?))",
            [registered.id, ids],
        )
        return {r[0] for r in rows}

    def _insert(self, model_id: int, chosen: list[Selected], request: RouteRequest, times: dict[str, datetime]) -> None:
        now = self._now()
        blind = is_blind(
            request.strategy, request.show_model_output, self._service.settings.labeling_errors_show_model_output
        )
        with self._service.db.transaction() as cur:
            for item in chosen:
                cur.execute(
                    "INSERT INTO routed_samples (model_id, prediction_id, strategy, reason, priority, finding_id, "
                    "alert_id, routed_at, routed_by, status, prediction_ts, blind) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?) ON CONFLICT DO NOTHING",
                    [
                        model_id,
                        item.prediction_id,
                        request.strategy,
                        f"{request.note} ({item.reason})" if request.note else item.reason,
                        item.priority,
                        request.finding_id,
                        request.alert_id,
                        now,
                        request.requested_by,
                        times.get(item.prediction_id),
                        blind,
                    ],
                ).fetchall()

    def list(self, model: str | None = None, status: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
        where = ["TRUE"]
        params: list[Any] = []  # SQL parameters: model ids and text values alike
        if model:
            where.append("r.model_id = ?")
            params.append(self._service.registry.get(model).id)
        if status:
            where.append("r.status = ?")
            params.append(status)
        out = self._service.db.query_dicts(
            "SELECT m.name AS model, r.prediction_id, r.strategy, r.reason, r.priority, r.finding_id, r.alert_id, r.routed_at, "
            "r.routed_by, r.status, r.project_id, r.task_id, r.pushed_at, r.push_error, r.annotated_at, r.label, "
            "r.agreement, r.annotations, r.needs_review, coalesce(r.blind, FALSE) AS blind FROM routed_samples r JOIN models m ON m.id = r.model_id "
            f"WHERE {' AND '.join(where)} ORDER BY r.routed_at DESC, r.priority DESC LIMIT ?",
            [*params, limit],
        )
        for item in out:
            for key in ("routed_at", "pushed_at", "annotated_at"):
                item[key] = iso_z(item[key])
            item["annotations"] = json.loads(item["annotations"]) if item["annotations"] else []
        return out

    def depth(self) -> dict[str, int]:
        rows = self._service.db.query("SELECT status, count(*) FROM routed_samples GROUP BY status")
        return {status: int(n) for status, n in rows}
