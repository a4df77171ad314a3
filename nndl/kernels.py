"""The loops of chapter 6: convolution lowered to matrix products, and max-pooling.

A convolutional layer (chapter 6) slides a kh × kw filter over every position of its
input.  ``im2col`` copies each receptive field into a column of one big matrix, so the
whole layer's forward pass becomes a single matrix product that BLAS runs at full
speed; ``col2im`` is its adjoint, which adds the columns back onto the image and so
carries the gradient back to the input.  ``maxpool_forward`` / ``maxpool_backward``
take the largest activation of each non-overlapping p × p window and route the gradient
back to it.

Each operation is ONE public function.  It runs a numba loop (``_*_numba``) for numpy
arrays when numba is available, and otherwise a readable numpy reference
(``_*_numpy``: slicing and reshapes only) that also works for CuPy arrays.  The tests
check that the two agree.

Layout of the column matrix: ``cols`` has shape (C·kh·kw, N·OH·OW); row ``(c, i, j)``
and column ``(n, oh, ow)`` hold ``x[n, c, s·oh + i, s·ow + j]``.  With the weights
flattened to ``W`` (K, C·kh·kw) the convolution is ``W @ cols``, a (K, N·OH·OW) matrix,
i.e. the output in (K, N, OH, OW) order.  Both products of the backward pass,
``δ @ colsᵀ`` and ``Wᵀ @ δ``, are plain BLAS calls on contiguous operands, and the
inner loops of the kernels run along image rows, which are contiguous.

Max-pooling treats its first two axes alike, so :class:`~nndl.conv.ConvPoolLayer`
pools the (K, N, OH, OW) product directly, contiguous, and transposes only the
four-times-smaller result.  The kernels also accept arrays of any strides.  The numba
max-pool loops unroll the book's 2 × 2 windows and route gradients with a zero fill
plus one scattered write per window: no division or unpredictable branch per element.
"""
import numpy as np

from . import backend
from .errors import ShapeError

jit = backend.jit


# -- shapes --------------------------------------------------------------------------
def conv_output_shape(H, W, kh, kw, stride=1):
    """(OH, OW) of a valid convolution: ((H - kh)//s + 1, (W - kw)//s + 1)."""
    if kh > H or kw > W:
        raise ShapeError(f"kernel {kh}x{kw} is larger than the {H}x{W} image")
    if stride < 1:
        raise ShapeError(f"stride must be >= 1, got {stride}")
    return (H - kh) // stride + 1, (W - kw) // stride + 1


def _pool_size(size):
    """(ph, pw) from an int or a pair."""
    if np.ndim(size) == 0:
        ph = pw = int(size)
    else:
        ph, pw = (int(s) for s in size)
    if ph < 1 or pw < 1:
        raise ShapeError(f"pool size must be >= 1, got {size!r}")
    return ph, pw


def pool_output_shape(H, W, size):
    """(H//ph, W//pw); H and W must be multiples of the pool size."""
    ph, pw = _pool_size(size)
    if H % ph or W % pw:
        raise ShapeError(f"pool size {ph}x{pw} does not divide the {H}x{W} input; "
                         f"the input's height and width must be multiples of it")
    return H // ph, W // pw


def _check_4d(x, what):
    if x.ndim != 4:
        raise ShapeError(f"{what}: expected a 4-d (N, C, H, W) array, got shape {x.shape}")


# -- im2col ----------------------------------------------------------------------------
def im2col(x, kh, kw, stride=1, out=None):
    """(N, C, H, W) -> cols (C·kh·kw, N·OH·OW), each column one receptive field.

    ``out``, if given, is a C-contiguous buffer of that shape and dtype to fill.
    """
    _check_4d(x, "im2col")
    N, C, H, W = x.shape
    OH, OW = conv_output_shape(H, W, kh, kw, stride)
    xp = backend.xp(x)
    if out is None:
        out = xp.empty((C * kh * kw, N * OH * OW), x.dtype)
    elif out.shape != (C * kh * kw, N * OH * OW) or out.dtype != x.dtype:
        raise ShapeError(f"im2col out: expected {(C * kh * kw, N * OH * OW)} {x.dtype}, "
                         f"got {out.shape} {out.dtype}")
    if xp is np and backend.HAS_NUMBA:
        _im2col_numba(x, kh, kw, stride, out.reshape(C, kh, kw, N, OH, OW))
    else:
        _im2col_numpy(x, kh, kw, stride, out.reshape(C, kh, kw, N, OH, OW))
    return out


def _im2col_numpy(x, kh, kw, s, cols):
    """Reference: for each filter offset (i, j), one strided slice of the whole batch."""
    N, C, H, W = x.shape
    OH, OW = cols.shape[4], cols.shape[5]
    for i in range(kh):
        for j in range(kw):
            patch = x[:, :, i:i + s * (OH - 1) + 1:s, j:j + s * (OW - 1) + 1:s]  # (N, C, OH, OW)
            cols[:, i, j] = patch.transpose(1, 0, 2, 3)                       # (C, N, OH, OW)
    return cols


@jit(nogil=True)  # shards of a mini-batch run it in parallel (nndl.shards)
def _im2col_numba(x, kh, kw, s, cols):
    """cols[c, i, j, n, oh, ow] = x[n, c, s·oh + i, s·ow + j]; cols is (C, kh, kw, N, OH, OW)."""
    N, C = x.shape[0], x.shape[1]
    OH, OW = cols.shape[4], cols.shape[5]
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for oh in range(OH):
                        if s == 1:  # unit stride: a contiguous copy, which vectorises
                            for ow in range(OW):
                                cols[c, i, j, n, oh, ow] = x[n, c, oh + i, ow + j]
                        else:
                            for ow in range(OW):
                                cols[c, i, j, n, oh, ow] = x[n, c, s * oh + i, s * ow + j]
    return cols


# -- col2im ----------------------------------------------------------------------------
def col2im(cols, x_shape, kh, kw, stride=1, out=None):
    """cols (C·kh·kw, N·OH·OW) -> (N, C, H, W): each column added back onto its field.

    The adjoint of :func:`im2col`: overlapping fields sum.  ``out``, if given, is a
    C-contiguous (N, C, H, W) array that is overwritten.
    """
    N, C, H, W = (int(d) for d in x_shape)
    OH, OW = conv_output_shape(H, W, kh, kw, stride)
    if cols.shape != (C * kh * kw, N * OH * OW):
        raise ShapeError(f"col2im: cols of shape {cols.shape}, expected {(C * kh * kw, N * OH * OW)}")
    xp = backend.xp(cols)
    if out is None:
        out = xp.zeros((N, C, H, W), cols.dtype)
    else:
        out[...] = 0
    cols6 = cols.reshape(C, kh, kw, N, OH, OW)
    if xp is np and backend.HAS_NUMBA:
        _col2im_numba(cols6, stride, out)
    else:
        _col2im_numpy(cols6, stride, out)
    return out


def _col2im_numpy(cols, s, dx):
    """Reference: add each filter offset's slice back in; dx must start at zero."""
    C, kh, kw, N, OH, OW = cols.shape
    for i in range(kh):
        for j in range(kw):
            dx[:, :, i:i + s * (OH - 1) + 1:s, j:j + s * (OW - 1) + 1:s] += \
                cols[:, i, j].transpose(1, 0, 2, 3)                           # (N, C, OH, OW)
    return dx


@jit(nogil=True)  # shards of a mini-batch run it in parallel (nndl.shards)
def _col2im_numba(cols, s, dx):
    """dx[n, c, s·oh + i, s·ow + j] += cols[c, i, j, n, oh, ow]; dx must start at zero.

    In cols' own order, so the big matrix streams through once (chapter 6's second layer
    at mini-batch 256: 6.4 -> 3.4 ms in float32 against image-by-image order); each dx
    entry still sums its terms in (i, j) order."""
    C, kh, kw, N, OH, OW = cols.shape
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                for n in range(N):
                    for oh in range(OH):
                        if s == 1:  # unit stride: contiguous rows, which vectorise
                            for ow in range(OW):
                                dx[n, c, oh + i, ow + j] += cols[c, i, j, n, oh, ow]
                        else:
                            for ow in range(OW):
                                dx[n, c, s * oh + i, s * ow + j] += cols[c, i, j, n, oh, ow]
    return dx


# -- max-pooling -----------------------------------------------------------------------
def maxpool_forward(x, size):
    """(N, C, H, W) -> (values, argmax), each (N, C, H//ph, W//pw).

    ``argmax`` holds the position of each window's maximum inside the window, ``di·pw
    + dj`` (int8 values 0..ph·pw-1; int32 above 127), the first one in row-major order
    on ties.  ``x`` may have any strides.
    """
    _check_4d(x, "maxpool_forward")
    ph, pw = _pool_size(size)
    N, C, H, W = x.shape
    PH, PW = pool_output_shape(H, W, (ph, pw))
    xp = backend.xp(x)
    if xp is np and backend.HAS_NUMBA:
        values = np.empty((N, C, PH, PW), x.dtype)
        argmax = np.empty((N, C, PH, PW), _index_dtype(ph, pw))
        _maxpool_forward_numba(x, ph, pw, values, argmax)
        return values, argmax
    return _maxpool_forward_numpy(x, ph, pw)


def _index_dtype(ph, pw):
    return np.int8 if ph * pw <= 127 else np.int32


def pool_windows(x, size):
    """(N, C, H, W) -> (N, C, PH, PW, ph·pw): each window's values in row-major order."""
    _check_4d(x, "pool_windows")
    ph, pw = _pool_size(size)
    N, C, H, W = x.shape
    PH, PW = pool_output_shape(H, W, (ph, pw))
    w = x.reshape(N, C, PH, ph, PW, pw).transpose(0, 1, 2, 4, 3, 5)     # (N, C, PH, PW, ph, pw)
    return w.reshape(N, C, PH, PW, ph * pw)


def from_pool_windows(win, size):
    """The inverse of :func:`pool_windows`: (N, C, PH, PW, ph·pw) -> (N, C, PH·ph, PW·pw)."""
    ph, pw = _pool_size(size)
    N, C, PH, PW, _ = win.shape
    w = win.reshape(N, C, PH, PW, ph, pw).transpose(0, 1, 2, 4, 3, 5)   # (N, C, PH, ph, PW, pw)
    return w.reshape(N, C, PH * ph, PW * pw)


def _maxpool_forward_numpy(x, ph, pw):
    """Reference: reshape into windows, then max and argmax along the last axis."""
    win = pool_windows(x, (ph, pw))                             # (N, C, PH, PW, ph·pw)
    argmax = win.argmax(axis=-1).astype(_index_dtype(ph, pw))   # (N, C, PH, PW)
    return win.max(axis=-1), argmax


@jit
def _maxpool_forward_numba(x, ph, pw, values, argmax):
    """values[n, c, a, b] = max of x[n, c, a·ph:(a+1)·ph, b·pw:(b+1)·pw]; argmax its index."""
    N, C, PH, PW = values.shape
    for n in range(N):
        for c in range(C):
            for a in range(PH):
                for b in range(PW):
                    best, k = _window_max(x, n, c, a, b, ph, pw)
                    values[n, c, a, b] = best
                    argmax[n, c, a, b] = k
    return values


@jit(inline="always")
def _window_max(x, n, c, a, b, ph, pw):
    """(max, its index di·pw + dj) of window (a, b) of x[n, c]; the first on ties."""
    if ph == 2 and pw == 2:  # the book's 2x2 windows, unrolled: twice as fast
        best, k = x[n, c, 2 * a, 2 * b], 0
        v = x[n, c, 2 * a, 2 * b + 1]
        if v > best:
            best, k = v, 1
        v = x[n, c, 2 * a + 1, 2 * b]
        if v > best:
            best, k = v, 2
        v = x[n, c, 2 * a + 1, 2 * b + 1]
        if v > best:
            best, k = v, 3
        return best, k
    best, k = x[n, c, a * ph, b * pw], 0
    for di in range(ph):
        for dj in range(pw):
            v = x[n, c, a * ph + di, b * pw + dj]
            if v > best:
                best, k = v, di * pw + dj
    return best, k


def maxpool_backward(delta, argmax, size, out=None):
    """δ (N, C, PH, PW) -> (N, C, PH·ph, PW·pw): each δ goes to its window's argmax.

    Every other entry is zero, so the gradient's sum is preserved.  ``out``, if given,
    is overwritten entirely and may have any strides (a transposed view is fine).
    """
    _check_4d(delta, "maxpool_backward")
    ph, pw = _pool_size(size)
    N, C, PH, PW = delta.shape
    if argmax.shape != delta.shape:
        raise ShapeError(f"maxpool_backward: argmax {argmax.shape} and delta {delta.shape} differ")
    xp = backend.xp(delta)
    if out is None:
        out = xp.empty((N, C, PH * ph, PW * pw), delta.dtype)
    elif out.shape != (N, C, PH * ph, PW * pw):
        raise ShapeError(f"maxpool_backward out: expected {(N, C, PH * ph, PW * pw)}, got {out.shape}")
    if xp is np and backend.HAS_NUMBA:
        _maxpool_backward_numba(delta, argmax, ph, pw, out)
    else:
        _maxpool_backward_numpy(delta, argmax, ph, pw, out)
    return out


def _maxpool_backward_numpy(delta, argmax, ph, pw, out):
    """Reference: a one-hot mask of each window's argmax, times δ, reshaped back."""
    xp = backend.xp(delta)
    onehot = argmax[..., None] == xp.arange(ph * pw)                  # (N, C, PH, PW, ph·pw)
    win = xp.where(onehot, delta[..., None], 0).astype(delta.dtype)    # (N, C, PH, PW, ph·pw)
    out[...] = from_pool_windows(win, (ph, pw))                        # (N, C, H, W)
    return out


@jit
def _window_offsets(ph, pw):
    """Window index k -> its (row, column) offsets (k // pw, k % pw): no division per element."""
    di = np.empty(ph * pw, np.int64)
    dj = np.empty(ph * pw, np.int64)
    for k in range(ph * pw):
        di[k], dj[k] = k // pw, k % pw
    return di, dj


@jit
def _maxpool_backward_numba(delta, argmax, ph, pw, out):
    """out = 0, then out[n, c, a·ph + di, b·pw + dj] = δ[n, c, a, b] at each argmax (di, dj)."""
    N, C, PH, PW = delta.shape
    H, W = out.shape[2], out.shape[3]
    di, dj = _window_offsets(ph, pw)
    for n in range(N):
        for c in range(C):
            for h in range(H):
                for w in range(W):
                    out[n, c, h, w] = 0
            for a in range(PH):
                for b in range(PW):
                    k = argmax[n, c, a, b]
                    out[n, c, a * ph + di[k], b * pw + dj[k]] = delta[n, c, a, b]
    return out


# -- chapter 6's pooled layer: pool, bias and activation in one pass ---------------------------
def pool_bias_act(zt, b, size, relu, z=None, a=None):
    """The rest of a ConvPoolLayer's forward pass after its product ``zt`` (K, N, OH, OW).

    Returns ``(z, a, argmax)``: ``z`` (N, K, PH, PW) = max-pool of zt, transposed, plus
    the bias ``b`` (K,); ``a`` = max(z, 0) if ``relu`` else ``z`` itself; ``argmax``
    (K, N, PH, PW) as :func:`maxpool_forward` gives it.  ``z`` and ``a``, if given, are
    C-contiguous outputs to fill.  The numba loop does it in one pass over zt, where the
    reference pools, transposes, adds and clips in four (mini-batch 10: five numpy calls
    and four temporaries a layer and step, against one call).
    """
    _check_4d(zt, "pool_bias_act")
    ph, pw = _pool_size(size)
    K, N, OH, OW = zt.shape
    PH, PW = pool_output_shape(OH, OW, (ph, pw))
    xp = backend.xp(zt)
    if z is None:
        z = xp.empty((N, K, PH, PW), zt.dtype)
    if a is None and relu:
        a = xp.empty((N, K, PH, PW), zt.dtype)
    if xp is np and backend.HAS_NUMBA and zt.dtype == b.dtype and z.flags.c_contiguous \
            and (a is None or a.flags.c_contiguous):
        argmax = np.empty((K, N, PH, PW), _index_dtype(ph, pw))
        _pool_bias_act_numba(zt, b, ph, pw, relu, z, z if a is None else a, argmax)
    else:
        pooled, argmax = maxpool_forward(zt, (ph, pw))                  # (K, N, PH, PW)
        z[...] = pooled.transpose(1, 0, 2, 3)
        z += b[:, None, None]
        if relu:
            xp.maximum(z, 0, out=a)
    return z, (a if relu else z), argmax


@jit(nogil=True)  # shards of a mini-batch run it in parallel (nndl.shards)
def _pool_bias_act_numba(zt, b, ph, pw, relu, z, a, argmax):
    """z[n, k] = maxpool(zt[k, n]) + b[k]; a[n, k] = max(z, 0) if relu; argmax[k, n]."""
    K, N, OH, OW = zt.shape
    PH, PW = z.shape[2], z.shape[3]
    for k in range(K):
        bk = b[k]
        for n in range(N):
            for r in range(PH):
                for c in range(PW):
                    best, i = _window_max(zt, k, n, r, c, ph, pw)
                    v = best + bk
                    z[n, k, r, c] = v
                    if relu:  # np.maximum(v, 0): NaN and -0.0 pass through
                        a[n, k, r, c] = 0 if v < 0 else v
                    argmax[k, n, r, c] = i
    return z


def unpool_bias_act_backward(grad, z, argmax, size, relu, out):
    """The backward pass of :func:`pool_bias_act`: returns ∂C/∂b (K,) and fills ``out``.

    ``grad`` (N, K, PH, PW) is ∂C/∂a; with ``relu`` it is masked by z > 0 (ReLU's σ'),
    otherwise it is taken as δ = ∂C/∂z itself.  ``out`` (K, N, OH, OW), C-contiguous,
    receives ∂C/∂zt: δ at each window's argmax, zero elsewhere.
    """
    _check_4d(grad, "unpool_bias_act_backward")
    ph, pw = _pool_size(size)
    N, K, PH, PW = grad.shape
    if argmax.shape != (K, N, PH, PW) or z.shape != grad.shape or out.shape != (K, N, PH * ph, PW * pw):
        raise ShapeError(f"unpool_bias_act_backward: grad {grad.shape}, z {z.shape}, argmax "
                         f"{argmax.shape} and out {out.shape} do not match")
    xp = backend.xp(grad)
    if xp is np and backend.HAS_NUMBA and grad.dtype == z.dtype == out.dtype and out.flags.c_contiguous:
        nabla_b = np.empty(K, grad.dtype)
        _unpool_bias_act_backward_numba(grad, z, argmax, ph, pw, relu, out, nabla_b)
        return nabla_b
    delta = grad * (z > 0) if relu else grad                               # BP2: ⊙ σ'(z)
    maxpool_backward(delta.transpose(1, 0, 2, 3), argmax, (ph, pw), out=out)
    return delta.sum(axis=(0, 2, 3))                                        # BP3


@jit(nogil=True)  # shards of a mini-batch run it in parallel (nndl.shards)
def _unpool_bias_act_backward_numba(grad, z, argmax, ph, pw, relu, out, nabla_b):
    """δ = grad ⊙ (z > 0) if relu else grad; nabla_b[k] = Σ δ[:, k]; out[k, n] = δ at argmax."""
    K, N, OH, OW = out.shape
    PH, PW = argmax.shape[2], argmax.shape[3]
    di, dj = _window_offsets(ph, pw)
    for k in range(K):
        nabla_b[k] = 0
        zero = nabla_b[k]  # a zero of the gradient's dtype
        total = zero
        for n in range(N):
            if not (ph == 2 and pw == 2):
                for h in range(OH):
                    for w in range(OW):
                        out[k, n, h, w] = 0
            for r in range(PH):
                for c in range(PW):
                    d = grad[n, k, r, c]
                    if relu and not z[n, k, r, c] > 0:
                        d = d * zero  # as grad * False: ±0, or NaN for an inf or NaN grad
                    total += d
                    i = argmax[k, n, r, c]
                    if ph == 2 and pw == 2:  # the book's windows: each written once, no zero fill
                        out[k, n, 2 * r, 2 * c] = d if i == 0 else zero
                        out[k, n, 2 * r, 2 * c + 1] = d if i == 1 else zero
                        out[k, n, 2 * r + 1, 2 * c] = d if i == 2 else zero
                        out[k, n, 2 * r + 1, 2 * c + 1] = d if i == 3 else zero
                    else:
                        out[k, n, r * ph + di[i], c * pw + dj[i]] = d
        nabla_b[k] = total
    return nabla_b


# -- a product with a long inner dimension --------------------------------------------------
def matmul_nt(a, b, out):
    """out = a @ bᵀ for a (M, K) and b (N, K); returns ``out`` (M, N).

    The weight gradient of chapter 6's first layer, ``δ @ colsᵀ``, is such a product with
    M·N tiny and K huge: (20, 5,760) @ (5,760, 25) at mini-batch 10, K = 147,456 at 256.
    OpenBLAS runs that shape at a fraction of its speed (its packing does not pay for a
    tiny output); ``_dot_rows`` takes dot products of whole rows instead, 4 x 4 of them
    at a time in registers, a cache-sized stretch of K at a time.  It wins for that tiny
    output at every mini-batch, even on one core against BLAS's two and with operands
    that stream from memory.  Outputs bigger than ``_DOT_MAX_OUT`` go to BLAS, whose
    packing pays there (the second layer's (40, 500)), as do short K, other array types,
    and everything where numba is absent.
    """
    M, K = a.shape
    N = b.shape[0]
    if (backend.HAS_NUMBA and type(a) is np.ndarray and type(b) is np.ndarray
            and type(out) is np.ndarray and a.dtype == b.dtype == out.dtype
            and a.dtype in (np.float32, np.float64) and a.flags.c_contiguous
            and b.flags.c_contiguous and out.flags.c_contiguous and K >= 8 * max(M, N)
            and M * N <= _DOT_MAX_OUT):
        _dot_rows(a, b, out, _DOT_CHUNK)
        return out
    return backend.xp(a).matmul(a, b.T, out=out)


_DOT_CHUNK = 2048  # elements of K per pass: 8 rows of 2,048 float64 are 128 KB (L2)
_DOT_MAX_OUT = 4096  # larger outputs go to BLAS: its packing pays (second layer's 40 x 500)


@jit(fastmath={"reassoc", "contract", "arcp", "nsz"}, nogil=True)
def _dot_rows(a, b, out, kc):
    """out[i, j] = a[i] · b[j], K in stretches of ``kc`` (the first written, the rest
    added), blocked four rows of a x four rows of b: sixteen running sums, each loaded
    value used four times.  Edge blocks repeat the last row, which recomputes the same
    sum into the same place, so each stretch's sums go to ``part`` and then onto out."""
    M, K = a.shape
    N = b.shape[0]
    part = np.empty((M, N), out.dtype)
    for k0 in range(0, K, kc):
        k1 = min(K, k0 + kc)
        dst = out if k0 == 0 else part
        for i in range(0, M, 4):
            i1, i2, i3 = min(i + 1, M - 1), min(i + 2, M - 1), min(i + 3, M - 1)
            a0, a1, a2, a3 = a[i, k0:k1], a[i1, k0:k1], a[i2, k0:k1], a[i3, k0:k1]
            for j in range(0, N, 4):
                j1, j2, j3 = min(j + 1, N - 1), min(j + 2, N - 1), min(j + 3, N - 1)
                b0, b1, b2, b3 = b[j, k0:k1], b[j1, k0:k1], b[j2, k0:k1], b[j3, k0:k1]
                s00 = a0[0] - a0[0]  # a zero of a's dtype
                s01 = s02 = s03 = s10 = s11 = s12 = s13 = s00
                s20 = s21 = s22 = s23 = s30 = s31 = s32 = s33 = s00
                for k in range(k1 - k0):  # k from 0 on slices: LLVM vectorises along k
                    p0, p1, p2, p3 = a0[k], a1[k], a2[k], a3[k]
                    q0, q1, q2, q3 = b0[k], b1[k], b2[k], b3[k]
                    s00 += p0 * q0
                    s01 += p0 * q1
                    s02 += p0 * q2
                    s03 += p0 * q3
                    s10 += p1 * q0
                    s11 += p1 * q1
                    s12 += p1 * q2
                    s13 += p1 * q3
                    s20 += p2 * q0
                    s21 += p2 * q1
                    s22 += p2 * q2
                    s23 += p2 * q3
                    s30 += p3 * q0
                    s31 += p3 * q1
                    s32 += p3 * q2
                    s33 += p3 * q3
                dst[i, j], dst[i, j1], dst[i, j2], dst[i, j3] = s00, s01, s02, s03
                dst[i1, j], dst[i1, j1], dst[i1, j2], dst[i1, j3] = s10, s11, s12, s13
                dst[i2, j], dst[i2, j1], dst[i2, j2], dst[i2, j3] = s20, s21, s22, s23
                dst[i3, j], dst[i3, j1], dst[i3, j2], dst[i3, j3] = s30, s31, s32, s33
        if k0 > 0:
            for i in range(M):
                for j in range(N):
                    out[i, j] += part[i, j]
    return out
