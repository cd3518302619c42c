"""POST /v1/gates judges a candidate and records the run; GET lists and shows runs (issue 13)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
from fastapi.testclient import TestClient
from pydantic import SecretStr
from typer.testing import CliRunner

from api.app import create_app
from api.cli import app as cli_app
from monitor.settings import Settings
from tests.conftest import BRAKING, Api, braking_record
from tests.fakes.slack_api import FakeSlackApi

SPEC = {
    "name": "braking-release",
    "model": "harsh-braking",
    "positive_class": "brake",
    "criteria": [{"metric": "recall", "min": 0.8}, {"metric": "recall", "non_inferiority": 0.05}],
    "slices": ["region"],
    "min_samples": 50,
}


def _dataset(api: Api, rows: int = 600, unlabelled_every: int = 0) -> dict[str, str]:
    """Predictions in two regions with the owner's labels (every ``unlabelled_every``-th left
    unlabelled), built into gate-set@1; labels by id."""
    rng = np.random.default_rng(1)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    records = [
        braking_record(i, start + timedelta(seconds=i), segments={"region": "eu" if i % 3 else "us", "firmware": "3"})
        for i in range(rows)
    ]
    api.client.post("/v1/models/harsh-braking/predictions", json=records, headers=api.ingest).raise_for_status()
    truth = {
        f"p-{i}": ("brake" if rng.random() < 0.5 else "none")
        for i in range(rows)
        if not unlabelled_every or i % unlabelled_every
    }
    labels = [{"prediction_id": k, "label": v} for k, v in truth.items()]
    api.client.post("/v1/models/harsh-braking/labels", json=labels, headers=api.ingest).raise_for_status()
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    body = {"model": "harsh-braking", "name": "gate-set", "source": "labelled", **window}
    api.client.post("/v1/datasets", json=body, headers=api.admin).raise_for_status()
    return truth


def _rows(truth: dict[str, str], recall: float, seed: int) -> list[dict[str, str]]:
    rng = np.random.default_rng(seed)
    out = []
    for pid, label in truth.items():
        hit = rng.random() < (recall if label == "brake" else 0.03)
        out.append({"prediction_id": pid, "prediction": "brake" if hit else "none"})
    return out


def test_a_gate_run_over_the_api_is_judged_recorded_and_listed(api: Api) -> None:
    """Rule: POST /v1/gates answers 201 with the verdict and exit code a deployment system reads,
    for ship and no-ship alike; the run is listed newest first, its report.json and report.html
    are served, and its directory verifies on its own (inputs kept beside the report)."""
    truth = _dataset(api)
    body = {
        "spec": SPEC,
        "dataset": "gate-set@1",
        "candidate": _rows(truth, 0.97, 1),
        "champion": _rows(truth, 0.95, 2),
    }
    shipped = api.client.post("/v1/gates", json=body, headers=api.admin)
    assert shipped.status_code == 201, shipped.text
    assert shipped.json()["verdict"] == "ship" and shipped.json()["exit_code"] == 0
    broken = api.client.post("/v1/gates", json={**body, "candidate": _rows(truth, 0.5, 3)}, headers=api.admin)
    assert broken.status_code == 201 and broken.json()["verdict"] == "no_ship" and broken.json()["exit_code"] == 1
    assert "recall ≥ 0.8 [all]" in broken.json()["failing"]
    listed = api.client.get("/v1/gates", headers=api.read).json()
    assert [r["id"] for r in listed] == [broken.json()["id"], shipped.json()["id"]]
    report = api.client.get(f"/v1/gates/{shipped.json()['id']}", headers=api.read).json()
    assert report["verdict"] == "ship" and report["inputs"]["champion"]["sha256"]
    page = api.client.get(f"/v1/gates/{shipped.json()['id']}/report.html", headers=api.read)
    assert page.status_code == 200 and "braking-release" in page.text
    data_dir = api.client.app.state.service.settings.data_dir  # type: ignore[attr-defined]
    verified = CliRunner().invoke(cli_app, ["gate", "verify", str(data_dir / "gates" / shipped.json()["id"])])
    assert verified.exit_code == 0, verified.output
    audit = api.client.app.state.service.db.query("SELECT count(*) FROM audit_log WHERE action = 'gate.evaluated'")  # type: ignore[attr-defined]
    assert audit == [(2,)]


def test_gate_input_mistakes_are_422_naming_the_field_and_leave_no_run(api: Api) -> None:
    """Rule: a bad spec, an unknown dataset, or a candidate missing rows is a 422 with the field
    and reason; read keys cannot create runs; nothing is recorded."""
    truth = _dataset(api, rows=300)
    rows = _rows(truth, 0.97, 1)
    bad_spec = {**SPEC, "criteria": [{"metric": "recall", "min": 1.5}]}
    r = api.client.post(
        "/v1/gates", json={"spec": bad_spec, "dataset": "gate-set@1", "candidate": rows}, headers=api.admin
    )
    assert r.status_code == 422 and "criteria.0" in {e["field"] for e in r.json()["error"]["errors"]}
    r = api.client.post(
        "/v1/gates", json={"spec": "criteria: [", "dataset": "gate-set@1", "candidate": rows}, headers=api.admin
    )
    assert r.status_code == 422 and "YAML" in r.json()["error"]["message"]
    only_bounds = {**SPEC, "criteria": [{"metric": "recall", "min": 0.8}]}
    r = api.client.post(
        "/v1/gates", json={"spec": only_bounds, "dataset": "gate-set@7", "candidate": rows}, headers=api.admin
    )
    assert r.status_code == 404
    r = api.client.post(
        "/v1/gates", json={"spec": only_bounds, "dataset": "gate-set@1", "candidate": rows[:-5]}, headers=api.admin
    )
    assert r.status_code == 422 and "candidate.prediction_id" in {e["field"] for e in r.json()["error"]["errors"]}
    r = api.client.post(
        "/v1/gates", json={"spec": only_bounds, "dataset": "gate-set@1", "candidate": rows}, headers=api.read
    )
    assert r.status_code == 403
    assert api.client.get("/v1/gates", headers=api.read).json() == []
    assert api.client.get("/v1/gates/nope", headers=api.read).status_code == 404


def test_an_undecided_run_routes_exactly_its_requests_to_labeling(api: Api) -> None:
    """Rule: POST /v1/gates/{id}/route queues, per undecided slice, up to the requested number of
    *unlabelled* predictions of that slice, at random (unbiased for the slice's metric), with the
    gate named in each sample's reason."""
    truth = _dataset(api, rows=600, unlabelled_every=4)  # 150 of 600 unlabelled
    spec = {**SPEC, "criteria": [{"metric": "recall", "min": 0.8}], "min_samples": 190}
    run = api.client.post(
        "/v1/gates", json={"spec": spec, "dataset": "gate-set@1", "candidate": _rows(truth, 0.97, 1)}, headers=api.admin
    ).json()
    assert run["verdict"] == "insufficient_evidence" and run["route"] == f"/v1/gates/{run['id']}/route"
    us = next(r for r in run["sample_requests"] if r["value"] == "us")  # 150 labelled of 200 rows < 190
    routed = api.client.post(run["route"], headers=api.admin)
    assert routed.status_code == 200, routed.text
    by_slice = {(r["slice"], r["value"]): r for r in routed.json()["routed"]}
    assert by_slice[("region", "us")]["queued"] == min(us["rows"], 50)  # 50 unlabelled us rows exist
    queue = api.client.get("/v1/labeling/queue", params={"model": "harsh-braking"}, headers=api.read).json()
    samples = queue if isinstance(queue, list) else queue["samples"]
    gate_samples = [s for s in samples if f"gate {run['id']}: region=us" in s["reason"]]
    assert len(gate_samples) == by_slice[("region", "us")]["queued"]
    assert all(s["prediction_id"] not in truth for s in gate_samples)  # unlabelled only
    assert all(int(s["prediction_id"][2:]) % 3 == 0 for s in gate_samples)  # region us only
    assert {s["strategy"] for s in gate_samples} == {"random"}


def test_the_verdict_reaches_slack_with_the_failing_slices(settings: Settings) -> None:
    """Rule: every gate run posts one Slack message (the alert receiver) after it is recorded:
    the verdict as status, the failing criterion × slice pairs, a link to the report; the run's
    answer never waits on Slack."""
    with FakeSlackApi() as slack_api:
        _run_with_slack(settings, slack_api)


def _run_with_slack(settings: Settings, slack_api: FakeSlackApi) -> None:
    configured = settings.model_copy(
        update={
            "slack_token": SecretStr(slack_api.token),
            "slack_api_url": slack_api.base_url,
            "slack_channel": "#ml-oncall",
            "public_url": "https://loopwatch.example",
        }
    )
    app = create_app(configured, background=False)
    with TestClient(app) as client:
        admin = {"Authorization": f"Bearer {app.state.service.keys.create('admin', 't')[1]}"}
        client.post("/v1/models", json=BRAKING, headers=admin).raise_for_status()
        truth = _dataset(Api(client, admin, admin, admin))
        body = {"spec": {**SPEC, "criteria": [{"metric": "recall", "min": 0.8}]}, "dataset": "gate-set@1"}
        run = client.post("/v1/gates", json={**body, "candidate": _rows(truth, 0.5, 3)}, headers=admin).json()
    posts = slack_api.calls_to("chat.postMessage", ok_only=True)
    assert len(posts) == 1 and posts[0].params["channel"] == "#ml-oncall"
    message = json.dumps(posts[0].params)
    assert "no ship" in message and "braking-release" in message
    assert "region=us" in message and "region=eu" in message  # the failing slices
    assert f"https://loopwatch.example/v1/gates/{run['id']}/report.html" in message


def test_a_half_built_run_is_removed_at_start_and_never_listed(settings: Settings) -> None:
    """Rule: a run directory a crash left half-built (`.building-*`) is not listed and is removed
    when the server starts."""
    stale = settings.data_dir / "gates" / ".building-20261203t000000000000-deadbeef"
    stale.mkdir(parents=True)
    (stale / "spec.yaml").write_text("name: x")
    app = create_app(settings, background=False)
    with TestClient(app) as client:
        key = {"Authorization": f"Bearer {app.state.service.keys.create('read', 't')[1]}"}
        assert client.get("/v1/gates", headers=key).json() == []
    assert not stale.exists()
