"""Which receivers an alert goes to: an Alertmanager-style routing tree (pure; no I/O).

The tree's root route matches every alert and names the default receivers; child routes match
on the alert's labels (``model``, ``monitor``, ``detector``, ``severity``, ``metric``, ``column``,
``model_version``, ``segment.<name>``) and name their own. As in Alertmanager, an alert walks the
children in order and stops at the first that matches, unless that child says ``continue: true``;
a matching child's own children are tried the same way, and a route none of whose children match
takes the alert itself. A child without receivers inherits its parent's.

Matchers are Alertmanager's ``matchers`` strings — ``severity="critical"``, ``model=~"fraud-.*"``,
``detector!="latency"``, ``monitor!~"canary-.*"`` — and, for old configs, the ``match`` (exact) and
``match_re`` (regex) maps. Regexes are anchored (the whole value must match), as in Alertmanager.
Everything is checked when the tree is built: an unknown label, a bad regex or an unknown
receiver is refused with the route's path in the message.

A monitor's own ``route.receivers`` (monitor YAML) bypasses the tree for that monitor's alerts.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.alerting.groups import group_labels
from monitor.monitors import GROUP_LABELS, RouteSpec
from monitor.names import COLUMN_NAME

log = logging.getLogger("loopwatch.alerts")

Op = Literal["=", "!=", "=~", "!~"]
RECEIVER_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")
_MATCHER = re.compile(
    r"""^\s*(?P<name>[A-Za-z_][A-Za-z0-9_.]*)\s*(?P<op>=~|!~|!=|=)\s*(?:"(?P<quoted>(?:[^"\\]|\\.)*)"|(?P<bare>[^"\s]*))\s*$"""
)


class RoutingError(ValueError):
    """The routing configuration (file, settings or a monitor's route) is not valid."""


def check_label(name: str) -> None:
    segment = name.removeprefix("segment.")
    if name not in GROUP_LABELS and not (name.startswith("segment.") and COLUMN_NAME.match(segment)):
        raise ValueError(f"unknown label {name!r}: use any of {', '.join(GROUP_LABELS)} or segment.<name>")


@dataclass(frozen=True)
class Matcher:
    """One label condition, e.g. ``severity="critical"`` or ``model=~"fraud-.*"``."""

    name: str
    op: Op
    value: str
    regex: re.Pattern[str] | None = None

    @classmethod
    def build(cls, name: str, op: Op, value: str) -> Matcher:
        check_label(name)
        regex = None
        if op in ("=~", "!~"):
            try:
                regex = re.compile(value)
            except re.error as exc:
                raise ValueError(f"bad regex {value!r} for {name}: {exc}") from None
        return cls(name, op, value, regex)

    @classmethod
    def parse(cls, text: str) -> Matcher:
        found = _MATCHER.match(text)
        if not found:
            raise ValueError(
                f'cannot read matcher {text!r}: write label="value", label!="value", label=~"regex" or label!~"regex"'
            )
        quoted = found.group("quoted")
        value = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else found.group("bare") or ""
        return cls.build(found.group("name"), found.group("op"), value)  # type: ignore[arg-type]

    def matches(self, labels: dict[str, str]) -> bool:
        actual = labels.get(self.name, "")
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        assert self.regex is not None
        hit = self.regex.fullmatch(actual) is not None
        return hit if self.op == "=~" else not hit

    def __str__(self) -> str:
        return f"{self.name}{self.op}{self.value!r}"


class RouteConfig(BaseModel):
    """One route of the tree, as written in the routing file."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    receiver: str | None = None
    receivers: list[str] | None = None
    matchers: list[str] = Field(default_factory=list)
    match: dict[str, str] = Field(default_factory=dict)
    match_re: dict[str, str] = Field(default_factory=dict)
    continue_: bool = Field(default=False, alias="continue")
    routes: list[RouteConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_way_to_name_receivers(self) -> RouteConfig:
        if self.receiver is not None and self.receivers is not None:
            raise ValueError("give receiver (one name) or receivers (a list), not both")
        if self.receivers is not None and not self.receivers:
            raise ValueError("receivers is empty: leave it out to inherit the parent's")
        return self

    def names(self) -> list[str] | None:
        if self.receiver is not None:
            return [self.receiver]
        return list(self.receivers) if self.receivers is not None else None

    def compiled_matchers(self) -> list[Matcher]:
        out = [Matcher.parse(text) for text in self.matchers]
        out += [Matcher.build(name, "=", value) for name, value in self.match.items()]
        out += [Matcher.build(name, "=~", value) for name, value in self.match_re.items()]
        return out


ReceiverKind = Literal["slack", "webhook", "pagerduty", "email", "log"]
_KIND_FIELDS: dict[str, set[str]] = {
    "slack": {"channel"},
    "webhook": {"url", "secret_env"},
    "pagerduty": {"url", "routing_key_env"},
    "email": {"to"},
    "log": set(),
}


class ReceiverConfig(BaseModel):
    """A named receiver in the routing file, built on a configured kind. Secrets never live in
    the file: a receiver takes its kind's settings (``LOOPWATCH_…``) or names the environment
    variable holding its own (``secret_env``, ``routing_key_env``)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    kind: ReceiverKind
    channel: str | None = None  # slack: default channel (a monitor's slack_channel still wins)
    url: str | None = None  # webhook: target; pagerduty: Events API endpoint
    secret_env: str | None = None  # webhook: env var with this receiver's signing secret
    routing_key_env: str | None = None  # pagerduty: env var with this receiver's routing key
    to: list[str] | None = None  # email: recipients

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not RECEIVER_NAME.match(value):
            raise ValueError("receiver names are 1-64 characters: lowercase letters, digits, '-', '_' or '.'")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("url must be http(s)")
        return value

    @model_validator(mode="after")
    def _fields_of_kind(self) -> ReceiverConfig:
        given = {k for k in ("channel", "url", "secret_env", "routing_key_env", "to") if getattr(self, k) is not None}
        extra = given - _KIND_FIELDS[self.kind]
        if extra:
            allowed = ", ".join(sorted(_KIND_FIELDS[self.kind])) or "nothing"
            raise ValueError(f"{', '.join(sorted(extra))} do not apply to a {self.kind} receiver (it takes {allowed})")
        return self


class RoutingFile(BaseModel):
    """The routing file (``LOOPWATCH_ROUTING_FILE``): named receivers and the route tree."""

    model_config = ConfigDict(extra="forbid")

    receivers: list[ReceiverConfig] = Field(default_factory=list)
    route: RouteConfig = Field(default_factory=RouteConfig)

    @model_validator(mode="after")
    def _unique(self) -> RoutingFile:
        names = [r.name for r in self.receivers]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"receivers named twice: {', '.join(twice)}")
        if self.route.matchers or self.route.match or self.route.match_re or self.route.continue_:
            raise ValueError("the root route matches every alert: it takes no matchers and no continue")
        return self

    @classmethod
    def parse(cls, data: Any, source: str) -> RoutingFile:
        try:
            return cls.model_validate(data if data is not None else {})
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg'].removeprefix('Value error, ')}"
                for e in exc.errors()
            )
            raise RoutingError(f"routing file {source} is not valid: {problems}") from None


@dataclass(frozen=True)
class Route:
    """A built route: its matchers, effective receivers, ``continue`` and children."""

    path: str
    matchers: tuple[Matcher, ...]
    receivers: tuple[str, ...]
    continue_: bool
    routes: tuple[Route, ...] = field(default=())

    def matches(self, labels: dict[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def match(self, labels: dict[str, str]) -> list[Route]:
        """The routes that take an alert with ``labels`` (Alertmanager's ``Route.Match``)."""
        if not self.matches(labels):
            return []
        taken: list[Route] = []
        for child in self.routes:
            found = child.match(labels)
            taken += found
            if found and not child.continue_:
                break
        return taken or [self]


def build_route(config: RouteConfig, known: set[str], default: tuple[str, ...], path: str = "route") -> Route:
    """Compile and check ``config`` (matchers, regexes, receiver names) into a :class:`Route`."""
    try:
        matchers = tuple(config.compiled_matchers())
    except ValueError as exc:
        raise RoutingError(f"{path}: {exc}") from None
    names = config.names()
    receivers = tuple(names) if names is not None else default
    unknown = [n for n in receivers if n not in known]
    if unknown:
        raise RoutingError(
            f"{path}: unknown receiver {', '.join(map(repr, unknown))} (configured: {', '.join(sorted(known)) or 'none'})"
        )
    children = tuple(
        build_route(child, known, receivers, f"{path}.routes[{i}]") for i, child in enumerate(config.routes)
    )
    return Route(path, matchers, receivers, config.continue_, children)


def alert_labels(alert: dict[str, Any]) -> dict[str, str]:
    """The labels routes match on: the grouping labels and every segment value."""
    labels = group_labels(alert, list(GROUP_LABELS))
    labels.update({f"segment.{k}": str(v) for k, v in (alert.get("segment") or {}).items()})
    return labels


@dataclass(frozen=True)
class RoutingTree:
    """The built tree plus the receiver names it may use."""

    root: Route
    known: frozenset[str]

    def receivers_for(self, alert: dict[str, Any], route: RouteSpec | None = None) -> list[str]:
        """Receivers for ``alert`` (deduplicated, in tree order). A monitor's ``route.receivers``
        replaces the tree; names no longer configured are skipped (logged), and if none is left
        the tree decides, so an alert is never dropped for a stale name."""
        if route is not None and route.receivers:
            chosen = [name for name in route.receivers if name in self.known]
            missing = [name for name in route.receivers if name not in self.known]
            if missing:
                log.error(
                    "monitor %s/%s names receivers that are not configured: %s",
                    alert.get("model"),
                    alert.get("monitor"),
                    ", ".join(missing),
                )
            if chosen:
                return list(dict.fromkeys(chosen))
        names: list[str] = []
        for taken in self.root.match(alert_labels(alert)):
            names += taken.receivers
        return list(dict.fromkeys(names))

    def check_route(self, route: RouteSpec) -> None:
        """Refuse a monitor route naming a receiver that is not configured."""
        unknown = [name for name in route.receivers or [] if name not in self.known]
        if unknown:
            raise RoutingError(
                f"unknown receiver {', '.join(map(repr, unknown))} (configured: {', '.join(sorted(self.known))})"
            )


def build_tree(config: RouteConfig, known: set[str], default: tuple[str, ...]) -> RoutingTree:
    """The tree for ``config`` over the configured receivers ``known``; a root without receivers
    delivers to ``default`` (every configured receiver)."""
    return RoutingTree(build_route(config, known, default), frozenset(known))


__all__ = [
    "Matcher",
    "ReceiverConfig",
    "Route",
    "RouteConfig",
    "RoutingError",
    "RoutingFile",
    "RoutingTree",
    "alert_labels",
    "build_tree",
]
