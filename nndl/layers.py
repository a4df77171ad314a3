"""Layers: each owns its forward pass and, right below it, its backward pass.

``forward(a_in, train)`` keeps on ``self`` what ``backward`` needs; ``backward(grad_a)``
takes ∂C/∂a_out, fills the layer's ``nabla_*`` and returns ∂C/∂a_in.  Layers with an
activation also have ``backward_from_delta(delta)``, entered with δ = ∂C/∂z directly,
because the cost hands the output layer δ^L (BP1).  ``parameters()`` lists
``(name, value, gradient)`` triples for the optimizer; weights are named ``w`` and are
the only parameters regularization touches.

Dense layers implement chapters 1-3; convolution and pooling (chapter 6) live in
:mod:`nndl.conv` and follow the same protocol.
"""
import numpy as np

from . import activations, backend, shards
from .errors import ConfigError, ShapeError


class Layer:
    """Base class: a layer without parameters, whose output shape equals its input's."""

    regularized = ()  # names of the parameters that L1/L2 act on

    def build(self, input_shape, rng, dtype):
        """Check the per-example ``input_shape``, allocate parameters; return the output shape."""
        self.input_shape = tuple(input_shape)
        self.rng = rng
        return self.input_shape

    def parameters(self):
        return []

    def to(self, xp):
        """Put each parameter ``self.<name>`` and its gradient ``self.nabla_<name>`` on
        array module ``xp``'s device (numpy: the host); return the layer."""
        for name, p, g in self.parameters():
            setattr(self, name, backend.move(p, xp))
            setattr(self, f"nabla_{name}", backend.move(g, xp))
        return self

    def config(self):
        """Constructor arguments, JSON-able, for :meth:`Network.save`."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _init_normal(rng, shape, std, dtype):
    return (rng.standard_normal(shape) * std).astype(dtype)


class Dense(Layer):
    """a = σ(z), z = a_in wᵀ + b  (ch. 1-2): every input feeds every output.

    ``w`` has shape (n_out, n_in), so ``w[j, k]`` is the book's w^l_jk.  ``init`` picks
    the starting weights: ``"default"`` N(0, 1/n_in) (chapter 3's improved
    initialization), ``"large"`` N(0, 1) (chapter 1's), or ``"zeros"``; biases start
    N(0, 1) (zero with ``"zeros"``).  An input of any per-example shape whose size is
    ``n_in`` is flattened, so a Dense layer can follow a convolution directly.
    """

    regularized = ("w",)

    def __init__(self, n_in, n_out, activation="sigmoid", init="default", bias=True):
        self.n_in, self.n_out = int(n_in), int(n_out)
        if self.n_in < 1 or self.n_out < 1:
            raise ConfigError(f"Dense: n_in and n_out must be >= 1, got n_in={n_in}, n_out={n_out}")
        self.activation = activations.get(activation)
        if init not in ("default", "large", "zeros") and not callable(init):
            raise ConfigError(f"Dense init: expected 'default', 'large', 'zeros' or a callable, got {init!r}")
        self.init = init
        self.bias = bool(bias)
        self.w = self.b = None

    @property
    def w_shape(self):
        """The shape of ``w``, known before the layer is built."""
        return (self.n_out, self.n_in)

    def build(self, input_shape, rng, dtype):
        super().build(input_shape, rng, dtype)
        if int(np.prod(self.input_shape)) != self.n_in:
            raise ShapeError(
                f"Dense(n_in={self.n_in}): the previous layer gives {self.input_shape} "
                f"per example ({int(np.prod(self.input_shape))} values), expected {self.n_in}"
            )
        if self.w is None:
            self.initialize(rng, dtype)
        return (self.n_out,)

    def initialize(self, rng, dtype=np.float64):
        """Draw fresh weights and biases as ``self.init`` says."""
        shape = (self.n_out, self.n_in)
        if callable(self.init):
            self.w, self.b = self.init(rng, shape, dtype)
        elif self.init == "zeros":
            self.w, self.b = np.zeros(shape, dtype), np.zeros(self.n_out, dtype)
        else:
            std = 1.0 if self.init == "large" else 1.0 / np.sqrt(self.n_in)
            self.w = _init_normal(rng, shape, std, dtype)
            self.b = _init_normal(rng, (self.n_out,), 1.0, dtype)
        if not self.bias:
            self.b = np.zeros(self.n_out, dtype)
        self.nabla_w = np.zeros_like(self.w)
        self.nabla_b = np.zeros_like(self.b)

    def forward(self, a_in, train=False):
        """(N, n_in) or (N, ...) -> (N, n_out)."""
        self.a_in = a_in.reshape(len(a_in), self.n_in)     # (N, n_in)
        self.z = shards.matmul(self.a_in, self.w.T)         # (N, n_out)
        if self.bias:
            self.z += self.b
        self.a = self.activation.fn(self.z)
        return self.a

    def backward(self, grad_a):
        """∂C/∂a (N, n_out) -> ∂C/∂a_in, shaped like the input."""
        delta = self.activation.grad(self.z, self.a, grad_a)  # BP2: ⊙ σ'(z)
        return self.backward_from_delta(delta)

    def backward_from_delta(self, delta):
        """δ = ∂C/∂z (N, n_out) -> ∂C/∂a_in."""
        if self.bias:
            self.nabla_b = delta.sum(axis=0)                 # BP3
        self.nabla_w = shards.matmul_tn(delta, self.a_in)   # BP4: δᵀ a_in, (n_out, n_in)
        grad_in = shards.matmul(delta, self.w)              # BP2: wᵀδ, (N, n_in)
        return grad_in.reshape((len(delta),) + self.input_shape)

    def parameters(self):
        if not self.bias:
            return [("w", self.w, self.nabla_w)]
        return [("w", self.w, self.nabla_w), ("b", self.b, self.nabla_b)]

    def config(self):
        return {
            "n_in": self.n_in,
            "n_out": self.n_out,
            "activation": self.activation.__name__.lower(),
            "bias": self.bias,
        }


class Dropout(Layer):
    """a = a_in ⊙ mask / (1 - p) in training, a = a_in in evaluation  (ch. 3).

    Each unit is dropped with probability ``p``.  This is *inverted* dropout: the book
    trains with the kept units unscaled and then halves (for p = 0.5) the outgoing
    weights at evaluation; scaling the kept units by 1/(1-p) during training instead
    gives the same expected input to the next layer and leaves evaluation untouched.
    ``mask_fn(shape, rng)``, if given, returns the 0/1 keep-mask instead of drawing one:
    tests use it to freeze the mask.
    """

    def __init__(self, p=0.5, mask_fn=None):
        p = float(p)
        if not 0.0 <= p < 1.0:
            raise ConfigError(f"Dropout p: expected 0 <= p < 1, got {p}")
        self.p = p
        self.mask_fn = mask_fn
        self.rng = None  # set by Network; a standalone layer draws from a fresh generator

    def forward(self, a_in, train=False):
        """(N, ...) -> (N, ...)."""
        if not train or self.p == 0.0:
            self.mask = None
            return a_in
        if self.rng is None:
            self.rng = np.random.default_rng()
        # The mask is drawn on the host from the seeded Generator (the same on every
        # backend) and moved to a_in's device.
        if self.mask_fn is not None:
            keep = backend.xp(a_in).asarray(self.mask_fn(a_in.shape, self.rng))
        else:
            keep = backend.xp(a_in).asarray(self.rng.random(a_in.shape) >= self.p)
        self.mask = keep.astype(a_in.dtype) * a_in.dtype.type(1.0 / (1.0 - self.p))
        return a_in * self.mask

    def backward(self, grad_a):
        return grad_a if self.mask is None else grad_a * self.mask

    def config(self):
        return {"p": self.p}


class Flatten(Layer):
    """(N, C, H, W) -> (N, C·H·W): a reshape, and its inverse on the way back."""

    def build(self, input_shape, rng, dtype):
        super().build(input_shape, rng, dtype)
        return (int(np.prod(self.input_shape)),)

    def forward(self, a_in, train=False):
        return a_in.reshape(len(a_in), -1)                  # (N, C·H·W)

    def backward(self, grad_a):
        return grad_a.reshape((len(grad_a),) + self.input_shape)
