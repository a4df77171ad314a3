import functools
import gzip
import hashlib
import io
import os
import struct
import urllib.error
import urllib.request

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nndl import data, mnist_loader
from nndl.errors import ConfigError, DataError

REAL_FETCH = data._fetch
STEMS = data.FILE_NAMES
N_TRAIN, N_TEST = 60_000, 10_000


# --- helpers: IDX files written by hand, independently of nndl -------------------------

def idx_bytes(array, code=0x08):
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write(path, raw):
    """Write raw IDX bytes, gzip-compressed when the name ends in .gz."""
    path.write_bytes(gzip.compress(raw, mtime=0) if path.suffix == ".gz" else raw)
    return path


def sha256(raw):
    return hashlib.sha256(raw).hexdigest()


@functools.lru_cache(maxsize=None)
def fake_payloads(marker=0):
    """The four IDX payloads of a small fake dataset: 2x2 images, labels (i + marker) % 10."""
    def images(n):
        return ((np.arange(n * 4) + marker) % 256).reshape(n, 2, 2)

    def labels(n):
        return (np.arange(n) + marker) % 10

    return {
        "train-images-idx3-ubyte": idx_bytes(images(N_TRAIN)),
        "train-labels-idx1-ubyte": idx_bytes(labels(N_TRAIN)),
        "t10k-images-idx3-ubyte": idx_bytes(images(N_TEST)),
        "t10k-labels-idx1-ubyte": idx_bytes(labels(N_TEST)),
    }


def write_fake(folder, marker=0, gz=True):
    """A folder holding the four fake files; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, raw in fake_payloads(marker).items():
        write(folder / (stem + ".gz" if gz else stem), raw)
    return folder


def pin(monkeypatch, dataset, marker=0):
    """Make the fake files of `marker` the only known-good copies of `dataset`."""
    table = {}
    for stem, raw in fake_payloads(marker).items():
        packed = gzip.compress(raw, mtime=0)
        table[stem] = ((sha256(raw), len(raw)),)
        table[stem + ".gz"] = ((sha256(packed), len(packed)),)
    monkeypatch.setitem(data.KNOWN_FILES, dataset, table)
    return table


def marker_of(loaded):
    """Which fake dataset was loaded: its first training label."""
    return int(loaded[0][1][0])


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """No test reaches the network; one that tries to download sees an offline machine."""
    def offline(url, out):
        raise urllib.error.URLError("tests never use the network")

    monkeypatch.setattr(data, "_fetch", offline)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every place the loaders search, pointed at empty temporary folders."""
    monkeypatch.delenv("NNDL_DATA", raising=False)
    project = tmp_path / "project" / "data"
    monkeypatch.setattr(data, "_project_data_dir", lambda: project)
    system = tmp_path / "usr-share-datasets" / "fashion-mnist"
    fashion = data._DATASETS["fashion-mnist"]._replace(system_dirs=(system,))
    monkeypatch.setitem(data._DATASETS, "fashion-mnist", fashion)
    return {"tmp": tmp_path, "project": project, "system": system}


def load_quietly(path):
    """read_idx that may only succeed or raise DataError."""
    try:
        result = data.read_idx(path)
    except DataError:
        return None
    assert isinstance(result, np.ndarray) and result.dtype == np.uint8
    return result


# --- read_idx ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["a-idx1-ubyte", "a-idx1-ubyte.gz"])
@pytest.mark.parametrize("shape", [(7,), (3, 4, 5), (2, 1, 3, 2)])
def test_read_idx_round_trips_shape_and_values(tmp_path, name, shape):
    array = np.arange(np.prod(shape)).reshape(shape) * 37 % 256
    got = data.read_idx(write(tmp_path / name, idx_bytes(array)))
    assert got.dtype == np.uint8 and got.shape == shape
    np.testing.assert_array_equal(got, array)
    got[...] = 0  # writable


def test_read_idx_accepts_str_paths(tmp_path):
    path = write(tmp_path / "x.gz", idx_bytes([1, 2, 3]))
    np.testing.assert_array_equal(data.read_idx(str(path)), [1, 2, 3])


def test_read_idx_rejects_corrupt_gzip_naming_file(tmp_path):
    packed = bytearray(gzip.compress(idx_bytes(np.arange(200) % 7), mtime=0))
    packed[len(packed) // 2] ^= 0xFF
    path = tmp_path / "corrupt-idx1-ubyte.gz"
    path.write_bytes(bytes(packed))
    with pytest.raises(DataError, match="gzip") as e:
        data.read_idx(path)
    assert "corrupt-idx1-ubyte.gz" in str(e.value)


def test_read_idx_rejects_a_gzip_stream_cut_short(tmp_path):
    packed = gzip.compress(idx_bytes(np.arange(5000) % 251), mtime=0)
    path = tmp_path / "cut-idx1-ubyte.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(DataError, match="cut-idx1-ubyte.gz: truncated gzip"):
        data.read_idx(path)


def test_read_idx_rejects_non_gzip_named_gz(tmp_path):
    path = tmp_path / "plain-idx1-ubyte.gz"
    path.write_bytes(idx_bytes([1, 2, 3]))
    with pytest.raises(DataError, match="plain-idx1-ubyte.gz: not a valid gzip file"):
        data.read_idx(path)


@pytest.mark.parametrize("name", ["t-idx3-ubyte", "t-idx3-ubyte.gz"])
def test_read_idx_rejects_truncated_payload(tmp_path, name):
    raw = idx_bytes(np.zeros((3, 4, 5)))[: 16 + 7]
    with pytest.raises(DataError) as e:
        data.read_idx(write(tmp_path / name, raw))
    message = str(e.value)
    assert name in message and "truncated" in message
    assert "3x4x5 = 60 bytes" in message and "file has 7" in message


def test_read_idx_rejects_truncated_header(tmp_path):
    path = write(tmp_path / "h-idx3-ubyte", idx_bytes(np.zeros((3, 4, 5)))[:9])
    with pytest.raises(DataError, match="h-idx3-ubyte: truncated: the header says 3 dim"):
        data.read_idx(path)


def test_read_idx_rejects_empty_file(tmp_path):
    path = write(tmp_path / "empty-idx1-ubyte", b"")
    with pytest.raises(DataError, match="empty-idx1-ubyte: truncated.*has 0 bytes"):
        data.read_idx(path)


@pytest.mark.parametrize("name", ["x-idx1-ubyte", "x-idx1-ubyte.gz"])
def test_read_idx_rejects_trailing_bytes(tmp_path, name):
    path = write(tmp_path / name, idx_bytes([1, 2, 3]) + b"\x00\x01")
    with pytest.raises(DataError, match=f"{name}: 2 trailing bytes"):
        data.read_idx(path)


def test_read_idx_rejects_wrong_magic(tmp_path):
    path = write(tmp_path / "m-idx1-ubyte", b"\x01\x00" + idx_bytes([1, 2, 3])[2:])
    with pytest.raises(DataError, match="m-idx1-ubyte: wrong magic 0x01000801"):
        data.read_idx(path)


def test_read_idx_points_out_gzip_data_without_gz_name(tmp_path):
    path = tmp_path / "g-idx1-ubyte"
    path.write_bytes(gzip.compress(idx_bytes([1, 2, 3])))
    with pytest.raises(DataError, match="wrong magic.*gzip-compressed"):
        data.read_idx(path)


def test_read_idx_rejects_types_other_than_unsigned_byte(tmp_path):
    path = write(tmp_path / "f-idx1-ubyte", idx_bytes([1, 2, 3, 4], code=0x0D))
    with pytest.raises(DataError, match=r"f-idx1-ubyte: wrong magic: type code 0x0d \(float\)"):
        data.read_idx(path)


@pytest.mark.parametrize("ndim", [0, 5])
def test_read_idx_rejects_dimension_counts_outside_1_to_4(tmp_path, ndim):
    path = write(tmp_path / "d-idx", bytes([0, 0, 8, ndim]) + b"\0\0\0\1" * ndim + b"\7")
    with pytest.raises(DataError, match=f"d-idx: wrong magic: {ndim} dimensions"):
        data.read_idx(path)


def test_read_idx_rejects_zero_sized_dimensions(tmp_path):
    path = write(tmp_path / "z-idx", bytes([0, 0, 8, 2]) + struct.pack(">2I", 0, 2**32 - 1))
    with pytest.raises(DataError, match="z-idx: bad header: the dimensions 0x4294967295"):
        data.read_idx(path)


def test_read_idx_survives_a_header_claiming_terabytes(tmp_path):
    path = write(tmp_path / "big-idx", bytes([0, 0, 8, 4]) + b"\xff" * 16 + b"\1\2\3")
    with pytest.raises(DataError, match="truncated: header says .* file has 3"):
        data.read_idx(path)


def test_read_idx_rejects_missing_file_and_folders(tmp_path):
    with pytest.raises(DataError, match="nothere-idx1-ubyte.gz: no such file"):
        data.read_idx(tmp_path / "nothere-idx1-ubyte.gz")
    with pytest.raises(DataError, match="is a folder"):
        data.read_idx(tmp_path)


# --- read_idx under fuzzing: only success or DataError ---------------------------------

VALID = idx_bytes(np.arange(60).reshape(3, 4, 5))
FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])

header_like = st.builds(
    lambda code, ndim, dims, rest: bytes([0, 0, code, ndim]) + struct.pack(
        f">{len(dims)}I", *dims) + rest,
    st.sampled_from([0x08, 0x08, 0x09, 0x0D, 0xFF]),
    st.integers(0, 6),
    st.lists(st.one_of(st.integers(0, 6), st.integers(0, 2**32 - 1)), max_size=5),
    st.binary(max_size=64),
)


@FUZZ
@given(blob=st.one_of(st.binary(max_size=300), header_like),
       form=st.sampled_from(["raw", "gzip", "gz-name-only"]))
def test_read_idx_on_arbitrary_bytes_only_succeeds_or_raises_data_error(tmp_path, blob, form):
    path = tmp_path / ("fuzz" if form == "raw" else "fuzz.gz")
    path.write_bytes(gzip.compress(blob) if form == "gzip" else blob)
    result = load_quietly(path)
    if result is not None and form != "gz-name-only":
        assert result.size == len(blob) - 4 - 4 * result.ndim


@FUZZ
@given(gz=st.booleans(),
       edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4),
       cut=st.one_of(st.none(), st.integers(0, 200)),
       tail=st.binary(max_size=8))
def test_read_idx_on_mutated_files_only_succeeds_or_raises_data_error(tmp_path, gz, edits,
                                                                      cut, tail):
    blob = bytearray(gzip.compress(VALID, mtime=0) if gz else VALID)
    for position, value in edits:
        blob[position % len(blob)] = value
    blob = bytes(blob[:cut]) + tail
    path = tmp_path / ("mutant.gz" if gz else "mutant")
    path.write_bytes(blob)
    load_quietly(path)


# --- checksums --------------------------------------------------------------------------

def test_sha256_file_matches_hashlib(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc" * 1000)
    assert data.sha256_file(path) == sha256(b"abc" * 1000)


def test_known_mnist_checksums_match_shared_sha256sums():
    # Cross-check the table against the SHA256SUMS shipped beside the real files, if any.
    folder = os.environ.get("NNDL_DATA")
    sums = os.path.join(folder, "mnist", "SHA256SUMS") if folder else ""
    if not os.path.isfile(sums):
        pytest.skip("no SHA256SUMS beside $NNDL_DATA/mnist")
    with open(sums) as f:
        listed = dict(reversed(line.split()) for line in f if line.strip())
    table = {name: known[0][0] for name, known in data.KNOWN_FILES["mnist"].items()}
    assert table == listed


def test_checksum_mismatch_names_expected_and_actual_digest(places, monkeypatch):
    folder = write_fake(places["tmp"] / "mine", marker=0)
    table = pin(monkeypatch, "mnist", marker=0)
    tampered = folder / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(fake_payloads(0)["t10k-labels-idx1-ubyte"])
    raw[-1] = (raw[-1] + 1) % 10  # still a valid IDX file, one label changed
    write(tampered, bytes(raw))
    with pytest.raises(DataError) as e:
        data.load_mnist(folder)
    message = str(e.value)
    assert str(tampered) in message and "sha256 mismatch" in message
    assert table["t10k-labels-idx1-ubyte.gz"][0][0] in message
    assert data.sha256_file(tampered) in message
    assert "verify=False" in message
    # verify=False trusts the file as it is.
    test_labels = data.load_mnist(folder, verify=False)[2][1]
    assert test_labels[-1] == raw[-1]


def test_raw_files_are_accepted_and_checked_against_raw_checksums(places, monkeypatch):
    folder = write_fake(places["tmp"] / "raw", marker=3, gz=False)
    pin(monkeypatch, "mnist", marker=3)
    assert marker_of(data.load_mnist(folder)) == 3
    with open(folder / "train-labels-idx1-ubyte", "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"\x00")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte: sha256 mismatch"):
        data.load_mnist(folder)


def test_recompressed_gz_passes_when_its_payload_matches(places, monkeypatch):
    # Debian's Fashion-MNIST .gz files differ from Zalando's only in the gzip header.
    folder = write_fake(places["tmp"] / "repacked", marker=4)
    pin(monkeypatch, "fashion-mnist", marker=4)
    for stem, raw in fake_payloads(4).items():
        (folder / f"{stem}.gz").write_bytes(gzip.compress(raw, compresslevel=1, mtime=12345))
    assert marker_of(data.load_fashion_mnist(folder)) == 4


def test_fashion_mnist_table_accepts_zalando_and_debian_copies():
    for stem in STEMS:
        known = data.KNOWN_FILES["fashion-mnist"][stem + ".gz"]
        assert len(known) == 2 and len({digest for digest, _ in known}) == 2


# --- where the files are looked for ----------------------------------------------------

@pytest.mark.parametrize("nested", [False, True])
def test_explicit_path_beats_nndl_data_beats_project_folder(places, monkeypatch, nested):
    def folder(name, marker):
        base = places["tmp"] / name
        write_fake(base / "mnist" if nested else base, marker=marker)
        return base

    explicit, env = folder("explicit", 1), folder("env", 2)
    write_fake(places["project"] / "mnist", marker=3)
    monkeypatch.setenv("NNDL_DATA", str(env))
    assert marker_of(data.load_mnist(explicit, verify=False)) == 1
    assert marker_of(data.load_mnist(verify=False)) == 2
    monkeypatch.delenv("NNDL_DATA")
    assert marker_of(data.load_mnist(verify=False)) == 3


def test_an_explicit_path_without_the_files_does_not_fall_through_to_nndl_data(places,
                                                                             monkeypatch):
    monkeypatch.setenv("NNDL_DATA", str(write_fake(places["tmp"] / "env" / "mnist", marker=2)))
    (places["tmp"] / "empty").mkdir()
    with pytest.raises(DataError, match="MNIST not found") as e:
        data.load_mnist(places["tmp"] / "empty", verify=False, download=False)
    assert str(places["tmp"] / "empty") in str(e.value)
    assert str(places["tmp"] / "env") not in str(e.value)
    with pytest.raises(DataError, match="no such folder"):
        data.load_mnist(places["tmp"] / "missing", verify=False)
    assert not (places["tmp"] / "missing").exists()


def test_a_folder_with_some_of_the_files_is_skipped(places, monkeypatch):
    partial = write_fake(places["tmp"] / "partial", marker=1)
    (partial / "t10k-images-idx3-ubyte.gz").unlink()
    write_fake(places["project"] / "mnist", marker=3)
    monkeypatch.setenv("NNDL_DATA", str(partial))
    assert marker_of(data.load_mnist(verify=False)) == 3
    with pytest.raises(DataError, match="only train-images"):
        data.load_mnist(partial, verify=False, download=False)


def test_fashion_mnist_uses_its_own_subfolder(places, monkeypatch):
    write_fake(places["tmp"] / "env" / "mnist", marker=1)
    write_fake(places["tmp"] / "env" / "fashion-mnist", marker=2)
    monkeypatch.setenv("NNDL_DATA", str(places["tmp"] / "env"))
    assert marker_of(data.load_mnist(verify=False)) == 1
    assert marker_of(data.load_fashion_mnist(verify=False)) == 2


def test_fashion_mnist_searches_the_debian_folder_after_the_project(places, monkeypatch):
    pin(monkeypatch, "fashion-mnist", marker=5)
    write_fake(places["system"], marker=5)
    training, validation, test = data.load_fashion_mnist()
    assert marker_of((training,)) == 5
    assert training[0].shape == (50_000, 4) and validation[0].shape == (10_000, 4)
    write_fake(places["project"] / "fashion-mnist", marker=6)
    assert marker_of(data.load_fashion_mnist(verify=False)) == 6


def test_offline_without_data_says_where_to_put_the_files_in_a_few_lines(places, monkeypatch):
    monkeypatch.setenv("NNDL_DATA", str(places["tmp"] / "env"))
    with pytest.raises(DataError) as e:
        data.load_mnist()
    message = str(e.value)
    assert "MNIST not found" in message and len(message.splitlines()) <= 4
    for searched in ["env", os.path.join("env", "mnist"), str(places["project"] / "mnist")]:
        assert str(places["tmp"] / searched) in message
    assert "tests never use the network" in message
    assert "--data DIR" in message and "NNDL_DATA" in message and "path=" not in message
    for stem in STEMS:
        assert stem + ".gz" in message
    assert not places["project"].exists()  # the download's folder is gone again


def test_a_failed_download_into_an_existing_project_folder_keeps_it(places):
    (places["project"] / "mnist").mkdir(parents=True)
    with pytest.raises(DataError, match="tests never use the network"):
        data.load_mnist()
    assert (places["project"] / "mnist").is_dir()


@pytest.mark.parametrize("kwargs, says", [
    (dict(path=True), "path must be"), (dict(path=3), "path must be"),
    (dict(verify="no"), "verify must be True or False"),
    (dict(download=1), "download must be True or False"),
    (dict(dtype="int8"), "dtype must be"),
])
def test_loader_arguments_of_the_wrong_type_are_config_errors(places, kwargs, says):
    with pytest.raises(ConfigError, match=says):
        data.load_mnist(**kwargs)


def test_download_false_never_fetches(places, monkeypatch):
    def fail(url, out):
        raise AssertionError("download=False must not fetch")

    monkeypatch.setattr(data, "_fetch", fail)
    with pytest.raises(DataError, match="download=False"):
        data.load_fashion_mnist(download=False)


# --- downloading ------------------------------------------------------------------------

def serve(monkeypatch, body_for):
    """Replace urlopen by one answering body_for(url) (bytes, or an exception to raise)."""
    urls = []

    def urlopen(url, timeout=None):
        assert timeout is not None and timeout <= 60
        urls.append(url)
        body = body_for(url)
        if isinstance(body, Exception):
            raise body
        return io.BytesIO(body)

    monkeypatch.setattr(data, "_fetch", REAL_FETCH)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return urls


def gz_body(url, marker=0):
    stem = url.rsplit("/", 1)[1].removesuffix(".gz")
    return gzip.compress(fake_payloads(marker)[stem], mtime=0)


def test_download_lands_verified_files_atomically(places, monkeypatch):
    pin(monkeypatch, "mnist", marker=7)
    target = places["project"] / "mnist"

    def body(url):
        name = url.rsplit("/", 1)[1]
        # mid-download the bytes go to a hidden .part file, never to the final name
        assert not (target / name).exists()
        assert any(p.name.startswith(f".{name}.") and p.name.endswith(".part")
                   for p in target.iterdir())
        return gz_body(url, marker=7)

    urls = serve(monkeypatch, body)
    assert marker_of(data.load_mnist()) == 7
    assert sorted(p.name for p in target.iterdir()) == sorted(s + ".gz" for s in STEMS)
    assert [u.rsplit("/", 1)[1] for u in urls] == [s + ".gz" for s in STEMS]
    assert all(u.startswith(data._DATASETS["mnist"].mirrors[0]) for u in urls)


def test_download_with_wrong_checksum_leaves_nothing_behind(places, monkeypatch):
    pin(monkeypatch, "mnist", marker=7)
    serve(monkeypatch, lambda url: gz_body(url, marker=8))
    with pytest.raises(DataError) as e:
        data.load_mnist()
    assert "sha256 mismatch" in str(e.value) and "NNDL_DATA" in str(e.value)
    assert not (places["project"] / "mnist").exists()  # no partial file, no empty folder


def test_download_falls_back_to_the_next_mirror(places, monkeypatch):
    pin(monkeypatch, "fashion-mnist", marker=7)
    first, second = data._DATASETS["fashion-mnist"].mirrors

    def body(url):
        if url.startswith(first):
            return b"<html>moved</html>" if "images" in url else urllib.error.URLError("down")
        return gz_body(url, marker=7)

    urls = serve(monkeypatch, body)
    assert marker_of(data.load_fashion_mnist()) == 7
    assert len(urls) == 8
    names = sorted(p.name for p in (places["project"] / "fashion-mnist").iterdir())
    assert names == sorted(s + ".gz" for s in STEMS)


def test_interrupted_download_leaves_no_partial_file(places, monkeypatch):
    pin(monkeypatch, "mnist", marker=7)

    class Broken(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 100:
                raise ConnectionResetError("connection reset by peer")
            return super().read(min(size, 64) if size and size > 0 else 64)

    def urlopen(url, timeout=None):
        return Broken(gz_body(url, marker=7))

    monkeypatch.setattr(data, "_fetch", REAL_FETCH)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    with pytest.raises(DataError, match="connection reset by peer"):
        data.load_mnist()
    assert not (places["project"] / "mnist").exists()  # no partial file, no empty folder


def test_download_fetches_only_the_missing_files(places, monkeypatch):
    pin(monkeypatch, "mnist", marker=7)
    target = write_fake(places["project"] / "mnist", marker=7)
    (target / "train-labels-idx1-ubyte.gz").unlink()
    urls = serve(monkeypatch, lambda url: gz_body(url, marker=7))
    assert marker_of(data.load_mnist()) == 7
    assert [u.rsplit("/", 1)[1] for u in urls] == ["train-labels-idx1-ubyte.gz"]


# --- load_mnist's arrays ----------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32, "float32", "float64",
                                   np.dtype("float32")])
def test_load_gives_the_books_split_in_the_requested_dtype(places, monkeypatch, dtype):
    pin(monkeypatch, "mnist", marker=0)
    folder = write_fake(places["tmp"] / "d", marker=0)
    sets = data.load_mnist(folder, dtype=dtype)
    for (X, y), n in zip(sets, [50_000, 10_000, 10_000]):
        assert X.shape == (n, 4) and X.dtype == np.dtype(dtype) and X.flags.c_contiguous
        assert y.shape == (n,) and y.dtype == np.int64
        assert X.min() >= 0 and X.max() <= 1
    (X, y), (Xv, yv), _ = sets
    # validation is the last 10,000 training images, in order
    assert yv[0] == 50_000 % 10 and Xv[0, 0] * 255 == pytest.approx(50_000 * 4 % 256)
    assert X[0].tolist() == pytest.approx([0, 1 / 255, 2 / 255, 3 / 255])


@pytest.mark.parametrize("dtype", [np.int64, np.float16, "int8", None, "bogus", object])
def test_load_rejects_dtypes_other_than_float32_and_float64(places, dtype):
    with pytest.raises(ConfigError, match="dtype must be float32 or float64"):
        data.load_mnist(dtype=dtype)


def test_load_rejects_labels_that_are_not_digits(places):
    folder = write_fake(places["tmp"] / "d")
    write(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.full(N_TEST, 12)))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: label 12 is not a digit"):
        data.load_mnist(folder, verify=False)


def test_load_rejects_label_count_unlike_image_count(places):
    folder = write_fake(places["tmp"] / "d")
    write(folder / "t10k-labels-idx1-ubyte.gz", idx_bytes(np.zeros(N_TEST - 1)))
    with pytest.raises(DataError, match="expected 10000 labels"):
        data.load_mnist(folder, verify=False)


# --- one_hot and vectorized_result -----------------------------------------------------

def test_one_hot_puts_a_single_one_in_each_row():
    out = data.one_hot(np.array([3, 0, 9]))
    assert out.shape == (3, 10) and out.dtype == np.float64
    np.testing.assert_array_equal(out.argmax(axis=1), [3, 0, 9])
    np.testing.assert_array_equal(out.sum(axis=1), 1)
    assert data.one_hot([1], n_classes=2, dtype=np.float32).tolist() == [[0, 1]]
    assert data.one_hot([2.0, 0.0], n_classes=3).tolist() == [[0, 0, 1], [1, 0, 0]]
    assert data.one_hot(np.array([], dtype=np.int64)).shape == (0, 10)


@pytest.mark.parametrize("labels, bad", [([1, 10], "10"), ([-1], "-1"), ([2.5], "2.5"),
                                         ([np.nan], "nan"), ([np.inf], "inf"),
                                         (["3"], "'3'"), ([True], "True")])
def test_one_hot_names_the_bad_label(labels, bad):
    with pytest.raises(DataError, match=f"got {bad}|label {bad} is outside"):
        data.one_hot(labels)


def test_one_hot_rejects_bad_arguments():
    with pytest.raises(DataError, match="1-D"):
        data.one_hot([[1, 2]])
    for n_classes in (0, 2.5, True):
        with pytest.raises(ConfigError, match="n_classes"):
            data.one_hot([0], n_classes=n_classes)


def test_vectorized_result_is_the_books_column():
    e = mnist_loader.vectorized_result(4)
    assert e.shape == (10, 1) and e[4, 0] == 1.0 and e.sum() == 1.0


# --- the real MNIST (NNDL_DATA points at it in CI; absent data fails, never skips) -----

def test_real_mnist_has_the_books_shapes_and_dtype(mnist):
    for (X, y), n in zip(mnist, [50_000, 10_000, 10_000]):
        assert X.shape == (n, 784) and X.dtype == np.float64 and X.flags.c_contiguous
        assert y.shape == (n,) and y.dtype == np.int64
        assert X.min() == 0.0 and X.max() == 1.0


def test_real_mnist_labels_are_lecuns(mnist):
    (X, y), (Xv, yv), (Xt, yt) = mnist
    assert y[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert yt[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    train_counts = np.bincount(np.concatenate([y, yv]), minlength=10)
    assert train_counts.tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    # pixels / 255: the published mean 0.1307 of all 60,000 training images
    assert (X.sum() + Xv.sum()) / (60_000 * 784) == pytest.approx(0.1307, abs=1e-4)


def test_real_mnist_in_float32_matches_float64(mnist):
    sets = data.load_mnist(dtype="float32")
    for (X32, y32), (X64, y64) in zip(sets, mnist):
        assert X32.dtype == np.float32 and X32.shape == X64.shape
        np.testing.assert_array_equal(X32[:100], X64[:100].astype(np.float32))
        np.testing.assert_array_equal(y32, y64)


def test_mnist_loader_gives_the_books_formats(mnist):
    training, validation, test = mnist_loader.load_data_wrapper()
    assert all(isinstance(s, list) for s in (training, validation, test))
    assert [len(s) for s in (training, validation, test)] == [50_000, 10_000, 10_000]
    x, y = training[0]
    assert x.shape == (784, 1) and x.dtype == np.float64 and y.shape == (10, 1)
    assert y[5, 0] == 1.0 and y.sum() == 1.0
    np.testing.assert_array_equal(x[:, 0], mnist[0][0][0])
    assert training[-1][1].argmax() == mnist[0][1][-1]
    for s, (X, labels) in ((validation, mnist[1]), (test, mnist[2])):
        x, label = s[0]
        assert x.shape == (784, 1) and type(label) is int and label == labels[0]
        assert type(s[-1][1]) is int and s[-1][1] == labels[-1]
    assert test[0][1] == 7


def test_mnist_loader_load_data_is_load_mnist_in_float64(monkeypatch):
    calls = []
    monkeypatch.setattr(data, "load_mnist", lambda *a, **k: calls.append((a, k)) or "sets")
    assert mnist_loader.load_data("some/folder") == "sets"
    assert calls == [(("some/folder",), {"dtype": np.float64})]


@pytest.mark.skipif(not data._DATASETS["fashion-mnist"].system_dirs[0].is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_from_the_debian_package():
    folder = data._DATASETS["fashion-mnist"].system_dirs[0]
    training, validation, test = data.load_fashion_mnist(folder, dtype="float32")
    assert training[0].shape == (50_000, 784) and test[0].shape == (10_000, 784)
    assert training[1][:5].tolist() == [9, 0, 0, 3, 0]
    assert np.bincount(test[1]).tolist() == [1000] * 10
