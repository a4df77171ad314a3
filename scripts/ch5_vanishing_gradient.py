#!/usr/bin/env python
"""Chapter 5: the vanishing gradient problem, as the speed of learning per hidden layer.

The book's experiment (fig/generate_gradient.py): [784, 30, ..., 30, 10] sigmoid
networks with 2, 3 and 4 hidden layers, cross-entropy cost, weights N(0, 1/n_in), are
trained on the first 1,000 MNIST training images with full-batch gradient descent
(mini-batches of 1,000, eta 0.1, lambda 5.0) for 500 epochs.  Before every epoch, and
once at the end, ‖∂C/∂b^l‖ is measured for each hidden layer l, with C averaged over the
same 1,000 images.  The first hidden layer learns about 5x more slowly than the second
(2 hidden layers) and ~100x more slowly than the last (4 hidden layers).

    python scripts/ch5_vanishing_gradient.py                 # the book's figures (~1 min)
    python scripts/ch5_vanishing_gradient.py --quick         # a few seconds
    python scripts/ch5_vanishing_gradient.py --from-json runs/ch5_vanishing_gradient/ch5_vanishing_gradient.json

Writes ``<out>/ch5_vanishing_gradient.json`` (the norms) and one
``speed_of_learning_<k>_layers.png`` per depth.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Network  # noqa: E402
from nndl import cli  # noqa: E402
from nndl.diagnostics import SpeedOfLearning  # noqa: E402

NAME = "ch5_vanishing_gradient"
# The book's initial norms (chapter 5 text), for comparison.
BOOK_INITIAL = {2: [0.07, 0.31], 3: [0.012, 0.060, 0.283], 4: [0.003, 0.017, 0.070, 0.285]}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden-layers", default="2,3,4", help="depths to compare (default 2,3,4)")
    p.add_argument("--width", type=cli.positive_int, default=30, help="neurons per hidden layer (default 30)")
    p.add_argument("--epochs", type=cli.positive_int, default=500)
    p.add_argument("--train-size", type=cli.positive_int, default=1000,
                   help="training images, also the batch the norms are measured on (default 1000)")
    p.add_argument("--eta", type=cli.number(0.0, True), default=0.1)
    p.add_argument("--lmbda", type=cli.number(0.0, False), default=5.0)
    p.add_argument("--seed", type=cli.nonneg_int, default=12345678)
    p.add_argument("--quick", action="store_true", help="20 epochs on 200 images")
    cli.add_results_options(p, NAME, data=True)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.epochs, args.train_size = min(args.epochs, 20), min(args.train_size, 200)
    args.hidden_layers = cli.convert(p, "--hidden-layers", args.hidden_layers, cli.int_list)
    return args


def run(args):
    from nndl.data import load_mnist

    (x, y), _, _ = load_mnist(args.data)
    x, y = x[:args.train_size], y[:args.train_size]
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
               "depths": {}}
    for depth in args.hidden_layers:
        sizes = [784] + [args.width] * depth + [10]
        net = Network(sizes, seed=args.seed)
        speed = SpeedOfLearning(x, y, net)
        start = time.perf_counter()
        net.SGD((x, y), args.epochs, len(x), args.eta, lmbda=args.lmbda, verbose=False,
                callback=speed)
        results["depths"][str(depth)] = {"sizes": sizes, "norms": speed.norms,
                                         "seconds": time.perf_counter() - start}
        report(depth, speed.norms)
    return results


def report(depth, norms):
    fmt = lambda row: "[" + ", ".join(f"{v:.3g}" for v in row) + "]"  # noqa: E731
    book = BOOK_INITIAL.get(depth)
    print(f"{depth} hidden layers: initial ‖∂C/∂b^l‖ {fmt(norms[0])}"
          + (f" (book: {book})" if book and len(book) == len(norms[0]) else ""))
    print(f"{'':16}after {len(norms) - 1} epochs {fmt(norms[-1])}")


def report_saved(results):
    for depth, r in results["depths"].items():
        report(int(depth), r["norms"])


def plot(results, out):
    from nndl import plots

    paths = []
    for depth, r in results["depths"].items():
        paths.append(plots.speed_of_learning(
            r["norms"], os.path.join(out, f"speed_of_learning_{depth}_layers.png"),
            title=f"Speed of learning: {depth} hidden layers {r['sizes']}"))
    return paths


def main(argv=None):
    args = parse_args(argv)
    # run() reports each depth as it finishes; a redraw reports the saved norms.
    return cli.results_then_plots(NAME, args, run, plot,
                                  report=report_saved if args.from_json else None)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
