"""The dashboard pages: each function reads precomputed results and returns one HTML document.

Page state lives in the URL (model and feature in the path; window, segment, range and class
in the query), so every view can be linked from Slack or shared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from dashboards import figures
from dashboards.data import DashboardData, TimeRange, parse_range, parse_segment, segment_param, segment_text
from dashboards.html import Page, badge, e, iso, number, part, pct, table, url, when
from monitor.clock import parse_time
from monitor.errors import InvalidInput, NotFound
from monitor.rollups import ALL_VERSIONS

RANGES = (1, 7, 14, 30, 90)
ACTIVE = ' class="active"'


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


def _range_links(base: str, current: TimeRange, **keep: Any) -> str:
    links = []
    for d in RANGES:
        active = abs(current.days - d) < 0.01
        cls = ACTIVE if active else ""
        links.append(f'<a{cls} href="{e(url(base, days=d, **keep))}">{d}d</a>')
    return '<div class="ranges">Range: ' + " ".join(links) + "</div>"


def _parse_window(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise InvalidInput(f"bad window in the URL: {exc}") from None


# -- models ----------------------------------------------------------------------------------


def models_page(ctx: Context) -> str:
    page = Page("Models")
    rows = []
    for m in ctx.data.models_health(ctx.now):
        alerts = []
        if m["firing"]:
            alerts.append(f'<a href="{e(model_path(m["name"]))}#alerts">{m["firing"]} firing</a>')
        if m["pending"]:
            alerts.append(f"{m['pending']} pending")
        run = when(m["last_run"], "never")
        if m["last_run_status"]:
            run += " " + badge("ok" if m["last_run_status"] == "succeeded" else "critical", m["last_run_status"])
        rows.append(
            [
                f'<a class="model" href="{e(model_path(m["name"]))}">{e(m["name"])}</a>'
                f'<div class="muted">{e(m["description"] or m["task"])}</div>',
                badge(m["health"], {"ok": "healthy", "warning": "alerting", "critical": "critical"}[m["health"]]),
                ", ".join(alerts) or '<span class="muted">none</span>',
                run,
                number(m["volume_24h"]),
                pct(m["label_coverage_7d"])
                if m["label_coverage_7d"] is not None
                else '<span class="muted">no labels yet</span>',
                f'<a href="{e(model_path(m["name"]))}">overview</a> · '
                f'<a href="{e(url("/labeling", model=m["name"]))}">labeling</a> · '
                f'<a href="{e(report_link(m["name"], ctx.now - timedelta(days=1), ctx.now))}">report</a>',
            ]
        )
    body = "<h1>Models</h1>" + table(
        ["Model", "Health", "Open alerts", "Last run", "Predictions (24h)", "Label coverage (7d)", ""],
        rows,
        "No models registered yet: `loopwatch models register FILE` (or `loopwatch demo`).",
        "models",
    )
    return page.render(body)


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


def overview_page(
    ctx: Context,
    model: str,
    *,
    start: str | None = None,
    end: str | None = None,
    days: float | None = None,
    cls: str | None = None,
) -> str:
    registered = ctx.data.service.registry.get(model)
    schema = registered.schema
    span = parse_range(start, end, days, ctx.now)
    data = ctx.data
    data.rollups.ensure(model)
    page = Page(model)
    base = model_path(model)
    keep = {"cls": cls}

    # volume and latency from the hourly rollups
    by_version = data.rollups.hourly(model, _floor_hour(span.start), span.end, versions=True)
    overall = data.rollups.hourly(model, _floor_hour(span.start), span.end)
    volume = figures.volume_figure(by_version, daily=span.days > 21)
    latency_monitor = data.monitor_for(model, "latency")
    latency_findings = data.series(model, latency_monitor, span, metrics=["p50", "p95", "p99"], details=False)
    versions = data.versions(model)
    latency = figures.latency_figure(overall, latency_findings, versions, span.start, span.end)

    # quality from performance findings; coverage per day from the rollups
    roles, chosen_cls = _metric_roles(schema, cls)
    perf_monitor = data.monitor_for(model, "performance")
    perf = data.series(model, perf_monitor, span, metrics=list(roles)) if roles else []
    coverage = _daily_coverage(overall)
    labelled = sum(r.labels for r in overall)
    if not labelled and not perf:
        quality = page.figure(None, "fig-quality", "No labels yet: FP/FN rates appear once ground truth arrives.")
    else:
        quality = page.figure(
            figures.performance_figure(perf, roles, coverage), "fig-quality", "No labels in this window."
        )
    quality_note = ""
    if perf_monitor is None and roles:
        quality_note = (
            '<p class="muted">No performance monitor yet (detector: performance): showing label coverage only.</p>'
        )

    # estimated performance (before labels) and joint drift, where those monitors exist
    estimated_html = ""
    estimated_monitor = data.monitor_for(model, "estimated_performance")
    if estimated_monitor is not None:
        estimated = figures.estimated_figure(data.series(model, estimated_monitor, span))
        estimated_html = "<h3>Estimated before labels</h3>" + page.figure(
            estimated, "fig-estimated", "No estimated windows in this range."
        )
    joint_html = ""
    joint_monitor = data.monitor_for(model, "multivariate_drift")
    if joint_monitor is not None:
        joint = figures.multivariate_figure(data.series(model, joint_monitor, span, metrics=["reconstruction_error"]))
        joint_html = page.figure(joint, "fig-joint-drift", "No joint-drift windows in this range.")

    # drift heatmap from drift findings
    drift_monitor = data.monitor_for(model, "data_drift")
    grid = data.drift_grid(model, drift_monitor, span)
    prefixes = {f: feature_path(model, f) + "?window=" for f in schema.features}
    suffix = "&" + urlencode({"days": _days_param(span)})

    def cell_url(feature: str, window_end: datetime) -> str:  # thousands of cells: keep it cheap
        prefix = prefixes.get(feature) or feature_path(model, feature) + "?window="
        return prefix + window_end.strftime("%Y-%m-%dT%H:%M:%SZ") + suffix

    heatmap = figures.drift_heatmap(grid, cell_url)
    drift_empty = (
        "No drift monitor yet (detector: data_drift)." if drift_monitor is None else "No drift findings in this window."
    )

    alerts = data.model_alerts(ctx.alerts, model, limit=50)
    active = [a for a in alerts if a["state"] in ("firing", "pending")]
    alert_rows = [
        [
            f'<a href="{e(alert_path(model, a["id"]))}">{e(a["title"])}</a>',
            badge(a["severity"]),
            badge("critical" if a["state"] == "firing" else "warning", a["state"]),
            e(a["what_changed"] or ""),
            when(a["fired_at"] or a["started_at"]),
            "acknowledged" if a["acked_by"] else "",
        ]
        for a in active
    ]
    class_links = ""
    if schema.task == "multiclass":
        links = [
            f'<a{ACTIVE if c == chosen_cls else ""} href="{e(url(base, cls=c, days=_days_param(span), start=start, end=end))}">'
            f"{e(c)}</a>"
            for c in _classes(schema)
        ]
        class_links = '<div class="ranges">Class: ' + " ".join(links) + "</div>"
    feature_links = " ".join(
        f'<a class="chip" href="{e(url(feature_path(model, f), days=_days_param(span)))}">{e(f)}</a>'
        for f in schema.features
    )
    totals = data.rollups.totals(model, _floor_hour(span.start), span.end)
    body = f"""
<h1>{e(model)} <span class="muted small">{e(schema.task)} · {e(len(schema.features))} features</span></h1>
<p class="muted">{e(schema.description or "")}</p>
{_range_links(base, span, **keep)}
<p class="muted">{when(span.start)} → {when(span.end)} · {number(totals["predictions"])} predictions ·
label coverage {pct(totals["label_coverage"]) if totals["label_coverage"] is not None else "— (no labels yet)"} ·
<a href="{e(report_link(model, span.end - timedelta(days=1), span.end))}">Evidently report (last day)</a> ·
<a href="{e(url("/labeling", model=model))}">labeling</a></p>
<section id="alerts"><h2>Open alerts</h2>{table(["Alert", "Severity", "State", "What changed", "Since", ""], alert_rows, "No open alerts.")}</section>
<section><h2>Traffic</h2>{page.figure(volume, "fig-volume", "No data in this window.")}
{page.figure(latency, "fig-latency", "No latency logged in this window.")}</section>
<section><h2>Quality</h2>{class_links}{quality_note}{quality}{estimated_html}</section>
<section><h2>Drift</h2>{page.figure(heatmap, "fig-drift", drift_empty)}{joint_html}
<p>Features: {feature_links}</p></section>
"""
    return page.render(body, [("Models", "/models"), (model, None)])


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
    start: str | None = None,
    end: str | None = None,
    days: float | None = None,
) -> str:
    registered = ctx.data.service.registry.get(model)
    if feature not in registered.schema.features:
        raise NotFound(f"model {model!r} has no feature {feature!r}")
    span = parse_range(start, end, days, ctx.now)
    seg = parse_segment(segment)
    selected = _parse_window(window)
    data = ctx.data
    monitor = data.monitor_for(model, "data_drift")
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
    page = Page(f"{model} · {feature}")
    base = feature_path(model, feature)
    days_p = _days_param(span) if not (start or end) else None
    keep = {"segment": segment, "start": start, "end": end}

    def window_url(w: datetime) -> str:
        return url(base, window=iso(w), segment=segment, days=days_p, start=start, end=end)

    def segment_url(s: dict[str, Any] | None) -> str:
        return url(base, window=iso(selected), segment=segment_param(s), days=days_p, start=start, end=end)

    score = figures.drift_score_figure(series, selected, window_url)
    dist = figures.distribution_figure(chosen["details"]) if chosen else None
    breakdown = data.segment_breakdown(model, monitor, feature, selected) if selected else []
    seg_fig = figures.segment_figure(breakdown, segment_url)
    if monitor is None:
        empty_score = "No drift monitor yet (detector: data_drift)."
    else:
        empty_score = f"No drift findings for {feature} ({segment_text(seg)}) in this window."
    summary = ""
    if chosen:
        d = chosen["details"]
        facts = [
            ("Window", f"{when(chosen['window_start'])} → {when(chosen['window_end'])}"),
            ("Status", badge(chosen["status"])),
            (
                "Score",
                f"{e(number(chosen['value']))} ({e(d.get('method_display_name') or chosen['metric'])}; "
                f"threshold {e(number(chosen['threshold']))})",
            ),
            ("Rows", f"{number(chosen['n_current'])} current · {number(chosen['n_reference'])} reference"),
        ]
        for key, label in (("reference_mean", "Reference mean"), ("current_mean", "Current mean")):
            if d.get(key) is not None:
                facts.append((label, e(number(d[key]))))
        if d.get("new_categories"):
            facts.append(("New categories", e(", ".join(map(str, d["new_categories"])))))
        facts.append(
            (
                "Report",
                f'<a href="{e(report_link(model, _aware(chosen["window_start"]), _aware(chosen["window_end"])))}">'
                "Evidently report for this window</a>",
            )
        )
        summary = '<dl class="facts">' + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in facts) + "</dl>"
    options = "".join(
        f'<option value="{e(iso(f["window_end"]))}"{" selected" if f["window_end"] == selected else ""}>'
        f"{e(iso(f['window_end']))} · {e(f['status'])}</option>"
        for f in reversed(series[-500:])
    )
    hidden = "".join(
        f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in {**keep, "days": days_p}.items() if v
    )
    window_form = (
        f'<form method="get" action="{e(base)}" class="inline">{hidden}<label>Window ending '
        f'<select name="window" onchange="this.form.submit()">{options}</select></label>'
        "<noscript><button>Show</button></noscript></form>"
        if series
        else ""
    )
    seg_links = [f'<a class="chip{" active" if seg is None else ""}" href="{e(segment_url(None))}">all traffic</a>']
    for r in breakdown:
        active = " active" if seg == r["segment"] else ""
        seg_links.append(
            f'<a class="chip{active}" href="{e(segment_url(r["segment"]))}">{e(segment_text(r["segment"]))}</a>'
        )
    body = f"""
<h1>{e(feature)} <span class="muted small">{e(registered.schema.features[feature])} feature of {e(model)} ·
<span id="segment-label">{e(segment_text(seg))}</span></span></h1>
{_range_links(base, span, segment=segment)}
<section><h2>Drift over time</h2>{page.figure(score, "fig-score", empty_score)}</section>
<section><h2>Selected window</h2>{window_form}{summary}
{page.figure(dist, "fig-distribution", "No data in this window." if chosen is None else "No distribution recorded for this window.")}</section>
<section><h2>Segments</h2><p>{" ".join(seg_links)}</p>
{page.figure(seg_fig, "fig-segments", "No per-segment results in this window (the monitor judges segments listed under segments:).")}</section>
"""
    return page.render(body, [("Models", "/models"), (model, model_path(model)), (feature, None)])


def _aware(value: Any) -> datetime:
    return value if isinstance(value, datetime) else parse_time(value)


# -- alert -----------------------------------------------------------------------------------


def alert_page(ctx: Context, model: str, alert_id: str) -> str:
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
    page = Page(f"Alert · {alert['title']}")
    evidence = None
    dist = None
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
    state_cls = {"firing": "critical", "pending": "warning", "resolved": "ok"}.get(alert["state"], "")
    labels = alert_labels(alert)
    series_matchers = {k: v for k, v in labels.items() if k not in ("alert_id", "severity")}
    scopes = [("this alert", {"alert_id": alert["id"]}), ("this series (future alerts too)", series_matchers)]
    scope_options = "".join(f'<option value="{e(json.dumps(m))}">{e(label)}</option>' for label, m in scopes)
    ack_state = (
        f"acknowledged by {e(alert['acked_by'])} at {when(alert['acked_at'])}"
        if alert["acked_by"]
        else "not acknowledged"
    )
    can_ack = alert["state"] != "resolved" and not alert["acked_by"]
    silenced = f"silenced until {when(silence['ends_at'])} ({e(silence['id'])})" if silence else "not silenced"
    routed = data.labeling_summary(model, alert_id, ctx.now)
    routed_count = sum(routed["depth"].values())
    runbook = (alert.get("route") or {}).get("runbook")
    runbook_link = (
        f' · <a href="{e(runbook)}" rel="noopener noreferrer">runbook</a>'
        if isinstance(runbook, str) and runbook.startswith(("https://", "http://"))
        else ""
    )
    feature_link = ""
    if alert["column"] and alert["detector"] == "data_drift":
        feature_link = (
            f' · <a href="{e(url(feature_path(model, alert["column"]), window=alert["last_window_end"], segment=segment_param(alert["segment"])))}">'
            f"feature page</a>"
        )
    report = ""
    if finding is not None:
        report = (
            f' · <a href="{e(report_link(model, finding["window_start"], finding["window_end"]))}">Evidently report</a>'
        )
    event_rows = [
        [
            when(ev["at"]),
            badge(_event_status(ev["event"]), ev["event"]),
            e(ev["actor"] or ""),
            e(_event_details(ev["details"])),
        ]
        for ev in events
    ]
    facts = [
        ("State", badge(state_cls, alert["state"]) + f' <span id="ack-state">{ack_state}</span>'),
        ("Severity", badge(alert["severity"])),
        ("What changed", e(alert["what_changed"] or "")),
        ("Monitor", f"{e(alert['monitor'])} ({e(alert['detector'])}, metric {e(alert['metric'])})"),
        ("Segment", e(segment_text(alert["segment"]))),
        ("Window", f"{when(alert['last_window_start'])} → {when(alert['last_window_end'])}"),
        ("Started / fired", f"{when(alert['started_at'])} / {when(alert['fired_at'], 'not yet')}"),
        ("Silence", f'<span id="silence-state">{silenced}</span>'),
    ]
    for delivery in ctx.alerts.deliveries(alert_id):
        where = f"{delivery.receiver} {delivery.channel}: message {delivery.message_state}"
        where += f" (group of {delivery.alerts} alert{'s' if delivery.alerts != 1 else ''})"
        if delivery.last_error:
            where += f" — last error: {delivery.last_error}"
        facts.append(("Delivery", e(where)))
    actions = f"""
<div class="actions">
<button type="button" id="ack" data-post="/v1/alerts/{e(part(alert_id))}/ack" {"" if can_ack else "disabled"}>Acknowledge</button>
<form id="silence-form" class="inline"><label>Silence <select name="matchers">{scope_options}</select></label>
<label>for <select name="duration"><option>1h</option><option selected>4h</option><option>24h</option><option>7d</option></select></label>
<input name="comment" placeholder="comment (optional)" maxlength="500">
<button type="submit">Silence</button></form>
<span id="action-result" role="status"></span></div>"""
    body = f"""
<h1>{e(alert["title"])}</h1>
<dl class="facts">{"".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in facts)}</dl>
{actions}
<p><a href="{e(url("/labeling", model=model, alert=alert_id))}" id="routed-link">{routed_count} routed samples</a>
(<a href="{e(url("/v1/labeling/queue", model=model))}">queue JSON</a>){feature_link}{report}{runbook_link}</p>
<section><h2>Evidence</h2>{page.figure(evidence, "fig-evidence", "No findings recorded for this alert's window (e.g. a failed run).")}
{page.figure(dist, "fig-distribution", "") if dist is not None else ""}</section>
<section><h2>Timeline</h2>{table(["When", "Event", "Who", "Details"], event_rows, "No events yet.", "timeline")}</section>
"""
    return page.render(body, [("Models", "/models"), (model, model_path(model)), ("alert", None)])


def _event_status(event: str) -> str:
    return {
        "fired": "critical",
        "firing": "critical",
        "pending": "warning",
        "resolved": "ok",
        "acknowledged": "ok",
        "cleared": "ok",
    }.get(event, "info")


def _event_details(details: dict[str, Any]) -> str:
    keep = {k: v for k, v in (details or {}).items() if k not in ("run_id",)}
    return ", ".join(f"{k}: {v}" for k, v in list(keep.items())[:4])


# -- labeling --------------------------------------------------------------------------------


def labeling_page(ctx: Context, model: str | None = None, alert: str | None = None) -> str:
    if model:
        ctx.data.service.registry.get(model)  # 404 for an unknown model
    page = Page("Labeling")
    s = ctx.data.labeling_summary(model, alert, ctx.now)
    depth = s["depth"]
    total = sum(depth.values())
    annotated = sum(n for _, n, _ in s["annotated_per_day"])
    agreement = s["agreement"]
    mean_agreement = sum(agreement) / len(agreement) if agreement else None
    tiles = [
        ("Routed (all time)", number(total)),
        ("Waiting in queue", number(sum(n for st, n in depth.items() if st not in ("annotated", "applied", "done")))),
        (f"Annotated ({s['days']}d)", number(annotated)),
        ("Mean agreement", pct(mean_agreement) if mean_agreement is not None else "—"),
        ("Label conflicts", number(len(s["conflicts"]))),
    ]
    tile_html = "".join(
        f'<div class="tile"><div class="k">{e(k)}</div><div class="v">{e(v)}</div></div>' for k, v in tiles
    )
    recent = [
        [
            e(m),
            f"<code>{e(pid)}</code>",
            e(strategy) + (' <span class="muted small">blind</span>' if blind else ""),
            e(reason or ""),
            badge("info", status),
            when(routed_at),
            e(label or ""),
            pct(agr),
            f'<a href="{e(alert_path(m, a))}">alert</a>' if a else "",
        ]
        for m, pid, strategy, reason, status, routed_at, label, agr, a, blind in s["recent"]
    ]
    # A lower authority (annotator, review) disagreed with the kept label: shown for review.
    conflict_rows = [
        [
            e(c["model"]),
            f"<code>{e(c['prediction_id'])}</code>",
            f'{e(str(c["label"]))} <span class="muted small">{e(c["authority"])}</span>',
            e(
                "; ".join(
                    f"{x['label']} ({x['authority']}{', ' + x['annotator'] if x['annotator'] else ''})"
                    for x in c["conflicting"]
                )
            ),
            when(c["received_at"]),
            f'<a href="{e("/v1/models/" + part(c["model"]) + "/labels/" + part(c["prediction_id"]) + "/history")}">history</a>',
            _review_buttons(c),
        ]
        for c in s["conflicts"]
    ]
    datasets = [
        d for d in (ctx.datasets.list() if ctx.datasets is not None else []) if not model or d["model"] == model
    ]
    dataset_rows = [
        [
            e(d["name"]),
            e(d["model"]),
            e(", ".join(f"v{v}" for v in d["versions"])),
            number(d["rows"]),
            when(d["created_at"]),
            f'<a href="{e("/v1/datasets/" + part(d["name"]) + "/versions/" + str(d["latest"]))}">manifest</a>',
        ]
        for d in datasets
    ]
    scope = (
        " · ".join(x for x in (f"model {e(model)}" if model else "", f"alert {e(alert)}" if alert else "") if x)
        or "all models"
    )
    body = f"""
<h1>Labeling <span class="muted small">{scope}</span></h1>
<div class="tiles">{tile_html}</div>
<div class="grid3">
{page.figure(figures.queue_depth_figure(depth), "fig-depth", "Nothing routed yet.")}
{page.figure(figures.throughput_figure(s["routed_per_day"], s["annotated_per_day"]), "fig-throughput", "No routing or annotations in the last days.")}
{page.figure(figures.agreement_figure(agreement), "fig-agreement", "No annotations yet.")}
</div>
<section id="label-conflicts"><h2>Label conflicts <span class="muted small">kept label (authority) vs. the lower-authority labels that disagreed; ground_truth &gt; review &gt; annotator</span></h2>{table(["Model", "Prediction", "Kept label", "Disagreeing", "Labelled", "", "Review"], conflict_rows, "No label conflicts.")}<span id="action-result" role="status"></span></section>
<section><h2>Recently routed</h2>{table(["Model", "Prediction", "Strategy", "Reason", "Status", "Routed", "Label", "Agreement", ""], recent, "Nothing routed yet.")}</section>
<section><h2>Datasets built</h2>{table(["Name", "Model", "Versions", "Rows (latest)", "Built", ""], dataset_rows, "No datasets built yet.")}</section>
"""
    crumbs: list[tuple[str, str | None]] = [("Models", "/models")]
    if model:
        crumbs.append((model, model_path(model)))
    crumbs.append(("labeling", None))
    return page.render(body, crumbs)


# -- report ----------------------------------------------------------------------------------


def report_page(
    ctx: Context,
    model: str,
    *,
    start: str | None = None,
    end: str | None = None,
    reference_start: str | None = None,
    reference_end: str | None = None,
) -> str:
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
    page = Page(f"{model} · report")
    src = url(
        f"/v1/models/{part(model)}/report",
        start=iso(lo),
        end=iso(hi),
        reference_start=iso(ref_lo),
        reference_end=iso(ref_hi),
    )
    fields = [
        ("start", "Current from", lo),
        ("end", "to", hi),
        ("reference_start", "Reference from", ref_lo),
        ("reference_end", "to", ref_hi),
    ]
    inputs = "".join(
        f'<label>{e(label)} <input name="{e(name)}" value="{e(iso(value))}" size="21"></label>'
        for name, label, value in fields
    )
    body = f"""
<h1>Evidently report <span class="muted small">{e(model)}</span></h1>
<form method="get" class="inline report-form">{inputs}<button type="submit">Show report</button></form>
<p class="muted">Current {when(lo)} → {when(hi)} against reference {when(ref_lo)} → {when(ref_hi)}.
Evidently renders from the stored windows (sampled for large windows); this takes a few seconds.
<a href="{e(src)}" target="_blank" rel="noopener">Open on its own</a>.</p>
<iframe id="report" class="report" title="Evidently report" src="{e(src)}" loading="eager"></iframe>
"""
    return page.render(body, [("Models", "/models"), (model, model_path(model)), ("report", None)])


def _review_buttons(conflict: dict[str, Any]) -> str:
    """One button per candidate label of a conflict: keep the stored one, or take a disagreeing
    one. Each records a `review` label (a key with scope ingest or admin is needed)."""
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
    return " ".join(
        f'<button type="button" class="review" data-model="{e(conflict["model"])}" '
        f'data-id="{e(conflict["prediction_id"])}" data-label="{e(json.dumps(value))}">{verb} {e(str(value))}</button>'
        for verb, value in candidates
    )


# -- release gates -----------------------------------------------------------------------------

GATE_BADGE = {"ship": "ok", "no_ship": "critical", "insufficient_evidence": "warning"}


def gate_path(run_id: str) -> str:
    return f"/gates/{part(run_id)}"


def gates_page(runs: list[dict[str, Any]], model: str | None = None) -> str:
    """Every gate run made through the API, newest first: verdict, what failed, what would decide
    it; each links to its report page (the run's report.html)."""
    page = Page("Release gates")
    rows = []
    for run in runs:
        counts = run["summary"]
        failing = run["failing"]
        shown = "; ".join(failing[:3]) + (f" (+{len(failing) - 3} more)" if len(failing) > 3 else "")
        requests = run["sample_requests"]
        needs = ", ".join(
            f"{r['rows']} in {'all' if r['slice'] == 'all' else r['slice'] + '=' + r['value']}" for r in requests[:3]
        )
        rows.append(
            [
                f'<a href="{e(gate_path(run["id"]))}">{e(run["gate"])}</a>'
                f'<div class="muted small">{e(run["id"])}</div>',
                badge(GATE_BADGE.get(run["verdict"], "unknown"), run["verdict"].replace("_", " ")),
                f'<a href="{e(model_path(run["model"]))}">{e(run["model"])}</a>',
                e(run["dataset"]),
                f"{counts['pass']} passed · {counts['fail']} failed · {counts['insufficient']} undecided",
                e(shown) if shown else '<span class="muted">none</span>',
                e(needs) if needs else '<span class="muted">—</span>',
                e(when(run["generated_at"])),
            ]
        )
    title = "Release gates" + (f" · {e(model)}" if model else "")
    body = f"<h1>{title}</h1>" + table(
        ["Gate", "Verdict", "Model", "Dataset", "Judgements", "Failing", "Would decide it", "When"],
        rows,
        "No gate runs yet: POST /v1/gates, or `loopwatch gate evaluate` for a local report (docs/gates.md).",
        "gates",
    )
    return page.render(body, [("Release gates", None)])
