"""Candidate against champion on the same samples: paired proportions.

A release gate compares two model versions on one evaluation set, so each sample gives a
*pair* of outcomes (e.g. "caught this braking event" for candidate and champion). Treating the
two rates as independent samples (``newcombe_difference``) ignores that pairing and gives
intervals that are far too wide when the models mostly agree. The textbook tools for paired
binary data are used instead:

* :func:`newcombe_paired_difference` — Newcombe's hybrid score interval for the difference of
  paired proportions (R. G. Newcombe, "Improved confidence intervals for the difference between
  binomial proportions based on paired data", Statistics in Medicine 17:2635–2650, 1998,
  method 10): the two Wilson intervals combined with the pairs' phi correlation. Good coverage
  at small n and near 0 or 1, unlike the Wald interval.
* :func:`mcnemar_exact_p` — McNemar's test in its exact (conditional binomial) form: under "no
  difference" each discordant pair is equally likely to favour either model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.stats import binomtest

from detectors.stats.intervals import wilson


@dataclass(frozen=True)
class PairedCounts:
    """The 2×2 table of paired outcomes: ``first``/``second`` are the two models' successes."""

    both: int  # success for both
    first_only: int  # success for the first (e.g. the candidate) only
    second_only: int  # success for the second (e.g. the champion) only
    neither: int

    @property
    def n(self) -> int:
        return self.both + self.first_only + self.second_only + self.neither

    @property
    def first_rate(self) -> float:
        return (self.both + self.first_only) / self.n if self.n else float("nan")

    @property
    def second_rate(self) -> float:
        return (self.both + self.second_only) / self.n if self.n else float("nan")

    @classmethod
    def from_outcomes(cls, first: Sequence[bool] | np.ndarray, second: Sequence[bool] | np.ndarray) -> PairedCounts:
        """The table of two boolean outcome vectors over the same samples (lists or arrays)."""
        a, b = np.asarray(first, dtype=bool), np.asarray(second, dtype=bool)
        if a.shape != b.shape:
            raise ValueError("paired outcomes need the same samples on both sides")
        return cls(
            both=int((a & b).sum()),
            first_only=int((a & ~b).sum()),
            second_only=int((~a & b).sum()),
            neither=int((~a & ~b).sum()),
        )


def newcombe_paired_difference(counts: PairedCounts, confidence: float = 0.95) -> tuple[float, float, float]:
    """First rate − second rate and Newcombe's (1998, method 10) score interval for it.

    ``(nan, -1, 1)`` without samples. The phi coefficient is set to 0 when a margin of the
    table is empty (the formula's denominator vanishes; the interval is then the unpaired one).

    >>> [round(x, 4) for x in newcombe_paired_difference(PairedCounts(12, 9, 2, 21))]
    [0.1591, 0.0182, 0.2892]
    """
    n = counts.n
    if n == 0:
        return float("nan"), -1.0, 1.0
    p1, p2 = counts.first_rate, counts.second_rate
    l1, u1 = wilson(counts.both + counts.first_only, n, confidence)
    l2, u2 = wilson(counts.both + counts.second_only, n, confidence)
    a, b, c, d = counts.both, counts.first_only, counts.second_only, counts.neither
    margins = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(margins) if margins > 0 else 0.0
    diff = p1 - p2
    below = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    above = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = diff - math.sqrt(max(below, 0.0))
    high = diff + math.sqrt(max(above, 0.0))
    return diff, max(low, -1.0), min(high, 1.0)


def mcnemar_exact_p(counts: PairedCounts, alternative: str = "two-sided") -> float:
    """Exact McNemar p-value: the first model's share of the discordant pairs against ½.

    ``alternative`` is ``"two-sided"``, ``"greater"`` (the first model better) or ``"less"``;
    1.0 when no pair is discordant.

    >>> round(mcnemar_exact_p(PairedCounts(12, 9, 2, 21), "greater"), 4)
    0.0327
    """
    discordant = counts.first_only + counts.second_only
    if discordant == 0:
        return 1.0
    return float(binomtest(counts.first_only, discordant, 0.5, alternative=alternative).pvalue)
