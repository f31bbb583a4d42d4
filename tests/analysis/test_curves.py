"""Learning curves from run histories, and the under-trained rule: medians and quartiles worked
out by hand; the rule on the committed section 3.2 demo's NLL+M seed 1 (monetk 0.3) values."""

import numpy as np
import pandas as pd
import pytest

from analysis.curves import load_histories, median_curves
from analysis.findings import REPORT_DEFAULTS, still_moving, validate_report
from analysis.report import write_report
from analysis.results import load_results


def _history(folder, steps, fg_ari, mse, ari=None):
    """A history.csv as monetk writes it: epoch rows, check columns on the check rows only."""
    folder.mkdir(parents=True)
    rows = []
    for i, step in enumerate(steps):
        rows.append({"step": step - 5, "loss": 1.0, "epoch_time_s": 30.0})  # between checks
        rows.append({"step": step, "loss": 1.0, "monitor_mse": mse[i], "eval_fg_ari": fg_ari[i],
                     "eval_ari": (ari or fg_ari)[i], "step_time_s": 0.1, "epoch_time_s": 30.0})
    pd.DataFrame(rows).to_csv(folder / "history.csv", index=False)


def _store(tmp_path):
    """Condition A: seeds 1-3 ok (seed 3 stopped at step 20), seed 4 failed at 20, seed 5 still
    running (no result); condition B: seed 1 ok."""
    runs = tmp_path / "runs"
    _history(runs / "d/A/seed-1", [10, 20, 30], [0.1, 0.3, 0.5], [0.4, 0.2, 0.1])
    _history(runs / "d/A/seed-2", [10, 20, 30], [0.2, 0.4, 0.7], [0.3, 0.2, 0.2])
    _history(runs / "d/A/seed-3", [10, 20], [0.3, 0.6], [0.2, 0.1])
    _history(runs / "d/A/seed-4", [10, 20], [0.0, 0.0], [0.9, np.nan])
    _history(runs / "d/A/seed-5", [10], [0.05], [0.5])
    _history(runs / "d/B/seed-1", [10, 20, 30], [0.0, 0.0, 0.0], [0.5, 0.5, 0.5])
    rows = [("A", 1, "ok", 0.5), ("A", 2, "ok", 0.7), ("A", 3, "ok", 0.6), ("A", 4, "failed", None),
            ("A", 5, "missing", None), ("B", 1, "ok", 0.0)]
    df = load_results(pd.DataFrame(
        [{"dataset": "d", "condition": c, "seed": s, "status": st, "fg_ari": v,
          "run_dir": f"d/{c}/seed-{s}"} for c, s, st, v in rows]))
    return df, runs


def test_histories_keep_check_rows_and_states(tmp_path):
    df, runs = _store(tmp_path)
    histories = load_histories(df, runs)
    assert len(histories) == 3 + 3 + 2 + 2 + 1 + 3  # epoch rows without checks are dropped
    states = histories.drop_duplicates(["condition", "seed"]).set_index(["condition", "seed"])
    assert states.loc[("A", 4), "state"] == "failed"
    assert states.loc[("A", 5), "state"] == "unfinished"
    assert states.loc[("A", 3), "claim_step"] == 20


def test_medians_over_finished_runs_carry_a_stopped_run_forward(tmp_path):
    df, runs = _store(tmp_path)
    curves = median_curves(load_histories(df, runs), ["d"], ["A", "B"])
    a = curves[curves["condition"] == "A"].set_index("step")
    # step 30: seeds 1, 2 at 0.5, 0.7 and seed 3 carried from step 20 at 0.6 -> median 0.6;
    # quartiles of {0.5, 0.6, 0.7} by linear interpolation: 0.55 and 0.65. Failed and unfinished
    # runs are not in the medians.
    assert list(a.index) == [10, 20, 30] and list(a["n"]) == [3, 3, 3]
    assert a.loc[30, "fg_ari_median"] == pytest.approx(0.6)
    assert (a.loc[30, "fg_ari_q1"], a.loc[30, "fg_ari_q3"]) == pytest.approx((0.55, 0.65))
    assert a.loc[10, "mse_median"] == pytest.approx(0.3)  # {0.4, 0.3, 0.2}
    assert a.loc[30, "mse_median"] == pytest.approx(0.1)  # {0.1, 0.2, 0.1}
    # two 30 s epochs per check: 1 min a check; the minutes to a step are over the runs that
    # trained to it (seed 3 stopped at 20)
    assert list(a["minutes"]) == pytest.approx([1.0, 2.0, 3.0])


def test_a_continued_run_is_judged_up_to_where_the_rule_fired(tmp_path):
    runs = tmp_path / "runs"
    _history(runs / "d/A/seed-1", [10, 20, 30, 40], [0.1, 0.5, 0.5, 0.9], [0.2, 0.1, 0.1, 0.01])
    df = load_results(pd.DataFrame([{"dataset": "d", "condition": "A", "seed": 1, "status": "ok",
                                     "continued": True, "stop_step": 30,
                                     "run_dir": "d/A/seed-1"}]))
    histories = load_histories(df, runs)
    full = median_curves(histories, ["d"], ["A"])
    claims = median_curves(histories, ["d"], ["A"], up_to_claims=True)
    assert list(full["step"]) == [10, 20, 30, 40] and list(claims["step"]) == [10, 20, 30]
    rule = REPORT_DEFAULTS["under_trained"]
    assert ("d", "A") in still_moving(full, rule)  # 0.5 -> 0.9 over the last two checks
    # up to the claims (step 30) the window is steps 10-30: FG-ARI 0.1 -> 0.5, MSE 0.2 -> 0.1
    assert "FG-ARI +0.400, MSE -50%" in still_moving(claims, rule)[("d", "A")]


def _curve(steps, fg_ari, mse):
    return pd.DataFrame({"dataset": "d", "condition": "NLL+M", "step": steps,
                         "fg_ari_median": fg_ari, "mse_median": mse})


def test_the_committed_demo_is_under_trained():
    # The section 3.2 demo's NLL+M seed 1 (monetk 0.3, 4,000 steps, checks every 500): MSE 0.0123,
    # 0.0094, 0.0071 and FG-ARI 0.093, 0.076, 0.135 at steps 3,000, 3,500, 4,000. Over the last
    # two checks the MSE fell by 1 - 0.0071 / 0.0123 = 42% (> 10%); FG-ARI rose by 0.042 (< 0.05).
    curve = _curve([3000, 3500, 4000], [0.093, 0.076, 0.135], [0.0123, 0.0094, 0.0071])
    why = still_moving(curve, REPORT_DEFAULTS["under_trained"])[("d", "NLL+M")]
    assert why == "NLL+M: MSE -42% over steps 3,000-4,000"
    # with a one-check window: FG-ARI +0.059 > 0.05 and MSE 0.0071 / 0.0094 - 1 = -24%
    why = still_moving(curve, {"checks": 1, "fg_ari": 0.05, "mse_relative": 0.1})[("d", "NLL+M")]
    assert why == "NLL+M: FG-ARI +0.059, MSE -24% over steps 3,500-4,000"


def test_a_plateau_is_not_moving_and_too_few_checks_cannot_tell():
    rule = REPORT_DEFAULTS["under_trained"]
    flat = _curve([1000, 2000, 3000], [0.70, 0.68, 0.71], [0.0100, 0.0098, 0.0095])
    assert still_moving(flat, rule) == {}  # +0.01 FG-ARI, -5% MSE
    short = _curve([1000, 2000], [0.7, 0.7], [0.01, 0.01])
    assert "too few to tell" in still_moving(short, rule)[("d", "NLL+M")]


def test_report_rules_are_validated():
    assert validate_report(None) == [] and validate_report(REPORT_DEFAULTS) == []
    problems = validate_report({"chance_margin": 2, "under_trained": {"checks": 0, "fg": 1},
                                "verdicts": "no", "other": 1})
    assert problems == [
        "report.other: unknown key (allowed: chance_margin, under_trained, verdicts)",
        "report.chance_margin: 2 is not a number in [0, 1)",
        "report.verdicts: 'no' is not true or false",
        "report.under_trained.fg: unknown key (allowed: checks, fg_ari, mse_relative)",
        "report.under_trained.checks: 0 is not an integer >= 1",
    ]


def test_report_draws_curves_of_finished_failed_and_running_runs(tmp_path):
    df, runs = _store(tmp_path)
    written = write_report({"name": "x", "datasets": {"d": {}}, "conditions": {"A": {}, "B": {}}},
                           df, tmp_path / "report", results_dir=runs)
    assert written["learning_curves"].is_file()
    assert written["learning_curves"].with_suffix(".pdf").is_file()
    curves = pd.read_csv(written["curves_csv"])
    assert len(curves) == 6 and set(curves["condition"]) == {"A", "B"}
    text = written["report"].read_text()
    assert "Runs drawn: 4 ok, 1 failed, 1 unfinished." in text
    assert "| step | A FG-ARI | A MSE | B FG-ARI | B MSE |" in text
    assert "| 30 | 0.600 | 0.1 | 0 | 0.5 |" in text


def test_report_without_histories_says_so(tmp_path):
    df = load_results(pd.DataFrame([{"dataset": "d", "condition": "A", "seed": 1,
                                     "status": "ok", "fg_ari": 0.5}]))
    written = write_report({"name": "x", "datasets": {"d": {}}, "conditions": {"A": {}}}, df,
                           tmp_path / "report")
    assert "learning_curves" not in written
    assert "No run folder with a `history.csv` was found: no curves." in (
        written["report"].read_text())


def test_report_with_only_unfinished_runs_judges_nothing(tmp_path):
    runs = tmp_path / "runs"
    _history(runs / "d/A/seed-1", [10, 20], [0.1, 0.2], [0.4, 0.3])
    df = load_results(pd.DataFrame([{"dataset": "d", "condition": "A", "seed": 1,
                                     "status": "missing", "fg_ari": np.nan,
                                     "run_dir": "d/A/seed-1"}]))
    written = write_report({"name": "x", "datasets": {"d": {}}, "conditions": {"A": {}}}, df,
                           tmp_path / "report", results_dir=runs)
    text = written["report"].read_text()
    assert "Runs drawn: 1 unfinished." in text
    assert "No run has finished: nothing to judge yet." in text
    assert "Still moving" not in text


def test_step_ticks_read_in_thousands():
    from analysis.figures import _steps

    assert [_steps(v, 0) for v in (40000, 1500, 20, 0)] == ["40k", "1.5k", "20", "0"]
