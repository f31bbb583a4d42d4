"""A run's progress reports within an epoch (:class:`monetk.experiment._Progress`): every few
seconds with the steps done and the running loss, and a compiling first step named."""

from __future__ import annotations

import pytest

from monetk import experiment
from monetk.experiment import COMPILING, _Progress, run_experiment
from tests.monetk.test_training import tiny_config


def test_a_run_reports_its_steps_and_running_loss_within_an_epoch(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "PROGRESS_EVERY_S", 0.0)  # every step
    reports = []
    config = tiny_config(tmp_path, max_steps=30, check_every=30, checkpoint_every=30)
    result = run_experiment(config, tmp_path / "run",
                            progress=lambda step, total, **info: reports.append((step, info)))
    assert result["status"] == "ok"
    within = [(step, info) for step, info in reports if "epoch_time_s" not in info]
    assert [step for step, _ in within] == list(range(30))  # one epoch of 30 steps
    assert "loss" not in within[0][1]  # no step trained yet, no epoch ended yet
    losses = [info["loss"] for _, info in within[1:]]
    assert all(loss > 0 for loss in losses) and len(set(losses)) > 1  # the running mean
    assert [step for step, info in reports if "epoch_time_s" in info] == [30]
    assert not any("phase" in info for _, info in reports)  # not compiled


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("compiling", [True, False])
def test_reports_are_paced_and_a_compiling_first_step_is_named(compiling):
    reports, clock = [], Clock()
    progress = _Progress(lambda step, total, **info: reports.append((step, info)), spe=100,
                         max_steps=200, compiling=compiling, every_s=2.0, clock=clock)
    progress.on_epoch_begin(0)
    for batch in range(100):  # 0.5 s a step
        progress.on_train_batch_begin(batch)
        clock.now += 0.5
    progress.on_epoch_end(0, {"loss": 3.0, "step_time_s": 0.5, "epoch_time_s": 50.0})
    progress.on_epoch_begin(1)
    progress.on_train_batch_begin(0)  # just after the epoch end's report: paced out
    clock.now += 2.0
    progress.on_train_batch_begin(4)
    steps = [step for step, _ in reports]
    if compiling:  # before the first step, then right after it (the compiling has ended)
        assert reports[:2] == [(0, {"phase": COMPILING}), (1, {})]
        assert steps[2:-2] == list(range(5, 100, 4))
    else:
        assert steps[:-2] == list(range(0, 100, 4))
    assert reports[-2] == (100, {"loss": 3.0, "step_time_s": 0.5, "epoch_time_s": 50.0})
    assert reports[-1] == (104, {"loss": 3.0})  # without a model: the last epoch's loss
