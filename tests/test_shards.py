"""nndl.fast.shards: a big batch cut into shards, run on replicas of the layers in
parallel, gives what one pass gives."""
import threading

import numpy as np
import pytest

from nndl import Conv2D, Dense, Dropout, Flatten, MaxPool2D
from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
from nndl.costs import LogLikelihoodCost
from nndl.fast import shards
from nndl.net import Network


@pytest.fixture
def rng():
    return np.random.default_rng(20261203)


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of a few images, so small test batches are cut."""
    monkeypatch.setattr(shards, "MIN_SHARD", 4)


def _convpool_net(activation, dtype, p=0.0, seed=1):
    return Network([ConvPoolLayer((4, 1, 3, 3), (None, 1, 10, 8), activation_fn=activation),
                    FullyConnectedLayer(4 * 4 * 3, 12, activation, p_dropout=p),
                    SoftmaxLayer(12, 5)], cost=LogLikelihoodCost, dtype=dtype, seed=seed)


def _blocks_net(dtype, seed=1):
    return Network([Conv2D(1, 3, 3, activation="relu"), MaxPool2D(2), Flatten(),
                    Dense(3 * 4 * 3, 5, "softmax")], cost=LogLikelihoodCost, dtype=dtype,
                   input_shape=(1, 10, 8), seed=seed)


def _grads(net):
    return [g.copy() for layer in net.layers for _, _, g in layer.parameters()]


def test_bounds_cut_into_shards_of_at_least_min_shard(small_shards):
    assert shards.bounds(100, 2) == [(0, 50), (50, 100)]
    assert shards.bounds(7, 2) is None                      # under 2 x MIN_SHARD
    assert shards.bounds(14, 3) == [(0, 4), (4, 9), (9, 14)]
    assert shards.bounds(10, 3) == [(0, 5), (5, 10)]        # no shard under MIN_SHARD
    assert shards.bounds(100, 1) is None


def test_only_conv_nets_without_training_randomness_are_cut(small_shards):
    assert shards.wanted(_convpool_net("relu", np.float64), 16, train=True)
    assert not shards.wanted(_convpool_net("relu", np.float64), 7, train=True)  # too small
    assert not shards.wanted(Network([12, 8, 3]), 64, train=True)               # no conv layer
    dropout = _convpool_net("relu", np.float64, p=0.5)
    assert not shards.wanted(dropout, 64, train=True)      # its masks come from one generator
    assert shards.wanted(dropout, 64, train=False)         # evaluation draws nothing


@pytest.mark.parametrize("make", [
    lambda dt: _convpool_net("relu", dt), lambda dt: _convpool_net("sigmoid", dt),
    lambda dt: _convpool_net("linear", dt), _blocks_net])
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-5)])
@pytest.mark.parametrize("parts", [2, 3])
def test_sharded_backprop_equals_one_pass(make, dtype, tol, parts, rng, small_shards, monkeypatch):
    net = make(dtype)
    x = rng.random((17, 1, 10, 8)).astype(dtype)
    y = np.eye(5, dtype=dtype)[rng.integers(0, 5, 17)]
    a = net.backprop(x, y).copy()
    whole = _grads(net)
    calls = []
    run = shards.run
    monkeypatch.setattr(shards, "run", lambda fn, cuts: calls.append(len(cuts)) or run(fn, cuts))
    replicas = shards.Replicas(net, parts)
    a_cut = replicas.backprop(x, y)
    assert calls == [parts]                                 # it really ran in shards
    np.testing.assert_allclose(a_cut, a, rtol=tol, atol=tol)
    for g, g_cut in zip(whole, _grads(net)):
        np.testing.assert_allclose(g_cut, g, rtol=tol, atol=tol)
    np.testing.assert_allclose(replicas.feedforward(x), net.feedforward(x), rtol=tol, atol=tol)


def test_replicas_share_the_parameters_and_keep_their_own_gradients(rng, small_shards):
    net = _convpool_net("relu", np.float64)
    replicas = shards.Replicas(net, 2)
    for layer, copy in zip(net.layers, replicas.copies[1].layers):
        for (_, p, g), (_, p_copy, g_copy) in zip(layer.parameters(), copy.parameters()):
            assert p_copy is p and g_copy is not g
    net.layers[0].w += 1.0                                  # an optimizer step is seen by all
    assert replicas.copies[1].layers[0].w[0, 0, 0, 0] == net.layers[0].w[0, 0, 0, 0]


def test_errors_in_a_worker_reach_the_caller():
    def fn(i, a, b):
        if i == 1:
            raise ValueError("shard 1 failed")
        return i

    with pytest.raises(ValueError, match="shard 1 failed"):
        shards.run(fn, [(0, 5), (5, 10)])
    assert shards.run(lambda i, a, b: (i, threading.current_thread() is threading.main_thread()),
                      [(0, 5), (5, 10)]) == [(0, True), (1, False)]


def _trains_the_same_in_shards(make, x, y, eta, monkeypatch):
    """Two epochs at mini-batch 16, with and without shards: every step runs sharded,
    the weights agree to rounding, and BLAS's thread count is put back."""
    monkeypatch.setattr(shards, "MIN_SHARD", 10**9)               # no shards
    whole = make()
    whole.SGD((x, y), 2, 16, eta, verbose=False)
    monkeypatch.setattr(shards, "MIN_SHARD", 4)
    monkeypatch.setattr(shards, "threads", lambda: 2)
    calls = []
    run = shards.run
    monkeypatch.setattr(shards, "run", lambda fn, cuts: calls.append(len(cuts)) or run(fn, cuts))
    blas = shards._blas()
    before = [lc.num_threads for lc in blas.lib_controllers] if blas else None
    cut = make()
    cut.SGD((x, y), 2, 16, eta, verbose=False)
    assert len(calls) >= 2 * (len(x) // 16) and set(calls) == {2}
    if blas:
        assert [lc.num_threads for lc in blas.lib_controllers] == before
    for w, w_cut in zip(_grads_params(whole), _grads_params(cut)):
        np.testing.assert_allclose(w_cut, w, rtol=1e-9, atol=1e-9)
    return whole, cut


def _grads_params(net):
    return [p for layer in net.layers for _, p, _ in layer.parameters()]


def test_sgd_runs_a_conv_net_in_shards_and_learns_the_same(rng, monkeypatch):
    x = rng.random((64, 1, 10, 8))
    y = rng.integers(0, 5, 64)
    _trains_the_same_in_shards(lambda: _convpool_net("relu", np.float64), x, y, 0.05, monkeypatch)


def test_a_network_of_building_blocks_shards_and_learns_the_same(rng, monkeypatch):
    x = rng.random((64, 1, 10, 8))
    y = rng.integers(0, 5, 64)
    _trains_the_same_in_shards(lambda: _blocks_net(np.float64), x, y, 0.1, monkeypatch)


def test_a_dropout_net_trains_whole_and_is_cut_only_to_evaluate(rng, monkeypatch):
    monkeypatch.setattr(shards, "MIN_SHARD", 4)
    monkeypatch.setattr(shards, "threads", lambda: 2)
    calls = []
    run = shards.run
    monkeypatch.setattr(shards, "run", lambda fn, cuts: calls.append(len(cuts)) or run(fn, cuts))
    net = Network([ConvPoolLayer((4, 1, 3, 3), (None, 1, 10, 8)), Flatten(), Dropout(0.3),
                   Dense(48, 5, "softmax")], cost=LogLikelihoodCost, seed=3)
    x, y = rng.random((64, 1, 10, 8)), rng.integers(0, 5, 64)
    net.SGD((x, y), 1, 16, 0.1, verbose=False)
    assert calls == []
    net.accuracy((x, y))
    assert calls == [2]
