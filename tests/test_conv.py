"""nndl.conv: chapter 6's layers, checked against finite differences and by training."""
import numpy as np
import pytest

from nndl import conv
from nndl.conv import (Conv2D, ConvPoolLayer, FullyConnectedLayer, L2Pool2D, MaxPool2D,
                       SoftmaxLayer)
from nndl.costs import LogLikelihoodCost
from nndl.errors import ConfigError, ShapeError
from nndl.gradcheck import assert_close, directional_derivative, numerical_gradient
from nndl.layers import Dense
from nndl.net import Network


@pytest.fixture
def rng():
    return np.random.default_rng(20240601)


def _fixed_mask(p=0.5, seed=7):
    """A mask_fn that always returns the same keep-mask for a given shape."""
    return lambda shape, rng: np.random.default_rng(seed).random(shape) >= p


def _built(layer, shape, rng, dtype=np.float64):
    layer.build(shape[1:], rng, dtype)
    return layer


LAYER_CASES = [
    ("conv identity", lambda: Conv2D(2, 3, 3), (2, 2, 6, 5)),
    ("conv tanh stride 2", lambda: Conv2D(2, 3, (3, 2), stride=2, activation="tanh"), (2, 2, 7, 6)),
    ("conv sigmoid", lambda: Conv2D(1, 2, 2, activation="sigmoid"), (3, 1, 4, 4)),
    ("maxpool 2", lambda: MaxPool2D(2), (2, 3, 4, 6)),
    ("maxpool 3x2", lambda: MaxPool2D((3, 2)), (2, 2, 6, 4)),
    ("l2pool 2", lambda: L2Pool2D(2), (2, 3, 4, 6)),
    ("convpool sigmoid", lambda: ConvPoolLayer((3, 2, 3, 3), (10, 2, 8, 6)), (2, 2, 8, 6)),
    ("convpool tanh pool 3", lambda: ConvPoolLayer((2, 1, 2, 2), (10, 1, 7, 7), (3, 3), "tanh"),
     (2, 1, 7, 7)),
    ("fc sigmoid", lambda: FullyConnectedLayer(12, 5), (3, 12)),
    ("fc relu flat input", lambda: FullyConnectedLayer(12, 4, "relu"), (3, 3, 2, 2)),
    ("softmax", lambda: SoftmaxLayer(6, 4), (3, 6)),
]


@pytest.mark.parametrize("name, make, shape", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_backward_matches_finite_differences(name, make, shape, rng):
    layer = _built(make(), shape, rng)
    for _, p, _ in layer.parameters():      # SoftmaxLayer starts at zero: move off it
        p += 0.3 * rng.standard_normal(p.shape)
    x = rng.standard_normal(shape)
    r = rng.standard_normal(layer.forward(x).shape)          # a fixed upstream gradient
    loss = lambda: float((layer.forward(x) * r).sum())
    layer.forward(x)
    assert_close(layer.backward(r), numerical_gradient(loss, x), err_msg=f"{name}: input")
    grads = [(n, g.copy()) for n, _, g in layer.parameters()]
    for (pname, p, _), (_, g) in zip(layer.parameters(), grads):
        assert_close(g, numerical_gradient(loss, p), err_msg=f"{name}: {pname}")


@pytest.mark.parametrize("layer_cls", [FullyConnectedLayer, SoftmaxLayer])
def test_dropout_layer_gradient_with_a_frozen_mask(layer_cls, rng):
    layer = _built(layer_cls(8, 5, p_dropout=0.4, mask_fn=_fixed_mask(0.4)), (3, 8), rng)
    layer.w += 0.3 * rng.standard_normal(layer.w.shape)
    x = rng.standard_normal((3, 8))
    r = rng.standard_normal((3, 5))
    loss = lambda: float((layer.forward(x, train=True) * r).sum())
    layer.forward(x, train=True)
    assert layer.mask is not None and (layer.mask == 0).any()
    assert_close(layer.backward(r), numerical_gradient(loss, x), err_msg="input")
    assert_close(layer.nabla_w.copy(), numerical_gradient(loss, layer.w), err_msg="w")
    assert_close(layer.nabla_b.copy(), numerical_gradient(loss, layer.b), err_msg="b")


def test_dropout_is_inverted_and_off_in_evaluation(rng):
    layer = _built(FullyConnectedLayer(4000, 1, "identity", p_dropout=0.5), (2, 4000), rng)
    layer.w[...] = 1.0
    layer.b[...] = 0.0
    x = np.ones((2, 4000))
    assert np.allclose(layer.forward(x), 4000)                     # evaluation: identity
    kept = layer.forward(x, train=True)
    assert layer.mask is not None and set(np.unique(layer.mask)) == {0.0, 2.0}
    assert np.allclose(kept, 4000, rtol=0.1)                       # expected input unchanged


def test_l2pool_gradient_at_an_all_zero_window_is_zero_without_warnings(rng):
    layer = _built(L2Pool2D(2), (1, 1, 4, 4), rng)
    x = rng.standard_normal((1, 1, 4, 4))
    x[0, 0, :2, :2] = 0.0
    a = layer.forward(x)                                           # warnings are errors here
    assert a[0, 0, 0, 0] == 0.0
    g = layer.backward(np.ones_like(a))
    assert np.isfinite(g).all() and (g[0, 0, :2, :2] == 0).all()
    np.testing.assert_allclose(a, np.sqrt((kernel_windows(x) ** 2).sum(-1)))


def kernel_windows(x):
    from nndl.kernels import pool_windows
    return pool_windows(x, 2)


def test_softmax_layer_with_log_likelihood_cost_matches_finite_differences(rng):
    layer = _built(SoftmaxLayer(6, 4), (5, 6), rng)
    layer.w += rng.standard_normal(layer.w.shape)
    x = rng.standard_normal((5, 6))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    loss = lambda: LogLikelihoodCost.fn(layer.forward(x), y)
    a = layer.forward(x)
    grad_x = layer.backward_from_delta(LogLikelihoodCost.delta(layer.z, a, y, layer.activation))
    assert_close(grad_x, numerical_gradient(loss, x), err_msg="input")
    assert_close(layer.nabla_w, numerical_gradient(loss, layer.w), err_msg="w")
    assert_close(layer.nabla_b, numerical_gradient(loss, layer.b), err_msg="b")


def _small_conv_net(dtype=np.float64, seed=3):
    return Network([Conv2D(1, 3, 3, activation="tanh"),          # (3, 8, 8)
                    MaxPool2D(2),                                   # (3, 4, 4)
                    ConvPoolLayer((4, 3, 3, 3), (None, 3, 4, 4), (2, 2), "sigmoid"),  # (4, 1, 1)
                    FullyConnectedLayer(4, 6, "tanh"),
                    SoftmaxLayer(6, 3)],
                   cost=LogLikelihoodCost, input_shape=(1, 10, 10), dtype=dtype, seed=seed)


def test_whole_conv_network_backprop_matches_finite_differences(rng):
    net = _small_conv_net()
    for layer in net.layers:
        for _, p, _ in layer.parameters():
            p += 0.2 * rng.standard_normal(p.shape)
    x = rng.random((4, 1, 10, 10))
    y = np.eye(3)[rng.integers(0, 3, 4)]
    loss = lambda: net.cost.fn(net.feedforward(x), y)
    net.backprop(x, y)
    grads = {(i, n): g.copy() for i, l in enumerate(net.layers) for n, _, g in l.parameters()}
    for i, layer in enumerate(net.layers):
        for name, p, _ in layer.parameters():
            g = grads[(i, name)]
            if p.size <= 60:
                assert_close(g, numerical_gradient(loss, p), err_msg=f"layer {i} {name}")
            else:  # a big tensor: one random direction
                d = rng.standard_normal(p.shape)
                num = directional_derivative(loss, p, d)
                assert np.isclose(float((g * d).sum()), num, rtol=1e-6, atol=1e-9), (i, name)


def test_first_layer_may_skip_the_input_gradient(rng):
    layer = _built(ConvPoolLayer((3, 1, 3, 3), (None, 1, 6, 6)), (2, 1, 6, 6), rng)
    x = rng.standard_normal((2, 1, 6, 6))
    r = rng.standard_normal(layer.forward(x).shape)
    full = layer.backward(r)
    nabla_w = layer.nabla_w.copy()
    layer.input_grad = False
    layer.forward(x)
    assert full is not None and layer.backward(r) is None
    np.testing.assert_array_equal(layer.nabla_w, nabla_w)


def test_conv2d_forward_is_the_nested_loop_definition(rng):
    layer = _built(Conv2D(2, 3, (3, 2), stride=2, activation="tanh"), (2, 2, 7, 6), rng)
    x = rng.standard_normal((2, 2, 7, 6))
    z = np.empty((2, 3, 3, 3))
    for n in range(2):
        for k in range(3):
            for i in range(3):
                for j in range(3):  # z = Σ_c,a,b w[k,c,a,b] x[n,c,2i+a,2j+b] + b[k]
                    window = x[n, :, 2 * i:2 * i + 3, 2 * j:2 * j + 2]
                    z[n, k, i, j] = (layer.w[k] * window).sum() + layer.b[k]
    np.testing.assert_allclose(layer.forward(x), np.tanh(z), rtol=1e-12, atol=1e-12)


def test_convpool_takes_flat_rows_like_network3(rng):
    layer = _built(ConvPoolLayer((2, 1, 5, 5), (10, 1, 28, 28)), (3, 784), rng)
    assert layer.input_shape == (1, 28, 28)
    x = rng.random((3, 784))
    np.testing.assert_array_equal(layer.forward(x), layer.forward(x.reshape(3, 1, 28, 28)))
    assert layer.forward(x).shape == (3, 2, 12, 12)


def test_convpool_equals_conv_then_pool_then_bias(rng):
    cp = _built(ConvPoolLayer((3, 2, 3, 3), (None, 2, 8, 8), activation_fn="relu"), (2, 2, 8, 8), rng)
    c = _built(Conv2D(2, 3, 3, init="zeros"), (2, 2, 8, 8), rng)
    c.w[...] = cp.w
    x = rng.standard_normal((2, 2, 8, 8))
    pooled = MaxPool2D(2).forward(c.forward(x)) + cp.b[:, None, None]
    np.testing.assert_allclose(cp.forward(x), np.maximum(pooled, 0), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make, shape", [
    (lambda: ConvPoolLayer((4, 2, 3, 3), (None, 2, 10, 10)), (37, 2, 10, 10)),
    (lambda: Conv2D(2, 4, 3, activation="relu"), (37, 2, 10, 10)),
])
def test_evaluation_in_chunks_equals_one_batch(make, shape, rng, monkeypatch):
    layer = _built(make(), shape, rng)
    x = rng.standard_normal(shape)
    whole = layer.forward(x).copy()
    monkeypatch.setattr(conv, "_EVAL_COLS_BYTES", 2000)       # force chunks of a few images
    assert layer._chunks(x) < len(x)
    np.testing.assert_allclose(layer.forward(x), whole, rtol=1e-12, atol=1e-12)
    with pytest.raises(RuntimeError, match="no stored forward pass"):
        layer.backward(np.ones_like(whole))
    layer.forward(x, train=True)                               # training never chunks
    assert layer.backward(np.ones_like(whole)).shape == shape


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_keep_the_dtype_they_are_given(dtype, rng):
    net = _small_conv_net(dtype)
    x = rng.random((3, 100))
    assert net.feedforward(net._inputs(x, "x")).dtype == dtype
    net.backprop(net._inputs(x, "x"), np.eye(3, dtype=dtype)[[0, 1, 2]])
    for layer in net.layers:
        for name, p, g in layer.parameters():
            assert p.dtype == dtype and g.dtype == dtype, (layer, name)


def test_initial_weights_use_the_fan_in_unless_book_init(rng):
    cp = _built(ConvPoolLayer((40, 20, 5, 5), (None, 20, 12, 12)), (1, 20, 12, 12), rng)
    assert np.isclose(cp.w.std(), 1 / np.sqrt(20 * 25), rtol=0.05)
    book = _built(ConvPoolLayer((40, 20, 5, 5), (None, 20, 12, 12), book_init=True), (1, 20, 12, 12), rng)
    assert np.isclose(book.w.std(), np.sqrt(4 / (40 * 25)), rtol=0.05)   # n_out = K·kh·kw/4
    fc = _built(FullyConnectedLayer(640, 100), (1, 640), rng)
    assert np.isclose(fc.w.std(), 1 / np.sqrt(640), rtol=0.05)
    fc_book = _built(FullyConnectedLayer(640, 100, book_init=True), (1, 640), rng)
    assert np.isclose(fc_book.w.std(), 1 / np.sqrt(100), rtol=0.05)
    sm = _built(SoftmaxLayer(100, 10), (1, 100), rng)
    assert not sm.w.any() and not sm.b.any()
    assert isinstance(fc, Dense) and fc.regularized == ("w",) and cp.regularized == ("w",)


# -- shapes and errors -------------------------------------------------------------------
def test_conv_build_checks_channels_and_kernel_size(rng):
    with pytest.raises(ShapeError, match="has 3 channels, but the layer expects 2"):
        Conv2D(2, 4, 3).build((3, 8, 8), rng, np.float64)
    with pytest.raises(ShapeError, match="kernel 5x5 is larger than the 4x4 input"):
        Conv2D(1, 4, 5).build((1, 4, 4), rng, np.float64)
    with pytest.raises(ShapeError, match=r"expects \(C, H, W\)"):
        Conv2D(1, 4, 3).build((16,), rng, np.float64)
    with pytest.raises(ShapeError, match="does not divide"):
        ConvPoolLayer((2, 1, 4, 4), (None, 1, 28, 28)).build((1, 28, 28), rng, np.float64)
    with pytest.raises(ShapeError, match="does not divide"):
        MaxPool2D(3).build((1, 4, 6), rng, np.float64)
    with pytest.raises(ShapeError, match="filter_shape .* has 2 input channels"):
        ConvPoolLayer((4, 2, 5, 5), (10, 1, 28, 28))
    with pytest.raises(ConfigError, match="p_dropout"):
        FullyConnectedLayer(3, 4, p_dropout=1.0)
    with pytest.raises(ConfigError, match="kernel_size"):
        Conv2D(1, 2, (3, 0))


def test_network_reports_the_layer_with_the_bad_shape():
    with pytest.raises(ShapeError, match="layer 1 .*Dense"):
        Network([ConvPoolLayer((2, 1, 5, 5), (10, 1, 28, 28)), Dense(100, 10, "softmax")],
                cost=LogLikelihoodCost)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_save_and_load_round_trip_a_conv_network(suffix, tmp_path, rng):
    net = _small_conv_net(np.float32)
    x = rng.random((5, 1, 10, 10)).astype(np.float32)
    path = tmp_path / f"net{suffix}"
    net.save(path)
    back = Network.load(path)
    assert [type(l) for l in back.layers] == [type(l) for l in net.layers]
    assert back.dtype == np.float32 and back.input_shape == (1, 10, 10)
    np.testing.assert_array_equal(back.feedforward(x), net.feedforward(x))
    for a, b in zip(net.layers, back.layers):
        assert a.config() == b.config()


def test_network3_layers_round_trip_through_save(tmp_path):
    net = Network([ConvPoolLayer((4, 1, 5, 5), (10, 1, 28, 28), activation_fn="relu", book_init=True),
                   FullyConnectedLayer(4 * 12 * 12, 20, "relu", p_dropout=0.5),
                   SoftmaxLayer(20, 10, p_dropout=0.5)], cost=LogLikelihoodCost, seed=1)
    net.save(tmp_path / "n3.npz")
    back = Network.load(tmp_path / "n3.npz")
    assert back.layers[0].config() == net.layers[0].config()
    assert back.layers[1].p_dropout == 0.5 and back.layers[2].p_dropout == 0.5
    x = np.random.default_rng(0).random((3, 784))
    np.testing.assert_array_equal(back.predict(x), net.predict(x))


# -- learning on real MNIST ----------------------------------------------------------------
@pytest.mark.slow
def test_small_conv_net_learns_mnist(mnist):
    """One epoch on 20,000 images of ConvPool(20, tanh) + FC100(tanh) + softmax.

    η = 0.1, λ = 0.1, mini-batch 10, float32.  Measured 93.5-94.3% on the first 2,000
    test images over seeds 0-2 (2,000 steps, 5-10 s on two cores); asserted with a margin.
    """
    (X, y), _, (Xt, yt) = mnist
    net = Network([ConvPoolLayer((20, 1, 5, 5), (10, 1, 28, 28), activation_fn="tanh"),
                   FullyConnectedLayer(20 * 12 * 12, 100, "tanh"),
                   SoftmaxLayer(100, 10)], cost=LogLikelihoodCost, dtype=np.float32, seed=0)
    net.layers[0].input_grad = False
    net.SGD((X[:20_000], y[:20_000]), 1, 10, 0.1, lmbda=0.1, verbose=False)
    assert net.accuracy((Xt[:2000], yt[:2000])) >= 0.91 * 2000


def test_book_dropout_is_unscaled_in_training_and_scaled_in_evaluation(rng):
    layer = _built(FullyConnectedLayer(4000, 1, "identity", p_dropout=0.5, book_dropout=True),
                   (2, 4000), rng)
    layer.w[...] = 1.0
    layer.b[...] = 0.0
    x = np.ones((2, 4000))
    assert np.allclose(layer.forward(x), 2000)                     # evaluation: x (1 - p)
    kept = layer.forward(x, train=True)
    assert set(np.unique(layer.mask)) == {0.0, 1.0}                # unscaled in training
    assert np.allclose(kept, 2000, rtol=0.1)                       # the same expected input
    assert layer.config()["book_dropout"] is True
    # the fused suffix keeps the inputs unscaled too (nndl.fast.suffix)
    assert layer.kernel == "dense-dropout" and layer.input_keep_scale == 1.0
    inverted = FullyConnectedLayer(4000, 1, "identity", p_dropout=0.2)
    assert inverted.input_keep_scale == 1.0 / 0.8


def test_book_dropout_gradient_with_a_frozen_mask(rng):
    layer = _built(FullyConnectedLayer(8, 5, p_dropout=0.4, mask_fn=_fixed_mask(0.4),
                                       book_dropout=True), (3, 8), rng)
    x = rng.standard_normal((3, 8))
    r = rng.standard_normal((3, 5))
    loss = lambda: float((layer.forward(x, train=True) * r).sum())
    layer.forward(x, train=True)
    assert_close(layer.backward(r), numerical_gradient(loss, x), err_msg="input")
    assert_close(layer.nabla_w.copy(), numerical_gradient(loss, layer.w), err_msg="w")
