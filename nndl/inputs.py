"""Checking what users hand to a network, before any of it reaches compiled code.

A numba kernel trusts its shapes; the functions here make sure it can.  Data arrive as
``(X, y)`` arrays or as the book's lists of ``(x, y)`` tuples; ``y`` as class labels or
as one-hot (target) rows.  Every problem is an nndl error naming the argument.
"""
import math
import numbers

import numpy as np

from . import backend
from .errors import ConfigError, DataError, ShapeError


class Examples:
    """Examples made when they are indexed, instead of held in one array.

    A training set too big to hold (chapter 6's 250,000 expanded images are 784 MB in
    float32) can be handed to :meth:`nndl.Network.SGD`, ``accuracy`` and the rest as
    an ``Examples``: ``x[idx]`` (an integer array, a slice or an int) gives the rows
    as an array, made a mini-batch at a time.  Subclasses (:class:`nndl.expand.
    ExpandedImages`) implement :meth:`take`, :meth:`reshape`, :meth:`astype`,
    :meth:`to` and :meth:`all_finite`, and set ``shape`` and ``dtype``.  The readable
    path indexes each mini-batch; the fused loops are handed each run of mini-batches
    gathered in the order they are used, so both train to the bits of the held array.
    """

    shape = (0,)
    dtype = np.dtype(np.float64)

    @property
    def ndim(self):
        return len(self.shape)

    def __len__(self):
        return self.shape[0]

    def __getitem__(self, key):
        """Rows ``key`` (an int, a slice, or an array of ints or bools) as an array."""
        n = len(self)
        if isinstance(key, slice):
            return self.take(np.arange(*key.indices(n)))
        if isinstance(key, numbers.Integral) and not isinstance(key, (bool, np.bool_)):
            if not -n <= key < n:
                raise IndexError(f"index {key} is out of bounds for {n} examples")
            return self.take(np.array([key % n]))[0]
        idx = backend.to_numpy(key) if backend.xp(key) is not np else np.asarray(key)
        if idx.dtype == bool:
            if idx.shape != (n,):
                raise IndexError(f"a boolean index of shape {idx.shape} for {n} examples")
            idx = np.flatnonzero(idx)
        if idx.ndim != 1 or not (np.issubdtype(idx.dtype, np.integer) or idx.size == 0):
            raise IndexError(f"expected a 1-D array of integer indices, got {idx.dtype} "
                             f"of shape {idx.shape}")
        idx = idx.astype(np.int64)
        if idx.size and not (-n <= idx.min() and idx.max() < n):
            raise IndexError(f"an index is out of bounds for {n} examples")
        return self.take(np.where(idx < 0, idx + n, idx))

    def take(self, idx):
        """(len(idx), *shape[1:]) rows for ``idx``, int64 indices in [0, len)."""
        raise NotImplementedError

    def reshape(self, *shape):
        raise NotImplementedError

    def astype(self, dtype):
        raise NotImplementedError

    def to(self, xp):
        """The same examples made on the device of array module ``xp``."""
        raise NotImplementedError

    def all_finite(self):
        raise NotImplementedError


def check_count(value, what, minimum=None):
    """``value`` as an int >= ``minimum``: integers only (not bools, not 30.0 or 1.7,
    which would be truncated or are a mistake)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ConfigError(f"{what}: expected an integer, got {value!r}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ConfigError(f"{what}: expected {what} >= {minimum}, got {v}")
    return v


def check_number(value, what, positive=False, expected=None):
    """``value`` as a finite float, > 0 when ``positive``, else >= 0; ``expected`` words
    the error ("a positive learning rate")."""
    expected = expected or f"a {'positive' if positive else 'non-negative'} finite number"
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{what}: expected {expected}, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < 0 or (positive and v == 0):
        raise ConfigError(f"{what}: expected {expected}, got {value!r}")
    return v


def examples(net, x, what):
    """``x`` as (N, *net.input_shape) of the net's dtype on its device: a ShapeError for
    the wrong number of values per example, a DataError for NaN or infinity.  An
    :class:`Examples` stays one (its rows are made when indexed)."""
    on_demand = isinstance(x, Examples)
    if not on_demand and backend.xp(x) is np:
        x = np.asarray(x)
        if x.dtype == object or not (np.issubdtype(x.dtype, np.number) or x.dtype == bool):
            raise DataError(f"{what}: expected numbers, got an array of dtype {x.dtype}")
    if x.ndim == 0 or len(x) == 0:
        raise DataError(f"{what}: no examples")
    per = int(np.prod(net.input_shape))
    if x.shape[1:] != net.input_shape:
        if int(np.prod(x.shape[1:])) != per:
            raise ShapeError(f"{what}: expected examples of shape {net.input_shape} "
                             f"({per} values), got {x.shape[1:]}")
        x = x.reshape((len(x),) + net.input_shape)
    if np.issubdtype(x.dtype, np.complexfloating):
        raise DataError(f"{what}: expected real numbers, got dtype {x.dtype}")
    if x.dtype != net.dtype:
        x = x.astype(net.dtype)
    if not (x.all_finite() if on_demand else backend.all_finite(x)):
        raise DataError(f"{what}: inputs contain NaN or infinity")
    return x.to(net.xp) if on_demand else backend.move(x, net.xp)  # to the network's device, once


def dataset(net, data, what):
    """``(X, labels or None, Y targets)`` from ``(X, y)`` arrays or a list of book tuples."""
    if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "ndim") \
            and data[0].ndim >= 2 and _ndim(data[1]) >= 1:
        x, y = data
    else:
        try:
            pairs = list(data)
        except TypeError:
            raise DataError(f"{what}: expected (X, y) arrays or a list of (x, y) tuples, "
                            f"got {type(data).__name__}") from None
        if not pairs:
            raise DataError(f"{what}: no examples")
        try:
            x = np.stack([np.asarray(p[0]).reshape(-1) for p in pairs])
            ys = [np.asarray(p[1]) for p in pairs]
            y = np.stack([v.reshape(-1) for v in ys]) if ys[0].size > 1 else \
                np.array([v.item() for v in ys])
        except (TypeError, IndexError, ValueError) as e:
            raise DataError(f"{what}: expected (X, y) arrays or a list of (x, y) tuples ({e})") from None
    x = examples(net, x, what)
    y = np.asarray(y) if backend.xp(y) is np else y
    if len(y) != len(x):
        raise ShapeError(f"{what}: {len(x)} inputs but {len(y)} labels/targets")
    n_out = int(np.prod(net.output_shape))
    if y.ndim == 1:
        y = backend.to_numpy(y)  # labels are checked, and compared with predictions, on the host
        if not (np.issubdtype(y.dtype, np.integer) or np.issubdtype(y.dtype, np.floating)
                or y.dtype == bool):
            raise DataError(f"{what}: labels must be integers, got dtype {y.dtype}")
        if not np.issubdtype(y.dtype, np.integer):
            if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                raise DataError(f"{what}: labels must be integers, got dtype {y.dtype}")
            y = y.astype(np.int64)
        bad = (y < 0) | (y >= n_out)
        if bad.any():
            raise DataError(f"{what}: label {int(y[bad][0])} out of range [0, {n_out}) "
                            f"at index {int(np.flatnonzero(bad)[0])}")
        targets = np.zeros((len(y), n_out), net.dtype)
        targets[np.arange(len(y)), y] = 1
        return x, y, backend.move(targets, net.xp)
    if y.shape[1:] != (n_out,):
        raise ShapeError(f"{what}: targets of shape {y.shape[1:]}, expected ({n_out},)")
    if backend.xp(y) is np and not (np.issubdtype(y.dtype, np.number) or y.dtype == bool):
        raise DataError(f"{what}: targets must be numbers, got dtype {y.dtype}")
    if not bool(backend.xp(y).isfinite(y).all()):
        raise DataError(f"{what}: targets contain NaN or infinity")
    targets = backend.move(y.astype(net.dtype), net.xp)
    labels = backend.to_numpy(targets.argmax(axis=1)) if n_out > 1 else None
    return x, labels, targets


def _ndim(v):
    """``v.ndim``, or numpy's count of a list's dimensions (np.ndim refuses device arrays)."""
    return v.ndim if hasattr(v, "ndim") else np.ndim(v)
