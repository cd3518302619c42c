"""One HTTP call for the HTTP receivers (webhook, PagerDuty), classified into the pipeline's
two errors.

Alertmanager's rule, which is also what both services document: 5xx, 408 and 429 and transport
trouble are worth retrying (``Retry-After`` honoured), any other 4xx is not — the request itself
is wrong (bad key, bad URL, malformed body) and will be wrong next time too. A failure after the
request may have been received (read timeout, connection dropped mid-answer) sets
``maybe_delivered``. Error texts name the host only: webhook URLs often carry tokens in their path.
"""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx

from monitor.alerting.notify import PermanentNotifyError, TransientNotifyError

#: A ``Retry-After`` larger than this is capped: the outbox keeps retrying anyway.
MAX_RETRY_AFTER = 3600.0
_RETRYABLE = {408, 429}


def host_of(url: str) -> str:
    """``https://hooks.example/T0/B1/secret`` → ``hooks.example`` (safe to log)."""
    return urlsplit(url).netloc.rsplit("@", 1)[-1] or "?"


def retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def transient(message: str, *, after: float | None = None, maybe_delivered: bool = False) -> TransientNotifyError:
    error = TransientNotifyError(message)
    error.retry_after = after
    error.maybe_delivered = maybe_delivered
    return error


def post(client: httpx.Client, url: str, body: bytes, headers: dict[str, str], what: str) -> httpx.Response:
    """POST ``body``; returns a 2xx response or raises a classified notify error."""
    host = host_of(url)
    try:
        response = client.post(url, content=body, headers=headers)
    except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
        raise transient(f"{what}: cannot connect to {host} ({type(exc).__name__})") from None
    except httpx.TransportError as exc:  # read/write timeout, dropped connection: it may have arrived
        raise transient(f"{what}: {host} did not answer ({type(exc).__name__})", maybe_delivered=True) from None
    if response.is_success:
        return response
    status = response.status_code
    detail = " ".join(response.text.split())[:300]
    message = f"{what}: {host} answered {status}" + (f": {detail}" if detail else "")
    if status >= 500 or status in _RETRYABLE:
        raise transient(message, after=retry_after(response.headers.get("Retry-After")))
    raise PermanentNotifyError(message)
