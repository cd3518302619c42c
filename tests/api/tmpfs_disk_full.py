"""Run inside ``unshare -Urm`` by tests/api/test_guard.py: mount a small tmpfs, fill it, ingest
until the disk is full, free space, ingest again; print what happened as JSON lines.

Not a test module itself (no ``test_`` prefix): it needs its own mount namespace.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from monitor.settings import Settings
from tests.conftest import BRAKING, braking_record
from tests.tmpfs import fill_disk, mount_tmpfs

MODEL = "/v1/models/harsh-braking"


def main(mount: Path) -> None:
    mount_tmpfs(mount)
    app = create_app(Settings(data_dir=mount / "data"), background=False)
    out: dict[str, object] = {}
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": "Bearer " + app.state.service.keys.create("admin", "t")[1]}
        client.post("/v1/models", json=BRAKING, headers=headers).raise_for_status()
        filler = fill_disk(mount)
        acked = 0
        now = datetime.now(UTC)
        for batch in range(200):  # 3 MiB fill up in far fewer batches
            records = [
                braking_record(0, now - timedelta(seconds=j), prediction_id=f"q-{batch}-{j}") for j in range(2000)
            ]
            response = client.post(f"{MODEL}/predictions", json=records, headers=headers)
            if response.status_code != 200:
                out["refused"] = {
                    "status": response.status_code,
                    "retry_after": response.headers.get("retry-after"),
                    "body": response.json(),
                }
                break
            acked += len(records)
        out["acked"] = acked
        out["ready_when_full"] = client.get("/readyz", headers=headers).status_code
        filler.unlink()
        records = [braking_record(0, now, prediction_id=f"after-{j}") for j in range(10)]
        out["after_free"] = client.post(f"{MODEL}/predictions", json=records, headers=headers).status_code
        out["ready_after"] = client.get("/readyz", headers=headers).status_code
        out["stored"] = client.get(f"{MODEL}/stats", headers=headers).json()["predictions"]
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
