"""DeepMind's multi_object_datasets records (Multi-dSprites, Objects Room) -> (image, labels).

Each record's ``image`` feature holds ``[64, 64, C]`` uint8 bytes and its ``mask`` feature the
per-entity masks (values 0/255) as uint8 bytes: Multi-dSprites stores them as ``[64, 64, E, 1]``
(transposed ``[2, 0, 1, 3]`` to ``[E, 64, 64, 1]`` by DeepMind's reader), Objects Room as
``[E, 64, 64, 1]``. Entity 0 is the background; in Objects Room entities 0-3 are the sky, the
floor and the two wall halves. Outputs use monetk's format: image uint8 ``[64, 64, 3]`` (a
1-channel image is replicated) and labels uint8 ``[64, 64]`` (entity index per pixel).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from monetk.data.masks import masks_to_labels
from monetk.data.tfrecord import parse_example, read_records

IMAGE_SIZE = 64
#: Max entities (background included) per Multi-dSprites variant.
MULTI_DSPRITES_ENTITIES = {"colored_on_colored": 5, "colored_on_grayscale": 6, "binarized": 4}
#: Max entities of the Objects Room training set, and its background entities.
OBJECTS_ROOM_ENTITIES = 7
OBJECTS_ROOM_BACKGROUND = (0, 1, 2, 3)
DATASETS = ("multi_dsprites", "objects_room")


@dataclass(frozen=True)
class RecordFormat:
    """Layout of one dataset's records."""

    dataset: str
    num_entities: int
    channels: int
    mask_entities_last: bool  # Multi-dSprites: mask stored [H, W, E, 1]


def record_format(dataset: str, variant: str | None = None) -> RecordFormat:
    """The record layout of ``dataset`` (and, for Multi-dSprites, of its ``variant``)."""
    if dataset == "objects_room":
        return RecordFormat(dataset, OBJECTS_ROOM_ENTITIES, 3, mask_entities_last=False)
    if dataset != "multi_dsprites":
        raise ValueError(f"dataset: {dataset!r} is not one of {', '.join(DATASETS)}")
    if variant not in MULTI_DSPRITES_ENTITIES:
        raise ValueError(f"variant: {variant!r} is not one of {', '.join(MULTI_DSPRITES_ENTITIES)}")
    channels = 1 if variant == "binarized" else 3
    return RecordFormat(dataset, MULTI_DSPRITES_ENTITIES[variant], channels, True)


def _feature_bytes(features: Mapping[str, object], name: str) -> bytes:
    value = features.get(name)
    if not isinstance(value, list) or len(value) != 1:
        raise ValueError(f"feature {name!r}: expected one bytes value, got {value!r:.80}")
    return value[0]


def decode_record(
    features: Mapping[str, object], fmt: RecordFormat
) -> tuple[np.ndarray, np.ndarray]:
    """One parsed Example -> (image uint8 ``[64, 64, 3]``, labels uint8 ``[64, 64]``)."""
    size, entities = IMAGE_SIZE, fmt.num_entities
    image = np.frombuffer(_feature_bytes(features, "image"), dtype=np.uint8)
    if image.size != size * size * fmt.channels:
        raise ValueError(
            f"feature 'image': {image.size} bytes, expected {size}x{size}x{fmt.channels} for "
            f"{fmt.dataset} ({fmt.channels} channel(s))"
        )
    mask = np.frombuffer(_feature_bytes(features, "mask"), dtype=np.uint8)
    if mask.size != size * size * entities:
        raise ValueError(
            f"feature 'mask': {mask.size} bytes = {mask.size / (size * size):g} entities, expected "
            f"{entities} for {fmt.dataset} (is data.variant right?)"
        )
    if fmt.mask_entities_last:
        mask = mask.reshape(size, size, entities, 1).transpose(2, 0, 1, 3)
    else:
        mask = mask.reshape(entities, size, size, 1)
    image = image.reshape(size, size, fmt.channels)
    if fmt.channels == 1:
        image = np.repeat(image, 3, axis=-1)
    return image, masks_to_labels(mask[None])[0]


def read_deepmind(
    path: str | os.PathLike, fmt: RecordFormat, start: int = 0
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield ``(image, labels)`` for every record of a TFRecord file from record ``start`` on."""
    for index, data in enumerate(read_records(path)):
        if index < start:
            continue
        try:
            record = decode_record(parse_example(data, keys=("image", "mask")), fmt)
        except ValueError as error:
            raise ValueError(f"{os.fspath(path)}: record {index}: {error}") from error
        yield record
