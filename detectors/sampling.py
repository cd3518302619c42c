"""A reference too big to keep whole is judged on a stratified Bernoulli sample of it.

Why: a drift reference keeps the *sorted* values of every numeric column in every segment
slice (``stats.summary``), so a 30-minute trailing reference at 5k rows/s — 9M rows × 25
features × 3 slices — held 4.7 GB in the 1-hour soak. Beyond a few tens of thousands of rows
a bigger reference adds nothing a verdict can use: the effect floors (0.1σ Wasserstein,
0.05 TVD) are estimated to within ~0.005 from 50,000 rows, and the tests' power is then set by
the current window. So each slice (the whole window, and each value of each segment column)
keeps at most ``cap`` rows, drawn uniformly:

* every row carries a uniform key ``u`` in [0, 1) that does not depend on its values (the
  store uses DuckDB's 64-bit ``hash(prediction_id)``, so the same reference gives the same
  sample after a restart);
* slice ``s`` with ``N_s`` rows keeps its rows with ``u < min(1, cap / N_s)`` — Poisson
  (Bernoulli) sampling, Särndal, Swensson & Wretman, *Model Assisted Survey Sampling* (1992)
  §3.2. Each slice is a simple uniform sample of *that slice*; the whole window's sample is not
  skewed towards small segments although their rows are fetched at a higher rate;
* a two-sample test of the current window against an i.i.d. sample of the reference keeps its
  level (the sample is a sample of the same distribution); only its power drops, to that of a
  reference of ``cap`` rows. ``bench/reference_sample.py`` measures both.

The sampled table is a plain Arrow table with the key column and the per-slice rates in its
schema metadata; ``detectors.base.segment_slices`` applies the rates, so every detector's
``prepare_reference`` is unchanged.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: Column holding each row's uniform sampling key (dropped before any detector sees a slice).
SAMPLE_KEY = "__reference_sample_key"
_RATES_META = b"loopwatch.reference_sample_rates"


def _value_key(value: Any) -> str | None:
    """Segment values are keyed by their text (any type survives the JSON metadata); null stays null."""
    return None if value is None else str(value)


@dataclass(frozen=True)
class SampleRates:
    """Inclusion probability of each slice: the whole window, and each segment value (keyed by
    ``_value_key``)."""

    overall: float
    by_segment: Mapping[str, Mapping[str | None, float]] = field(default_factory=dict)

    def rate(self, segment: Mapping[str, Any] | None) -> float:
        if not segment:
            return self.overall
        ((name, value),) = segment.items()
        return self.value_rate(name, value)

    def value_rate(self, name: str, value: Any) -> float:
        return self.by_segment.get(name, {}).get(_value_key(value), 1.0)

    @property
    def samples(self) -> bool:
        """Whether any slice is sampled (all rates 1: the table is the whole reference)."""
        return self.overall < 1.0 or any(r < 1.0 for rates in self.by_segment.values() for r in rates.values())

    @classmethod
    def for_counts(
        cls, total: int, by_segment: Mapping[str, Mapping[Any, int]], cap: int
    ) -> SampleRates:
        """``min(1, cap / N_s)`` for each slice; ``cap`` ≤ 0 keeps everything."""

        def rate(n: int) -> float:
            return 1.0 if cap <= 0 or n <= cap else cap / n

        return cls(
            rate(total),
            {seg: {_value_key(v): rate(n) for v, n in counts.items()} for seg, counts in by_segment.items()},
        )

    def to_json(self) -> bytes:
        return json.dumps(
            {"overall": self.overall, "by_segment": {s: list(r.items()) for s, r in self.by_segment.items()}}
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> SampleRates:
        data = json.loads(raw)
        return cls(data["overall"], {s: {v: r for v, r in pairs} for s, pairs in data["by_segment"].items()})


def mark_sampled(table: pa.Table, rates: SampleRates) -> pa.Table:
    """Attach the slice rates to a table that carries ``SAMPLE_KEY``."""
    if SAMPLE_KEY not in table.column_names:
        raise ValueError(f"a sampled reference needs its {SAMPLE_KEY} column")
    metadata = dict(table.schema.metadata or {})
    metadata[_RATES_META] = rates.to_json()
    return table.replace_schema_metadata(metadata)


def sample_rates(table: pa.Table) -> SampleRates | None:
    """The slice rates of a sampled reference, or ``None`` for an ordinary table."""
    raw = (table.schema.metadata or {}).get(_RATES_META)
    if raw is None or SAMPLE_KEY not in table.column_names:
        return None
    return SampleRates.from_json(raw)


def keep_sampled(part: pa.Table, rate: float) -> pa.Table:
    """The rows of one slice that belong to its sample, without the key column."""
    if rate < 1.0:
        part = part.filter(pc.less(part.column(SAMPLE_KEY), rate))
    return part.drop_columns([SAMPLE_KEY])


def sample_table(table: pa.Table, segments: Sequence[str], cap: int, seed: int = 0) -> pa.Table:
    """Stratified sample of an in-memory reference (a registered dataset file), keys drawn from
    a seeded generator so the same file always gives the same sample. Returns ``table`` itself
    when no slice exceeds ``cap``."""
    total = table.num_rows
    counted = {name: pc.value_counts(table.column(name)) for name in segments if name in table.column_names}
    by_segment = {
        name: dict(zip(c.field("values").to_pylist(), c.field("counts").to_pylist(), strict=True))
        for name, c in counted.items()
    }
    rates = SampleRates.for_counts(total, by_segment, cap)
    if not rates.samples:
        return table
    key = np.random.default_rng(seed).random(total)
    threshold = np.full(total, rates.overall)
    for name, c in counted.items():
        distinct = c.field("values")
        per_value = np.array([rates.value_rate(name, v) for v in distinct.to_pylist()])
        position = pc.index_in(table.column(name), value_set=distinct, skip_nulls=False)
        threshold = np.maximum(threshold, per_value[position.to_numpy(zero_copy_only=False)])
    keep = key < threshold
    sampled = table.filter(pa.array(keep)).append_column(SAMPLE_KEY, pa.array(key[keep]))
    return mark_sampled(sampled, rates)
