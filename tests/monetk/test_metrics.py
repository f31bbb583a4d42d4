"""Tests for monetk.metrics: ARI and FG-ARI against scikit-learn and hand-worked values."""

import time

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from monetk.metrics import adjusted_rand_index, count_objects, segmentation_scores


def _sklearn_ari(true_labels, pred_labels, ignore=()):
    """Reference: sklearn's ARI per image over the pixels whose true label is not ignored."""
    values = []
    for true, pred in zip(true_labels, pred_labels, strict=True):
        true, pred = np.ravel(true), np.ravel(pred)
        kept = ~np.isin(true, ignore)
        values.append(adjusted_rand_score(true[kept], pred[kept]) if kept.any() else np.nan)
    return np.array(values)


def _scene(num_objects, size=8, background=0):
    """A [size, size] label image: background everywhere, object i a row band of label i + 1."""
    labels = np.full((size, size), background)
    for i in range(num_objects):
        labels[i, :] = i + 1
    return labels


@pytest.mark.parametrize("seed", range(8))
def test_ari_matches_sklearn_on_random_labelings(seed):
    rng = np.random.default_rng(seed)
    for n_pixels in (1, 2, 3, 7, 50, 300):
        n_true, n_pred = rng.integers(1, 9, size=2)
        true = rng.integers(0, n_true, size=(6, n_pixels))
        pred = rng.integers(0, n_pred, size=(6, n_pixels))
        # Skewed cluster sizes too: most pixels in one label.
        pred[:3] = np.where(rng.random((3, n_pixels)) < 0.8, 0, pred[:3])
        np.testing.assert_allclose(
            adjusted_rand_index(true, pred), _sklearn_ari(true, pred), rtol=0, atol=1e-12
        )


@pytest.mark.parametrize("ignore", [(0,), (0, 1, 2, 3), (2, 5)])
def test_foreground_ari_matches_sklearn_on_filtered_pixels(ignore):
    rng = np.random.default_rng(11)
    true = rng.integers(0, 7, size=(40, 12, 12))
    # Mostly background so that some images lose most of their pixels.
    true = np.where(rng.random(true.shape) < 0.6, 0, true)
    pred = rng.integers(0, 5, size=true.shape)
    pred[::2] = np.where(true[::2] % 2 == 0, pred[::2], 4)  # partly informative predictions
    expected = _sklearn_ari(true, pred, ignore)
    assert np.all(np.isfinite(expected))
    np.testing.assert_allclose(adjusted_rand_index(true, pred, ignore), expected, atol=1e-12)


def test_ari_is_invariant_to_renaming_predicted_segments():
    rng = np.random.default_rng(3)
    true = rng.integers(0, 4, size=(10, 16, 16))
    pred = np.where(rng.random(true.shape) < 0.7, true, rng.integers(0, 5, size=true.shape))
    renamed = np.array([42, 7, 0, 13, 3])[pred]
    before = adjusted_rand_index(true, pred, ignore=(0,))
    np.testing.assert_allclose(adjusted_rand_index(true, renamed, ignore=(0,)), before)
    assert np.all(before < 1.0) and np.all(before > 0.0)


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(4)
    true = rng.integers(0, 6, size=(5, 10, 10))
    pred = np.array([3, 5, 1, 0, 4, 2])[true]  # the same partition under other names
    np.testing.assert_array_equal(adjusted_rand_index(true, pred), np.ones(5))
    np.testing.assert_array_equal(adjusted_rand_index(true, pred, ignore=(0,)), np.ones(5))


def test_hand_worked_example():
    # true {0,1,2 | 3,4,5}, pred {0,1 | 2,3 | 4,5}. Contingency [[2,1,0],[0,1,2]]:
    # sum_ij C(n_ij,2) = 1 + 1 = 2; rows (3, 3): A = 3 + 3 = 6; cols (2, 2, 2): B = 3;
    # C(6,2) = 15; E = A*B/15 = 1.2; max = (A + B)/2 = 4.5; ARI = (2 - 1.2)/(4.5 - 1.2) = 8/33.
    ari = adjusted_rand_index(np.array([[0, 0, 0, 1, 1, 1]]), np.array([[0, 0, 1, 1, 2, 2]]))
    np.testing.assert_allclose(ari, [8 / 33], rtol=1e-15)


def test_hand_worked_discordant_example_is_negative():
    # true {0,1 | 2,3}, pred {0,2 | 1,3}: no pair together in both; A = B = 2, C(4,2) = 6,
    # E = 4/6; ARI = (0 - 2/3)/(2 - 2/3) = -1/2.
    ari = adjusted_rand_index(np.array([[0, 0, 1, 1]]), np.array([[0, 1, 0, 1]]))
    np.testing.assert_allclose(ari, [-0.5], rtol=1e-15)


def test_single_cluster_cases():
    true = np.array([[2, 2, 2, 2], [2, 2, 2, 2], [0, 1, 2, 3], [5, 5, 5, 5]])
    pred = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [3, 2, 1, 0], [0, 1, 2, 3]])
    # Both one cluster: 1. One cluster vs two halves: index = 2, A = 6, B = 2, E = 2 -> 0.
    # Both all singletons: 1. One cluster vs all singletons: index = 0 = E -> 0.
    expected = [1.0, 0.0, 1.0, 0.0]
    np.testing.assert_array_equal(adjusted_rand_index(true, pred), expected)
    np.testing.assert_array_equal(_sklearn_ari(true, pred), expected)


def test_a_single_scored_pixel_scores_one_like_sklearn():
    true, pred = np.array([[0, 0, 1]]), np.array([[0, 1, 2]])
    assert adjusted_rand_index(true, pred, ignore=(0,))[0] == 1.0
    assert adjusted_rand_score([1], [2]) == 1.0


def test_image_without_foreground_scores_nan():
    true = np.stack([np.zeros((4, 4), int), _scene(2, size=4)])
    pred = np.stack([np.arange(16).reshape(4, 4) % 3, _scene(2, size=4)])
    ari = adjusted_rand_index(true, pred, ignore=(0,))
    assert np.isnan(ari[0]) and ari[1] == 1.0


def test_images_without_foreground_are_excluded_from_fg_ari_and_counted():
    true = np.stack([np.zeros((8, 8), int), _scene(2), _scene(3)])
    pred = np.stack([np.zeros((8, 8), int), _scene(2), np.zeros((8, 8), int)])
    scores = segmentation_scores(true, pred, background_entities=[0])
    # Per image FG-ARI: NaN (no foreground), 1 (perfect), 0 (three objects in one segment).
    assert scores["n_images"] == 3
    assert scores["n_fg_images"] == 2
    assert scores["fg_ari"] == pytest.approx(0.5)


def test_no_qualifying_image_gives_nan_with_zero_count():
    true = np.zeros((2, 8, 8), int)
    scores = segmentation_scores(true, true, background_entities=[0])
    assert np.isnan(scores["fg_ari"]) and scores["n_fg_images"] == 0
    assert np.isnan(scores["fg_ari_multi"]) and scores["n_multi_images"] == 0
    assert np.isnan(scores["fg_ari_trivial"])
    assert scores["ari"] == 1.0 and scores["n_images"] == 2


def test_trivial_prediction_scores_one_on_single_object_images_and_zero_otherwise():
    true = np.stack([_scene(n) for n in (1, 2, 3, 5)])
    one_segment = np.zeros_like(true)
    # One object: both partitions of the foreground are one cluster -> 1 by definition.
    # k >= 2 objects: the prediction is one cluster (B = C(n,2)), so index = A = E -> ARI = 0.
    np.testing.assert_array_equal(
        adjusted_rand_index(true, one_segment, ignore=(0,)), [1.0, 0.0, 0.0, 0.0]
    )
    np.testing.assert_array_equal(_sklearn_ari(true, one_segment, (0,)), [1.0, 0.0, 0.0, 0.0])


def test_trivial_baseline_is_the_fraction_of_single_object_images():
    rng = np.random.default_rng(5)
    counts = rng.integers(0, 5, size=60)  # 0 objects: no foreground, excluded
    true = np.stack([_scene(n) for n in counts])
    pred = rng.integers(0, 4, size=true.shape)  # the model's prediction does not matter
    scores = segmentation_scores(true, pred, background_entities=[0])
    with_fg = counts[counts > 0]
    assert scores["n_fg_images"] == len(with_fg)
    assert scores["fg_ari_trivial"] == pytest.approx(np.mean(with_fg == 1), abs=1e-12)


def test_fg_ari_multi_counts_only_images_with_enough_objects():
    counts = np.array([1, 1, 1, 2, 3, 4])
    true = np.stack([_scene(n) for n in counts])
    # Single-object images: the object split in two (FG-ARI 0); multi-object images: perfect.
    pred = true.copy()
    pred[:3, 0, :4] = 7
    scores = segmentation_scores(true, pred, background_entities=[0])
    assert scores["fg_ari_multi"] == 1.0 and scores["n_multi_images"] == 3
    assert scores["fg_ari"] == pytest.approx(0.5)
    at_least_three = segmentation_scores(true, pred, [0], min_objects_multi=3)
    assert at_least_three["fg_ari_multi"] == 1.0 and at_least_three["n_multi_images"] == 2
    none_qualify = segmentation_scores(true, pred, [0], min_objects_multi=5)
    assert np.isnan(none_qualify["fg_ari_multi"]) and none_qualify["n_multi_images"] == 0


def test_segmentation_scores_match_sklearn_means():
    rng = np.random.default_rng(6)
    true = rng.integers(0, 7, size=(30, 10, 10))
    true[:5] = rng.integers(0, 4, size=(5, 10, 10))  # some images with background only
    pred = np.where(rng.random(true.shape) < 0.5, true % 5, rng.integers(0, 5, size=true.shape))
    background = [0, 1, 2, 3]  # the ObjectsRoom convention
    scores = segmentation_scores(true, pred, background)
    fg = _sklearn_ari(true, pred, background)
    assert scores["fg_ari"] == pytest.approx(np.nanmean(fg), abs=1e-12)
    assert scores["n_fg_images"] == 25
    assert scores["ari"] == pytest.approx(np.mean(_sklearn_ari(true, pred)), abs=1e-12)
    objects = np.array([len(np.setdiff1d(np.unique(t), background)) for t in true])
    assert scores["fg_ari_multi"] == pytest.approx(np.mean(fg[objects >= 2]), abs=1e-12)
    assert scores["n_multi_images"] == np.sum(objects >= 2)


def test_count_objects_matches_unique_per_image():
    rng = np.random.default_rng(7)
    true = rng.integers(0, 9, size=(50, 6, 6))
    true = np.where(rng.random(true.shape) < 0.7, rng.integers(0, 3, size=true.shape), true)
    for background in ([0], [0, 1, 2, 3], []):
        expected = [len(np.setdiff1d(np.unique(t), background)) for t in true]
        np.testing.assert_array_equal(count_objects(true, background), expected)


def test_count_objects_hand_example():
    true = np.array([[[0, 0], [0, 0]], [[0, 4], [4, 9]], [[1, 2], [3, 0]]])
    np.testing.assert_array_equal(count_objects(true, [0]), [0, 2, 3])


def test_trailing_axes_are_flattened():
    rng = np.random.default_rng(8)
    true = rng.integers(0, 4, size=(7, 8, 8))
    pred = rng.integers(0, 3, size=(7, 8, 8))
    grid = adjusted_rand_index(true, pred, ignore=(0,))
    np.testing.assert_array_equal(
        adjusted_rand_index(true.reshape(7, 64), pred.reshape(7, 64), (0,)), grid
    )
    np.testing.assert_array_equal(
        adjusted_rand_index(true[..., None], pred[..., None].astype(np.uint8), (0,)), grid
    )
    assert segmentation_scores(true, pred, [0]) == segmentation_scores(
        true.reshape(7, -1), pred.reshape(7, -1), [0]
    )


@pytest.mark.parametrize(
    ("true", "pred", "match"),
    [
        (np.zeros((2, 4), int), np.zeros((2, 5), int), "same shape"),
        (np.zeros(4, int), np.zeros(4, int), "true_labels must have shape"),
        (np.zeros((2, 4)), np.zeros((2, 4), int), "true_labels must hold integer"),
        (np.zeros((2, 4), int), -np.ones((2, 4), int), "pred_labels must hold non-negative"),
        (np.zeros((2, 0), int), np.zeros((2, 0), int), "at least one pixel"),
    ],
)
def test_bad_labels_raise_naming_the_argument(true, pred, match):
    with pytest.raises(ValueError, match=match):
        adjusted_rand_index(true, pred)
    with pytest.raises(ValueError, match=match):
        segmentation_scores(true, pred, [0])


def test_bad_entity_lists_and_min_objects_raise():
    labels = np.zeros((1, 4), int)
    with pytest.raises(ValueError, match="background_entities"):
        segmentation_scores(labels, labels, ["sky"])
    with pytest.raises(ValueError, match="background_entities"):
        count_objects(labels, [0.5])
    with pytest.raises(ValueError, match="ignore"):
        adjusted_rand_index(labels, labels, ignore=[[0, 1]])
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="min_objects_multi"):
            segmentation_scores(labels, labels, [0], min_objects_multi=bad)


@pytest.mark.slow
def test_scores_for_1000_images_take_under_a_second():
    rng = np.random.default_rng(9)
    true = rng.integers(0, 5, size=(1000, 64, 64))
    pred = rng.integers(0, 5, size=(1000, 64, 64))
    segmentation_scores(true[:10], pred[:10], [0])  # warm-up
    start = time.perf_counter()
    segmentation_scores(true, pred, [0])
    assert time.perf_counter() - start < 1.0
