"""The ETA of a batch of runs (monetk_runner.eta)."""

import random

import pytest

from monetk_runner.eta import Eta, format_duration


def test_hand_worked_eta_of_two_running_and_two_waiting_runs():
    eta = Eta()
    eta.report("a", 500, 4000, at=100.0, step_time_s=0.1)  # 3,500 steps left: 350 s
    eta.report("b", 1000, 4000, at=90.0, step_time_s=0.1)  # 3,000 left, 10 s ago: 290 s
    # Two runs of 4,000 steps not started, at the mean 0.1 s a step: 400 s each, one per slot
    # as it frees: 290 + 400 = 690 and 350 + 400 = 750.
    assert eta.seconds_left([4000, 4000], workers=2, now=100.0) == pytest.approx(750.0)


def test_start_up_and_the_epoch_wall_time_after_the_first_epoch():
    eta = Eta()
    # Started at 0, first report at 150 s after 500 steps of 0.1 s, the first of them 20.1 s
    # (20 s of compiling): 80 s of start-up.
    eta.report("a", 500, 1000, at=150.0, step_time_s=0.1, epoch_time_s=120.0, started=0.0,
               first_step_s=20.1)
    eta.report("a", 500, 1000, at=151.0, step_time_s=0.1)  # a repeated step: ignored
    assert eta.runs["a"].seconds_per_step == 0.1  # the first epoch's wall time is not used
    assert eta.runs["a"].startup_s == pytest.approx(80.0)
    eta.report("a", 600, 1000, at=162.0, step_time_s=0.1, epoch_time_s=12.0)
    # 100 steps in 12 s, checks included: 0.12 s a step; 400 steps left = 48 s.
    assert eta.seconds_left([], workers=1, now=162.0) == pytest.approx(48.0)
    # A run to come: 80 s of start-up (no compiling) and 1,000 steps at 0.12 s, after "a" ends.
    assert eta.seconds_left([1000], workers=1, now=162.0) == pytest.approx(48.0 + 80.0 + 120.0)
    eta.finished("a")
    assert eta.seconds_left([1000], workers=1, now=162.0) == pytest.approx(80.0 + 120.0)


def test_nothing_measured_gives_no_eta():
    assert Eta().seconds_left([100], workers=2, now=0.0) is None


def _simulated_sweep(runs: int, workers: int, seed: int) -> list[tuple[float, str, dict]]:
    """Events of a sweep like the demos' (the section 3.2 demo on the 2-vCPU VM: 4,000 steps at
    ~66 ms a step per worker, a check every 500 steps, 15 s to load and build each run and ~85 s
    of compiling in the first step of a worker's first run; runs of another condition 20%
    slower)."""
    rng = random.Random(seed)
    free = [(0.0, slot, True) for slot in range(workers)]
    events = []
    for index in range(runs):
        free.sort()
        start, slot, first = free.pop(0)
        step_s = 0.066 * (1.2 if index % 2 else 1.0) * rng.uniform(0.95, 1.05)
        clock = start + 15.0
        compiling = 85.0 if first else 0.0
        for step in range(500, 4001, 500):
            epoch = 500 * step_s * rng.uniform(0.97, 1.03) + 3.0  # steps + the check
            if step == 500:
                epoch += compiling
            clock += epoch
            events.append((clock, f"r{index}", {"step": step, "step_time_s": step_s,
                                                "epoch_time_s": epoch, "started": start,
                                                "first_step_s": step_s + compiling}))
        events.append((clock + 1.0, f"r{index}", {"end": True}))
        free.append((clock + 1.0, slot, False))
    return sorted(events, key=lambda event: event[0])


@pytest.mark.parametrize("seed", range(5))
def test_eta_is_within_25_percent_from_the_first_check_of_the_first_run(seed):
    runs, workers = 24, 2
    events = _simulated_sweep(runs, workers, seed)
    end = events[-1][0]
    eta, done, running = Eta(), set(), set()
    errors = []
    for at, run, event in events:
        if "end" in event:
            eta.finished(run)
            done.add(run)
            running.discard(run)
            continue
        eta.report(run, event["step"], 4000, at, event["step_time_s"], event["epoch_time_s"],
                   event["started"], event["first_step_s"])
        running.add(run)
        waiting = [4000] * (runs - len(done) - len(running))
        truth = end - at
        if truth > 120:  # the last minutes: a relative error of seconds means nothing
            errors.append(abs(eta.seconds_left(waiting, workers, at) - truth) / truth)
    assert max(errors) <= 0.25
    assert errors[0] <= 0.25  # the first check of the first run


def test_format_duration():
    assert format_duration(65.4) == "1:05"
    assert format_duration(3723) == "1:02:03"
