"""nndl.kernels: im2col/col2im and max-pooling, numba against the numpy reference."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndl import backend, kernels
from nndl.errors import ShapeError

DTYPES = [np.float32, np.float64]
needs_numba = pytest.mark.skipif(not backend.HAS_NUMBA, reason="numba unavailable or disabled")

# (N, C, H, W, kh, kw, stride)
CONV_CASES = [(2, 3, 7, 6, 3, 2, 1), (3, 2, 9, 8, 3, 3, 2), (1, 1, 5, 5, 5, 5, 1), (10, 4, 12, 12, 5, 5, 1)]


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _direct_conv(x, w, stride):
    """The definition, one output at a time: z[n,k,i,j] = Σ_c,a,b w[k,c,a,b] x[n,c,s·i+a,s·j+b]."""
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    OH, OW = (H - kh) // stride + 1, (W - kw) // stride + 1
    z = np.zeros((N, K, OH, OW))
    for n in range(N):
        for k in range(K):
            for i in range(OH):
                for j in range(OW):
                    window = x[n, :, stride * i:stride * i + kh, stride * j:stride * j + kw]
                    z[n, k, i, j] = (w[k] * window).sum()
    return z


def _direct_maxpool(x, p):
    N, C, H, W = x.shape
    out = np.empty((N, C, H // p, W // p), x.dtype)
    for n in range(N):
        for c in range(C):
            for i in range(H // p):
                for j in range(W // p):
                    out[n, c, i, j] = x[n, c, i * p:(i + 1) * p, j * p:(j + 1) * p].max()
    return out


def _cols(x, kh, kw, s, impl):
    N, C, H, W = x.shape
    OH, OW = kernels.conv_output_shape(H, W, kh, kw, s)
    cols = np.empty((C, kh, kw, N, OH, OW), x.dtype)
    impl(x, kh, kw, s, cols)
    return cols.reshape(C * kh * kw, N * OH * OW)


# -- numba equals the numpy reference ----------------------------------------------------
@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_numba_equals_numpy_reference(case, dtype, rng):
    N, C, H, W, kh, kw, s = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    np.testing.assert_array_equal(_cols(x, kh, kw, s, kernels._im2col_numba),
                                  _cols(x, kh, kw, s, kernels._im2col_numpy))


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("case", CONV_CASES)
def test_col2im_numba_equals_numpy_reference(case, dtype, rng):
    N, C, H, W, kh, kw, s = case
    OH, OW = kernels.conv_output_shape(H, W, kh, kw, s)
    cols = rng.standard_normal((C, kh, kw, N, OH, OW)).astype(dtype)
    a, b = np.zeros((N, C, H, W), dtype), np.zeros((N, C, H, W), dtype)
    kernels._col2im_numba(cols, s, a)
    kernels._col2im_numpy(cols, s, b)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("transposed", [False, True])
def test_maxpool_numba_equals_numpy_reference(dtype, transposed, rng):
    shape = (3, 4, 6, 8)
    if transposed:  # the strided view ConvPoolLayer pools from
        x = rng.standard_normal((4, 3, 6, 8)).astype(dtype).transpose(1, 0, 2, 3)
    else:
        x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, :2, :2] = 1.5  # a tie: both pick the first in row-major order
    for size in (2, (3, 2)):
        ph, pw = kernels._pool_size(size)
        PH, PW = 6 // ph, 8 // pw
        v1, a1 = np.empty((3, 4, PH, PW), dtype), np.empty((3, 4, PH, PW), np.int8)
        kernels._maxpool_forward_numba(x, ph, pw, v1, a1)
        v2, a2 = kernels._maxpool_forward_numpy(x, ph, pw)
        np.testing.assert_array_equal(v1, v2)
        np.testing.assert_array_equal(a1, a2)
        delta = rng.standard_normal(v1.shape).astype(dtype)
        o1, o2 = np.full(shape, np.nan, dtype), np.full(shape, np.nan, dtype)
        kernels._maxpool_backward_numba(delta, a1, ph, pw, o1)
        kernels._maxpool_backward_numpy(delta, a2, ph, pw, o2)
        np.testing.assert_array_equal(o1, o2)


@needs_numba
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("relu", [False, True])
@pytest.mark.parametrize("size", [2, (3, 2)])
def test_pool_bias_act_numba_equals_numpy_reference(dtype, relu, size, rng, monkeypatch):
    ph, pw = kernels._pool_size(size)
    K, N, PH, PW = 3, 4, 2, 3
    zt = rng.standard_normal((K, N, PH * ph, PW * pw)).astype(dtype)
    zt[0, 0, :ph, :pw] = 1.5              # a tie: the first in row-major order wins
    zt[1, 2, :ph, :pw] = -0.25            # a window whose max is exactly -b: z = -0.0 or 0
    zt[2, 3, 0, 0] = np.nan               # NaN: ignored by the max unless first, as before
    b = rng.standard_normal(K).astype(dtype)
    b[1] = 0.25
    fast = kernels.pool_bias_act(zt, b, size, relu)
    monkeypatch.setattr(backend, "HAS_NUMBA", False)
    ref = kernels.pool_bias_act(zt, b, size, relu)
    monkeypatch.undo()
    for f, r in zip(fast, ref):
        assert f.dtype == r.dtype and f.shape == r.shape
        np.testing.assert_array_equal(f, r)
        np.testing.assert_array_equal(np.signbit(f), np.signbit(r))
    assert fast[1] is fast[0] if not relu else (np.isnan(fast[1]) | (fast[1] >= 0)).all()
    pooled = kernels._maxpool_forward_numpy(zt, ph, pw)[0].transpose(1, 0, 2, 3)
    np.testing.assert_array_equal(fast[0], pooled + b[:, None, None])

    grad = rng.standard_normal(fast[0].shape).astype(dtype)
    grad[0, 0, 0, 0], grad[1, 1, 0, 1] = np.inf, np.nan   # masked by ReLU: NaN either way
    outs = []
    for numba_on in (True, False):
        monkeypatch.setattr(backend, "HAS_NUMBA", numba_on)
        out = np.full(zt.shape, 7.0, dtype)                   # overwritten everywhere
        outs.append((kernels.unpool_bias_act_backward(grad, fast[0], fast[2], size, relu, out), out))
    (nb1, o1), (nb2, o2) = outs
    np.testing.assert_array_equal(o1, o2)
    assert nb1.dtype == nb2.dtype == dtype
    np.testing.assert_allclose(nb1, nb2, rtol=1e-6 if dtype == np.float32 else 1e-13)
    delta = grad * (fast[0] > 0) if relu else grad
    np.testing.assert_allclose(nb2, delta.sum(axis=(0, 2, 3)), rtol=1e-6)
    np.testing.assert_allclose(o2.sum(axis=(1, 2, 3)), nb2, rtol=1e-5)   # δ routed, nothing lost


def test_unpool_bias_act_backward_checks_shapes(rng):
    zt = rng.standard_normal((2, 3, 4, 4))
    z, a, argmax = kernels.pool_bias_act(zt, np.zeros(2), 2, True)
    with pytest.raises(ShapeError, match="do not match"):
        kernels.unpool_bias_act_backward(z, z, argmax, 2, True, np.empty((2, 3, 4, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_public_functions_keep_dtype(dtype, rng):
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    cols = kernels.im2col(x, 3, 3)
    assert cols.dtype == dtype and cols.shape == (27, 2 * 36)
    assert kernels.col2im(cols, x.shape, 3, 3).dtype == dtype
    v, a = kernels.maxpool_forward(x, 2)
    assert v.dtype == dtype
    assert kernels.maxpool_backward(v, a, 2).dtype == dtype


# -- against the definitions -------------------------------------------------------------
@pytest.mark.parametrize("case", CONV_CASES)
def test_im2col_matmul_is_the_direct_convolution(case, rng):
    N, C, H, W, kh, kw, s = case
    K = 3
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C, kh, kw))
    OH, OW = kernels.conv_output_shape(H, W, kh, kw, s)
    for impl in (kernels.im2col, lambda *a: _cols(*a, kernels._im2col_numpy)):
        z = (w.reshape(K, -1) @ impl(x, kh, kw, s)).reshape(K, N, OH, OW).transpose(1, 0, 2, 3)
        np.testing.assert_allclose(z, _direct_conv(x, w, s), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("p", [1, 2, 3])
def test_maxpool_forward_is_the_window_max(p, rng):
    x = rng.standard_normal((2, 3, 6, 12))
    v, argmax = kernels.maxpool_forward(x, p)
    np.testing.assert_array_equal(v, _direct_maxpool(x, p))
    np.testing.assert_array_equal(_direct_maxpool(x, p), kernels._maxpool_forward_numpy(x, p, p)[0])
    assert argmax.min() >= 0 and argmax.max() < p * p


def test_maxpool_backward_routes_gradient_to_argmax_and_keeps_its_sum(rng):
    x = rng.standard_normal((2, 3, 4, 6))
    v, argmax = kernels.maxpool_forward(x, 2)
    delta = rng.standard_normal(v.shape)
    for dx in (kernels.maxpool_backward(delta, argmax, 2),
               kernels._maxpool_backward_numpy(delta, argmax, 2, 2, np.empty_like(x))):
        assert np.isclose(dx.sum(), delta.sum())
        assert (dx != 0).sum() == delta.size                 # one nonzero per window
        np.testing.assert_array_equal(dx[x == np.repeat(np.repeat(v, 2, 2), 2, 3)], dx[dx != 0])
        # each window's gradient sits where x is largest
        win = kernels.pool_windows(dx, 2)
        np.testing.assert_array_equal(win.argmax(axis=-1)[delta > 0], argmax[delta > 0])
        np.testing.assert_array_equal(win.sum(axis=-1), delta)


def test_maxpool_backward_writes_into_a_strided_out(rng):
    v, argmax = kernels.maxpool_forward(rng.standard_normal((2, 3, 4, 4)), 2)
    buf = np.full((3, 2, 4, 4), np.nan)
    kernels.maxpool_backward(v, argmax, 2, out=buf.transpose(1, 0, 2, 3))
    np.testing.assert_array_equal(buf.transpose(1, 0, 2, 3), kernels.maxpool_backward(v, argmax, 2))


# -- properties --------------------------------------------------------------------------
conv_shapes = st.tuples(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9),
    st.integers(1, 4), st.integers(1, 4), st.integers(1, 3),
).filter(lambda t: t[4] <= t[2] and t[5] <= t[3])


@settings(max_examples=40, deadline=None)
@given(conv_shapes, st.integers(0, 2**31 - 1))
def test_col2im_is_the_adjoint_of_im2col(shape, seed):
    N, C, H, W, kh, kw, s = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    OH, OW = kernels.conv_output_shape(H, W, kh, kw, s)
    assert (OH, OW) == ((H - kh) // s + 1, (W - kw) // s + 1)
    c = rng.standard_normal((C * kh * kw, N * OH * OW))
    cols = kernels.im2col(x, kh, kw, s)
    assert cols.shape == c.shape
    lhs = float((cols * c).sum())                              # <im2col(x), c>
    rhs = float((x * kernels.col2im(c, x.shape, kh, kw, s)).sum())  # <x, col2im(c)>
    assert np.isclose(lhs, rhs, rtol=1e-10, atol=1e-10)
    ref = kernels._col2im_numpy(c.reshape(C, kh, kw, N, OH, OW), s, np.zeros_like(x))
    np.testing.assert_allclose(kernels.col2im(c, x.shape, kh, kw, s), ref, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 4),
       st.integers(1, 3), st.integers(0, 2**31 - 1))
def test_pool_output_shape_and_gradient_sum(N, C, PH, PW, p, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, PH * p, PW * p))
    v, argmax = kernels.maxpool_forward(x, p)
    assert v.shape == argmax.shape == (N, C, (PH * p) // p, (PW * p) // p)
    delta = rng.standard_normal(v.shape)
    dx = kernels.maxpool_backward(delta, argmax, p)
    assert dx.shape == x.shape
    assert np.isclose(dx.sum(), delta.sum())


# -- errors ------------------------------------------------------------------------------
def test_pool_size_must_divide_the_input():
    with pytest.raises(ShapeError, match="does not divide the 5x4"):
        kernels.maxpool_forward(np.zeros((1, 1, 5, 4)), 2)


def test_kernel_larger_than_image_is_a_shape_error():
    with pytest.raises(ShapeError, match="kernel 5x5 is larger than the 4x4 image"):
        kernels.im2col(np.zeros((1, 1, 4, 4)), 5, 5)


def test_col2im_checks_the_column_shape():
    with pytest.raises(ShapeError, match="cols of shape"):
        kernels.col2im(np.zeros((9, 5)), (1, 1, 4, 4), 3, 3)


# -- CuPy: the numpy reference runs unchanged ------------------------------------------------
@pytest.mark.gpu
def test_kernels_on_cupy_equal_numpy(rng):
    cp = pytest.importorskip("cupy")
    if not backend.HAS_CUPY:
        pytest.skip("CuPy present but unusable")
    x = rng.standard_normal((2, 3, 8, 8))
    xg = cp.asarray(x)
    np.testing.assert_allclose(cp.asnumpy(kernels.im2col(xg, 3, 3)), kernels.im2col(x, 3, 3))
    c = kernels.im2col(x, 3, 3)
    np.testing.assert_allclose(cp.asnumpy(kernels.col2im(cp.asarray(c), x.shape, 3, 3)),
                               kernels.col2im(c, x.shape, 3, 3))
    vg, ag = kernels.maxpool_forward(xg, 2)
    v, a = kernels.maxpool_forward(x, 2)
    np.testing.assert_array_equal(cp.asnumpy(vg), v)
    np.testing.assert_array_equal(cp.asnumpy(kernels.maxpool_backward(vg, ag, 2)),
                                  kernels.maxpool_backward(v, a, 2))


# (M, N, K): long K runs numba's _dot_rows (edges of 1-3 rows, several stretches of K,
# and a 17 MB pair of rows); (4, 8, 64) and (40, 500, 640) are BLAS's (a short K).
@needs_numba
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-13), (np.float32, 2e-6)])
@pytest.mark.parametrize("M, N, K", [(20, 25, 5760), (1, 1, 9), (5, 7, 3 * kernels._DOT_CHUNK + 11),
                                     (4, 8, 64), (40, 500, 640), (1, 1, 2_200_000)])
def test_matmul_nt_equals_the_matrix_product(M, N, K, dtype, tol, rng):
    a = rng.standard_normal((M, K)).astype(dtype)
    b = rng.standard_normal((N, K)).astype(dtype)
    out = np.full((M, N), np.nan, dtype)
    assert kernels.matmul_nt(a, b, out) is out
    want = a.astype(np.float64) @ b.astype(np.float64).T
    # rounding grows like eps·√K per term's √K-sized sum: eps·K, with room to spare
    np.testing.assert_allclose(out, want, rtol=tol, atol=4 * np.finfo(dtype).eps * K)


def test_matmul_nt_long_rows_use_the_row_kernel(rng, monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "_dot_rows", lambda *args: calls.append(args[0].shape))
    kernels.matmul_nt(rng.random((2, 100)), rng.random((3, 100)), np.empty((2, 3)))
    kernels.matmul_nt(rng.random((20, 100)), rng.random((30, 100)), np.empty((20, 30)))  # K short
    kernels.matmul_nt(rng.random((20, 4000)), rng.random((25, 4000)), np.empty((20, 25)))
    kernels.matmul_nt(rng.random((40, 4000)), rng.random((500, 4000)), np.empty((40, 500)))  # M·N big
    assert calls == ([(2, 100), (20, 4000)] if backend.HAS_NUMBA else [])
