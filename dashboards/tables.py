"""Data tables of the pages: one record feeds both the HTML table and its CSV download.

A page lists its rows once (same range, segment and filters as the page); its template renders
the cells, and :meth:`Table.to_csv` writes the plain values of the same rows. Text that a
spreadsheet would run as a formula (it starts with ``=``, ``+``, ``-``, ``@``, a tab or a
carriage return) is prefixed with a quote (OWASP's advice on CSV injection); numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CsvColumn:
    """One CSV column: its header and how to read its plain value from a row."""

    header: str
    value: Callable[[Any], Any]


@dataclass
class Table:
    """A page's table. ``headers`` are shown on the page; ``csv`` are the exported columns."""

    name: str  # in the URL: ?format=csv&table=NAME
    headers: list[str]
    rows: Sequence[Any]
    csv: list[CsvColumn]
    empty: str
    cls: str = ""
    csv_href: str = field(default="")  # set by the route, from the page's own query

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow([safe_cell(c.header) for c in self.csv])
        for row in self.rows:
            writer.writerow([safe_cell(c.value(row)) for c in self.csv])
        return out.getvalue()


def safe_cell(value: Any) -> Any:
    """A value as a CSV cell that no spreadsheet evaluates."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_filename(*parts: str) -> str:
    """``loopwatch-fleet-events-alerts-20261123.csv``: only letters, digits, ``.``, ``_``, ``-``."""
    name = "-".join(p for p in parts if p)
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") + ".csv"
