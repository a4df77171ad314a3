"""Chapter 1's ``network.py``, as thin names onto :class:`nndl.Network`.

The book's session runs as printed::

    >>> from nndl import mnist_loader, network
    >>> training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
    >>> net = network.Network([784, 30, 10])
    >>> net.SGD(training_data, 30, 10, 3.0, test_data=test_data)
    Epoch 0: 9129 / 10000

Chapter 1's choices are the defaults here: quadratic cost, weights and biases drawn
N(0, 1), and ``feedforward`` taking one (784, 1) column vector.
"""
import numpy as np

from . import net as _net
from .activations import Sigmoid
from .costs import QuadraticCost


class Network(_net.Network):
    """``Network(sizes)``: chapter 1's sigmoid network with the quadratic cost."""

    def __init__(self, sizes, cost=QuadraticCost, seed=None, **kwargs):
        kwargs.setdefault("init", "large")
        super().__init__(sizes, cost=cost, seed=seed, **kwargs)

    def feedforward(self, a, train=False):
        """A (n_in, 1) column gives a (n_out, 1) column, as in the book; rows of a batch
        give rows."""
        a = np.asarray(a)
        if a.ndim == 2 and a.shape[1] == 1 and a.shape[0] == int(np.prod(self.input_shape)):
            return super().feedforward(a.T.astype(self.dtype), train).T
        return super().feedforward(a, train)

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None, **kwargs):
        return super().SGD(training_data, epochs, mini_batch_size, eta, test_data=test_data, **kwargs)


def sigmoid(z):
    """The sigmoid function, elementwise."""
    return Sigmoid.fn(np.asarray(z, dtype=float))


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    return Sigmoid.prime(np.asarray(z, dtype=float))
