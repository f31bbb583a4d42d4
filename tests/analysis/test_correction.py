"""Holm and Bonferroni adjustment, hand-worked; m is the declared family size."""

import numpy as np
import pytest

from analysis.correction import adjust, reject, rule


def test_holm_unsorted_input_hand_worked():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06;
    # back in input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]
    p = adjust([0.01, 0.04, 0.03, 0.005], "holm")
    np.testing.assert_allclose(p, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_an_uncomputed_comparison_stays_in_the_family():
    # m = 3 declared, one p missing: Holm 0.01 * 3 = 0.03, 0.03 * 2 = 0.06 (R's p.adjust would
    # drop the NA first and give m = 2: 0.02, 0.03); Bonferroni 3p.
    p = adjust([0.01, np.nan, 0.03], "holm")
    assert p[0] == pytest.approx(0.03) and np.isnan(p[1]) and p[2] == pytest.approx(0.06)
    p = adjust([0.01, np.nan, 0.019], "bonferroni")
    assert p[0] == pytest.approx(0.03) and np.isnan(p[1]) and p[2] == pytest.approx(0.057)


def test_paper_p_0019_is_kept_at_the_declared_m3_under_bonferroni():
    # The paper's [0, 0.019, 0] at 0.05/3 = 0.0167: 0.019 is not rejected with m = 3 (3 * 0.019 =
    # 0.057); with m = 2 it would be (0.038). Under Holm with two p-values ~0 it is rejected
    # (its step multiplies by 1).
    assert reject(adjust([1e-20, 0.019, 1e-20], "bonferroni"), 0.05).tolist() == [True, False, True]
    assert reject(adjust([1e-20, 0.019, 1e-20], "holm"), 0.05).tolist() == [True, True, True]
    assert reject(adjust([np.nan, 0.019, 1e-20], "bonferroni"), 0.05).tolist() == [
        False, False, True,
    ]  # fmt: skip


def test_holm_ties_and_order_hand_worked():
    # sorted 0.02, 0.02, 0.5 -> 0.06, max(0.06, 0.04) = 0.06, max(0.06, 0.5) = 0.5
    np.testing.assert_allclose(adjust([0.5, 0.02, 0.02], "holm"), [0.5, 0.06, 0.06])


def test_holm_caps_at_one():
    np.testing.assert_allclose(adjust([0.6, 0.7], "holm"), [1.0, 1.0])


def test_bonferroni_hand_worked():
    np.testing.assert_allclose(adjust([0.01, 0.02, 0.5], "bonferroni"), [0.03, 0.06, 1.0])


def test_none_leaves_p_values_unchanged():
    np.testing.assert_array_equal(adjust([0.01, 0.2], "none"), [0.01, 0.2])


def test_reject_is_inclusive_and_false_for_nan():
    np.testing.assert_array_equal(reject([0.05, 0.0500001, np.nan], 0.05), [True, False, False])


def test_rule_names_method_m_and_the_per_comparison_threshold():
    assert rule("bonferroni", 3, 0.05) == (
        "bonferroni (m=3): p <= alpha/m = 0.05/3 = 0.0167 (adjusted p = min(1, 3 p) <= 0.05)"
    )
    assert rule("holm", 3, 0.05).startswith("holm step-down (m=3): the i-th smallest p is ")
    assert rule("holm", 1, 0.05) == "holm (m=1): p <= 0.05 (no correction)"


def test_unknown_method_names_the_allowed_values():
    with pytest.raises(ValueError, match="correction: 'hs' is not one of holm, bonferroni, none"):
        adjust([0.1], "hs")


def test_single_p_value_is_unchanged_by_every_rule():
    for method in ("holm", "bonferroni", "none"):
        np.testing.assert_array_equal(adjust([0.03], method), [0.03])
