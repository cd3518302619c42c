"""Seeded data for measuring drift verdicts: columns of several shapes and cardinalities, a
segment column, no-change windows and the shifts on-call cares about.

Used by ``bench/alert_quality.py`` (the full table) and by the calibration tests (a few
hundred small trials), so both measure the same scenarios.

Columns (``SPEC`` declares their kinds):

* numeric: ``normal`` N(0, 1), ``lognormal`` (σ = 1, heavy right tail), ``bimodal`` (two
  normals at ±2), ``uniform``, ``poisson`` (λ = 3: ~12 integer values, judged as discrete);
* categorical: ``binary`` (30% "yes"), ``cat4``, ``cat20`` and ``cat300`` (Zipf-like shares,
  so the 300-category column has many rare categories), and the boolean ``flag`` (20% true);
* segment ``region`` with three values (50/30/20%).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from detectors import ModelSpec

NUMERIC = ("normal", "lognormal", "bimodal", "uniform", "poisson")
CATEGORICAL = ("binary", "cat4", "cat20", "cat300", "flag")
SPEC = ModelSpec(
    task="regression",
    features={
        **{name: "numeric" for name in NUMERIC},
        **{name: "categorical" for name in CATEGORICAL if name != "flag"},
        "flag": "boolean",
    },
    segments=("region",),
    name="quality",
)
REGIONS = np.array(["eu", "us", "apac"])
REGION_SHARES = np.array([0.5, 0.3, 0.2])


def zipf_shares(k: int, exponent: float = 1.0) -> np.ndarray:
    """Shares ∝ 1 / rank^exponent over ``k`` categories."""
    raw = 1.0 / np.arange(1, k + 1) ** exponent
    return raw / raw.sum()


def _categories(k: int) -> np.ndarray:
    return np.array([f"c{i:03d}" for i in range(k)])


CAT_SHARES = {"cat4": np.array([0.4, 0.3, 0.2, 0.1]), "cat20": zipf_shares(20), "cat300": zipf_shares(300)}


@dataclass(frozen=True)
class Shift:
    """A change applied to the current window: which column moves, and a short name for tables."""

    name: str
    column: str
    apply: Callable[[np.random.Generator, int, dict[str, np.ndarray]], None]


def _draw_categorical(rng: np.random.Generator, n: int, shares: np.ndarray) -> np.ndarray:
    return _categories(shares.size)[rng.choice(shares.size, size=n, p=shares)]


def window(rng: np.random.Generator, n: int, shift: Shift | None = None, columns: tuple[str, ...] | None = None) -> pa.Table:
    """One seeded window of ``n`` rows (optionally only some columns), with ``shift`` applied."""
    wanted = columns or (*NUMERIC, *CATEGORICAL)
    data: dict[str, np.ndarray] = {}
    for name in wanted:
        if name == "normal":
            data[name] = rng.normal(0.0, 1.0, n)
        elif name == "lognormal":
            data[name] = rng.lognormal(0.0, 1.0, n)
        elif name == "bimodal":
            data[name] = rng.normal(0.0, 0.7, n) + rng.choice([-2.0, 2.0], n)
        elif name == "uniform":
            data[name] = rng.uniform(0.0, 10.0, n)
        elif name == "poisson":
            data[name] = rng.poisson(3.0, n).astype(np.float64)
        elif name == "binary":
            data[name] = np.where(rng.random(n) < 0.3, "yes", "no")
        elif name == "flag":
            data[name] = rng.random(n) < 0.2
        else:
            data[name] = _draw_categorical(rng, n, CAT_SHARES[name])
    if shift is not None:
        shift.apply(rng, n, data)
    data["region"] = REGIONS[rng.choice(3, size=n, p=REGION_SHARES)]
    return pa.table(data)


def _mean_shift(sigmas: float, column: str = "normal") -> Callable[[np.random.Generator, int, dict[str, np.ndarray]], None]:
    def apply(rng: np.random.Generator, n: int, data: dict[str, np.ndarray]) -> None:
        data[column] = data[column] + sigmas * float(np.std(data[column]))

    return apply


def _move_share(column: str, points: float) -> Callable[[np.random.Generator, int, dict[str, np.ndarray]], None]:
    """Move ``points`` of share from the most common category to the second most common."""

    def apply(rng: np.random.Generator, n: int, data: dict[str, np.ndarray]) -> None:
        shares = CAT_SHARES[column].copy()
        shares[0] -= points
        shares[1] += points
        data[column] = _draw_categorical(rng, n, shares)

    return apply


def _binary_share(share: float) -> Callable[[np.random.Generator, int, dict[str, np.ndarray]], None]:
    def apply(rng: np.random.Generator, n: int, data: dict[str, np.ndarray]) -> None:
        data["binary"] = np.where(rng.random(n) < share, "yes", "no")

    return apply


#: The shifts the issue names (targets at 5k / 5k: each caught in ≥ 80% of windows).
SHIFTS = (
    Shift("mean +0.2σ (normal)", "normal", _mean_shift(0.2)),
    Shift("10 points between the top two of 20 categories", "cat20", _move_share("cat20", 0.10)),
    Shift("10 points between the top two of 4 categories", "cat4", _move_share("cat4", 0.10)),
    Shift("binary share 30% → 40%", "binary", _binary_share(0.4)),
)
#: Changes too small to matter: established on huge windows, never ``critical``.
TINY_SHIFT = Shift("mean +0.01σ (normal)", "normal", _mean_shift(0.01))
