"""Shared test setup: select the Keras torch backend before any test imports keras, and the
``deepmind`` fixture: files in DeepMind's published multi_object_datasets layout, written by an
independent writer; and the ``tensorboard_history`` fixture, which reads a run's TensorBoard event
files with the tensorboard package's own reader and checks them against its history.csv.

The writer is the ``tfrecord`` package (its own ``tf.train.Example`` protobuf classes and framing);
files are then GZIP-compressed with the standard library, as DeepMind ships them. The layout
follows DeepMind's readers (``multi_dsprites.py``, ``objects_room.py``): ``image`` and ``mask`` are
``FixedLenFeature(shape, tf.string)``, i.e. one one-byte value per element; Multi-dSprites masks
are stored ``[64, 64, E, 1]`` and its records carry float32 ``x, y, shape, visibility,
orientation, scale`` ``[E]`` and ``color`` ``[E, C]``. Nothing here comes from monetk's code.
"""

import gzip
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from tfrecord.writer import TFRecordWriter

import monetk  # noqa: F401  (sets KERAS_BACKEND=torch)
from monetk.callbacks import TIMING_KEYS

#: MAX_NUM_ENTITIES_DICT of DeepMind's two readers.
DEEPMIND_ENTITIES = {
    ("multi_dsprites", "binarized"): 4,
    ("multi_dsprites", "colored_on_grayscale"): 6,
    ("multi_dsprites", "colored_on_colored"): 5,
    ("objects_room", "train"): 7,
    ("objects_room", "six_objects"): 10,
    ("objects_room", "empty_room"): 4,
    ("objects_room", "identical_color"): 10,
}
FACTORS = ("x", "y", "shape", "visibility", "orientation", "scale")


def one_hot_masks(labels, num_entities):
    """[N, H, W] labels -> [N, E, H, W, 1] masks with 0/255, by an identity-matrix lookup."""
    eye = np.eye(num_entities, dtype=np.uint8) * 255
    return np.moveaxis(eye[labels], -1, 1)[..., None]


def per_byte(array):
    """An array as DeepMind stores it: one one-byte value per element, row-major."""
    return [bytes([v]) for v in np.asarray(array, np.uint8).ravel().tolist()]


def write_examples(path, datums, compress=True):
    """Write ``tfrecord``-package datums ({name: (value, "byte" | "float" | "int")})."""
    path = Path(path)
    raw = path.with_name(path.name + ".raw")
    writer = TFRecordWriter(str(raw))
    for datum in datums:
        writer.write(datum)
    writer.close()
    if compress:
        with open(raw, "rb") as source, gzip.open(path, "wb") as target:
            shutil.copyfileobj(source, target)
        raw.unlink()
    else:
        raw.replace(path)
    return path


def deepmind_datums(images, labels, dataset, variant, seed=0):
    """One datum per scene in DeepMind's layout; also returns the float factors written."""
    entities = DEEPMIND_ENTITIES[(dataset, variant)]
    masks = one_hot_masks(labels, entities)  # [N, E, 64, 64, 1]
    rng = np.random.default_rng(seed)
    datums, factors = [], []
    for image, mask in zip(images, masks, strict=True):
        datum = {"image": (per_byte(image), "byte")}
        if dataset == "multi_dsprites":
            datum["mask"] = (per_byte(mask.transpose(1, 2, 0, 3)), "byte")  # [64, 64, E, 1]
            values = {name: rng.random(entities, dtype=np.float32) for name in FACTORS}
            values["color"] = rng.random((entities, image.shape[-1]), dtype=np.float32)
            datum.update({name: (v.ravel().tolist(), "float") for name, v in values.items()})
            factors.append(values)
        else:
            datum["mask"] = (per_byte(mask), "byte")  # [E, 64, 64, 1]
        datums.append(datum)
    return datums, factors


def random_scenes(n, num_entities, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 64, 64, channels), dtype=np.uint8)
    labels = rng.integers(0, num_entities, (n, 64, 64), dtype=np.uint8)
    return images, labels


class DeepMindWriter:
    """What the fixture gives: the helpers above."""

    entities = DEEPMIND_ENTITIES
    one_hot_masks = staticmethod(one_hot_masks)
    per_byte = staticmethod(per_byte)
    random_scenes = staticmethod(random_scenes)
    write_examples = staticmethod(write_examples)
    datums = staticmethod(deepmind_datums)

    @staticmethod
    def write(path, images, labels, dataset, variant, compress=True):
        """A DeepMind-layout file of these scenes; returns the float factors written."""
        datums, factors = deepmind_datums(images, labels, dataset, variant)
        write_examples(path, datums, compress)
        return factors


@pytest.fixture
def deepmind():
    """Helpers that write files in DeepMind's layout with the ``tfrecord`` package."""
    return DeepMindWriter


def events_against_history(log_dir, history_csv):
    """The event files in ``log_dir`` read by tensorboard's ``EventAccumulator``, after checking
    that every history.csv column but ``step`` and ``time`` is a scalar series (tag
    ``check/<column>`` for ``monitor_mse`` and ``eval_*``, ``time/<column>`` for the durations of
    ``StepTimer``, ``train/<column>`` for the rest) with exactly the steps where the history has
    a value (the checks' steps for check metrics, the first epoch of each attempt for
    ``first_step_s``), each once, and its values at float32 precision."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    history = pd.read_csv(history_csv)
    columns = [c for c in history.columns if c not in ("step", "time")]
    tags = {}
    for column in columns:
        check = column == "monitor_mse" or column.startswith("eval_")
        group = "check" if check else "time" if column in TIMING_KEYS else "train"
        tags[column] = (f"{group}/{column}", history[history[column].notna()])
    assert sorted(events.Tags()["scalars"]) == sorted(tag for tag, _ in tags.values())
    for column, (tag, rows) in tags.items():
        scalars = events.Scalars(tag)
        assert [e.step for e in scalars] == rows["step"].tolist(), tag
        np.testing.assert_array_equal(np.array([e.value for e in scalars], np.float32),
                                      rows[column].to_numpy(np.float32), err_msg=tag)
    return events


@pytest.fixture
def tensorboard_history():
    """:func:`events_against_history`."""
    return events_against_history
