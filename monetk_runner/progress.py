"""Progress: runs done / total with an ETA, and each running run's steps and loss.

A run reports every few seconds and at each epoch end (:class:`monetk.experiment._Progress`),
and that it compiles while torch.compile works on its first step. In-process runs report through
the ``progress`` callback (a second bar); runs in other processes or on Ray write
``progress.json`` into their folder, which :meth:`RunBoard.refresh` reads every
``refresh_every_s``. The ETA comes from the measured step times of the running runs and the wall
times of the finished ones (:mod:`monetk_runner.eta`), not from tqdm's rate of finished runs,
which knows nothing until a run ends and then counts its start-up (compiling) in every later run.

On a terminal the board draws tqdm bars; elsewhere (output sent to a log file or a pipe) it
writes plain lines, never a carriage return: one per finished run and a status line every
``plain_every_s`` seconds, and at once when a run starts compiling.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable
from typing import TextIO

from tqdm import tqdm

from monetk_runner.collect import tested_metrics
from monetk_runner.eta import Eta, format_duration
from monetk_runner.executors import Progress, Task, read_progress

#: The ``phase`` of a report made while a run compiles (:data:`monetk.experiment.COMPILING`).
COMPILING = "compiling"
#: Running runs a status shows by name (the others are counted).
SHOWN_RUNS = {True: 8, False: 3}  # plain lines, the tqdm bar

#: The runs bar without tqdm's own rate and remaining time (the postfix carries the ETA).
RUNS_BAR = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


def describe(outcome: dict) -> str:
    """A short line about a finished run: status, FG-ARI, steps, reason, time.

    The FG-ARI is the one results.csv and the tests use (:func:`tested_metrics`); for a run
    trained on past the stopping rule, the value at its last step beside it."""
    status = outcome.get("status", "?")
    parts = [status]
    tested, final = tested_metrics(outcome), outcome.get("final") or {}
    if tested.get("fg_ari") is not None:
        parts.append(f"fg_ari={tested['fg_ari']:.3f}")
    if outcome.get("continued"):
        parts.append(f"when the stopping rule fired at step {outcome['stop_step']}")
        if final.get("fg_ari") is not None:
            parts.append(f"({final['fg_ari']:.3f} at step {outcome['steps']})")
    else:
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


def run_status(label: str, step: int, max_steps: int, info: dict) -> str:
    """``"d/c/seed-1 25% 1,000/4,000 loss 312.5"``, or ``"d/c/seed-1 compiling"``."""
    if info.get("phase") == COMPILING:
        return f"{label} {COMPILING}"
    percent = 100 * step // max(1, max_steps)
    return f"{label} {percent}% {step:,}/{max_steps:,}{_loss(info)}"


def is_terminal(stream: TextIO) -> bool:
    """Whether ``stream`` is a terminal (tqdm's carriage returns redraw a line there only)."""
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


class RunBoard:
    """Progress of a batch of runs trained on ``workers`` parallel slots (module docstring):
    tqdm bars on a terminal, plain lines elsewhere (``plain``: None decides by ``stream``).
    ``clock``: the monotonic clock that paces refreshes and plain lines."""

    def __init__(self, tasks: list[Task], workers: int = 1, stream: TextIO | None = None,
                 refresh_every_s: float = 2.0, plain: bool | None = None,
                 plain_every_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.stream = stream or sys.stderr
        self.plain = not is_terminal(self.stream) if plain is None else plain
        self.refresh_every_s, self.plain_every_s, self.clock = (
            refresh_every_s, plain_every_s, clock)
        self.last_refresh = self.last_line = -math.inf
        self.clock_start = clock()
        self.started = time.time()
        self.max_steps = {task.run_id: int(task.config["train"]["max_steps"]) for task in tasks}
        self.total = len(tasks)
        self.done: set[str] = set()
        self.workers = workers
        self.eta = Eta()
        self.active: dict[str, str] = {}  # run id -> its status (:func:`run_status`)
        self.compiling: set[str] = set()
        self.runs = None if self.plain else tqdm(
            total=len(tasks), desc="runs", unit="run", file=self.stream, dynamic_ncols=True,
            bar_format=RUNS_BAR)
        self.steps: tqdm | None = None
        self.failed = 0

    def run_started(self, task: Task) -> Progress:
        """A step callback for ``task`` (trained in this process) that drives the board."""
        self.active = {task.run_id: task.label}
        self._show()
        started = time.time()

        def progress(step: int, max_steps: int, **info: float | str) -> None:
            if self.runs is not None:
                self._step_bar(task, step, max_steps, info)
            if "epoch_time_s" in info:  # an epoch end: what the ETA is computed from
                self.eta.report(task.run_id, step, max_steps, time.time(),
                                info.get("step_time_s"), info.get("epoch_time_s"), started,
                                info.get("first_step_s"))
            self.active = {task.run_id: run_status(task.label, step, max_steps, info)}
            self._show(force=self._started_compiling({task.run_id: info.get("phase")}))

        return progress

    def _step_bar(self, task: Task, step: int, max_steps: int, info: dict) -> None:
        if self.steps is None:
            self.steps = tqdm(total=max_steps, desc=task.label, unit="step", leave=False,
                              position=1, file=self.stream, dynamic_ncols=True)
        postfix = COMPILING if info.get("phase") == COMPILING else _loss(info).strip()
        self.steps.set_postfix_str(postfix, refresh=False)
        self.steps.update(step - self.steps.n)

    def run_finished(self, task: Task, outcome: dict) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None
        self.done.add(task.run_id)
        self.eta.finished(task.run_id)
        self.active.pop(task.run_id, None)
        self.compiling.discard(task.run_id)
        self.failed += outcome.get("status") not in ("ok", "busy")
        line = f"[{len(self.done)}/{self.total}] {task.label}: {describe(outcome)}"
        if self.runs is not None:
            self.runs.update(1)
            self.runs.write(line, file=self.stream)
        else:
            self._write(line)
        self._show()

    def refresh(self, tasks: list[Task]) -> None:
        """Read the progress of the runs other processes are training (``tasks``: those not
        finished), at most every ``refresh_every_s``; show them and the ETA."""
        if self.clock() - self.last_refresh < self.refresh_every_s:
            return
        self.last_refresh = self.clock()
        active, phases = {}, {}
        for task in tasks:
            progress = read_progress(task.run_dir)
            if progress is None or progress.get("time", 0.0) < self.started:
                continue  # not started by this command (a report from an earlier one)
            epoch = progress.get("epoch") or (progress if "epoch_time_s" in progress else None)
            if epoch is not None:
                self.eta.report(task.run_id, epoch["step"], progress["max_steps"],
                                epoch["time"], epoch.get("step_time_s"),
                                epoch.get("epoch_time_s"), progress.get("started"),
                                epoch.get("first_step_s"))
            if progress["step"] < progress["max_steps"]:
                active[task.run_id] = run_status(task.label, progress["step"],
                                                 progress["max_steps"], progress)
                phases[task.run_id] = progress.get("phase")
        self.active = active
        self._show(force=self._started_compiling(phases))

    def _started_compiling(self, phases: dict[str, str | None]) -> bool:
        """Record which of the runs in ``phases`` compile; whether one of them just began."""
        now = {run for run, phase in phases.items() if phase == COMPILING}
        began = bool(now - self.compiling)
        self.compiling = (self.compiling - set(phases)) | now
        return began

    def seconds_left(self) -> float | None:
        """The ETA of the whole batch, in seconds (None before any measurement)."""
        waiting = [steps for run_id, steps in self.max_steps.items()
                   if run_id not in self.done and run_id not in self.eta.running]
        return self.eta.seconds_left(waiting, self.workers, time.time())

    def status(self) -> str:
        """The board's state in one line: runs done, failed, the ETA, the running runs."""
        parts = []
        if self.plain:
            parts.append(f"runs {len(self.done)}/{self.total} done")
        left = self.seconds_left()
        if left is not None:
            parts.append(f"ETA {format_duration(left)}")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.active:
            shown = SHOWN_RUNS[self.plain]
            texts = list(self.active.values())
            more = f" (+{len(texts) - shown})" if len(texts) > shown else ""
            parts.append(("; " if self.plain else ", ").join(texts[:shown]) + more)
        return " | ".join(parts)

    def _show(self, force: bool = False) -> None:
        if self.runs is not None:
            self.runs.set_postfix_str(self.status())
        elif force or self.clock() - self.last_line >= self.plain_every_s:
            self.last_line = self.clock()
            elapsed = format_duration(self.clock() - self.clock_start)
            self._write(f"[{elapsed}] {self.status()}")

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.steps is not None:
            self.steps.close()
        if self.runs is not None:
            self.runs.close()
