"""The streaming sources page: each source's consumer (state, last message, stored / dead-letter /
error counts, rows, rows/s over the last minute, lag, last error) and its recent dead letters.

Built from what ``application.sources.list`` and ``.dead_letters`` return, so the page shows
exactly what ``GET /v1/sources`` and ``/v1/sources/{name}/dead-letters`` answer.
"""

from __future__ import annotations

from typing import Any

from dashboards.html import View
from dashboards.tables import CsvColumn, Table

LETTERS_PER_SOURCE = 20


CSV_KEYS = (
    "name",
    "kind",
    "at",
    "topic",
    "model",
    "state",
    "last_message_at",
    "stored",
    "dead_letter",
    "error",
    "rows",
    "rows_per_second_1m",
    "lag_messages",
    "last_error",
)


def _column(key: str) -> CsvColumn:
    return CsvColumn(key, lambda row: row[key])


def _flat(source: dict[str, Any]) -> dict[str, Any]:
    status = source.get("status") or {}
    messages = status.get("messages") or {}
    return {
        "name": source["name"],
        "kind": source["kind"],
        "at": source.get("url") or source.get("bootstrap") or "",
        "topic": source["topic"],
        "model": source["model"],
        "state": status.get("state", ""),
        "running": status.get("state") == "connected",
        "last_message_at": status.get("last_message_at"),
        "stored": messages.get("stored"),
        "dead_letter": messages.get("dead_letter"),
        "error": messages.get("error"),
        "rows": status.get("rows"),
        "rows_per_second_1m": status.get("rows_per_second_1m"),
        "lag_messages": status.get("lag_messages"),
        "last_error": status.get("last_error") or "",
    }


def sources_page(sources: list[dict[str, Any]], letters: dict[str, list[dict[str, Any]]]) -> View:
    """Every declared source with its consumer's status, then the newest dead letters of each."""
    rows = [_flat(s) for s in sources]
    table = Table(
        "sources",
        [
            "Source",
            "Kind",
            "Broker",
            "Topic",
            "Model",
            "State",
            "Last message",
            "Stored",
            "Dead letters",
            "Errors",
            "Rows",
            "Rows/s (1 min)",
            "Lag",
            "Last error",
        ],
        rows,
        [_column(key) for key in CSV_KEYS],
        "No streaming sources are declared (loopwatch sources apply FILE).",
        "sources",
    )
    flat_letters = [d for name in sorted(letters) for d in letters[name]]
    letters_table = Table(
        "dead_letters",
        ["Source", "When", "Topic", "Reason", "Bytes", "Excerpt"],
        flat_letters,
        [
            CsvColumn("source", lambda d: d["source"]),
            CsvColumn("received_at", lambda d: d["received_at"]),
            CsvColumn("topic", lambda d: d["topic"]),
            CsvColumn("reason", lambda d: d["reason"]),
            CsvColumn("payload_bytes", lambda d: d["payload_bytes"]),
            CsvColumn("excerpt", lambda d: d["excerpt"]),
        ],
        "No dead letters: every message received was stored.",
        "dead_letters",
    )
    return View(
        "sources.html",
        "Streaming sources",
        {"per_source": LETTERS_PER_SOURCE},
        crumbs=[("Sources", None)],
        tables={"sources": table, "dead_letters": letters_table},
        csv_name="loopwatch-sources",
    )
