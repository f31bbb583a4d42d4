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


def step_time(config: dict[str, Any], steps: int = 12, warmup: int = 3) -> float:
    """The median time (s) of ``steps`` training steps of ``config``'s run on this machine, after
    ``warmup`` steps that are dropped (compiling, warm-up).

    The model and its optimizer are built and compiled as
    :func:`monetk.experiment.run_experiment` builds them (``train.compile`` included), with
    ``train.threads`` torch threads (None: as they are), and trained by ``fit`` on random uint8
    images of the config's size through :class:`monetk.pipeline.TrainBatches`. A step's time is
    the interval between two batch fetches, as :class:`monetk.callbacks.StepTimer` measures it in
    a run (on CUDA a batch's upload waits for the previous step's work)."""
    if steps < 1 or warmup < 0:
        raise ValueError(f"step_time: need steps >= 1 and warmup >= 0, got {steps}, {warmup}")
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
    callbacks = EpochCallbackList([], add_history=True, model=model, epochs=1, steps=fetches,
                                  verbose=0)
    model.fit(batches, epochs=1, verbose=0, callbacks=callbacks, shuffle=False)
    return float(np.median(np.diff(batches.fetch_times)[warmup:]))


def machine() -> str:
    """The processor a run started in this process trains on (``result.json``'s ``machine``)."""
    return processor(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
