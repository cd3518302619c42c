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
import math
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
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


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


def _ms(step: timedelta) -> int:
    return int(step.total_seconds() * 1000)


def _floor(at: datetime, step: timedelta) -> datetime:
    """The start of ``at``'s hour or UTC day: buckets are whole periods, never a stray instant."""
    at = at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
    at = at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0) if step >= DAY else at


def bucket_axis(starts: Sequence[datetime], step: timedelta) -> dict[str, Any]:
    """A date axis for bars of hourly or daily buckets: range, ticks and labels in whole periods.

    Left to itself plotly infers a bar's width from the gaps between bars; with one bucket (or
    one per trace) it guesses a millisecond and labels the axis ``23:59:59.9995``. The axis spans
    exactly the buckets, ticks fall on period starts, and labels read dates (days) or
    hour + date (hours), at most ~10 of them."""
    lo, hi = min(starts), max(starts) + step
    periods = max(1, round((hi - lo) / step))
    if step >= DAY:
        every = max(1, math.ceil(periods / 10))
        return {
            "type": "date",
            "range": [ts(lo), ts(hi)],
            "tick0": ts(lo),
            "dtick": every * _ms(step),
            "tickformat": "%b %d",
            "ticklabelmode": "period" if every == 1 else "instant",
            "hoverformat": "%Y-%m-%d",
        }
    every = next((h for h in (1, 2, 3, 6, 12, 24, 48, 72, 168) if periods / h <= 10), 336)
    return {
        "type": "date",
        "range": [ts(lo), ts(hi)],
        "tick0": ts(lo),
        "dtick": every * _ms(step),
        "tickformat": "%H:%M<br>%b %d",
        "hoverformat": "%Y-%m-%d %H:%M",
    }


def empty_annotation(text: str, *, y: float = 0.5, yref: str = "paper") -> dict[str, Any]:
    """A centred note for a panel with nothing to draw: an empty panel says so instead of
    showing bare axes."""
    return {
        "text": esc(text),
        "x": 0.5,
        "xref": "paper",
        "y": y,
        "yref": yref,
        "showarrow": False,
        "font": {"size": 13, "color": "#64748b"},
        "name": "empty-state",
    }


def has_points(trace: dict[str, Any]) -> bool:
    """Whether a trace draws anything (a value that is not None)."""
    values = trace.get("z") if trace.get("type") == "heatmap" else trace.get("y", trace.get("x"))
    if trace.get("type") == "histogram":
        values = trace.get("x")
    if not values:
        return False
    flat = [v for row in values for v in (row if isinstance(row, list) else [row])]
    return any(v is not None for v in flat)


# -- model overview -------------------------------------------------------------------------


def volume_figure(rows: Sequence[Any], *, daily: bool) -> Figure | None:
    """Predictions per hour (or day) stacked by model version, and the labelled ones."""
    if not rows:
        return None
    step = DAY if daily else HOUR
    buckets: dict[str, dict[datetime, int]] = {}
    labels: dict[datetime, int] = {}
    for r in rows:
        at = _floor(r.hour, step)
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
                "offset": 0,
                "width": _ms(step),
                "meta": "localtime",
                "textposition": "none",
                "hovertemplate": HOVER_TIME + "<br>%{y} predictions<extra>%{fullData.name}</extra>",
            }
        )
    xs = sorted(labels)
    data.append(
        {
            "type": "scatter",
            "x": [ts(x + step / 2) for x in xs],  # the middle of its bar
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
        xaxis=bucket_axis(sorted(labels), step),
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
    xaxis: dict[str, Any] = {"type": "date"}
    if len({r.hour for r in rows}) == 1:  # one hour alone would get a millisecond-wide axis
        xaxis["range"] = [ts(rows[0].hour - HOUR), ts(rows[0].hour + HOUR)]
    return figure(
        data,
        "Latency (ms, hourly percentiles; × = regression found; dashed = new model version)",
        yaxis={"title": {"text": "ms"}},
        xaxis=xaxis,
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
                "x": [ts(_floor(d, DAY)) for d, _ in coverage],
                "y": [c for _, c in coverage],
                "name": "label coverage",
                "offset": 0,
                "width": DAY_MS,  # one UTC day per bar, whatever the number of days
                "marker": {"color": COLORS["labels"]},
                "opacity": 0.7,
                "meta": "localtime",
                "textposition": "none",
                "hovertemplate": HOVER_TIME + "<br>%{y:.0%} of predictions labelled<extra></extra>",
                "yaxis": "y3",
            }
        )
    if not any(has_points(t) for t in data):
        return None
    titles = {1: "False-positive / false-negative rate", 2: "Precision / recall", 3: "Label coverage (per day)"}
    empty_notes = {
        1: "No windows with FP/FN rates in this range",
        2: "No windows with precision / recall in this range",
        3: "No label coverage in this range",
    }
    drawn = {t.get("yaxis", "y") for t in data if has_points(t)}
    layout: dict[str, Any] = {
        "xaxis": {"anchor": "y3", "type": "date"},
        "annotations": [
            empty_annotation(empty_notes[row], y=sum(axes[row][1]) / 2)
            for row in (1, 2, 3)
            if axes[row][0] not in drawn
        ]
        + [
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

    ``grid`` comes from ``DashboardData.drift_grid`` (already bucketed in the database). Each
    column is drawn over the time its windows cover (explicit cell edges, see
    :func:`_column_cells`): plotly's own guess from window ends alone stretched a model's only
    (or last) column into the future. Time with no window stays blank."""
    cells = grid["cells"]
    if not cells:
        return None
    step = grid["step_hours"]
    features = sorted({c[0] for c in cells})
    row_index = {f: i for i, f in enumerate(features)}
    spans = _column_cells(grid)
    col_index = {bucket: j for j, (_, _, bucket) in enumerate(spans) if bucket is not None}
    z: list[list[float | None]] = [[None] * len(spans) for _ in features]
    # [link, end of the window shown] per cell; thousands of cells, so each end is formatted once
    custom: list[list[list[str]]] = [[["", ""] for _ in spans] for _ in features]
    ends: dict[float, tuple[datetime, str]] = {}
    drifted: list[tuple[int, int, str]] = []
    for feature, bucket, ratio, window_epoch, _value, rank in cells:
        i, j = row_index[feature], col_index[bucket]
        if window_epoch not in ends:
            at = datetime.fromtimestamp(float(window_epoch), UTC)
            ends[window_epoch] = (at, at.strftime("%Y-%m-%d %H:%M"))
        window_end, label = ends[window_epoch]
        z[i][j] = ratio
        custom[i][j] = [url(feature, window_end), label]
        if rank == 3:
            drifted.append((i, j, label))
    edges = [spans[0][0]] + [hi for _, hi, _ in spans]
    mids = [(lo + hi) / 2 for lo, hi, _ in spans]
    data: list[dict[str, Any]] = [
        {
            "type": "heatmap",
            "x": [ts(x) for x in edges],  # one more than the columns: the cells' edges
            "y": features,
            "z": z,
            "zmin": 0,
            "zmax": 2,
            "colorscale": [[0, "#f0fdf4"], [0.35, "#bbf7d0"], [0.5, "#fde68a"], [0.75, "#fb923c"], [1, "#b91c1c"]],
            "colorbar": {"title": {"text": "score /<br>threshold"}, "thickness": 12},
            "customdata": custom,
            "meta": "localtime",
            "hoverongaps": False,
            "hovertemplate": "%{y} · "
            + ("strongest window ending" if step else "window ending")
            + " %{customdata[1]} UTC<br>column from %{text} local<br>score / threshold %{z:.2f}"
            "<extra>click to open</extra>",
            "xgap": 1,
            "ygap": 1,
            "name": "drift",
        },
        {
            "type": "scatter",
            "x": [ts(mids[j]) for _, j, _ in drifted],
            "y": [features[i] for i, _, _ in drifted],
            "mode": "markers",
            "name": "drifted",
            "marker": {"symbol": "square-open", "size": 12, "color": "#7f1d1d", "line": {"width": 2}},
            "customdata": [custom[i][j][0] for i, j, _ in drifted],
            "text": [label for _, _, label in drifted],
            "hovertemplate": "%{y} drifted · window ending %{text} UTC<extra>click to open</extra>",
        },
    ]
    label = f"{step}h buckets, strongest window shown" if step else "one column per window"
    return figure(
        data,
        f"Feature drift ({label}; outlined = drifted)",
        height=max(260, 90 + 22 * len(features)),
        yaxis={"autorange": "reversed", "automargin": True, "type": "category"},
        xaxis={"type": "date", "range": [ts(edges[0]), ts(edges[-1])]},
        showlegend=False,
    )


def _column_extents(grid: dict[str, Any]) -> list[tuple[float, float, float]]:
    """``(first window start, last window end, bucket)`` per column, oldest first.

    From ``grid["columns"]`` when the grid carries them; otherwise (a grid built by hand) the
    windows are taken to be as long as the bucket (``step_hours``) or the gap between
    consecutive windows, one hour for a lone window."""
    if grid.get("columns"):
        return [(float(lo), float(hi), float(bucket)) for bucket, lo, hi in sorted(grid["columns"])]
    ends: dict[float, float] = {}
    for _, bucket, _, window_epoch, _, _ in grid["cells"]:
        ends[float(bucket)] = max(ends.get(float(bucket), float(window_epoch)), float(window_epoch))
    buckets = sorted(ends)
    if grid["step_hours"]:
        length = grid["step_hours"] * 3600.0
        return [(b - length if ends[b] <= b else b, ends[b], b) for b in buckets]
    gaps = [b - a for a, b in pairwise(buckets)]
    length = min(gaps) if gaps else 3600.0
    return [(ends[b] - length, ends[b], b) for b in buckets]


def _column_cells(grid: dict[str, Any]) -> list[tuple[float, float, float | None]]:
    """Non-overlapping, contiguous cells ``(start, end, bucket)`` covering the columns' time.

    A column's cell ends where its last window ends and starts where its first window starts,
    or where the previous column's cell ended when windows overlap (``every`` shorter than
    ``window``: each cell then shows the newest part of its window). Time no window covers
    becomes a blank cell (bucket ``None``). Nothing is drawn after the last window's end."""
    cells: list[tuple[float, float, float | None]] = []
    previous: float | None = None
    for lo, hi, bucket in _column_extents(grid):
        start = lo if previous is None else max(lo, previous)
        if previous is not None and start > previous:
            cells.append((previous, start, None))
        cells.append((start, hi, bucket))  # start < hi: columns are ordered by their windows' ends
        previous = hi
    return cells


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


def distribution_figure(
    details: dict[str, Any],
    *,
    names: tuple[str, str] = ("reference", "current"),
    colors: tuple[str, str] | None = None,
    title: str = "Reference vs current distribution (share of rows)",
    height: int = 320,
    category_axis: bool = False,
) -> Figure | None:
    """Reference vs current distribution of one finding: histogram shares or category shares.
    ``names`` (already escaped) and ``colors`` label the two sides — the Versions page shows
    version A and B this way; ``category_axis`` keeps category labels that look like numbers
    from being plotted as numbers."""
    colors = colors or (COLORS["reference"], COLORS["current"])
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
                "name": name,
                "marker": {"color": color},
                "opacity": 0.55,
                "hovertemplate": "%{x:.4g}: %{y:.1%}<extra>" + name + "</extra>",
            }
            for side, name, color in zip(("reference", "current"), names, colors, strict=True)
        ]
        barmode = "overlay"
    elif details.get("categories"):
        categories = [esc(c) for c in details["categories"]]
        data = [
            {
                "type": "bar",
                "x": categories,
                "y": details.get(key) or [],
                "name": name,
                "marker": {"color": color},
                "hovertemplate": "%{x}: %{y:.1%}<extra>" + name + "</extra>",
            }
            for key, name, color in zip(("reference_share", "current_share"), names, colors, strict=True)
        ]
        barmode = "group"
    else:
        return None
    if not any(has_points(t) for t in data):
        return None
    layout: dict[str, Any] = {"barmode": barmode, "yaxis": {"tickformat": ".0%", "title": {"text": "share"}}}
    if category_axis and barmode == "group":
        layout["xaxis"] = {"type": "category"}
    return figure(data, title, height=height, **layout)


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
    baseline = _baseline_traces(points, esc(alert["metric"]))
    data.extend(baseline)
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
    title = "Evidence: this series around the alert window (★ = the window that moved it"
    title += "; dotted = the baseline it was judged against)" if baseline else ")"
    return figure(data, title, yaxis={"title": {"text": esc(alert["metric"])}}, xaxis=_single_point_axis(points))


def _baseline_traces(points: Sequence[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """The reference each window was judged against (``details.reference_value``, e.g. the
    previous model version's p95 for a latency regression) as a dotted line, with its interval
    (``details.reference_ci``) as a grey band. The reference the detector used is named in the
    legend and the hover (the finding's ``reference``, e.g. ``model version 2.2.0 (…)``)."""
    with_ref = [f for f in points if isinstance(f["details"].get("reference_value"), int | float)]
    if not with_ref:
        return []
    xs = [ts(f["window_end"]) for f in with_ref]
    described = [esc(f.get("reference") or "the reference") for f in with_ref]
    last = described[-1]
    name = f"baseline {metric}: {last}" if len(last) <= 60 else f"baseline {metric}"
    traces: list[dict[str, Any]] = []
    with_ci = [f for f in with_ref if f["details"].get("reference_ci")]
    if with_ci:
        ci_xs = [ts(f["window_end"]) for f in with_ci]
        traces.append(
            {
                "type": "scatter",
                "x": ci_xs + ci_xs[::-1],
                "y": [f["details"]["reference_ci"][1] for f in with_ci]
                + [f["details"]["reference_ci"][0] for f in with_ci][::-1],
                "fill": "toself",
                "mode": "lines",
                "fillcolor": "rgba(100,116,139,0.15)",
                "line": {"width": 0},
                "hoverinfo": "skip",
                "name": "baseline 95% interval",
                "showlegend": False,
            }
        )
    traces.append(
        {
            "type": "scatter",
            "x": xs,
            "y": [f["details"]["reference_value"] for f in with_ref],
            "name": name,
            "mode": "lines+markers" if len(with_ref) == 1 else "lines",
            "line": {"color": COLORS["reference"], "dash": "dot", "width": 2},
            "marker": {"color": COLORS["reference"], "symbol": "line-ew-open", "size": 14},
            "customdata": described,
            "hovertemplate": f"baseline {metric} %{{y:.4g}}<br>%{{customdata}}<extra></extra>",
        }
    )
    return traces


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
    """Samples routed and annotated per UTC day, side by side within each day.

    Rows are ``(day, count, ...)``; each count is re-bucketed to its day's start, bars are
    exactly half a day wide, and the axis reads dates (see :func:`bucket_axis`)."""
    series = []
    for name, rows, color, offset in (("routed", routed, "#a5b4fc", 0.05), ("annotated", annotated, "#0f766e", 0.5)):
        per_day: dict[datetime, int] = {}
        for row in rows:
            if row[0] is None or not row[1]:
                continue
            day = _floor(row[0], DAY)
            per_day[day] = per_day.get(day, 0) + int(row[1])
        series.append((name, per_day, color, offset))
    days = sorted({d for _, per_day, _, _ in series for d in per_day})
    if not days:
        return None
    data = [
        {
            "type": "bar",
            "x": [ts(d) for d in sorted(per_day)],
            "y": [per_day[d] for d in sorted(per_day)],
            "name": name,
            "marker": {"color": color},
            "offset": int(offset * DAY_MS),
            "width": int(0.45 * DAY_MS),
            "meta": "localtime",
            "textposition": "none",
            "hovertemplate": "%{x|%Y-%m-%d} (UTC day)<br>local start: %{text}" + f"<br>%{{y}} {name}<extra></extra>",
        }
        for name, per_day, color, offset in series
    ]
    return figure(data, "Throughput per day (UTC)", height=280, barmode="overlay", xaxis=bucket_axis(days, DAY))


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
