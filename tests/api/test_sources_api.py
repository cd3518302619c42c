"""Streaming sources over the API and the CLI: declare all or nothing, list, delete, audit."""

from __future__ import annotations

from pathlib import Path

import yaml
from typer.testing import CliRunner

from api.cli import app
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING, Api

PLANT = {
    "name": "plant-a",
    "kind": "mqtt",
    "url": "mqtt://127.0.0.1:1883",
    "topic": "plant/a/predictions",
    "model": "harsh-braking",
    "format": "json",
    "qos": 1,
}
FLEET = {
    "name": "fleet",
    "kind": "kafka",
    "bootstrap": "127.0.0.1:9092",
    "topic": "fleet.predictions",
    "group": "loopwatch",
    "model": "harsh-braking",
    "format": "json",
}


def test_apply_list_delete_and_kafka_status(api: Api) -> None:
    """POST /v1/sources saves (201 new, 200 replaced); the list carries each consumer's status (an
    app without background work consumes nothing, and says so for both kinds); DELETE is
    admin-only and audited."""
    c = api.client
    created = c.post("/v1/sources", json={"sources": [PLANT, FLEET]}, headers=api.admin)
    assert created.status_code == 201, created.text
    assert created.json()["created"] == 2
    assert c.post("/v1/sources", json=[PLANT], headers=api.admin).status_code == 200
    assert c.post("/v1/sources", json=[PLANT], headers=api.ingest).status_code == 403
    listed = {s["name"]: s for s in c.get("/v1/sources", headers=api.read).json()}
    assert listed["fleet"]["status"]["state"].startswith("not running")  # no consumers in this app
    assert listed["plant-a"]["qos"] == 1 and listed["plant-a"]["status"]["state"].startswith("not running")
    assert c.delete("/v1/sources/fleet", headers=api.read).status_code == 403
    assert c.delete("/v1/sources/fleet", headers=api.admin).status_code == 204
    assert c.delete("/v1/sources/fleet", headers=api.admin).status_code == 404
    assert [s["name"] for s in c.get("/v1/sources", headers=api.read).json()] == ["plant-a"]
    actions = [e["action"] for e in c.get("/v1/audit", headers=api.admin).json()]
    assert "source.saved" in actions and "source.deleted" in actions


def test_every_mistake_reported_and_nothing_saved(api: Api) -> None:
    """A file with several mistakes is refused as a whole (422) naming each source and field;
    the valid source in it is not saved either."""
    bad = [
        PLANT,
        {**PLANT, "name": "Bad Name", "url": "http://x:1", "qos": 3},
        {**FLEET, "name": "fleet2", "group": None, "url": "mqtt://x:1"},
        {**PLANT, "name": "p3", "model": "no-such-model", "topic": "a/+/b"},
        {**PLANT},  # declared twice
    ]
    response = api.client.post("/v1/sources", json=bad, headers=api.admin)
    assert response.status_code == 422, response.text
    fields = {e["field"] for e in response.json()["error"]["errors"]}
    assert {"sources[1].qos", "sources[2].group", "sources[2].url", "sources[3].model", "sources[3].topic"} <= fields
    assert "sources[4].name" in fields
    assert api.client.get("/v1/sources", headers=api.read).json() == []


def test_dead_letters_of_unknown_source_404(api: Api) -> None:
    """Dead letters are read per source; an unknown source with none is a 404, not an empty list."""
    assert api.client.get("/v1/sources/nope/dead-letters", headers=api.read).status_code == 404
    api.client.post("/v1/sources", json=[PLANT], headers=api.admin).raise_for_status()
    assert api.client.get("/v1/sources/plant-a/dead-letters", headers=api.read).json() == []


def test_cli_apply_list_delete_offline(tmp_path: Path) -> None:
    """`loopwatch sources apply|list|delete` on a free data directory; a mistake exits 1 with
    every field named; the list says no server is consuming."""
    data = tmp_path / "data"
    svc = Loopwatch(Settings(data_dir=data))
    try:
        svc.registry.register(ModelSchema.model_validate(BRAKING))
    finally:
        svc.close()
    runner = CliRunner()
    good = tmp_path / "sources.yaml"
    good.write_text(yaml.safe_dump({"sources": [PLANT, FLEET]}))
    result = runner.invoke(app, ["sources", "apply", str(good), "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    assert "source plant-a created" in result.output
    result = runner.invoke(app, ["sources", "list", "--data-dir", str(data)])
    lines = sorted(result.output.strip().splitlines())
    assert lines[0].startswith("fleet\tkafka") and "no loopwatch server" in lines[0]
    assert lines[1].startswith("plant-a\tmqtt") and "no loopwatch server" in lines[1]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"sources": [{**PLANT, "url": "tcp://x", "qos": 5}]}))
    result = runner.invoke(app, ["sources", "apply", str(bad), "--data-dir", str(data)])
    assert result.exit_code == 1 and "sources[0].url" in result.output and "sources[0].qos" in result.output
    result = runner.invoke(app, ["sources", "delete", "fleet", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["sources", "list", "--data-dir", str(data)])
    assert result.output.strip().startswith("plant-a") and "fleet" not in result.output
