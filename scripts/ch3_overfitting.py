#!/usr/bin/env python
"""Chapter 3: overfitting, seen in the four monitors of a network trained on 1,000 images.

The book's experiment ("Overfitting and regularization"): a [784, 30, 10] sigmoid
network with the cross-entropy cost and weights N(0, 1) (``large_weight_initializer``)
is trained on only the first 1,000 MNIST training images for 400 epochs, mini-batches
of 10, eta 0.5, no regularization, monitoring the cost and accuracy on the training
data and on the 10,000 test images.  The training cost keeps falling, but the test
accuracy stops improving around epoch 280 (at about 82%) and the test cost starts
rising after about epoch 15: the network is learning peculiarities of its 1,000 images.
``--lmbda 0.1`` repeats the book's regularized run (test accuracy keeps rising, ~87%).

    python scripts/ch3_overfitting.py                  # the book's run (under a minute)
    python scripts/ch3_overfitting.py --quick          # a few seconds
    python scripts/ch3_overfitting.py --from-json runs/ch3_overfitting/ch3_overfitting.json

Writes ``<out>/ch3_overfitting.json`` (the History) and ``overfitting.png`` (the
book's four plots), ``learning_curves.png`` and
``misclassified.png`` (the first 40 test digits the final network gets wrong).
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Network  # noqa: E402
from nndl import cli  # noqa: E402
from nndl.diagnostics import misclassified  # noqa: E402

NAME = "ch3_overfitting"
MAX_SHOWN = 40  # misclassified test digits kept (with their pixels) and drawn


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=cli.positive_int, default=400)
    p.add_argument("--train-size", type=cli.positive_int, default=1000, help="training images (default 1000)")
    p.add_argument("--eval-size", type=cli.positive_int, default=10000, help="test images monitored (default all)")
    p.add_argument("--eta", type=cli.number(0.0, True), default=0.5)
    p.add_argument("--lmbda", type=cli.number(0.0, False), default=0.0, help="L2 strength (the book's second run: 0.1)")
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=10)
    p.add_argument("--init", choices=["large", "default"], default="large")
    p.add_argument("--seed", type=cli.nonneg_int, default=12345678)
    p.add_argument("--plot-from", type=cli.nonneg_int, default=200,
                   help="first epoch of the training-cost and test-accuracy panels of "
                        "overfitting.png (the book starts them at 200, the others at 0)")
    p.add_argument("--quick", action="store_true", help="10 epochs, 1,000 test images")
    cli.add_results_options(p, NAME, data=True)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.epochs, args.eval_size = min(args.epochs, 10), min(args.eval_size, 1000)
    return args


def run(args):
    from nndl.data import load_mnist

    training, _, test = load_mnist(args.data)
    training = (training[0][:args.train_size], training[1][:args.train_size])
    test = (test[0][:args.eval_size], test[1][:args.eval_size])
    net = Network([784, 30, 10], init=args.init, seed=args.seed)
    start = time.perf_counter()
    history = net.SGD(training, args.epochs, args.mini_batch_size, args.eta, lmbda=args.lmbda,
                      evaluation_data=test, monitor_evaluation_cost=True,
                      monitor_evaluation_accuracy=True, monitor_training_cost=True,
                      monitor_training_accuracy=True, verbose=False)
    seconds = time.perf_counter() - start
    idx, predicted, labels = misclassified(net, test)
    idx, predicted, labels = idx[:MAX_SHOWN], predicted[:MAX_SHOWN], labels[:MAX_SHOWN]
    return {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
            "history": history.to_dict(), "seconds": seconds,
            "misclassified": {"index": idx.tolist(), "predicted": predicted.tolist(),
                              "label": labels.tolist(),  # and the digits, as 0-255 grey levels
                              "pixels": np.rint(255 * test[0][idx]).astype(int).tolist()}}


def report(results):
    h = results["history"]
    acc, n_ev, n_tr = h["evaluation_accuracy"], h["n_evaluation"], h["n_training"]
    best = max(range(len(acc)), key=acc.__getitem__)
    low = min(range(len(h["evaluation_cost"])), key=h["evaluation_cost"].__getitem__)
    print(f"{len(acc)} epochs on {n_tr} images: test accuracy {100 * acc[-1] / n_ev:.2f}% at the end, "
          f"best {100 * acc[best] / n_ev:.2f}% (epoch {best}); training accuracy "
          f"{100 * h['training_accuracy'][-1] / n_tr:.2f}%; test cost lowest at epoch {low}")


def plot(results, out):
    from nndl import plots

    c = results["config"]
    title = (f"[784, 30, 10], {c['train_size']} training images, eta {c['eta']}, "
             f"lambda {c['lmbda']}")
    start = c["plot_from"] if c["plot_from"] < c["epochs"] else 0
    paths = [plots.monitors(results["history"], os.path.join(out, "overfitting.png"),
                            start=(start, start, 0, 0), title=title),
             plots.learning_curves(results["history"], os.path.join(out, "learning_curves.png"),
                                   title=title)]
    wrong = results["misclassified"]
    if wrong["index"]:
        paths.append(plots.misclassified_digits(
            np.asarray(wrong["pixels"]) / 255, wrong["predicted"], wrong["label"],
            os.path.join(out, "misclassified.png")))
    return paths


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot, report)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
