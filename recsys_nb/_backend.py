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
from pathlib import Path

from .errors import RecsysError

BACKEND = os.environ.get("RECSYS_NB_KERAS_BACKEND", "jax")
COMPILE_CACHE = Path(
    os.environ.get("RECSYS_NB_JAX_CACHE", Path.home() / ".cache" / "recsys_nb" / "jax")
)


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
        request_cpu_devices()
        enable_compile_cache()


def request_cpu_devices() -> None:
    """Ask XLA for one CPU device per core (at most 8), before JAX starts.

    The train step (``recsys_nb.model.Autoencoder``) gives each device an equal share of
    a batch: on 2 cores that trains faster than one device whose ops are split across
    threads. Nothing else changes: JAX still computes on the first device by default,
    with all cores. ``RECSYS_NB_CPU_DEVICES=1`` turns it off; an ``XLA_FLAGS`` that
    already sets ``--xla_force_host_platform_device_count`` is left alone, and once JAX
    has started it is too late (the train step then uses the one device).
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "jax" in sys.modules or "xla_force_host_platform_device_count" in flags:
        return
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    count = int(os.environ.get("RECSYS_NB_CPU_DEVICES", min(cores, 8)))
    if count > 1:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()


def enable_compile_cache(path=COMPILE_CACHE) -> None:
    """Keep XLA's compiled train steps on disk, so a second run does not compile again.

    The folder is ``JAX_COMPILATION_CACHE_DIR`` if the user set one, else
    ``$RECSYS_NB_JAX_CACHE`` or ``~/.cache/recsys_nb/jax``. Small and quick compiles are
    cached too (JAX skips them by default), unless the user set those thresholds.
    """
    import jax

    if not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", str(path))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    if "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES" not in os.environ:
        jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
