"""Fixtures for the alert channel tests: a notice factory, a fake clock and the fake Slack API."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from monitor.alerting.notice import GroupNotice
from tests.fakes.slack_api import slack_api  # noqa: F401  (fixture)
from tests.monitor.alerting.helpers import FakeClock, make_notice


@pytest.fixture
def notice() -> Callable[..., GroupNotice]:
    return make_notice


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
