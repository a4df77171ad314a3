"""Files: safe writes and the versioned, pickle-free model format.

A model file is either ``.npz`` (numpy's zip of ``.npy`` arrays) or ``.json`` (network2's
style).  Both carry ``{"format": "nndl-model", "version": N}`` and a list of layer
configs; loading a foreign file or one written by a newer nndl fails with
:class:`FormatError`.

**Writing** (:func:`atomic_write`).  The bytes go to a temporary sibling
``.<name>.<random>.nndl-tmp``, are fsync'ed, then renamed over the target, so a crash
mid-write leaves the previous file intact.  Only regular files are written: a folder,
device, FIFO or socket at the target raises :class:`SaveError` and is left as it was.
A symlink is followed: its target is replaced atomically and the link keeps pointing
where it did.  No folder is created.  A new file gets the mode ``0666 & ~umask`` (as
``open()`` would give it), a replaced file keeps its permission bits.  Every OS failure
(read-only file system, full disk, a path under a file) is a :class:`SaveError` naming
the path and the cause, with the temporary file removed.  Temporary files left by a
killed save are removed by the next save to the same name, and only when they are
provably abandoned: our name pattern, a regular file of ours, not locked by a writer
(each writer holds an ``flock`` on its temporary file) and untouched for a minute.

**Reading** (:func:`read_arrays`).  The file must be a regular file.  Every array's
shape and dtype are read from its ``.npy`` header, and checked against a size cap and
the caller's expectations (``expect``) before any array data is read or decompressed,
so a small file claiming a huge array is refused at once, without allocating it.
"""
import contextlib
import json
import lzma
import math
import numbers
import os
import re
import stat
import tempfile
import time
import zipfile
import zlib
from collections.abc import Mapping

import numpy as np

from .errors import ConfigError, FormatError, NNDLError, SaveError

try:
    import fcntl
except ImportError:  # not POSIX: no locks, so stale temporary files are never removed
    fcntl = None

FORMAT = "nndl-model"
VERSION = 1

# Reading: what a model file may claim.  The book's largest network (chapter 6, two
# FC-1000 layers) holds 1.7 M parameters; a cap of 1 GiB of declared array data
# leaves room for much larger nets while refusing a file that claims gigabytes.
MAX_BYTES = 1 << 30
MAX_META_BYTES = 16 << 20   # the JSON description inside an .npz
MAX_ENTRIES = 10_000        # arrays in one .npz
# A JSON file spends at most a few characters per byte of float64 data ("0.123...,").
JSON_CHARS_PER_BYTE = 4
SAFE_DTYPES = ("float32", "float64", "int64", "int32", "uint8", "bool", "uint64")

# Writing: the temporary files' names and when an unlocked one counts as abandoned.
TEMP_SUFFIX = ".nndl-tmp"
STALE_AFTER_S = 60.0
_TEMP_RANDOM = re.compile(r"[a-z0-9_]{8}")  # tempfile's random part of a name
# Of the target's name, the temporary name keeps this much: a name of up to 255 bytes is
# a valid target, and ".<name>.<random>.nndl-tmp" must stay under that limit too.
_TEMP_NAME_KEEP = 200


def _temp_prefix(base):
    return f".{base[:_TEMP_NAME_KEEP]}."


# -- writing ---------------------------------------------------------------------------

def _path(path, what="path"):
    """``os.fspath(path)`` as a str; a wrong type is a ConfigError naming ``what``."""
    if isinstance(path, bool) or not isinstance(path, (str, bytes, os.PathLike)):
        raise ConfigError(f"{what} must be a str or os.PathLike, got {path!r}")
    path = os.fsdecode(os.fspath(path))
    if path == "":
        raise ConfigError(f"{what} must not be empty")
    if "\0" in path:
        raise ConfigError(f"{what} must not contain a NUL byte, got {path!r}")
    return path


def _kind(mode):
    """What a non-regular file is, in words."""
    for test, word in ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return word
    return "not a regular file"


def _save_error(path, e, doing="cannot save"):
    """A SaveError naming ``path`` and the cause of the OSError ``e``."""
    err = SaveError(f"{path}: {doing} ({e.strerror or e})")
    err.errno, err.strerror, err.filename = e.errno, e.strerror, path
    return err


def save_target(path):
    """The regular file a save to ``path`` writes: ``path`` itself, or where its symlink(s)
    point.  Raises SaveError if its folder is missing or is not a folder, or if something
    other than a regular file is there.  Writes nothing."""
    path = _path(path)
    if path.endswith(("/", os.sep)) or os.path.basename(path) in (".", ".."):
        raise SaveError(f"{path}: cannot save: the name is a folder, not a file")
    real = os.path.realpath(path)  # through symlinks: the link itself is kept
    folder = os.path.dirname(real)
    try:
        st = os.stat(folder)
    except FileNotFoundError:
        raise SaveError(f"{path}: cannot save: the folder {folder} does not exist "
                        "(nndl creates no folders: make it first)") from None
    except NotADirectoryError:
        raise SaveError(f"{path}: cannot save: a part of {folder} is a file, not a folder") from None
    except OSError as e:
        raise _save_error(path, e) from None
    if not stat.S_ISDIR(st.st_mode):
        raise SaveError(f"{path}: cannot save: {folder} is a file, not a folder")
    try:
        st = os.lstat(real)
    except FileNotFoundError:
        return real
    except OSError as e:
        raise _save_error(path, e) from None
    if stat.S_ISLNK(st.st_mode):  # realpath stops at a loop of links
        raise SaveError(f"{path}: cannot save: a loop of symlinks")
    if not stat.S_ISREG(st.st_mode):
        raise SaveError(f"{path}: cannot save: it is {_kind(st.st_mode)}, not a regular file "
                        "(nndl writes only regular files and left it untouched)")
    return real


def check_writable(path):
    """Raise SaveError unless a save to ``path`` could go ahead now: the checks of
    :func:`save_target`, then a temporary file really created (and removed) in its folder,
    which catches read-only file systems and missing permissions, for root too."""
    target = save_target(path)
    folder, base = os.path.split(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(base), suffix=TEMP_SUFFIX, dir=folder)
    except OSError as e:
        raise _save_error(path, e) from None
    os.close(fd)
    os.unlink(tmp)
    return target


def _umask():
    """The process's umask, read without changing it (os.umask would, for a moment,
    for every thread); the set-and-restore fallback is for systems without /proc."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _lock(fd, blocking=True):
    """An exclusive flock on ``fd``: True, or False when another process holds one (or
    the file system has no locks)."""
    if fcntl is None:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        return True
    except OSError:
        return False


def _remove_stale_temps(folder, base):
    """Remove the temporary files of killed saves to ``folder/base``.

    Only a file that is provably abandoned goes: its name is exactly our pattern for this
    target, it is a regular file (not a link) owned by us, no writer holds its lock, and
    it has not been written to for STALE_AFTER_S (so a writer between creating its file
    and locking it is safe too).  Anything else is left alone; failures are ignored.
    """
    if fcntl is None:
        return
    prefix = _temp_prefix(base)
    try:
        names = [n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(TEMP_SUFFIX)
                 and _TEMP_RANDOM.fullmatch(n[len(prefix):-len(TEMP_SUFFIX)])]
    except OSError:
        return
    for name in names:
        tmp = os.path.join(folder, name)
        try:
            fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                    or time.time() - st.st_mtime < STALE_AFTER_S or not _lock(fd, blocking=False)):
                continue
            now = os.lstat(tmp)  # still the file we locked, not one put there since
            if (now.st_dev, now.st_ino) == (st.st_dev, st.st_ino):
                os.unlink(tmp)
        except OSError:
            pass
        finally:
            os.close(fd)


def _fsync_folder(folder):
    """Make a rename in ``folder`` durable (best effort: not every system allows it)."""
    with contextlib.suppress(OSError):
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary sibling of ``path``; on success fsync and rename it onto ``path``.

    ``mode`` is "wb" or "w" (text, UTF-8).  Raises SaveError, before anything is written,
    when ``path`` is not a place for a regular file (see :func:`save_target`), and when
    the system fails a write; the temporary file is then removed and ``path`` untouched.
    """
    if mode not in ("wb", "w"):
        raise ConfigError(f"mode must be 'wb' or 'w', got {mode!r}")
    shown = _path(path)
    target = save_target(shown)
    folder, base = os.path.split(target)
    _remove_stale_temps(folder, base)
    try:
        old = os.stat(target).st_mode
        perms = stat.S_IMODE(old) & 0o777  # replacing a file keeps its permissions
    except FileNotFoundError:
        perms = 0o666 & ~_umask()  # what open() would give a new file
    except OSError as e:
        raise _save_error(shown, e) from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(base), suffix=TEMP_SUFFIX, dir=folder)
    except OSError as e:
        raise _save_error(shown, e) from None
    try:
        _lock(fd)  # held until the rename: _remove_stale_temps skips a locked file
        os.fchmod(fd, perms)
        # closefd=False: the lock lives on fd, which is closed only after the rename.
        with open(fd, mode, closefd=False, **({} if "b" in mode else {"encoding": "utf-8"})) as f:
            yield f
            f.flush()
            os.fsync(fd)
        save_target(shown)  # a device or folder put there meanwhile is not replaced
        os.replace(tmp, target)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, NNDLError):
            raise _save_error(shown, e) from None
        raise
    finally:
        os.close(fd)
    _fsync_folder(folder)


def write_arrays(path, meta, arrays):
    """Write ``meta`` (JSON-able dict) and named host arrays to ``path`` (.npz or .json)."""
    meta = {"format": FORMAT, "version": VERSION, **meta}
    if _path(path).endswith(".json"):
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


# -- reading ---------------------------------------------------------------------------

class optional(tuple):
    """``optional(shape, dtype)``: in an ``expect`` mapping, an array that may be missing
    (an optimizer's state before its first step), checked like any other when present."""

    def __new__(cls, shape, dtype):
        return super().__new__(cls, (shape, dtype))


def read_arrays(path, expect=None, *, max_bytes=MAX_BYTES):
    """Read a file written by :func:`write_arrays`: ``(meta, {name: array})``.

    Before any array data is read or decompressed, each array's declared shape and dtype
    (from its ``.npy`` header, or the JSON ``shape``/``dtype``) are checked: the dtype
    against a short list of plain numeric types, the sizes against ``max_bytes`` (per
    file), and, when given, against ``expect``:

    * a mapping ``{name: (shape, dtype)}``: each named array must be in the file with
      that shape and dtype (a ``None`` shape, or a ``None`` in a shape, or a ``None``
      dtype, accepts any; ``optional(shape, dtype)`` may also be missing); arrays not
      named are skipped, never read;
    * a callable ``expect(meta)``, called with the file's validated description (format
      and version checked) and returning such a mapping, or None to read every array.
      An nndl error it raises passes through; a KeyError, TypeError, ValueError or
      AttributeError (a hostile description) becomes a FormatError.

    Every failure is a FormatError naming the file.
    """
    shown = _path(path)
    name = os.path.basename(shown)
    max_bytes = _count(max_bytes, "max_bytes")
    if expect is not None and not (callable(expect) or isinstance(expect, Mapping)):
        raise ConfigError(f"expect must be a mapping, a callable or None, got {expect!r}")
    try:
        with _open_regular(shown, name) as f:
            if shown.endswith(".json"):
                return _read_json(f, name, expect, max_bytes)
            return _read_npz(f, name, expect, max_bytes)
    except NNDLError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError, EOFError, OverflowError,
            UnicodeDecodeError, RecursionError, zipfile.BadZipFile, zlib.error, lzma.LZMAError,
            NotImplementedError,  # zipfile: a compression method it does not know
            MemoryError) as e:  # a last resort: the checks below should refuse it first
        raise FormatError(f"{name}: not a readable nndl model file ({type(e).__name__}: {e})") from None


def _count(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 0:
        raise ConfigError(f"{what} must be an integer >= 0, got {value!r}")
    return int(value)


def _open_regular(path, name):
    """The file at ``path``, opened for reading, if it is a regular file: a FIFO or a
    device would block or never end (O_NONBLOCK: opening a FIFO does not wait)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FormatError(f"{path}: no such file") from None
    except OSError as e:
        raise FormatError(f"{path}: cannot read it ({e.strerror or e})") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise FormatError(f"{path}: cannot read it: it is {_kind(mode)}, not a regular file")
        if getattr(os, "O_NONBLOCK", 0):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _check_meta(meta, name):
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        shown = meta.get("format") if isinstance(meta, dict) else meta
        raise FormatError(f"{name}: not an nndl model file (format is {shown!r})")
    version = meta.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= VERSION:
        raise FormatError(f"{name}: format version {version!r}, but this nndl reads versions up to "
                          f"{VERSION}; upgrade nndl to load it")


def _expectations(expect, meta, name):
    """``expect`` resolved against ``meta``: None or {name: (shape or None, dtype or None)}."""
    if callable(expect) and not isinstance(expect, Mapping):
        try:
            expect = expect(meta)
        except FormatError:
            raise
        # a ConfigError or ShapeError here is the file's description refused by a layer's
        # constructor or the dtype check: a damaged file, so a FormatError naming it
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as e:
            raise FormatError(f"{name}: bad layer description ({type(e).__name__}: {e})") from None
        if expect is not None and not isinstance(expect, Mapping):
            raise ConfigError(f"expect(meta) must return a mapping or None, got {expect!r}")
    if expect is None:
        return None
    out = {}
    for key, spec in expect.items():
        shape, dtype = spec
        spec = (None if shape is None else tuple(shape), None if dtype is None else np.dtype(dtype))
        out[key] = optional(*spec) if isinstance(expect[key], optional) else spec
    return out


def _check_array(name, key, shape, dtype, expected, max_bytes):
    """A FormatError unless the declared ``shape``/``dtype`` of array ``key`` are safe
    and, if ``expected`` is (shape, dtype), the expected ones.  Returns its byte size."""
    if dtype.name not in SAFE_DTYPES or dtype.fields is not None or dtype.subdtype is not None:
        raise FormatError(f"{name}: array {key} has the unsupported array dtype {dtype.str!r}")
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape):
        raise FormatError(f"{name}: array {key} has the bad shape {shape!r}")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise FormatError(f"{name}: array {key} claims shape {shape} of {dtype.name}, "
                          f"{nbytes:,} bytes, over the limit of {max_bytes:,}")
    if expected is not None:
        want_shape, want_dtype = expected
        if want_shape is not None and (len(want_shape) != len(shape) or any(
                w is not None and w != s for w, s in zip(want_shape, shape))):
            raise FormatError(f"{name}: array {key} has shape {shape}, expected {want_shape}")
        if want_dtype is not None and dtype.newbyteorder("=") != want_dtype.newbyteorder("="):
            raise FormatError(f"{name}: array {key} has dtype {dtype.name}, expected {want_dtype.name}")
    return nbytes


def _wanted(name, declared, expected):
    """The keys to read: all declared, or the expected ones (each must be declared)."""
    if expected is None:
        return list(declared)
    missing = [k for k, spec in expected.items()
               if k not in declared and not isinstance(spec, optional)]
    if missing:
        raise FormatError(f"{name}: missing array {missing[0]}")
    return [k for k in expected if k in declared]


def _npy_header(stream, name, key):
    """(shape, dtype, fortran_order, header bytes) from the start of an ``.npy`` stream."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(stream)
        elif version == (2, 0):
            shape, fortran, dtype = fmt.read_array_header_2_0(stream)
        else:
            raise ValueError(f".npy format version {version}")
    except ValueError as e:
        raise FormatError(f"{name}: array {key} has a bad .npy header ({e})") from None
    return shape, dtype, fortran, stream.tell()


def _read_npz(f, name, expect, max_bytes):
    with zipfile.ZipFile(f) as z:
        infos = z.infolist()
        if len(infos) > MAX_ENTRIES:
            raise FormatError(f"{name}: {len(infos)} entries, more than an nndl model holds "
                              f"({MAX_ENTRIES} at most)")
        entries = {}
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise FormatError(f"{name}: not an nndl model file (entry {info.filename!r})")
            key = info.filename[:-4]
            if key in entries:
                raise FormatError(f"{name}: the entry {info.filename!r} appears twice")
            entries[key] = info
        if "__meta__" not in entries:
            raise FormatError(f"{name}: not an nndl model file (no __meta__ entry)")
        meta = _read_entry(z, entries["__meta__"], name, "__meta__",
                           lambda shape, dtype: len(shape) == 1 and dtype == np.uint8,
                           MAX_META_BYTES)
        meta = json.loads(meta.tobytes().decode("utf-8"))
        _check_meta(meta, name)
        expected = _expectations(expect, meta, name)
        declared = {k[2:]: info for k, info in entries.items() if k.startswith("a/")}
        wanted = _wanted(name, declared, expected)
        # Every header first: nothing is decompressed past a header until all are good.
        total = 0
        for key in wanted:
            info = declared[key]
            with z.open(info) as stream:
                shape, dtype, _, header = _npy_header(stream, name, key)
            nbytes = _check_array(name, key, shape, dtype, expected and expected[key], max_bytes)
            if info.file_size != header + nbytes:
                raise FormatError(f"{name}: array {key}: its header promises {nbytes:,} bytes of "
                                  f"data, the zip entry holds {info.file_size - header:,}")
            total += nbytes
            if total > max_bytes:
                raise FormatError(f"{name}: the arrays claim {total:,} bytes or more, over the "
                                  f"limit of {max_bytes:,}")
        arrays = {}
        for key in wanted:
            with z.open(declared[key]) as stream:
                a = np.lib.format.read_array(stream, allow_pickle=False)
            arrays[key] = a if a.dtype.isnative else a.astype(a.dtype.newbyteorder("="))
    return meta, arrays


def _read_entry(z, info, name, key, ok, max_bytes):
    """One small entry (the description): header checked, then read."""
    if info.file_size > max_bytes + 4096:
        raise FormatError(f"{name}: entry {key} holds {info.file_size:,} bytes, over the limit "
                          f"of {max_bytes:,}")
    with z.open(info) as stream:
        shape, dtype, _, _ = _npy_header(stream, name, key)
    if not ok(shape, dtype):
        raise FormatError(f"{name}: entry {key} has shape {shape} and dtype {dtype}, "
                          "not an nndl model's description")
    _check_array(name, key, shape, dtype, None, max_bytes)
    with z.open(info) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)


def _read_json(f, name, expect, max_bytes):
    size = os.fstat(f.fileno()).st_size
    limit = JSON_CHARS_PER_BYTE * max_bytes + MAX_META_BYTES
    if size > limit:
        raise FormatError(f"{name}: {size:,} bytes, over the limit of {limit:,} for a JSON model")
    doc = json.loads(f.read().decode("utf-8"))
    if not isinstance(doc, dict):
        raise FormatError(f"{name}: not an nndl model file (top level is not an object)")
    declared = doc.pop("arrays", None) or {}
    meta = doc
    _check_meta(meta, name)
    if not isinstance(declared, dict):
        raise FormatError(f"{name}: 'arrays' is not an object")
    expected = _expectations(expect, meta, name)
    wanted = _wanted(name, declared, expected)
    total, parsed = 0, {}
    for key in wanted:
        v = declared[key]
        if not isinstance(v, dict) or not isinstance(v.get("data"), list) \
                or not isinstance(v.get("shape"), list):
            raise FormatError(f"{name}: array {key} needs a dtype, a shape list and a data list")
        if v.get("dtype") not in SAFE_DTYPES:
            raise FormatError(f"{name}: array {key} has the unsupported array dtype {v.get('dtype')!r}")
        shape, dtype = tuple(v["shape"]), np.dtype(v["dtype"])
        total += _check_array(name, key, shape, dtype, expected and expected[key], max_bytes)
        if total > max_bytes:
            raise FormatError(f"{name}: the arrays claim {total:,} bytes or more, over the "
                              f"limit of {max_bytes:,}")
        if len(v["data"]) != math.prod(shape):
            raise FormatError(f"{name}: array {key} has shape {shape} but {len(v['data'])} values")
        parsed[key] = (shape, dtype, v["data"])
    arrays = {}
    for key, (shape, dtype, data) in parsed.items():
        if not all(isinstance(x, (int, float)) for x in data):  # bool is an int, on purpose
            raise FormatError(f"{name}: array {key} holds values that are not numbers")
        a = np.array(data, dtype=dtype)
        arrays[key] = a.reshape(shape)
    return meta, arrays
