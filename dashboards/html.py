"""The pages' templating: the Jinja2 environment (autoescaping on), its filters, and page records.

Every page is a template in ``dashboards/templates/`` extending ``base.html``; macros for
badges, times, numbers, charts and tables live in ``_macros.html``. Any value a template prints
is HTML-escaped unless it is already :class:`~markupsafe.Markup` (the macros' output). Plotly
figures go into a page as JSON in ``<script type="application/json">`` through the
``figure_json`` filter, which escapes ``<``, ``>`` and ``&`` as unicode escapes, so no name,
segment value or alert text can close the script or inject markup.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import jinja2
import plotly.io as pio
from markupsafe import Markup
from starlette.templating import Jinja2Templates

from dashboards.assets import APP_STATIC_URL, PLOTLY_URL, TEMPLATES_DIR
from dashboards.tables import Table

ASSETS = {
    "css": f"{APP_STATIC_URL}/app.css",
    "js": f"{APP_STATIC_URL}/app.js",
    "favicon": f"{APP_STATIC_URL}/favicon.svg",
    "plotly": PLOTLY_URL,
}


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


def utc_text(stamp: str) -> str:
    """``2026-11-20T14:05:00Z`` → ``2026-11-20 14:05 UTC``."""
    return stamp.replace("T", " ")[:16] + " UTC"


def pct(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def number(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}"


def json_for_script(data: Any) -> str:
    """JSON that is safe inside ``<script>``: ``<``, ``>`` and ``&`` as unicode escapes."""
    text = json.dumps(data) if not isinstance(data, str) else data
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def figure_json(figure: Any) -> Markup:
    """A plotly figure (dict, ``Figure`` or JSON text) as script-safe JSON."""
    text = figure if isinstance(figure, str) else pio.to_json(figure, validate=False, engine="orjson")
    return Markup(json_for_script(text))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(iso=iso, utc_text=utc_text, pct=pct, number=number, figure_json=figure_json)
    env.globals.update(assets=ASSETS, url=url, part=part)
    return env


ENV = _environment()
templates = Jinja2Templates(env=ENV)


def macro(name: str) -> Any:
    """A macro of ``_macros.html``, callable from Python (returns Markup)."""
    return getattr(ENV.get_template("_macros.html").module, name)


def when(value: datetime | str | None, empty: str = "—") -> Markup:
    """A UTC time as ``<time>``; the page script puts the viewer's local time in its tooltip."""
    return Markup(macro("when")(value, empty))


@dataclass(frozen=True)
class Chart:
    """A figure slot: the figure (None: show ``empty`` instead) under a DOM id."""

    id: str
    figure: Any
    empty: str


@dataclass
class View:
    """One page to render: its template and what the template needs."""

    template: str
    title: str
    context: dict[str, Any]
    crumbs: list[tuple[str, str | None]] = field(default_factory=list)
    charts: dict[str, Chart] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    csv_name: str = "loopwatch"  # the download's file name starts with this
    status: int = 200

    def chart(self, key: str, figure: Any, fig_id: str, empty: str) -> None:
        self.charts[key] = Chart(fig_id, figure, empty)

    def template_context(self) -> dict[str, Any]:
        return {
            **self.context,
            "title": self.title,
            "crumbs": self.crumbs,
            "charts": self.charts,
            "tables": self.tables,
            "has_figures": any(c.figure is not None for c in self.charts.values()),
        }

    def render(self) -> str:
        return ENV.get_template(self.template).render(self.template_context())


class Page:
    """A page around an HTML body already built (escaped) elsewhere; figures drawn by plotly."""

    def __init__(self, title: str) -> None:
        self.title = title
        self._has_figures = False

    def figure(self, fig: Any, fig_id: str, empty: str) -> Markup:
        """A chart container with its figure JSON, or the empty-state message when ``fig`` is None."""
        self._has_figures = self._has_figures or fig is not None
        return Markup(macro("chart")(Chart(fig_id, fig, empty)))

    def render(self, body: str, crumbs: list[tuple[str, str | None]] | None = None) -> str:
        return ENV.get_template("page.html").render(
            title=self.title, crumbs=crumbs or [], body=Markup(body), has_figures=self._has_figures
        )
