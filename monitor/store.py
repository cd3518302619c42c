"""The prediction-log store: a DuckDB hot table per model plus sealed hive-partitioned Parquet.

Writes: a validated batch is deduplicated against stored predictions in the batch's own time
span (a resent record carries its original timestamp, and zone maps / the sealed-file catalog
keep that lookup independent of history length), then inserted in one transaction. DuckDB's
WAL makes the commit durable before we acknowledge.

Reads: every query spans the hot table and the sealed files whose day overlaps the window,
so callers never know where a row lives.

Verification: a sealed file is read only once it has matched its recorded size and sha256 in
this process (checked on first use, re-checked when its size or mtime changes, and re-hashed
by a throttled background pass); a read that fails re-checks the files it touched. A damaged or
missing file is recorded (memory + ``sealed_file_damage``) and every read that needs it raises
:class:`StorageDamaged` naming the file and the window — never wrong rows, never a bare 500.

Sealing moves whole past days out of DuckDB into ``sealed/model=NAME/date=YYYY-MM-DD/``:
write a temp file, fsync, rename, fsync the directory, then record the file and delete the
rows in one transaction. A crash at any point leaves either the rows in DuckDB or a recorded
file, never both and never neither (unrecorded files are removed at start-up).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from detectors.sampling import SAMPLE_KEY, SampleRates, mark_sampled
from monitor.clock import Clock, iso_z, utcnow
from monitor.db import Database
from monitor.errors import FieldError, InvalidInput, NotFound, StorageDamaged
from monitor.files import fsync_path, sha256_file
from monitor.identity import IdIndex, Matches, hash_canary, id_hashes
from monitor.integrity import Problem, SealedRecord, Stopped, Throttle, check_file, file_signature
from monitor.kernels import warm_up
from monitor.names import quote_ident
from monitor.registry import RegisteredModel, Registry
from monitor.validation import (
    AUTHORITIES,
    dedupe_batch,
    latest_label_per_id,
    normalize_labels,
    normalize_predictions,
)

log = logging.getLogger(__name__)
PROGRESS_SECONDS = 10.0  # how often a long id-index build logs its progress

FAR_PAST = datetime(1970, 1, 1, tzinfo=UTC)
FAR_FUTURE = datetime(2200, 1, 1, tzinfo=UTC)
MAX_PAGE = 10_000


@dataclass(frozen=True)
class IngestResult:
    received: int
    accepted: int
    duplicates: int  # rows not stored: ids already stored (any timestamp) or repeated in the batch
    changed: int = 0  # resends whose fields differ from the stored row (which is kept)
    changed_ids: tuple[str, ...] = ()  # up to 20 of them

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = asdict(self)
        out["changed_ids"] = list(self.changed_ids)
        return out


@dataclass(frozen=True)
class LabelResult:
    received: int
    applied: int
    unchanged: int
    conflicts: int = 0  # lower-authority labels that disagreed: recorded, not applied
    conflict_ids: tuple[str, ...] = ()
    confirmed: int = 0  # reviews agreeing with a higher-authority label: its conflict is settled

    def to_dict(self) -> dict[str, int]:
        return {
            "received": self.received,
            "applied": self.applied,
            "unchanged": self.unchanged,
            "conflicts": self.conflicts,
            "confirmed": self.confirmed,
        }


@dataclass(frozen=True)
class SealedFile:
    path: str
    model: str
    date: date
    rows: int
    sha256: str


class PredictionStore:
    def __init__(
        self,
        db: Database,
        registry: Registry,
        sealed_dir: Path,
        *,
        now: Clock = utcnow,
        max_future: timedelta = timedelta(days=1),
        hot_days: int = 2,
        verify_bytes_per_second: int = 0,
        index_dir: Path | None = None,
    ) -> None:
        self._db = db
        self._registry = registry
        self._sealed_dir = sealed_dir
        self._now = now
        self._max_future = max_future
        self._hot_days = hot_days
        self._file_columns: dict[str, set[str]] = {}
        self._last_ingest_at = FAR_PAST
        self._file_lock = threading.Lock()
        self._verify_rate = verify_bytes_per_second
        self._verify_stop = threading.Event()
        self._verified: dict[str, tuple[int, int]] = {}  # path -> (size, mtime_ns) when it matched
        self._damaged: dict[str, Problem] = {}
        self._index_dir = index_dir or sealed_dir.parent / "ids"
        self._indexes: dict[int, IdIndex] = {}
        warm_up()  # load the id index's compiled loops now, not on the first ingest
        self._canary = hash_canary()
        self._remove_unrecorded_files()
        self._load_damage()

    # ---------------------------------------------------------------------------------------
    # The id index (monitor/identity.py): which prediction ids each model has stored
    # ---------------------------------------------------------------------------------------

    def open_indexes(self) -> None:
        """Open (or rebuild) every model's id index now, so the first ingest does not wait."""
        for model in self._registry.list():
            self._index(model)

    def maintain_indexes(self) -> None:
        """Merge index runs and grow filters (the background job; never holds the write lock)."""
        with self._db.write_lock:
            indexes = list(self._indexes.values())
        for index in indexes:
            index.maintain()

    def close_indexes(self) -> None:
        """Write what the indexes hold in memory, so the next start has nothing to replay."""
        with self._db.write_lock:
            for index in self._indexes.values():
                index.flush()
                index.save_filter()

    def id_index_memory(self) -> int:
        """Bytes the id indexes keep resident: their filters and in-memory entries (16 B each)."""
        with self._db.write_lock:
            indexes = list(self._indexes.values())
        stats = [index.stats() for index in indexes]
        return sum(s["filter_bytes"] + 16 * s["in_memory_entries"] for s in stats)

    def id_index_stats(self, model_name: str) -> dict[str, int]:
        model = self._registry.get(model_name)
        with self._db.write_lock:
            return self._index(model).stats()

    def _index(self, model: RegisteredModel) -> IdIndex:
        """The model's id index, opened on first use (called under the write lock)."""
        with self._db.write_lock:
            index = self._indexes.get(model.id)
            if index is None:
                index = self._open_index(model)
                self._indexes[model.id] = index
            return index

    def _open_index(self, model: RegisteredModel) -> IdIndex:
        index = IdIndex(self._index_dir / f"model-{model.id}", self._canary)
        hot_stamp = self._db.query(f"SELECT epoch_us(max(ingested_at)) FROM {model.predictions_table}")[0][0] or 0
        if not index.loaded:
            started = time.perf_counter()
            index.replace_all(self._all_id_hashes(model), watermark_us=hot_stamp)
            log.info(
                "built the id index of %s: %d ids in %.1f s", model.name, index.count, time.perf_counter() - started
            )
        else:
            # Rows committed after the last flush (a crash, or a kill -9) are added again.
            cur = self._db.cursor()
            try:
                got = cur.sql(
                    f"SELECT prediction_id, epoch_us(timestamp) AS t FROM {model.predictions_table} "
                    "WHERE epoch_us(ingested_at) > ?",
                    params=[index.watermark_us],
                ).to_arrow_table()
            finally:
                cur.close()
            if got.num_rows:
                log.info("id index of %s: %d ids added since its last flush", model.name, got.num_rows)
                index.add(id_hashes(got.column("prediction_id")), _int64s(got.column("t")), hot_stamp)
                index.flush()
        latest = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=max(hot_stamp, index.watermark_us))
        self._last_ingest_at = max(self._last_ingest_at, latest)
        return index

    def _all_id_hashes(self, model: RegisteredModel) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(hash, µs timestamp) of every stored prediction: hot rows, then each sound sealed file."""
        sources: list[tuple[str, list[Any]]] = [
            (f"SELECT prediction_id, epoch_us(timestamp) AS t FROM {model.predictions_table}", [])
        ]
        for record in self._records("s.model_id = ?", [model.id]):
            problem = self._check_before_use(record)
            if problem is not None:
                log.warning(
                    "id index of %s: skipping damaged sealed file %s (%s)", model.name, record.path, problem.reason
                )
                continue
            sources.append(
                (
                    "SELECT prediction_id, epoch_us(timestamp) AS t FROM read_parquet(?)",
                    [str(self._sealed_dir / record.path)],
                )
            )
        # A large history takes a while (~27 s per 100M ids): say so at the start and every
        # PROGRESS_SECONDS, so an operator waiting for the server to answer knows why.
        log.info(
            "building the id index of %s from the hot table and %d sealed files (once: no index, or an older format)",
            model.name,
            len(sources) - 1,
        )
        read, last_report = 0, time.monotonic()
        cur = self._db.cursor()
        try:
            for number, (sql, params) in enumerate(sources, start=1):
                for batch in cur.sql(sql, params=params).to_arrow_reader(1 << 20):
                    read += batch.num_rows
                    if time.monotonic() - last_report >= PROGRESS_SECONDS:
                        last_report = time.monotonic()
                        log.info(
                            "building the id index of %s: %d ids read (source %d of %d)",
                            model.name,
                            read,
                            number,
                            len(sources),
                        )
                    yield id_hashes(batch.column(0)), _int64s(batch.column(1))
        finally:
            cur.close()

    # ---------------------------------------------------------------------------------------
    # Writes
    # ---------------------------------------------------------------------------------------

    def ingest_predictions(self, model_name: str, table: pa.Table, *, row_offset: int = 0) -> IngestResult:
        """Validate and durably store one batch; all-or-nothing, idempotent on prediction_id."""
        model = self._registry.get(model_name)
        if table.num_rows == 0:
            return IngestResult(0, 0, 0)
        rows = normalize_predictions(
            table, model.schema, now=self._now(), max_future=self._max_future, row_offset=row_offset
        )
        return self.store_normalized(model_name, rows)

    def store_normalized(self, model_name: str, rows: pa.Table) -> IngestResult:
        """Store rows already in the model's canonical layout (from :func:`normalize_predictions`).

        A prediction is its id (docs/architecture.md, "Deduplication"): a row whose
        ``prediction_id`` is already stored — with any timestamp, hot or sealed — is not stored
        again and the stored row keeps every field (first write wins); a resend whose fields
        differ is counted in ``changed`` (up to 20 of its ids in ``changed_ids``)."""
        model = self._registry.get(model_name)
        received = rows.num_rows
        if received == 0:
            return IngestResult(0, 0, 0)
        now = self._now()
        with self._db.write_lock:  # lookup → insert → index add: no other batch in between
            index = self._index(model)
            with self._db.transaction() as cur:
                # Each batch gets a distinct, increasing ingest stamp (identifies the batch's rows).
                now = max(now, self._last_ingest_at + timedelta(microseconds=1))
                self._last_ingest_at = now
                stamp_type = rows.schema.field("ingested_at").type
                rows = rows.set_column(
                    rows.schema.get_field_index("ingested_at"),
                    "ingested_at",
                    pa.repeat(pa.scalar(now, stamp_type), rows.num_rows),
                )
                hashes = id_hashes(rows.column("prediction_id"))
                order = np.argsort(hashes)  # once: for repeats here and the index's sorted chunk
                if _sorted_has_repeats(hashes[order]):  # distinct hashes ⇒ distinct ids; else dedupe exactly
                    rows, _ = dedupe_batch(rows)
                    hashes = id_hashes(rows.column("prediction_id"))
                    order = np.argsort(hashes)
                matches = index.lookup(hashes)
                resent = self._stored_among(cur, model, rows, matches) if not matches.empty else None
                keep = np.ones(rows.num_rows, dtype=bool)
                if resent is not None and resent.num_rows:
                    keep = ~pc.is_in(rows.column("prediction_id"), resent.column("prediction_id")).to_numpy(
                        zero_copy_only=False
                    )
                new_rows = rows if keep.all() else rows.filter(pa.array(keep))
                accepted = new_rows.num_rows
                if accepted:
                    cur.register("incoming", new_rows)
                    try:
                        cur.execute(f"INSERT INTO {model.predictions_table} BY NAME SELECT * FROM incoming").fetchall()
                    finally:
                        _unregister(cur, "incoming")
            # Committed: record the new ids and tally the versions before the write lock lets
            # the next batch in (the tally is written by the background upkeep: monitor/versions.py).
            index.add(hashes, _micros(rows.column("timestamp")), _us(now), keep=keep, order=order)
            if accepted:
                self._registry.count_versions(model, new_rows, now)
        changed_ids: tuple[str, ...] = ()
        changed = 0
        if resent is not None and resent.num_rows:
            changed_mask = resent.column("changed").to_numpy(zero_copy_only=False)
            changed = int(changed_mask.sum())
            changed_ids = tuple(resent.filter(pa.array(changed_mask)).column("prediction_id").to_pylist()[:20])
        if changed:
            log.warning(
                "%s: %d resent predictions differ from the stored ones (kept the stored rows), e.g. %s",
                model.name,
                changed,
                ", ".join(changed_ids[:5]),
            )
        return IngestResult(received, accepted, received - accepted, changed, changed_ids)

    def _stored_among(
        self, cur: duckdb.DuckDBPyConnection, model: RegisteredModel, rows: pa.Table, matches: Matches
    ) -> pa.Table:
        """The incoming ids already stored (confirmed at the timestamp the index names), each
        with ``changed``: whether any field of the incoming row differs from the stored row."""
        stored_ts = pa.array(matches.timestamps_us, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
        candidates = pa.table(
            {"prediction_id": rows.column("prediction_id").take(pa.array(matches.rows)), "ts": stored_ts}
        )
        lo, hi = (v.as_py() for v in pc.min_max(stored_ts).values())
        sql, params = self._window_sql(model, lo, hi + timedelta(microseconds=1), None, None, None, False)
        compared = [
            c for c in (f.name for f in model.schema.arrow_schema()) if c not in ("prediction_id", "ingested_at")
        ]
        differs = " OR ".join(f"b.{quote_ident(c)} IS DISTINCT FROM s.{quote_ident(c)}" for c in compared) or "FALSE"
        cur.register("candidates", candidates)
        cur.register("incoming_rows", rows)
        try:
            with self._guard(model, params, lo, hi):
                return cur.sql(
                    f"WITH stored AS (SELECT s.* FROM ({sql}) s SEMI JOIN candidates c "
                    "ON s.prediction_id = c.prediction_id AND s.timestamp = c.ts) "
                    f"SELECT b.prediction_id, bool_and({differs}) AS changed "
                    "FROM incoming_rows b JOIN stored s USING (prediction_id) GROUP BY b.prediction_id",
                    params=params,
                ).to_arrow_table()
        finally:
            _unregister(cur, "candidates")
            _unregister(cur, "incoming_rows")

    def ingest_labels(
        self,
        model_name: str,
        table: pa.Table,
        *,
        source: str = "api",
        authority: str = "ground_truth",
        row_offset: int = 0,
    ) -> LabelResult:
        """Store labels by prediction_id under the authority rule (docs/architecture.md, "Labels").

        Authorities rank ``ground_truth`` > ``review`` > ``annotator`` (``authority`` is the
        default for rows that do not name one). A label of a higher authority replaces a lower
        one; within the same authority the newer label timestamp wins (an identical resend
        changes nothing). A lower-authority label that disagrees never replaces the stored one:
        it is recorded in ``label_events`` as a ``conflict`` (with both values) and the stored
        label is flagged ``conflict`` until the same or a higher authority labels it again.
        Every change is kept in ``label_events``. Labels may precede their predictions."""
        model = self._registry.get(model_name)
        received = table.num_rows
        if received == 0:
            return LabelResult(0, 0, 0)
        now = self._now()
        labels = normalize_labels(
            table,
            model.schema,
            now=now,
            max_future=self._max_future,
            source=source,
            authority=authority,
            row_offset=row_offset,
        )
        labels = latest_label_per_id(labels)
        rank_i, rank_l = _authority_rank("i.authority"), _authority_rank("l.authority")
        with self._db.transaction() as cur:
            cur.register("incoming_labels", labels)
            try:
                changed = cur.sql(
                    f"SELECT i.*, l.label AS previous_label, l.authority AS previous_authority, "
                    f"CASE WHEN l.prediction_id IS NULL THEN 'applied' WHEN {rank_i} > {rank_l} THEN 'overridden' "
                    "ELSE 'applied' END AS outcome "
                    f"FROM incoming_labels i LEFT JOIN {model.labels_table} l USING (prediction_id) "
                    f"WHERE l.prediction_id IS NULL OR {rank_i} > {rank_l} OR ({rank_i} = {rank_l} AND "
                    "i.timestamp >= l.timestamp AND (l.conflict OR i.label IS DISTINCT FROM l.label "
                    "OR i.annotator IS DISTINCT FROM l.annotator OR i.source IS DISTINCT FROM l.source))"
                ).to_arrow_table()
                # A lower authority that disagrees: kept on record once (resends and polls repeat it).
                conflicts = cur.sql(
                    f"SELECT i.*, l.label AS previous_label, l.authority AS previous_authority, "
                    "'conflict' AS outcome "
                    f"FROM incoming_labels i JOIN {model.labels_table} l USING (prediction_id) "
                    f"WHERE {rank_i} < {rank_l} AND i.label IS DISTINCT FROM l.label AND NOT EXISTS ("
                    "SELECT 1 FROM label_events e WHERE e.model_id = $model_id AND e.outcome = 'conflict' "
                    "AND e.prediction_id = i.prediction_id AND e.label = CAST(i.label AS VARCHAR) "
                    "AND e.previous_label = CAST(l.label AS VARCHAR) AND e.authority = i.authority "
                    "AND e.timestamp = i.timestamp AND e.annotator IS NOT DISTINCT FROM i.annotator)",
                    params={"model_id": model.id},
                ).to_arrow_table()
                # A review that agrees with a higher-authority label settles its conflict.
                confirmed = cur.sql(
                    f"SELECT i.*, l.label AS previous_label, l.authority AS previous_authority, "
                    "'confirmed' AS outcome "
                    f"FROM incoming_labels i JOIN {model.labels_table} l USING (prediction_id) "
                    f"WHERE l.conflict AND i.authority = 'review' AND {rank_i} < {rank_l} "
                    "AND i.label IS NOT DISTINCT FROM l.label"
                ).to_arrow_table()
            finally:
                _unregister(cur, "incoming_labels")
            if confirmed.num_rows:
                _set_conflict_flag(cur, model, confirmed, False)
            if changed.num_rows:
                cur.register("changed_labels", changed)
                try:
                    cur.execute(
                        f"INSERT INTO {model.labels_table} SELECT prediction_id, label, timestamp, received_at, source, "
                        "annotator, authority, FALSE FROM changed_labels ON CONFLICT (prediction_id) DO UPDATE SET "
                        "label = excluded.label, timestamp = excluded.timestamp, received_at = excluded.received_at, "
                        "source = excluded.source, annotator = excluded.annotator, authority = excluded.authority, "
                        "conflict = FALSE"
                    ).fetchall()
                finally:
                    _unregister(cur, "changed_labels")
            if conflicts.num_rows:
                _set_conflict_flag(cur, model, conflicts, True)
            events = pa.concat_tables([t for t in (changed, conflicts, confirmed) if t.num_rows] or [changed])
            if events.num_rows:
                cur.register("label_changes", events)
                try:
                    cur.execute(
                        "INSERT INTO label_events (model_id, prediction_id, label, previous_label, timestamp, received_at, "
                        "source, annotator, authority, previous_authority, outcome) SELECT ?, prediction_id, "
                        "CAST(label AS VARCHAR), CAST(previous_label AS VARCHAR), timestamp, received_at, source, annotator, "
                        "authority, previous_authority, outcome FROM label_changes",
                        [model.id],
                    ).fetchall()
                finally:
                    _unregister(cur, "label_changes")
        conflict_ids = tuple(conflicts.column("prediction_id").to_pylist())
        return LabelResult(
            received,
            changed.num_rows,
            received - changed.num_rows - len(conflict_ids) - confirmed.num_rows,
            len(conflict_ids),
            conflict_ids,
            confirmed.num_rows,
        )

    def label(self, model_name: str, prediction_id: str) -> dict[str, Any] | None:
        """The current (authoritative) label of one prediction, with its authority and conflict flag."""
        model = self._registry.get(model_name)
        rows = self._db.query_dicts(
            f"SELECT prediction_id, label, timestamp, received_at, source, annotator, authority, conflict "
            f"FROM {model.labels_table} WHERE prediction_id = ?",
            [prediction_id],
        )
        return _jsonable(rows[0]) if rows else None

    def label_conflicts(self, model_name: str, limit: int = 500) -> list[dict[str, Any]]:
        """Labels flagged for review: the kept (higher-authority) label and every disagreeing
        lower-authority label recorded since it was last set."""
        model = self._registry.get(model_name)
        rows = self._db.query_dicts(
            f"SELECT l.prediction_id, l.label, l.authority, l.source, l.annotator, l.timestamp, l.received_at "
            f"FROM {model.labels_table} l WHERE l.conflict ORDER BY l.received_at DESC, l.prediction_id LIMIT ?",
            [limit],
        )
        out = [_jsonable(r) for r in rows]
        if not out:
            return out
        events = self._db.query_dicts(
            "SELECT prediction_id, label, authority, source, annotator, timestamp, received_at FROM label_events "
            "WHERE model_id = ? AND outcome = 'conflict' AND prediction_id IN (SELECT unnest(?)) "
            "ORDER BY received_at, timestamp",
            [model.id, [r["prediction_id"] for r in out]],
        )
        by_id: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_id.setdefault(event.pop("prediction_id"), []).append(_jsonable(event))
        for row in out:
            row["conflict"] = True
            row["conflicting"] = [
                e for e in by_id.get(row["prediction_id"], []) if e["received_at"] >= row["received_at"]
            ]
        return out

    # ---------------------------------------------------------------------------------------
    # Reads
    # ---------------------------------------------------------------------------------------

    def scan(
        self,
        model_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: list[str] | None = None,
        model_version: str | None = None,
        segments: dict[str, str] | None = None,
        with_labels: bool = True,
    ) -> pa.Table:
        """All predictions in ``[start, end)`` (hot and sealed), with their labels if any."""
        model = self._registry.get(model_name)
        sql, params = self._window_sql(model, start, end, columns, model_version, segments, with_labels)
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                return cur.sql(sql + " ORDER BY p.timestamp, p.prediction_id", params=params).to_arrow_table()
        finally:
            cur.close()

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
    ) -> pa.Table:
        """The window as a drift reference: whole when no slice (the window, or one value of a
        segment column) holds more than ``cap`` rows, else a stratified Bernoulli sample of at
        most ~``cap`` rows per slice (``detectors.sampling``), drawn in DuckDB on the uniform
        key ``hash(prediction_id) / 2^64`` so only the sample is ever materialised.
        ``columns``: only these (and the id, timestamp and label) instead of every column."""
        model = self._registry.get(model_name)
        segments = [s for s in segments if s in model.schema.segments]
        sql, params = self._window_sql(model, start, end, columns, model_version, None, True)
        count_sql, _ = self._window_sql(model, start, end, segments or ["model_version"], model_version, None, False)
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                total, by_segment = _slice_counts(cur, count_sql, params, segments)
                rates = SampleRates.for_counts(total, by_segment, cap)
                if not rates.samples:
                    return cur.sql(sql + " ORDER BY p.timestamp, p.prediction_id", params=params).to_arrow_table()
                # A row is fetched when any slice it belongs to keeps it; segment_slices then keeps
                # each slice's own share, so the whole window is not skewed towards small segments.
                threshold, sample_params = sample_threshold_sql(rates)
                params.update(sample_params)
                key = SAMPLE_KEY_SQL.format(id="s.prediction_id")
                sampled = cur.sql(
                    f"SELECT * FROM (SELECT s.*, {key} AS {quote_ident(SAMPLE_KEY)} FROM ({sql}) s) "
                    f"WHERE {quote_ident(SAMPLE_KEY)} < {threshold} "
                    "ORDER BY timestamp, prediction_id",
                    params=params,
                ).to_arrow_table()
        finally:
            cur.close()
        return mark_sampled(sampled, rates)

    def rows_by_ids(self, model_name: str, ids: list[str], start: datetime, end: datetime) -> pa.Table:
        """The stored rows (with labels) of these predictions, known to lie in ``[start, end]``."""
        model = self._registry.get(model_name)
        sql, params = self._window_sql(model, start, end + timedelta(microseconds=1), None, None, None, True)
        params["ids"] = ids
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                return cur.sql(sql + " AND p.prediction_id IN (SELECT unnest($ids))", params=params).to_arrow_table()
        finally:
            cur.close()

    def page(
        self,
        model_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        limit: int = 1000,
        cursor: str | None = None,
        model_version: str | None = None,
        segments: dict[str, str] | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of rows ordered by (timestamp, prediction_id), and the cursor of the next page."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"limit must be between 1 and {MAX_PAGE}")
        model = self._registry.get(model_name)
        sql, params = self._window_sql(model, start, end, None, model_version, segments, True)
        if cursor:
            after_ts, after_id = _decode_cursor(cursor)
            sql += " AND (p.timestamp > $after_ts OR (p.timestamp = $after_ts AND p.prediction_id > $after_id))"
            params.update(after_ts=after_ts, after_id=after_id)
        sql += " ORDER BY p.timestamp, p.prediction_id LIMIT $limit"
        params["limit"] = limit + 1
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                table = cur.sql(sql, params=params).to_arrow_table()
        finally:
            cur.close()
        rows = table.to_pylist()
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            last = rows[-1]
            next_cursor = _encode_cursor(last["timestamp"], last["prediction_id"])
        return [_jsonable(r) for r in rows], next_cursor

    def stats(self, model_name: str, start: datetime | None = None, end: datetime | None = None) -> dict[str, Any]:
        """Prediction and label counts, label coverage and per-version counts for a window."""
        model = self._registry.get(model_name)
        sql, params = self._window_sql(model, start, end, ["model_version"], None, None, True)
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                rows = cur.execute(
                    f"SELECT model_version, count(*), count(label), min(timestamp), max(timestamp) FROM ({sql}) "
                    "GROUP BY model_version ORDER BY min(timestamp)",
                    params,
                ).fetchall()
            total_labels = cur.execute(f"SELECT count(*) FROM {model.labels_table}").fetchall()[0][0]
        finally:
            cur.close()
        predictions = sum(r[1] for r in rows)
        labels = sum(r[2] for r in rows)
        out: dict[str, Any] = {
            "model": model.name,
            "start": start,
            "end": end,
            "predictions": predictions,
            "labels": labels,
            "label_coverage": (labels / predictions) if predictions else None,
            "first_timestamp": min((r[3] for r in rows), default=None),
            "last_timestamp": max((r[4] for r in rows), default=None),
            "by_version": [
                {"model_version": v, "predictions": n, "labels": m, "label_coverage": m / n if n else None}
                for v, n, m, _, _ in rows
            ],
        }
        if start is None and end is None:
            # Labels whose prediction has not arrived (yet): kept, and joined once it does.
            out["labels_without_prediction"] = total_labels - labels
        return _jsonable(out)

    def counts(
        self, model_name: str, start: datetime, end: datetime, segments: list[str] | None = None
    ) -> dict[str, Any]:
        """Rows in ``[start, end)``, overall and per value of each segment column (for volume checks)."""
        model = self._registry.get(model_name)
        segments = segments or []
        sql, params = self._window_sql(model, start, end, list(segments) or ["model_version"], None, None, False)
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                total, per_value = _slice_counts(cur, sql, params, segments)
                by_segment = {
                    seg: {str(v): n for v, n in counts.items() if v is not None} for seg, counts in per_value.items()
                }
        finally:
            cur.close()
        return {"total": total, "by_segment": by_segment}

    def minutes_with_data(self, model_name: str, start: datetime, end: datetime) -> list[datetime]:
        """The distinct minutes (floored, UTC) holding predictions in ``[start, end)``, ascending.

        One grouped scan however long the range: a backfill plans its windows from this and
        skips those that hold no rows (``application.monitors.MonitorOps.plan_backfill``)."""
        model = self._registry.get(model_name)
        sql, params = self._window_sql(model, start, end, ["timestamp"], None, None, False)
        cur = self._db.cursor()
        try:
            with self._guard(model, params, start, end):
                rows = cur.execute(
                    f"SELECT DISTINCT date_trunc('minute', timestamp) AS m FROM ({sql}) ORDER BY m", params
                ).fetchall()
        finally:
            cur.close()
        return [r[0].astimezone(UTC) for r in rows]

    def last_seen(
        self,
        model_name: str,
        segments: list[str] | None = None,
        *,
        before: datetime | None = None,
        lookback: timedelta = timedelta(days=2),
    ) -> dict[str, Any]:
        """The newest prediction time before ``before`` (default: now), overall and per segment value.

        Looks back ``lookback`` for per-segment times; overall it falls back to the sealed-file
        catalog, so a model silent for weeks still reports when it was last seen."""
        model = self._registry.get(model_name)
        before = before or self._now()
        segments = segments or []
        sql, params = self._window_sql(model, before - lookback, before, ["timestamp", *segments], None, None, False)
        cur = self._db.cursor()
        try:
            with self._guard(model, params, before - lookback, before):
                at = cur.execute(f"SELECT max(timestamp) FROM ({sql})", params).fetchall()[0][0]
                if at is None:
                    at = cur.execute(
                        f"SELECT max(timestamp) FROM {model.predictions_table} WHERE timestamp < ?", [before]
                    ).fetchall()[0][0]
                    sealed = cur.execute(
                        "SELECT max(max_ts) FROM sealed_files WHERE model_id = ? AND min_ts < ?", [model.id, before]
                    ).fetchall()[0][0]
                    if sealed is not None and sealed >= before:  # a file spanning `before`: read it exactly
                        sealed = None
                    at = max((t for t in (at, sealed) if t is not None), default=None)
                by_segment: dict[str, dict[str, datetime]] = {}
                for seg in segments:
                    col = quote_ident(seg)
                    rows = cur.execute(f"SELECT {col}, max(timestamp) FROM ({sql}) GROUP BY {col}", params).fetchall()
                    by_segment[seg] = {str(v): t for v, t in rows if v is not None}
        finally:
            cur.close()
        return {"at": at, "by_segment": by_segment}

    def label_history(self, model_name: str, prediction_id: str) -> list[dict[str, Any]]:
        model = self._registry.get(model_name)
        rows = self._db.query_dicts(
            "SELECT label, previous_label, timestamp, received_at, source, annotator, authority, previous_authority, "
            "coalesce(outcome, 'applied') AS outcome FROM label_events "
            "WHERE model_id = ? AND prediction_id = ? ORDER BY received_at, timestamp",
            [model.id, prediction_id],
        )
        return [_jsonable(r) for r in rows]

    # ---------------------------------------------------------------------------------------
    # Sealing
    # ---------------------------------------------------------------------------------------

    def seal(self, before: datetime | None = None) -> list[SealedFile]:
        """Move whole days older than ``before`` (default: today minus ``hot_days``) to Parquet."""
        if before is None:
            today = self._now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
            before = today - timedelta(days=self._hot_days)
        sealed: list[SealedFile] = []
        for model in self._registry.list():
            days = [
                d
                for (d,) in self._db.query(
                    f"SELECT DISTINCT CAST(timestamp AS DATE) FROM {model.predictions_table} WHERE timestamp < ? ORDER BY 1",
                    [before],
                )
            ]
            for day in days:
                sealed_file = self._seal_day(model, day)
                if sealed_file:
                    sealed.append(sealed_file)
        if sealed:
            # Sealed rows were deleted from the hot tables: checkpoint so DuckDB drops them from
            # storage (and the WAL) instead of carrying tombstones through every later scan.
            self._db.checkpoint()
        return sealed

    def _seal_day(self, model: RegisteredModel, day: date) -> SealedFile | None:
        lo = datetime(day.year, day.month, day.day, tzinfo=UTC)
        hi = lo + timedelta(days=1)
        part_dir = self._sealed_dir / f"model={model.name}" / f"date={day.isoformat()}"
        part_dir.mkdir(parents=True, exist_ok=True)
        final = part_dir / f"part-{uuid.uuid4().hex}.parquet"
        tmp = final.with_name(final.name + ".tmp")
        with self._db.transaction() as cur:  # holds the write lock: no ingest can slip in between
            # The id index and the version counts must hold these rows before they leave the hot
            # table (their start-up replays read only the hot table). The counts commit in their
            # own transaction: if this seal fails, they are still right.
            self._index(model).flush()
            self._registry.write_version_counts()
            rows = cur.execute(
                f"SELECT count(*), min(timestamp), max(timestamp) FROM {model.predictions_table} "
                "WHERE timestamp >= ? AND timestamp < ?",
                [lo, hi],
            ).fetchall()[0]
            if rows[0] == 0:
                return None
            literal = str(tmp).replace("'", "''")
            cur.execute(
                f"COPY (SELECT * FROM {model.predictions_table} WHERE timestamp >= $lo AND timestamp < $hi "
                f"ORDER BY timestamp) TO '{literal}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)",
                {"lo": lo, "hi": hi},
            ).fetchall()
            fsync_path(tmp)
            os.replace(tmp, final)
            fsync_path(part_dir)
            digest = sha256_file(final)
            cur.execute(
                "INSERT INTO sealed_files VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    str(final.relative_to(self._sealed_dir)),
                    model.id,
                    day,
                    rows[0],
                    rows[1],
                    rows[2],
                    final.stat().st_size,
                    digest,
                    self._now(),
                ],
            ).fetchall()
            cur.execute(
                f"DELETE FROM {model.predictions_table} WHERE timestamp >= ? AND timestamp < ?", [lo, hi]
            ).fetchall()
        log.info("sealed %s rows of %s for %s into %s", rows[0], model.name, day, final)
        return SealedFile(str(final), model.name, day, rows[0], digest)

    @property
    def sealed_dir(self) -> Path:
        return self._sealed_dir

    def hot_rows(self, model_name: str, start: datetime, end: datetime) -> int:
        """Predictions in ``[start, end)`` still in the hot DuckDB table (not yet sealed)."""
        model = self._registry.get(model_name)
        rows = self._db.query(
            f"SELECT count(*) FROM {model.predictions_table} WHERE timestamp >= ? AND timestamp < ?", [start, end]
        )
        return int(rows[0][0])

    def window_parts(
        self,
        model_name: str,
        start: datetime,
        end: datetime,
        *,
        columns: list[str] | None = None,
        model_version: str | None = None,
    ) -> tuple[list[str], pa.Table]:
        """What another engine reads for ``[start, end)``: the sealed files holding it (from the
        catalog, each checked against its recorded size and hash: :class:`StorageDamaged` rather than
        wrong rows, and never a file an interrupted seal left in ``sealed/``) and its hot rows (without labels, unordered), taken together under the
        write lock that sealing holds while it moves a day — so no row is in both parts or in neither.
        The files are checked first, outside the lock (a first hash check of a big file must not
        hold up ingest); the second listing, under it, only finds them verified."""
        model = self._registry.get(model_name)
        self._files_overlapping(model, start, end)
        wanted = list(columns) if columns else [f.name for f in model.schema.arrow_schema()]
        for base in ("timestamp", "prediction_id"):
            if base not in wanted:
                wanted.insert(0, base)
        where = "timestamp >= $lo AND timestamp < $hi"
        params: dict[str, Any] = {"lo": start, "hi": end}
        if model_version is not None:
            where += " AND model_version = $mv"
            params["mv"] = model_version
        select = ", ".join(quote_ident(c) for c in wanted)
        with self._db.write_lock:
            files = self._files_overlapping(model, start, end)
            cur = self._db.cursor()
            try:
                hot = cur.sql(f"SELECT {select} FROM {model.predictions_table} WHERE {where}", params=params)
                return files, hot.to_arrow_table()
            finally:
                cur.close()

    def sealed_columns(self, files: list[str]) -> set[str]:
        """The columns these sealed files hold between them (read from their footers once, then
        remembered): what another engine reads them with, instead of inferring it each time."""
        return self._columns_in(files)

    def join_labels(self, model_name: str, rows: pa.Table) -> pa.Table:
        """``rows`` (predictions read by another engine) with their current labels added as
        :meth:`scan` adds them (``LEFT JOIN labels USING (prediction_id)``: ``label`` and
        ``label_timestamp`` last). Labels live only here, in DuckDB, so the join runs where they are;
        row order is not kept."""
        model = self._registry.get(model_name)
        cur = self._db.cursor()
        try:
            cur.register("rows_to_label", rows)
            return cur.sql(
                "SELECT r.*, l.label AS label, l.timestamp AS label_timestamp FROM rows_to_label r "
                f"LEFT JOIN {model.labels_table} l USING (prediction_id)"
            ).to_arrow_table()
        finally:
            _unregister(cur, "rows_to_label")
            cur.close()

    def sealed_files(self, model_name: str) -> list[dict[str, Any]]:
        model = self._registry.get(model_name)
        rows = self._db.query_dicts(
            "SELECT path, date, rows, min_ts AS min_timestamp, max_ts AS max_timestamp, bytes, sha256 "
            "FROM sealed_files WHERE model_id = ? ORDER BY date, path",
            [model.id],
        )
        return [_jsonable(r) for r in rows]

    def sealed_records(self) -> list[SealedRecord]:
        """The whole sealed-file catalog (every model), ordered by path: what ``sealed push`` copies."""
        return self._records("TRUE", [])

    def check_sealed(self, record: SealedRecord) -> Problem | None:
        """Hash one sealed file against its record now (as the background pass does), recording
        damage or repair; ``None``: it matches."""
        return self._check(record)

    def _remove_unrecorded_files(self) -> None:
        """Start-up recovery: a file written but not recorded (crash mid-seal) is garbage."""
        if not self._sealed_dir.exists():
            return
        recorded = {r[0] for r in self._db.query("SELECT path FROM sealed_files")}
        for path in self._sealed_dir.rglob("*"):
            if not path.is_file():
                continue
            rel = str(path.relative_to(self._sealed_dir))
            if path.name.endswith(".tmp") or (path.suffix == ".parquet" and rel not in recorded):
                log.warning("removing unrecorded sealed file %s (left by an interrupted seal)", path)
                path.unlink()

    # ---------------------------------------------------------------------------------------
    # Verification of sealed files (size + sha256 against the catalog)
    # ---------------------------------------------------------------------------------------

    def damaged_files(self) -> list[Problem]:
        """Sealed files known not to match their record (missing, truncated, changed)."""
        with self._file_lock:
            return sorted(self._damaged.values(), key=lambda p: p.path)

    def verify_sealed(self, *, throttled: bool = False) -> dict[str, Any]:
        """Hash every sealed file against the catalog; record damage and clear repaired files.

        ``throttled`` caps the reading at ``verify_bytes_per_second`` (the background pass);
        :meth:`stop_verification` ends a pass between chunks."""
        records = self._records("TRUE", [])
        throttle = Throttle(self._verify_rate if throttled else 0, self._verify_stop)
        started = time.perf_counter()
        checked = 0
        total = 0
        problems: list[Problem] = []
        for record in records:
            try:
                problem = self._check(record, throttle)
            except Stopped:
                break
            checked += 1
            total += record.bytes
            if problem is not None:
                problems.append(problem)
        seconds = time.perf_counter() - started
        if problems:
            log.error("sealed-file verification: %d damaged: %s", len(problems), [p.path for p in problems])
        return {
            "files": len(records),
            "checked": checked,
            "bytes": total,
            "seconds": round(seconds, 3),
            "problems": [p.to_dict() for p in problems],
        }

    def stop_verification(self) -> None:
        self._verify_stop.set()

    def drop_sealed_file(self, path: str) -> dict[str, Any]:
        """Remove a sealed file from the catalog (repair path for a damaged file without a backup).

        The file, if present, is moved to ``quarantine/`` next to ``sealed/`` (never deleted);
        its rows are no longer part of the store — re-ingest that window to restore them."""
        rel = self._relative(path)
        records = self._records("s.path = ?", [rel])
        if not records:
            raise NotFound(f"no sealed file {path!r} in the catalog (see `loopwatch store verify`)")
        record = records[0]
        full = self._sealed_dir / rel
        moved_to = None
        if full.exists():
            target = self._sealed_dir.parent / "quarantine" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(full, target)
            moved_to = str(target)
        with self._db.transaction() as cur:
            cur.execute("DELETE FROM sealed_files WHERE path = ?", [rel]).fetchall()
            cur.execute("DELETE FROM sealed_file_damage WHERE path = ?", [rel]).fetchall()
        with self._file_lock:
            self._damaged.pop(rel, None)
            self._verified.pop(rel, None)
            self._file_columns.pop(str(full), None)
        log.warning(
            "dropped sealed file %s (%s rows of %s for %s) from the catalog",
            rel,
            record.rows,
            record.model,
            record.date,
        )
        return {
            "path": rel,
            "model": record.model,
            "date": record.date.isoformat(),
            "rows": record.rows,
            "window_start": iso_z(record.min_ts),
            "window_end": iso_z(record.max_ts),
            "moved_to": moved_to,
        }

    def _relative(self, path: str) -> str:
        """Accept a path relative to ``sealed/``, to the data directory, or absolute."""
        candidate = Path(path)
        if candidate.is_absolute():
            try:
                return str(candidate.resolve().relative_to(self._sealed_dir.resolve()))
            except ValueError:
                return path
        parts = candidate.parts
        if parts and parts[0] == self._sealed_dir.name:
            return str(Path(*parts[1:]))
        return path

    def _records(self, where: str, params: list[Any]) -> list[SealedRecord]:
        rows = self._db.query(
            "SELECT s.path, m.name, s.date, s.rows, s.min_ts, s.max_ts, s.bytes, s.sha256 FROM sealed_files s "
            f"JOIN models m ON m.id = s.model_id WHERE {where} ORDER BY s.path",
            params,
        )
        return [SealedRecord(*r) for r in rows]

    def _check_before_use(self, record: SealedRecord) -> Problem | None:
        """Known damage, or a hash check when the file was not verified in this process (or its
        size/mtime changed since): a file is never read before it has matched its record."""
        with self._file_lock:
            known = self._damaged.get(record.path)
            verified = self._verified.get(record.path)
        if known is not None:
            return known
        signature = file_signature(self._sealed_dir / record.path)
        if signature is not None and signature == verified:
            return None
        return self._check(record)

    def _check(self, record: SealedRecord, throttle: Throttle | None = None) -> Problem | None:
        full = self._sealed_dir / record.path
        signature = file_signature(full)
        reason = check_file(full, record.bytes, record.sha256, throttle)
        if reason is None:
            self._mark_sound(record, signature)
            return None
        return self._mark_damaged(record, reason)

    def _recheck(self, files: list[str]) -> list[Problem]:
        """After a read failed: hash the files it touched again (ignoring earlier verification)."""
        wanted = [self._relative(f) for f in files]
        records = self._records("list_contains($1, s.path)", [wanted]) if wanted else []
        return [p for p in (self._check(r) for r in records) if p is not None]

    def _mark_sound(self, record: SealedRecord, signature: tuple[int, int] | None) -> None:
        with self._file_lock:
            was_damaged = self._damaged.pop(record.path, None) is not None
            if signature is not None:
                self._verified[record.path] = signature
        if was_damaged:
            log.warning("sealed file %s matches its record again (repaired)", record.path)
            with self._db.transaction() as cur:
                cur.execute("DELETE FROM sealed_file_damage WHERE path = ?", [record.path]).fetchall()

    def _mark_damaged(self, record: SealedRecord, reason: str) -> Problem:
        with self._file_lock:
            self._verified.pop(record.path, None)
            known = self._damaged.get(record.path)
            if known is not None and known.reason == reason:
                return known
            problem = Problem(record.path, record.model, record.date, record.min_ts, record.max_ts, reason, self._now())
            self._damaged[record.path] = problem
        log.error("sealed file %s is damaged: %s", record.path, reason)
        with self._db.transaction() as cur:
            cur.execute(
                "INSERT OR REPLACE INTO sealed_file_damage VALUES (?, ?, ?, ?)",
                [record.path, reason, problem.detected_at, record.model],
            ).fetchall()
        return problem

    def _load_damage(self) -> None:
        """Damage found before a restart stays known (until a check finds the file sound)."""
        with self._db.transaction() as cur:
            cur.execute(
                "CREATE TABLE IF NOT EXISTS sealed_file_damage(path VARCHAR PRIMARY KEY, reason VARCHAR NOT NULL, "
                "detected_at TIMESTAMPTZ NOT NULL, model VARCHAR)"
            ).fetchall()
            cur.execute("DELETE FROM sealed_file_damage WHERE path NOT IN (SELECT path FROM sealed_files)").fetchall()
        known = {r[0]: (r[1], r[2]) for r in self._db.query("SELECT path, reason, detected_at FROM sealed_file_damage")}
        if not known:
            return
        for record in self._records("list_contains($1, s.path)", [list(known)]):
            reason, at = known[record.path]
            self._damaged[record.path] = Problem(
                record.path, record.model, record.date, record.min_ts, record.max_ts, reason, at
            )

    @contextmanager
    def _guard(
        self, model: RegisteredModel, params: dict[str, Any], start: datetime | None, end: datetime | None
    ) -> Iterator[None]:
        """A read over sealed files that fails re-checks those files: damage becomes
        :class:`StorageDamaged` naming them; anything else is re-raised as it was."""
        try:
            yield
        except (duckdb.Error, pa.ArrowException, OSError) as exc:
            files = params.get("files") or []
            if not files:
                raise
            problems = self._recheck(files)
            if problems:
                raise _damage_error(problems, start, end) from exc
            raise

    # ---------------------------------------------------------------------------------------
    # SQL building (identifiers come from the registry; every value is a bound parameter)
    # ---------------------------------------------------------------------------------------

    def _files_overlapping(self, model: RegisteredModel, lo: datetime, hi: datetime) -> list[str]:
        """The sealed files a window needs — each one known to match its record, else
        :class:`StorageDamaged` (nothing is read from a damaged file)."""
        records = self._records("s.model_id = ? AND s.max_ts >= ? AND s.min_ts <= ?", [model.id, lo, hi])
        problems = [p for p in (self._check_before_use(r) for r in records) if p is not None]
        if problems:
            raise _damage_error(problems, lo, hi)
        return [str(self._sealed_dir / r.path) for r in records]

    def _columns_in(self, files: list[str]) -> set[str]:
        found: set[str] = set()
        for path in files:
            cols = self._file_columns.get(path)
            if cols is None:
                cols = set(pq.read_schema(path).names)
                with self._file_lock:
                    self._file_columns[path] = cols
            found |= cols
        return found

    def _ids_in_span_sql(self, model: RegisteredModel, lo: datetime, hi: datetime) -> tuple[str, dict[str, Any]]:
        params: dict[str, Any] = {"lo": lo, "hi": hi}
        sql = f"SELECT prediction_id FROM {model.predictions_table} WHERE timestamp BETWEEN $lo AND $hi"
        files = self._files_overlapping(model, lo, hi)
        if files:
            params["files"] = files
            sql += " UNION ALL SELECT prediction_id FROM read_parquet($files) WHERE timestamp BETWEEN $lo AND $hi"
        return sql, params

    def _window_sql(
        self,
        model: RegisteredModel,
        start: datetime | None,
        end: datetime | None,
        columns: list[str] | None,
        model_version: str | None,
        segments: dict[str, str] | None,
        with_labels: bool,
    ) -> tuple[str, dict[str, Any]]:
        schema_cols = [f.name for f in model.schema.arrow_schema()]
        wanted = list(columns) if columns else schema_cols
        for base in ("prediction_id", "timestamp"):
            if base not in wanted:
                wanted.insert(0, base)
        unknown = [c for c in wanted if c not in schema_cols]
        if unknown:
            raise InvalidInput(f"unknown columns {unknown}; model '{model.name}' has {schema_cols}")
        segments = segments or {}
        for seg in segments:
            if seg not in model.schema.segments:
                raise InvalidInput(
                    f"unknown segment {seg!r}; model '{model.name}' segments are {model.schema.segments}"
                )
        lo = start or FAR_PAST
        hi = end or FAR_FUTURE
        params: dict[str, Any] = {"lo": lo, "hi": hi}
        where = ["timestamp >= $lo", "timestamp < $hi"]
        if model_version is not None:
            where.append("model_version = $mv")
            params["mv"] = model_version
        for i, (seg, value) in enumerate(sorted(segments.items())):
            where.append(f"{quote_ident(seg)} = $seg{i}")
            params[f"seg{i}"] = value
        cond = " AND ".join(where)
        select_hot = ", ".join(quote_ident(c) for c in wanted)
        parts = [f"SELECT {select_hot} FROM {model.predictions_table} WHERE {cond}"]
        files = self._files_overlapping(model, lo, hi)
        if files:
            present = self._columns_in(files)
            types = dict(model.schema.sql_columns())
            select_files = ", ".join(
                quote_ident(c)
                if c in present
                else f"CAST(NULL AS {types[c].replace(' NOT NULL', '')}) AS {quote_ident(c)}"
                for c in wanted
            )
            params["files"] = files
            parts.append(f"SELECT {select_files} FROM read_parquet($files, union_by_name = true) WHERE {cond}")
        source = " UNION ALL ".join(parts)
        if with_labels:
            sql = (
                f"SELECT p.*, l.label AS label, l.timestamp AS label_timestamp FROM ({source}) p "
                f"LEFT JOIN {model.labels_table} l USING (prediction_id) WHERE TRUE"
            )
        else:
            sql = f"SELECT p.* FROM ({source}) p WHERE TRUE"
        return sql, params


SAMPLE_KEY_SQL = f"hash({{id}})::DOUBLE / {2.0**64!r}"
"""The uniform sampling key of a prediction (DuckDB's hash of its id): the same in every engine
that evaluates it through DuckDB, so a sample is the same rows wherever it is drawn."""


def sample_threshold_sql(rates: SampleRates) -> tuple[str, dict[str, Any]]:
    """The SQL expression (and its bound parameters) a row's sampling key must stay below: the
    highest rate of the slices the row belongs to."""
    thresholds = ["$rate_all"]
    params: dict[str, Any] = {"rate_all": rates.overall}
    for i, (seg, value_rates) in enumerate(rates.by_segment.items()):
        col = quote_ident(seg)
        known = [(v, r) for v, r in value_rates.items() if v is not None]  # keys are text
        params[f"values{i}"] = [v for v, _ in known]
        params[f"rates{i}"] = [r for _, r in known]
        params[f"null_rate{i}"] = value_rates.get(None, 1.0)
        thresholds.append(
            f"CASE WHEN {col} IS NULL THEN $null_rate{i} ELSE coalesce(list_extract($rates{i}, "
            f"list_position($values{i}, CAST({col} AS VARCHAR))), 1.0) END"
        )
    return f"greatest({', '.join(thresholds)})", params


def _slice_counts(
    cur: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any], segments: list[str]
) -> tuple[int, dict[str, dict[Any, int]]]:
    """Rows of the window ``sql``, and per value (null included) of each segment column."""
    total = cur.execute(f"SELECT count(*) FROM ({sql})", params).fetchall()[0][0]
    by_segment: dict[str, dict[Any, int]] = {}
    for seg in segments:
        col = quote_ident(seg)
        by_segment[seg] = dict(cur.execute(f"SELECT {col}, count(*) FROM ({sql}) GROUP BY {col}", params).fetchall())
    return total, by_segment


def _damage_error(problems: list[Problem], start: datetime | None, end: datetime | None) -> StorageDamaged:
    lo = None if start is None or start <= FAR_PAST else iso_z(start)
    hi = None if end is None or end >= FAR_FUTURE else iso_z(end)
    window = "all time" if lo is None and hi is None else f"{lo or 'the beginning'} – {hi or 'now'}"
    names = ", ".join(f"{p.path} ({p.model}, {p.date.isoformat()})" for p in problems)
    return StorageDamaged(
        f"sealed file{'s' if len(problems) > 1 else ''} {names} needed for the window ({window}) "
        f"{'are' if len(problems) > 1 else 'is'} damaged and not read: restore from backup, or "
        "`loopwatch store drop-file PATH` and re-ingest that window (docs/operations.md)",
        [
            FieldError(
                p.path,
                f"{p.reason}; holds {p.model} rows {iso_z(p.window_start)} – {iso_z(p.window_end)}",
            )
            for p in problems
        ],
    )


def _authority_rank(column: str) -> str:
    """SQL ranking an authority column: higher is more authoritative (unknown ranks lowest)."""
    ranks = " ".join(f"WHEN '{a}' THEN {len(AUTHORITIES) - i}" for i, a in enumerate(AUTHORITIES))
    return f"(CASE {column} {ranks} ELSE 0 END)"


def _int64s(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(column.to_numpy(), dtype=np.int64)


def _sorted_has_repeats(ordered: np.ndarray) -> bool:
    return bool((ordered[1:] == ordered[:-1]).any())


def _micros(column: pa.ChunkedArray) -> np.ndarray:
    """A timestamp column as int64 µs since the epoch (UTC)."""
    as_us = column.cast(pa.timestamp("us", tz="UTC")).cast(pa.int64())
    return np.asarray(as_us.to_numpy(), dtype=np.int64)


def _us(moment: datetime) -> int:
    return (moment - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


def _set_conflict_flag(cur: duckdb.DuckDBPyConnection, model: RegisteredModel, ids: pa.Table, flag: bool) -> None:
    """Set (a lower authority disagreed) or clear (a review confirmed) the labels' conflict flag."""
    cur.register("flagged_labels", ids.select(["prediction_id"]))
    try:
        cur.execute(
            f"UPDATE {model.labels_table} SET conflict = ? WHERE prediction_id IN "
            "(SELECT prediction_id FROM flagged_labels)",
            [flag],
        ).fetchall()
    finally:
        _unregister(cur, "flagged_labels")


def _unregister(cur: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a registered view. After a failed statement the transaction is aborted and this
    would raise too, hiding the real error, so a failure here is ignored (the rollback follows)."""
    with contextlib.suppress(duckdb.Error):
        cur.unregister(name)


def _encode_cursor(ts: datetime, prediction_id: str) -> str:
    raw = orjson.dumps([ts.isoformat(), prediction_id])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        ts, pid = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        return datetime.fromisoformat(ts), str(pid)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        raise InvalidInput("cursor is not valid; pass the next_cursor from the previous page") from exc


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[key] = iso_z(value)
        elif isinstance(value, date):
            out[key] = value.isoformat()
        else:
            out[key] = value
    return out


__all__ = ["IngestResult", "LabelResult", "PredictionStore", "SealedFile"]
