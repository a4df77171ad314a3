"""The fused CPU training loop for stacks of Dense layers (chapters 1-3, made fast).

``Network.SGD`` on numpy arrays spends most of a mini-batch-of-10 step in Python and
in numpy's per-call overhead, not in arithmetic: a [784, 30, 10] step is ~25 numpy
calls of ~1 µs plus five small matrix products.  When a network is a plain stack of
:class:`~nndl.layers.Dense` layers trained by plain SGD, this module runs whole runs of
mini-batches inside one numba-compiled function instead: the same equations (BP1-BP4
and the update rule of :mod:`nndl.optimizers`), the same shuffled order, no Python per
step, no allocation per step.  The layer-by-layer numpy code in :mod:`nndl.layers` stays
the reference; ``tests/test_fastpath.py`` checks the two agree.

Supported: activations sigmoid / tanh / ReLU / identity in every layer, softmax on the
output; the quadratic cost with an elementwise output, cross-entropy with a sigmoid
output, log-likelihood with a softmax output; no regularization, L2 or L1.  Anything
else (dropout, convolutions, other optimizers, CuPy arrays) uses the reference path.
"""
import numpy as np

from . import backend
from .activations import Identity, ReLU, Sigmoid, Softmax, Tanh
from .costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from .layers import Dense
from .optimizers import SGD
from .regularization import L1, L2

_ACT = {Sigmoid: 0, Tanh: 1, ReLU: 2, Identity: 3, Softmax: 4}
_SIGMOID, _TANH, _RELU, _IDENTITY, _SOFTMAX = range(5)
_COST = {QuadraticCost: 0, CrossEntropyCost: 1, LogLikelihoodCost: 2}
# Reassociation and FMA contraction let LLVM vectorise the dot products; the
# no-NaN/no-inf assumptions of full fastmath are left off so divergence is still seen.
_FAST = {"reassoc", "contract", "arcp", "nsz"}


def eligible(net, optimizer, reg):
    """True when ``net`` can train on the fused path (see the module docstring)."""
    if not backend.HAS_NUMBA or type(optimizer) is not SGD:
        return False
    if reg is not None and type(reg) not in (L1, L2):
        return False
    layers = net.layers
    if not all(type(l) is Dense and l.bias for l in layers):
        return False
    if any(l.activation not in _ACT for l in layers):
        return False
    if any(l.activation is Softmax for l in layers[:-1]):
        return False
    out, cost = layers[-1].activation, net.cost
    if cost is QuadraticCost:
        ok = out is not Softmax
    elif cost is CrossEntropyCost:
        ok = out is Sigmoid
    elif cost is LogLikelihoodCost:
        ok = out is Softmax
    else:
        ok = False
    return ok and all(type(l.w) is np.ndarray and l.w.flags.c_contiguous for l in layers)


class FusedTrainer:
    """Buffers for one network and mini-batch size, reused across epochs."""

    def __init__(self, net, mini_batch_size):
        # Tuples of arrays (not lists): numba indexes them at run time, and a function
        # taking them can be cached on disk, so a new process doesn't recompile.
        self.layers = net.layers
        dt = net.dtype
        m = mini_batch_size
        self.ws, self.bs = tuple(l.w for l in self.layers), tuple(l.b for l in self.layers)
        self.acts = np.array([_ACT[l.activation] for l in self.layers], np.int64)
        self.cost = _COST[net.cost]
        # a[0] is the input batch; a[l+1], z[l], delta[l] belong to layer l.
        self.a = (np.empty((m, self.layers[0].n_in), dt),) + \
            tuple(np.empty((m, l.n_out), dt) for l in self.layers)
        self.delta = tuple(np.empty((m, l.n_out), dt) for l in self.layers)
        self.y = np.empty((m, self.layers[-1].n_out), dt)
        self.m = m

    def run(self, x, y, perm, start, stop, eta, reg, n):
        """Train on mini-batches starting at perm[start], perm[start + m], ... < stop.

        Returns -1, or the index (from 0) of the first mini-batch whose output went
        non-finite, before that batch's update is applied.
        """
        kind = 0 if reg is None else (1 if type(reg) is L2 else 2)
        lmbda_n = 0.0 if reg is None else reg.lmbda / n
        return _sgd_batches(x, y, perm, start, stop, self.m, eta, kind, lmbda_n,
                            self.ws, self.bs, self.acts, self.cost, self.a, self.delta, self.y)


@backend.jit(fastmath=_FAST)
def _activate(z, a, act):
    """a = act(z) for an (m, n) block; softmax works row by row."""
    m, n = z.shape
    if act == _SOFTMAX:
        for i in range(m):
            zmax = z[i, 0]
            for j in range(1, n):
                zmax = max(zmax, z[i, j])
            s = 0.0
            for j in range(n):
                e = np.exp(z[i, j] - zmax)
                a[i, j] = e
                s += e
            for j in range(n):
                a[i, j] /= s
        return
    for i in range(m):
        for j in range(n):
            v = z[i, j]
            if act == _SIGMOID:
                if v >= 0:
                    a[i, j] = 1.0 / (1.0 + np.exp(-v))
                else:
                    e = np.exp(v)
                    a[i, j] = e / (1.0 + e)
            elif act == _TANH:
                a[i, j] = np.tanh(v)
            elif act == _RELU:
                a[i, j] = v if v > 0 else 0.0
            else:
                a[i, j] = v


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
def _forward(a_in, w, b, z):
    """z = a_in wᵀ + b: (m, n_in) x (n_out, n_in) -> (m, n_out).

    Blocked 2 examples x 4 outputs: each loaded input feeds four products and each
    loaded weight two, eight running sums in registers (edge blocks repeat the last
    row or output, which only rewrites the same value).
    """
    m, n_in = a_in.shape
    n_out = w.shape[0]
    for j in range(0, n_out, 4):
        j1, j2, j3 = min(j + 1, n_out - 1), min(j + 2, n_out - 1), min(j + 3, n_out - 1)
        for i in range(0, m, 2):
            i1 = min(i + 1, m - 1)
            s0 = b[j] - b[j]  # a zero of w's dtype: float32 stays float32
            s1 = s2 = s3 = t0 = t1 = t2 = t3 = s0
            for k in range(n_in):
                x, y = a_in[i, k], a_in[i1, k]
                w0, w1, w2, w3 = w[j, k], w[j1, k], w[j2, k], w[j3, k]
                s0 += x * w0
                s1 += x * w1
                s2 += x * w2
                s3 += x * w3
                t0 += y * w0
                t1 += y * w1
                t2 += y * w2
                t3 += y * w3
            z[i, j], z[i, j1], z[i, j2], z[i, j3] = s0 + b[j], s1 + b[j1], s2 + b[j2], s3 + b[j3]
            z[i1, j], z[i1, j1], z[i1, j2], z[i1, j3] = t0 + b[j], t1 + b[j1], t2 + b[j2], t3 + b[j3]


@backend.jit(fastmath=_FAST)
def _backward(d, w, out):
    """out = d w  (BP2's wᵀδ, row form): (m, n_out) x (n_out, n_in) -> (m, n_in)."""
    m, n_out = d.shape
    n_in = w.shape[1]
    for i in range(m):
        for k in range(n_in):
            out[i, k] = 0.0
        for j in range(n_out):
            c = d[i, j]
            for k in range(n_in):
                out[i, k] += c * w[j, k]


@backend.jit(fastmath=_FAST)
def _update(w, b, d, a_in, scale, kind, decay):
    """The penalty step, then w -= scale·dᵀa_in (BP4) and b -= scale·Σ_i d (BP3).

    Four examples per pass over a row of w, so w is loaded and stored a quarter as often.
    """
    m, n_in = a_in.shape
    c = np.empty(5, w.dtype)  # scalars in w's dtype, so float32 stays float32
    c[4] = 1.0 - decay
    for j in range(w.shape[0]):
        # The penalty step, row by row so the row is still in L1 cache for the update:
        # L2 w *= 1 - ηλ/n (kind 1), L1 w -= (ηλ/n) sgn(w) (kind 2).
        if kind == 1:
            f = c[4]
            for k in range(n_in):
                w[j, k] *= f
        elif kind == 2:
            for k in range(n_in):
                v = w[j, k]
                if v > 0:
                    w[j, k] = v - decay
                elif v < 0:
                    w[j, k] = v + decay
        g = d[0, j] - d[0, j]
        for i in range(m):
            g += d[i, j]
        b[j] -= scale * g
        i = 0
        while i + 3 < m:
            c[0], c[1], c[2], c[3] = scale * d[i, j], scale * d[i + 1, j], scale * d[i + 2, j], scale * d[i + 3, j]
            c0, c1, c2, c3 = c[0], c[1], c[2], c[3]
            for k in range(n_in):
                w[j, k] -= (c0 * a_in[i, k] + c1 * a_in[i + 1, k]) + (c2 * a_in[i + 2, k] + c3 * a_in[i + 3, k])
            i += 4
        while i < m:
            c[0] = scale * d[i, j]
            c0 = c[0]
            for k in range(n_in):
                w[j, k] -= c0 * a_in[i, k]
            i += 1


@backend.jit(fastmath=_FAST)
def _sgd_batches(X, Y, perm, start, stop, mb, eta, kind, lmbda_n, ws, bs, acts, cost, A, D, ybuf):
    L = len(ws)
    batch = 0
    for s in range(start, stop, mb):
        m = min(mb, stop - s)
        x = A[0][:m]
        y = ybuf[:m]
        for i in range(m):
            x[i, :] = X[perm[s + i]]
            y[i, :] = Y[perm[s + i]]
        for l in range(L):  # feedforward
            z = D[l][:m]  # z is kept in the delta buffer until it is overwritten
            _forward(A[l][:m], ws[l], bs[l], z)
            _activate(z, A[l + 1][:m], acts[l])
        out = A[L][:m]
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
            _backward(D[l][:m], ws[l], D[l - 1][:m])
            _times_prime(D[l - 1][:m], A[l][:m], acts[l - 1])
        for l in range(L):  # BP3, BP4 and the update
            _update(ws[l], bs[l], D[l][:m], A[l][:m], eta / m, kind, eta * lmbda_n)
        batch += 1
    return -1
