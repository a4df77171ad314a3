"""Looking inside a network as it learns (chapter 5, and chapter 1's misclassified digits).

Chapter 5 asks why deep networks are hard to train.  It measures the *speed of
learning* of hidden layer l by the length of the gradient ‖∂C/∂b^l‖ (the bias
gradient, which equals δ^l by BP3), averaged over the first 1,000 training images,
and finds that in a [784, 30, 30, 30, 30, 10] sigmoid network the first hidden layer
learns about a hundred times more slowly than the last: the vanishing gradient
problem.  :func:`gradient_norms` computes those lengths with :meth:`Network.backprop`;
:class:`SpeedOfLearning` records them after every epoch as a ``Network.SGD`` callback;
:func:`nndl.plots.speed_of_learning` draws them.
"""
import numpy as np

from . import backend


def gradient_norms(net, x, y, param="b", hidden_only=True):
    """‖∂C/∂p^l‖ for every layer with a parameter named ``param``: a list of floats.

    C is the cost averaged over the batch x (N, ...), y (labels (N,) or targets (N,
    n_out)), as the book's ``get_average_gradient`` does, without the regularization
    term (biases are not regularized).  With ``hidden_only`` the output layer is left
    out, leaving one norm per hidden layer, first hidden layer first.  The layers'
    ``nabla_*`` are overwritten.  A net with :class:`~nndl.layers.Dropout` draws masks
    from its generator here, so measuring changes the rest of its training run.
    """
    x, _, targets = net._prepare((x, y), "x")
    layers = net.layers[:-1] if hidden_only else net.layers
    net.backprop(x, targets)
    norms = []
    for layer in layers:
        for name, _, g in layer.parameters():
            if name == param:
                norms.append(float(backend.xp(g).linalg.norm(g)) / len(x))
    return norms


def bias_gradient_norms(net, x, y):
    """The book's speed of learning: ‖∂C/∂b^l‖ per hidden layer (see :func:`gradient_norms`)."""
    return gradient_norms(net, x, y, param="b", hidden_only=True)


class SpeedOfLearning:
    """A ``Network.SGD`` callback recording ‖∂C/∂b^l‖ per hidden layer on a fixed batch.

    ``norms[j]`` lists the hidden layers' norms after epoch j - 1; ``norms[0]`` is the
    starting point, measured at construction when ``net`` is given (the book's figure
    measures before every epoch, so its row j is this row j).  Usage::

        speed = SpeedOfLearning(x[:1000], y[:1000], net)
        net.SGD(..., callback=speed)
        plots.speed_of_learning(speed.norms, "speed.png")
    """

    def __init__(self, x, y, net=None, param="b"):
        self.x, self.y, self.param = x, y, param
        self.norms = []
        if net is not None:
            self.record(net)

    def record(self, net):
        self.norms.append(gradient_norms(net, self.x, self.y, param=self.param))

    def __call__(self, epoch, net, history):
        self.record(net)


def misclassified(net, data):
    """Indices, predicted classes and true labels of the examples ``net`` gets wrong.

    ``data`` is (X, y) with labels y (N,); returns three (K,) int arrays, K = the number
    of mistakes, in the data's order.
    """
    x, labels = data
    labels = np.asarray(labels)
    predicted = net.predict(x)
    wrong = np.flatnonzero(predicted != labels)
    return wrong, predicted[wrong], labels[wrong]
