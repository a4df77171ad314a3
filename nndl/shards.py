"""Data-parallel shards of a big mini-batch, for chapter 6's layers on the CPU.

A ``ConvPoolLayer`` step at mini-batch 64-256 is three BLAS products, which OpenBLAS
spreads over the cores, and five numba passes that run on one core: im2col, pooling,
unpooling, col2im and the first layer's weight-gradient dot products.  Those passes
stream matrices of 15-33 MB (float32, mini-batch 256) and took about half of the step.
Inside a :func:`session`, a layer cuts such a batch into one shard per BLAS thread and
each thread runs the whole layer pass on its shard (the kernels release the GIL).

BLAS is held to one thread for the whole session, between the layers' passes too:
OpenBLAS's idle workers spin for a while after each multi-threaded call, and spinning
workers on the cores the shards run on slow both down.  Measured on W3 (chapter 6's net,
3,072 images, paired epochs): limiting BLAS around each sharded pass only, so that the
dense layers' products between them still ran on two threads, made training 1.26-1.50x
*slower*; limiting it for the whole epoch made it 0.75x (mini-batch 256) and 0.88x (64)
the unsharded time.  :class:`nndl.Network` opens a session around the epochs and the
evaluation of a network that has such layers; a layer called directly, outside one,
runs whole.  Since BLAS has one thread in a session, a dense layer's products are cut
by rows there too (:func:`matmul`, :func:`matmul_tn`): left whole, the book's last
chapter 6 net (two fully connected layers of 1,000) ran 1.13x slower at mini-batch 64.
``Conv2D`` and ``ConvPoolLayer`` cut their batches; the pooling layers and
elementwise ones have no BLAS products and run whole.

Below ``MIN_SHARD`` images a shard the hand-offs cost more than they save (a layer pass
at mini-batch 10 takes under a millisecond; waking a worker and waiting for it, tens of
microseconds), so small batches run whole in the caller's thread.  Results depend on
the number of shards in the last bits only (a weight gradient is summed shard by shard),
and that number is the BLAS thread count at the session's start, so runs stay
deterministic for a given thread count.
"""
import contextlib
import os
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .backend import xp as backend_xp

MIN_SHARD = 16  # images per shard at least

_lock = threading.Lock()
_local = threading.local()  # .depth: this thread's open sessions
_state = {"sessions": 0, "threads": 1}


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


@contextlib.contextmanager
def session(active=True, threads=None):
    """Within it, this thread's big batches run as shards, one per BLAS thread (or
    ``threads`` shards), and BLAS runs on one thread (its count is put back when the
    last open session ends).  The first session opened sets the number of shards; one
    opened inside it keeps that number.  ``active=False`` gives a session that does
    nothing."""
    if not active:
        yield
        return
    with _lock:
        if _state["sessions"] == 0:
            ctl = _blas()
            if threads is None:
                threads = max(lc.num_threads for lc in ctl.lib_controllers) if ctl else 1
                threads = min(threads, os.cpu_count() or 1)
            _state["threads"] = max(1, int(threads))
            _state["limiter"] = ctl.limit(limits=1) if ctl and _state["threads"] > 1 else None
        _state["sessions"] += 1
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        with _lock:
            _state["sessions"] -= 1
            if _state["sessions"] == 0 and _state.get("limiter") is not None:
                _state.pop("limiter").restore_original_limits()


def bounds(n, xp=np):
    """How to cut a batch of ``n`` examples: a list of (start, stop), or None to run it
    whole (outside a session, small batches, another array module than numpy)."""
    if xp is not np or n < 2 * MIN_SHARD or not getattr(_local, "depth", 0):
        return None
    parts = min(_state["threads"], n // MIN_SHARD)
    if parts < 2:
        return None
    return [(n * i // parts, n * (i + 1) // parts) for i in range(parts)]


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


# A dense layer's products, by rows of the batch: inside a session BLAS has one thread,
# so a big product left whole would run on one core.
MIN_MACS = 1 << 21  # multiply-adds a product needs before it is cut (a hand-off costs ~30 µs)


def _row_cuts(a, n_out):
    """bounds() for a product of a's rows with n_out columns, or None when it is small
    (outside a session this returns at the first test: Dense calls it every step)."""
    if not getattr(_local, "depth", 0) or a.shape[0] * a.shape[1] * n_out < MIN_MACS:
        return None
    return bounds(len(a), backend_xp(a))


def matmul(a, b):
    """a @ b for a (N, k), the rows of a shared among the shards in a session."""
    cuts = _row_cuts(a, b.shape[1])
    if cuts is None:
        return a @ b
    out = np.empty((a.shape[0], b.shape[1]), np.result_type(a, b))
    run(lambda i, s, e: np.matmul(a[s:e], b, out=out[s:e]), cuts)
    return out


def matmul_tn(d, a):
    """dᵀ @ a for d (N, m) and a (N, k): each shard's rows give a part, the parts summed."""
    cuts = _row_cuts(d, a.shape[1])
    if cuts is None:
        return d.T @ a
    parts = run(lambda i, s, e: d[s:e].T @ a[s:e], cuts)
    out = parts[0]
    for p in parts[1:]:
        out += p
    return out
