"""Per-condition summaries and Table 1 (stopping-rule effect), hand-worked."""

import numpy as np
import pandas as pd
import pytest

from analysis.results import load_results
from analysis.summary import stop_effect_table, summary_table, trivial_baseline


def _frame():
    # condition A: ok fg_ari 0.1, 0.2, 0.3, 0.4, 1.0 and one failed run (ignored)
    # condition B: ok fg_ari 0.5, 0.7 (at the stop); seeds 1-2 continued: full - stop = 0.02
    # and -0.01
    rows = [
        {"condition": "A", "seed": s, "status": "ok", "fg_ari": v, "continued": False}
        for s, v in zip(range(1, 6), [0.1, 0.2, 0.3, 0.4, 1.0], strict=True)
    ]
    rows.append({"condition": "A", "seed": 6, "status": "failed", "fg_ari": np.nan})
    rows += [
        {"condition": "B", "seed": 1, "status": "ok", "fg_ari": 0.5, "fg_ari_full": 0.52,
         "continued": True},
        {"condition": "B", "seed": 2, "status": "ok", "fg_ari": 0.7, "fg_ari_full": 0.69,
         "continued": True},
    ]  # fmt: skip
    df = pd.DataFrame(rows).assign(dataset="d", fg_ari_trivial=0.05)
    return load_results(df)


def test_summary_quartiles_hand_worked():
    summary = summary_table(_frame(), ["d"], ["A", "B"]).set_index("condition")
    # sorted 0.1 0.2 0.3 0.4 1.0: median 0.3; q25 at position 1 -> 0.2; q75 at position 3 -> 0.4
    a = summary.loc["A"]
    assert (a["fg_ari_n"], a["fg_ari_median"], a["fg_ari_q25"], a["fg_ari_q75"]) == (
        5,
        pytest.approx(0.3),
        pytest.approx(0.2),
        pytest.approx(0.4),
    )
    assert a["fg_ari_mean"] == pytest.approx(0.4)
    assert summary.loc["B", "fg_ari_median"] == pytest.approx(0.6)
    # the trivial baseline is summarised beside the metrics (5 ok runs of A at 0.05)
    assert (a["fg_ari_trivial_n"], a["fg_ari_trivial_median"]) == (5, pytest.approx(0.05))
    assert "ari_median" not in summary.columns  # only metrics the results have


def test_table1_difference_and_ratio_hand_worked():
    table = stop_effect_table(_frame(), ["d"], ["A", "B"])
    # only B continued: mean(0.02, -0.01) = 0.005; median fg_ari of B = 0.6 -> 0.8333 %
    assert table.to_dict("records") == [
        {"dataset": "d", "condition": "B", "metric": "fg_ari", "n": 2,
         "difference": pytest.approx(0.005), "ratio_percent": pytest.approx(0.5 / 0.6)},
    ]  # fmt: skip


def test_table1_is_empty_without_continued_runs():
    df = _frame()
    df["continued"] = False
    assert stop_effect_table(df, ["d"], ["A", "B"]).empty


def test_trivial_baseline_is_the_median_over_ok_runs():
    assert trivial_baseline(_frame(), "d") == pytest.approx(0.05)
