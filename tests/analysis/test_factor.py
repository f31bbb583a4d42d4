"""Friedman about one factor of a 2x2 design: pooled, marginal and stratified blocks, by hand.

Design (conditions 11/01/10/00 = beta on/off x gamma on/off), 7 seeds. Conditions 01 and 00 are
0.5 for every seed; 11 = 0.5 + x and 10 = 0.5 + y (dyadic, so means are exact):

    seed    x       y      sign(11-01)  sign(10-00)  sign(x+y) (marginal beta)
    1     +.25     0           +           tie          +
    2     +.25   -.125         +            -           +
    3     +.125  -.25          +            -           -
    4     +.25   +.125         +            +           +
    5     +.125  -.125         +            -          tie
    6     -.125  -.25          -            -           -
    7     +.25   -.125         +            -           +

With k = 2 the Friedman statistic is the sign-test chi-square (n+ - n-)^2 / (n+ + n-):
- stratified, gamma = 0.25 (11 vs 01): n+ = 6, n- = 1 -> 25/7 = 3.5714 (n = 7)
- stratified, gamma = 0    (10 vs 00): n+ = 1, n- = 5, 1 tie -> 16/6 = 2.6667 (n = 7)
- pooled (14 blocks seed x gamma): n+ = 7, n- = 6, 1 tie -> 1/13 = 0.076923 (n = 14)
- marginal (7 blocks): n+ = 4, n- = 2, 1 tie -> 4/6 = 0.6667 (n = 7)
"""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.correction import adjust
from analysis.factor import (
    ASSUMPTIONS,
    BLOCKINGS,
    VALID_BLOCKINGS,
    block_matrices,
    factor_blocks,
    factor_design,
)
from analysis.friedman import friedman, friedman_chi2
from analysis.results import PARAMETER_COLUMNS, BlockDroppedWarning, load_results

X = [0.25, 0.25, 0.125, 0.25, 0.125, -0.125, 0.25]
Y = [0.0, -0.125, -0.25, 0.125, -0.125, -0.25, -0.125]
CONDITIONS = {"11": (0.5, 0.25), "01": (0.0, 0.25), "10": (0.5, 0.0), "00": (0.0, 0.0)}


def _design_frame() -> pd.DataFrame:
    rows = []
    for seed, (x, y) in enumerate(zip(X, Y, strict=True), start=1):
        values = {"11": 0.5 + x, "01": 0.5, "10": 0.5 + y, "00": 0.5}
        for name, (beta, gamma) in CONDITIONS.items():
            rows.append(
                {
                    "dataset": "d", "condition": name, "seed": seed, "status": "ok",
                    "fg_ari": values[name], "beta": beta, "gamma": gamma,
                    "reconstruction": "nll", "mask": "kl", "latent": "kl", "sigmas": "0.09,0.11",
                }
            )  # fmt: skip
    return load_results(pd.DataFrame(rows))


def _chi2(df, blocking, factor="beta"):
    design = factor_design(df, "d", list(CONDITIONS), factor, PARAMETER_COLUMNS)
    return [
        (b.label, friedman(b.values).statistic, len(b.values))
        for b in factor_blocks(df, "d", design, "fg_ari", blocking)
    ]


def test_design_finds_levels_and_the_other_factor():
    design = factor_design(_design_frame(), "d", list(CONDITIONS), "beta", PARAMETER_COLUMNS)
    assert design.levels == (0.5, 0.0)
    assert design.others == ("gamma",)  # reconstruction, mask, ... do not vary
    assert design.strata == ((0.25,), (0.0,))
    assert design.cells[(0.0, (0.0,))] == "00"


def test_stratified_hand_worked():
    (label_a, chi_a, n_a), (label_b, chi_b, n_b) = _chi2(_design_frame(), "stratified")
    assert label_a == "beta: 0.5 vs 0 at gamma=0.25" and label_b == "beta: 0.5 vs 0 at gamma=0"
    assert chi_a == pytest.approx(25 / 7) and n_a == 7
    assert chi_b == pytest.approx(16 / 6) and n_b == 7


def test_pooled_hand_worked():
    [(label, chi, n)] = _chi2(_design_frame(), "pooled")
    assert label == "beta: 0.5 vs 0 (blocks: seed x gamma)"
    assert chi == pytest.approx(1 / 13) and n == 14
    assert stats.chi2.sf(chi, 1) == pytest.approx(2 * stats.norm.sf(1 / np.sqrt(13)))


def test_marginal_hand_worked():
    [(label, chi, n)] = _chi2(_design_frame(), "marginal")
    assert label == "beta: 0.5 vs 0 (blocks: seed; mean over gamma)"
    assert chi == pytest.approx(4 / 6) and n == 7


def test_a_failed_run_drops_one_pooled_block_but_a_whole_marginal_seed():
    df = _design_frame()
    df.loc[(df["condition"] == "10") & (df["seed"] == 2), "status"] = "failed"
    with pytest.warns(BlockDroppedWarning):
        [(_, _, n_pooled)] = _chi2(df, "pooled")
        [(_, _, n_marginal)] = _chi2(df, "marginal")
    assert n_pooled == 13 and n_marginal == 6


def test_incomplete_design_is_refused():
    df = _design_frame()
    with pytest.raises(ValueError, match="no condition with beta=0 at gamma=0"):
        factor_design(df, "d", ["11", "01", "10"], "beta", PARAMETER_COLUMNS)


def test_factor_must_vary_and_exist():
    df = _design_frame()
    with pytest.raises(ValueError, match="factor: 'beta' takes one value"):
        factor_design(df, "d", ["11", "10"], "beta", PARAMETER_COLUMNS)
    with pytest.raises(ValueError, match="factor: results have no column 'lr'"):
        factor_design(df, "d", list(CONDITIONS), "lr", PARAMETER_COLUMNS)


def test_unknown_blocking_is_named():
    df = _design_frame()
    design = factor_design(df, "d", list(CONDITIONS), "beta", PARAMETER_COLUMNS)
    with pytest.raises(ValueError, match="blocking: 'rank' is not one of pooled, marginal"):
        factor_blocks(df, "d", design, "fg_ari", "rank")


def _two_digit_p_values(blocks: range) -> set[float]:
    """Every p-value (to 2 significant digits) of a k = 2 Friedman test on m untied blocks,
    m in ``blocks``: chi2 = (n+ - n-)^2 / (n+ + n-)."""
    found = set()
    for m in blocks:
        positives = np.arange(m + 1)
        p = stats.chi2.sf((2 * positives - m) ** 2 / m, 1)
        found |= {float(f"{v:.2g}") for v in p}
    return found


def test_paper_section_3_1_p_values_need_pooled_blocks():
    # 169 of 200 pooled blocks one way: chi2 = 138^2 / 200 = 95.22, p = 1.70e-22 (paper: 1.7e-22)
    blocks = np.array([[1.0, 0.0]] * 169 + [[0.0, 1.0]] * 31)
    assert float(f"{friedman(blocks).pvalue:.2g}") == 1.7e-22
    assert {0.32, 0.048, 0.16, 1.7e-22} <= _two_digit_p_values(range(200, 201))
    # one block per seed (marginal, stratified): 1.7e-22 is out of reach, and 0.048 needs more
    # than half of the 100 seeds tied or dropped
    assert 1.7e-22 not in _two_digit_p_values(range(1, 101))
    assert 0.048 not in _two_digit_p_values(range(51, 101))


def test_block_matrices_hand_worked():
    # one seed pair, levels (a, b), strata (s, t): cells[seed, level, stratum]
    cells = np.array([[[1.0, 2.0], [3.0, 4.0]], [[5.0, 6.0], [7.0, 8.0]]])
    [pooled] = block_matrices(cells, "pooled")
    np.testing.assert_array_equal(pooled, [[1, 3], [2, 4], [5, 7], [6, 8]])  # seed x stratum
    [marginal] = block_matrices(cells, "marginal")
    np.testing.assert_array_equal(marginal, [[1.5, 3.5], [5.5, 7.5]])
    first, second = block_matrices(cells, "stratified")
    np.testing.assert_array_equal(first, [[1, 3], [5, 7]])
    np.testing.assert_array_equal(second, [[2, 4], [6, 8]])


def _null_with_seed_by_beta_interaction(replicates, seeds=100, rng_seed=15):
    """2x2 cells (replicates, seeds, beta level, gamma level) with no beta effect on average: each
    seed has its own beta effect b_s ~ N(0, 0.12) (point 2 of issue 15), a seed level, run noise
    sd 0.04, values rounded to 3 decimals as in results.csv."""
    rng = np.random.default_rng(rng_seed)
    shape = (replicates, seeds, 1, 1)
    beta_on = np.array([1.0, 0.0])[:, None]
    effect = rng.normal(0.0, 0.12, shape) * beta_on
    noise = rng.normal(0.0, 0.04, (replicates, seeds, 2, 2))
    return np.round(rng.normal(0.6, 0.06, shape) + effect + noise, 3)


def _type_one_error(cells, blocking):
    """Share of replicates where the blocking's family (Holm over strata) rejects at 0.05."""
    p = np.stack([stats.chi2.sf(friedman_chi2(m), 1) for m in block_matrices(cells, blocking)], -1)
    adjusted = np.apply_along_axis(adjust, -1, p, "holm")
    return float(np.mean(adjusted.min(axis=-1) <= 0.05))


def test_valid_blockings_keep_their_level_under_a_seed_by_factor_interaction():
    cells = _null_with_seed_by_beta_interaction(1000)
    for blocking in VALID_BLOCKINGS:
        assert 0.03 <= _type_one_error(cells, blocking) <= 0.07, blocking
    # pooled counts a seed's two blocks as independent: its caveat is real (0.12 in the issue)
    invalid = [b for b in BLOCKINGS if b not in VALID_BLOCKINGS]
    assert invalid == ["pooled"] and _type_one_error(cells, "pooled") > 0.09
    assert "NOT valid if the factor's effect varies by seed" in ASSUMPTIONS["pooled"]


def test_vectorised_statistic_is_the_sign_test_chi_square_per_replicate():
    cells = _null_with_seed_by_beta_interaction(3, seeds=12)
    [pooled] = block_matrices(cells, "pooled")
    d = pooled[..., 0] - pooled[..., 1]
    plus, minus = (d > 0).sum(axis=-1), (d < 0).sum(axis=-1)
    np.testing.assert_allclose(friedman_chi2(pooled), (plus - minus) ** 2 / (plus + minus))
