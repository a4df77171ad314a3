"""The fused dense suffix of a convolutional net (nndl.fast.suffix) equals the reference
path: the same weights after two seeded epochs, the same random numbers drawn."""
import numpy as np
import pytest

from nndl import Network, fast, optimizers, regularization
from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
from nndl.fast import suffix
from nndl.layers import Dense, Dropout

# Fused and reference weights after two epochs agree to this (float64): the kernels
# sum in another order (fastmath reassociation), so the last bits differ, nothing more.
TOL = 1e-9


def _conv_net(act="relu", p=0.5, out="softmax", cost="log-likelihood", seed=3, book=False):
    """[ConvPool, ConvPool, FC (dropout), FC (dropout), output (dropout)] on 10x10 images;
    ``book``: network3's dropout instead of inverted dropout."""
    layers = [ConvPoolLayer((3, 1, 3, 3), (None, 1, 10, 10), (2, 2), act),
              ConvPoolLayer((4, 3, 3, 3), (None, 3, 4, 4), (1, 1), act),
              FullyConnectedLayer(16, 13, act, p_dropout=p, book_dropout=book),
              FullyConnectedLayer(13, 9, act, p_dropout=p, book_dropout=book)]
    layers.append(SoftmaxLayer(9, 5, p_dropout=p, book_dropout=book) if out == "softmax"
                  else FullyConnectedLayer(9, 5, out, p_dropout=p, book_dropout=book))
    return Network(layers, cost=cost, seed=seed, input_shape=(1, 10, 10))


def _data(n=57, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 100)), rng.integers(0, 5, n)


def _train_both(make, lmbda, m=10, epochs=2, monkeypatch=None, **kw):
    x, y = _data()
    ref, fused = make(), make()
    calls = []
    if monkeypatch is not None:
        run = suffix.SuffixTrainer.run
        monkeypatch.setattr(suffix.SuffixTrainer, "run",
                            lambda *a, **k: calls.append(1) or run(*a, **k))
    ref.SGD((x, y), epochs, m, 0.1, lmbda=lmbda, verbose=False, fast=False, **kw)
    fused.SGD((x, y), epochs, m, 0.1, lmbda=lmbda, verbose=False, **kw)
    return ref, fused, calls


def _assert_same_weights(ref, fused):
    for i, (a, b) in enumerate(zip(ref.layers, fused.layers)):
        for (name, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
            np.testing.assert_allclose(q, p, rtol=TOL, atol=TOL, err_msg=f"layer {i} {name}")


CASES = [  # hidden activation, dropout p, output activation, cost, lambda (L2), book dropout
    ("relu", 0.5, "softmax", "log-likelihood", 0.0, False),
    ("relu", 0.5, "softmax", "log-likelihood", 0.5, False),
    ("relu", 0.5, "softmax", "log-likelihood", 0.1, True),
    ("sigmoid", 0.3, "softmax", "log-likelihood", 0.5, False),
    ("sigmoid", 0.3, "sigmoid", "cross-entropy", 0.0, True),
    ("tanh", 0.0, "softmax", "log-likelihood", 0.0, False),
    ("tanh", 0.2, "sigmoid", "quadratic", 0.5, False),
    ("relu", 0.2, "sigmoid", "cross-entropy", 1.0, False),
    ("identity", 0.4, "sigmoid", "quadratic", 0.0, False),
]


@pytest.mark.parametrize("act, p, out, cost, lmbda, book", CASES,
                         ids=[f"{a}-p{p}-{o}-{c}-l{lm}{'-book' if b else ''}"
                              for a, p, o, c, lm, b in CASES])
def test_fused_suffix_equals_the_reference_path(act, p, out, cost, lmbda, book, monkeypatch):
    make = lambda: _conv_net(act, p, out, cost, book=book)  # noqa: E731
    ref, fused, calls = _train_both(make, lmbda, monkeypatch=monkeypatch)
    assert len(calls) == 2                       # the fused suffix ran, once per epoch
    _assert_same_weights(ref, fused)
    # the same random numbers were drawn, in the same order: the generators agree
    assert ref.rng.bit_generator.state == fused.rng.bit_generator.state


def test_fused_suffix_with_l1_and_an_odd_last_mini_batch(monkeypatch):
    x, y = _data(n=23)
    ref, fused = _conv_net(), _conv_net()
    for net, fast_path in ((ref, False), (fused, True)):
        net.SGD((x, y), 2, 4, 0.1, lmbda=0.3, regularization="L1", verbose=False,
                fast=fast_path)
    _assert_same_weights(ref, fused)
    assert ref.rng.bit_generator.state == fused.rng.bit_generator.state


def test_float32_suffix_stays_close_to_the_reference():
    make = lambda: Network(  # noqa: E731
        [ConvPoolLayer((3, 1, 3, 3), (None, 1, 10, 10), (2, 2), "relu"),
         FullyConnectedLayer(48, 20, "relu", p_dropout=0.5), SoftmaxLayer(20, 5, p_dropout=0.5)],
        cost="log-likelihood", seed=1, input_shape=(1, 10, 10), dtype=np.float32)
    x, y = _data()
    ref, fused = make(), make()
    ref.SGD((x.astype(np.float32), y), 2, 10, 0.1, verbose=False, fast=False)
    fused.SGD((x.astype(np.float32), y), 2, 10, 0.1, verbose=False)
    for a, b in zip(ref.layers, fused.layers):
        for (_, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
            assert q.dtype == np.float32
            np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-5)


def test_a_dense_net_with_dropout_and_no_prefix_runs_fused():
    # A Dropout layer is the prefix; the dense layers with input dropout the suffix.
    make = lambda: Network(  # noqa: E731
        [Dropout(0.2), FullyConnectedLayer(100, 12, "sigmoid", p_dropout=0.3),
         SoftmaxLayer(12, 5, p_dropout=0.1)], cost="log-likelihood", seed=2, input_shape=(100,))
    assert suffix.split(make().layers) == 1
    ref, fused, _ = _train_both(make, 0.5)
    _assert_same_weights(ref, fused)
    make = lambda: Network([FullyConnectedLayer(100, 12, "relu", p_dropout=0.3),  # noqa: E731
                            SoftmaxLayer(12, 5, p_dropout=0.1)], cost="log-likelihood", seed=2)
    assert suffix.split(make().layers) == 0
    ref, fused, _ = _train_both(make, 0.0)
    _assert_same_weights(ref, fused)


def test_which_nets_and_mini_batches_run_fused():
    net = _conv_net()
    sgd, l2 = optimizers.SGD(), regularization.L2(0.1)
    x = np.zeros((4, 100))
    assert fast.fusable(net, sgd, l2, x, 10)
    assert not fast.fusable(net, sgd, l2, x)                        # no mini-batch size given
    assert not fast.fusable(net, sgd, l2, x, suffix.MAX_BATCH + 1)  # big batches: BLAS, shards
    assert not fast.fusable(net, optimizers.Momentum(), l2, x, 10)  # not a fused update rule
    assert not fast.fusable(net, sgd, l2, x.astype(np.float32), 10)  # not the net's dtype
    assert isinstance(fast.trainer(net, 10), suffix.SuffixTrainer)
    # a frozen dropout mask cannot be drawn by the fused path: that layer declares no
    # kernel, so it stays in the readable prefix
    frozen = Network([FullyConnectedLayer(6, 4, "relu", p_dropout=0.5,
                                          mask_fn=lambda shape, rng: np.ones(shape)),
                      SoftmaxLayer(4, 3)], cost="log-likelihood", seed=0)
    assert frozen.layers[0].kernel is None and suffix.split(frozen.layers) == 1
    # a plain dense stack still goes to the whole-net fused loop
    plain = Network([Dense(6, 4, "relu"), Dense(4, 3, "softmax")], cost="log-likelihood", seed=0)
    assert fast.fusable(plain, sgd, l2, np.zeros((4, 6)), 10)
    assert isinstance(fast.trainer(plain, 10), fast.dense.FusedTrainer)


def test_divergence_is_reported_before_the_bad_update():
    from nndl.errors import DivergenceError

    x, y = _data()
    ref, fused = _conv_net(act="identity", p=0.0, out="identity", cost="quadratic"), \
        _conv_net(act="identity", p=0.0, out="identity", cost="quadratic")
    errors = []
    for net, fast_path in ((ref, False), (fused, True)):
        with np.errstate(all="ignore"), pytest.raises(DivergenceError) as e:
            net.SGD((x * 1e3, y), 3, 10, 50.0, verbose=False, fast=fast_path)
        errors.append(str(e.value))
    assert "diverged" in errors[1]


def test_a_large_suffix_trains_on_threads_to_the_same_bits(monkeypatch):
    # Layers big enough that the kernels split them among threads (rows of the update
    # and forward pass, column blocks of wᵀδ): any number of threads gives the same sums.
    def make():
        return Network([Dropout(0.2), FullyConnectedLayer(600, 300, "relu", p_dropout=0.3),
                        SoftmaxLayer(300, 5, p_dropout=0.1)], cost="log-likelihood", seed=4,
                       input_shape=(600,))

    rng = np.random.default_rng(1)
    x, y = rng.random((45, 600)), rng.integers(0, 5, 45)
    blas = fast.shards._blas()
    blas_threads = lambda: [lc.num_threads for lc in blas.lib_controllers]  # noqa: E731
    before, during = blas_threads() if blas else None, []
    run, backward = suffix.SuffixTrainer.run, suffix.SuffixTrainer._backward
    monkeypatch.setattr(suffix.SuffixTrainer, "_backward", lambda self, *a: (
        during.append(blas_threads() if blas else None), backward(self, *a))[1])
    nets = {}
    for nt in (1, 2, 3):
        monkeypatch.setattr(suffix.SuffixTrainer, "run",
                            lambda *a, nt=nt, **k: run(*a, nt=nt, **k))
        nets[nt] = make()
        nets[nt].SGD((x, y), 2, 10, 0.1, lmbda=0.5, verbose=False)
    for nt in (2, 3):
        for a, b in zip(nets[1].layers, nets[nt].layers):
            for (name, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
                np.testing.assert_array_equal(q, p, err_msg=f"{nt} threads, {name}")
    ref = make()
    ref.SGD((x, y), 2, 10, 0.1, lmbda=0.5, verbose=False, fast=False)
    _assert_same_weights(ref, nets[2])
    if blas is not None:  # BLAS held to one thread while numba's threads ran, then restored
        assert during[-1] == [1] * len(before)
        assert blas_threads() == before


def test_only_a_large_suffix_takes_the_threads():
    small, large = _conv_net(), Network(
        [ConvPoolLayer((4, 1, 5, 5), (None, 1, 28, 28), (2, 2), "relu"),
         FullyConnectedLayer(576, 1000, "relu", p_dropout=0.5),
         FullyConnectedLayer(1000, 1000, "relu", p_dropout=0.5),
         SoftmaxLayer(1000, 10, p_dropout=0.5)], cost="log-likelihood", seed=0,
        dtype=np.float32)
    big = suffix.SuffixTrainer(large, 10)
    assert suffix.SuffixTrainer(small, 10).threads() == 1
    assert big.n_weights >= suffix.PARALLEL_WEIGHTS
    assert big.threads() == fast.dense.threads()
