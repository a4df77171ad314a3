"""Every hand-derived backward pass in nndl against nndl.autograd.

Each layer, activation and cost is written a second time as a composition of autograd
operations, and the chain rule applied by autograd must give the gradients that the
layer's own backward (or the cost's delta) gives: an oracle independent of the finite
differences of tests/test_layers.py and tests/test_conv.py.
"""
import numpy as np
import pytest

from nndl import (Conv2D, ConvPoolLayer, CrossEntropyCost, Dense, Dropout, Flatten,
                  FullyConnectedLayer, Identity, L2Pool2D, LogLikelihoodCost, MaxPool2D, Network,
                  QuadraticCost, ReLU, Sigmoid, Softmax, SoftmaxLayer, Tanh)
from nndl.autograd import Tensor, conv2d, max_pool2d, softmax_cross_entropy


def assert_same(ours, reference, what):
    np.testing.assert_allclose(ours, reference, rtol=1e-9, atol=1e-12, err_msg=what)


# -- activations, each from the most elementary operations ------------------------------------
def softmax(z):
    """e^z / Σ e^z row by row; the shift by each row's maximum is a constant (softmax
    ignores it), so it carries no gradient."""
    e = (z - z.data.max(axis=-1, keepdims=True)).exp()
    return e / e.sum(axis=-1, keepdims=True)


ELEMENTARY = {                      # built from exp, +, -, /, *
    Sigmoid: lambda z: 1 / (1 + (-z).exp()),
    Tanh: lambda z: ((z).exp() - (-z).exp()) / ((z).exp() + (-z).exp()),
    ReLU: lambda z: z.relu(),
    Identity: lambda z: z,
    Softmax: softmax,
}
METHODS = {Sigmoid: Tensor.sigmoid, Tanh: Tensor.tanh, ReLU: Tensor.relu, Identity: lambda z: z,
           Softmax: softmax}


@pytest.mark.parametrize("act", [Sigmoid, Tanh, ReLU, Identity, Softmax], ids=lambda a: a.__name__)
@pytest.mark.parametrize("form", ["elementary", "method"])
def test_every_activations_grad_equals_autograd(act, form, rng):
    z_values = 2 * rng.standard_normal((5, 4))
    g = rng.standard_normal((5, 4))                                  # ∂C/∂a
    a = act.fn(z_values)
    z = Tensor(z_values, requires_grad=True)
    out = (ELEMENTARY if form == "elementary" else METHODS)[act](z)
    (out * g).sum().backward()
    assert_same(out.data, a, "fn")
    assert_same(act.grad(z_values, a, g), z.grad, "grad")
    if hasattr(act, "prime"):
        assert_same(act.prime(z_values) * g, z.grad, "prime")


# -- costs: δ^L = ∂C/∂z for every cost and output activation -----------------------------------
COST_FNS = {
    QuadraticCost: lambda a, y: 0.5 * ((a - y) ** 2).sum(),
    CrossEntropyCost: lambda a, y: -(y * a.log() + (1 - y) * (1 - a).log()).sum(),
    LogLikelihoodCost: lambda a, y: -(y * a.log()).sum(),
}
COST_CASES = [(QuadraticCost, act) for act in (Sigmoid, Tanh, ReLU, Identity, Softmax)] + \
             [(CrossEntropyCost, act) for act in (Sigmoid, Softmax, Tanh)] + \
             [(LogLikelihoodCost, act) for act in (Softmax, Sigmoid)]


def _targets(cost, act, rng, shape):
    """One-hot rows for the log-likelihood, soft targets in (0, 1) for the others (and
    in (-1, 1) beside tanh, whose cross-entropy needs a in (0, 1): see below)."""
    if cost is LogLikelihoodCost:
        return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    return rng.uniform(0.05, 0.95, shape)


@pytest.mark.parametrize("cost, act", COST_CASES, ids=lambda c: c.__name__)
def test_every_costs_delta_equals_autograd_for_every_output_activation(cost, act, rng):
    shape = (6, 4)
    z_values = rng.standard_normal(shape)
    if cost is CrossEntropyCost and act is Tanh:
        z_values = np.abs(z_values) + 0.1                            # tanh in (0, 1) for the logs
    y = _targets(cost, act, rng, shape)
    a = act.fn(z_values)
    z = Tensor(z_values, requires_grad=True)
    C = COST_FNS[cost](ELEMENTARY[act](z), y)
    C.backward()
    assert C.item() == pytest.approx(cost.fn(a, y), rel=1e-10)
    assert_same(cost.delta(z_values, a, y, act), z.grad, f"{cost.__name__} δ^L")


def test_softmax_cross_entropy_is_the_log_likelihood_cost_averaged(rng):
    z_values = rng.standard_normal((7, 5))
    labels = rng.integers(0, 5, 7)
    y = np.eye(5)[labels]
    z = Tensor(z_values, requires_grad=True)
    C = softmax_cross_entropy(z, labels)
    C.backward()
    a = Softmax.fn(z_values)
    assert C.item() * 7 == pytest.approx(LogLikelihoodCost.fn(a, y), rel=1e-12)
    assert_same(7 * z.grad, LogLikelihoodCost.delta(z_values, a, y, Softmax), "δ^L")


# -- layers: forward, ∂C/∂a_in and every parameter's gradient ------------------------------------
def frozen(p, seed=3):
    """A mask_fn keeping the same units every time."""
    return lambda shape, rng: np.random.default_rng(seed).random(shape) >= p


def dense(act):
    return lambda x, w, b: METHODS[act](x.reshape(len(x), -1) @ w.T + b)


def conv_pool(act, pool):
    K = lambda w: w.shape[0]                                          # noqa: E731
    return lambda x, w, b: METHODS[act](max_pool2d(conv2d(x, w), pool) + b.reshape(1, K(w), 1, 1))


def l2_pool(p):
    def f(x):
        N, C, H, W = x.shape
        windows = (x * x).reshape(N, C, H // p, p, W // p, p)        # (N, C, PH, p, PW, p)
        return windows.sum(axis=(3, 5)) ** 0.5
    return f


def dropped(layer, f):
    """f applied to the input times the layer's frozen mask (its last forward pass's)."""
    return lambda x, *params: f(x.reshape(len(x), -1) * layer.mask, *params)


ACTS = [Sigmoid, Tanh, ReLU, Identity, Softmax]
# name: (layer, input shape (N, ...), train, autograd function of (x, *parameters))
LAYERS = {f"Dense {a.__name__}": (lambda a=a: Dense(4, 3, a), (5, 4), False, lambda layer, a=a: dense(a))
          for a in ACTS}
LAYERS.update({
    "Dense without bias": (lambda: Dense(4, 3, "tanh", bias=False), (5, 4), False,
                           lambda layer: lambda x, w: (x @ w.T).tanh()),
    "Dense on images": (lambda: Dense(12, 3, "sigmoid"), (2, 3, 2, 2), False, lambda layer: dense(Sigmoid)),
    **{f"Conv2D {a.__name__}": (lambda a=a: Conv2D(2, 3, (3, 2), activation=a), (2, 2, 6, 5), False,
                                lambda layer, a=a: lambda x, w, b: METHODS[a](conv2d(x, w, b)))
       for a in (Sigmoid, Tanh, ReLU, Identity)},
    "MaxPool2D 2": (lambda: MaxPool2D(2), (2, 3, 4, 6), False, lambda layer: lambda x: max_pool2d(x, 2)),
    "MaxPool2D 3x2": (lambda: MaxPool2D((3, 2)), (2, 2, 6, 4), False,
                      lambda layer: lambda x: max_pool2d(x, (3, 2))),
    "L2Pool2D 2": (lambda: L2Pool2D(2), (2, 3, 4, 6), False, lambda layer: l2_pool(2)),
    "Dropout frozen mask": (lambda: Dropout(0.4, mask_fn=frozen(0.4)), (3, 8), True,
                            lambda layer: lambda x: x * layer.mask),
    "Dropout in evaluation": (lambda: Dropout(0.4), (3, 8), False, lambda layer: lambda x: x),
    "Flatten": (lambda: Flatten(), (2, 3, 2, 2), False, lambda layer: lambda x: x.reshape(2, -1)),
    **{f"ConvPoolLayer {a.__name__}": (lambda a=a: ConvPoolLayer((3, 2, 3, 3), (None, 2, 8, 6), (2, 2), a),
                                       (2, 2, 8, 6), False, lambda layer, a=a: conv_pool(a, 2))
       for a in (Sigmoid, Tanh, ReLU, Identity)},
    "ConvPoolLayer pool 3": (lambda: ConvPoolLayer((2, 1, 2, 2), (None, 1, 7, 7), (3, 3), "tanh"),
                             (2, 1, 7, 7), False, lambda layer: conv_pool(Tanh, 3)),
    "FullyConnectedLayer": (lambda: FullyConnectedLayer(12, 5, "sigmoid"), (3, 12), False,
                            lambda layer: dense(Sigmoid)),
    "FullyConnectedLayer frozen dropout": (
        lambda: FullyConnectedLayer(8, 5, "relu", p_dropout=0.4, mask_fn=frozen(0.4)), (3, 8), True,
        lambda layer: dropped(layer, dense(ReLU))),
    "SoftmaxLayer": (lambda: SoftmaxLayer(6, 4), (3, 6), False, lambda layer: dense(Softmax)),
    "SoftmaxLayer frozen dropout": (lambda: SoftmaxLayer(6, 4, p_dropout=0.3, mask_fn=frozen(0.3)),
                                    (3, 2, 3), True, lambda layer: dropped(layer, dense(Softmax))),
})


def _layer(name, rng):
    make, shape, train, f = LAYERS[name]
    layer = make()
    layer.build(shape[1:], rng, np.float64)
    for _, p, _ in layer.parameters():       # SoftmaxLayer starts at zero: move off it
        p += 0.3 * rng.standard_normal(p.shape)
    return layer, shape, train, f


@pytest.mark.parametrize("name", LAYERS)
def test_every_layers_backward_equals_autograd(name, rng):
    layer, shape, train, f = _layer(name, rng)
    x_values = rng.standard_normal(shape)
    a = layer.forward(x_values, train)
    r = rng.standard_normal(a.shape)                                 # ∂C/∂a from upstream
    grad_in = layer.backward(r)
    if train:
        assert getattr(layer, "mask", None) is not None and (layer.mask == 0).any()

    x = Tensor(x_values, requires_grad=True)
    params = [Tensor(p.copy(), requires_grad=True) for _, p, _ in layer.parameters()]
    out = f(layer)(x, *params)
    (out * r).sum().backward()
    assert_same(out.data, a, f"{name}: forward")
    assert_same(grad_in, x.grad, f"{name}: ∂C/∂a_in")
    for (pname, _, nabla), t in zip(layer.parameters(), params):
        assert_same(nabla, t.grad, f"{name}: nabla_{pname}")


# δ = ∂C/∂z, the entry the cost uses for the output layer (BP1), for the layers that have it
BEFORE_ACTIVATION = {
    "Dense Softmax": lambda layer: lambda x, w, b: x @ w.T + b,
    "Conv2D Tanh": lambda layer: lambda x, w, b: conv2d(x, w, b),
    "ConvPoolLayer Sigmoid": lambda layer: lambda x, w, b: max_pool2d(conv2d(x, w), 2) + b.reshape(1, 3, 1, 1),
    "SoftmaxLayer frozen dropout": lambda layer: dropped(layer, lambda x, w, b: x @ w.T + b),
}


@pytest.mark.parametrize("name", BEFORE_ACTIVATION)
def test_backward_from_delta_equals_autograd_of_z(name, rng):
    layer, shape, train, _ = _layer(name, rng)
    x_values = rng.standard_normal(shape)
    layer.forward(x_values, train)
    delta = rng.standard_normal(layer.z.shape)
    grad_in = layer.backward_from_delta(delta)

    x = Tensor(x_values, requires_grad=True)
    params = [Tensor(p.copy(), requires_grad=True) for _, p, _ in layer.parameters()]
    z = BEFORE_ACTIVATION[name](layer)(x, *params)
    (z * delta).sum().backward()
    assert_same(z.data, layer.z, f"{name}: z")
    assert_same(grad_in, x.grad, f"{name}: ∂C/∂a_in")
    for (pname, _, nabla), t in zip(layer.parameters(), params):
        assert_same(nabla, t.grad, f"{name}: nabla_{pname}")


# -- whole networks: Network.backprop against one autograd expression -------------------------
def test_a_conv_nets_backprop_equals_autograd(rng):
    net = Network([Conv2D(1, 3, 3, activation="relu"), MaxPool2D(2), Flatten(),
                   Dense(3 * 3 * 3, 8, "tanh"), Dense(8, 4, "softmax")],
                  cost=LogLikelihoodCost, input_shape=(1, 8, 8), seed=5)
    x = rng.standard_normal((6, 1, 8, 8))
    labels = rng.integers(0, 4, 6)
    net.backprop(x, np.eye(4)[labels])

    params = [Tensor(p.copy(), requires_grad=True) for layer in net.layers for _, p, _ in layer.parameters()]
    w1, b1, w2, b2, w3, b3 = params
    h = max_pool2d(conv2d(x, w1, b1).relu(), 2).reshape(6, -1)
    z = (h @ w2.T + b2).tanh() @ w3.T + b3
    C = softmax_cross_entropy(z, labels) * 6                         # the cost summed over the batch
    C.backward()
    nablas = [g for layer in net.layers for _, _, g in layer.parameters()]
    for i, (nabla, t) in enumerate(zip(nablas, params)):
        assert_same(nabla, t.grad, f"parameter {i}")
    assert C.item() == pytest.approx(net.total_cost((x, labels)) * 6, rel=1e-10)


def test_the_books_sigmoid_network_with_cross_entropy_backprop_equals_autograd(rng):
    net = Network([5, 4, 3], cost=CrossEntropyCost, seed=2)
    x, y = rng.standard_normal((7, 5)), rng.uniform(0, 1, (7, 3))
    net.backprop(x, y)
    (w1, b1), (w2, b2) = [[Tensor(p.copy(), requires_grad=True) for _, p, _ in layer.parameters()]
                          for layer in net.layers]
    a = ((x @ w1.T + b1).sigmoid() @ w2.T + b2).sigmoid()
    COST_FNS[CrossEntropyCost](a, y).backward()
    for layer, (tw, tb) in zip(net.layers, [(w1, b1), (w2, b2)]):
        assert_same(layer.nabla_w, tw.grad, "nabla_w")
        assert_same(layer.nabla_b, tb.grad, "nabla_b")


def test_a_wrong_backward_is_caught(rng):
    """The oracle can fail: a layer whose backward forgets σ'(z) disagrees with autograd."""
    layer = Dense(4, 3, "sigmoid")
    layer.build((4,), rng, np.float64)
    x_values = rng.standard_normal((5, 4))
    r = rng.standard_normal((5, 3))
    layer.forward(x_values)
    wrong = layer.backward_from_delta(r)                             # skips BP2's ⊙ σ'(z)
    x = Tensor(x_values, requires_grad=True)
    out = dense(Sigmoid)(x, Tensor(layer.w), Tensor(layer.b))
    (out * r).sum().backward()
    with pytest.raises(AssertionError):
        assert_same(wrong, x.grad, "input")


# -- PyTorch, where installed ------------------------------------------------------------------
def test_a_lenet_layers_gradients_equal_pytorchs(rng):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    layers = [Conv2D(3, 6, 5, activation="relu"), MaxPool2D(2), Conv2D(6, 16, 5, activation="relu"),
              MaxPool2D(2), Dense(16 * 5 * 5, 120, "relu"), Dense(120, 84, "relu"), Dense(84, 10, "softmax")]
    net = Network(layers, cost=LogLikelihoodCost, input_shape=(3, 32, 32), seed=1)
    x = rng.random((4, 3, 32, 32))
    labels = np.array([3, 1, 4, 1])
    net.backprop(x, np.eye(10)[labels])
    params = [torch.tensor(p.copy(), requires_grad=True)
              for layer in net.layers for _, p, _ in layer.parameters()]
    w1, b1, w2, b2, w3, b3, w4, b4, w5, b5 = params
    h = F.max_pool2d(F.relu(F.conv2d(torch.tensor(x), w1, b1)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, w2, b2)), 2).reshape(4, -1)
    z = F.relu(F.relu(h @ w3.T + b3) @ w4.T + b4) @ w5.T + b5
    F.cross_entropy(z, torch.tensor(labels), reduction="sum").backward()
    nablas = [g for layer in net.layers for _, _, g in layer.parameters()]
    for i, (nabla, t) in enumerate(zip(nablas, params)):
        np.testing.assert_allclose(nabla, t.grad.numpy(), rtol=1e-8, atol=1e-12, err_msg=f"parameter {i}")
