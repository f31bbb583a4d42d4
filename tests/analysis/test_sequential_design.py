"""The wave design replayed over results (analysis.sequential_design)."""

import numpy as np
import pandas as pd
import pytest

from analysis.sequential import adjust_e_values, sequential_decision
from analysis.sequential_design import evaluate, forecast_needs, needed_seeds


def results(values: dict[str, list[float]], status: dict[tuple[str, int], str] | None = None,
            gamma: dict[str, float] | None = None) -> pd.DataFrame:
    rows = []
    for condition, per_seed in values.items():
        for seed, value in enumerate(per_seed, start=1):
            state = (status or {}).get((condition, seed), "ok")
            rows.append({"dataset": "d", "condition": condition, "seed": seed, "status": state,
                         "fg_ari": value if state == "ok" else np.nan,
                         "gamma": (gamma or {}).get(condition, 0.0)})
    return pd.DataFrame(rows, columns=["dataset", "condition", "seed", "status", "fg_ari",
                                       "gamma"])


def spec(tests: list[dict], chosen: dict, min_seeds=4, wave=2, max_seeds=20) -> dict:
    return {"tests": tests, "sequential": {"min_seeds": min_seeds, "wave": wave,
                                           "max_seeds": max_seeds, "tests": chosen}}


PAIR = {"name": "t", "kind": "wilcoxon", "metric": "fg_ari", "alpha": 0.05,
        "pairs": [["A", "B"]]}


def test_before_any_result_every_condition_needs_the_first_look():
    design = spec([PAIR], {"t": {}})
    empty = results({"A": [], "B": []})
    assert needed_seeds(evaluate(design, empty, range(1, 21), ["d"])) == {("d", "A"): 4,
                                                                         ("d", "B"): 4}


def test_an_undecided_comparison_needs_the_next_look_and_a_decided_one_keeps_its_stop():
    a, b = [0.9] * 20, [0.1] * 20
    design = spec([PAIR], {"t": {}})
    for seen in range(4, 21):
        outcome = evaluate(design, results({"A": a[:seen], "B": b[:seen]}), range(1, 21),
                           ["d"])[0]
        # The oracle: the e-process of the same differences, looked at every 2 seeds from 4.
        looks = tuple(k for k in (4, 6, 8, 10, 12, 14, 16, 18, 20) if k <= seen)
        oracle = sequential_decision(np.full(seen, 0.8), 0.05, looks=looks)
        if oracle.difference:
            assert outcome.stopped_at == oracle.seeds_at_difference == outcome.needs
        else:
            assert outcome.stopped_at is None
            assert outcome.needs == min(k for k in (4, 6, 8, 10, 12, 14, 16, 18, 20) if k > seen)


def test_a_failed_run_counts_as_scheduled_and_leaves_its_seed_out():
    a, b = [0.9] * 6, [0.1] * 6
    table = results({"A": a, "B": b}, status={("B", 2): "failed"})
    outcome = evaluate(spec([PAIR], {"t": {}}), table, range(1, 21), ["d"])[0]
    assert outcome.scheduled == 6 and outcome.seeds == [1, 3, 4, 5, 6]
    np.testing.assert_allclose(outcome.differences, 0.8)
    # A run not finished stops the scheduled prefix there.
    table.loc[(table["condition"] == "A") & (table["seed"] == 5), "status"] = "missing"
    assert evaluate(spec([PAIR], {"t": {}}), table, range(1, 21), ["d"])[0].scheduled == 4


def test_two_comparisons_of_one_test_are_one_holm_family():
    two = {**PAIR, "pairs": [["A", "B"], ["A", "C"]]}
    a = [0.5 + 0.01 * (i % 3) for i in range(20)]
    table = results({"A": a, "B": [0.0] * 20, "C": [0.5] * 20})
    plain, holm = (evaluate(spec([two], {"t": {"correction": c}}), table, range(1, 21), ["d"])
                   for c in ("none", "holm"))
    # The strong comparison decides; under Holm no earlier than alone; the null one never.
    assert plain[0].stopped_at is not None and holm[0].stopped_at >= plain[0].stopped_at
    assert holm[1].stopped_at is None and holm[1].needs == 20
    # By hand at the Holm stop: the adjusted e-value of A vs B (its e and the null's, merged by
    # the mean over {AB, AC}, or alone) reaches 20 there, not at the look before.
    stop = holm[0].stopped_at
    e_ab, e_ac = (o.e_values["difference"] for o in holm)
    assert adjust_e_values([e_ab[stop - 1], e_ac[stop - 1]])[0] >= 20
    assert adjust_e_values([e_ab[stop - 3], e_ac[stop - 3]])[0] < 20
    needs = needed_seeds(holm)
    assert needs == {("d", "A"): 20, ("d", "B"): stop, ("d", "C"): 20}


def test_a_factor_contrast_is_the_high_level_mean_minus_the_low_level_mean():
    factor = {"name": "g", "kind": "friedman_factor", "metric": "fg_ari", "alpha": 0.05,
              "conditions": ["11", "01", "10", "00"], "factor": "gamma"}
    values = {"11": [0.9, 0.8], "01": [0.7, 0.6], "10": [0.3, 0.2], "00": [0.1, 0.4]}
    levels = {"11": 0.25, "01": 0.25, "10": 0.0, "00": 0.0}
    outcome = evaluate(spec([factor], {"g": {}}, min_seeds=2, max_seeds=2),
                       results(values, gamma=levels), [1, 2], ["d"])[0]
    assert outcome.comparison.high == ("11", "01") and outcome.comparison.low == ("10", "00")
    # seed 1: (0.9 + 0.7)/2 - (0.3 + 0.1)/2 = 0.6; seed 2: (0.8 + 0.6)/2 - (0.2 + 0.4)/2 = 0.4
    np.testing.assert_allclose(outcome.differences, [0.6, 0.4])


def test_a_factor_needs_two_levels():
    factor = {"name": "g", "kind": "friedman_factor", "metric": "fg_ari", "alpha": 0.05,
              "conditions": ["a", "b"], "factor": "gamma"}
    with pytest.raises(ValueError, match="exactly two levels"):
        evaluate(spec([factor], {"g": {}}), results({"a": [0.1], "b": [0.2]}), [1, 2], ["d"])


def planned(values: dict[str, list[float]], seeds: int = 20) -> pd.DataFrame:
    """Rows for every seed 1..seeds of each condition; those beyond a condition's values are
    planned but not run yet (status ``missing``)."""
    table = results({c: v + [np.nan] * (seeds - len(v)) for c, v in values.items()})
    table.loc[table["fg_ari"].isna(), "status"] = "missing"
    return table


def waves(design: dict, full: pd.DataFrame, seeds: range) -> dict[tuple[str, str], int]:
    """The runner's loop, spelled out: reveal each condition's seeds up to what the design needs,
    look again, until it needs nothing more."""
    needs: dict[tuple[str, str], int] = {}
    while True:
        rank = full["seed"] - min(seeds)
        hidden = rank >= [needs.get((d, c), 0) for d, c in zip(full["dataset"],
                                                               full["condition"], strict=True)]
        seen = full.assign(status=full["status"].where(~hidden, "missing"))
        now = needed_seeds(evaluate(design, seen, seeds, ["d"]))
        if now == needs:
            return needs
        needs = now


@pytest.mark.parametrize("draw", range(6))
def test_one_replay_over_a_complete_table_stops_where_the_waves_stop(draw):
    # The premise of the forecast: a look uses only the seeds before it.
    rng = np.random.default_rng(draw)
    base = rng.uniform(0.2, 0.6, 30)
    values = {"A": list(base + rng.normal(0.15, 0.2, 30)), "B": list(base),
              "C": list(base + rng.normal(0.05, 0.2, 30))}
    design = spec([{**PAIR, "pairs": [["A", "B"], ["C", "B"]]}], {"t": {}}, min_seeds=3, wave=3,
                  max_seeds=30)
    full = results(values)
    assert waves(design, full, range(1, 31)) == needed_seeds(
        evaluate(design, full, range(1, 31), ["d"]))


def test_a_forecast_keeps_what_is_finished_and_needs_a_donor_seed():
    design = spec([PAIR], {"t": {}})
    done = results({"A": [0.9] * 20, "B": [0.1] * 20})
    today = needed_seeds(evaluate(design, done, range(1, 21), ["d"]))
    assert forecast_needs(design, done, range(1, 21), ["d"], simulations=3) == [today] * 3
    assert forecast_needs(design, planned({"A": [], "B": []}), range(1, 21), ["d"]) is None
    failed = planned({"A": [0.9, 0.9], "B": [0.1, 0.1]})
    failed.loc[(failed["condition"] == "B") & (failed["seed"] <= 2), "status"] = "failed"
    assert forecast_needs(design, failed, range(1, 21), ["d"]) is None


def test_with_no_difference_observed_every_continuation_runs_to_max_seeds():
    # Zero differences: the betting e-process stays at 1 (closed form), so nothing decides.
    table = planned({"A": [0.3, 0.5, 0.4, 0.6], "B": [0.3, 0.5, 0.4, 0.6]})
    forecast = forecast_needs(spec([PAIR], {"t": {}}), table, range(1, 21), ["d"],
                              simulations=20)
    assert forecast == [{("d", "A"): 20, ("d", "B"): 20}] * 20


def test_forecast_stops_follow_the_e_process_over_bootstrapped_differences():
    # Observed: 4 seeds, differences 0.8, 0.8, 0.8 and 0.0. The oracle resamples those
    # differences itself and asks the e-process where the looks 4, 6, ... 20 decide.
    table = planned({"A": [0.9, 0.9, 0.9, 0.5], "B": [0.1, 0.1, 0.1, 0.5]})
    forecast = forecast_needs(spec([PAIR], {"t": {}}), table, range(1, 21), ["d"],
                              simulations=400, seed=1)
    stops = np.array([needs[("d", "A")] for needs in forecast])
    assert all(needs[("d", "A")] == needs[("d", "B")] for needs in forecast)
    rng = np.random.default_rng(2)
    looks = (4, 6, 8, 10, 12, 14, 16, 18, 20)
    oracle = []
    for _ in range(400):
        differences = np.r_[[0.8, 0.8, 0.8, 0.0], rng.choice([0.8, 0.8, 0.8, 0.0], 16)]
        result = sequential_decision(differences, 0.05, looks=looks)
        oracle.append(result.seeds_at_difference or 20)
    for look in looks:  # the share stopped by each look, within sampling error (sd <= 0.025)
        assert np.mean(stops <= look) == pytest.approx(np.mean(np.array(oracle) <= look),
                                                       abs=0.09)
