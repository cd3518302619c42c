"""The whole loop, small scale, every component real except Slack (a local Web API server):
model server logs through the Python client → the scheduler's performance monitor fires →
Slack message → the routing policy queues likely errors → Label Studio tasks → an annotator
labels them → webhook sync → the FP/FN detector's next run sees the labels → a dataset version
with lineage back to the alert."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest

from labeling.label_studio.client import LabelStudioBackend
from labeling.label_studio.config import CONTROL_NAME, OBJECT_NAME
from monitor.client import PredictionLogger
from tests.fakes.slack_api import FakeSlackApi
from tests.labeling.conftest import LabelStudioServer

pytestmark = pytest.mark.slow
SECRET = "whsec-whole-loop"


def wait_for(predicate: Any, timeout: float = 60, interval: float = 0.3) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not reached in time")


def test_whole_loop(label_studio: LabelStudioServer, server_factory) -> None:
    """ingest → scheduled detection → Slack → routing → Label Studio → annotation → sync →
    FP/FN recomputed → dataset."""
    server, key = server_factory()
    rng = np.random.default_rng(5)
    now = datetime.now(UTC)
    with FakeSlackApi() as slack:
        server.env = {
            "LOOPWATCH_SLACK_TOKEN": slack.token,
            "LOOPWATCH_SLACK_API_URL": slack.base_url,
            "LOOPWATCH_SLACK_CHANNEL": "#ml-oncall",
            "LOOPWATCH_LABEL_STUDIO_URL": label_studio.url,
            "LOOPWATCH_LABEL_STUDIO_TOKEN": label_studio.token,
            "LOOPWATCH_LABEL_STUDIO_WEBHOOK_SECRET": SECRET,
            "LOOPWATCH_LABELING_SYNC_INTERVAL_SECONDS": "3600",
            "LOOPWATCH_LABELING_AUTO_ROUTE_BUDGET": "20",
        }
        server.start()
        headers = {"Authorization": f"Bearer {key}"}
        # 1. A model server logs yesterday's traffic (good model) and the last hour (many misses).
        with PredictionLogger(server.url, key, "harsh-braking", batch_size=200, flush_interval=0.05) as logger:
            for period, start, miss in (
                ("ref", now - timedelta(days=1), 0.05),
                ("cur", now - timedelta(minutes=50), 0.5),
            ):
                for i in range(400):
                    truth = "brake" if i % 2 else "none"
                    missed = truth == "brake" and rng.random() < miss
                    prediction = "none" if missed else truth
                    score = rng.uniform(0.05, 0.45) if prediction == "none" else rng.uniform(0.55, 0.95)
                    pid = f"{period}-{i}"
                    logger.log(
                        pid,
                        prediction=prediction,
                        score=score,
                        timestamp=start + timedelta(seconds=5 * i),
                        features={"speed_kmh": float(rng.normal(60, 10)), "road_type": "urban", "night": False},
                        segments={"region": "eu", "firmware": "3.2"},
                        latency_ms=12.0,
                        model_version="1.0",
                    )
                    if period == "ref" or i % 4 in (0, 1):  # the current window is only half labelled yet
                        logger.log_label(pid, truth, timestamp=start + timedelta(seconds=5 * i + 60))
            assert logger.flush(timeout=60) and logger.stats.rejected == 0
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as client:
            stats = client.get("/v1/models/harsh-braking/stats").json()
            assert stats["predictions"] == 800
            # 2. A scheduled FN-rate monitor (every 2 s) fires; Slack gets one message.
            monitor = {
                "name": "fn-rate",
                "detector": "performance",
                "every": "2s",
                "window": "1h",
                "reference": {"kind": "trailing", "length": "2d"},
                "params": {"min_coverage": 0.1, "min_labeled": 30, "metrics": ["fnr"]},
                "route": {"slack_channel": "#ml-oncall", "group_wait": "1s"},
            }
            client.post("/v1/models/harsh-braking/monitors", json=monitor).raise_for_status()
            try:
                post = wait_for(lambda: slack.calls_to("chat.postMessage"))[0]
            except AssertionError:
                runs = client.get("/v1/models/harsh-braking/runs").json()[:3]
                found = client.get("/v1/models/harsh-braking/findings").json()[:5]
                alerts = client.get("/v1/alerts").json()
                raise AssertionError(
                    f"no Slack post; runs={runs} findings={found} alerts={alerts} "
                    f"slack={[c.method for c in slack.calls]}"
                ) from None
            assert "FN rate" in str(post.params)
            [alert] = client.get("/v1/alerts", params={"active": True}).json()
            # 3. The routing policy queued likely errors for the alert; push them to Label Studio.
            queued = client.get("/v1/labeling/queue").json()["samples"]
            assert len(queued) == 20 and {s["alert_id"] for s in queued} == {alert["id"]}
            assert client.post("/v1/labeling/sync").json()["push"]["pushed"] == 20
            project_id = client.get("/v1/labeling/queue").json()["samples"][0]["project_id"]
            backend = LabelStudioBackend(label_studio.url, label_studio.token)
            backend.ensure_webhook(project_id, f"{server.url}/v1/labeling/webhook", SECRET)
            rows = client.get("/v1/models/harsh-braking/predictions", params={"limit": 1000}).json()["rows"]
            had_label = {r["prediction_id"] for r in rows if r["label"] is not None}
            newly_labelled = sum(1 for s in queued if s["prediction_id"] not in had_label)
            labelled_before = next(
                f
                for f in client.get("/v1/models/harsh-braking/findings", params={"monitor": "fn-rate"}).json()
                if f["metric"] == "label_coverage"
            )["details"]["labeled"]
            # 4. The annotator labels every task (ground truth: brake for odd ids, none for even).
            tasks = backend.existing_tasks(project_id, [s["prediction_id"] for s in queued])
            for pid, task_id in tasks.items():
                truth = "brake" if int(pid.split("-")[1]) % 2 else "none"
                backend.sdk.annotations.create(
                    task_id,
                    result=[
                        {
                            "from_name": CONTROL_NAME,
                            "to_name": OBJECT_NAME,
                            "type": "choices",
                            "value": {"choices": [truth]},
                        }
                    ],
                )
            # 5. Webhooks bring the labels back; the next scheduled run sees more labelled rows.
            wait_for(lambda: client.get("/v1/labeling/queue").json()["depth"].get("annotated") == 20)

            annotated_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")

            def newer_finding() -> Any:
                found = [
                    f
                    for f in client.get("/v1/models/harsh-braking/findings", params={"monitor": "fn-rate"}).json()
                    if f["metric"] == "label_coverage"
                    and f["window_end"] > annotated_at
                    and f["details"]["labeled"] == labelled_before + newly_labelled
                ]
                return found[0] if found else None

            assert wait_for(newer_finding)  # the next scheduled run counts the annotator's labels
            # 6. A dataset version with lineage back to the alert.
            manifest = client.post("/v1/datasets", json={"model": "harsh-braking", "name": "braking-errors"}).json()
            assert manifest["rows"] == 20 and manifest["lineage"]["alerts"] == [alert["id"]]
            assert len(slack.calls_to("chat.postMessage")) == 1  # the alert was not repeated
