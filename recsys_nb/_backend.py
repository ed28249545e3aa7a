"""Keras must run on JAX: set the backend before Keras is first imported.

Imported first by ``recsys_nb/__init__.py``, which also turns on JAX's persistent
compilation cache (a second run does not compile again). If Keras was already imported with
another backend, the process cannot switch any more, so we stop with a clear
error instead of training on the wrong backend. ``RECSYS_NB_KERAS_BACKEND``
overrides the choice; it exists only so that ``benchmarks/train_speed.py`` can run
the very same model on Keras' torch backend for comparison.
"""

from __future__ import annotations

import os
import sys

from . import settings
from .errors import RecsysError

BACKEND = settings.keras_backend()


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
    else:
        os.environ["KERAS_BACKEND"] = BACKEND
    if BACKEND == "jax":
        enable_compile_cache()


def enable_compile_cache(path=None) -> None:
    """Keep XLA's compiled train steps on disk, so a second run does not compile again.

    The folder is ``JAX_COMPILATION_CACHE_DIR`` if the user set one, else
    ``$RECSYS_NB_JAX_CACHE`` or the user cache folder (``~/.cache/recsys-nb/jax`` on
    Linux). Small and quick compiles are cached too (JAX skips them by default), unless
    the user set those thresholds.
    """
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(path or settings.jax_cache_dir()))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
