"""``runner.py SPEC --estimate`` (monetk_runner.estimate) and the timing probe (monetk.probe).

The projections are worked by hand from a store written here: finished runs whose history.csv
holds StepTimer's columns, runs of another machine or thread count and of an older version (no
timing columns), a partial run with a checkpoint state, and a fake probe for the model no finished
run measured.
"""

from __future__ import annotations

import json
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from monetk import pipeline, probe
from monetk.config import resolve
from monetk_runner.cli import build_parser, main
from monetk_runner.estimate import estimate, format_estimate
from monetk_runner.expand import Run, load_runs
from monetk_runner.plan import plan
from monetk_runner.store import RunStore

ROOT = Path(__file__).resolve().parents[1]
SECTION3_2 = ROOT / "specs" / "section3_2.yaml"
MACHINE = "Test CPU"


def finish(store: RunStore, run: Run, steps: int, stop_step: int | None = None,
           history: dict | None = None, machine: str = MACHINE, threads: int = 1) -> None:
    """A finished run as run_experiment leaves it: config.json, history.csv, result.json."""
    run_dir = store.run_dir(run.run_id)
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps(run.config))
    pd.DataFrame(history or {"step": [10, 20], "loss": [2.0, 1.0]}).to_csv(
        run_dir / "history.csv", index=False)
    (run_dir / "result.json").write_text(json.dumps(
        {"status": "ok", "steps": steps, "stop_step": stop_step, "machine": machine,
         "device": f"cpu ({threads} threads)", "threads": threads}))


@pytest.fixture
def section3_2(tmp_path, monkeypatch):
    """Section 3.2's smoke profile with seeds 1-4 (16 runs of 20 steps; both datasets K = 3, so
    two models: NLL+M's and IR+M's losses), 5 finished, 1 partial; a CPU machine."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    spec, runs = load_runs(SECTION3_2, "smoke", ["seeds=1-4"])
    run = {(r.dataset[0], r.condition[:2], r.seed): r for r in runs}  # ("m", "NL", 1)
    store = RunStore(tmp_path / "out")
    # NLL+M measured by two runs here: steady 0.1 s, and (1.5 - 0.5 compiling + 1.2) / 20 =
    # 0.11 s a step with checks; steady 0.3 s and 3.2 / 10 = 0.32 s (stopped at step 10; its
    # first step, below the steady time, held no compiling). Medians: 0.2 and 0.215 s.
    finish(store, run["m", "NL", 1], 20, history={
        "step": [10, 20], "step_time_s": [0.1, 0.1], "epoch_time_s": [1.5, 1.2],
        "first_step_s": [0.6, None]})
    finish(store, run["m", "NL", 2], 10, stop_step=10, history={
        "step": [10], "step_time_s": [0.3], "epoch_time_s": [3.2], "first_step_s": [0.2]})
    # Not measurements of this machine with 1 thread; an older version without the columns.
    slow = {"step": [10, 20], "step_time_s": [9.0, 9.0], "epoch_time_s": [90.0, 90.0]}
    finish(store, run["o", "NL", 1], 20, history=slow, machine="Other CPU")
    finish(store, run["o", "NL", 2], 20, history=slow, threads=2)
    finish(store, run["m", "IR", 1], 20)
    # objects_room IR+M seed 1: partial, checkpointed at step 10 (10 steps left).
    checkpoint = store.run_dir(run["o", "IR", 1].run_id) / "checkpoint"
    checkpoint.mkdir(parents=True)
    (checkpoint / "ckpt-10.keras").write_bytes(b"")
    (checkpoint / "state-10.json").write_text(json.dumps(
        {"epoch": 1, "step": 10, "model": "ckpt-10.keras", "callbacks": {}}))
    return spec, runs, store


class FakeProbe:
    """A probe that takes 0.5 s a step and records the configs it timed."""

    def __init__(self):
        self.configs: list[dict] = []

    def __call__(self, config: dict) -> float:
        self.configs.append(config)
        return 0.5


def test_hand_worked_projection_from_finished_runs_a_probe_and_a_partial_run(section3_2):
    spec, runs, store = section3_2
    fake = FakeProbe()
    planned = plan(spec.name, runs, store)
    e = estimate(planned, store, workers=2, probe=fake, machine=MACHINE, threads=1,
                 sequential_needed=lambda p: p.run.seed <= 3)
    # Left, seed by seed (datasets, then conditions, in the spec's order): o/IR 1 (10 steps);
    # m/IR 2, o/IR 2; m/NLL, m/IR, o/NLL, o/IR for seeds 3 and 4 (20 steps each).
    assert (e.runs_left, e.steps_left, e.workers) == (11, 210, 2)
    # IR+M: no finished run measured it here: probed once (not once per run), with the threads.
    assert len(fake.configs) == 1
    assert fake.configs[0]["loss"]["reconstruction"] == "ir"
    assert fake.configs[0]["train"]["threads"] == 1
    ir, nll = e.step_times  # in the order of the runs left
    assert (nll.time.step_s, nll.time.with_checks_s) == pytest.approx((0.2, 0.215))
    assert nll.time.source.startswith("median of 2 finished run(s)")
    assert nll.labels == ["multi_dsprites/NLL+M", "objects_room/NLL+M"]
    assert (ir.time.step_s, ir.time.with_checks_s) == (0.5, None)
    # Run times in training order: o/IR 1 10 x 0.5 = 5; IR+M runs 20 x 0.5 = 10; NLL+M runs
    # 20 x 0.215 = 4.3 (checks included): [5, 10, 10, 4.3, 10, 4.3, 10, 4.3, 10, 4.3, 10].
    assert e.full.device_s == pytest.approx(5 + 6 * 10 + 4 * 4.3)
    # Two workers, each run to the one that frees first: (5, 0) (5, 10) (15, 10) (15, 14.3)
    # (15, 24.3) (19.3, 24.3) (29.3, 24.3) (29.3, 28.6) (29.3, 38.6) (33.6, 38.6) (43.6, 38.6).
    assert e.full.wall_s == pytest.approx(43.6)
    # Finished runs that stop: 20, 10, 20, 20, 20 of 20 steps: 90% on average, every run too.
    assert (e.stop_fraction, e.finished_runs) == (pytest.approx(0.9), 5)
    assert e.early_stop.device_s == pytest.approx(0.9 * e.full.device_s)
    assert e.early_stop.wall_s == pytest.approx(0.9 * 43.6)
    # Sequential seeds (the hook): seeds 1-3 only, the first 7 runs: ends at 29.3 s.
    assert (e.sequential.runs, e.sequential.wall_s) == (7, pytest.approx(29.3))
    assert e.sequential.device_s == pytest.approx(5 + 4 * 10 + 2 * 4.3)
    text = format_estimate(e)
    assert "200 ms (215 ms with checks): 16 px, K=3, batch 8, nll/kl/kl losses" in text
    assert "to max_steps: wall 0:44, 0.0228 device-hours" in text
    assert "runs that stop train 90% of max_steps, the mean of 5 finished run(s)" in text
    assert "with sequential seeds (7 of the 11 runs needed by the design so far" in text


def test_a_forecast_reports_the_median_and_90th_percentile_continuation(section3_2):
    spec, runs, store = section3_2
    planned = plan(spec.name, runs, store)
    # Five continuations: up to seed 1, 2, 3, 4 and 4 (the runs left of each, by hand, from the
    # test above: 1 run, 5 s; 3 runs, 25 s; 7 runs, 53.6 s, wall 29.3; 11 runs, 82.2 s, 43.6).
    continuations = [lambda p, last=last: p.run.seed <= last for last in (2, 4, 1, 4, 3)]
    e = estimate(planned, store, workers=2, probe=FakeProbe(), machine=MACHINE, threads=1,
                 sequential_needed=lambda p: p.run.seed <= 1,
                 sequential_forecast=continuations)
    assert e.forecast.simulations == 5
    # Median: the 3rd of 5 (up to seed 3); 90th percentile: the 5th (up to seed 4).
    assert (e.forecast.median.runs, e.forecast.p90.runs) == (7, 11)
    assert e.forecast.median.device_s == pytest.approx(5 + 4 * 10 + 2 * 4.3)
    assert (e.forecast.median.wall_s, e.forecast.p90.wall_s) == pytest.approx((29.3, 43.6))
    assert e.forecast.p90.device_s == pytest.approx(e.full.device_s)
    text = format_estimate(e)
    assert ("to the design's end (forecast: 5 continuations resampling the seeds finished so "
            "far): median 7 runs, wall 0:29, 0.0149 device-hours; 90th percentile 11 runs, "
            "wall 0:44, 0.0228 device-hours") in text


def test_one_worker_runs_them_one_after_another_and_many_each_at_once(section3_2):
    spec, runs, store = section3_2
    planned = plan(spec.name, runs, store)
    one, many = (estimate(planned, store, workers, FakeProbe(), MACHINE, threads=1)
                 for workers in (1, 20))
    assert one.full.wall_s == pytest.approx(one.full.device_s) == pytest.approx(82.2)
    assert many.full.wall_s == pytest.approx(10.0)  # the longest run
    assert one.sequential is None and "sequential" not in format_estimate(one)


def test_estimate_prints_runs_and_device_hours_and_writes_nothing(tmp_path, capsys,
                                                                   monkeypatch):
    monkeypatch.setattr(probe, "step_time", lambda config: 0.25)
    out = tmp_path / "out"
    argv = [str(SECTION3_2), "--profile", "smoke", "--estimate", "--workers", "1",
            "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr()
    assert not out.exists()
    # 8 runs of 20 steps at 0.25 s, one after another: 40 s, 40 / 3600 device-hours.
    assert "8 runs (8 distinct): 0 done, 0 failed, 0 partial, 8 todo" in printed.out
    assert "To train: 8 run(s), 160 steps, on 1 worker(s)" in printed.out
    assert "to max_steps: wall 0:40, 0.0111 device-hours" in printed.out
    assert "no early stop observed yet" in printed.out
    # NLL+M's model, IR+M's: announced, then numbered
    assert printed.err.index("2 timing probe(s) to run") < printed.err.index("Timing probe 1/2")
    assert printed.err.count("Timing probe 1/2: 16 px, K=3") == 1
    assert printed.err.count("Timing probe 2/2: 16 px, K=3") == 1


def test_estimate_excludes_dry_run_and_report_only():
    for other in ("--dry-run", "--report-only"):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["spec.yaml", "--estimate", other])


def tiny_config(**train) -> dict:
    return resolve({
        "data": {"image_size": 16},
        "model": {"num_slots": 3, "unet_base_width": 4, "encoder_channels": [8, 8, 8, 8],
                  "encoder_mlp_hidden": 16, "latent_size": 4, "decoder_channels": 8,
                  "decoder_layers": 2},
        "train": {"optimizer": "adam", "batch_size": 4, "compile": False, "threads": 1,
                  **train}})


def test_probe_times_fit_steps_of_the_model():
    assert probe.step_time(tiny_config(), steps=2, warmup=1) > 0


def test_probe_drops_the_warm_up_steps(monkeypatch):
    # Fetch times 0, 100, 150, 151, 153, 156, 160: steps of 100, 50 (warm-up), 1, 2, 3, 4.
    clock = iter([0.0, 100.0, 150.0, 151.0, 153.0, 156.0, 160.0])
    monkeypatch.setattr(pipeline, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    assert probe.step_time(tiny_config(), steps=4, warmup=2) == 2.5
    assert next(clock, None) is None  # one fetch per step and one after the last


def test_probe_stops_once_its_timed_steps_took_the_budget(monkeypatch):
    # 10 s a step: after the 2 warm-up steps, 3 steps (30 s >= 20 s) are enough; the step whose
    # batch is fetched last still runs, untimed: 6 fetches of the 2 + 12 + 1 allowed.
    clock = iter(float(t) for t in range(0, 200, 10))
    monkeypatch.setattr(pipeline, "time", types.SimpleNamespace(perf_counter=lambda: next(clock)))
    assert probe.step_time(tiny_config(), steps=12, warmup=2, min_steps=3, budget_s=20) == 10
    assert next(clock) == 60.0
    # Below the budget it times every step: 1 s a step, 12 steps take 12 s < 20 s.
    clock = iter([0.0, 5.0, *(5.0 + t for t in range(1, 13))])
    assert probe.step_time(tiny_config(), steps=12, warmup=1, budget_s=20) == 1
    assert next(clock, None) is None


@pytest.mark.slow
def test_probe_is_within_25_percent_of_bench_on_the_paper_profile():
    """Section 3.2's paper model (64 px, K = 5, batch 64), compiled where bench's compiled
    variant is the one that counts (CUDA, where ``compile: auto`` compiles) and eager on a CPU:
    the probe against bench's ``fit`` step clock, in this process. Needs the machine to itself."""
    from bench.timing import median
    from bench.train_step import _fit_steps, build_monetk
    from monetk.data import generate_multi_dsprites

    _, runs = load_runs(SECTION3_2, "paper")
    cuda = torch.cuda.is_available()
    config = resolve({**runs[0].config, "train": {**runs[0].config["train"], "compile": cuda}})
    probed = probe.step_time(config)
    batch_size = config["train"]["batch_size"]
    images, _ = generate_multi_dsprites(2 * batch_size, config["data"]["image_size"], seed=0)
    run = _fit_steps(build_monetk(config), images, batch_size, "cuda" if cuda else "cpu",
                     epoch_clock=False)
    run(3, 2)  # bench's priming call: compiles
    measured = median(run(12, 3))
    assert probed == pytest.approx(measured, rel=0.25), (probed, measured)
