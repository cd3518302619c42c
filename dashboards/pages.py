"""The dashboard pages: each function reads precomputed results and returns a :class:`View`
(a template in ``dashboards/templates/`` and its context; see ``dashboards.html``).

Page state lives in the URL (model and feature in the path; window, segment, range and class
in the query), so every view can be linked from Slack or shared. Each data table of a page is a
:class:`~dashboards.tables.Table`: the page renders it, ``?format=csv&table=NAME`` downloads it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dashboards import figures
from dashboards.data import (
    MAX_DAYS,
    DashboardData,
    TimeRange,
    parse_range,
    parse_segment,
    segment_param,
    segment_text,
)
from dashboards.html import View, iso, part, url, utc_text
from dashboards.tables import CsvColumn, Table
from monitor.clock import parse_time
from monitor.errors import InvalidInput, NotFound
from monitor.rollups import ALL_VERSIONS

RANGES = (1, 7, 14, 30, 90)
DEFAULT_DAYS = 14
HEALTH_TEXT = {"ok": "healthy", "warning": "alerting", "critical": "critical"}


@dataclass
class Context:
    data: DashboardData
    alerts: Any  # AlertPipeline (None if alerting is not wired)
    datasets: Any  # DatasetStore
    now: datetime


def model_path(model: str) -> str:
    return f"/models/{part(model)}"


def feature_path(model: str, feature: str) -> str:
    return f"{model_path(model)}/features/{part(feature)}"


def alert_path(model: str, alert_id: str) -> str:
    return f"{model_path(model)}/alerts/{part(alert_id)}"


def report_link(model: str, start: datetime, end: datetime, ref_days: int = 7) -> str:
    return url(
        f"{model_path(model)}/report",
        start=iso(start),
        end=iso(end),
        reference_start=iso(start - timedelta(days=ref_days)),
        reference_end=iso(start),
    )


def _parse_window(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput(f"bad window in the URL: {exc}") from None


def _day(value: str) -> date:
    return date.fromisoformat(value[:10])


# -- time range: presets, or a from/to form ----------------------------------------------------


@dataclass(frozen=True)
class RangeQuery:
    """The range the URL asks for: ``from``/``to`` (dates or ISO times), ``start``/``end``
    (ISO times, used by deep links) or the last ``days`` days."""

    start: str | None = None
    end: str | None = None
    days: float | None = None
    date_from: str | None = None
    date_to: str | None = None

    @property
    def custom(self) -> bool:
        return bool(self.date_from or self.date_to or self.start or self.end)


def _bound(value: str, name: str, *, inclusive_end: bool) -> datetime:
    """A date (``2026-11-20``: midnight UTC; as the end, the end of that day) or an ISO time."""
    text = value.strip()
    try:
        if len(text) == 10:
            day = datetime.fromisoformat(text).replace(tzinfo=UTC)
            return day + timedelta(days=1) if inclusive_end else day
        return parse_time(text)
    except ValueError:
        raise ValueError(f"“{name}” must be a date such as 2026-11-20 (got “{value}”)") from None


def resolve_range(query: RangeQuery, now: datetime) -> tuple[TimeRange, str | None]:
    """The range to show and, when ``from``/``to`` are not usable, why (the page then shows the
    last ``days`` days and says so). Bad ``start``/``end`` (deep links) stay a 422."""
    if not (query.date_from or query.date_to):
        return parse_range(query.start, query.end, query.days, now, DEFAULT_DAYS), None
    fallback = parse_range(None, None, query.days, now, DEFAULT_DAYS)
    try:
        hi = _bound(query.date_to, "to", inclusive_end=True) if query.date_to else now
        lo = (
            _bound(query.date_from, "from", inclusive_end=False)
            if query.date_from
            else hi - timedelta(days=DEFAULT_DAYS)
        )
    except ValueError as exc:
        return fallback, f"{exc}. Showing the last {_days_text(fallback)} instead."
    if lo >= hi:
        return fallback, (
            f"“from” ({query.date_from}) must be before “to” ({query.date_to}). "
            f"Showing the last {_days_text(fallback)} instead."
        )
    if hi - lo > timedelta(days=MAX_DAYS):
        return fallback, f"At most {MAX_DAYS} days per page. Showing the last {_days_text(fallback)} instead."
    return TimeRange(lo, hi), None


def _days_text(span: TimeRange) -> str:
    days = _days_param(span)
    return f"{days} day" if days == "1" else f"{days} days"


def range_picker(base: str, span: TimeRange, query: RangeQuery, error: str | None, **keep: Any) -> dict[str, Any]:
    """The range controls: preset links (keep ``keep``), and the from/to form filled with the
    range shown (``to`` is inclusive, so a range ending at midnight shows the day before)."""
    presets = [
        {
            "label": f"{d}d",
            "href": url(base, days=d, **keep),
            "active": not query.custom and not error and abs(span.days - d) < 0.01,
        }
        for d in RANGES
    ]
    last_day = (span.end - timedelta(microseconds=1)).date()
    return {
        "presets": presets,
        "action": base,
        "hidden": [(k, v) for k, v in keep.items() if v not in (None, "")],
        "custom": query.custom and not error,
        "date_from": (query.date_from or "")[:10] if error else span.start.date().isoformat(),
        "date_to": (query.date_to or "")[:10] if error else last_day.isoformat(),
        "error": error,
    }


def range_params(query: RangeQuery, span: TimeRange, error: str | None) -> dict[str, Any]:
    """The query parameters that reproduce this range on another page."""
    if query.custom and not error:
        return {"from": query.date_from, "to": query.date_to, "start": query.start, "end": query.end}
    return {"days": _days_param(span)}


# -- models ----------------------------------------------------------------------------------


def models_page(ctx: Context) -> View:
    rows = [
        {
            **m,
            "path": model_path(m["name"]),
            "health_text": HEALTH_TEXT[m["health"]],
            "labeling": url("/labeling", model=m["name"]),
            "report": report_link(m["name"], ctx.now - timedelta(days=1), ctx.now),
        }
        for m in ctx.data.models_health(ctx.now)
    ]
    table = Table(
        "models",
        ["Model", "Health", "Open alerts", "Last run", "Predictions (24h)", "Label coverage (7d)", ""],
        rows,
        [
            CsvColumn("model", lambda m: m["name"]),
            CsvColumn("task", lambda m: m["task"]),
            CsvColumn("description", lambda m: m["description"]),
            CsvColumn("health", lambda m: m["health_text"]),
            CsvColumn("firing_alerts", lambda m: m["firing"]),
            CsvColumn("pending_alerts", lambda m: m["pending"]),
            CsvColumn("last_run", lambda m: iso(m["last_run"])),
            CsvColumn("last_run_status", lambda m: m["last_run_status"]),
            CsvColumn("predictions_24h", lambda m: m["volume_24h"]),
            CsvColumn("label_coverage_7d", lambda m: m["label_coverage_7d"]),
        ],
        "No models registered yet: `loopwatch models register FILE` (or `loopwatch demo`).",
        "models",
    )
    return View("models.html", "Models", {}, tables={"models": table}, csv_name="loopwatch-models")


# -- model overview --------------------------------------------------------------------------


def _classes(schema: Any) -> list[str]:
    return list(schema.classes or [])


def _metric_roles(schema: Any, chosen: str | None) -> tuple[dict[str, str], str | None]:
    if schema.task == "binary":
        return {m: m for m in ("fpr", "fnr", "precision", "recall")}, None
    if schema.task == "multiclass":
        classes = _classes(schema)
        cls = chosen if chosen in classes else (classes[1] if len(classes) > 1 else classes[0])
        return {f"{m}:{cls}": m for m in ("fpr", "fnr", "precision", "recall")}, cls
    return {}, None


def performance_monitor_example(model: str, schema: Any) -> str:
    """The YAML a user adds to get FP/FN charts (the empty state shows it)."""
    params = "{min_coverage: 0.1}"
    lines = [
        f"model: {model}",
        "monitors:",
        "  - name: quality",
        "    detector: performance",
        "    every: 1d",
        "    window: 1d",
        "    reference: {kind: trailing, length: 7d}",
        f"    params: {params}",
    ]
    if schema.task == "regression":
        lines.insert(6, "    # regression: the detector judges the error metrics")
    return "\n".join(lines)


def overview_page(ctx: Context, model: str, *, query: RangeQuery | None = None, cls: str | None = None) -> View:
    query = query or RangeQuery()
    registered = ctx.data.service.registry.get(model)
    schema = registered.schema
    span, range_error = resolve_range(query, ctx.now)
    data = ctx.data
    data.rollups.ensure(model)
    base = model_path(model)
    keep = range_params(query, span, range_error)
    view = View(
        "overview.html",
        model,
        {},
        crumbs=[("Models", "/models"), (model, None)],
        csv_name=f"loopwatch-{model}",
        status=422 if range_error else 200,
    )

    # volume and latency from the hourly rollups
    by_version = data.rollups.hourly(model, _floor_hour(span.start), span.end, versions=True)
    overall = data.rollups.hourly(model, _floor_hour(span.start), span.end)
    view.chart(
        "volume", figures.volume_figure(by_version, daily=span.days > 21), "fig-volume", "No data in this window."
    )
    latency_monitor = data.monitor_for(model, "latency")
    latency_findings = data.series(model, latency_monitor, span, metrics=["p50", "p95", "p99"], details=False)
    versions = data.versions(model)
    view.chart(
        "latency",
        figures.latency_figure(overall, latency_findings, versions, span.start, span.end),
        "fig-latency",
        "No latency logged in this window.",
    )

    # quality from performance findings; coverage per day from the rollups. Without a
    # performance monitor there is nothing to chart but coverage: say how to add one instead.
    roles, chosen_cls = _metric_roles(schema, cls)
    perf_monitor = data.monitor_for(model, "performance")
    if perf_monitor is not None or not roles:
        perf = data.series(model, perf_monitor, span, metrics=list(roles)) if roles else []
        labelled = sum(r.labels for r in overall)
        if not labelled and not perf:
            view.chart("quality", None, "fig-quality", "No labels yet: FP/FN rates appear once ground truth arrives.")
        else:
            view.chart(
                "quality",
                figures.performance_figure(perf, roles, _daily_coverage(overall)),
                "fig-quality",
                "No labels in this window.",
            )

    estimated_monitor = data.monitor_for(model, "estimated_performance")
    if estimated_monitor is not None:
        view.chart(
            "estimated",
            figures.estimated_figure(data.series(model, estimated_monitor, span)),
            "fig-estimated",
            "No estimated windows in this range.",
        )
    joint_monitor = data.monitor_for(model, "multivariate_drift")
    if joint_monitor is not None:
        view.chart(
            "joint",
            figures.multivariate_figure(data.series(model, joint_monitor, span, metrics=["reconstruction_error"])),
            "fig-joint-drift",
            "No joint-drift windows in this range.",
        )

    # drift heatmap from drift findings
    drift_monitor = data.monitor_for(model, "data_drift")
    grid = data.drift_grid(model, drift_monitor, span)
    prefixes = {f: feature_path(model, f) + "?window=" for f in schema.features}
    suffix = "&" + urlencode({"days": _days_param(span)})

    def cell_url(feature: str, window_end: datetime) -> str:  # thousands of cells: keep it cheap
        prefix = prefixes.get(feature) or feature_path(model, feature) + "?window="
        return prefix + window_end.strftime("%Y-%m-%dT%H:%M:%SZ") + suffix

    view.chart(
        "drift",
        figures.drift_heatmap(grid, cell_url),
        "fig-drift",
        "No drift monitor yet (detector: data_drift)."
        if drift_monitor is None
        else "No drift findings in this window.",
    )

    alerts = data.model_alerts(ctx.alerts, model, limit=50)
    active = [{**a, "path": alert_path(model, a["id"])} for a in alerts if a["state"] in ("firing", "pending")]
    view.tables["alerts"] = Table(
        "alerts",
        ["Alert", "Severity", "State", "What changed", "Since", ""],
        active,
        [
            CsvColumn("alert_id", lambda a: a["id"]),
            CsvColumn("title", lambda a: a["title"]),
            CsvColumn("severity", lambda a: a["severity"]),
            CsvColumn("state", lambda a: a["state"]),
            CsvColumn("what_changed", lambda a: a["what_changed"]),
            CsvColumn("since", lambda a: iso(a["fired_at"] or a["started_at"])),
            CsvColumn("acknowledged_by", lambda a: a["acked_by"]),
            CsvColumn("page", lambda a: a["path"]),
        ],
        "No open alerts.",
    )
    class_links = []
    if schema.task == "multiclass":
        class_links = [
            {"label": c, "active": c == chosen_cls, "href": url(base, cls=c, **keep)} for c in _classes(schema)
        ]
    totals = data.rollups.totals(model, _floor_hour(span.start), span.end)
    view.context.update(
        model=model,
        schema=schema,
        span=span,
        range=range_picker(base, span, query, range_error, cls=cls),
        totals=totals,
        report=report_link(model, span.end - timedelta(days=1), span.end),
        labeling=url("/labeling", model=model),
        class_links=class_links,
        perf_missing=perf_monitor is None and bool(roles),
        perf_example=performance_monitor_example(model, schema),
        features=[(f, url(feature_path(model, f), **keep)) for f in schema.features],
    )
    return view


def _floor_hour(at: datetime) -> datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _days_param(span: TimeRange) -> str:
    return f"{span.days:g}" if abs(span.days - round(span.days)) > 1e-9 else str(round(span.days))


def _daily_coverage(rows: list[Any]) -> list[tuple[datetime, float]]:
    days: dict[datetime, list[int]] = {}
    for r in rows:
        if r.model_version != ALL_VERSIONS:
            continue
        d = r.hour.replace(hour=0)
        acc = days.setdefault(d, [0, 0])
        acc[0] += r.predictions
        acc[1] += r.labels
    return [(d, lab / n) for d, (n, lab) in sorted(days.items()) if n]


# -- feature ---------------------------------------------------------------------------------


def feature_page(
    ctx: Context,
    model: str,
    feature: str,
    *,
    window: str | None = None,
    segment: str | None = None,
    query: RangeQuery | None = None,
    monitor: str | None = None,
) -> View:
    query = query or RangeQuery()
    registered = ctx.data.service.registry.get(model)
    if feature not in registered.schema.features:
        raise NotFound(f"model {model!r} has no feature {feature!r}")
    span, range_error = resolve_range(query, ctx.now)
    seg = parse_segment(segment)
    selected = _parse_window(window)
    data = ctx.data
    # The monitor that watches this feature (firing alerts on it first), not the first by name.
    choice = data.feature_drift_monitors(model, feature, span, wanted=monitor)
    monitor = choice.chosen
    any_drift_monitor = data.monitor_for(model, "data_drift") is not None
    series = data.series(model, monitor, span, column=feature, segment=seg)
    by_end = {f["window_end"]: f for f in series}
    if selected is None and series:
        selected = series[-1]["window_end"]
    chosen = by_end.get(selected) if selected else None
    if chosen is None and selected is not None:
        # a deep link to a window outside the range: read that window's finding directly
        around = TimeRange(selected - timedelta(seconds=1), selected + timedelta(seconds=1))
        extra = [
            f for f in data.series(model, monitor, around, column=feature, segment=seg) if f["window_end"] == selected
        ]
        chosen = extra[0] if extra else None
    base = feature_path(model, feature)
    keep = range_params(query, span, range_error)

    pinned = monitor if len(choice.candidates) > 1 else None  # kept in links only when there is a choice

    def window_url(w: datetime) -> str:
        return url(base, window=iso(w), segment=segment, monitor=pinned, **keep)

    def segment_url(s: dict[str, Any] | None) -> str:
        return url(base, window=iso(selected), segment=segment_param(s), monitor=pinned, **keep)

    view = View(
        "feature.html",
        f"{model} · {feature}",
        {},
        crumbs=[("Models", "/models"), (model, model_path(model)), (feature, None)],
        csv_name=f"loopwatch-{model}-{feature}",
        status=422 if range_error else 200,
    )
    view.chart(
        "score",
        figures.drift_score_figure(series, selected, window_url),
        "fig-score",
        (
            f"No drift monitor watches {feature} (its data_drift monitors list other columns)."
            if any_drift_monitor
            else "No drift monitor yet (detector: data_drift)."
        )
        if monitor is None
        else f"No drift findings for {feature} ({segment_text(seg)}) from monitor {monitor} in this range.",
    )
    view.chart(
        "distribution",
        figures.distribution_figure(chosen["details"]) if chosen else None,
        "fig-distribution",
        "No data in this window." if chosen is None else "No distribution recorded for this window.",
    )
    breakdown = data.segment_breakdown(model, monitor, feature, selected) if selected else []
    view.chart(
        "segments",
        figures.segment_figure(breakdown, segment_url),
        "fig-segments",
        "No per-segment results in this window (the monitor judges segments listed under segments:).",
    )
    summary = None
    if chosen:
        d = chosen["details"]
        extras = [
            (label, d[key])
            for key, label in (("reference_mean", "Reference mean"), ("current_mean", "Current mean"))
            if d.get(key) is not None
        ]
        summary = {
            "finding": chosen,
            "method": d.get("method_display_name") or chosen["metric"],
            "extras": extras,
            "new_categories": ", ".join(map(str, d.get("new_categories") or [])),
            "report": report_link(model, _aware(chosen["window_start"]), _aware(chosen["window_end"])),
        }
    segment_links = [{"label": "all traffic", "active": seg is None, "href": segment_url(None)}] + [
        {"label": segment_text(r["segment"]), "active": seg == r["segment"], "href": segment_url(r["segment"])}
        for r in breakdown
    ]
    view.context.update(
        model=model,
        feature=feature,
        kind=registered.schema.features[feature],
        segment_label=segment_text(seg),
        range=range_picker(base, span, query, range_error, segment=segment),
        window_options=[
            {"value": iso(f["window_end"]), "status": f["status"], "selected": f["window_end"] == selected}
            for f in reversed(series[-500:])
        ],
        window_hidden=[(k, v) for k, v in {"segment": segment, "monitor": pinned, **keep}.items() if v],
        monitor=monitor,
        monitor_links=[
            {
                "label": c.name
                + (f" · {c.firing} firing" if c.firing else "")
                + ("" if c.configured else " (deleted)"),
                "active": c.name == monitor,
                "href": url(base, segment=segment, monitor=c.name, **keep),
            }
            for c in choice.candidates
        ]
        if len(choice.candidates) > 1
        else [],
        action=base,
        summary=summary,
        segment_links=segment_links,
    )
    return view


def _aware(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_time(value)


# -- alert -----------------------------------------------------------------------------------

BAD_STATUSES = ("warning", "critical", "no_data", "error")
KIND_TEXT = {"new": "new alert", "resolved": "resolved", "repeat": "reminder", "update": "update"}


@dataclass(frozen=True)
class EventText:
    """One timeline event in words: a title, a detail line and the badge status."""

    title: str
    detail: str
    status: str


def _kind(kind: Any) -> str:
    return KIND_TEXT.get(str(kind), str(kind).replace("_", " "))


def _clock(value: Any, at: datetime | None) -> str:
    """``HH:MM UTC`` (with the date when it is not the event's day)."""
    try:
        moment = parse_time(value)
    except (TypeError, ValueError):
        return str(value)
    if at is not None and moment.date() == at.date():
        return moment.strftime("%H:%M UTC")
    return utc_text(iso(moment) or "")


def describe_event(event: str, details: dict[str, Any] | None, at: Any = None) -> EventText:
    """An alert timeline event (``monitor/alerting``'s names) in human words."""
    details = dict(details or {})
    at_time = parse_time(at) if isinstance(at, str | datetime) else None
    name, _, qualifier = event.partition(":")
    if name == "notification_queued":
        when_text = f"Will notify after {_clock(details['not_before'], at_time)}" if details.get("not_before") else ""
        return EventText(f"Notification queued ({_kind(qualifier or 'new')})", when_text, "info")
    if name == "pending":
        return EventText(
            "Pending: a bad window, waiting for more before firing", str(details.get("line") or ""), "warning"
        )
    if name in ("fired", "firing"):
        return EventText("Fired", str(details.get("line") or ""), "critical")
    if name == "resolved":
        return EventText("Resolved: the windows are good again", "", "ok")
    if name == "cleared":
        return EventText("Cleared before it fired", "", "ok")
    if name == "acknowledged":
        return EventText("Acknowledged", "", "ok")
    if name == "silenced":
        detail = f"silence {details['silence_id']}" if details.get("silence_id") else ""
        return EventText(f"Notification held: silenced ({_kind(details.get('kind', 'new'))})", detail, "info")
    if name == "inhibited":
        why = "the model sends no data (a freshness alert is firing)" if details.get("by") == "no_data" else ""
        return EventText(f"Notification held back ({_kind(details.get('kind', 'new'))})", why, "info")
    if name == "notification_failed":
        return EventText("Notification failed, not retried", str(details.get("error") or ""), "critical")
    if name == "notification_reconciled":
        return EventText("Notification was already posted: adopted, not re-sent", "", "info")
    if name == "samples_requested":
        return EventText("Samples requested for labeling", _generic_details(details), "info")
    if name == "samples_not_routed":
        return EventText("No samples routed for labeling", str(details.get("reason") or ""), "info")
    title = event.replace("_", " ").replace(":", " — ")
    return EventText(title[:1].upper() + title[1:], _generic_details(details), "info")


def _generic_details(details: dict[str, Any]) -> str:
    keep = {k: v for k, v in details.items() if k not in ("run_id", "group_id")}
    return ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in list(keep.items())[:4])


def evidence_start(series: list[dict[str, Any]], last_window_end: Any) -> tuple[datetime | None, bool]:
    """Where the evidence began: the start of the first window of the run of bad windows that
    ends at (or last before) the alert's window. The flag says the run reaches the earliest
    window read, so the evidence may have begun earlier still."""
    limit = _aware(last_window_end) if last_window_end else None
    rows = sorted(
        (f for f in series if limit is None or _aware(f["window_end"]) <= limit),
        key=lambda f: _aware(f["window_end"]),
    )
    start: datetime | None = None
    reached_first = False
    for i in range(len(rows) - 1, -1, -1):
        bad = rows[i]["status"] in BAD_STATUSES
        if bad:
            start = _aware(rows[i]["window_start"])
            reached_first = i == 0
        elif start is not None:
            break
    return start, reached_first


def alert_page(ctx: Context, model: str, alert_id: str) -> View:
    if ctx.alerts is None:
        raise NotFound("alerting is not configured")
    alert = ctx.alerts.alerts.get(alert_id)
    if alert["model"] != model:
        raise NotFound(f"alert {alert_id} belongs to model {alert['model']!r}, not {model!r}")
    from monitor.alerting.silences import alert_labels

    silence = ctx.alerts.silences.silencing(alert)
    events = ctx.alerts.alerts.events(alert_id)
    data = ctx.data
    finding = data.finding_for_alert(alert)
    view = View(
        "alert.html",
        f"Alert · {alert['title']}",
        {},
        crumbs=[("Models", "/models"), (model, model_path(model)), ("alert", None)],
        csv_name=f"loopwatch-{model}-alert-{alert_id}",
    )
    evidence = dist = None
    began: datetime | None = None
    began_earlier = False
    if finding is not None:
        length = finding["window_end"] - finding["window_start"]
        around = TimeRange(finding["window_end"] - length * 30, finding["window_end"] + length * 6)
        series = data.series(
            model,
            alert["monitor"],
            around,
            metrics=[alert["metric"]],
            column=alert["column"],
            segment=alert["segment"],
        )
        evidence = figures.evidence_figure(series, alert)
        dist = figures.distribution_figure(finding["details"])
        began, began_earlier = evidence_start(series, alert["last_window_end"])
    view.chart(
        "evidence", evidence, "fig-evidence", "No findings recorded for this alert's window (e.g. a failed run)."
    )
    if dist is not None:
        view.chart("distribution", dist, "fig-distribution", "")
    labels = alert_labels(alert)
    series_matchers = {k: v for k, v in labels.items() if k not in ("alert_id", "severity")}
    scopes = [("this alert", {"alert_id": alert["id"]}), ("this series (future alerts too)", series_matchers)]
    routed = data.labeling_summary(model, alert_id, ctx.now)
    runbook = (alert.get("route") or {}).get("runbook")
    deliveries = []
    for delivery in ctx.alerts.deliveries(alert_id):
        where = f"{delivery.receiver} {delivery.channel}: message {delivery.message_state}"
        where += f" (group of {delivery.alerts} alert{'s' if delivery.alerts != 1 else ''})"
        if delivery.last_error:
            where += f" — last error: {delivery.last_error}"
        deliveries.append(where)
    timeline = []
    for ev in events:
        text = describe_event(ev["event"], ev["details"], ev["at"])
        timeline.append({**ev, "text": text})
    view.tables["timeline"] = Table(
        "timeline",
        ["When", "Event", "Who", "Details"],
        timeline,
        [
            CsvColumn("at", lambda ev: ev["at"]),
            CsvColumn("event", lambda ev: ev["text"].title),
            CsvColumn("details", lambda ev: ev["text"].detail),
            CsvColumn("who", lambda ev: ev["actor"]),
            CsvColumn("event_code", lambda ev: ev["event"]),
        ],
        "No events yet.",
        "timeline",
    )
    feature_link = None
    if alert["column"] and alert["detector"] == "data_drift":
        feature_link = url(
            feature_path(model, alert["column"]),
            window=alert["last_window_end"],
            segment=segment_param(alert["segment"]),
        )
    view.context.update(
        alert=alert,
        model=model,
        state_cls={"firing": "critical", "pending": "warning", "resolved": "ok"}.get(alert["state"], ""),
        can_ack=alert["state"] != "resolved" and not alert["acked_by"],
        silence=silence,
        segment_label=segment_text(alert["segment"]),
        scopes=[(label, json.dumps(m)) for label, m in scopes],
        evidence_began=began,
        evidence_began_earlier=began_earlier,
        deliveries=deliveries,
        routed_count=sum(routed["depth"].values()),
        routed_link=url("/labeling", model=model, alert=alert_id),
        queue_link=url("/v1/labeling/queue", model=model),
        feature_link=feature_link,
        report=report_link(model, finding["window_start"], finding["window_end"]) if finding is not None else None,
        runbook=runbook if isinstance(runbook, str) and runbook.startswith(("https://", "http://")) else None,
        ack_path=f"/v1/alerts/{part(alert_id)}/ack",
    )
    return view


# -- labeling --------------------------------------------------------------------------------


def labeling_page(ctx: Context, model: str | None = None, alert: str | None = None) -> View:
    if model:
        ctx.data.service.registry.get(model)  # 404 for an unknown model
    s = ctx.data.labeling_summary(model, alert, ctx.now)
    depth = s["depth"]
    total = sum(depth.values())
    annotated = sum(n for _, n, _ in s["annotated_per_day"])
    agreement = s["agreement"]
    mean_agreement = sum(agreement) / len(agreement) if agreement else None
    view = View(
        "labeling.html",
        "Labeling",
        {},
        crumbs=[("Models", "/models"), *([(model, model_path(model))] if model else []), ("labeling", None)],
        csv_name="-".join(x for x in ("loopwatch-labeling", model or "", alert or "") if x),
    )
    view.chart("depth", figures.queue_depth_figure(depth), "fig-depth", "Nothing routed yet.")
    view.chart(
        "throughput",
        figures.throughput_figure(s["routed_per_day"], s["annotated_per_day"]),
        "fig-throughput",
        "No routing or annotations in the last days.",
    )
    view.chart("agreement", figures.agreement_figure(agreement), "fig-agreement", "No annotations yet.")
    recent = [
        {
            "model": m,
            "prediction_id": pid,
            "strategy": strategy,
            "reason": reason,
            "status": status,
            "routed_at": routed_at,
            "label": label,
            "agreement": agr,
            "alert_id": a,
            "alert_path": alert_path(m, a) if a else None,
            "blind": blind,
        }
        for m, pid, strategy, reason, status, routed_at, label, agr, a, blind in s["recent"]
    ]
    conflicts = [
        {
            **c,
            "disagreeing": "; ".join(
                f"{x['label']} ({x['authority']}{', ' + x['annotator'] if x['annotator'] else ''})"
                for x in c["conflicting"]
            ),
            "history": "/v1/models/" + part(c["model"]) + "/labels/" + part(c["prediction_id"]) + "/history",
            "candidates": _review_candidates(c),
        }
        for c in s["conflicts"]
    ]
    datasets = [
        {
            **d,
            "version_text": ", ".join(f"v{v}" for v in d["versions"]),
            "manifest": "/v1/datasets/" + part(d["name"]) + "/versions/" + str(d["latest"]),
        }
        for d in (ctx.datasets.list() if ctx.datasets is not None else [])
        if not model or d["model"] == model
    ]
    view.tables["conflicts"] = Table(
        "conflicts",
        ["Model", "Prediction", "Kept label", "Disagreeing", "Labelled", "", "Review"],
        conflicts,
        [
            CsvColumn("model", lambda c: c["model"]),
            CsvColumn("prediction_id", lambda c: c["prediction_id"]),
            CsvColumn("kept_label", lambda c: c["label"]),
            CsvColumn("kept_authority", lambda c: c["authority"]),
            CsvColumn("disagreeing", lambda c: c["disagreeing"]),
            CsvColumn("labelled_at", lambda c: iso(c["received_at"])),
        ],
        "No label conflicts.",
    )
    view.tables["recent"] = Table(
        "recent",
        ["Model", "Prediction", "Strategy", "Reason", "Status", "Routed", "Label", "Agreement", ""],
        recent,
        [
            CsvColumn("model", lambda r: r["model"]),
            CsvColumn("prediction_id", lambda r: r["prediction_id"]),
            CsvColumn("strategy", lambda r: r["strategy"]),
            CsvColumn("blind", lambda r: bool(r["blind"])),
            CsvColumn("reason", lambda r: r["reason"]),
            CsvColumn("status", lambda r: r["status"]),
            CsvColumn("routed_at", lambda r: iso(r["routed_at"])),
            CsvColumn("label", lambda r: r["label"]),
            CsvColumn("agreement", lambda r: r["agreement"]),
            CsvColumn("alert_id", lambda r: r["alert_id"]),
        ],
        "Nothing routed yet.",
    )
    view.tables["datasets"] = Table(
        "datasets",
        ["Name", "Model", "Versions", "Rows (latest)", "Built", ""],
        datasets,
        [
            CsvColumn("name", lambda d: d["name"]),
            CsvColumn("model", lambda d: d["model"]),
            CsvColumn("versions", lambda d: d["version_text"]),
            CsvColumn("rows_latest", lambda d: d["rows"]),
            CsvColumn("built_at", lambda d: iso(d["created_at"])),
            CsvColumn("manifest", lambda d: d["manifest"]),
        ],
        "No datasets built yet.",
    )
    view.context.update(
        model=model,
        alert=alert,
        tiles=[
            ("Routed (all time)", total, None),
            (
                "Waiting in queue",
                sum(n for st, n in depth.items() if st not in ("annotated", "applied", "done")),
                None,
            ),
            (f"Annotated ({s['days']}d)", annotated, None),
            ("Mean agreement", None, mean_agreement),
            ("Label conflicts", len(s["conflicts"]), None),
        ],
    )
    return view


def _review_candidates(conflict: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One button per candidate label of a conflict: keep the stored one, or take a disagreeing
    one; each records a `review` label (a key with scope ingest or admin is needed). Returns
    (verb, label shown, label as JSON)."""
    kept = conflict["label"]
    numeric = isinstance(kept, int | float) and not isinstance(kept, bool)
    candidates: list[tuple[str, Any]] = [("Keep", kept)]
    seen = {str(kept)}
    for other in conflict["conflicting"]:
        value = other["label"]
        if str(value) in seen:
            continue
        seen.add(str(value))
        if numeric:
            try:
                value = float(value)
            except (TypeError, ValueError):
                continue
        candidates.append(("Use", value))
    return [(verb, str(value), json.dumps(value)) for verb, value in candidates]


# -- report ----------------------------------------------------------------------------------


def report_page(
    ctx: Context,
    model: str,
    *,
    start: str | None = None,
    end: str | None = None,
    reference_start: str | None = None,
    reference_end: str | None = None,
) -> View:
    ctx.data.service.registry.get(model)
    try:
        hi = parse_time(end) if end else _floor_hour(ctx.now)
        lo = parse_time(start) if start else hi - timedelta(days=1)
        ref_hi = parse_time(reference_end) if reference_end else lo
        ref_lo = parse_time(reference_start) if reference_start else ref_hi - timedelta(days=7)
    except ValueError as exc:
        raise InvalidInput(f"bad time in the URL: {exc}") from None
    if lo >= hi or ref_lo >= ref_hi:
        raise InvalidInput("each window's start must be before its end")
    src = url(
        f"/v1/models/{part(model)}/report",
        start=iso(lo),
        end=iso(hi),
        reference_start=iso(ref_lo),
        reference_end=iso(ref_hi),
    )
    fields = [
        ("start", "Current from", iso(lo)),
        ("end", "to", iso(hi)),
        ("reference_start", "Reference from", iso(ref_lo)),
        ("reference_end", "to", iso(ref_hi)),
    ]
    return View(
        "report.html",
        f"{model} · report",
        {"model": model, "src": src, "fields": fields, "lo": lo, "hi": hi, "ref_lo": ref_lo, "ref_hi": ref_hi},
        crumbs=[("Models", "/models"), (model, model_path(model)), ("report", None)],
    )


# -- release gates -----------------------------------------------------------------------------

GATE_BADGE = {"ship": "ok", "no_ship": "critical", "insufficient_evidence": "warning"}


def gate_path(run_id: str) -> str:
    return f"/gates/{part(run_id)}"


def gates_page(runs: list[dict[str, Any]], model: str | None = None) -> View:
    """Every gate run made through the API, newest first: verdict, what failed, what would decide
    it; each links to its report page (the run's report.html)."""
    rows = []
    for run in runs:
        failing = run["failing"]
        requests = run["sample_requests"]
        rows.append(
            {
                **run,
                "path": gate_path(run["id"]),
                "model_path": model_path(run["model"]),
                "verdict_text": run["verdict"].replace("_", " "),
                "verdict_badge": GATE_BADGE.get(run["verdict"], "unknown"),
                "counts": run["summary"],
                "failing_text": "; ".join(failing[:3]) + (f" (+{len(failing) - 3} more)" if len(failing) > 3 else ""),
                "needs": ", ".join(
                    f"{r['rows']} in {'all' if r['slice'] == 'all' else r['slice'] + '=' + r['value']}"
                    for r in requests[:3]
                ),
            }
        )
    table = Table(
        "gates",
        ["Gate", "Verdict", "Model", "Dataset", "Judgements", "Failing", "Would decide it", "When"],
        rows,
        [
            CsvColumn("gate", lambda r: r["gate"]),
            CsvColumn("run_id", lambda r: r["id"]),
            CsvColumn("verdict", lambda r: r["verdict"]),
            CsvColumn("model", lambda r: r["model"]),
            CsvColumn("dataset", lambda r: r["dataset"]),
            CsvColumn("passed", lambda r: r["counts"]["pass"]),
            CsvColumn("failed", lambda r: r["counts"]["fail"]),
            CsvColumn("undecided", lambda r: r["counts"]["insufficient"]),
            CsvColumn("failing", lambda r: "; ".join(r["failing"])),
            CsvColumn("would_decide_it", lambda r: r["needs"]),
            CsvColumn("generated_at", lambda r: iso(r["generated_at"])),
        ],
        "No gate runs yet: POST /v1/gates, or `loopwatch gate evaluate` for a local report (docs/gates.md).",
        "gates",
    )
    return View(
        "gates.html",
        "Release gates",
        {"model": model},
        crumbs=[("Release gates", None)],
        tables={"gates": table},
        csv_name="-".join(x for x in ("loopwatch-gates", model or "") if x),
    )
