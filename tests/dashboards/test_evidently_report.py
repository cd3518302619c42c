"""The Evidently report: self-contained HTML for files, store windows, the API and the CLI."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from api.cli import app
from dashboards.evidently_report import ReportContext, build_report, sample
from monitor.service import Loopwatch
from tests.conftest import Api

pytestmark = pytest.mark.slow  # Evidently takes seconds to import and run


def _tables(n: int = 600) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(3)
    ref = pa.table({"speed_kmh": rng.normal(50, 10, n), "road_type": rng.choice(["urban", "highway"], n)})
    cur = pa.table({"speed_kmh": rng.normal(65, 10, n), "road_type": rng.choice(["urban", "highway"], n)})
    return ref, cur


def test_report_is_self_contained_html_with_context_banner() -> None:
    """The report is one HTML document with our banner and no external script or style sources."""
    ref, cur = _tables()
    document = build_report(ref, cur, ReportContext("model <x>", "today", "last week"), max_rows=200)
    assert document.lstrip().lower().startswith("<!doctype html") or "<html" in document[:500].lower()
    assert "model &lt;x&gt;" in document and "Sampled to 200 rows" in document
    assert not re.search(r'<(script|link)[^>]+(src|href)="https?://', document)


def test_sampling_is_deterministic() -> None:
    """The same table and limit always give the same sample."""
    ref, _ = _tables(1000)
    assert sample(ref, 100)[0].equals(sample(ref, 100)[0]) and sample(ref, 5000)[1] is False


def test_report_endpoint_for_store_windows(api: Api) -> None:
    """GET /v1/models/{model}/report renders current vs reference windows; an empty window is a 422."""
    from tests.conftest import braking_record

    now = datetime.now(UTC)
    records = [braking_record(i, now - timedelta(hours=2, seconds=i)) for i in range(300)]
    records += [braking_record(1000 + i, now - timedelta(minutes=30, seconds=i)) for i in range(300)]
    api.client.post("/v1/models/harsh-braking/predictions", json=records, headers=api.ingest).raise_for_status()
    params = {
        "start": (now - timedelta(hours=1)).isoformat(),
        "end": now.isoformat(),
        "reference_start": (now - timedelta(hours=3)).isoformat(),
        "reference_end": (now - timedelta(hours=1)).isoformat(),
    }
    response = api.client.get("/v1/models/harsh-braking/report", params=params, headers=api.read)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert "loopwatch · harsh-braking" in response.text
    empty = {
        **params,
        "reference_start": (now - timedelta(days=9)).isoformat(),
        "reference_end": (now - timedelta(days=8)).isoformat(),
    }
    missing = api.client.get("/v1/models/harsh-braking/report", params=empty, headers=api.read)
    assert missing.status_code == 422 and "reference window" in missing.text


def test_cli_report_for_files(tmp_path: Path) -> None:
    """`loopwatch report REF CUR -o out.html` writes the report."""
    ref, cur = _tables()
    pq.write_table(ref, tmp_path / "ref.parquet")
    pq.write_table(cur, tmp_path / "cur.parquet")
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app, ["report", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet"), "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 100_000


def test_cli_report_for_store_windows(tmp_path: Path, service: Loopwatch, braking_model) -> None:
    """`loopwatch report --model … --from … --to … --reference-from … --reference-to …` reads the store."""
    from monitor.validation import records_to_table
    from tests.conftest import braking_record

    now = datetime.now(UTC)
    records = [braking_record(i, now - timedelta(hours=2, seconds=i)) for i in range(200)]
    records += [braking_record(1000 + i, now - timedelta(minutes=30, seconds=i)) for i in range(200)]
    service.store.ingest_predictions("harsh-braking", records_to_table(records, braking_model))
    data_dir = str(service.settings.data_dir)
    service.close()
    out = tmp_path / "store-report.html"
    result = CliRunner().invoke(
        app,
        [
            "report",
            "-o",
            str(out),
            "--model",
            "harsh-braking",
            "--data-dir",
            data_dir,
            "--from",
            (now - timedelta(hours=1)).isoformat(),
            "--to",
            now.isoformat(),
            "--reference-from",
            (now - timedelta(hours=3)).isoformat(),
            "--reference-to",
            (now - timedelta(hours=1)).isoformat(),
        ],
    )
    service.__init__(service.settings)  # reopen for the fixture's teardown
    assert result.exit_code == 0, result.output
    assert "harsh-braking" in out.read_text()
