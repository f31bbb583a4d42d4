"""Pin Keras to the PyTorch backend before anything imports keras.

Importing :mod:`monetk` sets ``KERAS_BACKEND=torch`` unless the user set it; a different
backend, forced by the environment or by an earlier ``import keras``, is an error that says how
to fix it, because every layer and loss in monetk runs torch operations.
"""

from __future__ import annotations

import os
import sys

REQUIRED_BACKEND = "torch"


class BackendError(RuntimeError):
    """Keras is (or would be) running on a backend other than torch."""


def ensure_torch_backend() -> None:
    """Select the torch backend for Keras, or raise :class:`BackendError` naming the culprit."""
    forced = os.environ.get("KERAS_BACKEND")
    if forced is not None and forced != REQUIRED_BACKEND:
        raise BackendError(
            f"monetk needs the Keras backend 'torch', but KERAS_BACKEND={forced!r} is set in the "
            "environment. Unset it or set KERAS_BACKEND=torch."
        )
    os.environ["KERAS_BACKEND"] = REQUIRED_BACKEND
    if "keras" in sys.modules:
        import keras

        active = keras.config.backend()
        if active != REQUIRED_BACKEND:
            raise BackendError(
                f"keras was imported with backend {active!r} before monetk; import monetk first "
                "or set KERAS_BACKEND=torch (allowed: 'torch')."
            )
