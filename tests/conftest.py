"""Shared test setup: select the Keras torch backend before any test imports keras."""

import monetk  # noqa: F401  (sets KERAS_BACKEND=torch)
