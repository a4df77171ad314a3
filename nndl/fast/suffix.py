"""The dense end of a convolutional net on the fused kernels (chapter 6, made fast).

Chapter 6's nets end in fully connected layers: ConvPool, ConvPool, then FC1000,
FC1000 and a softmax.  At the book's mini-batch of 10 the readable path runs those as
small BLAS products at a fraction of their speed, and each step streams every weight
matrix several times (forward, wᵀδ, δᵀa, the update).  This lowering cuts such a
network in two:

* the *prefix*, every layer before the last run of dense ones (the convolutions and
  pooling), runs on the readable layers: their ``forward``, ``backward`` and the
  optimizer's ``step``, exactly as on the reference path;
* the *suffix*, the layers declaring ``kernel = "dense"`` (or ``"dense-dropout"``: a
  dense layer with dropout of its inputs, with probability ``input_dropout``, the kept
  ones multiplied by ``input_keep_scale``),
  runs on :mod:`nndl.fast.dense`'s kernels: ``_backward`` for BP2's wᵀδ, and ``_layer``,
  which updates each weight row and then, while the row is still in cache, uses it for
  the *next* mini-batch's forward pass.

One step, for mini-batch k (whose forward pass is done) and the next one, k+1:

1. BP1, and BP2 through the suffix with the weights as they are (before this step's
   update), down to ∂C/∂(the suffix's input);
2. the prefix's backward pass and its update;
3. the prefix's forward pass on mini-batch k+1;
4. mini-batch k+1's dropout masks for the suffix;
5. each suffix layer's update (BP3, BP4, the step) fused with mini-batch k+1's forward
   pass through it.

The prefix runs the reference path's operations in the reference path's order (forward
k, backward k, update, forward k+1), and random numbers are drawn from the network's
generator in the reference order: an epoch's permutation, then per mini-batch the
prefix's draws (in its forward pass) and each suffix layer's mask,
``rng.random((m, n_in)) >= p``, layer by layer.  So the weights after a run equal the
reference path's up to the last bits of reassociated sums
(``tests/test_fast_suffix.py``).  Like :mod:`nndl.fast.dense`, this module knows no
class of the model: it reads ``kernel``, ``input_dropout``, ``input_keep_scale`` and the
activations', cost's, regularizer's and optimizer's ``kernel`` ids.
"""
import numpy as np

from .. import backend
from . import dense, shards
from .dense import _ACT, _COST, _FAST, _REG, _layer, _times_prime

KERNELS = ("dense", "dense-dropout")
# Mini-batches up to this size.  Larger ones keep the readable path, where BLAS runs
# their products near its speed; a batch that nndl.fast.shards cuts (a convolutional
# net's, from 32 images on) goes there too.
MAX_BATCH = 31
# A suffix with at least this many weights trains on numba's threads (the layers' rows
# split into one band per thread), BLAS held to one thread meanwhile.  Chapter 6's
# FC1000 nets (1.65 M weights: as many multiply-adds per example as both convolutions)
# then take fewer seconds a step; with an FC100 or FC300 suffix the convolutions lose
# more from BLAS's single thread than the suffix gains.
PARALLEL_WEIGHTS = 1_000_000


def split(layers):
    """The index of the first layer of the dense suffix: layers[i:] all declare a
    kernel of KERNELS, layers[i - 1] does not."""
    i = len(layers)
    while i > 0 and layers[i - 1].kernel in KERNELS:
        i -= 1
    return i


def eligible(net, optimizer, reg, mini_batch_size):
    """True when ``net`` trains on this lowering at mini-batches of ``mini_batch_size``:
    numpy, a suffix of dense layers the kernels run, a fused update rule."""
    if net.xp is not np or not 1 <= mini_batch_size <= MAX_BATCH:
        return False
    if (shards.wanted(net, mini_batch_size, train=True)
            and shards.bounds(mini_batch_size, shards.threads()) is not None):
        return False
    return (dense._dense_stack(net.layers[split(net.layers):], KERNELS)
            and dense.fused_rule(net, optimizer, reg))


class SuffixTrainer:
    """Buffers for one network and mini-batch size, reused across epochs."""

    def __init__(self, net, mini_batch_size):
        self.net = net
        i = split(net.layers)
        self.prefix, suffix = net.layers[:i], net.layers[i:]
        dt, m = net.dtype, mini_batch_size
        self.m = m
        self.ws, self.bs = tuple(l.w for l in suffix), tuple(l.b for l in suffix)
        self.acts = np.array([_ACT[l.activation.kernel] for l in suffix], np.int64)
        self.cost = _COST[net.cost.kernel]
        self.p = np.array([l.input_dropout if l.kernel == "dense-dropout" else 0.0
                           for l in suffix])
        # Dropout's factor for the kept inputs, as nndl.layers.Dropout applies it:
        # 1/(1 - p) in the weights' dtype (inverted dropout), or 1 (the book's).
        self.keep = np.array([l.input_keep_scale for l in suffix], dt)
        self.in_shape = (m,) + tuple(suffix[0].input_shape)
        # Two sets of each layer's (dropped-out) inputs and outputs: mini-batch k's feed
        # its update while mini-batch k+1's are computed with the updated rows.
        self.a_in = tuple(tuple(np.empty((m, l.n_in), dt) for l in suffix) for _ in range(2))
        self.h = tuple(tuple(np.empty((m, l.n_out), dt) for l in suffix) for _ in range(2))
        self.delta = tuple(np.empty((m, l.n_out), dt) for l in suffix)
        # Each layer's mask of the latest mini-batch: 0 or keep, and the uniform
        # numbers it comes from (float64, as the generator draws them).
        self.mask = tuple(np.empty((m, l.n_in), dt) for l in suffix)
        self.uniform = tuple(np.empty((m, l.n_in)) for l in suffix)
        # ∂C/∂(suffix input): only when a prefix needs it
        self.grad_in = np.empty((m if self.prefix else 0, suffix[0].n_in), dt)
        self.y = np.empty((m, suffix[-1].n_out), dt)
        self.rows = np.arange(m)
        self.scales = np.ones(len(suffix) + 1, dt)  # per layer, + L2's factor
        self.n_weights = sum(l.n_in * l.n_out for l in suffix)

    def threads(self):
        """The numba threads a step of the suffix runs on: :func:`nndl.fast.dense.threads`
        for a suffix of PARALLEL_WEIGHTS weights or more, else 1."""
        return dense.threads() if self.n_weights >= PARALLEL_WEIGHTS else 1

    def _forward_prefix(self, x, idx):
        """Mini-batch x[idx]'s forward pass through the prefix, and its suffix layers'
        dropout draws; returns the suffix's input (len(idx), n_in)."""
        a = x[idx].reshape((len(idx),) + self.net.input_shape)  # a copy, as the reference's
        for layer in self.prefix:
            a = layer.forward(a, train=True)
        for p, u in zip(self.p, self.uniform):
            if p > 0.0:
                self.net.rng.random(out=u[:len(idx)])
        return a.reshape(len(idx), -1)

    def run(self, x, y, perm, start, stop, eta, reg, n, nt=None):
        """Train on mini-batches starting at perm[start], perm[start + m], ... < stop, on
        ``nt`` numba threads (default :meth:`threads`); the result does not depend on
        ``nt``.

        Returns -1, or the index (from 0) of the first mini-batch whose output went
        non-finite, before that batch's update is applied.
        """
        kind = _REG[None if reg is None else reg.kernel]
        decay = 0.0 if reg is None else eta * reg.lmbda / n
        nt = self.threads() if nt is None else nt
        # BLAS (the prefix's products) on one thread while numba's threads run the
        # suffix: OpenBLAS's idle workers spin after each call, on the cores numba's
        # threads need, and two pools spinning on the same cores slow each other many-fold.
        # Where BLAS cannot be held back, numba keeps to one thread instead.
        blas = shards._blas() if nt > 1 else None
        if nt > 1 and blas is None:
            nt = 1
        limiter = blas.limit(limits=1) if blas is not None else None
        sc, L, mb = self.scales, len(self.ws), self.m
        sc[:] = 1.0
        sc[L] = 1.0 - decay  # L2's factor w *= 1 - ηλ/n, in the weights' dtype
        try:
            m = min(mb, stop - start)
            self._forward(self._forward_prefix(x, perm[start:start + m]), 0, nt)
            batch = 0
            for s in range(start, stop, mb):
                cur = batch % 2
                self.y[:m] = y[perm[s:s + m]]
                if not self._backward(cur, m, nt):
                    return batch
                if self.prefix:  # the readable backward pass and update
                    grad = self.grad_in[:m].reshape((m,) + self.in_shape[1:])
                    for layer in reversed(self.prefix):
                        grad = layer.backward(grad)
                    self.net.optimizer.step(self.prefix, eta, m, reg, n)
                mn = max(0, min(mb, stop - s - mb))  # the next mini-batch's size
                if kind == 1:  # L2: w *= 1 - ηλ/n, kept as each layer's scale
                    for l in range(L):
                        sc[l] *= sc[L]
                        if sc[l] < dense._RESCALE_BELOW:  # fold it in before w's entries grow large
                            dense._scale_rows(self.ws[l], sc[l])
                            sc[l] = 1.0
                a = self._forward_prefix(x, perm[s + mb:s + mb + mn]) if mn else None
                self._forward(a, 1 - cur, nt, learn=(cur, m, eta / m, kind, decay))
                m = mn
                batch += 1
            return -1
        finally:  # the weights are sc[l]·w: fold the scales back in (divergence too)
            for w, s_ in zip(self.ws, sc[:L]):
                if s_ != 1.0:
                    dense._scale_rows(w, s_)
            if limiter is not None:
                limiter.restore_original_limits()

    def _backward(self, cur, m, nt):
        """BP1, then BP2 through the suffix with the weights before this step's update,
        through each layer's dropout mask, down to grad_in = ∂C/∂(the suffix's input)
        (when there is a prefix).  False, having changed nothing, when an output of
        mini-batch ``cur`` is not finite."""
        H, D, L = self.h[cur], self.delta, len(self.ws)
        if not _output_delta(H[L - 1][:m], self.y[:m], D[L - 1][:m], self.acts[L - 1],
                             self.cost):                                           # BP1
            return False
        for l in range(L - 1, -1 if self.prefix else 0, -1):                       # BP2
            g = D[l - 1][:m] if l > 0 else self.grad_in[:m]
            _backward_blocks(D[l][:m], self.ws[l], self.scales[l], g, nt)      # (w^l)ᵀ δ^l
            _times_mask_prime(g, self.mask[l][:m], self.p[l], H[l - 1][:m],
                              self.acts[l - 1] if l > 0 else -1)              # ⊙ mask ⊙ σ'(z)
        return True

    def _forward(self, a, nxt, nt, learn=None):
        """The forward pass of the mini-batch whose suffix input is ``a`` (None: no next
        mini-batch) through the suffix, into the buffers ``nxt``; with ``learn`` =
        (cur, m, η/m, penalty kind, ηλ/n), each layer first learns from mini-batch
        ``cur``, its rows fused with the forward pass (``nndl.fast.dense._layer``)."""
        cur, m, scale, kind, decay = learn if learn is not None else (0, 0, 0.0, 0, 0.0)
        X, H, sc = self.a_in[nxt], self.h[nxt], self.scales
        mn = 0 if a is None else len(a)
        for l in range(len(self.ws)):
            if mn:  # layer l's input, dropped out as nndl.layers.Dropout does
                _drop(a if l == 0 else H[l - 1][:mn], self.uniform[l][:mn], self.p[l],
                      self.keep[l], self.mask[l][:mn], X[l][:mn])
            _layer(self.ws[l], self.bs[l], self.delta[l][:m], self.a_in[cur][l], self.rows[:m],
                   scale, kind, decay, sc[l], X[l], self.rows[:mn], H[l][:mn], self.acts[l], nt)


@backend.jit(fastmath=_FAST)
def _drop(a, u, p, keep, mask, out):
    """Dropout of a layer's inputs: mask = keep (1/(1 - p), or 1 for the book's dropout)
    where u >= p, else 0; out = a ⊙ mask (p = 0: out = a)."""
    m, n = a.shape
    for i in range(m):
        for k in range(n):
            if p > 0.0:
                mask[i, k] = keep if u[i, k] >= p else keep - keep
                out[i, k] = a[i, k] * mask[i, k]
            else:
                out[i, k] = a[i, k]


@backend.jit(fastmath=_FAST)
def _output_delta(out, y, d, act, cost):
    """BP1: d = a - y, times σ'(z) for the quadratic cost; False when an output is not
    finite."""
    finite = True
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            v = out[i, j]
            if not np.isfinite(v):
                finite = False
            d[i, j] = v - y[i, j]
    if finite and cost == 0:
        _times_prime(d, out, act)
    return finite


@backend.jit(fastmath=_FAST)
def _times_mask_prime(g, mask, p, a, act):
    """g ⊙= mask where the layer drops its inputs (p > 0), then g ⊙= σ'(z) from a = σ(z)
    (act -1: no activation, the suffix's input)."""
    if p > 0.0:
        for i in range(g.shape[0]):
            for k in range(g.shape[1]):
                g[i, k] *= mask[i, k]
    if act >= 0:
        _times_prime(g, a, act)


_COLS = 256  # columns of wᵀδ per block: the block's sums (m x 256) stay in L1 cache


@backend.jit(fastmath=_FAST)
def _backward_cols(d, w, s, out, k0, k1):
    """out[:, k0:k1] = d (s w)[:, k0:k1]: BP2's wᵀδ, row form, for a block of columns.

    ``nndl.fast.dense._backward`` streams all of w once per example, which is cheap
    while w sits in L2 cache; an FC1000 layer's w does not (4 MB in float32).  Here each
    weight is loaded from memory once: five rows of w at a time, their block of columns
    kept in L1 while two examples at a time take from it (``_learn``'s blocking, with
    the roles of w and the activations swapped)."""
    m, n_out = d.shape
    # The loops run from 0 over views of the block: an index from k0 up might be
    # negative as far as LLVM knows, and numba's wraparound check for it would keep the
    # loop from being vectorised.
    n = k1 - k0
    for i in range(m):
        out[i, k0:k1] = 0.0
    j = 0
    while j + 4 < n_out:
        w0, w1, w2, w3, w4 = (w[j, k0:k1], w[j + 1, k0:k1], w[j + 2, k0:k1], w[j + 3, k0:k1],
                              w[j + 4, k0:k1])
        for i in range(0, m - 1, 2):
            o0, o1 = out[i, k0:k1], out[i + 1, k0:k1]
            c0, c1, c2, c3, c4 = (s * d[i, j], s * d[i, j + 1], s * d[i, j + 2],
                                  s * d[i, j + 3], s * d[i, j + 4])
            e0, e1, e2, e3, e4 = (s * d[i + 1, j], s * d[i + 1, j + 1], s * d[i + 1, j + 2],
                                  s * d[i + 1, j + 3], s * d[i + 1, j + 4])
            for k in range(n):
                p0, p1, p2, p3, p4 = w0[k], w1[k], w2[k], w3[k], w4[k]
                o0[k] += ((c0 * p0 + c1 * p1) + (c2 * p2 + c3 * p3)) + c4 * p4
                o1[k] += ((e0 * p0 + e1 * p1) + (e2 * p2 + e3 * p3)) + e4 * p4
        if m % 2:  # an odd example out
            o0 = out[m - 1, k0:k1]
            c0, c1, c2, c3, c4 = (s * d[m - 1, j], s * d[m - 1, j + 1], s * d[m - 1, j + 2],
                                  s * d[m - 1, j + 3], s * d[m - 1, j + 4])
            for k in range(n):
                o0[k] += ((c0 * w0[k] + c1 * w1[k]) + (c2 * w2[k] + c3 * w3[k])) + c4 * w4[k]
        j += 5
    while j < n_out:  # the last rows, one at a time
        w0 = w[j, k0:k1]
        for i in range(m):
            o0 = out[i, k0:k1]
            c0 = s * d[i, j]
            for k in range(n):
                o0[k] += c0 * w0[k]
        j += 1


@backend.jit(fastmath=_FAST, parallel=True)
def _backward_blocks(d, w, s, out, nt):
    """out = d (s w), (m, n_out) x (n_out, n_in) -> (m, n_in), in blocks of _COLS
    columns, shared among ``nt`` threads when large; each column is summed in the same
    order whatever the thread count."""
    n_in = w.shape[1]
    blocks = (n_in + _COLS - 1) // _COLS
    parts = min(nt, blocks)
    if parts > 1 and d.shape[0] * d.shape[1] * n_in >= dense._PARALLEL_MIN:
        for t in backend.prange(parts):
            for kb in range(blocks * t // parts, blocks * (t + 1) // parts):
                _backward_cols(d, w, s, out, kb * _COLS, min(n_in, (kb + 1) * _COLS))
    else:
        for kb in range(blocks):
            _backward_cols(d, w, s, out, kb * _COLS, min(n_in, (kb + 1) * _COLS))
