"""What can go wrong when talking to Label Studio, split by what the caller should do about it.

* :class:`LabelStudioUnavailable` — connection refused, timeouts, 5xx, 429: transient. Keep the
  routed samples queued and push them later; nothing is lost.
* :class:`LabelStudioError` — 4xx (bad token, a refused config, a missing project) or a response
  that is not Label Studio's: retrying will not help; someone has to fix configuration.

Both derive from :class:`LabelStudioProblem` so a caller can catch "anything from Label Studio",
but they are siblings on purpose: ``except LabelStudioError`` never swallows a transient outage.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import httpx
from label_studio_sdk.core.api_error import ApiError

# Statuses that mean "try again later" rather than "your request is wrong".
TRANSIENT_STATUSES = frozenset({408, 429})


class LabelStudioProblem(Exception):
    """Base of the two failures below."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class LabelStudioError(LabelStudioProblem):
    """Label Studio refused the request (4xx) or answered something unexpected; do not retry as is."""


class LabelStudioUnavailable(LabelStudioProblem):
    """Label Studio could not be reached, timed out or failed (5xx/429); retry later."""


def _detail(body: Any) -> str:
    """The useful part of Label Studio's error body (``validation_errors`` or ``detail``)."""
    if isinstance(body, dict):
        for key in ("validation_errors", "detail", "message"):
            if body.get(key):
                return str(body[key])[:500]
    return str(body)[:500]


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """Turn SDK and transport exceptions raised inside the block into the two classes above.

    Only wrap calls into the SDK (including iteration of its pagers, which fetch lazily): a
    ``ValueError`` raised inside is read as "the response did not parse".
    """
    try:
        yield
    except ApiError as exc:
        status = exc.status_code
        if status is None or status >= 500 or status in TRANSIENT_STATUSES:
            raise LabelStudioUnavailable(f"{action}: Label Studio answered HTTP {status}", status=status) from exc
        if status < 400:
            raise LabelStudioError(
                f"{action}: unexpected response (HTTP {status}) — is the URL a Label Studio server?", status=status
            ) from exc
        hint = " (check the API token)" if status in (401, 403) else ""
        raise LabelStudioError(f"{action}: HTTP {status}{hint}: {_detail(exc.body)}", status=status) from exc
    except httpx.TimeoutException as exc:
        raise LabelStudioUnavailable(f"{action}: Label Studio timed out ({type(exc).__name__})") from exc
    except httpx.TransportError as exc:
        raise LabelStudioUnavailable(f"{action}: cannot reach Label Studio ({exc})") from exc
    except ValueError as exc:  # JSON / pydantic parsing of a response that is not Label Studio's
        raise LabelStudioError(f"{action}: unexpected response from Label Studio ({exc})") from exc
