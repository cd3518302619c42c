"""Bounded in-process retries for Slack Web API calls, built on slack-sdk's retry handlers.

Why our own subclasses of the built-in handlers:

* the built-ins call ``time.sleep`` directly; these take an injected ``sleep`` so tests (and
  the outbox's simulated outages) never wait for real;
* the rate-limit handler honours ``Retry-After`` exactly but refuses to block a worker for
  longer than ``max_wait``: such a 429 is surfaced as a transient error carrying the delay,
  and the outbox reschedules the notice instead;
* the connection handler retries only failures that happened *before the request was fully
  sent* (urllib wraps those in ``URLError``: refused, DNS, connect timeout). A timeout or
  reset while waiting for the response is ambiguous — Slack may already have posted the
  message — so it is not retried here, where a retry could post a duplicate.

A single ``RetryState`` counter is shared by all handlers of one call, so ``max_retries`` caps
the total number of retries of one call, whatever mix of failures caused them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from urllib.error import HTTPError, URLError

from slack_sdk.http_retry import BackoffRetryIntervalCalculator, RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

Sleep = Callable[[float], None]

#: Gateway and server errors worth retrying (Slack recommends retrying 5xx with backoff).
RETRYABLE_STATUSES: frozenset[int] = frozenset({500, 502, 503, 504})
DEFAULT_RETRY_AFTER = 1.0


def retry_after_seconds(headers: Mapping[str, str | list[str]] | None) -> float:
    """Seconds from a ``Retry-After`` header (any case); 1 s when missing or not a number."""
    for key, value in (headers or {}).items():
        if key.lower() != "retry-after":
            continue
        raw = value[0] if isinstance(value, list) and value else value
        try:
            seconds = float(str(raw).strip())
        except ValueError:
            return DEFAULT_RETRY_AFTER
        return max(0.0, seconds) if seconds == seconds else DEFAULT_RETRY_AFTER  # NaN → default
    return DEFAULT_RETRY_AFTER


class _SleepsThroughClock:
    """Waits between attempts through the injected ``sleep`` (tests never wait for real);
    subclasses say how long with ``_delay``."""

    _sleep: Sleep

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        raise NotImplementedError

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        state.next_attempt_requested = True
        self._sleep(self._delay(state, response))
        state.increment_current_attempt()


class _BackoffRetry(_SleepsThroughClock):
    """Exponential backoff with jitter between attempts."""

    def __init__(self, max_retry_count: int, backoff_factor: float, sleep: Sleep) -> None:
        super().__init__(  # type: ignore[call-arg]  # the slack-sdk handler next in the MRO
            max_retry_count=max_retry_count,
            interval_calculator=BackoffRetryIntervalCalculator(backoff_factor=backoff_factor),
        )
        self._sleep = sleep

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        return self.interval_calculator.calculate_sleep_duration(state.current_attempt)  # type: ignore[attr-defined]


class RateLimitRetry(_SleepsThroughClock, RateLimitErrorRetryHandler):
    """Retry a 429 after exactly ``Retry-After`` seconds, unless that exceeds ``max_wait``."""

    def __init__(self, max_retry_count: int, max_wait: float, sleep: Sleep) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self.max_wait = max_wait
        self._sleep = sleep

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super()._can_retry(state=state, request=request, response=response, error=error):
            return False
        return retry_after_seconds(response.headers if response else None) <= self.max_wait

    def _delay(self, state: RetryState, response: HttpResponse | None) -> float:
        return retry_after_seconds(response.headers if response else None)


class ServerErrorRetry(_BackoffRetry, ServerErrorRetryHandler):
    """Retry 500/502/503/504 with exponential backoff and jitter, sleeping through ``sleep``."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is not None and response.status_code in RETRYABLE_STATUSES


def failed_before_sending(error: BaseException | None) -> bool:
    """True when the request never fully reached Slack, so retrying cannot duplicate a message.

    urllib raises ``URLError`` for failures while connecting or sending; failures while
    waiting for the response (read timeout, reset, remote closed) surface unwrapped.
    """
    return isinstance(error, URLError) and not isinstance(error, HTTPError)


class ConnectionRetry(_BackoffRetry, ConnectionErrorRetryHandler):
    """Retry connection failures that provably did not deliver the request."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        return response is None and failed_before_sending(error)


def retry_handlers(
    *, max_retries: int, max_retry_after: float, backoff_factor: float, sleep: Sleep
) -> list[RetryHandler]:
    """The handlers a ``SlackNotifier`` gives its ``WebClient``: 429, 5xx and connection failures."""
    return [
        RateLimitRetry(max_retries, max_retry_after, sleep),
        ServerErrorRetry(max_retries, backoff_factor, sleep),
        ConnectionRetry(max_retries, backoff_factor, sleep),
    ]
