"""compare_tables / read_table / ``python -m detectors``: the calibrated default, Evidently parity
(``compat="evidently"``) and file handling."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from detectors.table_drift import compare_tables, infer_kind, open_table, read_table

ROOT = Path(__file__).resolve().parents[2]
EVIDENTLY_METHODS = {
    "Wasserstein distance (normed)": "wasserstein",
    "Jensen-Shannon distance": "jensenshannon",
    "K-S p_value": "ks",
    "chi-square p_value": "chisquare",
    "Z-test p_value": "z",
    "PSI": "psi",
    "Anderson-Darling": "anderson",
}


def _tables(n_ref: int, n_cur: int, seed: int) -> tuple[pa.Table, pa.Table]:
    rng = np.random.default_rng(seed)

    def side(n: int, shifted: bool) -> pa.Table:
        s = 1.0 if shifted else 0.0
        with_nan = rng.normal(0, 1, n)
        with_nan[rng.random(n) < 0.1] = np.nan
        cats = ["a", "b", "c", "d"] + (["new"] if shifted else [])
        return pa.table(
            {
                "normal": rng.normal(0.3 * s, 1, n),
                "unchanged": rng.normal(0, 1, n),
                "with_nan": with_nan + 0.05 * s,
                "discrete": rng.choice(
                    [0.0, 1.0, 2.0, 3.0], n, p=[0.4, 0.3, 0.2, 0.1] if not shifted else [0.3, 0.3, 0.2, 0.2]
                ),
                "binary_float": rng.choice([0.0, 1.0], n, p=[0.7, 0.3] if not shifted else [0.6, 0.4]),
                "int_low": rng.integers(0, 6, n),
                "int_high": rng.integers(0, 500, n) + (20 if shifted else 0),
                "category": rng.choice(cats, n),
                "flag": rng.random(n) < (0.5 if not shifted else 0.42),
                "constant": np.full(n, 2.5),
            }
        )

    return side(n_ref, False), side(n_cur, True)


def _evidently(reference: pa.Table, current: pa.Table) -> dict[str, dict[str, Any]]:
    warnings.filterwarnings("ignore")
    from evidently import Report
    from evidently.presets import DataDriftPreset

    snapshot = Report([DataDriftPreset()], include_tests=True).run(current.to_pandas(), reference.to_pandas())
    data = snapshot.dict()
    status = {t["metric_config"]["metric_id"]: t["status"] for t in data["tests"] if t["id"] == "drift"}
    out = {}
    for m in data["metrics"]:
        cfg = m["config"]
        if cfg["type"].endswith("ValueDrift"):
            out[cfg["column"]] = {
                "method": EVIDENTLY_METHODS[cfg["method"]],
                "score": m["value"],
                "threshold": cfg["threshold"],
                "drifted": status[m["id"]] == "FAIL",
            }
        elif cfg["type"].endswith("DriftedColumnsCount"):
            out["__share__"] = m["value"]
    return out


@pytest.mark.parametrize(("n_ref", "n_cur"), [(800, 600), (3000, 2000)], ids=["tests", "distances"])
def test_compare_tables_matches_evidently(n_ref: int, n_cur: int) -> None:
    """compat evidently: same columns, same methods, same verdicts as Evidently 0.7's
    DataDriftPreset; scores within 1e-6."""
    reference, current = _tables(n_ref, n_cur, seed=n_ref)
    ours = compare_tables(reference, current, compat="evidently")
    theirs = _evidently(reference, current)
    share = theirs.pop("__share__")
    assert {c["column"] for c in ours["columns"]} == set(theirs)
    for col in ours["columns"]:
        ev = theirs[col["column"]]
        assert col["method"] == ev["method"], col["column"]
        assert col["drifted"] == ev["drifted"], col["column"]
        assert col["threshold"] == pytest.approx(ev["threshold"])
        assert col["score"] == pytest.approx(ev["score"], rel=1e-6, abs=1e-12), col["column"]
    assert ours["drifted_columns"] == share["count"]
    assert ours["share"] == pytest.approx(share["share"])


def test_output_shape_is_exactly_the_documented_json() -> None:
    """compat evidently returns exactly columns/drifted_columns/share/dataset_drift, each column
    with 6 keys; the calibrated rule adds rule/skipped and test/p_value/p_value_adjusted per column."""
    reference, current = _tables(1500, 1500, seed=1)
    out = compare_tables(reference, current, compat="evidently")
    assert set(out) == {"columns", "drifted_columns", "share", "dataset_drift"}
    assert all(set(c) == {"column", "kind", "method", "score", "threshold", "drifted"} for c in out["columns"])
    json.dumps(out, allow_nan=False)
    assert out["dataset_drift"] == (out["share"] >= 0.5)
    out = compare_tables(reference, current)
    assert set(out) == {"rule", "columns", "drifted_columns", "share", "dataset_drift", "skipped"}
    assert all(
        set(c) == {"column", "kind", "method", "score", "threshold", "drifted", "test", "p_value", "p_value_adjusted"}
        for c in out["columns"]
    )
    json.dumps(out, allow_nan=False)
    assert out["dataset_drift"] == (out["share"] >= 0.5)


def test_kind_inference_follows_evidently() -> None:
    """float→numeric; int ≤10 distinct→categorical; mostly-unique strings→text (skipped); bool→categorical."""
    t = pa.table(
        {
            "f": [0.5, 1.5] * 50,
            "i_low": list(range(10)) * 10,
            "i_high": list(range(100)),
            "s": ["x", "y"] * 50,
            "ids": [f"id{i}" for i in range(100)],
            "b": [True, False] * 50,
            "ts": pa.array([0] * 100, pa.timestamp("us")),
        }
    )
    kinds = {name: infer_kind(t.column(name)) for name in t.column_names}
    assert kinds == {
        "f": "numeric",
        "i_low": "categorical",
        "i_high": "numeric",
        "s": "categorical",
        "ids": "text",
        "b": "categorical",
        "ts": "unsupported",
    }
    out = compare_tables(t, t, compat="evidently")
    assert [c["column"] for c in out["columns"]] == ["f", "i_low", "i_high", "s", "b"]


def test_id_like_columns_are_skipped_with_a_note(tmp_path: Path) -> None:
    """Calibrated rule: a column of unique ids — strings read dictionary-encoded from Parquet, or
    integer keys — is not compared (it would "drift" in every file) and is listed as skipped;
    naming it explicitly still compares it."""
    rng = np.random.default_rng(3)

    def side(offset: int) -> pa.Table:
        return pa.table({
            "request_id": [f"req-{offset + i}" for i in range(2000)],
            "row_key": np.arange(offset, offset + 2000),
            "x": rng.normal(0, 1, 2000),
        })

    pq.write_table(side(0), tmp_path / "ref.parquet")
    pq.write_table(side(10_000), tmp_path / "cur.parquet")
    out = compare_tables(open_table(tmp_path / "ref.parquet"), open_table(tmp_path / "cur.parquet"))
    assert [c["column"] for c in out["columns"]] == ["x"]
    assert {s["column"]: s["reason"] for s in out["skipped"]} == {
        "request_id": "id-like: 100% of values are distinct", "row_key": "id-like: 100% of values are distinct"}
    assert out["dataset_drift"] is False
    legacy = compare_tables(open_table(tmp_path / "ref.parquet"), open_table(tmp_path / "cur.parquet"), compat="evidently")
    assert legacy["dataset_drift"] is True  # the reported bug, kept in Evidently mode
    forced = compare_tables(side(0), side(10_000), ["row_key"])
    assert forced["columns"][0]["drifted"] is True


def test_forced_method_and_threshold() -> None:
    """--method applies to the columns it fits; --threshold overrides the default. Calibrated:
    a distance method becomes the effect measure (threshold = its floor), a test method the test."""
    reference, current = _tables(3000, 2000, seed=5)
    for compat in (None, "evidently"):
        out = compare_tables(reference, current, ["normal", "category"], "psi", threshold=0.2, compat=compat)
        assert [(c["method"], c["threshold"]) for c in out["columns"]] == [("psi", 0.2), ("psi", 0.2)]
    out = compare_tables(reference, current, ["normal", "category"], "ks", compat="evidently")
    assert [c["method"] for c in out["columns"]] == ["ks", "jensenshannon"]
    out = compare_tables(reference, current, ["normal", "category"], "anderson")
    assert [(c["method"], c["test"]) for c in out["columns"]] == [("wasserstein", "anderson"), ("tvd", "chi2_homogeneity")]
    with pytest.raises(ValueError, match="unknown drift method"):
        compare_tables(reference, current, method="nope")
    with pytest.raises(ValueError, match="missing"):
        compare_tables(reference, current, ["nope"])


def test_empty_column_is_reported_not_raised() -> None:
    """A column with no usable values (all NaN) gets score None and drifted False instead of an error."""
    ref = pa.table({"x": [float("nan")] * 10, "y": [1.0, 2.0] * 5})
    out = compare_tables(ref, ref)
    x = next(c for c in out["columns"] if c["column"] == "x")
    assert x["score"] is None and x["drifted"] is False


def test_read_table_and_open_table_parquet_and_csv(tmp_path: Path) -> None:
    """Parquet and CSV give the same verdicts; Parquet strings are read dictionary-encoded."""
    reference, current = _tables(1500, 1500, seed=2)
    pq.write_table(reference, tmp_path / "ref.parquet")
    pq.write_table(current, tmp_path / "cur.parquet")
    pacsv.write_csv(reference, tmp_path / "ref.csv")
    pacsv.write_csv(current, tmp_path / "cur.csv")
    assert pa.types.is_dictionary(read_table(tmp_path / "ref.parquet").schema.field("category").type)
    from_parquet = compare_tables(open_table(tmp_path / "ref.parquet"), open_table(tmp_path / "cur.parquet"))
    from_tables = compare_tables(reference, current)
    from_csv = compare_tables(read_table(tmp_path / "ref.csv"), read_table(tmp_path / "cur.csv"))
    assert from_parquet == from_tables
    assert [c["drifted"] for c in from_csv["columns"]] == [c["drifted"] for c in from_tables["columns"]]


def test_module_cli_prints_json_and_sets_exit_code(tmp_path: Path) -> None:
    """``python -m detectors REF CUR --format json`` prints the JSON; exit 1 on dataset drift, 2 on bad input."""
    rng = np.random.default_rng(0)
    pq.write_table(pa.table({"a": rng.normal(0, 1, 2000)}), tmp_path / "ref.parquet")
    pq.write_table(pa.table({"a": rng.normal(1, 1, 2000)}), tmp_path / "cur.parquet")
    cmd = [sys.executable, "-m", "detectors", str(tmp_path / "ref.parquet"), str(tmp_path / "cur.parquet")]
    proc = subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["dataset_drift"] is True
    table = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    assert "wasserstein" in table.stdout and "dataset drift: yes" in table.stdout
    bad = subprocess.run(
        [*cmd[:3], str(tmp_path / "missing.parquet"), cmd[4]], capture_output=True, text=True, cwd=ROOT
    )
    assert bad.returncode == 2 and "error" in bad.stderr


def test_cli_path_stays_lean(tmp_path: Path) -> None:
    """The default drift path never imports pandas or scipy (each costs ~0.3–1 s of process start)."""
    reference, current = _tables(3000, 2000, seed=4)
    pq.write_table(reference, tmp_path / "ref.parquet")
    pq.write_table(current, tmp_path / "cur.parquet")
    script = (
        "import sys; from detectors.__main__ import main; "
        f"main([{str(tmp_path / 'ref.parquet')!r}, {str(tmp_path / 'cur.parquet')!r}, '--format', 'json']); "
        "sys.stderr.write(repr(sorted(m for m in ('pandas', 'scipy') if m in sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert proc.stderr.strip().endswith("[]"), proc.stderr
