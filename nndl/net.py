"""The Network: a stack of layers trained by mini-batch stochastic gradient descent.

This is the book's ``network2.Network`` (chapters 1-3) made layer-based and
fully matrix-based: a whole mini-batch goes through ``backprop`` at once, as the
chapter 2 exercise suggests.  The same class trains chapter 6's convolutional nets,
because every layer speaks the same forward/backward protocol (:mod:`nndl.layers`).
"""
import os
import time

import numpy as np

from . import backend, costs, fastpath, io, shards
from . import regularization as _reg
from .errors import ConfigError, DataError, DivergenceError, FormatError, ShapeError
from .layers import Dense, Dropout, Flatten, Layer
from .conv import Conv2D, ConvPoolLayer, FullyConnectedLayer, L2Pool2D, MaxPool2D, SoftmaxLayer
from .optimizers import SGD as PlainSGD

_EVAL_BATCH = 1000  # examples per forward pass when evaluating
_FAST_FORWARD_MIN = 64  # batches at least this big evaluate through nndl.fastpath

# The layer classes a saved model may name (chapter 6 adds its layers here).
LAYER_TYPES = {c.__name__: c for c in (Dense, Dropout, Flatten, Conv2D, MaxPool2D, L2Pool2D,
                                         ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer)}


class History:
    """What ``SGD`` monitored, one entry per epoch.

    Unpacks like the book's return value::

        evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = net.SGD(...)

    Accuracies are counts of correct examples, as in the book; ``n_evaluation`` and
    ``n_training`` give the denominators.
    """

    def __init__(self):
        self.evaluation_cost, self.evaluation_accuracy = [], []
        self.training_cost, self.training_accuracy = [], []
        self.epoch_seconds, self.eta = [], []
        self.test_accuracy = []  # network3's test accuracy at new-best epochs (else None)
        self.n_evaluation = self.n_training = 0
        self.stopped_early = False

    def __iter__(self):
        return iter((self.evaluation_cost, self.evaluation_accuracy,
                     self.training_cost, self.training_accuracy))

    def __getitem__(self, i):
        return tuple(self)[i]

    def __len__(self):
        return 4

    def __repr__(self):
        return (f"History(evaluation_cost={self.evaluation_cost}, evaluation_accuracy="
                f"{self.evaluation_accuracy}, training_cost={self.training_cost}, "
                f"training_accuracy={self.training_accuracy})")

    def best_epoch(self):
        """Epoch of the highest evaluation accuracy (the first of ties), or None."""
        acc = self.evaluation_accuracy
        return int(np.argmax(acc)) if acc else None

    def to_dict(self):
        return {k: list(v) if isinstance(v, list) else v for k, v in vars(self).items()}

    @classmethod
    def from_dict(cls, d):
        h = cls()
        for k, v in d.items():
            if hasattr(h, k):
                setattr(h, k, list(v) if isinstance(v, list) else v)
        return h


class Network:
    """A stack of layers: ``a^l = layer_l(a^{l-1})``, trained to minimise ``cost``.

    ``Network([784, 30, 10])`` is shorthand for ``[Dense(784, 30), Dense(30, 10)]`` with
    sigmoid activations (``activation=``, ``output_activation=`` change that).  Pass a
    list of layers for anything else.  Layers are built, and their shapes checked
    against each other, here; parameters are drawn from ``numpy.random.default_rng(seed)``
    (or ``rng``), which also shuffles the mini-batches, so one seed fixes a whole run.

    ``backend`` says where the arrays live: ``"numpy"`` (the CPU) or ``"cupy"`` (a CUDA
    GPU), by default the ``NNDL_BACKEND`` environment variable, else numpy; ``to_gpu()``
    and ``to_cpu()`` move a network later.  ``dtype`` defaults to float64 on the CPU and
    float32 on a GPU.  Parameters are drawn on the host, so a seed gives the same
    network on either backend.
    """

    def __init__(self, layers, cost=costs.CrossEntropyCost, init="default",
                 activation="sigmoid", output_activation=None, dtype=None,
                 seed=None, rng=None, input_shape=None, backend=None):
        self.cost = costs.get(cost)
        self.xp, self.dtype = _placement(backend, dtype)  # xp: numpy or cupy
        self.rng = rng if rng is not None else np.random.default_rng(seed)
        layers = list(layers)
        if not layers:
            raise ConfigError("layers: expected a list of layer sizes or layers, got an empty list")
        if all(isinstance(s, (int, np.integer)) for s in layers):
            sizes = [int(s) for s in layers]
            if len(sizes) < 2 or min(sizes) < 1:
                raise ConfigError(f"sizes: expected at least two positive sizes, got {sizes}")
            out_act = output_activation or activation
            layers = [Dense(n_in, n_out, activation if k < len(sizes) - 2 else out_act, init=init)
                      for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:]))]
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ConfigError(f"layers[{i}]: expected a layer or an int size, got {layer!r}")
        self.layers = layers
        if input_shape is None:
            first = layers[0]
            input_shape = getattr(first, "input_shape", None) or (
                (first.n_in,) if hasattr(first, "n_in") else None)
            if input_shape is None:
                raise ConfigError(f"input_shape: cannot infer it from {first!r}; pass input_shape=")
        self.input_shape = tuple(int(s) for s in input_shape)
        self._build()
        out = self.layers[-1]
        if not hasattr(out, "backward_from_delta"):
            raise ConfigError(f"the last layer must have an activation (Dense, softmax ...), got {out!r}")
        self.optimizer = PlainSGD()
        self.n_train = None

    def _build(self):
        # Nothing upstream of the first layer needs ∂C/∂(input): skip computing it.
        if hasattr(self.layers[0], "input_grad"):
            self.layers[0].input_grad = False
        shape = self.input_shape
        for i, layer in enumerate(self.layers):
            try:
                shape = layer.build(shape, self.rng, self.dtype)
            except ShapeError as e:
                raise ShapeError(f"layer {i} ({type(layer).__name__}): {e}") from None
            layer.to(self.xp)                                  # drawn on the host, moved once
        self.output_shape = tuple(shape)

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

    # -- forward and backward -------------------------------------------------------
    def feedforward(self, x, train=False):
        """Output activations for a batch: (N, *input_shape) -> (N, *output_shape).

        The output is on the network's device; host inputs are moved there.
        """
        a = backend.move(x, self.xp)
        if not train and len(a) >= _FAST_FORWARD_MIN and fastpath.can_forward(self, a):
            return fastpath.forward(self, a)  # the fused kernels, for evaluation
        for layer in self.layers:
            a = layer.forward(a, train)
        return a

    def backprop(self, x, y):
        """Fill every layer's ``nabla_*`` with ∂C/∂p of the cost summed over the batch.

        x: (N, *input_shape) inputs; y: (N, n_out) targets (one-hot for classes).
        Returns the output activations (N, n_out).
        """
        a = self.feedforward(x, train=True)
        out = self.layers[-1]
        grad = out.backward_from_delta(self.cost.delta(out.z, a, y, out.activation))  # BP1
        for layer in reversed(self.layers[:-1]):
            grad = layer.backward(grad)                        # BP2, layer by layer
        return a

    def update_mini_batch(self, x, y, eta, lmbda=0.0, n=None, regularization="L2"):
        """One gradient step on a mini-batch (x, y) of arrays; n = training-set size."""
        m = len(x)
        reg = regularization if hasattr(regularization, "grad") else \
            _reg.get(regularization, lmbda)
        self.backprop(x, y)
        self.optimizer.step(self.layers, eta, m, reg, n or m)

    def _shards(self, batch):
        """A :func:`nndl.shards.session` where one pays: on the CPU, for batches big enough
        to cut, in a network with a layer that cuts them (``batch_shards``)."""
        return shards.session(self.xp is np and batch >= 2 * shards.MIN_SHARD
                              and any(getattr(layer, "batch_shards", False) for layer in self.layers))

    # -- evaluation -----------------------------------------------------------------
    def predict(self, x):
        """Predicted class of each example: (N, *input_shape) -> (N,) ints."""
        x = self._inputs(x, "x")
        with self._shards(min(len(x), _EVAL_BATCH)):
            return np.concatenate([backend.to_numpy(self.feedforward(x[k:k + _EVAL_BATCH]).argmax(axis=1))
                                   for k in range(0, len(x), _EVAL_BATCH)])

    def accuracy(self, data, convert=False):
        """Number of examples in ``data`` whose output's argmax is the right class.

        ``data`` is ``(X, y)`` arrays or the book's list of ``(x, y)`` tuples; ``y`` may be
        labels or one-hot rows (``convert`` is accepted for network2 compatibility).
        """
        x, labels, _ = self._prepare(data, "data")
        if labels is None:
            raise DataError("data: accuracy needs class labels or one-hot targets")
        return int((self.predict(x) == labels).sum())

    def evaluate(self, test_data):
        """The book's chapter 1 name for :meth:`accuracy`."""
        return self.accuracy(test_data)

    def total_cost(self, data, lmbda=0.0, convert=False, n=None, regularization="L2"):
        """Mean cost per example over ``data`` plus the regularization term, counted once.

        The penalty uses n = the training-set size (from the last ``SGD`` call, else
        ``n`` or ``len(data)``), so training and evaluation costs are comparable.
        """
        x, _, y = self._prepare(data, "data")
        c = 0.0
        with self._shards(min(len(x), _EVAL_BATCH)):
            for k in range(0, len(x), _EVAL_BATCH):
                c += self.cost.fn(self.feedforward(x[k:k + _EVAL_BATCH]), y[k:k + _EVAL_BATCH])
        c /= len(x)
        reg = regularization if hasattr(regularization, "penalty") else \
            _reg.get(regularization, lmbda)
        if reg is not None:
            c += reg.penalty(self._regularized_params(), n or self.n_train or len(x))
        return c

    def _regularized_params(self):
        return [p for l in self.layers for name, p, _ in l.parameters() if name in l.regularized]

    # -- data -----------------------------------------------------------------------
    def _inputs(self, x, what):
        if backend.xp(x) is np:
            x = np.asarray(x)
        if x.ndim == 0 or len(x) == 0:
            raise DataError(f"{what}: no examples")
        per = int(np.prod(self.input_shape))
        if x.shape[1:] != self.input_shape:
            if int(np.prod(x.shape[1:])) != per:
                raise ShapeError(f"{what}: expected examples of shape {self.input_shape} "
                                 f"({per} values), got {x.shape[1:]}")
            x = x.reshape((len(x),) + self.input_shape)
        if x.dtype != self.dtype:
            x = x.astype(self.dtype)
        return backend.move(x, self.xp)                        # to the network's device, once

    def _prepare(self, data, what):
        """``(X, labels or None, Y targets)`` from ``(X, y)`` arrays or a list of book tuples."""
        if isinstance(data, tuple) and len(data) == 2 and hasattr(data[0], "ndim") \
                and data[0].ndim >= 2 and _ndim(data[1]) >= 1:
            x, y = data
        else:
            pairs = list(data)
            if not pairs:
                raise DataError(f"{what}: no examples")
            try:
                x = np.stack([np.asarray(p[0]).reshape(-1) for p in pairs])
                ys = [np.asarray(p[1]) for p in pairs]
            except (TypeError, IndexError, ValueError) as e:
                raise DataError(f"{what}: expected (X, y) arrays or a list of (x, y) tuples ({e})") from None
            y = np.stack([v.reshape(-1) for v in ys]) if ys[0].size > 1 else \
                np.array([int(v) for v in ys])
        x = self._inputs(x, what)
        y = np.asarray(y) if backend.xp(y) is np else y
        if len(y) != len(x):
            raise ShapeError(f"{what}: {len(x)} inputs but {len(y)} labels/targets")
        if not backend.all_finite(x):
            raise DataError(f"{what}: inputs contain NaN or infinity")
        n_out = int(np.prod(self.output_shape))
        if y.ndim == 1:
            y = backend.to_numpy(y)  # labels are checked, and compared with predictions, on the host
            if not np.issubdtype(y.dtype, np.integer):
                if not np.all(np.isfinite(y)) or not np.all(y == np.round(y)):
                    raise DataError(f"{what}: labels must be integers, got dtype {y.dtype}")
                y = y.astype(np.int64)
            bad = (y < 0) | (y >= n_out)
            if bad.any():
                raise DataError(f"{what}: label {int(y[bad][0])} out of range [0, {n_out}) "
                                f"at index {int(np.flatnonzero(bad)[0])}")
            targets = np.zeros((len(y), n_out), self.dtype)
            targets[np.arange(len(y)), y] = 1
            return x, y, backend.move(targets, self.xp)
        if y.shape[1:] != (n_out,):
            raise ShapeError(f"{what}: targets of shape {y.shape[1:]}, expected ({n_out},)")
        if not bool(backend.xp(y).isfinite(y).all()):
            raise DataError(f"{what}: targets contain NaN or infinity")
        targets = backend.move(y.astype(self.dtype), self.xp)
        labels = backend.to_numpy(targets.argmax(axis=1)) if n_out > 1 else None
        return x, labels, targets

    # -- training -------------------------------------------------------------------
    def SGD(self, training_data, epochs, mini_batch_size, eta, lmbda=0.0,
            evaluation_data=None, monitor_evaluation_cost=False,
            monitor_evaluation_accuracy=False, monitor_training_cost=False,
            monitor_training_accuracy=False, early_stopping_n=0, schedule_n=0,
            test_data=None, regularization="L2", optimizer=None, verbose=True,
            progress=False, callback=None, fast=True, checkpoint=None, resume=False,
            on_divergence="raise"):
        """Train by mini-batch stochastic gradient descent; return a :class:`History`.

        The book's signature (network2, plus network's ``test_data``): ``epochs`` passes
        over ``training_data`` in mini-batches of ``mini_batch_size`` (the last one may be
        shorter), learning rate ``eta``, L2 strength ``lmbda`` (``regularization="L1"``
        for L1).  ``early_stopping_n`` stops after that many epochs without a new best
        evaluation accuracy; ``schedule_n`` halves eta after that many such epochs and
        stops when eta has fallen to eta/128 (chapter 3's exercises).  ``eta`` may also be
        a function ``eta(epoch) -> float`` (chapter 3's exercise: a learning rate that
        depends on the epoch); halvings then scale what it returns.  ``callback(epoch,
        net, history)`` runs after each epoch.  ``fast=False`` forces the layer-by-layer
        reference path even where the fused one (:mod:`nndl.fastpath`) applies.

        Reliability: ``checkpoint=PATH`` writes weights, optimizer and RNG state, epoch
        and history there (atomically) after every epoch; ``resume=True`` continues from
        that file, giving the same result as an uninterrupted run.  A non-finite output
        raises :class:`DivergenceError` naming the epoch and mini-batch
        (``on_divergence="raise"``), or with ``on_divergence="restore"`` puts back the
        state from the start of the epoch, halves eta and tries the epoch again.
        """
        backend.announce_compilation()  # a first run: one line on stderr while numba compiles
        x, _, y = self._prepare(training_data, "training_data")
        n = len(x)
        m = int(mini_batch_size)
        if m < 1 or m > n:
            raise ConfigError(f"mini_batch_size: expected 1 <= mini_batch_size <= {n} "
                              f"(the training-set size), got {mini_batch_size}")
        eta_fn = eta if callable(eta) else None
        if eta_fn is not None:
            eta = 1.0  # run.eta is then the factor halvings shrink: epoch j uses eta_fn(j) * run.eta
        if not eta > 0 or not np.isfinite(eta):
            raise ConfigError(f"eta: expected a positive learning rate, got {eta}")
        if not lmbda >= 0 or not np.isfinite(lmbda):
            raise ConfigError(f"lmbda: expected lmbda >= 0, got {lmbda}")
        if int(epochs) < 0:
            raise ConfigError(f"epochs: expected epochs >= 0, got {epochs}")
        if on_divergence not in ("raise", "restore"):
            raise ConfigError(f"on_divergence: expected 'raise' or 'restore', got {on_divergence!r}")
        chapter1_report = test_data is not None and evaluation_data is None
        if chapter1_report:
            evaluation_data, monitor_evaluation_accuracy = test_data, True
        if (early_stopping_n or schedule_n) and evaluation_data is None:
            raise ConfigError("early_stopping_n / schedule_n need evaluation_data to watch")
        ev = self._prepare(evaluation_data, "evaluation_data") if evaluation_data is not None else None
        reg = regularization if hasattr(regularization, "grad") else _reg.get(regularization, lmbda)
        if optimizer is not None:
            self.optimizer = optimizer
        self.n_train = n
        run = _Run(eta, History())
        run.history.n_training, run.history.n_evaluation = n, (len(ev[0]) if ev else 0)
        setup = {"n": n, "mini_batch_size": m, "eta": None if eta_fn else float(eta),
                 "lmbda": float(lmbda)}
        if resume and checkpoint is not None and os.path.exists(checkpoint):
            self._restore_checkpoint(checkpoint, run, setup)
            if verbose:
                print(f"Resuming from {checkpoint} at epoch {run.epoch}")
        train_epoch = self._epoch_trainer(x, y, m, reg, fast)
        bar = _progress(progress, n)
        while run.epoch < int(epochs):
            epoch = run.epoch
            eta_now = run.eta if eta_fn is None else _epoch_eta(eta_fn, epoch) * run.eta
            snapshot = self._snapshot() if on_divergence == "restore" else None
            if bar is not None:
                bar.reset()
                bar.set_description(f"Epoch {epoch}")
            start = time.perf_counter()
            try:
                train_epoch(epoch, eta_now, bar)
            except DivergenceError as e:
                if snapshot is None or run.eta / 2 < run.eta0 / 128:
                    if checkpoint is not None and os.path.exists(checkpoint):
                        e.args = (f"{e.args[0]}; the last good state is saved in {checkpoint}",)
                    raise
                self._put_back(snapshot)
                run.eta /= 2
                if verbose:
                    print(f"Epoch {epoch} diverged: restored its starting state, halving eta to {eta_now / 2}")
                continue
            history = run.history
            history.epoch_seconds.append(time.perf_counter() - start)
            history.eta.append(eta_now)
            lines = []
            if monitor_training_cost:
                history.training_cost.append(self.total_cost((x, y), lmbda, n=n, regularization=reg or "L2"))
                lines.append(f"Cost on training data: {history.training_cost[-1]}")
            if monitor_training_accuracy:
                history.training_accuracy.append(self.accuracy((x, y)))
                lines.append(f"Accuracy on training data: {history.training_accuracy[-1]} / {n}")
            acc = None
            if ev is not None:
                if monitor_evaluation_cost:
                    history.evaluation_cost.append(
                        self.total_cost((ev[0], ev[2]), lmbda, n=n, regularization=reg or "L2"))
                    lines.append(f"Cost on evaluation data: {history.evaluation_cost[-1]}")
                if monitor_evaluation_accuracy or early_stopping_n or schedule_n:
                    acc = int((self.predict(ev[0]) == ev[1]).sum())
                    history.evaluation_accuracy.append(acc)
                    lines.append(f"Accuracy on evaluation data: {acc} / {len(ev[0])}")
            if verbose:
                secs = history.epoch_seconds[-1]
                if chapter1_report:
                    print(f"Epoch {epoch}: {acc} / {len(ev[0])}  ({secs:.2f} s)")
                else:
                    print(f"Epoch {epoch} training complete ({secs:.2f} s)")
                    for line in lines:
                        print(line)
            eta_before = run.eta
            stop = run.after_epoch(acc, early_stopping_n, schedule_n)
            if verbose and stop:
                print(stop)
            elif verbose and schedule_n and run.eta != eta_before:
                print(f"Halving the learning rate to {run.eta}" if eta_fn is None else
                      f"Halving the learning rate to {run.eta} x eta(epoch)")
            if callback is not None:  # before the checkpoint, so what it records is kept
                callback(epoch, self, history)
            run.epoch += 1
            if checkpoint is not None:
                self._write_checkpoint(checkpoint, run, setup)
            if stop:
                break
        if bar is not None:
            bar.close()
        self.history = run.history
        return run.history

    def _epoch_trainer(self, x, y, m, reg, fast):
        """A function ``train_epoch(epoch, eta, bar)`` running one shuffled epoch."""
        n = len(x)
        if fast and isinstance(x, np.ndarray) and fastpath.eligible(self, self.optimizer, reg):
            fused = fastpath.FusedTrainer(self, m)
            xf = np.ascontiguousarray(x.reshape(n, -1))

            def train_epoch(epoch, eta, bar):
                perm = self.rng.permutation(n)
                # Whole runs of mini-batches per compiled call; the bar moves between them.
                for k in range(0, n, _FUSED_CHUNK * m):
                    stop = min(n, k + _FUSED_CHUNK * m)
                    bad = fused.run(xf, y, perm, k, stop, eta, reg, n)
                    if bad >= 0:
                        raise _diverged(epoch, k // m + bad, eta)
                    if bar is not None:
                        bar.update(stop - k)
            return train_epoch

        def train_epoch(epoch, eta, bar):
            perm = backend.move(self.rng.permutation(n), self.xp)  # drawn on the host
            with self._shards(m):
                for k in range(0, n, m):
                    idx = perm[k:k + m]
                    # A diverging net overflows; that is detected just below and
                    # reported with its epoch and mini-batch, not as a bare warning.
                    with np.errstate(over="ignore", invalid="ignore"):
                        a = self.backprop(x[idx], y[idx])
                    if not bool(backend.xp(a).isfinite(a).all()):
                        raise _diverged(epoch, k // m, eta)
                    self.optimizer.step(self.layers, eta, len(idx), reg, n)
                    if bar is not None and (k // m) % 50 == 49:
                        bar.update(min(50 * m, n - bar.n))
            if bar is not None:
                bar.update(n - bar.n)
        return train_epoch

    # -- state: snapshots and checkpoints ---------------------------------------------
    def _snapshot(self):
        """Copies of everything an epoch changes: parameters, optimizer and RNG state."""
        params = [p.copy() for l in self.layers for _, p, _ in l.parameters()]
        opt = {k: v.copy() for k, v in self.optimizer.state().items()}
        return params, opt, self.rng.bit_generator.state

    def _put_back(self, snapshot):
        params, opt, rng_state = snapshot
        for p, saved in zip((p for l in self.layers for _, p, _ in l.parameters()), params):
            p[...] = saved
        self.optimizer.load_state(opt)
        self.rng.bit_generator.state = rng_state

    def _write_checkpoint(self, path, run, setup):
        meta, arrays = self._spec()
        for k, v in self.optimizer.state().items():
            arrays[f"optimizer/{k}"] = backend.to_numpy(v)
        meta.update(kind="checkpoint", setup=setup, epoch=run.epoch, eta=run.eta, eta0=run.eta0,
                    best=run.best, since_best=run.since_best, history=run.history.to_dict(),
                    optimizer=type(self.optimizer).__name__,
                    rng=_jsonable_rng_state(self.rng.bit_generator.state))
        io.write_arrays(path, meta, arrays)

    def _restore_checkpoint(self, path, run, setup):
        meta, arrays = io.read_arrays(path)
        name = os.path.basename(os.fspath(path))
        if meta.get("kind") != "checkpoint":
            raise FormatError(f"{name}: a saved model, not a training checkpoint")
        if meta.get("layers") != self._spec()[0]["layers"]:
            raise ConfigError(f"{name}: the checkpoint holds a different network "
                              f"({[l['type'] for l in meta['layers']]}) than this one")
        for key in ("n", "mini_batch_size"):
            if meta["setup"].get(key) != setup[key]:
                raise ConfigError(f"{name}: the checkpoint was made with {key}={meta['setup'].get(key)}, "
                                  f"this run has {key}={setup[key]}")
        if meta.get("optimizer") != type(self.optimizer).__name__:
            raise ConfigError(f"{name}: the checkpoint was made with the {meta.get('optimizer')} "
                              f"optimizer, this run uses {type(self.optimizer).__name__}")
        self._load_params(arrays, name)
        self.optimizer.load_state({k[len("optimizer/"):]: v for k, v in arrays.items()
                                   if k.startswith("optimizer/")})
        self.rng.bit_generator.state = meta["rng"]
        run.epoch, run.eta, run.eta0 = int(meta["epoch"]), float(meta["eta"]), float(meta["eta0"])
        run.best, run.since_best = int(meta["best"]), int(meta["since_best"])
        run.history = History.from_dict(meta["history"])

    # -- saving ---------------------------------------------------------------------
    def save(self, filename):
        """Write the network to ``filename`` (.npz, or .json like network2), atomically."""
        meta, arrays = self._spec()
        io.write_arrays(filename, meta, arrays)

    def _spec(self):
        """(JSON-able description, {name: host array}) of the network and its parameters."""
        arrays = {f"{i}/{name}": backend.to_numpy(p)
                  for i, layer in enumerate(self.layers) for name, p, _ in layer.parameters()}
        meta = {
            "kind": "model",
            "cost": self.cost.__name__,
            "dtype": str(self.dtype),
            "input_shape": list(self.input_shape),
            "layers": [{"type": type(l).__name__, "config": l.config()} for l in self.layers],
        }
        return meta, arrays

    @classmethod
    def load(cls, filename, backend=None):
        """Read a network written by :meth:`save` (or the network of a checkpoint).

        ``backend`` ("numpy" or "cupy"; default ``NNDL_BACKEND``, else numpy) places it,
        whichever backend saved it: files hold host arrays.
        """
        xp = _placement(backend, None)[0]  # a missing GPU is a ConfigError, not a bad file
        meta, arrays = io.read_arrays(filename)
        name = os.path.basename(os.fspath(filename))
        try:
            layers = [LAYER_TYPES[spec["type"]](**spec["config"]) for spec in meta["layers"]]
            _check_weight_shapes(layers, arrays, name)  # before building allocates them
            net = cls(layers, cost=meta["cost"], dtype=meta["dtype"],
                      input_shape=meta["input_shape"], rng=np.random.default_rng(0), backend=xp)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise FormatError(f"{name}: bad layer description ({type(e).__name__}: {e})") from None
        net._load_params(arrays, name)
        return net

    def _load_params(self, arrays, name):
        for i, layer in enumerate(self.layers):
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


def _check_weight_shapes(layers, arrays, name):
    """A FormatError unless each layer's weights, as its description sizes them, are the
    weights the file holds: a damaged or hostile description (say n_out = 10**12) must
    not make the loader allocate and draw a huge matrix before the arrays are compared."""
    for i, layer in enumerate(layers):
        want = getattr(layer, "w_shape", None)
        if want is None:
            continue
        have = arrays.get(f"{i}/w")
        if have is None:
            raise FormatError(f"{name}: missing array {i}/w")
        if tuple(have.shape) != tuple(want):
            raise FormatError(f"{name}: array {i}/w has shape {tuple(have.shape)}, expected "
                              f"{tuple(want)} (the description of layer {i}, {type(layer).__name__})")


class _Run:
    """The state of one training run that isn't in the network: what a checkpoint adds."""

    def __init__(self, eta, history):
        self.eta = self.eta0 = float(eta)
        self.history = history
        self.epoch, self.best, self.since_best = 0, -1, 0

    def after_epoch(self, acc, early_stopping_n, schedule_n):
        """Track the best evaluation accuracy; apply early stopping and the eta schedule.

        Returns a message when training should stop, else None.
        """
        if acc is None:
            return None
        if acc > self.best:
            self.best, self.since_best = acc, 0
            return None
        self.since_best += 1
        if early_stopping_n and self.since_best >= early_stopping_n:
            self.history.stopped_early = True
            return f"Early stopping: no improvement in {early_stopping_n} epochs"
        if schedule_n and self.since_best >= schedule_n:
            self.eta, self.since_best = self.eta / 2, 0
            if self.eta <= self.eta0 / 128:
                self.history.stopped_early = True
                return f"Stopping: the learning rate fell to eta/128 = {self.eta}"
        return None


def _jsonable_rng_state(state):
    """numpy's bit-generator state as plain JSON (its integers may be huge; JSON is fine)."""
    return {k: (_jsonable_rng_state(v) if isinstance(v, dict) else
                v.tolist() if hasattr(v, "tolist") else v) for k, v in state.items()}


_FUSED_CHUNK = 500  # mini-batches per call of the fused kernel (progress-bar granularity)


def _ndim(v):
    """``v.ndim``, or numpy's count of a list's dimensions (np.ndim refuses device arrays)."""
    return v.ndim if hasattr(v, "ndim") else np.ndim(v)


def _placement(name, dtype):
    """(array module, dtype) of a network: the dtype defaults to float64 on numpy, float32 on a GPU."""
    xp = backend.array_module(name)
    return xp, (backend.default_dtype(xp) if dtype is None else backend.as_dtype(dtype))


def _epoch_eta(eta_fn, epoch):
    """``eta_fn(epoch)``, checked: the learning rate of one epoch of a scheduled run."""
    value = eta_fn(epoch)
    try:
        eta = float(value)
    except (TypeError, ValueError):
        eta = float("nan")
    if not eta > 0 or not np.isfinite(eta):
        raise ConfigError(f"eta({epoch}): expected a positive learning rate, got {value!r}")
    return eta


def _diverged(epoch, batch, eta):
    return DivergenceError(
        f"training diverged in epoch {epoch}, mini-batch {batch}: the network's output is "
        f"NaN or infinite; try a smaller learning rate than eta={eta}")


def _progress(progress, n):
    """A tqdm bar over one epoch's examples, or None; silent when not a terminal."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n, unit="ex", leave=False, disable=None, dynamic_ncols=True)
