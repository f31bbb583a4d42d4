"""All-pairs comparisons after a Friedman test with k >= 3 treatments, and Demsar's CD.

- Nemenyi (Nemenyi 1963; Demsar 2006, sec. 3.2.2): ``q = |Rbar_i - Rbar_j| / sqrt(k (k+1) /
  (6 n))`` on mean ranks, ``p = P(Q_{k,inf} >= sqrt(2) q)`` from the studentized range, which
  controls the family-wise error over the k (k-1) / 2 pairs by itself (no further correction).
  The critical difference is ``CD = q_alpha / sqrt(2) * sqrt(k (k+1) / (6 n))``; two treatments
  whose mean ranks differ by less than CD are not significantly different. (No tie correction,
  as in R's PMCMRplus ``frdAllPairsNemenyiTest`` and scikit-posthocs.)
- Conover (Conover 1999, p. 371; PMCMRplus ``frdAllPairsConoverTest``): a t statistic on rank
  sums with the residual rank variance, ``df = (n-1)(k-1)``, two-sided, then Holm over the pairs.

The p-values come from scikit-posthocs (``posthoc_nemenyi_friedman``, ``posthoc_conover_friedman``);
the statistics beside them (q, t) are the closed forms above, for the report.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scikit_posthocs
from numpy.typing import ArrayLike
from scipy import stats

from analysis.correction import adjust


@dataclass(frozen=True)
class PairwiseResult:
    """One pair (``first``, ``second`` are column indices) of an all-pairs post-hoc test."""

    first: int
    second: int
    rank_difference: float
    nemenyi_q: float
    nemenyi_p: float
    conover_t: float
    conover_p: float
    conover_p_holm: float


def critical_difference(k: int, n: int, alpha: float = 0.05) -> float:
    """Demsar's Nemenyi critical difference of mean ranks for k treatments over n blocks."""
    q_alpha = stats.studentized_range.ppf(1.0 - alpha, k, np.inf) / np.sqrt(2.0)
    return float(q_alpha * np.sqrt(k * (k + 1) / (6.0 * n)))


def all_pairs(blocks: ArrayLike) -> list[PairwiseResult]:
    """Nemenyi and Conover (with Holm over the k (k-1) / 2 pairs) for ``(n blocks, k)`` data."""
    data = np.asarray(blocks, dtype=float)
    n, k = data.shape
    if k < 3 or n < 2:
        raise ValueError(
            f"blocks: post-hoc tests need >= 2 blocks and >= 3 treatments, got {n}, {k}"
        )
    ranks = stats.rankdata(data, axis=1)
    sums = ranks.sum(axis=0)
    means = sums / n
    pairs = list(combinations(range(k), 2))
    diff = np.array([means[i] - means[j] for i, j in pairs])
    q = np.abs(diff) / np.sqrt(k * (k + 1) / (6.0 * n))
    nemenyi = scikit_posthocs.posthoc_nemenyi_friedman(data).to_numpy()
    conover = scikit_posthocs.posthoc_conover_friedman(data).to_numpy()
    nemenyi_p = np.array([nemenyi[i, j] for i, j in pairs])
    conover_p = np.array([conover[i, j] for i, j in pairs])
    s2 = (np.sum(ranks**2) - n * k * (k + 1) ** 2 / 4.0) / (k - 1)
    t2 = np.sum((sums - n * (k + 1) / 2.0) ** 2) / s2
    scale = np.sqrt(2.0 * n * s2 / (n - 1) * (1.0 - t2 / (n * (k - 1))))
    with np.errstate(divide="ignore"):
        t = np.abs(np.array([sums[i] - sums[j] for i, j in pairs])) / scale
    holm = adjust(conover_p, "holm")
    return [
        PairwiseResult(i, j, float(d), float(qq), float(pn), float(tt), float(pc), float(ph))
        for (i, j), d, qq, pn, tt, pc, ph in zip(
            pairs, diff, q, nemenyi_p, t, conover_p, holm, strict=True
        )
    ]


def cliques(mean_ranks: ArrayLike, cd: float) -> list[tuple[int, ...]]:
    """Maximal groups of treatments (indices, by increasing mean rank) spanning less than ``cd``:
    the bars of a critical-difference diagram. Groups of one are left out."""
    ranks = np.asarray(mean_ranks, dtype=float)
    order = np.argsort(ranks, kind="stable")
    groups: list[tuple[int, ...]] = []
    for start in range(order.size):
        members = tuple(int(j) for j in order[start:] if ranks[j] - ranks[order[start]] < cd)
        if len(members) > 1 and not (groups and set(members) <= set(groups[-1])):
            groups.append(members)
    return groups
