"""Data-parallel shards of a big mini-batch, for chapter 6's nets on the CPU.

A convolutional step at mini-batch 64-256 is a few BLAS products, which OpenBLAS
spreads over the cores, and several numba passes that run on one core (im2col,
pooling, unpooling, col2im).  Those passes stream matrices of 15-33 MB and are about
half of the step.  This lowering cuts such a batch into one shard per core and runs
the whole network's forward and backward pass on each shard at once, in threads (the
kernels release the GIL), on *replicas* of the layers: copies that share the
parameters and keep their own gradients and scratch (:meth:`nndl.layers.Layer.replica`).
The shards' gradients are then summed into the network's own layers, so the optimizer
sees one mini-batch's gradient, as on the reference path.  The layers know nothing of
this: each replica runs the readable ``Network.backprop``.

BLAS is held to one thread while shards run (threadpoolctl): OpenBLAS's idle workers
spin after each multi-threaded call, and spinning on the cores the shards run on slows
both.  Below ``MIN_SHARD`` images a shard the hand-offs cost more than they save, so
small batches run whole.  A network with a layer that draws randomness in training
(dropout) is not cut in training: the shards would draw from one generator in an order
that depends on the threads.  Results differ from one whole pass in the last bits only
(a gradient is summed shard by shard) and depend on the number of shards, which is the
BLAS thread count when the session starts.
"""
import contextlib
import copy
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

MIN_SHARD = 16  # images per shard at least

_lock = threading.Lock()
_state = {}


def _blas():
    """threadpoolctl's controller of the BLAS numpy uses, or None (no threadpoolctl, or a
    BLAS it cannot limit: sharding is then off, since the two pools would contend)."""
    if "blas" not in _state:
        try:
            from threadpoolctl import ThreadpoolController

            with warnings.catch_warnings():  # e.g. about several OpenMP runtimes loaded
                warnings.simplefilter("ignore")
                ctl = ThreadpoolController().select(user_api="blas")
            _state["blas"] = ctl if len(ctl.lib_controllers) else None
        except Exception:  # noqa: BLE001 - threadpoolctl is an optimisation, never a failure
            _state["blas"] = None
    return _state["blas"]


def threads():
    """The number of shards a batch is cut into: BLAS's thread count (at most the cores)."""
    ctl = _blas()
    n = max(lc.num_threads for lc in ctl.lib_controllers) if ctl else 1
    return max(1, min(n, os.cpu_count() or 1))


def wanted(net, batch, train):
    """True when cutting batches of ``batch`` examples pays: numpy arrays, a layer that
    declares ``parallel_batches``, no layer drawing randomness in training, and at least
    two shards of ``MIN_SHARD``."""
    return (net.xp is np and batch >= 2 * MIN_SHARD
            and any(layer.parallel_batches for layer in net.layers)
            and not (train and any(layer.stochastic for layer in net.layers)))


def bounds(n, parts):
    """How to cut a batch of ``n`` examples into at most ``parts`` shards of at least
    MIN_SHARD: a list of (start, stop), or None to run it whole."""
    parts = min(parts, n // MIN_SHARD)
    if parts < 2:
        return None
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


class Replicas:
    """The network and ``parts - 1`` replicas of it, sharing its parameters."""

    def __init__(self, net, parts):
        self.net = net
        self.copies = [net] + [_replica(net) for _ in range(parts - 1)]

    def backprop(self, x, y):
        """``net.backprop(x, y)`` with the batch cut in shards: the same gradients in the
        net's layers (summed over the shards) and the same output activations."""
        cuts = bounds(len(x), len(self.copies))
        if cuts is None:
            return self.net.backprop(x, y)
        outs = run(lambda i, s, e: self.copies[i].backprop(x[s:e], y[s:e]), cuts)
        for i in range(1, len(cuts)):
            for layer, other in zip(self.net.layers, self.copies[i].layers):
                for (_, _, g), (_, _, g_i) in zip(layer.parameters(), other.parameters()):
                    g += g_i
        return np.concatenate(outs)

    def update_mini_batch(self, x, y, eta, n, regularization):
        """``net.update_mini_batch`` with :meth:`backprop` cut in shards."""
        self.net._step(self.backprop(x, y), eta, len(x), regularization, n)

    def feedforward(self, x):
        """``net.feedforward(x)`` (evaluation) with the batch cut in shards."""
        cuts = bounds(len(x), len(self.copies))
        if cuts is None:
            return self.net.feedforward(x)
        return np.concatenate(run(lambda i, s, e: self.copies[i].feedforward(x[s:e]), cuts))


def _replica(net):
    r = copy.copy(net)
    r.layers = [layer.replica() for layer in net.layers]
    return r


@contextlib.contextmanager
def session(net, batch, train):
    """Replicas of ``net`` for batches of ``batch`` examples, with BLAS on one thread,
    or None where cutting does not pay (see :func:`wanted`)."""
    parts = threads() if wanted(net, batch, train) else 1
    if parts < 2 or bounds(batch, parts) is None:
        yield None
        return
    ctl = _blas()
    limiter = ctl.limit(limits=1) if ctl is not None else None
    try:
        yield Replicas(net, parts)
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


def run(fn, cuts):
    """[fn(i, start, stop) for each shard], the shards in parallel: the first in the
    calling thread, the rest on a pool of worker threads."""
    with _lock:
        pool = _state.get("pool")
        if pool is None or _state["workers"] < len(cuts) - 1:
            if pool is not None:  # more shards than before: a bigger pool replaces it
                pool.shutdown(wait=False)
            _state["workers"] = len(cuts) - 1
            pool = _state["pool"] = ThreadPoolExecutor(len(cuts) - 1, thread_name_prefix="nndl-shard")
    futures = [pool.submit(fn, i, a, b) for i, (a, b) in enumerate(cuts) if i > 0]
    try:
        first = fn(0, *cuts[0])
    except BaseException:
        for f in futures:  # let the workers finish before the error leaves
            f.exception()
        raise
    return [first] + [f.result() for f in futures]
