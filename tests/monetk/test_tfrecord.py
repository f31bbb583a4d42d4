"""TFRecord framing and tf.train.Example decoding, checked against published reference values, an
independent bit-by-bit CRC-32C and the ``tfrecord`` package's reader and writer."""

import gzip
import struct

import crc32c
import numpy as np
import pytest
from tfrecord.reader import tfrecord_iterator
from tfrecord.writer import TFRecordWriter

from monetk.data.tfrecord import (
    BytesList,
    Example,
    TFRecordError,
    bytes_values,
    count_records,
    describe_feature,
    frame_record,
    masked_crc32c,
    parse_example,
    read_records,
    uint8_values,
    write_records,
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


def test_the_example_schema_serializes_to_tensorflows_bytes():
    example = Example()
    feature = example.features.feature
    feature["feature0"].int64_list.value.append(0)
    feature["feature1"].int64_list.value.append(4)
    feature["feature2"].bytes_list.value.append(b"goat")
    feature["feature3"].float_list.value.append(0.9876)
    assert example.SerializeToString(deterministic=True) == TF_TUTORIAL_EXAMPLE


def test_parse_example_reads_tensorflows_bytes():
    parsed = parse_example(TF_TUTORIAL_EXAMPLE)
    assert set(parsed) == {"feature0", "feature1", "feature2", "feature3"}
    assert parsed["feature0"].WhichOneof("kind") == "int64_list"
    assert list(parsed["feature1"].int64_list.value) == [4]
    assert bytes_values(parsed["feature2"].bytes_list) == [b"goat"]
    assert np.float32(parsed["feature3"].float_list.value[0]) == np.float32(0.9876)
    assert describe_feature(parsed["feature2"]) == "a BytesList of 1 value of 4 bytes"
    assert describe_feature(parsed["feature3"]) == "a FloatList of 1 value"
    assert describe_feature(parsed["feature0"]) == "an Int64List of 1 value"
    assert describe_feature(None) == "no such feature"


def test_parse_example_reads_unpacked_numbers_and_skips_unknown_fields():
    # Hand-encoded, field by field. Int64List {value: 5, value: -1} unpacked (wire type 0);
    # -1 is the 10-byte varint ff ff ff ff ff ff ff ff ff 01.
    int64_list = b"\x08\x05" + b"\x08" + b"\xff" * 9 + b"\x01"  # 13 bytes
    int_feature = b"\x1a\x0d" + int64_list  # Feature.int64_list = 3: 15 bytes
    int_entry = b"\x0a\x01i" + b"\x12\x0f" + int_feature  # map entry {key "i", value}: 20 bytes
    features = b"\x0a\x14" + int_entry  # 22 bytes
    unknown = b"\x38\x07" + b"\x45\x00\x00\x00\x00"  # fields 7 and 8 of Example
    parsed = parse_example(b"\x0a\x16" + features + unknown)
    assert list(parsed["i"].int64_list.value) == [5, -1]


def test_parse_example_rejects_truncated_bytes():
    with pytest.raises(TFRecordError, match="malformed Example"):
        parse_example(TF_TUTORIAL_EXAMPLE[:-3])


def test_uint8_values_of_the_per_byte_layout_and_of_other_encodings():
    values = bytes(range(256)) * 3
    payload = BytesList(value=[bytes([v]) for v in values]).SerializeToString()
    assert payload[:6] == b"\x0a\x01\x00\x0a\x01\x01"  # what the fast path reads
    np.testing.assert_array_equal(uint8_values(payload), np.frombuffer(values, np.uint8))
    # The same values with an over-long (2-byte) length varint: valid protobuf, slow path.
    overlong = b"".join(b"\x0a\x81\x00" + bytes([v]) for v in values[:10])
    np.testing.assert_array_equal(uint8_values(overlong), np.frombuffer(values[:10], np.uint8))
    assert uint8_values(BytesList(value=[b"ab", b"c"]).SerializeToString()) is None
    assert uint8_values(BytesList(value=[b"abc"]).SerializeToString()) is None  # 3 bytes long
    assert uint8_values(b"") is not None and uint8_values(b"").size == 0


def test_describe_feature_names_value_counts_and_sizes():
    example = Example()
    feature = example.features.feature
    feature["one"].bytes_list.value.append(bytes(12288))
    feature["many"].bytes_list.value.extend([b"a", b"bb", b"ccc"])
    feature["empty"].bytes_list.SetInParent()
    feature["unset"].SetInParent()
    parsed = parse_example(example.SerializeToString())
    assert describe_feature(parsed["one"]) == "a BytesList of 1 value of 12288 bytes"
    assert describe_feature(parsed["many"]) == "a BytesList of 3 values of 1-3 bytes"
    assert describe_feature(parsed["empty"]) == "an empty BytesList"
    assert describe_feature(parsed["unset"]) == "a Feature with no list set"


@pytest.mark.parametrize("compressed", [True, False])
def test_write_then_read_records_round_trip(tmp_path, compressed):
    path = tmp_path / "data.tfrecord"
    records = [bytes([i]) * (i * 100) for i in range(5)]
    write_records(path, records, gzip=compressed)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compressed
    assert list(read_records(path)) == records  # compression detected
    assert count_records(path) == 5


def test_the_tfrecord_package_reads_our_framing_and_we_read_its(tmp_path):
    path = tmp_path / "ours.tfrecord"
    write_records(path, [TF_TUTORIAL_EXAMPLE, b"second"], gzip=False)
    theirs = [bytes(r) for r in tfrecord_iterator(str(path))]
    assert theirs == [TF_TUTORIAL_EXAMPLE, b"second"]
    path = tmp_path / "theirs.tfrecord"
    writer = TFRecordWriter(str(path))
    writer.write({"feature2": (b"goat", "byte"), "feature3": (0.9876, "float")})
    writer.close()
    (record,) = read_records(path)
    assert bytes_values(parse_example(record)["feature2"].bytes_list) == [b"goat"]


def test_written_file_is_gzip_of_the_framed_records(tmp_path):
    path = tmp_path / "data.tfrecord.gz"
    write_records(path, [TF_TUTORIAL_EXAMPLE])
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
    write_records(path, [bytes([i]) + b"x" * 50 for i in range(3)])
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
