"""monetk.tensorboard without training: the attention grid's layout, and the event files of two
attempts of a run that start in the same second (tensorboardX names its files by the second)."""

import time

import numpy as np
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from monetk.tensorboard import TensorBoardLog, attention_grid


def test_the_attention_grid_has_a_row_per_image_of_its_image_reconstruction_and_masks():
    n, k, h, w = 2, 3, 4, 5
    rng = np.random.default_rng(0)
    examples = {"image": rng.random((n, h, w, 3)), "reconstruction": rng.random((n, h, w, 3)),
                "masks": rng.random((n, k, h, w))}
    grid = attention_grid(examples)
    assert grid.shape == (n * (h + 1), (k + 2) * (w + 1), 3)

    def tile(row, column):
        return grid[row * (h + 1):row * (h + 1) + h, column * (w + 1):column * (w + 1) + w]

    for i in range(n):
        np.testing.assert_array_equal(tile(i, 0), examples["image"][i])
        np.testing.assert_array_equal(tile(i, 1), examples["reconstruction"][i])
        for j in range(k):
            for channel in range(3):
                np.testing.assert_array_equal(tile(i, 2 + j)[..., channel],
                                              examples["masks"][i, j])
    assert (grid[h::h + 1] == 1.0).all() and (grid[:, w::w + 1] == 1.0).all()  # white borders


def test_a_resume_in_the_same_second_keeps_the_events_written_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    for epoch in (0, 1):  # the second attempt resumes after the first one's epoch
        log = TensorBoardLog(tmp_path, steps_per_epoch=5, check_every=1000,
                             images=np.zeros((1, 4, 4, 3), np.uint8))
        log.on_epoch_begin(epoch)
        log.on_epoch_end(epoch, {"loss": float(epoch), "time": time.time()})
        log.close()
    assert len(list(tmp_path.glob("events.out.tfevents.*"))) == 2
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert events.Tags()["scalars"] == ["train/loss"]  # time is no scalar
    assert [(e.step, e.value) for e in events.Scalars("train/loss")] == [(5, 0.0), (10, 1.0)]
