"""The command line: register, ingest files (CSV/JSONL/Parquet), keys — with or without a server."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
import yaml
from typer.testing import CliRunner

from api.cli import app
from tests.api.test_ingest_api import _flat_table
from tests.conftest import BRAKING

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    model = tmp_path / "model.yaml"
    model.write_text(yaml.safe_dump(BRAKING))
    code, out = _invoke("models", "register", str(model), "--data-dir", str(tmp_path / "data"))
    assert code == 0, out
    return tmp_path / "data"


def test_register_reports_outcome_and_refuses_invalid(tmp_path: Path, data_dir: Path) -> None:
    """Registering twice is 'unchanged'; an invalid model file names the bad field."""
    model = tmp_path / "model.yaml"
    code, out = _invoke("models", "register", str(model), "--data-dir", str(data_dir))
    assert code == 0 and "unchanged" in out
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**BRAKING, "task": "ranking"}))
    code, out = _invoke("models", "register", str(bad), "--data-dir", str(data_dir))
    assert code == 1 and "task" in out


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_ingest_files_and_rerun_is_idempotent(tmp_path: Path, data_dir: Path, fmt: str) -> None:
    """Parquet, CSV and JSONL files load; loading the same file again stores nothing new."""
    table = _flat_table(1200)
    path = tmp_path / f"preds.{fmt}"
    if fmt == "parquet":
        pq.write_table(table, path)
    elif fmt == "csv":
        pacsv.write_csv(table, path)
    else:
        rows = table.to_pylist()
        path.write_text("\n".join(json.dumps({**r, "timestamp": r["timestamp"].isoformat()}) for r in rows))
    code, out = _invoke(
        "ingest", str(path), "--model", "harsh-braking", "--data-dir", str(data_dir), "--batch-rows", "500"
    )
    assert code == 0, out
    assert "1200 rows read, 1200 stored" in out
    code, out = _invoke("ingest", str(path), "--model", "harsh-braking", "--data-dir", str(data_dir))
    assert "0 stored, 1200 already present" in out


def test_ingest_error_names_the_file_row(tmp_path: Path, data_dir: Path) -> None:
    """A bad row in a later batch is reported with its row number in the file."""
    table = _flat_table(1000)
    preds = table.column("prediction").to_pylist()
    preds[750] = "skid"
    table = table.set_column(table.column_names.index("prediction"), "prediction", pa.array(preds))
    path = tmp_path / "bad.parquet"
    pq.write_table(table, path)
    code, out = _invoke(
        "ingest", str(path), "--model", "harsh-braking", "--data-dir", str(data_dir), "--batch-rows", "500"
    )
    assert code == 1 and "row 750" in out and "skid" in out


def test_labels_file(tmp_path: Path, data_dir: Path) -> None:
    """--labels loads ground truth from a file."""
    path = tmp_path / "labels.csv"
    now = datetime.now(UTC) - timedelta(minutes=1)
    path.write_text(f"prediction_id,label,timestamp\nbulk-1,brake,{now.isoformat()}\nbulk-2,none,{now.isoformat()}\n")
    code, out = _invoke("ingest", str(path), "--model", "harsh-braking", "--labels", "--data-dir", str(data_dir))
    assert code == 0 and "2 applied" in out, out


@pytest.mark.slow
def test_cli_goes_through_a_running_server(tmp_path: Path, server_factory) -> None:
    """While a server holds the data directory, keys create / register / ingest go through its API."""
    server, _ = server_factory()
    server.start()
    code, out = _invoke("keys", "create", "--scope", "read", "--data-dir", str(server.data_dir))
    assert code == 0 and out.strip().splitlines()[-1].startswith("lw_"), out
    path = tmp_path / "preds.parquet"
    pq.write_table(_flat_table(300), path)
    code, out = _invoke("ingest", str(path), "--model", "harsh-braking", "--data-dir", str(server.data_dir))
    assert code == 0 and "300 stored" in out, out
    model = tmp_path / "lane.yaml"
    model.write_text(yaml.safe_dump({**BRAKING, "name": "lane-keeping"}))
    code, out = _invoke("models", "register", str(model), "--data-dir", str(server.data_dir))
    assert code == 0 and "created" in out, out


def test_drift_command_json_and_exit_codes(tmp_path: Path) -> None:
    """`loopwatch drift REF CUR --format json` prints the documented shape; exit 1 on dataset
    drift, 0 without, 2 for a missing file."""
    import numpy as np

    rng = np.random.default_rng(0)
    ref = pa.table({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    same = pa.table({"a": rng.normal(size=3000), "b": rng.normal(size=3000)})
    shifted = pa.table({"a": rng.normal(2, 1, 3000), "b": rng.normal(2, 1, 3000)})
    for name, table in (("ref", ref), ("same", same), ("shifted", shifted)):
        pq.write_table(table, tmp_path / f"{name}.parquet")
    code, out = _invoke("drift", str(tmp_path / "ref.parquet"), str(tmp_path / "shifted.parquet"), "--format", "json")
    result = json.loads(out)
    assert code == 1 and result["dataset_drift"] is True and result["drifted_columns"] == 2
    assert set(result["columns"][0]) >= {"column", "kind", "method", "score", "threshold", "drifted", "p_value"}
    code, out = _invoke("drift", str(tmp_path / "ref.parquet"), str(tmp_path / "same.parquet"))
    assert code == 0 and "dataset drift: no" in out
    code, out = _invoke(
        "drift", str(tmp_path / "ref.parquet"), str(tmp_path / "shifted.parquet"), "--compat", "evidently",
        "--format", "json",
    )
    legacy = json.loads(out)
    assert code == 1 and set(legacy["columns"][0]) == {"column", "kind", "method", "score", "threshold", "drifted"}
    code, _ = _invoke("drift", str(tmp_path / "ref.parquet"), str(tmp_path / "missing.parquet"))
    assert code == 2


@pytest.mark.slow
def test_sigterm_removes_the_runtime_files(server_factory) -> None:
    """After SIGTERM the server removes server.json and the CLI token (no stale pointer)."""
    server, _ = server_factory()
    server.start()
    assert (server.data_dir / "server.json").exists()
    server.stop()
    assert not (server.data_dir / "server.json").exists() and not (server.data_dir / ".cli-token").exists()
