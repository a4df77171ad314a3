"""CIFAR-10: small colour photographs, the step up from MNIST.

The book ends with networks that learn MNIST's grey digits almost perfectly.  CIFAR-10
(Krizhevsky, 2009) is the classic next data set: 60,000 colour images of 32 × 32
pixels, 6,000 of each of ten classes (airplane, automobile, bird, cat, deer, dog, frog,
horse, ship, truck), split into 50,000 training and 10,000 test images.  A network the
size of chapter 6's gets little more than half of its test images right (the classic
LeNet tutorial reports about 54%), which is why it became the usual first test of the
deeper networks that came after the book.

This module reads the official *binary* version, ``cifar-10-binary.tar.gz``, whose
folder ``cifar-10-batches-bin/`` holds five training batches ``data_batch_1.bin`` …
``data_batch_5.bin`` and ``test_batch.bin``.  Each batch is 10,000 records of 3,073
bytes: the label 0-9, then the 1,024 red, 1,024 green and 1,024 blue pixels of the
image, each plane row by row.  (The pickled Python version is never read: unpickling
runs code from the file.)  ``load_cifar10`` returns ``(X, y)`` pairs like
:func:`nndl.data.load_mnist`, with X of shape (N, 3, 32, 32), channels first as nndl's
convolutional layers expect, scaled from 0-255 to [0, 1].

The files are found as MNIST's are (:mod:`nndl.data`): a ``path`` argument, then
``$NNDL_DATA``, then the project's ``data/cifar-10/``, each either holding the six
batch files, the ``cifar-10-batches-bin/`` folder, or the archive itself, which is read
without unpacking it.  The archive is checked against its published SHA-256; the batch
files extracted from it have no published checksum, so ``verify`` checks that each
holds exactly the official 10,000 records.  When no folder has them the archive is
downloaded into ``data/cifar-10/`` (verified, then renamed into place atomically).
"""
import gzip
import os
import tarfile
import zlib
from pathlib import Path

import numpy as np

from . import data
from .errors import DataError

DATASET = "cifar-10"                        # the folder searched for under each data folder
ARCHIVE = "cifar-10-binary.tar.gz"
FOLDER = "cifar-10-batches-bin"             # the archive's folder of batches
TRAIN_FILES = tuple(f"data_batch_{i}.bin" for i in range(1, 6))
TEST_FILE = "test_batch.bin"
FILE_NAMES = TRAIN_FILES + (TEST_FILE,)
IMAGE_SHAPE = (3, 32, 32)                   # channels (R, G, B), rows, columns
RECORD = 1 + 3 * 32 * 32                    # one label byte, then 3,072 pixel bytes
N_PER_BATCH = 10_000                        # records in each official batch file
CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
           "dog", "frog", "horse", "ship", "truck")  # batches.meta.txt, label order

# nndl.data finds, verifies and downloads a data set by its name in these two tables.
data.KNOWN_FILES.setdefault(DATASET, {
    ARCHIVE: (("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171),),
})
data._DATASETS.setdefault(DATASET, data._Dataset(
    "CIFAR-10", ("https://www.cs.toronto.edu/~kriz/",), ()))


# --- reading ------------------------------------------------------------------------------

def _check_size(size, shown, official):
    """A DataError naming the file unless ``size`` bytes are whole records (and, if
    ``official``, the official 10,000 of them)."""
    n, extra = divmod(size, RECORD)
    if n == 0 or extra:
        raise DataError(
            f"{shown}: truncated or wrong size: {size:,} bytes is not a whole number of "
            f"{RECORD:,}-byte records (1 label byte, then 3,072 pixel bytes); "
            f"{size - extra:,} bytes of whole records, then {extra:,} bytes over")
    if official and n != N_PER_BATCH:
        raise DataError(
            f"{shown}: wrong size: {n:,} records of {RECORD:,} bytes, the official batch files "
            f"hold {N_PER_BATCH:,} each; pass verify=False to read other files in this format")


def _records(raw, shown, official):
    """The bytes of one batch file -> (n, 3073) uint8 records, or a DataError naming it."""
    _check_size(len(raw), shown, official)
    records = np.frombuffer(raw, dtype=np.uint8).reshape(-1, RECORD)  # (n, 3073)
    labels = records[:, 0]
    if labels.max() > 9:
        i = int(np.argmax(labels > 9))
        raise DataError(f"{shown}: record {i} has label {labels[i]}, not a class 0-9; "
                        f"is this a CIFAR-10 binary batch?")
    return records


def _read_file(path, official):
    """(n, 3073) records from one batch file, or a DataError naming it."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, not a CIFAR-10 batch file") from None
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    return _records(raw, path, official)


def read_batch(path, official=False):
    """One batch file -> (images (n, 3, 32, 32) uint8, labels (n,) uint8).

    Any file of whole 3,073-byte records is read; ``official=True`` also demands the
    official 10,000.  Damage raises DataError naming the file.
    """
    records = _read_file(path, official)
    return records[:, 1:].reshape((-1,) + IMAGE_SHAPE), records[:, 0]


def _read_folder(folder, verify):
    """{name: (n, 3073) records} from the six batch files in folder."""
    return {name: _read_file(folder / name, official=verify) for name in FILE_NAMES}


def _read_archive(archive, verify):
    """{name: (n, 3073) records} from cifar-10-binary.tar.gz, in one pass, unpacked in memory."""
    if verify:
        data._verify(archive, DATASET)
    wanted = {f"{FOLDER}/{name}": name for name in FILE_NAMES}
    out = {}
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:
                name = wanted.get(member.name)
                if name is None:
                    continue
                shown = f"{archive} ({member.name})"
                if not member.isfile():
                    raise DataError(f"{shown}: not a regular file in the archive")
                _check_size(member.size, shown, official=False)  # before reading it all
                raw = tar.extractfile(member).read()
                out[name] = _records(raw, shown, official=False)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
        raise DataError(f"{archive}: damaged archive ({type(e).__name__}: {e})") from None
    except OSError as e:
        raise DataError(f"{archive}: cannot read it ({e.strerror or e})") from None
    missing = [f"{FOLDER}/{name}" for name in FILE_NAMES if name not in out]
    if missing:
        raise DataError(f"{archive}: the archive has no {', '.join(missing)}; is it "
                        f"{ARCHIVE}, the binary version?")
    return out


# --- finding the files --------------------------------------------------------------------

def _has_batches(folder):
    return all((folder / name).is_file() for name in FILE_NAMES)


def _find_in(folder):
    """(reader, where) for the first form of CIFAR-10 in folder, or None."""
    if _has_batches(folder):
        return _read_folder, folder
    if _has_batches(folder / FOLDER):
        return _read_folder, folder / FOLDER
    if (folder / ARCHIVE).is_file():
        return _read_archive, folder / ARCHIVE
    return None


def _describe(folder):
    """What a searched folder holds, for the not-found message."""
    if not folder.is_dir():
        return "no such folder"
    found = [name for name in FILE_NAMES if (folder / name).is_file()
             or (folder / FOLDER / name).is_file()]
    return "only " + ", ".join(found) if found else f"neither {ARCHIVE} nor the batch files"


def _locate(path, download):
    """(reader, where): the archive ``path`` names, the first folder holding CIFAR-10
    (a folder given is the only one searched, as for MNIST), else the downloaded archive."""
    if path is not None and os.fspath(path) != "" and Path(path).expanduser().is_file():
        return _read_archive, Path(path).expanduser()
    if path is not None and not Path(path).expanduser().is_dir():
        raise DataError(f"{path}: no such folder (the folder given for CIFAR-10)")
    searched = []
    for folder, origin in data._search_dirs(DATASET, path):
        found = _find_in(folder)
        if found:
            return found
        if folder.is_dir() or origin != "given":
            searched.append(f"{folder} ({origin}: {_describe(folder)})")

    # Into the folder given, else the project's data/cifar-10/, which is removed again
    # if the download fails: a failure leaves no empty folders behind.
    target = Path(path).expanduser() if path is not None else data._project_data_dir() / DATASET
    def fetch():
        data._download(DATASET, ARCHIVE, target)
        return _read_archive, target / ARCHIVE

    found, failure = data._download_into(target, fetch, download)
    if found:
        return found
    url = data._DATASETS[DATASET].mirrors[0] + ARCHIVE
    raise DataError(
        f"CIFAR-10 not found in {'; '.join(searched)}.\n{failure}\n"
        f"Put {ARCHIVE} (from {url}), or the {FOLDER}/ folder unpacked from it, in a folder "
        f"and give it as --data DIR to a script, load_cifar10(DIR) in Python, or in the "
        f"NNDL_DATA environment variable (for both).")


# --- loading ------------------------------------------------------------------------------

def load_cifar10(path=None, dtype=np.float64, verify=True, download=True):
    """CIFAR-10's official split: (training_data, test_data).

    Each is (X, y): X (N, 3, 32, 32) pixels in [0, 1] of the given dtype (float64 or
    float32), y (N,) int64 labels 0-9 (names in ``CLASSES``); N = 50,000 and 10,000.
    ``path`` is the archive itself or a folder holding it, its ``cifar-10-batches-bin/``
    folder, the six batch files, or a ``cifar-10/`` folder with one of those.  ``verify=False``
    skips the archive's SHA-256 and reads batch files of any number of records.
    """
    dtype = data._float_dtype(dtype)
    reader, where = _locate(path, download)
    records = reader(where, verify)
    train = _examples([records[name] for name in TRAIN_FILES], dtype)
    test = _examples([records[TEST_FILE]], dtype)
    return train, test


def _examples(batches, dtype):
    """[(n, 3073) records] -> X (N, 3, 32, 32) in [0, 1], y (N,) int64."""
    records = np.concatenate(batches)                                # (N, 3073)
    X = records[:, 1:].reshape((len(records),) + IMAGE_SHAPE).astype(dtype)  # (N, 3, 32, 32)
    X /= 255
    return X, records[:, 0].astype(np.int64)
