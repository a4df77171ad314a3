"""Every plot function writes a non-empty PNG of the size its docstring promises."""
import numpy as np
import pytest

from nndl import History, plots


def png_size(path):
    """(height, width) in pixels of a PNG, read back with matplotlib."""
    import matplotlib.image

    image = matplotlib.image.imread(path)
    assert image.size > 0 and np.ptp(image) > 0  # something was drawn
    return image.shape[:2]


def a_history(epochs=5):
    h = History()
    h.n_training, h.n_evaluation = 100, 50
    h.training_cost = list(np.linspace(2, 0.5, epochs))
    h.evaluation_cost = list(np.linspace(2, 1.0, epochs))
    h.training_accuracy = [60 + 8 * k for k in range(epochs)]
    h.evaluation_accuracy = [30 + 3 * k for k in range(epochs)]
    return h


def test_learning_curves(tmp_path):
    path = plots.learning_curves(a_history(), tmp_path / "curves.png", title="t")
    assert png_size(path) == (400, 1100)


def test_learning_curves_accepts_the_history_as_json_gives_it_back(tmp_path):
    path = plots.learning_curves(a_history().to_dict(), tmp_path / "curves.png")
    assert png_size(path) == (400, 1100)


def test_monitors_draws_four_panels_even_with_some_unmonitored(tmp_path):
    h = a_history(10)
    h.training_cost = []
    path = plots.monitors(h, tmp_path / "monitors.png", start=(3, 3, 0, 0), title="overfitting")
    assert png_size(path) == (750, 1000)


def test_curves_takes_ys_or_xs_and_ys(tmp_path):
    series = {"eta = 0.025": [3, 2, 1.5], "eta = 2.5": ([0, 1, 2], [3, 3.5, 3.2])}
    path = plots.curves(series, tmp_path / "c.png", ylabel="cost", logy=True, marker="o")
    assert png_size(path) == (450, 700)
    path = plots.curves({"nn": ([100, 1000, 10000], [70, 85, 95])}, tmp_path / "d.png",
                        logx=True, figsize=(5, 3), ylim=(60, 100))
    assert png_size(path) == (300, 500)


def test_speed_of_learning(tmp_path):
    norms = np.exp(-np.arange(20))[:, None] * np.array([[0.01, 0.1, 1.0]])
    path = plots.speed_of_learning(norms + 1e-3, tmp_path / "speed.png")
    assert png_size(path) == (500, 800)


def test_speed_of_learning_rejects_a_shapeless_table(tmp_path):
    with pytest.raises(ValueError, match="norms"):
        plots.speed_of_learning([], tmp_path / "x.png")


def test_digits_and_misclassified_digits(rng, tmp_path):
    images = rng.random((13, 784))
    path = plots.misclassified_digits(images, rng.integers(0, 10, 13), rng.integers(0, 10, 13),
                                      tmp_path / "wrong.png", ncols=5, cell=1.0)
    assert png_size(path) == (300, 500)  # 3 rows of 5, 100 px each
    path = plots.digits(images[:4], tmp_path / "four.png", ncols=10, cell=1.2)
    assert png_size(path) == (120, 480)  # one row of 4


def test_weight_images_of_a_dense_layer_and_of_conv_filters(rng, tmp_path):
    path = plots.weight_images(rng.standard_normal((30, 784)), tmp_path / "w.png", ncols=10)
    assert png_size(path) == (300, 1000)
    path = plots.weight_images(rng.standard_normal((6, 1, 5, 5)), tmp_path / "f.png", ncols=6)
    assert png_size(path) == (100, 600)
    path = plots.weight_images(rng.standard_normal((4, 3, 5, 5)), tmp_path / "g.png")
    assert png_size(path) == (400, 300)  # a row of C = 3 channels per feature map
    with pytest.raises(ValueError, match="square"):
        plots.weight_images(rng.standard_normal((3, 10)), tmp_path / "bad.png")


def test_fitted_line(rng, tmp_path):
    x = rng.random(20)
    path = plots.fitted_line(x, 3 * x + 0.8, 3.0, 0.8, tmp_path / "line.png")
    assert png_size(path) == (450, 700)


def test_sweep_plot_averages_over_seeds(tmp_path):
    rows = [{"eta": eta, "lmbda": lmbda, "hidden": 30, "seed": seed, "accuracy": 90 + eta + seed}
            for eta in (0.1, 1.0) for lmbda in (0.0, 5.0) for seed in (0, 1)]
    path = plots.sweep(rows, tmp_path / "sweep.png")
    assert png_size(path) == (500, 800)


def test_a_failed_plot_leaves_no_file(tmp_path):
    with pytest.raises(ValueError):
        plots.sweep([], tmp_path / "none.png")
    assert list(tmp_path.iterdir()) == []
