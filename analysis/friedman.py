"""Friedman's rank test for a randomised complete block design, any k >= 2 (Friedman 1940)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class FriedmanResult:
    """Tie-corrected Friedman chi-square over ``n`` blocks and ``k`` treatments."""

    statistic: float
    df: int
    pvalue: float
    n: int
    k: int
    kendall_w: float
    mean_ranks: tuple[float, ...]


def friedman(blocks: ArrayLike) -> FriedmanResult:
    """Friedman test of an ``(n blocks, k treatments)`` array; ranks averaged over ties in a block.

    ``chi2 = [12 / (n k (k+1)) sum_j R_j^2 - 3 n (k+1)] / [1 - sum(t^3 - t) / (n (k^3 - k))]``
    with ``R_j`` the rank sum of treatment j and ``t`` the sizes of tie groups within blocks;
    ``p = chi2_{k-1}.sf(chi2)`` and Kendall's ``W = chi2 / (n (k-1))``. This is R's
    ``friedman.test``; it equals ``scipy.stats.friedmanchisquare`` for k >= 3 and, for k = 2, the
    sign-test chi-square ``(n+ - n-)^2 / (n+ + n-)``. If every block is all ties the statistic is
    undefined (NaN).
    """
    data = np.asarray(blocks, dtype=float)
    if data.ndim != 2:
        raise ValueError(
            f"blocks: expected a 2-D array (blocks x treatments), got shape {data.shape}"
        )
    n, k = data.shape
    if n < 1 or k < 2:
        raise ValueError(f"blocks: need >= 1 block and >= 2 treatments, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("blocks: values must be finite (drop incomplete blocks first)")
    ranks = stats.rankdata(data, axis=1)
    rank_sums = ranks.sum(axis=0)
    ties = sum(
        float(np.sum(c**3 - c)) for c in (np.unique(row, return_counts=True)[1] for row in data)
    )
    raw = 12.0 / (n * k * (k + 1)) * float(np.sum(rank_sums**2)) - 3.0 * n * (k + 1)
    denominator = 1.0 - ties / (n * (k**3 - k))
    statistic = raw / denominator if denominator > 0 else float("nan")
    pvalue = float(stats.chi2.sf(statistic, k - 1)) if denominator > 0 else float("nan")
    return FriedmanResult(
        statistic=float(statistic),
        df=k - 1,
        pvalue=pvalue,
        n=n,
        k=k,
        kendall_w=float(statistic / (n * (k - 1))),
        mean_ranks=tuple(float(r) for r in rank_sums / n),
    )
