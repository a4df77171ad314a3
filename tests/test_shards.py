"""nndl.shards: a big batch cut into shards that run in parallel gives what one pass gives."""
import threading

import numpy as np
import pytest

from nndl import conv, shards
from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
from nndl.costs import LogLikelihoodCost
from nndl.net import Network


@pytest.fixture
def rng():
    return np.random.default_rng(20261203)


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of a few images, so small test batches are cut."""
    monkeypatch.setattr(shards, "MIN_SHARD", 4)


def _layer(activation, dtype, rng, input_grad=True):
    layer = ConvPoolLayer((4, 3, 3, 3), (None, 3, 10, 8), activation_fn=activation)
    layer.build((3, 10, 8), rng, dtype)
    layer.input_grad = input_grad
    return layer


def _pass(layer, x, g, train=True):
    """forward and backward once: (a, ∂C/∂x, nabla_w, nabla_b), copied."""
    a = layer.forward(x, train=train).copy()
    dx = layer.backward(g)
    return a, None if dx is None else dx.copy(), layer.nabla_w.copy(), np.array(layer.nabla_b)


def test_no_shards_outside_a_session_or_for_small_batches(small_shards):
    assert shards.bounds(100) is None                       # outside a session
    with shards.session(threads=2):
        assert shards.bounds(100) == [(0, 50), (50, 100)]
        assert shards.bounds(7) is None                     # under 2 x MIN_SHARD
        assert shards.bounds(100, xp=object()) is None      # not numpy
    with shards.session(threads=3):
        assert shards.bounds(14) == [(0, 4), (4, 9), (9, 14)]
        assert shards.bounds(10) == [(0, 5), (5, 10)]       # no shard under MIN_SHARD
    with shards.session(active=False):
        assert shards.bounds(100) is None
    assert shards.bounds(100) is None


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "linear"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("parts", [2, 3])
def test_sharded_convpool_pass_equals_one_pass(activation, dtype, parts, rng, small_shards, monkeypatch):
    layer = _layer(activation, dtype, rng)
    x = rng.standard_normal((17, 3, 10, 8)).astype(dtype)
    g = rng.standard_normal((17, 4, 4, 3)).astype(dtype)
    whole = _pass(layer, x, g)
    calls = []
    run = shards.run
    monkeypatch.setattr(shards, "run", lambda fn, cuts: calls.append(len(cuts)) or run(fn, cuts))
    with shards.session(threads=parts):
        sharded = _pass(layer, x, g)
    assert calls == [parts, parts]                          # forward and backward were cut
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    for name, got, want in zip(["a", "dx", "nabla_w", "nabla_b"], sharded, whole):
        assert got.dtype == want.dtype, name
        np.testing.assert_allclose(got, want, err_msg=name, **tol)


def test_sharded_first_layer_skips_the_input_gradient(rng, small_shards):
    layer = _layer("relu", np.float64, rng, input_grad=False)
    x, g = rng.standard_normal((12, 3, 10, 8)), rng.standard_normal((12, 4, 4, 3))
    whole = _pass(layer, x, g)
    with shards.session(threads=2):
        sharded = _pass(layer, x, g)
    assert whole[1] is None and sharded[1] is None
    np.testing.assert_allclose(sharded[2], whole[2], rtol=1e-12, atol=1e-12)


def test_sharded_evaluation_in_chunks_equals_one_batch(rng, small_shards, monkeypatch):
    layer = _layer("relu", np.float64, rng)
    x = rng.standard_normal((37, 3, 10, 8))
    whole = layer.forward(x).copy()
    monkeypatch.setattr(conv, "_EVAL_COLS_BYTES", 5000)  # a few images a chunk, per shard
    with shards.session(threads=2):
        np.testing.assert_allclose(layer.forward(x), whole, rtol=1e-12, atol=1e-12)
        with pytest.raises(RuntimeError, match="no stored forward pass"):
            layer.backward(np.ones_like(whole))


def test_an_error_in_a_worker_shard_reaches_the_caller():
    def fn(i, start, stop):
        if i == 1:
            raise ValueError(f"shard {start}:{stop} failed")
        return i

    with pytest.raises(ValueError, match="shard 5:10 failed"):
        shards.run(fn, [(0, 5), (5, 10)])
    assert shards.run(lambda i, a, b: (i, threading.current_thread() is threading.main_thread()),
                      [(0, 1), (1, 2)]) == [(0, True), (1, False)]


def _trains_the_same_in_shards(make, x, y, eta, monkeypatch):
    """Two epochs at mini-batch 16, with and without shards: every step runs sharded,
    BLAS's thread count is put back, and the weights agree.  Returns both networks."""
    monkeypatch.setattr(shards, "MIN_SHARD", 10**9)                # no shards
    whole = make()
    whole.SGD((x, y), 2, 16, eta, verbose=False)
    monkeypatch.setattr(shards, "MIN_SHARD", 4)
    cut = make()
    calls = []
    run = shards.run
    monkeypatch.setattr(shards, "run", lambda fn, cuts: calls.append(len(cuts)) or run(fn, cuts))
    blas = shards._blas()
    before = None if blas is None else [lc.num_threads for lc in blas.lib_controllers]
    cut.SGD((x, y), 2, 16, eta, verbose=False)
    assert len(calls) >= 2 * 2 * (len(x) // 16)                  # every step, both passes
    if blas is not None:
        assert [lc.num_threads for lc in blas.lib_controllers] == before
    for a, b in zip(whole.layers, cut.layers):
        for (name, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
            np.testing.assert_allclose(q, p, rtol=1e-9, atol=1e-12, err_msg=name)
    return whole, cut


def test_sgd_runs_a_conv_net_in_shards_and_learns_the_same(rng, monkeypatch):
    x = rng.random((96, 1, 14, 14))
    y = (x[:, 0, :7].sum(axis=(1, 2)) > x[:, 0, 7:].sum(axis=(1, 2))).astype(int) + \
        (x[:, 0, :, :7].sum(axis=(1, 2)) > 50).astype(int)
    make = lambda: Network([ConvPoolLayer((4, 1, 5, 5), (None, 1, 14, 14), activation_fn="relu"),
                            FullyConnectedLayer(4 * 5 * 5, 20, "relu"), SoftmaxLayer(20, 3)],
                           cost=LogLikelihoodCost, input_shape=(1, 14, 14), seed=3)
    whole, cut = _trains_the_same_in_shards(make, x, y, 0.05, monkeypatch)
    np.testing.assert_array_equal(cut.predict(x), whole.predict(x))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_sharded_products_equal_whole_ones(dtype, rng, small_shards, monkeypatch):
    monkeypatch.setattr(shards, "MIN_MACS", 1)
    a = rng.standard_normal((19, 7)).astype(dtype)
    b = rng.standard_normal((7, 5)).astype(dtype)
    d = rng.standard_normal((19, 5)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    calls = []
    run = shards.run
    monkeypatch.setattr(shards, "run", lambda fn, cuts: calls.append(len(cuts)) or run(fn, cuts))
    with shards.session(threads=3):
        ab, da = shards.matmul(a, b.T.T), shards.matmul_tn(d, a)
        wt = shards.matmul(a, rng.standard_normal((5, 7)).astype(dtype).T)  # a transposed operand
    assert calls == [3, 3, 3] and ab.dtype == da.dtype == wt.dtype == dtype
    np.testing.assert_allclose(ab, a @ b, **tol)
    np.testing.assert_allclose(da, d.T @ a, **tol)
    monkeypatch.setattr(shards, "MIN_MACS", 10**9)                 # too small to cut
    with shards.session(threads=3):
        shards.matmul(a, b)
    assert calls == [3, 3, 3]


def test_dense_layers_shard_their_products_in_a_session(rng, small_shards, monkeypatch):
    monkeypatch.setattr(shards, "MIN_MACS", 1)
    layer = FullyConnectedLayer(12, 6, "sigmoid")
    layer.build((12,), rng, np.float64)
    x, g = rng.standard_normal((20, 12)), rng.standard_normal((20, 6))
    a = layer.forward(x, train=True).copy()
    dx = layer.backward(g).copy()
    nabla_w, nabla_b = layer.nabla_w.copy(), layer.nabla_b.copy()
    with shards.session(threads=2):
        np.testing.assert_allclose(layer.forward(x, train=True), a, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(layer.backward(g), dx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.nabla_w, nabla_w, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.nabla_b, nabla_b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, activation", [(1, "relu"), (2, "tanh")])
def test_sharded_conv2d_pass_equals_one_pass(stride, activation, rng, small_shards):
    layer = conv.Conv2D(3, 4, (3, 2), stride=stride, activation=activation)
    layer.build((3, 9, 8), rng, np.float64)
    x = rng.standard_normal((13, 3, 9, 8))
    g = rng.standard_normal(layer.forward(x).shape)
    whole = _pass(layer, x, g)
    with shards.session(threads=2):
        sharded = _pass(layer, x, g)
    for name, got, want in zip(["a", "dx", "nabla_w", "nabla_b"], sharded, whole):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12, err_msg=name)


def test_a_network_of_building_blocks_shards_and_learns_the_same(rng, monkeypatch):
    from nndl.conv import Conv2D, MaxPool2D
    from nndl.layers import Dense

    x = rng.random((64, 1, 10, 10))
    y = (x[:, 0, :5].sum(axis=(1, 2)) > x[:, 0, 5:].sum(axis=(1, 2))).astype(int)
    make = lambda: Network([Conv2D(1, 3, 3, activation="relu"), MaxPool2D(2), Dense(48, 2)],
                           input_shape=(1, 10, 10), seed=5)
    _trains_the_same_in_shards(make, x, y, 0.1, monkeypatch)
