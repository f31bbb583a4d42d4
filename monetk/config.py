"""The run configuration: every value one training run needs, with the paper's defaults.

A run config is a plain nested dict with exactly the sections and keys of :data:`DEFAULTS`.
``monetk`` knows nothing of specs: the runner resolves a spec into one such dict per run and
hands it to :func:`monetk.experiment.run_experiment`. :func:`resolve` fills in defaults and
:func:`validate` checks names, types and allowed values, raising :class:`ConfigError` with the
key path and what is allowed.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

#: Names accepted for ``loss.reconstruction`` (Eq. 2 as printed, Eq. 2 mixed per pixel, 8, 7, 9).
RECONSTRUCTION_LOSSES = ("nll", "nll_per_pixel", "ir", "mse", "mw")
#: Names accepted for ``loss.latent`` (Eq. 4).
LATENT_LOSSES = ("kl",)
#: Names accepted for ``loss.mask`` (Eq. 5, 10).
MASK_LOSSES = ("kl", "mse")
#: Names accepted for ``data.source``.
DATA_SOURCES = (
    "multi_dsprites_generated",
    "objects_room_generated",
    "multi_dsprites_tfrecord",
    "objects_room_tfrecord",
)
MULTI_DSPRITES_VARIANTS = ("colored_on_colored", "colored_on_grayscale", "binarized")
OPTIMIZERS = ("rmsprop", "adam")
LR_DECAYS = ("none", "cosine")

DEFAULTS: dict[str, Any] = {
    "seed": 0,
    "data": {
        # Where images come from: a built-in generator or DeepMind's GZIP TFRecords.
        "source": "multi_dsprites_generated",
        "path": None,  # TFRecord file, for the *_tfrecord sources
        "variant": "colored_on_colored",  # Multi-dSprites variant of the TFRecord file
        "cache_dir": "data_cache",  # uint8 .npy caches, shared by all runs
        "image_size": 64,
        "num_train": 100_000,  # training images (the paper: 1,000,000 minus the held-out set)
        "num_eval": 1000,  # held-out images for the segmentation metrics (paper: 1,000)
        "num_monitor": 1000,  # held-out images for the stopping rule's MSE
        "min_objects": 1,  # generated data only
        "max_objects": 4,
        "background_entities": [0],  # ground-truth entities dropped by FG-ARI
        "value_range": [-1.0, 1.0],  # pixels standardised from [0, 255] to this range
        "generator_seed": 0,  # seed of the generated dataset (the same for every run)
    },
    "model": {
        "num_slots": 5,  # K
        "unet_base_width": 32,  # down path widths c, c, 2c, 2c, 2c, ...
        "unet_blocks": None,  # None: log2(image_size) - 1
        "unet_mlp_hidden": [128, 128],
        "encoder_channels": [32, 32, 64, 64],
        "encoder_mlp_hidden": 256,
        "latent_size": 16,
        "decoder_channels": 32,
        "decoder_layers": 4,
    },
    "loss": {
        "reconstruction": "nll",
        "latent": "kl",
        "mask": "kl",
        "beta": 0.5,
        "gamma": 0.25,
        # sigma_k for k = 1..K; a shorter list repeats its last value. MONet's code and paper use
        # 0.09 for the first (background) component and 0.11 for the rest; the ablation paper's
        # text states the opposite order (0.11, 0.09). The paper specs say which they use.
        "sigmas": [0.09, 0.11],
        "ir_sigma": 0.09,  # sigma_x of the IR loss (Eq. 8); the paper: 0.09
    },
    "train": {
        "optimizer": "rmsprop",
        "learning_rate": 1e-4,
        # RMSprop with MONet's TF1-era settings, decay 0.9 and epsilon 1e-10, set explicitly:
        # the defaults differ (Keras 0.9 / 1e-7, PyTorch 0.99 / 1e-8). Keras 3 adds epsilon
        # inside the square root, sqrt(v + eps), as TF1 did (PyTorch adds it outside).
        "rho": 0.9,
        "epsilon": 1e-10,
        "momentum": 0.0,
        "centered": False,
        # RMSprop's accumulator v_0: Keras and PyTorch start it at 0, TF1's RMSPropOptimizer (the
        # original MONet's) at 1. Updates differ until the average forgets v_0 (~50-180 steps).
        "rmsprop_initial": 0.0,
        # Learning-rate schedule (not in MONet or the paper: a lever of the CPU demos):
        # lr(t) = learning_rate * min(1, (t + 1) / warmup_steps) * d(t), with d = 1 ("none") or a
        # cosine from 1 to lr_final_ratio at max_steps ("cosine"); t = optimizer steps taken.
        "warmup_steps": 0,
        "lr_decay": "none",
        "lr_final_ratio": 0.0,
        "batch_size": 64,
        "max_steps": 1_000_000,
        "check_every": 100_000,  # steps between stopping-rule checks and evaluations
        "stop_threshold": 0.001,  # l: stop when MSE_t < l and MSE_t / MSE_{t-check} > stop_ratio
        "stop_ratio": 0.99,
        "continue_after_stop": False,  # record metrics when the rule fires, train to max_steps
        "checkpoint_every": 10_000,  # steps between resumable checkpoints
        "compile": "auto",  # torch.compile the forward and loss: true, false, auto (on CUDA)
        "threads": None,  # torch intra-op threads (None: torch's default)
        "mixed_precision": False,  # bf16 autocast on CUDA
        "tensorboard": True,  # TensorBoard event files in <run dir>/tensorboard/
        # Keras callbacks to add to fit: [{class: dotted.path.Class, args: {keyword: value}}];
        # "{run_dir}" in a string arg is replaced by the run's folder.
        "callbacks": [],
    },
    "eval": {
        "batch_size": 100,
        "min_objects_multi": 2,  # FG-ARI over images with at least this many objects
    },
}

_NULLABLE = {("data", "path"), ("model", "unet_blocks"), ("train", "threads")}
_BOOL_OR_AUTO = {("train", "compile")}
_CHOICES = {
    ("data", "source"): DATA_SOURCES,
    ("data", "variant"): MULTI_DSPRITES_VARIANTS,
    ("loss", "reconstruction"): RECONSTRUCTION_LOSSES,
    ("loss", "latent"): LATENT_LOSSES,
    ("loss", "mask"): MASK_LOSSES,
    ("train", "optimizer"): OPTIMIZERS,
    ("train", "lr_decay"): LR_DECAYS,
}
_NON_NEGATIVE = {("loss", "beta"), ("loss", "gamma"), ("train", "rmsprop_initial"),
                 ("train", "stop_ratio"), ("data", "min_objects"), ("train", "warmup_steps")}
#: Values in [0, 1): decay and momentum rates.
_UNIT_INTERVAL = {("train", "rho"), ("train", "momentum"), ("train", "lr_final_ratio")}
#: Seeds of torch, numpy and the generators: [0, 2**32).
SEED_LIMIT = 2**32
_POSITIVE = {
    ("data", "max_objects"),
    ("train", "epsilon"),
    ("train", "stop_threshold"),
    ("eval", "batch_size"),
    ("eval", "min_objects_multi"),
    ("data", "image_size"),
    ("data", "num_train"),
    ("data", "num_eval"),
    ("data", "num_monitor"),
    ("model", "num_slots"),
    ("model", "latent_size"),
    ("train", "learning_rate"),
    ("train", "batch_size"),
    ("train", "max_steps"),
    ("train", "check_every"),
    ("train", "checkpoint_every"),
    ("loss", "ir_sigma"),
}


class ConfigError(ValueError):
    """A run config has an unknown key, a wrong type or a value outside its allowed set."""


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``, recursing into nested mappings."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def resolve(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The defaults updated by ``overrides``, validated."""
    config = deep_merge(DEFAULTS, overrides or {})
    validate(config)
    return config


def _type_ok(value: Any, default: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list)
    if isinstance(default, str):
        return isinstance(value, str)
    return True  # None defaults: checked by the specific rules below


def validate(config: Mapping[str, Any]) -> None:
    """Check every key, type and allowed value of a full run config, and the rules between
    values (a batch fits the training set, the U-Net's blocks fit the image, K fits the pixels);
    raise :class:`ConfigError` naming each problem's key and what is allowed."""
    problems: list[str] = []
    _check_keys(config, DEFAULTS, (), problems)
    if problems:
        raise ConfigError("; ".join(problems))
    _check_finite(config, (), problems)
    if problems:
        raise ConfigError("; ".join(problems))
    _check_values(config, problems)
    if problems:
        raise ConfigError("; ".join(problems))


def _check_keys(config: Any, defaults: Mapping[str, Any], path: tuple, problems: list[str]) -> None:
    if not isinstance(config, Mapping):
        problems.append(f"{'.'.join(path) or 'config'}: expected a mapping, got {config!r}")
        return
    for key, value in config.items():
        where = ".".join((*path, str(key)))
        if key not in defaults:
            problems.append(f"{where}: unknown key (allowed: {', '.join(defaults)})")
            continue
        default = defaults[key]
        if isinstance(default, Mapping):
            _check_keys(value, default, (*path, key), problems)
        elif value is None and (*path, key) in _NULLABLE:
            continue
        elif (*path, key) in _BOOL_OR_AUTO:
            if not (isinstance(value, bool) or value == "auto"):
                problems.append(f"{where}: expected true, false or auto, got {value!r}")
        elif not _type_ok(value, default):
            problems.append(
                f"{where}: expected {type(default).__name__}, got {type(value).__name__} {value!r}"
            )
    for key in defaults:
        if key not in config:
            problems.append(f"{'.'.join((*path, key))}: missing")


def _check_finite(node: Any, path: tuple, problems: list[str]) -> None:
    """Every number finite (NaN and infinities would train to NaN or fail at JSON time)."""
    if isinstance(node, Mapping):
        for key, value in node.items():
            _check_finite(value, (*path, key), problems)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _check_finite(value, (*path[:-1], f"{path[-1]}[{i}]"), problems)
    elif isinstance(node, float) and not math.isfinite(node):
        problems.append(f"{'.'.join(map(str, path))}: must be a finite number, got {node!r}")


def _check_values(config: Mapping[str, Any], problems: list[str]) -> None:
    def get(path: tuple) -> Any:
        return config[path[0]][path[1]]

    for path, seed in ((("seed",), config["seed"]),
                       (("data", "generator_seed"), get(("data", "generator_seed")))):
        if not 0 <= seed < SEED_LIMIT:
            problems.append(f"{'.'.join(path)}: must be in [0, 2**32), got {seed!r}")
    for path in _UNIT_INTERVAL:
        if not 0 <= get(path) < 1:
            problems.append(f"{'.'.join(path)}: must be in [0, 1), got {get(path)!r}")
    threads = get(("train", "threads"))
    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool)
                                or threads < 0):
        problems.append(f"train.threads: must be null (torch's default), 0 (the worker's "
                        f"share) or a positive integer, got {threads!r}")

    for path, allowed in _CHOICES.items():
        if get(path) not in allowed:
            problems.append(f"{'.'.join(path)}: {get(path)!r} is not one of {', '.join(allowed)}")
    for path in _POSITIVE:
        if not get(path) > 0:
            problems.append(f"{'.'.join(path)}: must be > 0, got {get(path)!r}")
    for path in _NON_NEGATIVE:
        if get(path) < 0:
            problems.append(f"{'.'.join(path)}: must be >= 0, got {get(path)!r}")
    sigmas = get(("loss", "sigmas"))
    if not sigmas or not all(isinstance(s, (int, float)) and s > 0 for s in sigmas):
        problems.append(f"loss.sigmas: must be a non-empty list of numbers > 0, got {sigmas!r}")
    if len(sigmas) > get(("model", "num_slots")):
        slots = get(("model", "num_slots"))
        problems.append(f"loss.sigmas: {len(sigmas)} values for model.num_slots={slots}")
    size = get(("data", "image_size"))
    if size & (size - 1) or size < 8:
        problems.append(f"data.image_size: must be a power of two >= 8, got {size}")
    blocks = get(("model", "unet_blocks"))
    if blocks is not None and (not isinstance(blocks, int) or isinstance(blocks, bool)
                               or blocks < 1 or 2 ** (blocks - 1) > size):
        problems.append(f"model.unet_blocks: must be null or an integer from 1 to "
                        f"{size.bit_length()} (2**(blocks - 1) <= data.image_size {size}), "
                        f"got {blocks!r}")
    slots = get(("model", "num_slots"))
    if slots > size * size:
        problems.append(f"model.num_slots: must be at most the {size * size} pixels of a "
                        f"{size}x{size} image, got {slots}")
    value_range = get(("data", "value_range"))
    if len(value_range) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value_range):
        problems.append(f"data.value_range: expected [low, high], two numbers, got "
                        f"{value_range!r}")
    elif not value_range[0] < value_range[1]:
        problems.append(f"data.value_range: need low < high, got {value_range}")
    if get(("data", "num_train")) < get(("train", "batch_size")):
        problems.append(f"data.num_train: must be >= train.batch_size "
                        f"({get(('train', 'batch_size'))}), got {get(('data', 'num_train'))}")
    problems += _callback_problems(get(("train", "callbacks")))
    source, path = config["data"]["source"], config["data"]["path"]
    if source.endswith("_tfrecord") and not path:
        problems.append(f"data.path: required for data.source={source!r}")
    elif not source.endswith("_tfrecord") and path is not None:
        problems.append(f"data.path: {path!r} is set, but data.source={source!r} is a built-in "
                        f"generator that reads no file; set data.source to "
                        f"{source.replace('_generated', '_tfrecord')!r} as well, or data.path "
                        f"to null")
    if path is not None and not isinstance(path, str):
        problems.append(f"data.path: expected a file path or null, got {path!r}")
    if get(("data", "min_objects")) > get(("data", "max_objects")):
        problems.append("data.min_objects: must be <= data.max_objects")


def _callback_problems(entries: list) -> list[str]:
    """What is wrong with each ``train.callbacks`` entry: its shape (``class``, a dotted path,
    and optional ``args``, a mapping), and whether the class imports, is a Keras callback and
    takes the args (:func:`monetk.callbacks.check_user_callback`; Keras is imported only when
    some callback is named)."""
    problems = []
    for number, entry in enumerate(entries, start=1):
        where = f"train.callbacks: entry {number}"
        if not (isinstance(entry, Mapping) and isinstance(entry.get("class"), str)
                and set(entry) <= {"class", "args"}
                and isinstance(entry.get("args", {}), Mapping)):
            problems.append(f"{where}: expected {{class: module.Class, args: {{...}}}} (args "
                            f"optional), got {entry!r}")
            continue
        from monetk.callbacks import check_user_callback

        try:
            check_user_callback(entry["class"], entry.get("args", {}))
        except ValueError as error:
            problems.append(f"{where}: {error}")
    return problems


def sigma_per_slot(sigmas: list[float], num_slots: int) -> list[float]:
    """sigma_k for k = 1..K from a list whose last value repeats (``[0.09, 0.11]`` -> K values)."""
    return [float(sigmas[min(k, len(sigmas) - 1)]) for k in range(num_slots)]
