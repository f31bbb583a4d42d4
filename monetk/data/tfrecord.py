"""TFRecord files of ``tf.train.Example`` protos, read and written without TensorFlow.

A TFRecord file (optionally GZIP-compressed as a whole) is a sequence of records, each framed as

    uint64 length | uint32 masked_crc32c(length) | data | uint32 masked_crc32c(data)

(little-endian), where ``masked_crc32c(b) = ((c >> 15) | (c << 17)) + 0xA282EAD8 (mod 2**32)`` and
``c`` is the CRC-32C (Castagnoli) of ``b``. ``data`` is a serialized ``tf.train.Example``:

    Example  { Features features = 1; }
    Features { map<string, Feature> feature = 1; }
               # each map entry: { string key = 1; Feature value = 2; }
    Feature  { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2;
                            Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }
    FloatList { repeated float value = 1 [packed = true]; }
    Int64List { repeated int64 value = 1 [packed = true]; }

Decoded feature values: ``BytesList`` -> ``list[bytes]``, ``FloatList`` -> float32 array,
``Int64List`` -> int64 array. The decoder accepts packed and unpacked repeated numbers and skips
unknown fields; the encoder writes what TensorFlow writes (packed numbers).
"""

from __future__ import annotations

import gzip as gzip_module
import os
import struct
from collections.abc import Collection, Iterable, Iterator, Mapping
from typing import BinaryIO

import crc32c
import numpy as np

FeatureValue = list | np.ndarray

_MASK_DELTA = 0xA282EAD8
_GZIP_MAGIC = b"\x1f\x8b"
_VARINT, _FIXED64, _LENGTH_DELIMITED, _FIXED32 = 0, 1, 2, 5


class TFRecordError(ValueError):
    """A TFRecord file is truncated, fails a CRC check or holds a malformed Example."""


# --- record framing ---------------------------------------------------------------------------


def masked_crc32c(data: bytes) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def _open(path: str | os.PathLike, gzip: bool | None) -> BinaryIO:
    if gzip is None:
        with open(path, "rb") as probe:
            gzip = probe.read(2) == _GZIP_MAGIC
    return gzip_module.open(path, "rb") if gzip else open(path, "rb")


def _read_exact(
    stream: BinaryIO, size: int, path: str | os.PathLike, index: int, what: str
) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise TFRecordError(f"{os.fspath(path)}: record {index} is truncated ({what})")
    return data


def read_records(
    path: str | os.PathLike, gzip: bool | None = None, verify: bool = True
) -> Iterator[bytes]:
    """Yield the payload of every record of a TFRecord file, lazily, in file order.

    ``gzip=None`` detects GZIP compression from the file's magic bytes. With ``verify`` both CRCs
    of every record are checked; a mismatch raises :class:`TFRecordError` naming file and record.
    """
    with _open(path, gzip) as stream:
        index = 0
        while True:
            header = stream.read(12)
            if not header:
                return
            if len(header) != 12:
                raise TFRecordError(f"{os.fspath(path)}: record {index} is truncated (header)")
            length, length_crc = struct.unpack("<QI", header)
            if verify and masked_crc32c(header[:8]) != length_crc:
                raise TFRecordError(
                    f"{os.fspath(path)}: record {index}: CRC mismatch in the length field"
                )
            data = _read_exact(stream, length, path, index, "data")
            (data_crc,) = struct.unpack("<I", _read_exact(stream, 4, path, index, "data CRC"))
            if verify and masked_crc32c(data) != data_crc:
                raise TFRecordError(f"{os.fspath(path)}: record {index}: CRC mismatch in the data")
            yield data
            index += 1


def count_records(path: str | os.PathLike, gzip: bool | None = None) -> int:
    """Number of records in a TFRecord file (reads the framing only; CRCs are not checked)."""
    count = 0
    with _open(path, gzip) as stream:
        while True:
            header = stream.read(12)
            if not header:
                return count
            if len(header) != 12:
                raise TFRecordError(f"{os.fspath(path)}: record {count} is truncated (header)")
            (length,) = struct.unpack("<Q", header[:8])
            stream.seek(length + 4, os.SEEK_CUR)
            count += 1


def frame_record(data: bytes) -> bytes:
    """One record in TFRecord framing."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", masked_crc32c(length))
        + data
        + struct.pack("<I", masked_crc32c(data))
    )


def write_tfrecord(
    path: str | os.PathLike, examples: Iterable[Mapping[str, object]], gzip: bool = True
) -> None:
    """Write one ``tf.train.Example`` record per feature mapping (see :func:`encode_example`)."""
    opener = gzip_module.open if gzip else open
    with opener(path, "wb") as stream:
        for features in examples:
            stream.write(frame_record(encode_example(features)))


# --- protobuf wire format ---------------------------------------------------------------------


def _read_varint(buffer: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buffer):
            raise TFRecordError("malformed Example: truncated varint")
        byte = buffer[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise TFRecordError("malformed Example: varint longer than 10 bytes")


def _fields(buffer: bytes) -> Iterator[tuple[int, int, object]]:
    """Yield ``(field_number, wire_type, value)``; length-delimited values are ``bytes``."""
    pos, end = 0, len(buffer)
    while pos < end:
        tag, pos = _read_varint(buffer, pos)
        number, wire_type = tag >> 3, tag & 7
        if wire_type == _VARINT:
            value, pos = _read_varint(buffer, pos)
        elif wire_type == _FIXED64:
            value, pos = buffer[pos : pos + 8], pos + 8
        elif wire_type == _LENGTH_DELIMITED:
            size, pos = _read_varint(buffer, pos)
            value, pos = buffer[pos : pos + size], pos + size
        elif wire_type == _FIXED32:
            value, pos = buffer[pos : pos + 4], pos + 4
        else:
            raise TFRecordError(f"malformed Example: unsupported wire type {wire_type}")
        if pos > end:
            raise TFRecordError("malformed Example: field runs past the end of its message")
        yield number, wire_type, value


def _to_int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _decode_float_list(buffer: bytes) -> np.ndarray:
    parts = []
    for number, wire_type, value in _fields(buffer):
        if number == 1 and wire_type in (_LENGTH_DELIMITED, _FIXED32):
            parts.append(np.frombuffer(value, dtype="<f4"))
    return np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)


def _decode_int64_list(buffer: bytes) -> np.ndarray:
    values: list[int] = []
    for number, wire_type, value in _fields(buffer):
        if number != 1:
            continue
        if wire_type == _VARINT:
            values.append(_to_int64(value))
        elif wire_type == _LENGTH_DELIMITED:
            pos = 0
            while pos < len(value):
                item, pos = _read_varint(value, pos)
                values.append(_to_int64(item))
    return np.array(values, dtype=np.int64)


def _decode_feature(buffer: bytes) -> FeatureValue:
    decoded: FeatureValue = []  # a Feature with no kind set reads as an empty BytesList
    for number, wire_type, value in _fields(buffer):
        if wire_type != _LENGTH_DELIMITED:
            continue
        if number == 1:
            decoded = [v for n, w, v in _fields(value) if n == 1 and w == _LENGTH_DELIMITED]
        elif number == 2:
            decoded = _decode_float_list(value)
        elif number == 3:
            decoded = _decode_int64_list(value)
    return decoded


def parse_example(data: bytes, keys: Collection[str] | None = None) -> dict[str, FeatureValue]:
    """Decode a serialized ``tf.train.Example``; with ``keys``, decode only those features."""
    result: dict[str, FeatureValue] = {}
    for number, wire_type, features in _fields(data):
        if number != 1 or wire_type != _LENGTH_DELIMITED:
            continue
        for entry_number, entry_type, entry in _fields(features):
            if entry_number != 1 or entry_type != _LENGTH_DELIMITED:
                continue
            key, feature = "", b""
            for field, field_type, value in _fields(entry):
                if field == 1 and field_type == _LENGTH_DELIMITED:
                    key = value.decode("utf-8")
                elif field == 2 and field_type == _LENGTH_DELIMITED:
                    feature = value
            if keys is None or key in keys:
                result[key] = _decode_feature(feature)
    return result


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative int64 as two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _length_delimited(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | _LENGTH_DELIMITED) + _varint(len(payload)) + payload


def _encode_feature(name: str, value: object) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        value = [bytes(value)]
    is_bytes_list = isinstance(value, (list, tuple)) and len(value) > 0
    if is_bytes_list and all(isinstance(v, (bytes, bytearray)) for v in value):
        body = b"".join(_length_delimited(1, bytes(v)) for v in value)
        return _length_delimited(1, body)
    array = np.asarray(value)
    if array.dtype.kind == "f":
        packed = array.astype("<f4").tobytes()
        return _length_delimited(2, _length_delimited(1, packed) if packed else b"")
    if array.dtype.kind in "iub":
        packed = b"".join(_varint(int(v)) for v in array.ravel())
        return _length_delimited(3, _length_delimited(1, packed) if packed else b"")
    raise TypeError(
        f"feature {name!r}: expected bytes, a list of bytes, floats or integers, got {type(value)}"
    )


def encode_example(features: Mapping[str, object]) -> bytes:
    """Serialize a ``tf.train.Example`` as TensorFlow does.

    Values: ``bytes`` or a list of ``bytes`` -> BytesList; float arrays/lists -> FloatList;
    integer or bool arrays/lists -> Int64List (multi-dimensional arrays are flattened).
    """
    entries = []
    for name, value in features.items():
        key = _length_delimited(1, name.encode("utf-8"))
        entries.append(
            _length_delimited(1, key + _length_delimited(2, _encode_feature(name, value)))
        )
    return _length_delimited(1, b"".join(entries))
