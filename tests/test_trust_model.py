"""Trust in the model and its training loop, as a hostile user tries it: nothing
unchecked reaches compiled code, resume is exact in every stopping mode, divergence is
caught, wrong types name the argument, and the same seed gives the same bits."""
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from nndl import (ConfigError, Conv2D, DataError, Dense, DivergenceError, MaxPool2D,
                  Momentum, Network, NNDLError, ShapeError, network2)
from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def rng():
    return np.random.default_rng(16)


def _data(rng, n=60, d=12, k=3):
    return rng.random((n, d)), rng.integers(0, k, n)


# -- memory safety: shapes, dtypes, NaN -------------------------------------------------
@pytest.mark.parametrize("rows", [1, 63, 64, 500])
def test_feedforward_and_predict_refuse_the_wrong_width_at_any_batch_size(rows, rng):
    net = Network([784, 30, 10], seed=1)
    for call in (net.feedforward, net.predict):
        with pytest.raises(ShapeError, match="784"):
            call(rng.random((rows, 783)))
        with pytest.raises(ShapeError, match="784"):
            call(rng.random((rows, 5000)))


def test_network2_feedforward_takes_the_books_column_vector():
    net = network2.Network([784, 30, 10], seed=1)
    a = net.feedforward(np.full((784, 1), 0.5))
    assert a.shape == (10, 1)
    np.testing.assert_allclose(a[:, 0], net.feedforward(np.full((1, 784), 0.5))[0])


def test_predict_and_accuracy_refuse_nan_and_infinite_inputs(rng):
    net = Network([12, 5, 3], seed=1)
    x, y = _data(rng)
    for bad in (np.nan, np.inf):
        x2 = x.copy()
        x2[7, 3] = bad
        with pytest.raises(DataError, match="NaN or infinity"):
            net.predict(x2)
        with pytest.raises(DataError, match="NaN or infinity"):
            net.accuracy((x2, y))


FUZZ = r"""
import signal, sys
import numpy as np
from nndl import Network, Dense, Conv2D, MaxPool2D, NNDLError
from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
rng = np.random.default_rng(int(sys.argv[1]))
dense = Network([20, 48, 3], seed=0)
conv = Network([ConvPoolLayer((3, 1, 3, 3), (None, 1, 8, 8)), FullyConnectedLayer(27, 5),
                SoftmaxLayer(5, 3)], cost="log-likelihood", seed=0)
blocks = Network([Conv2D(1, 2, 3), MaxPool2D(2), Dense(18, 3)], input_shape=(1, 8, 8), seed=0)
dtypes = [np.float64, np.float32, np.int64, np.uint8, np.bool_, np.complex128, object, "U3"]
shapes = [(0,), (64,), (64, 20), (64, 21), (70, 64), (65, 1, 8, 8), (65, 8, 8), (3, 2, 8, 8),
          (64, 19), (1,), (), (200, 100), (64, 1, 9, 9)]
ok = bad = 0
for trial in range(int(sys.argv[2])):
    net = [dense, conv, blocks][trial % 3]
    shape = shapes[rng.integers(len(shapes))]
    dt = dtypes[rng.integers(len(dtypes))]
    try:
        x = (rng.random(shape) * 3).astype(dt)
    except (TypeError, ValueError):
        continue
    y = rng.integers(0, 3, shape[0] if shape else 1)
    what = trial % 5
    try:
        if what == 0:
            net.feedforward(x)
        elif what == 1:
            net.predict(x)
        elif what == 2:
            net.accuracy((x, y))
        elif what == 3:
            net.SGD((x, y), 1, 16, 0.1, verbose=False)
        else:
            net.layers[0].forward(x)
        ok += 1
    except NNDLError:
        bad += 1
print("fuzz", ok, bad)
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_shapes_and_dtypes_give_only_nndl_errors_and_never_crash(seed):
    r = subprocess.run([sys.executable, "-c", FUZZ, str(seed), "150"], cwd=ROOT,
                       capture_output=True, text=True, timeout=600,
                       env={**os.environ, "PYTHONPATH": ROOT})
    assert r.returncode == 0, (r.returncode, r.stderr[-3000:])  # < 0: killed by a signal
    ok, bad = map(int, r.stdout.split()[1:])
    assert bad > 20  # the fuzzing did reach the checks


# -- resume: exact in every stopping mode, other settings refused -------------------------
def _run(tmp_path, rng_seed=0, resume=False, epochs=30, ckpt="run.npz", **kw):
    rng = np.random.default_rng(rng_seed)
    x, y = rng.random((80, 12)), rng.integers(0, 3, 80)
    xe, ye = rng.random((40, 12)), rng.integers(0, 3, 40)
    net = Network([12, 6, 3], seed=3)
    args = dict(lmbda=0.1, evaluation_data=(xe, ye), monitor_evaluation_accuracy=True,
                verbose=False, checkpoint=str(tmp_path / ckpt), resume=resume)
    args.update(kw)
    h = net.SGD((x, y), epochs, 10, args.pop("eta", 2.0), **args)
    return net, h


@pytest.mark.parametrize("stopping", [dict(early_stopping_n=2), dict(schedule_n=1)])
def test_resuming_a_run_that_stopped_by_itself_changes_nothing(stopping, tmp_path):
    net, h = _run(tmp_path, **stopping)
    assert h.stopped_early and h.stopped and len(h.evaluation_accuracy) < 30
    again, h2 = _run(tmp_path, resume=True, **stopping)
    assert h2.evaluation_accuracy == h.evaluation_accuracy and h2.stopped == h.stopped
    for (_, p, _), (_, q, _) in zip((t for l in net.layers for t in l.parameters()),
                                    (t for l in again.layers for t in l.parameters())):
        np.testing.assert_array_equal(p, q)


def test_resuming_a_finished_run_changes_nothing(tmp_path):
    net, h = _run(tmp_path, epochs=3)
    again, h2 = _run(tmp_path, epochs=3, resume=True)
    assert len(h2.evaluation_accuracy) == 3
    np.testing.assert_array_equal(net.layers[0].w, again.layers[0].w)


@pytest.mark.parametrize("change, setting", [
    (dict(eta=1.0), "eta"),
    (dict(lmbda=0.2), "lmbda"),
    (dict(regularization="L1"), "regularization"),
    (dict(optimizer=Momentum(0.5)), "optimizer"),
    (dict(rng_seed=1), "data"),
    (dict(mini_batch_size=8), "mini_batch_size"),
    (dict(early_stopping_n=4), "early_stopping_n"),
])
def test_resuming_with_another_setting_names_it(change, setting, tmp_path):
    _run(tmp_path, epochs=2)
    change = dict(change)
    if "mini_batch_size" in change:
        rng = np.random.default_rng(0)
        x, y = rng.random((80, 12)), rng.integers(0, 3, 80)
        with pytest.raises(ConfigError, match=setting):
            Network([12, 6, 3], seed=3).SGD((x, y), 4, change["mini_batch_size"], 2.0, lmbda=0.1,
                                            checkpoint=str(tmp_path / "run.npz"), resume=True,
                                            verbose=False)
        return
    with pytest.raises(ConfigError, match=setting):
        _run(tmp_path, epochs=4, resume=True, **change)


def test_resuming_with_another_cost_names_it(tmp_path):
    _run(tmp_path, epochs=2)
    rng = np.random.default_rng(0)
    x, y = rng.random((80, 12)), rng.integers(0, 3, 80)
    net = Network([12, 6, 3], seed=3, cost="quadratic")
    with pytest.raises(ConfigError, match="cost"):
        net.SGD((x, y), 4, 10, 2.0, lmbda=0.1, checkpoint=str(tmp_path / "run.npz"),
                resume=True, verbose=False)


# -- divergence ----------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False])
def test_a_relu_net_with_an_identity_output_diverging_is_a_divergence_error(fast, rng):
    x, y = rng.random((200, 12)) * 10, rng.random((200, 3)) * 10
    net = Network([12, 30, 3], activation="relu", output_activation="identity",
                  cost="quadratic", seed=1)
    with pytest.raises(DivergenceError, match=r"epoch \d+, mini-batch \d+"):
        net.SGD((x, y), 20, 10, 5.0, verbose=False, fast=fast, monitor_training_cost=True)


@pytest.mark.parametrize("fast", [True, False])
def test_a_sigmoid_net_at_an_absurd_eta_is_stopped_by_the_weight_bound(fast, rng):
    x, y = _data(rng, n=200)
    net = Network([12, 30, 3], seed=1)
    with pytest.raises(DivergenceError, match="reached"):
        net.SGD((x, y), 5, 10, 1e12, verbose=False, fast=fast)


def test_restore_mode_recovers_from_an_overflowing_cost(rng):
    x, y = rng.random((200, 12)), rng.random((200, 3))
    net = Network([12, 30, 3], activation="relu", output_activation="identity",
                  cost="quadratic", seed=1)
    h = net.SGD((x, y), 3, 10, 3.0, verbose=False, on_divergence="restore",
                monitor_training_cost=True)
    assert all(np.isfinite(h.training_cost)) and h.eta[-1] < 3.0


# -- types -----------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, name", [
    (dict(eta="0.5"), "eta"), (dict(eta=None), "eta"), (dict(epochs=float("nan")), "epochs"),
    (dict(epochs=1.7), "epochs"), (dict(epochs=True), "epochs"),
    (dict(mini_batch_size=2.5), "mini_batch_size"), (dict(lmbda="1"), "lmbda"),
    (dict(early_stopping_n=1.5), "early_stopping_n"), (dict(optimizer="adam"), "optimizer"),
])
def test_wrong_types_for_sgd_name_the_argument(kwargs, name, rng):
    x, y = _data(rng)
    args = dict(epochs=1, mini_batch_size=10, eta=0.5)
    args.update(kwargs)
    net = Network([12, 5, 3], seed=1)
    with pytest.raises(ConfigError, match=f"^{name}"):
        net.SGD((x, y), args.pop("epochs"), args.pop("mini_batch_size"), args.pop("eta"),
                verbose=False, **args)


@pytest.mark.parametrize("sizes", [[12, True, 3], [12, 30.0, 3], [12, "5", 3], [12, None, 3]])
def test_sizes_must_be_integers_not_bools_or_floats(sizes):
    with pytest.raises(ConfigError, match=r"sizes\[1\]"):
        Network(sizes)


def test_string_labels_are_a_data_error(rng):
    x, _ = _data(rng)
    with pytest.raises(DataError, match="labels"):
        Network([12, 5, 3]).SGD((x, np.array(["1"] * len(x))), 1, 10, 0.5, verbose=False)


# -- determinism: a cold and a warm numba cache train to the same bits ------------------------
TRAIN = r"""
import hashlib, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from nndl import Network
rng = np.random.default_rng(0)
x, y = rng.random((600, 784)), rng.integers(0, 10, 600)
for dt in ("float64", "float32"):
    net = Network([784, 30, 10], seed=1, dtype=dt)
    net.SGD((x.astype(dt), y), 2, 10, 0.5, lmbda=1.0, verbose=False)
    print(dt, hashlib.sha1(b"".join(np.ascontiguousarray(p).tobytes()
          for l in net.layers for _, p, _ in l.parameters())).hexdigest())
"""


@pytest.mark.slow
def test_the_same_seed_gives_the_same_bits_with_a_cold_and_a_warm_numba_cache(tmp_path):
    shutil.copytree(os.path.join(ROOT, "nndl"), tmp_path / "nndl",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    runs = [subprocess.run([sys.executable, "-c", TRAIN, str(tmp_path)], capture_output=True,
                           text=True, timeout=900, env=env) for _ in range(2)]
    for r in runs:
        assert r.returncode == 0, r.stderr[-2000:]
    assert "compiling" in runs[0].stderr and "compiling" not in runs[1].stderr  # cold, then warm
    assert runs[0].stdout == runs[1].stdout
