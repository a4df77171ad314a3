"""The fused numba training loop equals the layer-by-layer numpy reference."""
import numpy as np
import pytest

from nndl import Dense, Dropout, Network
from nndl.fast import dense as fastpath
from nndl.errors import DivergenceError
from nndl.optimizers import Momentum

CASES = [
    # (hidden activations, output activation, cost, regularization, lmbda)
    ("sigmoid", "sigmoid", "quadratic", "L2", 0.0),
    ("sigmoid", "sigmoid", "cross-entropy", "L2", 5.0),
    ("tanh", "sigmoid", "cross-entropy", "L1", 2.0),
    ("relu", "softmax", "log-likelihood", "L2", 1.0),
    ("relu", "identity", "quadratic", "L2", 0.5),
    ("tanh", "tanh", "quadratic", "L1", 0.0),
]


def make_net(hidden, out, cost, dtype, seed=3, sizes=(20, 7, 6, 4)):
    layers = [Dense(a, b, hidden if k < len(sizes) - 2 else out)
              for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))]
    return Network(layers, cost=cost, dtype=dtype, seed=seed)


def data(rng, n=103, n_in=20, n_out=4):
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("hidden, out, cost, reg, lmbda", CASES)
def test_fused_epochs_equal_reference_epochs(hidden, out, cost, reg, lmbda, dtype, tol, rng):
    x, y = data(rng)
    x = x.astype(dtype)
    fast, ref = (make_net(hidden, out, cost, dtype) for _ in range(2))
    assert fastpath.eligible(fast, fast.optimizer, None)
    # 103 examples in mini-batches of 10: the short last batch of 3 is trained on too.
    hf = fast.SGD((x, y), 2, 10, 0.3, lmbda=lmbda, regularization=reg, verbose=False,
                  evaluation_data=(x, y), monitor_evaluation_accuracy=True)
    hr = ref.SGD((x, y), 2, 10, 0.3, lmbda=lmbda, regularization=reg, verbose=False,
                 evaluation_data=(x, y), monitor_evaluation_accuracy=True, fast=False)
    for lf, lr in zip(fast.layers, ref.layers):
        assert lf.w.dtype == dtype
        np.testing.assert_allclose(lf.w, lr.w, rtol=tol, atol=tol)
        np.testing.assert_allclose(lf.b, lr.b, rtol=tol, atol=tol)
    assert hf.evaluation_accuracy == hr.evaluation_accuracy or dtype == np.float32


def test_fused_path_changes_weights_like_training_should(rng):
    x, y = data(rng)
    net = make_net("sigmoid", "sigmoid", "cross-entropy", np.float64)
    before = net.layers[0].w.copy()
    net.SGD((x, y), 1, 10, 0.5, verbose=False)
    assert not np.array_equal(before, net.layers[0].w)


@pytest.mark.parametrize("build", [
    lambda: Network([Dense(20, 7), Dropout(0.5), Dense(7, 4)]),
    lambda: Network([Dense(20, 7), Dense(7, 4, bias=False)]),
    lambda: Network([Dense(20, 7, "softmax"), Dense(7, 4)]),
    lambda: Network([20, 7, 4], cost="log-likelihood"),  # log-likelihood needs softmax output
    lambda: Network([Dense(20, 4, "relu")], cost="cross-entropy"),
])
def test_unsupported_networks_use_the_reference_path(build):
    net = build()
    assert not fastpath.eligible(net, net.optimizer, None)


def test_other_optimizers_use_the_reference_path():
    net = Network([20, 7, 4])
    assert not fastpath.eligible(net, Momentum(), None)


@pytest.mark.parametrize("fast", [True, False])
def test_divergence_names_epoch_and_mini_batch(fast, rng):
    x, y = data(rng)
    net = Network([Dense(20, 7, "relu"), Dense(7, 4, "identity")], cost="quadratic", seed=0)
    with pytest.raises(DivergenceError, match=r"epoch \d+, mini-batch \d+.*smaller learning rate"):
        net.SGD((x * 1e3, y), 5, 10, 1e6, verbose=False, fast=fast)


def big_net(dtype, hidden="sigmoid", out="sigmoid", cost="cross-entropy"):
    # Layer 1 does (10 + 10) x 300 x 101 multiply-adds a step: above fastpath's
    # threshold, so its rows are split into bands, one per thread.  101 rows is not a
    # multiple of 4, so the last band ends in a partial block.
    return Network([Dense(300, 101, hidden), Dense(101, 10, out)], cost=cost, dtype=dtype, seed=5)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("reg", ["L2", "L1"])
def test_fused_threaded_layers_equal_reference(dtype, tol, reg, rng):
    x, y = data(rng, n=63, n_in=300, n_out=10)
    x = x.astype(dtype)
    fast, ref = big_net(dtype), big_net(dtype)
    assert fastpath._PARALLEL_MIN <= 20 * 300 * 101
    fast.SGD((x, y), 2, 10, 0.5, lmbda=3.0, regularization=reg, verbose=False)
    ref.SGD((x, y), 2, 10, 0.5, lmbda=3.0, regularization=reg, verbose=False, fast=False)
    for lf, lr in zip(fast.layers, ref.layers):
        np.testing.assert_allclose(lf.w, lr.w, rtol=tol, atol=tol)
        np.testing.assert_allclose(lf.b, lr.b, rtol=tol, atol=tol)


def test_fused_result_does_not_depend_on_thread_count(rng):
    # Each row of w is updated by one thread with the same arithmetic, whatever the
    # bands are, so any number of threads gives bit-identical weights.
    x, y = data(rng, n=57, n_in=300, n_out=10)
    yv = np.eye(10)[y]
    weights = []
    for nt in (1, 2, 3):
        net = big_net(np.float64, "relu", "softmax", "log-likelihood")
        trainer = fastpath.FusedTrainer(net, 10)
        perm = np.random.default_rng(1).permutation(len(x))
        assert trainer.run(x, yv, perm, 0, len(x), 0.1, None, len(x), nt=nt) == -1
        weights.append([l.w.copy() for l in net.layers] + [l.b.copy() for l in net.layers])
    for other in weights[1:]:
        for a, b in zip(weights[0], other):
            np.testing.assert_array_equal(a, b)


def test_fused_run_with_one_mini_batch_and_a_short_one(rng):
    # Look-ahead edge cases: the first forward pass is the only one, and the last
    # mini-batch is shorter than the rest.
    x, y = data(rng, n=13, n_in=300, n_out=10)
    for n in (10, 13):
        fast, ref = big_net(np.float64), big_net(np.float64)
        fast.SGD((x[:n], y[:n]), 1, 10, 0.5, verbose=False)
        ref.SGD((x[:n], y[:n]), 1, 10, 0.5, verbose=False, fast=False)
        np.testing.assert_allclose(fast.layers[0].w, ref.layers[0].w, rtol=1e-10, atol=1e-10)


def _train_small(seed):
    rng = np.random.default_rng(seed)
    x, y = rng.random((60, 300)), rng.integers(0, 10, 60)
    net = big_net(np.float64)
    net.SGD((x, y), 1, 10, 0.5, verbose=False)
    return bool(np.isfinite(net.layers[0].w).all())


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # 3.12+
def test_workers_forked_after_threaded_training_still_train():
    # GNU OpenMP cannot run in a child forked from a process that used it (numba
    # terminates such a child), so forked workers must fall back to one thread.
    import multiprocessing

    assert _train_small(0)  # the parent uses its thread pool first
    with multiprocessing.get_context("fork").Pool(2) as pool:
        assert pool.map_async(_train_small, [1, 2]).get(timeout=120) == [True, True]


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("hidden, out, cost, reg, lmbda", CASES)
@pytest.mark.parametrize("n", [77, 1003])  # odd, not multiples of 16 or 20; 1003: split by examples
def test_fused_forward_equals_layer_by_layer_forward(hidden, out, cost, reg, lmbda, n, dtype, tol, rng):
    net = make_net(hidden, out, cost, dtype, sizes=(300, 37, 6, 4))
    x = rng.random((n, 300)).astype(dtype)
    assert fastpath.can_forward(net, x)
    fast = fastpath.forward(net, x)
    ref = x
    for layer in net.layers:
        ref = layer.forward(ref)
    np.testing.assert_allclose(fast, ref, rtol=tol, atol=tol)
    # Network.feedforward uses it for evaluation batches, and predictions agree.
    np.testing.assert_allclose(net.feedforward(x), ref, rtol=tol, atol=tol)
    assert (net.predict(x) == ref.argmax(axis=1)).mean() > 0.97


# Each CPU runs one blocking of the update and forward kernels (wider ones with AVX-512's
# 32 vector registers); the tests run every blocking directly, so all are checked here.
# The kernels read example i's input from row rows[i] (the first layer reads the training
# set through the shuffled order): shuffled rows here.
@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("m", [1, 4, 5, 7, 10, 13, 20])
@pytest.mark.parametrize("kernel", ["_look_ahead", "_look_ahead5"])
def test_forward_kernels_equal_the_matrix_product(kernel, m, dtype, tol, rng):
    n_out, n_in = 7, 37
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    x = rng.standard_normal((30, n_in)).astype(dtype)
    rows = rng.permutation(30)[:m]
    out = np.full((m, n_out), np.nan, dtype)
    s = dtype(0.75)  # the layer's weights are s·w (L2's decay kept as a scale)
    for jb in range(0, n_out, 4):  # blocks of four rows, the last one short
        getattr(fastpath, kernel)(w, b, x, rows, out, fastpath._TANH, s, 0, m, jb, min(jb + 4, n_out))
    np.testing.assert_allclose(out, np.tanh(x[rows] @ (s * w).T + b), rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("i0, i1", [(0, 1), (0, 5), (0, 7), (0, 10), (3, 16), (0, 20)])
@pytest.mark.parametrize("kernel", ["_learn", "_learn4"])
def test_update_kernels_equal_the_matrix_product(kernel, i0, i1, dtype, tol, rng):
    n_out, n_in = 8, 37
    w = rng.standard_normal((n_out, n_in)).astype(dtype)
    d = rng.standard_normal((20, n_out)).astype(dtype)
    a = rng.standard_normal((40, n_in)).astype(dtype)
    rows = rng.permutation(40)[:20]
    want = w - 0.1 * d[i0:i1].T @ a[rows[i0:i1]]
    c = np.empty(10, dtype)
    for jb in (0, 4):
        if kernel == "_learn4":
            fastpath._learn4(w, d, a, rows, dtype(0.1), i0, i1, jb, c)
        else:
            fastpath._learn(w, d, a, rows, dtype(0.1), i0, i1, jb, jb + 4, c)
    np.testing.assert_allclose(w, want, rtol=tol, atol=tol)


def test_fused_training_reads_read_only_inputs_in_place(rng):
    # The first layer reads the training set's own rows (no copy), so inputs that numpy
    # marks read-only (np.load(mmap_mode="r"), frombuffer) must train the same.
    x, y = data(rng, n=57, n_in=300, n_out=10)
    frozen = x.copy()
    frozen.flags.writeable = False
    nets = [big_net(np.float64), big_net(np.float64)]
    nets[0].SGD((x, y), 2, 10, 0.5, verbose=False)
    nets[1].SGD((frozen, y), 2, 10, 0.5, verbose=False)
    # Read-only arrays are another numba type, so another compiled loop: when one of the
    # two was compiled in this process and the other loaded from numba's cache, their
    # sums can differ in the last bit (README, "Reproducibility"); hence 1e-12, not ==.
    for a, b in zip(*(n.layers for n in nets)):
        np.testing.assert_allclose(a.w, b.w, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(frozen, x)  # and left untouched


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-10), (np.float32, 2e-4)])
@pytest.mark.parametrize("lmbda", [200.0, 500.0])
def test_fused_l2_scale_folds_back_into_the_weights(lmbda, dtype, tol, rng):
    # The fused loop keeps L2's decay as a per-layer scale (weights = s·w).  λ = 200
    # (1 - ηλ/n = 0.42 a step) takes s below the fold-in threshold within an epoch's run
    # of 11 mini-batches, and λ = 500 makes the factor negative (w flips sign every step,
    # as in the reference): both must match the reference w *= 1 - ηλ/n step by step.
    x, y = data(rng)
    x = x.astype(dtype)
    fast, ref = (make_net("sigmoid", "sigmoid", "cross-entropy", dtype) for _ in range(2))
    fast.SGD((x, y), 2, 10, 0.3, lmbda=lmbda, verbose=False)
    ref.SGD((x, y), 2, 10, 0.3, lmbda=lmbda, verbose=False, fast=False)
    assert abs(1 - 0.3 * lmbda / len(x)) ** 11 < fastpath._RESCALE_BELOW  # the fold-in happens
    for lf, lr in zip(fast.layers, ref.layers):
        np.testing.assert_allclose(lf.w, lr.w, rtol=tol, atol=tol)
        np.testing.assert_allclose(lf.b, lr.b, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype, ulps", [(np.float64, 4), (np.float32, 4)])
def test_vectorised_sigmoid_is_accurate_to_a_few_ulps(dtype, ulps, rng):
    """The fused kernels' σ (its own exp, so that it vectorises) against σ in extended
    precision, over ordinary values and the overflow edges, with no NaN or inf."""
    z = np.concatenate([rng.standard_normal(5000) * 10, rng.uniform(-800, 800, 1982),
                        [0.0, -0.0, 1e-30, -1e-30, 30, -30, 87, -87, 88, -88, 700, -700,
                         708, -708, 710, -710, 1e6, -1e6]]).astype(dtype)
    a = z.reshape(100, -1).copy()
    fastpath._sigmoid_rows(a, 0, 100, 0, a.shape[1])
    got = a.reshape(-1)
    zl = z.astype(np.longdouble)
    e = np.exp(-np.abs(zl))
    want = np.where(zl >= 0, 1 / (1 + e), e / (1 + e))
    assert np.all(np.isfinite(got)) and np.all((got >= 0) & (got <= 1))
    assert got[np.flatnonzero(z == 0)].tolist() == [0.5, 0.5]
    tiny = np.finfo(dtype).tiny
    normal = want > tiny * 2 ** 10  # far from underflow, where relative error means something
    err = np.abs(got[normal] - want[normal]) / want[normal]
    assert err.max() <= ulps * np.finfo(dtype).eps
    assert np.all(np.abs(got[~normal] - want[~normal]) <= tiny * 2 ** 10)


def test_only_the_given_block_is_squashed(rng):
    a = rng.standard_normal((6, 9))
    before = a.copy()
    fastpath._sigmoid_rows(a, 1, 4, 2, 7)
    inside = np.zeros_like(a, bool)
    inside[1:4, 2:7] = True
    np.testing.assert_array_equal(a[~inside], before[~inside])
    np.testing.assert_allclose(a[inside], 1 / (1 + np.exp(-before[inside])), rtol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("act", [fastpath._SIGMOID, fastpath._RELU, fastpath._SOFTMAX])
def test_evaluation_split_among_threads_gives_the_same_bits(act, dtype, rng):
    """A forward pass alone over many examples shares the examples among the threads; each
    example's outputs come from the same sums whatever the split."""
    w = rng.standard_normal((30, 200)).astype(dtype)
    b = rng.standard_normal(30).astype(dtype)
    x = rng.standard_normal((1013, 200)).astype(dtype)
    rows = rng.permutation(1013)
    outs = []
    for nt in (1, 2, 3):
        out = np.full((1013, 30), np.nan, dtype)
        fastpath._layer(w, b, np.empty((0, 30), dtype), x, rows[:0], dtype(0), 0, 0.0, dtype(1),
                        x, rows, out, act, nt)
        outs.append(out)
    z = x[rows] @ w.T + b
    want = {fastpath._SIGMOID: 1 / (1 + np.exp(-z)), fastpath._RELU: np.maximum(z, 0),
            fastpath._SOFTMAX: np.exp(z - z.max(1, keepdims=True))}[act]
    if act == fastpath._SOFTMAX:
        want /= want.sum(1, keepdims=True)
    tol = 1e-10 if dtype == np.float64 else 1e-4
    np.testing.assert_allclose(outs[0], want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(outs[1], outs[0])
    np.testing.assert_array_equal(outs[2], outs[0])
