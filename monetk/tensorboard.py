"""TensorBoard event files of a run, written without TensorFlow (tensorboardX).

:class:`TensorBoardLog` writes, at every epoch end, each number of the epoch's logs (the training
means of the loss terms, :class:`monetk.callbacks.StepTimer`'s durations, and at checks
:class:`monetk.callbacks.CheckEvaluator`'s ``monitor_mse`` and ``eval_*`` metrics) as a scalar,
and at checks the attention masks of a few held-out images as one image. The TensorBoard step is
the global training step, so a resumed run continues the curves of the run it resumes: its
writer starts with a purge of every event after the checkpoint it resumed from (what the killed
attempt wrote after its last checkpoint), so no step is shown twice. View with ``pip install
tensorboard`` and ``tensorboard --logdir OUT/<spec>``.
"""

from __future__ import annotations

import time
from pathlib import Path

import keras
import numpy as np
from tensorboardX import SummaryWriter

from monetk.callbacks import TIMING_KEYS, attention_examples, global_step

#: Seconds between flushes of the event file (tensorboardX's default is 120): a live TensorBoard
#: sees a run's progress this soon, and a hard kill (SIGKILL) loses at most the events of the
#: last this many seconds (history.csv keeps their numbers).
FLUSH_SECONDS = 10
#: Log keys left out: ``time`` is every event's own wall time already (and float32 scalars
#: would round a Unix time to minutes).
NOT_SCALARS = ("time",)


def scalar_tag(key: str) -> str:
    """The TensorBoard tag of a log key (TensorBoard groups tags by their first component):
    ``check/<key>`` for the check metrics (``monitor_mse``, ``eval_*``), ``time/<key>`` for
    :class:`monetk.callbacks.StepTimer`'s durations, ``train/<key>`` for the rest (the epoch
    means of the training step's terms)."""
    if key == "monitor_mse" or key.startswith("eval_"):
        return f"check/{key}"
    if key in TIMING_KEYS:
        return f"time/{key}"
    return f"train/{key}"


def attention_grid(examples: dict[str, np.ndarray]) -> np.ndarray:
    """One ``[H', W', C]`` image in [0, 1] of :func:`monetk.callbacks.attention_examples`: a row
    per example, its image, its reconstruction and its K attention masks (grey), each tile with a
    one-pixel white border on its right and bottom."""
    images = examples["image"]
    channels = images.shape[-1]
    masks = np.repeat(examples["masks"][..., None], channels, axis=-1)
    tiles = np.concatenate([images[:, None], examples["reconstruction"][:, None], masks], axis=1)
    tiles = np.pad(tiles, ((0, 0), (0, 0), (0, 1), (0, 1), (0, 0)), constant_values=1.0)
    rows, columns, height, width, _ = tiles.shape
    return tiles.transpose(0, 2, 1, 3, 4).reshape(rows * height, columns * width, channels)


class TensorBoardLog(keras.callbacks.Callback):
    """Event files in ``log_dir``: every number of each epoch's logs as a scalar at the global
    step (:func:`scalar_tag`), and every ``check_every`` steps ``check/attention``, the
    :func:`attention_grid` of ``images`` (uint8 ``[N, H, W, C]``, a few held-out images).

    Put it after the callbacks that add to the logs. The writer opens at the first epoch, with a
    purge of the steps after the previous epoch end (TensorBoard hides the events with those
    steps that earlier files hold: a killed attempt's steps after the checkpoint this one resumes
    from), in a new file, and closes at the end of training; call :meth:`close` when ``fit``
    raises (Keras then skips ``on_train_end``)."""

    def __init__(self, log_dir: str | Path, steps_per_epoch: int, check_every: int,
                 images: np.ndarray):
        super().__init__()
        self.log_dir, self.steps_per_epoch, self.check_every = (
            Path(log_dir), steps_per_epoch, check_every)
        self.images = images
        self.writer: SummaryWriter | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.writer is None:
            # tensorboardX names files by the second; the suffix keeps a resume within the same
            # second from truncating the file of the attempt before it, and sorts after it.
            self.writer = SummaryWriter(
                str(self.log_dir), purge_step=epoch * self.steps_per_epoch + 1,
                flush_secs=FLUSH_SECONDS, filename_suffix=f".{time.time_ns()}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        step = global_step(epoch, self.steps_per_epoch)
        for key, value in (logs or {}).items():
            if key not in NOT_SCALARS and isinstance(value, (int, float)) \
                    and not isinstance(value, bool):
                self.writer.add_scalar(scalar_tag(key), value, step)
        if step % self.check_every == 0:
            grid = attention_grid(attention_examples(self.model, self.images))
            self.writer.add_image("check/attention", grid, step, dataformats="HWC")

    def on_train_end(self, logs: dict | None = None) -> None:
        self.close()

    def close(self) -> None:
        """Write every pending event and close the event file (nothing when none is open)."""
        if self.writer is not None:
            self.writer.close()
            self.writer = None
