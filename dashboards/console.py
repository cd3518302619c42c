"""The on-call console pages: every alert across models, the silences, and the audit log.

Each builder takes what the application layer returned (``application.alerts.list``,
``.silences``, ``application.audit.list`` — the route calls them, so the pages show exactly
what ``/v1/alerts``, ``/v1/silences`` and ``/v1/audit`` answer) and returns a
:class:`~dashboards.html.View`. Filters live in the URL (a GET form), so a filtered view can
be linked; each table downloads as CSV with ``?format=csv&table=NAME``. The actions
(acknowledge selected, create and expire silences) are same-origin calls to the JSON API made
by the page script, authenticated by the session cookie.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboards.data import segment_text
from dashboards.html import View, iso, part, url
from dashboards.tables import CsvColumn, Table
from monitor.clock import parse_time
from monitor.errors import FieldError, InvalidInput

ALERT_STATES = ("active", "firing", "pending", "resolved", "all")
SEVERITIES = ("critical", "warning", "info")
SILENCE_VIEWS = ("active", "expired", "all")
ALERT_LIMIT = 1000
AUDIT_PAGE = 100
STATE_BADGE = {"firing": "critical", "pending": "warning", "resolved": "ok"}
# Labels a silence can match (monitor.alerting.silences.LABELS), for the create form's help.
SILENCE_LABELS = ("model", "monitor", "detector", "metric", "column", "severity", "model_version", "alert_id")


def alert_path(model: str, alert_id: str) -> str:
    return f"/models/{part(model)}/alerts/{part(alert_id)}"


# -- alerts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertFilters:
    """The alerts page's filters, from its URL; ``state`` defaults to the open (active) alerts."""

    state: str = "active"
    severity: str | None = None
    model: str | None = None

    def __post_init__(self) -> None:
        errors = []
        if self.state not in ALERT_STATES:
            errors.append(FieldError(field="state", reason=f"must be one of {', '.join(ALERT_STATES)}"))
        if self.severity is not None and self.severity not in SEVERITIES:
            errors.append(FieldError(field="severity", reason=f"must be one of {', '.join(SEVERITIES)}"))
        if errors:
            raise InvalidInput("the alert filters are not valid", errors)

    def query(self) -> dict[str, Any]:
        """The keyword arguments of ``application.alerts.list`` for these filters."""
        state = self.state if self.state in ("firing", "pending", "resolved") else None
        return {
            "state": state,
            "active": True if self.state == "active" else None,
            "severity": self.severity,
            "model": self.model,
            "limit": ALERT_LIMIT,
        }


def alerts_page(alerts: list[dict[str, Any]], filters: AlertFilters, models: list[str]) -> View:
    """Alerts across models, most recently changed first, with checkboxes to acknowledge many."""
    rows = [
        {
            **a,
            "path": alert_path(a["model"], a["id"]),
            "model_path": f"/models/{part(a['model'])}",
            "segment_text": segment_text(a["segment"]) if a["segment"] else "",
            "state_badge": STATE_BADGE.get(a["state"], "unknown"),
            "can_ack": a["state"] != "resolved" and not a["acked_by"],
        }
        for a in alerts
    ]
    table = Table(
        "alerts",
        [
            "",
            "Alert",
            "Model",
            "Monitor",
            "Column",
            "Segment",
            "Severity",
            "State",
            "Started",
            "Acked by",
            "Silenced by",
        ],
        rows,
        [
            CsvColumn("alert_id", lambda a: a["id"]),
            CsvColumn("model", lambda a: a["model"]),
            CsvColumn("monitor", lambda a: a["monitor"]),
            CsvColumn("detector", lambda a: a["detector"]),
            CsvColumn("metric", lambda a: a["metric"]),
            CsvColumn("column", lambda a: a["column"]),
            CsvColumn("segment", lambda a: a["segment_text"]),
            CsvColumn("severity", lambda a: a["severity"]),
            CsvColumn("state", lambda a: a["state"]),
            CsvColumn("started_at", lambda a: a["started_at"]),
            CsvColumn("fired_at", lambda a: a["fired_at"]),
            CsvColumn("acked_by", lambda a: a["acked_by"]),
            CsvColumn("acked_at", lambda a: a["acked_at"]),
            CsvColumn("silenced_by", lambda a: a["silenced_by"]),
            CsvColumn("title", lambda a: a["title"]),
            CsvColumn("page", lambda a: a["path"]),
        ],
        "No alerts match these filters." if filters.state != "active" else "No open alerts.",
        "console-alerts",
    )
    state_links = [
        {
            "label": s,
            "active": s == filters.state,
            "href": url("/alerts", state=s, severity=filters.severity, model=filters.model),
        }
        for s in ALERT_STATES
    ]
    return View(
        "alerts.html",
        "Alerts",
        {
            "filters": filters,
            "states": ALERT_STATES,
            "severities": SEVERITIES,
            "models": models,
            "state_links": state_links,
            "truncated": len(alerts) >= ALERT_LIMIT,
            "limit": ALERT_LIMIT,
            "ackable": sum(1 for r in rows if r["can_ack"]),
        },
        crumbs=[("Alerts", None)],
        tables={"alerts": table},
        csv_name="-".join(x for x in ("loopwatch-alerts", filters.state, filters.model or "") if x),
    )


# -- silences --------------------------------------------------------------------------------


def matchers_text(matchers: dict[str, str]) -> str:
    """``model=fleet-events, segment.firmware=3.2`` (sorted, so the same silence reads the same)."""
    return ", ".join(f"{k}={v}" for k, v in sorted(matchers.items()))


def silences_page(
    silences: list[dict[str, Any]], show: str, models: list[str], monitors: list[str], segments: list[str]
) -> View:
    """Silences (active, expired or all), a form to create one and an Expire button per active one."""
    if show not in SILENCE_VIEWS:
        raise InvalidInput(
            "the silence filter is not valid",
            [FieldError(field="show", reason=f"must be one of {', '.join(SILENCE_VIEWS)}")],
        )
    chosen = [s for s in silences if show == "all" or (show == "active") == bool(s["active"])]
    rows = [
        {
            **s,
            "matchers_text": matchers_text(s["matchers"]),
            "state": "active" if s["active"] else ("expired" if s["expired_at"] else "ended"),
            "expire_path": f"/v1/silences/{part(s['id'])}",
        }
        for s in chosen
    ]
    table = Table(
        "silences",
        ["Silence", "Matchers", "State", "Starts", "Ends", "Created by", "Comment", ""],
        rows,
        [
            CsvColumn("silence_id", lambda s: s["id"]),
            CsvColumn("matchers", lambda s: s["matchers_text"]),
            CsvColumn("state", lambda s: s["state"]),
            CsvColumn("starts_at", lambda s: s["starts_at"]),
            CsvColumn("ends_at", lambda s: s["ends_at"]),
            CsvColumn("expired_at", lambda s: s["expired_at"]),
            CsvColumn("created_by", lambda s: s["created_by"]),
            CsvColumn("created_at", lambda s: s["created_at"]),
            CsvColumn("comment", lambda s: s["comment"]),
        ],
        {"active": "No active silences.", "expired": "No expired silences.", "all": "No silences yet."}[show],
        "console-silences",
    )
    counts = {
        "active": sum(1 for s in silences if s["active"]),
        "expired": sum(1 for s in silences if not s["active"]),
        "all": len(silences),
    }
    return View(
        "silences.html",
        "Silences",
        {
            "show": show,
            "show_links": [
                {"label": f"{v} ({counts[v]})", "active": v == show, "href": url("/silences", show=v)}
                for v in SILENCE_VIEWS
            ],
            "models": models,
            "monitors": monitors,
            "segments": segments,
            "severities": SEVERITIES,
            "labels": [*SILENCE_LABELS, "segment.<name>"],
        },
        crumbs=[("Silences", None)],
        tables={"silences": table},
        csv_name=f"loopwatch-silences-{show}",
    )


# -- audit log -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditFilters:
    """The audit page's filters as typed in the URL (``from``/``to``: a date or an ISO time;
    ``to`` as a date includes that whole day)."""

    action: str | None = None
    actor: str | None = None
    target: str | None = None
    date_from: str | None = None
    date_to: str | None = None
    before_id: int | None = None

    def window(self) -> tuple[datetime | None, datetime | None]:
        errors = []
        bounds: dict[str, datetime | None] = {"from": None, "to": None}
        for name, value in (("from", self.date_from), ("to", self.date_to)):
            if not value:
                continue
            try:
                bounds[name] = _bound(value, inclusive_end=name == "to")
            except ValueError:
                errors.append(
                    FieldError(field=name, reason=f"must be a date such as 2026-11-20 or an ISO time (got {value!r})")
                )
        lo, hi = bounds["from"], bounds["to"]
        if not errors and lo is not None and hi is not None and lo >= hi:
            errors.append(FieldError(field="to", reason="must be after “from”"))
        if errors:
            raise InvalidInput("the audit filters are not valid", errors)
        return lo, hi

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "action": self.action,
            "actor": self.actor,
            "target": self.target,
            "from": self.date_from,
            "to": self.date_to,
            **extra,
        }


def _bound(value: str, *, inclusive_end: bool) -> datetime:
    text = value.strip()
    if len(text) == 10:
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
        return day + timedelta(days=1) if inclusive_end else day
    return parse_time(text)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False, default=str)


def audit_page(entries: list[dict[str, Any]], filters: AuditFilters, page_size: int = AUDIT_PAGE) -> View:
    """Audit entries newest first, ``page_size`` per page; ``entries`` may hold one more, which
    only says that an "Older" page exists."""
    shown = entries[:page_size]
    rows = [{**e, "details_json": compact_json(e["details"]) if e["details"] else ""} for e in shown]
    table = Table(
        "audit",
        ["#", "When", "Actor", "Action", "Target", "Details"],
        rows,
        [
            CsvColumn("id", lambda e: e["id"]),
            CsvColumn("at", lambda e: iso(e["at"])),
            CsvColumn("actor", lambda e: e["actor"]),
            CsvColumn("action", lambda e: e["action"]),
            CsvColumn("target", lambda e: e["target"]),
            CsvColumn("details", lambda e: e["details_json"]),
        ],
        "No audit entries match these filters." if any(filters.params().values()) else "The audit log is empty.",
        "audit",
    )
    older = url("/audit", **filters.params(before_id=shown[-1]["id"])) if len(entries) > page_size and shown else None
    newest = url("/audit", **filters.params()) if filters.before_id is not None else None
    return View(
        "audit.html",
        "Audit log",
        {"filters": filters, "older": older, "newest": newest, "page_size": page_size},
        crumbs=[("Audit log", None)],
        tables={"audit": table},
        csv_name="loopwatch-audit",
    )
