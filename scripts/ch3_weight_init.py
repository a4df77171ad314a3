#!/usr/bin/env python
"""Chapter 3: weight initialization, N(0, 1) against N(0, 1/n_in).

The book's experiment ("Weight initialization"): [784, 30, 10] and [784, 100, 10]
sigmoid networks, cross-entropy cost, mini-batches of 10, eta 0.1, lambda 5.0, 30
epochs on the 50,000 training images, classification accuracy on the validation data
after every epoch -- once with the "large" weights N(0, 1) of chapter 1 and once with
the default N(0, 1/n_in).  Both end near 96% (30 hidden) or 98% (100 hidden), but the
new initialization gets there much sooner: ~87% against ~93% after the first epoch.

    python scripts/ch3_weight_init.py                 # the book's two figures (a few minutes)
    python scripts/ch3_weight_init.py --hidden 30     # just the first
    python scripts/ch3_weight_init.py --quick         # seconds
    python scripts/ch3_weight_init.py --from-json runs/ch3_weight_init/ch3_weight_init.json

Writes ``<out>/ch3_weight_init.json`` and ``weight_initialization_<hidden>.png``, plus
``first_layer_weights_<hidden>.png``: the hidden neurons' learned input weights.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Network  # noqa: E402
from nndl import cli  # noqa: E402

NAME = "ch3_weight_init"
INITS = {"default": "Default initialization N(0, 1/n_in)", "large": "Large initialization N(0, 1)"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hidden", default="30,100", help="hidden-layer sizes to compare (default 30,100)")
    p.add_argument("--epochs", type=cli.positive_int, default=30)
    p.add_argument("--eta", type=cli.number(0.0, True), default=0.1)
    p.add_argument("--lmbda", type=cli.number(0.0, False), default=5.0)
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=10)
    p.add_argument("--train-size", type=cli.positive_int, default=50000)
    p.add_argument("--eval-size", type=cli.positive_int, default=10000)
    p.add_argument("--seed", type=cli.nonneg_int, default=12345678)
    p.add_argument("--quick", action="store_true", help="30 hidden, 2 epochs, 2,000 images")
    cli.add_results_options(p, NAME, data=True)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.hidden, args.epochs = "30", min(args.epochs, 2)
        args.train_size, args.eval_size = min(args.train_size, 2000), min(args.eval_size, 1000)
    args.hidden = cli.convert(p, "--hidden", args.hidden, cli.int_list)
    return args


def run(args):
    from nndl.data import load_mnist

    training, validation, _ = load_mnist(args.data)
    training = (training[0][:args.train_size], training[1][:args.train_size])
    validation = (validation[0][:args.eval_size], validation[1][:args.eval_size])
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
               "runs": {}}
    for hidden in args.hidden:
        for init in INITS:
            net = Network([784, hidden, 10], init=init, seed=args.seed)
            start = time.perf_counter()
            h = net.SGD(training, args.epochs, args.mini_batch_size, args.eta, lmbda=args.lmbda,
                        evaluation_data=validation, monitor_evaluation_accuracy=True, verbose=False)
            results["runs"][f"{hidden}/{init}"] = {
                "hidden": hidden, "init": init, "history": h.to_dict(),
                "seconds": time.perf_counter() - start,
                "first_layer_w": net.weights[0][:30].round(5).tolist()}  # the 30 neurons drawn
            print(f"[784, {hidden}, 10], {init} init: validation accuracy "
                  f"{100 * h.evaluation_accuracy[0] / h.n_evaluation:.2f}% after epoch 0, "
                  f"{100 * h.evaluation_accuracy[-1] / h.n_evaluation:.2f}% after epoch "
                  f"{len(h.evaluation_accuracy) - 1}")
    return results


def plot(results, out):
    import numpy as np

    from nndl import plots

    paths = []
    for hidden in results["config"]["hidden"]:
        series = {}
        for init, label in INITS.items():
            h = results["runs"][f"{hidden}/{init}"]["history"]
            series[label] = list(100.0 * np.asarray(h["evaluation_accuracy"]) / h["n_evaluation"])
        paths.append(plots.curves(series, os.path.join(out, f"weight_initialization_{hidden}.png"),
                                  ylabel="accuracy (%) on the validation data",
                                  title=f"Classification accuracy, [784, {hidden}, 10]"))
        w = np.asarray(results["runs"][f"{hidden}/default"]["first_layer_w"])
        paths.append(plots.weight_images(w, os.path.join(out, f"first_layer_weights_{hidden}.png")))
    return paths


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
