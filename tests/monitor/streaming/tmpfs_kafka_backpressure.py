"""Run inside ``unshare -Urm`` by test_kafka_backpressure.py: a Kafka consumer whose data
directory is a small tmpfs. Fill the disk, produce until the store refuses, check the group's
committed offsets against the stored rows while it refuses, let a second consumer join the group
(a rebalance in the middle of the retries), stop the first, free space, and let the second finish; print what happened as a JSON line. Not a test
module itself (no ``test_`` prefix): it needs its own mount namespace."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.streaming.ingest import handle_message
from monitor.streaming.kafka import KafkaConsumer
from monitor.streaming.sources import SourceSpec
from tests.conftest import BRAKING, braking_record, earlier_today
from tests.monitor.streaming.kafka_mock import FAST_GROUP, KafkaClient
from tests.tmpfs import fill_disk, mount_tmpfs, wait

TOPIC = "bp.predictions"
GROUP = "loopwatch-bp"
ROWS = 2000  # per message


def main(mount: Path, bootstrap: str) -> None:
    mount_tmpfs(mount)
    service = Loopwatch(Settings(data_dir=mount / "data"))
    service.registry.register(ModelSchema.model_validate(BRAKING))
    client = KafkaClient(bootstrap)
    partitions = client.create_topic(TOPIC)
    spec = SourceSpec(name="bp", kind="kafka", bootstrap=bootstrap, topic=TOPIC, group=GROUP, model="harsh-braking")
    events: list[tuple[str, str, int]] = []

    def consumer() -> KafkaConsumer:
        return KafkaConsumer(
            spec,
            lambda where, payload: handle_message(service, spec, where, payload),
            lambda *e: events.append(e),
            backoff_max_s=1.0,
            config=FAST_GROUP,
        )

    first = consumer()
    first.start()
    assert wait(lambda: first.state == "connected", 30), first.status()
    filler = fill_disk(mount)
    ts = earlier_today()
    sent: dict[tuple[int, int], str] = {}  # (partition, offset) → the message's id prefix

    def send(k: int) -> None:
        prefix = f"q-{k}-"
        records = [braking_record(0, ts, prediction_id=f"{prefix}{j}") for j in range(ROWS)]
        partition = k % partitions
        sent[(partition, client.produce(TOPIC, records, partition=partition))] = prefix

    def refused() -> bool:
        return any(e[1] == "error" for e in events)

    for k in range(200):
        send(k)
        if wait(refused, 0.5):
            break
    was_refused = wait(refused, 30)
    for k in range(200, 200 + partitions):  # more arrive while it refuses: they must wait, not be lost
        send(k)
    time.sleep(2.5)  # retries with backoff; the lag is refreshed meanwhile

    start, end = datetime.now(UTC) - timedelta(days=1), datetime.now(UTC) + timedelta(minutes=5)

    def is_stored(prefix: str) -> bool:
        found = service.store.rows_by_ids("harsh-braking", [f"{prefix}0", f"{prefix}{ROWS - 1}"], start, end)
        return bool(found.num_rows == 2)

    def committed_but_not_stored(committed: dict[int, int]) -> list[str]:
        return [f"{p}@{o}" for (p, o), prefix in sent.items() if o < committed.get(p, 0) and not is_stored(prefix)]

    while_refusing = client.committed(GROUP, TOPIC, partitions)
    ends = client.high_watermarks(TOPIC, partitions)
    expected_lag = sum(ends[p] - while_refusing.get(p, 0) for p in range(partitions))
    lag_matches = wait(lambda: first.status()["lag_messages"] == expected_lag, 10)
    status = first.status()
    errors_while_full = sum(1 for e in events if e[1] == "error")
    # A second consumer joins the group while the first is retrying with its partitions paused:
    # the rebalance revokes them (the held message is given up, not committed) and assigns a share
    # back, unpaused, mid-retry.
    second = consumer()
    second.start()
    split = wait(
        lambda: 0 < len(first.status()["partitions"]) < partitions and len(second.status()["partitions"]) > 0, 40
    )
    time.sleep(1.5)  # both retrying on their share
    after_rebalance = client.committed(GROUP, TOPIC, partitions)
    first.stop()  # mid-retry: the held message must not be committed
    after_stop = client.committed(GROUP, TOPIC, partitions)
    stored_by_first = first.counts["stored"]
    filler.unlink()
    total = len(sent) * ROWS
    landed = wait(lambda: int(service.store.stats("harsh-braking")["predictions"]) == total, 90)
    time.sleep(0.5)
    second.stop()
    out = {
        "refused": was_refused,
        "paused": status["paused"],
        "errors_while_full": errors_while_full,
        "last_error": status["last_error"],
        "messages": len(sent),
        "stored_by_first": stored_by_first,
        "committed_messages_while_refusing": sum(while_refusing.values()),
        "committed_but_not_stored_while_refusing": committed_but_not_stored(while_refusing),
        "split_while_refusing": split,
        "committed_but_not_stored_after_rebalance": committed_but_not_stored(after_rebalance),
        "committed_unchanged_by_rebalance_and_stop": after_rebalance == while_refusing == after_stop,
        "lag_reported": status["lag_messages"],
        "lag_expected": expected_lag,
        "lag_matches": lag_matches,
        "landed": landed,
        "stored_rows": int(service.store.stats("harsh-braking")["predictions"]),
        "expected_rows": total,
        "read_by_second": second.counts["stored"],
        "rows_by_second": second.tally.rows,
        "commit_failed": sum(1 for e in events if e[1] == "commit_failed"),
        "last_error_second": second.status()["last_error"],
        "committed_at_end": sum(client.committed(GROUP, TOPIC, partitions).values()),
        "dead_letters": sum(1 for e in events if e[1] == "dead_letter"),
    }
    client.close()
    service.close()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
