"""Optimizers: how gradients become weight updates (chapters 1 and 3, and beyond).

An optimizer holds its own state (never inside the layers) and updates every
``(name, value, gradient)`` triple that ``layer.parameters()`` lists.  Gradients
arrive summed over the mini-batch of size m; regularization adds ∂penalty/∂w with the
training-set size n, for weights only.  So every optimizer below starts from the same
g = ∂C/∂p = (1/m) Σ_x ∂C_x/∂p + ∂penalty/∂p, and differs only in what it does with g.

``SGD`` is the book's rule and ``Momentum`` its chapter 3 variation.  Chapter 3 also
mentions that other techniques exist; ``Nesterov``, ``AdaGrad``, ``RMSProp`` and
``Adam`` are the ones that became standard after the book.  Penalties are added to the
gradient (“coupled”), so for the adaptive methods L2 is not the same as weight decay.

The protocol, used by :meth:`nndl.Network.SGD`::

    optimizer.step(layers, eta, m, reg, n)   # one update of every parameter
    optimizer.state()                        # {name: array}: what a checkpoint saves
    optimizer.load_state(state)              # put a saved state back

State arrays are keyed ``"<slot>/<layer index>/<parameter name>"`` (``"v/0/w"``), so a
checkpoint can store them beside the weights and a resumed run continues exactly.
"""
import numpy as np

from . import backend


def _regularized_grad(layer, name, p, g, m, reg, n):
    """∂C/∂p averaged over the mini-batch, plus the penalty's gradient for weights."""
    grad = g / m
    if reg is not None and name in layer.regularized:
        grad = grad + reg.grad(p, n)
    return grad


def _params(layers):
    """(key, layer, name, value, gradient) for every parameter, keyed "layer index/name"."""
    for i, layer in enumerate(layers):
        for name, p, g in layer.parameters():
            yield f"{i}/{name}", layer, name, p, g


class _Stateful:
    """Per-parameter arrays ("slots") kept by the optimizer, created as zeros on first use."""

    slots = ()
    kernel = None  # nndl.fast has no fused form of these

    def __init__(self):
        self._state = {}

    def _slot(self, slot, key, p):
        """The ``slot`` array for parameter ``p``: zeros the first time, on p's device."""
        k = f"{slot}/{key}"
        s = self._state.get(k)
        if s is None:
            s = self._state[k] = backend.xp(p).zeros_like(p)
        elif backend.xp(s) is not backend.xp(p) or s.dtype != p.dtype:
            s = self._state[k] = backend.xp(p).asarray(s, dtype=p.dtype)  # loaded from a file
        return s

    def state(self):
        return dict(self._state)

    def load_state(self, state):
        self._state = {k: v for k, v in state.items()}


class SGD:
    """p → p - η g, g = (1/m) Σ_x ∂C_x/∂p + ∂penalty/∂p  (ch. 1, eq. 20-21).

    With L2 this is network2's ``w → (1 - ηλ/n) w - (η/m) Σ_x ∂C_x/∂w``.  It has no
    state.
    """

    kernel = "sgd"  # nndl.fast's id for it (None: not fusable)
    slots = ()

    def step(self, layers, eta, m, reg=None, n=1):
        # In place: a step allocates nothing the size of a weight matrix (fresh memory
        # every step would page-fault; FC1000's weights are 4 MB in float32).  The
        # gradient is scaled where it lies: backprop overwrites it before it is read again.
        for layer in layers:
            for name, p, g in layer.parameters():
                if reg is not None and name in layer.regularized:
                    reg.decay(p, eta, n)          # L2: w → (1 - ηλ/n) w;  L1: w → w - (ηλ/n) sgn(w)
                g *= eta / m
                p -= g                            # p → p - (η/m) Σ_x ∂C_x/∂p

    def state(self):
        return {}

    def load_state(self, state):
        pass


class Momentum(_Stateful):
    """v → μv - η g,  p → p + v  (ch. 3, momentum-based gradient descent, eq. 107-108).

    μ is the book's "momentum coefficient" (1 - μ is the friction); μ = 0 is plain SGD.
    State: the velocity v of each parameter (slot ``"v"``).
    """

    slots = ("v",)  # the per-parameter state arrays a checkpoint holds

    def __init__(self, mu=0.9):
        super().__init__()
        self.mu = float(mu)

    @property
    def velocity(self):
        """{"layer/name": v}: the velocities, keyed like the parameters."""
        return {k[2:]: v for k, v in self._state.items() if k.startswith("v/")}

    def step(self, layers, eta, m, reg=None, n=1):
        for key, layer, name, p, g in _params(layers):
            v = self._slot("v", key, p)
            v *= self.mu
            v -= eta * _regularized_grad(layer, name, p, g, m, reg, n)
            p += v

    def load_state(self, state):
        # Checkpoints written before the other optimizers existed keyed v as "0/w".
        super().load_state({(k if k.startswith("v/") else f"v/{k}"): v for k, v in state.items()})


class Nesterov(_Stateful):
    """v → μv - η ∇C(p + μv),  p → p + v  (Nesterov's accelerated gradient).

    Momentum that looks ahead: the gradient is taken where the velocity is about to
    carry the parameters.  Backprop gives the gradient g at the stored parameters, so,
    as in Sutskever et al. (2013) and every library, the stored parameters are taken to
    *be* the look-ahead point p̃ = p + μv, and the same rule reads::

        v → μv - η g,   p̃ → p̃ + μv - η g      (the new v on the right)

    State: the velocity v (slot ``"v"``).
    """

    slots = ("v",)  # the per-parameter state arrays a checkpoint holds

    def __init__(self, mu=0.9):
        super().__init__()
        self.mu = float(mu)

    def step(self, layers, eta, m, reg=None, n=1):
        for key, layer, name, p, g in _params(layers):
            v = self._slot("v", key, p)
            grad = _regularized_grad(layer, name, p, g, m, reg, n)
            v *= self.mu
            v -= eta * grad
            p += self.mu * v - eta * grad


class AdaGrad(_Stateful):
    """G → G + g²,  p → p - η g / (√G + ε)  (Duchi, Hazan and Singer, 2011).

    Each parameter gets its own learning rate, η/√(sum of its squared gradients so
    far), so rarely-changed parameters keep learning fast and the steps shrink over
    time.  State: G (slot ``"G"``).
    """

    slots = ("G",)  # the per-parameter state arrays a checkpoint holds

    def __init__(self, eps=1e-8):
        super().__init__()
        self.eps = float(eps)

    def step(self, layers, eta, m, reg=None, n=1):
        for key, layer, name, p, g in _params(layers):
            G = self._slot("G", key, p)
            grad = _regularized_grad(layer, name, p, g, m, reg, n)
            G += grad * grad
            p -= eta * grad / (backend.xp(G).sqrt(G) + self.eps)


class RMSProp(_Stateful):
    """E → ρE + (1 - ρ) g²,  p → p - η g / (√E + ε)  (Hinton's lecture 6e, 2012).

    AdaGrad with a leaky average instead of a sum, so the steps do not shrink forever.
    State: the running mean square E (slot ``"E"``).
    """

    slots = ("E",)  # the per-parameter state arrays a checkpoint holds

    def __init__(self, rho=0.9, eps=1e-8):
        super().__init__()
        self.rho, self.eps = float(rho), float(eps)

    def step(self, layers, eta, m, reg=None, n=1):
        for key, layer, name, p, g in _params(layers):
            E = self._slot("E", key, p)
            grad = _regularized_grad(layer, name, p, g, m, reg, n)
            E *= self.rho
            E += (1 - self.rho) * grad * grad
            p -= eta * grad / (backend.xp(E).sqrt(E) + self.eps)


class Adam(_Stateful):
    """m → β₁m + (1-β₁)g,  v → β₂v + (1-β₂)g²,  p → p - η m̂ / (√v̂ + ε)  (Kingma and Ba, 2015).

    m̂ = m / (1 - β₁ᵗ) and v̂ = v / (1 - β₂ᵗ) undo the bias of starting m and v at zero,
    t counting the steps taken (1 on the first).  Momentum (m) plus RMSProp (v).
    State: m and v per parameter (slots ``"m"``, ``"v"``) and the step count ``"t"``.
    """

    slots = ("m", "v")  # the per-parameter state arrays a checkpoint holds

    def __init__(self, beta1=0.9, beta2=0.999, eps=1e-8):
        super().__init__()
        self.beta1, self.beta2, self.eps = float(beta1), float(beta2), float(eps)
        self.t = 0

    def step(self, layers, eta, m, reg=None, n=1):
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        c1, c2 = 1 - b1 ** self.t, 1 - b2 ** self.t       # bias corrections
        for key, layer, name, p, g in _params(layers):
            mom, v = self._slot("m", key, p), self._slot("v", key, p)
            grad = _regularized_grad(layer, name, p, g, m, reg, n)
            mom *= b1
            mom += (1 - b1) * grad
            v *= b2
            v += (1 - b2) * grad * grad
            p -= eta * (mom / c1) / (backend.xp(v).sqrt(v / c2) + self.eps)

    def state(self):
        return {**self._state, "t": np.array([self.t], dtype=np.int64)}  # (1,): files keep no 0-d arrays

    def load_state(self, state):
        state = dict(state)
        self.t = int(backend.to_numpy(state.pop("t", 0)).reshape(-1)[0])
        super().load_state(state)
