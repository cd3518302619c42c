"""Data drift: has the distribution of each input feature moved away from the reference?

Methods and thresholds follow Evidently 0.7's defaults column by column (Wasserstein
normed by the reference std ≥ 0.1 for numeric and Jensen–Shannon ≥ 0.1 for categorical
features when the reference has more than 1,000 values; KS / χ² / z-test at p < 0.05
otherwise), so a scientist re-running Evidently on the same window gets the same verdict.
Boolean features are categorical (as Evidently treats ``bool``); free-text features are
watched through their length in characters.

Findings: one per (segment, feature) with ``metric`` = the method, plus one
``share_drifted_columns`` per segment (dataset drift when the share ≥ ``drift_share``).

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import DataDrift, ModelSpec, RunContext
>>> rng = np.random.default_rng(7)
>>> spec = ModelSpec(task="binary", classes=("no", "yes"), positive_class="yes",
...                  features={"speed": "numeric", "road": "categorical"})
>>> reference = pa.table({"speed": rng.normal(50, 10, 5000), "road": rng.choice(["a", "b"], 5000)})
>>> current = pa.table({"speed": rng.normal(55, 10, 2000), "road": rng.choice(["a", "b"], 2000)})
>>> detector = DataDrift()
>>> config = detector.config({"segments": []})
>>> stats = detector.prepare_reference(reference, spec, config)   # cache this
>>> ctx = RunContext("braking", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 1, tzinfo=timezone.utc), reference="2026-10-01..08")
>>> for f in detector.run(current, stats, config, ctx):
...     print(f.column, f.metric, f.status.value, None if f.value is None else round(f.value, 2))
speed wasserstein critical 0.53
road tvd ok 0.01
None share_drifted_columns critical 0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from detectors.base import BaseDetector
from detectors.context import RunContext
from detectors.drift_engine import (
    DriftConfig,
    DriftReference,
    WatchedColumn,
    prepare_drift_reference,
    run_drift,
    share_findings,
)
from detectors.finding import Finding
from detectors.spec import FeatureKind, ModelSpec


@dataclass(frozen=True)
class DataDriftConfig(DriftConfig):
    """:class:`DriftConfig` plus Evidently's dataset-drift share (0.5)."""

    drift_share: float = 0.5


def feature_columns(spec: ModelSpec, only: tuple[str, ...] | None) -> list[WatchedColumn]:
    """Map declared feature kinds to comparison kinds."""
    out = []
    for name, kind in spec.features.items():
        if only is not None and name not in only:
            continue
        if kind is FeatureKind.NUMERIC:
            out.append(WatchedColumn(name, "numeric"))
        elif kind is FeatureKind.TEXT:
            out.append(WatchedColumn(name, "numeric", "text_length"))
        else:  # categorical and boolean
            out.append(WatchedColumn(name, "categorical"))
    if only is not None:
        unknown = sorted(set(only) - set(spec.features))
        if unknown:
            raise ValueError(f"columns {unknown} are not features of the model")
    return out


class DataDrift(BaseDetector):
    """Per-feature drift between the current window and the reference."""

    name: ClassVar[str] = "data_drift"
    config_type: ClassVar[type] = DataDriftConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> DriftReference:
        cfg: DataDriftConfig = self.config(config)
        return prepare_drift_reference(reference, spec, feature_columns(spec, cfg.columns), cfg)

    def run(self, current: pa.Table, reference: DriftReference, config: Any, context: RunContext) -> list[Finding]:
        cfg: DataDriftConfig = self.config(config)
        findings = run_drift(self.name, current, reference, cfg, context)
        return findings + share_findings(self.name, findings, cfg.drift_share, context)
