"""Masks <-> labels, transforms, the on-disk cache and load_splits."""

import hashlib
import json
import threading
import time

import numpy as np
import pytest

from monetk.config import DEFAULTS, deep_merge
from monetk.data import labels_to_masks, load_splits, masks_to_labels, standardize
from monetk.data.cache import CacheError, cache_key, cached_dataset, load_cache
from monetk.data.multi_dsprites import generate_multi_dsprites
from monetk.data.transforms import downsample


def random_scenes(n, num_entities, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 64, 64, channels), dtype=np.uint8)
    labels = rng.integers(0, num_entities, (n, 64, 64), dtype=np.uint8)
    return images, labels


# --- masks <-> labels ---------------------------------------------------------------------------


def test_masks_to_labels_hand_worked():
    masks = np.zeros((1, 3, 2, 2, 1), np.uint8)
    masks[0, 0, 0, 0] = 255  # entity 0 at (0, 0)
    masks[0, 2, 0, 1] = 255  # entity 2 at (0, 1)
    masks[0, 1, 1, :] = 255  # entity 1 on row 1
    np.testing.assert_array_equal(masks_to_labels(masks), [[[0, 2], [1, 1]]])
    assert masks_to_labels(masks).dtype == np.uint8


def test_labels_to_masks_hand_worked_and_round_trip():
    labels = np.array([[[0, 2], [1, 1]]], np.uint8)
    masks = labels_to_masks(labels, 3)
    assert masks.shape == (1, 3, 2, 2, 1) and masks.dtype == np.uint8
    np.testing.assert_array_equal(
        masks[0, :, :, :, 0], [[[255, 0], [0, 0]], [[0, 0], [255, 255]], [[0, 255], [0, 0]]]
    )
    _, many = random_scenes(3, 6)
    np.testing.assert_array_equal(masks_to_labels(labels_to_masks(many, 6)), many)


def test_mask_conversions_name_bad_arguments():
    with pytest.raises(ValueError, match=r"masks: expected shape \[N, E, H, W, 1\]"):
        masks_to_labels(np.zeros((3, 4, 4, 1)))
    with pytest.raises(ValueError, match="num_entities=2"):
        labels_to_masks(np.full((1, 2, 2), 2, np.uint8), 2)


# --- transforms ---------------------------------------------------------------------------------


def test_downsample_hand_worked():
    channel = np.array([[0, 1, 10, 10], [2, 3, 10, 10], [0, 0, 255, 254], [0, 1, 255, 255]])
    images = np.repeat(channel[None, :, :, None], 3, axis=-1).astype(np.uint8)
    labels = np.arange(16, dtype=np.uint8).reshape(1, 4, 4)
    small_images, small_labels = downsample(images, labels, 2)
    # block means 1.5, 10, 0.25, 254.75 -> rounded half up: 2, 10, 0, 255
    np.testing.assert_array_equal(small_images[0, :, :, 0], [[2, 10], [0, 255]])
    np.testing.assert_array_equal(small_labels[0], [[5, 7], [13, 15]])  # pixel (1, 1) of each block


def test_downsample_matches_strided_sum():
    images, labels = random_scenes(2, 5, seed=5)
    small_images, small_labels = downsample(images, labels, 32)
    total = sum(images[:, i::2, j::2].astype(np.int64) for i in (0, 1) for j in (0, 1))
    np.testing.assert_array_equal(small_images, (2 * total + 4) // 8)  # floor(total / 4 + 0.5)
    np.testing.assert_array_equal(small_labels, labels[:, 1::2, 1::2])


def test_downsample_refuses_upsampling():
    images, labels = random_scenes(1, 2)
    with pytest.raises(ValueError, match="data.image_size: 128 exceeds"):
        downsample(images, labels, 128)


def test_standardize_maps_the_byte_range_onto_value_range():
    pixels = np.arange(256, dtype=np.uint8)
    out = standardize(pixels)
    assert out.dtype == np.float32
    assert out[0] == -1.0 and out[255] == 1.0
    np.testing.assert_allclose(out, pixels / 127.5 - 1.0, atol=1e-6)
    np.testing.assert_allclose(standardize(pixels, (0.0, 1.0)), pixels / 255.0, atol=1e-7)


def test_standardize_names_bad_arguments():
    with pytest.raises(ValueError, match="images_uint8: expected dtype uint8"):
        standardize(np.zeros(3, np.float32))
    with pytest.raises(ValueError, match="value_range: need low < high"):
        standardize(np.zeros(3, np.uint8), (1.0, 1.0))


# --- cache --------------------------------------------------------------------------------------


class FakeSource:
    """Records 0..n-1 in chunks of ``chunk``; remembers the start of every ``produce`` call."""

    def __init__(self, n=10, size=8, chunk=3, delay=0.0):
        rng = np.random.default_rng(7)
        self.images = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
        self.labels = rng.integers(0, 5, (n, size, size), dtype=np.uint8)
        self.chunk, self.delay = chunk, delay
        self.starts, self.counts = [], 0

    def count(self):
        self.counts += 1
        return len(self.images)

    def produce(self, start):
        self.starts.append(start)
        for first in range(start, len(self.images), self.chunk):
            time.sleep(self.delay)
            yield self.images[first : first + self.chunk], self.labels[first : first + self.chunk]

    def build(self, cache_dir, on_progress=None, params=None):
        return cached_dataset(
            cache_dir, "fake", params or {"n": 10}, 8, self.count, self.produce, on_progress
        )


def test_cache_key_ignores_key_order_and_tracks_values():
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})
    canonical = b'{"a":1,"b":[1,2]}'
    assert cache_key({"b": [1, 2], "a": 1}) == hashlib.sha256(canonical).hexdigest()[:16]


def test_cache_builds_once_and_is_memory_mapped(tmp_path):
    source = FakeSource()
    cached = source.build(tmp_path)
    assert isinstance(cached.images, np.memmap) and not cached.images.flags.writeable
    np.testing.assert_array_equal(cached.images, source.images)
    np.testing.assert_array_equal(cached.labels, source.labels)
    again = source.build(tmp_path)
    assert source.starts == [0] and source.counts == 1  # the second call only loads
    assert again.path == cached.path
    assert json.loads((cached.path / "meta.json").read_text())["num_records"] == 10
    assert not (cached.path / "progress.json").exists()


def test_interrupted_conversion_resumes_and_matches_an_uninterrupted_one(tmp_path):
    def stop_after_two_chunks(done, total):
        if done >= 6:
            raise KeyboardInterrupt

    source = FakeSource()
    with pytest.raises(KeyboardInterrupt):
        source.build(tmp_path / "a", on_progress=stop_after_two_chunks)
    path = next((tmp_path / "a").iterdir())
    assert load_cache(path) is None  # half-written: not complete
    assert not (path / "meta.json").exists()
    assert json.loads((path / "progress.json").read_text())["done"] == 6
    resumed = source.build(tmp_path / "a")
    assert source.starts == [0, 6] and source.counts == 1
    uninterrupted = FakeSource().build(tmp_path / "b")
    np.testing.assert_array_equal(resumed.images, uninterrupted.images)
    np.testing.assert_array_equal(resumed.labels, uninterrupted.labels)
    np.testing.assert_array_equal(resumed.images, source.images)


def test_short_producer_leaves_the_cache_incomplete(tmp_path):
    source = FakeSource()
    short = FakeSource()
    short.images, short.labels = short.images[:7], short.labels[:7]
    with pytest.raises(CacheError, match="stopped after 7 of 10 records"):
        cached_dataset(tmp_path, "fake", {"n": 10}, 8, source.count, short.produce)
    assert load_cache(next(tmp_path.iterdir())) is None


def test_concurrent_builders_convert_once(tmp_path):
    source = FakeSource(delay=0.05)
    results = [None, None]

    def build(slot):
        results[slot] = source.build(tmp_path)

    threads = [threading.Thread(target=build, args=(slot,)) for slot in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert source.starts == [0] and source.counts == 1
    for result in results:
        np.testing.assert_array_equal(result.images, source.images)


# --- load_splits --------------------------------------------------------------------------------


def data_config(tmp_path, **overrides):
    return deep_merge(DEFAULTS["data"], {"cache_dir": str(tmp_path / "cache"), **overrides})


def test_generated_splits_sizes_held_out_first_and_disjoint(tmp_path):
    config = data_config(tmp_path, image_size=32, num_train=20, num_eval=5, num_monitor=4)
    splits = load_splits(config)
    assert splits.train_images.shape == (20, 32, 32, 3)
    assert splits.monitor_images.shape == (4, 32, 32, 3)
    assert splits.eval_images.shape == (5, 32, 32, 3) and splits.eval_labels.shape == (5, 32, 32)
    assert isinstance(splits.train_images, np.memmap)
    assert splits.num_entities == 5 and splits.background_entities == (0,)
    images, labels = generate_multi_dsprites(29, image_size=32, seed=0)
    np.testing.assert_array_equal(splits.eval_images, images[:5])
    np.testing.assert_array_equal(splits.eval_labels, labels[:5])
    np.testing.assert_array_equal(splits.monitor_images, images[5:9])
    np.testing.assert_array_equal(splits.train_images, images[9:])
    train = {image.tobytes() for image in splits.train_images}
    held_out = {image.tobytes() for image in (*splits.eval_images, *splits.monitor_images)}
    assert len(train) == 20 and len(held_out) == 9 and not train & held_out


def test_generated_splits_are_deterministic_and_keep_the_held_out_set(tmp_path):
    first = load_splits(
        data_config(tmp_path / "a", image_size=16, num_train=8, num_eval=3, num_monitor=2)
    )
    second = load_splits(
        data_config(tmp_path / "b", image_size=16, num_train=8, num_eval=3, num_monitor=2)
    )
    np.testing.assert_array_equal(first.train_images, second.train_images)
    np.testing.assert_array_equal(first.eval_labels, second.eval_labels)
    bigger = load_splits(
        data_config(tmp_path / "c", image_size=16, num_train=12, num_eval=3, num_monitor=2)
    )
    np.testing.assert_array_equal(first.eval_images, bigger.eval_images)  # independent of num_train
    np.testing.assert_array_equal(first.train_images, bigger.train_images[:8])
    other_seed = load_splits(
        data_config(
            tmp_path / "d", image_size=16, num_train=8, num_eval=3, num_monitor=2, generator_seed=1
        )
    )
    assert not np.array_equal(first.eval_images, other_seed.eval_images)


def test_objects_room_generated_splits(tmp_path):
    config = data_config(
        tmp_path,
        source="objects_room_generated",
        image_size=16,
        num_train=3,
        num_eval=2,
        num_monitor=1,
        max_objects=3,
        background_entities=[0, 1, 2, 3],
    )
    splits = load_splits(config)
    assert splits.num_entities == 7 and splits.background_entities == (0, 1, 2, 3)
    assert splits.train_images.shape == (3, 16, 16, 3) and splits.eval_labels.shape == (2, 16, 16)
    assert splits.eval_labels.max() < 7


def test_tfrecord_splits_hold_out_the_last_records(tmp_path, deepmind):
    images, labels = random_scenes(10, 5, seed=8)
    path = tmp_path / "md.tfrecords"
    deepmind.write(path, images, labels, "multi_dsprites", "colored_on_colored")
    config = data_config(
        tmp_path,
        source="multi_dsprites_tfrecord",
        path=str(path),
        num_train=100,
        num_eval=3,
        num_monitor=2,
    )
    splits = load_splits(config)
    np.testing.assert_array_equal(splits.train_images, images[:5])  # num_train capped at 10 - 5
    np.testing.assert_array_equal(splits.monitor_images, images[5:7])
    np.testing.assert_array_equal(splits.eval_images, images[7:])
    np.testing.assert_array_equal(splits.eval_labels, labels[7:])
    assert splits.num_entities == 5
    fewer = load_splits(dict(config, num_train=2))  # same cache, fewer training images
    np.testing.assert_array_equal(fewer.train_images, images[:2])


def test_tfrecord_splits_downsample(tmp_path, deepmind):
    images, labels = random_scenes(4, 7, seed=9)
    path = tmp_path / "or.tfrecords"
    deepmind.write(path, images, labels, "objects_room", "train")
    config = data_config(
        tmp_path,
        source="objects_room_tfrecord",
        path=str(path),
        image_size=32,
        num_train=2,
        num_eval=1,
        num_monitor=1,
        background_entities=[0, 1, 2, 3],
    )
    splits = load_splits(config)
    total = sum(images[3:, i::2, j::2].astype(np.int64) for i in (0, 1) for j in (0, 1))
    np.testing.assert_array_equal(splits.eval_images, (2 * total + 4) // 8)
    np.testing.assert_array_equal(splits.eval_labels, labels[3:, 1::2, 1::2])
    assert splits.num_entities == 7


def test_tfrecord_file_too_small(tmp_path, deepmind):
    images, labels = random_scenes(3, 5)
    path = tmp_path / "md.tfrecords"
    deepmind.write(path, images, labels, "multi_dsprites", "colored_on_colored")
    config = data_config(
        tmp_path, source="multi_dsprites_tfrecord", path=str(path), num_eval=2, num_monitor=1
    )
    with pytest.raises(ValueError, match="data.path: .* has 3 records"):
        load_splits(config)


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        (
            {"source": "mnist"},
            ValueError,
            "data.source: 'mnist' is not one of multi_dsprites_generated",
        ),
        (
            {"source": "objects_room_tfrecord", "path": "/no/such.tfrecords"},
            FileNotFoundError,
            "data.path",
        ),
        ({"source": "multi_dsprites_tfrecord", "path": None}, FileNotFoundError, "data.path"),
        ({"num_eval": 0}, ValueError, "data.num_eval: must be an integer > 0"),
        (
            {"background_entities": [5]},
            ValueError,
            r"data.background_entities: \[5\] must lie in \[0, 5\)",
        ),
    ],
)
def test_bad_data_config_is_named(tmp_path, overrides, error, match):
    small = {"num_train": 2, "num_eval": 1, "num_monitor": 1, "image_size": 16}
    config = data_config(tmp_path, **{**small, **overrides})
    with pytest.raises(error, match=match):
        load_splits(config)


def test_bad_variant_and_image_size_for_tfrecords(tmp_path, deepmind):
    images, labels = random_scenes(3, 5)
    path = tmp_path / "md.tfrecords"
    deepmind.write(path, images, labels, "multi_dsprites", "colored_on_colored")
    base = {"source": "multi_dsprites_tfrecord", "path": str(path)}
    with pytest.raises(ValueError, match="data.variant: 'plain' is not one of"):
        load_splits(data_config(tmp_path, variant="plain", **base))
    with pytest.raises(ValueError, match="data.image_size: 128 exceeds the 64 px"):
        load_splits(data_config(tmp_path, image_size=128, **base))
