"""The built-in Multi-dSprites generator: determinism, scene structure and sprite geometry."""

import time

import numpy as np
import pytest

from monetk.data.masks import labels_to_masks
from monetk.data.multi_dsprites import PALETTE, _render, generate_multi_dsprites

LEVELS = {0, 63, 127, 191, 255}


@pytest.fixture(scope="module")
def scenes():
    return generate_multi_dsprites(200, image_size=64, seed=3)


def test_shapes_and_dtypes(scenes):
    images, labels = scenes
    assert images.shape == (200, 64, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (200, 64, 64) and labels.dtype == np.uint8


def test_same_seed_same_images_and_other_seed_differs():
    a = generate_multi_dsprites(6, image_size=32, seed=5)
    b = generate_multi_dsprites(6, image_size=32, seed=5)
    c = generate_multi_dsprites(6, image_size=32, seed=6)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_image_i_does_not_depend_on_n_or_chunking():
    long_images, long_labels = generate_multi_dsprites(300, image_size=16, seed=1)  # 2 chunks
    short_images, short_labels = generate_multi_dsprites(5, image_size=16, seed=1)
    np.testing.assert_array_equal(long_images[:5], short_images)
    np.testing.assert_array_equal(long_labels[:5], short_labels)
    tail_images, tail_labels = generate_multi_dsprites(50, image_size=16, seed=1, start=250)
    np.testing.assert_array_equal(long_images[250:], tail_images)
    np.testing.assert_array_equal(long_labels[250:], tail_labels)


def test_colours_come_from_the_palette(scenes):
    images, _ = scenes
    assert set(np.unique(images).tolist()) <= LEVELS
    assert len(PALETTE) == 125 and len({tuple(c) for c in PALETTE}) == 125


def test_each_entity_has_one_colour_and_sprites_differ_from_background(scenes):
    images, labels = scenes
    for image, label in zip(images, labels, strict=True):
        background = np.unique(image[label == 0], axis=0)
        assert len(background) == 1
        for j in np.unique(label[label > 0]):
            colour = np.unique(image[label == j], axis=0)
            assert len(colour) == 1, f"sprite {j} has {len(colour)} colours"
            assert not np.array_equal(colour[0], background[0])


@pytest.mark.parametrize(("low", "high"), [(1, 4), (2, 3), (3, 3)])
def test_visible_objects_are_labelled_one_to_count(low, high):
    _, labels = generate_multi_dsprites(
        60, image_size=32, seed=2, min_objects=low, max_objects=high
    )
    counts = []
    for label in labels:
        sprites = sorted(set(np.unique(label).tolist()) - {0})
        assert sprites == list(range(1, len(sprites) + 1))  # every sprite drawn stays visible
        counts.append(len(sprites))
    assert low <= min(counts) and max(counts) <= high
    assert set(counts) == set(range(low, high + 1))  # all counts occur in 60 scenes


def test_visible_masks_partition_the_image(scenes):
    _, labels = scenes
    masks = labels_to_masks(labels, 5)
    total = masks.astype(np.int64).sum(axis=1)
    assert np.all(total == 255)  # every pixel belongs to exactly one entity
    assert np.all((labels == 0).any(axis=(1, 2)))  # some background is always visible


def test_odd_image_sizes_work():
    images, labels = generate_multi_dsprites(3, image_size=40, seed=0)
    assert images.shape == (3, 40, 40, 3) and labels.shape == (3, 40, 40)
    assert labels.max() >= 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n": -1}, "n, start and seed"),
        ({"n": 2, "image_size": 4}, "image_size"),
        ({"n": 2, "min_objects": 3, "max_objects": 2}, "min_objects"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate_multi_dsprites(**kwargs)


def _scene(shapes, scales, size=50):
    """Hand-set parameters: sprites at the image centre, orientation 0, on background 0."""
    k = len(shapes)
    return {
        "count": np.array([k]),
        "background": np.array([0]),
        "colour": np.arange(1, k + 1)[None],
        "shape": np.array([shapes]),
        "scale": np.array([scales], dtype=float),
        "angle": np.zeros((1, k)),
        "x": np.full((1, k), 0.5),
        "y": np.full((1, k), 0.5),
    }


def test_square_covers_the_expected_pixels():
    # size 50, scale 1: half-width 0.18 * 50 = 9 px around the centre (0.2 + 0.6 * 0.5) * 50 = 25,
    # so the pixel centres i + 0.5 in [16, 34] are inside: i = 16 .. 33.
    _, labels, ok = _render(_scene([0], [1.0]), 50)
    expected = np.zeros((50, 50), dtype=np.uint8)
    expected[16:34, 16:34] = 1
    np.testing.assert_array_equal(labels[0], expected)
    assert ok[0]


def test_later_sprite_occludes_earlier_one():
    # A scale-0.6 square (half-width 5.4: pixels 20 .. 29) drawn after a scale-1 square.
    images, labels, ok = _render(_scene([0, 0], [1.0, 0.6]), 50)
    assert np.all(labels[0, 20:30, 20:30] == 2)
    assert np.sum(labels[0] == 2) == 10 * 10
    assert np.sum(labels[0] == 1) == 18 * 18 - 10 * 10
    np.testing.assert_array_equal(images[0, 25, 25], PALETTE[2])
    np.testing.assert_array_equal(images[0, 17, 17], PALETTE[1])
    np.testing.assert_array_equal(images[0, 0, 0], PALETTE[0])
    assert ok[0]


def test_fully_hidden_sprite_is_reported():
    # The big square drawn second hides the small one completely.
    _, labels, ok = _render(_scene([0, 0], [0.6, 1.0]), 50)
    assert not np.any(labels[0] == 1)
    assert not ok[0]


def test_ellipse_area_and_heart_symmetry():
    _, labels, _ = _render(_scene([1], [1.0]), 50)
    area = np.sum(labels[0] == 1)
    assert abs(area - np.pi * 9 * 4.5) < 0.1 * np.pi * 9 * 4.5  # semi-axes 9 and 4.5 px
    assert np.ptp(np.nonzero(labels[0])[1]) > np.ptp(np.nonzero(labels[0])[0])  # wide, not tall
    _, labels, _ = _render(_scene([2], [1.0]), 50)
    heart = labels[0] == 1
    np.testing.assert_array_equal(heart, heart[:, ::-1])  # mirror-symmetric about column 25
    rows = np.nonzero(heart)[0]
    top_width = heart[rows.min() + 2].sum()
    bottom_width = heart[rows.max() - 2].sum()
    assert top_width > bottom_width  # lobes on top, point at the bottom


@pytest.mark.slow
def test_throughput_at_least_2000_images_per_second():
    generate_multi_dsprites(10)
    start = time.perf_counter()
    generate_multi_dsprites(4000, seed=1)
    assert 4000 / (time.perf_counter() - start) >= 2000
