"""Progress on the terminal: runs done / total with an ETA, and each running run's training steps.

In-process runs report their steps through the ``progress`` callback (a second bar); runs in other
processes or on Ray write ``progress.json`` into their folder, which :meth:`RunBoard.refresh` reads.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

from monetk_runner.executors import Progress, Task, read_progress


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


class RunBoard:
    """tqdm bars for a batch of runs; one line per finished run."""

    def __init__(self, total: int, stream: TextIO | None = None, refresh_every_s: float = 5.0):
        self.stream = stream or sys.stderr
        self.refresh_every_s = refresh_every_s
        self.last_refresh = 0.0
        self.runs = tqdm(total=total, desc="runs", unit="run", file=self.stream, dynamic_ncols=True)
        self.steps: tqdm | None = None
        self.failed = 0

    def run_started(self, task: Task) -> Progress:
        """A step callback for ``task`` that drives the second bar."""
        self.runs.set_postfix_str(task.label)

        def progress(step: int, max_steps: int) -> None:
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
            self.steps.update(step - self.steps.n)

        return progress

    def run_finished(self, task: Task, outcome: dict) -> None:
        if self.steps is not None:
            self.steps.close()
            self.steps = None
        self.failed += outcome.get("status") not in ("ok", "busy")
        self.runs.update(1)
        self.runs.write(
            f"[{self.runs.n}/{self.runs.total}] {task.label}: {describe(outcome)}", file=self.stream
        )
        if self.failed:
            self.runs.set_postfix_str(f"{self.failed} failed")

    def refresh(self, tasks: list[Task]) -> None:
        """Show the step progress of up to three runs that other processes are training."""
        if time.monotonic() - self.last_refresh < self.refresh_every_s:
            return
        self.last_refresh = time.monotonic()
        active = []
        for task in tasks:
            progress = read_progress(task.run_dir)
            if progress is not None and progress["step"] < progress["max_steps"]:
                active.append(f"{task.label} {100 * progress['step'] // progress['max_steps']}%")
        if active:
            shown = ", ".join(active[:3]) + (f" (+{len(active) - 3})" if len(active) > 3 else "")
            self.runs.set_postfix_str(shown)

    def close(self) -> None:
        if self.steps is not None:
            self.steps.close()
        self.runs.close()
