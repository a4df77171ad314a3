"""Network (chapters 1-3): backprop against finite differences and against the book's
one-example-at-a-time code, a hand-worked example, and SGD's behaviour."""
import copy

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nndl import (ConfigError, CrossEntropyCost, DataError, Dense, Dropout, Flatten,
                  LogLikelihoodCost, Momentum, Network, QuadraticCost, ShapeError)
from nndl.activations import Sigmoid
from nndl.gradcheck import assert_close, numerical_gradient

# -- helpers -------------------------------------------------------------------------


def frozen_mask(mask):
    def mask_fn(shape, rng):
        assert shape == mask.shape
        return mask
    return mask_fn


def one_hot(labels, k):
    return np.eye(k)[labels]


def synthetic(rng, n, n_in=5, k=3):
    """n examples whose class is the argmax of a fixed linear map: learnable."""
    x = rng.random((n, n_in))
    proj = np.random.default_rng(123).standard_normal((n_in, k))
    return x, (x @ proj).argmax(axis=1)


def params(net):
    return [p.copy() for layer in net.layers for _, p, _ in layer.parameters()]


def grads(net):
    return [g.copy() for layer in net.layers for _, _, g in layer.parameters()]


N = 4  # examples in the finite-difference batches
MASK = (np.random.default_rng(7).random((N, 6)) >= 0.5).astype(np.float64)

BACKPROP_NETS = {
    "sigmoid-quadratic": lambda: Network([5, 4, 3], cost=QuadraticCost, seed=1),
    "sigmoid-cross-entropy": lambda: Network([5, 4, 3], cost=CrossEntropyCost, seed=1),
    "sigmoid-log-likelihood": lambda: Network([5, 4, 3], cost=LogLikelihoodCost, seed=1),
    "three-layers": lambda: Network([5, 6, 4, 3], cost=CrossEntropyCost, seed=2),
    "relu-softmax-log-likelihood": lambda: Network(
        [Dense(5, 6, "relu"), Dense(6, 3, "softmax")], cost=LogLikelihoodCost, seed=3),
    "tanh-softmax-log-likelihood": lambda: Network(
        [Dense(5, 6, "tanh"), Dense(6, 3, "softmax")], cost=LogLikelihoodCost, seed=4),
    "softmax-quadratic": lambda: Network(
        [Dense(5, 4, "tanh"), Dense(4, 3, "softmax")], cost=QuadraticCost, seed=5),
    "dropout-frozen-mask": lambda: Network(
        [Dense(5, 6, "tanh"), Dropout(0.5, mask_fn=frozen_mask(MASK)),
         Dense(6, 3, "softmax")], cost=LogLikelihoodCost, seed=6),
    "no-bias-identity-quadratic": lambda: Network(
        [Dense(5, 4, "sigmoid", bias=False), Dense(4, 3, "identity")],
        cost=QuadraticCost, seed=7),
    "flatten-relu-cross-entropy": lambda: Network(
        [Flatten(), Dense(8, 4, "relu"), Dense(4, 3, "sigmoid")],
        cost=CrossEntropyCost, input_shape=(2, 2, 2), seed=8),
}


# -- 1. finite differences -----------------------------------------------------------

@pytest.mark.parametrize("name", list(BACKPROP_NETS))
def test_backprop_matches_finite_differences_of_the_cost(name, rng):
    net = BACKPROP_NETS[name]()
    x = rng.standard_normal((N,) + net.input_shape)
    y = one_hot(rng.integers(0, 3, N), 3)
    net.backprop(x, y)
    analytic = grads(net)
    loss = lambda: net.cost.fn(net.feedforward(x, train=True), y)
    i = 0
    for l, layer in enumerate(net.layers):
        for pname, p, _ in layer.parameters():
            assert_close(analytic[i], numerical_gradient(loss, p), err_msg=f"layer {l} {pname}")
            i += 1
    assert i == sum(len(layer.parameters()) for layer in net.layers) > 0


def test_backprop_returns_the_output_activations(rng):
    net = Network([5, 4, 3], seed=0)
    x = rng.standard_normal((N, 5))
    a = net.backprop(x, one_hot([0, 1, 2, 0], 3))
    np.testing.assert_array_equal(a, net.feedforward(x))


# -- 2. the book's per-example backprop and SGD --------------------------------------

def book_sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def book_sigmoid_prime(z):
    return book_sigmoid(z) * (1 - book_sigmoid(z))


def book_backprop(weights, biases, x, y, cost):
    """Chapter 2's network.py backprop for one example: x (n_in, 1), y (n_out, 1)."""
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    activation = x
    activations = [x]
    zs = []
    for b, w in zip(biases, weights):
        z = np.dot(w, activation) + b
        zs.append(z)
        activation = book_sigmoid(z)
        activations.append(activation)
    if cost == "quadratic":
        delta = (activations[-1] - y) * book_sigmoid_prime(zs[-1])    # BP1
    else:
        delta = activations[-1] - y                                    # BP1, eq. 66
    nabla_b[-1] = delta                                                # BP3
    nabla_w[-1] = np.dot(delta, activations[-2].transpose())           # BP4
    for l in range(2, len(weights) + 1):
        sp = book_sigmoid_prime(zs[-l])
        delta = np.dot(weights[-l + 1].transpose(), delta) * sp        # BP2
        nabla_b[-l] = delta                                            # BP3
        nabla_w[-l] = np.dot(delta, activations[-l - 1].transpose())   # BP4
    return nabla_b, nabla_w


def book_update_mini_batch(weights, biases, mini_batch, eta, lmbda, n, cost, reg):
    """network2's update_mini_batch: L2 decay (1 - ηλ/n) w, or L1's w - (ηλ/n) sgn(w)."""
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    for x, y in mini_batch:
        delta_nabla_b, delta_nabla_w = book_backprop(weights, biases, x, y, cost)
        nabla_b = [nb + dnb for nb, dnb in zip(nabla_b, delta_nabla_b)]
        nabla_w = [nw + dnw for nw, dnw in zip(nabla_w, delta_nabla_w)]
    m = len(mini_batch)
    if reg == "L2":
        weights = [(1 - eta * (lmbda / n)) * w - (eta / m) * nw for w, nw in zip(weights, nabla_w)]
    else:
        weights = [w - eta * (lmbda / n) * np.sign(w) - (eta / m) * nw
                   for w, nw in zip(weights, nabla_w)]
    biases = [b - (eta / m) * nb for b, nb in zip(biases, nabla_b)]
    return weights, biases


def book_sgd_epoch(weights, biases, training_data, m, eta, lmbda, perm, cost, reg="L2",
                   drop_short_batch=False):
    """One epoch of network2's SGD, shuffled by the permutation ``perm``."""
    n = len(training_data)
    training_data = [training_data[i] for i in perm]
    mini_batches = [training_data[k:k + m] for k in range(0, n, m)]
    if drop_short_batch:
        mini_batches = [b for b in mini_batches if len(b) == m]
    for mini_batch in mini_batches:
        weights, biases = book_update_mini_batch(weights, biases, mini_batch, eta, lmbda, n,
                                                 cost, reg)
    return weights, biases


def book_state(net):
    """The net's parameters the book's way: w (n_out, n_in), b as (n_out, 1) columns."""
    return ([l.w.copy() for l in net.layers], [l.b.reshape(-1, 1).copy() for l in net.layers])


def book_data(x, labels, k):
    return [(xi.reshape(-1, 1), one_hot(li, k).reshape(-1, 1)) for xi, li in zip(x, labels)]


COST_NAMES = {"quadratic": QuadraticCost, "cross-entropy": CrossEntropyCost}


@pytest.mark.parametrize("cost", list(COST_NAMES))
def test_batched_backprop_equals_the_sum_of_the_books_per_example_gradients(cost, rng):
    net = Network([6, 5, 4, 3], cost=COST_NAMES[cost], seed=11)
    x, labels = synthetic(rng, 7, n_in=6)
    weights, biases = book_state(net)
    nabla_b = [np.zeros(b.shape) for b in biases]
    nabla_w = [np.zeros(w.shape) for w in weights]
    for xi, yi in book_data(x, labels, 3):
        dnb, dnw = book_backprop(weights, biases, xi, yi, cost)
        nabla_b = [nb + d for nb, d in zip(nabla_b, dnb)]
        nabla_w = [nw + d for nw, d in zip(nabla_w, dnw)]
    net.backprop(x, one_hot(labels, 3))
    for l, layer in enumerate(net.layers):
        np.testing.assert_allclose(layer.nabla_w, nabla_w[l], rtol=1e-11, atol=1e-14,
                                   err_msg=f"nabla_w of layer {l}")
        np.testing.assert_allclose(layer.nabla_b, nabla_b[l].ravel(), rtol=1e-11, atol=1e-14,
                                   err_msg=f"nabla_b of layer {l}")


def train_one_epoch_both_ways(cost, reg, fast, rng, n=23, m=5, drop_short_batch=False):
    """Network.SGD and the book's loop, same start and same shuffle: both nets' weights."""
    net = Network([6, 5, 3], cost=COST_NAMES[cost], seed=12)
    x, labels = synthetic(rng, n, n_in=6)
    weights, biases = book_state(net)
    book_rng = copy.deepcopy(net.rng)           # SGD draws self.rng.permutation(n) first
    eta, lmbda = 0.5, 2.0
    net.SGD((x, labels), 1, m, eta, lmbda=lmbda, regularization=reg, verbose=False, fast=fast)
    weights, biases = book_sgd_epoch(weights, biases, book_data(x, labels, 3), m, eta, lmbda,
                                     book_rng.permutation(n), cost, reg, drop_short_batch)
    return net, weights, biases


@pytest.mark.parametrize("fast", [False, True], ids=["reference-path", "fast-path"])
@pytest.mark.parametrize("reg", ["L2", "L1"])
@pytest.mark.parametrize("cost", list(COST_NAMES))
def test_one_seeded_epoch_gives_the_same_weights_as_the_books_sgd(cost, reg, fast, rng):
    net, weights, biases = train_one_epoch_both_ways(cost, reg, fast, rng)
    for l, layer in enumerate(net.layers):
        np.testing.assert_allclose(layer.w, weights[l], rtol=1e-10, atol=1e-13,
                                   err_msg=f"w of layer {l}")
        np.testing.assert_allclose(layer.b, biases[l].ravel(), rtol=1e-10, atol=1e-13,
                                   err_msg=f"b of layer {l}")


@pytest.mark.parametrize("fast", [False, True], ids=["reference-path", "fast-path"])
def test_the_short_final_mini_batch_is_trained_on_not_dropped(fast, rng):
    # 23 examples in mini-batches of 5: the fifth batch has 3 examples.
    net, weights, _ = train_one_epoch_both_ways("cross-entropy", "L2", fast, rng,
                                                drop_short_batch=True)
    assert not np.allclose(net.layers[0].w, weights[0], rtol=1e-6, atol=1e-9)


# -- 3. properties -------------------------------------------------------------------

PROPERTY_NETS = ["sigmoid-quadratic", "sigmoid-cross-entropy", "sigmoid-log-likelihood",
                 "relu-softmax-log-likelihood", "no-bias-identity-quadratic",
                 "flatten-relu-cross-entropy"]


@settings(deadline=None, max_examples=25)
@given(name=st.sampled_from(PROPERTY_NETS), n=st.integers(1, 6), seed=st.integers(0, 2**32 - 1))
def test_a_batchs_gradient_is_the_sum_of_its_examples_gradients(name, n, seed):
    rng = np.random.default_rng(seed)
    net = BACKPROP_NETS[name]()
    x = rng.standard_normal((n,) + net.input_shape)
    y = one_hot(rng.integers(0, 3, n), 3)
    net.backprop(x, y)
    batch = grads(net)
    total = [np.zeros_like(g) for g in batch]
    for i in range(n):
        net.backprop(x[i:i + 1], y[i:i + 1])
        total = [t + g for t, g in zip(total, grads(net))]
    for b, t in zip(batch, total):
        np.testing.assert_allclose(b, t, rtol=1e-10, atol=1e-12)


# -- 4. by hand ----------------------------------------------------------------------

@pytest.mark.parametrize("cost, expected", [
    # cost, (C, δ², ∂C/∂w², δ¹, ∂C/∂w¹)
    (QuadraticCost, (0.125, -0.125, [-0.0625, -0.0625], [-0.03125, 0.03125])),
    (CrossEntropyCost, (np.log(2), -0.5, [-0.25, -0.25], [-0.125, 0.125])),
])
def test_a_hand_worked_forward_and_backward_pass(cost, expected):
    # A 2-2-1 sigmoid net whose weighted inputs are all 0, so every σ(z) = 1/2 and
    # every σ'(z) = 1/2 · 1/2 = 1/4.
    net = Network([2, 2, 1], cost=cost, seed=0)
    hidden, out = net.layers
    hidden.w[...] = [[1.0, -1.0], [2.0, -2.0]]
    hidden.b[...] = 0.0
    out.w[...] = [[1.0, -1.0]]
    out.b[...] = 0.0
    x = np.array([[1.0, 1.0]])
    y = np.array([[1.0]])
    # Forward: z¹ = w¹x = [1 - 1, 2 - 2] = [0, 0], a¹ = [1/2, 1/2];
    #          z² = 1/2 - 1/2 = 0, a² = 1/2.
    c, delta2, nabla_w2, delta1 = expected
    # Quadratic: C = ½ (1/2 - 1)² = 1/8.  Cross-entropy: C = -ln(1/2) = ln 2.
    # BP1, quadratic: δ² = (a² - y) σ'(z²) = (-1/2)(1/4) = -1/8.  Cross-entropy: δ² = a² - y = -1/2.
    # BP4: ∂C/∂w² = δ² a¹ = δ² · [1/2, 1/2].   BP3: ∂C/∂b² = δ².
    # BP2: δ¹ = (w²)ᵀδ² ⊙ σ'(z¹) = [1, -1] δ² / 4.
    # BP4: ∂C/∂w¹ = δ¹ xᵀ = [[δ¹₁, δ¹₁], [δ¹₂, δ¹₂]] since x = [1, 1].
    a = net.backprop(x, y)
    np.testing.assert_allclose(a, [[0.5]], rtol=1e-15)
    assert net.total_cost((x, y)) == pytest.approx(c, rel=1e-12)
    np.testing.assert_allclose(out.nabla_b, [delta2], rtol=1e-14)
    np.testing.assert_allclose(out.nabla_w, [nabla_w2], rtol=1e-14)
    np.testing.assert_allclose(hidden.nabla_b, delta1, rtol=1e-14)
    np.testing.assert_allclose(hidden.nabla_w, [[delta1[0]] * 2, [delta1[1]] * 2], rtol=1e-14)
    # One step with η = 2, m = 1: w² → w² - 2 ∂C/∂w²; quadratic: [1 + 1/8, -1 + 1/8].
    net.update_mini_batch(x, y, eta=2.0)
    np.testing.assert_allclose(out.w, [[1 - 2 * nabla_w2[0], -1 - 2 * nabla_w2[1]]], rtol=1e-14)
    np.testing.assert_allclose(out.b, [-2 * delta2], rtol=1e-14)
    np.testing.assert_allclose(hidden.b, [-2 * delta1[0], -2 * delta1[1]], rtol=1e-14)


# -- 5. construction -----------------------------------------------------------------

def test_sizes_build_sigmoid_dense_layers_with_the_books_shapes():
    net = Network([784, 30, 10], seed=0)
    assert [type(l) for l in net.layers] == [Dense, Dense]
    assert all(l.activation is Sigmoid for l in net.layers)
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]
    assert net.sizes == [784, 30, 10] and net.num_layers == 3
    assert net.cost is CrossEntropyCost
    assert net.feedforward(np.zeros((2, 784))).shape == (2, 10)


def test_default_init_has_std_1_over_sqrt_n_in_and_large_init_std_1():
    default = Network([784, 30, 10], seed=0).weights[0]
    large = Network([784, 30, 10], init="large", seed=0).weights[0]
    # 23,520 draws: the sample std is within 1% of the true one.
    assert default.std() == pytest.approx(1 / np.sqrt(784), rel=0.03)
    assert large.std() == pytest.approx(1.0, rel=0.03)


def test_weight_initializers_redraw_with_the_chosen_scale():
    net = Network([784, 30, 10], seed=0)
    net.large_weight_initializer()
    assert net.weights[0].std() == pytest.approx(1.0, rel=0.03)
    net.default_weight_initializer()
    assert net.weights[0].std() == pytest.approx(1 / np.sqrt(784), rel=0.03)


def test_weights_and_biases_are_views_onto_the_layers(rng):
    net = Network([3, 2], seed=0)
    x = rng.standard_normal((1, 3))
    before = net.feedforward(x).copy()
    net.biases[0][0, 0] += 5.0
    net.weights[0][1, :] = 0.0
    assert net.layers[0].b[0] == net.biases[0][0, 0]
    assert not net.layers[0].w[1].any()
    assert not np.allclose(net.feedforward(x), before)


def test_output_activation_applies_to_the_last_layer_only():
    net = Network([4, 3, 2], activation="relu", output_activation="softmax", seed=0)
    assert [l.activation.__name__ for l in net.layers] == ["ReLU", "Softmax"]


def test_incompatible_layer_shapes_raise_shape_error_at_construction():
    with pytest.raises(ShapeError, match=r"layer 1 \(Dense\).*n_in=5.*\(3,\)"):
        Network([Dense(4, 3), Dense(5, 2)])
    with pytest.raises(ShapeError, match=r"layer 1 \(Dense\)"):
        Network([Flatten(), Dense(7, 2)], input_shape=(2, 2, 2))


@pytest.mark.parametrize("layers, kwargs, match", [
    ([], {}, "empty list"),
    ([784], {}, "at least two positive sizes"),
    ([784, 0, 10], {}, "at least two positive sizes"),
    ([Dense(4, 3), "relu"], {}, r"layers\[1\]"),
    ([Dense(4, 3), Dropout(0.5)], {}, "last layer must have an activation"),
    ([Flatten(), Dense(4, 2)], {}, "input_shape"),
    ([4, 2], {"dtype": np.int32}, "dtype"),
    ([4, 2], {"cost": "hinge"}, "cost"),
])
def test_bad_network_arguments_raise_config_error(layers, kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Network(layers, **kwargs)


# -- 5. training -----------------------------------------------------------------------

def test_same_seed_gives_identical_weights_and_training_different_seed_does_not(rng):
    x, labels = synthetic(rng, 40)

    def run(seed):
        net = Network([Dense(5, 8, "tanh"), Dropout(0.3), Dense(8, 3, "softmax")],
                      cost=LogLikelihoodCost, seed=seed)
        start = params(net)
        h = net.SGD((x, labels), 2, 7, 0.3, evaluation_data=(x, labels),
                    monitor_evaluation_cost=True, verbose=False)
        return start, params(net), h.evaluation_cost

    start_a, end_a, cost_a = run(1)
    start_b, end_b, cost_b = run(1)
    start_c, end_c, _ = run(2)
    assert all(np.array_equal(a, b) for a, b in zip(start_a, start_b))
    assert all(np.array_equal(a, b) for a, b in zip(end_a, end_b))
    assert cost_a == cost_b
    assert not np.array_equal(start_a[0], start_c[0])
    assert not np.array_equal(end_a[0], end_c[0])


def test_training_data_as_labels_one_hot_or_book_tuples_gives_the_same_result(rng):
    x = rng.random((40, 784))
    labels = rng.integers(0, 10, 40)
    formats = {
        "labels": (x, labels),
        "one-hot": (x, one_hot(labels, 10)),
        "book": [(xi.reshape(784, 1), one_hot(li, 10).reshape(10, 1)) for xi, li in zip(x, labels)],
    }
    book_eval = [(xi.reshape(784, 1), int(li)) for xi, li in zip(x[:15], labels[:15])]
    results = {}
    for name, data in formats.items():
        net = Network([784, 10, 10], seed=3)
        h = net.SGD(data, 2, 10, 0.5, evaluation_data=book_eval, monitor_evaluation_accuracy=True,
                    monitor_training_cost=True, verbose=False)
        results[name] = (params(net), h.training_cost, h.evaluation_accuracy)
    ref_params, ref_cost, ref_acc = results["labels"]
    for name, (p, c, acc) in results.items():
        assert all(np.array_equal(a, b) for a, b in zip(p, ref_params)), name
        assert c == ref_cost and acc == ref_acc, name


def test_sgd_returns_a_history_that_unpacks_into_the_books_four_lists(rng):
    x, labels = synthetic(rng, 30)
    net = Network([5, 4, 3], seed=0)
    history = net.SGD((x, labels), 3, 10, 1.0, lmbda=0.1, evaluation_data=(x[:12], labels[:12]),
                      monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                      monitor_training_cost=True, monitor_training_accuracy=True, verbose=False)
    evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = history
    for lst in (evaluation_cost, evaluation_accuracy, training_cost, training_accuracy):
        assert isinstance(lst, list) and len(lst) == 3
    assert all(type(a) is int and 0 <= a <= 12 for a in evaluation_accuracy)
    assert all(type(a) is int and 0 <= a <= 30 for a in training_accuracy)
    assert all(isinstance(c, float) and c > 0 for c in evaluation_cost + training_cost)
    assert history[1] is evaluation_accuracy and len(history) == 4
    assert history.n_training == 30 and history.n_evaluation == 12
    assert history.eta == [1.0] * 3 and len(history.epoch_seconds) == 3
    assert not history.stopped_early
    assert history.best_epoch() == int(np.argmax(evaluation_accuracy))
    assert net.history is history


@pytest.mark.parametrize("flag, index", [("monitor_evaluation_cost", 0),
                                         ("monitor_evaluation_accuracy", 1),
                                         ("monitor_training_cost", 2),
                                         ("monitor_training_accuracy", 3)])
def test_each_monitor_flag_fills_only_its_own_list(flag, index, rng):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    history = net.SGD((x, labels), 2, 5, 0.5, evaluation_data=(x, labels), verbose=False,
                      **{flag: True})
    assert [len(lst) for lst in history] == [2 if i == index else 0 for i in range(4)]


def test_monitored_values_match_total_cost_and_accuracy(rng):
    x, labels = synthetic(rng, 20)
    ev = (x[:8], labels[:8])
    net = Network([5, 4, 3], seed=0)
    h = net.SGD((x, labels), 1, 5, 0.5, lmbda=1.0, evaluation_data=ev, verbose=False,
                monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                monitor_training_cost=True, monitor_training_accuracy=True)
    assert h.evaluation_cost == [net.total_cost(ev, 1.0)]
    assert h.evaluation_accuracy == [net.accuracy(ev)]
    assert h.training_cost == [net.total_cost((x, labels), 1.0)]
    assert h.training_accuracy == [net.accuracy((x, labels))]


def test_total_cost_adds_the_l2_term_once_with_the_training_set_size(rng):
    x, labels = synthetic(rng, 30)
    xe, le = synthetic(rng, 12)
    lmbda = 2.0
    net = Network([5, 4, 3], seed=0)
    h = net.SGD((x, labels), 1, 10, 0.5, lmbda=lmbda, evaluation_data=(xe, le),
                monitor_evaluation_cost=True, monitor_training_cost=True, verbose=False)
    sum_w2 = sum(float((l.w ** 2).sum()) for l in net.layers)       # biases excluded
    penalty = 0.5 * lmbda / 30 * sum_w2                               # n = 30, not 12
    expected_eval = CrossEntropyCost.fn(net.feedforward(xe), one_hot(le, 3)) / 12 + penalty
    expected_train = CrossEntropyCost.fn(net.feedforward(x), one_hot(labels, 3)) / 30 + penalty
    assert h.evaluation_cost[0] == pytest.approx(expected_eval, rel=1e-12)
    assert h.training_cost[0] == pytest.approx(expected_train, rel=1e-12)
    assert net.total_cost((xe, le), lmbda) == pytest.approx(expected_eval, rel=1e-12)
    assert net.total_cost((xe, le), 0.0) == pytest.approx(expected_eval - penalty, rel=1e-12)
    assert net.total_cost((xe, le), lmbda, n=60) == pytest.approx(expected_eval - penalty / 2,
                                                                   rel=1e-12)


def test_accuracy_returns_an_int_count_of_correct_argmaxes(rng):
    x, labels = synthetic(rng, 25)
    net = Network([5, 4, 3], seed=0)
    expected = int((net.feedforward(x).argmax(axis=1) == labels).sum())
    for data in [(x, labels), (x, one_hot(labels, 3)), list(zip(x, labels.tolist()))]:
        acc = net.accuracy(data)
        assert type(acc) is int and acc == expected
    assert net.evaluate((x, labels)) == expected
    np.testing.assert_array_equal(net.predict(x), net.feedforward(x).argmax(axis=1))


# -- early stopping and the learning-rate schedule -------------------------------------

def scripted_predictions(net, labels, accuracies):
    """Make net.predict score the given accuracies on ``labels``, one per call."""
    script = iter(accuracies)

    def predict(x):
        k = next(script)
        wrong = (labels + 1) % 3
        return np.where(np.arange(len(labels)) < k, labels, wrong)

    net.predict = predict


def test_early_stopping_stops_after_n_epochs_without_a_better_accuracy(rng):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    # A learning rate this small never changes a prediction: epoch 0 sets the best
    # accuracy, and epochs 1, 2, 3 fail to beat it.
    h = net.SGD((x, labels), 50, 5, 1e-12, evaluation_data=(x, labels), early_stopping_n=3,
                verbose=False)
    assert len(h.eta) == 4 and len(h.evaluation_accuracy) == 4
    assert len(set(h.evaluation_accuracy)) == 1
    assert h.stopped_early


def test_early_stopping_counts_from_the_best_epoch_and_ties_do_not_count(rng):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    # best 5 at epoch 0, 7 at epoch 1; 6, 7 (a tie), 6 don't beat it: stop after epoch 4.
    scripted_predictions(net, labels, [5, 7, 6, 7, 6, 9, 9, 9])
    h = net.SGD((x, labels), 8, 5, 0.1, evaluation_data=(x, labels), early_stopping_n=3,
                verbose=False)
    assert h.evaluation_accuracy == [5, 7, 6, 7, 6]
    assert h.stopped_early


def test_without_early_stopping_every_epoch_runs(rng):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    h = net.SGD((x, labels), 6, 5, 1e-12, evaluation_data=(x, labels),
                monitor_evaluation_accuracy=True, verbose=False)
    assert len(h.evaluation_accuracy) == 6 and not h.stopped_early


def test_schedule_halves_eta_after_n_flat_epochs_and_stops_at_eta_over_128(rng):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    eta0 = 1e-12                           # too small to change any prediction
    h = net.SGD((x, labels), 100, 5, eta0, evaluation_data=(x, labels), schedule_n=2,
                verbose=False)
    # Epoch 0 sets the best; every 2 flat epochs halve eta; the 7th halving reaches
    # eta0/128 and stops training before an epoch runs at that rate.
    expected = [eta0] * 3 + [eta0 / 2 ** k for k in range(1, 7) for _ in range(2)]
    assert h.eta == pytest.approx(expected, rel=1e-15)
    assert len(h.eta) == 15 and h.stopped_early


def test_schedule_resets_its_count_when_accuracy_improves(rng):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    scripted_predictions(net, labels, [5, 5, 8, 8, 8, 9, 9, 9, 9, 9])
    h = net.SGD((x, labels), 10, 5, 1.0, evaluation_data=(x, labels), schedule_n=2,
                verbose=False)
    # Epoch 1 is flat, but 8 at epoch 2 resets the count; epochs 3, 4 are flat: halve.
    # 9 at epoch 5 is a new best; epochs 6, 7 flat: halve; 8, 9 flat: halve (not seen).
    assert h.eta == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert not h.stopped_early


def test_verbose_sgd_prints_the_books_progress_lines(rng, capsys):
    x, labels = synthetic(rng, 20)
    net = Network([5, 4, 3], seed=0)
    net.SGD((x, labels), 2, 5, 0.5, evaluation_data=(x, labels), monitor_evaluation_accuracy=True,
            monitor_training_cost=True)
    out = capsys.readouterr().out
    assert "Epoch 1 training complete" in out
    assert "Cost on training data: " in out
    assert f"Accuracy on evaluation data: {net.accuracy((x, labels))} / 20" in out


def test_sgd_prints_nothing_when_verbose_is_false(rng, capsys):
    x, labels = synthetic(rng, 20)
    Network([5, 4, 3], seed=0).SGD((x, labels), 1, 5, 0.5, verbose=False)
    assert capsys.readouterr().out == ""


def test_callback_runs_after_every_epoch(rng):
    x, labels = synthetic(rng, 20)
    seen = []
    net = Network([5, 4, 3], seed=0)
    net.SGD((x, labels), 3, 5, 0.5, verbose=False,
            callback=lambda epoch, n, h: seen.append((epoch, n is net)))
    assert seen == [(0, True), (1, True), (2, True)]


def test_momentum_with_mu_zero_trains_like_plain_sgd(rng):
    x, labels = synthetic(rng, 20)
    plain = Network([5, 4, 3], seed=0)
    plain.SGD((x, labels), 2, 5, 0.5, lmbda=1.0, verbose=False)
    momentum = Network([5, 4, 3], seed=0)
    momentum.SGD((x, labels), 2, 5, 0.5, lmbda=1.0, optimizer=Momentum(0.0), verbose=False)
    for a, b in zip(params(plain), params(momentum)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_sgd_learns_a_linearly_separable_problem(rng):
    x, labels = synthetic(rng, 300)
    net = Network([5, 10, 3], seed=0)
    before = net.accuracy((x, labels))
    net.SGD((x, labels), 30, 10, 1.0, verbose=False)
    assert net.accuracy((x, labels)) >= max(before, 0.85 * 300)


# -- bad arguments -------------------------------------------------------------------

def bad_call_cases():
    rng = np.random.default_rng(0)
    x, labels = synthetic(rng, 20)
    nan_x = x.copy()
    nan_x[3, 2] = np.nan
    out_of_range = labels.copy()
    out_of_range[4] = 3
    return [
        ("mini-batch 0", dict(mini_batch_size=0), ConfigError, r"mini_batch_size.*got 0"),
        ("mini-batch > n", dict(mini_batch_size=21), ConfigError,
         r"mini_batch_size: expected 1 <= mini_batch_size <= 20.*got 21"),
        ("negative eta", dict(eta=-0.5), ConfigError, r"eta: expected a positive.*-0\.5"),
        ("zero eta", dict(eta=0.0), ConfigError, r"eta"),
        ("nan eta", dict(eta=float("nan")), ConfigError, r"eta"),
        ("negative lmbda", dict(lmbda=-1.0), ConfigError, r"lmbda: expected lmbda >= 0.*-1"),
        ("negative epochs", dict(epochs=-1), ConfigError, r"epochs"),
        ("label out of range", dict(training_data=(x, out_of_range)),
         DataError, r"training_data: label 3 out of range \[0, 3\)"),
        ("negative label", dict(training_data=(x, -labels - 1)), DataError,
         r"training_data: label -\d out of range"),
        ("fractional label", dict(training_data=(x, labels + 0.5)), DataError,
         r"training_data: labels must be integers"),
        ("nan input", dict(training_data=(nan_x, labels)), DataError,
         r"training_data: inputs contain NaN"),
        ("wrong input width", dict(training_data=(x[:, :4], labels)), ShapeError,
         r"training_data: expected examples of shape \(5,\).*got \(4,\)"),
        ("X/y length mismatch", dict(training_data=(x, labels[:19])), ShapeError,
         r"training_data: 20 inputs but 19 labels"),
        ("one-hot of the wrong width", dict(training_data=(x, one_hot(labels, 4))), ShapeError,
         r"training_data: targets of shape \(4,\), expected \(3,\)"),
        ("no examples", dict(training_data=[]), DataError, r"training_data: no examples"),
        ("bad evaluation label", dict(evaluation_data=(x, labels + 3)), DataError,
         r"evaluation_data: label"),
        ("early stopping without evaluation data", dict(early_stopping_n=2), ConfigError,
         r"evaluation_data"),
        ("schedule without evaluation data", dict(schedule_n=2), ConfigError, r"evaluation_data"),
        ("unknown regularization", dict(regularization="L3", lmbda=1.0), ConfigError,
         r"regularization"),
    ]


@pytest.mark.parametrize("case, kwargs, error, match", bad_call_cases(),
                         ids=[c[0] for c in bad_call_cases()])
def test_bad_sgd_arguments_raise_nndl_errors_naming_the_argument(case, kwargs, error, match):
    x, labels = synthetic(np.random.default_rng(0), 20)
    call = dict(training_data=(x, labels), epochs=1, mini_batch_size=5, eta=0.5, verbose=False)
    call.update(kwargs)
    net = Network([5, 4, 3], seed=0)
    before = params(net)
    with pytest.raises(error, match=match):
        net.SGD(**call)
    assert all(np.array_equal(a, b) for a, b in zip(before, params(net))), "trained anyway"


def test_nndl_errors_are_also_value_errors():
    # A learner's `except ValueError` keeps working.
    with pytest.raises(ValueError):
        Network([Dense(4, 3), Dense(5, 2)])


def test_evaluation_rejects_inputs_of_the_wrong_width(rng):
    net = Network([5, 4, 3], seed=0)
    with pytest.raises(ShapeError, match=r"x: expected examples of shape \(5,\)"):
        net.predict(rng.random((3, 6)))
    with pytest.raises(ShapeError, match=r"data: expected examples"):
        net.accuracy((rng.random((3, 6)), np.zeros(3, int)))
