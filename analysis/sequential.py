"""Anytime-valid tests for paired bounded differences, checked after every wave of seeds (issue 17).

A comparison of two conditions gives one paired difference per seed, ``d_i`` = metric of the first
condition minus metric of the second (FG-ARI differences lie in [-1, 1]). The tests here may be
looked at after every seed or wave and stopped as soon as they decide, with the error rates of a
test looked at once: they are e-processes, and Ville's inequality (Ville 1939) bounds the
probability that a test supermartingale ever reaches ``1/alpha`` by ``alpha``.

Method: Waudby-Smith & Ramdas (2024), "Estimating means of bounded random variables by betting",
JRSS-B 86(1):1-27 (doi:10.1093/jrsssb/qkad009, arXiv:2010.09686), Section 4. The differences are
rescaled to ``x = (d - lo) / (hi - lo)`` in [0, 1], a null mean ``m`` likewise. For a predictable
bet ``lambda_i`` (a function of the seeds before seed i only) the capital processes

    K+_t(m) = prod_{i<=t} (1 + lambda+_i(m) (x_i - m)),
    K-_t(m) = prod_{i<=t} (1 - lambda-_i(m) (x_i - m))

are nonnegative martingales when the mean is ``m`` and supermartingales when the mean is at most
``m`` (K+) or at least ``m`` (K-), whatever the distribution on [0, 1]. The bets are the paper's
predictable plug-in bets for its hedged capital process (Theorem 3):

    lambda_dot_t = sqrt(2 log(2/alpha) / (sigma2_{t-1} t log(1 + t))),
    mu_t = (1/2 + sum_{i<=t} x_i) / (t + 1),
    sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1),
    lambda+_t(m) = min(lambda_dot_t, c / m),  lambda-_t(m) = min(lambda_dot_t, c / (1 - m)),

with ``sigma2_0 = 1/4`` and truncation ``c = 3/4`` (the paper suggests 1/2 or 3/4; 3/4 decides
section 3.2's effect in about 10 seeds instead of 13, tests/analysis/test_sequential.py).
The truncation keeps every factor at least ``1 - c > 0``. Equation numbers are not cited: the
formulas above are written out instead, so they can be checked against the paper.

Decisions (each at level alpha; ``differences`` in seed order, an order fixed before any result):

- difference, H0: mean = 0. E-process ``(K+_t(0) + K-_t(0)) / 2``, a test martingale (the average
  of two); a difference is declared once it has reached ``1/alpha`` at some seed. Its direction is
  the larger side, which then alone is >= ``1/alpha``, so a wrong sign has probability <= alpha too.
- equivalence within a margin delta (e.g. "beta does not matter"): K-_t(+delta) against
  H0: mean >= delta and K+_t(-delta) against H0: mean <= -delta (supermartingales under their
  composite nulls). Equivalence is declared once both have reached ``1/alpha``, each at alpha with
  no correction: the intersection-union principle (Berger 1982, Technometrics 24:295-300; Berger &
  Hsu 1996, Statistical Science 11:283-319), because a non-equivalent mean lies in one of the two
  nulls and declaring equivalence needs that null rejected, which happens with probability <=
  alpha by Ville's inequality (the sequential version of Schuirmann's TOST).
- both: a test that seeks either decision may report both; no error rate adds up, because a mean
  of 0 makes only "difference" wrong and a mean at or beyond the margin only "equivalence".

The confidence sequence is Theorem 3's hedged capital CS, ``{m : max(K+_t(m), K-_t(m)) / 2 <
1/alpha}`` (theta = 1/2), an interval (K+ falls and K- rises with m), computed on a grid of m and
widened to the neighbouring grid points, then intersected over time (its running intersection is
again a CS). Since ``max`` <= the average, a CS that excludes 0 implies a declared difference.

Several comparisons in one test: :func:`adjust_e_values` (e-Holm, Vovk & Wang 2021).

Libraries checked (December 2026) and why this is hand-written (~100 lines of numpy):

- ``confseq`` 0.0.11 (January 2023, the last release) has exactly this (``betting.hedged_cs``,
  ``betting_mart``) but is an sdist that compiles C++ (scikit-build, CMake, pybind11 2.6, Boost),
  needs ``multiprocess``, ``matplotlib`` and ``pytest`` at run time, and annotates with
  ``np.float_``, removed in NumPy 2.0: ``confseq.misc``, which ``confseq.betting`` imports, fails
  on import under the project's NumPy 2.4.
- ``expectation`` 0.6.1 (2026-09) requires Python >= 3.12 (the project supports 3.10), ships a Rust
  extension, pulls pydantic, plotly and pandas, is GPL-3.0 with an AI-training-prohibited licence
  reference, and bets on sequences of e-values; it has no bounded-mean betting CS.
- ``earlysign`` 0.2.0 (2025-09) does group-sequential alpha spending; its ``stats.means`` and
  ``stats.common.anytime_valid`` packages are empty.
- ``ville`` 0.1.0 (2026-10-14, its only release, one author) implements this very method in pure
  numpy (``BettingTest``, ``BettingCS``) but has no maintenance record yet, no equivalence test
  and no family-wise e-value procedure (its ``ebh`` controls the FDR). The tests cross-check
  against it when it is installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

DECISIONS = ("difference", "equivalence", "both")
E_CORRECTIONS = ("holm", "bonferroni", "none")
#: Bets are truncated at c / m and c / (1 - m), so every factor of the capital is >= 1 - c.
TRUNCATION = 0.75
#: Share of the initial capital on K+ (the rest on K-): the hedged capital process of Theorem 3.
THETA = 0.5
#: FG-ARI differences of two runs.
BOUNDS = (-1.0, 1.0)


@dataclass(frozen=True)
class SequentialResult:
    """The sequential tests of one comparison after ``n`` seeds, decided at the ``looks``.

    ``e_difference`` is the e-process against mean = 0 after each seed (None unless a difference is
    sought); ``e_above_margin`` the one against mean >= margin, ``e_below_margin`` against mean <=
    -margin (None unless equivalence is sought). A decision is made at the first look by which its
    e-process(es) reached ``1/alpha`` (at any seed up to the look); ``seeds_at_*`` is that look,
    None while undecided. ``direction`` is ``greater`` (first condition larger) or ``less`` once a
    difference is declared, else empty. ``decided``: every decision the test seeks is reached
    (``both``: either), so its conditions need no more seeds.
    """

    decision: str
    alpha: float
    margin: float | None
    n: int
    looks: tuple[int, ...]
    e_difference: np.ndarray | None
    e_above_margin: np.ndarray | None
    e_below_margin: np.ndarray | None
    difference: bool
    direction: str
    seeds_at_difference: int | None
    equivalence: bool
    seeds_at_equivalence: int | None
    decided: bool
    seeds_at_decision: int | None


@dataclass(frozen=True)
class SimulatedStudies:
    """Many sequential studies of one comparison (one row of differences each), seen at ``looks``.

    Per study: ``difference`` / ``equivalence`` declared by the last look, ``decided`` as in
    :class:`SequentialResult`, and ``seeds``, the seeds trained: the look at which it was decided,
    else the last look (``max_seeds``).
    """

    looks: tuple[int, ...]
    difference: np.ndarray
    equivalence: np.ndarray
    decided: np.ndarray
    seeds: np.ndarray


def plug_in_bets(x: ArrayLike, alpha: float) -> np.ndarray:
    """Predictable plug-in bets ``lambda_dot_t`` for ``x`` in [0, 1], time on the last axis.

    ``lambda_dot_t = sqrt(2 log(2/alpha) / (sigma2_{t-1} t log(1 + t)))`` with the regularised
    running variance ``sigma2_t = (1/4 + sum_{i<=t} (x_i - mu_i)^2) / (t + 1)``, ``mu_t = (1/2 +
    sum_{i<=t} x_i) / (t + 1)``, ``sigma2_0 = 1/4`` (Waudby-Smith & Ramdas 2024, the bets of their
    hedged capital CS, Theorem 3). The bet for seed t uses seeds 1..t-1 only.
    """
    x = np.asarray(x, dtype=float)
    t = np.arange(1, x.shape[-1] + 1)
    mean = (0.5 + np.cumsum(x, axis=-1)) / (t + 1)
    variance = (0.25 + np.cumsum((x - mean) ** 2, axis=-1)) / (t + 1)
    before = np.concatenate([np.full((*x.shape[:-1], 1), 0.25), variance[..., :-1]], axis=-1)
    return np.sqrt(2.0 * np.log(2.0 / alpha) / (before * t * np.log1p(t)))


def log_capital(x: ArrayLike, m: ArrayLike, bets: ArrayLike, side: int) -> np.ndarray:
    """``log K+_t(m)`` (side +1) or ``log K-_t(m)`` (side -1) after each seed (time: last axis).

    ``x`` in [0, 1]; ``m`` a null mean in [0, 1] that broadcasts against ``x``; ``bets`` the
    untruncated bets (:func:`plug_in_bets`), truncated here at ``c / m`` (K+) or ``c / (1 - m)``
    (K-) with ``c = TRUNCATION``.
    """
    x, m, bets = (np.asarray(a, dtype=float) for a in (x, m, bets))
    with np.errstate(divide="ignore"):
        cap = TRUNCATION / (m if side > 0 else 1.0 - m)
    return np.cumsum(np.log1p(side * np.minimum(bets, cap) * (x - m)), axis=-1)


def study_looks(min_seeds: int, wave: int, max_seeds: int) -> tuple[int, ...]:
    """Seed counts at which a wave design looks: ``min_seeds``, then every ``wave``, and
    ``max_seeds`` (``study_looks(3, 5, 12) == (3, 8, 12)``)."""
    if not 1 <= min_seeds <= max_seeds or wave < 1:
        raise ValueError(
            f"looks: need 1 <= min_seeds <= max_seeds and wave >= 1, got min_seeds={min_seeds}, "
            f"wave={wave}, max_seeds={max_seeds}"
        )
    return tuple(sorted({*range(min_seeds, max_seeds + 1, wave), max_seeds}))


def sequential_decision(
    differences: ArrayLike,
    alpha: float = 0.05,
    *,
    margin: float | None = None,
    decision: str = "difference",
    looks: Sequence[int] | None = None,
    bounds: tuple[float, float] = BOUNDS,
) -> SequentialResult:
    """The sequential tests of one comparison's paired ``differences`` (in seed order).

    ``decision``: ``difference`` (mean 0 rejected, either direction), ``equivalence`` (|mean| <
    ``margin``) or ``both``. ``looks``: the seed counts at which the study was checked (its waves);
    default every seed. Every difference must lie in ``bounds`` (declared before seeing the data;
    an FG-ARI can be negative, so a difference outside [-1, 1] is possible in principle and raises).
    """
    _check_decision(decision, margin)
    x = _unit(differences, bounds)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"differences: need a non-empty 1-D array, got shape {x.shape}")
    looks = tuple(range(1, x.size + 1)) if looks is None else tuple(int(k) for k in looks)
    if not looks or looks[0] < 1 or looks[-1] > x.size or np.any(np.diff(looks) <= 0):
        raise ValueError(f"looks: need increasing seed counts in 1..{x.size}, got {list(looks)}")
    paths = _log_e_paths(x, alpha, margin, decision, bounds)
    reached = _reached(paths, alpha, looks)
    at_difference = _seeds_or_none(reached.get("difference"))
    at_equivalence = _seeds_or_none(reached.get("equivalence"))
    direction = ""
    if at_difference is not None:
        first = int(np.argmax(paths["difference"] >= np.log(1.0 / alpha)))
        direction = "greater" if paths["up"][first] >= paths["down"][first] else "less"
    at_decision = _seeds_or_none(reached["decided"])
    e = {k: np.exp(paths[k]) if k in paths else None for k in ("difference", "above", "below")}
    return SequentialResult(
        decision=decision,
        alpha=alpha,
        margin=margin,
        n=int(x.size),
        looks=looks,
        e_difference=e["difference"],
        e_above_margin=e["above"],
        e_below_margin=e["below"],
        difference=at_difference is not None,
        direction=direction,
        seeds_at_difference=at_difference,
        equivalence=at_equivalence is not None,
        seeds_at_equivalence=at_equivalence,
        decided=at_decision is not None,
        seeds_at_decision=at_decision,
    )


def confidence_sequence(
    differences: ArrayLike,
    alpha: float = 0.05,
    *,
    bounds: tuple[float, float] = BOUNDS,
    grid: int = 2001,
) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` of the hedged capital CS for the mean difference after each seed.

    Waudby-Smith & Ramdas (2024), Theorem 3, with theta = 1/2 and the bets of
    :func:`plug_in_bets`: ``{m : max(K+_t(m), K-_t(m)) / 2 < 1/alpha}`` on ``grid`` equally spaced
    means over ``bounds``, widened to the neighbouring grid points (so no mean the exact set holds
    is lost; where no grid point is inside, the neighbours of the smallest capital), then the
    running intersection. ``P(the mean is ever outside) <= alpha``. Time on the last axis; leading
    axes are separate studies.
    """
    x = _unit(differences, bounds)
    m = np.linspace(0.0, 1.0, grid)
    # Axes (..., grid, seeds): every candidate mean's capital after each seed.
    bets = plug_in_bets(x, alpha)[..., None, :]
    up = log_capital(x[..., None, :], m[:, None], bets, +1)
    down = log_capital(x[..., None, :], m[:, None], bets, -1)
    log_k = np.maximum(np.log(THETA) + up, np.log1p(-THETA) + down)
    inside = log_k < np.log(1.0 / alpha)
    smallest = np.argmin(log_k, axis=-2)
    any_inside = inside.any(axis=-2)
    first = np.where(any_inside, np.argmax(inside, axis=-2), smallest)
    last = np.where(any_inside, grid - 1 - np.argmax(inside[..., ::-1, :], axis=-2), smallest)
    lower = np.maximum.accumulate(m[np.maximum(first - 1, 0)], axis=-1)
    upper = np.minimum.accumulate(m[np.minimum(last + 1, grid - 1)], axis=-1)
    lo, hi = bounds
    return lo + (hi - lo) * lower, lo + (hi - lo) * upper


def simulate_studies(
    differences: ArrayLike,
    alpha: float = 0.05,
    *,
    margin: float | None = None,
    decision: str = "difference",
    wave: int = 5,
    min_seeds: int = 5,
    bounds: tuple[float, float] = BOUNDS,
) -> SimulatedStudies:
    """Whole sequential studies at once: row s of ``differences`` (studies x max_seeds) is study
    s's differences in seed order; each looks at :func:`study_looks` ``(min_seeds, wave,
    max_seeds)`` and stops at its decision. Same decisions as :func:`sequential_decision` row by
    row (the e-processes at a seed do not depend on later seeds, so computing whole rows and
    reading them at the looks is the sequential study)."""
    _check_decision(decision, margin)
    x = _unit(differences, bounds)
    if x.ndim != 2 or x.shape[1] == 0:
        raise ValueError(f"differences: need studies x seeds, got shape {x.shape}")
    looks = study_looks(min_seeds, wave, x.shape[1])
    reached = _reached(_log_e_paths(x, alpha, margin, decision, bounds), alpha, looks)
    never = np.zeros(x.shape[0], dtype=int)
    return SimulatedStudies(
        looks=looks,
        difference=reached.get("difference", never) > 0,
        equivalence=reached.get("equivalence", never) > 0,
        decided=reached["decided"] > 0,
        seeds=np.where(reached["decided"] > 0, reached["decided"], looks[-1]),
    )


def factor_contrast(high: Sequence[ArrayLike], low: Sequence[ArrayLike]) -> np.ndarray:
    """Per seed, the mean over the conditions at a factor's high level minus the mean over those
    at its low level (each a per-seed array, seeds aligned).

    Section 3.1's 2x2 (conditions beta gamma = 11, 01, 10, 00): gamma's contrast is ``((c11 +
    c01) - (c10 + c00)) / 2``, i.e. ``factor_contrast([c11, c01], [c10, c00])``; beta's is
    ``factor_contrast([c11, c10], [c01, c00])``. With every value in [0, 1] the contrast lies in
    [-1, 1], the bounds of one paired difference, so it is tested by :func:`sequential_decision`
    unchanged: one contrast per seed is a paired bounded difference whose mean is the factor's main
    effect averaged over the other factor (the ``marginal`` blocking of :mod:`analysis.factor`).
    """
    if not high or not low:
        raise ValueError("factor_contrast: need at least one condition at each level")
    arrays = [np.asarray(a, dtype=float) for a in (*high, *low)]
    if any(a.ndim != 1 or a.shape != arrays[0].shape for a in arrays):
        raise ValueError(
            f"factor_contrast: need 1-D per-seed arrays of one length, got "
            f"{[a.shape for a in arrays]}"
        )
    return np.mean(arrays[: len(high)], axis=0) - np.mean(arrays[len(high) :], axis=0)


def adjust_e_values(e_values: ArrayLike, method: str = "holm") -> np.ndarray:
    """Adjusted e-values of a family of m hypotheses (first axis); reject H_j when its adjusted
    e-value is >= 1/alpha. Family-wise error <= alpha under any dependence between the e-values.

    ``holm``: closed testing (Marcus, Peritz & Gabriel 1976) with the arithmetic mean, the
    e-merging function that is an e-value under any dependence (Vovk & Wang 2021, "E-values:
    calibration, combination and applications", Ann. Statist. 49:1736-1754, Section 5):
    ``e*_j = min over sets I containing j of mean(e_I)``, the minimum over I of size k being j with
    the k - 1 smallest other e-values. It rejects everything ``bonferroni`` (``e_j / m``) does,
    since ``mean(e_I) >= e_j / |I| >= e_j / m``. ``none``: unchanged. Further axes (e.g. looks)
    are adjusted separately. A comparison without data counts with e-value 1 (where every
    e-process starts).
    """
    if method not in E_CORRECTIONS:
        raise ValueError(f"correction: {method!r} is not one of {', '.join(E_CORRECTIONS)}")
    e = np.asarray(e_values, dtype=float)
    if e.ndim == 0 or e.shape[0] == 0 or not np.all(np.isfinite(e)) or np.any(e < 0):
        raise ValueError(f"e_values: need finite e-values >= 0, one per hypothesis, got {e!r}")
    m = e.shape[0]
    if method == "none" or m == 1:
        return e.copy()
    if method == "bonferroni":
        return e / m
    sizes = np.arange(1, m + 1).reshape((m,) + (1,) * (e.ndim - 1))
    adjusted = np.empty_like(e)
    for j in range(m):
        others = np.sort(np.delete(e, j, axis=0), axis=0)
        sums = e[j] + np.concatenate([np.zeros_like(e[:1]), np.cumsum(others, axis=0)])
        adjusted[j] = np.min(sums / sizes, axis=0)
    return adjusted


def family_decisions(
    e_values: Mapping[str, float | ArrayLike], alpha: float = 0.05, method: str = "holm"
) -> dict[str, bool]:
    """Which comparisons of one test are rejected, family-wise at ``alpha``.

    ``e_values``: per comparison its e-value, or its e-process at common looks (one value per
    look, the same looks for all). A comparison is rejected once its adjusted e-value
    (:func:`adjust_e_values`) has reached ``1/alpha`` at some look. Valid over looks: a false
    rejection needs the mean of the true nulls' e-processes, itself a test supermartingale (the
    seeds are independent and every bet predictable), to reach ``1/alpha``, probability <= alpha
    by Ville's inequality.
    """
    names = list(e_values)
    paths = np.array([np.atleast_1d(np.asarray(e_values[k], dtype=float)) for k in names])
    rejected = np.any(adjust_e_values(paths, method) >= 1.0 / alpha, axis=1)
    return {name: bool(r) for name, r in zip(names, rejected, strict=True)}


def _unit(differences: ArrayLike, bounds: tuple[float, float]) -> np.ndarray:
    lo, hi = (float(b) for b in bounds)
    if not lo < 0.0 < hi:
        raise ValueError(f"bounds: need lo < 0 < hi, got {bounds}")
    d = np.asarray(differences, dtype=float)
    bad = ~np.isfinite(d) | (d < lo) | (d > hi)
    if bad.any():
        raise ValueError(
            f"differences: every value must be finite and in [{lo:g}, {hi:g}], got "
            f"{d[bad].ravel()[:3].tolist()} (drop incomplete pairs first)"
        )
    return (d - lo) / (hi - lo)


def _check_decision(decision: str, margin: float | None) -> None:
    if decision not in DECISIONS:
        raise ValueError(f"decision: {decision!r} is not one of {', '.join(DECISIONS)}")
    if (decision == "difference") != (margin is None):
        raise ValueError(
            f"margin: an equivalence decision needs a margin > 0, a difference alone none; got "
            f"decision={decision!r}, margin={margin!r}"
        )
    if margin is not None and not margin > 0:
        raise ValueError(f"margin: need a margin > 0, got {margin!r}")


def _log_e_paths(
    x: np.ndarray, alpha: float, margin: float | None, decision: str, bounds: tuple[float, float]
) -> dict[str, np.ndarray]:
    """The log e-processes the decision needs, after each seed (time on the last axis)."""
    lo, hi = bounds
    bets = plug_in_bets(x, alpha)
    paths: dict[str, np.ndarray] = {}
    if decision != "equivalence":
        zero = -lo / (hi - lo)
        paths["up"] = log_capital(x, zero, bets, +1)
        paths["down"] = log_capital(x, zero, bets, -1)
        paths["difference"] = np.logaddexp(
            np.log(THETA) + paths["up"], np.log1p(-THETA) + paths["down"]
        )
    if margin is not None:
        above, below = (margin - lo) / (hi - lo), (-margin - lo) / (hi - lo)
        if not 0.0 < below < above < 1.0:
            raise ValueError(f"margin: need -margin and margin inside {bounds}, got {margin!r}")
        paths["above"] = log_capital(x, above, bets, -1)
        paths["below"] = log_capital(x, below, bets, +1)
    return paths


def _reached(
    paths: dict[str, np.ndarray], alpha: float, looks: tuple[int, ...]
) -> dict[str, np.ndarray]:
    """Per decision, the first look by which it was reached (0: not by the last look)."""
    threshold = np.log(1.0 / alpha)
    at = np.asarray(looks) - 1

    def first_look(path: np.ndarray) -> np.ndarray:
        crossed = np.maximum.accumulate(path >= threshold, axis=-1)[..., at]
        return np.where(crossed.any(axis=-1), np.asarray(looks)[np.argmax(crossed, axis=-1)], 0)

    reached = {}
    if "difference" in paths:
        reached["difference"] = first_look(paths["difference"])
    if "above" in paths:
        above, below = first_look(paths["above"]), first_look(paths["below"])
        reached["equivalence"] = np.where((above > 0) & (below > 0), np.maximum(above, below), 0)
    sought = list(reached.values())
    if len(sought) == 1:
        reached["decided"] = sought[0]
    else:  # both: the first decision reached
        d, e = sought
        reached["decided"] = np.where((d > 0) & (e > 0), np.minimum(d, e), np.maximum(d, e))
    return reached


def _seeds_or_none(first_look: np.ndarray | None) -> int | None:
    return None if first_look is None or int(first_look) == 0 else int(first_look)
