"""One training run, from a run config to ``result.json``: data -> MONet -> ``fit`` -> metrics.

``run_experiment`` is the only entry point the runner uses. It resumes from the checkpoint in
``run_dir`` when there is one, and writes ``result.json`` last and atomically, so a run directory
without it is never mistaken for a finished run.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np
import torch

import monetk
from monetk.callbacks import (
    CheckEvaluator,
    EpochCallbackList,
    EpochCursor,
    HistoryLog,
    NaNGuard,
    ResumableCheckpoint,
    StepTimer,
    StoppingRule,
    attention_examples,
    evaluate_segmentation,
    global_step,
    non_finite_weights,
    user_callbacks,
)
from monetk.config import resolve
from monetk.data import load_splits
from monetk.io import SET_ASIDE, atomic_write_json
from monetk.io import set_aside as move_aside
from monetk.model import MONet
from monetk.optimizers import FusedRMSprop, WarmupDecay
from monetk.pipeline import TrainBatches
from monetk.tensorboard import TensorBoardLog

NUM_ATTENTION_EXAMPLES = 8


#: Environment variable with the torch CPU threads of a run when ``train.threads`` is 0 (the
#: runner's worker processes set it).
THREADS_VARIABLE = "MONETK_THREADS"


def build_model(config: dict[str, Any]) -> MONet:
    """The MONet of a resolved run config (model and loss sections, image size, seed)."""
    model_cfg, loss_cfg, data_cfg, train_cfg = (
        config["model"], config["loss"], config["data"], config["train"])
    return MONet(image_size=data_cfg["image_size"], value_range=data_cfg["value_range"],
                 noise_seed=config["seed"], compile_forward=compile_enabled(train_cfg["compile"]),
                 mixed_precision=train_cfg["mixed_precision"], **model_cfg, **loss_cfg)


def compile_enabled(setting: bool | str) -> bool:
    """``train.compile``: true, false, or ``"auto"``: compile when the run is on CUDA, where the
    compiled step is the fast one (1.5x on an H200 at the paper's batch) and the compile time is
    soon repaid; a CPU run (tests, laptops) saves the 35-100 s of compilation."""
    return setting is True or (setting == "auto" and torch.cuda.is_available())


def build_optimizer(train_cfg: dict[str, Any]) -> keras.optimizers.Optimizer:
    """RMSprop (MONet's: decay/rho, epsilon and the accumulator's start v_0 set explicitly; Keras'
    rule, fused update) or Adam, from ``train``; the learning rate a constant, or a
    :class:`WarmupDecay` schedule when ``warmup_steps`` or ``lr_decay`` asks for one."""
    learning_rate = train_cfg["learning_rate"]
    if train_cfg["warmup_steps"] or train_cfg["lr_decay"] != "none":
        learning_rate = WarmupDecay(learning_rate, train_cfg["warmup_steps"],
                                    train_cfg["lr_decay"], train_cfg["max_steps"],
                                    train_cfg["lr_final_ratio"])
    if train_cfg["optimizer"] == "rmsprop":
        return FusedRMSprop(
            learning_rate=learning_rate, rho=train_cfg["rho"],
            momentum=train_cfg["momentum"], epsilon=train_cfg["epsilon"],
            centered=train_cfg["centered"], initial_accumulator=train_cfg["rmsprop_initial"])
    return keras.optimizers.Adam(learning_rate=learning_rate, epsilon=train_cfg["epsilon"])


def steps_per_epoch(train_cfg: dict[str, Any]) -> int:
    """Epoch length: every check, checkpoint and the last step fall on an epoch end."""
    return math.gcd(train_cfg["check_every"], train_cfg["checkpoint_every"], train_cfg["max_steps"])


#: What an epoch end tells the ``progress`` callback, besides the step: the epoch's mean loss and
#: its timing (:class:`monetk.callbacks.StepTimer`).
PROGRESS_INFO = ("loss", "step_time_s", "epoch_time_s", "first_step_s")
#: Seconds between two reports within an epoch.
PROGRESS_EVERY_S = 2.0
#: ``phase`` of a report made before a compiled model's first step (torch.compile works then).
COMPILING = "compiling"


class _Progress(keras.callbacks.Callback):
    """Calls ``report(step, max_steps, **info)`` at each epoch end (info: :data:`PROGRESS_INFO`)
    and, within an epoch, at the start of a step at most every ``every_s`` seconds with the steps
    done and ``loss``: the epoch's running mean where the loss terms live on the CPU (reading it
    there costs nothing), else the last epoch's mean (a read would wait for the device). A
    batch-begin hook: Keras hands it no logs, so no step waits for the device.

    ``compiling``: the first step of this ``fit`` compiles the model (torch.compile); it is
    announced by a report with ``phase=COMPILING`` before it, and its end by the next report."""

    def __init__(self, report: Callable[..., None], spe: int, max_steps: int,
                 compiling: bool = False, every_s: float = PROGRESS_EVERY_S,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.report, self.spe, self.max_steps = report, spe, max_steps
        self.compiling, self.every_s, self.clock = compiling, every_s, clock
        self.epoch, self.last, self.loss = 0, -math.inf, None
        self.compiled_at: int | None = None  # the step compiled, until the next report

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = epoch

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        step = self.epoch * self.spe + batch
        if self.compiling:
            self.compiling, self.compiled_at = False, step
            self._send(step, {"phase": COMPILING}, force=True)
        else:
            self._send(step, {}, force=self.compiled_at is not None)
            self.compiled_at = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        info = {key: float(logs[key]) for key in PROGRESS_INFO if key in (logs or {})}
        self.loss = info.get("loss", self.loss)
        self.report(global_step(epoch, self.spe), self.max_steps, **info)
        self.last = self.clock()

    def _send(self, step: int, info: dict, force: bool = False) -> None:
        now = self.clock()
        if not force and now - self.last < self.every_s:
            return
        self.last = now
        loss = self._running_loss() if step % self.spe else None
        loss = self.loss if loss is None else loss
        self.report(step, self.max_steps, **info, **({} if loss is None else {"loss": loss}))

    def _running_loss(self) -> float | None:
        means = getattr(self.model, "term_means", None)
        if means is None or means.totals.value.device.type != "cpu":
            return None
        return float(means.result()["loss"])


class _WallClock:
    """Training wall time, carried across resumes in the checkpoint state."""

    def __init__(self):
        self.start, self.previous = time.perf_counter(), 0.0

    def elapsed(self) -> float:
        return self.previous + time.perf_counter() - self.start

    def get_state(self) -> dict:
        return {"wall_time_s": self.elapsed()}

    def set_state(self, state: dict) -> None:
        self.start, self.previous = time.perf_counter(), state["wall_time_s"]


class _Threads:
    """torch's CPU thread count, kept in the checkpoint: a resumed run keeps the count it started
    with (1 and 2 threads give different numbers), however many runs share the machine now."""

    def get_state(self) -> dict:
        return {"threads": torch.get_num_threads()}

    def set_state(self, state: dict) -> None:
        torch.set_num_threads(state["threads"])


def versions() -> dict[str, str]:
    """Versions of the packages that decide a run's numbers."""
    return {"monetk": monetk.__version__, "keras": keras.__version__, "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version()}


def run_experiment(config: dict[str, Any], run_dir: str | Path,
                   progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Train and evaluate one run; return (and write to ``run_dir/result.json``) its result.

    ``progress(step, max_steps, **info)`` is called at each epoch end, with the epoch's mean loss
    and step time in ``info`` (:data:`PROGRESS_INFO`), and within an epoch every few seconds with
    the loss so far, or ``phase="compiling"`` while torch.compile compiles (:class:`_Progress`)."""
    config = resolve(config)
    run_dir = Path(run_dir)
    result_path = run_dir / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    atomic_write_json(run_dir / "config.json", config)
    clock = _WallClock()
    train_cfg, eval_cfg = config["train"], config["eval"]
    threads = train_cfg["threads"] or int(os.environ.get(THREADS_VARIABLE, "0"))
    if threads:
        torch.set_num_threads(threads)
    compiled = compile_enabled(train_cfg["compile"])
    if compiled:
        torch._dynamo.reset()  # a previous run's compiled graphs hold that model's weights
    keras.utils.set_random_seed(config["seed"])
    splits = load_splits(config["data"])

    spe = steps_per_epoch(train_cfg)
    checkpoint_dir = run_dir / "checkpoint"
    state, model, set_aside = resume_point(checkpoint_dir)
    if state is None:
        model = build_model(config)
        model.compile(optimizer=build_optimizer(train_cfg))
        initial_epoch = 0
    else:
        model.use_compiled_forward(compiled)  # "auto" decides on this machine, not the saving one
        model.reset_step_counter()
        initial_epoch = state["epoch"]

    batches = TrainBatches(splits.train_images, train_cfg["batch_size"], spe, config["seed"])
    evaluator = CheckEvaluator(spe, train_cfg["check_every"], splits.monitor_images,
                               splits.eval_images, splits.eval_labels, splits.background_entities,
                               eval_cfg["batch_size"], eval_cfg["min_objects_multi"])
    rule = StoppingRule(spe, train_cfg["stop_threshold"], train_cfg["stop_ratio"],
                        train_cfg["continue_after_stop"])
    history = HistoryLog(run_dir / "history.csv", spe)
    nan_guard = NaNGuard(spe)
    checkpoint = ResumableCheckpoint(
        checkpoint_dir, spe, train_cfg["checkpoint_every"],
        {"rule": rule, "history": history, "clock": clock, "threads": _Threads()},
        guard=nan_guard)
    if state is not None:
        for key, stateful in checkpoint.stateful.items():
            if key in state["callbacks"]:  # "threads" is absent from checkpoints before 0.3
                stateful.set_state(state["callbacks"][key])
        history.write()  # drop rows a diverged or killed attempt wrote after this state
    # StepTimer after the evaluator (its epoch time includes the checks), before the history.
    callbacks = [EpochCursor(batches), evaluator, StepTimer(batches), rule, history]
    tensorboard = None
    if train_cfg["tensorboard"]:
        tensorboard = TensorBoardLog(run_dir / "tensorboard", spe, train_cfg["check_every"],
                                     splits.eval_images[:NUM_ATTENTION_EXAMPLES])
        callbacks.append(tensorboard)
    callbacks += [*user_callbacks(train_cfg["callbacks"], run_dir), nan_guard, checkpoint]
    if progress is not None:
        callbacks.append(_Progress(progress, spe, train_cfg["max_steps"], compiled,
                                   PROGRESS_EVERY_S))

    epochs = train_cfg["max_steps"] // spe
    already_stopped = state is not None and state["stop_training"]
    if initial_epoch < epochs and not already_stopped:
        # shuffle=False: the batch of step t is a function of (seed, t), which resume relies on.
        callback_list = EpochCallbackList(callbacks, add_history=True, model=model,
                                          epochs=epochs, steps=spe, verbose=0)
        try:
            model.fit(batches, epochs=epochs, initial_epoch=initial_epoch, verbose=0,
                      callbacks=callback_list, shuffle=False)
        finally:
            if tensorboard is not None:  # fit skips on_train_end when it raises
                tensorboard.close()
    steps = history.rows[-1]["step"] if history.rows else 0

    result: dict[str, Any] = {
        "status": "ok", "reason": None, "steps": steps, "stop_step": rule.stop_step,
        "continued": bool(train_cfg["continue_after_stop"] and rule.stop_step is not None
                          and steps > rule.stop_step),
        "final": None, "at_stop": rule.at_stop, "device": _device(model),
        "versions": versions(), "numerics": monetk.NUMERICS_VERSION,
        "resumed_from": None if state is None else state["step"], "set_aside": set_aside,
        "machine": machine(model), "threads": torch.get_num_threads(),
        "cpu_kernels": torch.backends.cpu.get_cpu_capability(),
    }
    nan_reason = (nan_guard.reason or _nan_in_history(history.rows)
                  or non_finite_weights(model, f"after step {steps}"))
    if nan_reason is not None:
        result.update(status="failed", reason=nan_reason)
    else:
        last = history.rows[-1] if history.rows else {}
        if last.get("step") == steps and "eval_fg_ari" in last:
            final = {k[len("eval_"):]: v for k, v in last.items() if k.startswith("eval_")}
        else:
            final = evaluate_segmentation(model, splits.eval_images, splits.eval_labels,
                                          splits.background_entities, eval_cfg["batch_size"],
                                          eval_cfg["min_objects_multi"])
        result["final"] = final
        _save_attention_examples(model, splits, run_dir / "attention_examples.npz")
        model.save(run_dir / ".model.tmp.keras")
        (run_dir / ".model.tmp.keras").replace(run_dir / "model.keras")
    result["wall_time_s"] = clock.elapsed()
    if result["status"] == "ok":
        keep_final_state(checkpoint_dir, steps, run_dir)
    atomic_write_json(result_path, result)
    if result["status"] == "ok":
        shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return result


#: A finished run's last checkpoint state (the callbacks' state at its last step), kept beside its
#: ``model.keras`` (the same weights and optimizer state) when the checkpoints are removed: a
#: longer run of the same config can start from the two (``monetk_runner.extend``).
FINAL_STATE = "final_state.json"


def keep_final_state(checkpoint_dir: Path, step: int, run_dir: Path) -> None:
    """Copy the checkpoint state of ``step`` to ``run_dir / FINAL_STATE``, naming ``model.keras``
    (relative to ``run_dir``) as its model; nothing when there is no state of that step."""
    path = checkpoint_dir / f"state-{step}.json"
    if path.is_file():
        state = json.loads(path.read_text())
        atomic_write_json(run_dir / FINAL_STATE, {**state, "model": "model.keras"})


def resume_point(checkpoint_dir: Path) -> tuple[dict | None, MONet | None, list[str]]:
    """Where a run resumes: the newest saved state whose checkpoint loads and holds only finite
    weights and optimizer variables, as ``(state, model, set_aside)``; ``(None, None,
    set_aside)`` when none does (train from the start). A state file or checkpoint that cannot be
    read, or that holds a NaN or an infinity (a store written before the guard, or damaged), is
    moved to ``set-aside/`` beside ``checkpoint_dir`` (kept for inspection, never deleted) and
    named in ``set_aside`` with the reason."""
    set_aside: list[str] = []

    def put_aside(path: Path, why: str) -> None:
        if path.exists():
            move_aside(path, checkpoint_dir.parent / SET_ASIDE)
        set_aside.append(f"{path}: {why}")

    tried: set[str] = set()
    for path, state in ResumableCheckpoint.states(checkpoint_dir):
        if state is None:
            put_aside(path, "not a readable checkpoint state")
            continue
        if state["model"] in tried:
            continue
        tried.add(state["model"])
        model_path = Path(state["model"])
        try:
            model = keras.models.load_model(model_path)
        except Exception as error:  # any damage: truncated zip, bad HDF5, missing file
            put_aside(model_path, f"cannot be loaded ({type(error).__name__}: {error})")
            continue
        reason = non_finite_weights(model, f"in {model_path.name}")
        if reason is not None:
            put_aside(model_path, reason)
            continue
        return state, model, set_aside
    return None, None, set_aside


def _nan_in_history(rows: list[dict]) -> str | None:
    for row in rows:
        value = row.get("monitor_mse")
        if value is not None and not math.isfinite(value):
            return f"non-finite monitoring MSE at step {row['step']}"
    return None


def machine(model: MONet) -> str:
    """The processor that trained ``model``: the GPU's name on CUDA, else the CPU model (a run's
    numbers are reproducible bit for bit only on the same machine type and thread count)."""
    return processor(model.trainable_weights[0].value.device)


def processor(device: torch.device) -> str:
    """The name of ``device``: the GPU's on CUDA, else the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info
                     if line.startswith("model name")]
    except OSError:  # not Linux
        names = []
    return names[0] if names else platform.processor() or platform.machine()


def _device(model: MONet) -> str:
    device = model.trainable_weights[0].value.device
    compiled = ", torch.compile" if model.compile_forward else ""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)}){compiled}"
    return f"cpu ({torch.get_num_threads()} threads){compiled}"


def _save_attention_examples(model: MONet, splits: Any, path: Path) -> None:
    """First evaluation images with their decomposition, in [0, 1], for the Figure-2 plot."""
    arrays = {**attention_examples(model, splits.eval_images[:NUM_ATTENTION_EXAMPLES]),
              "labels": np.asarray(splits.eval_labels[:NUM_ATTENTION_EXAMPLES])}
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
