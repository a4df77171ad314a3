"""Files: atomic writes and the versioned, pickle-free model format.

A model file is either ``.npz`` (numpy's zip of arrays, loaded with
``allow_pickle=False``) or ``.json`` (network2's style).  Both carry
``{"format": "nndl-model", "version": N}`` and a list of layer configs; loading a
foreign file or one written by a newer nndl fails with :class:`FormatError`.
Writes go to a temporary file in the same folder, are fsync'ed, then renamed over the
target, so a crash mid-write leaves the previous file intact.
"""
import contextlib
import json
import lzma
import os
import tempfile
import zipfile
import zlib

import numpy as np

from .errors import FormatError

FORMAT = "nndl-model"
VERSION = 1


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary sibling of ``path``; on success fsync and rename it onto ``path``."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    # Make the rename itself durable.
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def write_arrays(path, meta, arrays):
    """Write ``meta`` (JSON-able dict) and named host arrays to ``path`` (.npz or .json)."""
    meta = {"format": FORMAT, "version": VERSION, **meta}
    if os.fspath(path).endswith(".json"):
        doc = dict(meta)
        doc["arrays"] = {
            k: {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.ravel().tolist()}
            for k, a in arrays.items()
        }
        with atomic_write(path, "w") as f:
            json.dump(doc, f)
        return
    payload = {"__meta__": np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)}
    payload.update({f"a/{k}": np.ascontiguousarray(a) for k, a in arrays.items()})
    with atomic_write(path) as f:
        np.savez(f, **payload)


def read_arrays(path):
    """Read a file written by :func:`write_arrays`: ``(meta, {name: array})``."""
    path = os.fspath(path)
    name = os.path.basename(path)
    try:
        if path.endswith(".json"):
            with open(path, encoding="utf-8") as f:
                doc = json.load(f)
            if not isinstance(doc, dict):
                raise FormatError(f"{name}: not an nndl model file (top level is not an object)")
            arrays = {}
            for k, v in (doc.pop("arrays", None) or {}).items():
                a = np.array(v["data"], dtype=_safe_dtype(v["dtype"], name))
                arrays[k] = a.reshape([int(s) for s in v["shape"]])
            meta = doc
        else:
            # Our own handle: np.load leaks the one it opens when the zip is damaged.
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as z:
                if "__meta__" not in z.files:
                    raise FormatError(f"{name}: not an nndl model file (no __meta__ entry)")
                meta = json.loads(z["__meta__"].tobytes().decode("utf-8"))
                arrays = {k[2:]: z[k] for k in z.files if k.startswith("a/")}
    except FormatError:
        raise
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError,
            UnicodeDecodeError, RecursionError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
            NotImplementedError,  # zipfile: a compression method it does not know
            json.JSONDecodeError) as e:
        raise FormatError(f"{name}: not a readable nndl model file ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise FormatError(f"{name}: not an nndl model file (format is {meta.get('format') if isinstance(meta, dict) else meta!r})")
    version = meta.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise FormatError(
            f"{name}: format version {version!r}, but this nndl reads versions up to {VERSION}; "
            "upgrade nndl to load it"
        )
    return meta, arrays


def _safe_dtype(s, name):
    if s not in ("float32", "float64", "int64", "int32", "uint8", "bool", "uint64"):
        raise FormatError(f"{name}: unsupported array dtype {s!r}")
    return np.dtype(s)


# The example scripts' shared command line and ``main()``.

def add_results_options(parser, name, *, data=False, plots="plots"):
    """Add the example scripts' ``--data`` (if ``data``), ``--out`` and ``--from-json`` options to ``parser``."""
    if data:
        parser.add_argument("--data", help="folder holding the MNIST files (else $NNDL_DATA, then data/)")
    parser.add_argument("--out", help=f"output folder (default runs/{name})")
    parser.add_argument("--from-json", metavar="PATH", help=f"only redraw the {plots} from this JSON")


def results_then_plots(name, args, run, plot, report=None):
    """Load results from ``args.from_json`` (else ``run(args)`` and save ``<out>/<name>.json``),
    then report, plot and return them."""
    if args.from_json:
        with open(args.from_json, encoding="utf-8") as f:
            results = json.load(f)
        out = args.out or os.path.dirname(os.path.abspath(args.from_json))
    else:
        out = args.out or os.path.join("runs", name)
        results = run(args)
        path = os.path.join(out, name + ".json")
        with atomic_write(path, "w") as f:
            json.dump(results, f)
        print(f"wrote {path}")
    if report is not None:
        report(results)
    for path in plot(results, out):
        print(f"wrote {path}")
    return results
