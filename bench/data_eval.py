"""Data-pipeline and evaluation benchmarks: what feeds ``fit`` and what a check costs.

Data: images/s of the built-in generator (and of its one-time conversion into the uint8 cache),
images/s that ``TrainBatches`` delivers to ``fit`` from the memory-mapped cache and from an
in-memory array (``fit`` of a model whose step does nothing), and the records/s of converting
DeepMind-layout Multi-dSprites and Objects Room TFRecord files into the cache (20,480 records).
Evaluation: ``segmentation_scores`` (FG-ARI, ARI, ...) on held-out images, and the model's
``decompose`` forward on them, timed separately.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import numpy as np

from bench.timing import EpochClock, median
from monetk.config import resolve
from monetk.data import generate_multi_dsprites, labels_to_masks, load_splits
from monetk.data.deepmind import RecordFormat, record_format
from monetk.data.tfrecord import Example, write_records
from monetk.metrics import segmentation_scores
from monetk.model import MONet
from monetk.pipeline import TrainBatches


def _rate(count: int, fn: Callable[[], object], repeats: int = 1) -> float:
    """``count`` items / the median time of ``fn()`` over ``repeats`` calls."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return count / median(times)


class _Consumer(keras.Model):
    """A model whose training step only receives the batch: ``fit`` then measures delivery."""

    def __init__(self):
        super().__init__()
        self.built = True

    def train_step(self, data) -> dict:
        return {}


def fit_delivery_rate(images: np.ndarray, batch_size: int, steps: int) -> float:
    """Images/s that ``TrainBatches`` over ``images`` delivers to ``fit`` (one epoch)."""
    consumer = _Consumer()
    consumer.compile()
    clock = EpochClock()
    consumer.fit(TrainBatches(images, batch_size, steps, seed=0), epochs=1, verbose=0,
                 callbacks=[clock])
    return batch_size * steps / clock.epoch_times[0]


def _data_config(workdir: Path, image_size: int, num_train: int, **extra: Any) -> dict:
    return resolve({"data": {"cache_dir": str(workdir / "cache"), "image_size": image_size,
                             "num_train": num_train, "num_eval": 100, "num_monitor": 100,
                             **extra}})["data"]


_BYTES = [bytes([value]) for value in range(256)]


def deepmind_example(image: np.ndarray, labels: np.ndarray, fmt: RecordFormat,
                     seed: int = 0) -> bytes:
    """One serialized record in DeepMind's layout of ``fmt``: ``image`` and ``mask`` one one-byte
    BytesList value per element (Multi-dSprites: mask ``[64, 64, E, 1]`` and random float32
    factors; Objects Room: mask ``[E, 64, 64, 1]``)."""
    mask = labels_to_masks(labels[None], fmt.num_entities)[0]  # [E, 64, 64, 1]
    if fmt.dataset == "multi_dsprites":
        mask = mask.transpose(1, 2, 0, 3)
    example = Example()
    feature = example.features.feature
    feature["image"].bytes_list.value.extend([_BYTES[v] for v in image.ravel().tolist()])
    feature["mask"].bytes_list.value.extend([_BYTES[v] for v in mask.ravel().tolist()])
    rng = np.random.default_rng(seed)
    for name, shape in fmt.float_shapes.items():
        feature[name].float_list.value.extend(rng.random(shape).ravel().tolist())
    return example.SerializeToString()


def write_deepmind_records(path: Path, images: np.ndarray, labels: np.ndarray, fmt: RecordFormat,
                           num_records: int | None = None) -> None:
    """A GZIP TFRecord file of ``num_records`` (default: one per image) DeepMind-layout records,
    cycling through the scenes given (a record is ~100 kB, beyond DEFLATE's 32 kB window, so
    the repeats compress like new scenes)."""
    examples = [deepmind_example(image, label, fmt, i)
                for i, (image, label) in enumerate(zip(images, labels, strict=True))]
    total = len(examples) if num_records is None else num_records
    write_records(path, (examples[i % len(examples)] for i in range(total)))


def tfrecord_conversion_rate(workdir: Path, dataset: str, num_records: int,
                             distinct: int = 1024) -> float:
    """Records/s of converting a GZIP file of ``num_records`` DeepMind-layout records (cycling
    ``distinct`` generated scenes) into the uint8 cache at 64 px: counting, reading, CRC checks,
    decoding and writing, as a run's first ``load_splits`` does."""
    fmt = record_format(dataset, "colored_on_colored" if dataset == "multi_dsprites" else None)
    distinct = min(distinct, num_records)
    if dataset == "multi_dsprites":
        images, labels = generate_multi_dsprites(distinct, 64, seed=2, max_objects=4)
        background = [0]
    else:
        from monetk.data.objects_room_like import generate_objects_room_like

        images, labels = generate_objects_room_like(distinct, 64, seed=2)
        background = [0, 1, 2, 3]
    path = workdir / f"{dataset}.tfrecords"
    write_deepmind_records(path, images, labels, fmt, num_records)
    config = _data_config(workdir, 64, num_records - 200, source=f"{dataset}_tfrecord",
                          path=str(path), background_entities=background)
    return _rate(num_records, lambda: load_splits(config))


def measure_data(image_size: int = 64, num_images: int = 4096, batch_size: int = 64,
                 steps: int = 50, num_records: int = 20480) -> dict[str, float]:
    """Images/s (records/s) of every stage that can feed training, in a temporary directory."""
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="monetk-bench-") as tmp:
        workdir = Path(tmp)
        result["generator_images_per_s"] = _rate(
            num_images, lambda: generate_multi_dsprites(num_images, image_size, seed=1))
        config = _data_config(workdir, image_size, num_images)
        start = time.perf_counter()
        splits = load_splits(config)
        result["generator_to_cache_images_per_s"] = (num_images + 200) / (
            time.perf_counter() - start)
        cached = splits.train_images  # memory-mapped
        batches = TrainBatches(cached, batch_size, steps, seed=0)
        result["cache_batches_images_per_s"] = _rate(
            batch_size * steps, lambda: [batches[i] for i in range(steps)], repeats=3)
        result["cache_to_fit_images_per_s"] = median(
            fit_delivery_rate(cached, batch_size, steps) for _ in range(3))
        in_memory = np.array(cached)
        result["memory_to_fit_images_per_s"] = median(
            fit_delivery_rate(in_memory, batch_size, steps) for _ in range(3))

        for dataset in ("multi_dsprites", "objects_room"):
            result[f"tfrecord_{dataset}_to_cache_records_per_s"] = tfrecord_conversion_rate(
                workdir, dataset, num_records)
    return result


def measure_eval(model: MONet, num_images: int = 1000, batch_size: int = 100,
                 repeats: int = 3) -> dict[str, float]:
    """Seconds for ``segmentation_scores`` on ``num_images`` held-out images (median of
    ``repeats``) and for the model's ``decompose`` forward that gives its predictions."""
    images, labels = generate_multi_dsprites(num_images, model.image_size, seed=3)
    start = time.perf_counter()
    masks = model.decompose(images, batch_size)["masks"]
    decompose_s = time.perf_counter() - start
    pred = masks.argmax(axis=1)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        scores = segmentation_scores(labels, pred, background_entities=[0])
        times.append(time.perf_counter() - start)
    return {"num_images": num_images, "image_size": model.image_size,
            "num_slots": model.num_slots, "segmentation_scores_s": median(times),
            "decompose_s": decompose_s, "fg_ari_untrained": scores["fg_ari"]}
