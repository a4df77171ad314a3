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

from . import backend
from . import net as _net
from .activations import Sigmoid
from .costs import QuadraticCost
from .layers import Dense


class Network(_net.Network):
    """``Network(sizes)``: chapter 1's sigmoid network with the quadratic cost."""

    def __init__(self, sizes, cost=QuadraticCost, seed=None, **kwargs):
        kwargs.setdefault("init", "large")
        super().__init__(sizes, cost=cost, seed=seed, **kwargs)

    def feedforward(self, a, train=False):
        """A (n_in, 1) column gives a (n_out, 1) column, as in the book; rows of a batch
        give rows."""
        a = np.asarray(a) if backend.xp(a) is np else a
        if a.ndim == 2 and a.shape[1] == 1 and a.shape[0] == int(np.prod(self.input_shape)):
            return super().feedforward(a.T.astype(self.dtype), train).T
        return super().feedforward(a, train)

    def SGD(self, training_data, epochs, mini_batch_size, eta, test_data=None, **kwargs):
        return super().SGD(training_data, epochs, mini_batch_size, eta, test_data=test_data, **kwargs)

    def update_mini_batch(self, mini_batch, eta, lmbda=0.0, n=None):
        """One gradient step on the book's list of (x, y) column-vector tuples."""
        x, _, y = self._prepare(mini_batch, "mini_batch")
        super().update_mini_batch(x, y, eta, lmbda, n)

    def backprop(self, x, y):
        """For one (n_in, 1) column ``x`` and (n_out, 1) target ``y``: the book's
        ``(nabla_b, nabla_w)`` lists of ∂C_x/∂b and ∂C_x/∂w (biases as columns).
        Batches of rows give the batched behaviour of :meth:`nndl.Network.backprop`."""
        x, y = (np.asarray(v) if backend.xp(v) is np else v for v in (x, y))
        if x.ndim == 2 and x.shape[1] == 1 and x.shape[0] == int(np.prod(self.input_shape)):
            xb, _, yb = self._prepare([(x, y)], "x")
            super().backprop(xb, yb)
            dense = [l for l in self.layers if isinstance(l, Dense)]
            return ([l.nabla_b.reshape(-1, 1).copy() for l in dense],
                    [l.nabla_w.copy() for l in dense])
        return super().backprop(x, y)


def sigmoid(z):
    """The sigmoid function, elementwise."""
    return Sigmoid.fn(np.asarray(z, dtype=float))


def sigmoid_prime(z):
    """Derivative of the sigmoid function."""
    return Sigmoid.prime(np.asarray(z, dtype=float))
