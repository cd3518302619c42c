"""Two analysis pages of a model: two versions side by side, and performance per segment value.

``/models/{model}/versions?a=X&b=Y`` compares model versions over a range (default: the two
most recent versions with traffic in it); ``/models/{model}/segments?segment=NAME`` breaks the
realized FN/FP rate, precision and recall down by the values of one segment column, worst
first. Readers are :mod:`dashboards.versions` and :mod:`dashboards.segments`; figures
:mod:`dashboards.analysis_figures` (and the overview's volume chart). The range works as on the
overview (presets or a from/to form), and every table downloads as CSV.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dashboards import analysis_figures, figures
from dashboards import segments as segment_reader
from dashboards import versions as version_reader
from dashboards.html import View, iso, part, url
from dashboards.pages import (
    Context,
    RangeQuery,
    feature_path,
    model_path,
    resolve_range,
)
from dashboards.pages import range_params as range_params
from dashboards.pages import range_picker as range_picker
from dashboards.rates import MIN_LABELED, RATE_LABELS, WORSE_IS_HIGHER, Quality, model_spec, rate_class
from dashboards.tables import CsvColumn, Table
from detectors.spec import Task

ERROR_LABELS = {"mae": "MAE", "rmse": "RMSE"}


def versions_path(model: str) -> str:
    return f"{model_path(model)}/versions"


def segments_path(model: str) -> str:
    return f"{model_path(model)}/segments"


def _class_links(schema: Any, chosen: str | None, base: str, **keep: Any) -> list[dict[str, Any]]:
    if schema.task != "multiclass":
        return []
    return [{"label": c, "active": c == chosen, "href": url(base, cls=c, **keep)} for c in schema.classes or []]


# -- model versions side by side --------------------------------------------------------------


@dataclass(frozen=True)
class SummaryRow:
    """One line of the comparison table: a measure for A, for B, and B − A where it means something."""

    measure: str
    kind: str  # count | share | ms | rate | error
    a: float | None
    b: float | None
    a_low: float | None = None
    a_high: float | None = None
    b_low: float | None = None
    b_high: float | None = None
    a_n: int | None = None  # the rate's denominator
    b_n: int | None = None
    diff: float | None = None
    diff_low: float | None = None
    diff_high: float | None = None
    worse_if_higher: bool = True

    @property
    def verdict(self) -> str | None:
        """``worse``/``better`` when B − A's interval excludes zero (rates only), else None."""
        if self.kind != "rate" or self.diff_low is None or self.diff_high is None:
            return None
        if self.diff_low > 0:
            return "worse" if self.worse_if_higher else "better"
        if self.diff_high < 0:
            return "better" if self.worse_if_higher else "worse"
        return None


def _summary(cmp: version_reader.Comparison) -> list[SummaryRow]:
    a, b = cmp.a, cmp.b
    rows = [
        SummaryRow("Predictions", "count", a.predictions, b.predictions),
        SummaryRow("Labelled", "count", a.labels, b.labels),
        SummaryRow("Label coverage", "share", _share(a.labels, a.predictions), _share(b.labels, b.predictions)),
        SummaryRow("Latency p50", "ms", a.latency_p50, b.latency_p50, diff=_minus(b.latency_p50, a.latency_p50)),
        SummaryRow("Latency p95", "ms", a.latency_p95, b.latency_p95, diff=_minus(b.latency_p95, a.latency_p95)),
    ]
    for metric, label in RATE_LABELS.items():
        ra, rb = a.quality.rates.get(metric), b.quality.rates.get(metric)
        if ra is None and rb is None:
            continue
        d = cmp.differences.get(metric)
        rows.append(
            SummaryRow(
                label + (f" ({cmp.cls})" if cmp.cls else ""),
                "rate",
                ra.value if ra else None,
                rb.value if rb else None,
                ra.low if ra else None,
                ra.high if ra else None,
                rb.low if rb else None,
                rb.high if rb else None,
                ra.n if ra else None,
                rb.n if rb else None,
                d.diff if d else None,
                d.low if d else None,
                d.high if d else None,
                WORSE_IS_HIGHER[metric],
            )
        )
    for metric, label in ERROR_LABELS.items():
        ea, eb = a.quality.errors.get(metric), b.quality.errors.get(metric)
        if ea is None and eb is None:
            continue
        rows.append(
            SummaryRow(
                label,
                "error",
                ea.value if ea else None,
                eb.value if eb else None,
                ea.low if ea else None,
                ea.high if ea else None,
                eb.low if eb else None,
                eb.high if eb else None,
                ea.n if ea else None,
                eb.n if eb else None,
                _minus(eb.value if eb else None, ea.value if ea else None),
            )
        )
    return rows


def _share(part_: int, whole: int) -> float | None:
    return part_ / whole if whole else None


def _minus(x: float | None, y: float | None) -> float | None:
    return None if x is None or y is None else x - y


def versions_page(
    ctx: Context,
    model: str,
    *,
    query: RangeQuery | None = None,
    a: str | None = None,
    b: str | None = None,
    cls: str | None = None,
) -> View:
    """Versions ``a`` and ``b`` of ``model`` side by side over the range (see the module docstring)."""
    query = query or RangeQuery()
    service = ctx.data.service
    registered = service.registry.get(model)
    schema = registered.schema
    span, range_error = resolve_range(query, ctx.now)
    keep = range_params(query, span, range_error)
    base = versions_path(model)
    available = version_reader.traffic(service, model, span)
    default_a, default_b = version_reader.default_pair(available)
    a = a or default_a
    b = b or default_b
    chosen_cls = rate_class(model_spec(schema), cls)
    view = View(
        "versions.html",
        f"{model} · versions",
        {},
        crumbs=[("Models", "/models"), (model, model_path(model)), ("versions", None)],
        csv_name=f"loopwatch-{model}-versions",
        status=422 if range_error else 200,
    )
    problem = None
    if a is None or b is None:
        only = f" (only v{available[0].version})" if available else ""
        problem = f"Fewer than two model versions have traffic in this range{only}: widen the range to compare."
    elif a == b:
        problem = f"Version A and version B are both v{a}: pick two different versions."
    counted = {t.version for t in available}
    silent = [v for v in (a, b) if v is not None and v not in counted]
    ctx.data.rollups.ensure(model)
    comparison = None
    if problem is None and a is not None and b is not None:
        comparison = version_reader.compare(service, model, span, a, b, chosen_cls, available)
        rows = [
            r
            for r in ctx.data.rollups.hourly(
                model, span.start.replace(minute=0, second=0, microsecond=0), span.end, versions=True
            )
            if r.model_version in (a, b)
        ]
        view.chart(
            "volume",
            figures.volume_figure(rows, daily=span.days > 21),
            "fig-volume",
            "No traffic of these versions in this range.",
        )
        view.chart(
            "latency",
            analysis_figures.version_latency_figure(rows, [a, b]),
            "fig-latency",
            "No latency logged for these versions in this range.",
        )
        view.chart(
            "rates",
            analysis_figures.version_rates_figure([comparison.a, comparison.b]),
            "fig-rates",
            "No labels for these versions in this range yet: realized FN/FP rates need ground truth.",
        )
        for i, row in enumerate(comparison.outputs):
            view.chart(
                f"output{i}",
                analysis_figures.version_distribution_figure(row, a, b),
                f"fig-dist-{i}",
                f"No distribution recorded for {row.column}.",
            )
    summary = _summary(comparison) if comparison else []
    view.tables["summary"] = Table(
        "summary",
        ["Measure", f"A · v{a}" if a else "A", f"B · v{b}" if b else "B", "B − A"],
        summary,
        [
            CsvColumn("measure", lambda r: r.measure),
            CsvColumn("version_a", lambda r: a),
            CsvColumn("value_a", lambda r: r.a),
            CsvColumn("low_a", lambda r: r.a_low),
            CsvColumn("high_a", lambda r: r.a_high),
            CsvColumn("n_a", lambda r: r.a_n),
            CsvColumn("version_b", lambda r: b),
            CsvColumn("value_b", lambda r: r.b),
            CsvColumn("low_b", lambda r: r.b_low),
            CsvColumn("high_b", lambda r: r.b_high),
            CsvColumn("n_b", lambda r: r.b_n),
            CsvColumn("b_minus_a", lambda r: r.diff),
            CsvColumn("b_minus_a_low", lambda r: r.diff_low),
            CsvColumn("b_minus_a_high", lambda r: r.diff_high),
            CsvColumn("b_versus_a", lambda r: r.verdict),
        ],
        problem or "Nothing to compare.",
        "summary",
    )
    drift = [*comparison.outputs, *comparison.inputs] if comparison else []
    view.tables["drift"] = Table(
        "drift",
        ["Column", "Method", "Score", "Threshold", "p (adjusted)", "Verdict", f"Rows v{a}", f"Rows v{b}"],
        drift,
        [
            CsvColumn("column", lambda d: d.column),
            CsvColumn("method", lambda d: d.method),
            CsvColumn("score", lambda d: d.value),
            CsvColumn("threshold", lambda d: d.threshold),
            CsvColumn("p_value", lambda d: d.p_value),
            CsvColumn("status", lambda d: d.status),
            CsvColumn("rows_a", lambda d: d.n_a),
            CsvColumn("rows_b", lambda d: d.n_b),
        ],
        problem or "No rows to compare.",
        "drift",
    )
    picker_keep = {k: v for k, v in {**keep, "cls": cls}.items() if v not in (None, "")}
    view.context.update(
        model=model,
        schema=schema,
        span=span,
        range=range_picker(base, span, query, range_error, a=a, b=b, cls=cls),
        available=available,
        picker_versions=[*[t.version for t in available], *dict.fromkeys(silent)],
        silent=silent,
        first_seen=version_reader.first_seen(ctx.data.versions(model)),
        a=a,
        b=b,
        problem=problem,
        comparison=comparison,
        picker_action=base,
        picker_hidden=list(picker_keep.items()),
        class_links=_class_links(schema, chosen_cls, base, a=a, b=b, **keep),
        overview=url(model_path(model), **keep),
        min_labeled=MIN_LABELED,
        row_cap=version_reader.ROW_CAP,
    )
    return view


# -- performance per segment value --------------------------------------------------------------


def _quality_csv(prefix: str, metric: str) -> list[CsvColumn]:
    def pick(row: dict[str, Any], attr: str) -> Any:
        q: Quality = row["quality"]
        item = q.rates.get(metric) or q.errors.get(metric)
        return getattr(item, attr) if item is not None else None

    columns = [
        CsvColumn(prefix, lambda r: pick(r, "value")),
        CsvColumn(f"{prefix}_low", lambda r: pick(r, "low")),
        CsvColumn(f"{prefix}_high", lambda r: pick(r, "high")),
    ]
    if metric in RATE_LABELS:
        columns.append(CsvColumn(f"{prefix}_n", lambda r: pick(r, "n")))
    return columns


def segments_page(
    ctx: Context,
    model: str,
    *,
    query: RangeQuery | None = None,
    segment: str | None = None,
    cls: str | None = None,
    sort: str | None = None,
) -> View:
    """Realized performance per value of ``segment`` (default: the model's first segment column)."""
    query = query or RangeQuery()
    service = ctx.data.service
    registered = service.registry.get(model)
    schema = registered.schema
    spec = model_spec(schema)
    span, range_error = resolve_range(query, ctx.now)
    keep = range_params(query, span, range_error)
    base = segments_path(model)
    segment = segment or (schema.segments[0] if schema.segments else None)
    chosen_cls = rate_class(spec, cls)
    view = View(
        "segments.html",
        f"{model} · segments",
        {},
        crumbs=[("Models", "/models"), (model, model_path(model)), ("segments", None)],
        csv_name=f"loopwatch-{model}-segments-{segment or 'none'}",
        status=422 if range_error else 200,
    )
    result = segment_reader.breakdown(service, model, segment, span, chosen_cls, sort) if segment else None
    regression = spec.task is Task.REGRESSION
    metrics = list(ERROR_LABELS) if regression else list(RATE_LABELS)
    first_feature = next(iter(schema.features), None)

    def drift_link(value: str | None) -> str | None:
        if value is None or first_feature is None or segment is None:
            return None
        return url(feature_path(model, first_feature), segment=f"{segment}:{value}", **keep)

    def rows_link(value: str | None) -> str | None:
        if value is None or segment is None:
            return None
        return url(
            f"/v1/models/{part(model)}/predictions",
            segment=f"{segment}:{value}",
            start=iso(span.start),
            end=iso(span.end),
        )

    rows: list[dict[str, Any]] = []
    if result is not None:
        rows.append(
            {
                "value": None,
                "text": "all traffic",
                "total": True,
                "quality": result.overall,
                "drift": None,
                "rows_link": None,
            }
        )
        for v in result.values:
            rows.append(
                {
                    "value": v.value,
                    "text": v.text,
                    "total": False,
                    "quality": v.quality,
                    "drift": drift_link(v.value),
                    "rows_link": rows_link(v.value),
                }
            )
        shown = [r for r in rows if not r["total"]]
        chart_metrics = ["mae"] if regression else ["fnr", "fpr"]
        if regression:
            view.chart("rates", None, "fig-segment-rates", "Regression errors are listed in the table below.")
        else:
            view.chart(
                "rates",
                analysis_figures.segment_rates_figure(
                    [r["text"] for r in shown],
                    {m: [r["quality"].rates.get(m) for r in shown] for m in chart_metrics},
                    [r["quality"].enough_labels for r in shown],
                    [r["drift"] for r in shown],
                    f"FN and FP rate by {segment} (95% Wilson intervals; pale = fewer than {MIN_LABELED} labels)"
                    + (f" · class {chosen_cls}" if schema.task == "multiclass" else ""),
                ),
                "fig-segment-rates",
                "No labels in this range yet: rates appear once ground truth arrives.",
            )
    csv_columns = [
        CsvColumn("segment", lambda r: segment),
        CsvColumn("value", lambda r: r["text"] if r["total"] else r["value"]),
        CsvColumn("rows", lambda r: r["quality"].rows),
        CsvColumn("labelled", lambda r: r["quality"].labelled),
        CsvColumn("coverage", lambda r: r["quality"].coverage),
        CsvColumn("enough_labels", lambda r: r["quality"].enough_labels),
    ]
    for metric in metrics:
        csv_columns.extend(_quality_csv(metric, metric))
    headers = ["Value", "Rows", "Labelled", "Coverage"]
    headers += [ERROR_LABELS[m] for m in metrics] if regression else [RATE_LABELS[m] for m in metrics]
    headers.append("")
    view.tables["segments"] = Table(
        "segments",
        headers,
        rows,
        csv_columns,
        f"No rows of {model} in this range."
        if segment
        else f"{model} has no segment columns (segments: in its schema).",
        "segments",
    )
    sorts = segment_reader.sort_options(spec)
    view.context.update(
        model=model,
        schema=schema,
        span=span,
        segment=segment,
        result=result,
        metrics=metrics,
        regression=regression,
        cls=chosen_cls,
        range=range_picker(base, span, query, range_error, segment=segment, cls=cls, sort=sort),
        segment_links=[
            {"label": s, "active": s == segment, "href": url(base, segment=s, cls=cls, sort=sort, **keep)}
            for s in schema.segments
        ],
        sort_links=[
            {
                "label": ERROR_LABELS.get(s) or RATE_LABELS[s],
                "active": result is not None and s == result.sort,
                "href": url(base, segment=segment, cls=cls, sort=s, **keep),
            }
            for s in sorts
        ],
        class_links=_class_links(schema, chosen_cls, base, segment=segment, sort=sort, **keep),
        min_labeled=MIN_LABELED,
        overview=url(model_path(model), **keep),
        row_cap=segment_reader.ROW_CAP,
    )
    return view
