"""The Spark engine: a backfill's window and reference rows read by Spark from the sealed
hive-partitioned Parquet, judged by the same pure detectors, recorded by the same run store.

What runs where:

* **Executors** read the sealed files a window needs (the catalog's list — each checked against
  its recorded size and sha256 first — so Spark prunes to the window's ``date=`` partitions and
  never reads a half-written or damaged file), filter rows to the window (``timestamp`` pushed
  down to the Parquet row groups), project the detector's columns, join the labels (a Parquet
  snapshot of the labels table, written once per backfill), count the reference's slices, and draw the reference sample
  (``mapInArrow``: DuckDB's ``hash(prediction_id)`` per Arrow batch, the same key the store uses,
  so the sample is the same rows).
* **The driver** collects each window and reference as Arrow, puts the rows in the store's order
  and types, and runs the detector and the run bookkeeping exactly as the embedded engine does
  (``Evaluator`` with these tables instead of the store's).

Parity comes first: a window read here is the same Arrow table the store would return, so the
findings are the same to the last bit. Windows still holding hot (unsealed) rows are refused:
seal first (``loopwatch seal``) or backfill them with the embedded engine.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from detectors.sampling import SAMPLE_KEY, SampleRates, mark_sampled
from monitor.errors import InvalidInput
from monitor.evaluation import Evaluator
from monitor.references import ReferenceCache
from monitor.store import FAR_FUTURE, FAR_PAST, SAMPLE_KEY_SQL, sample_threshold_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from monitor.service import Loopwatch

log = logging.getLogger("loopwatch.spark")

DEFAULT_MASTER = "local[*]"
ENGINE = "spark"


@dataclass(frozen=True)
class SparkOptions:
    """How the session is built: the master URL and extra ``spark.*`` settings (for a cluster or
    ``s3a://`` object storage: ``spark.hadoop.fs.s3a.*``)."""

    master: str = DEFAULT_MASTER
    driver_memory: str = "1g"
    conf: tuple[tuple[str, str], ...] = ()


def spark_session(options: SparkOptions) -> SparkSession:
    """A session in UTC without the web UI (a backfill is a batch job, not a service)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:  # the optional extra is missing
        raise InvalidInput("the Spark engine needs PySpark: pip install 'loopwatch[spark]'") from exc
    builder = (
        SparkSession.builder.master(options.master)
        .appName("loopwatch-backfill")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", options.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        .config("spark.ui.showConsoleProgress", "false")
    )
    if options.master.startswith("local"):
        # Python workers on this machine run this interpreter (pyarrow and duckdb installed; PySpark
        # reads only the environment variable). On a cluster, set PYSPARK_PYTHON to a path that
        # exists on every executor.
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    for key, value in options.conf:
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


class SparkTables:
    """Window and reference rows read by Spark (``monitor.evaluation.WindowTables``): the same
    rows, order and Arrow types as ``PredictionStore.scan`` / ``reference_sample``, from the
    sealed files only."""

    def __init__(self, spark: SparkSession, service: Loopwatch, scratch: Path) -> None:
        """``scratch``: where the labels snapshot is written for the executors to read (on a
        cluster it must be on the filesystem they share, like ``sealed/``)."""
        self._spark = spark
        self._store = service.store
        self._registry = service.registry
        self._scratch = scratch
        self._labels: dict[str, DataFrame] = {}
        self.windows_read = 0

    # --- WindowTables ----------------------------------------------------------------------

    def scan(
        self,
        model_name: str,
        start: datetime | None = None,
        end: datetime | None = None,
        *,
        columns: list[str] | None = None,
    ) -> pa.Table:
        frame, target = self._window(model_name, start, end, columns, None)
        if frame is None:
            return target
        return self._collect(self._labelled(model_name, frame), target)

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
        model = self._registry.get(model_name)
        segments = [s for s in segments if s in model.schema.segments]
        frame, target = self._window(model_name, start, end, columns, model_version)
        if frame is None:
            return target
        # Counted and sampled before the labels are joined (a left join on a unique key changes
        # neither the counts nor which rows the id's hash keeps), so only the sample is joined.
        total, by_segment = _slice_counts(frame, segments)
        rates = SampleRates.for_counts(total, by_segment, cap)
        if not rates.samples:
            return self._collect(self._labelled(model_name, frame), target)
        sampled = self._labelled(model_name, _sample(frame, rates))
        keyed = target.append_column(pa.field(SAMPLE_KEY, pa.float64()), pa.array([], pa.float64()))
        return mark_sampled(self._collect(sampled, keyed), rates)

    # --- reading ---------------------------------------------------------------------------

    def _window(
        self,
        model_name: str,
        start: datetime | None,
        end: datetime | None,
        columns: list[str] | None,
        model_version: str | None,
    ) -> tuple[DataFrame | None, pa.Table]:
        """The window's predictions as a Spark frame, without labels (``None`` when no sealed file
        holds it), and the empty table of the store's answer (its schema is what the collected
        rows are cast to)."""
        from pyspark.sql import functions as F

        lo = start or FAR_PAST
        hi = end or FAR_FUTURE
        hot = self._store.hot_rows(model_name, lo, hi)
        if hot:
            raise InvalidInput(
                f"the Spark engine reads sealed Parquet only, and {hot} predictions of {model_name} in "
                f"[{lo.isoformat()}, {hi.isoformat()}) are still in the hot table: seal them first "
                "(`loopwatch seal` moves days past the hot period) or backfill these windows with the embedded engine"
            )
        target = self._store.scan(model_name, FAR_PAST, FAR_PAST, columns=columns)  # no rows: the schema
        files = self._store.sealed_paths(model_name, lo, hi)
        if not files:
            return None, target
        self.windows_read += 1
        base = str(self._store.sealed_dir / f"model={model_name}")
        frame = self._spark.read.option("basePath", base).option("mergeSchema", "true").parquet(*files)
        frame = frame.where((F.col("timestamp") >= F.lit(lo)) & (F.col("timestamp") < F.lit(hi)))
        if model_version is not None:
            frame = frame.where(F.col("model_version") == F.lit(model_version))
        present = set(frame.columns)
        predicted = [f for f in target.schema if f.name not in ("label", "label_timestamp")]
        frame = frame.select(
            *[
                F.col(f.name) if f.name in present else F.lit(None).cast(_spark_type(f.type)).alias(f.name)
                for f in predicted
            ]
        )
        return frame, target

    def _labelled(self, model_name: str, frame: DataFrame) -> DataFrame:
        """The rows with their labels, if any (the store's ``LEFT JOIN labels USING (prediction_id)``)."""
        return frame.join(self._label_frame(model_name), on="prediction_id", how="left")

    def _label_frame(self, model_name: str) -> DataFrame:
        """The labels as of the first window read (labels stay in DuckDB: a snapshot is written
        to Parquet once, and the executors read and join it like the predictions — shipping the
        rows inside the tasks instead exhausted a 1 GB driver at 800k labels)."""
        if model_name not in self._labels:
            self._scratch.mkdir(parents=True, exist_ok=True)
            path = self._scratch / f"labels-{uuid.uuid4().hex}.parquet"
            self._store.export_labels(model_name, path)
            self._labels[model_name] = self._spark.read.parquet(str(path)).cache()
        return self._labels[model_name]

    def close(self) -> None:
        """Remove the label snapshots (after the session that reads them is done)."""
        shutil.rmtree(self._scratch, ignore_errors=True)
        self._labels.clear()

    def _collect(self, frame: DataFrame, target: pa.Table) -> pa.Table:
        """Collect to the driver in the store's column order, types and row order
        (timestamp, prediction_id)."""
        table = frame.select(*target.column_names).toArrow()
        table = pa.Table.from_arrays(
            [
                table.column(name).cast(field.type)
                for name, field in zip(target.column_names, target.schema, strict=True)
            ],
            schema=target.schema,
        )
        return table.sort_by([("timestamp", "ascending"), ("prediction_id", "ascending")]).combine_chunks()


def _spark_type(arrow_type: pa.DataType) -> Any:
    from pyspark.sql.pandas.types import from_arrow_type

    return from_arrow_type(arrow_type)


def _slice_counts(frame: DataFrame, segments: list[str]) -> tuple[int, dict[str, dict[Any, int]]]:
    """Rows of the window and per value (null included) of each segment column: one grouped
    count on the executors (by every segment together), whose margins are the store's numbers."""
    if not segments:
        return frame.count(), {}
    total = 0
    by_segment: dict[str, dict[Any, int]] = {seg: {} for seg in segments}
    for row in frame.groupBy(*segments).count().collect():
        n = int(row[len(segments)])  # by position: a segment may itself be called "count"
        total += n
        for i, seg in enumerate(segments):
            by_segment[seg][row[i]] = by_segment[seg].get(row[i], 0) + n
    return total, by_segment


def _sample(frame: DataFrame, rates: SampleRates) -> DataFrame:
    """The rows whose sampling key (DuckDB's hash of the id, computed on the executors per Arrow
    batch) is below the highest rate of their slices: the store's sample, row for row."""
    from pyspark.sql.types import DoubleType, StructField, StructType

    threshold, params = sample_threshold_sql(rates)
    key = SAMPLE_KEY_SQL.format(id="prediction_id")
    query = f'SELECT *, {key} AS "{SAMPLE_KEY}" FROM batch WHERE {key} < {threshold}'

    def keep(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        import duckdb

        con = duckdb.connect()
        try:
            for batch in batches:
                con.register("batch", pa.Table.from_batches([batch]))
                out: pa.Table = con.sql(query, params=params).to_arrow_table()
                con.unregister("batch")
                yield from out.to_batches()
        finally:
            con.close()

    schema = StructType([*frame.schema.fields, StructField(SAMPLE_KEY, DoubleType(), True)])
    return frame.mapInArrow(keep, schema)


class SparkEngine:
    """A Spark session and an evaluator reading through it, for one backfill (or several)."""

    def __init__(self, service: Loopwatch, options: SparkOptions | None = None) -> None:
        from monitor.alerting.alerts import AlertStore
        from monitor.scheduling import MonitorRunner

        self.options = options or SparkOptions()
        self.spark = spark_session(self.options)
        self.tables = SparkTables(self.spark, service, service.settings.data_dir / "spark" / uuid.uuid4().hex)
        evaluator = Evaluator(
            service.store,
            service.registry,
            service.evaluator.references_dir,
            ReferenceCache(),
            reference_sample_rows=service.evaluator.reference_sample_rows,
            tables=self.tables,
        )
        alerts = AlertStore(service.db, service.registry, service.now)
        self.runner = MonitorRunner(
            evaluator, service.runs, service.monitors, service.now, reference_freeze=alerts.reference_freeze
        )

    def describe(self) -> dict[str, Any]:
        """What a backfill's audit record and summary say about the engine."""
        return {"engine": ENGINE, "spark_master": self.options.master, "spark_version": self.spark.version}

    def close(self) -> None:
        self.spark.stop()
        self.tables.close()
