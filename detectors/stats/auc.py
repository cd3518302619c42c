"""ROC-AUC of one or several scorers on the same labelled rows, with DeLong's covariance.

DeLong, DeLong & Clarke-Pearson ("Comparing the areas under two or more correlated receiver
operating characteristic curves: a nonparametric approach", Biometrics 44:837–845, 1988) give
the variance of an AUC and the covariance of AUCs computed on the *same* rows from their
structural components (placement values), so a candidate and a champion can be compared paired,
without resampling. The components are computed with midranks as in Sun & Xu ("Fast
implementation of DeLong's algorithm for comparing the areas under correlated receiver
operating characteristic curves", IEEE Signal Processing Letters 21:1389–1393, 2014):
O(n log n) per scorer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata


@dataclass(frozen=True)
class DeLong:
    """AUCs of k scorers and their k×k DeLong covariance matrix."""

    auc: np.ndarray
    covariance: np.ndarray
    positives: int
    negatives: int

    def variance(self, i: int = 0) -> float:
        return float(self.covariance[i, i])

    def difference(self, i: int = 0, j: int = 1) -> tuple[float, float]:
        """AUC_i − AUC_j and the variance of that difference (paired on the same rows)."""
        var = self.covariance[i, i] + self.covariance[j, j] - 2 * self.covariance[i, j]
        return float(self.auc[i] - self.auc[j]), float(max(var, 0.0))


def delong(scores: list[np.ndarray], positive: np.ndarray) -> DeLong | None:
    """DeLong AUCs and covariance of each score vector in ``scores`` (same rows, same order)
    against the boolean ``positive``; ``None`` unless both classes are present.

    >>> y = np.array([True, True, False, False, True, False])
    >>> result = delong([np.array([0.9, 0.8, 0.3, 0.4, 0.35, 0.2])], y)
    >>> round(float(result.auc[0]), 4), round(result.variance(), 4)
    (0.8889, 0.0247)
    """
    positive = np.asarray(positive, dtype=bool)
    m, n = int(positive.sum()), int((~positive).sum())
    if m == 0 or n == 0:
        return None
    k = len(scores)
    v10 = np.empty((k, m))
    v01 = np.empty((k, n))
    aucs = np.empty(k)
    for r, score in enumerate(scores):
        s = np.asarray(score, dtype=np.float64)
        x, y = s[positive], s[~positive]
        tx, ty = rankdata(x), rankdata(y)
        tz = rankdata(np.concatenate([x, y]))
        aucs[r] = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
        v10[r] = (tz[:m] - tx) / n
        v01[r] = 1.0 - (tz[m:] - ty) / m
    s10 = np.atleast_2d(np.cov(v10)) if m > 1 else np.zeros((k, k))
    s01 = np.atleast_2d(np.cov(v01)) if n > 1 else np.zeros((k, k))
    return DeLong(aucs, s10 / m + s01 / n, m, n)
