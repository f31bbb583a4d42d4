"""TFRecord framing and tf.train.Example encoding, checked against published reference values and
an independent bit-by-bit CRC-32C."""

import gzip
import struct

import crc32c
import numpy as np
import pytest

from monetk.data.tfrecord import (
    TFRecordError,
    count_records,
    encode_example,
    frame_record,
    masked_crc32c,
    parse_example,
    read_records,
    write_tfrecord,
)

# tf.train.Example(features={feature0: int64 [0], feature1: int64 [4], feature2: bytes [b"goat"],
# feature3: float [0.9876]}).SerializeToString(), as printed by TensorFlow's "TFRecord and
# tf.train.Example" tutorial.
TF_TUTORIAL_EXAMPLE = (
    b"\nR\n\x11\n\x08feature0\x12\x05\x1a\x03\n\x01\x00\n\x11\n\x08feature1\x12\x05\x1a\x03\n\x01"
    b"\x04\n\x14\n\x08feature2\x12\x08\n\x06\n\x04goat\n\x14\n\x08feature3\x12\x08\x12\x06\n\x04"
    b"[\xd3|?"
)


def reference_crc32c(data: bytes) -> int:
    """CRC-32C one bit at a time (reflected Castagnoli polynomial 0x82F63B78)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def reference_masked(data: bytes) -> int:
    """TensorFlow's mask: ((crc >> 15) | (crc << 17)) + 0xa282ead8, modulo 2**32."""
    crc = reference_crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) % 2**32


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"123456789", 0xE3069283),  # the CRC catalogue's check value
        (bytes(32), 0x8A9136AA),  # RFC 3720 (iSCSI) B.4: 32 bytes of zeros
        (b"\xff" * 32, 0x62A8AB43),  # RFC 3720 B.4: 32 bytes of ones
        (bytes(range(32)), 0x46DD794E),  # RFC 3720 B.4: incrementing bytes
    ],
)
def test_crc32c_matches_published_vectors(data, expected):
    assert reference_crc32c(data) == expected
    assert crc32c.crc32c(data) == expected


def test_masked_crc_matches_a_published_value_and_the_reference():
    # Value from the tests of the tfrecord-slow package (an independent TFRecord writer).
    assert masked_crc32c(b"1234567890asdfghjkl") == 4134599430
    rng = np.random.default_rng(0)
    for size in (0, 1, 8, 100):
        data = rng.integers(0, 256, size, dtype=np.uint8).tobytes()
        assert masked_crc32c(data) == reference_masked(data)


def test_frame_record_layout():
    data = b"some payload"
    framed = frame_record(data)
    length = struct.pack("<Q", len(data))
    assert framed == (
        length
        + struct.pack("<I", reference_masked(length))
        + data
        + struct.pack("<I", reference_masked(data))
    )


def test_encode_example_gives_tensorflows_bytes():
    features = {"feature0": [0], "feature1": [4], "feature2": [b"goat"], "feature3": [0.9876]}
    assert encode_example(features) == TF_TUTORIAL_EXAMPLE


def test_parse_example_reads_tensorflows_bytes():
    parsed = parse_example(TF_TUTORIAL_EXAMPLE)
    assert set(parsed) == {"feature0", "feature1", "feature2", "feature3"}
    assert parsed["feature0"].dtype == np.int64 and parsed["feature0"].tolist() == [0]
    assert parsed["feature1"].tolist() == [4]
    assert parsed["feature2"] == [b"goat"]
    assert parsed["feature3"].dtype == np.float32
    assert parsed["feature3"][0] == np.float32(0.9876)


def test_parse_example_only_decodes_requested_keys():
    assert set(parse_example(TF_TUTORIAL_EXAMPLE, keys=("feature2",))) == {"feature2"}


def test_parse_example_reads_unpacked_repeated_numbers():
    # Hand-encoded, field by field. Int64List {value: 5, value: -1} unpacked (wire type 0);
    # -1 is the 10-byte varint ff ff ff ff ff ff ff ff ff 01.
    int64_list = b"\x08\x05" + b"\x08" + b"\xff" * 9 + b"\x01"  # 13 bytes
    int_feature = b"\x1a\x0d" + int64_list  # Feature.int64_list = 3: 15 bytes
    int_entry = b"\x0a\x01i" + b"\x12\x0f" + int_feature  # map entry {key "i", value}: 20 bytes
    # FloatList {value: 1.5, value: -2.0} unpacked (wire type 5, tag 0x0d).
    float_list = b"\x0d" + struct.pack("<f", 1.5) + b"\x0d" + struct.pack("<f", -2.0)  # 10 bytes
    float_feature = b"\x12\x0a" + float_list  # Feature.float_list = 2: 12 bytes
    float_entry = b"\x0a\x01f" + b"\x12\x0c" + float_feature  # 17 bytes
    features = b"\x0a\x14" + int_entry + b"\x0a\x11" + float_entry  # 41 bytes
    example = b"\x0a\x29" + features
    parsed = parse_example(example)
    assert parsed["i"].tolist() == [5, -1]
    assert parsed["f"].tolist() == [1.5, -2.0]


def test_parse_example_skips_unknown_fields():
    unknown = b"\x38\x07" + b"\x45\x00\x00\x00\x00" + b"\x49" + bytes(8)  # fields 7, 8, 9
    parsed = parse_example(TF_TUTORIAL_EXAMPLE + unknown)
    assert parsed["feature2"] == [b"goat"]


def test_parse_example_rejects_truncated_bytes():
    with pytest.raises(TFRecordError, match="malformed Example"):
        parse_example(TF_TUTORIAL_EXAMPLE[:-3])


def test_encode_parse_round_trip_of_all_kinds():
    features = {
        "bytes": [b"a", b"", bytes(range(256))],
        "ints": np.array([[-3, 0], [2**40, -(2**63)]], dtype=np.int64),
        "floats": np.linspace(-1, 1, 7, dtype=np.float32),
        "flag": np.array([True, False]),
        "empty": np.zeros(0, dtype=np.float32),
    }
    parsed = parse_example(encode_example(features))
    assert parsed["bytes"] == features["bytes"]
    assert parsed["ints"].tolist() == [-3, 0, 2**40, -(2**63)]
    np.testing.assert_array_equal(parsed["floats"], features["floats"])
    assert parsed["flag"].tolist() == [1, 0]
    assert parsed["empty"].size == 0


@pytest.mark.parametrize("compressed", [True, False])
def test_write_then_read_records_round_trip(tmp_path, compressed):
    path = tmp_path / "data.tfrecord"
    examples = [{"index": [i], "payload": bytes([i]) * (i * 100)} for i in range(5)]
    write_tfrecord(path, examples, gzip=compressed)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compressed
    records = [parse_example(r) for r in read_records(path)]  # compression detected
    assert [r["index"].tolist() for r in records] == [[i] for i in range(5)]
    assert [r["payload"] for r in records] == [[e["payload"]] for e in examples]
    assert count_records(path) == 5


def test_written_file_is_gzip_of_the_framed_records(tmp_path):
    path = tmp_path / "data.tfrecord.gz"
    write_tfrecord(
        path, [{"feature0": [0], "feature1": [4], "feature2": [b"goat"], "feature3": [0.9876]}]
    )
    length = struct.pack("<Q", len(TF_TUTORIAL_EXAMPLE))
    expected = (
        length
        + struct.pack("<I", reference_masked(length))
        + TF_TUTORIAL_EXAMPLE
        + struct.pack("<I", reference_masked(TF_TUTORIAL_EXAMPLE))
    )
    assert gzip.decompress(path.read_bytes()) == expected


def _three_record_file(tmp_path):
    path = tmp_path / "three.tfrecord"
    write_tfrecord(path, [{"value": [i], "pad": b"x" * 50} for i in range(3)])
    raw = bytearray(gzip.decompress(path.read_bytes()))
    record_size = len(raw) // 3
    return path, raw, record_size


def test_corrupt_data_byte_names_file_and_record(tmp_path):
    path, raw, record_size = _three_record_file(tmp_path)
    raw[2 * record_size + 20] ^= 0x01  # a payload byte of record 2
    path.write_bytes(gzip.compress(bytes(raw)))
    records = read_records(path)
    next(records), next(records)  # records 0 and 1 are read before record 2 is touched
    with pytest.raises(TFRecordError, match=r"three\.tfrecord: record 2: CRC mismatch in the data"):
        next(records)


def test_corrupt_length_names_the_length_field(tmp_path):
    path, raw, record_size = _three_record_file(tmp_path)
    raw[record_size] ^= 0x04  # length of record 1
    path.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(TFRecordError, match="record 1: CRC mismatch in the length"):
        list(read_records(path))


def test_truncated_file_names_the_record(tmp_path):
    path, raw, _ = _three_record_file(tmp_path)
    path.write_bytes(gzip.compress(bytes(raw[:-10])))
    with pytest.raises(TFRecordError, match="record 2 is truncated"):
        list(read_records(path))
