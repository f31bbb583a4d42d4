"""Conversion between DeepMind's per-entity masks and monetk's per-pixel entity labels."""

from __future__ import annotations

import numpy as np


def masks_to_labels(masks: np.ndarray) -> np.ndarray:
    """Entity index per pixel: ``masks`` ``[N, E, H, W, 1]`` (0/255) -> uint8 ``[N, H, W]``.

    Each pixel gets the entity whose mask is largest there (argmax over ``E``; ties, e.g. an
    all-zero pixel, go to the lowest entity index).
    """
    masks = np.asarray(masks)
    if masks.ndim != 5 or masks.shape[-1] != 1:
        raise ValueError(f"masks: expected shape [N, E, H, W, 1], got {list(masks.shape)}")
    if masks.shape[1] > 256:
        raise ValueError(f"masks: at most 256 entities fit uint8 labels, got {masks.shape[1]}")
    return np.argmax(masks[..., 0], axis=1).astype(np.uint8)


def labels_to_masks(labels: np.ndarray, num_entities: int) -> np.ndarray:
    """One mask per entity: ``labels`` uint8 ``[N, H, W]`` -> uint8 ``[N, E, H, W, 1]`` (0/255)."""
    labels = np.asarray(labels)
    if labels.ndim != 3:
        raise ValueError(f"labels: expected shape [N, H, W], got {list(labels.shape)}")
    if num_entities < 1:
        raise ValueError(f"num_entities: must be >= 1, got {num_entities}")
    if labels.size and int(labels.max()) >= num_entities:
        raise ValueError(
            f"labels: entity {int(labels.max())} is out of range for num_entities={num_entities}"
        )
    entities = np.arange(num_entities).reshape(1, num_entities, 1, 1)
    return ((labels[:, None] == entities) * np.uint8(255)).astype(np.uint8)[..., None]
