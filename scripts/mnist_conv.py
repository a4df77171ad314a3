#!/usr/bin/env python
"""Chapter 6's experiments: from one hidden layer to an ensemble of convolutional nets.

Each ``--preset`` is one of the chapter's networks with the book's hyper-parameters
(mini-batch 10; the figure is the test accuracy at the epoch of best validation
accuracy, as the book reports it):

    preset     network (book)                                               book
    fc100      FC100 sigmoid, softmax; 60 epochs, eta 0.1                   97.80%
    conv1      ConvPool(20,1,5,5), FC100, softmax; sigmoid, 60, 0.1         98.78%
    conv2      + ConvPool(40,20,5,5)                                        99.06%
    relu       conv2, all ReLU, eta 0.03, lambda 0.1                        99.23%
    expanded   relu, on the expanded training set (250,000 images)          99.37%
    two-fc     expanded, + a second FC100                                   99.43%
    fc300      expanded, two FC300                                          99.48%
    fc1000     expanded, two FC1000                                         99.47%
    dropout    expanded, two FC1000, dropout 0.5 on both and the softmax,   99.60%
               40 epochs, eta 0.03, no L2 (network3's dropout, not inverted)
    ensemble   plurality vote of 5 dropout nets                             99.67%

    python scripts/mnist_conv.py --preset conv1
    python scripts/mnist_conv.py --preset conv1 --epochs 2 --train-size 10000 --plot conv1.png

The full runs take hours on a CPU (conv1: about a minute per epoch on two cores);
``--epochs`` and ``--train-size`` make short ones.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import cli  # noqa: E402

# Every option and output path is checked before any data loads or any kernel compiles,
# so a mistyped option fails within a second.
N_TRAINING = 50_000  # the book's training set: MNIST's first 50,000 training images


def _conv_layers(act, two_conv=True, book_init=False):
    from nndl.network3 import ConvPoolLayer

    layers = [ConvPoolLayer(image_shape=(10, 1, 28, 28), filter_shape=(20, 1, 5, 5),
                            poolsize=(2, 2), activation_fn=act, book_init=book_init)]
    if two_conv:
        layers.append(ConvPoolLayer(image_shape=(10, 20, 12, 12), filter_shape=(40, 20, 5, 5),
                                    poolsize=(2, 2), activation_fn=act, book_init=book_init))
    return layers


def _build(preset, book_init):
    """The preset's layers (a fresh, unbuilt list each call)."""
    from nndl.network3 import FullyConnectedLayer, ReLU, SoftmaxLayer, sigmoid

    fc = lambda n_in, n_out, act, p=0.0: FullyConnectedLayer(n_in, n_out, act, p_dropout=p,
                                                              book_init=book_init)
    if preset == "fc100":
        return [fc(784, 100, sigmoid), SoftmaxLayer(100, 10)]
    if preset == "conv1":
        return _conv_layers(sigmoid, False, book_init) + [fc(20 * 12 * 12, 100, sigmoid),
                                                          SoftmaxLayer(100, 10)]
    if preset == "conv2":
        return _conv_layers(sigmoid, True, book_init) + [fc(40 * 4 * 4, 100, sigmoid), SoftmaxLayer(100, 10)]
    if preset in ("relu", "expanded"):
        return _conv_layers(ReLU, True, book_init) + [fc(640, 100, ReLU), SoftmaxLayer(100, 10)]
    if preset in ("two-fc", "fc300", "fc1000"):
        h = {"two-fc": 100, "fc300": 300, "fc1000": 1000}[preset]
        return _conv_layers(ReLU, True, book_init) + [fc(640, h, ReLU), fc(h, h, ReLU), SoftmaxLayer(h, 10)]
    if preset in ("dropout", "ensemble"):
        # network3's dropout (kept units unscaled in training, scaled by 1 - p at
        # evaluation): inverted dropout's twice-as-large steps at the book's eta can kill
        # the second conv layer in the first mini-batches (seed 0 does).
        drop = lambda n_in, n_out: FullyConnectedLayer(n_in, n_out, ReLU, p_dropout=0.5,
                                                       book_init=book_init, book_dropout=True)
        return _conv_layers(ReLU, True, book_init) + [
            drop(640, 1000), drop(1000, 1000), SoftmaxLayer(1000, 10, p_dropout=0.5, book_dropout=True)]
    raise KeyError(preset)


# preset -> (epochs, eta, lmbda, expanded data, book's test accuracy %)
PRESETS = {
    "fc100": (60, 0.1, 0.0, False, 97.80),
    "conv1": (60, 0.1, 0.0, False, 98.78),
    "conv2": (60, 0.1, 0.0, False, 99.06),
    "relu": (60, 0.03, 0.1, False, 99.23),
    "expanded": (60, 0.03, 0.1, True, 99.37),
    "two-fc": (60, 0.03, 0.1, True, 99.43),
    "fc300": (60, 0.03, 0.1, True, 99.48),
    "fc1000": (60, 0.03, 0.1, True, 99.47),
    "dropout": (40, 0.03, 0.0, True, 99.60),
    "ensemble": (40, 0.03, 0.0, True, 99.67),
}
ENSEMBLE_SIZE = 5


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (no usage dump)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    p = _Parser(description="Chapter 6's convolutional networks on MNIST.",
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="presets: " + ", ".join(PRESETS))
    p.add_argument("--preset", required=True, choices=list(PRESETS))
    p.add_argument("--epochs", type=cli.positive_int, help="override the preset's number of epochs")
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=10)
    p.add_argument("--eta", type=cli.number(0.0, True), help="override the learning rate")
    p.add_argument("--lmbda", type=cli.number(0.0, False), help="override the L2 strength")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--backend", choices=("numpy", "cupy"),
                   help="numpy (CPU) or cupy (GPU); default $NNDL_BACKEND, else numpy")
    p.add_argument("--seed", type=cli.nonneg_int, default=0)
    p.add_argument("--data", metavar="PATH", help="folder with the MNIST files (default: $NNDL_DATA, data/)")
    p.add_argument("--train-size", type=cli.positive_int, metavar="N",
                   help="train on the first N training images (before expansion)")
    p.add_argument("--plot", metavar="PATH",
                   help="write the learning curve to PATH and the first layer's filters to "
                        "PATH-filters.png (PNG)")
    p.add_argument("--save", metavar="PATH", help="save the trained network (.npz or .json)")
    p.add_argument("--book-bugs", action="store_true",
                   help="network3's initial weights N(0, 1/n_out) and L2 over mini-batches")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--checkpoint", metavar="PATH",
                   help="write a checkpoint (.npz) after every epoch, atomically "
                        "(for ensembles, one per network: PATH-0.npz, PATH-1.npz, ...)")
    p.add_argument("--resume", action="store_true",
                   help="continue from --checkpoint if it exists (same result as an unbroken run)")
    p.add_argument("--json", metavar="PATH", help="write the per-epoch results as JSON")
    args = p.parse_args(argv)
    n = args.train_size if args.train_size is not None else N_TRAINING
    if n > N_TRAINING:
        p.error(f"--train-size: expected 1..{N_TRAINING}, got {n}")
    if args.mini_batch_size > n:
        p.error(f"--mini-batch-size {args.mini_batch_size} is larger than the {n} training images")
    count = ENSEMBLE_SIZE if args.preset == "ensemble" else 1
    outputs = [("--json", args.json, None)]
    if args.plot is not None:
        outputs += [("--plot", args.plot, None), ("--plot", _filters_path(args.plot), None)]
    for option, suffixes in (("--save", (".npz", ".json")), ("--checkpoint", None)):
        path = getattr(args, option[2:])
        if path is not None:
            outputs += [(option, _save_path(path, k, count), suffixes) for k in range(count)]
    cli.check_paths(p, args.data, outputs)
    if args.resume and not args.checkpoint:
        p.error("--resume needs --checkpoint PATH")
    return args


def _load(args, expanded):
    from nndl.data import load_mnist
    from nndl.errors import NNDLError

    training, validation, test = load_mnist(args.data, dtype=args.dtype)
    if args.train_size is not None:
        training = (training[0][:args.train_size], training[1][:args.train_size])
    if args.mini_batch_size > len(training[0]):
        raise NNDLError(f"--mini-batch-size {args.mini_batch_size} is larger than the "
                        f"{len(training[0])} training images")
    if expanded:
        from nndl.expand import expand_mnist

        # made a mini-batch at a time from the source images (bit for bit the held set's)
        training = expand_mnist(*training, dtype=args.dtype, on_demand=True)
        print(f"Expanded the training set to {len(training[0]):,} images, made a mini-batch "
              f"at a time from the {len(training[0]) // 5:,} held "
              f"({training[0].images.nbytes / 1e6:.0f} MB)")
    return training, validation, test


def _filters_path(path):
    stem, ext = os.path.splitext(path)
    return f"{stem}-filters{ext or '.png'}"


def _save_path(path, k, count):
    if count == 1:
        return path
    stem, ext = os.path.splitext(path)
    return f"{stem}-{k}{ext}"


def run(args):
    from nndl import backend, network3
    from nndl.network3 import ConvPoolLayer

    xp = backend.array_module(args.backend)  # without CuPy or a GPU: one clear error, at once
    epochs, eta, lmbda, expanded, book = PRESETS[args.preset]
    epochs = args.epochs if args.epochs is not None else epochs
    eta = args.eta if args.eta is not None else eta
    lmbda = args.lmbda if args.lmbda is not None else lmbda
    training, validation, test = _load(args, expanded)
    count = ENSEMBLE_SIZE if args.preset == "ensemble" else 1
    print(f"{args.preset}: {epochs} epochs, mini-batch {args.mini_batch_size}, eta {eta}, "
          f"lambda {lmbda}, {args.dtype}, {len(training[0]):,} training images"
          + (f", {count} networks" if count > 1 else ""))
    nets, results, status = [], [], 0
    for k in range(count):
        if count > 1:
            print(f"-- network {k + 1} of {count} (seed {args.seed + k})")
        net = network3.Network(_build(args.preset, args.book_bugs), args.mini_batch_size,
                               dtype=args.dtype, seed=args.seed + k, backend=xp)
        result = net.SGD(training, epochs, args.mini_batch_size, eta, validation, test,
                         lmbda=lmbda, book_l2=args.book_bugs, progress=not args.no_progress,
                         timing=True, resume=args.resume,
                         checkpoint=args.checkpoint and _save_path(args.checkpoint, k, count))
        secs = net.history.epoch_seconds
        if secs:
            steps = -(-len(training[0]) // args.mini_batch_size)
            print(f"Training: {np.mean(secs):.2f} s per epoch, "
                  f"{1e3 * np.sum(secs) / (steps * len(secs)):.2f} ms per mini-batch")
        nets.append(net)
        results.append(result)
        if args.save:  # tried before training; if it fails now, a fallback file keeps the net
            if cli.write_or_rescue(net.save, _save_path(args.save, k, count), "--save",
                                   "trained network"):
                print(f"Saved {_save_path(args.save, k, count)}")
            else:
                status = 1
    if count > 1:
        votes = network3.ensemble_vote(nets, test[0])
        acc = 100.0 * float((votes == test[1]).mean())
        print(f"Ensemble of {count}: test accuracy {acc:.2f}% (book: {book:.2f}%)")
    elif results[0].test_accuracy is not None:
        acc = 100.0 * results[0].test_accuracy
        print(f"{args.preset}: test accuracy {acc:.2f}% at the best validation epoch "
              f"(book: {book:.2f}%)")
    if args.json:
        doc = {"preset": args.preset, "epochs": epochs, "eta": eta, "lmbda": lmbda,
               "dtype": args.dtype, "seed": args.seed, "book": book,
               "results": [r._asdict() for r in results],
               "histories": [net.history.to_dict() for net in nets]}
        if count > 1:
            doc["ensemble_test_accuracy"] = acc
        if not cli.write_or_rescue(lambda path: cli.write_json(doc, path), args.json, "--json",
                                   "results (JSON)"):
            status = 1
    if args.plot:
        from nndl import plots
        from nndl.errors import NNDLError

        title = f"{args.preset} ({args.dtype}, seed {args.seed}; book: {book:.2f}% test)"
        try:
            print(f"Wrote {plots.learning_curves(nets[0].history, args.plot, title=title)}")
            first = nets[0].layers[0]
            if isinstance(first, ConvPoolLayer):
                path = _filters_path(args.plot)
                plots.weight_images(backend.to_numpy(first.w), path)
                print(f"Wrote {path}")
        except NNDLError as e:
            print(f"{cli.prog()}: error: --plot: {e}", file=sys.stderr)
            status = 1
    return status


def main(argv=None):
    args = parse_args(argv)
    prog = os.path.basename(sys.argv[0]) or "mnist_conv.py"
    from nndl.errors import NNDLError

    try:
        return run(args)
    except NNDLError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prog}: error: out of memory (the expanded set needs ~0.8 GB in float32)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
