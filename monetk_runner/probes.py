"""``--estimate``'s timing probes as they run: before the first, how many there will be and
roughly how long each takes; then each one numbered, with its step time and how long it took
(the later ones announced with the time the last took). A probe of the paper's model on a CPU
takes minutes, and three of them printed nothing for over 5 minutes before this."""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from monetk import probe as timing
from monetk_runner.estimate import describe
from monetk_runner.eta import format_duration

#: The paper's model (64 px, K = 5, batch 64): a step takes ~12 s on one CPU thread (README).
PAPER_STEP_ON_ONE_THREAD_S = 12.0


def probe_steps() -> tuple[int, int, int, float]:
    """What a probe trains (:func:`monetk.probe.step_time`'s defaults): warm-up steps, the
    fewest and the most timed steps, and the seconds of timed steps after which it stops."""
    return timing.WARMUP, timing.MIN_STEPS, timing.STEPS, timing.BUDGET_S


def probe_seconds(step_s: float) -> float:
    """A probe's time at ``step_s`` a step, building the model aside: its warm-up steps, then
    timed steps until there are enough and they took the budget, and the step it stops in."""
    warmup, fewest, most, budget = probe_steps()
    timed = min(most, max(fewest, math.ceil(budget / step_s)))
    return (warmup + timed + (timed < most)) * step_s


class ProbeLog:
    """The probe ``--estimate`` calls (``probe``: default :func:`monetk.probe.step_time`, looked
    up at each call) with its messages on ``stream`` (default ``sys.stderr``)."""

    def __init__(self, probe: Callable[[dict[str, Any]], float] | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic):
        self.probe, self.stream, self.clock = probe, stream, clock
        self.total = self.done = 0
        self.last_s: float | None = None

    def announce(self, configs: list[dict[str, Any]]) -> None:
        """Before the first probe: how many (one per model in ``configs``) and how long each."""
        self.total = len(configs)
        if not configs:
            return
        warmup, fewest, most, budget = probe_steps()
        paper = format_duration(probe_seconds(PAPER_STEP_ON_ONE_THREAD_S))
        self._print(
            f"{self.total} timing probe(s) to run (one per model that no finished run in the "
            "store has timed on this machine), each about "
            f"{budget:g} s or {warmup + fewest + 1} steps of its model, whichever is longer, "
            f"plus building the model: {warmup} warm-up steps, then {fewest}-{most} timed steps "
            f"until they take {budget:g} s. The paper's 64 px model on one CPU thread: "
            f"~{PAPER_STEP_ON_ONE_THREAD_S:g} s a step, ~{paper} a probe; on a GPU: seconds; a "
            "compiled model compiles first (minutes on a CPU).")

    def __call__(self, config: dict[str, Any]) -> float:
        self.done += 1
        of = f" {self.done}/{self.total}" if self.total else ""
        last = "" if self.last_s is None else f" (the last took {format_duration(self.last_s)})"
        self._print(f"Timing probe{of}: {describe(config)} ...{last}")
        start = self.clock()
        step_s = (self.probe or timing.step_time)(config)
        self.last_s = self.clock() - start
        self._print(f"  {step_s:.3g} s a step; the probe took {format_duration(self.last_s)}")
        return step_s

    def _print(self, text: str) -> None:
        print(text, file=self.stream or sys.stderr, flush=True)
