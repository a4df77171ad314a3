"""nndl.autograd: every operation against finite differences and against its definition,
the graph's bookkeeping, the backends, and PyTorch where it is installed."""
import doctest

import numpy as np
import pytest

from nndl import autograd, backend
from nndl.autograd import Tensor, conv2d, max_pool2d, no_grad, softmax_cross_entropy
from nndl.backend import to_numpy
from nndl.errors import ConfigError, ShapeError
from nndl.gradcheck import assert_close, numerical_gradient


def check_gradients(f, *arrays, seed=1):
    """Every input's gradient of Σ f(inputs) ⊙ r (r a fixed random upstream gradient)
    from backward() against central differences of the same function on plain arrays."""
    leaves = [Tensor(a, requires_grad=True) for a in arrays]
    out = f(*leaves)
    r = np.random.default_rng(seed).standard_normal(out.shape)
    (out * r).sum().backward()

    def loss():
        with no_grad():
            return float((f(*[Tensor(a) for a in arrays]).data * r).sum())
    for i, (leaf, a) in enumerate(zip(leaves, arrays)):
        assert leaf.grad.shape == a.shape and leaf.grad.dtype == a.dtype
        assert_close(leaf.grad, numerical_gradient(loss, a), err_msg=f"input {i}")


def normal(*shapes):
    """Inputs drawn N(0, 1) in these shapes."""
    return lambda rng: tuple(rng.standard_normal(shape) for shape in shapes)


def _positive(rng, shape):
    return rng.uniform(0.5, 2.0, shape)


def _conv_shapes(rng):
    return rng.standard_normal((2, 2, 5, 6)), rng.standard_normal((3, 2, 3, 2)), rng.standard_normal(3)


def _labels():
    return np.array([2, 0, 1, 2])


# name: (f, the inputs from an rng)
OPS = {
    "add": (lambda x, y: x + y, normal((3, 4), (3, 4))),
    "add broadcast row": (lambda x, b: x + b, normal((3, 4), (4,))),
    "add broadcast outer": (lambda x, y: x + y, normal((3, 1), (1, 4))),
    "add a number": (lambda x: 2.5 + x + 1, normal((2, 3))),
    "sub broadcast scalar tensor": (lambda x, s: x - s, normal((3, 2), ())),
    "rsub": (lambda x: 1.0 - x, normal((3, 2))),
    "neg": (lambda x: -x, normal((3, 2))),
    "mul broadcast column": (lambda x, y: x * y, normal((3, 4), (3, 1))),
    "mul a number": (lambda x: 3 * x * 0.5, normal((2, 3))),
    "div": (lambda x, y: x / y, lambda r: (r.standard_normal((3, 4)), _positive(r, (3, 4)))),
    "div broadcast": (lambda x, y: x / y, lambda r: (r.standard_normal((2, 3, 4)), _positive(r, (3, 1)))),
    "rtruediv": (lambda x: 2.0 / x, lambda r: (_positive(r, (3, 2)),)),
    "pow 2": (lambda x: x ** 2, normal((3, 4))),
    "pow 3": (lambda x: x ** 3, normal((3, 4))),
    "pow -0.5": (lambda x: x ** -0.5, lambda r: (_positive(r, (3, 4)),)),
    "pow tensor exponent": (lambda x, p: x ** p, lambda r: (_positive(r, (3, 4)), r.standard_normal(4))),
    "rpow": (lambda p: 2.0 ** p, normal((3, 2))),
    "matmul": (lambda x, w: x @ w, normal((5, 4), (4, 3))),
    "matmul a wT": (lambda a, w: a @ w.T, normal((5, 4), (3, 4))),
    "matmul batched, broadcast": (lambda x, w: x @ w, normal((2, 3, 4), (4, 5))),
    "rmatmul with an array": (lambda w: np.arange(8.0).reshape(2, 4) @ w, normal((4, 3))),
    "T 3-d": (lambda x: x.T, normal((2, 3, 4))),
    "reshape": (lambda x: x.reshape(3, -1), normal((2, 3, 2))),
    "reshape tuple": (lambda x: x.reshape((2, 6)), normal((3, 4))),
    "sum": (lambda x: x.sum(), normal((3, 4))),
    "sum axis 0": (lambda x: x.sum(axis=0), normal((3, 4))),
    "sum axis -1 keepdims": (lambda x: x.sum(axis=-1, keepdims=True), normal((3, 4))),
    "sum axes (0, 2)": (lambda x: x.sum(axis=(0, 2)), normal((2, 3, 4))),
    "mean": (lambda x: x.mean(), normal((3, 4))),
    "mean axis 1": (lambda x: x.mean(axis=1), normal((3, 4))),
    "exp": (lambda x: x.exp(), normal((3, 4))),
    "log": (lambda x: x.log(), lambda r: (_positive(r, (3, 4)),)),
    "sigmoid": (lambda x: x.sigmoid(), lambda r: (3 * r.standard_normal((3, 4)),)),
    "tanh": (lambda x: x.tanh(), normal((3, 4))),
    # relu: |x| >= 0.1, off the kink, so the finite differences see one side only
    "relu": (lambda x: x.relu(),
             lambda r: (np.where(r.random((3, 4)) < 0.5, -1, 1) * r.uniform(0.1, 1, (3, 4)),)),
    "conv2d": (conv2d, _conv_shapes),
    "conv2d without bias": (lambda x, w: conv2d(x, w), lambda r: _conv_shapes(r)[:2]),
    "conv2d 1x1": (lambda x, w: conv2d(x, w), normal((2, 3, 3, 3), (2, 3, 1, 1))),
    # max-pooling: continuous random values have no ties
    "max_pool2d 2": (lambda x: max_pool2d(x, 2), normal((2, 3, 4, 6))),
    "max_pool2d 3": (lambda x: max_pool2d(x, 3), normal((1, 2, 6, 3))),
    "max_pool2d (2, 1)": (lambda x: max_pool2d(x, (2, 1)), normal((1, 2, 4, 3))),
    "softmax_cross_entropy labels": (lambda z: softmax_cross_entropy(z, _labels()),
                                     lambda r: (2 * r.standard_normal((4, 3)),)),
    "softmax_cross_entropy one-hot": (lambda z: softmax_cross_entropy(z, np.eye(3)[_labels()]),
                                      lambda r: (2 * r.standard_normal((4, 3)),)),
    "a composition": (lambda x, w, b: ((x @ w.T + b).tanh() * x.sum(axis=1, keepdims=True)).exp().mean(axis=0),
                      normal((4, 3), (2, 3), (2,))),
}


@pytest.mark.parametrize("name", OPS)
def test_every_operation_matches_finite_differences(name):
    f, inputs = OPS[name]
    check_gradients(f, *inputs(np.random.default_rng(0)))


# -- forward passes against their definitions ---------------------------------------------
def test_conv2d_is_a_valid_cross_correlation_plus_bias(rng):
    x, w, b = _conv_shapes(rng)
    N, C, H, W = x.shape
    K, _, kh, kw = w.shape
    expected = np.empty((N, K, H - kh + 1, W - kw + 1))
    for n in range(N):
        for k in range(K):
            for i in range(H - kh + 1):
                for j in range(W - kw + 1):      # the filter is not flipped
                    expected[n, k, i, j] = (w[k] * x[n, :, i:i + kh, j:j + kw]).sum() + b[k]
    np.testing.assert_allclose(conv2d(x, w, b).data, expected, rtol=1e-12, atol=1e-12)


def test_max_pool2d_takes_each_windows_maximum_and_routes_the_gradient_there():
    x = np.array([[[[1., 5., 2., 0.],
                    [3., 4., 8., 7.],
                    [0., 0., 1., 2.],
                    [9., 0., 3., 1.]]]])
    t = Tensor(x, requires_grad=True)
    out = max_pool2d(t, 2)
    np.testing.assert_array_equal(out.data, [[[[5., 8.], [9., 3.]]]])
    out.backward(np.array([[[[10., 20.], [30., 40.]]]]))
    np.testing.assert_array_equal(t.grad, [[[[0, 10, 0, 0], [0, 0, 20, 0], [0, 0, 0, 0], [30, 0, 40, 0]]]])


def test_softmax_cross_entropy_is_the_mean_negative_log_probability_of_the_label(rng):
    z = 3 * rng.standard_normal((5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    a = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    expected = -np.log(a[np.arange(5), labels]).mean()
    assert softmax_cross_entropy(Tensor(z), labels).item() == pytest.approx(expected, rel=1e-13)
    # the shift keeps huge logits finite
    big = softmax_cross_entropy(Tensor(np.array([[1000.0, 0.0], [0.0, -1000.0]])), np.array([1, 0]))
    assert big.item() == pytest.approx(500.0, rel=1e-12)


def test_sigmoid_neither_overflows_nor_differs_from_its_definition():
    x = np.array([-800.0, -30.0, -1.0, 0.0, 2.0, 40.0, 800.0])
    s = Tensor(x).sigmoid().data
    with np.errstate(over="ignore"):
        np.testing.assert_allclose(s, 1 / (1 + np.exp(-x)), rtol=1e-13, atol=1e-300)


# -- the graph --------------------------------------------------------------------------------
def test_a_tensor_used_twice_gets_the_sum_of_both_gradients():
    x = Tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    (x * x + x).sum().backward()                    # d/dx (x² + x) = 2x + 1
    np.testing.assert_array_equal(x.grad, [3.0, -3.0, 7.0])


def test_a_diamond_passes_each_gradient_on_once_complete():
    # a = 2x; b = a + a·a; c = a·b: dc/dx = 2 (b + a (1 + 2a)), x = 3: a = 6, b = 42: 2·120
    x = Tensor(3.0, requires_grad=True)
    a = 2 * x
    c = a * (a + a * a)
    c.backward()
    assert c.item() == 252.0 and x.grad == 240.0


def test_grads_add_up_over_calls_until_reset_as_in_pytorch():
    w = Tensor(np.array([2.0]), requires_grad=True)
    (3 * w).sum().backward()
    (3 * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [6.0])
    w.grad = None
    (w * w).sum().backward()
    np.testing.assert_array_equal(w.grad, [4.0])


def test_only_leaves_that_ask_for_it_get_a_gradient():
    x = Tensor(np.ones(3))
    w = Tensor(np.full(3, 2.0), requires_grad=True)
    h = x * w
    (h * h).sum().backward()
    assert x.grad is None and h.grad is None
    np.testing.assert_array_equal(w.grad, 2 * 2.0 * np.ones(3))


def test_leaf_grads_are_writable_copies_of_their_own():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    y = Tensor(np.ones((2, 3)), requires_grad=True)
    (x + y).sum().backward()                        # add hands both the same array
    x.grad *= 5
    np.testing.assert_array_equal(y.grad, np.ones((2, 3)))


def test_no_grad_records_nothing_and_backward_then_says_why():
    w = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        out = (w * 3).sum()
    assert not out.requires_grad and out._parents == ()
    with pytest.raises(ConfigError, match="no_grad"):
        out.backward()
    assert (w * 3).sum().requires_grad                # recording is back on after the block


def test_a_non_scalar_needs_an_upstream_gradient_of_its_shape():
    y = Tensor(np.ones((2, 2)), requires_grad=True) * 2
    with pytest.raises(ShapeError, match="needs grad="):
        y.backward()
    with pytest.raises(ShapeError, match="grad has shape"):
        y.backward(np.ones(3))


def test_matmul_of_a_vector_is_refused_with_its_shapes():
    with pytest.raises(ShapeError, match=r"\(3,\)"):
        Tensor(np.ones(3)) @ Tensor(np.ones((3, 2)))


def test_conv2d_checks_channels_and_bias_shape(rng):
    x, w, b = _conv_shapes(rng)
    with pytest.raises(ShapeError, match="same C"):
        conv2d(x[:, :1], w, b)
    with pytest.raises(ShapeError, match=r"b of shape \(3,\)"):
        conv2d(x, w, b[:2])


def test_float32_stays_float32_through_forward_and_backward(rng):
    x = Tensor(rng.standard_normal((2, 1, 6, 6)).astype(np.float32))
    w = Tensor(rng.standard_normal((2, 1, 3, 3)).astype(np.float32), requires_grad=True)
    v = Tensor(rng.standard_normal((8, 3)).astype(np.float32), requires_grad=True)
    out = max_pool2d(conv2d(x, w).relu(), 2).reshape(2, -1) @ v
    loss = softmax_cross_entropy(out * 0.5 + 1, np.array([0, 2]))
    loss.backward()
    assert out.dtype == np.float32 and loss.dtype == np.float32
    assert w.grad.dtype == np.float32 and v.grad.dtype == np.float32


def test_a_long_chain_does_not_hit_the_recursion_limit():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    assert x.grad == pytest.approx(1.0001 ** 5000, rel=1e-10)


def test_a_numpy_array_on_the_left_defers_to_the_tensor():
    t = Tensor(np.ones(3), requires_grad=True)
    out = np.arange(3.0) * t
    assert isinstance(out, Tensor)
    out.sum().backward()
    np.testing.assert_array_equal(t.grad, [0.0, 1.0, 2.0])


def test_the_module_docstring_fits_y_3x_plus_0_8():
    result = doctest.testmod(autograd)
    assert result.attempted >= 5 and result.failed == 0


# -- backends: numpy, the strict CuPy stand-in, CuPy -----------------------------------------
def _small_convnet(xp, arrays):
    """A LeNet in miniature on xp arrays: (cost, gradients of w1, b1, w2, b2, x) as numpy."""
    x, w1, b1, w2, b2, labels = (xp.asarray(a) for a in arrays)
    x = Tensor(x, requires_grad=True)
    params = [Tensor(p, requires_grad=True) for p in (w1, b1, w2, b2)]
    h = max_pool2d(conv2d(x, params[0], params[1]).relu(), 2).reshape(len(x), -1)
    z = (h @ params[2].T + params[3]).sigmoid() * 4 - 2
    cost = softmax_cross_entropy(z, labels) + 0.01 * (params[2] ** 2).sum()
    cost.backward()
    return cost.item(), [to_numpy(t.grad) for t in params + [x]], [backend.xp(t.grad) for t in params]


def test_autograd_runs_on_every_backend_and_keeps_arrays_there(xp, rng):
    arrays = (rng.standard_normal((3, 2, 6, 6)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4),
              rng.standard_normal((5, 16)), rng.standard_normal(5), np.array([0, 4, 2]))
    cost, grads, modules = _small_convnet(xp, arrays)
    ref_cost, ref_grads, _ = _small_convnet(np, arrays)
    assert all(m is xp for m in modules)
    assert cost == pytest.approx(ref_cost, rel=1e-12)
    for g, ref in zip(grads, ref_grads):
        np.testing.assert_allclose(g, ref, rtol=1e-10, atol=1e-12)


# -- PyTorch, where installed ------------------------------------------------------------------
def test_conv_pool_and_cross_entropy_gradients_equal_pytorchs(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x, w, b = rng.standard_normal((2, 2, 5, 5)), rng.standard_normal((3, 2, 2, 2)), rng.standard_normal(3)
    v = rng.standard_normal((4, 12))
    labels = np.array([1, 3])

    ours = [Tensor(a, requires_grad=True) for a in (x, w, b, v)]
    h = max_pool2d(conv2d(*ours[:3]).tanh(), 2).reshape(2, -1)         # (2, 3, 2, 2) -> (2, 12)
    softmax_cross_entropy(h @ ours[3].T, labels).backward()

    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w, b, v)]
    th = F.max_pool2d(torch.tanh(F.conv2d(*theirs[:3])), 2).reshape(2, -1)
    F.cross_entropy(th @ theirs[3].T, torch.tensor(labels)).backward()
    for mine, its in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, its.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_elementwise_gradients_equal_pytorchs(rng):
    torch = pytest.importorskip("torch")
    a, b = rng.standard_normal((3, 4)), rng.uniform(0.5, 2, (3, 4))

    def f(x, y, lib):
        return ((x * y - x / y) ** 2 + lib.exp(x) * y.log() + x.sigmoid() - x.relu() * x.tanh()).mean()

    ours = [Tensor(v, requires_grad=True) for v in (a, b)]
    f(*ours, type("lib", (), {"exp": staticmethod(Tensor.exp)})).backward()
    theirs = [torch.tensor(v, requires_grad=True) for v in (a, b)]
    f(*theirs, torch).backward()
    for mine, its in zip(ours, theirs):
        np.testing.assert_allclose(mine.grad, its.grad.numpy(), rtol=1e-12, atol=1e-14)
