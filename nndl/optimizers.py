"""Optimizers: how gradients become weight updates (chapters 1 and 3).

An optimizer holds its own state (never inside the layers) and updates every
``(name, value, gradient)`` triple that ``layer.parameters()`` lists.  Gradients
arrive summed over the mini-batch of size m; regularization adds ∂penalty/∂w with the
training-set size n, for weights only.
"""
from . import backend


def _regularized_grad(layer, name, p, g, m, reg, n):
    """∂C/∂p averaged over the mini-batch, plus the penalty's gradient for weights."""
    grad = g / m
    if reg is not None and name in layer.regularized:
        grad = grad + reg.grad(p, n)
    return grad


class SGD:
    """p → p - η (∂C/∂p), with ∂C/∂w = (1/m) Σ_x ∂C_x/∂w + ∂penalty/∂w  (ch. 1, eq. 20-21).

    With L2 this is network2's ``w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w``.
    """

    def step(self, layers, eta, m, reg=None, n=1):
        for layer in layers:
            for name, p, g in layer.parameters():
                if reg is not None and name in layer.regularized:
                    p -= eta * reg.grad(p, n)
                p -= (eta / m) * g

    def state(self):
        return {}

    def load_state(self, state):
        pass


class Momentum:
    """v → μv - η ∂C/∂p,  p → p + v  (ch. 3, momentum-based gradient descent)."""

    def __init__(self, mu=0.9):
        self.mu = float(mu)
        self.velocity = {}

    def step(self, layers, eta, m, reg=None, n=1):
        for i, layer in enumerate(layers):
            for name, p, g in layer.parameters():
                key = f"{i}/{name}"
                v = self.velocity.get(key)
                if v is None:
                    v = self.velocity[key] = backend.xp(p).zeros_like(p)
                v *= self.mu
                v -= eta * _regularized_grad(layer, name, p, g, m, reg, n)
                p += v

    def state(self):
        return dict(self.velocity)

    def load_state(self, state):
        self.velocity = dict(state)
