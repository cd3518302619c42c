"""Prediction drift: are the model's outputs distributed differently from the reference?

Output drift is the earliest warning available before labels arrive: a shift in the
predicted-class mix or in the score distribution usually precedes a measurable drop in
accuracy. Watched columns: ``prediction`` (categorical for classification, numeric for
regression) and ``score`` (numeric, when present). Methods follow Evidently's defaults,
as in :mod:`detectors.data_drift`.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import ModelSpec, PredictionDrift, RunContext
>>> rng = np.random.default_rng(3)
>>> spec = ModelSpec(task="binary", classes=("none", "brake"), positive_class="brake")
>>> def window(p_brake, n):
...     score = rng.beta(2, 2 / p_brake - 2, n)
...     return pa.table({"prediction": np.where(score > 0.5, "brake", "none"), "score": score})
>>> detector = PredictionDrift()
>>> stats = detector.prepare_reference(window(0.2, 5000), spec)
>>> ctx = RunContext("braking", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 1, tzinfo=timezone.utc))
>>> [(f.column, f.status.value) for f in detector.run(window(0.4, 2000), stats, None, ctx)]
[('prediction', 'critical'), ('score', 'critical')]
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from detectors.base import BaseDetector
from detectors.context import RunContext
from detectors.drift_engine import DriftConfig, DriftReference, WatchedColumn, prepare_drift_reference, run_drift
from detectors.finding import Finding
from detectors.spec import ModelSpec, Task


def prediction_columns(spec: ModelSpec, table: pa.Table) -> list[WatchedColumn]:
    """``prediction`` always; ``score`` when the reference has that column with some values."""
    kind = "numeric" if spec.task is Task.REGRESSION else "categorical"
    columns = [WatchedColumn("prediction", kind)]
    if "score" in table.column_names and table.column("score").null_count < table.num_rows:
        columns.append(WatchedColumn("score", "numeric"))
    return columns


class PredictionDrift(BaseDetector):
    """Drift of the predicted class / value and of the score."""

    name: ClassVar[str] = "prediction_drift"
    config_type: ClassVar[type] = DriftConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> DriftReference:
        cfg: DriftConfig = self.config(config)
        columns = prediction_columns(spec, reference)
        if cfg.columns is not None:
            columns = [c for c in columns if c.name in cfg.columns]
        return prepare_drift_reference(reference, spec, columns, cfg)

    def run(self, current: pa.Table, reference: DriftReference, config: Any, context: RunContext) -> list[Finding]:
        return run_drift(self.name, current, reference, self.config(config), context)
