"""Progress on the terminal: runs done / total with an ETA, and each running run's steps and loss.

In-process runs report their steps through the ``progress`` callback (a second bar); runs in other
processes or on Ray write ``progress.json`` into their folder, which :meth:`RunBoard.refresh` reads.
The ETA comes from the measured step times of the running runs and the wall times of the finished
ones (:mod:`monetk_runner.eta`), not from tqdm's rate of finished runs, which knows nothing until a
run ends and then counts its start-up (compiling) in every later run.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from monetk_runner.eta import Eta, format_duration
from monetk_runner.executors import Progress, Task, read_progress

#: The runs bar without tqdm's own rate and remaining time (the postfix carries the ETA).
RUNS_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


def describe(outcome: dict) -> str:
    """A short line about a finished run: status, FG-ARI, steps, reason, time."""
    status = outcome.get("status", "?")
    parts = [status]
    final = outcome.get("final") or {}
    if final.get("fg_ari") is not None:
        parts.append(f"fg_ari={final['fg_ari']:.3f}")
    if outcome.get("steps") is not None:
        parts.append(f"steps={outcome['steps']}")
    if outcome.get("stop_step") is not None:
        parts.append(f"stopped at {outcome['stop_step']}")
    if outcome.get("reason"):
        parts.append(f"({outcome['reason']})")
    if outcome.get("wall_time_s") is not None:
        parts.append(f"{outcome['wall_time_s']:.1f} s")
    return " ".join(parts)


def _loss(info: dict) -> str:
    return f" loss {info['loss']:.4g}" if info.get("loss") is not None else ""


class RunBoard:
    """tqdm bars for a batch of runs trained on ``workers`` parallel slots; one line per finished
    run; the ETA and the running runs' progress and loss in the runs bar."""

    def __init__(self, tasks: list[Task], workers: int = 1, stream: TextIO | None = None,
                 refresh_every_s: float = 5.0):
        self.stream = stream or sys.stderr
        self.refresh_every_s = refresh_every_s
        self.last_refresh = 0.0
        self.started = time.time()
        self.max_steps = {task.run_id: int(task.config["train"]["max_steps"]) for task in tasks}
        self.done: set[str] = set()
        self.workers = workers
        self.eta = Eta()
        self.runs = tqdm(total=len(tasks), desc="runs", unit="run", file=self.stream,
                         dynamic_ncols=True, bar_format=RUNS_BAR)
        self.steps: tqdm | None = None
        self.failed = 0

    def run_started(self, task: Task) -> Progress:
        """A step callback for ``task`` that drives the second bar."""
        self._show([task.label])
        started = time.time()

        def progress(step: int, max_steps: int, **info: float) -> None:
            if self.steps is None:
                self.steps = tqdm(
                    total=max_steps,
                    desc=task.label,
                    unit="step",
                    leave=False,
                    position=1,
                    file=self.stream,
                    dynamic_ncols=True,
                )
            self.steps.set_postfix_str(_loss(info).strip(), refresh=False)
            self.steps.update(step - self.steps.n)
            self.eta.report(task.run_id, step, max_steps, time.time(),
                            info.get("step_time_s"), info.get("epoch_time_s"), started,
                            info.get("first_step_s"))
            self._show([f"{task.label}{_loss(info)}"])

        return progress

    def run_finished(self, task: Task, outcome: dict) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None
        self.done.add(task.run_id)
        self.eta.finished(task.run_id)
        self.failed += outcome.get("status") not in ("ok", "busy")
        self.runs.update(1)
        self.runs.write(
            f"[{self.runs.n}/{self.runs.total}] {task.label}: {describe(outcome)}", file=self.stream
        )
        self._show([])

    def refresh(self, tasks: list[Task]) -> None:
        """Read the progress of the runs other processes are training (``tasks``: those not
        finished); show up to three of them and the ETA."""
        if time.monotonic() - self.last_refresh < self.refresh_every_s:
            return
        self.last_refresh = time.monotonic()
        active = []
        for task in tasks:
            progress = read_progress(task.run_dir)
            if progress is None or progress.get("time", 0.0) < self.started:
                continue  # not started by this command (a report from an earlier one)
            self.eta.report(task.run_id, progress["step"], progress["max_steps"],
                            progress["time"], progress.get("step_time_s"),
                            progress.get("epoch_time_s"), progress.get("started"),
                            progress.get("first_step_s"))
            if progress["step"] < progress["max_steps"]:
                percent = 100 * progress["step"] // progress["max_steps"]
                active.append(f"{task.label} {percent}%{_loss(progress)}")
        self._show(active)

    def seconds_left(self) -> float | None:
        """The ETA of the whole batch, in seconds (None before any measurement)."""
        waiting = [steps for run_id, steps in self.max_steps.items()
                   if run_id not in self.done and run_id not in self.eta.running]
        return self.eta.seconds_left(waiting, self.workers, time.time())

    def _show(self, active: list[str]) -> None:
        parts = []
        left = self.seconds_left()
        if left is not None:
            parts.append(f"ETA {format_duration(left)}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if active:
            parts.append(", ".join(active[:3]) + (f" (+{len(active) - 3})"
                                                  if len(active) > 3 else ""))
        self.runs.set_postfix_str(" | ".join(parts))

    def close(self) -> None:
        if self.steps is not None:
            self.steps.close()
        self.runs.close()
