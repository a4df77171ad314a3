"""Activation functions (chapters 1, 3 and 6) with their derivatives.

Each activation gives ``fn(z)``, the elementwise ``prime(z)`` where one exists,
``kernel`` (its id on the fused path of :mod:`nndl.fast`, or None: not fusable), and
``grad(z, a, grad_a)``: the backward pass ∂C/∂z from ∂C/∂a, with ``a = fn(z)`` already
computed.  For elementwise activations that is the book's ``grad_a ⊙ σ'(z)`` (BP2);
softmax couples a row's outputs and needs the full Jacobian-vector product.
"""
from . import backend


class Sigmoid:
    """σ(z) = 1 / (1 + e^{-z})  (ch. 1)."""

    kernel = "sigmoid"  # nndl.fast's id for it (None: not fusable)

    @staticmethod
    def fn(z):
        # σ(z) = ½(1 + tanh(z/2)) exactly: one transcendental, no overflow for any z
        # (e^{-z} overflows for z < -709).  Below σ ≈ 1e-16 it rounds to 0, which the
        # costs' clipping handles.
        xp = backend.xp(z)
        return 0.5 + 0.5 * xp.tanh(0.5 * z)

    @staticmethod
    def prime(z):
        s = Sigmoid.fn(z)
        return s * (1 - s)

    @staticmethod
    def grad(z, a, grad_a):
        return grad_a * a * (1 - a)  # σ'(z) = σ(z)(1 - σ(z))


class Tanh:
    """tanh(z) = (e^z - e^{-z}) / (e^z + e^{-z})  (ch. 3)."""

    kernel = "tanh"

    @staticmethod
    def fn(z):
        return backend.xp(z).tanh(z)

    @staticmethod
    def prime(z):
        t = backend.xp(z).tanh(z)
        return 1 - t * t

    @staticmethod
    def grad(z, a, grad_a):
        return grad_a * (1 - a * a)


class ReLU:
    """max(0, z)  (ch. 3 and 6)."""

    kernel = "relu"

    @staticmethod
    def fn(z):
        return backend.xp(z).maximum(z, 0)

    @staticmethod
    def prime(z):
        return (z > 0).astype(z.dtype)

    @staticmethod
    def grad(z, a, grad_a):
        return grad_a * (z > 0)


class Identity:
    """z itself: network3's ``linear``."""

    kernel = "identity"

    @staticmethod
    def fn(z):
        return z

    @staticmethod
    def prime(z):
        return backend.xp(z).ones_like(z)

    @staticmethod
    def grad(z, a, grad_a):
        return grad_a


class Softmax:
    """a_j = e^{z_j} / Σ_k e^{z_k}, row by row  (ch. 3)."""

    kernel = "softmax"

    @staticmethod
    def fn(z):
        xp = backend.xp(z)
        e = xp.exp(z - z.max(axis=-1, keepdims=True))  # shift: no overflow
        return e / e.sum(axis=-1, keepdims=True)

    @staticmethod
    def grad(z, a, grad_a):
        # ∂a_j/∂z_k = a_j(δ_jk - a_k), so (Jᵀg)_k = a_k (g_k - Σ_j g_j a_j).
        return a * (grad_a - (grad_a * a).sum(axis=-1, keepdims=True))


ACTIVATIONS = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "relu": ReLU,
    "identity": Identity,
    "linear": Identity,
    "softmax": Softmax,
}


def get(activation):
    """An activation class from itself, an instance, or a name such as ``"relu"``."""
    from .errors import ConfigError

    if isinstance(activation, str):
        try:
            return ACTIVATIONS[activation.lower()]
        except KeyError:
            raise ConfigError(
                f"activation: unknown name {activation!r}; expected one of "
                f"{', '.join(sorted(ACTIVATIONS))}"
            ) from None
    if isinstance(activation, type) and hasattr(activation, "fn") and hasattr(activation, "grad"):
        return activation
    if hasattr(type(activation), "fn") and hasattr(type(activation), "grad"):
        return type(activation)
    raise ConfigError(f"activation: expected a name or an activation class, got {activation!r}")
