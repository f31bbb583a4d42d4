"""EpochCallbackList against Keras' own CallbackList: the same hooks reach the callbacks, and no
per-step log conversion happens when no callback has a batch hook."""

import keras
import numpy as np
import pytest

import monetk  # noqa: F401  (selects the torch backend)
from monetk.callbacks import EpochCallbackList


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


class EpochLogs(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.logs = []

    def on_epoch_end(self, epoch, logs=None):
        self.logs.append(dict(logs))


class LegacyBatchEnd(keras.callbacks.Callback):
    """Overrides the old ``on_batch_end``, which Keras' ``on_train_batch_end`` calls."""

    def __init__(self):
        super().__init__()
        self.logs = []

    def on_batch_end(self, batch, logs=None):
        self.logs.append(dict(logs))


class BatchBegin(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.batches = []

    def on_train_batch_begin(self, batch, logs=None):
        self.batches.append(batch)


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
    epoch_logs = EpochLogs()
    ours = fit([epoch_logs], wrap=True)
    assert ours.count == EPOCHS + 1  # the logs at each epoch end and at the end of training
    keras_list = fit([EpochLogs()], wrap=False)
    assert keras_list.count == ours.count + EPOCHS * STEPS  # and each step's, on a thread pool
    assert epoch_logs.logs == [{"probe": 1.5}] * EPOCHS


def test_batch_hooks_that_a_callback_implements_run_as_in_keras():
    legacy, begin = LegacyBatchEnd(), BatchBegin()
    fit([legacy, begin], wrap=True)
    assert legacy.logs == [{"probe": 1.5}] * (EPOCHS * STEPS)  # converted, as Keras does
    assert begin.batches == list(range(STEPS)) * EPOCHS


@pytest.mark.parametrize("hook", ["on_test_batch_begin", "on_test_batch_end"])
def test_test_batch_hooks_reach_a_callback_that_implements_them(hook):
    seen = []

    class TestHook(keras.callbacks.Callback):
        pass

    setattr(TestHook, hook, lambda self, batch, logs=None: seen.append(batch))
    callbacks = EpochCallbackList([EpochLogs(), TestHook()])
    getattr(callbacks, hook)(3)
    assert seen == [3]
