"""nndl: the code of Michael Nielsen's *Neural Networks and Deep Learning*, as a package.

    >>> from nndl import Network, load_mnist
    >>> training_data, validation_data, test_data = load_mnist()
    >>> net = Network([784, 30, 10], seed=1)
    >>> net.SGD(training_data, 30, 10, 0.5, evaluation_data=test_data,
    ...         monitor_evaluation_accuracy=True)
"""
from .activations import Identity, ReLU, Sigmoid, Softmax, Tanh
from .conv import Conv2D, ConvPoolLayer, FullyConnectedLayer, L2Pool2D, MaxPool2D, SoftmaxLayer
from .costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from .errors import (ConfigError, DataError, DivergenceError, FormatError, NNDLError, SaveError,
                     ShapeError)
from .layers import Dense, Dropout, Flatten
from .net import Network
from .training import History
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSProp
from .regularization import L1, L2


def __getattr__(name):
    # The data loaders import lazily so `import nndl` stays cheap.
    if name in ("load_mnist", "load_fashion_mnist", "one_hot"):
        from . import data

        return getattr(data, name)
    if name == "load_cifar10":
        from .cifar import load_cifar10

        return load_cifar10
    if name == "autograd":
        import importlib

        return importlib.import_module(".autograd", __name__)
    raise AttributeError(f"module 'nndl' has no attribute {name!r}")


__version__ = "0.1.0"
