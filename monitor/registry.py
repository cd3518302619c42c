"""The model registry: registered models, their schema versions and the model versions seen.

Each model gets its own prediction and label tables named by its numeric id, so no user
string ever becomes a table name.
"""

from __future__ import annotations

import builtins
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import duckdb
import pyarrow as pa

from monitor.clock import Clock, utcnow
from monitor.db import Database
from monitor.errors import Conflict, FieldError, NotFound
from monitor.names import model_name_problem, quote_ident
from monitor.schema import ModelSchema, schema_changes
from monitor.versions import VersionCount, VersionTally, with_pending

RegisterOutcome = Literal["created", "updated", "unchanged"]


@dataclass(frozen=True)
class RegisteredModel:
    id: int
    name: str
    schema: ModelSchema
    schema_version: int
    created_at: datetime
    updated_at: datetime

    @property
    def predictions_table(self) -> str:
        return f"predictions_{self.id}"

    @property
    def labels_table(self) -> str:
        return f"labels_{self.id}"

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.schema.model_dump(exclude_none=True),
            "schema_version": self.schema_version,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class RegisterResult:
    model: RegisteredModel
    outcome: RegisterOutcome
    changes: list[str]


class Registry:
    def __init__(self, db: Database, now: Clock = utcnow) -> None:
        self._db = db
        self._now = now
        self._cache: dict[str, RegisteredModel] = {}
        self._lock = threading.Lock()
        self.version_tally = VersionTally()

    def register(self, spec: ModelSchema) -> RegisterResult:
        """Create a model, or evolve its schema compatibly (refusing incompatible changes)."""
        with self._db.transaction() as cur:
            row = cur.execute("SELECT id, spec, schema_version FROM models WHERE name = ?", [spec.name]).fetchall()
            now = self._now()
            if not row:
                model_id = cur.execute("SELECT coalesce(max(id), 0) + 1 FROM models").fetchall()[0][0]
                cur.execute(
                    "INSERT INTO models VALUES (?, ?, ?, 1, ?, ?, ?)",
                    [model_id, spec.name, spec.task, spec.model_dump_json(), now, now],
                ).fetchall()
                cur.execute(
                    "INSERT INTO model_schemas VALUES (?, 1, ?, ?, ?)",
                    [model_id, spec.model_dump_json(), json.dumps(["created"]), now],
                ).fetchall()
                columns = ", ".join(f"{quote_ident(c)} {t}" for c, t in spec.sql_columns())
                cur.execute(f"CREATE TABLE predictions_{model_id} ({columns})").fetchall()
                label_type = "VARCHAR" if spec.is_classifier else "DOUBLE"
                cur.execute(
                    f"CREATE TABLE labels_{model_id} (prediction_id VARCHAR PRIMARY KEY, label {label_type} NOT NULL, "
                    "timestamp TIMESTAMPTZ NOT NULL, received_at TIMESTAMPTZ NOT NULL, source VARCHAR, annotator VARCHAR, "
                    "authority VARCHAR, conflict BOOLEAN NOT NULL DEFAULT FALSE)"
                ).fetchall()
                outcome: RegisterOutcome = "created"
                changes = ["created"]
                version = 1
            else:
                model_id, old_json, version = row[0]
                old = ModelSchema.model_validate_json(old_json)
                ok, refused = schema_changes(old, spec)
                if refused:
                    raise Conflict(
                        f"schema change for model '{spec.name}' refused",
                        [FieldError(field="schema", reason=r) for r in refused],
                    )
                if not ok:
                    return RegisterResult(self._load(cur, spec.name), "unchanged", [])
                version += 1
                existing = {
                    c
                    for (c,) in cur.execute(
                        "SELECT column_name FROM duckdb_columns() WHERE table_name = ?", [f"predictions_{model_id}"]
                    ).fetchall()
                }
                for column, sql_type in spec.sql_columns():
                    if column not in existing:
                        cur.execute(
                            f"ALTER TABLE predictions_{model_id} ADD COLUMN {quote_ident(column)} "
                            f"{sql_type.replace(' NOT NULL', '')}"
                        ).fetchall()
                cur.execute(
                    "UPDATE models SET spec = ?, schema_version = ?, updated_at = ? WHERE id = ?",
                    [spec.model_dump_json(), version, now, model_id],
                ).fetchall()
                cur.execute(
                    "INSERT INTO model_schemas VALUES (?, ?, ?, ?, ?)",
                    [model_id, version, spec.model_dump_json(), json.dumps(ok), now],
                ).fetchall()
                outcome = "updated"
                changes = ok
            model = self._load(cur, spec.name)
        with self._lock:
            self._cache[spec.name] = model
        return RegisterResult(model, outcome, changes)

    def get(self, name: str) -> RegisteredModel:
        cached = self._cache.get(name)
        if cached is not None:
            return cached
        if model_name_problem(name):
            raise NotFound(f"model '{name}' is not registered (and is not a valid model name)")
        cur = self._db.cursor()
        try:
            model = self._load(cur, name)
        finally:
            cur.close()
        with self._lock:
            self._cache[name] = model
        return model

    def list(self) -> list[RegisteredModel]:
        names = [r[0] for r in self._db.query("SELECT name FROM models ORDER BY name")]
        return [self.get(n) for n in names]

    def schema_history(self, name: str) -> builtins.list[dict[str, Any]]:  # ``list`` is the method above
        model = self.get(name)
        rows = self._db.query(
            "SELECT version, changes, created_at FROM model_schemas WHERE model_id = ? ORDER BY version", [model.id]
        )
        return [{"version": v, "changes": json.loads(c or "[]"), "created_at": t.isoformat()} for v, c, t in rows]

    def written_volumes(self) -> dict[int, tuple[int, datetime | None]]:
        """Per model id: predictions and the newest prediction time in the written version counts
        (``model_versions``), all models in one read; add ``version_tally.pending`` for the rest."""
        return {
            int(model_id): (int(rows), last)
            for model_id, rows, last in self._db.query(
                "SELECT model_id, sum(rows), max(last_seen) FROM model_versions GROUP BY model_id"
            )
        }

    def versions(self, name: str) -> builtins.list[dict[str, Any]]:
        """The model versions seen in ingested predictions, oldest first (written counts plus
        those the background upkeep has not written yet)."""
        model = self.get(name)
        stored = self._db.query_dicts(
            "SELECT version, first_seen, last_seen, first_ingested_at, rows FROM model_versions WHERE model_id = ?",
            [model.id],
        )
        return with_pending(stored, self.version_tally.pending(model.id))

    def count_versions(self, model: RegisteredModel, rows: pa.Table, ingested_at: datetime) -> None:
        """Tally a committed batch's versions (the store calls this under the write lock)."""
        self.version_tally.add(model.id, rows, ingested_at)

    def write_version_counts(self) -> None:
        """Write the tallied version counts (the background upkeep, every few seconds, and close)."""
        with self._db.write_lock:  # no batch is tallied between the write and the clear
            if not self.version_tally.has_pending() or not self._db.is_open:
                return
            with self._db.transaction() as cur:
                written = self.version_tally.write(cur)
            if written:
                self.version_tally.clear()

    def recount_versions_since_mark(self) -> None:
        """Start-up: tally again the hot rows ingested after each model's mark (batches a crash
        caught before their counts were written)."""
        if not self._db.query("SELECT 1 FROM duckdb_tables() WHERE table_name = 'model_version_marks'"):
            return  # a schema before migration 12 (tests of older databases): nothing tallied yet
        marks = dict(self._db.query("SELECT model_id, counted_through FROM model_version_marks"))
        for model in self.list():
            mark = marks.get(model.id)
            rows = self._db.query(
                "SELECT model_version, min(timestamp), max(timestamp), min(ingested_at), count(*), max(ingested_at) "
                f"FROM {model.predictions_table} WHERE ingested_at > ? GROUP BY model_version",
                [mark or datetime(1970, 1, 1, tzinfo=UTC)],
            )
            if rows:
                counts = {str(v): VersionCount(f, last, fi, int(n)) for v, f, last, fi, n, _ in rows}
                self.version_tally.merge(model.id, counts, max(r[5] for r in rows))

    def _load(self, cur: duckdb.DuckDBPyConnection, name: str) -> RegisteredModel:
        rows = cur.execute(
            "SELECT id, name, spec, schema_version, created_at, updated_at FROM models WHERE name = ?", [name]
        ).fetchall()
        if not rows:
            raise NotFound(f"model '{name}' is not registered; register it with POST /v1/models")
        model_id, model_name, spec, version, created, updated = rows[0]
        return RegisteredModel(model_id, model_name, ModelSchema.model_validate_json(spec), version, created, updated)
