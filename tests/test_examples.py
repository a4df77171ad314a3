"""The example scripts run in a tiny configuration, write their JSON and plots, and redraw
the plots from the JSON alone."""
import importlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)

# script: (tiny arguments, the PNGs it must write).  "mnist" scripts read real MNIST.
CASES = {
    "ch3_overfitting": (["--quick", "--epochs", "3", "--train-size", "200", "--eval-size", "300",
                         "--plot-from", "1"],
                        ["overfitting.png", "learning_curves.png", "misclassified.png"]),
    "ch3_weight_init": (["--quick", "--epochs", "1", "--train-size", "300", "--eval-size", "200"],
                        ["weight_initialization_30.png", "first_layer_weights_30.png"]),
    "ch3_learning_rates": (["--quick", "--epochs", "2", "--train-size", "300"], ["multiple_eta.png"]),
    "ch3_more_data": (["--quick", "--sizes", "100,200", "--examples", "400", "--eval-size", "200"],
                      ["more_data.png", "more_data_log.png"]),
    "ch5_vanishing_gradient": (["--quick", "--hidden-layers", "2,4", "--epochs", "3",
                                "--train-size", "100"],
                               ["speed_of_learning_2_layers.png", "speed_of_learning_4_layers.png"]),
    "linear_regression": (["--quick"], ["fit_3x+0.8.png", "fit_2x+3_noisy.png"]),
    "two_layer_relu": (["--quick"], ["loss.png"]),
    "lenet": (["--quick", "--train-size", "100", "--eval-size", "100"],
              ["learning_curves.png", "conv1_filters.png", "misclassified.png"]),
}
NO_MNIST = {"linear_regression", "two_layer_relu"}


@pytest.fixture
def with_mnist(request, monkeypatch):
    """Scripts call nndl.data.load_mnist(); hand them the session's copy instead of re-reading."""
    mnist = request.getfixturevalue("mnist")
    import nndl.data

    monkeypatch.setattr(nndl.data, "load_mnist", lambda path=None, dtype=np.float64, **kw: tuple(
        (x.astype(dtype, copy=False), y) for x, y in mnist))


def run_script(name, tmp_path, request):
    if name not in NO_MNIST:
        request.getfixturevalue("with_mnist")
    args, pngs = CASES[name]
    module = importlib.import_module(name)
    results = module.main(args + ["--out", str(tmp_path)])
    saved = tmp_path / f"{name}.json"
    assert saved.exists() and json.loads(saved.read_text()) == json.loads(json.dumps(results))
    for png in pngs:
        assert (tmp_path / png).stat().st_size > 0, png
    return module, results, pngs


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_tiny_run_writes_json_and_plots_and_replots_from_the_json(name, tmp_path, request):
    module, results, pngs = run_script(name, tmp_path, request)
    for png in pngs:
        (tmp_path / png).unlink()
    redo = tmp_path / "again"
    module.main(["--from-json", str(tmp_path / f"{name}.json"), "--out", str(redo)])
    assert sorted(os.listdir(redo)) == sorted(pngs)


def test_vanishing_gradient_records_a_norm_per_hidden_layer_per_epoch(tmp_path, request):
    _, results, _ = run_script("ch5_vanishing_gradient", tmp_path, request)
    for depth in ("2", "4"):
        norms = np.asarray(results["depths"][depth]["norms"])
        assert norms.shape == (3 + 1, int(depth))
    first = results["depths"]["4"]["norms"][0]
    assert first[0] < first[1] < first[2] < first[3]  # the gradient vanishes toward the input


def test_linear_regression_finds_the_line(tmp_path, request):
    _, results, _ = run_script("linear_regression", tmp_path, request)
    exact = results["fits"]["3x+0.8"]
    assert exact["w"] == pytest.approx(3.0, abs=0.01) and exact["b"] == pytest.approx(0.8, abs=0.01)
    noisy = results["fits"]["2x+3_noisy"]
    assert noisy["w"] == pytest.approx(noisy["least_squares"][0], abs=0.01)


def test_two_layer_relu_loss_falls_and_matches_the_classic_numpy_loop(tmp_path, request):
    module, results, _ = run_script("two_layer_relu", tmp_path, request)
    loss = results["loss"]
    assert len(loss) == 51 and loss[-1] < 1e-2 * loss[0]
    # The classic example written out, from the same data and starting weights, with
    # lr = 1e-6 on L = Σ(ŷ-y)².
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((64, 1000)), rng.standard_normal((64, 10))
    net = module.build(module.parse_args([]), rng)
    w1, w2 = net.layers[0].w.T.copy(), net.layers[1].w.T.copy()   # (1000, 100), (100, 10)
    classic = []
    for _ in range(5):
        h = x @ w1
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2
        classic.append(float(((y_pred - y) ** 2).sum()))
        grad_y_pred = 2.0 * (y_pred - y)
        grad_w2 = h_relu.T @ grad_y_pred
        grad_h = grad_y_pred @ w2.T
        grad_h[h < 0] = 0
        grad_w1 = x.T @ grad_h
        w1, w2 = w1 - 1e-6 * grad_w1, w2 - 1e-6 * grad_w2
    np.testing.assert_allclose(loss[:5], classic, rtol=1e-9)


@pytest.mark.slow  # a fresh interpreter importing numpy, numba and matplotlib
def test_a_script_runs_from_the_command_line(tmp_path):
    out = subprocess.run([sys.executable, os.path.join(SCRIPTS, "linear_regression.py"), "--quick",
                          "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "fitted w = " in out.stdout and (tmp_path / "linear_regression.json").exists()
