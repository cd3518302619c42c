"""Evidently's HTML data-drift report for a chosen window and reference.

Evidently is what scientists know, so loopwatch renders its report for drill-down; it is far
too slow for the hot path (~130 s per million rows here), so windows are sampled down to
``max_rows`` rows (seeded, so the same request gives the same report) and the report says so.
The HTML is self-contained (no CDN), which matters behind firewalls.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from monitor.service import Loopwatch

SKIP_COLUMNS = frozenset({"prediction_id", "timestamp", "ingested_at", "label_timestamp", "probabilities", "embedding"})


@dataclass(frozen=True)
class ReportContext:
    """What the report is about, shown in a banner above Evidently's content."""

    title: str
    current: str
    reference: str


def sample(table: pa.Table, max_rows: int, seed: int = 0) -> tuple[pa.Table, bool]:
    """At most ``max_rows`` rows, chosen uniformly with a fixed seed; (table, was_sampled)."""
    if table.num_rows <= max_rows:
        return table, False
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(table.num_rows, size=max_rows, replace=False))
    return table.take(pa.array(rows)), True


def build_report(
    reference: pa.Table,
    current: pa.Table,
    context: ReportContext,
    *,
    columns: list[str] | None = None,
    max_rows: int = 100_000,
) -> str:
    """Evidently ``DataDriftPreset`` over the shared columns, as one HTML document."""
    from evidently import Report  # slow import (~4 s): only when a report is asked for
    from evidently.presets import DataDriftPreset

    shared = [c for c in current.column_names if c in reference.column_names and c not in SKIP_COLUMNS]
    if columns:
        missing = [c for c in columns if c not in shared]
        if missing:
            raise ValueError(f"columns {missing} are not in both tables")
        shared = columns
    if not shared:
        raise ValueError("the two tables share no columns to compare")
    if reference.num_rows == 0 or current.num_rows == 0:
        raise ValueError("both the reference and the current window need rows")
    ref, ref_sampled = sample(reference.select(shared), max_rows)
    cur, cur_sampled = sample(current.select(shared), max_rows, seed=1)
    snapshot = Report([DataDriftPreset()]).run(cur.to_pandas(), ref.to_pandas())
    document = snapshot.get_html_str(as_iframe=False)
    note = ""
    if ref_sampled or cur_sampled:
        note = (
            f" Sampled to {max_rows:,} rows per side (reference {reference.num_rows:,}, current "
            f"{current.num_rows:,} rows); loopwatch's own drift findings use every row."
        )
    banner = (
        '<div style="font:14px system-ui,sans-serif;padding:10px 16px;background:#eef2ff;border-bottom:1px solid #c7d2fe">'
        f"<strong>{html.escape(context.title)}</strong> — current: {html.escape(context.current)}; "
        f"reference: {html.escape(context.reference)}.{html.escape(note)}</div>"
    )
    head, sep, tail = document.partition("<body>")
    return head + sep + banner + tail if sep else banner + document


def window_report(
    service: Loopwatch,
    model: str,
    current_window: tuple[datetime, datetime],
    reference_window: tuple[datetime, datetime],
    *,
    max_rows: int = 100_000,
) -> str:
    """The report for a model's feature columns: current window vs reference window from the store."""
    from monitor.errors import FieldError, InvalidInput

    columns = list(service.registry.get(model).schema.features)
    current = service.store.scan(model, *current_window, columns=columns, with_labels=False)
    reference = service.store.scan(model, *reference_window, columns=columns, with_labels=False)
    for name, table in (("current", current), ("reference", reference)):
        if table.num_rows == 0:
            raise InvalidInput(
                "no data", [FieldError(field="window", reason=f"the {name} window holds no predictions")]
            )

    def describe(window: tuple[datetime, datetime], rows: int) -> str:
        return f"{window[0].isoformat()} – {window[1].isoformat()} ({rows:,} rows)"

    context = ReportContext(
        f"loopwatch · {model}",
        describe(current_window, current.num_rows),
        describe(reference_window, reference.num_rows),
    )
    return build_report(reference, current, context, columns=columns, max_rows=max_rows)
