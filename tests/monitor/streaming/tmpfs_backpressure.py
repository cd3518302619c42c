"""Run inside ``unshare -Urm`` by test_backpressure.py: a consumer whose data directory is a small
tmpfs; fill the disk, publish until the store refuses, free space, and print what happened as a
JSON line. Not a test module itself (no ``test_`` prefix): it needs its own mount namespace."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.streaming.ingest import handle_message
from monitor.streaming.mqtt import MqttConsumer
from monitor.streaming.sources import SourceSpec
from tests.conftest import BRAKING, braking_record, earlier_today
from tests.tmpfs import fill_disk, mount_tmpfs, wait

TOPIC = "bp/predictions"


def main(mount: Path, port: int) -> None:
    mount_tmpfs(mount)
    service = Loopwatch(Settings(data_dir=mount / "data"))
    service.registry.register(ModelSchema.model_validate(BRAKING))
    spec = SourceSpec(name="bp", kind="mqtt", url=f"mqtt://127.0.0.1:{port}", topic=TOPIC, model="harsh-braking")
    events: list[tuple[str, str, int]] = []
    consumer = MqttConsumer(
        spec, lambda t, p: handle_message(service, spec, t, p), lambda *e: events.append(e), backoff_max_s=1.0
    )
    consumer.start()
    assert wait(lambda: consumer.state == "connected", 20), consumer.status()
    filler = fill_disk(mount)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bp-publisher")
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    ts = earlier_today()
    published = 0
    for batch in range(200):
        records = [braking_record(0, ts, prediction_id=f"q-{batch}-{j}") for j in range(2000)]
        publisher.publish(TOPIC, json.dumps(records), qos=1).wait_for_publish(30)
        published += len(records)
        if wait(lambda: any(e[1] == "error" for e in events), 0.5):
            break
    refused = wait(lambda: any(e[1] == "error" for e in events), 30)
    for batch in range(200, 203):  # more arrive while it is refusing: they must wait, not be lost
        records = [braking_record(0, ts, prediction_id=f"q-{batch}-{j}") for j in range(2000)]
        publisher.publish(TOPIC, json.dumps(records), qos=1).wait_for_publish(30)
        published += len(records)
    time.sleep(2.0)
    errors_while_full = sum(1 for e in events if e[1] == "error")
    stored_while_full = sum(e[2] for e in events if e[1] == "stored")
    last_error = consumer.status()["last_error"]
    filler.unlink()
    landed = wait(lambda: int(service.store.stats("harsh-braking")["predictions"]) == published, 60)
    out = {
        "refused": refused,
        "errors_while_full": errors_while_full,
        "stored_while_full": stored_while_full,
        "last_error": last_error,
        "published": published,
        "landed": landed,
        "stored": int(service.store.stats("harsh-braking")["predictions"]),
        "dead_letters": sum(1 for e in events if e[1] == "dead_letter"),
    }
    consumer.stop()
    publisher.loop_stop()
    service.close()
    print("RESULT " + json.dumps(out), flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
