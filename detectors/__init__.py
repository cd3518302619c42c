"""The detector catalogue: pure computations over a window and a reference, returning findings.

Every detector is a stateless class with ``prepare_reference(reference, spec, config)``
(expensive, cache the result per model + reference spec + config) and
``run(current, reference_stats, config, context) -> list[Finding]`` (pure: no I/O, no
clock, deterministic). ``DETECTORS`` maps the names used in monitor YAML to the classes.

>>> sorted(DETECTORS)
['data_drift', 'data_quality', 'embedding_drift', 'estimated_performance', 'freshness', 'label_drift', 'latency', 'multivariate_drift', 'performance', 'prediction_drift', 'version_comparison', 'volume']
>>> get_detector("latency").config({"margin": 0.2}).margin
0.2

The standalone drift engine is :func:`detectors.table_drift.compare_tables`.
"""

from __future__ import annotations

from detectors.base import BaseDetector, Detector, config_fingerprint, parse_config
from detectors.context import RunContext
from detectors.data_drift import DataDrift, DataDriftConfig
from detectors.data_quality import DataQuality, DataQualityConfig
from detectors.drift_engine import DriftConfig
from detectors.embedding_drift import EmbeddingDrift, EmbeddingDriftConfig
from detectors.estimated_performance import EstimatedPerformance, EstimatedPerformanceConfig
from detectors.finding import Finding, Status
from detectors.freshness import Freshness, FreshnessConfig, LastSeen
from detectors.label_drift import LabelDrift
from detectors.latency import Latency, LatencyConfig
from detectors.multivariate_drift import MultivariateDrift, MultivariateDriftConfig
from detectors.performance import Performance, PerformanceConfig
from detectors.prediction_drift import PredictionDrift
from detectors.spec import FeatureKind, ModelSpec, Task
from detectors.version_comparison import VersionComparison, VersionComparisonConfig
from detectors.volume import Volume, VolumeConfig, VolumeCounts

DETECTORS: dict[str, type[Detector]] = {
    cls.name: cls
    for cls in (
        DataDrift,
        PredictionDrift,
        LabelDrift,
        Performance,
        EstimatedPerformance,
        MultivariateDrift,
        EmbeddingDrift,
        Latency,
        VersionComparison,
        DataQuality,
        Volume,
        Freshness,
    )
}


def get_detector(name: str) -> Detector:
    """An instance of the detector registered under ``name`` (ValueError lists the names)."""
    try:
        return DETECTORS[name]()
    except KeyError:
        raise ValueError(f"unknown detector {name!r}; choose one of {sorted(DETECTORS)}") from None


__all__ = [
    "DETECTORS",
    "BaseDetector",
    "DataDrift",
    "DataDriftConfig",
    "DataQuality",
    "DataQualityConfig",
    "Detector",
    "DriftConfig",
    "EmbeddingDrift",
    "EmbeddingDriftConfig",
    "EstimatedPerformance",
    "EstimatedPerformanceConfig",
    "FeatureKind",
    "Finding",
    "Freshness",
    "FreshnessConfig",
    "LabelDrift",
    "LastSeen",
    "Latency",
    "LatencyConfig",
    "ModelSpec",
    "MultivariateDrift",
    "MultivariateDriftConfig",
    "Performance",
    "PerformanceConfig",
    "PredictionDrift",
    "RunContext",
    "Status",
    "Task",
    "VersionComparison",
    "VersionComparisonConfig",
    "Volume",
    "VolumeConfig",
    "VolumeCounts",
    "config_fingerprint",
    "get_detector",
    "parse_config",
]
