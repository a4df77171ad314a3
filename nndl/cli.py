"""What nndl's scripts share: checked options, checked output paths, one-line errors.

A script validates every argument and every output path before it loads data or trains,
so a typo costs a second, not an hour of training; it creates no folders the user did
not ask for; and if a save still fails after training, the trained network is written
to a fallback file and the message says where.  Bad input ends in one line and a
non-zero status, never a traceback.
"""
import argparse
import json
import math
import os
import sys
import tempfile
import time

from . import io as nio
from .errors import NNDLError, SaveError


def prog():
    return os.path.basename(sys.argv[0]) or "nndl"


def run_script(main):
    """Call ``main()`` and exit: status 0 (or main's int), or 2 with an nndl error in one line.

    An OSError or MemoryError that escaped the checks is reported the same way: a
    traceback would hide the one line that matters.
    """
    try:
        status = main()
        sys.exit(status if isinstance(status, int) and not isinstance(status, bool) else 0)
    except NNDLError as e:
        print(f"{prog()}: error: {e}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"{prog()}: error: {where}{e.strerror or e}", file=sys.stderr)
        sys.exit(2)
    except MemoryError:
        print(f"{prog()}: error: out of memory (try a smaller --train-size or network)",
              file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


# -- option types: argparse calls them, so a bad value is a usage error at once -----------

def _integer(s, what):
    try:
        return int(s, 10)
    except (TypeError, ValueError):
        raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None


def positive_int(s):
    """An integer >= 1 (a count: epochs, sizes, images)."""
    v = _integer(s, "a positive integer")
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {s!r}")
    return v


def nonneg_int(s):
    """An integer >= 0 (seeds, patience counts where 0 means off)."""
    v = _integer(s, "an integer >= 0")
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {s!r}")
    return v


def number(lo=0.0, strict=True, hi=None, hi_strict=True):
    """A finite float above ``lo`` (or at least ``lo`` if not ``strict``), below ``hi``."""
    def parse(s):
        try:
            v = float(s)
        except (TypeError, ValueError):
            raise argparse.ArgumentTypeError(f"expected a number, got {s!r}") from None
        low_ok = v > lo if strict else v >= lo
        high_ok = hi is None or (v < hi if hi_strict else v <= hi)
        if not math.isfinite(v) or not low_ok or not high_ok:
            bound = f"{'>' if strict else '>='} {lo}"
            if hi is not None:
                bound += f" and {'<' if hi_strict else '<='} {hi}"
            raise argparse.ArgumentTypeError(f"expected a number {bound}, got {s!r}")
        return v
    parse.__name__ = "number"  # argparse names the type in "invalid <name> value"
    return parse


def int_list_from(lo):
    """A parser of comma-separated integers, each at least ``lo``: '0,1,2' -> [0, 1, 2]."""
    what = f"comma-separated integers >= {lo}"

    def parse(s):
        try:
            values = [int(v, 10) for v in str(s).split(",")]
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}") from None
        if any(v < lo for v in values):
            raise argparse.ArgumentTypeError(f"expected {what}, got {s!r}")
        return values
    parse.__name__ = "list"
    return parse


int_list = int_list_from(1)  # sizes: '784,30,10' -> [784, 30, 10]


def number_list(lo=0.0, strict=True):
    """'0.1,0.5,3' -> [0.1, 0.5, 3.0]; each checked like :func:`number`."""
    one = number(lo, strict)

    def parse(s):
        return [one(v) for v in str(s).split(",")]
    parse.__name__ = "list"
    return parse


# -- paths: checked before any work ----------------------------------------------------------

def data_problem(path):
    """Why ``--data path`` cannot be the MNIST folder, or None."""
    if path is None:
        return None
    if path == "":
        return "--data: an empty folder name"
    if not os.path.isdir(path):
        kind = "is not a folder" if os.path.exists(path) else "no such folder"
        return f"--data {path}: {kind}"
    return None


def output_problem(option, path, suffixes=None):
    """Why ``option path`` cannot be written, or None; creates and changes nothing
    (a probe file is made and removed in the folder, to catch read-only folders)."""
    if path is None:
        return None
    if suffixes and not path.endswith(tuple(suffixes)):
        return f"{option}: expected a {' or '.join(suffixes)} file name, got {path}"
    try:
        nio.check_writable(path)
    except (SaveError, NNDLError) as e:
        return f"{option}: {e}"
    return None


def check_paths(parser, data=None, outputs=()):
    """``parser.error`` (exit 2, one line) on the first problem with ``--data`` or one of
    ``outputs``, (option, path, suffixes or None) triples; two options naming the same
    file are an error too: the second write would replace the first."""
    problem = data_problem(data)
    seen = {}
    for option, path, suffixes in outputs:
        if problem:
            break
        problem = output_problem(option, path, suffixes)
        if path is not None and not problem:
            real = os.path.realpath(path)
            if real in seen:
                problem = f"{seen[real]} and {option} name the same file: {path}"
            seen[real] = option
    if problem:
        parser.error(problem)


def check_out_folder(parser, out, default, filename):
    """Check, creating nothing, that ``filename`` can be written in the results folder:
    ``out`` if given (it may be new, but only it: its parent must exist), else
    ``default`` (made with its parents when used, as the scripts document)."""
    folder = os.path.abspath(out if out is not None else default)
    probe = folder
    if out is not None and not os.path.isdir(folder):
        probe = os.path.dirname(folder)
        if os.path.exists(folder):
            parser.error(f"--out {out}: not a folder")
        if not os.path.isdir(probe):
            parser.error(f"--out {out}: the folder {probe} does not exist")
    while not os.path.isdir(probe):
        if os.path.exists(probe):
            parser.error(f"--out {folder}: {probe} is not a folder")
        probe = os.path.dirname(probe)
    target = os.path.join(folder if probe == folder else probe, filename)
    problem = output_problem("--out", target)
    if problem:
        parser.error(problem)


def make_folder(folder):
    """Make a script's output folder (one the user named or the documented default)."""
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise SaveError(f"{folder}: cannot make the folder ({e.strerror or e})") from None


# -- after training: a failed write must not lose the result --------------------------------

def rescue_path(path, folder):
    """A new, clearly named file in ``folder`` for what could not be written to ``path``."""
    stem, ext = os.path.splitext(os.path.basename(path))
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join(folder, f"nndl-rescued-{stem}-{stamp}-{os.getpid()}{ext}")


def write_or_rescue(write, path, option, what):
    """``write(path)``; if that fails, ``write`` to a fallback file in the current folder,
    else the temporary folder, and say where.  Returns True when ``path`` was written."""
    try:
        write(path)
        return True
    except (NNDLError, OSError) as e:
        print(f"{prog()}: error: {option}: {e}", file=sys.stderr)
    for folder in (os.getcwd(), tempfile.gettempdir()):
        fallback = rescue_path(path, folder)
        try:
            write(fallback)
        except (NNDLError, OSError):
            continue
        print(f"{prog()}: the {what} was saved to {fallback} instead", file=sys.stderr)
        return False
    print(f"{prog()}: error: could not save the {what} anywhere", file=sys.stderr)
    return False


def write_json(doc, path):
    """``doc`` as indented JSON, atomically."""
    with nio.atomic_write(path, "w") as f:
        json.dump(doc, f, indent=1)


# -- the chapter scripts' shared command line and main() --------------------------------------

def add_results_options(parser, name, *, data=False, plots="plots"):
    """Add the example scripts' ``--data`` (if ``data``), ``--out`` and ``--from-json``
    options to ``parser``."""
    if data:
        parser.add_argument("--data", metavar="DIR",
                            help="folder holding the MNIST files (else $NNDL_DATA, then data/)")
    parser.add_argument("--out", help=f"output folder (default runs/{name}, created if needed)")
    parser.add_argument("--from-json", metavar="PATH", help=f"only redraw the {plots} from this JSON")


def check_results_options(parser, args, name):
    """Check ``--data``, ``--out`` and ``--from-json`` before any work."""
    check_paths(parser, getattr(args, "data", None))
    if args.from_json is not None and not os.path.isfile(args.from_json):
        parser.error(f"--from-json {args.from_json}: no such file")
    if args.from_json is None or args.out is not None:
        check_out_folder(parser, args.out, os.path.join("runs", name), name + ".json")


def results_then_plots(name, args, run, plot, report=None):
    """Load results from ``args.from_json`` (else ``run(args)`` and save ``<out>/<name>.json``),
    then report, plot and return them.  ``args`` were checked by check_results_options."""
    if args.from_json:
        try:
            with open(args.from_json, encoding="utf-8") as f:
                results = json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise NNDLError(f"--from-json {args.from_json}: cannot read it ({e})") from None
        out = args.out or os.path.dirname(os.path.abspath(args.from_json))
    else:
        out = args.out or os.path.join("runs", name)
        results = run(args)
        make_folder(out)
        path = os.path.join(out, name + ".json")
        if write_or_rescue(lambda p: write_json(results, p), path, "--out", "results (JSON)"):
            print(f"wrote {path}")
    if report is not None:
        report(results)
    make_folder(out)
    for path in plot(results, out):
        print(f"wrote {path}")
    return results


def convert(parser, option, value, kind):
    """``kind(value)``, or ``parser.error`` naming ``option``: for options kept as strings
    until after parsing (lists whose default --quick rewrites)."""
    try:
        return kind(value)
    except argparse.ArgumentTypeError as e:
        parser.error(f"argument {option}: {e}")
