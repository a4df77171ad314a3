#!/usr/bin/env python
"""The book's expand_mnist.py: 50,000 training images -> 250,000 (chapter 6).

Each image is kept and copied four times, moved one pixel down, up, right and left,
with zeros filling the row or column that moves in.  Without an output path this only
builds the set in memory and reports its size, time and peak memory; with one it
writes an ``.npz`` file (pixels as uint8, 196 MB + the validation and test sets) that
``network3.load_data_shared(PATH)`` reads back when PATH contains "expanded":

    python scripts/expand_mnist.py                        # writes nothing
    python scripts/expand_mnist.py mnist_expanded.npz     # the book's file, as .npz
"""
import argparse
import os
import resource
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy as np  # noqa: E402

from nndl.errors import NNDLError  # noqa: E402


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}\n")


def parse_args(argv=None):
    p = _Parser(description=__doc__.splitlines()[0],
                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("output", nargs="?", metavar="OUTPUT.npz",
                   help="where to write the expanded set (default: write nothing)")
    p.add_argument("--data", metavar="PATH", help="folder with the MNIST files (default: $NNDL_DATA, data/)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                   help="dtype of the in-memory set (default float32: 784 MB)")
    args = p.parse_args(argv)
    if args.data is not None and not os.path.isdir(args.data):
        p.error(f"--data: no such folder: {args.data}")
    if args.output is not None:
        if not args.output.endswith(".npz"):
            p.error(f"OUTPUT: expected a file name ending in .npz, got {args.output}")
        folder = os.path.dirname(os.path.abspath(args.output))
        if not os.path.isdir(folder):
            p.error(f"OUTPUT: folder does not exist: {folder}")
    return args


def main(argv=None):
    args = parse_args(argv)
    prog = os.path.basename(sys.argv[0]) or "expand_mnist.py"
    try:
        from nndl import expand
        from nndl.data import load_mnist

        training, validation, test = load_mnist(args.data, dtype=args.dtype)
        t = time.perf_counter()
        if args.output is None:
            X, y = expand.expand_mnist(*training, dtype=args.dtype)
            print(f"Expanded {len(training[0]):,} training images to {len(X):,} "
                  f"({X.nbytes / 1e6:.0f} MB of {X.dtype}) in {time.perf_counter() - t:.1f} s; "
                  "nothing written (pass OUTPUT.npz to save)")
        else:
            expand.save_expanded(args.output, training, validation, test)
            size = os.path.getsize(args.output)
            print(f"Wrote {args.output}: {5 * len(training[0]):,} training images "
                  f"({size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB -> MiB (Linux)
        print(f"Peak memory (resident): {peak:.0f} MiB")
    except (NNDLError, OSError) as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return 2
    except MemoryError:
        print(f"{prog}: error: out of memory", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    np.seterr(all="raise")
    sys.exit(main())
