"""The backend seam: every layer, cost, optimizer and Network behaviour on each backend.

Backends come from the `xp` / `device_xp` fixtures (tests/conftest.py): numpy, the
strict CuPy stand-in of tests/strict_xp.py, which runs on any CPU and refuses, as CuPy
does, to turn a device array into a numpy array behind the code's back, and CuPy
itself (marked `gpu`: skipped without CuPy and a CUDA GPU).  On a device backend each
result must equal the numpy reference (whose derivatives the finite-difference tests
check) and must stay on the device until nndl hands it back as a host array or a
Python number.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

import strict_xp
from nndl import (ConfigError, ConvPoolLayer, Dense, Dropout, Flatten, FullyConnectedLayer,
                  L2Pool2D, MaxPool2D, Network, SoftmaxLayer, backend)
from nndl.fast import dense as fastpath
from nndl import optimizers
from nndl.activations import ACTIVATIONS
from nndl.conv import Conv2D
from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost

host = backend.to_numpy
ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
NO_GPU = backend.cupy_problem() is not None


def assert_same(device_value, reference, rtol=1e-10, what=""):
    """``device_value`` equals the numpy ``reference`` (to rounding), read back explicitly."""
    np.testing.assert_allclose(host(device_value), reference, rtol=rtol, atol=1e-12, err_msg=what)


# -- the strict stand-in keeps CuPy's rules ------------------------------------------------
def test_strict_arrays_never_become_numpy_arrays_implicitly():
    a = strict_xp.asarray(np.arange(6.0).reshape(2, 3))
    assert backend.xp(a) is strict_xp
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        np.asarray(a)
    for misuse in (lambda: np.exp(a), lambda: np.concatenate([a, a]), lambda: np.ndim(a),
                   lambda: a * np.ones(3), lambda: np.ones(3) + a, lambda: a[np.array([0])]):
        with pytest.raises(TypeError):
            misuse()
    assert float(a.sum()) == 15.0 and int(a.argmax()) == 5 and bool(a[1, 2] > 4)
    assert isinstance(a.sum(), strict_xp.StrictArray)            # a 0-d device array, as CuPy
    np.testing.assert_array_equal(host(a), np.arange(6.0).reshape(2, 3))   # via .get()


# -- choosing a backend ----------------------------------------------------------------------
def test_numpy_is_the_default_backend_and_keeps_float64(monkeypatch):
    monkeypatch.delenv("NNDL_BACKEND", raising=False)
    net = Network([3, 2])
    assert net.xp is np and net.dtype == np.float64 and type(net.layers[0].w) is np.ndarray
    monkeypatch.setenv("NNDL_BACKEND", "numpy")
    assert Network([3, 2]).xp is np


def test_an_unknown_backend_is_a_config_error(monkeypatch):
    with pytest.raises(ConfigError, match="backend: expected 'numpy' or 'cupy', got 'torch'"):
        Network([3, 2], backend="torch")
    monkeypatch.setenv("NNDL_BACKEND", "jax")
    with pytest.raises(ConfigError, match="NNDL_BACKEND: expected 'numpy' or 'cupy', got 'jax'"):
        Network([3, 2])


def test_a_device_backend_defaults_to_float32(device_xp):
    net = Network([3, 2], backend=device_xp)
    assert net.dtype == np.float32 and backend.xp(net.layers[0].w) is device_xp
    assert Network([3, 2], backend=device_xp, dtype="float64").dtype == np.float64


@pytest.mark.gpu
def test_nndl_backend_cupy_is_the_default_where_a_gpu_exists(monkeypatch):
    monkeypatch.setenv("NNDL_BACKEND", "cupy")
    net = Network([3, 2])
    assert backend.name(net.xp) == "cupy" and net.dtype == np.float32


CUPY_MESSAGE = "backend 'cupy' needs CuPy and a CUDA GPU: pip install 'nndl[gpu]' ("


@pytest.mark.skipif(not NO_GPU, reason="CuPy and a GPU are here: nothing to refuse")
def test_asking_for_cupy_without_it_is_one_clear_config_error(monkeypatch, tmp_path):
    net = Network([3, 2], seed=0)
    net.save(tmp_path / "net.npz")
    monkeypatch.setenv("NNDL_BACKEND", "cupy")
    attempts = [lambda: Network([3, 2], backend="cupy"), lambda: Network([3, 2]), net.to_gpu,
                lambda: Network.load(tmp_path / "net.npz", backend="cupy")]
    for attempt in attempts:
        with pytest.raises(ConfigError) as e:
            attempt()
        assert str(e.value).startswith(CUPY_MESSAGE) and "\n" not in str(e.value)
    monkeypatch.delenv("NNDL_BACKEND")
    assert Network([3, 2]).xp is np and Network.load(tmp_path / "net.npz").xp is np  # the rest works


@pytest.mark.skipif(not NO_GPU, reason="CuPy and a GPU are here: nothing to refuse")
@pytest.mark.parametrize("script, args", [("mnist_mlp.py", []), ("mnist_conv.py", ["--preset", "conv1"]),
                                          ("benchmark.py", [])])
def test_scripts_refuse_backend_cupy_in_one_line(script, args):
    r = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args,
                        "--backend", "cupy"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "NNDL_DATA": os.devnull})
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and CUPY_MESSAGE in r.stderr and "Traceback" not in r.stderr


# -- layers: written once, equal on every backend ----------------------------------------------
LAYER_CASES = [(f"dense-{name}", lambda name=name: Dense(6, 4, name), (5, 6))
               for name in ("sigmoid", "tanh", "relu", "identity", "softmax")] + [
    ("dense-no-bias", lambda: Dense(6, 4, "tanh", bias=False), (5, 6)),
    ("dense-flattens", lambda: Dense(12, 3, "sigmoid"), (4, 3, 2, 2)),
    ("dropout", lambda: Dropout(0.4), (5, 6)),
    ("flatten", Flatten, (2, 3, 4, 4)),
    ("conv2d", lambda: Conv2D(3, 4, 3, activation="relu"), (2, 3, 7, 7)),
    ("conv2d-stride", lambda: Conv2D(2, 3, (3, 2), stride=2, activation="tanh"), (2, 2, 7, 8)),
    ("maxpool", lambda: MaxPool2D(2), (2, 3, 6, 6)),
    ("maxpool-3x2", lambda: MaxPool2D((3, 2)), (2, 2, 6, 4)),
    ("l2pool", lambda: L2Pool2D(2), (2, 3, 6, 6)),
    ("convpool", lambda: ConvPoolLayer((4, 3, 3, 3), (None, 3, 8, 8), activation_fn="relu"), (2, 3, 8, 8)),
    ("fully-connected-dropout", lambda: FullyConnectedLayer(6, 4, "relu", p_dropout=0.3), (5, 6)),
    ("softmax-layer-dropout", lambda: SoftmaxLayer(6, 4, p_dropout=0.2), (5, 6)),
]


@pytest.mark.parametrize("make, shape", [c[1:] for c in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_layer_forward_and_backward_equal_numpy(make, shape, device_xp, rng):
    ref, dev = make(), make()
    for layer in (ref, dev):  # identical parameters and dropout masks: same seeds
        layer.build(shape[1:], np.random.default_rng(1), np.float64)
    dev.to(device_xp)
    if isinstance(ref, SoftmaxLayer):  # its zero weights would hide the backward pass
        w = rng.standard_normal(ref.w.shape)
        ref.w[...], dev.w[...] = w, device_xp.asarray(w)
    x = rng.standard_normal(shape)
    out = ref.forward(x, train=True)
    r = rng.standard_normal(out.shape)
    out_d = dev.forward(device_xp.asarray(x), train=True)
    assert backend.xp(out_d) is device_xp
    assert_same(out_d, out, what="forward")
    g, g_d = ref.backward(r), dev.backward(device_xp.asarray(r))
    assert backend.xp(g_d) is device_xp
    assert_same(g_d, g, what="backward")
    for (name, _, grad), (_, p_d, grad_d) in zip(ref.parameters(), dev.parameters()):
        assert backend.xp(p_d) is device_xp and backend.xp(grad_d) is device_xp
        assert_same(grad_d, grad, what=f"nabla_{name}")
    evaluated = dev.forward(device_xp.asarray(x), train=False)   # evaluation: no mask
    assert_same(evaluated, ref.forward(x, train=False), what="evaluation")


COST_CASES = [(QuadraticCost, name) for name in ("sigmoid", "tanh", "identity", "softmax")] + \
    [(CrossEntropyCost, "sigmoid"), (CrossEntropyCost, "softmax"),
     (LogLikelihoodCost, "softmax"), (LogLikelihoodCost, "sigmoid")]


@pytest.mark.parametrize("cost, act", COST_CASES, ids=[f"{c.__name__}-{a}" for c, a in COST_CASES])
def test_costs_equal_numpy_and_return_python_floats(cost, act, device_xp, rng):
    activation = ACTIVATIONS[act]
    z = rng.standard_normal((5, 4))
    y = np.eye(4)[rng.integers(0, 4, 5)]
    a = activation.fn(z)
    zd, yd = device_xp.asarray(z), device_xp.asarray(y)
    ad = activation.fn(zd)
    c = cost.fn(ad, yd)
    assert type(c) is float and c == pytest.approx(cost.fn(a, y), rel=1e-12)
    delta = cost.delta(zd, ad, yd, activation)
    assert backend.xp(delta) is device_xp
    assert_same(delta, cost.delta(z, a, y, activation))


# -- networks: training, monitoring and prediction ---------------------------------------------
def _data(rng, n, shape, classes=3):
    x = rng.standard_normal((n,) + shape)
    return x, rng.integers(0, classes, n)


def _dense(dropout=False):
    layers = [Dense(12, 8, "tanh")] + ([Dropout(0.3)] if dropout else []) + [Dense(8, 3, "sigmoid")]
    return layers


def _train(layers, backend_, data, evaluation, epochs=2, cost="cross-entropy", **kwargs):
    net = Network(layers, cost=cost, seed=7, dtype=np.float64, backend=backend_,
                  input_shape=data[0].shape[1:])
    history = net.SGD(data, epochs, 5, 0.3, evaluation_data=evaluation, monitor_evaluation_cost=True,
                      monitor_evaluation_accuracy=True, monitor_training_cost=True,
                      monitor_training_accuracy=True, verbose=False, fast=False, **kwargs)
    return net, history


def _assert_same_run(a, b, rtol=1e-9):
    (net_a, hist_a), (net_b, hist_b) = a, b
    assert hist_a.evaluation_accuracy == hist_b.evaluation_accuracy
    assert hist_a.training_accuracy == hist_b.training_accuracy
    for name in ("evaluation_cost", "training_cost"):
        np.testing.assert_allclose(getattr(hist_a, name), getattr(hist_b, name), rtol=rtol, err_msg=name)
    for la, lb in zip(net_a.layers, net_b.layers):
        for (name, p, _), (_, q, _) in zip(la.parameters(), lb.parameters()):
            np.testing.assert_allclose(host(p), host(q), rtol=rtol, atol=1e-12, err_msg=name)


NET_CASES = {
    "quadratic": dict(cost="quadratic"),
    "cross-entropy-L2": dict(lmbda=0.5),
    "cross-entropy-L1": dict(lmbda=0.5, regularization="L1"),
    "log-likelihood-softmax": dict(cost="log-likelihood", softmax=True),
    "dropout": dict(dropout=True),
}


@pytest.mark.parametrize("case", NET_CASES.values(), ids=list(NET_CASES))
def test_training_a_dense_net_equals_numpy(case, device_xp, rng):
    case = dict(case)
    dropout, softmax = case.pop("dropout", False), case.pop("softmax", False)

    def layers():
        ls = _dense(dropout)
        if softmax:
            ls[-1] = Dense(8, 3, "softmax")
        return ls
    data, evaluation = _data(rng, 30, (12,)), _data(rng, 10, (12,))
    reference = _train(layers(), "numpy", data, evaluation, **case)
    on_device = _train(layers(), device_xp, data, evaluation, **case)
    _assert_same_run(on_device, reference)
    for name in ("evaluation_cost", "training_cost", "evaluation_accuracy", "training_accuracy"):
        assert all(type(v) is (float if name.endswith("cost") else int)
                   for v in getattr(on_device[1], name))


OPTIMIZERS = [getattr(optimizers, name) for name in
              ("SGD", "Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam") if hasattr(optimizers, name)]


@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=[o.__name__ for o in OPTIMIZERS])
def test_every_optimizer_steps_on_the_device(optimizer, device_xp, rng):
    data = _data(rng, 20, (12,))
    runs = [_train(_dense(), b, data, data, optimizer=optimizer(), lmbda=0.1)
            for b in ("numpy", device_xp)]
    _assert_same_run(runs[1], runs[0])
    for key, v in runs[1][0].optimizer.state().items():
        assert key == "t" or backend.xp(v) is device_xp   # Adam's step count is a host int


CONV_CASES = {
    "network3": lambda: [ConvPoolLayer((3, 1, 3, 3), (None, 1, 8, 8), activation_fn="relu"),
                         FullyConnectedLayer(27, 10, "sigmoid", p_dropout=0.25),
                         SoftmaxLayer(10, 3, p_dropout=0.1)],
    "conv2d-pool": lambda: [Conv2D(1, 2, 3, activation="tanh"), MaxPool2D(2), Flatten(),
                            Dense(18, 3, "softmax")],
    "conv2d-l2pool": lambda: [Conv2D(1, 2, 3, stride=1, activation="relu"), L2Pool2D(3),
                              Dense(8, 3, "softmax")],
}


@pytest.mark.parametrize("make", CONV_CASES.values(), ids=list(CONV_CASES))
def test_training_a_conv_net_equals_numpy(make, device_xp, rng):
    data, evaluation = _data(rng, 20, (1, 8, 8)), _data(rng, 10, (1, 8, 8))
    runs = [_train(make(), b, data, evaluation, cost="log-likelihood", lmbda=0.1)
            for b in ("numpy", device_xp)]
    _assert_same_run(runs[1], runs[0])


def test_predict_accuracy_and_cost_come_back_to_the_host(xp, rng):
    x, y = _data(rng, 25, (12,))
    net = Network(_dense(), seed=1, backend=xp, dtype=np.float64)
    ref = Network(_dense(), seed=1, dtype=np.float64)
    p = net.predict(x)
    assert type(p) is np.ndarray and np.issubdtype(p.dtype, np.integer)
    np.testing.assert_array_equal(p, ref.predict(x))
    assert type(net.accuracy((x, y))) is int and net.accuracy((x, y)) == ref.accuracy((x, y))
    cost = net.total_cost((x, y), lmbda=1.0)
    assert type(cost) is float and cost == pytest.approx(ref.total_cost((x, y), lmbda=1.0), rel=1e-12)
    # Data already on the device, one-hot targets and the book's list of tuples work too.
    xd, yd = xp.asarray(x), xp.asarray(np.eye(3)[y])
    assert net.accuracy((xd, yd)) == ref.accuracy((x, y))
    assert net.accuracy((xd, xp.asarray(y))) == ref.accuracy((x, y))
    assert net.accuracy(list(zip(x, y))) == ref.accuracy((x, y))
    assert net.total_cost((x, np.eye(3)[y])) == pytest.approx(ref.total_cost((x, y)), rel=1e-12)
    np.testing.assert_array_equal(net.predict(xd), p)
    assert_same(net.feedforward(x), ref.feedforward(x))   # host inputs are moved to the device


def test_the_books_network_takes_host_columns_on_every_backend(xp, rng):
    from nndl import network

    net = network.Network([4, 3, 2], seed=0, backend=xp, dtype=np.float64)
    ref = network.Network([4, 3, 2], seed=0)
    x, y = rng.standard_normal((4, 1)), np.array([[0.0], [1.0]])
    out = net.feedforward(x)
    assert backend.xp(out) is xp and out.shape == (2, 1)
    assert_same(out, ref.feedforward(x))
    for got, want in zip(sum(net.backprop(x, y), []), sum(ref.backprop(x, y), [])):
        assert_same(got, want)


def test_data_moves_to_the_device_once_per_run(rng):
    x, y = _data(rng, 30, (12,))
    xe, ye = _data(rng, 10, (12,))
    strict_xp.transfers.reset()
    _train(_dense(), strict_xp, (x, y), (xe, ye), epochs=3)
    moved = strict_xp.transfers
    assert moved.to_device.count(x.shape) == 1 and moved.to_device.count(xe.shape) == 1
    assert moved.to_device.count((5, 12)) == 0          # never a mini-batch at a time
    assert all(len(s) <= 1 for s in moved.to_host)       # back: labels and predictions only


def test_the_fused_cpu_path_never_takes_device_arrays(device_xp):
    net = Network([12, 8, 3], backend=device_xp, dtype=np.float64)
    assert not fastpath.eligible(net, net.optimizer, None)
    if backend.HAS_NUMBA:
        assert fastpath.eligible(Network([12, 8, 3]), optimizers.SGD(), None)


def test_redrawn_weights_stay_on_the_device(device_xp):
    net = Network([12, 8, 3], backend=device_xp, seed=2)
    net.default_weight_initializer()
    net.large_weight_initializer()
    assert all(backend.xp(p) is device_xp for l in net.layers for _, p, g in l.parameters())
    ref = Network([12, 8, 3], seed=2, dtype=np.float32)
    ref.default_weight_initializer()
    ref.large_weight_initializer()
    for a, b in zip(net.weights, ref.weights):
        np.testing.assert_array_equal(host(a), b)


# -- moving networks between backends -------------------------------------------------------------
def test_to_backend_and_back_continues_training_exactly(device_xp, rng):
    data = _data(rng, 20, (12,))
    unbroken = _train(_dense(), "numpy", data, data, epochs=2, optimizer=optimizers.Momentum(0.5))
    net, _ = _train(_dense(), "numpy", data, data, epochs=1, optimizer=optimizers.Momentum(0.5))
    assert net.to_backend(device_xp) is net and backend.xp(net.layers[0].w) is device_xp
    net.SGD(data, 1, 5, 0.3, verbose=False, fast=False)   # the same optimizer, its state moved
    assert net.to_cpu().xp is np and type(net.layers[0].w) is np.ndarray
    for p, q in zip(net.weights, unbroken[0].weights):
        np.testing.assert_allclose(p, q, rtol=1e-10)


@pytest.mark.parametrize("fmt", ["npz", "json"])
def test_a_model_saved_on_one_backend_loads_and_predicts_the_same_on_every_backend(xp, fmt, rng, tmp_path):
    x, y = _data(rng, 25, (1, 8, 8))
    net = Network(CONV_CASES["network3"](), cost="log-likelihood", seed=3, backend=xp)
    net.SGD((x, y), 1, 5, 0.1, verbose=False)
    path = tmp_path / f"net.{fmt}"
    net.save(path)
    out = host(net.feedforward(net._inputs(x, "x")))
    for where in ("numpy", strict_xp, xp):
        back = Network.load(path, backend=where)
        assert back.xp is backend.array_module(where) and back.dtype == net.dtype
        np.testing.assert_array_equal(back.predict(x), net.predict(x))
        np.testing.assert_allclose(host(back.feedforward(back._inputs(x, "x"))), out, rtol=1e-6)


@pytest.mark.parametrize("first", ["device", "numpy"])
def test_a_checkpoint_resumes_on_the_other_backend(first, device_xp, rng, tmp_path):
    data, evaluation = _data(rng, 20, (12,)), _data(rng, 10, (12,))
    kinds = [device_xp, "numpy"] if first == "device" else ["numpy", device_xp]
    ckpt = str(tmp_path / "run.npz")
    _train(_dense(dropout=True), kinds[0], data, evaluation, epochs=1, checkpoint=ckpt,
           optimizer=optimizers.Momentum(0.5))
    resumed = _train(_dense(dropout=True), kinds[1], data, evaluation, epochs=2, checkpoint=ckpt,
                     resume=True, optimizer=optimizers.Momentum(0.5))
    unbroken = _train(_dense(dropout=True), "numpy", data, evaluation, epochs=2,
                      optimizer=optimizers.Momentum(0.5))
    _assert_same_run(resumed, unbroken)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", [0, 1234, -1])
def test_all_finite_finds_one_bad_value_anywhere(dtype, bad, where):
    x = np.random.default_rng(0).standard_normal((250, 7)).astype(dtype)
    x[0, 0] = np.finfo(dtype).max  # huge but finite values are fine
    assert backend.all_finite(x) and backend.all_finite(x[:, ::2]) and backend.all_finite(x[:0])
    x.reshape(-1)[where] = bad
    assert not backend.all_finite(x)
    assert not backend.all_finite(x.T)  # not contiguous: the numpy fallback
    np_says = bool(np.isfinite(x).all())
    assert backend.all_finite(x) == np_says
