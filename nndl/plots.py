"""Pictures of training (chapter 3's learning curves and friends).

The only module that imports matplotlib, with the headless Agg backend, so plots work
on machines without a screen.  Every function writes a PNG and returns its path.
"""
import os

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    from .io import atomic_write

    with atomic_write(path) as f:
        fig.savefig(f, format="png", dpi=100, bbox_inches="tight")
    _pyplot().close(fig)
    return os.fspath(path)


def learning_curves(history, path, title=None):
    """Accuracy (%) and cost per epoch for the training and evaluation data monitored."""
    plt = _pyplot()
    fig, (ax_acc, ax_cost) = plt.subplots(1, 2, figsize=(11, 4))
    for acc, n, label in ((history.evaluation_accuracy, history.n_evaluation, "evaluation"),
                          (history.training_accuracy, history.n_training, "training")):
        if acc:
            ax_acc.plot(np.arange(len(acc)), 100.0 * np.asarray(acc) / n, label=label)
    for cost, label in ((history.evaluation_cost, "evaluation"), (history.training_cost, "training")):
        if cost:
            ax_cost.plot(np.arange(len(cost)), cost, label=label)
    ax_acc.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
    ax_cost.set(xlabel="epoch", ylabel="cost", title="Cost")
    for ax in (ax_acc, ax_cost):
        if ax.lines:
            ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _save(fig, path)
