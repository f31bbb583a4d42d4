"""The runner: expansion, run identity, the store and its views, skipping, sharing, resuming,
failures, executors, results.csv and the report call.

Fast tests replace monetk's trainer by ``fake_run_experiment`` (below): it follows contract A
(writes config.json and, last and atomically, result.json) with numbers computed from the config,
so every expectation here is computed independently of the runner. Tests marked ``slow`` train
for real (the smoke profile) through ``python runner.py``.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from monetk.callbacks import TIMING_KEYS
from monetk.config import DEFAULTS, resolve
from monetk_runner import cli, executors
from monetk_runner.cli import main
from monetk_runner.collect import effective_result, parameter_columns
from monetk_runner.executors import ProgressFile, Task, WorkerProcesses, execute
from monetk_runner.expand import Run, load_runs
from monetk_runner.identity import EXECUTION_ONLY, PINNED_IN_HASH, run_id, with_continue
from monetk_runner.plan import Planned, plan
from monetk_runner.progress import RunBoard
from monetk_runner.store import POINTER, Found, RunStore

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"

FAKE_TRAINER = '''
"""A stand-in for monetk.experiment.run_experiment (contract A), numbers from the config."""
import hashlib, json, os
from pathlib import Path


def metrics(config, step):
    # Training up to a step does not depend on whether the run continues past the stop.
    same_until_stop = {**config, "train": {**config["train"], "continue_after_stop": None}}
    digest = hashlib.sha256(json.dumps(same_until_stop, sort_keys=True).encode()).digest()
    base = digest[0] / 255
    return {"fg_ari": round(base * step / config["train"]["max_steps"], 6),
            "ari": round(base / 2, 6),
            "fg_ari_multi": 0.25, "fg_ari_trivial": 0.125, "mse": round(1.0 / step, 6),
            "n_fg_images": 16}


def fake_run_experiment(config, run_dir, progress=None):
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    resumed = (run_dir / "checkpoint").is_dir()
    with open(os.environ["FAKE_TRAIN_LOG"], "a") as log:
        log.write(json.dumps({"run_dir": run_dir.name, "seed": config["seed"],
                              "beta": config["loss"]["beta"], "resumed": resumed,
                              "reconstruction": config["loss"]["reconstruction"],
                              "cuda": os.environ.get("CUDA_VISIBLE_DEVICES"), "pid": os.getpid(),
                              "threads": os.environ.get("MONETK_THREADS")}) + "\\n")
    (run_dir / "config.json").write_text(json.dumps(config))
    train = config["train"]
    if config["loss"]["beta"] == 0.123:
        raise RuntimeError("boom in the model")
    max_steps = train["max_steps"]
    for step in range(1, max_steps + 1):
        if progress is not None:
            progress(step, max_steps)
    # The stopping rule fires half-way for even seeds and never for odd ones.
    stop = max_steps // 2 if config["seed"] % 2 == 0 else None
    steps = max_steps if stop is None or train["continue_after_stop"] else stop
    result = {"status": "ok", "reason": None, "steps": steps, "stop_step": stop,
              "continued": bool(train["continue_after_stop"] and stop is not None),
              "final": metrics(config, steps),
              "at_stop": None if stop is None else metrics(config, stop),
              "wall_time_s": 0.5, "device": "cpu (fake)", "versions": {}}
    if train["learning_rate"] > 1e6:
        result.update(status="failed", reason="NaN loss at step 1", final=None, at_stop=None)
    tmp = run_dir / ".result.json.tmp"
    tmp.write_text(json.dumps(result))
    os.replace(tmp, run_dir / "result.json")
    return result
'''


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """The fake trainer, importable by spawned workers; ``fake.calls()`` lists its calls."""
    folder = tmp_path / "fake_module"
    folder.mkdir()
    (folder / "fake_trainer.py").write_text(FAKE_TRAINER)
    monkeypatch.syspath_prepend(str(folder))
    paths = [str(folder), os.environ.get("PYTHONPATH", "")]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, paths)))  # for Ray workers
    log = tmp_path / "calls.jsonl"
    log.touch()
    monkeypatch.setenv("FAKE_TRAIN_LOG", str(log))
    module = importlib.import_module("fake_trainer")
    module = importlib.reload(module)

    def calls() -> list[dict]:
        return [json.loads(line) for line in log.read_text().splitlines()]

    module.fake_run_experiment.calls = calls
    yield module.fake_run_experiment
    sys.modules.pop("fake_trainer", None)


class ReportSpy:
    def __init__(self):
        self.calls = []

    def __call__(self, spec, results, report_dir, results_dir):
        self.calls.append((spec, results, Path(report_dir), Path(results_dir)))


def runner(out: Path, *args: str, train=None, report=None) -> int:
    return main([*args, "--out", str(out)], train=train, report=report or ReportSpy())


def smoke(name: str) -> list[str]:
    return [str(SPECS / f"{name}.yaml"), "--profile", "smoke"]


# --- identity --------------------------------------------------------------------------------


def _leaves(tree, path=()):
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from _leaves(value, (*path, key))
        else:
            yield (*path, key), value


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, (int, float)):
        return value + 1
    if isinstance(value, list):
        return [*value, value[-1] if value else {"class": "keras.callbacks.History"}]
    if value is None:
        return 3
    return value + "x"


def test_every_training_value_changes_the_run_id_and_execution_values_do_not():
    config = resolve({})
    reference = run_id(config)
    for path, value in _leaves(DEFAULTS):
        changed = json.loads(json.dumps(config))
        node = changed
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = _changed(value)
        hashed = path not in EXECUTION_ONLY and path not in PINNED_IN_HASH
        assert (run_id(changed) != reference) == hashed, path


def test_run_ids_are_pinned_and_change_with_the_numerics_version():
    # Pinned for numerics version 3 (monetk 0.3); a changed default or numerics version changes
    # every run id, and this test shows it. train.compile is hashed at its pinned value.
    assert run_id(resolve({})) == "f7aab7207fa59b39"
    assert run_id(resolve({"seed": 7, "loss": {"beta": 0.25}})) == "76701a26b9cf3886"
    for setting in (True, False, "auto"):
        assert run_id(resolve({"train": {"compile": setting}})) == "f7aab7207fa59b39"


def test_execution_keys_added_in_0_3_keep_every_run_id():
    # train.tensorboard and train.callbacks are absent from the configs of earlier runs: with
    # them absent or set to anything, a default config keeps the id pinned above.
    config = resolve({})
    earlier = json.loads(json.dumps(config))
    del earlier["train"]["tensorboard"], earlier["train"]["callbacks"]
    assert run_id(earlier) == run_id(config) == "f7aab7207fa59b39"
    logged = resolve({"train": {"tensorboard": False, "callbacks": [
        {"class": "keras.callbacks.CSVLogger", "args": {"filename": "{run_dir}/log.csv"}}]}})
    assert run_id(logged) == "f7aab7207fa59b39"


def test_a_0_2_config_hashed_without_numerics_gives_the_0_2_run_id():
    """The 0.2 rule, written out here: SHA-256 of the sorted compact JSON of the config without
    its execution-only keys. Its ids (pinned by monetk 0.1 and 0.2) are not 0.3's."""
    import hashlib

    old = resolve({"seed": 7, "loss": {"beta": 0.25}})
    del old["train"]["rmsprop_initial"]  # not a key before 0.3
    for key in ("warmup_steps", "lr_decay", "lr_final_ratio"):  # added after 0.3
        del old["train"][key]
    for section, key in EXECUTION_ONLY:
        del old[section][key]
    old["train"]["compile"] = False
    text = json.dumps(old, sort_keys=True, separators=(",", ":"))
    assert hashlib.sha256(text.encode()).hexdigest()[:16] == "3a0bbd90bfa55e42"
    assert run_id(resolve({"seed": 7, "loss": {"beta": 0.25}})) != "3a0bbd90bfa55e42"


def test_run_id_ignores_int_versus_float_and_key_order():
    config = resolve({"loss": {"beta": 0.0, "sigmas": [0.11, 0.09]}})
    same = resolve({"loss": {"sigmas": [0.11, 0.09], "beta": 0}})
    same = dict(reversed(list(same.items())))
    assert run_id(config) == run_id(same)
    assert run_id(config) != run_id(resolve({"loss": {"beta": 0.5}}))


# --- expansion -------------------------------------------------------------------------------


def test_run_config_merges_defaults_dataset_condition_and_seed(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\n"
        "defaults: {train: {max_steps: 40, batch_size: 4}, loss: {gamma: 0.3}}\n"
        "datasets:\n"
        "  a: {model: {num_slots: 3}, train: {max_steps: 30}}\n"
        "conditions:\n"
        "  c: {train: {max_steps: 20}, loss: {beta: {per_dataset: {a: 0.7}}}}\n"
        "seeds: [4, 9]\n"
        "continue_seeds: [9]\n"
    )
    _, runs = load_runs(spec)
    assert [(r.dataset, r.condition, r.seed) for r in runs] == [("a", "c", 4), ("a", "c", 9)]
    expected = json.loads(json.dumps(DEFAULTS))
    expected["seed"] = 4
    expected["model"]["num_slots"] = 3
    expected["train"].update(max_steps=20, batch_size=4)  # condition > dataset > defaults
    expected["loss"].update(beta=0.7, gamma=0.3)
    assert runs[0].config == expected
    assert runs[1].config["train"]["continue_after_stop"] is True
    assert runs[0].run_id == run_id(expected)
    assert runs[0].alt_id == run_id(with_continue(expected, True))


# --- end to end with the fake trainer --------------------------------------------------------


def test_smoke_spec_trains_every_run_once_and_a_second_invocation_trains_nothing(
    tmp_path, fake, capsys
):
    out = tmp_path / "out"
    report = ReportSpy()
    assert runner(out, *smoke("section3_2"), train=fake, report=report) == 0
    assert len(fake.calls()) == 8  # 2 datasets x 2 conditions x 2 seeds
    view = out / "section3_2" / "multi_dsprites" / "IR+M" / "seed-1"
    assert view.is_symlink() and not os.path.isabs(os.readlink(view))
    assert view.resolve().parent == (out / "store").resolve()
    assert json.loads((view / "config.json").read_text())["loss"]["reconstruction"] == "ir"
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    assert len(results) == 8 and set(results["status"]) == {"ok"}
    for row in results.to_dict("records"):
        stored = json.loads((out / "section3_2" / row["run_dir"] / "result.json").read_text())
        assert row["fg_ari"] == stored["final"]["fg_ari"] and row["steps"] == stored["steps"]
    capsys.readouterr()

    assert runner(out, *smoke("section3_2"), train=fake) == 0
    assert len(fake.calls()) == 8
    assert "All 8 selected runs are complete; nothing to train." in capsys.readouterr().out


def test_dry_run_prints_one_line_per_run_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no data/ here: the paper's files are missing
    out = tmp_path / "out"
    assert main([str(SPECS / "section3_3.yaml"), "--dry-run", "--out", str(out)]) == 2
    lines = capsys.readouterr().out.splitlines()
    rows = [line for line in lines if line.startswith(("multi_dsprites ", "objects_room "))]
    assert len(rows) == 600
    assert all(line.split()[4] == "todo" for line in rows)
    assert lines[-4].startswith("600 runs (600 distinct): 0 done, 0 failed, 0 partial, 600 todo")
    assert lines[-3] == "Data files:" and all(" missing " in line for line in lines[-2:])
    assert not out.exists()


def test_section3_2_after_section3_1_trains_only_ir_m(tmp_path, fake, capsys):
    out = tmp_path / "out"
    assert runner(out, *smoke("section3_1"), train=fake) == 0
    assert len(fake.calls()) == 16
    capsys.readouterr()
    assert main([*smoke("section3_2"), "--dry-run", "--out", str(out)]) == 0
    table = capsys.readouterr().out
    nll = [
        line
        for line in table.splitlines()
        if line.startswith(("multi_dsprites ", "objects_room ")) and " NLL+M " in line
    ]
    assert len(nll) == 4 and all(" done " in line and "section3_1/" in line for line in nll)
    served = [line for line in nll if "served by the continued run" in line]
    assert [line.split()[2] for line in served] == ["1", "1"]  # 3.1 smoke continues seed 1 only
    assert "4 done, 0 failed, 0 partial, 4 todo; 4 shared" in table

    assert runner(out, *smoke("section3_2"), train=fake) == 0
    new = fake.calls()[16:]
    assert len(new) == 4 and {call["reconstruction"] for call in new} == {"ir"}


def test_stopped_run_served_by_its_continued_twin_reports_what_it_would_have(tmp_path, fake):
    """Section 3.1 smoke trains seed 1 past the stop; 3.2's NLL+M seed 1 (a stopped run) is
    served from it. Its row must equal the row of the stopped run trained on its own."""
    shared, alone = tmp_path / "shared", tmp_path / "alone"
    for seed in ("1", "2"):
        spec = [
            *smoke("section3_1"),
            "--set",
            f"continue_seeds=[{seed}]",
            "--seeds",
            seed,
            "--conditions",
            "01",
        ]
        assert runner(shared, *spec, train=fake) == 0
    assert runner(shared, *smoke("section3_2"), "--conditions", "NLL+M", train=fake) == 0
    assert runner(alone, *smoke("section3_2"), "--conditions", "NLL+M", train=fake) == 0
    a = pd.read_csv(shared / "section3_2" / "results.csv").set_index(
        ["dataset", "condition", "seed"]
    )
    b = pd.read_csv(alone / "section3_2" / "results.csv").set_index(
        ["dataset", "condition", "seed"]
    )
    nll = a.index.get_level_values("condition") == "NLL+M"
    assert len(fake.calls()) == 4 + 4  # nothing trained for 3.2 in `shared`
    assert a[nll].drop(columns=["run_id"]).equals(b[nll].drop(columns=["run_id"]))
    assert a.loc[("multi_dsprites", "NLL+M", 2), "steps"] == 10  # the even seed stopped at 10


def test_a_continued_run_reports_its_at_stop_metrics_in_every_spec(tmp_path, fake):
    """Issue 14: 3.1's continued seed 2 of condition 01 is 3.2's NLL+M seed 2. Both specs report
    the metrics at the moment the rule stopped it (step 10 of 20); only 3.1's Table 1 column
    ``fg_ari_full`` holds the value after max_steps."""
    out = tmp_path / "out"
    spec31 = [*smoke("section3_1"), "--set", "continue_seeds=[2]", "--conditions", "01"]
    assert runner(out, *spec31, train=fake) == 0
    assert runner(out, *smoke("section3_2"), "--conditions", "NLL+M", train=fake) == 0
    index = ["dataset", "condition", "seed"]
    a = pd.read_csv(out / "section3_1" / "results.csv", dtype={"condition": str}).set_index(index)
    b = pd.read_csv(out / "section3_2" / "results.csv").set_index(index)
    a, b = a.loc[("multi_dsprites", "01", 2)], b.loc[("multi_dsprites", "NLL+M", 2)]
    assert bool(a["continued"]) and a["steps"] == 20 and a["stop_step"] == 10
    assert a["fg_ari"] == b["fg_ari"] and a["ari"] == b["ari"] and a["mse"] == b["mse"]
    # The fake's fg_ari grows linearly with the step: full training is twice the stop's value.
    assert a["fg_ari_full"] == pytest.approx(2 * a["fg_ari"], abs=2e-6)
    assert a["fg_ari_full"] != a["fg_ari"] and np.isnan(b["fg_ari_full"])


def test_effective_result_of_a_stopped_run_from_a_continued_twin():
    config = with_continue(resolve({"seed": 2}), False)
    twin = {
        "status": "ok",
        "steps": 100,
        "stop_step": 40,
        "continued": True,
        "final": {"fg_ari": 0.9},
        "at_stop": {"fg_ari": 0.7},
    }
    run = Run("d", "c", 2, config, run_id(config), run_id(with_continue(config, True)))
    served = effective_result(Planned(run, Found(run.alt_id, "done", twin, aliased=True), ()))
    assert served["steps"] == 40 and served["final"] == {"fg_ari": 0.7}
    assert served["continued"] is False


def test_failed_run_is_recorded_with_its_reason_and_the_others_complete(tmp_path, fake, capsys):
    out = tmp_path / "out"
    nan = ["--set", "conditions.IR+M.train.learning_rate=1e10"]
    assert runner(out, *smoke("section3_2"), *nan, train=fake) == 1
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    failed = results[results["status"] == "failed"]
    assert set(failed["condition"]) == {"IR+M"} and len(failed) == 4
    assert set(failed["reason"]) == {"NaN loss at step 1"}
    assert set(results[results["condition"] == "NLL+M"]["status"]) == {"ok"}
    err = capsys.readouterr().err
    assert re.search(r"\] multi_dsprites/IR\+M/seed-1: failed .*\(NaN loss at step 1\)", err)

    assert runner(out, *smoke("section3_2"), *nan, train=fake) == 1  # finished: not retrained
    assert len(fake.calls()) == 8
    assert runner(out, *smoke("section3_2"), *nan, "--retry-failed", train=fake) == 1
    assert len(fake.calls()) == 12


def test_exception_is_recorded_as_failed_with_the_last_traceback_line(tmp_path, fake):
    out = tmp_path / "out"
    code = runner(
        out,
        *smoke("section3_2"),
        "--set",
        "conditions.IR+M.loss.beta=0.123",
        "--seeds",
        "1",
        "--datasets",
        "multi_dsprites",
        train=fake,
    )
    assert code == 1
    view = out / "section3_2" / "multi_dsprites" / "IR+M" / "seed-1"
    result = json.loads((view / "result.json").read_text())
    assert result["status"] == "failed" and result["reason"] == "RuntimeError: boom in the model"
    assert "Traceback" in (view / "error.log").read_text()
    ok = json.loads(
        (out / "section3_2" / "multi_dsprites" / "NLL+M" / "seed-1" / "result.json").read_text()
    )
    assert ok["status"] == "ok"


def test_partial_run_resumes_and_a_half_written_result_is_not_finished(tmp_path, fake, capsys):
    out = tmp_path / "out"
    args = [
        *smoke("section3_2"),
        "--seeds",
        "1",
        "--datasets",
        "multi_dsprites",
        "--conditions",
        "IR+M",
    ]
    _, runs = load_runs(SPECS / "section3_2.yaml", "smoke")
    (run,) = [r for r in runs if r.label == "multi_dsprites/IR+M/seed-1"]
    run_dir = RunStore(out).run_dir(run.run_id)
    (run_dir / "checkpoint").mkdir(parents=True)
    (run_dir / "checkpoint" / "state.json").write_text("{}")
    (run_dir / ".result.json.123.tmp").write_text('{"status": "o')  # a write cut short
    assert main([*args, "--dry-run", "--out", str(out)]) == 0
    assert f"{run.run_id}  partial" in capsys.readouterr().out
    assert runner(out, *args, train=fake) == 0
    (call,) = fake.calls()
    assert call["run_dir"] == run.run_id and call["resumed"] is True


def test_yaml_only_condition_runs_without_code_change(tmp_path, fake):
    spec = tmp_path / "mw_beta.yaml"
    spec.write_text(
        f"extends: {SPECS / 'section3_3.yaml'}\n"
        "name: mw_beta\n"
        "conditions:\n"
        "  MW+M+beta1:\n"
        "    loss: {reconstruction: mw, mask: mse, beta: 1.0,\n"
        "           gamma: {per_dataset: {multi_dsprites: 0.01, objects_room: 0.1}}}\n"
    )
    out = tmp_path / "out"
    assert (
        runner(out, str(spec), "--profile", "smoke", "--conditions", "MW+M+beta1", train=fake) == 0
    )
    calls = fake.calls()
    assert len(calls) == 4 and {(c["reconstruction"], c["beta"]) for c in calls} == {("mw", 1.0)}
    results = pd.read_csv(out / "mw_beta" / "results.csv", keep_default_na=False)
    new = results[results["condition"] == "MW+M+beta1"]
    assert set(new["status"]) == {"ok"} and set(new["beta"]) == {1.0}
    assert dict(zip(new["dataset"], new["gamma"], strict=True)) == {
        "multi_dsprites": 0.01,
        "objects_room": 0.1,
    }
    # the conditions left out with --conditions (issue 29: not "missing")
    assert set(results[results["condition"] != "MW+M+beta1"]["status"]) == {"not selected"}


def test_results_csv_has_the_contract_columns_and_one_column_per_condition_parameter(
    tmp_path, fake
):
    out = tmp_path / "out"
    assert runner(out, *smoke("section3_2"), "--seeds", "1", train=fake) == 0
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    contract = [
        "dataset",
        "condition",
        "seed",
        "status",
        "fg_ari",
        "ari",
        "fg_ari_multi",
        "fg_ari_trivial",
        "mse",
        "steps",
        "stop_step",
        "continued",
        "fg_ari_full",
        "ari_full",
        "fg_ari_multi_full",
        "mse_full",
        "wall_time_s",
        "run_dir",
        "reconstruction",
        "mask",
        "latent",
        "beta",
        "gamma",
        "sigmas",
        "ir_sigma",
    ]
    assert list(results.columns[: len(contract)]) == contract
    assert set(results["sigmas"]) == {"0.11,0.09"}
    assert dict(zip(results["condition"], results["reconstruction"], strict=True)) == {
        "NLL+M": "nll",
        "IR+M": "ir",
    }
    left_out = results[results["seed"] == 2]  # --seeds 1: seed 2 was not asked for
    assert len(left_out) == 4 and set(left_out["status"]) == {"not selected"}
    assert set(left_out["run_dir"]) == {""}


def test_parameter_column_names_fall_back_to_the_dotted_path_on_a_clash(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\ndatasets: {a: {}}\nseeds: 1\nconditions:\n"
        "  x: {train: {batch_size: 8}, eval: {batch_size: 9}, model: {latent_size: 4}}\n"
    )
    loaded, _ = load_runs(spec)
    columns = parameter_columns(loaded)
    assert columns["train.batch_size"] == ("train", "batch_size")
    assert columns["eval.batch_size"] == ("eval", "batch_size")
    assert columns["latent_size"] == ("model", "latent_size")


def test_report_gets_the_spec_and_the_results_and_report_only_trains_nothing(tmp_path, fake):
    out = tmp_path / "out"
    report = ReportSpy()
    assert runner(out, *smoke("section3_2"), train=fake, report=report) == 0
    ((spec, results, report_dir, results_dir),) = report.calls
    assert spec["name"] == "section3_2" and spec["profile"] == "smoke"
    assert spec["tests"][0]["pairs"] == [["NLL+M", "IR+M"]] and spec["seeds"] == "1-2"
    on_disk = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    assert results["fg_ari"].tolist() == on_disk["fg_ari"].tolist()
    assert report_dir == out / "section3_2" / "report" and results_dir == out / "section3_2"

    again = ReportSpy()
    assert runner(out, *smoke("section3_2"), "--report-only", train=fake, report=again) == 0
    assert len(fake.calls()) == 8 and len(again.calls) == 1


def test_report_failure_gives_exit_status_1_after_results_are_written(tmp_path, fake, capsys):
    def broken(*args, **kwargs):
        raise ValueError("no figures today")

    out = tmp_path / "out"
    assert runner(out, *smoke("section3_2"), "--seeds", "1", train=fake, report=broken) == 1
    assert (out / "section3_2" / "results.csv").exists()
    assert "Report failed: ValueError: no figures today" in capsys.readouterr().err


# --- store, executors, progress --------------------------------------------------------------


def test_views_fall_back_to_a_pointer_file_when_symlinks_fail(tmp_path, fake, monkeypatch):
    def no_symlinks(*args, **kwargs):
        raise OSError("symlinks not supported")

    monkeypatch.setattr(os, "symlink", no_symlinks)
    out = tmp_path / "out"
    assert (
        runner(out, *smoke("section3_2"), "--seeds", "1", "--datasets", "objects_room", train=fake)
        == 0
    )
    view = out / "section3_2" / "objects_room" / "NLL+M" / "seed-1"
    pointer = json.loads((view / POINTER).read_text())
    assert (view / pointer["store"] / "result.json").exists()
    store = RunStore(out)
    assert store.views()[pointer["run_id"]] == ["section3_2/objects_room/NLL+M/seed-1"]


def test_a_run_locked_by_another_process_is_left_alone(tmp_path, fake):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    config = resolve({})
    task = Task("id", config, str(run_dir), "d/c/seed-0", str(tmp_path))
    with open(run_dir / executors.LOCK, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        assert execute(task, fake)["status"] == "busy"
    assert fake.calls() == []
    assert execute(task, fake)["status"] == "ok" and len(fake.calls()) == 1
    assert execute(task, fake)["status"] == "ok" and len(fake.calls()) == 1  # finished: skipped


def _tasks(out: Path, count: int) -> list[Task]:
    _, runs = load_runs(SPECS / "section3_2.yaml", "smoke")
    store = RunStore(out)
    return [
        Task(r.run_id, r.config, str(store.run_dir(r.run_id)), r.label, str(ROOT))
        for r in runs[:count]
    ]


class QuietBoard:
    def __init__(self):
        self.finished = []

    def run_started(self, task):
        return None

    def run_finished(self, task, outcome):
        self.finished.append((task.label, outcome["status"]))

    def refresh(self, tasks):
        pass


def test_worker_processes_give_each_worker_one_gpu(tmp_path, fake):
    board = QuietBoard()
    tasks = _tasks(tmp_path / "out", 4)
    outcomes = WorkerProcesses(2, fake, gpus=["3", "5"]).run(tasks, board)
    assert {o["status"] for o in outcomes.values()} == {"ok"} and len(board.finished) == 4
    calls = fake.calls()
    assert len(calls) == 4 and {c["cuda"] for c in calls} <= {"3", "5"}
    gpu_of = {}
    for call in calls:  # a worker keeps its GPU, and no two workers share one
        assert gpu_of.setdefault(call["pid"], call["cuda"]) == call["cuda"]
    assert len(set(gpu_of.values())) == len(gpu_of) and call["pid"] != os.getpid()
    assert all(c["threads"] is None for c in calls)


def test_workers_option_trains_in_worker_processes(tmp_path, fake, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    out = tmp_path / "out"
    assert runner(out, *smoke("section3_2"), "--workers", "2", train=fake) == 0
    calls = fake.calls()
    assert len(calls) == 8 and os.getpid() not in {call["pid"] for call in calls}
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    assert set(results["status"]) == {"ok"}


def test_more_workers_than_gpus_pack_the_workers_evenly_on_the_gpus(monkeypatch):
    import queue

    from monetk_runner.executors import _init_worker

    slots = queue.Queue()
    for slot in range(4):
        slots.put(slot)
    pinned = []
    for _ in range(4):  # what each of 4 worker processes does at its start, with 2 GPUs
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        _init_worker(slots, ["3", "5"], 1, os.getppid())  # its watcher waits on a live parent
        pinned.append(os.environ["CUDA_VISIBLE_DEVICES"])
    assert pinned == ["3", "5", "3", "5"]  # two workers on each GPU


def test_runs_per_gpu_multiplies_the_auto_workers_and_is_refused_for_slurm(monkeypatch, capsys):
    monkeypatch.setattr(cli, "visible_gpus", lambda: ["0", "1"])
    assert cli.auto_workers(100, runs_per_gpu=3) == 6
    assert cli.auto_workers(5, runs_per_gpu=3) == 5  # never more workers than runs
    with pytest.raises(SystemExit) as exit_:
        main([str(SPECS / "section3_2.yaml"), "--executor", "slurm", "--runs-per-gpu", "2"])
    assert exit_.value.code == 2
    assert "--runs-per-gpu applies to --executor local and ray" in capsys.readouterr().err


def test_worker_processes_without_gpus_share_the_cpu_threads(tmp_path, fake):
    tasks = _tasks(tmp_path / "out", 2)
    WorkerProcesses(2, fake, gpus=[]).run(tasks, QuietBoard())
    expected = str(max(1, (os.cpu_count() or 1) // 2))
    assert {c["threads"] for c in fake.calls()} == {expected}


SLOW_FAKE_DRIVER = """
import os, sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from monetk_runner.cli import main

def slow_train(config, run_dir, progress=None):
    Path(os.environ["PID_DIR"], str(os.getpid())).touch()
    time.sleep(120)
    raise AssertionError("the worker should have been stopped")

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], train=slow_train))
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")  # a zombie has exited


def _workers_of_a_killed_runner_stop(tmp_path: Path, kill) -> None:
    driver = tmp_path / "driver.py"
    driver.write_text(SLOW_FAKE_DRIVER.format(root=str(ROOT)))
    pids = tmp_path / "pids"
    pids.mkdir()
    runner_process = subprocess.Popen(
        [sys.executable, str(driver), str(SPECS / "section3_2.yaml"), "--profile", "smoke",
         "--workers", "2", "--out", str(tmp_path / "out")],
        env={**os.environ, "PID_DIR": str(pids)}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while len(list(pids.iterdir())) < 2 and time.time() < deadline:
        time.sleep(0.2)
    workers = [int(p.name) for p in pids.iterdir()]
    assert len(workers) == 2, "the workers did not start"
    kill(runner_process)
    runner_process.wait(timeout=30)
    deadline = time.time() + 10
    while any(_alive(pid) for pid in workers) and time.time() < deadline:
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
@pytest.mark.parametrize("signal_name", ["SIGTERM", "SIGKILL"])
def test_workers_stop_when_the_runner_is_killed(tmp_path, signal_name):
    number = getattr(signal, signal_name)
    _workers_of_a_killed_runner_stop(tmp_path, lambda process: process.send_signal(number))


@pytest.mark.parametrize(
    ("gpus", "cores", "tasks", "expected"),
    [([], 2, 8, 2),  # a 2-core laptop: two single-threaded runs side by side
     ([], 64, 100, cli.MAX_AUTO_CPU_WORKERS),  # capped
     ([], 16, 3, 3),  # never more workers than runs
     (["0", "1", "2", "3"], 64, 100, 4),  # one per GPU
     ([], None, 5, 1)],  # os.cpu_count() unknown
)
def test_workers_auto_is_one_per_gpu_else_one_per_core(monkeypatch, gpus, cores, tasks, expected):
    monkeypatch.setattr(cli, "visible_gpus", lambda: gpus)
    monkeypatch.setattr(cli.os, "cpu_count", lambda: cores)
    assert cli.auto_workers(tasks) == expected


def test_progress_file_and_board_lines(tmp_path):
    seen = []
    progress = ProgressFile(tmp_path, lambda step, total, **info: seen.append(step), every_s=3600)
    for step in (1, 2, 3):
        progress(step, 3)
    assert seen == [1, 2, 3]
    assert json.loads((tmp_path / "progress.json").read_text())["step"] == 3  # first and last

    class Stream:
        text = ""

        def write(self, s):
            Stream.text += s

        def flush(self):
            pass

    task = Task("id", {"train": {"max_steps": 4}}, str(tmp_path), "d/c/seed-1", str(tmp_path))
    other = Task("id2", {"train": {"max_steps": 4}}, str(tmp_path), "d/c/seed-2", str(tmp_path))
    board = RunBoard([task, other], stream=Stream(), refresh_every_s=0.0)
    (tmp_path / "progress.json").write_text(json.dumps({"step": 1, "max_steps": 4,
                                                        "time": time.time()}))
    board.refresh([task])  # a run in another process, a quarter done
    assert "d/c/seed-1 25%" in Stream.text
    board.run_started(task)(5, 10)
    board.run_finished(
        task, {"status": "failed", "reason": "NaN", "wall_time_s": 1.0, "final": None, "steps": 5}
    )
    board.close()
    assert "[1/2] d/c/seed-1: failed steps=5 (NaN) 1.0 s" in Stream.text
    assert "1/2" in Stream.text and "runs" in Stream.text


def test_plan_marks_runs_shared_by_two_conditions_of_one_spec(tmp_path):
    spec = tmp_path / "s.yaml"
    spec.write_text(
        "name: s\ndatasets: {a: {}}\nseeds: 1-2\nconditions:\n"
        "  x: {loss: {beta: 0}}\n  y: {loss: {beta: 0.0}}\n  z: {loss: {beta: 1}}\n"
    )
    loaded, runs = load_runs(spec)
    planned = plan(loaded.name, runs, RunStore(tmp_path / "out"))
    shared = {p.run.label: p.shared_with for p in planned}
    assert shared["a/x/seed-1"] == ("s/a/y/seed-1",)
    assert shared["a/z/seed-1"] == ()


# --- real training (monetk.experiment) -------------------------------------------------------


def run_cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "runner.py", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


#: history.csv's wall-clock columns (monetk.callbacks.StepTimer).
TIMING = list(TIMING_KEYS)


def results_without_timing(path: Path) -> pd.DataFrame:
    table = pd.read_csv(path, keep_default_na=False)
    return table.drop(columns=["wall_time_s", "device"])


@pytest.mark.slow
def test_real_smoke_end_to_end_then_nothing_to_train(tmp_path):
    out = tmp_path / "out"
    first = run_cli(*smoke("section3_2"), "--out", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    results = pd.read_csv(out / "section3_2" / "results.csv")
    assert len(results) == 8 and set(results["status"]) == {"ok"}
    assert (out / "section3_2" / "report" / "report.md").exists()
    second = run_cli(*smoke("section3_2"), "--out", str(out))
    assert second.returncode == 0
    assert "All 8 selected runs are complete; nothing to train." in second.stdout
    assert "Training" not in second.stdout


@pytest.mark.slow
def test_real_smoke_runs_write_tensorboard_events_under_the_spec_and_run_named_callbacks(
        tmp_path, tensorboard_history):
    # Issue 20: `tensorboard --logdir OUT/<spec>` finds every run by dataset/condition/seed (the
    # views are symlinks into the store; TensorBoard's directory walk follows them), and the
    # events hold history.csv's numbers. A spec-named CSVLogger writes one file per run.
    from tensorboard.backend.event_processing.event_multiplexer import EventMultiplexer

    out = tmp_path / "out"
    logger = '[{class: keras.callbacks.CSVLogger, args: {filename: "{run_dir}/keras_log.csv"}}]'
    assert runner(out, *smoke("section3_2"), "--seeds", "1", "--workers", "1",
                  "--set", f"defaults.train.callbacks={logger}") == 0
    spec_dir = out / "section3_2"
    views = [f"{dataset}/{condition}/seed-1" for dataset in ("multi_dsprites", "objects_room")
             for condition in ("NLL+M", "IR+M")]
    multiplexer = EventMultiplexer().AddRunsFromDirectory(str(spec_dir)).Reload()
    assert sorted(multiplexer.Runs()) == sorted(f"{view}/tensorboard" for view in views)
    for run_dir in (spec_dir / view for view in views):
        events = tensorboard_history(run_dir / "tensorboard", run_dir / "history.csv")
        assert [image.step for image in events.Images("check/attention")] == [10, 20]
        logged = pd.read_csv(run_dir / "keras_log.csv")
        history = pd.read_csv(run_dir / "history.csv")
        assert logged["epoch"].tolist() == [0, 1]
        np.testing.assert_allclose(logged["loss"], history["loss"], rtol=1e-6)


@pytest.mark.slow
def test_real_nan_run_is_recorded_as_failed_and_the_others_complete(tmp_path):
    out = tmp_path / "out"
    done = run_cli(
        *smoke("section3_2"),
        "--datasets",
        "multi_dsprites",
        "--seeds",
        "1",
        "--set",
        "conditions.IR+M.train.learning_rate=1e10",
        "--out",
        str(out),
    )
    assert done.returncode == 1, done.stderr[-3000:]
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    selected = results[results["status"].isin(["ok", "failed"])].set_index("condition")
    assert selected.loc["NLL+M", "status"] == "ok"
    assert selected.loc["IR+M", "status"] == "failed"
    assert "non-finite" in selected.loc["IR+M", "reason"] or "NaN" in selected.loc["IR+M", "reason"]


@pytest.mark.slow
def test_real_section3_2_after_section3_1_trains_only_ir_m(tmp_path):
    out = tmp_path / "out"
    common = ["--datasets", "objects_room", "--out", str(out)]
    first = run_cli(*smoke("section3_1"), "--conditions", "01", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    second = run_cli(*smoke("section3_2"), *common)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Training 2 run(s)" in second.stdout
    trained = [line for line in second.stderr.splitlines() if "] objects_room/" in line]
    assert len(trained) == 2 and all("/IR+M/" in line for line in trained)


@pytest.mark.slow
def test_real_yaml_only_condition_runs(tmp_path):
    spec = tmp_path / "mw_beta.yaml"
    spec.write_text(
        f"extends: {SPECS / 'section3_3.yaml'}\nname: mw_beta\nconditions:\n"
        "  MW+M+beta1: {loss: {reconstruction: mw, mask: mse, beta: 1.0, gamma: 0.01}}\n"
    )
    out = tmp_path / "out"
    done = run_cli(
        str(spec),
        "--profile",
        "smoke",
        "--conditions",
        "MW+M+beta1",
        "--seeds",
        "1",
        "--out",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = pd.read_csv(out / "mw_beta" / "results.csv", keep_default_na=False)
    new = results[results["condition"] == "MW+M+beta1"]
    assert len(new[new["status"] == "ok"]) == 2 and set(new["beta"]) == {1.0}


@pytest.mark.slow
def test_real_sigkill_mid_run_then_rerun_gives_the_uninterrupted_results(tmp_path):
    args = [
        *smoke("section3_2"),
        "--datasets",
        "multi_dsprites",
        "--conditions",
        "NLL+M",
        "--seeds",
        "1",
        "--set",
        "defaults.train.max_steps=60",
    ]
    reference = tmp_path / "reference"
    assert run_cli(*args, "--out", str(reference)).returncode == 0

    out = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, "runner.py", *args, "--out", str(out)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 300
    while not list(out.glob("store/*/checkpoint/state.json")) and time.time() < deadline:
        assert process.poll() is None, "the run finished before it could be killed"
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    (run_dir,) = out.glob("store/*")
    assert not (run_dir / "result.json").exists()  # killed mid-run: not finished

    rerun = run_cli(*args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "0 todo" in rerun.stdout and "1 partial" in rerun.stdout
    name = "section3_2/results.csv"
    pd.testing.assert_frame_equal(
        results_without_timing(out / name), results_without_timing(reference / name)
    )
    history = [  # the wall-clock columns differ between any two runs
        pd.read_csv(p / "multi_dsprites/NLL+M/seed-1/history.csv").drop(columns=TIMING)
        for p in (out / "section3_2", reference / "section3_2")
    ]
    pd.testing.assert_frame_equal(*history)


@pytest.mark.slow
@pytest.mark.ray
def test_ray_executor_trains_into_the_same_layout(tmp_path, fake):
    pytest.importorskip("ray")
    out = tmp_path / "out"
    code = runner(
        out, *smoke("section3_2"), "--datasets", "objects_room", "--executor", "ray", train=fake
    )
    assert code == 0
    calls = fake.calls()
    assert len(calls) == 4 and all(call["pid"] != os.getpid() for call in calls)
    assert {call["threads"] for call in calls} == {"1"}  # --cpus-per-run 1
    results = pd.read_csv(out / "section3_2" / "results.csv", keep_default_na=False)
    ran = results[results["dataset"] == "objects_room"]
    assert set(ran["status"]) == {"ok"}
    for row in ran.to_dict("records"):
        view = out / "section3_2" / row["run_dir"]
        assert view.is_symlink() and (view / "result.json").exists() and (view / "log.txt").exists()


def test_a_damaged_result_is_set_aside_and_the_run_trains_again_to_the_same_results(
        tmp_path, fake, capsys):
    out = tmp_path / "out"
    args = [*smoke("section3_2"), "--datasets", "multi_dsprites"]
    assert runner(out, *args, train=fake) == 0
    straight = (out / "section3_2" / "results.csv").read_text()
    _, runs = load_runs(SPECS / "section3_2.yaml", "smoke")
    damaged = RunStore(out).run_dir(runs[0].run_id) / "result.json"
    damaged.write_text(damaged.read_text()[:25])  # truncated
    capsys.readouterr()
    assert runner(out, *args, train=fake) == 0
    assert f"{damaged}: unreadable" in capsys.readouterr().err
    assert [c["run_dir"] for c in fake.calls()][-1] == runs[0].run_id  # trained again
    assert (out / "section3_2" / "results.csv").read_text() == straight
    [kept] = (damaged.parent / "set-aside").iterdir()
    assert kept.read_text() == damaged.read_text()[:25]


def test_written_files_are_readable_as_the_umask_allows(tmp_path, fake):
    old = os.umask(0o027)
    try:
        importlib.reload(importlib.import_module("monetk.io"))
        from monetk.io import atomic_write_text

        atomic_write_text(tmp_path / "a.txt", "x")
        assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)
        importlib.reload(importlib.import_module("monetk.io"))
    out = tmp_path / "out"
    assert runner(out, *smoke("section3_2"), "--seeds", "1", train=fake) == 0
    assert (out / "section3_2" / "results.csv").stat().st_mode & 0o777 == 0o666 & ~old


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d, "is a directory, not a spec file"),
        (lambda d: (d / "latin1.yaml", (d / "latin1.yaml").write_bytes(b"name: caf\xe9\n"))[0],
         "is not UTF-8 text"),
    ],
)
def test_a_spec_argument_that_is_not_a_readable_file_is_one_line(tmp_path, capsys, make,
                                                                 message):
    out = tmp_path / "out"
    assert main([str(make(tmp_path)), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and not out.exists()


def test_out_naming_a_file_or_an_unwritable_folder_is_one_line(tmp_path, capsys, monkeypatch):
    afile = tmp_path / "afile"
    afile.write_text("")
    assert main([*smoke("section3_2"), "--out", str(afile)]) == 2
    assert f"--out: {afile} is a file, not a folder" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    # root ignores permission bits: the folder reads as unwritable to the runner's os.access
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: (
        Path(path) != locked and real_access(path, mode)))
    assert main([*smoke("section3_2"), "--out", str(locked)]) == 2
    assert f"--out: {locked} is not writable" in capsys.readouterr().err
    assert main([*smoke("section3_2"), "--out", str(locked / "sub")]) == 2
    assert f"--out: {locked / 'sub'} cannot be created: {locked} is not writable" in (
        capsys.readouterr().err)
    assert list(locked.iterdir()) == []


def test_a_runner_that_leaves_runs_to_another_says_its_results_are_incomplete(
        tmp_path, fake, capsys):
    out = tmp_path / "out"
    args = [*smoke("section3_2"), "--datasets", "multi_dsprites", "--seeds", "1"]
    _, runs = load_runs(SPECS / "section3_2.yaml", "smoke")
    held_dir = RunStore(out).run_dir(runs[0].run_id)
    held_dir.mkdir(parents=True)
    with open(held_dir / executors.LOCK, "w") as held:  # the other runner
        fcntl.flock(held, fcntl.LOCK_EX)
        assert runner(out, *args, "--workers", "1", train=fake) == 3
    assert "Incomplete: 1 run(s) are being trained by another runner" in capsys.readouterr().err
    assert runner(out, *args, "--workers", "1", train=fake) == 0


@pytest.mark.parametrize(("cores", "workers", "expected"),
                         [(2, "auto", 1), (16, "auto", 2), (4, 1, 4), (4, 2, 2), (2, 4, 1)])
def test_threads_per_run_do_not_depend_on_how_many_runs_are_left(monkeypatch, cores, workers,
                                                                 expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert cli.run_threads(workers) == expected


def test_the_last_run_of_an_auto_sweep_gets_the_threads_of_the_first(tmp_path, fake, monkeypatch):
    # one run left: --workers auto trains it in this process, with one worker's share of the
    # cores (as when it started beside the others), not every core
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.delenv("MONETK_THREADS", raising=False)
    assert runner(tmp_path / "out", *smoke("section3_2"), "--datasets", "multi_dsprites",
                  "--conditions", "NLL+M", "--seeds", "1", train=fake) == 0
    assert [c["threads"] for c in fake.calls()] == ["1"]
    assert "MONETK_THREADS" not in os.environ


@pytest.mark.slow
def test_real_killed_auto_sweep_resumes_to_the_uninterrupted_results(tmp_path):
    # Issue 21: with --workers auto the last runs of a resumed sweep used to get all the cores
    # (another thread count, other numbers). Kill a 4-run sweep on 2 workers once 3 runs have
    # finished, so that 1 run is left; resume it: the same results.csv as the sweep left alone.
    args = [*smoke("section3_2"), "--datasets", "multi_dsprites",
            "--set", "defaults.train.max_steps=80"]
    reference = tmp_path / "reference"
    assert run_cli(*args, "--out", str(reference)).returncode == 0
    out = tmp_path / "killed"
    process = subprocess.Popen([sys.executable, "runner.py", *args, "--out", str(out)],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while time.time() < deadline and len(list(out.glob("store/*/result.json"))) < 3:
        assert process.poll() is None, "the sweep finished before it could be killed"
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    rerun = run_cli(*args, "--out", str(out))
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    name = "section3_2/results.csv"
    pd.testing.assert_frame_equal(results_without_timing(out / name),
                                  results_without_timing(reference / name))


# --- one folder, one experiment (OUT/<name>/experiment.json) ----------------------------------


def _tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def test_the_folder_records_what_made_it_and_refuses_another_spec_of_the_same_name(
        tmp_path, fake, capsys):
    out = tmp_path / "runs"
    assert runner(out, *smoke("section3_2"), "--seeds", "1", train=fake) == 0
    folder = out / "section3_2"
    before = _tree(folder)
    assert '"profile": "smoke"' in before["experiment.json"].decode()
    copy = tmp_path / "specs" / "copy.yaml"  # a copied spec that kept `name: section3_2`
    copy.parent.mkdir()
    shutil.copy(SPECS / "section3_2.yaml", copy)
    shutil.copy(SPECS / "base.yaml", copy.parent / "base.yaml")
    capsys.readouterr()
    assert runner(out, str(copy), "--profile", "smoke", "--seeds", "1", train=fake) == 2
    error = capsys.readouterr().err
    assert "holds the experiment of" in error and "copy.yaml has the same name" in error
    assert "give it another `name:`" in error and "nothing was run or written" in error
    assert _tree(folder) == before


def test_report_only_refuses_other_overrides_and_reuses_the_folders(
        tmp_path, fake, capsys):
    out = tmp_path / "runs"
    seven = ["--set", "defaults.train.max_steps=7"]
    assert runner(out, *smoke("section3_2"), "--seeds", "1", *seven, train=fake) == 0
    folder = out / "section3_2"
    before = _tree(folder)
    capsys.readouterr()
    nine = ["--set", "defaults.train.max_steps=9"]
    assert runner(out, *smoke("section3_2"), *nine, "--report-only", train=fake) == 2
    error = capsys.readouterr().err
    assert "--set defaults.train.max_steps=7; this command is" in error
    assert _tree(folder) == before
    spy = ReportSpy()
    assert runner(out, str(SPECS / "section3_2.yaml"), "--report-only", report=spy) == 0
    assert "--report-only: the folder's profile and overrides" in capsys.readouterr().out
    [(spec, results, _, _)] = spy.calls
    assert spec["profile"] == "smoke" and spec["overrides"] == ["defaults.train.max_steps=7"]
    assert spec["defaults"]["train"]["max_steps"] == 7
    assert set(results["status"]) == {"ok", "missing"}  # seed 1 trained, seed 2 not
    # training with other overrides is allowed, and said: the folder now follows them
    assert runner(out, *smoke("section3_2"), "--seeds", "1", *nine, train=fake) == 0
    assert "its results.csv and report now follow" in capsys.readouterr().err
    assert "max_steps=9" in (folder / "experiment.json").read_text()


def test_a_rewritten_report_keeps_no_file_of_the_previous_one(tmp_path):
    out = tmp_path / "runs"
    argv = [*smoke("section3_2"), "--seeds", "1", "--out", str(out)]
    assert main([*argv, "--datasets", "multi_dsprites"], train=None) == 0
    report = out / "section3_2" / "report"
    (report / "stale.png").write_bytes(b"old")
    names = {p.name for p in report.iterdir()}
    assert main([*argv, "--report-only"]) == 0
    assert not (report / "stale.png").exists()
    assert {p.name for p in report.iterdir()} == names - {"stale.png"}
    assert not list(report.parent.glob(".report*"))  # no temporary folder left
    text = (report / "report.md").read_text()
    assert "Command: `python runner.py" in text and "overrides of the spec: none." in text
    assert "| multi_dsprites | 16 px | 3 | 20; 20 | 10 | 8 | adam (0.001) |" in text
    assert "torch CPU kernels: " in text and "torch CPU kernels: not recorded" not in text


def test_a_dataset_left_out_with_datasets_is_not_selected_not_missing(tmp_path, fake, capsys):
    out = tmp_path / "runs"
    spy = ReportSpy()
    assert runner(out, *smoke("section3_2"), "--datasets", "multi_dsprites", train=fake,
                  report=spy) == 0
    [(_, results, _, _)] = spy.calls
    status = results.groupby("dataset")["status"].unique()
    assert list(status["multi_dsprites"]) == ["ok"]
    assert list(status["objects_room"]) == ["not selected"]
    assert "(4 ok, 0 failed, 0 missing, 4 not selected)" in capsys.readouterr().out


# --- a portable store (committed without checkpoints) -----------------------------------------

#: What a committed store keeps of a run (.gitignore drops the rest under docs/demo/*/store).
PORTABLE = ("result.json", "config.json", "history.csv", "attention_examples.npz")


def _portable_copy(source: Path, target: Path, leave_out: set[str] = frozenset()) -> None:
    """``source``'s store as a fresh clone has it: the small records of each run, no checkpoint,
    no model, no views, no spec folder."""
    for run_dir in (source / "store").iterdir():
        if run_dir.name in leave_out:
            continue
        for name in PORTABLE:
            if (run_dir / name).is_file():
                (target / "store" / run_dir.name).mkdir(parents=True, exist_ok=True)
                shutil.copy(run_dir / name, target / "store" / run_dir.name / name)


def test_a_store_committed_without_checkpoints_trains_only_what_it_lacks(tmp_path, fake):
    first, clone = tmp_path / "first", tmp_path / "clone"
    argv = [*smoke("section3_2"), "--seeds", "1-2"]
    assert runner(first, *argv, train=fake) == 0
    run_ids = sorted(p.name for p in (first / "store").iterdir())
    assert len(run_ids) == 8 and len(fake.calls()) == 8
    _portable_copy(first, clone, leave_out={run_ids[0]})
    assert not list(clone.rglob("checkpoint"))
    assert runner(clone, *argv, train=fake) == 0
    assert [c["run_dir"] for c in fake.calls()[8:]] == [run_ids[0]]  # only the one left out
    a, b = (pd.read_csv(out / "section3_2" / "results.csv") for out in (first, clone))
    assert a.equals(b)


# --- a longer run starts where a finished shorter one ended (monetk_runner.extend) -------------

def test_a_longer_run_resumes_from_its_shorter_twin_and_equals_a_fresh_one(tmp_path, capsys):
    """Real training (smoke scale): 20 steps, then the same run to 40 starts from the first one's
    final checkpoint; its result equals a 40-step run trained from scratch, bit for bit."""
    one = [*smoke("section3_2"), "--seeds", "1", "--conditions", "NLL+M", "--datasets",
           "multi_dsprites"]

    def steps(n):
        return ["--set", f"defaults.train.max_steps={n}"]

    extended, fresh = tmp_path / "extended", tmp_path / "fresh"
    assert main([*one, *steps(20), "--out", str(extended)]) == 0
    [short_id] = [p.name for p in (extended / "store").iterdir()]
    capsys.readouterr()
    assert main([*one, *steps(40), "--out", str(extended)]) == 0
    assert f"starts from the finished run {short_id} at step 20" in capsys.readouterr().out
    assert main([*one, *steps(40), "--out", str(fresh)]) == 0
    results = [json.loads(next((out / "store").glob(f"*/{name}")).read_text())
               for out, name in ((extended, "extended_from.json"), (fresh, "result.json"))]
    assert results[0] == {"run_id": short_id, "step": 20}
    [long_id] = [p.name for p in (extended / "store").iterdir() if p.name != short_id]
    grown = json.loads((extended / "store" / long_id / "result.json").read_text())
    assert grown["resumed_from"] == 20 and results[1]["resumed_from"] is None
    assert grown["final"] == results[1]["final"] and grown["steps"] == results[1]["steps"] == 40
    history = pd.read_csv(extended / "store" / long_id / "history.csv")
    assert history["step"].tolist() == pd.read_csv(
        next((fresh / "store").glob("*/history.csv")))["step"].tolist()


def test_no_twin_with_a_decaying_rate_or_another_setting(tmp_path):
    from monetk.config import resolve
    from monetk_runner.extend import Twins
    from monetk_runner.store import RunStore

    def shorter_twin(store, config):  # a fresh index each time: the test edits the store
        return Twins(store).longest(config)

    store = RunStore(tmp_path)
    base = resolve({"train": {"max_steps": 20, "check_every": 10, "checkpoint_every": 10}})
    twin = store.run_dir("twin")
    twin.mkdir(parents=True)
    (twin / "config.json").write_text(json.dumps(base))
    (twin / "result.json").write_text(json.dumps({"status": "ok", "steps": 20}))
    for name in ("final_state.json", "model.keras"):
        (twin / name).write_text("{}")
    longer = {**base, "train": {**base["train"], "max_steps": 40}}
    assert shorter_twin(store, longer) == ("twin", 20)
    assert shorter_twin(store, {**longer, "train": {**longer["train"], "lr_decay": "cosine"}}) \
        is None
    assert shorter_twin(store, {**longer, "loss": {**longer["loss"], "beta": 0.3}}) is None
    odd = {**longer, "train": {**longer["train"], "max_steps": 45}}  # 5-step epochs, not 10
    assert shorter_twin(store, odd) is None
    (twin / "model.keras").unlink()  # a committed store keeps no model: nothing to start from
    assert shorter_twin(store, longer) is None
    (twin / "model.keras").write_text("{}")
    (twin / "result.json").write_text(json.dumps({"status": "ok", "steps": 10}))  # rule fired
    assert shorter_twin(store, longer) is None


def test_a_view_left_by_an_earlier_config_is_dropped(tmp_path, fake):
    spec = tmp_path / "longer.yaml"

    def write(steps):
        spec.write_text(f"extends: {SPECS / 'section3_2.yaml'}\nname: longer\n"
                        f"profiles: {{smoke: {{defaults: {{train: {{max_steps: {steps}}}}}}}}}\n")

    write(20)
    out = tmp_path / "runs"
    one = [str(spec), "--profile", "smoke", "--seeds", "1", "--conditions", "NLL+M"]
    assert runner(out, *one, "--datasets", "multi_dsprites", train=fake) == 0
    view = out / "longer" / "multi_dsprites" / "NLL+M" / "seed-1"
    assert view.is_symlink()
    write(30)  # the spec edited: the run is another one, not trained yet
    assert runner(out, *one, "--report-only") == 0
    assert not view.exists() and not view.is_symlink()
    results = pd.read_csv(out / "longer" / "results.csv", keep_default_na=False)
    row = results[(results["dataset"] == "multi_dsprites") & (results["condition"] == "NLL+M")
                  & (results["seed"] == 1)].iloc[0]
    assert row["status"] == "missing" and row["run_dir"] == ""
