"""The training loop: epochs of shuffled mini-batches, monitors, early stopping, the eta
schedule, checkpoints and divergence (chapters 1 and 3).

:meth:`nndl.Network.SGD` hands over to :func:`sgd`.  On the reference path each step is
the book's ``net.update_mini_batch`` (→ ``net.backprop`` → the layers); where
:func:`nndl.fast.fusable` says yes, whole runs of mini-batches go through the fused
kernels instead, and a convolutional net's big batches are cut in shards
(:mod:`nndl.fast.shards`).  Which path runs changes the speed, not the semantics: the
tests hold each lowering to the reference.

What a run keeps that the network does not (the epoch, eta after halvings, the best
accuracy, the history, why it stopped) lives in :class:`Run`, and a checkpoint holds
both, with the settings that shape the run: a resumed run ends where an unbroken one
would, and resuming with other settings is an error naming the setting.
"""
import hashlib
import json
import math
import os
import time

import numpy as np

from . import backend, fast, io
from . import regularization as _reg
from .errors import ConfigError, DivergenceError, FormatError
from .inputs import Examples, check_count, check_number

# Mini-batches per call of the fused kernel: the progress bar, the divergence check of
# the weights and Ctrl-C act between calls.
_FUSED_CHUNK = 500
_GATHER_ROWS = 8192  # at most this many rows of on-demand examples made at once
# A weight this large means training has run away (a sane net's weights stay below
# ~100); caught here before it overflows the cost.
WEIGHT_BOUND = 1e8


class History:
    """What ``SGD`` monitored, one entry per epoch.

    Unpacks like the book's return value::

        evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = net.SGD(...)

    Accuracies are counts of correct examples, as in the book; ``n_evaluation`` and
    ``n_training`` give the denominators.  ``stopped`` says why a run ended before its
    last epoch (early stopping, the schedule), or is None.
    """

    def __init__(self):
        self.evaluation_cost, self.evaluation_accuracy = [], []
        self.training_cost, self.training_accuracy = [], []
        self.epoch_seconds, self.eta = [], []
        self.test_accuracy = []  # network3's test accuracy at new-best epochs (else None)
        self.n_evaluation = self.n_training = 0
        self.stopped_early = False
        self.stopped = None

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


class Run:
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
            return f"Early stopping: no improvement in {early_stopping_n} epochs"
        if schedule_n and self.since_best >= schedule_n:
            self.eta, self.since_best = self.eta / 2, 0
            if self.eta <= self.eta0 / 128:
                return f"Stopping: the learning rate fell to eta/128 = {self.eta}"
        return None

    def stop(self, why):
        self.history.stopped_early, self.history.stopped = True, why


def sgd(net, training_data, epochs, mini_batch_size, eta, lmbda=0.0,
        evaluation_data=None, monitor_evaluation_cost=False,
        monitor_evaluation_accuracy=False, monitor_training_cost=False,
        monitor_training_accuracy=False, early_stopping_n=0, schedule_n=0,
        test_data=None, regularization="L2", optimizer=None, verbose=True,
        progress=False, callback=None, fast_path=True, checkpoint=None, resume=False,
        on_divergence="raise"):
    """Train ``net`` by mini-batch SGD; return a :class:`History`.  See
    :meth:`nndl.Network.SGD` for the arguments."""
    backend.announce_compilation()  # a first run: one line on stderr while numba compiles
    x, _, y = net._prepare(training_data, "training_data")
    n = len(x)
    epochs = check_count(epochs, "epochs", minimum=0)
    m = check_count(mini_batch_size, "mini_batch_size")
    if not 1 <= m <= n:
        raise ConfigError(f"mini_batch_size: expected 1 <= mini_batch_size <= {n} "
                          f"(the training-set size), got {m}")
    eta_fn = eta if callable(eta) else None
    eta = 1.0 if eta_fn is not None else check_number(eta, "eta", True, "a positive learning rate")
    lmbda = check_number(lmbda, "lmbda", expected="lmbda >= 0")
    early_stopping_n = check_count(early_stopping_n, "early_stopping_n", minimum=0)
    schedule_n = check_count(schedule_n, "schedule_n", minimum=0)
    if on_divergence not in ("raise", "restore"):
        raise ConfigError(f"on_divergence: expected 'raise' or 'restore', got {on_divergence!r}")
    chapter1_report = test_data is not None and evaluation_data is None
    if chapter1_report:
        evaluation_data, monitor_evaluation_accuracy = test_data, True
    if (early_stopping_n or schedule_n) and evaluation_data is None:
        raise ConfigError("early_stopping_n / schedule_n need evaluation_data to watch")
    ev = net._prepare(evaluation_data, "evaluation_data") if evaluation_data is not None else None
    reg = regularization if hasattr(regularization, "grad") else _reg.get(regularization, lmbda)
    if optimizer is not None:
        if not callable(getattr(optimizer, "step", None)):
            raise ConfigError(f"optimizer: expected an nndl optimizer (SGD(), Momentum(), ...), "
                              f"got {optimizer!r}")
        net.optimizer = optimizer
    net.n_train = n
    run = Run(eta, History())
    run.history.n_training, run.history.n_evaluation = n, (len(ev[0]) if ev else 0)
    # What shapes the run, recorded in (and checked against) a checkpoint; the data's
    # fingerprint is a pass over the whole set, so only when there is a checkpoint.
    setup = None if checkpoint is None else \
        _setup(net, x, y, m, eta_fn, eta, lmbda, reg, early_stopping_n, schedule_n)
    if resume and checkpoint is not None and os.path.exists(checkpoint):
        _restore_checkpoint(net, checkpoint, run, setup)
        if verbose:
            print(f"Resuming from {checkpoint} at epoch {run.epoch}"
                  + (f" (the run had stopped: {run.history.stopped})" if run.history.stopped else ""))
    if run.history.stopped or run.epoch >= epochs:
        net.history = run.history
        return run.history
    train_epoch = _epoch_trainer(net, x, y, m, reg, fast_path)
    bar = _progress(progress, n)
    while run.epoch < epochs:
        epoch = run.epoch
        eta_now = run.eta if eta_fn is None else _epoch_eta(eta_fn, epoch) * run.eta
        snapshot = _snapshot(net) if on_divergence == "restore" else None
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
            _put_back(net, snapshot)
            run.eta /= 2
            if verbose:
                print(f"Epoch {epoch} diverged: restored its starting state, halving eta to {eta_now / 2}")
            continue
        history = run.history
        history.epoch_seconds.append(time.perf_counter() - start)
        history.eta.append(eta_now)
        lines = []
        if monitor_training_cost:
            history.training_cost.append(_cost(net, (x, y), lmbda, n, reg, epoch, "training"))
            lines.append(f"Cost on training data: {history.training_cost[-1]}")
        if monitor_training_accuracy:
            history.training_accuracy.append(net.accuracy((x, y)))
            lines.append(f"Accuracy on training data: {history.training_accuracy[-1]} / {n}")
        acc = None
        if ev is not None:
            if monitor_evaluation_cost:
                history.evaluation_cost.append(_cost(net, (ev[0], ev[2]), lmbda, n, reg, epoch,
                                                     "evaluation"))
                lines.append(f"Cost on evaluation data: {history.evaluation_cost[-1]}")
            if monitor_evaluation_accuracy or early_stopping_n or schedule_n:
                acc = int((net.predict(ev[0]) == ev[1]).sum())
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
        if stop:
            run.stop(stop)
            if verbose:
                print(stop)
        elif verbose and schedule_n and run.eta != eta_before:
            print(f"Halving the learning rate to {run.eta}" if eta_fn is None else
                  f"Halving the learning rate to {run.eta} x eta(epoch)")
        if callback is not None:  # before the checkpoint, so what it records is kept
            callback(epoch, net, history)
        run.epoch += 1
        if checkpoint is not None:
            _write_checkpoint(net, checkpoint, run, setup)
        if stop:
            break
    if bar is not None:
        bar.close()
    net.history = run.history
    return run.history


def _epoch_trainer(net, x, y, m, reg, fast_path):
    """A function ``train_epoch(epoch, eta, bar)`` running one shuffled epoch."""
    n = len(x)
    if fast_path and fast.fusable(net, net.optimizer, reg, x, m):
        fused = fast.trainer(net, m)
        # Examples made on demand are gathered a run of mini-batches at a time and handed
        # over in the order they are used: the kernels see the same rows in the same order.
        gather = isinstance(x, Examples)
        xf = None if gather else np.ascontiguousarray(x.reshape(n, -1))
        step = m * (max(1, min(_FUSED_CHUNK, _GATHER_ROWS // m)) if gather else _FUSED_CHUNK)
        order = np.arange(step)

        def train_epoch(epoch, eta, bar):
            perm = net.rng.permutation(n)
            for k in range(0, n, step):
                stop = min(n, k + step)
                if gather:
                    idx = perm[k:stop]
                    rows = x[idx].reshape(stop - k, -1)
                    bad = fused.run(rows, y[idx], order, 0, stop - k, eta, reg, n)
                else:
                    bad = fused.run(xf, y, perm, k, stop, eta, reg, n)
                if bad >= 0:
                    raise _diverged(epoch, k // m + bad, eta, "the network's output is NaN or infinite")
                _check_weights(net, epoch, (stop - 1) // m, eta)
                if bar is not None:
                    bar.update(stop - k)
        return train_epoch

    def train_epoch(epoch, eta, bar):
        perm = backend.move(net.rng.permutation(n), net.xp)  # drawn on the host
        with fast.shards.session(net, m, train=True) as replicas:
            step = net if replicas is None else replicas
            for k in range(0, n, m):
                idx = perm[k:k + m]
                try:
                    step.update_mini_batch(x[idx], y[idx], eta, n=n, regularization=reg)
                except DivergenceError as e:
                    raise _diverged(epoch, k // m, eta, str(e)) from None
                if bar is not None and (k // m) % 50 == 49:
                    bar.update(min(50 * m, n - bar.n))
        _check_weights(net, epoch, (n - 1) // m, eta)
        if bar is not None:
            bar.update(n - bar.n)
    return train_epoch


def _check_weights(net, epoch, batch, eta):
    """A DivergenceError once any parameter is non-finite or beyond WEIGHT_BOUND."""
    for layer in net.layers:
        for name, p, _ in layer.parameters():
            big = float(backend.xp(p).abs(p).max()) if p.size else 0.0
            if not big <= WEIGHT_BOUND:
                raise _diverged(epoch, batch, eta, f"a parameter ({type(layer).__name__}.{name}) "
                                f"reached {big:.3g}")


def _cost(net, data, lmbda, n, reg, epoch, what):
    """net.total_cost, with an overflowing or non-finite cost as a DivergenceError."""
    c = net.total_cost(data, lmbda, n=n, regularization=reg or "L2")
    if not math.isfinite(c):
        raise DivergenceError(f"training diverged in epoch {epoch}: the cost on the {what} "
                              f"data is {c}; try a smaller learning rate")
    return c


def _diverged(epoch, batch, eta, why):
    return DivergenceError(f"training diverged in epoch {epoch}, mini-batch {batch}: {why}; "
                           f"try a smaller learning rate than eta={eta}")


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


def _progress(progress, n):
    """A tqdm bar over one epoch's examples, or None; silent when not a terminal."""
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=n, unit="ex", leave=False, disable=None, dynamic_ncols=True)


# -- snapshots and checkpoints ----------------------------------------------------------
def _snapshot(net):
    """Copies of everything an epoch changes: parameters, optimizer and RNG state."""
    params = [p.copy() for l in net.layers for _, p, _ in l.parameters()]
    opt = {k: v.copy() for k, v in net.optimizer.state().items()}
    return params, opt, net.rng.bit_generator.state


def _put_back(net, snapshot):
    params, opt, rng_state = snapshot
    for p, saved in zip((p for l in net.layers for _, p, _ in l.parameters()), params):
        p[...] = saved
    net.optimizer.load_state(opt)
    net.rng.bit_generator.state = rng_state


def _setup(net, x, y, m, eta_fn, eta, lmbda, reg, early_stopping_n, schedule_n):
    """The settings that shape a run, JSON-able: a resumed run must have the same."""
    opt = net.optimizer
    return {
        "n": len(x), "mini_batch_size": m,
        "eta": "eta(epoch)" if eta_fn is not None else float(eta),
        "lmbda": float(lmbda),
        "regularization": None if reg is None else f"{type(reg).__name__}({reg.lmbda!r})",
        "cost": net.cost.__name__,
        "optimizer": type(opt).__name__ + json.dumps(
            {k: v for k, v in sorted(vars(opt).items())
             if not k.startswith("_") and k != "t" and isinstance(v, (int, float, str, bool))}),
        "early_stopping_n": early_stopping_n, "schedule_n": schedule_n,
        "data": _fingerprint(x, y),
    }


def _fingerprint(*arrays):
    """A short hash of the training data: each example's sum and sum of squares, in
    order, rounded to float32 (so numpy and CuPy, which sum in different orders, agree,
    and device data need not come to the host), with the shapes and dtypes."""
    h = hashlib.blake2b(digest_size=16)
    for a in arrays:
        xp = backend.xp(a)
        h.update(f"{np.dtype(a.dtype).name}{tuple(a.shape)}".encode())
        rows = a.reshape(len(a), -1)
        for k in range(0, len(a), 4096):  # float64 sums, a block of rows at a time
            r = rows[k:k + 4096].astype(np.float64)
            sums = xp.stack([r.sum(axis=1), (r * r).sum(axis=1)], axis=1).ravel()
            h.update(backend.to_numpy(sums).astype(np.float32).tobytes())
    return h.hexdigest()


_SETTING_NAMES = {"n": "the training-set size", "data": "the training data"}


def _write_checkpoint(net, path, run, setup):
    meta, arrays = net._spec()
    for k, v in net.optimizer.state().items():
        arrays[f"optimizer/{k}"] = backend.to_numpy(v)
    meta.update(kind="checkpoint", setup=setup, epoch=run.epoch, eta=run.eta, eta0=run.eta0,
                best=run.best, since_best=run.since_best, history=run.history.to_dict(),
                optimizer=type(net.optimizer).__name__,
                rng=_jsonable_rng_state(net.rng.bit_generator.state))
    io.write_arrays(path, meta, arrays)


def _restore_checkpoint(net, path, run, setup):
    params = [(f"{i}/{pname}", p) for i, layer in enumerate(net.layers)
              for pname, p, _ in layer.parameters()]
    expect = {k: (p.shape, p.dtype) for k, p in params}
    for slot in getattr(net.optimizer, "slots", ()):  # optimizer state is made on first use: optional
        expect.update({f"optimizer/{slot}/{k}": io.optional(p.shape, p.dtype) for k, p in params})
    if "t" in vars(net.optimizer):
        expect["optimizer/t"] = io.optional((1,), None)
    meta, arrays = io.read_arrays(path, expect=expect)
    name = os.path.basename(os.fspath(path))
    if meta.get("kind") != "checkpoint":
        raise FormatError(f"{name}: a saved model, not a training checkpoint")
    if meta.get("layers") != net._spec()[0]["layers"]:
        raise ConfigError(f"{name}: the checkpoint holds a different network "
                          f"({[l.get('type') for l in meta.get('layers', [])]}) than this one")
    saved = meta.get("setup", {})
    for key, value in setup.items():
        if saved.get(key) != value:
            what = _SETTING_NAMES.get(key, key)
            raise ConfigError(f"{name}: the checkpoint was made with {key}={saved.get(key)!r}, "
                              f"this run has {key}={value!r}; resume with the same {what}, "
                              "or start afresh without resume")
    net._load_params(arrays, name)
    net.optimizer.load_state({k[len("optimizer/"):]: v for k, v in arrays.items()
                              if k.startswith("optimizer/")})
    net.rng.bit_generator.state = meta["rng"]
    run.epoch, run.eta, run.eta0 = int(meta["epoch"]), float(meta["eta"]), float(meta["eta0"])
    run.best, run.since_best = int(meta["best"]), int(meta["since_best"])
    run.history = History.from_dict(meta["history"])


def _jsonable_rng_state(state):
    """numpy's bit-generator state as plain JSON (its integers may be huge; JSON is fine)."""
    return {k: (_jsonable_rng_state(v) if isinstance(v, dict) else
                v.tolist() if hasattr(v, "tolist") else v) for k, v in state.items()}
