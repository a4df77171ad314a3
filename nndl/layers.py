"""Layers: each owns its forward pass and, right below it, its backward pass.

Every layer speaks the protocol that :class:`Layer` declares, with its defaults:

==========================  ===============================================================
``build(shape, rng, dtype)`` check the per-example input shape, allocate parameters,
                             return the output shape
``forward(a_in, train)``     (N, *in) -> (N, *out); keeps on ``self`` what backward needs
``backward(grad_a)``         ∂C/∂a_out -> ∂C/∂a_in (BP2), filling the ``nabla_*``
``backward_from_delta(δ)``   layers with an ``activation``: entered with δ = ∂C/∂z, as the
                             cost hands the output layer δ^L (BP1)
``parameters()``             ``(name, value, gradient)`` triples for the optimizer
``regularized``              names of the parameters L1/L2 act on (weights, never biases)
``input_grad``               False: ∂C/∂a_in is not needed (the first layer), skip it
``config()``                 constructor arguments, JSON-able, for save/load
``input_shape_hint()``       the per-example input shape this layer implies, or None
==========================  ===============================================================

and five declarations that only :mod:`nndl.fast` reads: ``kernel`` (the fused path's
id for this layer, None: not fusable), ``input_dropout`` (the probability with which a
``"dense-dropout"`` layer drops each input in training) and ``input_keep_scale`` (the
factor on the inputs it keeps: 1/(1-p) for inverted dropout, 1 for the book's),
``stochastic`` (draws randomness in training) and ``parallel_batches`` (a pass long
enough to pay for cutting its batch in shards).
Each subclass registers itself by name as it is defined (:data:`LAYER_TYPES`), so a
saved network can name its layers without a hard-coded list.

Dense layers implement chapters 1-3; convolution and pooling (chapter 6) live in
:mod:`nndl.conv` and follow the same protocol.
"""
import copy

import numpy as np

from . import activations, backend
from .errors import ConfigError, DataError, ShapeError

#: Layer classes by name, filled as each subclass of :class:`Layer` is defined.
LAYER_TYPES = {}


class Layer:
    """Base class: a layer without parameters, whose output shape equals its input's."""

    regularized = ()      # names of the parameters that L1/L2 act on
    activation = None     # a layer with an activation can be a network's output layer
    input_grad = True     # False: backward may skip ∂C/∂a_in and return None
    w_shape = None        # the weights' shape, known before build (checked on load)
    kernel = None         # nndl.fast's id for this layer; None: not fusable
    input_dropout = 0.0   # the probability of dropping each input in training (nndl.fast)
    input_keep_scale = 1.0  # the factor on the inputs kept in training (nndl.fast)
    stochastic = False    # draws randomness in training (dropout): never run in shards
    parallel_batches = False  # a pass long enough to pay for cutting its batch (nndl.fast)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            LAYER_TYPES[cls.__name__] = cls

    def build(self, input_shape, rng, dtype):
        """Check the per-example ``input_shape``, allocate parameters; return the output shape."""
        self.input_shape = tuple(input_shape)
        self.rng = rng
        return self.input_shape

    def input_shape_hint(self):
        """The per-example input shape this layer implies before it is built, or None."""
        return None

    def forward(self, a_in, train=False):
        """(N, ...) -> (N, ...): the identity."""
        return a_in

    def backward(self, grad_a):
        """∂C/∂a_out -> ∂C/∂a_in: the identity."""
        return grad_a

    def parameters(self):
        """``[(name, value, gradient), ...]``: what the optimizer updates."""
        return []

    def to(self, xp):
        """Put each parameter ``self.<name>`` and its gradient ``self.nabla_<name>`` on
        array module ``xp``'s device (numpy: the host); return the layer."""
        for name, p, g in self.parameters():
            setattr(self, name, backend.move(p, xp))
            setattr(self, f"nabla_{name}", backend.move(g, xp))
        return self

    def parameter_shapes(self):
        """``{name: shape}`` of the parameters, known before build (a loaded file's
        arrays are checked against it before any is read)."""
        return {} if self.w_shape is None else {"w": tuple(self.w_shape), "b": (self.w_shape[0],)}

    def replica(self):
        """A copy sharing this layer's parameters, with its own gradients and per-pass
        state, so that several can run forward and backward at once (nndl.fast.shards)."""
        r = copy.copy(self)
        for name, p, g in self.parameters():
            setattr(r, f"nabla_{name}", backend.xp(g).zeros_like(g))
        return r

    def config(self):
        """Constructor arguments, JSON-able, for :meth:`Network.save`."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def _check_input(a_in, what, n_values=None):
    """``a_in`` if it is a batch of real floating-point examples (with ``n_values`` values
    each, when given), else an nndl error: layers are public, and what they hand on may
    reach compiled kernels."""
    dtype = getattr(a_in, "dtype", None)
    if dtype is None or dtype.kind != "f":
        raise DataError(f"{what}: expected a floating-point array, got "
                        f"{type(a_in).__name__} of dtype {dtype}")
    if a_in.ndim < 1 or (n_values is not None and int(np.prod(a_in.shape[1:])) != n_values):
        raise ShapeError(f"{what}: expected examples of {n_values} values, got an array of "
                         f"shape {a_in.shape}")
    return a_in


def _init_normal(rng, shape, std, dtype):
    return (rng.standard_normal(shape) * std).astype(dtype)


class Dense(Layer):
    """a = σ(z), z = a_in wᵀ + b  (ch. 1-2): every input feeds every output.

    Parameters
    ----------
    n_in, n_out : int
        Inputs and outputs per example; ``w`` has shape (n_out, n_in), so ``w[j, k]`` is
        the book's w^l_jk, and ``b`` (n_out,).
    activation : str or activation class
        σ: ``"sigmoid"`` (default), ``"tanh"``, ``"relu"``, ``"identity"``, ``"softmax"``.
    init : {"default", "large", "zeros"} or callable
        Starting weights N(0, 1/n_in) (chapter 3's), N(0, 1) (chapter 1's), or zeros;
        biases N(0, 1) (zero with ``"zeros"``); or ``init(rng, shape, dtype) -> (w, b)``.
    bias : bool
        False: no bias (b stays 0 and is not a parameter).

    Shapes: (N, n_in), or any (N, ...) with n_in values per example (flattened, so a
    Dense layer can follow a convolution directly) -> (N, n_out).
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

    @property
    def kernel(self):
        """The fused path runs biased Dense layers (nndl.fast.dense)."""
        return "dense" if self.bias else None

    def input_shape_hint(self):
        return (self.n_in,)

    def parameter_shapes(self):
        shapes = {"w": (self.n_out, self.n_in)}
        if self.bias:
            shapes["b"] = (self.n_out,)
        return shapes

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
        _check_input(a_in, type(self).__name__, self.n_in)
        self.a_in = a_in.reshape(len(a_in), self.n_in)     # (N, n_in)
        self.z = self.a_in @ self.w.T                       # (N, n_out)
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
        # BP4: δᵀ a_in, (n_out, n_in), into the array kept from the last step (a fresh
        # one each step would be fresh memory, page faults and all, for a big layer)
        self.nabla_w = backend.xp(delta).matmul(delta.T, self.a_in, out=self.nabla_w)
        if not self.input_grad:
            return None
        grad_in = delta @ self.w                            # BP2: wᵀδ, (N, n_in)
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

    Parameters
    ----------
    p : float
        The probability of dropping each unit, 0 <= p < 1.
    mask_fn : callable, optional
        ``mask_fn(shape, rng)`` -> a 0/1 keep-mask, instead of drawing one (tests use it
        to freeze the mask).
    inverted : bool
        True (default): *inverted* dropout, the kept units scaled by 1/(1-p) in training
        and evaluation untouched.  False: the book's (network3's), the kept units
        unscaled in training and the units scaled by (1-p) in evaluation, which is the
        book's "halve the outgoing weights".  Both give the next layer the same expected
        input, but not the same gradients: inverted dropout's steps through the dropped
        units are 1/(1-p) times larger at the same eta.

    Shapes: (N, ...) -> (N, ...).  Each unit is dropped with probability ``p``.
    """

    def __init__(self, p=0.5, mask_fn=None, inverted=True):
        p = _probability(p, "Dropout p")
        self.p = p
        self.inverted = bool(inverted)
        self.mask_fn = mask_fn
        self.rng = None  # set by Network; a standalone layer draws from a fresh generator

    def forward(self, a_in, train=False):
        """(N, ...) -> (N, ...)."""
        if not train or self.p == 0.0:
            self.mask = None
            return a_in if self.inverted or self.p == 0.0 else a_in * a_in.dtype.type(1.0 - self.p)
        if self.rng is None:
            self.rng = np.random.default_rng()
        # The mask is drawn on the host from the seeded Generator (the same on every
        # backend) and moved to a_in's device.
        if self.mask_fn is not None:
            keep = backend.xp(a_in).asarray(self.mask_fn(a_in.shape, self.rng))
        else:
            keep = backend.xp(a_in).asarray(self.rng.random(a_in.shape) >= self.p)
        self.mask = keep.astype(a_in.dtype)
        if self.inverted:
            self.mask *= a_in.dtype.type(self.keep_scale)
        return a_in * self.mask

    @property
    def keep_scale(self):
        """The factor on the kept units in training: 1/(1-p) (inverted), or 1 (the book's)."""
        return 1.0 / (1.0 - self.p) if self.inverted else 1.0

    @property
    def stochastic(self):
        return self.p > 0.0

    def backward(self, grad_a):
        """∂C/∂a_out -> ∂C/∂a_in: through the same mask."""
        return grad_a if self.mask is None else grad_a * self.mask

    def config(self):
        return {"p": self.p} if self.inverted else {"p": self.p, "inverted": False}


def _probability(p, what):
    """``p`` as a float in [0, 1), or a ConfigError naming ``what``."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{what}: expected a number 0 <= p < 1, got {p!r}")
    p = float(p)
    if not 0.0 <= p < 1.0:
        raise ConfigError(f"{what}: expected 0 <= p < 1, got {p}")
    return p


class Flatten(Layer):
    """(N, C, H, W) -> (N, C·H·W): a reshape, and its inverse on the way back."""

    def build(self, input_shape, rng, dtype):
        super().build(input_shape, rng, dtype)
        return (int(np.prod(self.input_shape)),)

    def forward(self, a_in, train=False):
        return a_in.reshape(len(a_in), -1)                  # (N, C·H·W)

    def backward(self, grad_a):
        return grad_a.reshape((len(grad_a),) + self.input_shape)
