"""Learning runs on real MNIST: one epoch must already do what chapters 1 and 3 report.

Marked slow; CI runs them with NNDL_DATA pointing at the shared MNIST files.
"""
import numpy as np
import pytest

from nndl import CrossEntropyCost, Network, QuadraticCost

pytestmark = pytest.mark.slow


def test_one_epoch_of_quadratic_cost_sgd_reaches_90_percent(mnist):
    # Chapter 1's run (eta 3.0, mini-batches of 10, quadratic cost), with chapter 3's
    # weight initialization: chapter 1's N(0, 1) weights leave some seeds stuck.
    training_data, validation_data, test_data = mnist
    assert len(training_data[0]) == 50_000
    net = Network([784, 30, 10], cost=QuadraticCost, seed=0)
    history = net.SGD(training_data, 1, 10, 3.0, evaluation_data=test_data,
                      monitor_evaluation_accuracy=True, verbose=False)
    assert history.evaluation_accuracy[0] >= 9000, history.evaluation_accuracy
    assert net.accuracy(validation_data) >= 9000


def test_one_epoch_of_cross_entropy_sgd_reaches_90_percent(mnist):
    # Chapter 3's network2: cross-entropy, eta 0.5, weights N(0, 1/n_in).
    training_data, _, test_data = mnist
    net = Network([784, 30, 10], cost=CrossEntropyCost, seed=1)
    history = net.SGD(training_data, 1, 10, 0.5, lmbda=5.0, evaluation_data=test_data,
                      monitor_evaluation_accuracy=True, monitor_evaluation_cost=True,
                      verbose=False)
    assert history.evaluation_accuracy[0] >= 9000, history.evaluation_accuracy
    assert np.isfinite(history.evaluation_cost[0]) and history.evaluation_cost[0] < 1.0
