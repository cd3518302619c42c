"""`loopwatch backfill --engine spark`: the CLI runs the Spark engine on a data directory (sealed
or still hot) and records what the embedded engine records; its Spark flags are checked."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from api.cli import app
from monitor.schema import ModelSchema
from monitor.service import Loopwatch
from monitor.settings import Settings
from tests.conftest import BRAKING
from tests.monitor.engines.test_spark import MODEL, MONITORS, START, TODAY, _history

runner = CliRunner()


def _invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _data_dir(tmp_path: Path, *, seal: bool) -> Path:
    data = tmp_path / "data"
    service = Loopwatch(Settings(data_dir=data))
    try:
        service.registry.register(ModelSchema.model_validate(BRAKING))
        _history(service, days=2, per_day=2000)
        if seal:
            service.store.seal(before=TODAY)
        from application import Application

        Application.offline(service).monitors.apply("test", MODEL, MONITORS[:1])
    finally:
        service.close()
    return data


def _findings(data: Path) -> list[dict[str, Any]]:
    service = Loopwatch(Settings(data_dir=data))
    try:
        return service.runs.findings(MODEL, limit=10_000)
    finally:
        service.close()


# The second day of the generated history: four 6-hour windows.
SPAN = [
    "--model",
    MODEL,
    "--from",
    (START + timedelta(days=1)).isoformat(),
    "--to",
    (START + timedelta(days=2)).isoformat(),
]


@pytest.mark.slow
def test_cli_spark_backfill_records_the_same_findings_as_embedded(tmp_path: Path) -> None:
    """The same day backfilled by the CLI with each engine: both succeed, the Spark run says so,
    and every finding (status, value, p-value, counts) is the same in the two sets of runs."""
    data = _data_dir(tmp_path, seal=True)
    code, out = _invoke("backfill", *SPAN, "--data-dir", str(data))
    assert code == 0, out
    code, out = _invoke(
        "backfill",
        *SPAN,
        "--engine",
        "spark",
        "--spark-master",
        "local[1]",
        "--spark-conf",
        "spark.sql.shuffle.partitions=2",
        "--data-dir",
        str(data),
    )
    assert code == 0, out
    assert "4 runs (0 failed)" in out and "engine spark at local[1]" in out, out
    _assert_pairs_agree(data, runs=8)


def _assert_pairs_agree(data: Path, runs: int) -> None:
    """Each window's findings were recorded twice (once per engine) and agree."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for f in _findings(data):
        by_run.setdefault(f["run_id"], []).append(f)
    assert len(by_run) == runs

    def key(f: dict[str, Any]) -> tuple[Any, ...]:
        return (f["window_end"], f["metric"], f["column"], str(f["segment"]))

    seen: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for findings in by_run.values():
        for f in findings:
            seen.setdefault(key(f), []).append(f)
    assert seen and all(len(pair) == 2 for pair in seen.values())
    for a, b in seen.values():
        assert (a["status"], a["n_current"], a["n_reference"]) == (b["status"], b["n_current"], b["n_reference"])
        for name in ("value", "p_value", "effect_size"):
            assert (a[name] is None and b[name] is None) or abs(a[name] - b[name]) <= 1e-9, (name, a, b)


@pytest.mark.slow
def test_cli_spark_backfill_reads_unsealed_rows_and_checks_its_flags(tmp_path: Path) -> None:
    """History still in the hot table (nothing sealed) is backfilled by the Spark engine with the
    embedded engine's findings; --spark-master without --engine spark and a --spark-conf without
    '=' are usage errors."""
    data = _data_dir(tmp_path, seal=False)
    code, out = _invoke("backfill", *SPAN, "--engine", "spark", "--spark-master", "local[1]", "--data-dir", str(data))
    assert code == 0 and "4 runs (0 failed)" in out, out
    code, out = _invoke("backfill", *SPAN, "--engine", "embedded", "--data-dir", str(data))
    assert code == 0, out
    _assert_pairs_agree(data, runs=8)
    code, out = _invoke("backfill", *SPAN, "--spark-master", "local[1]", "--data-dir", str(data))
    assert code == 2 and "need --engine spark" in out, out
    code, out = _invoke(
        "backfill", *SPAN, "--engine", "spark", "--spark-conf", "no-equals-sign", "--data-dir", str(data)
    )
    assert code == 2 and "KEY=VALUE" in out, out
