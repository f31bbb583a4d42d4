"""The training, monitoring and evaluation images of one run, from the ``data`` config section.

The evaluation and monitoring images are a fixed held-out set, never trained on (the paper
withholds 1,000 images). Generated sources make ``num_eval + num_monitor + num_train`` images from
``generator_seed``: images ``[0, num_eval)`` are evaluated, the next ``num_monitor`` monitored and
the rest trained on, so the held-out set does not depend on ``num_train``. TFRecord sources hold
out the file's last ``num_monitor + num_eval`` records (monitor, then eval) and train on up to
``num_train`` of the records before them. Every source is converted once into a uint8 cache under
``cache_dir`` (:mod:`monetk.data.cache`); training images stay memory-mapped.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from monetk.config import DATA_SOURCES
from monetk.data import deepmind
from monetk.data.cache import CachedDataset, Producer, ProgressHook, cached_dataset
from monetk.data.multi_dsprites import generate_multi_dsprites
from monetk.data.tfrecord import count_records
from monetk.data.transforms import downsample, standardize

__all__ = ["Splits", "load_splits", "standardize"]

#: Records produced per cache chunk (one progress update each).
CHUNK = 1024


@dataclass(frozen=True)
class Splits:
    """uint8 images ``[N, H, W, 3]`` (``train_images`` may be a memmap) and eval labels
    ``[M, H, W]``; ``background_entities`` are the ground-truth ids FG-ARI drops."""

    train_images: np.ndarray
    monitor_images: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    background_entities: tuple[int, ...]
    num_entities: int


def _get(data_config: Mapping[str, Any], key: str) -> Any:
    if key not in data_config:
        raise KeyError(f"data.{key}: missing from the data config")
    return data_config[key]


GenerateFn = Callable[..., tuple[np.ndarray, np.ndarray]]


def _generated_chunks(
    generate: GenerateFn, total: int, image_size: int, kwargs: dict[str, Any]
) -> Producer:
    def produce(start: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for first in range(start, total, CHUNK):
            yield generate(min(CHUNK, total - first), image_size=image_size, start=first, **kwargs)

    return produce


def _tfrecord_chunks(path: str, fmt: deepmind.RecordFormat, image_size: int) -> Producer:
    def produce(start: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for images, labels in deepmind.read_chunks(path, fmt, start, CHUNK):
            yield downsample(images, labels, image_size)

    return produce


def _record_format(data: Mapping[str, Any]) -> deepmind.RecordFormat:
    """The record layout of a TFRecord source; Multi-dSprites needs ``data.variant``."""
    if data["source"] == "objects_room_tfrecord":
        return deepmind.record_format("objects_room")
    variant = _get(data, "variant")
    if variant not in deepmind.MULTI_DSPRITES_ENTITIES:
        raise ValueError(
            f"data.variant: {variant!r} is not one of {', '.join(deepmind.MULTI_DSPRITES_ENTITIES)}"
        )
    return deepmind.record_format("multi_dsprites", variant)


def _num_entities(data: Mapping[str, Any]) -> int:
    """Ground-truth entities (background included) of the source."""
    source = data["source"]
    if source == "multi_dsprites_generated":
        return _get(data, "max_objects") + 1
    if source == "objects_room_generated":
        return deepmind.OBJECTS_ROOM_ENTITIES["train"]  # the same entity ids as Objects Room
    return _record_format(data).num_entities


def _load_generated(
    data: Mapping[str, Any], total: int, on_progress: ProgressHook | None
) -> CachedDataset:
    source, image_size = data["source"], _get(data, "image_size")
    kwargs = {
        "seed": _get(data, "generator_seed"),
        "min_objects": _get(data, "min_objects"),
        "max_objects": _get(data, "max_objects"),
    }
    if source == "multi_dsprites_generated":
        generate = generate_multi_dsprites
    else:
        from monetk.data.objects_room_like import generate_objects_room_like

        generate = generate_objects_room_like
    params = {"source": source, "image_size": image_size, "num_images": total, **kwargs}
    return cached_dataset(
        _get(data, "cache_dir"),
        source,
        params,
        image_size,
        count=lambda: total,
        produce=_generated_chunks(generate, total, image_size, kwargs),
        on_progress=on_progress,
    )


def _load_tfrecord(data: Mapping[str, Any], on_progress: ProgressHook | None) -> CachedDataset:
    source, path, image_size = data["source"], _get(data, "path"), _get(data, "image_size")
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f"data.path: {path!r} is not a file (data.source={source!r})")
    if image_size > deepmind.IMAGE_SIZE:
        raise ValueError(
            f"data.image_size: {image_size} exceeds the {deepmind.IMAGE_SIZE} px of {source}"
        )
    fmt = _record_format(data)
    real_path = os.path.realpath(path)
    params = {
        "source": source,
        "data": deepmind.data_identity(real_path),  # the same file in another folder: one cache
        "variant": data.get("variant") if source == "multi_dsprites_tfrecord" else None,
        "image_size": image_size,
    }
    return cached_dataset(
        _get(data, "cache_dir"),
        source,
        params,
        image_size,
        count=lambda: count_records(real_path),
        produce=_tfrecord_chunks(real_path, fmt, image_size),
        on_progress=on_progress,
    )


def load_splits(data_config: Mapping[str, Any], on_progress: ProgressHook | None = None) -> Splits:
    """The run's image sets from ``data_config`` (the ``data`` section of a run config).

    ``on_progress(done, total)`` is called as a missing cache is being converted.
    """
    source = _get(data_config, "source")
    if source not in DATA_SOURCES:
        raise ValueError(f"data.source: {source!r} is not one of {', '.join(DATA_SOURCES)}")
    counts = {key: _get(data_config, key) for key in ("num_train", "num_eval", "num_monitor")}
    for key, value in counts.items():
        if not (isinstance(value, int) and value > 0):
            raise ValueError(f"data.{key}: must be an integer > 0, got {value!r}")
    num_train, num_eval, num_monitor = counts.values()
    num_entities = _num_entities(data_config)
    background = tuple(int(b) for b in _get(data_config, "background_entities"))
    if not all(0 <= b < num_entities for b in background):
        raise ValueError(
            f"data.background_entities: {list(background)} must lie in [0, {num_entities}) "
            f"for data.source={source!r}"
        )
    held_out = num_eval + num_monitor
    if source.endswith("_generated"):
        cached = _load_generated(data_config, held_out + num_train, on_progress)
        eval_slice = slice(0, num_eval)
        monitor_slice = slice(num_eval, held_out)
        train_slice = slice(held_out, held_out + num_train)
    else:
        cached = _load_tfrecord(data_config, on_progress)
        total = len(cached.images)
        if total <= held_out:
            raise ValueError(
                f"data.path: {data_config['path']} has {total} records; holding out "
                f"num_monitor + num_eval = {held_out} leaves none to train on"
            )
        train_slice = slice(0, min(num_train, total - held_out))
        monitor_slice = slice(total - held_out, total - num_eval)
        eval_slice = slice(total - num_eval, total)
    eval_labels = np.array(cached.labels[eval_slice])
    if eval_labels.size and int(eval_labels.max()) >= num_entities:
        raise ValueError(
            f"{cached.path}: label {int(eval_labels.max())} is out of range for the "
            f"{num_entities} entities of data.source={source!r}"
        )
    return Splits(
        train_images=cached.images[train_slice],
        monitor_images=np.array(cached.images[monitor_slice]),
        eval_images=np.array(cached.images[eval_slice]),
        eval_labels=eval_labels,
        background_entities=background,
        num_entities=num_entities,
    )
