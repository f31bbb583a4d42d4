"""``--estimate`` says how many timing probes it will run and roughly how long each takes before
the first, then numbers them (monetk_runner.probes)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from monetk import probe
from monetk_runner.estimate import estimate
from monetk_runner.expand import load_runs
from monetk_runner.plan import plan
from monetk_runner.probes import ProbeLog, probe_seconds
from monetk_runner.store import RunStore

SECTION3_2 = Path(__file__).resolve().parents[1] / "specs" / "section3_2.yaml"


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_probes_are_counted_before_the_first_and_each_says_its_time(tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    stream, clock, order = io.StringIO(), Clock(), []

    def timing_probe(config: dict) -> float:
        order.append(stream.getvalue())
        clock.now += 95.0  # a probe of 1 min 35 s
        return 12.0

    spec, runs = load_runs(SECTION3_2, "smoke")
    log = ProbeLog(timing_probe, stream, clock)
    estimate(plan(spec.name, runs, RunStore(tmp_path)), RunStore(tmp_path), 1, log, "CPU", 1,
             on_probes=log.announce)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("2 timing probe(s) to run (one per model")
    assert "each about 20 s or 7 steps of its model, whichever is longer" in lines[0]
    assert "~12 s a step, ~1:24 a probe" in lines[0]
    assert order[0].count("\n") == 2  # the count, then probe 1's line, before it ran
    assert lines[1].startswith("Timing probe 1/2: 16 px, K=3") and "last took" not in lines[1]
    assert lines[2] == "  12 s a step; the probe took 1:35"
    assert lines[3].endswith("... (the last took 1:35)") and "probe 2/2" in lines[3]


def test_no_probe_no_announcement():
    stream = io.StringIO()
    ProbeLog(stream=stream).announce([])
    assert stream.getvalue() == ""


@pytest.mark.parametrize(("step_s", "steps"), [
    (12.0, 7),  # 3 warm-up, 3 timed (36 s >= 20 s), the step it stops in
    (5.0, 8),  # 4 timed steps make 20 s
    (0.01, 15),  # 12 timed steps, the most, all run
])
def test_a_probes_time_follows_its_rule(step_s, steps):
    assert (probe.WARMUP, probe.MIN_STEPS, probe.STEPS, probe.BUDGET_S) == (3, 3, 12, 20.0)
    assert probe_seconds(step_s) == pytest.approx(steps * step_s)
