"""Keras must run on JAX: set the backend before Keras is first imported.

Imported first by ``recsys_nb/__init__.py``. If Keras was already imported with
another backend, the process cannot switch any more, so we stop with a clear
error instead of training on the wrong backend. ``RECSYS_NB_KERAS_BACKEND``
overrides the choice; it exists only so that ``benchmarks/train_speed.py`` can run
the very same model on Keras' torch backend for comparison.
"""

from __future__ import annotations

import os
import sys

from .errors import RecsysError

BACKEND = os.environ.get("RECSYS_NB_KERAS_BACKEND", "jax")


def ensure_backend() -> None:
    """Select Keras' backend, or fail if Keras already runs on another one."""
    if "keras" in sys.modules:
        import keras

        if keras.backend.backend() != BACKEND:
            raise RecsysError(
                f"Keras was already imported with the {keras.backend.backend()!r} backend, but "
                f"recsys_nb needs {BACKEND!r}. Import recsys_nb before keras, or set "
                f"KERAS_BACKEND={BACKEND} before starting Python (restart the notebook kernel)."
            )
        return
    os.environ["KERAS_BACKEND"] = BACKEND
