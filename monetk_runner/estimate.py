"""``--estimate``: how long the runs left of a spec would take, without training anything.

The runs left are the distinct store runs the runner would train
(:func:`monetk_runner.plan.to_train`). Each takes its steps left (``train.max_steps``, less those of
its checkpoint) times the time of a step of its model on this machine, found once per speed key
(:func:`speed_key`: the parts of a run config that decide a step's time):

- from the finished runs in the store trained on this machine (``result.json``'s ``machine``; on
  a CPU with the torch threads the run would get) whose ``history.csv`` has the columns of
  :class:`monetk.callbacks.StepTimer`: the median over those runs of each one's steady step time
  (the median of its epochs' ``step_time_s``) and of its wall time per step with the checks (its
  epochs' ``epoch_time_s`` over their steps, less the compiling in the first step of each
  attempt: ``first_step_s`` beyond the step time); the latter is projected;
- else from a timing probe of the model (:func:`monetk.probe.step_time`), checks not included.

The runs are dealt to the workers in training order, each to the worker that frees first
(:func:`monetk_runner.eta.deal`); the wall time is when the last one frees, the device time the sum
of the runs' times. A second projection assumes the early stop observed so far: runs that stop
(not ``continue_after_stop``) train the mean fraction of ``max_steps`` that the spec's finished
stopping runs trained (a partial run: that fraction of its steps left). A third, for a spec with a
``sequential:`` block (``sequential_needed``), trains only the runs its design needs after the
runs finished so far (a lower bound: each test still undecided adds a wave of seeds per look),
and, once the design has finished seeds to resample (``sequential_forecast``), the median and the
90th percentile of the runs it trains to its end over simulated continuations
(:func:`analysis.sequential_design.forecast_needs`).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from monetk.callbacks import ResumableCheckpoint
from monetk.experiment import compile_enabled
from monetk_runner.collect import effective_result
from monetk_runner.eta import deal, format_duration
from monetk_runner.plan import UNFINISHED, Planned, summary, to_train
from monetk_runner.store import CHECKPOINT, RunStore, read_result

#: The timing columns of ``history.csv`` an estimate needs (runs of older versions have none).
TIMED = ("step_time_s", "epoch_time_s")
LOSS_NAMES = ("reconstruction", "latent", "mask")


@dataclass(frozen=True)
class StepTime:
    """The time of a training step (s): steady state, and with the checks where measured."""

    step_s: float
    with_checks_s: float | None
    source: str

    @property
    def projected_s(self) -> float:
        """The time a step is projected to take: with the checks where they were measured."""
        return self.step_s if self.with_checks_s is None else self.with_checks_s


@dataclass(frozen=True)
class Timed:
    """One speed key's step time and the runs left that it times."""

    description: str
    time: StepTime
    labels: list[str]


@dataclass(frozen=True)
class Projection:
    """``runs`` runs on the workers: the wall time and the device time (s)."""

    runs: int
    wall_s: float
    device_s: float


@dataclass(frozen=True)
class Estimate:
    """What ``--estimate`` prints (:func:`format_estimate`).

    ``stop_fraction``: the mean fraction of ``max_steps`` that ``finished_runs`` finished stopping
    runs trained (None when there is none); ``early_stop``: the projection at that fraction;
    ``sequential``: the projection of the runs the sequential design needs so far, and
    ``forecast`` its median and 90th percentile over simulated continuations (None without a
    design or a forecast)."""

    summary: str
    machine: str
    threads: int
    workers: int
    runs_left: int
    steps_left: int
    step_times: list[Timed]
    full: Projection
    early_stop: Projection | None
    stop_fraction: float | None
    finished_runs: int
    sequential: Projection | None
    forecast: Forecast | None = None


@dataclass(frozen=True)
class Forecast:
    """The runs a sequential design trains to its end over ``simulations`` continuations: each
    quantity's median and 90th percentile (of the simulations' values, separately)."""

    simulations: int
    median: Projection
    p90: Projection


def speed_key(config: dict[str, Any]) -> str:
    """What decides the time of a training step of a run config on this machine: the image size,
    the model (K, widths), the loss names, the batch size, the optimizer, whether the forward is
    compiled here and mixed precision."""
    train = config["train"]
    return json.dumps({
        "image_size": config["data"]["image_size"], "model": config["model"],
        "loss": [config["loss"][name] for name in LOSS_NAMES],
        "batch_size": train["batch_size"], "optimizer": train["optimizer"],
        "compiled": compile_enabled(train["compile"]),
        "mixed_precision": train["mixed_precision"]}, sort_keys=True)


def describe(config: dict[str, Any]) -> str:
    """``"64 px, K=5, batch 64, nll/kl/kl losses, rmsprop, eager"``: a speed key in words."""
    train = config["train"]
    losses = "/".join(config["loss"][name] for name in LOSS_NAMES)
    how = "compiled" if compile_enabled(train["compile"]) else "eager"
    precision = ", bf16" if train["mixed_precision"] else ""
    return (f"{config['data']['image_size']} px, K={config['model']['num_slots']}, batch "
            f"{train['batch_size']}, {losses} losses, {train['optimizer']}, {how}{precision}")


def run_step_times(run_dir: Path) -> tuple[float, float] | None:
    """A finished run's steady step time and its wall time per step with the checks (module
    docstring), from its ``history.csv``; None when that has no timing columns."""
    try:
        history = pd.read_csv(run_dir / "history.csv")
    except (OSError, pd.errors.EmptyDataError):
        return None
    if not set(TIMED) <= set(history.columns):
        return None
    steps = history["step"].diff().fillna(history["step"])
    timed = history[list(TIMED)].notna().all(axis=1)
    if not timed.any():
        return None
    rows = history[timed]
    compiling = 0.0
    if "first_step_s" in rows:
        compiling = (rows["first_step_s"] - rows["step_time_s"]).clip(lower=0).fillna(0.0)
    wall = (rows["epoch_time_s"] - compiling).sum() / steps[timed].sum()
    return float(rows["step_time_s"].median()), float(wall)


def store_step_times(store: RunStore, machine: str) -> dict[tuple[str, int | None], StepTime]:
    """Per speed key and torch threads (None on CUDA), the step time of the finished runs in
    ``store`` trained on ``machine`` that measured it (module docstring)."""
    measured: dict[tuple[str, int | None], list[tuple[float, float]]] = {}
    for run_dir in sorted(store.root.glob("*")):
        result = read_result(run_dir) if run_dir.is_dir() else None
        if result is None or result["status"] != "ok" or result.get("machine") != machine:
            continue
        times = run_step_times(run_dir)
        if times is not None:
            config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
            cuda = str(result.get("device")).startswith("cuda")
            key = speed_key(config), None if cuda else result.get("threads")
            measured.setdefault(key, []).append(times)
    return {key: StepTime(statistics.median(step for step, _ in runs),
                          statistics.median(wall for _, wall in runs),
                          f"median of {len(runs)} finished run(s) in the store (history.csv)")
            for key, runs in measured.items()}


def steps_left(p: Planned, store: RunStore) -> int:
    """``max_steps`` less the steps of the run's newest readable checkpoint, if any."""
    states = ResumableCheckpoint.states(store.run_dir(p.found.run_id) / CHECKPOINT)
    done = next((state["step"] for _, state in states if state is not None), 0)
    return p.run.config["train"]["max_steps"] - int(done)


def stop_fraction(planned: list[Planned]) -> tuple[float | None, int]:
    """The mean fraction of ``max_steps`` that the finished runs of ``planned`` that stop (not
    ``continue_after_stop``) trained, and how many there are; (None, 0) when none."""
    fractions = {p.run.run_id: effective_result(p)["steps"] / p.run.config["train"]["max_steps"]
                 for p in planned if p.state == "done" and not p.run.continued}
    if not fractions:
        return None, 0
    return statistics.fmean(fractions.values()), len(fractions)


def with_threads(config: dict[str, Any], threads: int) -> dict[str, Any]:
    """``config`` with ``train.threads`` set to ``threads`` unless it sets its own."""
    return {**config, "train": {**config["train"],
                                "threads": config["train"]["threads"] or threads}}


def estimate(planned: list[Planned], store: RunStore, workers: int,
             probe: Callable[[dict[str, Any]], float], machine: str, threads: int,
             states: tuple[str, ...] = UNFINISHED, observed: list[Planned] | None = None,
             sequential_needed: Callable[[Planned], bool] | None = None,
             sequential_forecast: list[Callable[[Planned], bool]] | None = None,
             on_probes: Callable[[list[dict[str, Any]]], None] | None = None) -> Estimate:
    """Project the time of training the runs of ``planned`` in ``states`` on ``workers``.

    ``machine``: this machine's processor (:func:`monetk.probe.machine`); ``threads``: the torch
    threads a run gets; ``probe(config)``: a step's time of a run config with no measurement in
    the store (:func:`monetk.probe.step_time`), called once per speed key; ``observed``: the runs
    whose early stop is observed (default ``planned``; the runner passes all the spec's).

    ``sequential_needed``: whether the sequential design needs a planned run now
    (:func:`monetk_runner.waves.needed_runs`); given, the ``sequential`` projection trains only
    the runs left that it needs, to ``max_steps``; ``sequential_forecast``: per simulated
    continuation of the design, whether it trains a planned run (the ``forecast``);
    ``on_probes(configs)``: called before the first probe with the configs to be probed."""
    left = to_train(planned, states)
    measured = store_step_times(store, machine) if left else {}
    groups: dict[str, list[Planned]] = {}
    for p in left:
        groups.setdefault(speed_key(p.run.config), []).append(p)
    configs = {key: with_threads(runs[0].run.config, threads) for key, runs in groups.items()}
    cuda = torch.cuda.is_available()
    found = {key: measured.get((key, None if cuda else config["train"]["threads"]))
             for key, config in configs.items()}
    if on_probes is not None:
        on_probes([configs[key] for key, step_time in found.items() if step_time is None])
    per_step: dict[str, float] = {}
    step_times = []
    for key, runs in groups.items():
        config = configs[key]
        step_time = found[key] or StepTime(
            probe(config), None, "timing probe (checks not included)")
        per_step[key] = step_time.projected_s
        labels = list(dict.fromkeys(f"{p.run.dataset}/{p.run.condition}" for p in runs))
        step_times.append(Timed(describe(config), step_time, labels))
    steps = {p.found.run_id: steps_left(p, store) for p in left}
    seconds = {p.found.run_id: steps[p.found.run_id] * per_step[key]
               for key, runs in groups.items() for p in runs}

    def project(runs: list[Planned], fraction: float = 1.0) -> Projection:
        times = [seconds[p.found.run_id] * (1.0 if p.run.continued else fraction) for p in runs]
        return Projection(len(runs), deal(times, [0.0] * workers), sum(times))

    fraction, finished = stop_fraction(planned if observed is None else observed)
    sequential = None
    if sequential_needed is not None:
        needed = {p.found.run_id for p in planned if sequential_needed(p)}
        sequential = project([p for p in left if p.found.run_id in needed])
    forecast = None
    if sequential_forecast:
        forecast = _forecast([project([p for p in left if trains(p)])
                              for trains in sequential_forecast])
    return Estimate(summary(planned), machine, threads, workers, len(left), sum(steps.values()),
                    step_times, project(left),
                    None if fraction is None else project(left, fraction), fraction, finished,
                    sequential, forecast)


def _forecast(projections: list[Projection]) -> Forecast:
    def at(q: float) -> Projection:
        def value(field: str) -> float:
            values = [getattr(p, field) for p in projections]
            return float(np.quantile(values, q, method="inverted_cdf"))
        return Projection(int(value("runs")), value("wall_s"), value("device_s"))
    return Forecast(len(projections), at(0.5), at(0.9))


def format_estimate(estimate: Estimate) -> str:
    """The estimate as lines of text."""
    e = estimate
    lines = [f"Estimate (nothing is trained or written): {e.summary}"]
    if not e.runs_left:
        return "\n".join([*lines, "Nothing to train: every selected run is finished."])
    lines.append(f"To train: {e.runs_left} run(s), {e.steps_left:,} steps, on {e.workers} "
                 f"worker(s); a run's step time on this machine ({e.machine}; {e.threads} torch "
                 "thread(s) a run on a CPU):")
    for timed in e.step_times:
        t = timed.time
        checks = "" if t.with_checks_s is None else f" ({_seconds(t.with_checks_s)} with checks)"
        more = len(timed.labels) - 3
        labels = ", ".join(timed.labels[:3]) + (f" (+{more} more)" if more > 0 else "")
        lines.append(f"  {_seconds(t.step_s)}{checks}: {timed.description} [{labels}]; "
                     f"{t.source}")
    lines.append("Projected:")
    lines.append(f"  to max_steps: {_projection(e.full)}")
    if e.early_stop is None:
        lines.append("  with the early stop observed so far: no early stop observed yet "
                     "(no finished run that stops)")
    else:
        lines.append(f"  with the early stop observed so far (runs that stop train "
                     f"{e.stop_fraction:.0%} of max_steps, the mean of {e.finished_runs} finished "
                     f"run(s)): {_projection(e.early_stop)}")
    if e.sequential is not None:
        lines.append(f"  with sequential seeds ({e.sequential.runs} of the {e.runs_left} runs "
                     "needed by the design so far, to max_steps; each undecided test adds a "
                     f"wave per look): {_projection(e.sequential)}")
    if e.forecast is not None:
        f = e.forecast
        lines.append(f"  with sequential seeds to the design's end (forecast: {f.simulations} "
                      "continuations resampling the seeds finished so far): median "
                      f"{f.median.runs} runs, {_projection(f.median)}; 90th percentile "
                      f"{f.p90.runs} runs, {_projection(f.p90)}")
    elif e.sequential is not None:
        lines.append("  no forecast of the design's end yet: it needs a finished seed with every "
                     "compared run ok on each dataset")
    return "\n".join(lines)


def _seconds(seconds: float) -> str:
    return f"{seconds * 1e3:.3g} ms" if seconds < 1 else f"{seconds:.3g} s"


def _projection(p: Projection) -> str:
    days = f" ({p.wall_s / 86400:,.1f} days)" if p.wall_s >= 86400 else ""
    hours = p.device_s / 3600
    amount = f"{hours:,.0f}" if hours >= 100 else f"{hours:.3g}"
    return f"wall {format_duration(p.wall_s)}{days}, {amount} device-hours"
