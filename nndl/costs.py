"""Cost functions (chapters 1 and 3) with the book's ``fn`` / ``delta`` pair.

``fn(a, y)`` is the *sum* of the per-example costs C_x over the rows of a batch (the
caller divides by the number of examples).  ``delta(z, a, y, activation)`` is the output
error δ^L = ∂C/∂z^L of that sum (equation BP1), given the output layer's weighted input
``z``, its activation ``a = activation.fn(z)`` and the targets ``y`` (one-hot rows for
classification).  Where the book's pairing cancels σ'(z) (cross-entropy with sigmoid,
log-likelihood with softmax) δ^L is computed in the cancelled, stable form; any other
pairing goes through ``activation.grad`` with ∂C/∂a.
"""
from . import backend
from .activations import Sigmoid, Softmax

# Activations are clipped this far from 0 and 1 before a log, so a saturated neuron
# gives a large finite cost instead of inf/nan (the book used nan_to_num instead).
_TINY = 1e-12


class QuadraticCost:
    """C = ½ Σ_x ‖a - y‖²  (ch. 1, eq. 6)."""

    kernel = "quadratic"  # nndl.fast's id for it (None: not fusable)

    @staticmethod
    def fn(a, y):
        d = a - y
        return 0.5 * float((d * d).sum())

    @staticmethod
    def delta(z, a, y, activation):
        return activation.grad(z, a, a - y)  # BP1: (a - y) ⊙ σ'(z)


class CrossEntropyCost:
    """C = -Σ_x Σ_j [y_j ln a_j + (1 - y_j) ln(1 - a_j)]  (ch. 3, eq. 63)."""

    kernel = "cross-entropy"

    @staticmethod
    def fn(a, y):
        xp = backend.xp(a)
        a = xp.clip(a, _TINY, 1 - _TINY)
        return float(-(y * xp.log(a) + (1 - y) * xp.log1p(-a)).sum())

    @staticmethod
    def delta(z, a, y, activation):
        if activation is Sigmoid:
            return a - y  # BP1; σ'(z) cancels for a sigmoid output (eq. 66)
        xp = backend.xp(a)
        a_c = xp.clip(a, _TINY, 1 - _TINY)
        return activation.grad(z, a, (a_c - y) / (a_c * (1 - a_c)))


class LogLikelihoodCost:
    """C = -Σ_x ln a_y, the log-probability of the right class  (ch. 3, eq. 80)."""

    kernel = "log-likelihood"

    @staticmethod
    def fn(a, y):
        xp = backend.xp(a)
        return float(-(y * xp.log(xp.clip(a, _TINY, None))).sum())

    @staticmethod
    def delta(z, a, y, activation):
        if activation is Softmax:
            return a - y  # BP1 for softmax + log-likelihood (eq. 81-82)
        xp = backend.xp(a)
        return activation.grad(z, a, -y / xp.clip(a, _TINY, None))


COSTS = {
    "quadratic": QuadraticCost,
    "cross-entropy": CrossEntropyCost,
    "crossentropy": CrossEntropyCost,
    "log-likelihood": LogLikelihoodCost,
    "loglikelihood": LogLikelihoodCost,
}


def get(cost):
    """A cost class from itself, an instance, or a name such as ``"cross-entropy"``."""
    from .errors import ConfigError

    if isinstance(cost, str):
        by_class = {c.__name__: c for c in COSTS.values()}
        try:
            return by_class[cost] if cost in by_class else COSTS[cost.lower()]
        except KeyError:
            raise ConfigError(
                f"cost: unknown name {cost!r}; expected one of "
                "quadratic, cross-entropy, log-likelihood"
            ) from None
    if not isinstance(cost, type):
        cost = type(cost)
    if hasattr(cost, "fn") and hasattr(cost, "delta"):
        return cost
    raise ConfigError(f"cost: expected a name or a cost class with fn/delta, got {cost!r}")
