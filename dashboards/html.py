"""HTML building blocks: escaping, URLs, the page layout and embedded plotly figures.

Every dynamic string goes through :func:`e` (text and attributes); figures are embedded as
JSON in ``<script type="application/json">`` with ``<``, ``>`` and ``&`` escaped as unicode
escapes, so no name, segment value or alert text can close the script or inject markup.
"""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import plotly.io as pio

APP_CSS = "/assets/dashboards/app.css"
APP_JS = "/assets/dashboards/app.js"
PLOTLY_JS = "/assets/plotly.min.js"
FAVICON = "/assets/dashboards/favicon.svg"


def e(value: Any) -> str:
    """Escape for HTML text and quoted attribute values."""
    return html.escape("" if value is None else str(value), quote=True)


def url(path: str, **params: Any) -> str:
    """A local URL; ``path`` parts must already be quoted (see :func:`part`); None params are dropped."""
    query = {k: v for k, v in params.items() if v is not None and v != ""}
    return path + ("?" + urlencode(query) if query else "")


def part(value: str) -> str:
    """One path segment (a model, feature or alert id), percent-encoded."""
    return quote(value, safe="")


def iso(value: datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def when(value: datetime | str | None, empty: str = "—") -> str:
    """A UTC time as text; the page script puts the viewer's local time in its tooltip."""
    stamp = iso(value)
    if stamp is None:
        return e(empty)
    shown = stamp.replace("T", " ")[:16] + " UTC"
    return f'<time datetime="{e(stamp)}">{e(shown)}</time>'


def json_for_script(data: Any) -> str:
    text = json.dumps(data) if not isinstance(data, str) else data
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


class Page:
    """Collects the figures of one page; renders the layout around a body."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._figures: list[tuple[str, str]] = []

    def figure(self, fig: Any, fig_id: str, empty: str) -> str:
        """A chart container, or the empty-state message when ``fig`` is None."""
        if fig is None:
            return f'<div class="empty" data-empty-for="{e(fig_id)}">{e(empty)}</div>'
        text = pio.to_json(fig, validate=False, engine="orjson") if not isinstance(fig, str) else fig
        self._figures.append((fig_id, text))
        return f'<div class="chart" id="{e(fig_id)}"></div>'

    def render(self, body: str, crumbs: list[tuple[str, str | None]] | None = None) -> str:
        trail = ""
        if crumbs:
            items = [
                f'<a href="{e(href)}">{e(label)}</a>' if href else f"<span>{e(label)}</span>" for label, href in crumbs
            ]
            trail = '<nav class="crumbs">' + " › ".join(items) + "</nav>"
        figures = "".join(
            f'<script type="application/json" data-figure="{e(fig_id)}">{json_for_script(text)}</script>'
            for fig_id, text in self._figures
        )
        scripts = f'<script src="{PLOTLY_JS}"></script>' if self._figures else ""
        return (
            '<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{e(self.title)} · loopwatch</title>"
            f'<link rel="icon" href="{FAVICON}" type="image/svg+xml">'
            f'<link rel="stylesheet" href="{APP_CSS}"></head><body>'
            '<header class="top"><a class="brand" href="/models">loopwatch</a>'
            '<a href="/models">Models</a><a href="/labeling">Labeling</a><a href="/gates">Gates</a><a href="/docs">API</a>'
            '<form method="post" action="/logout" class="logout"><button type="submit">Sign out</button></form>'
            f'</header><main>{trail}{body}</main>{figures}{scripts}<script src="{APP_JS}"></script></body></html>'
        )


def badge(status: str | None, text: str | None = None) -> str:
    status = status or "unknown"
    return f'<span class="badge {e(status)}">{e(text or status.replace("_", " "))}</span>'


def table(headers: list[str], rows: list[list[str]], empty: str, cls: str = "") -> str:
    """``rows`` cells are HTML already (escape when building them)."""
    if not rows:
        return f'<div class="empty">{e(empty)}</div>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def number(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"
