"""Speed as a lowering: the same network, run faster, chosen in one place.

The readable model (:mod:`nndl.net`, :mod:`nndl.layers`, :mod:`nndl.conv`) defines
what is computed.  This package holds two ways of computing the same thing faster on
the CPU, and knows no class of the model: it reads what layers, activations, costs,
regularizers and optimizers *declare* about themselves (``kernel``, ``stochastic``,
``parallel_batches``).

* :mod:`nndl.fast.dense`: a whole run of mini-batches of a stack of dense layers in one
  numba-compiled loop (chapters 1-3), and its forward pass for evaluation.
* :mod:`nndl.fast.suffix`: the dense layers at the end of a convolutional net (chapter
  6) on the same kernels at small mini-batches, behind the readable convolutions.
* :mod:`nndl.fast.shards`: a big batch of a convolutional net cut in shards that run the
  readable ``backprop`` at once on replicas of the layers (chapter 6).

:func:`fusable` is the one yes/no for the fused loops, and :func:`trainer` builds the
one it said yes to; the training loop (:mod:`nndl.training`) and :func:`outputs`
(evaluation) are the only callers.  The tests check that each lowering gives the
reference path's numbers (``tests/test_fast_conformance.py``, ``tests/test_fastpath.py``,
``tests/test_fast_suffix.py``, ``tests/test_shards.py``).
"""
import numpy as np

from ..inputs import Examples
from . import dense, shards, suffix

EVAL_BATCH = 1000  # examples per forward pass when evaluating
_FUSED_FORWARD_MIN = 64  # smaller batches evaluate layer by layer (a call costs more)


def fusable(net, optimizer=None, regularization=None, x=None, mini_batch_size=None):
    """True when ``net`` runs on the fused dense kernels: for training when ``optimizer``
    is given (with ``regularization``, an L1/L2 instance or None), for evaluation when
    not; ``x``, if given, must be a numpy array of the network's dtype, or
    :class:`nndl.inputs.Examples` of it (whose rows the callers gather a run of
    mini-batches, or an evaluation batch, at a time).  In training, a net that is not
    all dense runs its dense suffix fused when ``mini_batch_size`` is given and small
    (:mod:`nndl.fast.suffix`)."""
    if x is not None and not ((type(x) is np.ndarray or isinstance(x, Examples))
                              and x.dtype == net.dtype):
        return False
    if optimizer is None:
        return dense._dense_stack(net.layers)
    return (dense.eligible(net, optimizer, regularization)
            or (mini_batch_size is not None
                and suffix.eligible(net, optimizer, regularization, mini_batch_size)))


def trainer(net, mini_batch_size):
    """The fused trainer for ``net`` (after :func:`fusable` said yes): an object whose
    ``run(x, y, perm, start, stop, eta, reg, n)`` trains on mini-batches perm[start:stop]
    and returns -1, or the index of the first mini-batch whose output went non-finite."""
    if dense._dense_stack(net.layers):
        return dense.FusedTrainer(net, mini_batch_size)
    return suffix.SuffixTrainer(net, mini_batch_size)


def outputs(net, x):
    """The network's output activations for ``x`` (N, *input_shape), a batch of
    EVAL_BATCH at a time, each on the fastest path that gives the reference's numbers;
    yields (start, outputs) pairs."""
    n = len(x)
    if n >= _FUSED_FORWARD_MIN and fusable(net, x=x):
        flat = x.reshape(n, -1)
        for k in range(0, n, EVAL_BATCH):
            chunk = flat[k:k + EVAL_BATCH]
            yield k, (dense.forward(net, chunk) if len(chunk) >= _FUSED_FORWARD_MIN
                      else net.feedforward(chunk))
        return
    with shards.session(net, min(n, EVAL_BATCH), train=False) as replicas:
        forward = replicas.feedforward if replicas is not None else net.feedforward
        for k in range(0, n, EVAL_BATCH):
            yield k, forward(x[k:k + EVAL_BATCH])
