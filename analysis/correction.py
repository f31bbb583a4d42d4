"""Multiple-comparison correction across one test's comparisons (Holm 1979, Bonferroni).

The family is what the spec declares: a comparison that yields no p-value (a condition missing,
all differences zero) stays in it, so m is the number of declared comparisons, not the number
computed. Its p-value is taken as 1 for the correction (it is never rejected) and its adjusted
p-value is reported as NaN; for the computed ones this gives exactly the adjustment at the
declared m (a p of 1 sorts last and only ever multiplies by 1 in Holm's step-down).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

CORRECTIONS = ("holm", "bonferroni", "none")


def adjust(pvalues: ArrayLike, method: str) -> np.ndarray:
    """Adjusted p-values in input order at m = ``len(pvalues)``; a NaN counts in m, stays NaN.

    ``holm``: ``p_(i) -> max_{j<=i} min(1, (m - j + 1) p_(j))`` (step-down); ``bonferroni``:
    ``min(1, m p)``; ``none``: unchanged. (R's ``p.adjust`` drops NAs before counting m; here the
    declared family size is kept on purpose.)
    """
    if method not in CORRECTIONS:
        raise ValueError(f"correction: {method!r} is not one of {', '.join(CORRECTIONS)}")
    p = np.asarray(pvalues, dtype=float).copy()
    missing = np.isnan(p)
    if method == "none" or p.size < 2:  # m <= 1: every rule leaves p unchanged
        return p
    m = p.size
    filled = np.where(missing, 1.0, p)
    if method == "bonferroni":
        adjusted = np.minimum(1.0, m * filled)
    else:
        order = np.argsort(filled, kind="stable")
        steps = np.minimum(1.0, (m - np.arange(m)) * filled[order])
        adjusted = np.empty(m)
        adjusted[order] = np.maximum.accumulate(steps)
    return np.where(missing, np.nan, adjusted)


def reject(adjusted: ArrayLike, alpha: float) -> np.ndarray:
    """``adjusted <= alpha`` (False where the p-value is NaN)."""
    p = np.asarray(adjusted, dtype=float)
    return np.where(np.isnan(p), False, p <= alpha)


def rule(method: str, m: int, alpha: float) -> str:
    """The decision rule in words, with the family size m and the per-comparison threshold.

    ``bonferroni (m=3): p <= alpha/m = 0.05/3 = 0.0167 (adjusted p = min(1, 3 p) <= 0.05)``.
    """
    if method == "none" or m <= 1:
        return f"{method} (m={m}): p <= {alpha:g} (no correction)"
    if method == "bonferroni":
        return (
            f"bonferroni (m={m}): p <= alpha/m = {alpha:g}/{m} = {alpha / m:.3g} "
            f"(adjusted p = min(1, {m} p) <= {alpha:g})"
        )
    return (
        f"holm step-down (m={m}): the i-th smallest p is compared with {alpha:g}/({m} - i + 1), "
        f"stopping at the first that fails (adjusted p <= {alpha:g})"
    )
