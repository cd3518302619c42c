"""Plotly figures of the model-version comparison and the per-segment drill-down.

Pure builders in the style of :mod:`dashboards.figures` (whose helpers they use): rows in, a
figure as a plain dict out, or ``None`` when there is nothing to draw. Rates carry their 95%
Wilson intervals as asymmetric error bars; free text (versions, segment values, categories)
is HTML-escaped because plotly interprets a few tags in labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dashboards.figures import (
    COLORS,
    HOVER_TIME,
    VERSION_COLORS,
    Figure,
    distribution_figure,
    esc,
    figure,
    ts,
)
from dashboards.rates import RATE_LABELS, Rate
from dashboards.versions import DriftRow, VersionSide

TOO_FEW = "#cbd5e1"


def _color(version: str, versions: Sequence[str]) -> str:
    """A version's colour: by its rank among the versions shown, as in the volume chart."""
    ranked = sorted(set(versions))
    return VERSION_COLORS[ranked.index(version) % len(VERSION_COLORS)] if version in ranked else VERSION_COLORS[-1]


def _error_bars(rates: Sequence[Rate | None]) -> dict[str, Any]:
    """Asymmetric error bars from each rate's Wilson interval (0 where there is no rate)."""
    plus = [(r.high - r.value) if r and r.value is not None and r.high is not None else 0 for r in rates]
    minus = [(r.value - r.low) if r and r.value is not None and r.low is not None else 0 for r in rates]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.5, "width": 4}


def version_latency_figure(rows: Sequence[Any], versions: Sequence[str]) -> Figure | None:
    """Hourly latency p50 (solid) and p95 (dotted) of each version, from the hourly rollups."""
    data: list[dict[str, Any]] = []
    for version in versions:
        mine = [r for r in rows if r.model_version == version and r.latency_n]
        if not mine:
            continue
        color = _color(version, versions)
        for name, dash in (("p50", "solid"), ("p95", "dot")):
            data.append(
                {
                    "type": "scatter",
                    "x": [ts(r.hour) for r in mine],
                    "y": [getattr(r, name) for r in mine],
                    "name": f"v{esc(version)} {name}",
                    "mode": "lines",
                    "line": {"color": color, "width": 1.6, "dash": dash},
                    "meta": "localtime",
                    "hovertemplate": HOVER_TIME + f"<br>{name} %{{y:.1f}} ms<extra>%{{fullData.name}}</extra>",
                }
            )
    if not data:
        return None
    return figure(data, "Latency per hour (ms; solid p50, dotted p95)", yaxis={"title": {"text": "ms"}})


def version_distribution_figure(row: DriftRow, a: str, b: str) -> Figure | None:
    """Version A's and B's distribution of one column (share of rows): histogram or categories."""
    return distribution_figure(
        row.details,
        names=(f"v{esc(a)}", f"v{esc(b)}"),
        colors=(_color(a, (a, b)), _color(b, (a, b))),
        title=f"{row.column}: share of rows per version",
        height=280,
        category_axis=True,
    )


def version_rates_figure(sides: Sequence[VersionSide]) -> Figure | None:
    """Realized FN/FP rate, precision and recall of each version, with 95% Wilson intervals."""
    metrics = [m for m in RATE_LABELS if any(m in s.quality.rates for s in sides)]
    if not metrics or not any(r.n for s in sides for r in s.quality.rates.values()):
        return None
    data = []
    shown = [s.version for s in sides]
    for side in sides:
        rates = [side.quality.rates.get(m) for m in metrics]
        data.append(
            {
                "type": "bar",
                "x": [RATE_LABELS[m] for m in metrics],
                "y": [r.value if r else None for r in rates],
                "name": f"v{esc(side.version)}",
                "marker": {"color": _color(side.version, shown)},
                "error_y": _error_bars(rates),
                "customdata": [[r.hits if r else 0, r.n if r else 0] for r in rates],
                "hovertemplate": "%{x}: %{y:.2%} (%{customdata[0]} of %{customdata[1]})<extra>%{fullData.name}</extra>",
            }
        )
    return figure(
        data,
        "Realized performance (labelled rows; bars = 95% Wilson interval)",
        barmode="group",
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
        xaxis={"type": "category"},
    )


def segment_rates_figure(
    labels: Sequence[str],
    rates: dict[str, Sequence[Rate | None]],
    judged: Sequence[bool],
    urls: Sequence[str | None],
    title: str,
) -> Figure | None:
    """One bar group per segment value: each metric's rate with its 95% Wilson interval.
    Values with too few labels are drawn pale; clicking a bar opens ``urls[i]``."""
    if not labels or not any(r is not None and r.n for series in rates.values() for r in series):
        return None
    palette = {"fnr": COLORS["fnr"], "fpr": COLORS["fpr"], "precision": COLORS["precision"], "recall": COLORS["recall"]}
    xs = [esc(v) for v in labels]
    data = []
    for metric, series in rates.items():
        color = palette.get(metric, "#64748b")
        data.append(
            {
                "type": "bar",
                "x": xs,
                "y": [r.value if r is not None else None for r in series],
                "name": RATE_LABELS[metric],
                "marker": {"color": [color if ok else TOO_FEW for ok in judged]},
                "error_y": _error_bars(series),
                "customdata": [
                    [u or "", r.hits if r else 0, r.n if r else 0, "" if ok else " (too few labels)"]
                    for u, r, ok in zip(urls, series, judged, strict=True)
                ],
                "hovertemplate": "%{x}: %{y:.2%} (%{customdata[1]} of %{customdata[2]})%{customdata[3]}"
                "<extra>" + RATE_LABELS[metric] + "</extra>",
            }
        )
    return figure(
        data,
        title,
        barmode="group",
        yaxis={"tickformat": ".0%", "rangemode": "tozero"},
        xaxis={"type": "category"},
    )
