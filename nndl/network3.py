"""Chapter 6's ``network3.py``, running on nndl instead of Theano.

The chapter's listings run as printed::

    >>> from nndl import network3
    >>> from nndl.network3 import Network, ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
    >>> training_data, validation_data, test_data = network3.load_data_shared()
    >>> mini_batch_size = 10
    >>> net = Network([
    ...     ConvPoolLayer(image_shape=(mini_batch_size, 1, 28, 28),
    ...                   filter_shape=(20, 1, 5, 5), poolsize=(2, 2)),
    ...     FullyConnectedLayer(n_in=20*12*12, n_out=100),
    ...     SoftmaxLayer(n_in=100, n_out=10)], mini_batch_size)
    >>> net.SGD(training_data, 60, mini_batch_size, 0.1, validation_data, test_data)
    Epoch 0: validation accuracy 97.50%
    This is the best validation accuracy to date.
    The corresponding test accuracy is 97.40%
    ...

:class:`Network` is :class:`nndl.Network` with the log-likelihood cost and network3's
``SGD`` signature and printout; the layers come from :mod:`nndl.conv`.  Differences
from the book's code, all deliberate:

* Data are ``(X, y)`` numpy arrays, not Theano shared variables, float32 by default
  (as network3 used on a GPU); pass ``dtype=np.float64`` to :class:`Network` for
  float64.  The last, shorter mini-batch of an epoch is trained on, not dropped.
* network3's three known bugs are fixed by default: weights start N(0, 1/n_in)
  (fan-in) instead of N(0, 1/n_out), and the L2 term is (λ/2n)Σw² with n the
  training-set size instead of λ/(2·number of mini-batches).  ``book_init=True`` on
  ``ConvPoolLayer`` and ``FullyConnectedLayer`` and ``book_l2=True`` on
  :meth:`Network.SGD` reproduce the book's behaviour exactly.
* Dropout is inverted dropout (see :class:`nndl.conv.FullyConnectedLayer`).
* The "Training mini-batch number ..." lines are not printed; ``progress=True``
  shows a progress bar instead.
"""
import os
from typing import NamedTuple

import numpy as np

from . import activations
from . import net as _net
from .conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer  # noqa: F401  (the book's names)
from .costs import LogLikelihoodCost
from .ensemble import ensemble_vote  # noqa: F401  (the chapter's ensemble of five nets)
from .errors import ConfigError

# network3's activation functions, as nndl's activation classes.
ReLU = activations.ReLU
sigmoid = activations.Sigmoid
tanh = activations.Tanh
linear = activations.Identity


def load_data_shared(filename="mnist.pkl.gz", path=None, dtype=np.float32):
    """MNIST as ``[training_data, validation_data, test_data]``, each ``(X, y)`` arrays.

    X is (N, 784) in [0, 1] of ``dtype``, y (N,) int labels.  The book's pickle
    ``filename`` is not read; nndl finds MNIST itself (``path``, else ``$NNDL_DATA``,
    else the project's ``data/``).  A ``filename`` naming a folder is used as ``path``.
    A filename containing ``expanded`` (the book's ``mnist_expanded.pkl.gz``) returns
    the expanded training set of :func:`nndl.expand.expand_mnist`: 250,000 images,
    784 MB in float32; if it names an ``.npz`` file written by
    ``scripts/expand_mnist.py``, that file is read instead.
    """
    from .data import load_mnist

    name = os.fspath(filename) if filename is not None else ""
    if path is None and name and os.path.isdir(name):
        path = name
    if "expanded" in os.path.basename(name):
        from . import expand

        if name.endswith(".npz") and os.path.isfile(name):
            return expand.load_expanded(name, dtype=dtype)
        training, validation, test = load_mnist(path, dtype=dtype)
        return [expand.expand_mnist(*training, dtype=dtype), validation, test]
    return list(load_mnist(path, dtype=dtype))


def size(data):
    """The number of examples in ``data`` = (X, y)."""
    return len(data[0])


class SGDResult(NamedTuple):
    """What :meth:`Network.SGD` returns: accuracies are fractions in [0, 1]."""

    best_validation_accuracy: float
    best_iteration: int
    test_accuracy: float


class Network(_net.Network):
    """``Network(layers, mini_batch_size)``: network3's network, trained by nndl.

    The cost is the log-likelihood of the softmax output.  ``mini_batch_size`` is kept
    for the book's sake; ``SGD`` takes its own.  Other keywords (``seed=``, ``rng=``,
    ``input_shape=``) go to :class:`nndl.Network`.
    """

    def __init__(self, layers, mini_batch_size=None, cost=LogLikelihoodCost, dtype=np.float32,
                 **kwargs):
        super().__init__(layers, cost=cost, dtype=dtype, **kwargs)
        self.mini_batch_size = mini_batch_size

    def SGD(self, training_data, epochs, mini_batch_size, eta, validation_data=None,
            test_data=None, lmbda=0.0, book_l2=False, progress=False, verbose=True,
            timing=False, callback=None, checkpoint=None, resume=False):
        """Train by mini-batch SGD, printing the validation accuracy each epoch as network3.

        Returns ``SGDResult(best_validation_accuracy, best_iteration, test_accuracy)``:
        the best validation accuracy (the latest epoch wins ties, as in network3), the
        iteration (mini-batch count, from 0) at which it was reached, and the test
        accuracy at that epoch (None without test data).  The full per-epoch
        :class:`nndl.training.History` is left in ``self.history``.  ``book_l2=True`` scales
        the L2 term by the number of mini-batches, as network3 did, instead of by the
        training-set size n.  ``timing=True`` adds each epoch's seconds to its line.
        ``checkpoint``/``resume`` are :meth:`nndl.Network.SGD`'s: the running best is
        derived from the (checkpointed) history, so a resumed run reports the same.
        """
        if validation_data is None:
            raise ConfigError("validation_data: network3's SGD needs validation data to report on")
        n = len(training_data[0]) if isinstance(training_data, tuple) and len(training_data) == 2 \
            else len(training_data)
        m = int(mini_batch_size)
        batches = -(-n // m) if m >= 1 else 0
        if book_l2 and batches:
            # network3: cost + 0.5·λ·Σw²/num_training_batches; nndl's L2 uses λ'/n.
            lmbda = lmbda * n / batches

        def report(epoch, net, history):
            acc = history.evaluation_accuracy[-1] / history.n_evaluation
            if verbose:
                secs = f" ({history.epoch_seconds[-1]:.2f} s)" if timing else ""
                print(f"Epoch {epoch}: validation accuracy {acc:.2%}{secs}")
            test_acc = None
            if _best_epoch(history) == epoch:
                if verbose:
                    print("This is the best validation accuracy to date.")
                if test_data is not None:
                    test_acc = net.accuracy(test_data) / size(test_data)
                    if verbose:
                        print(f"The corresponding test accuracy is {test_acc:.2%}")
            history.test_accuracy.append(test_acc)
            if callback is not None:
                callback(epoch, net, history)

        history = super().SGD(training_data, epochs, mini_batch_size, eta, lmbda=lmbda,
                              evaluation_data=validation_data, monitor_evaluation_accuracy=True,
                              verbose=False, progress=progress, callback=report,
                              checkpoint=checkpoint, resume=resume)
        best = _best_epoch(history)
        if best is None:
            result = SGDResult(0.0, None, None)
        else:
            result = SGDResult(history.evaluation_accuracy[best] / history.n_evaluation,
                               batches * (best + 1) - 1, history.test_accuracy[best])
        if verbose:
            print("Finished training network.")
            if result.best_iteration is not None:
                print(f"Best validation accuracy of {result.best_validation_accuracy:.2%} "
                      f"obtained at iteration {result.best_iteration}")
            if result.test_accuracy is not None:
                print(f"Corresponding test accuracy of {result.test_accuracy:.2%}")
        return result


def _best_epoch(history):
    """The epoch of the best validation accuracy, the latest of ties (as network3)."""
    acc = history.evaluation_accuracy
    return len(acc) - 1 - int(np.argmax(acc[::-1])) if acc else None
