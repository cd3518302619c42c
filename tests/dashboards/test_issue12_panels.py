"""The model overview shows estimated performance next to realized, and joint drift (issue 12)."""

from __future__ import annotations

from datetime import timedelta

from monitor.monitors import MonitorSpec
from tests.conftest import Api
from tests.monitor.test_estimated_performance_monitor import _rows
from tests.monitor.test_evaluation import NOW

MODEL = "harsh-braking"


def test_overview_draws_the_estimate_its_band_the_realized_value_and_joint_drift(api: Api) -> None:
    """Rule: with an ``estimated_performance`` and a ``multivariate_drift`` monitor, the model page
    has an "Estimated before labels" chart (estimate, band, reference, and realized once a
    window's labels arrived) and a joint-drift chart; without those monitors neither panel appears."""
    service = api.client.app.state.service  # type: ignore[attr-defined]
    without = api.client.get(f"/models/{MODEL}", headers=api.read)
    assert without.status_code == 200 and "fig-estimated" not in without.text and "fig-joint-drift" not in without.text
    for hour in range(3, 9):
        predictions, labels = _rows(NOW - timedelta(hours=hour), 1_000, spread=10, seed=hour)
        service.store.ingest_predictions(MODEL, predictions)
        service.store.ingest_labels(MODEL, labels)
    labelled_now, labels = _rows(NOW - timedelta(hours=2), 1_000, spread=10, seed=50)
    service.store.ingest_predictions(MODEL, labelled_now)
    service.store.ingest_labels(MODEL, labels)
    unlabelled, _ = _rows(NOW - timedelta(hours=1), 1_000, spread=3, seed=51)
    service.store.ingest_predictions(MODEL, unlabelled)
    reference = {"kind": "window", "start": (NOW - timedelta(hours=9)).isoformat(), "end": (NOW - timedelta(hours=3)).isoformat()}
    for spec in (
        {"name": "estimated", "detector": "estimated_performance", "params": {"metrics": ["accuracy", "roc_auc"]}},
        {"name": "joint", "detector": "multivariate_drift"},
    ):
        service.monitors.save(MODEL, MonitorSpec.model_validate({**spec, "every": "1h", "window": "1h", "reference": reference}))
        for end in (NOW - timedelta(hours=1), NOW):
            outcome = service.runner.run(MODEL, spec["name"], window_end=end, mode="scheduled")
            assert outcome is not None and outcome.error is None, outcome.error if outcome else None
    page = api.client.get(f"/models/{MODEL}", headers=api.read).text
    assert "Estimated before labels" in page and "fig-estimated" in page and "fig-joint-drift" in page
    assert "accuracy estimated" in page and "accuracy realized" in page and "accuracy reference" in page
    assert "reconstruction error" in page
