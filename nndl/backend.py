"""The array-module seam: the only module that imports numba or cupy.

Layers are written once against an array module ``xp`` (numpy on the CPU, CuPy on a
GPU).  They ask ``xp(x)`` which module owns an array and use only what both modules
share.  Loops too slow for numpy live in :mod:`nndl.kernels` behind ``jit``.

A network picks its module once, with ``Network(..., backend="cupy")`` or the
``NNDL_BACKEND`` environment variable (``"numpy"`` when unset): :func:`array_module`
turns that choice into the module, or into one clear :class:`~nndl.errors.ConfigError`
where CuPy or a GPU is missing.  Parameters are drawn on the host from a numpy
Generator and then moved with :func:`move`; results come back with :func:`to_numpy`.

Another array type can take part without a change here: ``xp(x)`` returns the module
that ``type(x).__nndl_xp__`` names.  The tests use that for a strict, CPU-only stand-in
for CuPy (``tests/strict_xp.py``) that refuses, as CuPy does, to turn device arrays
into numpy arrays behind the code's back.
"""
import functools
import os
import sys

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
    _CUPY_IMPORT_ERROR = None
except Exception as e:  # ImportError, or a CUDA library failing to load
    cupy = None
    HAS_CUPY = False
    _CUPY_IMPORT_ERROR = "CuPy is not installed" if isinstance(e, ImportError) and \
        getattr(e, "name", None) == "cupy" else f"CuPy failed to import: {type(e).__name__}: {e}"

BACKENDS = ("numpy", "cupy")


def xp(x):
    """The array module (numpy, cupy, or the one ``type(x).__nndl_xp__`` names) that owns ``x``."""
    if HAS_CUPY and isinstance(x, cupy.ndarray):
        return cupy
    return getattr(type(x), "__nndl_xp__", np)


def jit(*args, **kwargs):
    """``numba.njit(cache=True)``, or the plain function where numba is absent."""
    if numba is None:
        if args and callable(args[0]):
            return args[0]
        return lambda f: f
    kwargs.setdefault("cache", True)
    return numba.njit(*args, **kwargs)


prange = numba.prange if numba is not None else range  # a parallel loop in jitted code


def _wide_vectors():
    """True when numba compiles for a CPU with AVX-512: 32 vector registers, so kernels can
    keep four rows x five examples of running sums in registers (16 would spill)."""
    if not HAS_NUMBA:
        return False
    features = numba.config.CPU_FEATURES
    if features is None:
        from llvmlite import binding

        features = binding.get_host_cpu_features().flatten()
    return "+avx512f" in features.split(",")


WIDE_VECTORS = _wide_vectors()


def _prefetch_py(a, i, j):
    """Without numba: nothing (a hint, not an operation)."""


if HAS_NUMBA:
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def _prefetch_intrinsic(typingctx, a, i, j):
        """LLVM's prefetch of a[i, j]'s cache line into all cache levels (read)."""
        def codegen(context, builder, signature, args):
            aty = signature.args[0]
            arr = context.make_array(aty)(context, builder, args[0])
            ptr = cgutils.get_item_pointer(context, builder, aty, arr, [args[1], args[2]],
                                           wraparound=False)
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [ptr.type, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(a, i, j), codegen

    prefetch = _prefetch_intrinsic
else:  # pragma: no cover - exercised only without numba
    prefetch = _prefetch_py


# -- the first run's compile notice ---------------------------------------------------

COMPILE_NOTICE = ("nndl: numba is compiling kernels for this machine (once, ~20 s; "
                  "later runs load them from its cache)...")


def _nndl_kernel(event):
    """True when a numba event concerns a function defined in nndl."""
    dispatcher = (event.data or {}).get("dispatcher")
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", None) or ""
    return module == "nndl" or module.startswith("nndl.")


_compile_notice = None  # the listener, registered with numba on first use


def announce_compilation():
    """Say so, in one line on stderr, the next time numba compiles one of nndl's kernels.

    A fresh install's first training run spends ~20 s compiling the fused loops; numba
    caches them on disk and later runs load them in well under a second.  The training
    loop calls this once per run, so a run prints the line at most once, and only when
    a kernel is really compiled: numba triggers its ``"numba:compile"`` event for a
    compilation, not for a load from the cache.  It goes to stderr even for a quiet
    (``verbose=False``) run: it explains a pause, it does not report progress.
    """
    global _compile_notice
    if not HAS_NUMBA:
        return
    if _compile_notice is None:
        from numba.core import event

        class _CompileNotice(event.Listener):
            armed = False

            def on_start(self, ev):
                if self.armed and _nndl_kernel(ev):
                    self.armed = False
                    print(COMPILE_NOTICE, file=sys.stderr, flush=True)

            def on_end(self, ev):
                pass

        _compile_notice = _CompileNotice()
        event.register("numba:compile", _compile_notice)
    _compile_notice.armed = True


def all_finite(x):
    """True when no element of ``x`` is NaN or infinite (one pass, no temporary array
    for C-contiguous numpy floats: a check of the 50,000 training images is 2-3x faster
    than ``isfinite(x).all()``)."""
    if numba is not None and HAS_NUMBA and type(x) is np.ndarray and x.flags.c_contiguous \
            and x.dtype in (np.float32, np.float64):
        return bool(_all_finite(x.reshape(-1)))
    return bool(xp(x).isfinite(x).all())


def _all_finite_py(v):
    acc = v[:1].sum() * 0  # a zero of v's dtype
    for i in range(v.size):
        acc += v[i] * 0  # 0 for a finite value, NaN for NaN or ±inf; branch-free, vectorises
    return acc == 0


_all_finite = jit(_all_finite_py, fastmath={"reassoc"}) if numba is not None else _all_finite_py


def to_numpy(x):
    """A host (numpy) copy of ``x``; numpy arrays pass through unchanged."""
    if xp(x) is np:
        return np.asarray(x)
    return x.get()  # cupy.ndarray.get(): the one explicit device -> host copy


def move(x, module):
    """``x`` on the device of array module ``module``; unchanged when it is already there."""
    if xp(x) is module:
        return x
    return module.asarray(to_numpy(x))


@functools.lru_cache(maxsize=None)
def cupy_problem():
    """Why the cupy backend can't run here (a short phrase), or None when it can."""
    if not HAS_CUPY:
        return _CUPY_IMPORT_ERROR
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as e:  # no driver, no device, a broken CUDA install
        return f"no CUDA GPU is usable: {type(e).__name__}: {e}"
    return None if count > 0 else "no CUDA GPU was found"


def array_module(backend=None):
    """The array module for ``backend``: ``"numpy"``, ``"cupy"``, None or an array module.

    None means the ``NNDL_BACKEND`` environment variable, else ``"numpy"``.  An array
    module (numpy, cupy, or a stand-in with the same functions) is returned as it is.
    Asking for ``"cupy"`` where CuPy or a CUDA GPU is missing raises one ConfigError
    that says how to get them.
    """
    from .errors import ConfigError

    what = "backend"
    if backend is None:
        backend, what = os.environ.get("NNDL_BACKEND", "") or "numpy", "NNDL_BACKEND"
    if not isinstance(backend, str):
        if callable(getattr(backend, "asarray", None)) and callable(getattr(backend, "zeros", None)):
            return backend
        raise ConfigError(f"{what}: expected 'numpy' or 'cupy', got {backend!r}")
    name = backend.strip().lower()
    if name == "numpy":
        return np
    if name == "cupy":
        problem = cupy_problem()
        if problem is not None:
            raise ConfigError(f"backend 'cupy' needs CuPy and a CUDA GPU: "
                              f"pip install 'nndl[gpu]' ({problem})")
        return cupy
    raise ConfigError(f"{what}: expected 'numpy' or 'cupy', got {backend!r}")


def name(module):
    """``"numpy"``, ``"cupy"``, or the name of another array module."""
    if module is np:
        return "numpy"
    if HAS_CUPY and module is cupy:
        return "cupy"
    return getattr(module, "__name__", repr(module))


def default_dtype(module):
    """float64 on the CPU (numpy), float32 on a GPU (or any other array module)."""
    return np.dtype(np.float64) if module is np else np.dtype(np.float32)


def synchronize(module):
    """Wait until the device of ``module`` has finished its queued work (for timings)."""
    if HAS_CUPY and module is cupy:
        cupy.cuda.get_current_stream().synchronize()


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
