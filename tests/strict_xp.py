"""A strict, numpy-backed stand-in for CuPy: it proves nndl's backend seam on a CPU.

``StrictArray`` wraps a numpy array the way a ``cupy.ndarray`` wraps GPU memory, and
this module is its array module: ``nndl.backend.xp(a)`` returns it because the class
names it in ``__nndl_xp__``.  It keeps CuPy's rules, and is stricter where CuPy would
merely be slow:

* a device array never becomes a numpy array implicitly: ``np.asarray(a)`` raises
  CuPy's TypeError, and ``a.get()`` is the only way to the host;
* numpy functions refuse device arrays (``np.exp(a)``, ``np.concatenate([a])``): code
  must ask ``backend.xp(a)`` for the module;
* host and device arrays don't mix in arithmetic, assignment or indexing
  (``a * host``, ``a[...] = host``, ``a[host_indices]``): data moves with
  ``xp.asarray``;
* ``float(a)``, ``int(a)`` and ``bool(a)`` of a size-1 array are allowed (a sync, as
  in CuPy), and reductions return 0-d device arrays, not numpy scalars;
* there is no ``random``: nndl draws on the host from its seeded numpy Generator.

Every host -> device copy (``asarray``/``array`` of host data) and device -> host copy
(``get``) is counted in ``transfers``, so tests can check that data moves once.
"""
import operator
import sys

import numpy as np

IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. "
            "Please use `.get()` to construct a NumPy array explicitly.")

_SCALARS = (bool, int, float, complex, np.generic)


class Transfers:
    """Counts of the copies between host and device, with each copy's shape."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.to_device, self.to_host = [], []

    def __repr__(self):
        return f"Transfers(to_device={self.to_device}, to_host={self.to_host})"


transfers = Transfers()


def _mixed(v):
    raise TypeError(f"Unsupported type {type(v)}: a host (numpy) array where a device array "
                    f"is needed; move it with xp.asarray first")


def _unwrap(v):
    """The numpy array behind a device array; scalars pass; host arrays are refused."""
    if isinstance(v, StrictArray):
        return v._a
    if isinstance(v, np.ndarray):
        _mixed(v)
    if isinstance(v, (list, tuple)):
        return type(v)(_unwrap(e) for e in v)
    return v


def _index(key):
    """An index: device arrays unwrap; ints, slices, None, ... pass; host arrays are refused."""
    if isinstance(key, tuple):
        return tuple(_index(k) for k in key)
    if isinstance(key, StrictArray):
        return key._a
    if isinstance(key, np.ndarray):
        _mixed(key)
    return key


def _wrap(r):
    """numpy results back to the device: arrays and numpy scalars become StrictArrays."""
    if isinstance(r, np.ndarray):
        return StrictArray(r)
    if isinstance(r, np.generic):
        return StrictArray(np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(e) for e in r)
    return r


class StrictArray:
    """A "device" array: a numpy array that refuses to leave the device implicitly."""

    __slots__ = ("_a",)
    __array_ufunc__ = None          # np.exp(a) raises; numpy operators defer to ours
    __hash__ = None

    def __init__(self, a):
        if not isinstance(a, np.ndarray):
            raise TypeError("StrictArray wraps a numpy array; use strict_xp.asarray(...)")
        self._a = a

    # -- the rules ----------------------------------------------------------------
    def __array__(self, *args, **kwargs):
        raise TypeError(IMPLICIT)

    def __array_function__(self, func, types, args, kwargs):
        raise TypeError(f"numpy.{func.__name__} was called on a device array; use the "
                        f"array's own module, backend.xp(a).{func.__name__}")

    def get(self):
        """A numpy copy on the host: the explicit device -> host transfer."""
        transfers.to_host.append(self.shape)
        return self._a.copy()

    def __float__(self):
        return float(self._scalar())

    def __int__(self):
        return int(self._scalar())

    def __bool__(self):
        return bool(self._scalar())

    def __complex__(self):
        return complex(self._scalar())

    def __index__(self):
        if self.ndim != 0 or self.dtype.kind not in "iub":
            raise TypeError("only 0-d integer device arrays can be used as an index")
        return int(self._a)

    def _scalar(self):
        if self._a.size != 1:
            raise TypeError(f"only size-1 arrays can be converted to Python scalars, got shape {self.shape}")
        return self._a.reshape(()).item()

    def item(self):
        return self._scalar()

    def tolist(self):
        return self._a.tolist()

    # -- attributes ---------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    T = property(lambda self: StrictArray(self._a.T))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __repr__(self):
        return f"StrictArray({np.array2string(self._a, threshold=20)}, dtype={self.dtype})"

    def __getitem__(self, key):
        return _wrap(self._a[_index(key)])

    def __setitem__(self, key, value):
        self._a[_index(key)] = _unwrap(value)

    def astype(self, dtype, copy=True):
        return StrictArray(self._a.astype(dtype, copy=copy))

    def reshape(self, *shape, order="C"):
        return StrictArray(self._a.reshape(*shape, order=order))


def _method(name):
    def method(self, *args, **kwargs):
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        return _wrap(getattr(self._a, name)(*_unwrap(args), **kwargs))
    method.__name__ = name
    return method


for _name in ("transpose", "swapaxes", "sum", "prod", "mean", "max", "min", "argmax", "argmin",
              "any", "all", "copy", "ravel", "flatten", "squeeze", "clip", "round", "dot",
              "nonzero", "repeat", "take", "cumsum", "fill", "std", "var"):
    setattr(StrictArray, _name, _method(_name))


def _binary(op):
    def forward(self, other):
        return _wrap(op(self._a, _unwrap(other)))

    def reflected(self, other):
        return _wrap(op(_unwrap(other), self._a))
    return forward, reflected


def _inplace(op):
    def method(self, other):
        op(self._a, _unwrap(other))
        return self
    return method


for _name, _op in (("add", operator.add), ("sub", operator.sub), ("mul", operator.mul),
                   ("truediv", operator.truediv), ("floordiv", operator.floordiv),
                   ("mod", operator.mod), ("pow", operator.pow), ("matmul", operator.matmul),
                   ("and", operator.and_), ("or", operator.or_), ("xor", operator.xor)):
    _f, _r = _binary(_op)
    setattr(StrictArray, f"__{_name}__", _f)
    setattr(StrictArray, f"__r{_name}__", _r)
    setattr(StrictArray, f"__i{_name}__", _inplace(getattr(operator, f"i{_name}")))
for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(StrictArray, f"__{_name}__", _binary(getattr(operator, _name))[0])
for _name in ("neg", "pos", "abs", "invert"):
    setattr(StrictArray, f"__{_name}__",
            (lambda op: lambda self: _wrap(op(self._a)))(getattr(operator, _name)))


# -- the module: what nndl may call as xp.<name> ------------------------------------------
ndarray = StrictArray
newaxis = None
pi, e, inf, nan = np.pi, np.e, np.inf, np.nan
float16, float32, float64 = np.float16, np.float32, np.float64
int8, int16, int32, int64, uint8, bool_ = np.int8, np.int16, np.int32, np.int64, np.uint8, np.bool_


def asarray(a, dtype=None, order=None):
    """A device array of ``a``: no copy for a device array of that dtype; host data is copied."""
    if isinstance(a, StrictArray):
        return a if dtype is None or np.dtype(dtype) == a.dtype else a.astype(dtype)
    host = np.array(a, dtype=dtype, order=order or "K", copy=True)
    transfers.to_device.append(host.shape)
    return StrictArray(host)


def array(a, dtype=None, copy=True, order="K"):
    if isinstance(a, StrictArray):
        return StrictArray(np.array(a._a, dtype=dtype, copy=copy, order=order))
    return asarray(a, dtype=dtype, order=order)


def asnumpy(a):
    return a.get() if isinstance(a, StrictArray) else np.asarray(a)


def ascontiguousarray(a, dtype=None):
    if not isinstance(a, StrictArray):
        _mixed(a)
    return StrictArray(np.ascontiguousarray(a._a, dtype=dtype))


def _function(name):
    fn = getattr(np, name)

    def function(*args, **kwargs):
        out = kwargs.get("out")
        kwargs = {k: _unwrap(v) for k, v in kwargs.items()}
        result = fn(*_unwrap(args), **kwargs)
        return out if out is not None else _wrap(result)
    function.__name__ = name
    function.__doc__ = f"numpy.{name} on device arrays only."
    return function


# Allocation: shapes in, device arrays out (nothing crosses from the host).
for _name in ("zeros", "ones", "empty", "full", "arange", "eye", "linspace"):
    globals()[_name] = (lambda fn: lambda *a, **k: StrictArray(fn(*a, **k)))(getattr(np, _name))
# Everything else: device arrays (and scalars) in, device arrays out.
for _name in ("zeros_like", "ones_like", "empty_like", "full_like",
              "exp", "expm1", "log", "log1p", "tanh", "sqrt", "square", "abs", "absolute",
              "sign", "maximum", "minimum", "where", "clip", "isfinite", "isnan", "isinf",
              "logical_and", "logical_or", "logical_not", "floor", "ceil", "round", "around",
              "sum", "prod", "mean", "max", "min", "amax", "amin", "argmax", "argmin",
              "any", "all", "count_nonzero", "nonzero", "flatnonzero", "dot", "matmul",
              "einsum", "tensordot", "outer", "concatenate", "stack", "vstack", "hstack",
              "reshape", "transpose", "swapaxes", "moveaxis", "expand_dims", "squeeze",
              "broadcast_to", "take", "repeat", "tile", "cumsum", "copy", "allclose",
              "array_equal", "unravel_index"):
    globals()[_name] = _function(_name)

StrictArray.__nndl_xp__ = sys.modules[__name__]
