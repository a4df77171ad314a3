"""MNIST, the data of chapter 1.

Chapter 1 trains its first network on MNIST: 28 x 28 grey-scale images of handwritten
digits, each with its label 0-9. The book keeps the 10,000 test images for the end and
splits the 60,000 training images into the first 50,000, which it trains on, and the last
10,000, a validation set it uses from chapter 3 on to choose hyper-parameters. Here each
set is a pair `(X, y)`: `X` holds one image per row, the 784 pixels scaled from 0-255 to
[0, 1], and `y` the integer labels. (The book's own `mnist.pkl.gz` divided by 256; nndl
reads LeCun's original files and divides by 255, so white is exactly 1.)

LeCun distributes MNIST as four gzip-compressed IDX files; `read_idx` reads one of them.
`load_mnist` finds the four files (in the folder given as `path`, and only there; without
one in `$NNDL_DATA`, then the project's `data/mnist/`), checks each against its published
SHA-256 and, when no folder has them, downloads them (into the folder given, else into
`data/mnist/`, made for it and removed again if the download fails). `load_fashion_mnist` does the same for Zalando's
Fashion-MNIST, 28 x 28 pictures of clothes in the same format, a harder drop-in test set.
`one_hot` turns labels into the target vectors y(x) of the book's quadratic cost.
"""

import gzip
import hashlib
import http.client
import math
import numbers
import os
import shutil
import struct
import tempfile
import urllib.request
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from nndl.errors import ConfigError, DataError

FILE_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
N_VALIDATION = 10_000  # the last 10,000 training images, as in the book

# name -> ((sha256, size in bytes), ...): the copies of each file known to be good.
# A .gz that matches none is still accepted when its decompressed payload matches.
KNOWN_FILES = {
    "mnist": {  # LeCun's files; data/mnist/SHA256SUMS in nndl's shared data
        "train-images-idx3-ubyte.gz": (
            ("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422),),
        "train-labels-idx1-ubyte.gz": (
            ("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881),),
        "t10k-images-idx3-ubyte.gz": (
            ("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877),),
        "t10k-labels-idx1-ubyte.gz": (
            ("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542),),
        "train-images-idx3-ubyte": (
            ("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 47040016),),
        "train-labels-idx1-ubyte": (
            ("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60008),),
        "t10k-images-idx3-ubyte": (
            ("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 7840016),),
        "t10k-labels-idx1-ubyte": (
            ("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10008),),
    },
    "fashion-mnist": {  # Zalando's files, then Debian's dataset-fashion-mnist repack
        "train-images-idx3-ubyte.gz": (
            ("3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
            ("b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7", 26421856)),
        "train-labels-idx1-ubyte.gz": (
            ("a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
            ("0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056", 29491)),
        "t10k-images-idx3-ubyte.gz": (
            ("346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
            ("cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa", 4422079)),
        "t10k-labels-idx1-ubyte.gz": (
            ("67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
            ("8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05", 5125)),
        "train-images-idx3-ubyte": (
            ("c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),),
        "train-labels-idx1-ubyte": (
            ("bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),),
        "t10k-images-idx3-ubyte": (
            ("5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),),
        "t10k-labels-idx1-ubyte": (
            ("0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),),
    },
}


class _Dataset(NamedTuple):
    title: str
    mirrors: tuple  # base URLs, tried in order
    system_dirs: tuple  # folders a system package installs the files into


_DATASETS = {
    "mnist": _Dataset(
        "MNIST",
        ("https://ossci-datasets.s3.amazonaws.com/mnist/",
         "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        ()),
    "fashion-mnist": _Dataset(
        "Fashion-MNIST",
        ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
         "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        (Path("/usr/share/datasets/fashion-mnist"),)),  # Debian's dataset-fashion-mnist
}

_TIMEOUT_S = 15  # per network operation, not per file
_CHUNK = 1 << 20
_IDX_TYPES = {0x08: "unsigned byte", 0x09: "signed byte", 0x0B: "short", 0x0C: "int",
              0x0D: "float", 0x0E: "double"}


# --- IDX files --------------------------------------------------------------------------

def read_idx(path):
    """Read an IDX file of unsigned bytes, gzip-compressed if its name ends in .gz.

    Returns a writable uint8 array of the shape in the header, e.g. (60000, 28, 28).
    Any damage (missing, corrupt gzip, wrong magic, truncated, trailing bytes) raises
    DataError naming the file and the problem.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            return _parse_idx(f, path)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not an IDX file") from None
    except EOFError as e:
        raise DataError(f"{path}: truncated gzip stream ({e})") from None
    except zlib.error as e:
        raise DataError(f"{path}: corrupt gzip data ({e})") from None
    except gzip.BadGzipFile as e:
        raise DataError(f"{path}: not a valid gzip file ({e})") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None


def _parse_idx(f, path):
    """Magic, dimensions, then exactly prod(dims) bytes: (d1, ..., dn) uint8."""
    magic = _read_upto(f, 4)
    if len(magic) < 4:
        raise DataError(f"{path}: truncated: an IDX file starts with a 4-byte magic "
                        f"number, the file has {len(magic)} bytes")
    if magic[:2] != b"\0\0":
        hint = " (it looks gzip-compressed: name it .gz)" if magic[:2] == b"\x1f\x8b" else ""
        raise DataError(f"{path}: wrong magic 0x{magic.hex()}: an IDX file starts with "
                        f"two zero bytes{hint}")
    code, ndim = magic[2], magic[3]
    if code != 0x08:
        kind = _IDX_TYPES.get(code, "not an IDX type")
        raise DataError(f"{path}: wrong magic: type code 0x{code:02x} ({kind}); "
                        f"nndl reads only 0x08, unsigned bytes")
    if not 1 <= ndim <= 4:
        raise DataError(f"{path}: wrong magic: {ndim} dimensions, expected 1 to 4")
    sizes = _read_upto(f, 4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{path}: truncated: the header says {ndim} dimensions, "
                        f"{4 * ndim} bytes of sizes, the file has {len(sizes)}")
    dims = struct.unpack(f">{ndim}I", sizes)
    shape = "x".join(map(str, dims))
    if 0 in dims:
        raise DataError(f"{path}: bad header: the dimensions {shape} include a 0")
    n = math.prod(dims)
    payload = _read_upto(f, n)
    if len(payload) < n:
        raise DataError(f"{path}: truncated: header says {shape} = {n} bytes of data, "
                        f"file has {len(payload)}")
    extra = _count_rest(f)
    if extra:
        raise DataError(f"{path}: {extra} trailing bytes after the {shape} = {n} bytes "
                        f"of data the header promises")
    return np.frombuffer(payload, dtype=np.uint8).reshape(dims)


def _read_upto(f, n):
    """At most n bytes from f, read in chunks so a lying header cannot exhaust memory."""
    buf = bytearray()
    while len(buf) < n:
        chunk = f.read(min(n - len(buf), _CHUNK))
        if not chunk:
            break
        buf += chunk
    return buf


def _count_rest(f):
    """How many bytes are left in f."""
    count = 0
    while chunk := f.read(_CHUNK):
        count += len(chunk)
    return count


# --- checksums --------------------------------------------------------------------------

def sha256_file(path):
    """The SHA-256 of a file's bytes, as 64 hex digits."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    return digest.hexdigest()


def _gunzipped_sha256(path):
    """The SHA-256 of a gzip file's payload, or None when it does not decompress."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    except (OSError, EOFError, zlib.error):
        return None
    return digest.hexdigest()


def _verify(path, dataset, name=None, shown=None):
    """Raise DataError unless the file at path is a known-good copy of `name`."""
    name = name or path.name
    shown = shown or path
    known = KNOWN_FILES[dataset].get(name)
    if not known:
        return
    actual = sha256_file(path)
    if actual in {digest for digest, _ in known}:
        return
    raw = KNOWN_FILES[dataset].get(name.removesuffix(".gz"), ()) if name.endswith(".gz") else ()
    payload = _gunzipped_sha256(path) if raw else None
    if payload is not None and payload in {digest for digest, _ in raw}:
        return  # recompressed, same payload
    expected = " or ".join(f"{digest} ({size} bytes)" for digest, size in known)
    got = f"{actual} ({os.path.getsize(path)} bytes)"
    if payload is not None:
        got += f", decompressing to {payload} instead of {raw[0][0]}"
    raise DataError(
        f"{shown}: sha256 mismatch: expected {expected}, got {got}. The file is damaged "
        f"or is not {_DATASETS[dataset].title}'s {name}: delete it and load again, or "
        f"pass verify=False to use it anyway")


# --- finding the files ------------------------------------------------------------------

def _project_data_dir():
    """The project's data/ folder; ./data for a package installed into site-packages."""
    root = Path(__file__).resolve().parent.parent
    if root.name in ("site-packages", "dist-packages"):
        return Path.cwd() / "data"
    return root / "data"


def _search_dirs(dataset, path):
    """[(folder, where it comes from)] in the order they are searched.

    A path given explicitly is the only place looked at: falling through to NNDL_DATA
    or the project's folder would quietly train on other files than the ones asked for.
    """
    if path is not None:
        base = Path(path).expanduser()
        return [(base, "given"), (base / dataset, "given")]
    dirs = []
    env = os.environ.get("NNDL_DATA")
    if env:
        base = Path(env).expanduser()
        dirs += [(base, "NNDL_DATA"), (base / dataset, "NNDL_DATA")]
    dirs.append((_project_data_dir() / dataset, "project data folder"))
    dirs += [(d, "system package") for d in _DATASETS[dataset].system_dirs]
    return dirs


def _files_in(folder):
    """{stem: file} for the four files in folder, .gz preferred over raw."""
    found = {}
    for stem in FILE_NAMES:
        for name in (stem + ".gz", stem):
            if (folder / name).is_file():
                found[stem] = folder / name
                break
    return found


def _describe(folder, found):
    """What a searched folder holds, for the not-found message."""
    if not folder.is_dir():
        return "no such folder"
    if not found:
        return "none of the four files"
    return "only " + ", ".join(file.name for file in found.values())


def _locate(dataset, path, download):
    """{stem: file} for the four files of the first folder holding all of them."""
    info = _DATASETS[dataset]
    if path is not None and not Path(path).expanduser().is_dir():
        raise DataError(f"{path}: no such folder (the folder given for {info.title})")
    searched = []
    for folder, origin in _search_dirs(dataset, path):
        found = _files_in(folder)
        if len(found) == len(FILE_NAMES):
            return found
        if folder.is_dir() or origin != "given":
            searched.append(f"{folder} ({origin}: {_describe(folder, found)})")

    # Into the folder given, else the project's; only a folder given may be missing
    # nothing: the project's data/<dataset>/ is made for the download and removed
    # again if the download fails, so a failure leaves no empty folders behind.
    target = Path(path).expanduser() if path is not None else _project_data_dir() / dataset

    def fetch():
        for stem in FILE_NAMES:
            if stem not in _files_in(target):
                _download(dataset, stem + ".gz", target)
        return _files_in(target)

    found, failure = _download_into(target, fetch, download)
    if found:
        return found

    names = ", ".join(stem + ".gz" for stem in FILE_NAMES)
    raise DataError(
        f"{info.title} not found in {'; '.join(searched)}.\n{failure}\n"
        f"Put the four files {names} (from {info.mirrors[0]}) in a folder and give it "
        f"as --data DIR to a script, load_{dataset.replace('-', '_')}(DIR) in Python, "
        f"or in the NNDL_DATA environment variable (for both).")


def _download_into(target, fetch, download):
    """(what ``fetch()`` returns, None), having made ``target`` for it; or (None, why not):
    a failed download removes the folders it made, so it leaves no empty folders behind."""
    if not download:
        return None, "Not downloading it (download=False)."
    made = _missing_parents(target)
    try:
        target.mkdir(parents=True, exist_ok=True)
        return fetch(), None
    except (OSError, DataError) as e:
        for folder in made:  # deepest first; only empty ones go
            try:
                folder.rmdir()
            except OSError:
                break
        return None, f"Downloading into {target} failed: {e}"


def _missing_parents(folder):
    """The folders mkdir(parents=True) would create for ``folder``, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


# --- downloading ------------------------------------------------------------------------

def _fetch(url, out):
    """Copy the bytes at url into the open binary file out."""
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        shutil.copyfileobj(response, out, _CHUNK)


def _download(dataset, name, folder):
    """Fetch one file into folder from the first mirror whose copy verifies.

    The bytes go to a hidden temporary file in the same folder, which is checked,
    flushed to disk and renamed atomically; anything short of that is deleted.
    """
    failures = []
    for mirror in _DATASETS[dataset].mirrors:
        url = mirror + name
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                _fetch(url, out)
                out.flush()
                os.fsync(out.fileno())
            _verify(Path(tmp), dataset, name, shown=url)
            os.chmod(tmp, 0o644)
            os.replace(tmp, folder / name)
            return
        except (OSError, ValueError, http.client.HTTPException) as e:
            failures.append((url, str(e)))
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    reasons = {reason for _, reason in failures}
    if len(reasons) == 1:  # offline: the same reason from every mirror, said once
        raise DataError(f"{reasons.pop()} (tried {len(failures)} mirrors)")
    raise DataError("; ".join(f"{url}: {reason}" for url, reason in failures))


# --- loading ----------------------------------------------------------------------------

def load_mnist(path=None, dtype=np.float64, verify=True, download=True):
    """The book's MNIST split: (training_data, validation_data, test_data).

    Parameters
    ----------
    path : str or path-like, optional
        A folder holding the four IDX files, or an ``mnist/`` folder with them; given,
        it is the only place searched.  Otherwise ``$NNDL_DATA``, then the project's
        ``data/mnist/``.
    dtype : float64 or float32
        The pixels' dtype.
    verify : bool
        Check each file's SHA-256 (False skips it).
    download : bool
        Fetch missing files (atomically, verified); False never fetches.

    Returns
    -------
    training_data, validation_data, test_data : tuple of (X, y)
        X (N, 784) pixels in [0, 1], y (N,) int64 labels; N = 50,000, 10,000, 10,000.
    """
    return _load("mnist", path, dtype, verify, download)


def load_fashion_mnist(path=None, dtype=np.float64, verify=True, download=True):
    """Fashion-MNIST, split and shaped like `load_mnist`: 50,000 / 10,000 / 10,000.

    `path` is a folder holding the four files or a `fashion-mnist/` folder with them.
    """
    return _load("fashion-mnist", path, dtype, verify, download)


def mnist_files(path=None, download=True):
    """{name: file} of the four MNIST files that `load_mnist(path)` would read, found (or
    downloaded) without reading them: a cheap check, up front, that loading will work."""
    return _load_args("mnist", path, np.float64, True, download)[1]


def _load_args(dataset, path, dtype, verify, download):
    """Check the loader's arguments; (dtype, files)."""
    dtype = _float_dtype(dtype)
    if path is not None and (isinstance(path, bool)
                             or not isinstance(path, (str, bytes, os.PathLike))):
        raise ConfigError(f"path must be a folder name (str or os.PathLike) or None, got {path!r}")
    if path is not None:
        path = os.fsdecode(os.fspath(path)) or None  # "" means "not given", as in NNDL_DATA
    for name, value in (("verify", verify), ("download", download)):
        if not isinstance(value, (bool, np.bool_)):
            raise ConfigError(f"{name} must be True or False, got {value!r}")
    return dtype, _locate(dataset, path, download)


def _load(dataset, path, dtype, verify, download):
    dtype, files = _load_args(dataset, path, dtype, verify, download)
    arrays = {}
    for stem, file in files.items():
        if verify:
            _verify(file, dataset)
        arrays[stem] = read_idx(file)
    X, y = _examples(arrays, "train", dtype, files)
    n = len(y) - N_VALIDATION
    if n <= 0:
        raise DataError(f"{files['train-labels-idx1-ubyte']}: {len(y)} training examples, "
                        f"need more than {N_VALIDATION} to split off the validation set")
    training_data = (X[:n], y[:n])                  # (50000, 784), (50000,)
    # A copy, not a view: a view would keep all 60,000 images alive for as long as the
    # validation set is, after the caller has let go of (or expanded) the training set.
    validation_data = (X[n:].copy(), y[n:].copy())  # (10000, 784), (10000,)
    test_data = _examples(arrays, "t10k", dtype, files)
    return training_data, validation_data, test_data


def _examples(arrays, split, dtype, files):
    """Images (N, H, W) and labels (N,) -> X (N, H*W) in [0, 1], y (N,) int64."""
    images = arrays[f"{split}-images-idx3-ubyte"]
    labels = arrays[f"{split}-labels-idx1-ubyte"]
    image_file = files[f"{split}-images-idx3-ubyte"]
    label_file = files[f"{split}-labels-idx1-ubyte"]
    if images.ndim != 3:
        raise DataError(f"{image_file}: images must be 3-D (N, H, W), got shape {images.shape}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{label_file}: expected {len(images)} labels, one per image in "
                        f"{image_file.name}, got shape {labels.shape}")
    if labels.size and labels.max() > 9:
        raise DataError(f"{label_file}: label {labels.max()} is not a digit 0-9")
    X = images.reshape(len(images), -1).astype(dtype)  # (N, 784)
    X /= 255
    return X, labels.astype(np.int64)


def _float_dtype(dtype):
    """numpy.float32 or numpy.float64, from a dtype or its name; anything else is an error."""
    try:
        resolved = np.dtype(dtype) if dtype is not None else None  # np.dtype(None) is float64
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in ("float32", "float64"):
        raise ConfigError(f"dtype must be float32 or float64, got {dtype!r}")
    return resolved


# --- labels -----------------------------------------------------------------------------

def one_hot(y, n_classes=10, dtype=np.float64):
    """Labels (N,) -> one-hot rows (N, n_classes): the book's vectorized_result, batched."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral) \
            or n_classes < 1:
        raise ConfigError(f"n_classes must be a positive integer, got {n_classes!r}")
    try:
        dtype = np.dtype(dtype)
    except TypeError:
        raise ConfigError(f"dtype must be a numpy dtype, got {dtype!r}") from None
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"labels must be a 1-D array (N,), got shape {y.shape}")
    if y.dtype.kind not in "iuf":
        bad = next((v for v in y.tolist() if isinstance(v, bool)
                    or not isinstance(v, numbers.Integral)), None)
        if bad is not None:
            raise DataError(f"labels must be integers, got {bad!r} (dtype {y.dtype})")
        y = y.astype(np.int64)
    if y.dtype.kind == "f":
        fractional = y[y != np.round(y)]
        if fractional.size:
            raise DataError(f"labels must be integers, got {fractional[0].item()!r}")
    outside = y[(y < 0) | (y >= n_classes)]
    if outside.size:
        raise DataError(f"label {outside[0].item()!r} is outside [0, {n_classes})")
    out = np.zeros((len(y), n_classes), dtype=dtype)  # (N, n_classes)
    out[np.arange(len(y)), y.astype(np.int64)] = 1
    return out
