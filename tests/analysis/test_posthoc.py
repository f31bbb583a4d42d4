"""Post-hoc tests after Friedman against R's published values and Demsar's critical differences."""

import numpy as np
import pytest

from analysis.posthoc import all_pairs, cliques, critical_difference

# scikit-posthocs' test data (tests/test_posthocs.py, ``df_bn``): 3 blocks x 7 treatments. Its
# expected p-values are R's (PMCMR/PMCMRplus frdAllPairsNemenyiTest and frdAllPairsConoverTest
# with p.adjust = "none"), lower triangle, row i > column j.
BLOCKS = np.array([[4, 3, 4, 4, 5, 6, 3], [1, 2, 3, 5, 6, 7, 7], [1, 2, 6, 4, 1, 5, 1]])
R_NEMENYI = [
    [0.9999999],
    [0.8414506, 0.8833015],
    [0.9177741, 0.9449086, 0.9999962],
    [0.9177741, 0.9449086, 0.9999962, 1.0000000],
    [0.2147827, 0.2597539, 0.9449086, 0.8833015, 0.8833015],
    [0.9976902, 0.9991770, 0.9888953, 0.9976902, 0.9976902, 0.5511935],
]
R_CONOVER = [
    [0.9147508],
    [0.1518030, 0.18071036],
    [0.2140927, 0.25232845, 0.8305955],
    [0.2140927, 0.25232845, 0.8305955, 1.000000],
    [0.0181602, 0.02222747, 0.2523284, 0.1807104, 0.1807104],
    [0.5242303, 0.59465124, 0.3989535, 0.5242303, 0.5242303, 0.05991984],
]


def _lookup(table, i, j):
    return table[j - 1][i]  # pair (i, j), i < j: row j, column i


def test_nemenyi_and_conover_reproduce_r():
    pairs = all_pairs(BLOCKS)
    assert len(pairs) == 21
    for r in pairs:
        assert r.nemenyi_p == pytest.approx(_lookup(R_NEMENYI, r.first, r.second), abs=1e-6)
        assert r.conover_p == pytest.approx(_lookup(R_CONOVER, r.first, r.second), abs=1e-6)


def test_conover_holm_over_the_21_pairs_hand_worked():
    pairs = all_pairs(BLOCKS)
    p = np.array([r.conover_p for r in pairs])
    order = np.argsort(p)
    expected = np.maximum.accumulate(np.minimum(1, p[order] * np.arange(21, 0, -1)))
    np.testing.assert_allclose(np.array([r.conover_p_holm for r in pairs])[order], expected)


def test_nemenyi_q_is_the_mean_rank_difference_over_its_standard_error():
    # identical rankings 1..3 in 4 blocks: mean ranks 1, 2, 3; se = sqrt(3 * 4 / 24) = sqrt(0.5)
    pairs = all_pairs(np.tile([1.0, 2.0, 3.0], (4, 1)))
    assert [r.rank_difference for r in pairs] == [-1.0, -2.0, -1.0]
    assert pairs[1].nemenyi_q == pytest.approx(2 / np.sqrt(0.5))


@pytest.mark.parametrize(
    ("k", "q"),
    [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850), (7, 2.949), (10, 3.164)],
)
def test_critical_values_of_demsar_table_5a(k, q):
    # Demsar (2006), Table 5(a): q_0.05 = studentized range quantile / sqrt(2)
    assert critical_difference(k, 6, 0.05) / np.sqrt(k * (k + 1) / 36) == pytest.approx(
        q, abs=1.5e-3
    )


def test_demsar_worked_example_cd():
    # Demsar (2006), sec. 3.2.4: 4 classifiers, 14 data sets: CD = 2.569 sqrt(4*5/(6*14)) = 1.25
    assert critical_difference(4, 14) == pytest.approx(1.25, abs=5e-3)


def test_cliques_join_treatments_closer_than_cd():
    # mean ranks 1.0, 1.5, 2.6, 3.0 with CD 1.2: {0, 1} span 0.5, {1, 2} 1.1, {2, 3} 0.4;
    # {1, 2, 3} spans 1.5 > CD
    assert cliques([1.0, 1.5, 2.6, 3.0], 1.2) == [(0, 1), (1, 2), (2, 3)]
    assert cliques([3.0, 1.0, 2.0], 5.0) == [(1, 2, 0)]
    assert cliques([1.0, 2.0, 3.0], 0.5) == []


def test_too_few_treatments_are_refused():
    with pytest.raises(ValueError, match="blocks: post-hoc tests need >= 2 blocks and >= 3"):
        all_pairs(np.ones((5, 2)))
