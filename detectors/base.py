"""What every detector has in common: the two-step interface, config parsing, segment slices.

Every detector is a stateless class with

* ``prepare_reference(reference, spec, config)`` → a reference-statistics object. It is
  the expensive part (sorting, counting) and depends only on the reference, the spec and
  the config, so the monitor computes it once per (model, reference spec, config) and
  caches it;
* ``run(current, reference_stats, config, context)`` → ``list[Finding]``: pure, no I/O,
  no clock (the window comes in ``context``), deterministic.

``input_kind`` says what ``reference``/``current`` are: Arrow tables in the store's flat
layout (``"table"``), row counts (``"counts"``, volume) or last-seen times
(``"last_seen"``, freshness).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import types
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal, Protocol, TypeVar, Union, get_args, get_origin, get_type_hints

import pyarrow as pa
import pyarrow.compute as pc

from detectors.context import RunContext
from detectors.finding import Finding
from detectors.sampling import keep_sampled, sample_rates
from detectors.spec import ModelSpec

InputKind = Literal["table", "counts", "last_seen"]
Segment = dict[str, Any] | None
SegmentKey = tuple[str, Any] | None

C = TypeVar("C")


class Detector(Protocol):
    """The interface the scheduler and the CLI call."""

    name: ClassVar[str]
    input_kind: ClassVar[InputKind]
    config_type: ClassVar[type]
    reads_embedding: ClassVar[bool]
    needs_reference: ClassVar[bool]

    def config(self, params: Mapping[str, Any] | None = None) -> Any: ...

    def window_sample(self, config: Any) -> int | None: ...

    def prepare_reference(self, reference: Any, spec: ModelSpec, config: Any = None) -> Any: ...

    def run(self, current: Any, reference: Any, config: Any, context: RunContext) -> list[Finding]: ...


def _coerce(value: Any, hint: Any) -> Any:
    """Turn YAML/JSON values into the field's type where that is unambiguous (lists → tuples)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        return _coerce(value, args[0]) if len(args) == 1 else value
    if origin is tuple and isinstance(value, list | tuple):
        return tuple(value)
    if hint is float and isinstance(value, int | str) and not isinstance(value, bool):
        return float(value)
    if hint is int and isinstance(value, str):
        return int(value)
    return value


def parse_config(config_type: type[C], params: Mapping[str, Any] | C | None) -> C:
    """Build a config dataclass from monitor ``params``; unknown keys are an error, not ignored.

    A typo such as ``{"treshold": 0.2}`` must fail when the monitor is created, not silently
    run with the default.
    """
    if params is None:
        return config_type()
    if isinstance(params, config_type):
        return params
    if not isinstance(params, Mapping):
        raise TypeError(f"expected a mapping of parameters or {config_type.__name__}, got {type(params).__name__}")
    known = {f.name: f for f in dataclasses.fields(config_type)}  # type: ignore[arg-type]
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(f"unknown parameter(s) {unknown} for {config_type.__name__}; known: {sorted(known)}")
    hints = get_type_hints(config_type)
    return config_type(**{k: _coerce(v, hints[k]) for k, v in params.items()})


class BaseDetector:
    """Shared plumbing: ``config()`` parsing. Subclasses set ``name``, ``input_kind``, ``config_type``."""

    name: ClassVar[str]
    input_kind: ClassVar[InputKind] = "table"
    config_type: ClassVar[type]

    #: Whether the detector reads the ``embedding`` column. Embeddings are the widest column by
    #: far (a 256-d float vector is 1 KB a row), so the monitor leaves them out of every other
    #: detector's scan.
    reads_embedding: ClassVar[bool] = False

    #: Whether a monitor must name a reference. Volume and freshness compare with history or a
    #: silence limit; ``version_comparison`` finds its own in the window (the baseline's rows).
    needs_reference: ClassVar[bool] = True

    def config(self, params: Mapping[str, Any] | None = None) -> Any:
        """Validated config object from a monitor's ``params`` mapping (or ``None`` for defaults)."""
        return parse_config(self.config_type, params)

    def window_sample(self, config: Any) -> int | None:
        """At most this many rows per slice (the window, each segment value) are needed — the
        store then samples in SQL instead of materialising the window — or ``None`` for every
        row (the default: every other detector judges the whole window)."""
        return None


def config_fingerprint(config: Any) -> str:
    """Stable SHA-256 of a config dataclass, for run records and reference-cache keys.

    >>> from detectors.latency import LatencyConfig
    >>> config_fingerprint(LatencyConfig()) == config_fingerprint(LatencyConfig(margin=0.1))
    True
    """
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        payload = dataclasses.asdict(config)
    else:
        payload = dict(config or {})
    text = json.dumps({"type": type(config).__name__, **payload}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def segment_key(segment: Mapping[str, Any] | None) -> SegmentKey:
    """Hashable key for a segment dict (``None`` = the whole window)."""
    if not segment:
        return None
    ((name, value),) = segment.items()
    return (name, value)


def _value_order(value: Any) -> tuple[int, str]:
    return (1, "") if value is None else (0, str(value))


def segment_slices(table: pa.Table, segments: Sequence[str]) -> Iterator[tuple[Segment, pa.Table]]:
    """The whole table first, then one slice per value of each segment column (sorted, null last).

    Segment columns missing from the table are skipped (data quality reports them). A sampled
    reference (``detectors.sampling``) gives each slice its own uniform sample.
    """
    rates = sample_rates(table)
    if rates is None:
        yield None, table
    else:
        yield None, keep_sampled(table, rates.overall)
    for name in segments:
        if name not in table.column_names:
            continue
        column = table.column(name)
        values = sorted(pc.unique(column).to_pylist(), key=_value_order)
        for value in values:
            mask = pc.is_null(column) if value is None else pc.fill_null(pc.equal(column, value), False)
            part = table.filter(mask)
            yield {name: value}, part if rates is None else keep_sampled(part, rates.rate({name: value}))


def min_rows_for(segment: Segment, min_rows: int, min_segment_rows: int) -> int:
    """Minimum sample size: ``min_rows`` for the whole window, ``min_segment_rows`` per segment."""
    return min_rows if segment is None else max(min_rows, min_segment_rows)
