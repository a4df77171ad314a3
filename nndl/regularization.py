"""L1 and L2 regularization (chapter 3).

The penalty is added once per cost evaluation with n = the size of the whole
training set, as in the book's network2: C = C_0 + (λ/2n) Σ w² for L2 and
C = C_0 + (λ/n) Σ |w| for L1.  Only weights are regularized, never biases.
``grad(w, n)`` is ∂(penalty)/∂w; the optimizer adds it to ∂C_0/∂w.  ``decay(w, eta, n)``
is the same term as plain SGD applies it, in place: w → w - η ∂(penalty)/∂w.
"""
from . import backend


class L2:
    """(λ/2n) Σ_w w²: weight decay, w → (1 - ηλ/n) w - (η/m) Σ ∂C_x/∂w  (eq. 93)."""

    name = "L2"
    kernel = "L2"  # nndl.fast's id for it (None: not fusable)

    def __init__(self, lmbda=0.0):
        self.lmbda = float(lmbda)

    def penalty(self, ws, n):
        return 0.5 * self.lmbda / n * sum(float((w * w).sum()) for w in ws)

    def grad(self, w, n):
        return (self.lmbda / n) * w

    def decay(self, w, eta, n):
        """The penalty's part of a plain SGD step, in place: w → (1 - ηλ/n) w."""
        w *= 1.0 - eta * self.lmbda / n


class L1:
    """(λ/n) Σ_w |w|: w → w - (ηλ/n) sgn(w) - (η/m) Σ ∂C_x/∂w  (eq. 97), sgn(0) = 0."""

    name = "L1"
    kernel = "L1"

    def __init__(self, lmbda=0.0):
        self.lmbda = float(lmbda)

    def penalty(self, ws, n):
        return self.lmbda / n * sum(float(abs(w).sum()) for w in ws)

    def grad(self, w, n):
        return (self.lmbda / n) * backend.xp(w).sign(w)

    def decay(self, w, eta, n):
        """The penalty's part of a plain SGD step, in place: w → w - (ηλ/n) sgn(w)."""
        w -= (eta * self.lmbda / n) * backend.xp(w).sign(w)


def get(regularization, lmbda):
    """An L1/L2 instance from a name (``"L2"``, ``"L1"``), an instance, or None (no penalty)."""
    from .errors import ConfigError

    if regularization is None or lmbda == 0:
        return None
    if isinstance(regularization, (L1, L2)):
        return regularization
    name = str(regularization).upper()
    if name == "L2":
        return L2(lmbda)
    if name == "L1":
        return L1(lmbda)
    raise ConfigError(f"regularization: expected 'L1' or 'L2', got {regularization!r}")
