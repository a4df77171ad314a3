"""Chapter 3's ``network2.py``, as thin names onto :class:`nndl.Network`.

    >>> from nndl import mnist_loader, network2
    >>> training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
    >>> net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost)
    >>> net.large_weight_initializer()
    >>> net.SGD(training_data, 30, 10, 0.5, evaluation_data=test_data,
    ...         monitor_evaluation_accuracy=True)

Defaults follow network2: cross-entropy cost, weights N(0, 1/n_in).  ``save`` writes
nndl's format (JSON when the name ends in ``.json``), and ``load`` reads it back.
"""
import numpy as np

from . import network
from .costs import CrossEntropyCost, QuadraticCost  # noqa: F401  (the book's names)
from .network import sigmoid, sigmoid_prime  # noqa: F401


class Network(network.Network):
    """``Network(sizes, cost=CrossEntropyCost)``: chapter 3's improved network, whose
    weights start N(0, 1/n_in); column vectors in and out, as in chapter 1."""

    def __init__(self, sizes, cost=CrossEntropyCost, seed=None, **kwargs):
        kwargs.setdefault("init", "default")
        super().__init__(sizes, cost=cost, seed=seed, **kwargs)

    def SGD(self, training_data, epochs, mini_batch_size, eta, *args, **kwargs):
        return super(network.Network, self).SGD(training_data, epochs, mini_batch_size, eta,
                                                *args, **kwargs)


def load(filename):
    """Load a network saved with ``Network.save``."""
    return Network.load(filename)


def vectorized_result(j):
    """A (10, 1) column with 1.0 in position j."""
    e = np.zeros((10, 1))
    e[j] = 1.0
    return e
