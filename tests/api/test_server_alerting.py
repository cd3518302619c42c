"""The real server wires scheduler → alert pipeline → dispatcher → Slack: a model that stops
sending data produces a no-data alert in Slack with no manual step."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import braking_record
from tests.fakes.slack_api import FakeSlackApi

pytestmark = pytest.mark.slow


def test_scheduled_freshness_alert_reaches_slack(server_factory) -> None:
    """A freshness monitor every 2 s on a silent model posts one Slack alert within seconds."""
    server, key = server_factory()
    with FakeSlackApi() as slack:
        server.env = {
            "LOOPWATCH_SLACK_TOKEN": slack.token,
            "LOOPWATCH_SLACK_API_URL": slack.base_url,
            "LOOPWATCH_SLACK_CHANNEL": "#ml-oncall",
        }
        server.start()
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            old = datetime.now(UTC) - timedelta(hours=3)
            client.post("/v1/models/harsh-braking/predictions", json=[braking_record(1, old)]).raise_for_status()
            monitor = {
                "name": "silence",
                "detector": "freshness",
                "every": "2s",
                "window": "1h",
                "params": {"max_silence_minutes": 30},
                "route": {"slack_channel": "#ml-oncall", "group_wait": "1s"},
            }
            client.post("/v1/models/harsh-braking/monitors", json=monitor).raise_for_status()
            deadline = time.monotonic() + 40
            while time.monotonic() < deadline and not slack.calls_to("chat.postMessage"):
                time.sleep(0.2)
            posts = slack.calls_to("chat.postMessage")
            assert len(posts) == 1, [c.params for c in slack.calls]
            assert "no data" in str(posts[0].params.get("text"))
            [alert] = client.get("/v1/alerts", params={"active": True}).json()
            assert alert["detector"] == "freshness"
            [sent] = client.get(f"/v1/alerts/{alert['id']}").json()["notifications"]
            assert sent["receiver"] == "slack" and sent["message_id"] == posts[0].response["ts"]
            time.sleep(3)  # more scheduled runs while still silent: no duplicate message
            assert len(slack.calls_to("chat.postMessage")) == 1
            metrics = client.get("/metrics").text
            assert 'loopwatch_alert_notifications_total{receiver="slack",result="sent"} 1.0' in metrics
