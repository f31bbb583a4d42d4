"""Run-config validation: every value a run cannot train with is refused with its key and the
allowed values (issue 21's table of bad inputs that used to fail only at run time)."""

import pytest

from monetk.config import ConfigError, resolve

SMALL = {"data": {"image_size": 16, "num_train": 64}, "train": {"batch_size": 8}}


def _with(section, key, value):
    base = {k: dict(v) for k, v in SMALL.items()}
    if section is None:
        return {**base, key: value}
    return {**base, section: {**base.get(section, {}), key: value}}


@pytest.mark.parametrize(
    ("section", "key", "value", "message"),
    [
        (None, "seed", 2**32, "seed: must be in [0, 2**32), got 4294967296"),
        (None, "seed", 10**20, "seed: must be in [0, 2**32)"),
        (None, "seed", -1, "seed: must be in [0, 2**32), got -1"),
        ("data", "num_train", 4, "data.num_train: must be >= train.batch_size (8), got 4"),
        ("eval", "batch_size", 0, "eval.batch_size: must be > 0, got 0"),
        ("train", "threads", "many", "train.threads: must be null (torch's default), 0"),
        ("train", "threads", -2, "train.threads: must be null"),
        ("model", "unet_blocks", 10, "model.unet_blocks: must be null or an integer from 1 to 5"),
        ("data", "value_range", ["a", "b"], "data.value_range: expected [low, high], two numbers"),
        ("data", "value_range", [0.0], "data.value_range: expected [low, high], two numbers"),
        ("data", "min_objects", -3, "data.min_objects: must be >= 0, got -3"),
        ("loss", "beta", float("nan"), "loss.beta: must be a finite number, got nan"),
        ("loss", "gamma", float("inf"), "loss.gamma: must be a finite number, got inf"),
        ("loss", "sigmas", [0.1, float("nan")], "loss.sigmas[1]: must be a finite number"),
        ("train", "stop_ratio", -5, "train.stop_ratio: must be >= 0, got -5"),
        ("train", "epsilon", -1.0, "train.epsilon: must be > 0, got -1.0"),
        ("train", "stop_threshold", 0.0, "train.stop_threshold: must be > 0, got 0.0"),
        ("train", "rho", 1.0, "train.rho: must be in [0, 1), got 1.0"),
        ("train", "momentum", -0.1, "train.momentum: must be in [0, 1), got -0.1"),
        ("model", "num_slots", 1000, "model.num_slots: must be at most the 256 pixels"),
        ("eval", "min_objects_multi", 0, "eval.min_objects_multi: must be > 0, got 0"),
        ("train", "tensorboard", "yes", "train.tensorboard: expected bool, got str 'yes'"),
        ("train", "callbacks", {"class": "keras.callbacks.CSVLogger"},
         "train.callbacks: expected list, got dict"),
        ("train", "callbacks", ["keras.callbacks.CSVLogger"],
         "train.callbacks: entry 1: expected {class: module.Class, args: {...}} (args optional)"),
        ("train", "callbacks", [{"class": "keras.callbacks.History", "kwargs": {}}],
         "train.callbacks: entry 1: expected {class: module.Class"),
        ("train", "callbacks", [{"class": "CSVLogger"}],
         "train.callbacks: entry 1: 'CSVLogger' is not a dotted path module.Class"),
        ("train", "callbacks", [{"class": "keras.callbacks.History"},
                                {"class": "no_such_module.Logger"}],
         "train.callbacks: entry 2: cannot import module no_such_module (ModuleNotFoundError"),
        ("train", "callbacks", [{"class": "keras.callbacks.NoSuchLogger"}],
         "train.callbacks: entry 1: module keras.callbacks has no NoSuchLogger"),
        ("train", "callbacks", [{"class": "collections.OrderedDict"}],
         "train.callbacks: entry 1: collections.OrderedDict is not a keras.callbacks.Callback "
         "subclass"),
        ("train", "callbacks", [{"class": "keras.callbacks.CSVLogger", "args": {"fname": "a"}}],
         "train.callbacks: entry 1: keras.callbacks.CSVLogger(filename, separator=',', "
         "append=False) does not take args {'fname': 'a'}: missing a required argument"),
        ("train", "callbacks", [{"class": "keras.callbacks.CSVLogger",
                                 "args": {"filename": "a", "sep": ";"}}],
         "got an unexpected keyword argument 'sep'"),
        ("train", "callbacks", [{"class": "keras.callbacks.CSVLogger",
                                 "args": {"filename": "a", "separator": float("nan")}}],
         "train.callbacks[0].args.separator: must be a finite number, got nan"),
    ],
)
def test_a_value_no_run_can_train_with_is_refused(section, key, value, message):
    with pytest.raises(ConfigError) as error:
        resolve(_with(section, key, value))
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (None, "seed", 2**32 - 1),
        ("data", "num_train", 8),  # exactly one batch
        ("model", "unet_blocks", 5),  # 2**4 = 16: a 1x1 bottleneck at 16 px
        ("train", "threads", 0),
        ("train", "stop_ratio", 0.0),
        ("model", "num_slots", 256),
        ("train", "tensorboard", False),
        ("train", "callbacks", [{"class": "keras.callbacks.History"},
                                {"class": "keras.callbacks.CSVLogger",
                                 "args": {"filename": "{run_dir}/log.csv", "append": True}}]),
    ],
)
def test_the_edges_of_the_allowed_ranges_are_accepted(section, key, value):
    assert resolve(_with(section, key, value))


def test_the_learning_rate_schedule_keys_are_checked():
    import re

    assert resolve({"train": {"warmup_steps": 500, "lr_decay": "cosine"}})["train"][
        "lr_final_ratio"] == 0.0
    for bad, message in ((("warmup_steps", -1), "train.warmup_steps: must be >= 0"),
                         (("lr_decay", "step"), "train.lr_decay: 'step' is not one of none, "
                                                "cosine"),
                         (("lr_final_ratio", 1.5), "train.lr_final_ratio: must be in [0, 1)")):
        with pytest.raises(ConfigError, match=re.escape(message)):
            resolve({"train": {bad[0]: bad[1]}})
