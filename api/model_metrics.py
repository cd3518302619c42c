"""Per-model health as Prometheus gauges, read from the stores at scrape time.

On-call teams watch loopwatch's verdicts in the same Prometheus/Grafana as everything else,
so ``/metrics`` carries, next to the service's own metrics, what the API reports about each
model: the latest drift score and status per feature, realized and estimated performance,
firing alerts, volume, label coverage and freshness (docs/operations.md, "Metrics").

Why a collector that reads current state rather than gauges set when a run finishes: the
stores are the truth. A deleted monitor, a restarted server or an alert resolved by another
path then never leaves a stale series behind, and the numbers always agree with the API.

Why it stays cheap (scrapes come every 15–60 s): every read is a plain read on its own cursor,
never inside a transaction, so it takes no write lock and never waits on or blocks ingest. The
per-monitor latest runs are one query over ``runs``; their findings never change once recorded,
so they are fetched once per run and kept; alerts are one grouped count; volume and freshness
come from the per-version tallies (``model_versions`` plus the in-memory pending counts) and
coverage from the hourly rollups, never from the prediction log. A snapshot is reused for
``ttl`` seconds so several Prometheus replicas scraping at once do the work once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import get_args

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from detectors import Status
from monitor.alerting.alerts import AlertStore
from monitor.monitors import Severity
from monitor.registry import RegisteredModel
from monitor.rollups import Rollups
from monitor.runs import LatestRun, WindowFinding
from monitor.service import Loopwatch

#: Detectors whose findings are per-feature drift scores.
DRIFT_DETECTORS = ("data_drift", "prediction_drift", "label_drift", "multivariate_drift", "embedding_drift")
#: Detectors whose findings are model performance, and the ``kind`` label each one gets.
PERFORMANCE_KINDS = {"performance": "realized", "estimated_performance": "estimated"}
#: Findings of the performance detectors that are not a performance value (bookkeeping verdicts).
NOT_PERFORMANCE = frozenset({"label_coverage", "estimator_check"})
#: Severities a monitor can have: each model gets a series for every one, 0 when none fires.
SEVERITIES: tuple[str, ...] = get_args(Severity)
#: ``loopwatch_model_drift_status``: the verdict as an ordered level, one series per feature.
#: Not one 0/1 series per state (Prometheus' usual form for an enum): the verdicts are ordered
#: severities, so ``max by (model) (…) >= 2`` answers "is anything critical" in one expression,
#: and it is a quarter of the series (a scrape's render time is per series; bench/metrics_scrape.py).
STATUS_LEVELS = {Status.INSUFFICIENT_DATA: -1.0, Status.OK: 0.0, Status.WARNING: 1.0, Status.CRITICAL: 2.0}
#: ``feature`` of a monitor's table-level verdict (share of drifted columns, reconstruction error).
TABLE_FEATURE = "*"
#: At most this many features per model get drift series (bounded cardinality; the worst first).
MAX_FEATURES_PER_MODEL = 50
#: Label coverage is over the hourly rollups of this trailing span (the rollups' label horizon).
COVERAGE_SPAN = timedelta(days=7)
#: How long a snapshot is reused (scrapes come every 15–60 s; replicas scrape at once).
DEFAULT_TTL_SECONDS = 5.0

log = logging.getLogger("loopwatch.metrics")

_SEVERITY_RANK = {Status.CRITICAL: 0, Status.WARNING: 1, Status.INSUFFICIENT_DATA: 2, Status.OK: 3}


@dataclass(frozen=True)
class DriftSeries:
    model: str
    monitor: str
    feature: str
    status: str
    score: float | None


@dataclass(frozen=True)
class PerformanceSeries:
    model: str
    monitor: str
    metric: str
    kind: str
    value: float


@dataclass(frozen=True)
class ModelVolume:
    model: str
    predictions: int
    last_prediction: datetime | None
    label_coverage: float | None
    drift_features_omitted: int


@dataclass(frozen=True)
class Snapshot:
    """Everything one scrape exports, read at one moment."""

    drift: list[DriftSeries] = field(default_factory=list)
    performance: list[PerformanceSeries] = field(default_factory=list)
    firing: dict[tuple[str, str], int] = field(default_factory=dict)
    volumes: list[ModelVolume] = field(default_factory=list)


def cap_features(series: Sequence[DriftSeries], limit: int) -> tuple[list[DriftSeries], int]:
    """Keep the drift series of at most ``limit`` features of one model, and say how many were
    left out. The worst features stay (critical, warning, insufficient, ok; then by name), so a
    drifting feature is never the one hidden; the table-level verdict (``*``) always stays.

    >>> s = [DriftSeries("m", "d", f, st, 0.1) for f, st in [("a", "ok"), ("b", "critical"), ("c", "ok")]]
    >>> kept, omitted = cap_features(s, 2)
    >>> sorted(x.feature for x in kept), omitted
    (['a', 'b'], 1)
    """
    worst: dict[str, int] = {}
    for item in series:
        if item.feature != TABLE_FEATURE:
            rank = _SEVERITY_RANK.get(Status(item.status), len(_SEVERITY_RANK))
            worst[item.feature] = min(rank, worst.get(item.feature, rank))
    ranked = sorted(worst, key=lambda feature: (worst[feature], feature))
    keep = set(ranked[:limit])
    kept = [s for s in series if s.feature == TABLE_FEATURE or s.feature in keep]
    return kept, max(0, len(ranked) - limit)


class ModelHealthReader:
    """Reads a :class:`Snapshot` from the stores; keeps the (immutable) findings of the runs it has
    seen, so a scrape only fetches the findings of runs recorded since the previous one."""

    def __init__(
        self,
        service: Loopwatch,
        rollups: Rollups,
        *,
        max_features: int = MAX_FEATURES_PER_MODEL,
        coverage_span: timedelta = COVERAGE_SPAN,
    ) -> None:
        self._service = service
        self._rollups = rollups
        self._alerts = AlertStore(service.db, service.registry, service.now)  # read-only use
        self._max_features = max_features
        self._coverage_span = coverage_span
        self._findings: dict[str, list[WindowFinding]] = {}
        # Per model id: the highest (predictions, last prediction) exported, see _volumes.
        self._high: dict[int, tuple[int, datetime | None]] = {}

    def read(self) -> Snapshot:
        registered = self._service.registry.list()
        models = [m.name for m in registered]
        runs = self._service.runs.latest_runs([*DRIFT_DETECTORS, *PERFORMANCE_KINDS])
        findings = self._findings_of(runs)
        drift: list[DriftSeries] = []
        performance: list[PerformanceSeries] = []
        for run in runs:
            for f in findings.get(run.id, []):
                if run.detector in PERFORMANCE_KINDS:
                    if f.metric not in NOT_PERFORMANCE and f.value is not None and math.isfinite(f.value):
                        kind = PERFORMANCE_KINDS[run.detector]
                        performance.append(PerformanceSeries(run.model, run.monitor, f.metric, kind, f.value))
                else:
                    feature = f.column or TABLE_FEATURE
                    drift.append(DriftSeries(run.model, run.monitor, feature, f.status, f.value))
        by_model: dict[str, list[DriftSeries]] = {model: [] for model in models}
        for item in drift:
            by_model.setdefault(item.model, []).append(item)
        kept: list[DriftSeries] = []
        omitted: dict[str, int] = {}
        for model, series in by_model.items():
            capped, omitted[model] = cap_features(series, self._max_features)
            kept.extend(_first_per_feature(capped))
        return Snapshot(
            drift=kept,
            performance=_first_per_metric(performance),
            firing=self._firing(models),
            volumes=self._volumes(registered, omitted),
        )

    def _findings_of(self, runs: list[LatestRun]) -> dict[str, list[WindowFinding]]:
        missing = [run for run in runs if run.id not in self._findings]
        fetched: dict[str, list[WindowFinding]] = {run.id: [] for run in missing}
        for finding in self._service.runs.window_findings(missing):
            fetched[finding.run_id].append(finding)
        current = {run.id for run in runs}
        # Only the current latest runs are kept: memory stays one run per monitor.
        self._findings = {k: v for k, v in self._findings.items() if k in current} | fetched
        return self._findings

    def _firing(self, models: list[str]) -> dict[tuple[str, str], int]:
        counts = {(model, severity): 0 for model in models for severity in SEVERITIES}
        counts.update(self._alerts.firing_counts())
        return counts

    def _volumes(self, models: list[RegisteredModel], omitted: dict[str, int]) -> list[ModelVolume]:
        """Volume and freshness from the per-version tallies, as ``Registry.versions`` counts them
        (the written ``model_versions`` rows plus the counts the upkeep has not written yet), for
        all models in one query; coverage from the hourly rollups, also in one query.

        The written rows are read before the pending counts: if the upkeep writes and clears a
        batch between the two reads, that batch is missed for one scrape (never counted twice).
        A counter must not go down (Prometheus would see a reset), so per model the highest
        value exported is kept until the count passes it again."""
        written = self._service.registry.written_volumes()
        now = self._service.now().astimezone(UTC)
        end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)  # the current hour included
        coverage = self._rollups.totals_all(end - self._coverage_span, end)
        out = []
        high: dict[int, tuple[int, datetime | None]] = {}
        for model in models:
            rows, last = written.get(model.id, (0, None))
            for count in self._service.registry.version_tally.pending(model.id).values():
                rows += count.rows
                last = count.last_seen if last is None else max(last, count.last_seen)
            high_rows, high_last = self._high.get(model.id, (0, None))
            rows = max(rows, high_rows)
            last = high_last if last is None or (high_last is not None and high_last > last) else last
            high[model.id] = (rows, last)
            totals = coverage.get(model.name)
            label_coverage = totals["label_coverage"] if totals else None
            out.append(ModelVolume(model.name, rows, last, label_coverage, omitted.get(model.name, 0)))
        self._high = high  # deleted models forgotten
        return out


def _first_per_feature(series: list[DriftSeries]) -> list[DriftSeries]:
    """One series per (model, monitor, feature): a run judges a feature once per window."""
    seen: dict[tuple[str, str, str], DriftSeries] = {}
    for item in series:
        seen.setdefault((item.model, item.monitor, item.feature), item)
    return list(seen.values())


def _first_per_metric(series: list[PerformanceSeries]) -> list[PerformanceSeries]:
    seen: dict[tuple[str, str, str, str], PerformanceSeries] = {}
    for item in series:
        seen.setdefault((item.model, item.monitor, item.metric, item.kind), item)
    return list(seen.values())


def families(snapshot: Snapshot) -> list[Metric]:
    """The Prometheus metric families of a snapshot (names and labels: docs/operations.md)."""
    score = GaugeMetricFamily(
        "loopwatch_model_drift_score",
        "Latest whole-window drift statistic per feature of each drift monitor (the finding's value; "
        'feature="*" is the table-level verdict)',
        labels=["model", "monitor", "feature"],
    )
    status = GaugeMetricFamily(
        "loopwatch_model_drift_status",
        "Latest drift verdict per feature: -1 insufficient data, 0 ok, 1 warning, 2 critical",
        labels=["model", "monitor", "feature"],
    )
    for d in snapshot.drift:
        labels = [d.model, d.monitor, d.feature]
        if d.score is not None and math.isfinite(d.score):
            score.add_metric(labels, d.score)
        level = STATUS_LEVELS.get(Status(d.status))
        if level is not None:
            status.add_metric(labels, level)
    performance = GaugeMetricFamily(
        "loopwatch_model_performance",
        "Latest whole-window performance per monitor and metric: realized (labels) or estimated (no labels)",
        labels=["model", "monitor", "metric", "kind"],
    )
    for p in snapshot.performance:
        performance.add_metric([p.model, p.monitor, p.metric, p.kind], p.value)
    firing = GaugeMetricFamily(
        "loopwatch_model_alerts_firing",
        "Alerts firing now (acknowledged and silenced ones included), by model and severity",
        labels=["model", "severity"],
    )
    for (model, severity), n in sorted(snapshot.firing.items()):
        firing.add_metric([model, severity], n)
    predictions = CounterMetricFamily(
        "loopwatch_model_predictions", "Predictions stored for the model, all time", labels=["model"]
    )
    coverage = GaugeMetricFamily(
        "loopwatch_model_label_coverage_ratio",
        "Share of the model's predictions of the last 7 days (hourly rollups) that have a label",
        labels=["model"],
    )
    last = GaugeMetricFamily(
        "loopwatch_model_last_prediction_timestamp_seconds",
        "Timestamp of the model's newest prediction (its own timestamp, Unix seconds)",
        labels=["model"],
    )
    omitted = GaugeMetricFamily(
        "loopwatch_model_drift_features_omitted",
        f"Features left out of the drift series (at most {MAX_FEATURES_PER_MODEL} per model, the worst kept)",
        labels=["model"],
    )
    for v in snapshot.volumes:
        predictions.add_metric([v.model], v.predictions)
        if v.label_coverage is not None:
            coverage.add_metric([v.model], v.label_coverage)
        if v.last_prediction is not None:
            last.add_metric([v.model], v.last_prediction.timestamp())
        omitted.add_metric([v.model], v.drift_features_omitted)
    return [score, status, performance, firing, predictions, coverage, last, omitted]


class ModelMetricsCollector:
    """The custom collector registered on the app's registry. Reuses a snapshot for ``ttl``
    seconds; concurrent scrapes of an expired one wait for a single read instead of each
    reading. A read that fails is logged and counted, and the scrape goes on without the
    per-model series: an exception here would fail the whole ``/metrics`` answer, service
    metrics included, just when on-call needs them."""

    def __init__(
        self,
        reader: ModelHealthReader,
        *,
        ttl: float = DEFAULT_TTL_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._ttl = ttl
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None
        self._failures = 0

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            now = self._monotonic()
            if self._cached is None or now - self._cached[0] >= self._ttl:
                try:
                    self._cached = (now, families(self._reader.read()))
                except Exception:
                    log.exception("reading the per-model metrics failed; this scrape has none")
                    self._failures += 1
                    self._cached = (now, [])
            cached = self._cached[1]
            failures = self._failures
        yield from cached
        yield self._failure_family(failures)

    def describe(self) -> list[Metric]:
        """The names, for the registry's clash check, without reading anything."""
        return [*families(Snapshot()), self._failure_family(0)]

    @staticmethod
    def _failure_family(failures: int) -> Metric:
        return CounterMetricFamily(
            "loopwatch_model_metrics_read_failures",
            "Scrapes whose per-model metrics could not be read (see the server log)",
            value=failures,
        )
