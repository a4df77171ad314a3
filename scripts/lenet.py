#!/usr/bin/env python
"""A LeNet-5-style convolutional network on MNIST or CIFAR-10, from nndl's chapter 6 layers.

    Conv2D(C -> 6, 5×5) ReLU -> MaxPool 2×2 -> Conv2D(6 -> 16, 5×5) ReLU -> MaxPool 2×2
    -> Dense(400 -> 120) ReLU -> Dense(120 -> 84) ReLU -> Dense(84 -> 10) softmax

(6@28×28 -> 6@14×14 -> 16@10×10 -> 16@5×5 -> 120 -> 84 -> 10) on 32 × 32 images with
C channels, trained with the log-likelihood cost (softmax and the log-likelihood are
the cross-entropy loss of other libraries).  Original LeNet-5 used scaled tanh units,
trainable subsampling and RBF outputs; ReLU, max-pooling and softmax are chapter 6's
choices.  After every epoch it prints the test accuracy, and at the end the accuracy
on each class.

``--dataset mnist`` (the default): MNIST's 28 × 28 digits padded with zeros to 32 × 32,
as LeCun et al. (1998) did; mini-batches of 32, momentum 0.9, eta 0.01, lambda 0.1 by
default (``--optimizer sgd|momentum|adam``).  Weights start N(0, 2/fan_in) with zero
biases (He et al., 2015): with nndl's default N(0, 1) biases, ReLU units start half
dead and plain SGD barely moves.

``--dataset cifar10``: CIFAR-10's 32 × 32 colour photographs (:mod:`nndl.cifar`), set up
as the classic PyTorch tutorial trains this network: pixels scaled to [-1, 1]
((x - 0.5)/0.5), weights and biases drawn U(-1/√fan_in, 1/√fan_in) (PyTorch's default),
SGD with momentum 0.9 and eta 0.001 on mini-batches of 4, no regularization, 2 epochs.
nndl's Momentum (v → μv - η g, p → p + v) is PyTorch's (v → μv + g, p → p - η v) with
v scaled by -η, and g is the mini-batch's average gradient, as the mean cross-entropy
loss gives, so the steps are the same.  The tutorial reports about 54% on the 10,000
test images after its 2 epochs.  No CIFAR-10 files are reachable from nndl's build
machines, so no accuracy for it is quoted here.

    python scripts/lenet.py                       # 5 epochs on 50,000 digits: 98.9% on test
    python scripts/lenet.py --quick               # 1 epoch on 5,000 images, 1,000 test images
    python scripts/lenet.py --optimizer adam --epochs 2
    python scripts/lenet.py --dataset cifar10     # the tutorial's 2 epochs on 50,000 photos
    python scripts/lenet.py --from-json runs/lenet/lenet.json

Measured on a 2-core machine (MNIST, float32, one BLAS thread): ~15 s per epoch of
50,000 images; test accuracy 98.0, 98.2, 98.7, 98.7, 98.9% after epochs 0-4 (seed 12345).

Writes ``<out>/lenet.json`` (the History, the per-class accuracy, the first layer's
filters, some misclassified images), ``learning_curves.png``, ``conv1_filters.png``
and, for MNIST, ``misclassified.png``; ``--save PATH`` also saves the trained network.
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
# per data set: channels, class names, and the defaults of the options left unset
DATASETS = {
    "mnist": {"channels": 1, "classes": [str(d) for d in range(10)], "epochs": 5,
              "mini_batch_size": 32, "lmbda": 0.1, "eta": {}},
    "cifar10": {"channels": 3, "classes": None, "epochs": 2,          # classes: nndl.cifar.CLASSES
                "mini_batch_size": 4, "lmbda": 0.0, "eta": {"momentum": 0.001}},
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", choices=sorted(DATASETS), default="mnist")
    p.add_argument("--epochs", type=cli.positive_int, help="default: 5 (mnist), 2 (cifar10)")
    p.add_argument("--mini-batch-size", type=cli.positive_int, help="default: 32 (mnist), 4 (cifar10)")
    p.add_argument("--optimizer", choices=sorted(OPTIMIZERS), default="momentum")
    p.add_argument("--eta", type=cli.number(0.0, True), help="default: 0.01 (momentum; 0.001 on cifar10), "
                                                         "0.1 (sgd), 0.001 (adam)")
    p.add_argument("--lmbda", type=cli.number(0.0, False), help="default: 0.1 (mnist), 0 (cifar10)")
    p.add_argument("--train-size", type=cli.positive_int, default=50000)
    p.add_argument("--eval-size", type=cli.positive_int, default=10000, help="test images evaluated")
    p.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    p.add_argument("--seed", type=cli.nonneg_int, default=12345)
    p.add_argument("--quick", action="store_true", help="1 epoch on 5,000 images, 1,000 test images")
    p.add_argument("--data", metavar="DIR",
                   help="folder holding the data set's files (else $NNDL_DATA, then data/)")
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz)")
    cli.add_results_options(p, NAME)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    cli.check_paths(p, outputs=[("--save", args.save, (".npz", ".json"))])
    defaults = DATASETS[args.dataset]
    for option in ("epochs", "mini_batch_size", "lmbda"):
        if getattr(args, option) is None:
            setattr(args, option, defaults[option])
    if args.eta is None:
        args.eta = defaults["eta"].get(args.optimizer, OPTIMIZERS[args.optimizer][1])
    if args.quick:
        args.epochs, args.train_size = min(args.epochs, 1), min(args.train_size, 5000)
        args.eval_size = min(args.eval_size, 1000)
    return args


def he_init(rng, shape, dtype):
    """w ~ N(0, 2/fan_in), b = 0: the start that suits ReLU units (He et al., 2015)."""
    fan_in = int(np.prod(shape[1:]))                    # C·kh·kw for a filter, n_in for Dense
    w = rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)
    return w.astype(dtype), np.zeros(shape[0], dtype)


def uniform_init(rng, shape, dtype):
    """w, b ~ U(-1/√fan_in, 1/√fan_in): PyTorch's default start for Conv2d and Linear."""
    bound = 1 / np.sqrt(np.prod(shape[1:]))
    w = rng.uniform(-bound, bound, shape)
    return w.astype(dtype), rng.uniform(-bound, bound, shape[0]).astype(dtype)


def lenet(seed=None, dtype="float32", channels=1, init=he_init):
    """The network, for (N, channels, 32, 32) images."""
    layers = [Conv2D(channels, 6, 5, activation="relu", init=init),  # (N, 6, 28, 28)
              MaxPool2D(2),                                         # (N, 6, 14, 14)
              Conv2D(6, 16, 5, activation="relu", init=init),       # (N, 16, 10, 10)
              MaxPool2D(2),                                         # (N, 16, 5, 5)
              Dense(16 * 5 * 5, 120, "relu", init=init),            # (N, 120)
              Dense(120, 84, "relu", init=init),                    # (N, 84)
              Dense(84, 10, "softmax", init=init)]                  # (N, 10)
    return Network(layers, cost=LogLikelihoodCost, input_shape=(channels, 32, 32), dtype=dtype,
                   seed=seed)


def pad32(x):
    """(N, 784) digits -> (N, 1, 32, 32): two pixels of zeros on every side."""
    return np.pad(x.reshape(-1, 1, 28, 28), ((0, 0), (0, 0), (2, 2), (2, 2)))


def load(args):
    """(training, test) as (N, C, 32, 32) images and labels, cut to the sizes asked for."""
    if args.dataset == "cifar10":
        from nndl.cifar import load_cifar10

        training, test = load_cifar10(args.data, dtype=args.dtype)
        shift = np.dtype(args.dtype).type(0.5)
        prepare = lambda x: (x - shift) / shift                    # noqa: E731  [0, 1] -> [-1, 1]
    else:
        from nndl.data import load_mnist

        training, _, test = load_mnist(args.data, dtype=args.dtype)
        prepare = pad32
    return ((prepare(training[0][:args.train_size]), training[1][:args.train_size]),
            (prepare(test[0][:args.eval_size]), test[1][:args.eval_size]))


def per_class_accuracy(net, data, n_classes=10):
    """(correct, total) per class: how many of each class's examples the net gets right."""
    x, labels = data
    predicted = net.predict(x)
    total = np.bincount(labels, minlength=n_classes)
    correct = np.bincount(labels[predicted == labels], minlength=n_classes)
    return correct.tolist(), total.tolist()


def run(args):
    training, test = load(args)
    cifar = args.dataset == "cifar10"
    if cifar:
        from nndl.cifar import CLASSES
    net = lenet(args.seed, args.dtype, DATASETS[args.dataset]["channels"],
                uniform_init if cifar else he_init)
    start = time.perf_counter()
    optimizer = OPTIMIZERS[args.optimizer][0]()
    history = net.SGD(training, args.epochs, args.mini_batch_size, args.eta, lmbda=args.lmbda,
                      optimizer=optimizer, evaluation_data=test, monitor_evaluation_accuracy=True,
                      verbose=False,
                      callback=lambda epoch, net, h: print(
                          f"Epoch {epoch}: {h.evaluation_accuracy[-1]} / {h.n_evaluation} "
                          f"({100 * h.evaluation_accuracy[-1] / h.n_evaluation:.1f}%, "
                          f"{h.epoch_seconds[-1]:.1f} s)", flush=True))
    seconds = time.perf_counter() - start
    if args.save:
        cli.write_or_rescue(net.save, args.save, "--save", "trained network")
    correct, total = per_class_accuracy(net, test)
    idx, predicted, labels = (a[:MAX_SHOWN] for a in misclassified(net, test))
    wrong = {"index": idx.tolist(), "predicted": predicted.tolist(), "label": labels.tolist()}
    if not cifar:  # the digits, unpadded, for the misclassified.png mosaic
        wrong["pixels"] = np.rint(255 * test[0][idx, 0, 2:30, 2:30].reshape(len(idx), -1)).astype(int).tolist()
    return {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json", "data")},
            "history": history.to_dict(), "seconds": seconds,
            "per_class": {"classes": list(CLASSES) if cifar else DATASETS["mnist"]["classes"],
                          "correct": correct, "total": total},
            "conv1_w": net.layers[0].w.round(5).tolist(), "misclassified": wrong}


def report(results):
    h, c = results["history"], results["config"]
    acc = h["evaluation_accuracy"]
    data = {"mnist": "MNIST", "cifar10": "CIFAR-10"}[c.get("dataset", "mnist")]
    print(f"LeNet-5 style on {data}, {c['optimizer']} eta {c['eta']}, {c['epochs']} epochs on "
          f"{h['n_training']} images: {100 * acc[-1] / h['n_evaluation']:.2f}% on "
          f"{h['n_evaluation']} test images ({results['seconds']:.0f} s, "
          f"{np.median(h['epoch_seconds']):.1f} s/epoch)")
    if "per_class" in results:
        table = results["per_class"]
        width = max(len(name) for name in table["classes"])
        print(f"{'class':<{width}}  accuracy")
        for name, right, n in zip(table["classes"], table["correct"], table["total"]):
            print(f"{name:<{width}}  " + (f"{100 * right / n:5.1f}% ({right} / {n})" if n else "   - (none)"))


def plot(results, out):
    from nndl import plots

    data = {"mnist": "MNIST", "cifar10": "CIFAR-10"}[results["config"].get("dataset", "mnist")]
    paths = [plots.learning_curves(results["history"], os.path.join(out, "learning_curves.png"),
                                   title=f"LeNet-5 style network on {data}"),
             plots.weight_images(np.asarray(results["conv1_w"]), os.path.join(out, "conv1_filters.png"),
                                 ncols=6)]
    wrong = results["misclassified"]
    if wrong["index"] and "pixels" in wrong:
        paths.append(plots.misclassified_digits(np.asarray(wrong["pixels"]) / 255, wrong["predicted"],
                                                wrong["label"], os.path.join(out, "misclassified.png")))
    return paths


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot, report)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
