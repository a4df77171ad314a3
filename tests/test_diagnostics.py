"""Diagnostics (chapter 5): the speed of learning per hidden layer, and misclassified digits."""
import numpy as np
import pytest

from nndl import Network
from nndl.diagnostics import SpeedOfLearning, bias_gradient_norms, gradient_norms, misclassified


def random_batch(rng, n=200, n_in=50, k=10):
    return rng.random((n, n_in)), rng.integers(0, k, n)


def test_bias_gradient_norms_are_the_books_per_example_average(rng):
    # The book's get_average_gradient: backprop one example at a time, sum, divide by N.
    x, y = random_batch(rng, n=30, n_in=8, k=4)
    net = Network([8, 6, 5, 4], seed=0)
    targets = np.eye(4)[y]
    total = [np.zeros(6), np.zeros(5)]
    for i in range(len(x)):
        net.backprop(x[i:i + 1], targets[i:i + 1])
        total = [t + l.nabla_b for t, l in zip(total, net.layers[:-1])]
    expected = [np.linalg.norm(t / len(x)) for t in total]
    np.testing.assert_allclose(bias_gradient_norms(net, x, y), expected, rtol=1e-12)
    # Targets as one-hot rows give the same numbers as labels.
    np.testing.assert_allclose(bias_gradient_norms(net, x, targets), expected, rtol=1e-12)


def test_weight_gradient_norms_and_the_output_layer_on_request(rng):
    x, y = random_batch(rng, n=30, n_in=8, k=4)
    net = Network([8, 6, 5, 4], seed=0)
    assert len(gradient_norms(net, x, y, param="w")) == 2
    every = gradient_norms(net, x, y, hidden_only=False)
    assert len(every) == 3
    assert every[-1] == pytest.approx(np.linalg.norm(net.layers[-1].nabla_b) / len(x))


@pytest.mark.parametrize("seed", range(5))
def test_gradients_vanish_toward_the_input_of_a_deep_sigmoid_net(seed, rng):
    # Chapter 5: in [n, 30, 30, 30, 30, 10] each hidden layer learns several times more
    # slowly than the one after it (σ' <= 1/4 and weights ~ N(0, 1/n_in) shrink δ).
    x, y = random_batch(rng)
    net = Network([50, 30, 30, 30, 30, 10], seed=seed)
    norms = bias_gradient_norms(net, x, y)
    assert len(norms) == 4
    assert all(later > 2 * earlier for earlier, later in zip(norms, norms[1:])), norms
    assert norms[-1] > 30 * norms[0]


def test_speed_of_learning_records_the_start_and_every_epoch(rng):
    x, y = random_batch(rng, n=100, n_in=20)
    net = Network([20, 10, 10, 10], seed=1)
    speed = SpeedOfLearning(x[:50], y[:50], net)
    assert len(speed.norms) == 1
    net.SGD((x, y), 3, 100, 0.5, lmbda=5.0, verbose=False, callback=speed)
    assert np.asarray(speed.norms).shape == (4, 2)
    assert speed.norms[-1] == bias_gradient_norms(net, x[:50], y[:50])
    assert speed.norms[0] != speed.norms[-1]


def test_measuring_does_not_change_training(rng):
    x, y = random_batch(rng, n=100, n_in=20)
    plain, watched = Network([20, 10, 10], seed=2), Network([20, 10, 10], seed=2)
    plain.SGD((x, y), 3, 10, 0.5, verbose=False)
    watched.SGD((x, y), 3, 10, 0.5, verbose=False, callback=SpeedOfLearning(x, y))
    for a, b in zip(plain.weights, watched.weights):
        np.testing.assert_array_equal(a, b)


def test_misclassified_lists_exactly_the_wrong_predictions(rng):
    x, y = random_batch(rng, n=100, n_in=20, k=3)
    net = Network([20, 3], seed=3)
    idx, predicted, labels = misclassified(net, (x, y))
    wrong = net.predict(x) != y
    assert np.array_equal(idx, np.flatnonzero(wrong))
    assert np.array_equal(labels, y[wrong]) and np.all(predicted != labels)
    assert len(idx) == len(x) - net.accuracy((x, y))
