"""The Network: a stack of layers trained by mini-batch stochastic gradient descent.

This is the book's ``network2.Network`` (chapters 1-3) made layer-based and
fully matrix-based: a whole mini-batch goes through ``backprop`` at once, as the
chapter 2 exercise suggests.  The same class is chapter 6's convolutional nets,
because every layer speaks the protocol of :class:`nndl.layers.Layer`.

This module is the model: layers, ``feedforward``, ``backprop``, ``update_mini_batch``,
evaluation, save and load.  The loop over epochs (monitors, early stopping, the eta
schedule, checkpoints, divergence) is :mod:`nndl.training`, which ``SGD`` hands over
to; the faster ways of computing the same thing are :mod:`nndl.fast`.
"""
import os

import numpy as np

from . import backend, costs, fast, inputs, io, training
from . import regularization as _reg
from .errors import ConfigError, DivergenceError, FormatError, ShapeError
from .layers import LAYER_TYPES, Dense, Layer
from .optimizers import SGD as PlainSGD
from .training import History  # noqa: F401  (the name SGD returns)

class Network:
    """A stack of layers: ``a^l = layer_l(a^{l-1})``, trained to minimise ``cost``.

    Parameters
    ----------
    layers : list of int or list of Layer
        ``[784, 30, 10]`` is shorthand for ``[Dense(784, 30), Dense(30, 10)]`` with
        ``activation`` in the hidden layers and ``output_activation`` (default: the same)
        in the last; or any list of layers (:mod:`nndl.layers`, :mod:`nndl.conv`).
    cost : str or cost class, default CrossEntropyCost
        ``"quadratic"``, ``"cross-entropy"``, ``"log-likelihood"`` or a class with
        ``fn(a, y)`` and ``delta(z, a, y, activation)`` (:mod:`nndl.costs`).
    init : {"default", "large", "zeros"} or callable
        Starting weights of the shorthand's Dense layers: N(0, 1/n_in), N(0, 1), zeros.
    activation, output_activation : str or activation class
        For the shorthand: ``"sigmoid"`` (default), ``"tanh"``, ``"relu"``, ...
    dtype : {"float64", "float32"}, optional
        float64 on the CPU, float32 on a GPU by default.
    seed : int, optional; rng : numpy.random.Generator, optional
        One seed fixes a run: the starting parameters, the shuffling and dropout.
    input_shape : tuple of int, optional
        Per-example input shape, e.g. ``(1, 28, 28)``; inferred from the first layer.
    backend : {"numpy", "cupy"}, optional
        Where the arrays live; default ``$NNDL_BACKEND``, else numpy.

    Layers are built, and their shapes checked against each other, here.
    """

    def __init__(self, layers, cost=costs.CrossEntropyCost, init="default",
                 activation="sigmoid", output_activation=None, dtype=None,
                 seed=None, rng=None, input_shape=None, backend=None):
        self.cost = costs.get(cost)
        self.xp, self.dtype = _placement(backend, dtype)  # xp: numpy or cupy
        if seed is not None:
            seed = inputs.check_count(seed, "seed")
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        self.layers = _layers(layers, init, activation, output_activation)
        self.input_shape = _input_shape(self.layers[0], input_shape)
        self.layers[0].input_grad = False  # nothing upstream needs ∂C/∂(input)
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.build(shape, self.rng, self.dtype)
            except ShapeError as e:
                raise ShapeError(f"layer {i} ({type(layer).__name__}): {e}") from None
            layer.to(self.xp)                                  # drawn on the host, moved once
        self.output_shape = tuple(shape)
        if self.layers[-1].activation is None:
            raise ConfigError(f"the last layer must have an activation (Dense, softmax ...), "
                              f"got {self.layers[-1]!r}")
        self.optimizer = PlainSGD()
        self.n_train = None

    def __repr__(self):
        rows = "".join(f"\n  ({i}) {layer!r}" for i, layer in enumerate(self.layers))
        return (f"Network(input_shape={self.input_shape}, cost={self.cost.__name__}, "
                f"dtype={np.dtype(self.dtype).name}, backend={backend.name(self.xp)}){rows}")

    # -- the book's attribute names -------------------------------------------------
    @property
    def sizes(self):
        dense = [l for l in self.layers if isinstance(l, Dense)]
        return [dense[0].n_in] + [l.n_out for l in dense] if dense else []

    @property
    def num_layers(self):
        return len(self.sizes)

    @property
    def weights(self):
        """The weight matrices (n_out, n_in), as views: changing them changes the net."""
        return [l.w for l in self.layers if isinstance(l, Dense)]

    @property
    def biases(self):
        """The bias vectors as (n_out, 1) columns, as in the book (views)."""
        return [l.b.reshape(-1, 1) for l in self.layers if isinstance(l, Dense)]

    def default_weight_initializer(self):
        """Redraw weights N(0, 1/n_in), biases N(0, 1)  (ch. 3)."""
        self._reinit("default")

    def large_weight_initializer(self):
        """Redraw weights and biases N(0, 1), as chapter 1 did."""
        self._reinit("large")

    def _reinit(self, init):
        for layer in self.layers:
            if isinstance(layer, Dense):
                layer.init = init
                layer.initialize(self.rng, self.dtype)
                layer.to(self.xp)

    # -- devices --------------------------------------------------------------------
    def to_backend(self, name):
        """Move parameters, gradients and optimizer state to ``name`` ("numpy" or "cupy").

        The dtype stays as it is.  Returns the network.
        """
        xp = _placement(name, self.dtype)[0]
        for layer in self.layers:
            layer.to(xp)
        state = self.optimizer.state()
        if state:
            self.optimizer.load_state({k: backend.move(v, xp) for k, v in state.items()})
        self.xp = xp
        return self

    def to_gpu(self):
        """Move the network onto the GPU (CuPy); see :meth:`to_backend`."""
        return self.to_backend("cupy")

    def to_cpu(self):
        """Move the network back to the CPU (numpy); see :meth:`to_backend`."""
        return self.to_backend("numpy")

    # -- forward and backward: the book's algorithm ---------------------------------
    def feedforward(self, x, train=False):
        """Output activations for a batch: (N, *input_shape) -> (N, *output_shape).

        ``x`` must have the network's input size per example (a ShapeError otherwise);
        host inputs are moved to the network's device.  ``train=True`` keeps what
        ``backprop`` needs and applies dropout.
        """
        a = backend.move(x, self.xp)
        if a.ndim < 1 or int(np.prod(a.shape[1:])) != int(np.prod(self.input_shape)):
            raise ShapeError(f"feedforward: expected examples of shape {self.input_shape}, "
                             f"got an array of shape {a.shape}")
        if a.dtype != self.dtype:
            a = inputs.examples(self, a, "feedforward")  # a dtype to check and convert
        for layer in self.layers:
            a = layer.forward(a, train)
        return a

    def backprop(self, x, y):
        """Fill every layer's ``nabla_*`` with ∂C/∂p of the cost summed over the batch.

        The book's four equations, for a whole mini-batch at once:

        ====  ==========================================  ======================================
        BP1   δ^L = ∇_a C ⊙ σ'(z^L)                        ``cost.delta`` (nndl/costs.py)
        BP2   δ^l = ((w^{l+1})ᵀ δ^{l+1}) ⊙ σ'(z^l)          ``layer.backward`` → ``activation.grad``
                                                            and ``Dense.backward_from_delta``
        BP3   ∂C/∂b = δ                                     ``Dense.backward_from_delta`` (nabla_b)
        BP4   ∂C/∂w = a_in δ                                ``Dense.backward_from_delta`` (nabla_w)
        ====  ==========================================  ======================================

        (Convolutions: ``Conv2D`` / ``ConvPoolLayer._backward`` in nndl/conv.py.)

        Parameters
        ----------
        x : array (N, *input_shape)
        y : array (N, n_out)
            Targets (one-hot rows for classes).

        Returns
        -------
        array (N, n_out)
            The output activations.
        """
        a = self.feedforward(x, train=True)
        out = self.layers[-1]
        grad = out.backward_from_delta(self.cost.delta(out.z, a, y, out.activation))  # BP1
        for layer in reversed(self.layers[:-1]):
            grad = layer.backward(grad)                        # BP2, layer by layer
        return a

    def update_mini_batch(self, x, y, eta, lmbda=0.0, n=None, regularization="L2"):
        """One gradient step on a mini-batch: w → w - (η/m) Σ_x ∂C_x/∂w (+ the penalty's).

        Parameters
        ----------
        x, y : arrays (m, *input_shape), (m, n_out)
        eta : float
            The learning rate η.
        lmbda : float; regularization : "L2", "L1", an L1/L2 instance, or None
        n : int, optional
            The training-set size, for the penalty's λ/n (default m).

        Raises DivergenceError, before changing any weight, when the output is NaN,
        infinite or too large to square.
        """
        m = len(x)
        reg = regularization if hasattr(regularization, "grad") else \
            _reg.get(regularization, lmbda)
        a = self.backprop(x, y)
        self._step(a, eta, m, reg, n or m)

    def _step(self, a, eta, m, reg, n):
        """The optimizer's update after ``backprop`` gave outputs ``a``, if they are sane."""
        xp = backend.xp(a)
        bound = float(np.sqrt(np.finfo(a.dtype).max)) * 1e-3  # its square must not overflow
        with np.errstate(invalid="ignore"):
            if not float(xp.abs(a).max()) <= bound:
                raise DivergenceError("the network's output is NaN, infinite or beyond "
                                      f"{bound:.3g}")
        self.optimizer.step(self.layers, eta, m, reg, n)

    # -- training -------------------------------------------------------------------
    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0,
            evaluation_data=None, monitor_evaluation_cost=False,
            monitor_evaluation_accuracy=False, monitor_training_cost=False,
            monitor_training_accuracy=False, early_stopping_n=0, schedule_n=0,
            test_data=None, regularization="L2", optimizer=None, verbose=True,
            progress=False, callback=None, fast=True, checkpoint=None, resume=False,
            on_divergence="raise"):
        """Train by mini-batch stochastic gradient descent (:func:`nndl.training.sgd`).

        The book's signature (network2's, plus network's ``test_data``): ``epochs``
        passes over ``training_data`` in shuffled mini-batches, each one
        :meth:`update_mini_batch` (→ :meth:`backprop`).

        Parameters
        ----------
        training_data : (X, y) arrays, or the book's list of (x, y) tuples
            X (n, *input_shape); y labels (n,) or targets (n, n_out).
        epochs, mini_batch_size : int
            Passes over the data; m (the last mini-batch of an epoch may be shorter).
        eta : float or callable
            The learning rate, or ``eta(epoch) -> float`` (chapter 3's exercise).
        lmbda : float; regularization : {"L2", "L1"} or an L1/L2 instance
            Penalty λ/2n Σw² (L2) or λ/n Σ|w| (L1), n the training-set size.
        evaluation_data, test_data : (X, y) or list, optional
            Watched by the monitors, early stopping and the schedule; ``test_data`` is
            chapter 1's: ``Epoch j: correct / total`` each epoch.
        monitor_evaluation_cost, monitor_evaluation_accuracy, monitor_training_cost, \
monitor_training_accuracy : bool
            What to record (and print) after each epoch.
        early_stopping_n, schedule_n : int
            Stop after that many epochs without a new best evaluation accuracy; halve eta
            after that many, stopping at eta/128 (0: off).
        optimizer : optional
            From :mod:`nndl.optimizers` (default plain SGD, the book's rule).
        verbose, progress : bool
            Print the book's per-epoch lines; show a progress bar (on a terminal).
        callback : callable, optional
            ``callback(epoch, net, history)`` after each epoch.
        fast : bool
            False forces the reference path where a faster lowering applies.
        checkpoint : path, optional; resume : bool
            Write the whole run state there after every epoch (atomically); continue
            from it: the same result as an unbroken run, a stopped run stays stopped,
            other settings are a ConfigError naming the setting.
        on_divergence : {"raise", "restore"}
            On a DivergenceError: raise it, or restore the epoch's starting state,
            halve eta and try again (until eta/128).

        Returns
        -------
        History
            Unpacks as the book's ``(evaluation_cost, evaluation_accuracy,
            training_cost, training_accuracy)``.
        """
        return training.sgd(
            self, training_data, epochs, mini_batch_size, eta, lmbda=lmbda,
            evaluation_data=evaluation_data, monitor_evaluation_cost=monitor_evaluation_cost,
            monitor_evaluation_accuracy=monitor_evaluation_accuracy,
            monitor_training_cost=monitor_training_cost,
            monitor_training_accuracy=monitor_training_accuracy,
            early_stopping_n=early_stopping_n, schedule_n=schedule_n, test_data=test_data,
            regularization=regularization, optimizer=optimizer, verbose=verbose,
            progress=progress, callback=callback, fast_path=fast, checkpoint=checkpoint,
            resume=resume, on_divergence=on_divergence)

    # -- evaluation -----------------------------------------------------------------
    def predict(self, x):
        """Predicted class of each example: (N, *input_shape) -> (N,) ints."""
        x = self._inputs(x, "x")
        return np.concatenate([backend.to_numpy(a.argmax(axis=1)) for _, a in fast.outputs(self, x)])

    def accuracy(self, data, convert=False):
        """Number of examples in ``data`` whose output's argmax is the right class.

        ``data`` is ``(X, y)`` arrays or the book's list of ``(x, y)`` tuples; ``y`` may be
        labels or one-hot rows (``convert`` is accepted for network2 compatibility).
        """
        x, labels, _ = self._prepare(data, "data")
        if labels is None:
            raise ConfigError("data: accuracy needs class labels or one-hot targets")
        return int((self.predict(x) == labels).sum())

    def evaluate(self, test_data):
        """The book's chapter 1 name for :meth:`accuracy`."""
        return self.accuracy(test_data)

    def total_cost(self, data, lmbda=0.0, convert=False, n=None, regularization="L2"):
        """Mean cost per example over ``data`` plus the regularization term, counted once.

        The penalty uses n = the training-set size (from the last ``SGD`` call, else
        ``n`` or ``len(data)``), so training and evaluation costs are comparable.  A
        cost too large for the dtype is ``inf`` (no warning).
        """
        x, _, y = self._prepare(data, "data")
        c = 0.0
        with np.errstate(over="ignore", invalid="ignore"):
            for k, a in fast.outputs(self, x):
                c += self.cost.fn(a, y[k:k + len(a)])
        c /= len(x)
        reg = regularization if hasattr(regularization, "penalty") else \
            _reg.get(regularization, lmbda)
        if reg is not None:
            with np.errstate(over="ignore", invalid="ignore"):
                c += reg.penalty(self._regularized_params(), n or self.n_train or len(x))
        return c

    def _regularized_params(self):
        return [p for l in self.layers for name, p, _ in l.parameters() if name in l.regularized]

    def _inputs(self, x, what):
        return inputs.examples(self, x, what)

    def _prepare(self, data, what):
        return inputs.dataset(self, data, what)

    # -- saving ---------------------------------------------------------------------
    def save(self, filename):
        """Write the network to ``filename`` (.npz, or .json like network2), atomically."""
        meta, arrays = self._spec()
        io.write_arrays(filename, meta, arrays)

    def _spec(self):
        """(JSON-able description, {name: host array}) of the network and its parameters."""
        return _spec(self)

    @classmethod
    def load(cls, filename, backend=None):
        """Read a network written by :meth:`save` (or the network of a checkpoint).

        ``backend`` ("numpy" or "cupy"; default ``NNDL_BACKEND``, else numpy) places it,
        whichever backend saved it: files hold host arrays.
        """
        return _load(cls, filename, backend)

    def _load_params(self, arrays, name):
        _load_params(self, arrays, name)


def _spec(net):
    arrays = {f"{i}/{name}": backend.to_numpy(p)
              for i, layer in enumerate(net.layers) for name, p, _ in layer.parameters()}
    meta = {
        "kind": "model",
        "cost": net.cost.__name__,
        "dtype": str(net.dtype),
        "input_shape": list(net.input_shape),
        "layers": [{"type": type(l).__name__, "config": l.config()} for l in net.layers],
    }
    return meta, arrays


def _load(cls, filename, backend_name):
    xp = _placement(backend_name, None)[0]  # a missing GPU is a ConfigError, not a bad file
    meta, arrays = io.read_arrays(filename, expect=_expected_arrays)
    name = os.path.basename(os.fspath(filename))
    try:
        layers = [LAYER_TYPES[spec["type"]](**spec["config"]) for spec in meta["layers"]]
        net = cls(layers, cost=meta["cost"], dtype=meta["dtype"],
                  input_shape=meta["input_shape"], rng=np.random.default_rng(0), backend=xp)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise FormatError(f"{name}: bad layer description ({type(e).__name__}: {e})") from None
    net._load_params(arrays, name)
    return net


def _expected_arrays(meta):
    """``{name: (shape, dtype)}`` that a file's description implies, so that its arrays'
    headers are checked before any array is read (a hostile description, say
    n_out = 10**12, makes no layer allocate: constructors allocate nothing)."""
    dtype = backend.as_dtype(meta["dtype"])
    return {f"{i}/{pname}": (shape, dtype)
            for i, spec in enumerate(meta["layers"])
            for pname, shape in LAYER_TYPES[spec["type"]](**spec["config"]).parameter_shapes().items()}


def _load_params(net, arrays, name):
    for i, layer in enumerate(net.layers):
        for pname, p, _ in layer.parameters():
            key = f"{i}/{pname}"
            if key not in arrays:
                raise FormatError(f"{name}: missing array {key}")
            a = arrays[key]
            if a.shape != p.shape:
                raise FormatError(f"{name}: array {key} has shape {a.shape}, expected {p.shape}")
            if not np.isfinite(a).all():
                raise FormatError(f"{name}: array {key} holds NaN or infinite values")
            p[...] = backend.move(a, backend.xp(p))


def _layers(layers, init, activation, output_activation):
    """The list of layers, from layers or from the sizes shorthand."""
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__iter__"):
        raise ConfigError(f"layers: expected a list of layer sizes or layers, got {layers!r}")
    layers = list(layers)
    if not layers:
        raise ConfigError("layers: expected a list of layer sizes or layers, got an empty list")
    if not any(isinstance(l, Layer) for l in layers):
        sizes = [inputs.check_count(s, f"sizes[{i}]") for i, s in enumerate(layers)]
        if len(sizes) < 2 or min(sizes) < 1:
            raise ConfigError(f"sizes: expected at least two positive sizes, got {sizes}")
        out_act = output_activation or activation
        return [Dense(n_in, n_out, activation if k < len(sizes) - 2 else out_act, init=init)
                for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]
    for i, layer in enumerate(layers):
        if not isinstance(layer, Layer):
            raise ConfigError(f"layers[{i}]: expected a layer or an int size, got {layer!r}")
    return layers


def _input_shape(first, input_shape):
    if input_shape is None:
        input_shape = first.input_shape_hint()
        if input_shape is None:
            raise ConfigError(f"input_shape: cannot infer it from {first!r}; pass input_shape=")
    return tuple(inputs.check_count(s, "input_shape", minimum=1) for s in input_shape)


def _placement(name, dtype):
    """(array module, dtype) of a network: the dtype defaults to float64 on numpy, float32 on a GPU."""
    xp = backend.array_module(name)
    return xp, (backend.default_dtype(xp) if dtype is None else backend.as_dtype(dtype))
