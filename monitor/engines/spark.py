"""The Spark engine: a window's and a reference's rows read by Spark from the sealed
hive-partitioned Parquet plus the window's hot rows, judged by the same pure detectors, recorded
by the same run store — for backfills (``loopwatch backfill --engine spark``) and for the
scheduled runs of monitors declared ``engine: spark``.

What runs where:

* **Executors** read the sealed files a window needs (the catalog's list — each checked against
  its recorded size and sha256 first — so Spark prunes to the window's ``date=`` partitions and
  never reads a half-written or damaged file; with ``spark_sealed_uri`` the same files in a mirror
  kept by ``loopwatch sealed push``, each found there with the catalog's size first, on the driver
  through Spark's Hadoop filesystem) and the window's hot rows (still in DuckDB: taken with the
  file list under the lock sealing holds, so no row is read twice or missed, and shipped from the
  driver as Arrow, so executors need no filesystem shared with the server), filter rows to the window (``timestamp`` pushed
  down to the Parquet row groups), project the detector's columns, count the reference's
  slices, and draw the reference sample (``mapInArrow``: DuckDB's ``hash(prediction_id)`` per
  Arrow batch, the same key the store uses, so the sample is the same rows).
* **The driver** (the loopwatch process) collects each window and reference sample as Arrow,
  joins their labels from DuckDB (labels are never sealed: they live in the service's database,
  beside the driver), puts the rows in the store's order and types, and runs the detector and
  the run bookkeeping exactly as the embedded engine does (``Evaluator`` with these tables
  instead of the store's).

Parity comes first: a window read here is the same Arrow table the store would return, so the
findings are the same to the last bit.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from detectors.sampling import SAMPLE_KEY, SampleRates, mark_sampled
from monitor.errors import FieldError, MirrorIncomplete, NotConfigured
from monitor.evaluation import Evaluator
from monitor.references import ReferenceCache
from monitor.store import FAR_FUTURE, FAR_PAST, SAMPLE_KEY_SQL, sample_threshold_sql

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from monitor.service import Loopwatch
    from monitor.settings import Settings

log = logging.getLogger("loopwatch.spark")

DEFAULT_MASTER = "local[*]"
ENGINE = "spark"


@dataclass(frozen=True)
class SparkOptions:
    """How the session is built: the master URL and extra ``spark.*`` settings (for a cluster or
    ``s3a://`` object storage: ``spark.hadoop.fs.s3a.*``), and where the sealed files are read:
    ``sealed_uri`` (a mirror kept by ``loopwatch sealed push``, normalised by
    ``monitor.settings.normalize_sealed_uri``) or ``None``, the data directory's own files."""

    master: str = DEFAULT_MASTER
    driver_memory: str = "1g"
    conf: tuple[tuple[str, str], ...] = ()
    sealed_uri: str | None = None

    @classmethod
    def from_settings(
        cls, settings: Settings, master: str | None = None, sealed_uri: str | None = None
    ) -> SparkOptions:
        """The server's Spark settings (``LOOPWATCH_SPARK_MASTER``, ``_SPARK_CONF``,
        ``_SPARK_DRIVER_MEMORY``, ``_SPARK_SEALED_URI``); ``master`` and ``sealed_uri`` override
        theirs (a backfill's ``--spark-master`` and ``--spark-sealed-uri``)."""
        return cls(
            master=master or settings.spark_master,
            driver_memory=settings.spark_driver_memory,
            conf=tuple(sorted(settings.spark_conf.items())),
            sealed_uri=sealed_uri or settings.spark_sealed_uri,
        )


def missing_requirements() -> str | None:
    """What this machine lacks to start a Spark session (``None``: nothing): PySpark, and a Java
    runtime (``JAVA_HOME`` or ``java`` on the PATH) for its JVM."""
    if importlib.util.find_spec("pyspark") is None:
        return "PySpark is not installed: pip install 'loopwatch[spark]' (pyspark==4.0.1)"
    java_home = os.environ.get("JAVA_HOME")
    if not (java_home and Path(java_home, "bin", "java").exists()) and shutil.which("java") is None:
        return (
            "no Java runtime for Spark: install Java 17 (Debian: apt-get install openjdk-17-jre-headless) "
            "or set JAVA_HOME"
        )
    return None


def require_spark() -> None:
    """:class:`NotConfigured` (503) saying what to install when Spark cannot start here."""
    missing = missing_requirements()
    if missing is not None:
        raise NotConfigured(f"the Spark engine cannot run on this machine: {missing}")


def spark_session(options: SparkOptions) -> SparkSession:
    """A session in UTC without the web UI (a backfill is a batch job, not a service)."""
    require_spark()
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.master(options.master)
        .appName("loopwatch-backfill")
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", options.driver_memory)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.sql.shuffle.partitions", "8")
        # Fewer, larger Arrow batches for the sampling UDF (one DuckDB query per batch).
        .config("spark.sql.execution.arrow.maxRecordsPerBatch", "100000")
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
    sealed files plus the window's hot rows."""

    def __init__(self, spark: SparkSession, service: Loopwatch, sealed_uri: str | None = None) -> None:
        """``sealed_uri``: the root of a mirror of ``sealed/`` (same layout) that Spark reads
        instead of the local files."""
        self._spark = spark
        self._sealed_uri = sealed_uri
        self._store = service.store
        self._registry = service.registry
        self._local = threading.local()  # each thread's last read inputs (scheduled runs overlap)
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
        return self._collect(model_name, frame, target)

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
            return self._collect(model_name, frame, target)
        keyed = target.append_column(pa.field(SAMPLE_KEY, pa.float64()), pa.array([], pa.float64()))
        return mark_sampled(self._collect(model_name, _sample(frame, rates), keyed), rates)

    # --- reading ---------------------------------------------------------------------------

    def _window(
        self,
        model_name: str,
        start: datetime | None,
        end: datetime | None,
        columns: list[str] | None,
        model_version: str | None,
    ) -> tuple[DataFrame | None, pa.Table]:
        """The window's predictions (sealed and hot) as a Spark frame, without labels (``None`` when
        it holds no rows), and the empty table of the store's answer (its schema is what the collected
        rows are cast to)."""

        lo = start or FAR_PAST
        hi = end or FAR_FUTURE
        target = self._store.scan(model_name, FAR_PAST, FAR_PAST, columns=columns)  # no rows: the schema
        files, hot = self._store.window_parts(model_name, lo, hi, columns=columns, model_version=model_version)
        if not files and hot.num_rows == 0:
            return None, target
        self.windows_read += 1
        predicted = [f for f in target.schema if f.name not in ("label", "label_timestamp")]
        parts: list[DataFrame] = []
        if files:
            sources, base = self._sources(model_name, files)
            # The schema is given, not inferred: inferring (or merging) it is a Spark job per read.
            # A column missing from some files (added to the model after they were sealed) reads as null.
            present = self._store.sealed_columns(files)
            schema = _spark_schema([f for f in predicted if f.name in present])
            sealed = self._spark.read.schema(schema).option("basePath", base).parquet(*sources)
            self._local.inputs = tuple(sealed.inputFiles())
            parts.append(_shaped(sealed, predicted, lo, hi, model_version))
        if hot.num_rows:
            # Shipped from the driver as Arrow (no file the executors would have to share).
            parts.append(_shaped(self._spark.createDataFrame(hot), predicted, lo, hi, None))
        frame = parts[0]
        for other in parts[1:]:
            frame = frame.unionByName(other)
        return frame, target

    def _sources(self, model_name: str, files: list[str]) -> tuple[list[str], str]:
        """What Spark is given for these sealed files (local paths from the catalog) and their
        ``basePath``: the files themselves, or — with a mirror — ``<sealed_uri>/<path under
        sealed/>`` each, after checking through Spark's own Hadoop filesystem that every one is
        there with the catalog's size (checked for every window: nothing is remembered, so a
        mirror changed since the last window is seen)."""
        root = self._sealed_uri
        if root is None:
            return files, str(self._store.sealed_dir / f"model={model_name}")
        sizes = {str(r["path"]): int(r["bytes"]) for r in self._store.sealed_files(model_name)}
        wanted = []
        for local in files:
            rel = Path(local).relative_to(self._store.sealed_dir).as_posix()
            wanted.append(MirroredFile(rel, f"{root}/{rel}", sizes.get(rel)))
        check_mirror(self._spark, root, wanted)
        return [w.uri for w in wanted], f"{root}/model={model_name}"

    @property
    def last_inputs(self) -> tuple[str, ...]:
        """The sealed files Spark's last read on this thread listed (``DataFrame.inputFiles``):
        where the rows really came from — a mirror's URIs or the local paths."""
        inputs: tuple[str, ...] = self._local.__dict__.get("inputs", ())
        return inputs

    def _collect(self, model_name: str, frame: DataFrame, target: pa.Table) -> pa.Table:
        """Collect the rows to the driver, add their labels there (``PredictionStore.join_labels``:
        labels live only in DuckDB, beside the driver; joining them on the executors meant a
        snapshot of every label shuffled for each window), and return them in the store's column
        order, types and row order (timestamp, prediction_id)."""
        unlabelled = [name for name in target.column_names if name not in ("label", "label_timestamp")]
        table = self._store.join_labels(model_name, frame.select(*unlabelled).toArrow())
        table = pa.Table.from_arrays(
            [
                table.column(name).cast(field.type)
                for name, field in zip(target.column_names, target.schema, strict=True)
            ],
            schema=target.schema,
        )
        return table.sort_by([("timestamp", "ascending"), ("prediction_id", "ascending")]).combine_chunks()


def _shaped(
    frame: DataFrame, predicted: list[pa.Field], lo: datetime, hi: datetime, model_version: str | None
) -> DataFrame:
    """Rows of ``[lo, hi)`` (of one model version, if given) as the store's prediction columns, in
    its order and types (a column a file lacks — added to the schema after it was sealed — is null)."""
    from pyspark.sql import functions as F

    frame = frame.where((F.col("timestamp") >= F.lit(lo)) & (F.col("timestamp") < F.lit(hi)))
    if model_version is not None:
        frame = frame.where(F.col("model_version") == F.lit(model_version))
    present = set(frame.columns)
    return frame.select(
        *[
            (F.col(f.name) if f.name in present else F.lit(None)).cast(_spark_type(f.type)).alias(f.name)
            for f in predicted
        ]
    )


def _spark_schema(fields: list[pa.Field]) -> Any:
    from pyspark.sql.types import StructField, StructType

    return StructType([StructField(f.name, _spark_type(f.type), True) for f in fields])


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


CANARY_IDS = tuple(f"loopwatch-sampling-canary-{i}" for i in range(16))


@dataclass(frozen=True)
class SamplingKeys:
    """What one side computes for the canary ids: its DuckDB version and the sampling keys."""

    duckdb_version: str
    keys: tuple[float, ...]


CANARY_SQL = f"SELECT {SAMPLE_KEY_SQL.format(id='prediction_id')} FROM ids ORDER BY prediction_id"


def _canary_function() -> Callable[[tuple[str, ...], str], tuple[str, list[float]]]:
    """A function computing (DuckDB version, the canary ids' sampling keys) in the calling process.
    Made here, nested, so cloudpickle ships it to the executors by value: they run it without
    loopwatch installed (it imports only duckdb and pyarrow)."""

    def keys_of(ids: tuple[str, ...], sql: str) -> tuple[str, list[float]]:
        import duckdb
        import pyarrow

        con = duckdb.connect()
        try:
            con.register("ids", pyarrow.table({"prediction_id": list(ids)}))
            return duckdb.__version__, [float(r[0]) for r in con.sql(sql).fetchall()]
        finally:
            con.close()

    return keys_of


def sampling_keys_here() -> SamplingKeys:
    """The canary ids' sampling keys computed by this process's DuckDB (the store's and driver's)."""
    version, keys = _canary_function()(CANARY_IDS, CANARY_SQL)
    return SamplingKeys(version, tuple(keys))


def sampling_keys_on_executors(spark: SparkSession) -> list[SamplingKeys]:
    """The same keys computed by the executors' Python workers, one answer per task (as many
    tasks as the session's default parallelism, so each executor is likely asked)."""
    from pyspark.sql.types import ArrayType, DoubleType, StringType, StructField, StructType

    tasks = max(int(spark.sparkContext.defaultParallelism), 1)
    frame = spark.createDataFrame([(i,) for i in range(tasks)], "task INT").repartition(tasks)
    ids, sql, keys_of = CANARY_IDS, CANARY_SQL, _canary_function()
    answer = pa.schema([("duckdb_version", pa.string()), ("keys", pa.list_(pa.float64())), ("error", pa.string())])

    def compute(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for _ in batches:
            pass
        try:
            version, keys = keys_of(ids, sql)
            row: dict[str, list[Any]] = {"duckdb_version": [version], "keys": [keys], "error": [None]}
        except Exception as exc:  # a missing or broken duckdb is the answer, not a crash of the probe
            row = {"duckdb_version": [None], "keys": [None], "error": [f"{type(exc).__name__}: {exc}"]}
        yield pa.RecordBatch.from_pydict(row, schema=answer)

    schema = StructType(
        [
            StructField("duckdb_version", StringType(), True),
            StructField("keys", ArrayType(DoubleType()), True),
            StructField("error", StringType(), True),
        ]
    )
    answers: list[SamplingKeys] = []
    for found in frame.mapInArrow(compute, schema).collect():
        if found["error"] is not None:
            raise NotConfigured(
                f"the Spark executors cannot compute loopwatch's sampling key ({found['error']}); install "
                f"duckdb=={sampling_keys_here().duckdb_version} in the executors' Python (docs/spark.md)"
            )
        answers.append(SamplingKeys(str(found["duckdb_version"]), tuple(float(k) for k in found["keys"])))
    return answers


def check_same_sampling(here: SamplingKeys, executors: list[SamplingKeys]) -> None:
    """:class:`NotConfigured` unless every executor draws reference samples exactly as the store
    does: the sample is ``hash(prediction_id)`` below a rate, and DuckDB's hash may change between
    versions, which would make Spark pick other rows than the embedded engine without an error."""
    differing = [e for e in executors if e.keys != here.keys]
    if differing:
        versions = sorted({e.duckdb_version for e in differing})
        raise NotConfigured(
            f"the Spark executors compute other sampling keys than this server (DuckDB {', '.join(versions)} there, "
            f"{here.duckdb_version} here), so their reference samples would differ from the embedded engine's; "
            f"install duckdb=={here.duckdb_version} in the executors' Python (docs/spark.md)"
        )


@dataclass(frozen=True)
class MirroredFile:
    """A sealed file as the mirror holds it: its path under ``sealed/``, its URI in the mirror and
    the catalog's size (``None``: dropped from the catalog since the window was planned)."""

    path: str
    uri: str
    size: int | None


SHOWN_PROBLEMS = 3


def check_mirror(spark: SparkSession, root: str, files: list[MirroredFile]) -> None:
    """On the driver, through Spark's own Hadoop ``FileSystem`` (the one the executors read with,
    configured by ``spark.hadoop.*``): every file exists in the mirror with the catalog's size,
    else :class:`MirrorIncomplete` naming them (the first few, and how many) and the push command.
    A mirror Spark cannot open at all (no filesystem for the scheme: hadoop-aws missing for
    ``s3a://``) is :class:`NotConfigured`, saying so."""
    from py4j.java_gateway import is_instance_of
    from py4j.protocol import Py4JJavaError

    jvm: Any = spark._jvm  # the Hadoop filesystem is reachable only through py4j
    conf = spark._jsc.hadoopConfiguration()
    hadoop_path = jvm.org.apache.hadoop.fs.Path
    try:
        fs = hadoop_path(root).getFileSystem(conf)
    except Py4JJavaError as exc:
        hint = (
            " (s3a:// needs hadoop-aws on Spark's classpath: spark.jars.packages or spark.jars, docs/spark.md)"
            if root.startswith("s3a://")
            else ""
        )
        raise NotConfigured(f"Spark cannot open the sealed mirror {root}: {_java_message(exc)}{hint}") from None
    problems: list[tuple[str, str]] = []
    for item in files:
        if item.size is None:
            problems.append((item.path, "no longer in the catalog (dropped since the window was planned)"))
            continue
        try:
            length = int(fs.getFileStatus(hadoop_path(item.uri)).getLen())
        except Py4JJavaError as exc:
            gateway = spark.sparkContext._gateway
            missing = is_instance_of(gateway, exc.java_exception, "java.io.FileNotFoundException")
            problems.append((item.path, "missing" if missing else f"unreadable: {_java_message(exc)}"))
            continue
        if length != item.size:
            problems.append((item.path, f"{length} bytes in the mirror, {item.size} in the catalog"))
    if problems:
        shown = ", ".join(f"{path} ({reason})" for path, reason in problems[:SHOWN_PROBLEMS])
        more = f" and {len(problems) - SHOWN_PROBLEMS} more" if len(problems) > SHOWN_PROBLEMS else ""
        push = "s3://" + root.removeprefix("s3a://") if root.startswith("s3a://") else root
        raise MirrorIncomplete(
            f"the sealed mirror {root} does not hold {len(problems)} of the {len(files)} sealed files this "
            f"window needs as the catalog records them: {shown}{more}; push them with "
            f"`loopwatch sealed push {push}` (s3:// there and s3a:// here name the same objects)",
            [FieldError(path, reason) for path, reason in problems],
        )


def _java_message(exc: Any) -> str:
    """The Java exception's class and message, first line only (no stack trace)."""
    java = exc.java_exception
    return f"{java.getClass().getName()}: {java.getMessage()}".splitlines()[0]


class SparkEngine:
    """A Spark session and an evaluator reading through it."""

    def __init__(self, service: Loopwatch, options: SparkOptions | None = None) -> None:
        self.options = options or SparkOptions()
        self.spark = spark_session(self.options)
        # Once per session: the executors must sample the rows the embedded engine samples.
        try:
            self.executor_duckdb = self._check_executors()
        except BaseException:
            self.spark.stop()
            raise
        self.tables = SparkTables(self.spark, service, self.options.sealed_uri)
        self.evaluator = Evaluator(
            service.store,
            service.registry,
            service.evaluator.references_dir,
            ReferenceCache(max_bytes=service.settings.reference_cache_mb * 1024 * 1024),
            reference_sample_rows=service.evaluator.reference_sample_rows,
            tables=self.tables,
        )

    def _check_executors(self) -> str:
        """The executors' DuckDB version, once they are known to draw the store's samples."""
        here = sampling_keys_here()
        executors = sampling_keys_on_executors(self.spark)
        check_same_sampling(here, executors)
        return executors[0].duckdb_version if executors else here.duckdb_version

    def describe(self) -> dict[str, Any]:
        """What a backfill's audit record and summary say about the engine."""
        described = {
            "engine": ENGINE,
            "spark_master": self.options.master,
            "spark_version": self.spark.version,
            "executor_duckdb": self.executor_duckdb,
        }
        if self.options.sealed_uri is not None:
            described["spark_sealed_uri"] = self.options.sealed_uri
        return described

    def close(self) -> None:
        self.spark.stop()


class SparkEngines:
    """The process's Spark engine, started on first use and shared by backfills and the scheduled
    runs of ``engine: spark`` monitors (Spark allows one active session per process: asking for
    other options — a backfill's ``--spark-master`` — stops the current session and starts one
    with them; scheduled runs then use that one until the process ends or it is replaced)."""

    def __init__(self, service: Loopwatch) -> None:
        self._service: Loopwatch | None = service
        self._engine: SparkEngine | None = None
        self._lock = threading.Lock()

    def get(self, options: SparkOptions | None = None) -> SparkEngine:
        """The engine with ``options`` (default: the settings'; an engine already started serves
        any caller that asks for no options), started if needed; :class:`NotConfigured` (503) if
        this machine cannot run Spark, saying what to install."""
        with self._lock:
            service = self._service
            if service is None:
                raise RuntimeError("the service is closed")
            if self._engine is not None and (options is None or options == self._engine.options):
                return self._engine
            wanted = options or SparkOptions.from_settings(service.settings)
            if self._engine is not None:
                self._engine.close()
                self._engine = None
            self._engine = SparkEngine(service, wanted)
            return self._engine

    def evaluator(self) -> Evaluator:
        """The Spark evaluator scheduled runs of ``engine: spark`` monitors use."""
        return self.get().evaluator

    def close(self) -> None:
        """Stop the session, if one was started."""
        with self._lock:
            if self._engine is not None:
                self._engine.close()
                self._engine = None

    def detach(self) -> None:
        """Close, and forget the service (it is closing)."""
        self.close()
        self._service = None
