"""Clocks for the benchmarks: per-step times inside ``fit``, plain loops, interleaved rounds.

Every clock synchronises the accelerator before it reads ``time.perf_counter`` (a no-op on the
CPU), so a time covers the work issued, not only its launch.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

import keras
import torch


def sync(device: torch.device | str) -> None:
    """Wait for the queued work of ``device`` (CUDA); nothing to wait for on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median(values: Iterable[float]) -> float:
    """The median of ``values``; ValueError naming them when there are none."""
    values = list(values)
    if not values:
        raise ValueError("median: no values (were all steps dropped as warm-up?)")
    return statistics.median(values)


def intervals(stamps: Sequence[float]) -> list[float]:
    """Differences of consecutive time stamps (begin-to-begin step times)."""
    return [b - a for a, b in pairwise(stamps)]


class StepClock(keras.callbacks.Callback):
    """Time stamps at every ``on_train_batch_begin`` and at the end of the epoch: the step times
    of ``fit`` are their differences. A batch-level callback makes ``fit`` call back every step."""

    def __init__(self, device: torch.device | str = "cpu"):
        super().__init__()
        self.device = device
        self.stamps: list[float] = []

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        sync(self.device)
        self.stamps.append(time.perf_counter())

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        sync(self.device)
        self.stamps.append(time.perf_counter())

    def step_times(self, warmup: int) -> list[float]:
        """Step times after dropping the first ``warmup`` steps."""
        return intervals(self.stamps)[warmup:]


class EpochClock(keras.callbacks.Callback):
    """Wall time of each ``fit`` epoch (epoch-level hooks only: what a user's ``fit`` costs)."""

    def __init__(self, device: torch.device | str = "cpu"):
        super().__init__()
        self.device = device
        self.epoch_times: list[float] = []
        self._start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        sync(self.device)
        self.epoch_times.append(time.perf_counter() - self._start)


def time_loop(step: Callable[[object], None], batches: Iterable, device: torch.device | str,
              warmup: int) -> list[float]:
    """Run ``step(batch)`` over ``batches``; return the step times after ``warmup`` steps."""
    stamps = []
    for batch in batches:
        sync(device)
        stamps.append(time.perf_counter())
        step(batch)
    sync(device)
    stamps.append(time.perf_counter())
    return intervals(stamps)[warmup:]


@dataclass
class Variant:
    """One way of running a training step: ``run(steps, warmup)`` returns step times (s)."""

    name: str
    run: Callable[[int, int], list[float]]
    rounds: list[float] = field(default_factory=list)  # median step time of each round


def interleave(variants: Sequence[Variant], rounds: int, steps: int, warmup: int,
               reference: str) -> dict[str, dict[str, float]]:
    """Run every variant once per round, in an order rotated each round; per variant, the median
    over rounds of its round median (``ms``) and of its ratio to ``reference`` in the same round
    (``ratio``, with the smallest and largest round ratio). Load that drifts over the benchmark
    then moves a variant and its reference together instead of biasing the ratio."""
    names = [v.name for v in variants]
    if reference not in names:
        raise ValueError(f"reference: {reference!r} is not one of {', '.join(names)}")
    if rounds < 1 or steps <= warmup:
        raise ValueError(f"need rounds >= 1 and steps > warmup, got {rounds}, {steps}, {warmup}")
    for r in range(rounds):
        shift = r % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            variant.rounds.append(median(variant.run(steps, warmup)))
    ref = next(v for v in variants if v.name == reference).rounds
    table = {}
    for variant in variants:
        ratios = [t / t_ref for t, t_ref in zip(variant.rounds, ref, strict=True)]
        table[variant.name] = {"ms": 1e3 * median(variant.rounds), "ratio": median(ratios),
                               "ratio_min": min(ratios), "ratio_max": max(ratios),
                               "round_ms": [1e3 * t for t in variant.rounds]}
    return table
