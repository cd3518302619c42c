"""Kafka commit-after-durable under a real full disk: while the store refuses, the group's
committed offsets never pass a message whose rows are not stored, the partitions are paused and
the lag says how far behind; a new consumer of the same group then stores everything once."""

from __future__ import annotations

from pathlib import Path

from tests.monitor.streaming.kafka_mock import MockCluster
from tests.tmpfs import run_on_tmpfs


def test_full_disk_never_commits_past_the_stored_rows(kafka_cluster: MockCluster, tmp_path: Path) -> None:
    """On a 24 MiB tmpfs filled to 3 MiB free: producing until the store refuses gives `error`
    results (retried with backoff, partitions paused, nothing dead-lettered); every message below
    the broker-side committed offsets has its rows stored; the reported lag equals high watermark
    − committed; a second consumer joining the group mid-retry (a rebalance revoking the held
    message's partition and assigning partitions back unpaused) and then stopping the first commit
    nothing more; after the filler is deleted the second consumer, now owning every partition,
    resumes at the committed offsets — it reads the messages not stored before, and again only one
    whose commit a rebalance refused — and every row lands once (no partition stays paused)."""
    result = run_on_tmpfs(tmp_path, "tests.monitor.streaming.tmpfs_kafka_backpressure", kafka_cluster.bootstrap)
    assert result["refused"] and result["errors_while_full"] >= 2 and result["paused"], result
    assert "store refused" in result["last_error"] and "disk" in result["last_error"].lower()
    assert result["committed_but_not_stored_while_refusing"] == []
    assert result["committed_messages_while_refusing"] == result["stored_by_first"] < result["messages"]
    assert result["lag_matches"] and result["lag_reported"] == result["messages"] - result["stored_by_first"]
    assert result["split_while_refusing"], result
    assert result["committed_but_not_stored_after_rebalance"] == []
    assert result["committed_unchanged_by_rebalance_and_stop"]
    assert result["landed"] and result["stored_rows"] == result["expected_rows"], result
    unstored = result["messages"] - result["stored_by_first"]
    assert result["rows_by_second"] == unstored * 2000  # each unstored message's rows, once
    # it started at the committed offsets: it read again only a message whose commit the
    # rebalance refused (stored, then redelivered and deduplicated)
    assert result["read_by_second"] == unstored + result["commit_failed"]
    assert result["committed_at_end"] == result["messages"]
    assert result["dead_letters"] == 0
