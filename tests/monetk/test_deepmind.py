"""DeepMind's Multi-dSprites and Objects Room files, written in their published layout by an
independent writer (the ``tfrecord`` package, see conftest.py), read by monetk."""

import gzip
import os
import re
import time

import numpy as np
import pytest

from monetk.config import resolve
from monetk.data.deepmind import (
    LayoutError,
    check_file,
    data_identity,
    largest_entity,
    read_chunks,
    read_examples,
    record_format,
    source_format,
)
from monetk.data.tfrecord import TFRecordError
from monetk.experiment import run_experiment

VARIANTS = [
    ("multi_dsprites", "colored_on_colored"),
    ("multi_dsprites", "colored_on_grayscale"),
    ("multi_dsprites", "binarized"),
    ("objects_room", "train"),
    ("objects_room", "six_objects"),
    ("objects_room", "empty_room"),
    ("objects_room", "identical_color"),
]


@pytest.mark.parametrize(("dataset", "variant"), VARIANTS)
def test_every_variant_decodes_to_what_was_written(tmp_path, deepmind, dataset, variant):
    entities = deepmind.entities[(dataset, variant)]
    channels = 1 if variant == "binarized" else 3
    images, labels = deepmind.random_scenes(3, entities, channels, seed=entities)
    path = tmp_path / "file.tfrecords"
    factors = deepmind.write(path, images, labels, dataset, variant)
    fmt = record_format(dataset, variant)
    assert fmt.num_entities == entities
    records = list(read_examples(path, fmt))
    assert len(records) == 3
    masks = deepmind.one_hot_masks(labels, entities)
    for i, record in enumerate(records):
        np.testing.assert_array_equal(record["image"], images[i])  # [64, 64, C]
        np.testing.assert_array_equal(record["mask"], masks[i])  # [E, 64, 64, 1]
        assert record["mask"].shape == (entities, 64, 64, 1)
        if dataset == "multi_dsprites":
            assert set(record) == {"image", "mask", "x", "y", "shape", "color", "visibility",
                                   "orientation", "scale"}
            for name, values in factors[i].items():
                np.testing.assert_array_equal(record[name], values)
        else:
            assert set(record) == {"image", "mask"}
    (chunk_images, chunk_labels), = read_chunks(path, fmt)
    np.testing.assert_array_equal(chunk_images, np.broadcast_to(images, (3, 64, 64, 3)))
    np.testing.assert_array_equal(chunk_labels, labels)


def test_uncompressed_files_chunks_and_a_start_record(tmp_path, deepmind):
    images, labels = deepmind.random_scenes(5, 7, seed=1)
    path = tmp_path / "or.tfrecords"
    deepmind.write(path, images, labels, "objects_room", "train", compress=False)
    fmt = record_format("objects_room")
    chunks = list(read_chunks(path, fmt, start=1, chunk=3))
    assert [len(c[0]) for c in chunks] == [3, 1]
    np.testing.assert_array_equal(np.concatenate([c[1] for c in chunks]), labels[1:])
    np.testing.assert_array_equal(np.concatenate([c[0] for c in chunks]), images[1:])


def test_a_wrong_variant_names_the_mask_and_its_entity_count(tmp_path, deepmind):
    images, labels = deepmind.random_scenes(1, 6)
    path = tmp_path / "md.tfrecords"
    deepmind.write(path, images, labels, "multi_dsprites", "colored_on_grayscale")
    with pytest.raises(LayoutError) as error:
        list(read_examples(path, record_format("multi_dsprites", "colored_on_colored")))
    message = str(error.value)
    assert message.startswith(f"{path}: record 0: feature 'mask': expected a BytesList of 20480 "
                              "one-byte values ([64, 64, 5, 1] tf.string")
    assert "found a BytesList of 24576 values of 1 byte (= 6 entities" in message


def test_one_bytes_value_instead_of_per_element_values_is_named(tmp_path, deepmind):
    """The layout monetk 0.3 expected (and wrote): one 12,288-byte value."""
    images, labels = deepmind.random_scenes(1, 7)
    datums, _ = deepmind.datums(images, labels, "objects_room", "train")
    datums[0]["image"] = (images[0].tobytes(), "byte")
    path = deepmind.write_examples(tmp_path / "or.tfrecords", datums)
    with pytest.raises(LayoutError) as error:
        check_file(path, "objects_room_tfrecord", None)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    assert ("record 0: feature 'image': expected a BytesList of 12288 one-byte values "
            "([64, 64, 3] tf.string, objects_room train, 7 entities), found a BytesList of 1 "
            "value of 12288 bytes") in message


@pytest.mark.parametrize(
    ("change", "found"),
    [
        ({"x": None}, re.escape("feature 'x': expected a FloatList of 5 values ([5] tf.float32, "
                                "multi_dsprites colored_on_colored, 5 entities), found no such "
                                "feature")),
        ({"shape": ([1, 2, 3, 4, 5], "int")}, "feature 'shape': expected a FloatList of 5 "
                                              "values .*found an Int64List of 5 values"),
        ({"color": ([0.5] * 5, "float")}, r"feature 'color': .*\[5, 3\] tf.float32.*found a "
                                          "FloatList of 5 values"),
        ({"mask": ([0.0] * 3, "float")}, "feature 'mask': expected a BytesList.*found a "
                                         "FloatList of 3 values"),
    ],
)
def test_a_missing_or_mistyped_multi_dsprites_factor_is_named(tmp_path, deepmind, change, found):
    images, labels = deepmind.random_scenes(1, 5)
    datums, _ = deepmind.datums(images, labels, "multi_dsprites", "colored_on_colored")
    for name, value in change.items():
        if value is None:
            del datums[0][name]
        else:
            datums[0][name] = value
    path = deepmind.write_examples(tmp_path / "md.tfrecords", datums)
    with pytest.raises(LayoutError, match=found):
        check_file(path, "multi_dsprites_tfrecord", "colored_on_colored")


def _framed_file(tmp_path, deepmind, n=3):
    images, labels = deepmind.random_scenes(n, 4, channels=1)
    path = tmp_path / "bin.tfrecords"
    deepmind.write(path, images, labels, "multi_dsprites", "binarized", compress=False)
    return path, bytearray(path.read_bytes())


def test_a_corrupted_byte_fails_the_crc_of_its_record(tmp_path, deepmind):
    path, raw = _framed_file(tmp_path, deepmind)
    record = len(raw) // 3
    raw[record + 500] ^= 0x10  # a pixel of record 1
    path.write_bytes(gzip.compress(bytes(raw)))
    fmt = record_format("multi_dsprites", "binarized")
    records = read_examples(path, fmt)
    next(records)
    with pytest.raises(TFRecordError, match=r"bin\.tfrecords: record 1: CRC mismatch in the data"):
        next(records)
    check_file(path, "multi_dsprites_tfrecord", "binarized")  # record 0 is intact


def test_truncated_files_are_named(tmp_path, deepmind):
    path, raw = _framed_file(tmp_path, deepmind)
    path.write_bytes(bytes(raw[:-100]))
    with pytest.raises(TFRecordError, match="record 2 is truncated"):
        list(read_chunks(path, record_format("multi_dsprites", "binarized")))
    compressed = gzip.compress(bytes(raw))
    path.write_bytes(compressed[: len(compressed) // 2])  # a download cut short
    with pytest.raises(TFRecordError, match="bin.tfrecords"):
        list(read_chunks(path, record_format("multi_dsprites", "binarized")))


def test_check_file_accepts_a_good_file_and_names_what_is_wrong(tmp_path, deepmind):
    images, labels = deepmind.random_scenes(2, 7)
    path = tmp_path / "objects_room_train.tfrecords"
    deepmind.write(path, images, labels, "objects_room", "train")
    check_file(path, "objects_room_tfrecord", None)
    check_file(path, "objects_room_tfrecord", "train")
    with pytest.raises(LayoutError, match="feature 'mask'.*objects_room six_objects, 10 entities"):
        check_file(path, "objects_room_tfrecord", "six_objects")
    missing = r"nothing\.tfrecords .*: no such file \(expected DeepMind's objects_room train"
    with pytest.raises(LayoutError, match=missing):
        check_file(tmp_path / "nothing.tfrecords", "objects_room_tfrecord", None)
    (tmp_path / "empty.tfrecords").write_bytes(b"")
    with pytest.raises(LayoutError, match="empty.tfrecords .*holds no records"):
        check_file(tmp_path / "empty.tfrecords", "objects_room_tfrecord", None)
    (tmp_path / "text.tfrecords").write_bytes(b"not a TFRecord file at all")
    with pytest.raises(LayoutError, match="text.tfrecords .*unreadable: .*CRC mismatch"):
        check_file(tmp_path / "text.tfrecords", "objects_room_tfrecord", None)
    with pytest.raises(ValueError, match="variant: 'rainbow' is not one of colored_on_colored"):
        check_file(path, "multi_dsprites_tfrecord", "rainbow")
    with pytest.raises(ValueError, match="data.source: 'clevr' is not one of"):
        check_file(path, "clevr", None)


def test_record_format_names_bad_arguments():
    assert source_format("multi_dsprites_tfrecord", "binarized").channels == 1
    with pytest.raises(ValueError, match="variant: 'rainbow' is not one of colored_on_colored"):
        record_format("multi_dsprites", "rainbow")
    with pytest.raises(ValueError, match="variant: 'colored_on_colored' is not one of train"):
        record_format("objects_room", "colored_on_colored")
    with pytest.raises(ValueError, match="dataset: 'clevr'"):
        record_format("clevr")


def test_data_identity_ignores_the_folder_and_reads_little(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    content = np.random.default_rng(0).integers(0, 256, 3 << 20, dtype=np.uint8).tobytes()
    (a / "data.tfrecords").write_bytes(content)
    (b / "data.tfrecords").write_bytes(content)
    same = data_identity(a / "data.tfrecords")
    assert same == data_identity(b / "data.tfrecords")
    assert same.startswith(f"data.tfrecords:{3 << 20}:")
    (b / "data.tfrecords").write_bytes(content[:-1] + bytes([content[-1] ^ 1]))  # last byte
    assert data_identity(b / "data.tfrecords") != same
    big = tmp_path / "big.tfrecords"
    with open(big, "wb") as stream:  # a sparse 8 GB file: hashing it all would take a minute
        stream.truncate(8 << 30)
    start = time.perf_counter()
    assert data_identity(big).startswith(f"big.tfrecords:{8 << 30}:")
    assert time.perf_counter() - start < 1.0
    os.unlink(big)


@pytest.mark.parametrize(
    ("source", "dataset", "variant", "background"),
    [("multi_dsprites_tfrecord", "multi_dsprites", "colored_on_colored", [0]),
     ("objects_room_tfrecord", "objects_room", "train", [0, 1, 2, 3])],
)
def test_a_deepmind_layout_file_trains_a_smoke_run(tmp_path, deepmind, source, dataset, variant,
                                                   background):
    """End to end: the independent writer's file -> check_file -> cache -> fit -> result.json."""
    entities = deepmind.entities[(dataset, variant)]
    images, labels = deepmind.random_scenes(40, entities, seed=7)
    path = tmp_path / f"{dataset}.tfrecords"
    deepmind.write(path, images, labels, dataset, variant)
    check_file(path, source, variant if dataset == "multi_dsprites" else None)
    config = resolve({
        "seed": 1,
        "data": {"source": source, "path": str(path), "variant": variant
                 if dataset == "multi_dsprites" else "colored_on_colored",
                 "image_size": 16, "num_train": 24, "num_eval": 8, "num_monitor": 8,
                 "background_entities": background, "cache_dir": str(tmp_path / "cache")},
        "model": {"num_slots": 3, "unet_base_width": 4, "unet_mlp_hidden": [16, 16],
                  "encoder_channels": [8, 8, 8, 8], "encoder_mlp_hidden": 16, "latent_size": 4,
                  "decoder_channels": 8, "decoder_layers": 2},
        "train": {"optimizer": "adam", "learning_rate": 1e-3, "epsilon": 1e-7, "batch_size": 8,
                  "max_steps": 6, "check_every": 3, "checkpoint_every": 3, "compile": False},
        "eval": {"batch_size": 8},
    })
    result = run_experiment(config, tmp_path / "run")
    assert result["status"] == "ok" and result["steps"] == 6
    assert result["final"]["n_images"] == 8 and -1.0 <= result["final"]["ari"] <= 1.0
    (cache,) = (tmp_path / "cache").iterdir()
    cached_labels = np.load(cache / "labels.npy")
    np.testing.assert_array_equal(cached_labels, labels[:, 2::4, 2::4])  # 64 -> 16 px


@pytest.mark.parametrize("axis", [1, 3])
def test_largest_entity_is_argmax_with_ties_to_the_lowest(axis):
    rng = np.random.default_rng(3)
    masks = rng.choice(np.array([0, 128, 255], np.uint8), size=(4, 6, 8, 8))  # many ties
    masks = np.moveaxis(masks, 1, axis)
    np.testing.assert_array_equal(largest_entity(masks, axis), np.argmax(masks, axis=axis))
    assert largest_entity(masks, axis).dtype == np.uint8
