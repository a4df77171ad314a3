"""Pictures of training: chapter 3's learning curves, chapter 5's speed of learning, digits.

The only module that imports matplotlib, with the headless Agg backend, so plots work
on machines without a screen (where pyplot is already imported, as in a notebook, its
backend is kept: every figure here is closed once saved, so nothing extra is shown).
Every function writes a PNG and returns its path.  A figure of ``figsize=(w, h)``
inches is saved at ``DPI`` dots per inch, so its PNG is exactly ``w·DPI × h·DPI``
pixels (no tight cropping): scripts and tests can rely on it.

Functions take plain numbers (lists, arrays, dicts, a :class:`~nndl.net.History`), never
a network, so a script can remake every figure from the JSON it saved.
"""
import math
import os
import sys

import numpy as np

DPI = 100

# The book's figure colours (fig/*.py), then matplotlib's defaults.
COLORS = ["#2A6EA6", "#FFA933", "#FF5555", "#55AA55", "#5555FF", "#AA55AA", "#333333"]


def _pyplot():
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # else keep the caller's choice (a notebook's inline)
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _figure(figsize, nrows=1, ncols=1, suptitle=False, **kwargs):
    """A figure and its axes, with margins fixed in inches so labels fit at any size.

    (Fixed margins instead of matplotlib's constrained layout, which draws every figure
    twice: plotting takes half the time.)
    """
    fig, axes = _pyplot().subplots(nrows, ncols, figsize=figsize, **kwargs)
    w, h = figsize
    left, right, bottom, top = 0.85, 0.25, 0.6, 0.8 if suptitle else 0.45   # inches
    axis_w = (w - left - right) / ncols
    axis_h = (h - bottom - top) / nrows
    fig.subplots_adjust(left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h,
                        wspace=1.0 / max(axis_w - 1.0, 0.5), hspace=1.0 / max(axis_h - 1.0, 0.5))
    return fig, axes


def _save(fig, path):
    from .io import atomic_write

    try:
        with atomic_write(path) as f:
            fig.savefig(f, format="png", dpi=DPI)
    finally:
        _pyplot().close(fig)
    return os.fspath(path)


def _line(ax, xs, ys, marker=None, **kwargs):
    """ax.plot, with a dot where a series has one point (a line of one point is invisible)."""
    if marker is None and len(ys) == 1:
        marker = "o"
    return ax.plot(xs, ys, marker=marker, **kwargs)


def _epoch_axis(ax):
    """Whole-number ticks on an epoch axis (no "epoch 0.5" after a run of one or two)."""
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))


def _history(history):
    if isinstance(history, dict):
        from .net import History

        return History.from_dict(history)
    return history


def learning_curves(history, path, title=None):
    """Accuracy (%) and cost per epoch for the training and evaluation data monitored.

    ``history`` is a :class:`~nndl.net.History` or its ``to_dict()``.  1100 × 400 px.
    """
    history = _history(history)
    fig, (ax_acc, ax_cost) = _figure((11, 4), 1, 2, suptitle=bool(title))
    for acc, n, label in ((history.evaluation_accuracy, history.n_evaluation, "evaluation"),
                          (history.training_accuracy, history.n_training, "training")):
        if acc:
            _line(ax_acc, np.arange(len(acc)), 100.0 * np.asarray(acc) / n, label=label)
    for cost, label in ((history.evaluation_cost, "evaluation"), (history.training_cost, "training")):
        if cost:
            _line(ax_cost, np.arange(len(cost)), cost, label=label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_cost.set(xlabel="epoch", ylabel="cost", title="Cost")
    for ax, what in ((ax_acc, "accuracy"), (ax_cost, "cost")):
        if ax.lines:
            ax.legend()
        else:  # say so, rather than leave an empty frame
            ax.text(0.5, 0.5, f"no {what} was monitored", ha="center", va="center",
                    transform=ax.transAxes, color="0.4")
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def monitors(history, path, start=0, title=None):
    """The four monitors as chapter 3's four overfitting plots, from epoch ``start`` on.

    Cost on the training data, accuracy (%) on the evaluation data, cost on the
    evaluation data, accuracy (%) on the training data; a panel whose monitor is empty
    says so.  ``start`` is one first epoch for all four or one per panel (the book
    draws the first two from epoch 200, the others from 0); a run shorter than its
    panel's ``start`` shows its last epoch rather than an empty panel.  1000 × 750 px.
    """
    history = _history(history)
    starts = [int(start)] * 4 if np.ndim(start) == 0 else [int(s) for s in start]
    fig, axes = _figure((10, 7.5), 2, 2, suptitle=bool(title))
    panels = (
        (history.training_cost, None, "Cost on the training data"),
        (history.evaluation_accuracy, history.n_evaluation, "Accuracy (%) on the evaluation data"),
        (history.evaluation_cost, None, "Cost on the evaluation data"),
        (history.training_accuracy, history.n_training, "Accuracy (%) on the training data"),
    )
    for ax, (values, n, label), start, color in zip(axes.flat, panels, starts, COLORS):
        values = np.asarray(values, dtype=float)
        if n:
            values = 100.0 * values / n
        if len(values):
            start = min(start, len(values) - 1)
            _line(ax, np.arange(start, len(values)), values[start:], color=color)
        else:
            ax.text(0.5, 0.5, "not monitored", ha="center", va="center", transform=ax.transAxes)
        ax.set(xlabel="epoch", title=label)
        _epoch_axis(ax)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def curves(series, path, xlabel="epoch", ylabel=None, title=None, logx=False, logy=False,
           marker=None, ylim=None, figsize=(7, 4.5)):
    """One line per entry of ``series``: ``{label: ys}`` (x = 0, 1, ...) or ``{label: (xs, ys)}``.

    The generic figure behind the learning-rate, weight-initialization and more-data
    plots.  ``figsize`` in inches; the PNG is ``figsize × DPI`` pixels.  With
    ``xlabel="epoch"`` the x ticks are whole numbers.
    """
    fig, ax = _figure(figsize)
    for (label, values), color in zip(series.items(), _cycle(COLORS)):
        if isinstance(values, (tuple, list)) and len(values) == 2 and np.ndim(values[0]) == 1:
            xs, ys = values
        else:
            ys = values
            xs = np.arange(len(ys))
        _line(ax, xs, ys, marker=marker, color=color, label=str(label))
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set(xlabel=xlabel, ylabel=ylabel or "", title=title or "")
    if xlabel == "epoch" and not logx:
        _epoch_axis(ax)
    if len(series) > 1:
        ax.legend()
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _cycle(colors):
    while True:
        yield from colors


def speed_of_learning(norms, path, title=None, logy=True):
    """‖∂C/∂b^l‖ per hidden layer against epoch: chapter 5's vanishing-gradient figure.

    ``norms`` is (epochs, hidden layers): row j holds the norms measured before epoch j
    (or after epoch j-1), as :class:`nndl.diagnostics.SpeedOfLearning` records them.
    800 × 500 px, log scale by default as in the book.
    """
    norms = np.asarray(norms, dtype=float)
    if norms.ndim != 2 or norms.size == 0:
        raise ValueError(f"norms: expected a non-empty (epochs, layers) table, got shape {norms.shape}")
    fig, ax = _figure((8, 5))
    for l, color in zip(range(norms.shape[1]), _cycle(COLORS)):
        _line(ax, np.arange(len(norms)), norms[:, l], color=color, label=f"Hidden layer {l + 1}")
    if logy:
        ax.set_yscale("log")
    ax.set(xlabel="Number of epochs of training", ylabel="‖∂C/∂b‖",
           title=title or f"Speed of learning: {norms.shape[1]} hidden layers")
    ax.set_xlim(*((0, len(norms) - 1) if len(norms) > 1 else (-1, 1)))  # one row: its dot inside
    _epoch_axis(ax)
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)


def _grid_shape(count, ncols):
    ncols = max(1, min(ncols, count))
    return math.ceil(count / ncols), ncols


def _mosaic(tiles, ncols, cell, cmap, vmin, vmax, titles=None):
    """Tiles (T, h, w) laid out ncols to a row in one image (fast: one imshow, not T axes).

    Each tile gets a cell of ``cell`` inches; a margin around it (and a strip above it
    for its title) is left blank.  Returns the figure.
    """
    T, h, w = tiles.shape
    rows, ncols = _grid_shape(T, ncols)
    pad = max(1, round(0.08 * max(h, w)))
    top = round(0.45 * h) if titles is not None else pad
    side = max(h + top + pad, w + 2 * pad)                      # a square cell, in tile pixels
    top += (side - h - top - pad) // 2
    left = (side - w) // 2
    board = np.full((rows * side, ncols * side), np.nan)        # (rows·side, ncols·side)
    for k in range(T):
        r, c = divmod(k, ncols)
        board[r * side + top:r * side + top + h, c * side + left:c * side + left + w] = tiles[k]
    plt = _pyplot()
    fig = plt.figure(figsize=(ncols * cell, rows * cell))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_axis_off()
    colormap = plt.get_cmap(cmap).with_extremes(bad="white")
    ax.imshow(board, cmap=colormap, vmin=vmin, vmax=vmax, interpolation="nearest", aspect="auto")
    if titles is not None:
        for k, title in enumerate(titles[:T]):
            r, c = divmod(k, ncols)
            ax.text(c * side + side / 2, r * side + top * 0.55, title, ha="center", va="center",
                    fontsize=max(5, 7 * cell))
    return fig


def digits(images, path, titles=None, ncols=10, image_shape=(28, 28), cell=1.2):
    """A grid of grey-scale images (dark ink on white, as printed), one title each.

    ``images`` is (N, H·W) or (N, H, W); the figure is ``ncols·cell`` inches wide and
    ``rows·cell`` high (rows = ⌈N / ncols⌉, ncols at most N), so ``cell·DPI`` pixels per
    digit.
    """
    images = np.asarray(images, dtype=float)
    if len(images) == 0:
        raise ValueError("images: nothing to draw")
    images = images.reshape((len(images),) + tuple(image_shape))   # (N, H, W)
    return _save(_mosaic(images, ncols, cell, "gray_r", 0.0, 1.0, titles), path)


def misclassified_digits(images, predicted, labels, path, ncols=10, cell=1.2):
    """The digits a network got wrong, each titled "predicted (true label)".

    images (N, 784), predicted and labels (N,), e.g. from
    :func:`nndl.diagnostics.misclassified`.  Sized as :func:`digits`.
    """
    titles = [f"{int(p)} (true {int(t)})" for p, t in zip(predicted, labels)]
    return digits(images, path, titles=titles, ncols=ncols, cell=cell)


def weight_images(w, path, image_shape=None, ncols=10, cell=1.0):
    """Learned weights drawn as images: red positive, blue negative, white zero.

    ``w`` is a Dense layer's (n_out, n_in) matrix -- one image per hidden neuron, its
    n_in input weights reshaped to ``image_shape`` (default square: 784 -> 28 × 28) --
    or a convolution's (K, C, kh, kw) filters, one row of C images per feature map
    (when C > 1).  Each image has its own symmetric colour scale.  Sized as :func:`digits`.
    """
    w = np.asarray(w, dtype=float)
    if w.ndim == 4:
        K, C = w.shape[:2]
        tiles = w.reshape(K * C, w.shape[2], w.shape[3])            # (K·C, kh, kw)
        ncols = C if C > 1 else ncols
    elif w.ndim == 2:
        if image_shape is None:
            side = math.isqrt(w.shape[1])
            if side * side != w.shape[1]:
                raise ValueError(f"w: {w.shape[1]} inputs are not a square image; pass image_shape=")
            image_shape = (side, side)
        tiles = w.reshape((len(w),) + tuple(image_shape))            # (n_out, H, W)
    else:
        raise ValueError(f"w: expected (n_out, n_in) or (K, C, kh, kw), got shape {w.shape}")
    scale = np.abs(tiles).max(axis=(1, 2), keepdims=True)
    tiles = tiles / np.where(scale > 0, scale, 1.0)                  # each tile in [-1, 1]
    return _save(_mosaic(tiles, ncols, cell, "RdBu_r", -1.0, 1.0), path)


def fitted_line(x, y, w, b, path, title=None):
    """Data points and the fitted line y = w x + b (linear regression).  700 × 450 px."""
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    fig, ax = _figure((7, 4.5))
    ax.plot(x, y, "o", color=COLORS[0], markersize=4, label="data")
    xs = np.array([x.min(), x.max()])
    ax.plot(xs, w * xs + b, color=COLORS[2], label=f"fit: y = {w:.3f} x + {b:.3f}")
    ax.set(xlabel="x", ylabel="y", title=title or "")
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, path)


def sweep(rows, path, x="eta", y="accuracy", group=("lmbda", "hidden"), logx=True, title=None):
    """A hyperparameter sweep: ``y`` against ``x``, one line per ``group`` value.

    ``rows`` are result dicts (one per run).  Runs that differ only in other keys (the
    seed) are averaged; the bars span their minimum to maximum.  800 × 500 px.
    """
    group = (group,) if isinstance(group, str) else tuple(group)
    lines = {}
    for r in rows:
        key = tuple(r.get(g) for g in group)
        lines.setdefault(key, {}).setdefault(r[x], []).append(r[y])
    if not lines:
        raise ValueError("rows: no results to plot")
    fig, ax = _figure((8, 5))
    for (key, points), color in zip(sorted(lines.items(), key=lambda kv: str(kv[0])), _cycle(COLORS)):
        xs = sorted(points)
        vals = [np.asarray(points[v], dtype=float) for v in xs]
        mean = np.array([v.mean() for v in vals])
        err = np.array([[m - v.min() for m, v in zip(mean, vals)],
                        [v.max() - m for m, v in zip(mean, vals)]])
        label = ", ".join(f"{g}={k}" for g, k in zip(group, key))
        ax.errorbar(xs, mean, yerr=err, marker="o", capsize=3, color=color, label=label)
    if logx:
        ax.set_xscale("log")
    ax.set(xlabel=x, ylabel=y, title=title or "")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    return _save(fig, path)
