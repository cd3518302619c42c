"""Reference specs: validation, resolution to concrete rows, and the prepared-statistics cache."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from monitor.errors import InvalidInput, NotFound
from monitor.references import ReferenceCache, ReferenceSpec, parse_duration, resolve_reference

T0 = datetime(2026, 11, 20, 14, 37, tzinfo=UTC)


def test_durations() -> None:
    """Durations use s/m/h/d/w suffixes; anything else is refused with an example."""
    assert parse_duration("15m") == timedelta(minutes=15) and parse_duration("2w") == timedelta(days=14)
    with pytest.raises(ValueError, match="such as"):
        parse_duration("fortnight")


@pytest.mark.parametrize(
    "spec",
    [
        {"kind": "window", "start": "2026-11-02T00:00:00Z", "end": "2026-11-01T00:00:00Z"},
        {"kind": "trailing"},
        {"kind": "trailing", "length": "a week"},
        {"kind": "dataset", "path": "../../etc/passwd"},
        {"kind": "dataset", "path": "sub/dir.parquet"},
        {"kind": "window", "start": "2026-11-01T00:00:00Z", "end": "2026-11-02T00:00:00Z", "colour": "red"},
    ],
)
def test_invalid_reference_specs_are_refused(spec: dict) -> None:
    """Empty windows, missing lengths, path traversal and unknown keys are refused."""
    with pytest.raises(ValidationError):
        ReferenceSpec.model_validate(spec)


def test_trailing_reference_is_hour_aligned(tmp_path: Path) -> None:
    """Runs within the same hour resolve a trailing reference to the same rows (one cache entry)."""
    spec = ReferenceSpec(kind="trailing", length="7d")
    a = resolve_reference(spec, window_start=T0, references_dir=tmp_path, versions=[], current_version=None)
    b = resolve_reference(
        spec, window_start=T0 + timedelta(minutes=15), references_dir=tmp_path, versions=[], current_version=None
    )
    assert a.key == b.key and a.end == datetime(2026, 11, 20, 14, tzinfo=UTC) and a.start == a.end - timedelta(days=7)


def test_previous_version_reference(tmp_path: Path) -> None:
    """previous_version picks the version first seen before the current one, over its last days."""
    versions = [
        {"version": "1.0", "first_seen": "2026-10-01T00:00:00+00:00", "last_seen": "2026-11-10T00:00:00+00:00"},
        {"version": "2.0", "first_seen": "2026-11-10T00:00:00+00:00", "last_seen": "2026-11-20T00:00:00+00:00"},
    ]
    spec = ReferenceSpec(kind="previous_version", max_days=3)
    resolved = resolve_reference(
        spec, window_start=T0, references_dir=tmp_path, versions=versions, current_version="2.0"
    )
    assert resolved.model_version == "1.0" and resolved.start == datetime(2026, 11, 7, tzinfo=UTC)
    with pytest.raises(InvalidInput, match="first one"):
        resolve_reference(spec, window_start=T0, references_dir=tmp_path, versions=versions, current_version="1.0")


def test_missing_dataset_is_not_found(tmp_path: Path) -> None:
    """A dataset reference must exist in references/."""
    with pytest.raises(NotFound):
        resolve_reference(
            ReferenceSpec(kind="dataset", path="train.parquet"),
            window_start=T0,
            references_dir=tmp_path,
            versions=[],
            current_version=None,
        )


def test_cache_prepares_once_and_is_bounded() -> None:
    """The same key prepares once; the cache evicts the least recently used entry past its size."""
    cache = ReferenceCache(max_entries=2)
    calls: list[str] = []
    for key in ["a", "a", "b", "c", "a"]:
        cache.get_or_prepare((key,), lambda key=key: calls.append(key) or key)
    assert calls == ["a", "b", "c", "a"] and cache.hits == 1


def test_a_frozen_trailing_reference_ends_at_the_freeze_and_has_its_own_cache_key(tmp_path: Path) -> None:
    """freeze_before earlier than the trailing end holds the reference there (same length, own cache key);
    a freeze at or after the normal end changes nothing; fixed references ignore it."""
    spec = ReferenceSpec(kind="trailing", length="7d")
    kwargs = {"window_start": T0, "references_dir": tmp_path, "versions": [], "current_version": None}
    free = resolve_reference(spec, **kwargs)
    freeze = datetime(2026, 11, 19, 9, 15, tzinfo=UTC)
    frozen = resolve_reference(spec, **kwargs, freeze_before=freeze)
    assert frozen.end == freeze and frozen.start == freeze - timedelta(days=7) and frozen.frozen_at == freeze
    assert "frozen" in frozen.description and frozen.key != free.key and freeze in frozen.key
    assert resolve_reference(spec, **kwargs, freeze_before=T0).key == free.key
    window = ReferenceSpec(kind="window", start=T0 - timedelta(days=9), end=T0 - timedelta(days=2))
    assert resolve_reference(window, **kwargs, freeze_before=freeze) == resolve_reference(window, **kwargs)


def test_reference_cache_is_bounded_in_bytes() -> None:
    """Prepared statistics past ``max_bytes`` evict the least recently used; the newest entry
    stays even when it alone is larger (the run is about to use it)."""
    cache = ReferenceCache(max_entries=32, max_bytes=3 * 8_100_000)
    for key in "abc":
        cache.get_or_prepare((key,), lambda: np.zeros(1_000_000))
    assert len(cache) == 3 and 3 * 8_000_000 <= cache.bytes < 3 * 8_100_000
    cache.get_or_prepare(("d",), lambda: {"x": [np.zeros(1_000_000)]})
    assert len(cache) == 3 and cache.get_or_prepare(("a",), lambda: "again") == "again"  # "a" was evicted
    cache.get_or_prepare(("huge",), lambda: np.zeros(10_000_000))
    assert len(cache) == 1 and cache.bytes >= 80_000_000
