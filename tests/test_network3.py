"""nndl.network3 (the chapter 6 listings) and nndl.expand (the expanded training set)."""
import os
import re

import numpy as np
import pytest

from nndl import activations, expand, network3
from nndl.costs import LogLikelihoodCost
from nndl.net import Network as CoreNetwork


def _fake_mnist(n, seed):
    """n random 'images' (N, 784) in [0, 1] whose class is which quarter is brightest."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    X = rng.random((n, 28, 28)) * 0.3
    for i, c in enumerate(y):
        r, k = divmod(int(c), 2)
        X[i, 14 * r:14 * r + 14, 14 * k:14 * k + 14] += 0.7
    return X.reshape(n, 784), y


def test_chapter_listing_runs_as_printed_and_reports_like_network3(capsys):
    from nndl.network3 import (ConvPoolLayer, FullyConnectedLayer, Network, ReLU,  # noqa: F401
                               SoftmaxLayer, linear, sigmoid, tanh)

    training_data, validation_data, test_data = _fake_mnist(200, 0), _fake_mnist(50, 1), _fake_mnist(50, 2)
    mini_batch_size = 10
    net = Network([
        ConvPoolLayer(image_shape=(mini_batch_size, 1, 28, 28),
                      filter_shape=(4, 1, 5, 5),
                      poolsize=(2, 2)),
        FullyConnectedLayer(n_in=4*12*12, n_out=20),
        SoftmaxLayer(n_in=20, n_out=10)], mini_batch_size)
    result = net.SGD(training_data, 3, mini_batch_size, 0.1, validation_data, test_data, lmbda=0.0)
    out = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"Epoch 0: validation accuracy \d+\.\d\d%", out[0])
    assert out[1] == "This is the best validation accuracy to date."
    assert re.fullmatch(r"The corresponding test accuracy is \d+\.\d\d%", out[2])
    assert sum(line.startswith("Epoch ") for line in out) == 3
    assert out[-3] == "Finished training network."
    assert out[-2] == (f"Best validation accuracy of {result.best_validation_accuracy:.2%} "
                       f"obtained at iteration {result.best_iteration}")
    assert out[-1] == f"Corresponding test accuracy of {result.test_accuracy:.2%}"
    assert result.best_iteration in (19, 39, 59)              # 20 mini-batches per epoch
    assert 0.0 <= result.test_accuracy <= 1.0
    assert result.best_validation_accuracy == max(net.history.evaluation_accuracy) / 50
    assert net.cost is LogLikelihoodCost and net.dtype == np.float32
    assert net.layers[0].input_grad is False


def test_network3_names_map_to_nndl_activations():
    assert network3.ReLU is activations.ReLU and network3.sigmoid is activations.Sigmoid
    assert network3.tanh is activations.Tanh and network3.linear is activations.Identity
    layer = network3.FullyConnectedLayer(n_in=4, n_out=2, activation_fn=network3.ReLU)
    assert layer.activation is activations.ReLU
    cp = network3.ConvPoolLayer(filter_shape=(2, 1, 3, 3), image_shape=(10, 1, 8, 8),
                                activation_fn=network3.linear)
    assert cp.activation is activations.Identity
    assert network3.ConvPoolLayer((2, 1, 3, 3), (10, 1, 8, 8)).activation is activations.Sigmoid


def _tiny_net(seed):
    from nndl.network3 import ConvPoolLayer, FullyConnectedLayer, Network, SoftmaxLayer

    return Network([ConvPoolLayer((3, 1, 5, 5), (10, 1, 28, 28), activation_fn=network3.ReLU),
                    FullyConnectedLayer(3 * 12 * 12, 10, network3.ReLU),
                    SoftmaxLayer(10, 10)], 10, dtype=np.float64, seed=seed)


def test_book_l2_scales_the_penalty_by_the_number_of_mini_batches():
    train, val = _fake_mnist(95, 3), _fake_mnist(20, 4)
    a, b = _tiny_net(5), _tiny_net(5)
    a.SGD(train, 1, 10, 0.03, val, lmbda=0.1, book_l2=True, verbose=False)
    # network3: λ/num_training_batches = λ'/n  ->  λ' = λ·n/batches, 10 batches of 95
    b.SGD(train, 1, 10, 0.03, val, lmbda=0.1 * 95 / 10, verbose=False)
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.w, lb.w)


def test_network3_network_saves_and_loads(tmp_path):
    net = _tiny_net(1)
    net.save(tmp_path / "n3.npz")
    back = network3.Network.load(tmp_path / "n3.npz")
    assert isinstance(back, network3.Network) and back.layers[0].input_grad is False
    x = _fake_mnist(7, 9)[0]
    np.testing.assert_array_equal(back.predict(x), net.predict(x))


class _FixedNet:
    """Stands in for a trained network whose outputs are given."""

    def __init__(self, probs):
        self.probs = np.asarray(probs, float)

    def _inputs(self, X, what):
        return np.asarray(X)

    def feedforward(self, x):
        return self.probs[:len(x)]


def test_ensemble_vote_is_a_plurality_with_ties_to_the_larger_probability():
    nets = [_FixedNet([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.4, 0.4]]),
            _FixedNet([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.4, 0.2, 0.4]]),
            _FixedNet([[0.1, 0.8, 0.1], [0.3, 0.2, 0.5], [0.2, 0.4, 0.4]])]
    X = np.zeros((3, 4))
    # example 0: votes 0,0,1 -> 0.  example 1: votes 0,1,2 (a three-way tie): summed
    # probabilities 0.9, 1.4, 0.7 -> 1.  example 2: each net's argmax is its first
    # maximum (1, 0, 1) -> 1.
    np.testing.assert_array_equal(network3.ensemble_vote(nets, X), [0, 1, 1])
    tie = [_FixedNet([[0.5, 0.5]]), _FixedNet([[0.5, 0.5]])]  # identical everything: lowest class
    np.testing.assert_array_equal(network3.ensemble_vote(tie, np.zeros((1, 4))), [0])


def test_ensemble_vote_of_real_networks_beats_or_matches_a_coin():
    nets = [_tiny_net(s) for s in (1, 2, 3)]
    x = _fake_mnist(30, 5)[0]
    votes = network3.ensemble_vote(nets, x)
    assert votes.shape == (30,) and votes.dtype.kind == "i"


@pytest.mark.skipif(not os.environ.get("NNDL_DATA"), reason="set NNDL_DATA to the MNIST folder")
def test_load_data_shared_returns_arrays_and_ignores_the_pickle_name():
    training_data, validation_data, test_data = network3.load_data_shared("../data/mnist.pkl.gz")
    assert training_data[0].shape == (50_000, 784) and training_data[0].dtype == np.float32
    assert network3.size(validation_data) == 10_000 and network3.size(test_data) == 10_000


# -- expanded MNIST ------------------------------------------------------------------------
def test_expand_mnist_adds_four_one_pixel_shifts_with_zero_fill():
    rng = np.random.default_rng(0)
    X = rng.random((3, 16)) + 0.1                       # 4x4 images with no zeros
    y = np.array([7, 1, 4])
    Xe, ye = expand.expand_mnist(X, y, image_shape=(4, 4))
    assert Xe.shape == (15, 16) and Xe.dtype == np.float32
    np.testing.assert_array_equal(ye, [7] * 5 + [1] * 5 + [4] * 5)
    img = X[1].reshape(4, 4).astype(np.float32)
    e = Xe[5:10].reshape(5, 4, 4)
    z_row, z_col = np.zeros((1, 4), np.float32), np.zeros((4, 1), np.float32)
    np.testing.assert_array_equal(e[0], img)
    np.testing.assert_array_equal(e[1], np.vstack([z_row, img[:-1]]))    # down
    np.testing.assert_array_equal(e[2], np.vstack([img[1:], z_row]))     # up
    np.testing.assert_array_equal(e[3], np.hstack([z_col, img[:, :-1]]))  # right
    np.testing.assert_array_equal(e[4], np.hstack([img[:, 1:], z_col]))  # left


def test_iter_expanded_yields_the_same_set_in_pieces():
    X, y = _fake_mnist(25, 1)
    whole = expand.expand_mnist(X, y, dtype=np.float64)
    pieces = list(expand.iter_expanded(X, y, chunk=10, dtype=np.float64))
    assert len(pieces) == 3
    np.testing.assert_array_equal(np.concatenate([p[0] for p in pieces]), whole[0])
    np.testing.assert_array_equal(np.concatenate([p[1] for p in pieces]), whole[1])


def test_saved_expanded_set_loads_back_through_load_data_shared(tmp_path):
    rng = np.random.default_rng(2)
    sets = [(rng.integers(0, 256, (n, 784)).astype(np.float32) / 255, rng.integers(0, 10, n))
            for n in (12, 5, 6)]
    path = tmp_path / "mnist_expanded.npz"
    expand.save_expanded(path, *sets, chunk=5)
    training, validation, test = network3.load_data_shared(str(path))
    Xe, ye = expand.expand_mnist(*sets[0])
    np.testing.assert_array_equal(training[0], Xe)
    np.testing.assert_array_equal(training[1], ye)
    np.testing.assert_array_equal(validation[0], sets[1][0])
    np.testing.assert_array_equal(test[1], sets[2][1])


def test_expand_rejects_images_of_the_wrong_size():
    from nndl.errors import ShapeError

    with pytest.raises(ShapeError, match="do not make 28x28 images"):
        expand.expand_mnist(np.zeros((2, 700)), np.zeros(2))


def test_network3_network_is_the_core_network():
    assert issubclass(network3.Network, CoreNetwork)


# -- scripts/mnist_conv.py -------------------------------------------------------------------
SCRIPT = os.path.join(os.path.dirname(__file__), "..", "scripts", "mnist_conv.py")


def _run_script(*args, env=None):
    import subprocess
    import sys

    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True,
                          env=env, timeout=300)


@pytest.mark.parametrize("args, message", [
    (["--preset", "nope"], "invalid choice"),
    (["--preset", "conv1", "--eta", "-1"], "--eta: expected a number > 0.0"),
    (["--preset", "conv1", "--epochs", "two"], "--epochs: expected a positive integer"),
    (["--preset", "conv1", "--epochs", "0"], "--epochs: expected a positive integer"),
    (["--preset", "conv1", "--save", "net.pkl"], "--save: expected a .npz or .json"),
])
def test_mnist_conv_script_rejects_bad_values_in_one_line(args, message):
    r = _run_script(*args)
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("NNDL_DATA"), reason="set NNDL_DATA to the MNIST folder")
def test_mnist_conv_script_runs_a_short_preset(tmp_path):
    r = _run_script("--preset", "relu", "--epochs", "1", "--train-size", "200", "--no-progress",
                    "--save", str(tmp_path / "relu.npz"), "--plot", str(tmp_path / "relu.png"),
                    env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert "Epoch 0: validation accuracy" in r.stdout and "(book: 99.23%)" in r.stdout
    assert (tmp_path / "relu.npz").exists() and (tmp_path / "relu-filters.png").exists()
    back = network3.Network.load(tmp_path / "relu.npz")
    assert back.dtype == np.float32 and len(back.layers) == 4


def test_resumed_network3_run_reports_and_ends_like_an_unbroken_one(tmp_path):
    train, valid, test = _fake_mnist(120, 1), _fake_mnist(40, 2), _fake_mnist(40, 3)
    whole = _tiny_net(5)
    expected = whole.SGD(train, 4, 10, 0.05, valid, test, verbose=False)
    ck = tmp_path / "ck.npz"
    _tiny_net(5).SGD(train, 2, 10, 0.05, valid, test, verbose=False, checkpoint=ck)
    resumed = _tiny_net(5)
    result = resumed.SGD(train, 4, 10, 0.05, valid, test, verbose=False, checkpoint=ck, resume=True)
    assert result == expected
    assert resumed.history.test_accuracy == whole.history.test_accuracy
    for a, b in zip(resumed.layers, whole.layers):
        for (_, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
            np.testing.assert_array_equal(p, q)
