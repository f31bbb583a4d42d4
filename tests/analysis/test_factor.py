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

from analysis.factor import factor_blocks, factor_design
from analysis.friedman import friedman
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
