#!/usr/bin/env python
"""Chapter 3: more training data -- validation accuracy against the training-set size.

The book's experiment (fig/more_data.py): a [784, 30, 10] sigmoid network, cross-entropy
cost, weights N(0, 1), mini-batches of 10, eta 0.5, trained on the first 100, 200,
500, ..., 50,000 training images.  Each run sees 1,500,000 examples in all (so
1,500,000 / size epochs) with lambda = size × 0.0001 (the same λ/n for every size),
and its accuracy on the validation data is recorded.  Accuracy keeps rising with more
data, from ~70% at 100 images to ~97% at 50,000, with no sign of levelling off.

    python scripts/ch3_more_data.py                          # the book's figure (~10 minutes)
    python scripts/ch3_more_data.py --sizes 1000,10000 --examples 300000
    python scripts/ch3_more_data.py --quick                  # seconds
    python scripts/ch3_more_data.py --from-json runs/ch3_more_data/ch3_more_data.json

Writes ``<out>/ch3_more_data.json``, ``more_data.png`` and ``more_data_log.png`` (log x).
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Network  # noqa: E402
from nndl import cli  # noqa: E402

NAME = "ch3_more_data"
SIZES = "100,200,500,1000,2000,5000,10000,20000,50000"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default=SIZES, help=f"training-set sizes (default {SIZES})")
    p.add_argument("--examples", type=cli.positive_int, default=1500000,
                   help="examples each run sees: epochs = examples // size (default 1,500,000)")
    p.add_argument("--eta", type=cli.number(0.0, True), default=0.5)
    p.add_argument("--lmbda-per-example", type=cli.number(0.0, False), default=0.0001,
                   help="lambda = size × this (default 0.0001)")
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=10)
    p.add_argument("--eval-size", type=cli.positive_int, default=10000)
    p.add_argument("--seed", type=cli.nonneg_int, default=12345678)
    p.add_argument("--quick", action="store_true", help="sizes 100,200,500; 5,000 examples each")
    cli.add_results_options(p, NAME, data=True)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.sizes, args.examples = "100,200,500", min(args.examples, 5000)
        args.eval_size = min(args.eval_size, 1000)
    args.sizes = cli.convert(p, "--sizes", args.sizes, cli.int_list)
    return args


def run(args):
    from nndl.data import load_mnist

    training, validation, _ = load_mnist(args.data)
    validation = (validation[0][:args.eval_size], validation[1][:args.eval_size])
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
               "sizes": [], "accuracy": [], "epochs": [], "seconds": []}
    for size in args.sizes:
        epochs = max(1, args.examples // size)
        net = Network([784, 30, 10], init="large", seed=args.seed)
        start = time.perf_counter()
        net.SGD((training[0][:size], training[1][:size]), epochs, args.mini_batch_size, args.eta,
                lmbda=size * args.lmbda_per_example, verbose=False)
        accuracy = 100.0 * net.accuracy(validation) / len(validation[0])
        for key, value in (("sizes", size), ("accuracy", accuracy), ("epochs", epochs),
                           ("seconds", time.perf_counter() - start)):
            results[key].append(value)
        print(f"{size} training images, {epochs} epochs: {accuracy:.2f}% on the validation data "
              f"({results['seconds'][-1]:.1f} s)", flush=True)
    return results


def plot(results, out):
    from nndl import plots

    series = {"neural network": (results["sizes"], results["accuracy"])}
    kw = dict(xlabel="training set size", ylabel="accuracy (%) on the validation data", marker="o",
              title="More training data")
    return [plots.curves(series, os.path.join(out, "more_data.png"), **kw),
            plots.curves(series, os.path.join(out, "more_data_log.png"), logx=True, **kw)]


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
