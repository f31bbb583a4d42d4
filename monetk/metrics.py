"""Segmentation metrics: the adjusted Rand index (ARI) and the foreground-only FG-ARI.

The ablation paper (section 3, "Evaluation") scores segmentations with the ARI of Hubert and
Arabie (1985), computed over the foreground pixels only: ground-truth background entities
(entity 0 of Multi-dSprites; sky, floor and walls, entities 0-3, of ObjectsRoom) are dropped
before scoring, while the prediction is the argmax over all K attention masks.

Everything is vectorised over the batch: one ``np.bincount`` builds the contingency table of every
image at once. Labels are non-negative integers of shape ``[B, ...]``; the trailing axes (``H, W``
or already flattened ``N``) are flattened to pixels.

Edge cases (matching ``sklearn.metrics.adjusted_rand_score`` wherever it is defined):

* Identical degenerate partitions, i.e. both a single cluster or both all singletons (and so any
  image with a single scored pixel), score 1.0; there the ARI formula is 0/0.
* An image with no scored pixels (no foreground for FG-ARI) scores NaN: it has nothing to
  segment and is left out of every mean. sklearn returns 1.0 for empty input instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_batch(labels: np.ndarray, name: str) -> np.ndarray:
    """``labels`` as a ``[B, N]`` array of non-negative integers, or a ValueError naming it."""
    array = np.asarray(labels)
    if array.ndim < 2:
        raise ValueError(
            f"{name} must have shape [B, H, W] or [B, N] (a batch axis and pixel axes), "
            f"got shape {array.shape}"
        )
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {array.dtype}")
    if np.prod(array.shape[1:]) == 0:
        raise ValueError(f"{name} must have at least one pixel per image, got shape {array.shape}")
    if array.size and array.min() < 0:
        raise ValueError(f"{name} must hold non-negative labels, got minimum {array.min()}")
    return array.reshape(array.shape[0], -1).astype(np.intp, copy=False)


def _entity_ids(entities: Sequence[int], name: str) -> np.ndarray:
    """``entities`` as a 1-D integer array, or a ValueError naming the argument."""
    ids = np.asarray(list(entities))
    if ids.size and (ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer)):
        raise ValueError(f"{name} must be a sequence of integer entity ids, got {entities!r}")
    return ids.astype(np.int64)


def _compact(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Relabel ``labels`` to ``0..L-1`` by rank; return them and the original id of each rank."""
    present = np.bincount(labels.ravel(), minlength=1) > 0
    ranks = np.cumsum(present) - 1
    return ranks[labels], np.flatnonzero(present)


def _contingency(true_labels: np.ndarray, pred_labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-image contingency tables ``[B, T, P]`` of ``[B, N]`` labels, and the true id per row."""
    true_ranks, true_ids = _compact(true_labels)
    pred_ranks, pred_ids = _compact(pred_labels)
    batch, n_true, n_pred = true_labels.shape[0], true_ids.size, pred_ids.size
    image = np.arange(batch, dtype=np.int64)[:, None]
    cells = (image * n_true + true_ranks) * n_pred + pred_ranks
    table = np.bincount(cells.ravel(), minlength=batch * n_true * n_pred)
    return table.reshape(batch, n_true, n_pred), true_ids


def _drop_rows(table: np.ndarray, true_ids: np.ndarray, entities: np.ndarray) -> np.ndarray:
    """A copy of ``table`` with the rows (true entities) listed in ``entities`` zeroed."""
    kept = table.copy()
    kept[:, np.isin(true_ids, entities), :] = 0
    return kept


def _pairs(counts: np.ndarray) -> np.ndarray:
    """Number of unordered pairs, n choose 2, elementwise."""
    return counts * (counts - 1) // 2


def _ari_from_table(table: np.ndarray) -> np.ndarray:
    """ARI per image from contingency tables ``[B, T, P]`` (Hubert & Arabie 1985).

    ARI = (sum_ij C(n_ij, 2) - E) / ((A + B) / 2 - E) with A = sum_i C(a_i, 2),
    B = sum_j C(b_j, 2), E = A B / C(n, 2), a and b the row and column sums.
    """
    index = _pairs(table).sum(axis=(1, 2))
    rows = _pairs(table.sum(axis=2)).sum(axis=1)
    cols = _pairs(table.sum(axis=1)).sum(axis=1)
    n_points = table.sum(axis=(1, 2))
    all_pairs = _pairs(n_points)
    # The denominator is zero exactly when both partitions are all singletons (A = B = 0) or both
    # a single cluster (A = B = C(n, 2)); the partitions are then identical.
    degenerate = (rows == cols) & ((rows == 0) | (rows == all_pairs))
    with np.errstate(divide="ignore", invalid="ignore"):
        expected = rows.astype(np.float64) * cols / all_pairs
        ari = (index - expected) / ((rows + cols) / 2.0 - expected)
    ari = np.where(degenerate, 1.0, ari)
    return np.where(n_points == 0, np.nan, ari)


def adjusted_rand_index(
    true_labels: np.ndarray, pred_labels: np.ndarray, ignore: Sequence[int] = ()
) -> np.ndarray:
    """ARI per image over the pixels whose true label is not in ``ignore``.

    Args:
        true_labels: ``[B, H, W]`` or ``[B, N]`` ground-truth entity ids (non-negative ints).
        pred_labels: predicted segment ids of the same shape (argmax over the K masks).
        ignore: true entity ids whose pixels are dropped (the background, for FG-ARI).

    Returns:
        ``[B]`` float64: 1.0 for a perfect segmentation (up to relabelling), about 0 for chance,
        1.0 when both partitions are a single cluster, NaN when no pixel is left to score.

    Example: ``adjusted_rand_index([[0, 0, 0, 1, 1, 1]], [[0, 0, 1, 1, 2, 2]])`` is ``[8/33]``.
    """
    true_flat = _as_batch(true_labels, "true_labels")
    pred_flat = _as_batch(pred_labels, "pred_labels")
    if true_flat.shape != pred_flat.shape:
        raise ValueError(
            "true_labels and pred_labels must have the same shape, got "
            f"{np.shape(true_labels)} and {np.shape(pred_labels)}"
        )
    table, true_ids = _contingency(true_flat, pred_flat)
    return _ari_from_table(_drop_rows(table, true_ids, _entity_ids(ignore, "ignore")))


def count_objects(true_labels: np.ndarray, background_entities: Sequence[int]) -> np.ndarray:
    """Number of distinct foreground entities (ids not in ``background_entities``) per image.

    Args:
        true_labels: ``[B, H, W]`` or ``[B, N]`` ground-truth entity ids (non-negative ints).
        background_entities: entity ids that are not objects.

    Returns:
        ``[B]`` int64 counts.
    """
    flat = _as_batch(true_labels, "true_labels")
    background = _entity_ids(background_entities, "background_entities")
    ranks, ids = _compact(flat)
    image = np.arange(flat.shape[0], dtype=np.int64)[:, None]
    pixels = np.bincount((image * ids.size + ranks).ravel(), minlength=flat.shape[0] * ids.size)
    present = pixels.reshape(flat.shape[0], ids.size) > 0
    return present[:, ~np.isin(ids, background)].sum(axis=1)


def _mean_over(values: np.ndarray, selected: np.ndarray) -> tuple[float, int]:
    """Mean of ``values`` over ``selected`` images and their count; NaN (count 0) if none."""
    count = int(selected.sum())
    return (float(values[selected].mean()) if count else float("nan")), count


def segmentation_scores(
    true_labels: np.ndarray,
    pred_labels: np.ndarray,
    background_entities: Sequence[int],
    min_objects_multi: int = 2,
) -> dict[str, float]:
    """Batch segmentation scores: FG-ARI (the paper's metric), ARI and two reference values.

    Args:
        true_labels: ``[B, H, W]`` or ``[B, N]`` ground-truth entity ids (non-negative ints).
        pred_labels: predicted segment ids of the same shape (argmax over the K masks).
        background_entities: true entity ids dropped for the foreground scores.
        min_objects_multi: objects an image needs to count towards ``fg_ari_multi`` (>= 1).

    Returns:
        A dict of Python floats (means) and ints (counts):

        * ``fg_ari``: mean FG-ARI over the ``n_fg_images`` images with foreground pixels.
        * ``ari``: mean ARI over all pixels, background included, over the ``n_images`` images.
        * ``fg_ari_multi``: mean FG-ARI over the ``n_multi_images`` images with at least
          ``min_objects_multi`` foreground objects.
        * ``fg_ari_trivial``: mean FG-ARI, over the same images as ``fg_ari``, of the trivial
          prediction that puts every pixel in one segment: 1 on one-object images, 0 on images
          with more, so it is the fraction of single-object images.

        A mean over no images is NaN, and its count (0) says so.
    """
    if (
        isinstance(min_objects_multi, bool)
        or not isinstance(min_objects_multi, (int, np.integer))
        or min_objects_multi < 1
    ):
        raise ValueError(f"min_objects_multi must be an integer >= 1, got {min_objects_multi!r}")
    true_flat = _as_batch(true_labels, "true_labels")
    pred_flat = _as_batch(pred_labels, "pred_labels")
    if true_flat.shape != pred_flat.shape:
        raise ValueError(
            "true_labels and pred_labels must have the same shape, got "
            f"{np.shape(true_labels)} and {np.shape(pred_labels)}"
        )
    background = _entity_ids(background_entities, "background_entities")
    table, true_ids = _contingency(true_flat, pred_flat)
    fg_table = _drop_rows(table, true_ids, background)

    fg_ari = _ari_from_table(fg_table)
    trivial = _ari_from_table(fg_table.sum(axis=2, keepdims=True))
    has_fg = fg_table.sum(axis=(1, 2)) > 0
    n_objects = (fg_table.sum(axis=2) > 0).sum(axis=1)

    mean_fg_ari, n_fg_images = _mean_over(fg_ari, has_fg)
    mean_ari, n_images = _mean_over(_ari_from_table(table), np.ones(len(has_fg), dtype=bool))
    mean_fg_ari_multi, n_multi_images = _mean_over(fg_ari, n_objects >= min_objects_multi)
    mean_trivial, _ = _mean_over(trivial, has_fg)
    return {
        "fg_ari": mean_fg_ari,
        "ari": mean_ari,
        "fg_ari_multi": mean_fg_ari_multi,
        "fg_ari_trivial": mean_trivial,
        "n_images": n_images,
        "n_fg_images": n_fg_images,
        "n_multi_images": n_multi_images,
    }
