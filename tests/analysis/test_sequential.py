"""Anytime-valid sequential tests (analysis.sequential): hand-worked capital processes, exact and
Monte Carlo null expectations, simulated whole studies (issue 17's done-when), the confidence
sequence's coverage and endpoints, e-Holm, the 2x2 contrast.

Simulated null differences: the demo's paired FG-ARI differences have sd 0.03-0.11
(docs/demo/section3_*), so N(0, 0.1) clipped to [-1, 1] (symmetric: the mean stays 0), a skewed
Beta(2, 8) - 0.2 on [-0.2, 0.8] (sd 0.12) and a two-point -0.1 / +0.9 (probabilities 0.9 / 0.1,
the most skewed). Section 3.2's effect: NLL+M 0.69 vs IR+M 0.010 median FG-ARI, so per-seed
differences N(0.68, 0.15) clipped (the sd is an assumption: the demo's was 0.11).
"""

import itertools
import math

import numpy as np
import pytest
from scipy import optimize

from analysis.sequential import (
    THETA,
    TRUNCATION,
    adjust_e_values,
    confidence_sequence,
    factor_contrast,
    family_decisions,
    log_capital,
    plug_in_bets,
    sequential_decision,
    simulate_studies,
    study_looks,
)

ALPHA = 0.05
STUDIES = 4000
MAX_SEEDS = 100


def null_draws(rng: np.random.Generator, name: str, shape: tuple[int, int]) -> np.ndarray:
    """Mean-zero paired differences in [-1, 1]."""
    if name == "normal":
        return np.clip(rng.normal(0.0, 0.1, shape), -1.0, 1.0)
    if name == "skewed":
        return rng.beta(2.0, 8.0, shape) - 0.2
    return np.where(rng.random(shape) < 0.1, 0.9, -0.1)


def e_difference(d: np.ndarray) -> np.ndarray:
    """(K+ + K-) / 2 at mean 0, vectorised over rows (independent of sequential_decision)."""
    x = (d + 1.0) / 2.0
    bets = plug_in_bets(x, ALPHA)
    up, down = log_capital(x, 0.5, bets, +1), log_capital(x, 0.5, bets, -1)
    return THETA * np.exp(up) + (1 - THETA) * np.exp(down)


# --- the capital process, by hand ------------------------------------------------------------


def test_plug_in_bets_hand_worked():
    # d = 0.5, 0.1, -0.2 -> x = 0.75, 0.55, 0.4. mu_1 = (0.5 + 0.75)/2 = 0.625,
    # sigma2_1 = (0.25 + 0.125^2)/2 = 0.1328125; mu_2 = (0.5 + 1.3)/3 = 0.6,
    # sigma2_2 = (0.265625 + 0.05^2)/3 = 0.089375; the bet for seed t uses sigma2_{t-1}.
    log40 = math.log(2 / ALPHA)
    expected = [
        math.sqrt(2 * log40 / (0.25 * 1 * math.log(2))),
        math.sqrt(2 * log40 / (0.1328125 * 2 * math.log(3))),
        math.sqrt(2 * log40 / (0.089375 * 3 * math.log(4))),
    ]
    np.testing.assert_allclose(plug_in_bets([0.75, 0.55, 0.4], ALPHA), expected, rtol=1e-12)
    np.testing.assert_allclose(expected, [6.5249, 5.0281, 4.4551], atol=1e-4)


def test_e_process_hand_worked_three_seeds_with_the_bets_at_their_cap():
    # Every plug-in bet above exceeds c / m = 0.75 / 0.5 = 1.5, so both sides bet a fixed 1.5:
    # K+ = 1.375 * 1.075 * 0.85, K- = 0.625 * 0.925 * 1.15 (on x - 0.5 = 0.25, 0.05, -0.1).
    k_plus = np.cumprod([1.375, 1.075, 0.85])
    k_minus = np.cumprod([0.625, 0.925, 1.15])
    result = sequential_decision([0.5, 0.1, -0.2], ALPHA)
    np.testing.assert_allclose(result.e_difference, (k_plus + k_minus) / 2, rtol=1e-12)
    np.testing.assert_allclose(result.e_difference, [1.0, 1.028125, 0.960625], rtol=1e-12)
    assert not result.difference and result.seeds_at_difference is None and not result.decided


def test_e_process_expectation_is_exactly_one_under_a_discrete_null():
    # All 3^7 sequences of a mean-zero three-point distribution, weighted by their probability:
    # a test martingale has E[E_t] = 1 at every t (a bet that peeked at d_t would not).
    values, probs = np.array([-0.5, 0.0, 1.0]), np.array([0.4, 0.4, 0.2])
    paths = np.array(list(itertools.product(range(3), repeat=7)))
    weight = probs[paths].prod(axis=1)
    expectation = weight @ e_difference(values[paths])
    np.testing.assert_allclose(expectation, np.ones(7), rtol=1e-12)


def test_equivalence_e_processes_have_expectation_at_most_one_on_their_nulls():
    # Mean exactly at the margin 0.1 (-0.3 / 0.1 / 0.9): K-(+margin) is a martingale, E = 1;
    # for a smaller margin 0.05 the same data lie inside H0: mean >= 0.05, E < 1.
    values, probs = np.array([-0.3, 0.1, 0.9]), np.array([0.4, 0.4, 0.2])
    paths = np.array(list(itertools.product(range(3), repeat=7)))
    weight = probs[paths].prod(axis=1)
    for margin, check in ((0.1, "equal"), (0.05, "below")):
        e = np.array(
            [
                sequential_decision(
                    values[p], ALPHA, margin=margin, decision="equivalence"
                ).e_above_margin
                for p in paths
            ]
        )
        expectation = weight @ e
        if check == "equal":
            np.testing.assert_allclose(expectation, np.ones(7), rtol=1e-12)
        else:
            assert np.all(expectation < 1.0)


@pytest.mark.parametrize("name", ["normal", "skewed", "two-point"])
def test_e_process_mean_under_a_null_is_at_most_one_by_monte_carlo(name):
    rng = np.random.default_rng(11)
    e = e_difference(null_draws(rng, name, (20_000, MAX_SEEDS)))
    for t in (1, 10, MAX_SEEDS):
        mean, se = e[:, t - 1].mean(), e[:, t - 1].std() / math.sqrt(e.shape[0])
        assert mean <= 1.0 + 4.0 * se + 1e-12, (t, mean, se)


# --- whole studies under a null and under section 3.2's effect (issue 17's done-when) -----------


@pytest.mark.parametrize("name", ["normal", "skewed", "two-point"])
def test_null_studies_declare_a_difference_at_most_alpha_plus_001(name):
    rng = np.random.default_rng(17)
    for wave in (1, 5):
        studies = simulate_studies(
            null_draws(rng, name, (STUDIES, MAX_SEEDS)), ALPHA, wave=wave, min_seeds=wave
        )
        assert studies.looks[-1] == MAX_SEEDS
        assert studies.difference.mean() <= ALPHA + 0.01


@pytest.mark.parametrize("name", ["normal", "skewed", "two-point"])
@pytest.mark.parametrize("sign", [+1, -1])
def test_equivalence_is_declared_at_most_alpha_plus_001_with_the_mean_at_the_margin(name, sign):
    margin = 0.1
    rng = np.random.default_rng(19)
    d = sign * (null_draws(rng, name, (STUDIES, MAX_SEEDS)) + margin)  # mean exactly +-margin
    studies = simulate_studies(d, ALPHA, margin=margin, decision="equivalence")
    assert studies.equivalence.mean() <= ALPHA + 0.01


def test_section_3_2_effect_is_decided_in_at_most_15_seeds_median():
    rng = np.random.default_rng(32)
    d = np.clip(rng.normal(0.68, 0.15, (STUDIES, MAX_SEEDS)), -1.0, 1.0)
    for wave, min_seeds in ((1, 1), (5, 5)):
        studies = simulate_studies(d, ALPHA, wave=wave, min_seeds=min_seeds)
        assert studies.difference.all()
        assert np.median(studies.seeds) <= 15, (wave, np.median(studies.seeds))
    for row in d[:5]:
        assert sequential_decision(row, ALPHA).direction == "greater"
        assert sequential_decision(-row, ALPHA).direction == "less"


def test_simulated_studies_decide_as_sequential_decision_does_row_by_row():
    rng = np.random.default_rng(5)
    d = np.clip(rng.normal(0.08, 0.1, (40, 60)), -1.0, 1.0)
    studies = simulate_studies(d, ALPHA, margin=0.1, decision="both", wave=4, min_seeds=6)
    assert studies.looks == study_looks(6, 4, 60)
    for s, row in enumerate(d):
        result = sequential_decision(row, ALPHA, margin=0.1, decision="both", looks=studies.looks)
        assert (result.difference, result.equivalence) == (
            studies.difference[s],
            studies.equivalence[s],
        )
        assert (result.seeds_at_decision or 60) == studies.seeds[s]
    assert studies.decided.any() and not studies.decided.all()


# --- decisions of one comparison -----------------------------------------------------------------


def test_equivalence_needs_both_one_sided_rejections():
    # d = 0.1 every seed, margin 0.3: mean < 0.3 and mean > -0.3 are both shown (equivalence),
    # and, later, mean != 0 (a difference inside the margin).
    result = sequential_decision(np.full(60, 0.1), ALPHA, margin=0.3, decision="both")
    threshold = 1 / ALPHA
    above = int(np.argmax(result.e_above_margin >= threshold)) + 1
    below = int(np.argmax(result.e_below_margin >= threshold)) + 1
    crossed = int(np.argmax(result.e_difference >= threshold)) + 1
    assert result.equivalence and result.seeds_at_equivalence == max(above, below)
    assert result.difference and result.seeds_at_difference == crossed > max(above, below)
    assert result.direction == "greater"
    assert result.decided and result.seeds_at_decision == result.seeds_at_equivalence
    # d = 0.3 every seed: mean > -0.1 is shown, mean < 0.1 never is: no equivalence.
    result = sequential_decision(np.full(60, 0.3), ALPHA, margin=0.1, decision="equivalence")
    assert result.e_below_margin.max() >= threshold and result.e_above_margin.max() < 1
    assert not result.equivalence and not result.decided and result.e_difference is None


def test_a_decision_is_made_at_the_first_look_after_the_crossing():
    d = np.full(30, 0.68)
    every = sequential_decision(d, ALPHA)
    waves = sequential_decision(d, ALPHA, looks=study_looks(5, 5, 30))
    assert every.seeds_at_difference == 9  # x - m = 0.34 at the cap 1.5: 1.51^9 / 2 >= 20
    assert waves.seeds_at_difference == 10
    np.testing.assert_array_equal(every.e_difference, waves.e_difference)


def test_study_looks():
    assert study_looks(5, 5, 100) == tuple(range(5, 101, 5))
    assert study_looks(3, 5, 12) == (3, 8, 12)
    with pytest.raises(ValueError, match="min_seeds"):
        study_looks(0, 5, 100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"differences": [0.2, 1.2]}, r"in \[-1, 1\], got \[1.2\]"),
        ({"differences": [0.2, np.nan]}, "finite"),
        ({"differences": []}, "non-empty"),
        ({"differences": [0.1, 0.2], "looks": [2, 1]}, "looks"),
        ({"differences": [0.1, 0.2], "looks": [3]}, "looks"),
        ({"differences": [0.1], "decision": "equivalence"}, "margin"),
        ({"differences": [0.1], "margin": 0.1}, "margin"),
        ({"differences": [0.1], "margin": 1.0, "decision": "both"}, "margin"),
        ({"differences": [0.1], "decision": "superiority"}, "decision"),
        ({"differences": [0.1], "bounds": (0.0, 1.0)}, "bounds"),
    ],
)
def test_invalid_input_raises(kwargs, message):
    with pytest.raises(ValueError, match=message):
        sequential_decision(**kwargs)


def test_bounds_rescale_the_differences():
    # Differences in [-2, 2] (FG-ARI can be negative) are the same test as halved ones in [-1, 1].
    d = np.array([0.5, 0.3, 0.7, 0.4])
    wide = sequential_decision(2 * d, ALPHA, bounds=(-2.0, 2.0))
    np.testing.assert_allclose(wide.e_difference, sequential_decision(d, ALPHA).e_difference)


# --- the confidence sequence ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["normal", "beta", "two-point"])
def test_confidence_sequence_covers_the_mean_uniformly_over_time(name):
    # The hedged CS misses the true mean at seed t iff max(K+_t(mean), K-_t(mean)) / 2 >= 1/alpha.
    rng = np.random.default_rng(23)
    shape = (STUDIES, MAX_SEEDS)
    if name == "normal":
        d, mean = np.clip(rng.normal(0.0, 0.1, shape), -1.0, 1.0), 0.0
    elif name == "beta":
        d, mean = 2.0 * rng.beta(6.5, 3.5, shape) - 1.0, 0.3
    else:
        d, mean = np.where(rng.random(shape) < 0.1, -0.8, 0.2), 0.1
    x, m = (d + 1.0) / 2.0, (mean + 1.0) / 2.0
    bets = plug_in_bets(x, ALPHA)
    log_k = np.maximum(log_capital(x, m, bets, +1), log_capital(x, m, bets, -1)) + np.log(0.5)
    missed = (log_k >= np.log(1 / ALPHA)).any(axis=1)
    assert missed.mean() <= ALPHA + 0.01
    # The CS as returned (grid, widening, running intersection) covers the mean at every seed
    # of every study the exact sets cover.
    lower, upper = confidence_sequence(d[:300], ALPHA, grid=401)
    covered = (lower <= mean) & (mean <= upper)
    assert covered[~missed[:300]].all()


def test_confidence_sequence_endpoints_match_the_exact_roots_within_two_grid_steps():
    # Lower end: root in m of theta K+_t(m) = 1/alpha (K+ falls with m); upper: (1 - theta)
    # K-_t(m) = 1/alpha. Then the running intersection.
    rng = np.random.default_rng(3)
    d = np.clip(rng.normal(0.3, 0.2, 40), -1.0, 1.0)
    x, bets, grid = (d + 1.0) / 2.0, plug_in_bets((d + 1.0) / 2.0, ALPHA), 1001
    threshold = np.log(1 / ALPHA)

    def root(side: int, t: int) -> float:
        def excess(m):
            return np.log(0.5) + log_capital(x[:t], m, bets[:t], side)[-1] - threshold

        end = 0.0 if side > 0 else 1.0
        return end if excess(end) < 0 else optimize.brentq(excess, 0.0, 1.0, xtol=1e-12)

    exact_lower = np.maximum.accumulate([2 * root(+1, t) - 1 for t in range(1, 41)])
    exact_upper = np.minimum.accumulate([2 * root(-1, t) - 1 for t in range(1, 41)])
    lower, upper = confidence_sequence(d, ALPHA, grid=grid)
    step = 2.0 / (grid - 1)
    assert np.all(lower <= exact_lower + 1e-12) and np.all(exact_lower - lower <= 2 * step)
    assert np.all(upper >= exact_upper - 1e-12) and np.all(upper - exact_upper <= 2 * step)
    assert exact_lower[-1] > 0.0  # the data's mean 0.3 is shown positive by 40 seeds


def test_a_confidence_sequence_that_excludes_zero_means_a_declared_difference():
    rng = np.random.default_rng(29)
    for d in np.clip(rng.normal(0.15, 0.15, (50, 60)), -1.0, 1.0):
        lower, upper = confidence_sequence(d, ALPHA, grid=801)
        result = sequential_decision(d, ALPHA)
        excluded = np.flatnonzero((lower > 0) | (upper < 0))
        if excluded.size:
            assert result.difference and result.seeds_at_difference <= excluded[0] + 1


def test_cross_check_against_the_ville_package():
    ville = pytest.importorskip("ville")
    rng = np.random.default_rng(41)
    d = np.clip(rng.normal(0.2, 0.3, 50), -1.0, 1.0)
    test = ville.BettingTest(0.0, bounds=(-1, 1), alpha=ALPHA, c=TRUNCATION, theta=THETA).fit(d)
    np.testing.assert_allclose(
        sequential_decision(d, ALPHA).e_difference, test.e_values_, rtol=1e-10
    )
    result = sequential_decision(d, ALPHA, margin=0.3, decision="equivalence")
    for m0, alternative, mine in ((0.3, "less", "above"), (-0.3, "greater", "below")):
        one_sided = ville.BettingTest(
            m0, bounds=(-1, 1), alternative=alternative, alpha=ALPHA, c=TRUNCATION
        ).fit(d)
        np.testing.assert_allclose(
            getattr(result, f"e_{mine}_margin"), one_sided.e_values_, rtol=1e-10
        )
    grid = 2001
    cs = ville.BettingCS(bounds=(-1, 1), alpha=ALPHA, c=TRUNCATION, theta=THETA, grid=grid)
    cs.fit(d)
    lower, upper = confidence_sequence(d, ALPHA, grid=grid)
    step = 2.0 / (grid - 1)
    np.testing.assert_allclose(lower, cs.lower_, atol=step + 1e-12)
    np.testing.assert_allclose(upper, cs.upper_, atol=step + 1e-12)


# --- several comparisons: e-Holm -------------------------------------------------------------


def test_e_holm_hand_worked():
    # 1/alpha = 20. e = (59, 59, 0.5): H1's sets {1}: 59, {1,2}: 59, {1,3}: 29.75,
    # {1,2,3}: 39.5 -> 29.75 (H2 alike); H3: {3}: 0.5. Bonferroni 59/3 = 19.7 rejects nothing.
    np.testing.assert_allclose(adjust_e_values([59, 59, 0.5]), [29.75, 29.75, 0.5])
    bonferroni = adjust_e_values([59, 59, 0.5], "bonferroni")
    np.testing.assert_allclose(bonferroni, [59 / 3, 59 / 3, 0.5 / 3])
    # e = (100, 1, 1): H1 min(100, 50.5, 50.5, 34) = 34; H2 and H3 stay 1.
    np.testing.assert_allclose(adjust_e_values([100, 1, 1]), [34, 1, 1])
    e = {"a": 59, "b": 59, "c": 0.5}
    assert family_decisions(e, ALPHA) == {"a": True, "b": True, "c": False}
    assert not any(family_decisions(e, ALPHA, "bonferroni").values())


def test_e_holm_is_closed_testing_with_the_arithmetic_mean():
    rng = np.random.default_rng(7)
    for m in (2, 4, 5):
        e = rng.exponential(10.0, m)
        brute = [
            min(
                np.mean(e[list(subset)])
                for k in range(1, m + 1)
                for subset in itertools.combinations(range(m), k)
                if j in subset
            )
            for j in range(m)
        ]
        np.testing.assert_allclose(adjust_e_values(e), brute, rtol=1e-12)
        assert np.all(adjust_e_values(e) >= adjust_e_values(e, "bonferroni"))


def test_e_holm_adjusts_each_look_and_a_rejection_at_any_look_counts():
    paths = {"a": [1.0, 25.0, 10.0], "b": [1.0, 30.0, 1.0]}
    np.testing.assert_allclose(adjust_e_values(list(paths.values())), [[1, 25, 5.5], [1, 27.5, 1]])
    assert family_decisions(paths, ALPHA) == {"a": True, "b": True}
    assert family_decisions({"a": 19.0}, ALPHA, "none") == {"a": False}
    with pytest.raises(ValueError, match="correction"):
        adjust_e_values([1.0, 2.0], "hochberg")
    with pytest.raises(ValueError, match="e_values"):
        adjust_e_values([1.0, np.nan])


def test_e_holm_family_wise_error_of_three_dependent_pairwise_comparisons():
    # Section 3.3's design under its global null: three conditions with one distribution,
    # pairs (A, B), (B, C), (A, C) share conditions; looks every 5 seeds to 100.
    rng = np.random.default_rng(13)
    values = rng.beta(6.0, 4.0, (3, STUDIES, MAX_SEEDS))
    pairs = [values[0] - values[1], values[1] - values[2], values[0] - values[2]]
    looks = np.asarray(study_looks(5, 5, MAX_SEEDS)) - 1
    e = np.array([e_difference(d)[:, looks] for d in pairs])  # (3, studies, looks)
    for method in ("holm", "bonferroni"):
        rejected = (adjust_e_values(e, method) >= 1 / ALPHA).any(axis=2)
        assert rejected.any(axis=0).mean() <= ALPHA + 0.01
    # A better than B and C (section 3.2-size effect), B = C: A's pairs are rejected, not B vs C.
    values[0] = np.clip(values[0] + 0.3, 0.0, 1.0)
    pairs = [values[0] - values[1], values[1] - values[2], values[0] - values[2]]
    e = np.array([e_difference(d)[:, looks] for d in pairs])
    rejected = (adjust_e_values(e) >= 1 / ALPHA).any(axis=2)
    assert rejected[0].mean() > 0.99 and rejected[2].mean() > 0.99
    assert rejected[1].mean() <= ALPHA + 0.01


# --- section 3.1's 2x2 contrast -------------------------------------------------------------


def test_factor_contrast_hand_worked_and_bounded():
    c11, c01, c10, c00 = [0.7, 0.6], [0.68, 0.5], [0.58, 0.4], [0.58, 0.3]
    # gamma: ((c11 + c01) - (c10 + c00)) / 2 = (1.38 - 1.16)/2, (1.1 - 0.7)/2
    np.testing.assert_allclose(factor_contrast([c11, c01], [c10, c00]), [0.11, 0.2])
    # beta: ((c11 + c10) - (c01 + c00)) / 2 = (1.28 - 1.26)/2, (1.0 - 0.8)/2
    np.testing.assert_allclose(factor_contrast([c11, c10], [c01, c00]), [0.01, 0.1])
    np.testing.assert_allclose(factor_contrast([[1.0], [1.0]], [[0.0], [0.0]]), [1.0])
    result = sequential_decision(factor_contrast([c11, c01], [c10, c00]), ALPHA)
    assert result.n == 2
    with pytest.raises(ValueError, match="one length"):
        factor_contrast([c11, [0.1]], [c10, c00])
