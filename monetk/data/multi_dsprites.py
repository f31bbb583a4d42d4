"""A built-in Multi-dSprites-like generator (DeepMind's ``colored_on_colored`` recipe).

Each image shows 1-4 dSprites shapes (square, ellipse, heart) with a random dSprites scale (6 values
in [0.5, 1]), orientation (40 values in [0, 2 pi]) and position (32 x 32 values), painted in order
onto a uniform background, so later sprites occlude earlier ones. The background and every sprite
take a colour from the palette {0, 63, 127, 191, 255}^3; a sprite never has exactly the background
colour. Labels are the visible masks: 0 = background, ``i`` = the ``i``-th sprite drawn. Every
sprite keeps at least one visible pixel (a scene where one is hidden is redrawn).

Image ``i`` is drawn from its own random stream ``np.random.default_rng([seed, i])``, so it does
not depend on how many images are generated, nor in which chunks.
"""

from __future__ import annotations

import itertools

import numpy as np

PALETTE = np.array(list(itertools.product((0, 63, 127, 191, 255), repeat=3)), dtype=np.uint8)
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2.0 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
#: Half-width of a sprite of scale 1, as a fraction of the image size.
HALF_EXTENT = 0.18
#: Sprite centres lie in [MARGIN, 1 - MARGIN] x image size.
MARGIN = 0.2
_CHUNK = 256
_MAX_ATTEMPTS = 100
_DRAWS_PER_SPRITE = 6


def _inside(shape: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Whether sprite-frame points (``u`` right, ``v`` down, unit half-extent) are in the shape."""
    if shape == 0:  # square
        return np.maximum(np.abs(u), np.abs(v)) <= 1.0
    if shape == 1:  # ellipse, 2:1
        return u * u + 4.0 * v * v <= 1.0
    x, y = 1.14 * u, 0.12 - 1.12 * v  # heart (x^2 + y^2 - 1)^3 <= x^2 y^3, fitted to [-1, 1]^2
    xx, yy = x * x, y * y
    t = xx + yy - 1.0
    return t * t * t <= xx * yy * y


def _pick(u: np.ndarray, n: int) -> np.ndarray:
    """Uniform draws in [0, 1) -> integers in [0, n)."""
    return np.minimum((u * n).astype(np.int64), n - 1)


def _draw_params(draws: np.ndarray, min_objects: int, max_objects: int) -> dict[str, np.ndarray]:
    """Scene parameters from uniform draws ``[B, 2 + 6 * max_objects]``."""
    sprites = draws[:, 2:].reshape(len(draws), max_objects, _DRAWS_PER_SPRITE)
    background = _pick(draws[:, 0], len(PALETTE))
    other_colour = _pick(sprites[..., 0], len(PALETTE) - 1)  # any palette colour but the background
    return {
        "count": min_objects + _pick(draws[:, 1], max_objects - min_objects + 1),
        "background": background,
        "colour": (background[:, None] + 1 + other_colour) % len(PALETTE),
        "shape": _pick(sprites[..., 1], len(SHAPES)),
        "scale": SCALES[_pick(sprites[..., 2], len(SCALES))],
        "angle": ORIENTATIONS[_pick(sprites[..., 3], len(ORIENTATIONS))],
        "x": POSITIONS[_pick(sprites[..., 4], len(POSITIONS))],
        "y": POSITIONS[_pick(sprites[..., 5], len(POSITIONS))],
    }


def _render(params: dict[str, np.ndarray], size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images ``[B, size, size, 3]``, labels ``[B, size, size]`` and whether every sprite shows."""
    batch, slots = params["shape"].shape
    active = np.arange(slots)[None, :] < params["count"][:, None]
    centres = (np.arange(size, dtype=np.float32) + 0.5)[None, :]  # pixel centres
    labels = np.zeros((batch, size, size), dtype=np.uint8)
    for slot in range(slots):  # later sprites overwrite (occlude) earlier ones
        for shape in range(len(SHAPES)):
            rows = np.flatnonzero(active[:, slot] & (params["shape"][:, slot] == shape))
            if rows.size == 0:
                continue
            half = np.maximum(params["scale"][rows, slot] * HALF_EXTENT * size, 1.0)
            cx = (MARGIN + (1 - 2 * MARGIN) * params["x"][rows, slot]) * size
            cy = (MARGIN + (1 - 2 * MARGIN) * params["y"][rows, slot]) * size
            cos = (np.cos(params["angle"][rows, slot]) / half).astype(np.float32)[:, None, None]
            sin = (np.sin(params["angle"][rows, slot]) / half).astype(np.float32)[:, None, None]
            dx = (centres - cx.astype(np.float32)[:, None])[:, None, :]  # [R, 1, W]
            dy = (centres - cy.astype(np.float32)[:, None])[:, :, None]  # [R, H, 1]
            inside = _inside(shape, cos * dx + sin * dy, cos * dy - sin * dx)
            labels[rows] = np.where(inside, np.uint8(slot + 1), labels[rows])
    present = labels[:, None] == np.arange(1, slots + 1, dtype=np.uint8)[None, :, None, None]
    visible = present.any(axis=(2, 3)) | ~active
    colours = PALETTE[np.concatenate([params["background"][:, None], params["colour"]], axis=1)]
    images = colours[np.arange(batch)[:, None, None], labels]
    return images, labels, visible.all(axis=1)


def generate_multi_dsprites(
    n: int,
    image_size: int = 64,
    seed: int = 0,
    min_objects: int = 1,
    max_objects: int = 4,
    start: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``start .. start + n - 1`` of the sequence defined by ``seed``.

    Returns images uint8 ``[n, image_size, image_size, 3]`` and labels uint8
    ``[n, image_size, image_size]`` (0 = background, ``i`` = the ``i``-th sprite drawn).
    """
    if n < 0 or start < 0 or seed < 0:
        raise ValueError(f"n, start and seed must be >= 0, got n={n}, start={start}, seed={seed}")
    if image_size < 8:
        raise ValueError(f"image_size: must be >= 8, got {image_size}")
    if not 0 <= min_objects <= max_objects <= 254:
        raise ValueError(
            f"min_objects, max_objects: need 0 <= min_objects <= max_objects <= 254, "
            f"got {min_objects}, {max_objects}"
        )
    images = np.empty((n, image_size, image_size, 3), dtype=np.uint8)
    labels = np.empty((n, image_size, image_size), dtype=np.uint8)
    num_draws = 2 + _DRAWS_PER_SPRITE * max_objects
    for chunk_start in range(0, n, _CHUNK):
        index = np.arange(chunk_start, min(chunk_start + _CHUNK, n))
        streams = [np.random.default_rng([seed, start + int(i)]) for i in index]
        todo = np.arange(len(index))
        for _ in range(_MAX_ATTEMPTS):
            draws = np.stack([streams[j].random(num_draws) for j in todo])
            chunk_images, chunk_labels, ok = _render(
                _draw_params(draws, min_objects, max_objects), image_size
            )
            images[index[todo[ok]]] = chunk_images[ok]
            labels[index[todo[ok]]] = chunk_labels[ok]
            todo = todo[~ok]
            if todo.size == 0:
                break
        else:
            raise RuntimeError(
                f"could not place {max_objects} visible sprites in {_MAX_ATTEMPTS} attempts at "
                f"image_size={image_size}; use fewer objects or a larger image"
            )
    return images, labels
