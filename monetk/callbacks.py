"""Keras callbacks for a MONet run: step timing, evaluation at checks, the paper's stopping rule, a
metric history and resumable checkpoints; and the callbacks a run config names
(``train.callbacks``).

monetk's own act at epoch ends only. ``fit`` runs epochs of ``steps_per_epoch`` steps, and every
check, checkpoint and the last step fall on an epoch end, so none of them overrides a batch hook;
:class:`EpochCallbackList` then spares ``fit`` the per-step work Keras does for batch hooks (a
named callback that has one still gets it).
"""

from __future__ import annotations

import csv
import importlib
import inspect
import io
import json
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import numpy as np

from monetk.io import atomic_write_text
from monetk.metrics import segmentation_scores


def global_step(epoch: int, steps_per_epoch: int) -> int:
    """Training steps completed at the end of (0-based) ``epoch``."""
    return (epoch + 1) * steps_per_epoch


def _implements(callback: keras.callbacks.Callback, hook: str) -> bool:
    """Whether ``callback`` has its own ``hook`` (not the no-op of ``keras.callbacks.Callback``)."""
    method = getattr(callback, hook)
    return getattr(method, "__func__", None) is not getattr(keras.callbacks.Callback, hook)


class EpochCallbackList(keras.callbacks.CallbackList):
    """Keras' ``CallbackList`` that skips the batch hooks no callback implements.

    Keras hands every step's logs to a thread pool that converts them to Python floats (a device
    read per loss term) even when no callback has a batch hook; with epoch-level callbacks that
    work is thrown away. It cost ~250 us a step of host time in ``fit`` on this project's 2-vCPU
    VM (a host-bound step is ~15 ms). A hook that some callback implements (``on_batch_*``
    included, which Keras' ``on_train_batch_*`` call) runs exactly as in Keras. The callbacks are
    those given at construction (Keras' list has no ``append``)."""

    def __init__(self, *args, **kwargs):
        self._hook_use: dict[tuple[str, ...], bool] = {}
        super().__init__(*args, **kwargs)

    def _used(self, *hooks: str) -> bool:
        if hooks not in self._hook_use:
            self._hook_use[hooks] = any(_implements(callback, hook)
                                        for callback in self.callbacks for hook in hooks)
        return self._hook_use[hooks]

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._used("on_train_batch_begin", "on_batch_begin"):
            super().on_train_batch_begin(batch, logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._used("on_train_batch_end", "on_batch_end"):
            super().on_train_batch_end(batch, logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        if self._used("on_test_batch_begin"):
            super().on_test_batch_begin(batch, logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self._used("on_test_batch_end"):
            super().on_test_batch_end(batch, logs)


class EpochCursor(keras.callbacks.Callback):
    """Tells the batch source which epoch starts, so batches depend on the global step only."""

    def __init__(self, batches: Any):
        super().__init__()
        self.batches = batches

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.epoch = epoch


def evaluate_segmentation(model: keras.Model, images: np.ndarray, labels: np.ndarray,
                          background_entities: tuple, batch_size: int,
                          min_objects_multi: int) -> dict[str, float]:
    """FG-ARI, ARI, multi-object FG-ARI and the trivial baseline of the argmax of the attention
    masks on held-out images (``monetk.metrics.segmentation_scores``), plus their MSE (Eq. 7)."""
    out = model.decompose(images, batch_size)
    pred = out["masks"].argmax(axis=1)
    scores = segmentation_scores(labels, pred, background_entities, min_objects_multi)
    return {**scores, "mse": float(out["mse"].mean())}


def attention_examples(model: keras.Model, images: np.ndarray) -> dict[str, np.ndarray]:
    """``images`` (uint8 ``[N, H, W, C]``) with their deterministic decomposition, every array in
    [0, 1]: ``image`` and ``reconstruction`` ``[N, H, W, C]``, ``masks`` ``[N, K, H, W]`` (they
    sum to 1 over K) and ``components`` ``[N, K, H, W, C]``."""
    out = model.decompose(images)
    low, high = model.value_range

    def unit(a: np.ndarray) -> np.ndarray:
        return np.clip((a - low) / (high - low), 0.0, 1.0).astype(np.float32)

    return {"image": np.asarray(images, dtype=np.float32) / 255.0,
            "reconstruction": unit(out["reconstruction"]), "masks": out["masks"],
            "components": unit(out["components"])}


#: The log keys :class:`StepTimer` adds: wall-clock measurements, which differ from run to run.
TIMING_KEYS = ("step_time_s", "epoch_time_s", "first_step_s", "time")


class StepTimer(keras.callbacks.Callback):
    """Adds the epoch's timing to its logs (and so to ``history.csv`` and the progress reports).

    - ``step_time_s``: the median interval between consecutive batch fetches, i.e. the time of a
      training step in steady state. The median leaves out the first steps' one-off costs
      (``torch.compile``'s tracing, warm-up) and the checks, which run after the last fetch.
    - ``epoch_time_s``: the epoch's wall time, steps and everything the callbacks before this one
      did at its end (evaluation at checks) included; place it after them.
    - ``first_step_s``: in the first epoch this process trains, the time of its first step,
      which holds ``torch.compile``'s compiling (a later run in the same process mostly reuses
      the compiled code).
    - ``time``: the Unix time at the end of the epoch.

    ``batches``: the batch source, which appends each fetch's ``perf_counter()`` to its
    ``fetch_times`` (:class:`monetk.pipeline.TrainBatches`).
    """

    def __init__(self, batches: Any):
        super().__init__()
        self.batches = batches
        self.epoch_start = 0.0
        self.first_epoch = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.batches.fetch_times.clear()
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        intervals = np.diff(self.batches.fetch_times)
        if len(intervals):
            logs["step_time_s"] = float(np.median(intervals))
            if self.first_epoch:
                logs["first_step_s"] = float(intervals[0])
        self.first_epoch = False
        logs["epoch_time_s"] = time.perf_counter() - self.epoch_start
        logs["time"] = time.time()


class CheckEvaluator(keras.callbacks.Callback):
    """Every ``check_every`` steps: the MSE of x~ on the monitoring set (``monitor_mse``) and the
    segmentation metrics on the evaluation set, added to the epoch's logs for the callbacks after
    it (stopping rule, history)."""

    def __init__(self, steps_per_epoch: int, check_every: int, monitor_images: np.ndarray,
                 eval_images: np.ndarray, eval_labels: np.ndarray, background_entities: tuple,
                 batch_size: int = 100, min_objects_multi: int = 2):
        super().__init__()
        self.steps_per_epoch, self.check_every = steps_per_epoch, check_every
        self.monitor_images, self.eval_images, self.eval_labels = (
            monitor_images, eval_images, eval_labels)
        self.background_entities = tuple(background_entities)
        self.batch_size, self.min_objects_multi = batch_size, min_objects_multi

    def evaluate(self) -> dict[str, float]:
        monitor = self.model.decompose(self.monitor_images, self.batch_size)
        scores = evaluate_segmentation(self.model, self.eval_images, self.eval_labels,
                                       self.background_entities, self.batch_size,
                                       self.min_objects_multi)
        return {"monitor_mse": float(monitor["mse"].mean()),
                **{f"eval_{k}": v for k, v in scores.items()}}

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is not None and global_step(epoch, self.steps_per_epoch) % self.check_every == 0:
            logs.update(self.evaluate())


def non_finite(values: dict, where: str) -> str | None:
    """A reason naming the first non-finite number among ``values`` (``where``: e.g. "at step
    20"), or None when every number is finite. Segmentation scores (``eval_*``) are skipped: they
    are NaN by definition when no image qualifies (e.g. no multi-object image for
    ``fg_ari_multi``), whatever the weights."""
    for key, value in values.items():
        if key.startswith("eval_"):
            continue
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and not math.isfinite(value):
            return f"non-finite {key} ({value}) {where}"
    return None


def non_finite_weights(model: keras.Model, where: str) -> str | None:
    """A reason naming the first weight or optimizer variable of ``model`` holding a NaN or an
    infinity, or None when all are finite."""
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.weights, *(optimizer.variables if optimizer is not None else [])]
    for variable in variables:
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            return f"non-finite values in {variable.path} {where}"
    return None


class NaNGuard(keras.callbacks.Callback):
    """Stops a run when a logged value (every loss term, the monitoring MSE at checks) or a
    weight or optimizer variable is not finite at an epoch end; ``reason`` says which and where.
    Put it after the callbacks that add to the logs and before :class:`ResumableCheckpoint`.
    No per-step sync: an epoch mean carries a NaN of any of its steps."""

    def __init__(self, steps_per_epoch: int):
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.reason: str | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        where = f"at step {global_step(epoch, self.steps_per_epoch)}"
        self.reason = non_finite(logs or {}, where) or non_finite_weights(self.model, where)
        if self.reason is not None:
            self.model.stop_training = True


class StoppingRule(keras.callbacks.Callback):
    """The paper's rule (section 3): at each check t, stop when ``MSE_t < threshold`` and
    ``MSE_t / MSE_{t - check} > ratio``. With ``continue_after_stop`` the metrics at that moment
    are recorded (``at_stop``) and training goes on to the maximum steps (Table 1)."""

    def __init__(self, steps_per_epoch: int, threshold: float, ratio: float = 0.99,
                 continue_after_stop: bool = False):
        super().__init__()
        self.steps_per_epoch, self.threshold, self.ratio = steps_per_epoch, threshold, ratio
        self.continue_after_stop = continue_after_stop
        self.previous_mse: float | None = None
        self.stop_step: int | None = None
        self.at_stop: dict | None = None

    def fires(self, mse: float) -> bool:
        """Whether the rule fires at a check with MSE ``mse`` (given the previous check's)."""
        prev = self.previous_mse
        return prev is not None and mse < self.threshold and prev > 0 and mse / prev > self.ratio

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if not logs or "monitor_mse" not in logs:
            return
        mse = logs["monitor_mse"]
        if self.stop_step is None and self.fires(mse):
            self.stop_step = global_step(epoch, self.steps_per_epoch)
            self.at_stop = {k[len("eval_"):]: v for k, v in logs.items() if k.startswith("eval_")}
            if not self.continue_after_stop:
                self.model.stop_training = True
        self.previous_mse = mse

    def get_state(self) -> dict:
        return {"previous_mse": self.previous_mse, "stop_step": self.stop_step,
                "at_stop": self.at_stop}

    def set_state(self, state: dict) -> None:
        self.previous_mse = state["previous_mse"]
        self.stop_step = state["stop_step"]
        self.at_stop = state["at_stop"]


class HistoryLog(keras.callbacks.Callback):
    """One row per epoch (step, training means, :class:`StepTimer`'s timing, check metrics)
    rewritten atomically to a CSV. Its rows are checkpointed state: a resumed run keeps the rows,
    times included, of the steps before its checkpoint."""

    def __init__(self, path: str | Path, steps_per_epoch: int):
        super().__init__()
        self.path, self.steps_per_epoch = Path(path), steps_per_epoch
        self.rows: list[dict] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.rows.append({"step": global_step(epoch, self.steps_per_epoch), **(logs or {})})
        self.write()

    def write(self) -> None:
        columns = list(dict.fromkeys(k for row in self.rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write_text(self.path, buffer.getvalue())

    def get_state(self) -> dict:
        return {"rows": self.rows}

    def set_state(self, state: dict) -> None:
        self.rows = list(state["rows"])


class ResumableCheckpoint(keras.callbacks.Callback):
    """Every ``every`` steps, save the model with its optimizer state (``.keras``) and the state
    of the stateful callbacks, so that a killed run resumes and reaches the same result.

    Not Keras' ``BackupAndRestore``: it overwrites its weights file and its metadata file
    separately (a kill between the two leaves them inconsistent) and cannot carry the stopping
    rule's and the history's state. Here the model goes to ``ckpt-<step>.keras`` (temp file, then
    rename), then ``state-<step>.json``, which names it, and last ``state.json`` (the newest
    state; the only one before monetk 0.3), each replaced atomically: a state on disk always names
    a complete checkpoint. The :data:`KEEP` newest checkpoints are kept, so a damaged newest one
    falls back to the one before (:meth:`states`). With a ``guard``, a state in which it found a
    non-finite value is never saved: a diverged run keeps its last finite checkpoint.
    """

    STATE = "state.json"
    KEEP = 2

    def __init__(self, directory: str | Path, steps_per_epoch: int, every: int,
                 stateful: dict[str, Any], guard: NaNGuard | None = None):
        super().__init__()
        self.directory, self.steps_per_epoch, self.every = Path(directory), steps_per_epoch, every
        self.stateful, self.guard = stateful, guard

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.guard is not None and self.guard.reason is not None:
            return
        step = global_step(epoch, self.steps_per_epoch)
        if step % self.every == 0 or self.model.stop_training:
            self.save(epoch)

    def save(self, epoch: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        step = global_step(epoch, self.steps_per_epoch)
        name = f"ckpt-{step}.keras"
        tmp = self.directory / f".{name}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.directory / name)
        state = {"epoch": epoch + 1, "step": step, "model": name,
                 "stop_training": bool(self.model.stop_training),
                 "callbacks": {key: cb.get_state() for key, cb in self.stateful.items()}}
        text = json.dumps(state)
        atomic_write_text(self.directory / f"state-{step}.json", text)
        atomic_write_text(self.directory / self.STATE, text)
        keep = sorted((_step_of(p) for p in self.directory.glob("state-*.json")),
                      reverse=True)[:self.KEEP]
        for old in [*self.directory.glob("ckpt-*.keras"), *self.directory.glob("state-*.json")]:
            if _step_of(old) not in keep:
                old.unlink()

    @classmethod
    def states(cls, directory: str | Path) -> list[tuple[Path, dict | None]]:
        """The saved states, newest first, as (state file, state with ``model`` as a path), or
        (state file, None) for a file that cannot be read as a state."""
        directory = Path(directory)
        files = [directory / cls.STATE] if (directory / cls.STATE).exists() else []
        files += sorted(directory.glob("state-*.json"), key=_step_of, reverse=True)
        found = []
        for path in files:
            try:
                state = json.loads(path.read_text())
                state["model"] = str(directory / state["model"])
                int(state["step"])
            except (OSError, ValueError, TypeError, KeyError):
                state = None
            found.append((path, state))
        return found


def _step_of(path: Path) -> int:
    """The step in a checkpoint file name (``ckpt-20.keras``, ``state-20.json``); -1 if none."""
    digits = path.name.split("-", 1)[-1].split(".", 1)[0]
    return int(digits) if digits.isdigit() else -1


#: The placeholder that :func:`user_callbacks` replaces by the run's folder in the string
#: arguments of ``train.callbacks`` (so that per-run files of a sweep do not collide).
RUN_DIR_PLACEHOLDER = "{run_dir}"


def user_callback_class(path: str) -> type[keras.callbacks.Callback]:
    """The class a ``train.callbacks`` entry names by its dotted path (``module.Class``, e.g.
    ``keras.callbacks.CSVLogger``); raise ValueError saying why when the module does not import,
    has no such name, or the name is not a ``keras.callbacks.Callback`` subclass."""
    module_name, _, name = path.rpartition(".")
    if not module_name or not name:
        raise ValueError(f"{path!r} is not a dotted path module.Class")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # whatever the user's module raises while it is imported
        raise ValueError(f"cannot import module {module_name} "
                         f"({type(error).__name__}: {error})") from error
    found = getattr(module, name, None)
    if found is None:
        raise ValueError(f"module {module_name} has no {name}")
    if not (isinstance(found, type) and issubclass(found, keras.callbacks.Callback)):
        raise ValueError(f"{path} is not a keras.callbacks.Callback subclass")
    return found


def check_user_callback(path: str, args: Mapping[str, Any]) -> None:
    """Raise ValueError saying why when ``path`` names no callback class (see
    :func:`user_callback_class`) or its constructor does not take the keyword arguments
    ``args``."""
    callback_class = user_callback_class(path)
    signature = inspect.signature(callback_class)
    try:
        signature.bind(**args)
    except TypeError as error:
        raise ValueError(f"{path}{signature} does not take args {dict(args)!r}: {error}") from None


def user_callbacks(entries: list[Mapping[str, Any]],
                   run_dir: str | Path) -> list[keras.callbacks.Callback]:
    """The callbacks of ``train.callbacks`` entries (``{"class": dotted path, "args": {...}}``),
    each constructed with its ``args``, :data:`RUN_DIR_PLACEHOLDER` in any string among them
    replaced by ``run_dir``."""
    return [user_callback_class(entry["class"])(
                **_with_run_dir(entry.get("args", {}), str(run_dir)))
            for entry in entries]


def _with_run_dir(value: Any, run_dir: str) -> Any:
    """``value`` with :data:`RUN_DIR_PLACEHOLDER` replaced by ``run_dir`` in every string, at any
    depth of its mappings and lists."""
    if isinstance(value, str):
        return value.replace(RUN_DIR_PLACEHOLDER, run_dir)
    if isinstance(value, Mapping):
        return {key: _with_run_dir(item, run_dir) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_run_dir(item, run_dir) for item in value]
    return value
