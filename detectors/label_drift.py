"""Label drift: has the distribution of the ground truth itself changed (prior shift)?

Only labelled rows count (unlabelled rows have a null ``label`` and are dropped as missing),
so a window is judged once enough labels have arrived (``min_rows``) and re-judged as late
labels come in. A class-balance change explains an FP/FN rate change that is not the
model's fault, which is why on-call wants it next to the performance findings.

>>> from datetime import datetime, timezone
>>> import numpy as np, pyarrow as pa
>>> from detectors import LabelDrift, ModelSpec, RunContext
>>> rng = np.random.default_rng(5)
>>> spec = ModelSpec(task="binary", classes=("none", "brake"), positive_class="brake")
>>> ref = pa.table({"label": rng.choice(["none", "brake"], 4000, p=[0.9, 0.1])})
>>> cur = pa.table({"label": rng.choice(["none", "brake", None], 3000, p=[0.5, 0.2, 0.3])})
>>> detector = LabelDrift()
>>> ctx = RunContext("braking", datetime(2026, 10, 8, tzinfo=timezone.utc),
...                  datetime(2026, 10, 8, 1, tzinfo=timezone.utc))
>>> [f.status.value for f in detector.run(cur, detector.prepare_reference(ref, spec), None, ctx)]
['critical']
"""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa

from detectors.base import BaseDetector
from detectors.context import RunContext
from detectors.drift_engine import DriftConfig, DriftReference, WatchedColumn, prepare_drift_reference, run_drift
from detectors.finding import Finding
from detectors.spec import ModelSpec, Task


class LabelDrift(BaseDetector):
    """Drift of the label distribution among labelled rows."""

    name: ClassVar[str] = "label_drift"
    config_type: ClassVar[type] = DriftConfig

    def prepare_reference(self, reference: pa.Table, spec: ModelSpec, config: Any = None) -> DriftReference:
        cfg: DriftConfig = self.config(config)
        kind = "numeric" if spec.task is Task.REGRESSION else "categorical"
        return prepare_drift_reference(reference, spec, [WatchedColumn("label", kind)], cfg)

    def run(self, current: pa.Table, reference: DriftReference, config: Any, context: RunContext) -> list[Finding]:
        return run_drift(self.name, current, reference, self.config(config), context)
