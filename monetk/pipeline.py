"""Training batches for ``fit``: uint8 images drawn in an order fixed by (seed, global step).

Batch ``s`` is a slice of a per-pass permutation of the training set, where pass ``p`` is a
permutation drawn from ``(seed, p)``. The batch for a given global step is therefore the same in an
uninterrupted run and in one resumed from a checkpoint at any epoch. Batches stay uint8 (4x less
host-to-device traffic); the model standardises them on the device.

``fit`` fetches batch ``i + 1`` right after step ``i`` (one worker, no prefetch queue), so the
fetch times of an epoch time its steps: :class:`monetk.callbacks.StepTimer` turns them into
the epoch's step time.
"""

from __future__ import annotations

import time

import keras
import numpy as np


class TrainBatches(keras.utils.PyDataset):
    """``steps_per_epoch`` batches per epoch from ``images`` (``[N, H, W, C]`` uint8, may be a
    memmap). ``epoch`` must be set before each epoch (:class:`monetk.callbacks.EpochCursor`)."""

    def __init__(self, images: np.ndarray, batch_size: int, steps_per_epoch: int, seed: int):
        super().__init__(workers=1, use_multiprocessing=False)
        if batch_size > len(images):
            raise ValueError(
                f"train.batch_size={batch_size} exceeds the {len(images)} training images")
        self.images = images
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        self.epoch = 0
        self._pass = -1
        self._perm = np.empty(0, dtype=np.int64)
        self.fetch_times: list[float] = []  # perf_counter() of each batch fetched this epoch

    def __len__(self) -> int:
        return self.steps_per_epoch

    def indices(self, step: int) -> np.ndarray:
        """Sorted image indices of the batch at global ``step`` (sorted for memmap locality)."""
        n, b = len(self.images), self.batch_size
        start = step * b
        out = []
        while b > 0:
            pass_index, offset = divmod(start, n)
            if pass_index != self._pass:
                rng = np.random.default_rng([self.seed, pass_index])
                self._perm, self._pass = rng.permutation(n), pass_index
            take = self._perm[offset:offset + b]
            out.append(take)
            start, b = start + len(take), b - len(take)
        return np.sort(np.concatenate(out))

    def __getitem__(self, index: int) -> np.ndarray:
        self.fetch_times.append(time.perf_counter())
        return np.asarray(self.images[self.indices(self.epoch * self.steps_per_epoch + index)])
