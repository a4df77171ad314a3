#!/usr/bin/env python
"""Chapters 1 and 3 on real MNIST: fully connected sigmoid networks.

With no arguments this is chapter 1's experiment -- a [784, 30, 10] network, quadratic
cost, weights N(0, 1), 30 epochs of mini-batches of 10 at eta = 3.0 -- printing the
test accuracy after every epoch as the book does ("Epoch 0: 9129 / 10000").
``--preset`` picks another of the book's experiments; any option overrides it.

    python scripts/mnist_mlp.py                       # chapter 1, ~95.4%
    python scripts/mnist_mlp.py --preset ch3-l2       # cross-entropy + L2, ~96.5%
    python scripts/mnist_mlp.py --sizes 784,100,10 --cost cross-entropy --eta 0.5 \
        --lmbda 5 --epochs 30 --plot curves.png --save net.npz
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Dense, Dropout, Network, NNDLError  # noqa: E402
from nndl import cli  # noqa: E402

# The book's experiments (chapter, figure it reports, which data it is measured on).
PRESETS = {
    "ch1": dict(sizes="784,30,10", cost="quadratic", eta=3.0, epochs=30, init="large",
                eval="test", book=95.42, about="chapter 1: [784,30,10], quadratic cost, eta 3.0"),
    "ch1-100": dict(sizes="784,100,10", cost="quadratic", eta=3.0, epochs=30, init="large",
                    eval="test", book=96.59, about="chapter 1: 100 hidden neurons"),
    "ch3-ce": dict(sizes="784,30,10", cost="cross-entropy", eta=0.5, epochs=30, init="large",
                   eval="test", book=95.49, about="chapter 3: cross-entropy cost, eta 0.5"),
    "ch3-l2": dict(sizes="784,30,10", cost="cross-entropy", eta=0.5, epochs=30, lmbda=5.0,
                   init="large", eval="test", book=96.49,
                   about="chapter 3: cross-entropy + L2 regularization, lambda 5.0"),
    "ch3-100": dict(sizes="784,100,10", cost="cross-entropy", eta=0.5, epochs=30, lmbda=5.0,
                    init="large", eval="validation", book=97.92,
                    about="chapter 3: [784,100,10], lambda 5.0, eta 0.5 (validation data)"),
    "ch3-100-60": dict(sizes="784,100,10", cost="cross-entropy", eta=0.1, epochs=60, lmbda=5.0,
                       init="large", eval="validation", book=98.04,
                       about="chapter 3: [784,100,10], 60 epochs, eta 0.1, lambda 5.0 (validation)"),
}
DEFAULTS = dict(sizes="784,30,10", cost="quadratic", eta=3.0, epochs=30, init="large",
                eval="test", lmbda=0.0, mini_batch_size=10)


N_TRAINING = 50_000  # the book's training set: MNIST's first 50,000 training images
ACTIVATIONS = ("sigmoid", "tanh", "relu")


def parse_args(argv=None):
    """(args, config): every option checked, every output path tried, before any data loads."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="ch1",
                   help="one of the book's experiments (default ch1)")
    p.add_argument("--sizes", type=cli.int_list, help="layer sizes, e.g. 784,30,10")
    p.add_argument("--epochs", type=cli.positive_int)
    p.add_argument("--mini-batch-size", type=cli.positive_int)
    p.add_argument("--eta", type=cli.number(0.0, True), help="learning rate")
    p.add_argument("--cost", choices=["quadratic", "cross-entropy", "log-likelihood"])
    p.add_argument("--lmbda", type=cli.number(0.0, False), help="L2 regularization strength")
    p.add_argument("--l1", type=cli.number(0.0, False),
                   help="L1 regularization strength (instead of L2)")
    p.add_argument("--dropout", type=cli.number(0.0, False, 1.0), default=0.0,
                   help="dropout probability on hidden layers")
    p.add_argument("--activation", choices=ACTIVATIONS, default="sigmoid",
                   help="hidden activation (default sigmoid)")
    p.add_argument("--init", choices=["default", "large"],
                   help="weights N(0,1/n_in) (default) or N(0,1) (large, chapter 1)")
    p.add_argument("--seed", type=cli.nonneg_int, default=12345)
    p.add_argument("--dtype", choices=["float64", "float32"],
                   help="default float64, or float32 with --backend cupy")
    p.add_argument("--backend", choices=["numpy", "cupy"],
                   help="numpy (CPU) or cupy (GPU); default $NNDL_BACKEND, else numpy")
    p.add_argument("--early-stopping", type=cli.nonneg_int, default=0, metavar="N",
                   help="stop after N epochs without a better evaluation accuracy")
    p.add_argument("--schedule", type=cli.nonneg_int, default=0, metavar="N",
                   help="halve eta after N epochs without improvement; stop at eta/128")
    p.add_argument("--eval", choices=["test", "validation"], help="data to report accuracy on")
    p.add_argument("--train-size", type=cli.positive_int,
                   help=f"use only the first N training images (1..{N_TRAINING})")
    p.add_argument("--data", metavar="DIR",
                   help="folder holding the MNIST files (beats $NNDL_DATA; else data/)")
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz or .json)")
    p.add_argument("--plot", metavar="PATH", help="write learning curves to this PNG")
    p.add_argument("--json", metavar="PATH", help="write the per-epoch results as JSON")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="write a checkpoint (.npz) after every epoch, atomically")
    p.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint if it exists (same result as an unbroken run)")
    p.add_argument("--monitor-cost", action="store_true", help="also compute costs each epoch")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    if args.resume and not args.checkpoint:
        p.error("--resume needs --checkpoint PATH")
    config = dict(DEFAULTS)
    config.update(PRESETS[args.preset])
    config["changed"] = []
    for key in ("sizes", "epochs", "mini_batch_size", "eta", "cost", "lmbda", "init", "eval"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
            config["changed"].append(key)
    config["regularization"] = "L2"
    if args.l1 is not None:
        if args.lmbda:
            p.error("--lmbda (L2) and --l1 are alternatives: give one")
        config["lmbda"], config["regularization"] = args.l1, "L1"
        config["changed"].append("l1")
    if isinstance(config["sizes"], str):
        config["sizes"] = cli.int_list(config["sizes"])
    sizes = config["sizes"]
    if len(sizes) < 2 or sizes[0] != 784 or sizes[-1] != 10:
        p.error(f"--sizes: expected 784 inputs (28x28 pixels), then hidden sizes, then 10 "
                f"outputs (the digits), such as 784,30,10; got {','.join(map(str, sizes))}")
    if args.train_size is not None and args.train_size > N_TRAINING:
        p.error(f"--train-size: expected 1..{N_TRAINING}, got {args.train_size}")
    n = args.train_size or N_TRAINING
    if config["mini_batch_size"] > n:
        p.error(f"--mini-batch-size {config['mini_batch_size']} is larger than the {n} "
                "training images")
    cli.check_paths(p, args.data, [("--save", args.save, (".npz", ".json")),
                                   ("--checkpoint", args.checkpoint, None),
                                   ("--plot", args.plot, None),
                                   ("--json", args.json, None)])
    return args, config


def header(config, args, n):
    """The run's settings as they take effect, overrides included (two lines)."""
    about = PRESETS[args.preset]["about"]
    changed = ", ".join(f"--{k.replace('_', '-')}" for k in config["changed"])
    reg = f"{config['regularization']} {config['lmbda']}" if config["lmbda"] else "none"
    return (f"nndl: preset {args.preset} ({about})" + (f", changed by {changed}" if changed else "")
            + f"\nsizes {config['sizes']}, {args.activation} hidden, cost {config['cost']}, "
            f"eta {config['eta']}, regularization {reg}, dropout {args.dropout}, "
            f"mini-batch {config['mini_batch_size']}, {config['epochs']} epoch"
            f"{'s' if config['epochs'] != 1 else ''}, {n} training "
            f"images, init {config['init']}, accuracy on {config['eval']} data, "
            f"seed {args.seed}, {args.dtype}")


def build(config, args):
    sizes = config["sizes"]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        last = k == len(sizes) - 2
        act = ("softmax" if config["cost"] == "log-likelihood" else "sigmoid") if last else args.activation
        layers.append(Dense(n_in, n_out, activation=act, init=config["init"]))
        if args.dropout and not last:
            layers.append(Dropout(args.dropout))
    return Network(layers, cost=config["cost"], dtype=args.dtype, seed=args.seed,
                   backend=args.backend)


def main(argv=None):
    args, config = parse_args(argv)
    from nndl import backend
    from nndl.data import load_mnist

    xp = backend.array_module(args.backend)  # without CuPy or a GPU: one clear error, at once
    args.dtype = args.dtype or str(backend.default_dtype(xp))
    net = build(config, args)  # before the data: a bad layer is reported at once
    print(header(config, args, args.train_size or N_TRAINING), flush=True)
    training, validation, test = load_mnist(args.data, dtype=args.dtype)
    if args.train_size:
        training = (training[0][:args.train_size], training[1][:args.train_size])
    evaluation = test if config["eval"] == "test" else validation
    start = time.perf_counter()
    history = net.SGD(training, config["epochs"], config["mini_batch_size"], config["eta"],
                      lmbda=config["lmbda"], regularization=config["regularization"],
                      evaluation_data=evaluation, monitor_evaluation_accuracy=True,
                      monitor_evaluation_cost=args.monitor_cost,
                      monitor_training_cost=args.monitor_cost,
                      monitor_training_accuracy=args.monitor_cost,
                      early_stopping_n=args.early_stopping, schedule_n=args.schedule,
                      verbose=False, progress=not args.no_progress,
                      checkpoint=args.checkpoint, resume=args.resume,
                      callback=lambda epoch, net, h: print(
                          f"Epoch {epoch}: {h.evaluation_accuracy[-1]} / {h.n_evaluation}"
                          f"  ({h.epoch_seconds[-1]:.2f} s)", flush=True))
    wall = time.perf_counter() - start
    best = history.best_epoch()
    n_eval = history.n_evaluation
    if best is not None:
        acc = history.evaluation_accuracy[best]
        book = PRESETS[args.preset]["book"]
        print(f"Best: epoch {best}, {acc} / {n_eval} = {100.0 * acc / n_eval:.2f}% on {config['eval']} data "
              f"(final {100.0 * history.evaluation_accuracy[-1] / n_eval:.2f}%; book: "
              f"{book}%{' with the preset unchanged' if config['changed'] else ''}); {wall:.1f} s, "
              f"{np.median(history.epoch_seconds):.2f} s/epoch median")
    # Each write below was tried before training; one that still fails is reported, the
    # network goes to a fallback file, and the other outputs are still written.
    ok = True
    if args.save:
        ok &= cli.write_or_rescue(net.save, args.save, "--save", "trained network")
        if ok:
            print(f"saved the network to {args.save}")
    if args.json:
        doc = {"config": {**{k: v for k, v in config.items() if k != "changed"},
                          "activation": args.activation, "dropout": args.dropout,
                          "seed": args.seed, "dtype": args.dtype, "preset": args.preset},
               "history": history.to_dict(), "wall_seconds": wall}
        ok &= cli.write_or_rescue(lambda path: cli.write_json(doc, path), args.json, "--json",
                                  "results (JSON)")
    if args.plot:
        from nndl import plots

        try:
            plots.learning_curves(history, args.plot, title=f"nndl {args.preset}: {config['sizes']}")
            print(f"wrote learning curves to {args.plot}")
        except NNDLError as e:
            print(f"{cli.prog()}: error: --plot: {e}", file=sys.stderr)
            ok = False
    return 0 if ok else 1


if __name__ == "__main__":
    cli.run_script(main)
