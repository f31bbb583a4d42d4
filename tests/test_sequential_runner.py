"""The runner's sequential design (issue 17): seeds in waves until the listed tests decide."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.sequential import sequential_decision, study_looks
from monetk_runner.cli import main

SPEC = """
name: seq
datasets: {a: {}}
conditions:
  good: {loss: {beta: 0.0}}
  bad: {loss: {beta: 1.0}}
  same: {loss: {beta: 2.0}}
seeds: 1-30
tests:
  - {name: gap, kind: wilcoxon, metric: fg_ari, pairs: [[good, bad]], correction: none}
  - {name: tie, kind: wilcoxon, metric: fg_ari, pairs: [[bad, same]], correction: none}
sequential:
  min_seeds: 4
  wave: 2
  tests:
    gap: {decide: difference}
"""


def fg_ari(beta: float, seed: int) -> float:
    """good (beta 0) ~0.8 and bad ~0.2 apart by 0.6 +- 0.05; same ~ bad."""
    noise = ((seed * 7919) % 11 - 5) / 100
    return {0.0: 0.8 + noise, 1.0: 0.2 - noise / 2, 2.0: 0.2 + noise / 2}[beta]


def train(config, run_dir, progress=None):
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    beta, seed = config["loss"]["beta"], config["seed"]
    result = {"status": "ok", "reason": None, "steps": 1, "stop_step": None, "continued": False,
              "final": {"fg_ari": fg_ari(beta, seed), "ari": 0.5}, "at_stop": None,
              "wall_time_s": 3600.0, "device": "cpu (fake)", "versions": {}}
    (run_dir / "result.json").write_text(json.dumps(result))
    train.calls.append((beta, seed))
    return result


def run(tmp_path: Path, spec_text: str = SPEC, *args: str) -> tuple[int, list]:
    spec = tmp_path / "seq.yaml"
    spec.write_text(spec_text)
    train.calls = []
    code = main([str(spec), "--out", str(tmp_path / "out"), "--workers", "1", *args],
                train=train)
    return code, train.calls


def decided_at(differences: np.ndarray, looks: tuple[int, ...]) -> int:
    """The look at which the one-comparison design decides, from the e-process itself."""
    for look in looks:
        if sequential_decision(differences[:look], 0.05, looks=(look,)).difference:
            return look
    return looks[-1]


def test_waves_stop_at_the_look_where_the_test_decides_and_the_report_says_so(tmp_path):
    code, calls = run(tmp_path)
    assert code == 0
    seeds = np.arange(1, 31)
    differences = np.array([fg_ari(0.0, s) - fg_ari(1.0, s) for s in seeds])
    stop = decided_at(differences, study_looks(4, 2, 30))
    assert 4 <= stop < 30
    # good and bad: the seeds up to the stop; same (in no sequential test): all 30.
    assert sorted(s for b, s in calls if b == 0.0) == list(range(1, stop + 1))
    assert sorted(s for b, s in calls if b == 1.0) == list(range(1, stop + 1))
    assert sorted(s for b, s in calls if b == 2.0) == list(range(1, 31))
    results = pd.read_csv(tmp_path / "out/seq/results.csv")
    assert len(results) == 2 * stop + 30 and set(results["status"]) == {"ok"}
    table = pd.read_csv(tmp_path / "out/seq/report/sequential.csv")
    (row,) = table.to_dict("records")
    assert row["decision"] == "difference" and row["direction"] == "greater"
    assert row["seeds_at_decision"] == stop and row["cs_lower"] > 0
    report = (tmp_path / "out/seq/report/report.md").read_text()
    saved = 3 * 30 - (2 * stop + 30)
    assert f"**Saved against the fixed design:** {saved} of 90 runs" in report
    assert "post hoc to a sequential design" in report
    assert (tmp_path / "out/seq/report/sequential_a.png").exists()
    # Everything is recomputed from the finished runs: the same command trains nothing more.
    code, calls = run(tmp_path)
    assert code == 0 and calls == []


def test_an_interrupted_design_resumes_to_the_same_runs(tmp_path):
    straight = tmp_path / "straight"
    straight.mkdir()
    run(straight)
    code, first = run(tmp_path, SPEC, "--seeds", "1-3")  # as if killed during the first wave
    assert code == 0 and len(first) == 9
    code, rest = run(tmp_path)
    assert code == 0 and not set(first) & set(rest)
    assert pd.read_csv(tmp_path / "out/seq/results.csv").drop(columns="run_dir").equals(
        pd.read_csv(straight / "out/seq/results.csv").drop(columns="run_dir"))


def test_a_null_comparison_runs_to_max_seeds_and_equivalence_stops_early(tmp_path):
    null = SPEC.replace("gap: {decide: difference}", "tie: {decide: difference}")
    (tmp_path / "null").mkdir()
    code, calls = run(tmp_path / "null", null)
    assert code == 0
    assert sorted(s for b, s in calls if b == 2.0) == list(range(1, 31))  # undecided: all
    table = pd.read_csv(tmp_path / "null/out/seq/report/sequential.csv")
    assert table["decision"].tolist() == ["undecided at max_seeds"]

    equivalent = SPEC.replace("gap: {decide: difference}", "tie: {decide: equivalence, "
                              "margin: 0.2}")
    (tmp_path / "eq").mkdir()
    code, calls = run(tmp_path / "eq", equivalent)
    assert code == 0
    used = sorted(s for b, s in calls if b == 2.0)
    assert used == list(range(1, len(used) + 1)) and len(used) < 30
    table = pd.read_csv(tmp_path / "eq/out/seq/report/sequential.csv")
    assert table["decision"].tolist() == ["equivalence"]


def test_dry_run_lists_the_first_wave(tmp_path, capsys):
    code, calls = run(tmp_path, SPEC, "--dry-run")
    assert code == 0 and calls == []
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    listed = {(row[1], int(row[2])) for row in rows if len(row) >= 5 and row[2].isdigit()}
    # The first look's 4 seeds of good and bad; same, in no sequential test, at max_seeds.
    assert listed == {(c, s) for c in ("good", "bad") for s in range(1, 5)} | {
        ("same", s) for s in range(1, 31)}
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("block", "message"), [
    ("sequential: {min_seeds: 0, tests: {gap: {}}}", "sequential.min_seeds: 0 must be an integer"),
    ("sequential: {max_seeds: 40, tests: {gap: {}}}", "more than the spec's 30 seeds"),
    ("sequential: {tests: {nope: {}}}", "sequential.tests.nope: not a declared test"),
    ("sequential: {tests: {gap: {decide: maybe}}}", "is not one of difference, equivalence"),
    ("sequential: {tests: {gap: {decide: equivalence}}}", "needs a margin in (0, 1)"),
    ("sequential: {wave: 2}", "sequential.tests: required"),
])
def test_a_bad_sequential_block_exits_2_and_writes_nothing(tmp_path, capsys, block, message):
    spec = SPEC[: SPEC.index("sequential:")] + block + "\n"
    code, calls = run(tmp_path, spec)
    assert code == 2 and calls == []
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_estimate_projects_the_runs_the_design_needs_now(tmp_path, monkeypatch, capsys):
    import monetk.probe

    monkeypatch.setattr(monetk.probe, "step_time", lambda config: 0.25)
    code, calls = run(tmp_path, SPEC, "--estimate")
    assert code == 0 and calls == []
    out = capsys.readouterr().out
    # First look: good and bad at 4 seeds, same (in no sequential test) at all 30: 38 of 90.
    assert "with sequential seeds (38 of the 90 runs needed by the design so far" in out
    assert "no forecast of the design's end yet" in out
    assert not (tmp_path / "out").exists()


def test_estimate_forecasts_the_design_end_from_the_first_wave(tmp_path, monkeypatch, capsys):
    import monetk.probe

    monkeypatch.setattr(monetk.probe, "step_time", lambda config: 0.25)
    run(tmp_path, SPEC, "--seeds", "1-4")  # the first look's wave, undecided
    capsys.readouterr()
    code, calls = run(tmp_path, SPEC, "--estimate")
    assert code == 0 and calls == []
    out = capsys.readouterr().out
    # Continuations resample seeds 1-4's differences; the e-process's stop over differences all
    # equal to the largest (smallest) of them bounds theirs from below (above).
    observed = [fg_ari(0.0, s) - fg_ari(1.0, s) for s in range(1, 5)]
    looks = study_looks(4, 2, 30)
    first, last = (decided_at(np.full(30, bound), looks) for bound in (max(observed),
                                                                       min(observed)))
    assert 4 < first <= last < 30
    # Left: same's 26 seeds (in no sequential test) and good and bad from seed 5 to the stop.
    line = next(x for x in out.splitlines() if "to the design's end (forecast: 200" in x)
    median, p90 = (int(x) for x in re.findall(r"(\d+) runs", line))
    assert 26 + 2 * (first - 4) <= median <= p90 <= 26 + 2 * (last - 4)
    # Each run: the default max_steps (1,000,000) at the probe's 0.25 s a step.
    assert f"median {median} runs, wall" in line
    assert f"{median * 1_000_000 * 0.25 / 3600:,.0f} device-hours; 90th" in line
