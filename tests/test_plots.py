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


# -- after one epoch: a dot for a single point, whole-number epochs, no empty panels ------

@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions draw, kept open instead of written out."""
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or str(path))
    yield drawn
    for fig in drawn:
        plots._pyplot().close(fig)


def visible_ticks(ax):
    lo, hi = sorted(ax.get_xlim())
    return [t for t in ax.get_xticks() if lo <= t <= hi]


def assert_readable_epoch_axis(ax):
    assert ax.lines, f"panel {ax.get_title()!r} is empty"
    for line in ax.lines:
        if len(line.get_xdata()) == 1:
            assert line.get_marker() not in (None, "None", "", " "), "a single point without a marker"
    ticks = visible_ticks(ax)
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_learning_curves_after_one_epoch_show_dots_on_whole_epochs(figures, tmp_path):
    plots.learning_curves(a_history(1), tmp_path / "one.png")
    for ax in figures[0].axes:
        assert_readable_epoch_axis(ax)


def test_monitors_after_one_epoch_have_no_empty_panel(figures, tmp_path):
    plots.monitors(a_history(1), tmp_path / "one.png", start=(200, 200, 0, 0))
    assert len(figures[0].axes) == 4
    for ax in figures[0].axes:
        assert_readable_epoch_axis(ax)
        assert not ax.texts  # no "not monitored"


def test_monitors_start_beyond_a_short_run_shows_its_last_epoch(figures, tmp_path):
    plots.monitors(a_history(3), tmp_path / "three.png", start=200)
    for ax in figures[0].axes:
        assert list(ax.lines[0].get_xdata()) == [2]


def test_curves_and_speed_of_learning_after_one_epoch(figures, tmp_path):
    plots.curves({"eta = 0.25": [0.5], "eta = 2.5": [0.9, 0.8, 0.85]}, tmp_path / "c.png")
    plots.speed_of_learning([[0.01, 0.1]], tmp_path / "s.png")
    for fig in figures:
        assert_readable_epoch_axis(fig.axes[0])
    curves_ax = figures[0].axes[0]
    assert curves_ax.lines[1].get_marker() in (None, "None", "")  # many points: a plain line


def test_curves_keep_fractional_ticks_when_x_is_not_epochs(figures, tmp_path):
    plots.curves({"fit": ([0.0, 0.25, 0.5], [1, 2, 3])}, tmp_path / "x.png", xlabel="x")
    assert not all(float(t).is_integer() for t in visible_ticks(figures[0].axes[0]))
