"""Benchmarks of monetk (issue 6): the training step through ``fit`` against a plain-PyTorch twin
(:mod:`bench.torch_monet`) and the PyPI peer ``monet-pytorch`` (:mod:`bench.peer`), the data
pipeline and evaluation (:mod:`bench.data_eval`). Run ``python -m bench --help``; results are
printed as a table and written as JSON under ``bench/results/``.
"""

import monetk  # noqa: F401  (selects the Keras torch backend before any bench module imports keras)
