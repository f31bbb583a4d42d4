"""Friedman test against R's and scipy's documented outputs and hand-worked sign-test examples."""

import numpy as np
import pytest
from scipy import stats

from analysis.friedman import friedman

# R documentation, ?friedman.test (Hollander & Wolfe 1973, p. 140): rounding first base.
ROUNDING_TIMES = np.array(
    [
        [5.40, 5.50, 5.55], [5.85, 5.70, 5.75], [5.20, 5.60, 5.50], [5.55, 5.50, 5.40],
        [5.90, 5.85, 5.70], [5.45, 5.55, 5.60], [5.40, 5.40, 5.35], [5.45, 5.50, 5.35],
        [5.25, 5.15, 5.00], [5.85, 5.80, 5.70], [5.25, 5.20, 5.10], [5.65, 5.55, 5.45],
        [5.60, 5.35, 5.45], [5.05, 5.00, 4.95], [5.50, 5.50, 5.40], [5.45, 5.55, 5.50],
        [5.55, 5.55, 5.35], [5.45, 5.50, 5.55], [5.50, 5.45, 5.25], [5.65, 5.60, 5.40],
        [5.70, 5.65, 5.55], [6.30, 6.30, 6.25],
    ]
)  # fmt: skip


def test_r_rounding_times_example():
    # R prints: Friedman chi-squared = 11.143, df = 2, p-value = 0.003805
    res = friedman(ROUNDING_TIMES)
    assert res.statistic == pytest.approx(11.143, abs=5e-4)
    assert res.df == 2 and res.n == 22 and res.k == 3
    assert res.pvalue == pytest.approx(0.003805, abs=5e-7)


def test_scipy_documented_example():
    # scipy.stats.friedmanchisquare docs: statistic 10.57142857142857, pvalue 0.005063414171757498
    before = [72, 96, 88, 92, 74, 76, 82]
    after = [120, 120, 132, 120, 101, 96, 112]
    five_min = [76, 95, 104, 96, 84, 72, 76]
    res = friedman(np.column_stack([before, after, five_min]))
    assert res.statistic == pytest.approx(10.57142857142857, rel=1e-12)
    assert res.pvalue == pytest.approx(0.005063414171757498, rel=1e-9)


@pytest.mark.parametrize("k", [3, 4, 6])
def test_equals_scipy_with_many_ties(k):
    rng = np.random.default_rng(k)
    data = rng.integers(0, 4, size=(30, k)).astype(float)  # many ties within blocks
    res = friedman(data)
    ref = stats.friedmanchisquare(*data.T)
    assert res.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.pvalue == pytest.approx(ref.pvalue, rel=1e-10)


def test_k2_hand_example_is_the_sign_test_chi_square():
    # Blocks (a, b): a > b once (block 2), a < b four times, one tie (block 4):
    # n+ = 1, n- = 4 -> (n+ - n-)^2 / (n+ + n-) = 9 / 5 = 1.8.
    # Formula: R_a = 1+2+1+1.5+1+1 = 7.5, R_b = 10.5;
    # 12/(6*2*3) * (7.5^2 + 10.5^2) - 3*6*3 = 1.5;
    # tie correction 1 - (2^3-2)/(6*(2^3-2)) = 5/6; 1.5 / (5/6) = 1.8.
    blocks = [(1, 2), (3, 1), (2, 5), (4, 4), (6, 7), (0, 1)]
    res = friedman(blocks)
    assert res.statistic == pytest.approx(1.8, rel=1e-12)
    assert res.df == 1
    # two-sided sign test, normal approximation without continuity correction
    assert res.pvalue == pytest.approx(2 * stats.norm.sf(3 / np.sqrt(5)), rel=1e-12)


def test_k2_on_hollander_wolfe_depression_data():
    # Hollander & Wolfe's depression scores (R ?wilcox.test): x > y in 7 of 9 pairs, so the
    # sign-test chi-square is (7 - 2)^2 / 9 = 2.7778 and p = 2 Phi(-5/3) = 0.09558.
    x = [1.83, 0.50, 1.62, 2.48, 1.68, 1.88, 1.55, 3.06, 1.30]
    y = [0.878, 0.647, 0.598, 2.05, 1.06, 1.29, 1.06, 3.14, 1.29]
    res = friedman(np.column_stack([x, y]))
    assert res.statistic == pytest.approx(25 / 9, rel=1e-12)
    assert res.pvalue == pytest.approx(0.09558, abs=5e-6)


def test_kendall_w_is_one_for_identical_rankings():
    # R = (3, 6, 9): 12/(3*3*4) * 126 - 3*3*4 = 6; W = 6 / (3 * 2) = 1.
    res = friedman([[1, 2, 3], [10, 20, 30], [0.1, 0.2, 0.3]])
    assert res.statistic == pytest.approx(6.0)
    assert res.kendall_w == pytest.approx(1.0)
    assert res.mean_ranks == pytest.approx((1.0, 2.0, 3.0))


def test_extreme_statistic_keeps_a_tiny_p_value():
    # k = 4, n = 100, identical rankings: chi2 = 3n = 300, p = chi2_3.sf(300) ~ 9.9e-65, not 0.
    res = friedman(np.tile([1.0, 2.0, 3.0, 4.0], (100, 1)))
    assert res.statistic == pytest.approx(300.0)
    assert 9.8e-65 < res.pvalue < 1.0e-64


def test_all_blocks_tied_gives_nan():
    res = friedman([[1, 1], [2, 2], [3, 3]])
    assert np.isnan(res.statistic) and np.isnan(res.pvalue)


@pytest.mark.parametrize("bad", [[1, 2, 3], [[1.0], [2.0]], [[1.0, np.nan], [2.0, 3.0]]])
def test_bad_input_names_the_argument(bad):
    with pytest.raises(ValueError, match="blocks"):
        friedman(bad)


def test_k2_z_is_the_signed_sign_test_deviate_and_ties_are_counted():
    # blocks of test_k2_hand_example: n+ = 1, n- = 4, one all-tied block -> z = (1 - 4) / sqrt(5)
    res = friedman([(1, 2), (3, 1), (2, 5), (4, 4), (6, 7), (0, 1)])
    assert res.z == pytest.approx(-3 / np.sqrt(5), rel=1e-12)
    assert (res.n_all_tied, res.n_tied) == (1, 1)
    three = friedman([[1, 1, 2], [1, 1, 1], [1, 2, 3]])
    assert np.isnan(three.z) and (three.n_all_tied, three.n_tied) == (1, 2)
