"""Plotly figures for the dashboard pages, built from precomputed rows (rollups, findings).

Every builder is pure: rows in, a plotly figure as a plain dict (``{"data", "layout"}``) out —
or ``None`` when there is nothing to show, so the page can say why. Plain dicts serialise with
``plotly.io.to_json`` without plotly's per-property validation, which costs more than the rest
of a page on long ranges (measured: ~7× faster for a 2,160-point trace).

Times are UTC on the axes; traces with ``meta="localtime"`` get the viewer's local time added
to their hover text by the page script. Free text (segment values, version names, categories)
is HTML-escaped because plotly interprets a few tags in labels.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import pairwise
from typing import Any

from dashboards.data import drift_ratio

Figure = dict[str, Any]

COLORS = {
    "p50": "#2563eb",
    "p95": "#d97706",
    "p99": "#dc2626",
    "fpr": "#dc2626",
    "fnr": "#7c3aed",
    "precision": "#059669",
    "recall": "#2563eb",
    "reference": "#64748b",
    "current": "#f59e0b",
    "labels": "#0f766e",
}
VERSION_COLORS = ["#60a5fa", "#f59e0b", "#34d399", "#f472b6", "#a78bfa", "#94a3b8"]
STATUS_COLORS = {
    "ok": "#16a34a",
    "warning": "#d97706",
    "critical": "#dc2626",
    "insufficient_data": "#94a3b8",
    "no_data": "#6b7280",
}
RANK_STATUS = {3: "critical", 2: "warning", 1: "ok", 0: "insufficient_data"}
HOVER_TIME = "%{x|%Y-%m-%d %H:%M} UTC<br>local: %{text}"


def ts(value: datetime | float) -> str:
    """A UTC time as plotly reads it (no zone: the axes are labelled UTC). Floats are epoch seconds."""
    if not isinstance(value, datetime):
        value = datetime.fromtimestamp(float(value), UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def esc(text: Any) -> str:
    return html.escape(str(text), quote=False)


def figure(data: list[dict[str, Any]], title: str, height: int = 320, **layout: Any) -> Figure:
    base: dict[str, Any] = {
        "title": {"text": esc(title), "x": 0, "xanchor": "left", "font": {"size": 15}},
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 48, "b": 40},
        "template": _template(),
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "hovermode": "closest",
    }
    base.update(layout)
    return {"data": data, "layout": base}


@lru_cache(maxsize=1)
def _template() -> dict[str, Any]:
    """plotly.js knows no template names: the template goes into each figure (~8 kB)."""
    import plotly.io as pio

    return pio.templates["plotly_white"].to_plotly_json()


def _version_marks(versions: Sequence[dict[str, Any]], lo: datetime, hi: datetime) -> tuple[list[Any], list[Any]]:
    """Dashed vertical lines (and labels) where each model version was first seen in the range."""
    shapes, annotations = [], []
    for v in versions:
        first = v.get("first_seen")
        if not first:
            continue
        at = datetime.fromisoformat(first) if isinstance(first, str) else first
        if not lo <= at <= hi:
            continue
        x = ts(at)
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": x,
                "x1": x,
                "y0": 0,
                "y1": 1,
                "line": {"dash": "dash", "color": "#475569", "width": 1},
            }
        )
        annotations.append(
            {
                "x": x,
                "y": 1,
                "xref": "x",
                "yref": "paper",
                "text": f"v{esc(v['version'])}",
                "showarrow": False,
                "xanchor": "left",
                "yanchor": "bottom",
                "font": {"size": 11, "color": "#475569"},
            }
        )
    return shapes, annotations


# -- model overview -------------------------------------------------------------------------


def volume_figure(rows: Sequence[Any], *, daily: bool) -> Figure | None:
    """Predictions per hour (or day) stacked by model version, and the labelled ones."""
    if not rows:
        return None
    buckets: dict[str, dict[datetime, int]] = {}
    labels: dict[datetime, int] = {}
    for r in rows:
        at = r.hour.replace(hour=0) if daily else r.hour
        per_version = buckets.setdefault(r.model_version or "(none)", {})
        per_version[at] = per_version.get(at, 0) + r.predictions
        labels[at] = labels.get(at, 0) + r.labels
    data = []
    for i, (version, counts) in enumerate(sorted(buckets.items())):
        xs = sorted(counts)
        data.append(
            {
                "type": "bar",
                "x": [ts(x) for x in xs],
                "y": [counts[x] for x in xs],
                "name": f"v{esc(version)}",
                "marker": {"color": VERSION_COLORS[i % len(VERSION_COLORS)]},
                "meta": "localtime",
                "textposition": "none",
                "hovertemplate": HOVER_TIME + "<br>%{y} predictions<extra>%{fullData.name}</extra>",
            }
        )
    xs = sorted(labels)
    data.append(
        {
            "type": "scatter",
            "x": [ts(x) for x in xs],
            "y": [labels[x] for x in xs],
            "name": "labelled",
            "mode": "lines",
            "line": {"color": COLORS["labels"], "width": 2},
            "meta": "localtime",
            "hovertemplate": HOVER_TIME + "<br>%{y} labelled<extra></extra>",
        }
    )
    unit = "day" if daily else "hour"
    return figure(
        data,
        f"Volume (predictions per {unit}, by model version)",
        barmode="stack",
        bargap=0.05,
        yaxis={"title": {"text": "rows"}},
    )


def latency_figure(
    hourly: Sequence[Any],
    findings: Sequence[dict[str, Any]],
    versions: Sequence[dict[str, Any]],
    lo: datetime,
    hi: datetime,
) -> Figure | None:
    """Hourly latency p50/p95/p99, regression markers (latency findings) and version boundaries."""
    rows = [r for r in hourly if r.latency_n]
    if not rows:
        return None
    xs = [ts(r.hour) for r in rows]
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": xs,
            "y": [getattr(r, name) for r in rows],
            "name": name,
            "mode": "lines",
            "line": {"color": COLORS[name], "width": 1.5},
            "meta": "localtime",
            "hovertemplate": HOVER_TIME + f"<br>{name} %{{y:.1f}} ms<extra></extra>",
        }
        for name in ("p50", "p95", "p99")
    ]
    bad = [f for f in findings if f["status"] in ("critical", "warning") and f["value"] is not None]
    if bad:
        data.append(
            {
                "type": "scatter",
                "x": [ts(f["window_end"]) for f in bad],
                "y": [f["value"] for f in bad],
                "name": "regression",
                "mode": "markers",
                "marker": {
                    "symbol": "x",
                    "size": 11,
                    "color": [STATUS_COLORS[f["status"]] for f in bad],
                    "line": {"width": 1},
                },
                "customdata": [[f["metric"], f["status"], f["threshold"] or 0] for f in bad],
                "meta": "localtime",
                "hovertemplate": HOVER_TIME
                + "<br>%{customdata[0]} %{y:.1f} ms (%{customdata[1]}; limit %{customdata[2]:.1f})"
                "<extra>regression</extra>",
            }
        )
    shapes, annotations = _version_marks(versions, lo, hi)
    return figure(
        data,
        "Latency (ms, hourly percentiles; × = regression found; dashed = new model version)",
        yaxis={"title": {"text": "ms"}},
        shapes=shapes,
        annotations=annotations,
    )


def performance_figure(
    findings: Sequence[dict[str, Any]], metric_names: dict[str, str], coverage: Sequence[tuple[datetime, float]]
) -> Figure | None:
    """FP/FN rate and precision/recall per window with their 95% intervals, and label coverage.

    ``metric_names`` maps the stored metric (``fpr`` or ``fpr:brake``) to its role (``fpr``...)."""
    if not findings and not coverage:
        return None
    axes = {1: ("y", [0.62, 1.0]), 2: ("y2", [0.28, 0.58]), 3: ("y3", [0.0, 0.2])}
    data: list[dict[str, Any]] = []
    for role, row in (("fpr", 1), ("fnr", 1), ("precision", 2), ("recall", 2)):
        yaxis = axes[row][0]
        stored = [m for m, r in metric_names.items() if r == role]
        points = [f for f in findings if f["metric"] in stored and f["value"] is not None]
        judged = [f for f in points if f["status"] != "insufficient_data"]
        low = [f for f in points if f["status"] == "insufficient_data"]
        color = COLORS[role]
        label = role.upper() if role in ("fpr", "fnr") else role
        band = _ci_band(judged, _rgba(color, 0.15), f"{label} 95% interval", showlegend=False, yaxis=yaxis)
        if band:
            data.append(band)
        if judged:
            data.append(
                _status_series(
                    judged,
                    label,
                    f"<br>{label} %{{y:.3f}} [%{{customdata[1]:.3f}}, %{{customdata[2]:.3f}}] %{{customdata[0]}}"
                    "<extra></extra>",
                    color=color,
                    size=7,
                    customdata=[[f["status"], *(f["details"].get("current_ci") or [None, None])] for f in judged],
                    yaxis=yaxis,
                )
            )
        if low:
            data.append(
                {
                    "type": "scatter",
                    "x": [ts(f["window_end"]) for f in low],
                    "y": [f["value"] for f in low],
                    "name": f"{label} (too few labels)",
                    "mode": "markers",
                    "marker": {"color": color, "symbol": "circle-open", "size": 7},
                    "meta": "localtime",
                    "hovertemplate": HOVER_TIME + f"<br>{label} %{{y:.3f}} — not judged: too few labels<extra></extra>",
                    "yaxis": yaxis,
                }
            )
    if coverage:
        data.append(
            {
                "type": "bar",
                "x": [ts(d) for d, _ in coverage],
                "y": [c for _, c in coverage],
                "name": "label coverage",
                "marker": {"color": COLORS["labels"]},
                "opacity": 0.7,
                "meta": "localtime",
                "textposition": "none",
                "hovertemplate": HOVER_TIME + "<br>%{y:.0%} of predictions labelled<extra></extra>",
                "yaxis": "y3",
            }
        )
    titles = {1: "False-positive / false-negative rate", 2: "Precision / recall", 3: "Label coverage (per day)"}
    layout: dict[str, Any] = {
        "xaxis": {"anchor": "y3", "type": "date"},
        "annotations": [
            {
                "text": titles[row],
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": axes[row][1][1],
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 12},
            }
            for row in (1, 2, 3)
        ],
    }
    for name, domain in axes.values():
        key = "yaxis" if name == "y" else f"yaxis{name[1:]}"
        layout[key] = {"domain": domain, "rangemode": "tozero", "anchor": "x"}
    layout["yaxis3"]["tickformat"] = ".0%"
    return figure(data, "Model quality (labelled windows; bands = 95% interval)", height=580, **layout)


ESTIMATED_ORDER = ("roc_auc", "fnr", "recall", "fpr", "precision", "f1", "accuracy", "mae", "rmse")
ESTIMATED_COLORS = ["#7c3aed", "#2563eb", "#059669", "#dc2626", "#d97706", "#0f766e", "#475569"]


def estimated_figure(findings: Sequence[dict[str, Any]]) -> Figure | None:
    """Estimated performance per window (``estimated_performance`` findings): the estimate with
    its band, the reference value (dotted), and — once labels arrived — the realized value
    (diamonds), so a scientist sees the estimate before the labels and checks it after."""
    points = [f for f in findings if f["value"] is not None and f["details"].get("estimated")]
    if not points:
        return None
    def order(metric: str) -> tuple[int, str]:
        base = metric.split(":")[0]
        return (ESTIMATED_ORDER.index(base) if base in ESTIMATED_ORDER else len(ESTIMATED_ORDER), metric)

    metrics = sorted({f["metric"] for f in points}, key=order)
    data: list[dict[str, Any]] = []
    for i, metric in enumerate(metrics[:6]):
        color = ESTIMATED_COLORS[i % len(ESTIMATED_COLORS)]
        series = [f for f in points if f["metric"] == metric]
        label = esc(metric)
        band = _ci_band(series, _rgba(color, 0.15), f"{label} band", showlegend=False)
        if band:
            data.append(band)
        data.append(
            _status_series(
                series, f"{label} estimated", f"<br>{label} estimated %{{y:.3f}}<extra></extra>", color=color, size=7
            )
        )
        data.append(
            {
                "type": "scatter",
                "x": [ts(f["window_end"]) for f in series],
                "y": [f["details"].get("reference_value") for f in series],
                "name": f"{label} reference",
                "mode": "lines",
                "line": {"color": color, "dash": "dot", "width": 1},
                "hovertemplate": f"{label} reference %{{y:.3f}}<extra></extra>",
            }
        )
        realized = [f for f in series if f["details"].get("realized") is not None]
        if realized:
            data.append(
                {
                    "type": "scatter",
                    "x": [ts(f["window_end"]) for f in realized],
                    "y": [f["details"]["realized"] for f in realized],
                    "name": f"{label} realized",
                    "mode": "markers",
                    "marker": {"color": color, "symbol": "diamond-open", "size": 10},
                    "customdata": [f["details"].get("realized_labeled") for f in realized],
                    "meta": "localtime",
                    "hovertemplate": HOVER_TIME + f"<br>{label} realized %{{y:.3f}} on %{{customdata}} labels<extra></extra>",
                }
            )
    method = esc(points[-1]["details"].get("method") or "CBPE")
    return figure(
        data,
        f"Estimated performance ({method}; band = 95% interval; ◇ realized once labels arrived)",
        xaxis=_single_point_axis(points),
    )


def multivariate_figure(findings: Sequence[dict[str, Any]]) -> Figure | None:
    """The window's PCA reconstruction error (``multivariate_drift``) against its threshold."""
    points = [f for f in findings if f["value"] is not None and f["metric"] == "reconstruction_error"]
    if not points:
        return None
    xs = [ts(f["window_end"]) for f in points]
    data: list[dict[str, Any]] = [
        _status_series(
            points,
            "reconstruction error",
            "<br>error %{y:.4g}<br>grew most: %{customdata}<extra></extra>",
            width=1.5,
            customdata=[", ".join(esc(x["feature"]) for x in (f["details"].get("features") or [])[:3]) for f in points],
        ),
        {
            "type": "scatter",
            "x": xs,
            "y": [f["details"].get("reference_value") for f in points],
            "name": "reference",
            "mode": "lines",
            "line": {"color": COLORS["reference"], "dash": "dot", "width": 1},
            "hovertemplate": "reference %{y:.4g}<extra></extra>",
        },
    ]
    if any(f["threshold"] is not None for f in points):
        data.append(_threshold_line(xs, points, "relevance floor"))
    return figure(data, "Joint drift: PCA reconstruction error per window", xaxis=_single_point_axis(points))


def drift_heatmap(grid: dict[str, Any], url: Callable[[str, datetime], str]) -> Figure | None:
    """Features × windows, coloured by drift score / threshold; critical cells outlined (``drifted``).

    ``grid`` comes from ``DashboardData.drift_grid`` (already bucketed in the database)."""
    cells = grid["cells"]
    if not cells:
        return None
    features = sorted({c[0] for c in cells})
    columns = sorted({c[1] for c in cells})
    col_index = {c: i for i, c in enumerate(columns)}
    row_index = {f: i for i, f in enumerate(features)}
    z: list[list[float | None]] = [[None] * len(columns) for _ in features]
    custom: list[list[str]] = [[""] * len(columns) for _ in features]
    drifted: list[tuple[int, int]] = []
    for feature, bucket, ratio, window_epoch, _value, rank in cells:
        i, j = row_index[feature], col_index[bucket]
        z[i][j] = ratio
        custom[i][j] = url(feature, datetime.fromtimestamp(float(window_epoch), UTC))
        if rank == 3:
            drifted.append((i, j))
    xs = [ts(c) for c in columns]
    step = grid["step_hours"]
    data: list[dict[str, Any]] = [
        {
            "type": "heatmap",
            "x": xs,
            "y": features,
            "z": z,
            "zmin": 0,
            "zmax": 2,
            "colorscale": [[0, "#f0fdf4"], [0.35, "#bbf7d0"], [0.5, "#fde68a"], [0.75, "#fb923c"], [1, "#b91c1c"]],
            "colorbar": {"title": {"text": "score /<br>threshold"}, "thickness": 12},
            "customdata": custom,
            "meta": "localtime",
            "hovertemplate": "%{y} · "
            + ("bucket from" if step else "window ending")
            + " %{x|%Y-%m-%d %H:%M} UTC (local %{text})<br>score / threshold %{z:.2f}<extra>click to open</extra>",
            "xgap": 1,
            "ygap": 1,
            "name": "drift",
        },
        {
            "type": "scatter",
            "x": [xs[j] for _, j in drifted],
            "y": [features[i] for i, _ in drifted],
            "mode": "markers",
            "name": "drifted",
            "marker": {"symbol": "square-open", "size": 12, "color": "#7f1d1d", "line": {"width": 2}},
            "customdata": [custom[i][j] for i, j in drifted],
            "hovertemplate": "%{y} drifted (%{x|%Y-%m-%d %H:%M} UTC)<extra>click to open</extra>",
        },
    ]
    label = f"{step}h buckets, strongest window shown" if step else "one column per window"
    return figure(
        data,
        f"Feature drift ({label}; outlined = drifted)",
        height=max(260, 90 + 22 * len(features)),
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        xaxis={"type": "date"},
        showlegend=False,
    )


# -- feature page ----------------------------------------------------------------------------


def drift_score_figure(
    series: Sequence[dict[str, Any]], selected: datetime | None, url: Callable[[datetime], str]
) -> Figure | None:
    """The feature's drift score per window, its threshold, and the selected window."""
    points = [f for f in series if f["value"] is not None]
    if not points:
        return None
    xs = [ts(f["window_end"]) for f in points]
    method = points[-1]["metric"]
    data: list[dict[str, Any]] = [
        _status_series(
            points,
            f"score ({esc(method)})",
            "<br>score %{y:.4g}<extra>click to inspect</extra>",
            width=1.5,
            customdata=[url(f["window_end"]) for f in points],
        )
    ]
    if any(f["threshold"] is not None for f in points):
        data.append(_threshold_line(xs, points, "threshold"))
    chosen = [f for f in points if f["window_end"] == selected] if selected is not None else []
    if chosen:
        data.append(
            {
                "type": "scatter",
                "x": [ts(chosen[0]["window_end"])],
                "y": [chosen[0]["value"]],
                "name": "selected window",
                "mode": "markers",
                "marker": {"symbol": "star", "size": 16, "color": "#1d4ed8"},
                "hovertemplate": "selected window<extra></extra>",
            }
        )
    ratio = drift_ratio(method, 0.5, 0.05)
    p_value = ratio is not None and ratio < 1
    title = "Drift score per window" + (" (p-value: below the threshold = drift)" if p_value else "")
    return figure(data, title, yaxis={"title": {"text": esc(method)}}, xaxis=_single_point_axis(points))


def distribution_figure(details: dict[str, Any]) -> Figure | None:
    """Reference vs current distribution of one window: histogram shares or category shares."""
    histogram = details.get("histogram")
    if histogram and histogram.get("edges"):
        edges = histogram["edges"]
        centers = [(a + b) / 2 for a, b in pairwise(edges)]
        widths = [b - a for a, b in pairwise(edges)]
        data = [
            {
                "type": "bar",
                "x": centers,
                "y": histogram[side],
                "width": widths,
                "name": side,
                "marker": {"color": COLORS[side]},
                "opacity": 0.55,
                "hovertemplate": "%{x:.4g}: %{y:.1%}<extra>" + side + "</extra>",
            }
            for side in ("reference", "current")
        ]
        barmode = "overlay"
    elif details.get("categories"):
        categories = [esc(c) for c in details["categories"]]
        data = [
            {
                "type": "bar",
                "x": categories,
                "y": details.get(key) or [],
                "name": side,
                "marker": {"color": COLORS[side]},
                "hovertemplate": "%{x}: %{y:.1%}<extra>" + side + "</extra>",
            }
            for side, key in (("reference", "reference_share"), ("current", "current_share"))
        ]
        barmode = "group"
    else:
        return None
    return figure(
        data,
        "Reference vs current distribution (share of rows)",
        barmode=barmode,
        yaxis={"tickformat": ".0%", "title": {"text": "share"}},
    )


def segment_figure(rows: Sequence[dict[str, Any]], url: Callable[[dict[str, Any]], str]) -> Figure | None:
    """Drift strength (score / threshold, so p-values and distances compare) per segment value."""
    rows = [r for r in rows if drift_ratio(r["metric"], r["value"], r["threshold"]) is not None]
    if not rows:
        return None
    labels = [esc(", ".join(f"{k}={v}" for k, v in sorted(r["segment"].items()))) for r in rows]
    data = [
        {
            "type": "bar",
            "x": labels,
            "y": [drift_ratio(r["metric"], r["value"], r["threshold"]) for r in rows],
            "name": "score / threshold",
            "marker": {"color": [STATUS_COLORS.get(r["status"], "#64748b") for r in rows]},
            "customdata": [[url(r["segment"]), r["metric"], r["value"], r["threshold"], r["status"]] for r in rows],
            "hovertemplate": "%{x}<br>%{customdata[1]} %{customdata[2]:.4g} (threshold %{customdata[3]:.4g}): "
            "%{customdata[4]}<extra>click for this segment</extra>",
        }
    ]
    threshold_line = {
        "type": "line",
        "xref": "paper",
        "x0": 0,
        "x1": 1,
        "y0": 1,
        "y1": 1,
        "line": {"color": "#dc2626", "dash": "dash"},
    }
    return figure(
        data,
        "Per-segment drift in this window (score / threshold; above 1 = drift)",
        showlegend=False,
        shapes=[threshold_line],
        xaxis={"type": "category"},
    )


# -- alert page -------------------------------------------------------------------------------


def evidence_figure(series: Sequence[dict[str, Any]], alert: dict[str, Any]) -> Figure | None:
    """The alert's series around the window that fired: value, threshold, interval, that window."""
    points = [f for f in series if f["value"] is not None]
    if not points:
        return None
    xs = [ts(f["window_end"]) for f in points]
    data: list[dict[str, Any]] = []
    band = _ci_band(points, "rgba(37,99,235,0.15)", "95% interval")
    if band:
        data.append(band)
    data.append(_status_series(points, esc(alert["metric"]), "<br>%{y:.4g}<extra></extra>", color="#1e293b"))
    if any(f["threshold"] is not None for f in points):
        data.append(_threshold_line(xs, points, "threshold"))
    fired = alert.get("last_window_end")
    if fired:
        fired_at = ts(datetime.fromisoformat(fired.replace("Z", "+00:00")))
        match = [f for f in points if ts(f["window_end"]) == fired_at]
        if match:
            data.append(
                {
                    "type": "scatter",
                    "x": [fired_at],
                    "y": [match[0]["value"]],
                    "name": "alert window",
                    "mode": "markers",
                    "marker": {
                        "symbol": "star",
                        "size": 18,
                        "color": "#dc2626",
                        "line": {"color": "#111827", "width": 1},
                    },
                    "hovertemplate": "the window that moved this alert<extra></extra>",
                }
            )
    return figure(
        data,
        "Evidence: this series around the alert window (★ = the window that moved it)",
        yaxis={"title": {"text": esc(alert["metric"])}},
        xaxis=_single_point_axis(points),
    )


# -- labeling page ----------------------------------------------------------------------------


def queue_depth_figure(depth: dict[str, int]) -> Figure | None:
    if not depth:
        return None
    order = sorted(depth, key=lambda s: -depth[s])
    data = [
        {
            "type": "bar",
            "x": [esc(s) for s in order],
            "y": [depth[s] for s in order],
            "name": "samples",
            "marker": {"color": "#6366f1"},
            "hovertemplate": "%{x}: %{y}<extra></extra>",
        }
    ]
    return figure(data, "Queue by status", height=280, showlegend=False, xaxis={"type": "category"})


def throughput_figure(routed: Sequence[tuple[Any, ...]], annotated: Sequence[tuple[Any, ...]]) -> Figure | None:
    if not routed and not annotated:
        return None
    data = [
        {
            "type": "bar",
            "x": [ts(r[0]) for r in rows],
            "y": [r[1] for r in rows],
            "name": name,
            "marker": {"color": color},
            "meta": "localtime",
            "textposition": "none",
            "hovertemplate": HOVER_TIME + f"<br>%{{y}} {name}<extra></extra>",
        }
        for name, rows, color in (("routed", routed, "#a5b4fc"), ("annotated", annotated, "#0f766e"))
    ]
    return figure(data, "Throughput per day", height=280, barmode="group", xaxis={"type": "date"})


def agreement_figure(values: Sequence[float]) -> Figure | None:
    if not values:
        return None
    data = [
        {
            "type": "histogram",
            "x": list(values),
            "xbins": {"start": 0, "end": 1.0001, "size": 0.1},
            "name": "agreement",
            "marker": {"color": "#0ea5e9"},
            "hovertemplate": "agreement %{x}: %{y} samples<extra></extra>",
        }
    ]
    return figure(
        data, "Annotator agreement", height=280, showlegend=False, xaxis={"tickformat": ".0%", "range": [0, 1.05]}
    )


def _single_point_axis(points: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One window alone would get a millisecond-wide axis: show the window's own span around it."""
    if len(points) != 1:
        return {"type": "date"}
    end = points[0]["window_end"]
    length = max(end - points[0]["window_start"], timedelta(hours=1))
    return {"type": "date", "range": [ts(end - length), ts(end + length)]}


def _status_series(
    points: Sequence[dict[str, Any]],
    name: str,
    hover: str,
    *,
    color: str = "#334155",
    width: float | None = None,
    size: int = 8,
    **extra: Any,
) -> dict[str, Any]:
    """A finding's value per window as a line whose markers take each window's status colour."""
    return {
        "type": "scatter",
        "x": [ts(f["window_end"]) for f in points],
        "y": [f["value"] for f in points],
        "name": name,
        "mode": "lines+markers",
        "line": {"color": color} if width is None else {"color": color, "width": width},
        "marker": {"color": [STATUS_COLORS.get(f["status"], color) for f in points], "size": size},
        "meta": "localtime",
        "hovertemplate": HOVER_TIME + hover,
        **extra,
    }


def _threshold_line(xs: list[str], points: Sequence[dict[str, Any]], name: str) -> dict[str, Any]:
    """Each window's threshold as a dashed red line."""
    return {
        "type": "scatter",
        "x": xs,
        "y": [f["threshold"] for f in points],
        "name": name,
        "mode": "lines",
        "line": {"color": "#dc2626", "dash": "dash", "width": 1.5},
        "hovertemplate": f"{name} %{{y:.4g}}<extra></extra>",
    }


def _ci_band(findings: Sequence[dict[str, Any]], fillcolor: str, name: str, **extra: Any) -> dict[str, Any] | None:
    """A filled trace between each finding's confidence bounds (``details.current_ci``)."""
    with_ci = [f for f in findings if f["details"].get("current_ci")]
    if not with_ci:
        return None
    xs = [ts(f["window_end"]) for f in with_ci]
    return {
        "type": "scatter",
        "x": xs + xs[::-1],
        "y": [f["details"]["current_ci"][1] for f in with_ci] + [f["details"]["current_ci"][0] for f in with_ci][::-1],
        "fill": "toself",
        "mode": "lines",
        "fillcolor": fillcolor,
        "line": {"width": 0},
        "hoverinfo": "skip",
        "name": name,
        **extra,
    }


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"
