"""A short timing probe: how long a training step of a run config takes on this machine.

The runner's ``--estimate`` uses it for a model no finished run has measured here yet.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import torch

from monetk.callbacks import EpochCallbackList
from monetk.config import resolve
from monetk.experiment import build_model, build_optimizer, compile_enabled, processor
from monetk.pipeline import TrainBatches

#: A probe's defaults: steps timed at most, warm-up steps (not timed), steps timed at least, and
#: the seconds of timed steps after which it stops (:func:`step_time`).
STEPS, WARMUP, MIN_STEPS, BUDGET_S = 12, 3, 3, 20.0


def step_time(config: dict[str, Any], steps: int = STEPS, warmup: int = WARMUP,
              min_steps: int = MIN_STEPS, budget_s: float = BUDGET_S) -> float:
    """The median time (s) of up to ``steps`` training steps of ``config``'s run on this machine,
    after ``warmup`` steps that are dropped (compiling, warm-up). It stops early once at least
    ``min(min_steps, steps)`` are timed and they took ``budget_s``: a step of the paper model
    takes ~12 s on one CPU thread, so 12 steps would be 2.5 minutes a model.

    The model and its optimizer are built and compiled as
    :func:`monetk.experiment.run_experiment` builds them (``train.compile`` included), with
    ``train.threads`` torch threads (None: as they are), and trained by ``fit`` on random uint8
    images of the config's size through :class:`monetk.pipeline.TrainBatches`. A step's time is
    the interval between two batch fetches, as :class:`monetk.callbacks.StepTimer` measures it in
    a run (on CUDA a batch's upload waits for the previous step's work)."""
    if steps < 1 or warmup < 0 or min_steps < 1:
        raise ValueError(f"step_time: need steps >= 1, warmup >= 0 and min_steps >= 1, got "
                         f"{steps}, {warmup}, {min_steps}")
    config = resolve(config)
    train_cfg = config["train"]
    if train_cfg["threads"]:
        torch.set_num_threads(train_cfg["threads"])
    if compile_enabled(train_cfg["compile"]):
        torch._dynamo.reset()  # as run_experiment: no graphs of another model
    keras.utils.set_random_seed(config["seed"])
    model = build_model(config)
    model.compile(optimizer=build_optimizer(train_cfg))
    size, batch_size = config["data"]["image_size"], train_cfg["batch_size"]
    images = np.random.default_rng(config["seed"]).integers(
        0, 256, (batch_size, size, size, 3), dtype=np.uint8)
    # n fetches time n - 1 steps (the last step ends with no fetch after it).
    fetches = warmup + steps + 1
    batches = TrainBatches(images, batch_size, fetches, config["seed"])
    enough = _Enough(batches.fetch_times, warmup, min(min_steps, steps), budget_s)
    callbacks = EpochCallbackList([enough], add_history=True, model=model, epochs=1,
                                  steps=fetches, verbose=0)
    model.fit(batches, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
    return float(np.median(np.diff(batches.fetch_times)[warmup:]))


class _Enough(keras.callbacks.Callback):
    """Stops ``fit`` once ``min_steps`` steps after the warm-up are timed and took ``budget_s``
    (at the start of a step, whose batch is fetched: that step still runs, untimed). A
    batch-begin hook: Keras reads no losses for it, so no device sync is added."""

    def __init__(self, fetch_times: list[float], warmup: int, min_steps: int, budget_s: float):
        super().__init__()
        self.fetch_times, self.warmup = fetch_times, warmup
        self.min_steps, self.budget_s = min_steps, budget_s

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        times = self.fetch_times
        timed = len(times) - 1 - self.warmup
        if timed >= self.min_steps and times[-1] - times[self.warmup] >= self.budget_s:
            self.model.stop_training = True


def machine() -> str:
    """The processor a run started in this process trains on (``result.json``'s ``machine``)."""
    return processor(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
