"""`loopwatch gate evaluate|verify` end to end: a dataset version of owner-labelled predictions,
candidate and champion files, the verdict as exit code, the record, and its verification."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from api.cli import app
from labeling.curation import BuildRequest, DatasetStore
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from monitor.validation import records_to_table
from tests.conftest import braking_record

MODEL = "harsh-braking"
ROWS = 1200
SPEC = """
name: braking-release
model: harsh-braking
positive_class: brake
confidence: 0.95
criteria:
  - {metric: recall, min: 0.80}
  - {metric: fpr, max: 0.10}
  - {metric: recall, non_inferiority: 0.05}
slices: [region]
min_samples: 50
"""


@pytest.fixture
def labelled(service: Loopwatch, braking_model: ModelSchema) -> dict[str, str]:
    """ROWS predictions over two regions (eu: 900, us: 300) with the owner's ground truth, built
    into dataset gate-set@1 (source=labelled); returns the labels by id."""
    rng = np.random.default_rng(3)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    records = [
        braking_record(i, start + timedelta(seconds=i), segments={"region": "eu" if i < 900 else "us", "firmware": "3"})
        for i in range(ROWS)
    ]
    service.store.ingest_predictions(MODEL, records_to_table(records, braking_model))
    truth = {f"p-{i}": ("brake" if rng.random() < 0.5 else "none") for i in range(ROWS)}
    service.store.ingest_labels(MODEL, pa.table({"prediction_id": list(truth), "label": list(truth.values())}))
    DatasetStore(service).build(
        BuildRequest(MODEL, "gate-set", start=start, end=start + timedelta(hours=1), source="labelled")
    )
    return truth


def _predictions(
    path: Path, truth: dict[str, str], *, recall: float, fpr: float, seed: int, us_recall: float | None = None
) -> Path:
    rng = np.random.default_rng(seed)
    out = []
    for pid, label in truth.items():
        rate = us_recall if us_recall is not None and int(pid[2:]) >= 900 else recall
        hit = rng.random() < (rate if label == "brake" else fpr)
        out.append("brake" if hit else "none")
    pq.write_table(pa.table({"prediction_id": list(truth), "prediction": out}), path)
    return path


def _evaluate(settings: Settings, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["gate", "evaluate", *args, "--data-dir", str(settings.data_dir)], env=env)
    return result.exit_code, result.output


def test_a_good_candidate_ships_and_the_record_verifies(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: a candidate clearing every criterion in every slice exits 0 (ship) — even while the
    server holds the data directory — and writes report.json/html and spec.yaml; the same inputs
    give a byte-identical report.json apart from generated_at; `gate verify` exits 0."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cand = _predictions(tmp_path / "cand.parquet", labelled, recall=0.97, fpr=0.02, seed=1)
    champ = _predictions(tmp_path / "champ.parquet", labelled, recall=0.95, fpr=0.03, seed=1)
    args = ["--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(cand), "--champion", str(champ)]
    code, output = _evaluate(settings, *args, "--out", str(tmp_path / "r1"))
    assert code == 0, output
    assert "ship" in output
    assert {p.name for p in (tmp_path / "r1").iterdir()} == {"report.json", "report.html", "spec.yaml"}
    report = json.loads((tmp_path / "r1" / "report.json").read_text())
    assert report["verdict"] == "ship" and report["result"]["summary"]["fail"] == 0
    assert {c["slice"] for c in report["result"]["checks"]} == {"all", "region"}
    assert report["inputs"]["candidate"]["sha256"] and report["inputs"]["dataset"]["manifest_sha256"]
    assert _evaluate(settings, *args, "--out", str(tmp_path / "r2"))[0] == 0
    first = (tmp_path / "r1" / "report.json").read_text().splitlines()
    second = (tmp_path / "r2" / "report.json").read_text().splitlines()
    assert [line for line in first if "generated_at" not in line] == [
        line for line in second if "generated_at" not in line
    ]
    html = (tmp_path / "r1" / "report.html").read_text()
    assert "braking-release" in html and "Plotly.newPlot" in html
    verified = CliRunner().invoke(app, ["gate", "verify", str(tmp_path / "r1")])
    assert verified.exit_code == 0, verified.output


def test_a_candidate_failing_one_region_is_no_ship_naming_it(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: recall far under the minimum in one region exits 1 (no-ship) and the output and
    report name the failing slice."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("  - {metric: recall, non_inferiority: 0.05}\n", ""))
    cand = _predictions(tmp_path / "cand.parquet", labelled, recall=0.97, fpr=0.02, seed=2, us_recall=0.5)
    code, output = _evaluate(
        settings, "--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(cand), "--out", str(tmp_path / "r")
    )
    assert code == 1, output
    assert "region=us" in output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["verdict"] == "no_ship" and "recall ≥ 0.8 [region=us]" in report["result"]["failing"]


def test_too_few_rows_is_insufficient_evidence_with_a_sample_request(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: a slice under min_samples makes the verdict insufficient evidence (exit 3) and the
    report asks for the missing rows of that slice."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        SPEC.replace("min_samples: 50", "min_samples: 400").replace("  - {metric: recall, non_inferiority: 0.05}\n", "")
    )
    cand = _predictions(tmp_path / "cand.parquet", labelled, recall=0.97, fpr=0.02, seed=3)
    code, output = _evaluate(
        settings, "--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(cand), "--out", str(tmp_path / "r")
    )
    assert code == 3, output
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    requests = {(r["slice"], r["value"]): r["rows"] for r in report["result"]["sample_requests"]}
    assert requests[("region", "us")] >= 100  # 300 rows of 400 needed


def test_usage_errors_exit_2_and_say_what_is_wrong(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: a candidate file missing dataset rows, a spec needing a champion without one, an
    unknown dataset version, and a bad spec each exit 2 with the reason."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    partial = {pid: label for i, (pid, label) in enumerate(labelled.items()) if i % 10}
    cand = _predictions(tmp_path / "cand.parquet", partial, recall=0.97, fpr=0.02, seed=4)
    full = _predictions(tmp_path / "full.parquet", labelled, recall=0.97, fpr=0.02, seed=4)
    out = ["--out", str(tmp_path / "r")]
    code, output = _evaluate(settings, "--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(cand), *out)
    assert code == 2 and "no prediction" in output
    assert "champion" in output  # the missing champion is reported in the same round
    code, output = _evaluate(settings, "--spec", str(spec), "--dataset", "gate-set@9", "--candidate", str(full), *out)
    assert code == 2 and "gate-set@9" in output
    spec.write_text("name: x\nmodel: harsh-braking\ncriteria: [{metric: recall, min: 2}]\n")
    code, output = _evaluate(settings, "--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(full), *out)
    assert code == 2 and "between 0 and 1" in output
    assert not (tmp_path / "r").exists()


def test_verify_catches_every_alteration(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: `gate verify` exits 1 when the report's verdict is edited, when a prediction file
    changed after the report, or when the dataset version's files changed."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    cand = _predictions(tmp_path / "cand.parquet", labelled, recall=0.97, fpr=0.02, seed=5)
    champ = _predictions(tmp_path / "champ.parquet", labelled, recall=0.95, fpr=0.03, seed=5)
    base = ["--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(cand), "--champion", str(champ)]
    assert _evaluate(settings, *base, "--out", str(tmp_path / "r"))[0] == 0
    report_path = tmp_path / "r" / "report.json"
    original = report_path.read_text()

    def verify() -> tuple[int, str]:
        result = CliRunner().invoke(app, ["gate", "verify", str(tmp_path / "r")])
        return result.exit_code, result.output

    report_path.write_text(original.replace('"verdict": "ship"', '"verdict": "no_ship"'))
    code, output = verify()
    assert code == 1 and "different report" in output
    report_path.write_text(original)
    assert verify()[0] == 0
    _predictions(cand, labelled, recall=0.97, fpr=0.02, seed=6)  # same shape, other predictions
    code, output = verify()
    assert code == 1 and "candidate file" in output
    _predictions(cand, labelled, recall=0.97, fpr=0.02, seed=5)
    assert verify()[0] == 0
    part = next((settings.data_dir / "datasets" / "gate-set" / "v=1").glob("*.parquet"))
    part.chmod(0o644)
    part.write_bytes(part.read_bytes()[:-10])
    code, output = verify()
    assert code == 1 and "altered" in output


def test_signed_reports_verify_only_with_the_right_key(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: with LOOPWATCH_GATE_SIGNING_KEY the record carries an HMAC-SHA256 signature that
    verifies with the same key and fails without it or with another; with an Ed25519 key file,
    the public key alone verifies."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.replace("  - {metric: recall, non_inferiority: 0.05}\n", ""))
    cand = _predictions(tmp_path / "cand.parquet", labelled, recall=0.97, fpr=0.02, seed=7)
    args = ["--spec", str(spec), "--dataset", "gate-set@1", "--candidate", str(cand)]
    code, output = _evaluate(
        settings, *args, "--out", str(tmp_path / "h"), env={"LOOPWATCH_GATE_SIGNING_KEY": "s3cret"}
    )
    assert code == 0 and "signed (hmac-sha256)" in output
    assert json.loads((tmp_path / "h" / "signature.json").read_text())["scheme"] == "hmac-sha256"
    runner = CliRunner()
    assert (
        runner.invoke(
            app, ["gate", "verify", str(tmp_path / "h")], env={"LOOPWATCH_GATE_SIGNING_KEY": "s3cret"}
        ).exit_code
        == 0
    )
    unkeyed = runner.invoke(app, ["gate", "verify", str(tmp_path / "h")], env={"LOOPWATCH_GATE_SIGNING_KEY": ""})
    assert unkeyed.exit_code == 1 and "not set" in unkeyed.output
    other = runner.invoke(app, ["gate", "verify", str(tmp_path / "h")], env={"LOOPWATCH_GATE_SIGNING_KEY": "other"})
    assert other.exit_code == 1 and "another key" in other.output

    private = Ed25519PrivateKey.generate()
    key_file, pub_file = tmp_path / "sign.pem", tmp_path / "verify.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    pub_file.write_bytes(
        private.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    code, output = _evaluate(
        settings, *args, "--out", str(tmp_path / "e"), env={"LOOPWATCH_GATE_SIGNING_KEY_FILE": str(key_file)}
    )
    assert code == 0 and "signed (ed25519)" in output
    good = runner.invoke(
        app, ["gate", "verify", str(tmp_path / "e")], env={"LOOPWATCH_GATE_VERIFY_KEY_FILE": str(pub_file)}
    )
    assert good.exit_code == 0, good.output
    sig = tmp_path / "e" / "signature.json"
    tampered = json.loads(sig.read_text())
    tampered["signature"] = ("0" if tampered["signature"][0] != "0" else "1") + tampered["signature"][1:]
    sig.write_text(json.dumps(tampered))
    bad = runner.invoke(
        app, ["gate", "verify", str(tmp_path / "e")], env={"LOOPWATCH_GATE_VERIFY_KEY_FILE": str(pub_file)}
    )
    assert bad.exit_code == 1 and "does not match" in bad.output


def test_roc_auc_needs_the_score_column(
    service: Loopwatch, settings: Settings, labelled: dict[str, str], tmp_path: Path
) -> None:
    """Rule: a roc_auc criterion is judged from the prediction files' `score` column; a file
    without it is a usage error (exit 2) naming candidate.score."""
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: auc\nmodel: harsh-braking\npositive_class: brake\ncriteria: [{metric: roc_auc, min: 0.8}]\n")
    rng = np.random.default_rng(8)
    ids = list(labelled)
    score = [float(rng.normal(2.0 if labelled[i] == "brake" else 0.0)) for i in ids]
    calls = ["brake" if s > 1 else "none" for s in score]
    scored = tmp_path / "scored.parquet"
    pq.write_table(pa.table({"prediction_id": ids, "prediction": calls, "score": score}), scored)
    args = ["--spec", str(spec), "--dataset", "gate-set@1", "--out", str(tmp_path / "r")]
    code, output = _evaluate(settings, *args, "--candidate", str(scored))
    assert code == 0, output  # true AUC Φ(2/√2) ≈ 0.92 on 1,200 rows
    unscored = _predictions(tmp_path / "unscored.parquet", labelled, recall=0.9, fpr=0.05, seed=9)
    code, output = _evaluate(settings, *args, "--candidate", str(unscored))
    assert code == 2 and "candidate.score" in output
