"""Datasets in monetk's format: ``images`` uint8 ``[N, H, W, 3]``, ``labels`` uint8 ``[N, H, W]``
(ground-truth entity index per pixel).

- :mod:`~monetk.data.tfrecord`: TFRecord / ``tf.train.Example`` reading and writing, no TensorFlow.
- :mod:`~monetk.data.deepmind`: DeepMind's Multi-dSprites and Objects Room records.
- :mod:`~monetk.data.fetch`: ``python -m monetk.data fetch``, the download of DeepMind's files.
- :mod:`~monetk.data.multi_dsprites`: the built-in Multi-dSprites-like generator.
- :mod:`~monetk.data.cache`: converted-once, memory-mapped uint8 caches.
- :mod:`~monetk.data.splits`: a run's training / monitoring / evaluation images.
"""

from monetk.data.masks import labels_to_masks, masks_to_labels
from monetk.data.multi_dsprites import generate_multi_dsprites
from monetk.data.splits import Splits, load_splits
from monetk.data.transforms import downsample, standardize

__all__ = [
    "Splits",
    "downsample",
    "generate_multi_dsprites",
    "labels_to_masks",
    "load_splits",
    "masks_to_labels",
    "standardize",
]
