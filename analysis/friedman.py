"""Friedman's rank test for a randomised complete block design, any k >= 2 (Friedman 1940)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats


@dataclass(frozen=True)
class FriedmanResult:
    """Tie-corrected Friedman chi-square over ``n`` blocks and ``k`` treatments.

    ``z``: for k = 2 the signed normal deviate of the sign test, ``(n+ - n-) / sqrt(n+ + n-)``
    (``chi2 = z^2``, positive when the first treatment ranks higher); NaN for k > 2.
    ``n_all_tied``: blocks whose values are all equal (they carry no information);
    ``n_tied``: blocks with at least one tie.
    """

    statistic: float
    df: int
    pvalue: float
    n: int
    k: int
    kendall_w: float
    mean_ranks: tuple[float, ...]
    z: float
    n_all_tied: int
    n_tied: int


def friedman_chi2(blocks: ArrayLike) -> np.ndarray:
    """The tie-corrected statistic over the last two axes of ``(..., n blocks, k treatments)``.

    ``chi2 = [12 / (n k (k+1)) sum_j R_j^2 - 3 n (k+1)] / [1 - sum(t^3 - t) / (n (k^3 - k))]``
    with ``R_j`` the rank sum of treatment j and ``t`` the sizes of tie groups within blocks.
    The tie sum is read off the midranks: in a block, ``sum(t^3 - t) = 12 (sum_{i<=k} i^2 -
    sum_j r_j^2)`` (a tie group of size t at midrank r loses t (t^2 - 1) / 12 of squared rank).
    NaN where every block is all ties. Vectorised, so simulations can test many data sets at once.
    """
    data = np.asarray(blocks, dtype=float)
    n, k = data.shape[-2:]
    ranks = stats.rankdata(data, axis=-1)
    rank_sums = ranks.sum(axis=-2)
    ties = 12.0 * (n * k * (k + 1) * (2 * k + 1) / 6.0 - (ranks**2).sum(axis=(-2, -1)))
    raw = 12.0 / (n * k * (k + 1)) * (rank_sums**2).sum(axis=-1) - 3.0 * n * (k + 1)
    denominator = 1.0 - ties / (n * (k**3 - k))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 1e-12, raw / denominator, np.nan)


def friedman(blocks: ArrayLike) -> FriedmanResult:
    """Friedman test of an ``(n blocks, k treatments)`` array; ranks averaged over ties in a block.

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
    statistic = float(friedman_chi2(data))
    mean_ranks = stats.rankdata(data, axis=1).mean(axis=0)
    pvalue = float(stats.chi2.sf(statistic, k - 1)) if np.isfinite(statistic) else float("nan")
    distinct = np.array([np.unique(row).size for row in data])
    z = float(np.sign(mean_ranks[0] - mean_ranks[1]) * np.sqrt(statistic)) if k == 2 else np.nan
    return FriedmanResult(
        statistic=statistic,
        df=k - 1,
        pvalue=pvalue,
        n=n,
        k=k,
        kendall_w=float(statistic / (n * (k - 1))),
        mean_ranks=tuple(float(r) for r in mean_ranks),
        z=z,
        n_all_tied=int(np.sum(distinct == 1)),
        n_tied=int(np.sum(distinct < k)),
    )
