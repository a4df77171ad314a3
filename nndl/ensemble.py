"""Ensembles (chapter 6): several trained networks vote on each example.

The book's last step up the ladder is a plurality vote of five dropout networks
(99.67% on MNIST's test set).  :func:`vote` takes the networks' output probabilities,
so a vote can be computed from saved outputs without keeping the networks.
"""
import numpy as np

from .backend import to_numpy
from .errors import ConfigError


def vote(probabilities):
    """The plurality vote of K sets of outputs: a list of (N, n_classes) -> (N,) classes.

    Each set votes for its most probable class.  A tie between classes with the same
    number of votes goes to the class with the larger sum of probabilities, and any tie
    left after that to the lowest class.
    """
    probabilities = [np.asarray(p, dtype=np.float64) for p in probabilities]
    if not probabilities:
        raise ConfigError("probabilities: expected the outputs of at least one network")
    shape = probabilities[0].shape
    votes, total = np.zeros(shape), np.zeros(shape)
    for p in probabilities:
        if p.shape != shape:
            raise ConfigError(f"probabilities: outputs of shape {p.shape[1:]} and {shape[1:]} differ")
        votes[np.arange(len(p)), p.argmax(axis=1)] += 1
        total += p
    # Votes are integers and a sum of probabilities is < K + 1, so this breaks only ties.
    return (votes * (len(probabilities) + 1) + total).argmax(axis=1)


def ensemble_vote(nets, X):
    """The plurality vote of several trained networks: (N, ...) inputs -> (N,) classes
    (see :func:`vote` for the ties)."""
    nets = list(nets)
    if not nets:
        raise ConfigError("nets: expected at least one trained network")
    return vote([probabilities(net, X) for net in nets])


def probabilities(net, X):
    """The net's outputs for X, in float64 host memory, a thousand examples at a time."""
    x = net._inputs(X, "X")
    return np.concatenate([to_numpy(net.feedforward(x[k:k + 1000])).astype(np.float64)
                           for k in range(0, len(x), 1000)])
