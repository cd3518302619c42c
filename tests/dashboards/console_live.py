"""A live loopwatch of its own for the console tests, seeded like ``conftest.live``.

The console tests acknowledge alerts and create silences; on the session-wide ``live`` server
that would change what other dashboard tests see (an alert page's Acknowledge button, say).
So they get their own server on loopback, with the same seeded data (``conftest._seed``), and
sessions signed in through ``/login`` like a browser: admin and read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.dashboards.conftest import Live, _seed, served

HTML = {"Accept": "text/html,application/xhtml+xml"}


@dataclass
class ConsoleLive(Live):
    """The seeded server, its admin key (``key``, id ``key_id``) and a read-only key."""

    key_id: str = ""
    read_key: str = ""
    read_key_id: str = ""

    def session(self, key: str | None = None) -> httpx.Client:
        """A client signed in at /login with ``key`` (default: the admin key), as a browser
        would be: the session cookie, and Origin on writes (cookie writes must be same-origin)."""
        client = httpx.Client(base_url=self.url, timeout=60, headers={"Origin": self.url})
        answer = client.post("/login", data={"key": key or self.key, "next": "/models"})
        assert answer.status_code == 303, answer.text[:500]
        assert "lw_session" in client.cookies
        return client


@contextmanager
def console_live(data_dir: Path) -> Iterator[ConsoleLive]:
    """Serve a freshly seeded app on 127.0.0.1 (uvicorn in a thread) until the block ends."""
    with served(data_dir) as (app, url):
        alerts = _seed(app)
        keys = app.state.service.keys
        admin, key = keys.create("admin", "console-admin")
        reader, read_key = keys.create("read", "console-reader")
        yield ConsoleLive(url, key, app, alerts, key_id=admin.id, read_key=read_key, read_key_id=reader.id)
