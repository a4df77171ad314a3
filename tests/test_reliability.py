"""Reliability: clear errors for bad input; nothing lost on a kill, a crash or divergence."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndl import Dense, Dropout, Network
from nndl.errors import ConfigError, DataError, DivergenceError, FormatError, ShapeError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def small_data(n=60, n_in=6, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, n_in)), rng.integers(0, n_out, n)


X, Y = small_data()
NAN_X = X.copy()
NAN_X[3, 2] = np.nan

BAD_INPUTS = [
    # (what, call, exception, message pattern)
    ("input width", lambda: Network([6, 4, 3]).SGD((np.ones((60, 5)), Y), 1, 10, 1.0, verbose=False),
     ShapeError, r"training_data: expected examples of shape \(6,\).*got \(5,\)"),
    ("X/y lengths", lambda: Network([6, 4, 3]).SGD((X, Y[:50]), 1, 10, 1.0, verbose=False),
     ShapeError, r"training_data: 60 inputs but 50 labels"),
    ("label range", lambda: Network([6, 4, 3]).SGD((X, np.where(Y == 0, 3, Y)), 1, 10, 1.0, verbose=False),
     DataError, r"label 3 out of range \[0, 3\)"),
    ("negative label", lambda: Network([6, 4, 3]).accuracy((X, Y - 1)),
     DataError, r"label -1 out of range"),
    ("NaN input", lambda: Network([6, 4, 3]).SGD((NAN_X, Y), 1, 10, 1.0, verbose=False),
     DataError, r"training_data: inputs contain NaN"),
    ("empty data", lambda: Network([6, 4, 3]).SGD((np.empty((0, 6)), np.empty(0, int)), 1, 10, 1.0),
     DataError, r"no examples"),
    ("mini-batch 0", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 0, 1.0, verbose=False),
     ConfigError, r"mini_batch_size: expected 1 <= mini_batch_size <= 60.*got 0"),
    ("mini-batch > n", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 61, 1.0, verbose=False),
     ConfigError, r"mini_batch_size.*got 61"),
    ("negative eta", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 10, -0.1, verbose=False),
     ConfigError, r"eta: expected a positive learning rate, got -0.1"),
    ("NaN eta", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 10, float("nan"), verbose=False),
     ConfigError, r"eta: expected a positive learning rate"),
    ("negative lambda", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 10, 0.1, lmbda=-1, verbose=False),
     ConfigError, r"lmbda: expected lmbda >= 0, got -1"),
    ("dropout p = 1", lambda: Dropout(1.0), ConfigError, r"Dropout p: expected 0 <= p < 1, got 1.0"),
    ("dropout p < 0", lambda: Dropout(-0.1), ConfigError, r"Dropout p"),
    ("layer shapes", lambda: Network([Dense(6, 4), Dense(5, 3)]),
     ShapeError, r"layer 1 \(Dense\): Dense\(n_in=5\): the previous layer gives \(4,\)"),
    ("unknown cost", lambda: Network([6, 4, 3], cost="hinge"), ConfigError, r"cost: unknown name 'hinge'"),
    ("unknown activation", lambda: Dense(6, 4, "swish"), ConfigError, r"activation: unknown name 'swish'"),
    ("unknown regularization", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 10, 0.1, lmbda=1.0,
                                                              regularization="L3", verbose=False),
     ConfigError, r"regularization: expected 'L1' or 'L2', got 'L3'"),
    ("bad dtype", lambda: Network([6, 4, 3], dtype="int32"), ConfigError, r"dtype: expected float32 or float64"),
    ("early stopping without data", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 10, 0.1, early_stopping_n=2),
     ConfigError, r"early_stopping_n / schedule_n need evaluation_data"),
    ("on_divergence", lambda: Network([6, 4, 3]).SGD((X, Y), 1, 10, 0.1, on_divergence="ignore"),
     ConfigError, r"on_divergence: expected 'raise' or 'restore'"),
]


@pytest.mark.parametrize("what, call, exc, pattern", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_raises_a_clear_error(what, call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()


def test_conv_filter_larger_than_image_is_caught_when_the_network_is_built():
    from nndl.conv import Conv2D

    with pytest.raises(ShapeError, match=r"kernel|filter"):
        Network([Conv2D(1, 4, 9)], input_shape=(1, 6, 6), cost="quadratic")


# ---------------------------------------------------------------- divergence
def diverging_net():
    return Network([Dense(6, 5, "identity"), Dense(5, 3, "identity")], cost="quadratic", seed=0)


def test_divergence_leaves_the_last_good_epoch_in_the_checkpoint(tmp_path):
    ck = tmp_path / "ck.npz"
    net = diverging_net()
    good = []

    def keep(epoch, net, history):
        if epoch == 1:
            good.extend(w.copy() for w in net.weights)

    # Two sane epochs, then a learning rate no linear net survives.
    with pytest.raises(DivergenceError, match=r"epoch 2, mini-batch \d+.*last good state is saved in"):
        net.SGD((X, Y), 4, 10, lambda epoch: 0.01 if epoch < 2 else 1e6, checkpoint=ck,
                verbose=False, callback=keep)
    saved = Network.load(ck)
    assert all(np.array_equal(a, b) for a, b in zip(saved.weights, good))


def test_restore_and_halve_recovers_from_divergence(capsys):
    # A linear net on inputs in [0, 10) diverges within one epoch at eta = 0.02, not at 0.005.
    rng = np.random.default_rng(0)
    data = (rng.random((600, 6)) * 10, rng.integers(0, 3, 600))
    with pytest.raises(DivergenceError):
        diverging_net().SGD(data, 1, 10, 0.02, verbose=False)
    net = diverging_net()
    h = net.SGD(data, 1, 10, 0.02, on_divergence="restore", verbose=True)
    out = capsys.readouterr().out
    assert out.count("halving eta") == 2
    assert h.eta == [0.005]
    assert all(np.isfinite(w).all() for w in net.weights)


# ---------------------------------------------------------------- kill and resume
TRAIN_CHILD = textwrap.dedent("""
    import sys, numpy as np
    sys.path.insert(0, {root!r})
    from nndl import Network
    rng = np.random.default_rng(0)
    X = rng.random((400, 30)); y = rng.integers(0, 5, 400)
    net = Network([30, 20, 5], seed=7)
    def slow(epoch, net, h):
        print("epoch", epoch, flush=True)
        import time; time.sleep({sleep})
    net.SGD((X, y), {epochs}, 10, 0.5, lmbda=1.0, checkpoint={ck!r}, resume=True,
            evaluation_data=(X, y), monitor_evaluation_accuracy=True, verbose=False,
            callback=slow)
    net.save({out!r})
""")


def run_child(tmp_path, name, epochs, sleep=0.0, kill_after_epoch=None):
    ck, out = str(tmp_path / f"{name}.ck.npz"), str(tmp_path / f"{name}.npz")
    code = TRAIN_CHILD.format(root=ROOT, sleep=sleep, epochs=epochs, ck=ck, out=out)
    with subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) as proc:
        if kill_after_epoch is not None:
            for line in proc.stdout:
                if line.strip() == f"epoch {kill_after_epoch}":
                    proc.send_signal(signal.SIGKILL)
                    break
        proc.communicate(timeout=120)
    return proc.returncode, ck, out


def test_a_killed_run_resumes_to_the_same_weights_bit_for_bit(tmp_path):
    # numba's freshly compiled code can differ from its on-disk cached copy in the last
    # bit of some sums (see the README), so a first child compiles and caches the loop:
    # the three runs compared below then all run the same cached code.
    assert run_child(tmp_path, "warm-up", epochs=1)[0] == 0
    rc, _, whole = run_child(tmp_path, "whole", epochs=6)
    assert rc == 0
    rc, ck, out = run_child(tmp_path, "broken", epochs=6, sleep=5.0, kill_after_epoch=2)
    assert rc == -signal.SIGKILL and os.path.exists(ck) and not os.path.exists(out)
    rc, _, out = run_child(tmp_path, "broken", epochs=6)  # resumes from the checkpoint
    assert rc == 0
    a, b = Network.load(whole), Network.load(out)
    for la, lb in zip(a.layers, b.layers):
        for (_, pa, _), (_, pb, _) in zip(la.parameters(), lb.parameters()):
            assert np.array_equal(pa, pb)


SAVE_CHILD = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from nndl import Network
    nets = [Network([784, 200, 10], seed=s) for s in (1, 2)]
    i = 0
    print("ready", flush=True)
    while True:
        nets[i % 2].save({path!r}); i += 1
""")


def test_killing_a_writer_mid_save_leaves_a_complete_file(tmp_path):
    path = str(tmp_path / "model.npz")
    expected = [Network([784, 200, 10], seed=s).weights[0] for s in (1, 2)]
    rng = np.random.default_rng(0)
    for trial in range(4):
        with subprocess.Popen([sys.executable, "-c", SAVE_CHILD.format(root=ROOT, path=path)],
                              stdout=subprocess.PIPE, text=True) as proc:
            assert proc.stdout.readline().strip() == "ready"
            time.sleep(0.3 + rng.random() * 0.4)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=30)
        w = Network.load(path).weights[0]  # never a half-written file
        assert any(np.array_equal(w, e) for e in expected)


# ---------------------------------------------------------------- the model loader under fuzz
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2000), suffix=st.sampled_from([".npz", ".json"]))
def test_model_loader_rejects_random_bytes_with_format_error(tmp_path, data, suffix):
    path = tmp_path / ("random" + suffix)
    path.write_bytes(data)
    with pytest.raises(FormatError):
        Network.load(path)


@pytest.fixture(scope="module")
def saved_models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    net = Network([Dense(6, 4, "relu"), Dropout(0.2), Dense(4, 3, "softmax")], cost="log-likelihood", seed=0)
    out = {}
    for suffix in (".npz", ".json"):
        net.save(folder / ("good" + suffix))
        out[suffix] = (folder / ("good" + suffix)).read_bytes()
    return out


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(suffix=st.sampled_from([".npz", ".json"]), where=st.floats(0, 1), how=st.integers(0, 2),
       byte=st.integers(0, 255))
def test_model_loader_survives_mutated_files(tmp_path, saved_models, suffix, where, how, byte):
    data = bytearray(saved_models[suffix])
    i = min(int(where * len(data)), len(data) - 1)
    if how == 0:
        data[i] = byte          # flip one byte
    elif how == 1:
        del data[i:]            # truncate
    else:
        data.insert(i, byte)    # insert one byte
    path = tmp_path / ("mutated" + suffix)
    path.write_bytes(bytes(data))
    try:
        net = Network.load(path)
    except FormatError:
        return
    assert all(np.isfinite(w).all() for w in net.weights)


@pytest.mark.parametrize("old, new", [('"dtype": "float64"', '"dtype": "floa 64"'),
                                      ('"n_out": 4', '"n_out": -4')])
def test_model_loader_names_a_description_the_layers_refuse(tmp_path, saved_models, old, new):
    # Found by the fuzz test above: a damaged dtype (or a layer size a constructor
    # refuses) came out as the constructor's ConfigError, not a FormatError naming the file.
    data = saved_models[".json"]
    assert old.encode() in data
    path = tmp_path / "described.json"
    path.write_bytes(data.replace(old.encode(), new.encode()))
    with pytest.raises(FormatError, match="described.json: bad layer description"):
        Network.load(path)


@pytest.mark.parametrize("method", [2, 14, 99])  # implode, LZMA, unassigned
def test_model_loader_names_an_unknown_zip_compression_method(tmp_path, saved_models, method):
    # Found by the fuzz test above: one flipped byte in a member's compression-method
    # field made zipfile raise NotImplementedError instead of a FormatError.
    data = bytearray(saved_models[".npz"])
    for sig, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):  # local + central headers
        i = data.find(sig)
        assert i >= 0
        data[i + offset:i + offset + 2] = method.to_bytes(2, "little")
    path = tmp_path / "method.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(FormatError, match="method.npz: not a readable nndl model file"):
        Network.load(path)


@pytest.mark.parametrize("script, args", [
    ("mnist_mlp.py", ["--sizes", "784,30,x"]),
    ("mnist_mlp.py", ["--activation", "swish", "--epochs", "1"]),
    ("ch3_overfitting.py", ["--quick", "--epochs", "-3"]),
    ("linear_regression.py", ["--eta", "-1"]),
])
def test_scripts_end_bad_input_in_one_line_without_a_traceback(script, args, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", script), *args,
                           *(["--out", str(tmp_path)] if script != "mnist_mlp.py" else [])],
                          capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith((f"{script}: error:", "usage:")) or \
        f"{script}: error:" in proc.stderr
