"""EpochCallbackList against Keras' own CallbackList: the same hooks reach the callbacks, and no
per-step log conversion happens when no callback has a batch hook; StepTimer's step times."""

import time

import keras
import numpy as np
import pytest

import monetk  # noqa: F401  (selects the torch backend)
from monetk.callbacks import EpochCallbackList, EpochCursor, StepTimer
from monetk.pipeline import TrainBatches


class Conversions:
    """A log value that counts how often it is converted to a Python float."""

    def __init__(self):
        self.count = 0

    def __float__(self) -> float:
        self.count += 1
        return 1.5


class ProbeModel(keras.Model):
    """No weights; every step's logs hold the same :class:`Conversions`."""

    def __init__(self, probe: Conversions):
        super().__init__()
        self.probe = probe
        self.built = True

    def train_step(self, data):
        return {"probe": self.probe}


def recorder(hook: str) -> keras.callbacks.Callback:
    """A callback that implements only ``hook`` and records its (batch or epoch, logs) calls
    (``on_batch_end`` is the old hook that Keras' ``on_train_batch_end`` calls)."""
    def record(self, index, logs=None):
        self.records.append((index, dict(logs or {})))

    callback = type(f"Record_{hook}", (keras.callbacks.Callback,), {hook: record})()
    callback.records = []
    return callback


STEPS, EPOCHS = 6, 2


def fit(callbacks, wrap: bool):
    probe = Conversions()
    model = ProbeModel(probe)
    model.compile()
    if wrap:
        callbacks = EpochCallbackList(callbacks, add_history=True, model=model, epochs=EPOCHS,
                                      steps=STEPS, verbose=0)
    model.fit(np.zeros((STEPS, 1), "float32"), batch_size=1, epochs=EPOCHS, verbose=0,
              callbacks=callbacks, shuffle=False)
    return probe


def test_keras_converts_every_step_logs_and_the_epoch_list_does_not():
    epoch_logs = recorder("on_epoch_end")
    ours = fit([epoch_logs], wrap=True)
    assert ours.count == EPOCHS + 1  # the logs at each epoch end and at the end of training
    keras_list = fit([recorder("on_epoch_end")], wrap=False)
    assert keras_list.count == ours.count + EPOCHS * STEPS  # and each step's, on a thread pool
    assert epoch_logs.records == [(epoch, {"probe": 1.5}) for epoch in range(EPOCHS)]


def test_batch_hooks_that_a_callback_implements_run_as_in_keras():
    legacy, begin = recorder("on_batch_end"), recorder("on_train_batch_begin")
    fit([legacy, begin], wrap=True)
    batches = list(range(STEPS)) * EPOCHS
    assert legacy.records == [(b, {"probe": 1.5}) for b in batches]  # floats, as Keras gives
    assert [batch for batch, _ in begin.records] == batches


@pytest.mark.parametrize("hook", ["on_test_batch_begin", "on_test_batch_end"])
def test_test_batch_hooks_reach_a_callback_that_implements_them(hook):
    test_hook = recorder(hook)
    callbacks = EpochCallbackList([recorder("on_epoch_end"), test_hook])
    getattr(callbacks, hook)(3)
    assert test_hook.records == [(3, {})]


def sleeper(hook: str, seconds: float) -> keras.callbacks.Callback:
    """A callback whose ``hook`` sleeps ``seconds``: a slow step or a slow evaluation."""
    def sleep(self, index, logs=None):
        time.sleep(seconds)

    return type(f"Sleep_{hook}", (keras.callbacks.Callback,), {hook: sleep})()


def test_step_time_is_a_steady_step_and_the_epoch_time_counts_the_checks_before_the_timer():
    step, compiling, check = 0.02, 0.3, 0.5
    batches = TrainBatches(np.zeros((4, 2, 2, 3), np.uint8), 1, STEPS, seed=0)
    epoch_logs = recorder("on_epoch_end")

    class CompilingFirstStep(keras.callbacks.Callback):
        def on_train_batch_begin(self, index, logs=None):
            if not getattr(self, "done", False):
                self.done = True
                time.sleep(compiling)

    model = ProbeModel(Conversions())
    model.compile()
    callbacks = [EpochCursor(batches), sleeper("on_epoch_end", check), StepTimer(batches),
                 sleeper("on_train_batch_end", step), CompilingFirstStep(), epoch_logs]
    model.fit(batches, epochs=EPOCHS, verbose=0, shuffle=False,
              callbacks=EpochCallbackList(callbacks, add_history=True, model=model,
                                          epochs=EPOCHS, steps=STEPS, verbose=0))
    (_, first), (_, second) = epoch_logs.records
    for logs in (first, second):  # the median leaves the compiling step and the check out
        assert step <= logs["step_time_s"] < step + 0.015
        assert logs["epoch_time_s"] >= check + STEPS * step  # the check before the timer counts
    assert compiling <= first["first_step_s"] < compiling + step + 0.1
    assert "first_step_s" not in second
    assert first["epoch_time_s"] >= second["epoch_time_s"] - 0.05 + compiling * 0.9
    assert second["time"] - first["time"] >= check + STEPS * step
