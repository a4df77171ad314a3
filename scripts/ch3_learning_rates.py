#!/usr/bin/env python
"""Chapter 3: choosing the learning rate -- the training cost for eta = 0.025, 0.25, 2.5.

The book's experiment ("How to choose a neural network's hyper-parameters?",
fig/multiple_eta.py): [784, 30, 10] sigmoid networks, cross-entropy cost, weights
N(0, 1/n_in), mini-batches of 10, lambda 5.0, 30 epochs on the 50,000 training images,
the cost on the training data after every epoch.  With eta = 0.025 the cost falls
slowly; with 0.25 it falls fast and then levels; with 2.5 it oscillates from the start:
the steps overshoot the valley's bottom.

    python scripts/ch3_learning_rates.py                       # the book's figure (a few minutes)
    python scripts/ch3_learning_rates.py --etas 0.025,0.25,2.5,25
    python scripts/ch3_learning_rates.py --quick               # seconds
    python scripts/ch3_learning_rates.py --from-json runs/ch3_learning_rates/ch3_learning_rates.json

Writes ``<out>/ch3_learning_rates.json`` and ``multiple_eta.png``.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Network  # noqa: E402
from nndl import cli  # noqa: E402

NAME = "ch3_learning_rates"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--etas", default="0.025,0.25,2.5", help="learning rates (default 0.025,0.25,2.5)")
    p.add_argument("--epochs", type=cli.positive_int, default=30)
    p.add_argument("--lmbda", type=cli.number(0.0, False), default=5.0)
    p.add_argument("--hidden", type=cli.positive_int, default=30)
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=10)
    p.add_argument("--train-size", type=cli.positive_int, default=50000)
    p.add_argument("--seed", type=cli.nonneg_int, default=12345678)
    p.add_argument("--quick", action="store_true", help="3 epochs on 2,000 images")
    cli.add_results_options(p, NAME, data=True, plots="plot")
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.epochs, args.train_size = min(args.epochs, 3), min(args.train_size, 2000)
    args.etas = cli.convert(p, "--etas", args.etas, cli.number_list())
    return args


def run(args):
    from nndl.data import load_mnist

    training, _, _ = load_mnist(args.data)
    training = (training[0][:args.train_size], training[1][:args.train_size])
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
               "training_cost": {}}
    for eta in args.etas:
        net = Network([784, args.hidden, 10], seed=args.seed)
        start = time.perf_counter()
        h = net.SGD(training, args.epochs, args.mini_batch_size, eta, lmbda=args.lmbda,
                    monitor_training_cost=True, verbose=False)
        results["training_cost"][str(eta)] = h.training_cost
        print(f"eta = {eta}: training cost {h.training_cost[0]:.4f} after epoch 0, "
              f"{h.training_cost[-1]:.4f} after epoch {len(h.training_cost) - 1} "
              f"({time.perf_counter() - start:.1f} s)")
    return results


def plot(results, out):
    from nndl import plots

    series = {f"η = {eta}": cost for eta, cost in results["training_cost"].items()}
    c = results["config"]
    return [plots.curves(series, os.path.join(out, "multiple_eta.png"), ylabel="cost on the training data",
                         marker="o", title=f"[784, {c['hidden']}, 10], lambda {c['lmbda']}")]


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
