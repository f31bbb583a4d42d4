"""Holm and Bonferroni adjustment, hand-worked (R's p.adjust semantics for NaN)."""

import numpy as np
import pytest

from analysis.correction import adjust, reject, rule


def test_holm_unsorted_input_hand_worked():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, 0.04*1 = 0.04 -> running max 0.06;
    # back in input order [0.01, 0.04, 0.03, 0.005] -> [0.03, 0.06, 0.06, 0.02]
    p = adjust([0.01, 0.04, 0.03, 0.005], "holm")
    np.testing.assert_allclose(p, [0.03, 0.06, 0.06, 0.02], rtol=1e-12)


def test_holm_drops_nan_before_counting_m_like_r():
    # R: p.adjust(c(0.01, NA, 0.03), "holm") -> 0.02 NA 0.03
    # (statsmodels on the raw vector counts the NaN: 0.03, nan, 0.06)
    p = adjust([0.01, np.nan, 0.03], "holm")
    assert p[0] == pytest.approx(0.02) and np.isnan(p[1]) and p[2] == pytest.approx(0.03)


def test_holm_caps_at_one():
    np.testing.assert_allclose(adjust([0.6, 0.7], "holm"), [1.0, 1.0])


def test_bonferroni_hand_worked():
    np.testing.assert_allclose(adjust([0.01, 0.02, 0.5], "bonferroni"), [0.03, 0.06, 1.0])


def test_none_leaves_p_values_unchanged():
    np.testing.assert_array_equal(adjust([0.01, 0.2], "none"), [0.01, 0.2])


def test_reject_is_inclusive_and_false_for_nan():
    np.testing.assert_array_equal(reject([0.05, 0.0500001, np.nan], 0.05), [True, False, False])


def test_rule_names_method_m_and_alpha():
    assert rule("holm", 3, 0.05) == "holm (m=3): adjusted p <= 0.05"


def test_unknown_method_names_the_allowed_values():
    with pytest.raises(ValueError, match="correction: 'hs' is not one of holm, bonferroni, none"):
        adjust([0.1], "hs")


def test_single_p_value_is_unchanged_by_every_rule():
    for method in ("holm", "bonferroni", "none"):
        np.testing.assert_array_equal(adjust([0.03, np.nan], method), [0.03, np.nan])
