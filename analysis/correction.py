"""Multiple-comparison correction across one test's comparisons (Holm 1979, Bonferroni)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

CORRECTIONS = ("holm", "bonferroni", "none")


def adjust(pvalues: ArrayLike, method: str) -> np.ndarray:
    """Adjusted p-values in input order; NaNs stay NaN and are not counted in m (R's p.adjust).

    ``holm``: ``p_(i) -> max_{j<=i} min(1, (m - j + 1) p_(j))`` (statsmodels ``method="holm"``,
    not its default "hs"); ``bonferroni``: ``min(1, m p)``; ``none``: unchanged.
    """
    if method not in CORRECTIONS:
        raise ValueError(f"correction: {method!r} is not one of {', '.join(CORRECTIONS)}")
    p = np.asarray(pvalues, dtype=float).copy()
    valid = ~np.isnan(p)
    if method == "none" or valid.sum() < 2:  # m <= 1: every rule leaves p unchanged
        return p
    # imported here: statsmodels takes ~1.5 s to import, and the runner imports this package
    # just to validate a spec's tests
    from statsmodels.stats.multitest import multipletests

    p[valid] = multipletests(p[valid], method=method)[1]
    return p


def reject(adjusted: ArrayLike, alpha: float) -> np.ndarray:
    """``adjusted <= alpha`` (False where the p-value is NaN)."""
    p = np.asarray(adjusted, dtype=float)
    return np.where(np.isnan(p), False, p <= alpha)


def rule(method: str, m: int, alpha: float) -> str:
    """The decision rule in words, e.g. ``holm (m=3): adjusted p <= 0.05``."""
    if method == "none":
        return f"none (m={m}): p <= {alpha:g}"
    return f"{method} (m={m}): adjusted p <= {alpha:g}"
