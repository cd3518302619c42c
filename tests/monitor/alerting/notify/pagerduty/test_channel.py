"""The PagerDuty receiver against a local server speaking Events API v2 (``POST /v2/enqueue``,
``202 {status, message, dedup_key}``): trigger on firing, acknowledge when every firing alert is
acknowledged, resolve when the group resolves — all with one stable ``dedup_key`` per group —
severity mapping, and the retry classification."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest
from pydantic import SecretStr

from monitor.alerting.notify import PermanentNotifyError, TransientNotifyError
from monitor.alerting.notify.pagerduty import PagerDutyNotifier, dedup_key
from monitor.alerting.notify.pagerduty.events import SUMMARY_LIMIT, event
from tests.monitor.alerting.helpers import T0, make_line, make_notice
from tests.monitor.alerting.notify.http_receiver import Answer, Request, serve

ROUTING_KEY = "R0UT1NGKEY0123456789abcdefabcdef"


def events_v2(request: Request) -> Answer:
    """PagerDuty's answer: 202 with the event's dedup_key, 400 for an invalid event."""
    body = request.json()
    problems = []
    if body.get("routing_key") != ROUTING_KEY:
        problems.append("invalid routing_key")
    if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
        problems.append("invalid event_action")
    if body.get("event_action") == "trigger":
        payload = body.get("payload") or {}
        if not payload.get("summary") or not payload.get("source"):
            problems.append("payload.summary and payload.source are required")
        if payload.get("severity") not in ("critical", "error", "warning", "info"):
            problems.append("invalid payload.severity")
        if len(payload.get("summary", "")) > SUMMARY_LIMIT:
            problems.append("summary too long")
    if problems:
        return Answer(400, {"status": "invalid event", "message": "Event object is invalid", "errors": problems})
    return Answer(202, {"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]})


def notifier(url: str, key: str = ROUTING_KEY) -> PagerDutyNotifier:
    return PagerDutyNotifier(SecretStr(key), url=url, external_url="https://loopwatch.example", timeout=5.0)


def test_trigger_ack_resolve_share_one_dedup_key() -> None:
    """A group's life — trigger, update while firing, acknowledge, resolve — is four events on one
    PagerDuty alert: every event carries the same dedup_key derived from the group id."""
    with serve(events_v2, path="/v2/enqueue") as pd:
        receiver = notifier(pd.url)
        ref = receiver.post(make_notice())
        receiver.update(ref, make_notice(kind="update"))
        receiver.update(ref, make_notice(kind="update", acked_by="maria"))
        resolved = make_notice(kind="resolved", status="resolved", resolved_at=T0 + timedelta(hours=1))
        receiver.update(ref, resolved)
        assert receiver.reply(ref, resolved) == ref.message_id  # no thread at PagerDuty: nothing sent
        sent = [r.json() for r in pd.requests]
    assert [e["event_action"] for e in sent] == ["trigger", "trigger", "acknowledge", "resolve"]
    assert {e["dedup_key"] for e in sent} == {"loopwatch/grp_9d1e"} == {dedup_key("grp_9d1e")}
    assert ref.message_id == "loopwatch/grp_9d1e"
    assert all(r.path == "/v2/enqueue" for r in pd.requests)


def test_trigger_payload_carries_summary_source_severity_details_and_links() -> None:
    """The trigger has a one-line summary, source loopwatch/<model>, PagerDuty severity, the
    alerts in custom_details and links to the dashboard and the runbook."""
    with serve(events_v2, path="/v2/enqueue") as pd:
        notifier(pd.url).post(make_notice())
        [request] = pd.requests
    body = request.json()
    payload = body["payload"]
    assert payload["summary"].startswith("[CRITICAL] harsh-braking · fn-rate: 1 firing — FN rate 4.1%")
    assert payload["source"] == "loopwatch/harsh-braking" and payload["severity"] == "critical"
    assert (
        payload["component"] == "fn-rate" and payload["group"] == "harsh-braking" and payload["class"] == "performance"
    )
    assert payload["timestamp"] == "2026-11-23T13:00:00Z"
    [alert] = payload["custom_details"]["alerts"]
    assert alert["alert_id"] == "al_7f3c2a" and alert["segment"] == {"firmware": "3.2", "region": "eu"}
    assert [link["href"] for link in body["links"]] == [
        "http://loopwatch.local:8080/models/harsh-braking#alerts",
        "https://wiki.example.com/runbooks/harsh-braking",
    ]
    assert body["client"] == "loopwatch" and body["client_url"] == "https://loopwatch.example"


@pytest.mark.parametrize(
    ("severity", "detector", "expected"),
    [("critical", "performance", "critical"), ("warning", "data_drift", "warning"), ("info", "volume", "info"),
     ("warning", "run_error", "error"), ("critical", "run_error", "critical")],
)  # fmt: skip
def test_severity_maps_to_pagerdutys_levels(severity: str, detector: str, expected: str) -> None:
    """critical/warning/info map to the same PagerDuty levels; a failed detector run that is not
    critical is PagerDuty's "error"."""
    notice = make_notice(severity=severity, detector=detector)
    assert event(notice, routing_key="k", external_url=None)["payload"]["severity"] == expected


def test_long_summaries_are_cut_to_pagerdutys_limit() -> None:
    """PagerDuty refuses summaries over 1024 characters: the summary is cut, and accepted."""
    notice = make_notice(what_changed="x " * 2000)
    with serve(events_v2, path="/v2/enqueue") as pd:
        notifier(pd.url).post(notice)
        [request] = pd.requests
    assert len(request.json()["payload"]["summary"]) == SUMMARY_LIMIT


def test_invalid_event_is_permanent() -> None:
    """400 "invalid event" (here: a wrong routing key) cannot succeed on retry: permanent, with
    PagerDuty's message, and the routing key is not in the error text."""
    with serve(events_v2, path="/v2/enqueue") as pd, pytest.raises(PermanentNotifyError, match="400") as caught:
        notifier(pd.url, key="wrong-key-0000").post(make_notice())
    assert "invalid routing_key" in str(caught.value) and "wrong-key-0000" not in str(caught.value)


@pytest.mark.parametrize("status", [429, 500, 503])
def test_throttling_and_outages_are_transient(status: int) -> None:
    """429 (PagerDuty's rate limit) and 5xx are retried by the outbox; the retry triggers the same
    dedup_key, so PagerDuty never opens a second incident for it."""
    with serve(events_v2, path="/v2/enqueue") as pd:
        pd.answers.append(Answer(status, {"status": "throttled"}))
        receiver = notifier(pd.url)
        with pytest.raises(TransientNotifyError):
            receiver.post(make_notice())
        receiver.post(make_notice())
        keys = [r.json()["dedup_key"] for r in pd.requests]
    assert keys == ["loopwatch/grp_9d1e", "loopwatch/grp_9d1e"]


def test_after_a_lost_answer_the_alert_is_found_by_its_key() -> None:
    """find_posted returns the group's dedup_key: the pipeline then updates (re-triggers) the same
    PagerDuty alert instead of creating another."""
    ref = notifier("http://127.0.0.1:9/v2/enqueue").find_posted(make_notice(group_id="grp_x"))
    assert ref is not None and ref.message_id == "loopwatch/grp_x"


def test_routing_key_never_in_repr() -> None:
    """The routing key is a secret: not in repr."""
    assert ROUTING_KEY not in repr(notifier("http://127.0.0.1:9/v2/enqueue"))


def test_resolved_group_is_resolved_even_if_some_alerts_were_acked() -> None:
    """Resolution wins over acknowledgement: a resolved group sends resolve."""
    lines = (make_line(status="resolved", acked_by="maria", resolved_at=T0),)
    notice = dataclasses.replace(make_notice(status="resolved", kind="resolved"), alerts=lines, acked_by=None)
    assert event(notice, routing_key="k", external_url=None)["event_action"] == "resolve"
