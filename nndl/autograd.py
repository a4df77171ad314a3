"""Automatic differentiation: backpropagation that derives itself.

Chapter 2 derives the four equations of backpropagation by hand and codes them for one
kind of network, and every layer of nndl carries its own derivation, right below its
forward pass.  That is the way to understand backprop.  This module is the other way to
get the same numbers, the one libraries took after the book: *record* each elementary
operation while the forward pass runs, then apply the chain rule to the recording,
from the cost back to the weights.  It is called reverse-mode automatic
differentiation, and it is backpropagation: each operation passes ∂C/∂(its output)
backwards and turns it into ∂C/∂(each input), just as a layer turns δ^{l+1} into δ^l.
Chapter 2's "in what sense is backpropagation a fast algorithm?" applies unchanged: one
backward sweep gives ∂C/∂w for every weight, for about the cost of one more forward pass.

A :class:`Tensor` wraps an array of the array module ``xp`` (numpy on the CPU, CuPy on
a GPU; see :mod:`nndl.backend`).  Arithmetic on tensors (``+ - * / @ **``, with numpy's
broadcasting) and the methods below compute the result at once and remember, in the
result, its inputs and a ``backward`` function: given g = ∂C/∂(result) it returns
∂C/∂(input) for each input.  Each operation is written as its forward computation with
its backward function right below it.  ``C.backward()`` lists every tensor C was
computed from, each after its inputs (a topological order), and walks that list in
reverse, so a tensor's gradient is complete, summed over every place it was used,
before it is passed on.  The gradients end up in ``.grad`` of the *leaves*: the tensors
made directly with ``requires_grad=True``, typically the weights and biases.  Inside
``with no_grad():`` nothing is recorded, which is how weights are updated.

Fitting y = 3x + 0.8 by gradient descent on the quadratic cost::

    >>> import numpy as np
    >>> from nndl.autograd import Tensor
    >>> x = Tensor(np.random.default_rng(0).random((100, 1)))
    >>> y = 3 * x + 0.8
    >>> w, b = Tensor(0.0, requires_grad=True), Tensor(0.0, requires_grad=True)
    >>> for step in range(2000):
    ...     C = 0.5 * ((w * x + b - y) ** 2).mean()
    ...     w.grad = b.grad = None
    ...     C.backward()
    ...     w.data -= 1.0 * w.grad
    ...     b.data -= 1.0 * b.grad
    >>> print(f"w = {w.item():.4f}, b = {b.item():.4f}")
    w = 3.0000, b = 0.8000

Convolution and max-pooling reuse nndl's kernels (:func:`nndl.kernels.im2col`,
:func:`~nndl.kernels.maxpool_forward` and their adjoints), so :func:`conv2d` and
:func:`max_pool2d` cost what the layers cost.  The tests check every operation here by
finite differences, and then use this module as a second, independent oracle for the
hand-derived backward pass of every layer, activation and cost in nndl.
"""
import contextlib
import numbers

import numpy as np

from . import backend, kernels
from .errors import ConfigError, ShapeError

_recording = True  # False inside no_grad()


@contextlib.contextmanager
def no_grad():
    """A block in which operations record nothing: for updates and evaluation."""
    global _recording
    previous, _recording = _recording, False
    try:
        yield
    finally:
        _recording = previous


def _as_array(value, like=None):
    """``value`` as an xp array: arrays pass as they are; numbers and lists become
    arrays of ``like``'s module and dtype (numpy float64 without ``like``)."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.generic):
        return np.asarray(value)                            # a numpy scalar: keep its dtype
    if isinstance(value, np.ndarray) or backend.xp(value) is not np:
        return value
    if like is not None:
        return backend.xp(like).asarray(value, dtype=like.dtype)
    return np.asarray(value, dtype=np.float64)


def _lift(value, like=None):
    """A Tensor from a Tensor, an array or a number (a constant: no gradient)."""
    return value if isinstance(value, Tensor) else Tensor(_as_array(value, like))


def _unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: broadcasting copied each value of the smaller operand
    to many places, so its gradient is the sum over those places."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return g


def _result(data, parents, backward):
    """The Tensor an operation returns: it records its inputs and ``backward`` when one
    of them needs a gradient and no_grad() is not in force."""
    out = Tensor(data)
    if _recording and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = parents
        out._backward = backward
    return out


class Tensor:
    """An xp array ``data`` that remembers how it was computed; ``grad`` = ∂C/∂data.

    ``Tensor(array, requires_grad=True)`` makes a leaf whose ``grad`` (an xp array of
    its shape, or None) ``C.backward()`` fills, adding to what is there, as PyTorch
    does: set ``grad = None`` before each step.  Numbers and lists become float64.
    """

    __array_ufunc__ = None  # numpy array (op) Tensor: numpy defers to the Tensor's operator

    def __init__(self, data, requires_grad=False):
        self.data = _as_array(data)
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._parents = ()      # the tensors this one was computed from
        self._backward = None   # g = ∂C/∂self -> (∂C/∂parent, ...), None where not needed

    shape = property(lambda self: self.data.shape)
    ndim = property(lambda self: self.data.ndim)
    dtype = property(lambda self: self.data.dtype)
    size = property(lambda self: self.data.size)

    def __len__(self):
        return len(self.data)

    def __repr__(self):
        return f"Tensor({self.data!r}{', requires_grad=True' if self.requires_grad else ''})"

    def item(self):
        """The value of a one-element tensor as a Python float."""
        return float(self.data)

    def numpy(self):
        """A numpy copy of ``data`` (from the GPU if it lives there)."""
        return backend.to_numpy(self.data)

    def detach(self):
        """The same values as a new leaf without a gradient: a constant."""
        return Tensor(self.data)

    # -- arithmetic, elementwise with numpy's broadcasting ------------------------------
    def __add__(self, other):
        other = _lift(other, self.data)

        def backward(g):                                    # ∂(x + y)/∂x = ∂(x + y)/∂y = 1
            return g, g
        return _result(self.data + other.data, (self, other), backward)

    __radd__ = __add__

    def __neg__(self):
        def backward(g):
            return (-g,)
        return _result(-self.data, (self,), backward)

    def __sub__(self, other):
        other = _lift(other, self.data)

        def backward(g):                                    # ∂(x - y)/∂x = 1, ∂(x - y)/∂y = -1
            return g, -g
        return _result(self.data - other.data, (self, other), backward)

    def __rsub__(self, other):
        return _lift(other, self.data) - self

    def __mul__(self, other):
        other = _lift(other, self.data)
        x, y = self.data, other.data

        def backward(g):                                    # ∂(xy)/∂x = y, ∂(xy)/∂y = x
            return g * y, g * x
        return _result(x * y, (self, other), backward)

    __rmul__ = __mul__

    def __truediv__(self, other):
        other = _lift(other, self.data)
        x, y = self.data, other.data

        def backward(g):                                    # ∂(x/y)/∂x = 1/y, ∂(x/y)/∂y = -x/y²
            return g / y, -g * x / (y * y)
        return _result(x / y, (self, other), backward)

    def __rtruediv__(self, other):
        return _lift(other, self.data) / self

    def __pow__(self, p):
        """x ** p for a number p, or for a tensor p (then x > 0 where p needs a gradient)."""
        x = self.data
        if isinstance(p, numbers.Real):
            def backward(g):                                # ∂(x^p)/∂x = p x^(p-1)
                return (g * p * x ** (p - 1),)
            return _result(x ** p, (self,), backward)
        p = _lift(p, x)
        z = x ** p.data

        def backward(g):                                    # ... and ∂(x^p)/∂p = x^p ln x
            return (g * p.data * x ** (p.data - 1),
                    g * z * backend.xp(x).log(x) if p.requires_grad else None)
        return _result(z, (self, p), backward)

    def __rpow__(self, base):
        return _lift(base, self.data) ** self

    # -- products and shapes -------------------------------------------------------------
    def __matmul__(self, other):
        """(..., n, k) @ (..., k, m) -> (..., n, m); rows are examples, as in ``a @ w.T``."""
        other = _lift(other, self.data)
        x, y = self.data, other.data
        if x.ndim < 2 or y.ndim < 2:
            raise ShapeError(f"Tensor @: both operands need 2 or more dimensions, got shapes "
                             f"{x.shape} and {y.shape}; reshape a vector to (1, n) or (n, 1)")

        def backward(g):                                    # z = x y: ∂C/∂x = g yᵀ, ∂C/∂y = xᵀ g
            return g @ y.swapaxes(-1, -2), x.swapaxes(-1, -2) @ g
        return _result(x @ y, (self, other), backward)

    def __rmatmul__(self, other):
        return _lift(other, self.data) @ self

    @property
    def T(self):
        """The transpose (all axes reversed, as numpy's ``.T``)."""
        def backward(g):
            return (g.T,)
        return _result(self.data.T, (self,), backward)

    def reshape(self, *shape):
        """The same values in a new shape: ``t.reshape(N, -1)`` or ``t.reshape((N, -1))``."""
        if len(shape) == 1 and not isinstance(shape[0], numbers.Integral):
            shape = tuple(shape[0])
        old = self.shape

        def backward(g):                                    # values only moved: move g back
            return (g.reshape(old),)
        return _result(self.data.reshape(shape), (self,), backward)

    def sum(self, axis=None, keepdims=False):
        """Σ over ``axis`` (an int, a tuple, or None for every axis)."""
        x = self.data
        xp = backend.xp(x)

        def backward(g):                                    # each x feeds its sum once: copy g back
            if axis is not None and not keepdims:
                g = xp.expand_dims(g, axis)
            return (xp.broadcast_to(g, x.shape),)
        return _result(x.sum(axis=axis, keepdims=keepdims), (self,), backward)

    def mean(self, axis=None, keepdims=False):
        """The average over ``axis``: the sum divided by the number of terms."""
        total = self.sum(axis=axis, keepdims=keepdims)
        return total / (self.size // total.size)

    # -- elementwise functions ---------------------------------------------------------
    def exp(self):
        xp = backend.xp(self.data)
        z = xp.exp(self.data)

        def backward(g):                                    # (eˣ)' = eˣ
            return (g * z,)
        return _result(z, (self,), backward)

    def log(self):
        x = self.data

        def backward(g):                                    # (ln x)' = 1/x
            return (g / x,)
        return _result(backend.xp(x).log(x), (self,), backward)

    def sigmoid(self):
        """σ(x) = 1/(1 + e^{-x}), computed from e^{-|x|}, which can't overflow."""
        xp = backend.xp(self.data)
        e = xp.exp(-abs(self.data))
        s = xp.where(self.data >= 0, 1 / (1 + e), e / (1 + e))    # e/(1 + e) = σ(x) for x < 0

        def backward(g):                                    # σ' = σ(1 - σ)
            return (g * s * (1 - s),)
        return _result(s, (self,), backward)

    def tanh(self):
        t = backend.xp(self.data).tanh(self.data)

        def backward(g):                                    # tanh' = 1 - tanh²
            return (g * (1 - t * t),)
        return _result(t, (self,), backward)

    def relu(self):
        x = self.data

        def backward(g):                                    # 1 where x > 0, else 0 (also at 0)
            return (g * (x > 0),)
        return _result(backend.xp(x).maximum(x, 0), (self,), backward)

    # -- the backward pass -----------------------------------------------------------------
    def backward(self, grad=None):
        """Add ∂(this tensor)/∂leaf, or Σ grad ⊙ ∂(this)/∂leaf, to ``.grad`` of each leaf.

        ``grad`` (shaped like this tensor) is needed unless the tensor has one element,
        such as a cost.  The recording is kept, so backward may run again.
        """
        if not self.requires_grad:
            raise ConfigError("backward(): this tensor depends on no tensor with "
                              "requires_grad=True (or was computed inside no_grad())")
        xp = backend.xp(self.data)
        if grad is None:
            if self.size != 1:
                raise ShapeError(f"backward(): a tensor of shape {self.shape} needs grad=, "
                                 f"∂C/∂(this tensor) of that shape; only a single value "
                                 f"(a cost) defaults to 1")
            grad = xp.ones_like(self.data)
        grad = _as_array(grad, self.data)
        if grad.shape != self.shape:
            raise ShapeError(f"backward(): grad has shape {grad.shape}, the tensor {self.shape}")
        grads = {id(self): grad}                            # ∂C/∂t, summed as it arrives
        for t in reversed(self._topological_order()):      # every user of t comes before t
            g = grads.pop(id(t), None)
            if g is None:
                continue
            if not t._parents:                              # a leaf: keep its gradient
                g = xp.array(g, dtype=t.dtype)              # a copy, writable and of its own
                t.grad = g if t.grad is None else t.grad + g
                continue
            for parent, pg in zip(t._parents, t._backward(g)):
                if pg is None or not parent.requires_grad:
                    continue
                pg = _unbroadcast(pg, parent.shape)
                grads[id(parent)] = pg if id(parent) not in grads else grads[id(parent)] + pg

    def _topological_order(self):
        """Every tensor needing a gradient that this one was computed from, and itself,
        each listed after its parents (a depth-first search without recursion, so long
        chains of operations don't hit Python's recursion limit)."""
        order, seen, stack = [], set(), [(self, False)]
        while stack:
            t, parents_done = stack.pop()
            if parents_done:
                order.append(t)
                continue
            if id(t) in seen:
                continue
            seen.add(id(t))
            stack.append((t, True))
            stack.extend((p, False) for p in t._parents if p.requires_grad and id(p) not in seen)
        return order


# -- chapter 6's operations, on nndl's kernels ----------------------------------------------
def conv2d(x, w, b=None):
    """z[n, k] = Σ_c w[k, c] ⋆ x[n, c] + b[k]: a valid cross-correlation, stride 1.

    x (N, C, H, W), w (K, C, kh, kw), b (K,) or None -> (N, K, OH, OW), OH = H - kh + 1,
    as :class:`nndl.Conv2D` computes it: one matrix product on the im2col columns.
    """
    x, w = _lift(x), _lift(w)
    parents = (x, w) if b is None else (x, w, _lift(b))
    if x.ndim != 4 or w.ndim != 4 or x.shape[1] != w.shape[1]:
        raise ShapeError(f"conv2d: expected x (N, C, H, W) and w (K, C, kh, kw) with the same "
                         f"C, got {x.shape} and {w.shape}")
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    if b is not None and parents[2].shape != (K,):
        raise ShapeError(f"conv2d: expected b of shape ({K},), got {parents[2].shape}")
    OH, OW = kernels.conv_output_shape(H, W, kh, kw)
    cols = kernels.im2col(x.data, kh, kw)                   # (C·kh·kw, N·OH·OW)
    w2 = w.data.reshape(K, C * kh * kw)                     # (K, C·kh·kw)
    z = w2 @ cols                                           # (K, N·OH·OW)
    if b is not None:
        z = z + parents[2].data.reshape(K, 1)
    out = z.reshape(K, N, OH, OW).transpose(1, 0, 2, 3)     # (N, K, OH, OW)

    def backward(g):
        gz = g.transpose(1, 0, 2, 3).reshape(K, N * OH * OW)           # (K, N·OH·OW)
        gw = (gz @ cols.T).reshape(w.shape)                            # as BP4: δ colsᵀ
        gx = kernels.col2im(w2.T @ gz, x.shape, kh, kw) if x.requires_grad else None  # as BP2
        return (gx, gw) if b is None else (gx, gw, gz.sum(axis=1))     # as BP3
    return _result(out, parents, backward)


def max_pool2d(x, size=2):
    """The maximum of each non-overlapping size × size window (``size`` an int or a
    pair (ph, pw)): (N, C, H, W) -> (N, C, H//ph, W//pw), as :class:`nndl.MaxPool2D`
    computes it (on ties, the first maximum takes the gradient)."""
    x = _lift(x)
    values, argmax = kernels.maxpool_forward(x.data, size)

    def backward(g):                                        # all of g to each window's maximum
        return (kernels.maxpool_backward(g, argmax, size),)
    return _result(values, (x,), backward)


def softmax_cross_entropy(logits, labels):
    """C = -(1/N) Σ_x ln a_y, a = softmax(z): the log-likelihood cost (ch. 3), averaged.

    logits z (N, K); labels (N,) integer classes or (N, K) one-hot rows -> a scalar.
    """
    logits = _lift(logits)
    z = logits.data
    xp = backend.xp(z)
    if z.ndim != 2:
        raise ShapeError(f"softmax_cross_entropy: expected logits (N, K), got {z.shape}")
    N, K = z.shape
    y = backend.move(_as_array(labels), xp)
    if y.ndim == 1:
        y = (y[:, None] == xp.arange(K)).astype(z.dtype)   # (N, K) one-hot rows
    if y.shape != z.shape:
        raise ShapeError(f"softmax_cross_entropy: labels of shape {y.shape} for logits {z.shape}")
    shifted = z - z.max(axis=1, keepdims=True)              # softmax ignores shifts: no overflow
    log_a = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))  # ln softmax, (N, K)

    def backward(g):                                        # (a - y)/N: eq. 81 of ch. 3, averaged
        return (g * (xp.exp(log_a) - y) / N,)
    return _result(-(y * log_a).sum() / N, (logits,), backward)
