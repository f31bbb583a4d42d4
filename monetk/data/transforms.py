"""Pixel transforms: downsampling images with their labels, and standardising pixel values."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def downsample(
    images: np.ndarray, labels: np.ndarray, image_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Shrink ``[N, H, H, 3]`` images and ``[N, H, H]`` labels to ``image_size`` pixels a side.

    Images are averaged over each ``f x f`` block (``f = H / image_size``, rounded half up to
    uint8); labels take the block's centre pixel (row and column ``f // 2`` of the block), so a
    label is always one of the entities present in the block.
    """
    size = images.shape[1]
    if image_size > size:
        raise ValueError(f"data.image_size: {image_size} exceeds the source's {size} pixels")
    if size % image_size:
        raise ValueError(
            f"data.image_size: {image_size} does not divide the source's {size} pixels"
        )
    f = size // image_size
    if f == 1:
        return images, labels
    n = len(images)
    blocks = images.reshape(n, image_size, f, image_size, f, images.shape[-1])
    means = blocks.mean(axis=(2, 4), dtype=np.float64)
    small_images = np.floor(means + 0.5).astype(np.uint8)
    small_labels = np.ascontiguousarray(labels[:, f // 2 :: f, f // 2 :: f])
    return small_images, small_labels


def standardize(images_uint8: np.ndarray, value_range: Sequence[float] = (-1.0, 1.0)) -> np.ndarray:
    """float32 pixels: [0, 255] mapped linearly onto ``value_range`` (the paper: [-1, 1])."""
    low, high = (float(v) for v in value_range)
    if not low < high:
        raise ValueError(f"value_range: need low < high, got {list(value_range)}")
    images = np.asarray(images_uint8)
    if images.dtype != np.uint8:
        raise ValueError(f"images_uint8: expected dtype uint8, got {images.dtype}")
    unit = images.astype(np.float32) / np.float32(255.0)  # exact at 0 and 255
    return unit * np.float32(high - low) + np.float32(low)
