"""An acknowledged write survives kill -9 of the server; nothing is duplicated on resend."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from monitor.formats import ARROW_STREAM, table_to_arrow_stream
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.api.test_ingest_api import _flat_table
from tests.conftest import braking_record

pytestmark = pytest.mark.slow


def _batch(kind: str, number: int, size: int) -> tuple[bytes, str, list[str]]:
    if kind == "arrow":
        table = _flat_table(size, start=number * size)
        return table_to_arrow_stream(table), ARROW_STREAM, table.column("prediction_id").to_pylist()
    now = datetime.now(UTC)
    records = [
        braking_record(number * size + i, now - timedelta(seconds=i), prediction_id=f"{kind}-{number}-{i}")
        for i in range(size)
    ]
    import orjson

    return orjson.dumps(records), "application/json", [r["prediction_id"] for r in records]


@pytest.mark.parametrize("kind", ["json", "arrow"])
def test_acknowledged_rows_survive_kill_9(server_factory, kind: str) -> None:
    """Stream batches, kill -9 the server mid-stream: after restart every acknowledged row is
    present exactly once, and resending every batch (acked or not) duplicates nothing — also
    when the resends carry new timestamps (the id index was not flushed before the kill: its
    entries come back from the stored rows at start-up)."""
    server, key = server_factory()
    server.start()
    headers = {"Authorization": f"Bearer {key}"}
    acked: list[str] = []
    sent: list[tuple[bytes, str]] = []
    stop = threading.Event()

    def stream() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=10) as client:
            for number in range(400):  # bounded in count…
                if stop.is_set():
                    return
                body, content_type, ids = _batch(kind, number, 500)
                sent.append((body, content_type))
                try:
                    response = client.post(
                        "/v1/models/harsh-braking/predictions", content=body, headers={"Content-Type": content_type}
                    )
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    acked.extend(ids)

    thread = threading.Thread(target=stream)
    thread.start()
    deadline = time.monotonic() + 60  # …and in time
    while len(acked) < 5_000 and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.01)
    server.kill9()
    stop.set()
    thread.join(timeout=30)
    assert len(acked) >= 5_000

    server.start()
    with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
        for body, content_type in sent:
            response = client.post(
                "/v1/models/harsh-braking/predictions", content=body, headers={"Content-Type": content_type}
            )
            assert response.status_code == 200
        time.sleep(0.01)  # the regenerated batches below carry later timestamps
        for number in range(len(sent)):
            body, content_type, _ = _batch(kind, number, 500)
            response = client.post(
                "/v1/models/harsh-braking/predictions", content=body, headers={"Content-Type": content_type}
            )
            assert response.status_code == 200 and response.json()["accepted"] == 0, response.text
    server.stop()

    service = Loopwatch(Settings(data_dir=server.data_dir))
    try:
        ids = (
            service.store.scan("harsh-braking", columns=["prediction_id"], with_labels=False)
            .column("prediction_id")
            .to_pylist()
        )
    finally:
        service.close()
    assert set(acked) <= set(ids)
    assert len(ids) == len(set(ids)) == 500 * len(sent)
