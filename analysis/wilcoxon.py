"""Wilcoxon signed-rank test on paired values (Wilcoxon 1945) with its effect sizes.

W and the asymptotic p-value (and z) come from ``scipy.stats.wilcoxon`` with every variant passed
explicitly. Exact p-values are computed here, from the tails of the exact distribution of W+ over
the 2^n sign flips of the observed ranks (:func:`conditional_pmf`): with untied, non-zero
differences that is Wilcoxon's exact distribution; with ties or zeros it is the exact permutation
(conditional) distribution given the midranks, which scipy's ``method="exact"`` does not compute
(it uses the untied table, 11-41% off in our checks) and scipy's ``auto`` only enumerates for
n <= 13. Tails are summed from the pmf, never ``1 - cdf``: scipy <= 1.17.1 returns 0 for 100
pairs of one sign instead of 2 / 2^100 = 1.58e-30 (scipy#26026).

Zero differences: the test follows ``zero_method``; the Hodges-Lehmann shift and its interval
always use every complete pair, zeros included (the interval is the set of shifts theta the test
of ``d - theta`` does not reject, and for theta off the data there are no zeros, so the zero
convention does not enter). R's ``wilcox.test(conf.int = TRUE)`` drops zero differences first,
so with zeros its estimate differs from ours.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

ZERO_METHODS = ("wilcox", "pratt", "zsplit")
METHODS = ("auto", "exact", "asymptotic")
ALTERNATIVES = ("two-sided", "less", "greater")
#: Differences are rounded to this many decimals so that float noise in x - y creates no
#: spurious non-zeros or non-ties (scipy's docs advise passing rounded differences).
DIFFERENCE_DECIMALS = 12
#: What each resolved method means, for the report.
METHOD_TEXT = {
    "exact": "exact (Wilcoxon's null distribution; no ties, no zeros)",
    "permutation": "exact permutation distribution given the tied ranks and zeros "
    "(all 2^n sign flips)",
    "asymptotic": "normal approximation (tie-corrected variance)",
}


@dataclass(frozen=True)
class SignedRankResult:
    """Signed-rank test of ``first - second``; the variant that was actually used is recorded.

    ``statistic`` is scipy's: min(W+, W-) two-sided, W+ one-sided. ``n_pairs`` complete pairs,
    ``n_zero`` of them with zero difference, ``n`` differences ranked (``n_pairs - n_zero`` under
    ``wilcox``), ``n_tied`` non-zero differences whose absolute value another one shares.
    ``z`` is the normal deviate (NaN unless asymptotic), positive when first > second.
    ``rank_biserial`` is the matched-pairs rank-biserial ``(W+ - W-) / (W+ + W-)``.
    ``hl_shift`` is the Hodges-Lehmann estimate (median of the Walsh averages of all ``n_pairs``
    differences, zeros included), ``ci_low``/``ci_high`` its ``confidence`` interval from
    Walsh-average order statistics.
    """

    statistic: float
    pvalue: float
    n: int
    n_pairs: int
    n_zero: int
    n_tied: int
    w_plus: float
    w_minus: float
    z: float
    rank_biserial: float
    hl_shift: float
    ci_low: float
    ci_high: float
    ci_method: str
    method: str
    zero_method: str
    continuity: bool
    alternative: str


def signed_rank_pmf(n: int) -> np.ndarray:
    """``P(W+ = t)`` for ``t = 0 .. n(n+1)/2`` under H0, n untied non-zero differences."""
    if n < 0:
        raise ValueError(f"n: must be >= 0, got {n}")
    return conditional_pmf(np.arange(1, n + 1))[::2]


def conditional_pmf(ranks: ArrayLike) -> np.ndarray:
    """``P(2 W+ = t)``, t = 0 .. 2 sum(ranks), when each rank's sign is + or - with probability 1/2.

    ``ranks`` are the (mid)ranks of the differences whose sign may flip; doubled they are
    integers, so the distribution is exact. Dynamic programme over the ranks:
    ``pmf_r(t) = (pmf_{r-1}(t) + pmf_{r-1}(t - 2 rank_r)) / 2``.
    """
    doubled = np.rint(2.0 * np.asarray(ranks, dtype=float)).astype(int)
    pmf = np.zeros(int(doubled.sum()) + 1)
    pmf[0] = 1.0
    for r in doubled:
        shifted = pmf.copy()
        shifted[r:] += pmf[: pmf.size - r]
        pmf = shifted / 2.0
    return pmf


def exact_pvalue(w_plus: float, ranks: ArrayLike, alternative: str = "two-sided") -> float:
    """Exact p of ``W+`` (the sum of the positive ``ranks``), each tail summed from the pmf.

    Two-sided ``p = min(1, 2 min(P(W+ <= w), P(W+ >= w)))`` (the distribution is symmetric).
    """
    _check_choice("alternative", alternative, ALTERNATIVES)
    pmf = conditional_pmf(ranks)
    t = int(np.rint(2.0 * w_plus))
    lower, upper = float(pmf[: t + 1].sum()), float(pmf[t:].sum())
    if alternative == "less":
        return lower
    if alternative == "greater":
        return upper
    return min(1.0, 2.0 * min(lower, upper))


def resolve_method(method: str, n_pairs: int, has_ties: bool, has_zeros: bool) -> str:
    """What ``method`` means for these data: ``exact``, ``permutation`` or ``asymptotic``.

    ``auto`` is scipy 1.17's rule: asymptotic if n > 50; exact if no ties and no zeros; the exact
    permutation distribution if n <= 13; asymptotic otherwise. ``exact`` with ties or zeros is
    the exact permutation distribution (any n), never the untied table.
    """
    _check_choice("method", method, METHODS)
    untied = not (has_ties or has_zeros)
    if method == "exact":
        return "exact" if untied else "permutation"
    if method == "asymptotic":
        return "asymptotic"
    if n_pairs > 50:
        return "asymptotic"
    if untied:
        return "exact"
    return "permutation" if n_pairs <= 13 else "asymptotic"


def signed_rank(
    first: ArrayLike,
    second: ArrayLike,
    *,
    zero_method: str = "wilcox",
    method: str = "auto",
    continuity: bool = False,
    alternative: str = "two-sided",
    confidence: float = 0.95,
) -> SignedRankResult:
    """Wilcoxon signed-rank test of paired ``first`` and ``second`` (differences first - second).

    ``zero_method``: ``wilcox`` drops zero differences before ranking; ``pratt`` ranks them, then
    drops their ranks; ``zsplit`` splits their ranks between W+ and W-. ``continuity`` shifts the
    normal z by 0.5 (asymptotic only). The Hodges-Lehmann interval uses the exact signed-rank
    distribution when the test is exact or a permutation test, else its normal approximation.
    """
    _check_choice("zero_method", zero_method, ZERO_METHODS)
    _check_choice("method", method, METHODS)
    _check_choice("alternative", alternative, ALTERNATIVES)
    if not isinstance(continuity, bool):
        raise ValueError(f"continuity: expected true or false, got {continuity!r}")
    x, y = np.asarray(first, dtype=float), np.asarray(second, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(
            f"first, second: need two 1-D arrays of one length, got {x.shape}, {y.shape}"
        )
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ValueError("first, second: values must be finite (drop incomplete pairs first)")
    d = np.round(x - y, DIFFERENCE_DECIMALS)
    zeros = d == 0
    if zeros.all():
        raise ValueError("first, second: no non-zero differences")
    used = d[~zeros] if zero_method == "wilcox" else d
    ranks = stats.rankdata(np.abs(used))
    zero_half = ranks[used == 0].sum() / 2.0 if zero_method == "zsplit" else 0.0
    w_plus = float(ranks[used > 0].sum() + zero_half)
    w_minus = float(ranks[used < 0].sum() + zero_half)
    nonzero = np.abs(d[~zeros])
    counts = np.unique(nonzero, return_counts=True)[1]
    n_tied = int(counts[counts > 1].sum())
    resolved = resolve_method(method, d.size, n_tied > 0, bool(zeros.any()))
    z = float("nan")
    if resolved == "asymptotic":
        res = stats.wilcoxon(
            d,
            zero_method=zero_method,
            correction=continuity,
            alternative=alternative,
            method="asymptotic",
        )
        statistic, pvalue = float(res.statistic), float(res.pvalue)
        z = float(res.zstatistic)
        if alternative == "two-sided":  # scipy's two-sided z is that of min(W+, W-)
            z = float(np.sign(w_plus - w_minus)) * abs(z)
    else:
        statistic = min(w_plus, w_minus) if alternative == "two-sided" else w_plus
        pvalue = exact_pvalue(w_plus - zero_half, ranks[used != 0], alternative)
    low, high, ci_method = _hodges_lehmann_ci(d, resolved != "asymptotic", confidence)
    return SignedRankResult(
        statistic=statistic,
        pvalue=pvalue,
        n=int(used.size),
        n_pairs=int(d.size),
        n_zero=int(zeros.sum()),
        n_tied=n_tied,
        w_plus=w_plus,
        w_minus=w_minus,
        z=z,
        rank_biserial=(w_plus - w_minus) / (w_plus + w_minus),
        hl_shift=float(np.median(walsh_averages(d))),
        ci_low=low,
        ci_high=high,
        ci_method=ci_method,
        method=resolved,
        zero_method=zero_method,
        continuity=continuity,
        alternative=alternative,
    )


def walsh_averages(d: ArrayLike) -> np.ndarray:
    """``(d_i + d_j) / 2`` for all ``i <= j``, sorted (n(n+1)/2 values)."""
    d = np.asarray(d, dtype=float)
    i, j = np.triu_indices(d.size)
    return np.sort((d[i] + d[j]) / 2.0)


def walsh_ci_rank(n: int, confidence: float, exact: bool, tie_sizes: ArrayLike = ()) -> int:
    """1-based rank k of the lower bound: the interval is ``[w_(k), w_(M+1-k)]``, M = n(n+1)/2.

    Exact: ``k = 1 + max{j : P(W+ <= j) <= alpha/2}`` (R's ``qsignrank(alpha/2, n)``), so the
    interval is the set of shifts the exact two-sided test does not reject. Normal approximation:
    ``k = floor(n(n+1)/4 - z sd - 1/2) + 1`` with the tie-corrected sd. 0 means no bounded interval.
    """
    alpha = 1.0 - confidence
    if exact:
        return int(np.sum(np.cumsum(signed_rank_pmf(n)) <= alpha / 2.0))
    t = np.asarray(tie_sizes, dtype=float)
    sd = np.sqrt(n * (n + 1) * (2 * n + 1) / 24.0 - np.sum(t**3 - t) / 48.0)
    k = int(np.floor(n * (n + 1) / 4.0 - stats.norm.isf(alpha / 2.0) * sd - 0.5)) + 1
    return max(k, 0)


def _hodges_lehmann_ci(d: np.ndarray, exact: bool, confidence: float) -> tuple[float, float, str]:
    """Walsh-average interval over all pairs; ties are those of the differences themselves (they
    stay tied in ``|d - theta|`` for every shift theta)."""
    ci_method = "exact" if exact else "normal approx."
    tie_sizes = np.unique(d, return_counts=True)[1]
    k = walsh_ci_rank(d.size, confidence, exact, tie_sizes)
    if k < 1:
        return float("nan"), float("nan"), f"{ci_method} (n too small)"
    walsh = walsh_averages(d)
    return float(walsh[k - 1]), float(walsh[walsh.size - k]), ci_method


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
