"""The array-module seam: the only module that imports numba or cupy.

Layers are written once against an array module ``xp`` (numpy on the CPU, CuPy on a
GPU).  They ask ``xp(x)`` which module owns an array and use only what both modules
share.  Loops too slow for numpy live in :mod:`nndl.kernels` behind ``jit``.
"""
import os

import numpy as np

try:  # numba is a hard dependency, but the reference path must run without it
    import numba

    HAS_NUMBA = os.environ.get("NUMBA_DISABLE_JIT", "0") in ("", "0")
except ImportError:  # pragma: no cover - exercised only where numba is absent
    numba = None
    HAS_NUMBA = False

try:
    import cupy  # noqa: F401

    HAS_CUPY = True
except Exception:  # ImportError, or a CUDA library failing to load
    cupy = None
    HAS_CUPY = False


def xp(x):
    """The array module (numpy or cupy) that owns ``x``."""
    if HAS_CUPY and isinstance(x, cupy.ndarray):
        return cupy
    return np


def jit(*args, **kwargs):
    """``numba.njit(cache=True)``, or the plain function where numba is absent."""
    if numba is None:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    kwargs.setdefault("cache", True)
    return numba.njit(*args, **kwargs)


def to_numpy(x):
    """A host (numpy) copy of ``x``; numpy arrays pass through unchanged."""
    if HAS_CUPY and isinstance(x, cupy.ndarray):
        return cupy.asnumpy(x)
    return np.asarray(x)


def as_dtype(dtype):
    """Normalise a dtype argument to float32 or float64."""
    from .errors import ConfigError

    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ConfigError(f"dtype: expected float32 or float64, got {dtype!r}") from None
    if dt not in (np.float32, np.float64):
        raise ConfigError(f"dtype: expected float32 or float64, got {dt}")
    return dt
