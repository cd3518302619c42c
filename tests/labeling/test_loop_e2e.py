"""The feedback loop against a real Label Studio: routed samples become tasks with
pre-annotations, an annotator's labels come back through the webhook (and the poll), land in
the store as ground truth, and the FP/FN monitor's next run sees them."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from labeling.label_studio.client import LabelStudioBackend
from labeling.label_studio.config import CONTROL_NAME, OBJECT_NAME
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.labeling.conftest import LabelStudioServer
from tests.monitor.test_evaluation import _load

pytestmark = pytest.mark.slow
SECRET = "whsec-loopwatch-test"


def choice(label: str) -> list[dict[str, Any]]:
    return [{"from_name": CONTROL_NAME, "to_name": OBJECT_NAME, "type": "choices", "value": {"choices": [label]}}]


def test_alert_to_ground_truth_through_label_studio(label_studio: LabelStudioServer, server_factory) -> None:
    """route → push → annotate → webhook → labels → detector; a duplicate poll changes nothing."""
    server, key = server_factory()
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    service = Loopwatch(Settings(data_dir=server.data_dir))
    try:
        _load(service, now - timedelta(hours=3), 2, 300, seed=11)
    finally:
        service.close()
    server.env = {
        "LOOPWATCH_LABEL_STUDIO_URL": label_studio.url,
        "LOOPWATCH_LABEL_STUDIO_TOKEN": label_studio.token,
        "LOOPWATCH_LABEL_STUDIO_WEBHOOK_SECRET": SECRET,
        "LOOPWATCH_LABELING_SYNC_INTERVAL_SECONDS": "3600",
    }
    server.start()
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
        window = {"start": (now - timedelta(hours=3)).isoformat(), "end": (now - timedelta(hours=1)).isoformat()}
        routed = client.post(
            "/v1/labeling/route", json={"model": "harsh-braking", "strategy": "uncertainty", "budget": 40, **window}
        )
        assert routed.status_code == 200 and routed.json()["queued"] == 40
        sync = client.post("/v1/labeling/sync").json()
        assert sync["push"]["pushed"] == 40 and sync["push"]["error"] is None
        samples = client.get("/v1/labeling/queue").json()["samples"]
        project_id = samples[0]["project_id"]
        backend = LabelStudioBackend(label_studio.url, label_studio.token)
        backend.ensure_webhook(project_id, f"{server.url}/v1/labeling/webhook", SECRET)
        tasks = backend.existing_tasks(project_id, [s["prediction_id"] for s in samples])
        assert len(tasks) == 40
        task = backend.sdk.tasks.get(next(iter(tasks.values())))
        (pre_annotation,) = task.predictions  # the model's prediction, for the annotator to confirm or correct
        assert pre_annotation.result
        for task_id in tasks.values():
            backend.sdk.annotations.create(task_id, result=choice("brake"))
        deadline = time.monotonic() + 60
        annotated = 0
        while time.monotonic() < deadline:
            annotated = client.get("/v1/labeling/queue").json()["depth"].get("annotated", 0)
            if annotated == 40:
                break
            time.sleep(0.5)
        assert annotated == 40, "webhooks did not deliver every annotation"
        pid = samples[0]["prediction_id"]
        history = client.get(f"/v1/models/harsh-braking/labels/{pid}/history").json()
        assert history[-1]["label"] == "brake" and history[-1]["source"] == "label_studio"
        again = client.post("/v1/labeling/sync").json()
        assert again["pull"]["labels"] == 40
        assert len(client.get(f"/v1/models/harsh-braking/labels/{pid}/history").json()) == len(history)
        monitor = {
            "name": "fn-rate",
            "detector": "performance",
            "every": "1h",
            "window": "2h",
            "reference": {"kind": "window", "start": window["start"], "end": window["end"]},
            "params": {"min_coverage": 0.0, "min_labeled": 30},
        }
        client.post("/v1/models/harsh-braking/monitors", json=monitor).raise_for_status()
        run = client.post("/v1/models/harsh-braking/monitors/fn-rate/run", json={"at": window["end"]}).json()
        assert run["status"] == "succeeded"
        fnr = [f for f in run["findings"] if f["metric"] == "fnr"]
        assert fnr and fnr[0]["n_current"] >= 40
        bad = client.post(
            "/v1/labeling/webhook",
            json={"action": "ANNOTATION_CREATED"},
            headers={"X-Loopwatch-Webhook-Secret": "wrong"},
        )
        assert bad.status_code == 401
        malformed = client.post(
            "/v1/labeling/webhook",
            json={"action": "ANNOTATION_CREATED", "annotation": 5},
            headers={"X-Loopwatch-Webhook-Secret": SECRET},
        )
        assert malformed.status_code == 422
        built = client.post("/v1/datasets", json={"model": "harsh-braking", "name": "braking-fn"})
        assert built.status_code == 201, built.text
        manifest = built.json()
        assert manifest["rows"] == 40 and manifest["lineage"]["annotations"] == 40
        assert manifest["lineage"]["annotators"] and manifest["class_counts"] == {"brake": 40}
        shown = client.get("/v1/datasets/braking-fn/versions/1").json()
        assert shown["content_hash"] == manifest["content_hash"]
        assert [d["name"] for d in client.get("/v1/datasets").json()] == ["braking-fn"]
        assert client.get("/v1/datasets/braking-fn/versions/9").status_code == 404
