"""Wilcoxon signed-rank test against R's and scipy's documented outputs and hand computations."""

import itertools

import numpy as np
import pytest
from scipy import stats

from analysis.wilcoxon import (
    conditional_pmf,
    exact_pvalue,
    signed_rank,
    signed_rank_pmf,
    walsh_averages,
    walsh_ci_rank,
)

# Hollander & Wolfe (1973), p. 29: depression scores at the first (x) and second (y) visit,
# the example of R's ?wilcox.test.
X = np.array([1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30])
Y = np.array([0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29])
# scipy.stats.wilcoxon docs: Darwin's height differences of cross- and self-fertilised corn.
CORN = np.array([6, 8, 14, 16, 23, 24, 28, 29, 41, -48, 49, 56, 60, -67, 75])


def test_r_depression_example_exact():
    # R: wilcox.test(x, y, paired = TRUE) -> V = 40, p-value = 0.03906
    res = signed_rank(X, Y, method="exact")
    assert res.w_plus == 40 and res.w_minus == 5 and res.statistic == 5
    assert res.pvalue == pytest.approx(0.0390625, rel=1e-12)  # 2 * 10 / 2^9
    assert res.method == "exact" and res.n == 9


def test_r_depression_example_asymptotic_one_sided():
    # R: wilcox.test(y - x, alternative = "less", exact = FALSE, correct = FALSE) -> p = 0.01908
    res = signed_rank(Y, X, method="asymptotic", alternative="less")
    assert res.pvalue == pytest.approx(0.01908, abs=5e-6)


def test_rank_biserial_sign_convention_first_minus_second():
    # pingouin.wilcoxon(x, y) reports RBC = +0.778 = (40 - 5) / 45
    assert signed_rank(X, Y).rank_biserial == pytest.approx(35 / 45)
    assert signed_rank(Y, X).rank_biserial == pytest.approx(-35 / 45)


@pytest.mark.parametrize(
    ("kwargs", "statistic", "pvalue"),
    [
        ({}, 24.0, 0.041259765625),
        ({"alternative": "greater"}, 96.0, 0.0206298828125),
        ({"method": "asymptotic"}, 24.0, 0.04088813291185591),
    ],
)
def test_scipy_documented_corn_example(kwargs, statistic, pvalue):
    res = signed_rank(CORN, np.zeros_like(CORN), **kwargs)
    assert res.statistic == statistic
    assert res.pvalue == pytest.approx(pvalue, rel=1e-10)


def test_exact_all_positive_n100_is_not_zero():
    # 2 * P(W+ = 5050) = 2 / 2^100 = 1.58e-30 (scipy <= 1.17.1 returns 0.0, scipy#26026)
    d = np.arange(1, 101, dtype=float)
    assert signed_rank(d, np.zeros(100), method="exact").pvalue == pytest.approx(
        2.0**-99, rel=1e-12
    )
    assert signed_rank(-d, np.zeros(100), method="exact").pvalue == pytest.approx(
        2.0**-99, rel=1e-12
    )
    assert exact_pvalue(5050, np.arange(1, 101), "greater") == pytest.approx(2.0**-100, rel=1e-12)


def test_auto_exact_for_n40_all_positive():
    d = np.arange(1, 41, dtype=float)
    res = signed_rank(d, np.zeros(40))
    assert res.method == "exact"
    assert res.pvalue == pytest.approx(2.0**-39, rel=1e-12)


def test_asymptotic_all_positive_n100_uses_the_survival_function():
    # z = 8.68: 1 - Phi(z) rounds to 0, the normal sf gives 3.9e-18
    d = np.arange(1, 101, dtype=float)
    res = signed_rank(d, np.zeros(100))
    assert res.method == "asymptotic"
    assert res.pvalue == pytest.approx(3.896559845095909e-18, rel=1e-9)


def test_signed_rank_pmf_hand_worked_n3():
    # subsets of {1, 2, 3}: sums 0, 1, 2, 3 (twice: {3}, {1, 2}), 4, 5, 6
    np.testing.assert_allclose(signed_rank_pmf(3), np.array([1, 1, 1, 2, 1, 1, 1]) / 8)


def test_signed_rank_pmf_matches_scipy_where_scipy_is_right():
    # scipy's exact p is correct in the lower tail (W+ below its mean): compare there.
    rng = np.random.default_rng(0)
    for n in (5, 12, 25, 40):
        d = rng.normal(-0.4, 1.0, n)
        if np.sum(stats.rankdata(np.abs(d))[d > 0]) > n * (n + 1) / 4:
            d = -d
        ref = stats.wilcoxon(d, method="exact").pvalue
        assert signed_rank(d, np.zeros(n), method="exact").pvalue == pytest.approx(ref, rel=1e-9)


def test_zero_method_variants_hand_worked():
    d = np.array([0, 0, 1, -2, 3, 4, 5, -6, 7, 8], dtype=float)
    zero = np.zeros_like(d)
    # wilcox: zeros dropped, ranks 1..8: W+ = 1+3+4+5+7+8 = 28, W- = 2+6 = 8, n = 8
    res = signed_rank(d, zero, zero_method="wilcox", method="asymptotic")
    assert (res.w_plus, res.w_minus, res.n, res.n_zero) == (28, 8, 8, 2)
    # pratt: zeros take ranks 1.5, 1.5 and are then dropped: W+ = 3+5+6+7+9+10 = 40, W- = 4+8 = 12
    res = signed_rank(d, zero, zero_method="pratt", method="asymptotic")
    assert (res.w_plus, res.w_minus, res.n) == (40, 12, 10)
    # zsplit: as pratt, the zeros' rank sum 3 split in half: W+ = 41.5, W- = 13.5
    res = signed_rank(d, zero, zero_method="zsplit", method="asymptotic")
    assert (res.w_plus, res.w_minus) == (41.5, 13.5)
    for zero_method in ("wilcox", "pratt", "zsplit"):
        ref = stats.wilcoxon(d, zero_method=zero_method, method="asymptotic")
        res = signed_rank(d, zero, zero_method=zero_method, method="asymptotic")
        assert res.statistic == ref.statistic
        assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-12)


def test_auto_with_zeros_and_small_n_is_a_permutation_test_like_scipy():
    d = np.array([0, 0, 1, -2, 3, 4, 5, -6, 7, 8], dtype=float)
    res = signed_rank(d, np.zeros_like(d), method="auto")
    assert res.method == "permutation"
    assert res.pvalue == pytest.approx(stats.wilcoxon(d, method="auto").pvalue, rel=1e-12)


def test_auto_with_ties_and_n20_is_asymptotic_like_scipy():
    rng = np.random.default_rng(3)
    d = np.round(rng.normal(0.3, 1.0, 20), 1)  # one decimal: ties
    res = signed_rank(d, np.zeros(20), method="auto")
    assert res.method == "asymptotic"
    assert res.pvalue == pytest.approx(stats.wilcoxon(d, method="auto").pvalue, rel=1e-12)


def _brute_force_p(d, zero_method):
    """Two-sided p over all 2^n sign flips of the non-zero differences, by enumeration: W+ is the
    sum of the ranks of |d| (zeros ranked or not per zero_method) carried by positive signs."""
    d = np.asarray(d, dtype=float)
    kept = d[d != 0] if zero_method == "wilcox" else d
    ranks = stats.rankdata(np.abs(kept))[kept != 0]
    observed = ranks[kept[kept != 0] > 0].sum()
    signs = np.array(list(itertools.product([0, 1], repeat=ranks.size)))
    w = signs @ ranks
    return min(1.0, 2 * min(np.mean(w <= observed + 1e-9), np.mean(w >= observed - 1e-9)))


TIED_WITH_ZEROS = np.array([0, 0, 0.5, -0.5, 1, 1, 1, -2, 2.5, 3, 3, 4, -4.5, 5])  # n = 14


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
def test_forced_exact_with_ties_and_zeros_is_the_brute_force_permutation_p(zero_method):
    res = signed_rank(TIED_WITH_ZEROS, np.zeros(14), method="exact", zero_method=zero_method)
    assert res.method == "permutation"
    assert res.pvalue == pytest.approx(_brute_force_p(TIED_WITH_ZEROS, zero_method), rel=1e-12)


def test_forced_exact_is_not_scipys_untied_table():
    # scipy's method="exact" uses the table of untied ranks whatever the data: here it is off
    brute = _brute_force_p(TIED_WITH_ZEROS, "wilcox")
    ours = signed_rank(TIED_WITH_ZEROS, np.zeros(14), method="exact").pvalue
    scipys = stats.wilcoxon(TIED_WITH_ZEROS, method="exact").pvalue
    assert ours == pytest.approx(brute, rel=1e-12) and abs(scipys / brute - 1) > 0.05


def test_n100_with_ties_exact_is_close_to_the_normal_approximation():
    # 2^100 flips cannot be enumerated; the dynamic programme handles them, and at n = 100 the
    # exact conditional p and the tie-corrected normal p agree to a few percent
    rng = np.random.default_rng(5)
    d = np.round(rng.normal(0.25, 1.0, 100), 1)
    exact = signed_rank(d, np.zeros(100), method="exact")
    normal = signed_rank(d, np.zeros(100), method="asymptotic")
    assert exact.method == "permutation" and exact.n_tied > 0
    assert exact.pvalue == pytest.approx(normal.pvalue, rel=0.05)


def test_conditional_pmf_of_tied_ranks_hand_worked():
    # midranks 1.5, 1.5, 3: W+ in {0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6} -> 2 W+ in {0, 3, 6, 9, 12}
    pmf = conditional_pmf([1.5, 1.5, 3])
    expected = np.zeros(13)
    expected[[0, 3, 6, 9, 12]] = [1, 2, 2, 2, 1]
    np.testing.assert_allclose(pmf, expected / 8)


def test_z_is_signed_and_the_closed_form():
    # corn: W+ = 96, n = 15, no ties: z = (96 - 60) / sqrt(15 * 16 * 31 / 24) = 36 / sqrt(310)
    res = signed_rank(CORN, np.zeros(15), method="asymptotic")
    assert res.z == pytest.approx(36 / np.sqrt(310), rel=1e-12)
    assert signed_rank(-CORN, np.zeros(15), method="asymptotic").z == pytest.approx(-res.z)
    assert np.isnan(signed_rank(CORN, np.zeros(15), method="exact").z)


def test_zeros_are_counted_not_hidden():
    # 100 pairs, 18 of them equal: n = 82 ranked, and the 18 zeros are reported
    d = np.concatenate([np.zeros(18), np.arange(1, 83)])
    res = signed_rank(d, np.zeros(100))
    assert (res.n_pairs, res.n_zero, res.n, res.n_tied) == (100, 18, 82, 0)


@pytest.mark.parametrize("zero_method", ["wilcox", "pratt", "zsplit"])
def test_hodges_lehmann_keeps_the_zeros_for_every_zero_method(zero_method):
    # Walsh averages of [0, 0, 1, 2, 3] (15 values): 0, 0, 0, .5, .5, 1, 1, 1, 1.5, 1.5, 1.5, 2,
    # 2, 2.5, 3 -> median 1 (without the zeros, as R's wilcox.test does, it would be 2)
    res = signed_rank([0, 0, 1, 2, 3], np.zeros(5), zero_method=zero_method)
    assert res.hl_shift == 1.0


def test_continuity_correction_moves_z_toward_the_mean():
    plain = signed_rank(CORN, np.zeros(15), method="asymptotic")
    corrected = signed_rank(CORN, np.zeros(15), method="asymptotic", continuity=True)
    ref = stats.wilcoxon(CORN, method="asymptotic", correction=True)
    assert corrected.pvalue == pytest.approx(ref.pvalue, rel=1e-12)
    assert corrected.pvalue > plain.pvalue


def test_float_noise_in_differences_is_rounded_into_ties():
    # 0.3 - 0.1 = 0.19999999999999998 but 0.5 - 0.3 = 0.2: one tie after rounding
    x = np.array([0.3, 0.5, 0.9, 1.4, 2.0, 2.7])
    y = np.array([0.1, 0.3, 0.6, 1.0, 1.5, 2.1])
    res = signed_rank(x, y)
    assert res.method == "permutation"  # ties, n <= 13
    assert (res.w_plus, res.w_minus) == (21.0, 0.0)


def test_hodges_lehmann_hand_worked():
    # Walsh averages of [1, 2, 4]: 1, 1.5, 2, 2.5, 3, 4 -> median 2.25
    np.testing.assert_allclose(walsh_averages([1, 2, 4]), [1, 1.5, 2, 2.5, 3, 4])
    assert signed_rank([1, 2, 4, 8, 16], [0, 0, 0, 0, 0]).hl_shift == pytest.approx(
        np.median([1, 1.5, 2, 2.5, 3, 4, 4.5, 5, 6, 8, 8.5, 9, 10, 12, 16])
    )


def test_exact_hl_interval_inverts_the_exact_test():
    # n = 9: P(W+ <= 5) = 10/512 <= 0.025 < P(W+ <= 6) = 14/512, so k = 6 (R's qsignrank).
    # A shift just inside the interval is not rejected by the exact test at 5%, just outside is.
    assert walsh_ci_rank(9, 0.95, exact=True) == 6
    res = signed_rank(X, Y, method="exact")
    d = X - Y
    eps = 1e-9
    for shift, rejected in [
        (res.ci_low + eps, False),
        (res.ci_low - eps, True),
        (res.ci_high - eps, False),
        (res.ci_high + eps, True),
    ]:
        p = stats.wilcoxon(d - shift, method="exact").pvalue
        assert (p <= 0.05) == rejected, (shift, p)
    assert res.ci_method == "exact"


def test_normal_approx_interval_rank_is_close_and_conservative():
    # never narrower than the exact interval, at most 2 order statistics wider
    for n in range(6, 151):
        gap = walsh_ci_rank(n, 0.95, exact=True) - walsh_ci_rank(n, 0.95, exact=False)
        assert 0 <= gap <= 2, n


def test_too_small_n_has_no_interval():
    # n = 5: P(W+ = 0) = 1/32 > 0.025, so no bounded 95% interval
    res = signed_rank([1, 2, 3, 4, 5], [0, 0, 0, 0, 0])
    assert np.isnan(res.ci_low) and "n too small" in res.ci_method


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"zero_method": "drop"}, "zero_method: 'drop' is not one of wilcox, pratt, zsplit"),
        ({"method": "approx"}, "method: 'approx' is not one of auto, exact, asymptotic"),
        ({"alternative": "two_sided"}, "alternative: 'two_sided' is not one of"),
        ({"continuity": "no"}, "continuity"),
    ],
)
def test_bad_variant_names_the_argument(kwargs, message):
    with pytest.raises(ValueError, match=message):
        signed_rank(X, Y, **kwargs)


def test_all_zero_differences_are_refused():
    with pytest.raises(ValueError, match="no non-zero differences"):
        signed_rank([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
