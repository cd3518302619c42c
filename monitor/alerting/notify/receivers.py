"""Which receivers the service delivers to, and the routing tree over them, from settings
(Alertmanager's ``receivers:`` and ``route:`` config, in one place).

Receivers configured from settings are named after their kind: ``slack`` (the token is set;
the notifier the composition root built — :func:`notifier_from_settings`), ``webhook``
(``LOOPWATCH_WEBHOOK_URL``), ``pagerduty`` (``LOOPWATCH_PAGERDUTY_ROUTING_KEY``), ``email``
(``LOOPWATCH_SMTP_HOST``); ``log`` always exists. Without a routing file the tree's root — the
default route — delivers to every configured receiver, and to ``log`` only when none is
configured: so with only Slack, or nothing, configured, delivery is exactly as before. A routing
file (``LOOPWATCH_ROUTING_FILE``) adds named receivers built on those kinds and the route tree.
Everything is checked here, at start-up: a bad file stops the service with a clear message.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr

from monitor.alerting.notify import Notifier
from monitor.alerting.notify.email import EmailNotifier
from monitor.alerting.notify.log import LogNotifier
from monitor.alerting.notify.pagerduty import DEFAULT_URL as PAGERDUTY_URL
from monitor.alerting.notify.pagerduty import PagerDutyNotifier
from monitor.alerting.notify.slack import notifier_from_settings as slack_from_settings
from monitor.alerting.notify.webhook import WebhookNotifier
from monitor.alerting.routing import ReceiverConfig, RouteConfig, RoutingError, RoutingFile, RoutingTree, build_tree
from monitor.monitors import RouteSpec

log = logging.getLogger("loopwatch.alerts")
KINDS = ("slack", "webhook", "pagerduty", "email", "log")


def notifier_from_settings(settings: Any, **options: Any) -> Notifier:
    """The primary receiver (Slack when a token is set, else the log); it also posts one-off
    announcements. ``options`` go to the Slack notifier (clock, sleep, limits)."""
    slack = slack_from_settings(settings, **options)
    return slack if slack is not None else LogNotifier()


@dataclass(frozen=True)
class Receivers:
    """The named receivers and the routing tree that chooses among them."""

    notifiers: Mapping[str, Notifier]
    tree: RoutingTree
    primary: Notifier

    @classmethod
    def single(cls, notifier: Notifier) -> Receivers:
        """One receiver taking every alert (what the pipeline did before routing existed)."""
        return cls({notifier.name: notifier}, build_tree(RouteConfig(), {notifier.name}, (notifier.name,)), notifier)

    def get(self, name: str) -> Notifier | None:
        return self.notifiers.get(name)

    def receivers_for(self, alert: dict[str, Any], route: RouteSpec | None = None) -> list[str]:
        return self.tree.receivers_for(alert, route)

    def check_route(self, route: RouteSpec) -> None:
        self.tree.check_route(route)


def _secret(value: SecretStr | None) -> SecretStr | None:
    return value if value is not None and value.get_secret_value().strip() else None


def _env_secret(variable: str, receiver: str) -> SecretStr:
    value = os.environ.get(variable, "")
    if not value.strip():
        raise RoutingError(f"receiver {receiver}: environment variable {variable} is not set")
    return SecretStr(value.strip())


def _recipients(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _webhook(settings: Any, name: str, url: str | None, secret: SecretStr | None) -> WebhookNotifier:
    if not url:
        raise RoutingError(f"receiver {name}: a webhook needs a url (or LOOPWATCH_WEBHOOK_URL)")
    if secret is None:
        log.warning("webhook receiver %s sends unsigned requests: set LOOPWATCH_WEBHOOK_SECRET", name)
    return WebhookNotifier(url, secret=secret, name=name, external_url=getattr(settings, "public_url", None))


def _pagerduty(settings: Any, name: str, key: SecretStr | None, url: str | None) -> PagerDutyNotifier:
    if key is None:
        raise RoutingError(f"receiver {name}: PagerDuty needs LOOPWATCH_PAGERDUTY_ROUTING_KEY (or routing_key_env)")
    return PagerDutyNotifier(
        key,
        url=url or getattr(settings, "pagerduty_url", None) or PAGERDUTY_URL,
        name=name,
        external_url=getattr(settings, "public_url", None),
    )


def _email(settings: Any, name: str, to: list[str]) -> EmailNotifier:
    host = getattr(settings, "smtp_host", None)
    sender = getattr(settings, "smtp_from", None)
    missing = [
        variable
        for variable, value in (
            ("LOOPWATCH_SMTP_HOST", host),
            ("LOOPWATCH_SMTP_FROM", sender),
            ("LOOPWATCH_SMTP_TO", to),
        )
        if not value
    ]
    if missing:
        raise RoutingError(f"receiver {name}: e-mail needs {', '.join(missing)}")
    try:
        return EmailNotifier(
            str(host),
            sender=str(sender),
            to=to,
            port=getattr(settings, "smtp_port", None),
            user=getattr(settings, "smtp_user", None) or None,
            password=_secret(getattr(settings, "smtp_password", None)),
            starttls=bool(getattr(settings, "smtp_starttls", True)),
            use_ssl=bool(getattr(settings, "smtp_ssl", False)),
            timeout=float(getattr(settings, "smtp_timeout_seconds", 10.0)),
            name=name,
        )
    except ValueError as exc:
        raise RoutingError(str(exc)) from None


def _from_settings(settings: Any) -> dict[str, Notifier]:
    """The receivers that settings alone configure (besides Slack, which the caller built)."""
    found: dict[str, Notifier] = {}
    url = getattr(settings, "webhook_url", None)
    if url:
        found["webhook"] = _webhook(settings, "webhook", url, _secret(getattr(settings, "webhook_secret", None)))
    elif _secret(getattr(settings, "webhook_secret", None)) is not None:
        raise RoutingError("LOOPWATCH_WEBHOOK_SECRET is set but LOOPWATCH_WEBHOOK_URL is not")
    key = _secret(getattr(settings, "pagerduty_routing_key", None))
    if key is not None:
        found["pagerduty"] = _pagerduty(settings, "pagerduty", key, None)
    smtp = [getattr(settings, f, None) for f in ("smtp_host", "smtp_from", "smtp_to", "smtp_user")]
    if any(smtp):
        found["email"] = _email(settings, "email", _recipients(getattr(settings, "smtp_to", None)))
    return found


def _named(settings: Any, config: ReceiverConfig, primary: Notifier) -> Notifier:
    """A routing file's receiver, built on its kind's settings."""
    name = config.name
    if config.kind == "slack":
        slack = slack_from_settings(
            settings, name=name, **({"default_channel": config.channel} if config.channel else {})
        )
        if slack is None:
            raise RoutingError(f"receiver {name}: Slack needs LOOPWATCH_SLACK_TOKEN")
        return slack
    if config.kind == "webhook":
        secret = (
            _env_secret(config.secret_env, name)
            if config.secret_env
            else _secret(getattr(settings, "webhook_secret", None))
        )
        return _webhook(settings, name, config.url or getattr(settings, "webhook_url", None), secret)
    if config.kind == "pagerduty":
        key = (
            _env_secret(config.routing_key_env, name)
            if config.routing_key_env
            else _secret(getattr(settings, "pagerduty_routing_key", None))
        )
        return _pagerduty(settings, name, key, config.url)
    if config.kind == "email":
        return _email(settings, name, config.to or _recipients(getattr(settings, "smtp_to", None)))
    return LogNotifier(name=name)


def load_routing_file(path: Path) -> RoutingFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RoutingError(f"routing file {path} does not exist") from None
    except yaml.YAMLError as exc:
        raise RoutingError(f"routing file {path} is not valid YAML: {exc}") from None
    return RoutingFile.parse(data, str(path))


def receivers_from_settings(settings: Any, primary: Notifier) -> Receivers:
    """Every configured receiver and the routing tree. ``primary`` is the notifier the
    composition root built (Slack, the log, or one a test injected); it keeps its name."""
    notifiers: dict[str, Notifier] = {}
    if not isinstance(primary, LogNotifier):
        notifiers[primary.name] = primary
    for name, notifier in _from_settings(settings).items():
        if name in notifiers:
            raise RoutingError(f"receiver name {name!r} is taken twice")
        notifiers[name] = notifier
    default = tuple(notifiers) or ("log",)
    notifiers.setdefault("log", primary if isinstance(primary, LogNotifier) else LogNotifier())
    path = getattr(settings, "routing_file", None)
    routing = load_routing_file(Path(path)) if path else RoutingFile()
    for config in routing.receivers:
        if config.name in notifiers:
            raise RoutingError(
                f"routing file {path}: receiver {config.name!r} is already configured from settings; pick another name"
            )
        notifiers[config.name] = _named(settings, config, primary)
    try:
        tree = build_tree(routing.route, set(notifiers), default)
    except RoutingError as exc:
        raise RoutingError(f"routing file {path}: {exc}" if path else str(exc)) from None
    return Receivers(notifiers, tree, primary)


__all__ = ["KINDS", "Receivers", "load_routing_file", "notifier_from_settings", "receivers_from_settings"]
