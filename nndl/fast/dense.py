"""The fused CPU training loop for stacks of Dense layers (chapters 1-3, made fast).

``Network.SGD`` on numpy arrays spends most of a mini-batch-of-10 step in Python and
in numpy's per-call overhead, not in arithmetic: a [784, 30, 10] step is ~25 numpy
calls of ~1 µs plus five small matrix products.  When a network is a plain stack of
:class:`~nndl.layers.Dense` layers trained by plain SGD, this module runs whole runs of
mini-batches inside one numba-compiled function instead: the same equations (BP1-BP4
and the update rule of :mod:`nndl.optimizers`), the same shuffled order, no Python per
step, no allocation per step.  The layer-by-layer numpy code in :mod:`nndl.layers` stays
the reference; ``tests/test_fastpath.py`` and ``tests/test_fast_conformance.py`` check
the two agree.  This module knows no class of the model: it reads what layers,
activations, costs, regularizers and optimizers declare (``kernel``).

Four things make it faster than the same equations as separate matrix products:

* Look-ahead.  Each row of a layer's weights is updated and then, while it is still in
  L1 cache, used for the *next* mini-batch's forward pass through that layer (updates
  of layer l need only this mini-batch's activations and deltas, so the next forward
  pass can follow layer by layer).  A [100 x 784] float64 weight matrix (627 KB) no
  longer fits in a core's L2 cache; this reads it once per step instead of three times.
* Lazy L2.  The decay w *= 1 - ηλ/n is kept as one scale per layer (the weights are
  s·w; the update divides by s, the forward and backward passes multiply by it) and
  folded back into w when a run of mini-batches ends: a multiply per step instead of a
  pass over every weight.
* Threads.  A large layer's rows are split into one band per thread (numba's OpenMP
  threads, ``NUMBA_NUM_THREADS``); each core keeps its band in its own cache and the
  bands never share a row, so the result is bit-for-bit the same for any thread count.
* A vectorised sigmoid.  The kernels leave z in place and squash a band of the layer at
  once with their own exp (``_sigmoid_rows``): a libm call per value would keep the
  loop scalar.

Supported (by kernel id): layers ``"dense"``; activations ``"sigmoid"``, ``"tanh"``,
``"relu"``, ``"identity"`` in every layer, ``"softmax"`` on the output; the
``"quadratic"`` cost with an elementwise output, ``"cross-entropy"`` with a sigmoid
output, ``"log-likelihood"`` with a softmax output (BP1 is then a - y); regularizers
none, ``"L2"`` or ``"L1"``; the ``"sgd"`` optimizer.  A net whose dense layers
follow others (convolutions) or drop their inputs runs them on these kernels through
:mod:`nndl.fast.suffix`; anything else (other optimizers, CuPy arrays) runs on the
reference path.
"""
import os

import numpy as np

from .. import backend

_ACT = {"sigmoid": 0, "tanh": 1, "relu": 2, "identity": 3, "softmax": 4}
_SIGMOID, _TANH, _RELU, _IDENTITY, _SOFTMAX = range(5)
_COST = {"quadratic": 0, "cross-entropy": 1, "log-likelihood": 2}
# The output activations with which a cost's BP1 is fused (the quadratic cost then
# multiplies by σ'(z) in the kernel; the other two cancel it: δ^L = a - y).
_COST_OUTPUTS = {"quadratic": ("sigmoid", "tanh", "relu", "identity"),
                 "cross-entropy": ("sigmoid",), "log-likelihood": ("softmax",)}
_REG = {None: 0, "L2": 1, "L1": 2}
# FMA contraction, and no reassociation: with it LLVM chooses the order of additions
# differently depending on what it inlines where, so a process that compiled the kernels
# and one that loaded them from numba's cache trained to different last bits.  Only the
# forward dot products (_DOT) may reassociate, which LLVM needs to vectorise them: they
# are compiled the same way in every context (tests/test_trust_model.py checks a cold and
# a warm cache agree).  The no-NaN/no-inf assumptions of full fastmath are left off so
# divergence is still seen.
_FAST = {"contract", "arcp", "nsz"}
_DOT = _FAST | {"reassoc"}
# 32 vector registers (AVX-512): the kernels block wider (a compile-time constant).
_WIDE = backend.WIDE_VECTORS


def _kernel(thing):
    """What ``thing`` declares as its kernel id (None: not fusable)."""
    return getattr(thing, "kernel", None)


def _dense_stack(layers, kernels=("dense",)):
    """True for a stack of layers the kernels run: numba present, every layer declaring
    one of ``kernels`` with a supported activation (softmax only on the output),
    C-contiguous numpy weights."""
    return (backend.HAS_NUMBA and len(layers) > 0
            and all(l.kernel in kernels and _kernel(l.activation) in _ACT for l in layers)
            and all(_kernel(l.activation) != "softmax" for l in layers[:-1])
            and all(type(l.w) is np.ndarray and l.w.flags.c_contiguous for l in layers))


def fused_rule(net, optimizer, reg):
    """True when the update rule is one the kernels run: plain SGD, no penalty or a fused
    one, and a cost whose BP1 is fused with the output layer's activation."""
    if _kernel(optimizer) != "sgd" or (reg is not None and _kernel(reg) not in _REG):
        return False
    out, cost = _kernel(net.layers[-1].activation), _kernel(net.cost)
    return out in _COST_OUTPUTS.get(cost, ())


def eligible(net, optimizer, reg):
    """True when ``net`` can train on the fused path (see the module docstring)."""
    return _dense_stack(net.layers) and fused_rule(net, optimizer, reg)


class FusedTrainer:
    """Buffers for one network and mini-batch size, reused across epochs."""

    def __init__(self, net, mini_batch_size):
        # Tuples of arrays (not lists): numba indexes them at run time, and a function
        # taking them can be cached on disk, so a new process doesn't recompile.
        self.layers = net.layers
        dt = net.dtype
        m = mini_batch_size
        self.ws, self.bs = tuple(l.w for l in self.layers), tuple(l.b for l in self.layers)
        self.acts = np.array([_ACT[l.activation.kernel] for l in self.layers], np.int64)
        self.cost = _COST[net.cost.kernel]
        # Two sets of activations: while one mini-batch's h[l] feed its update, the
        # next mini-batch's h[l] are being computed with the freshly updated rows.
        # h[l] and delta[l] belong to layer l; the inputs are X's own rows.
        self.h = tuple(tuple(np.empty((m, l.n_out), dt) for l in self.layers) for _ in range(2))
        self.delta = tuple(np.empty((m, l.n_out), dt) for l in self.layers)
        self.y = np.empty((2, m, self.layers[-1].n_out), dt)
        self.rows = np.arange(m)
        self.m = m
        self.scales = np.ones(len(self.layers) + 1, dt)  # per layer, + scratch (_sgd_batches)

    def run(self, x, y, perm, start, stop, eta, reg, n, nt=None):
        """Train on mini-batches starting at perm[start], perm[start + m], ... < stop,
        on ``nt`` threads (default: :func:`threads`); the result does not depend on ``nt``.

        Returns -1, or the index (from 0) of the first mini-batch whose output went
        non-finite, before that batch's update is applied.
        """
        kind = _REG[None if reg is None else reg.kernel]
        lmbda_n = 0.0 if reg is None else reg.lmbda / n
        sc = self.scales
        sc[:] = 1.0
        try:
            return _sgd_batches(x, y, perm, start, stop, self.m, eta, kind, lmbda_n,
                                self.ws, self.bs, self.acts, self.cost, self.h, self.delta,
                                self.y, self.rows, threads() if nt is None else nt, sc)
        finally:  # the weights are sc[l]·w: fold the scales back in (divergence too)
            for w, s in zip(self.ws, sc):
                if s != 1.0:
                    _scale_rows(w, s)


_threads_pid = None  # the process that started numba's thread pool


def threads():
    """How many threads the fused loop may use: numba's setting (``NUMBA_NUM_THREADS``,
    ``numba.set_num_threads``); 1 where numba's only threading layer is its slow
    fallback (``workqueue``: ~30 µs a parallel region, against ~1.5 µs for OpenMP);
    and 1 in a process forked from one that had started the pool: GNU OpenMP cannot
    run there (numba would terminate it), so a ``multiprocessing`` worker forked after
    training trains on one thread instead."""
    global _threads_pid
    numba = backend.numba
    pid = os.getpid()
    if _threads_pid is not None and _threads_pid != pid:
        return 1
    try:
        if numba.threading_layer() == "workqueue":
            return 1
    except ValueError:  # no parallel region has run yet
        pass
    n = numba.get_num_threads()
    if n > 1:
        _threads_pid = pid
    return n


@backend.jit(fastmath=_FAST, inline="always")
def _act(v, act):
    """One activation value, as the forward kernels store it.  Sigmoid and softmax are
    left as z here and applied to whole rows afterwards (``_sigmoid_rows``, vectorised;
    ``_softmax_rows``)."""
    if act == _TANH:
        return np.tanh(v)
    if act == _RELU:
        return v if v > 0 else v - v  # v - v: a zero of v's dtype
    return v


# σ(z) without a call to libm's exp per value, so that LLVM vectorises it (a call per
# value costs ~6 ns and keeps the loop scalar; this runs 2-4 values per ns).  e^x for
# x = -|z| <= 0: x = k ln2 + r with |r| <= ln2/2, e^r by its Taylor polynomial (degree
# 13 for float64, 7 for float32: truncation error below half an ulp), 2^k built in the
# exponent bits.  |z| is clamped where e^-|z| would leave the normal range (σ is then 0
# or 1 to working precision).  σ = 1/(1 + e) for z >= 0 and e/(1 + e) below: no overflow.
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 0.6931471803691238, 1.9082149292705877e-10  # ln 2 = hi + lo, hi exact in 32 bits
# No reassociation here either: it would fold (x - k·hi) - k·lo into x - k·(hi + lo) and
# lose the split's precision (100 ulps at z = -700).
_EXACT = _FAST


@backend.jit(fastmath=_EXACT)
def _sigmoid64(a, bits):
    """a = σ(a) for a contiguous float64 vector (see above); ``bits``: int64 scratch, as long."""
    n = a.shape[0]
    for j in range(n):
        v = a[j]
        x = -min(abs(v), 708.0)
        k = np.floor(x * _LOG2E + 0.5)
        r = (x - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * r + 1.0 / 479001600.0
        p = p * r + 1.0 / 39916800.0
        p = p * r + 1.0 / 3628800.0
        p = p * r + 1.0 / 362880.0
        p = p * r + 1.0 / 40320.0
        p = p * r + 1.0 / 5040.0
        p = p * r + 1.0 / 720.0
        p = p * r + 1.0 / 120.0
        p = p * r + 1.0 / 24.0
        p = p * r + 1.0 / 6.0
        p = p * r + 0.5
        p = p * r + 1.0
        p = p * r + 1.0
        bits[j] = (np.int64(k) + 1023) << 52  # 2^k
        a[j] = p if v >= 0 else -p  # z's sign kept in p's
    two_k = bits.view(np.float64)
    for j in range(n):
        p = a[j]
        e = abs(p) * two_k[j]  # e^-|z|
        q = 1.0 / (1.0 + e)
        a[j] = q if p >= 0 else e * q


@backend.jit(fastmath=_EXACT)
def _sigmoid32(a, bits):
    """a = σ(a) for a contiguous float32 vector (see above); ``bits``: int32 scratch, as long."""
    n = a.shape[0]
    one = np.float32(1.0)
    for j in range(n):
        v = a[j]
        x = -min(abs(v), np.float32(87.0))
        k = np.floor(x * np.float32(_LOG2E) + np.float32(0.5))
        r = (x - k * np.float32(0.693359375)) - k * np.float32(-2.12194440e-4)  # ln 2, split for float32
        p = np.float32(1.0 / 5040.0)
        p = p * r + np.float32(1.0 / 720.0)
        p = p * r + np.float32(1.0 / 120.0)
        p = p * r + np.float32(1.0 / 24.0)
        p = p * r + np.float32(1.0 / 6.0)
        p = p * r + np.float32(0.5)
        p = p * r + one
        p = p * r + one
        bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)  # 2^k
        a[j] = p if v >= 0 else -p
    two_k = bits.view(np.float32)
    for j in range(n):
        p = a[j]
        e = abs(p) * two_k[j]
        q = one / (one + e)
        a[j] = q if p >= 0 else e * q


@backend.jit(fastmath=_FAST)
def _sigmoid_rows(a, i0, i1, j0, j1):
    """a[i, j] = σ(a[i, j]) for i0 <= i < i1, j0 <= j < j1 (one scratch for all rows)."""
    if a.itemsize == 8:
        bits64 = np.empty(j1 - j0, np.int64)
        for i in range(i0, i1):
            _sigmoid64(a[i, j0:j1], bits64)
    else:
        bits32 = np.empty(j1 - j0, np.int32)
        for i in range(i0, i1):
            _sigmoid32(a[i, j0:j1], bits32)


@backend.jit(fastmath=_FAST)
def _softmax_rows(a):
    """a = softmax(a), row by row."""
    m, n = a.shape
    for i in range(m):
        zmax = a[i, 0]
        for j in range(1, n):
            zmax = max(zmax, a[i, j])
        s = a[i, 0] - a[i, 0]
        for j in range(n):
            e = np.exp(a[i, j] - zmax)
            a[i, j] = e
            s += e
        for j in range(n):
            a[i, j] /= s


@backend.jit(fastmath=_FAST)
def _times_prime(d, a, act):
    """d ⊙= σ'(z), from a = σ(z) (elementwise activations only)."""
    m, n = d.shape
    for i in range(m):
        for j in range(n):
            v = a[i, j]
            if act == _SIGMOID:
                d[i, j] *= v * (1.0 - v)
            elif act == _TANH:
                d[i, j] *= 1.0 - v * v
            elif act == _RELU:
                if v <= 0:
                    d[i, j] = 0.0


@backend.jit(fastmath=_FAST)
def _backward(d, w, s, out):
    """out = d (s w)  (BP2's wᵀδ, row form, for a layer kept as s·w; see ``_sgd_batches``):
    (m, n_out) x (n_out, n_in) -> (m, n_in)."""
    m, n_out = d.shape
    n_in = w.shape[1]
    for i in range(m):
        for k in range(n_in):
            out[i, k] = 0.0
        for j in range(n_out):
            c = d[i, j] * s
            for k in range(n_in):
                out[i, k] += c * w[j, k]


@backend.jit(fastmath=_FAST)
def _penalty_and_bias(w, b, d, scale, kind, decay, jb, je):
    """Rows jb <= j < je: L1's penalty step w -= (ηλ/n) sgn(w) (kind 2), and BP3's
    b -= scale·Σ_i d.  (L2's w *= 1 - ηλ/n is one multiply of the layer's scale; see
    ``_sgd_batches``.)"""
    n_in = w.shape[1]
    for j in range(jb, je):
        if kind == 2:
            for k in range(n_in):
                v = w[j, k]
                if v > 0:
                    w[j, k] = v - decay
                elif v < 0:
                    w[j, k] = v + decay
        g = d[0, j] - d[0, j]
        for i in range(d.shape[0]):
            g += d[i, j]
        b[j] -= scale * g


@backend.jit(fastmath=_FAST)
def _learn(w, d, a_in, ar, scale, i0, i1, jb, je, c):
    """BP4 for rows jb <= j < je and examples i0 <= i < i1: w -= scale·dᵀa_in, where
    example i's input is the row a_in[ar[i]] (the first layer reads the training set's
    own rows, in shuffled order, with no copy).

    Blocked two rows x five examples: each loaded input feeds two rows, and a row is
    loaded and stored once per five examples (two passes for a mini-batch of 10;
    fewer passes over the rows than four rows x two examples, which needs five)."""
    n_in = w.shape[1]  # c: 10 scalars of scratch in w's dtype, so float32 stays float32
    for j in range(jb, je, 2):
        r0, r1 = w[j], w[min(j + 1, je - 1)]
        pair = j + 1 < je
        i = i0
        while i + 4 < i1:
            for u in range(5):
                c[u] = scale * d[i + u, j]
                c[5 + u] = scale * d[i + u, j + 1] if pair else c[u] - c[u]
            c0, c1, c2, c3, c4 = c[0], c[1], c[2], c[3], c[4]
            e0, e1, e2, e3, e4 = c[5], c[6], c[7], c[8], c[9]
            a0, a1, a2, a3, a4 = (a_in[ar[i]], a_in[ar[i + 1]], a_in[ar[i + 2]], a_in[ar[i + 3]],
                                  a_in[ar[i + 4]])
            if pair:
                for k in range(n_in):
                    p0, p1, p2, p3, p4 = a0[k], a1[k], a2[k], a3[k], a4[k]
                    r0[k] -= ((c0 * p0 + c1 * p1) + (c2 * p2 + c3 * p3)) + c4 * p4
                    r1[k] -= ((e0 * p0 + e1 * p1) + (e2 * p2 + e3 * p3)) + e4 * p4
            else:  # an odd row out
                for k in range(n_in):
                    r0[k] -= ((c0 * a0[k] + c1 * a1[k]) + (c2 * a2[k] + c3 * a3[k])) + c4 * a4[k]
            i += 5
        while i < i1:  # the last examples, one at a time
            c[0] = scale * d[i, j]
            c[1] = scale * d[i, j + 1] if pair else c[0] - c[0]
            c0, e0 = c[0], c[1]
            a0 = a_in[ar[i]]
            if pair:
                for k in range(n_in):
                    r0[k] -= c0 * a0[k]
                    r1[k] -= e0 * a0[k]
            else:
                for k in range(n_in):
                    r0[k] -= c0 * a0[k]
            i += 1


@backend.jit(fastmath=_FAST)
def _learn4(w, d, a_in, ar, scale, i0, i1, j, c):
    """``_learn`` for the four rows j..j+3, for float64 on CPUs with 32 vector registers
    (AVX-512): each loaded input feeds four rows, one pass over the rows per five
    examples (faster there in float64; not in float32, and it would spill on
    AVX2's 16 registers)."""
    n_in = w.shape[1]
    r0, r1, r2, r3 = w[j], w[j + 1], w[j + 2], w[j + 3]
    i = i0
    while i + 4 < i1:
        c0, c1, c2, c3, c4 = (scale * d[i, j], scale * d[i + 1, j], scale * d[i + 2, j],
                              scale * d[i + 3, j], scale * d[i + 4, j])
        e0, e1, e2, e3, e4 = (scale * d[i, j + 1], scale * d[i + 1, j + 1], scale * d[i + 2, j + 1],
                              scale * d[i + 3, j + 1], scale * d[i + 4, j + 1])
        f0, f1, f2, f3, f4 = (scale * d[i, j + 2], scale * d[i + 1, j + 2], scale * d[i + 2, j + 2],
                              scale * d[i + 3, j + 2], scale * d[i + 4, j + 2])
        g0, g1, g2, g3, g4 = (scale * d[i, j + 3], scale * d[i + 1, j + 3], scale * d[i + 2, j + 3],
                              scale * d[i + 3, j + 3], scale * d[i + 4, j + 3])
        a0, a1, a2, a3, a4 = (a_in[ar[i]], a_in[ar[i + 1]], a_in[ar[i + 2]], a_in[ar[i + 3]],
                              a_in[ar[i + 4]])
        for k in range(n_in):
            p0, p1, p2, p3, p4 = a0[k], a1[k], a2[k], a3[k], a4[k]
            r0[k] -= ((c0 * p0 + c1 * p1) + (c2 * p2 + c3 * p3)) + c4 * p4
            r1[k] -= ((e0 * p0 + e1 * p1) + (e2 * p2 + e3 * p3)) + e4 * p4
            r2[k] -= ((f0 * p0 + f1 * p1) + (f2 * p2 + f3 * p3)) + f4 * p4
            r3[k] -= ((g0 * p0 + g1 * p1) + (g2 * p2 + g3 * p3)) + g4 * p4
        i += 5
    if i < i1:
        _learn(w, d, a_in, ar, scale, i, i1, j, j + 4, c)


@backend.jit(fastmath=_DOT)
def _look_ahead(w, b, x, xr, out, act, sd, i0, i1, jb, je):
    """The forward pass through rows jb <= j < je for examples i0 <= i < i1:
    out[i, j] = act(sd·(x[xr[i]] · w[j]) + b[j]) (z itself for sigmoid and softmax, which
    ``_rows`` applies to whole rows afterwards; sd: the layer's scale).

    Blocked 2 examples x 4 rows: each loaded input feeds four products and each loaded
    weight two, eight running sums in registers.  Edge blocks repeat the last row or
    example, which only rewrites the same value."""
    n_in = w.shape[1]
    j1, j2, j3 = min(jb + 1, je - 1), min(jb + 2, je - 1), min(jb + 3, je - 1)
    for i in range(i0, i1, 2):
        i_ = min(i + 1, i1 - 1)
        xa, xb = x[xr[i]], x[xr[i_]]
        s0 = b[jb] - b[jb]  # a zero of w's dtype
        s1 = s2 = s3 = t0 = t1 = t2 = t3 = s0
        for k in range(n_in):
            p, q = xa[k], xb[k]
            w0, w1, w2, w3 = w[jb, k], w[j1, k], w[j2, k], w[j3, k]
            s0 += p * w0
            s1 += p * w1
            s2 += p * w2
            s3 += p * w3
            t0 += q * w0
            t1 += q * w1
            t2 += q * w2
            t3 += q * w3
        out[i, jb], out[i, j1] = _act(sd * s0 + b[jb], act), _act(sd * s1 + b[j1], act)
        out[i, j2], out[i, j3] = _act(sd * s2 + b[j2], act), _act(sd * s3 + b[j3], act)
        out[i_, jb], out[i_, j1] = _act(sd * t0 + b[jb], act), _act(sd * t1 + b[j1], act)
        out[i_, j2], out[i_, j3] = _act(sd * t2 + b[j2], act), _act(sd * t3 + b[j3], act)


@backend.jit(fastmath=_DOT)
def _look_ahead5(w, b, x, xr, out, act, sd, i0, i1, jb, je):
    """The forward pass through rows jb <= j < je for examples i0 <= i < i1:
    out[i, j] = act(sd·(x[xr[i]] · w[j]) + b[j]) (z itself for sigmoid and softmax, which
    ``_rows`` applies to whole rows afterwards; sd: the layer's scale).

    ``_look_ahead`` for CPUs with 32 vector registers (AVX-512): blocked 5 examples x 4
    rows, twenty running sums in registers, each loaded weight used five times."""
    n_in = w.shape[1]
    j1, j2, j3 = min(jb + 1, je - 1), min(jb + 2, je - 1), min(jb + 3, je - 1)
    for i in range(i0, i1, 5):
        ia, ib, ic, id_ = min(i + 1, i1 - 1), min(i + 2, i1 - 1), min(i + 3, i1 - 1), min(i + 4, i1 - 1)
        xa, xb, xc, xd, xe = x[xr[i]], x[xr[ia]], x[xr[ib]], x[xr[ic]], x[xr[id_]]
        s0 = b[jb] - b[jb]  # a zero of w's dtype
        s1 = s2 = s3 = t0 = t1 = t2 = t3 = u0 = u1 = u2 = u3 = s0
        v0 = v1 = v2 = v3 = r0 = r1 = r2 = r3 = s0
        for k in range(n_in):
            p, q, o, g, h = xa[k], xb[k], xc[k], xd[k], xe[k]
            w0, w1, w2, w3 = w[jb, k], w[j1, k], w[j2, k], w[j3, k]
            s0 += p * w0
            s1 += p * w1
            s2 += p * w2
            s3 += p * w3
            t0 += q * w0
            t1 += q * w1
            t2 += q * w2
            t3 += q * w3
            u0 += o * w0
            u1 += o * w1
            u2 += o * w2
            u3 += o * w3
            v0 += g * w0
            v1 += g * w1
            v2 += g * w2
            v3 += g * w3
            r0 += h * w0
            r1 += h * w1
            r2 += h * w2
            r3 += h * w3
        out[i, jb], out[i, j1] = _act(sd * s0 + b[jb], act), _act(sd * s1 + b[j1], act)
        out[i, j2], out[i, j3] = _act(sd * s2 + b[j2], act), _act(sd * s3 + b[j3], act)
        out[ia, jb], out[ia, j1] = _act(sd * t0 + b[jb], act), _act(sd * t1 + b[j1], act)
        out[ia, j2], out[ia, j3] = _act(sd * t2 + b[j2], act), _act(sd * t3 + b[j3], act)
        out[ib, jb], out[ib, j1] = _act(sd * u0 + b[jb], act), _act(sd * u1 + b[j1], act)
        out[ib, j2], out[ib, j3] = _act(sd * u2 + b[j2], act), _act(sd * u3 + b[j3], act)
        out[ic, jb], out[ic, j1] = _act(sd * v0 + b[jb], act), _act(sd * v1 + b[j1], act)
        out[ic, j2], out[ic, j3] = _act(sd * v2 + b[j2], act), _act(sd * v3 + b[j3], act)
        out[id_, jb], out[id_, j1] = _act(sd * r0 + b[jb], act), _act(sd * r1 + b[j1], act)
        out[id_, j2], out[id_, j3] = _act(sd * r2 + b[j2], act), _act(sd * r3 + b[j3], act)


_CHUNK = 20  # examples whose inputs stay in cache while the rows stream past them (4 x 5)


@backend.jit(fastmath=_FAST)
def _rows(w, b, d, a_in, ar, scale, kind, decay, s, x, xr, out, act, j0, j1):
    """Rows j0 <= j < j1 of one layer: learn from this mini-batch (inputs a_in[ar[i]],
    deltas ``d``; skipped when ``ar`` is empty), then look ahead: the next mini-batch's
    (inputs x[xr[i]]) forward pass through the updated rows, into ``out``.

    Small mini-batches go four rows at a time through the update and then, while those
    rows are still in L1 cache, the look-ahead: one pass over w per step instead of
    three, which matters once w outgrows L2 ([100 x 784] float64 is 627 KB).  Larger
    ones go _CHUNK examples at a time across all the rows, so the inputs stay in cache
    instead (256 examples of 784 float64 inputs are 1.6 MB).
    """
    m, mn = ar.shape[0], xr.shape[0]
    c = np.empty(10, w.dtype)  # scratch for the helpers, allocated once per call
    c[0] = s
    sd = c[0]  # the layer's scale s (the weights are s·w) in w's dtype
    wscale = scale / s  # BP4 on s·w: w -= (scale / s) δᵀa
    if m <= _CHUNK and mn <= _CHUNK:
        for jb in range(j0, j1, 4):
            je = min(jb + 4, j1)
            if m > 0:
                _penalty_and_bias(w, b, d, scale, kind, decay, jb, je)
                _update(w, d, a_in, ar, wscale, 0, m, jb, je, c)
            _forward_block(w, b, x, xr, out, act, sd, 0, mn, jb, je)
    else:
        if m > 0:
            for jb in range(j0, j1, 4):
                _penalty_and_bias(w, b, d, scale, kind, decay, jb, min(jb + 4, j1))
        for i0 in range(0, m, _CHUNK):
            for jb in range(j0, j1, 4):
                _update(w, d, a_in, ar, wscale, i0, min(m, i0 + _CHUNK), jb, min(jb + 4, j1), c)
        for i0 in range(0, mn, _CHUNK):
            for jb in range(j0, j1, 4):
                _forward_block(w, b, x, xr, out, act, sd, i0, min(mn, i0 + _CHUNK), jb,
                               min(jb + 4, j1))
    if act == _SIGMOID:  # the forward kernels left z in out: σ over the band's rows at once
        _sigmoid_rows(out, 0, mn, j0, j1)


@backend.jit(fastmath=_FAST, inline="always")
def _update(w, d, a_in, ar, scale, i0, i1, jb, je, c):
    """BP4 for a block of at most four rows, by the kernel that suits this CPU and dtype."""
    if _WIDE and w.itemsize == 8 and je - jb == 4:
        _learn4(w, d, a_in, ar, scale, i0, i1, jb, c)
    else:
        _learn(w, d, a_in, ar, scale, i0, i1, jb, je, c)


@backend.jit(fastmath=_FAST, inline="always")
def _forward_block(w, b, x, xr, out, act, sd, i0, i1, jb, je):
    """The look-ahead for a block of at most four rows, by the kernel that suits this CPU."""
    if _WIDE:
        _look_ahead5(w, b, x, xr, out, act, sd, i0, i1, jb, je)
    else:
        _look_ahead(w, b, x, xr, out, act, sd, i0, i1, jb, je)


_PARALLEL_MIN = 100_000  # multiply-adds in a layer's step below which one thread is faster


@backend.jit(fastmath=_FAST, parallel=True)
def _layer(w, b, d, a_in, ar, scale, kind, decay, s, x, xr, out, act, nt):
    """``_rows`` over a whole layer; large layers are split into ``nt`` bands of rows,
    one per thread, so each core keeps its band of w in its own cache.  A forward pass
    alone over many examples (evaluation) is split by examples instead: each thread then
    reads only its share of the inputs, which stream from memory, while w stays cached."""
    n_out, n_in = w.shape
    blocks = (n_out + 3) // 4
    parts = min(nt, blocks)
    mn = xr.shape[0]
    if nt > 1 and ar.shape[0] == 0 and mn >= 4 * _CHUNK and mn * n_in * n_out >= _PARALLEL_MIN:
        chunks = mn // _CHUNK  # whole chunks per thread, the remainder to the last one
        for t in backend.prange(nt):
            i0 = _CHUNK * (chunks * t // nt)
            i1 = mn if t == nt - 1 else _CHUNK * (chunks * (t + 1) // nt)
            _rows(w, b, d, a_in, ar, scale, kind, decay, s, x, xr[i0:i1], out[i0:i1], act,
                  0, n_out)
    elif parts > 1 and (ar.shape[0] + mn) * n_in * n_out >= _PARALLEL_MIN:
        for t in backend.prange(parts):
            _rows(w, b, d, a_in, ar, scale, kind, decay, s, x, xr, out, act,
                  4 * (blocks * t // parts), min(n_out, 4 * (blocks * (t + 1) // parts)))
    else:
        _rows(w, b, d, a_in, ar, scale, kind, decay, s, x, xr, out, act, 0, n_out)
    if act == _SOFTMAX:
        _softmax_rows(out)


_RESCALE_BELOW = 1e-3  # a layer's scale below this is folded into its weights (rare)


@backend.jit(fastmath=_FAST)
def _scale_rows(w, s):
    """w *= s."""
    for j in range(w.shape[0]):
        for k in range(w.shape[1]):
            w[j, k] *= s


@backend.jit(fastmath=_FAST, inline="always")
def _prefetch_rows(X, perm, i0, i1):
    """Start loading rows perm[i0:i1] of X into cache, one hint per 64-byte line."""
    step = max(1, 64 // X.itemsize)
    for i in range(i0, i1):
        for k in range(0, X.shape[1], step):
            backend.prefetch(X, perm[i], k)


@backend.jit(fastmath=_FAST)
def _gather(Y, perm, start, m, y):
    """y[i] = Y[perm[start + i]] for i < m: a mini-batch's targets.  (Its inputs are not
    copied: the first layer reads the rows of X through perm.)"""
    for i in range(m):
        r = perm[start + i]
        for k in range(Y.shape[1]):
            y[i, k] = Y[r, k]


@backend.jit(fastmath=_FAST)
def _sgd_batches(X, Y, perm, start, stop, mb, eta, kind, lmbda_n, ws, bs, acts, cost,
                 HH, D, ybuf, rows, nt, sc):
    """Mini-batches perm[start:start+mb], ... < stop.  HH[0] and HH[1] take turns
    holding the activations (H[l]: layer l's output) of the mini-batch being learnt (A)
    and of the next one (B).  The first layer reads its inputs straight from X's rows
    through perm; ``rows`` (0, 1, ..., mb-1) indexes the other layers' inputs.

    Layer l's weights are sc[l]·ws[l] (sc[l] = 1 at the start): L2's decay,
    w *= 1 - ηλ/n, is sc[l] *= 1 - ηλ/n, one multiply instead of a pass over all of w
    every step; the update divides by sc[l] and the forward and backward passes
    multiply by it.  The caller folds sc back into ws when the call returns."""
    L = len(ws)
    decay = eta * lmbda_n
    sc[L] = 1.0 - decay  # L2's factor, in the weights' dtype
    f = sc[L]
    none = rows[:0]  # no examples: ``_layer`` skips the update
    _prefetch_rows(X, perm, start, min(start + 2 * mb, stop))
    m = min(mb, stop - start)
    _gather(Y, perm, start, m, ybuf[0])
    A = HH[0]
    # The first mini-batch's forward pass.
    _layer(ws[0], bs[0], D[0], X, none, eta, kind, decay, sc[0], X, perm[start:start + m],
           A[0][:m], acts[0], nt)
    for l in range(1, L):
        _layer(ws[l], bs[l], D[l], A[l - 1], none, eta, kind, decay, sc[l], A[l - 1], rows[:m],
               A[l][:m], acts[l], nt)
    batch = 0
    for s in range(start, stop, mb):
        cur = batch % 2
        A, B = HH[cur], HH[1 - cur]
        y = ybuf[cur, :m]
        out = A[L - 1][:m]
        dL = D[L - 1][:m]
        finite = True
        for i in range(m):  # BP1
            for j in range(out.shape[1]):
                v = out[i, j]
                if not np.isfinite(v):
                    finite = False
                dL[i, j] = v - y[i, j]
        if not finite:
            return batch
        if cost == 0:
            _times_prime(dL, out, acts[L - 1])
        for l in range(L - 1, 0, -1):  # BP2
            _backward(D[l][:m], ws[l], sc[l], D[l - 1][:m])
            _times_prime(D[l - 1][:m], A[l - 1][:m], acts[l - 1])
        # Ask for the mini-batch after next now: its rows of X (random rows of a large
        # array, ~100 ns each from memory) arrive while this step computes.  Not for big
        # mini-batches: 64-256 rows would push this step's own rows out of the cache.
        if mb <= _CHUNK:
            _prefetch_rows(X, perm, s + 2 * mb, min(s + 3 * mb, stop))
        mn = max(0, min(mb, stop - s - mb))  # the next mini-batch's size
        _gather(Y, perm, s + mb, mn, ybuf[1 - cur])
        if kind == 1:  # L2: w *= 1 - ηλ/n, as a scale
            for l in range(L):
                sc[l] *= f
                if sc[l] < _RESCALE_BELOW:  # fold it in before w's entries grow large
                    _scale_rows(ws[l], sc[l])
                    sc[l] = 1.0
        # BP3, BP4 and the update, fused with the next mini-batch's forward pass.
        _layer(ws[0], bs[0], D[0][:m], X, perm[s:s + m], eta / m, kind, decay, sc[0],
               X, perm[s + mb:s + mb + mn], B[0][:mn], acts[0], nt)
        for l in range(1, L):
            _layer(ws[l], bs[l], D[l][:m], A[l - 1], rows[:m], eta / m, kind, decay, sc[l],
                   B[l - 1], rows[:mn], B[l][:mn], acts[l], nt)
        m = mn
        batch += 1
    return -1


def can_forward(net, x):
    """True when :func:`forward` can run ``net`` on the batch ``x`` (a stack of Dense
    layers with the activations above, numpy arrays of the network's dtype)."""
    return (type(x) is np.ndarray and x.ndim == 2 and x.dtype == net.dtype
            and _dense_stack(net.layers))


def forward(net, x):
    """The output activations of a Dense stack for a batch ``x`` (N, n_in): the training
    loop's forward kernel (blocked, rows shared among threads), for evaluation."""
    x = np.ascontiguousarray(x)
    nt = threads()
    rows = np.arange(len(x))
    for l in net.layers:
        out = np.empty((len(x), l.n_out), x.dtype)
        nothing = np.empty((0, l.n_out), x.dtype)  # no update: only the forward pass runs
        # scale 1 in the weights' dtype: the same compiled _layer as training uses
        _layer(l.w, l.b, nothing, x, rows[:0], 0.0, 0, 0.0, x.dtype.type(1), x, rows, out,
               _ACT[l.activation.kernel], nt)
        x = out
    return x
