"""Backpressure: when the store refuses (a real full disk), the consumer acknowledges nothing,
retries with backoff, and once space is freed every published row lands."""

from __future__ import annotations

from pathlib import Path

from tests.monitor.streaming.conftest import Broker
from tests.tmpfs import run_on_tmpfs


def test_full_disk_holds_messages_until_space_is_freed(broker: Broker, tmp_path: Path) -> None:
    """On a 24 MiB tmpfs filled to 3 MiB free: publishing until the store refuses gives `error`
    results (not acknowledged, not dead-lettered) and a `store refused` status; messages keep
    arriving meanwhile; after the filler is deleted, all published rows are stored."""
    result = run_on_tmpfs(tmp_path, "tests.monitor.streaming.tmpfs_backpressure", str(broker.port))
    assert result["refused"] and result["errors_while_full"] >= 2  # retried, with backoff
    assert "store refused" in result["last_error"] and "disk" in result["last_error"].lower()
    assert result["dead_letters"] == 0
    assert result["stored_while_full"] < result["published"]
    assert result["landed"], result
    assert result["stored"] == result["published"]
