"""Run one detector over one window of one model: the unit of work a monitor run is made of.

This is where the store meets the pure detectors: read the current window (only the files that
overlap it), resolve the reference and fetch its prepared statistics from the cache, pick the
inputs the detector kind needs (a table, counts for volume, last-seen times for freshness),
run it, and fingerprint the data so any run can be reproduced.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pyarrow as pa

from detectors import (
    Detector,
    Finding,
    LastSeen,
    ModelSpec,
    RunContext,
    VolumeCounts,
    config_fingerprint,
    get_detector,
)
from detectors.attribution import attach as attach_segments_behind
from detectors.sampling import sample_table
from monitor.errors import InvalidInput
from monitor.references import ReferenceCache, ReferenceSpec, ResolvedReference, load_dataset, resolve_reference
from monitor.schema import ModelSchema

if TYPE_CHECKING:
    from monitor.registry import Registry
    from monitor.store import PredictionStore


class WindowTables(Protocol):
    """Where a window's rows and a reference's rows come from: the store itself (DuckDB over the
    hot table and sealed Parquet) or another engine reading the same sealed files (Spark), which
    must return the same rows in the same order and types."""

    def scan(
        self,
        model_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: list[str] | None = None,
    ) -> pa.Table: ...

    def reference_sample(
        self,
        model_name: str,
        start: datetime | None,
        end: datetime | None,
        *,
        segments: list[str],
        cap: int,
        model_version: str | None = None,
        columns: list[str] | None = None,
    ) -> pa.Table: ...


@dataclass(frozen=True)
class Evaluation:
    findings: list[Finding]
    window_start: datetime
    window_end: datetime
    reference: ResolvedReference | None
    rows: int
    data_fingerprint: str
    config_hash: str
    details: dict[str, Any] = field(default_factory=dict)
    labels: int = 0


def data_fingerprint(table: pa.Table) -> str:
    """Rows and a content hash of (prediction_id, label): the same window data gives the same print."""
    digest = hashlib.sha256()
    for name in ("prediction_id", "label"):
        if name in table.column_names:
            for chunk in table.column(name).chunks:
                for buf in chunk.buffers():
                    if buf is not None:
                        digest.update(buf)
    return f"{table.num_rows}:{digest.hexdigest()[:16]}"


class Evaluator:
    """Holds the store and registry (not the whole service: no reference cycle keeps a closed
    DuckDB connection alive)."""

    def __init__(
        self,
        store: PredictionStore,
        registry: Registry,
        references_dir: Path,
        cache: ReferenceCache | None = None,
        *,
        reference_sample_rows: int = 0,
        tables: WindowTables | None = None,
    ) -> None:
        """``reference_sample_rows``: a reference slice with more rows is judged on a uniform
        sample of this many (``detectors.sampling``); 0 keeps every row. ``tables``: where window
        and reference rows are read (default: the store); counts and last-seen times always come
        from the store."""
        self._store = store
        self._tables: WindowTables = tables if tables is not None else store
        self._registry = registry
        self.references_dir = references_dir
        self.cache = cache or ReferenceCache()
        self.reference_sample_rows = reference_sample_rows

    def evaluate(
        self,
        model: str,
        detector_name: str,
        params: dict[str, Any],
        window: tuple[datetime, datetime],
        reference: ReferenceSpec | None,
        segments: list[str] | None = None,
        *,
        freeze_before: datetime | None = None,
    ) -> Evaluation:
        """Run one detector over ``window``. ``freeze_before``: a trailing reference must end at
        or before this time (the caller's rule — e.g. while the monitor has an open alert)."""
        registered = self._registry.get(model)
        spec = ModelSpec.from_dict(registered.schema.model_dump())
        detector = get_detector(detector_name)
        params = dict(params)
        history_days = int(params.pop("history_days", 7))  # the evaluator's own option (volume)
        config = detector.config({**params, "segments": list(segments or [])})
        config_hash = config_fingerprint(config)
        start, end = window
        store = self._store

        if detector.input_kind == "last_seen":
            current: Any = self._last_seen(model, segments or [], end)
            stats = detector.prepare_reference(None, spec, config)
            ctx = RunContext(model, start, end, reference="silence threshold")
            findings = detector.run(current, stats, config, ctx)
            return Evaluation(findings, start, end, None, 0, f"last_seen:{current.at}", config_hash)

        if detector.input_kind == "counts":
            days = history_days
            current_counts = store.counts(model, start, end, segments or [])
            history = [
                store.counts(model, start - timedelta(days=d), end - timedelta(days=d), segments or [])
                for d in range(1, days + 1)
            ]
            counts = VolumeCounts(
                total=[h["total"] for h in history],
                by_segment={
                    seg: _merge_history([h["by_segment"].get(seg, {}) for h in history]) for seg in segments or []
                },
            )
            now_counts = VolumeCounts(total=current_counts["total"], by_segment=current_counts["by_segment"])
            stats = detector.prepare_reference(counts, spec, config)
            ctx = RunContext(model, start, end, reference=f"same hours on the previous {days} days")
            findings = detector.run(now_counts, stats, config, ctx)
            return Evaluation(
                findings, start, end, None, current_counts["total"], f"counts:{current_counts['total']}", config_hash
            )

        columns = _scan_columns(registered.schema, detector)
        cap = detector.window_sample(config)
        if cap is None:
            table = self._tables.scan(model, start, end, columns=columns)
        else:
            table = self._tables.reference_sample(model, start, end, segments=segments or [], cap=cap, columns=columns)
        current_version = _dominant_version(table)
        if not detector.needs_reference:
            # The detector finds its reference in the window itself (version_comparison: the
            # baseline version's rows of the same window).
            ctx = RunContext(model, start, end, reference="in the window")
            findings = detector.run(table, detector.prepare_reference(None, spec, config), config, ctx)
            return _evaluation(findings, window, None, table, config_hash, current_version)
        try:
            resolved = (
                resolve_reference(
                    reference,
                    window_start=start,
                    references_dir=self.references_dir,
                    versions=self._registry.versions(model),
                    current_version=current_version,
                    freeze_before=freeze_before,
                )
                if reference is not None
                else None
            )
        except InvalidInput as exc:
            if reference is None or reference.kind != "previous_version":
                raise
            # Before the first rollout there is nothing to compare with: not a failure, no verdict.
            ctx = RunContext(model, start, end, reference="previous model version")
            finding = ctx.finding(
                detector_name,
                metric="reference",
                status="insufficient_data",
                details={"reason": exc.message, "model_version": current_version},
            )
            return _evaluation([finding], window, None, table, config_hash, current_version)
        if resolved is None:
            raise ValueError(f"detector {detector_name} needs a reference")
        key = (model, registered.schema_version, resolved.key, detector_name, config_hash)
        # A detector judged on a fixed-size sample needs no bigger a reference sample either.
        reference_cap = self.reference_sample_rows
        if cap is not None:
            reference_cap = min(cap, reference_cap) if reference_cap else cap
        stats = self.cache.get_or_prepare(
            key,
            lambda: detector.prepare_reference(
                self._reference_table(model, resolved, segments or [], columns, reference_cap), spec, config
            ),
        )
        ctx = RunContext(model, start, end, reference=resolved.description, model_version=None)
        findings = attach_segments_behind(detector.run(table, stats, config, ctx))
        return _evaluation(findings, window, resolved, table, config_hash, current_version)

    def _reference_table(
        self,
        model: str,
        resolved: ResolvedReference,
        segments: list[str],
        columns: list[str] | None = None,
        cap: int | None = None,
    ) -> pa.Table:
        cap = self.reference_sample_rows if cap is None else cap
        if resolved.kind == "dataset":
            assert resolved.path is not None
            return sample_table(load_dataset(resolved.path), segments, cap)
        return self._tables.reference_sample(
            model,
            resolved.start,
            resolved.end,
            segments=segments,
            cap=cap,
            model_version=resolved.model_version,
            columns=columns,
        )

    def _last_seen(self, model: str, segments: list[str], before: datetime) -> LastSeen:
        seen = self._store.last_seen(model, segments, before=before)
        return LastSeen(at=seen["at"], by_segment=seen["by_segment"])


def _evaluation(
    findings: list[Finding],
    window: tuple[datetime, datetime],
    reference: ResolvedReference | None,
    table: pa.Table,
    config_hash: str,
    model_version: str | None,
) -> Evaluation:
    """The evaluation of a window table: its rows and fingerprint, and the version that dominated it."""
    return Evaluation(
        findings,
        window[0],
        window[1],
        reference,
        table.num_rows,
        data_fingerprint(table),
        config_hash,
        {"model_version": model_version},
    )


def _merge_history(per_day: list[dict[str, int]]) -> dict[str, list[int]]:
    values = sorted({v for day in per_day for v in day})
    return {v: [day.get(v, 0) for day in per_day] for v in values}


def _scan_columns(schema: ModelSchema, detector: Detector) -> list[str] | None:
    """The columns a detector's window needs: everything but the embedding (the widest column
    by far) unless the detector reads it, and then only the embedding with what identifies and
    slices a row."""
    if schema.embedding is None:
        return None
    if detector.reads_embedding:
        return ["prediction_id", "timestamp", "model_version", "embedding", *schema.segments]
    return [f.name for f in schema.arrow_schema() if f.name != "embedding"]


def _dominant_version(table: pa.Table) -> str | None:
    if table.num_rows == 0 or "model_version" not in table.column_names:
        return None
    counts = table.group_by("model_version").aggregate([("model_version", "count")]).to_pylist()
    return max(counts, key=lambda r: r["model_version_count"])["model_version"]
