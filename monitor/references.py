"""What a monitor compares against: a fixed window, a trailing window, a registered dataset, or
the previous model version — and the cache of reference statistics prepared from it.

Preparing reference statistics (sorting every numeric feature, counting categories) is the
expensive half of a drift check, so it is done once per (model, resolved reference, detector,
config) and reused by every scheduled run. A trailing window is aligned to whole hours so runs
within the same hour share one preparation.
"""

from __future__ import annotations

import dataclasses
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from monitor.errors import FieldError, InvalidInput, NotFound
from monitor.names import DATASET_NAME

DURATION = re.compile(r"^(\d+)([smhdw])$")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """``15m``, ``1h``, ``7d``, ``2w`` (or seconds) → timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return timedelta(seconds=float(value))
    match = DURATION.match(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a duration such as 30s, 15m, 1h, 7d or 2w")
    return timedelta(seconds=int(match.group(1)) * UNIT_SECONDS[match.group(2)])


class ReferenceSpec(BaseModel):
    """``{kind: window, start, end}`` | ``{kind: trailing, length: 7d}`` |
    ``{kind: dataset, path: ref.parquet}`` | ``{kind: previous_version}``."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["window", "trailing", "dataset", "previous_version"]
    start: datetime | None = None
    end: datetime | None = None
    length: str | None = None
    path: str | None = None
    max_days: int = 7  # previous_version: at most the version's last N days

    @field_validator("length")
    @classmethod
    def _length(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value

    @model_validator(mode="after")
    def _complete(self) -> ReferenceSpec:
        if self.kind == "window":
            if self.start is None or self.end is None or self.end <= self.start:
                raise ValueError("a window reference needs start < end")
        elif self.kind == "trailing":
            if self.length is None:
                raise ValueError("a trailing reference needs a length such as 7d")
        elif self.kind == "dataset" and (
            not self.path or not DATASET_NAME.match(Path(self.path).stem) or Path(self.path).name != self.path
        ):
            raise ValueError(
                "a dataset reference names a Parquet file in the data directory's references/ folder, "
                "e.g. path: training-2026-10.parquet"
            )
        return self


@dataclass(frozen=True)
class ResolvedReference:
    """A reference spec pinned to concrete rows for one run."""

    kind: str
    description: str
    start: datetime | None = None
    end: datetime | None = None
    model_version: str | None = None
    path: Path | None = None
    frozen_at: datetime | None = None  # a trailing reference held back (its end) while an alert is open

    @property
    def key(self) -> tuple[Any, ...]:
        """The reference cache key: everything that decides which rows are in it, frozen end included."""
        return (
            self.kind,
            self.start,
            self.end,
            self.model_version,
            str(self.path) if self.path else None,
            self.frozen_at,
        )


def resolve_reference(
    spec: ReferenceSpec,
    *,
    window_start: datetime,
    references_dir: Path,
    versions: list[dict[str, Any]],
    current_version: str | None,
    freeze_before: datetime | None = None,
) -> ResolvedReference:
    """Pin ``spec`` for a run whose current window starts at ``window_start``.

    ``freeze_before`` holds a trailing reference back: it ends there (keeping its length) when
    that is earlier than where it would trail to — so an ongoing change is never absorbed into
    the reference it is judged against. Other kinds are fixed rows and ignore it."""
    if spec.kind == "window":
        assert spec.start and spec.end
        return ResolvedReference(
            "window", f"window {spec.start.isoformat()} – {spec.end.isoformat()}", spec.start, spec.end
        )
    if spec.kind == "trailing":
        length = parse_duration(spec.length or "7d")
        end = window_start.replace(minute=0, second=0, microsecond=0)  # hour-aligned: shared by runs this hour
        if freeze_before is not None and freeze_before < end:
            return ResolvedReference(
                "trailing",
                f"trailing {spec.length} before {freeze_before.isoformat()} (frozen while an alert is open)",
                freeze_before - length,
                freeze_before,
                frozen_at=freeze_before,
            )
        return ResolvedReference("trailing", f"trailing {spec.length} before {end.isoformat()}", end - length, end)
    if spec.kind == "dataset":
        path = references_dir / (spec.path or "")
        if not path.is_file():
            raise NotFound(f"reference dataset {spec.path!r} not found in {references_dir}")
        return ResolvedReference("dataset", f"dataset {spec.path}", path=path)
    # previous_version: the version seen before the current one, over its last max_days.
    ordered = [v for v in versions if v["version"] != current_version]
    if current_version is None or len(ordered) == len(versions) or not ordered:
        raise InvalidInput(
            "no previous model version to compare with",
            [FieldError(field="reference", reason=f"versions seen: {[v['version'] for v in versions]}")],
        )
    current_first = next(v for v in versions if v["version"] == current_version)["first_seen"]
    earlier = [v for v in ordered if v["first_seen"] < current_first]
    if not earlier:
        raise InvalidInput(f"model version {current_version!r} is the first one seen; no previous version")
    previous = max(earlier, key=lambda v: v["first_seen"])
    last = datetime.fromisoformat(previous["last_seen"])
    start = max(datetime.fromisoformat(previous["first_seen"]), last - timedelta(days=spec.max_days))
    end = last + timedelta(microseconds=1)
    return ResolvedReference(
        "previous_version",
        f"model version {previous['version']} ({start.date()} – {last.date()})",
        start,
        end,
        model_version=previous["version"],
    )


def load_dataset(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise InvalidInput(f"reference dataset {path.name} is not a readable Parquet file: {exc}") from exc


class ReferenceCache:
    """LRU of prepared reference statistics, bounded in entries and in bytes: they hold the
    sorted values of every numeric column per segment slice, and a trailing reference is
    prepared anew every hour, so an entry-count bound alone let superseded references pile up."""

    def __init__(self, max_entries: int = 32, max_bytes: int | None = None) -> None:
        self._entries: OrderedDict[tuple[Any, ...], tuple[Any, int]] = OrderedDict()
        self._max = max_entries
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bytes = 0

    def get_or_prepare(self, key: tuple[Any, ...], prepare: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                self.hits += 1
                return self._entries[key][0]
        value = prepare()  # outside the lock: preparation can take seconds
        size = approx_nbytes(value)
        with self._lock:
            self.misses += 1
            if key in self._entries:
                self.bytes -= self._entries[key][1]
            self._entries[key] = (value, size)
            self._entries.move_to_end(key)
            self.bytes += size
            # The newest entry always stays (the caller is about to use it anyway).
            while len(self._entries) > 1 and (
                len(self._entries) > self._max or (self._max_bytes is not None and self.bytes > self._max_bytes)
            ):
                _, (_, evicted) = self._entries.popitem(last=False)
                self.bytes -= evicted
        return value

    def __len__(self) -> int:
        return len(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0


def approx_nbytes(value: Any, _seen: set[int] | None = None) -> int:
    """Bytes held by prepared statistics: numpy and Arrow buffers, plus the containers and
    dataclasses around them (each object counted once)."""
    seen = _seen if _seen is not None else set()
    if id(value) in seen:
        return 0
    seen.add(id(value))
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (pa.Table, pa.Array, pa.ChunkedArray)):
        return int(value.nbytes)
    if isinstance(value, dict):
        return sys.getsizeof(value) + sum(
            approx_nbytes(k, seen) + approx_nbytes(v, seen) for k, v in value.items()
        )
    if isinstance(value, (list, tuple, set, frozenset)):
        return sys.getsizeof(value) + sum(approx_nbytes(v, seen) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sys.getsizeof(value) + sum(
            approx_nbytes(getattr(value, f.name), seen) for f in dataclasses.fields(value)
        )
    return sys.getsizeof(value)
