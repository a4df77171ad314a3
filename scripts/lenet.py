#!/usr/bin/env python
"""A LeNet-5-style convolutional network on MNIST, from nndl's chapter 6 layers.

MNIST's 28 × 28 digits are padded with zeros to 32 × 32, as LeCun et al. (1998) did,
and go through

    Conv2D(1 -> 6, 5×5) ReLU -> MaxPool 2×2 -> Conv2D(6 -> 16, 5×5) ReLU -> MaxPool 2×2
    -> Dense(400 -> 120) ReLU -> Dense(120 -> 84) ReLU -> Dense(84 -> 10) softmax

(6@28×28 -> 6@14×14 -> 16@10×10 -> 16@5×5 -> 120 -> 84 -> 10), trained with the
log-likelihood cost, mini-batches of 32, momentum 0.9, eta 0.01, lambda 0.1 by default
(``--optimizer sgd|momentum|adam``).  Weights start N(0, 2/fan_in) with zero biases
(He et al., 2015): with nndl's default N(0, 1) biases, ReLU units start half dead and
plain SGD barely moves.  Original LeNet-5 used scaled tanh units, trainable
subsampling and RBF outputs; ReLU, max-pooling and softmax are chapter 6's choices.

    python scripts/lenet.py                       # 5 epochs on 50,000 images: 98.9% on test
    python scripts/lenet.py --quick               # 1 epoch on 5,000 images: ~93% on 1,000
    python scripts/lenet.py --optimizer adam --epochs 2

Measured on a 2-core machine (float32, one BLAS thread): ~15 s per epoch of 50,000
images; test accuracy 98.0, 98.2, 98.7, 98.7, 98.9% after epochs 0-4 (seed 12345).
    python scripts/lenet.py --from-json runs/lenet/lenet.json

Writes ``<out>/lenet.json`` (the History, the first layer's filters, some misclassified
digits), ``learning_curves.png``, ``conv1_filters.png`` and ``misclassified.png``;
``--save PATH`` also saves the trained network.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Conv2D, Dense, LogLikelihoodCost, MaxPool2D, Network  # noqa: E402
from nndl import cli  # noqa: E402
from nndl.diagnostics import misclassified  # noqa: E402
from nndl.optimizers import SGD, Adam, Momentum  # noqa: E402

NAME = "lenet"
MAX_SHOWN = 40
OPTIMIZERS = {"sgd": (SGD, 0.1), "momentum": (lambda: Momentum(0.9), 0.01), "adam": (Adam, 0.001)}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=cli.positive_int, default=5)
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=32)
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="momentum")
    p.add_argument("--eta", type=cli.number(0.0, True), help="default: 0.01 (momentum), 0.1 (sgd), 0.001 (adam)")
    p.add_argument("--lmbda", type=cli.number(0.0, False), default=0.1)
    p.add_argument("--train-size", type=cli.positive_int, default=50000)
    p.add_argument("--eval-size", type=cli.positive_int, default=10000, help="test images evaluated")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=cli.nonneg_int, default=12345)
    p.add_argument("--quick", action="store_true", help="1 epoch on 5,000 images, 1,000 test images")
    p.add_argument("--data", metavar="DIR",
                   help="folder holding the MNIST files (else $NNDL_DATA, then data/)")
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz)")
    cli.add_results_options(p, NAME)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    cli.check_paths(p, outputs=[("--save", args.save, (".npz", ".json"))])
    if args.quick:
        args.epochs, args.train_size = min(args.epochs, 1), min(args.train_size, 5000)
        args.eval_size = min(args.eval_size, 1000)
    if args.eta is None:
        args.eta = OPTIMIZERS[args.optimizer][1]
    return args


def he_init(rng, shape, dtype):
    """w ~ N(0, 2/fan_in), b = 0: the start that suits ReLU units (He et al., 2015)."""
    fan_in = int(np.prod(shape[1:]))                    # C·kh·kw for a filter, n_in for Dense
    w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    return w.astype(dtype), np.zeros(shape[0], dtype)


def lenet(seed=None, dtype="float32"):
    """The network, for (N, 1, 32, 32) images."""
    layers = [Conv2D(1, 6, 5, activation="relu", init=he_init),     # (N, 6, 28, 28)
              MaxPool2D(2),                                         # (N, 6, 14, 14)
              Conv2D(6, 16, 5, activation="relu", init=he_init),    # (N, 16, 10, 10)
              MaxPool2D(2),                                         # (N, 16, 5, 5)
              Dense(16 * 5 * 5, 120, "relu", init=he_init),         # (N, 120)
              Dense(120, 84, "relu", init=he_init),                 # (N, 84)
              Dense(84, 10, "softmax", init=he_init)]               # (N, 10)
    return Network(layers, cost=LogLikelihoodCost, input_shape=(1, 32, 32), dtype=dtype, seed=seed)


def pad32(x):
    """(N, 784) digits -> (N, 1, 32, 32): two pixels of zeros on every side."""
    return np.pad(x.reshape(-1, 1, 28, 28), ((0, 0), (0, 0), (2, 2), (2, 2)))


def run(args):
    from nndl.data import load_mnist

    training, _, test = load_mnist(args.data, dtype=args.dtype)
    training = (pad32(training[0][:args.train_size]), training[1][:args.train_size])
    test_images = test[0][:args.eval_size]
    test = (pad32(test_images), test[1][:args.eval_size])
    net = lenet(args.seed, args.dtype)
    start = time.perf_counter()
    optimizer = OPTIMIZERS[args.optimizer][0]()
    history = net.SGD(training, args.epochs, args.mini_batch_size, args.eta, lmbda=args.lmbda,
                      optimizer=optimizer, evaluation_data=test, monitor_evaluation_accuracy=True,
                      verbose=False,
                      callback=lambda epoch, net, h: print(
                          f"Epoch {epoch}: {h.evaluation_accuracy[-1]} / {h.n_evaluation} "
                          f"({h.epoch_seconds[-1]:.1f} s)", flush=True))
    seconds = time.perf_counter() - start
    if args.save:
        cli.write_or_rescue(net.save, args.save, "--save", "trained network")
    idx, predicted, labels = (a[:MAX_SHOWN] for a in misclassified(net, test))
    return {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
            "history": history.to_dict(), "seconds": seconds,
            "conv1_w": net.layers[0].w.round(5).tolist(),
            "misclassified": {"index": idx.tolist(), "predicted": predicted.tolist(),
                              "label": labels.tolist(),
                              "pixels": np.rint(255 * test_images[idx]).astype(int).tolist()}}


def report(results):
    h, c = results["history"], results["config"]
    acc = h["evaluation_accuracy"]
    print(f"LeNet-5 style, {c['optimizer']} eta {c['eta']}, {c['epochs']} epochs on {h['n_training']} images: "
          f"{100 * acc[-1] / h['n_evaluation']:.2f}% on {h['n_evaluation']} test images "
          f"({results['seconds']:.0f} s, {np.median(h['epoch_seconds']):.1f} s/epoch)")


def plot(results, out):
    from nndl import plots

    paths = [plots.learning_curves(results["history"], os.path.join(out, "learning_curves.png"),
                                   title="LeNet-5 style network on MNIST"),
             plots.weight_images(np.asarray(results["conv1_w"]), os.path.join(out, "conv1_filters.png"),
                                 ncols=6)]
    wrong = results["misclassified"]
    if wrong["index"]:
        paths.append(plots.misclassified_digits(np.asarray(wrong["pixels"]) / 255, wrong["predicted"],
                                                wrong["label"], os.path.join(out, "misclassified.png")))
    return paths


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot, report)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
