"""How many labelled samples would decide a criterion: sample sizes at a target power.

When a gate can neither pass nor fail a criterion, the useful answer is a number: how many
labelled samples (in that slice) the labeling queue should be asked for. Both formulas take
the current estimate as the truth to plan for and use the same one-sided level as the test
that will decide:

* :func:`one_sample_proportion_n` — the score test of one proportion against a threshold
  (S.-C. Chow, J. Shao, H. Wang, *Sample Size Calculations in Clinical Research*, 2nd ed.,
  2008, §4.1; the normal approximation the Wilson interval inverts).
* :func:`paired_difference_n` — a paired difference of proportions against a non-inferiority
  margin, by Connor's approximation for McNemar-type designs (R. J. Connor, "Sample size for
  testing differences in proportions for the paired-sample design", Biometrics 43:207–211,
  1987), with the difference shifted by the margin (as in J.-p. Liu et al., "Tests for
  equivalence or non-inferiority for paired binary data", Statistics in Medicine 21:231–245,
  2002).

Both return ``None`` when no sample size decides (the estimate sits exactly on the threshold).
``tests/detectors/stats/test_sample_size.py`` checks the achieved power in seeded trials.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_NORMAL = NormalDist()


def _z(probability: float) -> float:
    return _NORMAL.inv_cdf(probability)


def one_sample_proportion_n(assumed: float, threshold: float, alpha: float, power: float = 0.8) -> int | None:
    """Samples for a one-sided score test at level ``alpha`` to tell ``assumed`` from
    ``threshold`` with probability ``power`` (in either direction: to clear a minimum the
    estimate is above, or to show a miss the estimate is below).

    >>> one_sample_proportion_n(0.90, 0.80, alpha=0.025)
    108
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be in (0, 1)")
    if assumed == threshold or not 0 <= assumed <= 1 or not 0 < threshold < 1:
        return None
    spread = _z(1 - alpha) * math.sqrt(threshold * (1 - threshold)) + _z(power) * math.sqrt(assumed * (1 - assumed))
    return math.ceil((spread / (assumed - threshold)) ** 2)


def paired_difference_n(
    first_only: float, second_only: float, margin: float, alpha: float, power: float = 0.8
) -> int | None:
    """Paired samples to show first − second > −``margin`` (non-inferiority; ``margin`` 0 is
    superiority) with probability ``power`` at one-sided level ``alpha``, where ``first_only``
    and ``second_only`` are the assumed shares of pairs only one model gets right.

    Planned for the side the estimate is on: if first − second + margin is negative, the
    samples to show *inferiority* instead. ``None`` if the shifted difference is 0 or there
    are no discordant pairs to learn from.

    >>> paired_difference_n(0.10, 0.05, margin=0.03, alpha=0.025)
    184
    """
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise ValueError("alpha and power must be in (0, 1)")
    discordant = first_only + second_only
    shifted = first_only - second_only + margin
    if discordant <= 0 or shifted == 0:
        return None
    diff = first_only - second_only
    spread = _z(1 - alpha) * math.sqrt(discordant) + _z(power) * math.sqrt(max(discordant - diff * diff, 0.0))
    return math.ceil((spread / shifted) ** 2)
