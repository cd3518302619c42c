"""The webhook receiver against a real HTTP endpoint on 127.0.0.1: Alertmanager's webhook JSON
(version 4), an HMAC-SHA256 signature over timestamp + raw body, firing → resolved, and the
retry classification (5xx/429/connection → transient with Retry-After, other 4xx → permanent)."""

from __future__ import annotations

import dataclasses
import time
from datetime import timedelta

import pytest
from pydantic import SecretStr

from monitor.alerting.notify import MessageRef, PermanentNotifyError, TransientNotifyError
from monitor.alerting.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier, sign, verify
from monitor.alerting.notify.webhook.payload import ZERO_TIME, payload
from tests.monitor.alerting.helpers import T0, make_line, make_notice
from tests.monitor.alerting.notify.http_receiver import Answer, closed_port_url, serve

SECRET = "whsec-test-0123456789"
NOW = 1_790_000_000.0


def notifier(url: str, **options: object) -> WebhookNotifier:
    defaults: dict[str, object] = {
        "secret": SecretStr(SECRET),
        "external_url": "https://loopwatch.example",
        "clock": lambda: NOW,
        "timeout": 5.0,
    }
    defaults.update(options)
    return WebhookNotifier(url, **defaults)  # type: ignore[arg-type]


def two_alert_notice(**overrides: object):  # type: ignore[no-untyped-def]
    lines = (
        make_line(alert_id="al_1", monitor="fn-rate", column=None),
        make_line(alert_id="al_2", monitor="fn-rate", segment={"firmware": "3.3", "region": "eu"}, value=0.12),
    )
    return make_notice(lines=lines, **overrides)


def test_body_has_alertmanagers_webhook_shape() -> None:
    """A firing group is POSTed as Alertmanager's version-4 webhook JSON: groupKey, status,
    receiver, group/common labels and annotations, externalURL, and per alert its status, labels,
    annotations, startsAt, zero endsAt, generatorURL and a label fingerprint."""
    with serve() as hook:
        notifier(hook.url, name="webhook-ml").post(two_alert_notice())
        [request] = hook.requests
    body = request.json()
    assert request.headers["content-type"] == "application/json"
    assert body["version"] == "4" and body["status"] == "firing" and body["receiver"] == "webhook-ml"
    assert body["groupKey"] == '{}:{model="harsh-braking", monitor="fn-rate"}'
    assert body["groupLabels"] == {"model": "harsh-braking", "monitor": "fn-rate"}
    assert body["externalURL"] == "https://loopwatch.example" and body["truncatedAlerts"] == 0
    assert body["commonLabels"]["segment.region"] == "eu" and "segment.firmware" not in body["commonLabels"]
    assert body["commonLabels"]["alertname"] == "fn-rate" and body["commonLabels"]["severity"] == "critical"
    assert body["commonAnnotations"]["runbook_url"] == "https://wiki.example.com/runbooks/harsh-braking"
    first, second = body["alerts"]
    assert set(first) == {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
    assert first["status"] == "firing" and first["endsAt"] == ZERO_TIME
    assert first["startsAt"] == "2026-11-23T13:00:00Z"
    assert first["labels"]["segment.firmware"] == "3.2" and second["labels"]["segment.firmware"] == "3.3"
    assert first["annotations"]["description"].startswith("FN rate 4.1%") and second["annotations"]["value"] == "0.12"
    assert first["generatorURL"] == "http://loopwatch.local:8080/models/harsh-braking/alerts/al_7f3c2a"
    assert first["fingerprint"] != second["fingerprint"] and len(first["fingerprint"]) == 16
    assert body["loopwatch"]["groupId"] == "grp_9d1e" and body["loopwatch"]["kind"] == "new"


def test_fingerprint_is_stable_across_episodes_of_the_same_alert() -> None:
    """The fingerprint depends on the alert's labels only, not its id or state, so consumers can
    tie a resolution and a later re-fire of the same alert together."""
    a = payload(make_notice(alert_id="al_a"), receiver="webhook", external_url=None)
    b = payload(make_notice(alert_id="al_b", status="resolved", resolved_at=T0), receiver="webhook", external_url=None)
    assert a["alerts"][0]["fingerprint"] == b["alerts"][0]["fingerprint"]


def test_signature_signs_timestamp_and_raw_body() -> None:
    """X-Loopwatch-Signature is sha256=HMAC(secret, "<timestamp>." + raw body); it verifies with
    the shared secret, and fails for another body, another secret, or a stale timestamp."""
    with serve() as hook:
        notifier(hook.url).post(make_notice())
        [request] = hook.requests
    timestamp, signature = request.headers[TIMESTAMP_HEADER.lower()], request.headers[SIGNATURE_HEADER.lower()]
    assert timestamp == str(int(NOW)) and signature == sign(SECRET, int(NOW), request.body)
    assert verify(SECRET, request.body, timestamp, signature, now=NOW + 10)
    assert not verify(SECRET, request.body + b" ", timestamp, signature, now=NOW)
    assert not verify("another-secret", request.body, timestamp, signature, now=NOW)
    assert not verify(SECRET, request.body, timestamp, signature, now=NOW + 301)  # a replay, 5 min later
    assert not verify(SECRET, request.body, None, signature, now=NOW)


def test_without_a_secret_requests_are_unsigned_but_timestamped() -> None:
    """No LOOPWATCH_WEBHOOK_SECRET: the body is sent without a signature header (a consumer that
    requires one refuses it) rather than with a meaningless one."""
    with serve() as hook:
        notifier(hook.url, secret=None).post(make_notice())
        [request] = hook.requests
    assert SIGNATURE_HEADER.lower() not in request.headers and TIMESTAMP_HEADER.lower() in request.headers


def test_firing_then_resolved_sends_the_resolved_state_once() -> None:
    """post sends firing; update of the resolved group sends status resolved with endsAt set;
    the resolution note that follows (reply, kind resolved) sends nothing more; a repeat does."""
    with serve() as hook:
        receiver = notifier(hook.url)
        ref = receiver.post(make_notice())
        resolved = make_notice(kind="resolved", status="resolved", resolved_at=T0 + timedelta(hours=2))
        receiver.update(ref, resolved)
        assert receiver.reply(ref, resolved) == ref.message_id
        receiver.reply(ref, make_notice(kind="repeat"))
        statuses = [r.json()["status"] for r in hook.requests]
        kinds = [r.json()["loopwatch"]["kind"] for r in hook.requests]
    assert statuses == ["firing", "resolved", "firing"] and kinds == ["new", "resolved", "repeat"]
    assert hook.requests[1].json()["alerts"][0]["endsAt"] == "2026-11-23T15:00:00Z"
    assert ref == MessageRef(channel="webhook", message_id="grp_9d1e")


@pytest.mark.parametrize(("status", "retry_after", "expected"), [(503, "7", 7.0), (429, "30", 30.0), (502, None, None)])
def test_server_errors_and_rate_limits_are_transient_with_retry_after(
    status: int, retry_after: str | None, expected: float | None
) -> None:
    """5xx and 429 raise TransientNotifyError carrying the endpoint's Retry-After (seconds) for the
    outbox; the next attempt, answered 200, delivers."""
    headers = (("Retry-After", retry_after),) if retry_after else ()
    with serve() as hook:
        hook.answers.append(Answer(status, {"error": "busy"}, headers))
        receiver = notifier(hook.url)
        with pytest.raises(TransientNotifyError) as caught:
            receiver.post(make_notice())
        receiver.post(make_notice())
        assert len(hook.requests) == 2
    assert caught.value.retry_after == expected and not caught.value.maybe_delivered
    assert str(status) in str(caught.value) and "/hook" not in str(caught.value)


def test_retry_after_as_an_http_date_is_honoured() -> None:
    """Retry-After may be an HTTP date; it becomes the seconds until then."""
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 120))
    with serve(Answer(503, None, (("Retry-After", when),))) as hook, pytest.raises(TransientNotifyError) as caught:
        notifier(hook.url).post(make_notice())
    assert caught.value.retry_after is not None and 100 < caught.value.retry_after <= 120


@pytest.mark.parametrize("status", [400, 401, 404, 413])
def test_client_errors_are_permanent(status: int) -> None:
    """A 4xx other than 408/429 means the request is wrong and will stay wrong: PermanentNotifyError,
    with the status in the message."""
    with (
        serve(Answer(status, {"error": "bad request"})) as hook,
        pytest.raises(PermanentNotifyError, match=str(status)),
    ):
        notifier(hook.url).post(make_notice())


def test_connection_refused_is_transient_and_not_maybe_delivered() -> None:
    """Nobody listening: transient (retry later), and certainly not delivered."""
    with pytest.raises(TransientNotifyError, match="cannot connect") as caught:
        notifier(closed_port_url(), timeout=2.0).post(make_notice())
    assert not caught.value.maybe_delivered


def test_no_secret_or_url_path_in_repr_or_errors() -> None:
    """The URL's path (often a token) and the secret never appear in repr or error texts."""
    with serve(Answer(500, None), path="/T000/B000/token-in-path") as hook:
        receiver = notifier(hook.url)
        with pytest.raises(TransientNotifyError) as caught:
            receiver.post(make_notice())
    for text in (repr(receiver), str(caught.value)):
        assert "token-in-path" not in text and SECRET not in text


def test_announcement_is_posted_signed() -> None:
    """A gate verdict announced to a webhook is a signed JSON body naming the announcement."""
    from monitor.alerting.notify import Announcement

    with serve() as hook:
        notifier(hook.url).announce(Announcement(key="gate_1", title="candidate v2", status="ok", lines=["ship"]))
        [request] = hook.requests
    assert request.json()["announcement"]["key"] == "gate_1"
    assert verify(
        SECRET,
        request.body,
        request.headers["x-loopwatch-timestamp"],
        request.headers["x-loopwatch-signature"],
        now=NOW,
    )


def test_line_order_survives_in_the_body() -> None:
    """Alerts appear in the group's order (the order they joined)."""
    lines = tuple(make_line(alert_id=f"al_{i}", column=f"c{i}") for i in range(3))
    body = payload(dataclasses.replace(make_notice(), alerts=lines), receiver="webhook", external_url=None)
    assert [a["labels"]["column"] for a in body["alerts"]] == ["c0", "c1", "c2"]
