"""Evidently's HTML data-drift report for a chosen window and reference.

Evidently is what scientists know, so loopwatch renders its report for drill-down. It is slow
(a cold process spends ~2.5 s importing it; a report costs ~0.4 s for 6 features × 10k rows,
~2 s at 100k rows, ~4 s for 50 features — Evidently computes each column's drift three times
and renders a plotly chart per column), so a store-window report is made cheap three ways:

* windows are sampled **in the database** to ``max_rows`` rows per side (a Bernoulli sample
  on a hash of ``prediction_id``, so the same data gives the same sample and only the sample
  is ever read), and the report's banner says so;
* only the model's features are compared;
* Evidently's rendered document is cached (:class:`ReportCache`, in memory and on disk under
  ``DATA_DIR/cache/evidently``, both bounded) under a key made of the model, the columns,
  ``max_rows``, Evidently's version and a content hash of the sampled rows with the windows'
  row counts; the banner naming the windows is added per request. A repeated request takes
  ~40 ms instead of Evidently's 0.5-2 s on the demo's data (``bench/dashboard.py``), and a
  new row in either window makes a new report.

The HTML is self-contained (no CDN), which matters behind firewalls.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

if TYPE_CHECKING:
    from monitor.service import Loopwatch

CACHE_FORMAT = 1  # bump when what is cached (Evidently's document, without the banner) changes
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
    totals: tuple[int, int] | None = None,
) -> str:
    """Evidently ``DataDriftPreset`` over the shared columns, as one HTML document.

    ``totals``: (reference, current) rows before the tables were sampled by the caller (the
    store samples in the database); the banner then states the sample against them."""
    shared = _shared_columns(reference, current, columns)
    document = render_evidently(reference.select(shared), current.select(shared), max_rows)
    return with_banner(document, context, reference, current, max_rows, totals)


def _shared_columns(reference: pa.Table, current: pa.Table, columns: list[str] | None) -> list[str]:
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
    return shared


def render_evidently(reference: pa.Table, current: pa.Table, max_rows: int) -> str:
    """Evidently's own document for every column of the two tables, each sampled to ``max_rows``
    (seeded). It depends on the rows only, never on how the windows were named, so it can be
    cached by the rows' content (:func:`window_report`)."""
    from evidently import Report  # slow import (2.5-9 s): only when a report is asked for
    from evidently.presets import DataDriftPreset

    ref, _ = sample(reference, max_rows)
    cur, _ = sample(current, max_rows, seed=1)
    return Report([DataDriftPreset()]).run(cur.to_pandas(), ref.to_pandas()).get_html_str(as_iframe=False)


def with_banner(
    document: str,
    context: ReportContext,
    reference: pa.Table,
    current: pa.Table,
    max_rows: int,
    totals: tuple[int, int] | None = None,
) -> str:
    """Evidently's document with loopwatch's banner: what is compared, and how it was sampled."""
    ref_rows, cur_rows = min(reference.num_rows, max_rows), min(current.num_rows, max_rows)
    ref_total, cur_total = totals or (reference.num_rows, current.num_rows)
    note = ""
    if ref_rows < ref_total or cur_rows < cur_total:
        note = (
            f" Sampled to {max_rows:,} rows per side at most: reference {ref_rows:,} of {ref_total:,}, "
            f"current {cur_rows:,} of {cur_total:,} rows (a fixed, seeded choice: the same data gives the "
            "same report); loopwatch's own drift findings use every row."
        )
    banner = (
        '<div style="font:14px system-ui,sans-serif;padding:10px 16px;background:#eef2ff;border-bottom:1px solid #c7d2fe">'
        f"<strong>{html.escape(context.title)}</strong> — current: {html.escape(context.current)}; "
        f"reference: {html.escape(context.reference)}.{html.escape(note)}</div>"
    )
    head, sep, tail = document.partition("<body>")
    return head + sep + banner + tail if sep else banner + document


class ReportCache:
    """Rendered reports by key: an LRU in memory and files on disk, each bounded.

    The key includes a hash of the rows a report was made from, so an entry is never stale: new
    data makes a new key, and old entries age out (least recently used first). Disk entries
    survive a restart and are shared with the CLI; a damaged or missing file is a miss."""

    def __init__(
        self,
        directory: Path | None = None,
        *,
        max_entries: int = 8,
        max_bytes: int = 64 * 1024 * 1024,
        max_files: int = 64,
        max_disk_bytes: int = 512 * 1024 * 1024,
    ) -> None:
        self.directory = directory
        self._memory: OrderedDict[str, str] = OrderedDict()
        self._max_entries = max_entries
        self._max_bytes = max_bytes
        self._max_files = max_files
        self._max_disk_bytes = max_disk_bytes
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> str | None:
        with self._lock:
            document = self._memory.get(key)
            if document is not None:
                self._memory.move_to_end(key)
                self.hits += 1
                return document
        document = self._read(key)
        with self._lock:
            if document is None:
                self.misses += 1
                return None
            self.hits += 1
            self._remember(key, document)
        return document

    def put(self, key: str, document: str) -> None:
        with self._lock:
            self._remember(key, document)
        self._write(key, document)

    def _remember(self, key: str, document: str) -> None:
        size = len(document)
        if size > self._max_bytes:
            return
        if key in self._memory:
            self._bytes -= len(self._memory.pop(key))
        self._memory[key] = document
        self._bytes += size
        while len(self._memory) > self._max_entries or self._bytes > self._max_bytes:
            _, dropped = self._memory.popitem(last=False)
            self._bytes -= len(dropped)

    def _path(self, key: str) -> Path | None:
        return self.directory / f"{key}.html" if self.directory is not None else None

    def _read(self, key: str) -> str | None:
        path = self._path(key)
        if path is None:
            return None
        try:
            document = path.read_text(encoding="utf-8")
            os.utime(path)  # recently used: evicted last
        except (OSError, UnicodeDecodeError):
            return None
        return document

    def _write(self, key: str, document: str) -> None:
        path = self._path(key)
        if path is None or len(document) > self._max_disk_bytes:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(document, encoding="utf-8")
            os.replace(tmp, path)  # readers see the whole file or none
            self._evict_files()
        except OSError:
            return  # a cache that cannot write is only slower

    def _evict_files(self) -> None:
        assert self.directory is not None
        entries = []
        for path in self.directory.glob("*.html"):
            try:
                stat = path.stat()
            except OSError:
                continue
            entries.append((stat.st_mtime, stat.st_size, path))
        entries.sort(reverse=True)  # newest first
        kept_bytes = 0
        for i, (_, size, path) in enumerate(entries):
            kept_bytes += size
            if i >= self._max_files or kept_bytes > self._max_disk_bytes:
                path.unlink(missing_ok=True)


_WARM: list[threading.Thread] = []
_WARM_LOCK = threading.Lock()


def warm_up() -> threading.Thread:
    """Import Evidently in a background (daemon) thread, once per process.

    The import is the largest part of a first report: 2.5 s on an idle core here, 9 s on two
    busy ones. A server can call this when it starts, or when it renders a page that links to a
    report, so the report request finds Evidently loaded (an import already in progress is
    waited for, not repeated). Returns the thread (join it to wait)."""
    with _WARM_LOCK:
        if not _WARM:
            thread = threading.Thread(target=_import_evidently, name="loopwatch-evidently-warm-up", daemon=True)
            thread.start()
            _WARM.append(thread)
        return _WARM[0]


def _import_evidently() -> None:
    from evidently import Report  # noqa: F401
    from evidently.presets import DataDriftPreset  # noqa: F401


_CACHES: dict[Path, ReportCache] = {}
_CACHES_LOCK = threading.Lock()


def default_cache(data_dir: Path) -> ReportCache:
    """One cache per data directory and process (files under ``DATA_DIR/cache/evidently``)."""
    directory = Path(data_dir) / "cache" / "evidently"
    with _CACHES_LOCK:
        return _CACHES.setdefault(directory, ReportCache(directory))


def table_digest(table: pa.Table) -> str:
    """A content hash of a table's rows (column names, types and every buffer)."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(table.schema.remove_metadata()).encode())
    digest.update(str(table.num_rows).encode())
    for column in table.columns:
        for chunk in column.chunks:
            digest.update(f"{chunk.offset}:{len(chunk)}".encode())
            for buf in chunk.buffers():
                if buf is not None:
                    digest.update(buf)
    return digest.hexdigest()


def _window_sample(
    service: Loopwatch, model: str, window: tuple[datetime, datetime], columns: list[str], cap: int
) -> tuple[pa.Table, int]:
    """At most ~``cap`` rows of the window, sampled in the database; (rows, rows in the window)."""
    from detectors.sampling import SAMPLE_KEY, sample_rates

    table = service.store.reference_sample(model, *window, segments=[], cap=cap, columns=columns)
    rates = sample_rates(table)
    total = table.num_rows
    if rates is not None and rates.overall < 1.0:
        total = round(cap / rates.overall)
    keep = [c for c in ("prediction_id", *columns) if c in table.column_names and c != SAMPLE_KEY]
    return table.select(keep), total


def window_report(
    service: Loopwatch,
    model: str,
    current_window: tuple[datetime, datetime],
    reference_window: tuple[datetime, datetime],
    *,
    max_rows: int = 100_000,
    cache: ReportCache | None = None,
) -> str:
    """The report for a model's feature columns: current window vs reference window from the store.

    ``cache``: where rendered reports are kept (default: :func:`default_cache` of the service's
    data directory)."""
    from monitor.errors import FieldError, InvalidInput

    registered = service.registry.get(model)
    columns = list(registered.schema.features)
    current, current_total = _window_sample(service, model, current_window, columns, max_rows)
    reference, reference_total = _window_sample(service, model, reference_window, columns, max_rows)
    for name, table in (("current", current), ("reference", reference)):
        if table.num_rows == 0:
            raise InvalidInput(
                "no data", [FieldError(field="window", reason=f"the {name} window holds no predictions")]
            )
    cache = cache if cache is not None else default_cache(service.settings.data_dir)
    key = _cache_key(
        str(service.settings.data_dir),
        registered.id,
        model,
        columns,
        max_rows,
        (table_digest(reference), reference_total, table_digest(current), current_total),
    )
    reference, current = reference.select(columns), current.select(columns)
    document = cache.get(key)
    if document is None:
        document = render_evidently(reference, current, max_rows)
        cache.put(key, document)

    def describe(window: tuple[datetime, datetime], rows: int) -> str:
        return f"{window[0].isoformat()} – {window[1].isoformat()} ({rows:,} rows)"

    context = ReportContext(
        f"loopwatch · {model}",
        describe(current_window, current_total),
        describe(reference_window, reference_total),
    )
    return with_banner(document, context, reference, current, max_rows, (reference_total, current_total))


def _cache_key(
    data_dir: str, model_id: int, model: str, columns: list[str], max_rows: int, data: tuple[str, int, str, int]
) -> str:
    """What Evidently's document depends on: the rows (content hash and window totals, which
    set the sampling rate), the columns, the sample size and Evidently's version. Not the
    windows' bounds: "the last day" asked a few seconds apart over the same rows is one entry."""
    try:
        evidently_version = metadata.version("evidently")
    except metadata.PackageNotFoundError:
        evidently_version = "?"
    material = json.dumps(
        {
            "format": CACHE_FORMAT,
            "evidently": evidently_version,
            "data_dir": data_dir,
            "model": [model_id, model],
            "columns": columns,
            "max_rows": max_rows,
            "data": list(data),
        },
        sort_keys=True,
    )
    return hashlib.sha256(material.encode()).hexdigest()
