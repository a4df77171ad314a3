"""Every activation x output activation x cost x regularizer the package offers is either
fused and equal to the reference path, or declared not fusable: for a stack of dense
layers (nndl.fast.dense) and for the dense suffix, with dropout, of a convolutional net
(nndl.fast.suffix).

The fused path (nndl.fast.dense) reads only what things declare (``kernel``), so this
test walks the package's own tables: an activation, cost or regularizer added without a
``kernel`` declaration, or declaring an id the fused path does not know, fails here.
"""
import itertools

import numpy as np
import pytest

from nndl import Dense, Network, activations, costs, fast, optimizers, regularization
from nndl.conv import ConvPoolLayer, FullyConnectedLayer
from nndl.fast import dense, suffix
from nndl.layers import LAYER_TYPES

ACTIVATIONS = sorted(set(activations.ACTIVATIONS.values()), key=lambda c: c.__name__)
COSTS = sorted(set(costs.COSTS.values()), key=lambda c: c.__name__)
REGULARIZERS = [None, regularization.L1, regularization.L2]
OPTIMIZERS = [optimizers.SGD, optimizers.Momentum, optimizers.Nesterov, optimizers.AdaGrad,
              optimizers.RMSProp, optimizers.Adam]

# Fused and reference weights after two epochs agree to this (float64): the kernels may
# reassociate sums (fastmath), so the last bits differ, nothing more.
TOL = 1e-9


@pytest.mark.parametrize("cls", ACTIVATIONS + COSTS + REGULARIZERS[1:],
                         ids=lambda c: c.__name__)
def test_each_activation_cost_and_regularizer_declares_its_kernel(cls):
    assert "kernel" in vars(cls), f"{cls.__name__} must declare kernel (an id, or None)"
    known = {**dense._ACT, **dense._COST, **{k: 0 for k in dense._REG if k}}
    assert cls.kernel is None or cls.kernel in known, \
        f"{cls.__name__}.kernel = {cls.kernel!r} is not an id the fused path knows"


@pytest.mark.parametrize("cls", OPTIMIZERS, ids=lambda c: c.__name__)
def test_each_optimizer_declares_its_kernel(cls):
    assert cls.kernel in (None, "sgd")
    assert set(dir(optimizers)) >= {c.__name__ for c in OPTIMIZERS}


def test_every_registered_layer_declares_what_fast_reads():
    for name, cls in LAYER_TYPES.items():
        for attr in ("kernel", "input_dropout", "stochastic", "parallel_batches", "input_grad",
                     "activation"):
            assert hasattr(cls, attr), f"{name} lacks {attr}"


def _net(act, out, cost, seed=5):
    return Network([Dense(6, 5, act), Dense(5, 3, out)], cost=cost, seed=seed)


def _data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((40, 6))
    return x, rng.integers(0, 3, 40)


COMBOS = list(itertools.product(ACTIVATIONS, ACTIVATIONS, COSTS, REGULARIZERS))


@pytest.mark.parametrize("act, out, cost, reg", COMBOS,
                         ids=[f"{a.__name__}-{o.__name__}-{c.__name__}-{r.__name__ if r else 'none'}"
                              for a, o, c, r in COMBOS])
def test_fused_equals_reference_or_is_declared_unfusable(act, out, cost, reg, monkeypatch):
    net = _net(act, out, cost)
    r = None if reg is None else reg(0.5)
    if not fast.fusable(net, optimizers.SGD(), r):
        # declared: some part has no kernel, or the cost's BP1 is not fused with this output
        ids = [act.kernel, out.kernel, cost.kernel] + ([] if reg is None else [reg.kernel])
        assert (None in ids or act.kernel == "softmax"
                or out.kernel not in dense._COST_OUTPUTS[cost.kernel])
        return
    x, y = _data()
    ref, fused = _net(act, out, cost), _net(act, out, cost)
    calls = []
    run = dense.FusedTrainer.run
    monkeypatch.setattr(dense.FusedTrainer, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    with np.errstate(all="ignore"):
        ref.SGD((x, y), 2, 10, 0.1, lmbda=0.5 if reg else 0.0,
                regularization=reg.__name__ if reg else "L2", verbose=False, fast=False)
        fused.SGD((x, y), 2, 10, 0.1, lmbda=0.5 if reg else 0.0,
                  regularization=reg.__name__ if reg else "L2", verbose=False)
    assert len(calls) == 2                                  # fused: one call per epoch
    for (_, p, _), (_, q, _) in zip((t for l in ref.layers for t in l.parameters()),
                                    (t for l in fused.layers for t in l.parameters())):
        np.testing.assert_allclose(q, p, rtol=TOL, atol=TOL)
    np.testing.assert_allclose(fused.total_cost((x, y)), ref.total_cost((x, y)), rtol=1e-9)


def _conv_net(act, out, cost, seed=5):
    return Network([ConvPoolLayer((2, 1, 3, 3), (None, 1, 6, 6), (2, 2), "relu"),
                    FullyConnectedLayer(8, 5, act, p_dropout=0.3),
                    FullyConnectedLayer(5, 3, out, p_dropout=0.2)],
                   cost=cost, seed=seed, input_shape=(1, 6, 6))


@pytest.mark.parametrize("act, out, cost, reg", COMBOS,
                         ids=[f"{a.__name__}-{o.__name__}-{c.__name__}-{r.__name__ if r else 'none'}"
                              for a, o, c, r in COMBOS])
def test_fused_suffix_equals_reference_or_is_declared_unfusable(act, out, cost, reg, monkeypatch):
    net = _conv_net(act, out, cost)
    r = None if reg is None else reg(0.5)
    x = np.random.default_rng(0).random((30, 36))
    if not fast.fusable(net, optimizers.SGD(), r, x, 10):
        ids = [act.kernel, out.kernel, cost.kernel] + ([] if reg is None else [reg.kernel])
        assert (None in ids or act.kernel == "softmax"
                or out.kernel not in dense._COST_OUTPUTS[cost.kernel])
        return
    y = np.random.default_rng(1).integers(0, 3, 30)
    ref, fused = _conv_net(act, out, cost), _conv_net(act, out, cost)
    calls = []
    run = suffix.SuffixTrainer.run
    monkeypatch.setattr(suffix.SuffixTrainer, "run", lambda *a, **k: calls.append(1) or run(*a, **k))
    kw = dict(lmbda=0.5 if reg else 0.0, regularization=reg.__name__ if reg else "L2",
              verbose=False)
    with np.errstate(all="ignore"):
        ref.SGD((x, y), 2, 10, 0.1, fast=False, **kw)
        fused.SGD((x, y), 2, 10, 0.1, **kw)
    assert len(calls) == 2                                  # fused: one call per epoch
    for (_, p, _), (_, q, _) in zip((t for l in ref.layers for t in l.parameters()),
                                    (t for l in fused.layers for t in l.parameters())):
        np.testing.assert_allclose(q, p, rtol=TOL, atol=TOL)
    assert ref.rng.bit_generator.state == fused.rng.bit_generator.state
