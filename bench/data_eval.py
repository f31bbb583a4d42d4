"""Data-pipeline and evaluation benchmarks: what feeds ``fit`` and what a check costs.

Data: images/s of the built-in generator (and of its one-time conversion into the uint8 cache),
images/s that ``TrainBatches`` delivers to ``fit`` from the memory-mapped cache and from an
in-memory array (``fit`` of a model whose step does nothing), and TFRecord records/s (writing
DeepMind-layout Multi-dSprites records, and converting them into the cache).
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
from monetk.data.deepmind import MULTI_DSPRITES_ENTITIES, MULTI_DSPRITES_FACTORS
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


def multi_dsprites_example(image: np.ndarray, labels: np.ndarray, seed: int = 0) -> bytes:
    """One serialized record in DeepMind's ``colored_on_colored`` layout: ``image`` and ``mask``
    (``[64, 64, E, 1]``) one one-byte BytesList value per element, float32 factors ``[E]`` and
    ``color`` ``[E, 3]`` (random here)."""
    entities = MULTI_DSPRITES_ENTITIES["colored_on_colored"]
    mask = labels_to_masks(labels[None], entities)[0].transpose(1, 2, 0, 3)  # [64, 64, E, 1]
    example = Example()
    feature = example.features.feature
    feature["image"].bytes_list.value.extend([_BYTES[v] for v in image.ravel().tolist()])
    feature["mask"].bytes_list.value.extend([_BYTES[v] for v in mask.ravel().tolist()])
    rng = np.random.default_rng(seed)
    for name in MULTI_DSPRITES_FACTORS:
        feature[name].float_list.value.extend(rng.random(entities).tolist())
    feature["color"].float_list.value.extend(rng.random(entities * 3).tolist())
    return example.SerializeToString()


def write_multi_dsprites_records(path: Path, images: np.ndarray, labels: np.ndarray,
                                 num_records: int | None = None) -> None:
    """A GZIP TFRecord file of ``num_records`` (default: one per image) DeepMind-layout records,
    cycling through the scenes given (each record is ~100 kB, so repeats do not compress)."""
    examples = [multi_dsprites_example(image, label, i)
                for i, (image, label) in enumerate(zip(images, labels, strict=True))]
    total = len(examples) if num_records is None else num_records
    write_records(path, (examples[i % len(examples)] for i in range(total)))


def measure_data(image_size: int = 64, num_images: int = 4096, batch_size: int = 64,
                 steps: int = 50, num_records: int = 2000) -> dict[str, float]:
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

        images, labels = generate_multi_dsprites(num_records, 64, seed=2, max_objects=4)
        path = workdir / "multi_dsprites.tfrecords"
        result["tfrecord_write_records_per_s"] = _rate(
            num_records, lambda: write_multi_dsprites_records(path, images, labels))
        config = _data_config(workdir, image_size, num_records - 200,
                              source="multi_dsprites_tfrecord", path=str(path))
        result["tfrecord_to_cache_records_per_s"] = _rate(num_records,
                                                          lambda: load_splits(config))
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
