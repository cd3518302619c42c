"""Which prediction ids a model has stored: a log-structured index of 64-bit id hashes.

"A prediction is its id": a resend must be recognised whatever timestamp it carries, including
into days already sealed to Parquet, without scanning history. DuckDB's primary key was
measured at ~2.2 s per million keys on insert (docs/architecture.md, "Deduplication"), so
each model keeps this index beside the database instead:

* **Entries** are ``(hash, timestamp)``: XXH64 of the id's UTF-8 bytes (:func:`id_hashes`,
  computed in-process by a compiled loop; DuckDB's ``hash`` round trip cost ~5 ms per 50k ids,
  XXH64 here ~0.7 ms) and the stored row's timestamp in µs. The index only says *where to look*:
  a hash match is confirmed against the stored row at that timestamp (zone maps / the
  sealed-file catalog make that one cheap lookup), so a 64-bit collision or an entry whose row
  was dropped never hides a new prediction.
* **Log-structured merge** (O'Neil et al., "The log-structured merge-tree", 1996): new entries
  go to an in-memory table of sorted chunks; at ``flush_entries`` a background thread writes
  them as one sorted, immutable run file (raw uint64 hashes + int64 timestamps, fsynced, then recorded in
  ``index.json`` by an atomic rename). Runs are merged in a background thread by a tiered
  policy (``fanout`` runs of one level make one run of the next), so a lookup touches at most
  ``(fanout - 1) × levels`` runs; merges stream in chunks, so memory stays bounded.
* **A blocked Bloom filter** (Putze, Sanders, Singler, "Cache-, hash- and space-efficient
  Bloom filters", 2007: 4 bits in one 512-bit block, 12 bits per entry, ~0.7 % false
  positives; probed and set by compiled loops, :mod:`monitor.kernels`) holds every entry in
  memory, so an id that was never stored — nearly every id — costs one cache line and no disk
  access. Only the filter's positives are searched in the runs (memory-mapped for the search
  only, then unmapped, so the runs never count as resident memory). The filter is rebuilt at
  1.5× size in the background when it fills.
* **Derived, never authoritative for durability.** The index is rebuilt from stored rows:
  ``index.json`` records the ingest stamp up to which runs are complete (the *watermark*);
  at start-up every hot row ingested after it is added again, and a missing or unreadable
  index (or one built by another hash: DuckDB's ``hash`` before index format 2, or a changed
  XXH64 implementation, detected by a canary) is rebuilt from all rows.

Thread model: lookups and adds come from the store under the database write lock (serial);
a flush thread (one at a time) and the maintenance thread write runs, merge and rebuild
concurrently, swapping state under ``_lock``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from monitor.files import fsync_path
from monitor.kernels import bloom_add, bloom_contains, xxh64_strings, xxh64_text

log = logging.getLogger(__name__)

INDEX_FORMAT = 2  # 1: DuckDB's hash(prediction_id); 2: XXH64 of the id's UTF-8 bytes
CANARY_TEXT = "loopwatch-id-canary"
HASH_NAME = "xxh64"  # the index records which hash built it

_BLOCK_WORDS = 8  # 512-bit blocks: one cache line
_BITS_PER_ENTRY = 12
_MIN_CAPACITY = 1 << 20
_GROWTH = 1.5
_BUILD_STEP = 1 << 17  # entries read per step of a filter rebuild
_MAX_BLOCKS = 1 << 36  # the block reduction multiplies a 28-bit value by the block count


def id_hashes(ids: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The index key of each prediction id, in row order: XXH64 (seed 0) of its UTF-8 bytes."""
    return xxh64_strings(ids)


def hash_canary() -> int:
    """The key of :data:`CANARY_TEXT`: recorded with the index, so a change of hash rebuilds it."""
    return xxh64_text(CANARY_TEXT)


class BlockedBloom:
    """A blocked Bloom filter over uint64 hashes; its probes are compiled loops
    (:func:`monitor.kernels.bloom_add` / :func:`monitor.kernels.bloom_contains`).

    The block comes from the hash's top 28 bits scaled to the block count (Lemire's
    multiply-shift range reduction, no division); the 4 × 9 probe bits are the top 36 bits of a
    multiplicative remix, so they do not repeat the block's bits and the filter's hash is
    independent of the index's sort order."""

    def __init__(self, capacity: int) -> None:
        self.capacity = max(int(capacity), _MIN_CAPACITY)
        blocks = min(max(1, (self.capacity * _BITS_PER_ENTRY + 511) // 512), _MAX_BLOCKS - 1)
        self._blocks = np.uint64(blocks)
        self._words: np.ndarray = np.zeros(blocks * _BLOCK_WORDS, dtype=np.uint64)
        self.count = 0

    @property
    def nbytes(self) -> int:
        return int(self._words.nbytes)

    @classmethod
    def from_words(cls, capacity: int, count: int, words: np.ndarray) -> BlockedBloom:
        """A filter saved by :meth:`IdIndex.save_filter` (``words`` must fit ``capacity``)."""
        bloom = cls(capacity)
        if words.shape != bloom._words.shape:
            raise ValueError(f"filter has {words.size} words, expected {bloom._words.size}")
        bloom._words = np.ascontiguousarray(words, dtype=np.uint64)
        bloom.count = count
        return bloom

    @property
    def words(self) -> np.ndarray:
        return self._words

    def add(self, h: np.ndarray) -> None:
        """Set the bits of ``h`` (any order)."""
        if h.size == 0:
            return
        bloom_add(self._words, self._blocks, np.ascontiguousarray(h, dtype=np.uint64))
        self.count += int(h.size)

    def might_contain(self, h: np.ndarray) -> np.ndarray:
        out = np.empty(h.size, dtype=np.bool_)
        if h.size:
            bloom_contains(self._words, self._blocks, np.ascontiguousarray(h, dtype=np.uint64), out)
        return out


@dataclass(frozen=True)
class Run:
    """One sorted, immutable run file pair: ``NAME.hash`` (uint64) and ``NAME.ts`` (int64 µs)."""

    name: str
    level: int
    count: int


@dataclass(frozen=True)
class Matches:
    """Stored entries whose hash equals an incoming one: ``rows`` index the incoming batch."""

    rows: np.ndarray  # int64
    timestamps_us: np.ndarray  # int64

    @property
    def empty(self) -> bool:
        return self.rows.size == 0


_NO_MATCHES = Matches(np.zeros(0, np.int64), np.zeros(0, np.int64))


class IdIndex:
    """The id-hash index of one model, in ``directory`` (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        canary: int,
        *,
        flush_entries: int = 256 * 1024,
        fanout: int = 4,
        merge_chunk: int = 1 << 18,
    ) -> None:
        self.directory = directory
        self._canary = int(canary)
        self._flush_entries = flush_entries
        self._fanout = fanout
        self._merge_chunk = merge_chunk
        self._lock = threading.Lock()
        self._maintenance = threading.Lock()  # one merge / rebuild at a time
        self._meta_lock = threading.Lock()  # one change of the recorded run list at a time
        self._flush_lock = threading.Lock()
        self._runs: list[Run] = []
        self._chunks: list[tuple[np.ndarray, np.ndarray]] = []  # sorted (hash, ts) per add
        self._chunk_entries = 0
        self._chunk_stamp = 0  # ingest stamp (µs) of the newest entry in memory
        self.watermark_us = 0  # every row ingested at or before this is in the runs
        self._bloom = BlockedBloom(_MIN_CAPACITY)
        self._pending: list[np.ndarray] | None = None  # adds during a filter rebuild
        self.loaded = self._load()

    # -- state on disk ---------------------------------------------------------------------

    @property
    def count(self) -> int:
        with self._lock:
            return sum(r.count for r in self._runs) + self._chunk_entries

    def _meta_path(self) -> Path:
        return self.directory / "index.json"

    def _load(self) -> bool:
        """Open the recorded runs; False (and an empty index) when there is none to trust."""
        self.directory.mkdir(parents=True, exist_ok=True)
        meta_path = self._meta_path()
        runs: list[Run] = []
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("format") != INDEX_FORMAT or meta.get("canary") != self._canary:
                log.warning("id index %s was built differently (format/hash changed): rebuilding", self.directory)
                meta = None
            else:
                runs = [Run(r["name"], int(r["level"]), int(r["count"])) for r in meta["runs"]]
                for run in runs:
                    for suffix in (".hash", ".ts"):
                        if (self.directory / (run.name + suffix)).stat().st_size != run.count * 8:
                            raise ValueError(f"{run.name}{suffix} has the wrong size")
        except FileNotFoundError:
            meta = None
        except (ValueError, KeyError, TypeError, OSError) as exc:
            log.warning("id index %s is unreadable (%s): rebuilding", self.directory, exc)
            meta = None
        if meta is None:
            runs = []
        self._runs = runs
        self.watermark_us = int(meta["watermark_us"]) if meta else 0
        self._remove_unrecorded()
        saved = self._saved_filter() if meta is not None else None
        self._bloom = saved if saved is not None else self._build_bloom(runs, extra=0)
        return meta is not None

    # The filter saved at a clean shutdown: valid while the runs hold the same entries (same
    # watermark and count; merges keep both). It saves the rebuild at start (15 s at 100M ids).

    def save_filter(self) -> None:
        """Write the filter for the next start (call after :meth:`flush`, e.g. at shutdown)."""
        with self._lock:
            if self._chunks:
                return  # entries only in memory: the saved filter would not match the runs
            bloom = self._bloom
            state = {
                "canary": self._canary,
                "watermark_us": self.watermark_us,
                "entries": sum(r.count for r in self._runs),
                "capacity": bloom.capacity,
                "count": bloom.count,
            }
            words = bloom.words.copy()
        tmp = self.directory / "filter.bin.tmp"
        with tmp.open("wb") as fh:
            fh.write(words.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / "filter.bin")
        tmp_meta = self.directory / "filter.json.tmp"
        tmp_meta.write_text(json.dumps(state))
        fsync_path(tmp_meta)
        os.replace(tmp_meta, self.directory / "filter.json")
        fsync_path(self.directory)

    def _saved_filter(self) -> BlockedBloom | None:
        try:
            state = json.loads((self.directory / "filter.json").read_text())
            expected = {
                "canary": self._canary,
                "watermark_us": self.watermark_us,
                "entries": sum(r.count for r in self._runs),
            }
            if any(state.get(k) != v for k, v in expected.items()):
                return None
            words = np.fromfile(self.directory / "filter.bin", dtype=np.uint64)
            return BlockedBloom.from_words(int(state["capacity"]), int(state["count"]), words)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _drop_saved_filter(self) -> None:
        for name in ("filter.json", "filter.bin"):
            (self.directory / name).unlink(missing_ok=True)

    def _remove_unrecorded(self) -> None:
        keep = {r.name + s for r in self._runs for s in (".hash", ".ts")} | {"index.json", "filter.json", "filter.bin"}
        for path in self.directory.iterdir():
            if path.name not in keep:
                path.unlink(missing_ok=True)

    def _write_meta(self, runs: list[Run], watermark_us: int) -> None:
        meta = {
            "format": INDEX_FORMAT,
            "hash": HASH_NAME,
            "canary": self._canary,
            "watermark_us": watermark_us,
            "runs": [{"name": r.name, "level": r.level, "count": r.count} for r in runs],
        }
        tmp = self.directory / f"index.json.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(meta))
        fsync_path(tmp)
        os.replace(tmp, self._meta_path())
        fsync_path(self.directory)

    def _write_run(self, level: int, parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> Run:
        name = f"run-{uuid.uuid4().hex}"
        count = 0
        hash_path, ts_path = self.directory / (name + ".hash"), self.directory / (name + ".ts")
        try:
            with hash_path.open("wb") as fh, ts_path.open("wb") as ft:
                for h, ts in parts:
                    fh.write(np.ascontiguousarray(h, dtype="<u8").tobytes())
                    ft.write(np.ascontiguousarray(ts, dtype="<i8").tobytes())
                    count += int(h.size)
                for f in (fh, ft):
                    f.flush()
                    os.fsync(f.fileno())
        except BaseException:  # e.g. a full disk: leave no half-written run behind
            hash_path.unlink(missing_ok=True)
            ts_path.unlink(missing_ok=True)
            raise
        return Run(name, level, count)

    def _mapped(self, run: Run) -> tuple[np.ndarray, np.ndarray]:
        if run.count == 0:
            return np.zeros(0, np.uint64), np.zeros(0, np.int64)
        h = np.memmap(self.directory / (run.name + ".hash"), dtype="<u8", mode="r", shape=(run.count,))
        ts = np.memmap(self.directory / (run.name + ".ts"), dtype="<i8", mode="r", shape=(run.count,))
        return h, ts

    def _read(self, run: Run, suffix: str, start: int, stop: int) -> np.ndarray:
        """Entries ``[start, stop)`` of a run file, read (not mapped): a merge or a filter build
        streams whole runs, and mapped pages would count in the server's RSS while mapped."""
        count = max(0, min(stop, run.count) - start)
        dtype = "<u8" if suffix == ".hash" else "<i8"
        return np.fromfile(self.directory / (run.name + suffix), dtype=dtype, count=count, offset=start * 8)

    def _build_bloom(self, runs: list[Run], extra: int) -> BlockedBloom:
        """A filter sized for the runs' entries and ``extra`` more (times the growth factor).

        It reads ``_BUILD_STEP`` entries (1 MB) at a time, so a rebuild's temporaries stay small
        whatever the index holds (whole runs read at once made a step in the soak's RSS)."""
        total = sum(r.count for r in runs) + extra
        bloom = BlockedBloom(int(total * _GROWTH))
        for run in runs:
            for start in range(0, run.count, _BUILD_STEP):
                bloom.add(self._read(run, ".hash", start, start + _BUILD_STEP))
        return bloom

    # -- the store's calls (under the database write lock) ------------------------------------

    def lookup(self, hashes: np.ndarray) -> Matches:
        """Every stored entry whose hash equals one of ``hashes`` (a uint64 array).

        The filter answers for every hash in one compiled pass (random order costs no more than
        hash order there); only its positives, sorted, are searched in the memory table and runs."""
        with self._lock:
            bloom = self._bloom
        hits = np.flatnonzero(bloom.might_contain(hashes))
        if hits.size == 0:
            return _NO_MATCHES
        with self._lock:
            # Map the runs while holding the lock: a merge swaps the run list under this lock
            # and only then unlinks the merged runs' files, and a file mapped here stays
            # readable after its unlink. (Mapping after the lock raced with merges: the bench
            # saw FileNotFoundError → 500 on ingest.)
            chunks = list(self._chunks)
            mapped = deque(self._mapped(run) for run in self._runs)
        rows = hits[np.argsort(hashes[hits])]  # in hash order, as the matching below needs
        wanted = hashes[rows]
        found_rows: list[np.ndarray] = []
        found_ts: list[np.ndarray] = []
        for h, ts in chunks:
            _match_sorted(h, ts, wanted, rows, found_rows, found_ts)
        while mapped:
            h, ts = mapped.popleft()
            _match_sorted(h, ts, wanted, rows, found_rows, found_ts)
            del h, ts  # unmap: the run's pages stay in the page cache, not in our RSS
        if not found_rows:
            return _NO_MATCHES
        return Matches(np.concatenate(found_rows), np.concatenate(found_ts))

    def add(
        self,
        hashes: np.ndarray,
        timestamps_us: np.ndarray,
        ingested_us: int,
        keep: np.ndarray | None = None,
        order: np.ndarray | None = None,
    ) -> None:
        """Record stored rows (after their commit); flush to a run when the memory table fills.

        ``keep`` selects the stored rows of the batch; ``order`` is ``np.argsort(hashes)`` when
        the caller already has it. The flush itself runs on a background thread
        (:meth:`_flush_soon`)."""
        if order is None:
            order = np.argsort(hashes)
        if keep is not None and not keep.all():
            order = order[keep[order]]
        if order.size == 0:
            return
        chunk = (hashes[order], np.asarray(timestamps_us[order], dtype=np.int64))
        with self._lock:
            self._bloom.add(chunk[0])
            if self._pending is not None:
                self._pending.append(chunk[0])
            self._chunks.append(chunk)
            self._chunk_entries += int(order.size)
            self._chunk_stamp = max(self._chunk_stamp, int(ingested_us))
            full = self._chunk_entries >= self._flush_entries
        if full:
            self._flush_soon()

    def _flush_soon(self) -> None:
        """Flush on a background thread, so a run's write and two fsyncs (~7 ms per 50k-row
        batch, amortised) stay off the ingest path. The entries stay findable in memory until
        the run is recorded; one flush at a time (a running one makes this a no-op, and the next
        add or :meth:`maintain` catches up); a failed flush (a full disk) keeps the entries in
        memory and :meth:`maintain` retries it."""
        if not self._flush_lock.acquire(blocking=False):
            return

        def run() -> None:
            try:
                self._flush()
            except OSError as exc:  # the rows are committed: keep the entries in memory, retry later
                log.warning("id index %s: flush failed (%s); entries kept in memory", self.directory, exc)
            finally:
                self._flush_lock.release()

        threading.Thread(target=run, name="loopwatch-id-flush", daemon=True).start()

    def settle(self) -> None:
        """Wait for a background flush to end (tests, and callers that need a quiet index)."""
        with self._flush_lock:
            pass

    def flush(self) -> None:
        """Write the memory table as a level-0 run and advance the watermark (durable on return;
        waits for a background flush first)."""
        with self._flush_lock:  # one flush at a time: each removes exactly the chunks it wrote
            self._flush()

    def _flush(self) -> None:
        with self._lock:
            chunks, stamp = list(self._chunks), self._chunk_stamp
        if not chunks:
            return
        h = np.concatenate([c[0] for c in chunks])
        ts = np.concatenate([c[1] for c in chunks])
        order = np.argsort(h)
        run = self._write_run(0, [(h[order], ts[order])])
        with self._meta_lock:
            runs = [*self._runs, run]
            watermark = max(self.watermark_us, stamp)
            self._write_meta(runs, watermark)
            with self._lock:
                self._runs = runs
                self.watermark_us = watermark
                self._chunks = self._chunks[len(chunks) :]
                self._chunk_entries = sum(int(c[0].size) for c in self._chunks)

    def replace_all(self, parts: Iterable[tuple[np.ndarray, np.ndarray]], watermark_us: int) -> None:
        """Rebuild from scratch: ``parts`` are (hash, ts) batches of every stored row."""
        self._drop_saved_filter()
        h_parts, ts_parts = [], []
        for h, ts in parts:
            h_parts.append(h.astype(np.uint64, copy=False))
            ts_parts.append(ts.astype(np.int64, copy=False))
        h = np.concatenate(h_parts) if h_parts else np.zeros(0, np.uint64)
        ts = np.concatenate(ts_parts) if ts_parts else np.zeros(0, np.int64)
        order = np.argsort(h)
        run = self._write_run(_level_of(int(h.size), self._flush_entries, self._fanout), [(h[order], ts[order])])
        bloom = self._build_bloom([run], extra=0)
        with self._maintenance, self._meta_lock:
            self._write_meta([run], watermark_us)
            with self._lock:
                self._runs = [run]
                self._chunks = []
                self._chunk_entries = 0
                self.watermark_us = watermark_us
                self._bloom = bloom
            self._remove_unrecorded()

    # -- background maintenance ------------------------------------------------------------

    def maintain(self) -> None:
        """Merge full levels and grow the filter when it is full (the background job)."""
        with self._lock:
            overdue = self._chunk_entries >= self._flush_entries
        if overdue:  # a flush at ingest failed (e.g. disk full): retry here
            self.flush()
        with self._maintenance:
            while self._merge_one_level():
                pass
            self._grow_bloom_if_full()

    def _merge_one_level(self) -> bool:
        with self._lock:
            runs = list(self._runs)
        for level in sorted({r.level for r in runs}):
            group = [r for r in runs if r.level == level]
            if len(group) < self._fanout:
                continue
            merged = self._write_run(level + 1, self._merged_chunks(group))
            with self._meta_lock:  # flushes may have added runs meanwhile: keep them
                position = next(i for i, r in enumerate(self._runs) if r in group)
                current = [r for r in self._runs if r not in group]
                new_runs = [*current[:position], merged, *current[position:]]
                self._write_meta(new_runs, self.watermark_us)
                with self._lock:
                    self._runs = new_runs
            for run in group:
                for suffix in (".hash", ".ts"):
                    (self.directory / (run.name + suffix)).unlink(missing_ok=True)
            return True
        return False

    def _merged_chunks(self, group: list[Run]) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """A k-way merge of sorted runs, reading ``merge_chunk`` entries of each at a time.

        Each round reads the next chunk of every unfinished run and cuts at the smallest of
        their last hashes: everything up to the cut is final (later entries are ≥ the cut)."""
        pos = [0] * len(group)
        while True:
            live = [i for i, run in enumerate(group) if pos[i] < run.count]
            if not live:
                return
            heads = {i: self._read(group[i], ".hash", pos[i], pos[i] + self._merge_chunk) for i in live}
            cut = min(h[-1] for h in heads.values())
            hs, tss = [], []
            for i, h in heads.items():
                end = int(np.searchsorted(h, cut, side="right"))
                hs.append(h[:end])
                tss.append(self._read(group[i], ".ts", pos[i], pos[i] + end))
                pos[i] += end
            h_all, ts_all = np.concatenate(hs), np.concatenate(tss)
            order = np.argsort(h_all)
            yield h_all[order], ts_all[order]

    def _grow_bloom_if_full(self) -> None:
        with self._lock:
            if self._bloom.count <= self._bloom.capacity:
                return
            runs, chunks = list(self._runs), list(self._chunks)
            self._pending = []
        try:
            bloom = self._build_bloom(runs, extra=sum(int(c[0].size) for c in chunks))
            for h, _ in chunks:
                bloom.add(h)
        except BaseException:
            with self._lock:
                self._pending = None
            raise
        with self._lock:
            for h in self._pending or []:
                bloom.add(h)
            self._pending = None
            self._bloom = bloom
        log.info("id index %s: filter grown to %d entries (%d MB)", self.directory, bloom.capacity, bloom.nbytes >> 20)

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "entries": sum(r.count for r in self._runs) + self._chunk_entries,
                "runs": len(self._runs),
                "in_memory_entries": self._chunk_entries,
                "filter_bytes": self._bloom.nbytes,
            }


def _level_of(count: int, flush_entries: int, fanout: int) -> int:
    level = 0
    size = flush_entries
    while count > size * fanout:
        size *= fanout
        level += 1
    return level


def _match_sorted(
    h: np.ndarray,
    ts: np.ndarray,
    wanted: np.ndarray,
    rows: np.ndarray,
    found_rows: list[np.ndarray],
    found_ts: list[np.ndarray],
) -> None:
    """Append (row, ts) for every entry of the sorted ``h`` equal to a (sorted) wanted hash."""
    if h.size == 0:
        return
    left = np.searchsorted(h, wanted, side="left")
    right = np.searchsorted(h, wanted, side="right")
    counts = right - left
    hit = counts > 0
    if not hit.any():
        return
    left, counts = left[hit], counts[hit]
    starts = np.repeat(left, counts)
    offsets = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    found_rows.append(np.repeat(rows[hit], counts))
    found_ts.append(np.asarray(ts[starts + offsets], dtype=np.int64))
