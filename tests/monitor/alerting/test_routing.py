"""The routing tree (Alertmanager's route semantics) and the receivers configured from
settings: first matching child wins unless it says ``continue``; children inherit receivers;
regexes are anchored; a monitor's ``route.receivers`` overrides the tree; every mistake is
refused at start-up with the route's path, the label or the receiver named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr, ValidationError

from monitor.alerting.notify.email import EmailNotifier
from monitor.alerting.notify.log import LogNotifier
from monitor.alerting.notify.pagerduty import PagerDutyNotifier
from monitor.alerting.notify.receivers import receivers_from_settings
from monitor.alerting.notify.slack import SlackNotifier
from monitor.alerting.notify.webhook import WebhookNotifier
from monitor.alerting.routing import Matcher, RouteConfig, RoutingError, RoutingFile, alert_labels, build_tree
from monitor.monitors import RouteSpec
from monitor.settings import Settings

KNOWN = {"slack", "slack-oncall", "pagerduty", "webhook-ml", "email-team", "log"}
TREE = {
    "receiver": "slack",
    "routes": [
        {"matchers": ['severity="critical"'], "receiver": "pagerduty", "continue": True},
        {"match_re": {"model": "fraud-.*"}, "receiver": "webhook-ml"},
        {
            "matchers": ['detector=~"data_drift|prediction_drift"'],
            "receivers": ["email-team"],
            "routes": [{"matchers": ['segment.region="eu"'], "receiver": "slack-oncall"}],
        },
        {"matchers": ['monitor!~"canary-.*"', 'detector!="latency"'], "routes": [{"match": {"model_version": "2.0"}}]},
    ],
}


def alert(**labels: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "model": "harsh-braking",
        "monitor": "fn-rate",
        "detector": "performance",
        "severity": "warning",
        "metric": "fnr",
        "column": None,
        "model_version": "1.0",
        "segment": {"firmware": "3.2"},
    }
    base.update(labels)
    return base


def tree(config: dict[str, Any] = TREE, known: set[str] = KNOWN, default: tuple[str, ...] = ("log",)):  # type: ignore[no-untyped-def]
    return build_tree(RouteConfig.model_validate(config), known, default)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"detector": "latency", "monitor": "canary-p99"}, ["slack"]),  # no child matches: the root's receiver
        # a child matched (with continue, but no sibling after it did): the root's receiver is not used
        ({"severity": "critical", "detector": "latency", "monitor": "canary-p99"}, ["pagerduty"]),
        ({"severity": "critical", "model": "fraud-v2"}, ["pagerduty", "webhook-ml"]),  # continue → next sibling
        ({"model": "fraud-v2", "detector": "data_drift"}, ["webhook-ml"]),  # first match without continue stops
        ({"model": "xfraud-v2", "detector": "latency", "monitor": "canary-a"}, ["slack"]),  # regex is anchored
        ({"detector": "data_drift"}, ["email-team"]),
        ({"detector": "prediction_drift", "segment": {"region": "eu"}}, ["slack-oncall"]),  # nested child
        ({"model_version": "2.0"}, ["slack"]),  # matching child without receivers inherits its parent's
    ],
)
def test_tree_matching(labels: dict[str, Any], expected: list[str]) -> None:
    """Alertmanager's walk: children in order, the first match wins unless it has continue: true,
    a route none of whose children match takes the alert, receivers are inherited downwards."""
    assert tree().receivers_for(alert(**labels)) == expected


def test_root_without_receivers_uses_the_default_and_duplicates_collapse() -> None:
    """A root that names no receiver delivers to the default (every configured receiver); an
    alert reaching the same receiver by two routes is delivered there once."""
    config = {"routes": [{"matchers": ['severity="critical"'], "receiver": "slack", "continue": True},
                         {"matchers": ['model="harsh-braking"'], "receiver": "slack"}]}  # fmt: skip
    routing = tree(config, {"slack", "webhook"}, ("slack", "webhook"))
    assert routing.receivers_for(alert(severity="critical")) == ["slack"]
    assert routing.receivers_for(alert(model="other")) == ["slack", "webhook"]


def test_monitor_route_receivers_override_the_tree() -> None:
    """route.receivers on a monitor replaces the tree for its alerts; a name no longer configured
    is skipped, and if none is left the tree decides (an alert is never dropped)."""
    routing = tree()
    critical = alert(severity="critical")
    assert routing.receivers_for(critical, RouteSpec(receivers=["email-team", "slack"])) == ["email-team", "slack"]
    assert routing.receivers_for(critical, RouteSpec(receivers=["gone", "slack"])) == ["slack"]
    assert routing.receivers_for(critical, RouteSpec(receivers=["gone"])) == ["pagerduty", "slack"]
    with pytest.raises(RoutingError, match="unknown receiver 'gone'"):
        routing.check_route(RouteSpec(receivers=["gone"]))


@pytest.mark.parametrize(
    ("text", "name", "op", "value"),
    [('severity="critical"', "severity", "=", "critical"), ("model =~ fraud-.*", "model", "=~", "fraud-.*"),
     ('segment.region!="eu"', "segment.region", "!=", "eu"), (r'monitor!~"a\"b"', "monitor", "!~", 'a"b')],
)  # fmt: skip
def test_matcher_strings_parse(text: str, name: str, op: str, value: str) -> None:
    """Alertmanager's matcher syntax: label, operator (=, !=, =~, !~), quoted or bare value."""
    matcher = Matcher.parse(text)
    assert (matcher.name, matcher.op, matcher.value) == (name, op, value)


def test_alert_labels_include_segments() -> None:
    """Routes match on the grouping labels and on every segment value (segment.<name>)."""
    labels = alert_labels(alert(column="speed", segment={"firmware": "3.2", "region": "eu"}))
    assert labels["segment.region"] == "eu" and labels["column"] == "speed" and labels["severity"] == "warning"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"routes": [{"receiver": "pagerduty-prod"}]}, r"route.routes\[0\]: unknown receiver 'pagerduty-prod'"),
        ({"routes": [{"matchers": ['model=~"fraud-("'], "receiver": "slack"}]}, "bad regex 'fraud-\\('"),
        ({"routes": [{"match_re": {"model": "(["}}]}, "bad regex"),
        ({"routes": [{"matchers": ['sevrity="critical"']}]}, "unknown label 'sevrity'"),
        ({"routes": [{"matchers": ["severity critical"]}]}, "cannot read matcher"),
        ({"routes": [{"routes": [{"receiver": "nope"}]}]}, r"route.routes\[0\].routes\[0\]: unknown receiver 'nope'"),
    ],
)
def test_tree_mistakes_are_refused_with_the_route_path(config: dict[str, Any], message: str) -> None:
    """Unknown receivers, bad regexes, unknown labels and unreadable matchers fail the build."""
    with pytest.raises(RoutingError, match=message):
        tree(config)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"route": {"matchers": ['model="x"']}}, "root route matches every alert"),
        ({"receivers": [{"name": "a", "kind": "log"}, {"name": "a", "kind": "log"}]}, "named twice: a"),
        ({"receivers": [{"name": "w", "kind": "webhook", "to": ["x@y.z"]}]}, "to do not apply to a webhook receiver"),
        ({"receivers": [{"name": "Bad Name", "kind": "log"}]}, "receiver names are"),
        ({"receivers": [{"name": "p", "kind": "pagerdooty"}]}, "receivers.0.kind"),
        ({"route": {"receiver": "a", "receivers": ["b"]}}, "not both"),
        ({"rout": {}}, "rout"),
    ],
)
def test_routing_file_mistakes_are_named(data: dict[str, Any], message: str) -> None:
    """The routing file is validated as a whole; each problem names where it is."""
    with pytest.raises(RoutingError, match=message):
        RoutingFile.parse(data, "routing.yaml")


# -- receivers from settings -------------------------------------------------------------------


def settings(tmp_path: Path, **values: Any) -> Settings:
    return Settings(data_dir=tmp_path, public_url="https://loopwatch.example", **values)


def slack_primary() -> SlackNotifier:
    return SlackNotifier("xoxb-test", base_url="http://127.0.0.1:9/api/")


def test_nothing_configured_delivers_to_the_log(tmp_path: Path) -> None:
    """No receiver configured: the default route is the log (today's behaviour)."""
    primary = LogNotifier()
    receivers = receivers_from_settings(settings(tmp_path), primary)
    assert receivers.receivers_for(alert()) == ["log"] and receivers.get("log") is primary
    assert set(receivers.notifiers) == {"log"}


def test_only_slack_configured_delivers_to_slack_only(tmp_path: Path) -> None:
    """Only Slack: everything goes to Slack, the log takes nothing (today's behaviour)."""
    primary = slack_primary()
    receivers = receivers_from_settings(settings(tmp_path, slack_token="xoxb-test"), primary)
    assert receivers.receivers_for(alert(severity="critical")) == ["slack"] and receivers.get("slack") is primary


def test_each_setting_alone_creates_its_receiver_and_the_default_uses_all(tmp_path: Path) -> None:
    """LOOPWATCH_WEBHOOK_URL, LOOPWATCH_PAGERDUTY_ROUTING_KEY and the SMTP settings each create a
    receiver named after its kind; with Slack too, the default route delivers to all four."""
    only_webhook = receivers_from_settings(settings(tmp_path, webhook_url="http://127.0.0.1:9/hook"), LogNotifier())
    assert only_webhook.receivers_for(alert()) == ["webhook"]
    assert isinstance(only_webhook.get("webhook"), WebhookNotifier)
    every = receivers_from_settings(
        settings(
            tmp_path,
            webhook_url="http://127.0.0.1:9/hook",
            webhook_secret="s3cret",
            pagerduty_routing_key="pd-key",
            pagerduty_url="http://127.0.0.1:9/v2/enqueue",
            smtp_host="127.0.0.1",
            smtp_from="alerts@example.com",
            smtp_to="a@example.com, b@example.com",
        ),
        slack_primary(),
    )
    assert every.receivers_for(alert()) == ["slack", "webhook", "pagerduty", "email"]
    assert isinstance(every.get("pagerduty"), PagerDutyNotifier) and isinstance(every.get("email"), EmailNotifier)
    assert every.notifiers["email"].destination(RouteSpec()) == "a@example.com,b@example.com"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"smtp_host": "127.0.0.1"}, "LOOPWATCH_SMTP_FROM, LOOPWATCH_SMTP_TO"),
        ({"smtp_to": "a@example.com", "smtp_from": "b@example.com"}, "LOOPWATCH_SMTP_HOST"),
        ({"webhook_secret": "s"}, "LOOPWATCH_WEBHOOK_URL is not"),
        ({"smtp_host": "h", "smtp_from": "nobody", "smtp_to": "a@example.com"}, "not an address"),
        ({"routing_file": "missing.yaml"}, "does not exist"),
    ],
)
def test_incomplete_receiver_settings_fail_at_startup(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    """A receiver half-configured is refused when the service starts, saying what is missing."""
    if "routing_file" in values:
        values = {"routing_file": tmp_path / values["routing_file"]}
    with pytest.raises(RoutingError, match=message):
        receivers_from_settings(settings(tmp_path, **values), LogNotifier())


@pytest.mark.parametrize(("field", "value"), [("webhook_url", "ftp://x"), ("pagerduty_url", "events.pagerduty.com"),
                                              ("smtp_port", 70000)])  # fmt: skip
def test_settings_values_are_validated(tmp_path: Path, field: str, value: Any) -> None:
    """Receiver URLs must be http(s) and the SMTP port a port: refused by Settings itself."""
    with pytest.raises(ValidationError, match=field):
        settings(tmp_path, **{field: value})


def test_secrets_are_secret_str(tmp_path: Path) -> None:
    """The routing key, SMTP password and webhook secret are SecretStr: never shown in reprs."""
    configured = settings(tmp_path, pagerduty_routing_key="pd-key-1", smtp_password="pw-2", webhook_secret="ws-3")
    text = repr(configured)
    assert "pd-key-1" not in text and "pw-2" not in text and "ws-3" not in text
    assert isinstance(configured.pagerduty_routing_key, SecretStr)


def test_routing_file_defines_named_receivers_and_the_tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A routing file adds named receivers built on the configured kinds (a second PagerDuty
    service with its own key from the environment, an e-mail list, a Slack channel) and routes
    between them; a name clashing with a settings receiver is refused."""
    monkeypatch.setenv("LOOPWATCH_TEST_PD_PROD_KEY", "pd-prod-key")
    path = tmp_path / "routing.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "receivers": [
                    {"name": "slack-oncall", "kind": "slack", "channel": "#ml-oncall"},
                    {"name": "pagerduty-prod", "kind": "pagerduty", "routing_key_env": "LOOPWATCH_TEST_PD_PROD_KEY"},
                    {"name": "email-team", "kind": "email", "to": ["team@example.com"]},
                ],
                "route": {
                    "receiver": "slack-oncall",
                    "routes": [
                        {"matchers": ['severity="critical"'], "receiver": "pagerduty-prod", "continue": True},
                        {"matchers": ['detector="data_drift"'], "receiver": "email-team"},
                    ],
                },
            }
        )
    )
    base = {
        "slack_token": "xoxb-test",
        "smtp_host": "127.0.0.1",
        "smtp_from": "a@example.com",
        "smtp_to": "x@example.com",
    }
    receivers = receivers_from_settings(settings(tmp_path, routing_file=path, **base), slack_primary())
    assert receivers.receivers_for(alert(severity="critical", detector="data_drift")) == [
        "pagerduty-prod",
        "email-team",
    ]
    assert receivers.receivers_for(alert()) == ["slack-oncall"]
    assert receivers.notifiers["slack-oncall"].destination(RouteSpec()) == "#ml-oncall"
    assert receivers.notifiers["slack-oncall"].destination(RouteSpec(slack_channel="#ml-team")) == "#ml-team"
    assert receivers.notifiers["email-team"].destination(RouteSpec()) == "team@example.com"
    assert receivers.notifiers["pagerduty-prod"].name == "pagerduty-prod"

    path.write_text(yaml.safe_dump({"receivers": [{"name": "email", "kind": "log"}]}))
    with pytest.raises(RoutingError, match="'email' is already configured from settings"):
        receivers_from_settings(settings(tmp_path, routing_file=path, **base), slack_primary())
    path.write_text(
        yaml.safe_dump({"receivers": [{"name": "pd2", "kind": "pagerduty", "routing_key_env": "LOOPWATCH_TEST_UNSET"}]})
    )
    with pytest.raises(RoutingError, match="LOOPWATCH_TEST_UNSET is not set"):
        receivers_from_settings(settings(tmp_path, routing_file=path, **base), slack_primary())


@pytest.mark.parametrize(("receivers", "message"), [([], "empty"), (["Slack"], "receiver name 'Slack'"),
                                                    (["slack", "slack"], "twice")])  # fmt: skip
def test_monitor_route_receivers_are_validated(receivers: list[str], message: str) -> None:
    """A monitor's route.receivers must be a non-empty list of distinct receiver names."""
    with pytest.raises(ValidationError, match=message):
        RouteSpec.model_validate({"receivers": receivers})
    assert RouteSpec.model_validate({"receivers": ["pagerduty", "slack"]}).receivers == ["pagerduty", "slack"]
