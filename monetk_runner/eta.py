"""The time a batch of runs has left, from measured step times.

Each running run reports, at each epoch end, its step, ``max_steps``, the steady-state time of a
step (``step_time_s``, :class:`monetk.callbacks.StepTimer`), the epoch's wall time
(``epoch_time_s``, checks included) and when it started. From these, per run:

- its time per step: its last epoch's wall time per step once it has finished a second epoch
  (the first holds one-off costs), else its steady step time;
- its start-up: the time from its start to its first report, less that many steps at that
  rate and less the compiling in its first step (``first_step_s`` beyond a step's time): loading
  data, building the model. A process compiles in its first run and mostly reuses the compiled
  code in later ones, so a run to come is not expected to compile.

A run not started yet is expected to take ``max_steps`` times the mean time per step, plus the
mean start-up, of the ``workers`` runs that started last. The runs left are
dealt to ``workers`` parallel slots in order, each to the slot that frees first; the estimate is
when the last slot frees.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass


@dataclass
class Measured:
    """What a run last reported (times in seconds; ``at``: when, on the caller's clock)."""

    step: int
    max_steps: int
    at: float
    seconds_per_step: float | None
    startup_s: float | None
    epochs_seen: int = 1

    def left(self, now: float, per_step: float) -> float:
        return max(0.0, (self.max_steps - self.step) * per_step - (now - self.at))


class Eta:
    """Collects progress reports; :meth:`seconds_left` estimates the batch's remaining time."""

    def __init__(self) -> None:
        self.runs: dict[str, Measured] = {}  # in the order they first reported
        self.ended: set[str] = set()

    @property
    def running(self) -> dict[str, Measured]:
        return {run: m for run, m in self.runs.items() if run not in self.ended}

    def report(self, run: str, step: int, max_steps: int, at: float,
               step_time_s: float | None = None, epoch_time_s: float | None = None,
               started: float | None = None, first_step_s: float | None = None) -> None:
        """Record run ``run``'s report of ``step`` made at time ``at`` (started at ``started``;
        ``first_step_s``: the time of its first step, compiling included)."""
        before = self.runs.get(run)
        if before is None:
            startup = None
            if started is not None and step_time_s is not None:
                compiling = max(0.0, (first_step_s or step_time_s) - step_time_s)
                startup = max(0.0, at - started - step * step_time_s - compiling)
            self.runs[run] = Measured(step, max_steps, at, step_time_s, startup)
        elif step > before.step:
            rate = step_time_s
            if epoch_time_s is not None:
                rate = epoch_time_s / (step - before.step)
            self.runs[run] = Measured(step, max_steps, at, rate or before.seconds_per_step,
                                      before.startup_s, before.epochs_seen + 1)

    def finished(self, run: str) -> None:
        """Run ``run`` ended (its measurements keep informing the estimate of runs to come)."""
        self.ended.add(run)

    def seconds_left(self, waiting: list[int], workers: int, now: float) -> float | None:
        """Seconds until every run is done: the running ones, and ``waiting`` (the ``max_steps``
        of each run not started yet) on ``workers`` slots; None while nothing is measured."""
        recent = list(self.runs.values())[-workers:]
        rates = [m.seconds_per_step for m in recent if m.seconds_per_step is not None]
        if not rates:
            return None
        rate = sum(rates) / len(rates)
        startups = [m.startup_s for m in recent if m.startup_s is not None]
        startup = sum(startups) / len(startups) if startups else 0.0
        slots = sorted(m.left(now, m.seconds_per_step or rate)
                       for m in self.running.values())[:workers]
        slots += [0.0] * (workers - len(slots))
        return deal([startup + steps * rate for steps in waiting], slots)


def deal(durations: list[float], slots: list[float]) -> float:
    """When the last of ``slots`` frees (each busy for its seconds at first) once ``durations``
    are dealt to them in order, each to the slot that frees first."""
    slots = list(slots)
    heapq.heapify(slots)
    for seconds in durations:
        heapq.heappush(slots, heapq.heappop(slots) + seconds)
    return max(slots)


def format_duration(seconds: float) -> str:
    """``1:02:03`` / ``4:05``: hours, minutes, seconds."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
