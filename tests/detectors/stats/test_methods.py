"""Every drift method and the default selection reproduce Evidently 0.7's stattests."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from detectors.stats.methods import METHODS, default_method, get_method
from detectors.stats.summary import CategoricalSummary, NumericSummary

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from evidently.legacy.calculations.stattests import registry
    from evidently.legacy.core import ColumnType

# Evidently's anderson/chisquare emit scipy warnings (capped p-values, division by zero).
pytestmark = pytest.mark.filterwarnings("ignore")

NUM_METHODS = ["wasserstein", "ks", "psi", "jensenshannon", "anderson", "chisquare", "z"]
CAT_METHODS = ["chisquare", "psi", "jensenshannon", "z"]


def _evidently(name: str, ref: np.ndarray, cur: np.ndarray, kind: ColumnType) -> tuple[float, bool]:
    stattest = registry.get_registered_stattest(name, ColumnType.Categorical if name in ("chisquare", "z") else kind)
    result = stattest(pd.Series(ref), pd.Series(cur), kind, None)
    return float(result.drift_score), bool(result.drifted)


def _numeric_cases() -> list[tuple[str, np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(42)
    return [
        ("continuous", rng.normal(0, 1, 700), rng.normal(0.2, 1.1, 500)),
        ("many_values_sturges", rng.uniform(0, 10, 900), rng.uniform(0.5, 10.5, 400)),
        ("few_values", rng.choice([1.0, 2.0, 3.0], 800), rng.choice([1.0, 2.0, 3.0, 4.0], 300)),
        ("binary", rng.choice([0.0, 1.0], 600), rng.choice([0.0, 1.0], 300, p=[0.4, 0.6])),
        ("ties", np.round(rng.normal(0, 1, 900), 1), np.round(rng.normal(0, 1, 900), 1)),
    ]


@pytest.mark.parametrize(
    ("method", "case"),
    [(m, c[0]) for m in NUM_METHODS for c in _numeric_cases() if m != "z" or c[0] == "binary"],
)
def test_numeric_methods_match_evidently(method: str, case: str) -> None:
    """Score and verdict of each numeric method equal Evidently's on the same samples."""
    _, ref, cur = next(c for c in _numeric_cases() if c[0] == case)
    score, drifted = _evidently(method, ref, cur, ColumnType.Numerical)
    out = METHODS[method].compute(NumericSummary.from_values(ref), NumericSummary.from_values(cur))
    assert out.score == pytest.approx(score, rel=1e-9, abs=1e-300)
    assert METHODS[method].is_drift(out.score, METHODS[method].default_threshold) == drifted


@pytest.mark.parametrize("method", CAT_METHODS)
def test_categorical_methods_match_evidently(method: str) -> None:
    """Categorical methods (incl. a category new in the current sample) equal Evidently's."""
    rng = np.random.default_rng(1)
    ref = rng.choice(["a", "b", "c"], 900, p=[0.5, 0.3, 0.2])
    cur = rng.choice(["a", "b", "c", "d"], 700, p=[0.4, 0.3, 0.2, 0.1])
    if method == "z":
        ref, cur = ref[ref != "c"], cur[np.isin(cur, ["a", "b"])]
    score, drifted = _evidently(method, ref, cur, ColumnType.Categorical)
    out = METHODS[method].compute(
        CategoricalSummary.from_values(pa.array(ref)), CategoricalSummary.from_values(pa.array(cur))
    )
    assert out.score == pytest.approx(score, rel=1e-9, abs=1e-300)
    assert METHODS[method].is_drift(out.score, METHODS[method].default_threshold) == drifted


def test_boolean_z_test_matches_evidently() -> None:
    """Booleans are categorical; the z-test compares the share of True like Evidently does."""
    rng = np.random.default_rng(3)
    ref, cur = rng.random(500) < 0.5, rng.random(400) < 0.6
    score, _ = _evidently("z", ref, cur, ColumnType.Categorical)
    out = METHODS["z"].compute(
        CategoricalSummary.from_values(pa.array(ref)), CategoricalSummary.from_values(pa.array(cur))
    )
    assert out.score == pytest.approx(score, rel=1e-12)


@pytest.mark.parametrize("n_ref", [10, 1000, 1001, 5000])
@pytest.mark.parametrize("n_values", [1, 2, 3, 5, 6, 50])
def test_default_selection_is_evidentlys(n_ref: int, n_values: int) -> None:
    """default_method picks the same test as Evidently's _get_default_stattest for numeric and categorical."""
    rng = np.random.default_rng(n_ref + n_values)
    ref = rng.integers(0, n_values, n_ref).astype(float)
    cur = rng.integers(0, n_values, 300).astype(float)
    for kind, ev_kind, summary in (
        ("numeric", ColumnType.Numerical, NumericSummary.from_values),
        ("categorical", ColumnType.Categorical, lambda x: CategoricalSummary.from_values(pa.array(x.astype(int)))),
    ):
        expected = registry._get_default_stattest(pd.Series(ref), pd.Series(cur), ev_kind).name
        assert default_method(kind, summary(ref), summary(cur)).name == {"TVD": "tvd"}.get(expected, expected)


def test_method_lookup_accepts_aliases_and_rejects_typos() -> None:
    """Aliases resolve; an unknown name raises with the list of choices."""
    assert get_method("JS").name == "jensenshannon"
    assert get_method("chi2").name == "chisquare"
    with pytest.raises(ValueError, match="choose one of"):
        get_method("kolmogorov")
