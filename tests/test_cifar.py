"""nndl.cifar: CIFAR-10's binary batches, written here byte by byte from the format's
description, found, verified, downloaded and read as MNIST's files are."""
import hashlib
import io
import os
import tarfile
import urllib.error
import urllib.request

import numpy as np
import pytest

import nndl
from nndl import cifar, data
from nndl.errors import ConfigError, DataError

REAL_FETCH = data._fetch
NAMES = [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]
SIZES = dict(zip(NAMES, [3, 2, 2, 1, 2, 4]))         # records per fake batch file
RECORD = 3073


def batch_bytes(name, marker=0):
    """A fake batch: each record a label byte, then 3,072 pixel bytes.  Pixel bytes
    follow a pattern unique to (file, record, position), labels cycle through 0-9."""
    k = NAMES.index(name)
    out = bytearray()
    for n in range(SIZES[name]):
        out.append((k + 3 * n + marker) % 10)
        out += bytes((7 * k + 13 * n + p + marker) % 256 for p in range(3072))
    return bytes(out)


def write_batches(folder, marker=0, names=NAMES):
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(batch_bytes(name, marker))
    return folder


def archive_bytes(marker=0, members=None):
    """cifar-10-binary.tar.gz in the official layout: cifar-10-batches-bin/<batch files>."""
    members = {f"cifar-10-batches-bin/{name}": batch_bytes(name, marker) for name in NAMES} \
        if members is None else members
    members.setdefault("cifar-10-batches-bin/batches.meta.txt", "\n".join(cifar.CLASSES).encode())
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, raw in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return buf.getvalue()


def write_archive(folder, marker=0, members=None):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "cifar-10-binary.tar.gz"
    path.write_bytes(archive_bytes(marker, members))
    return path


def pin(monkeypatch, raw):
    """Make `raw` the only known-good copy of the archive."""
    monkeypatch.setitem(data.KNOWN_FILES, "cifar-10", {
        "cifar-10-binary.tar.gz": ((hashlib.sha256(raw).hexdigest(), len(raw)),)})


def marker_of(loaded):
    """Which fake data set was loaded: the first training label is the marker."""
    return int(loaded[0][1][0])


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def offline(url, out):
        raise urllib.error.URLError("tests never use the network")

    monkeypatch.setattr(data, "_fetch", offline)


@pytest.fixture
def places(tmp_path, monkeypatch):
    """Every place the loader searches, pointed at empty temporary folders."""
    monkeypatch.delenv("NNDL_DATA", raising=False)
    project = tmp_path / "project" / "data"
    monkeypatch.setattr(data, "_project_data_dir", lambda: project)
    return {"tmp": tmp_path, "project": project}


# --- the format ---------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_each_record_is_a_label_then_the_red_green_and_blue_planes_row_by_row(places, dtype):
    folder = write_batches(places["tmp"] / "cifar")
    (X, y), (X_test, y_test) = cifar.load_cifar10(folder, dtype=dtype, verify=False)
    n_train = sum(SIZES[name] for name in NAMES[:5])
    assert X.shape == (n_train, 3, 32, 32) and X_test.shape == (SIZES["test_batch.bin"], 3, 32, 32)
    assert X.dtype == dtype and X_test.dtype == dtype and y.dtype == np.int64
    assert X.min() >= 0 and X.max() <= 1 and X.max() == 1.0
    # example e is record n of a batch; its byte 1 + c·1024 + i·32 + j is pixel (c, i, j)
    e = 0
    for name in NAMES[:5]:
        raw = batch_bytes(name)
        for n in range(SIZES[name]):
            record = raw[n * RECORD:(n + 1) * RECORD]
            assert y[e] == record[0]
            for c, i, j in [(0, 0, 0), (0, 0, 31), (0, 1, 0), (1, 0, 0), (2, 31, 31), (1, 17, 5)]:
                assert X[e, c, i, j] == dtype(record[1 + c * 1024 + i * 32 + j]) / dtype(255)
            e += 1
    test_raw = np.frombuffer(batch_bytes("test_batch.bin"), np.uint8).reshape(-1, RECORD)
    np.testing.assert_array_equal(y_test, test_raw[:, 0])
    np.testing.assert_array_equal(X_test.reshape(len(X_test), -1) * 255, test_raw[:, 1:].astype(dtype))


def test_read_batch_gives_uint8_images_and_labels(tmp_path):
    path = write_batches(tmp_path, names=["data_batch_2.bin"]) / "data_batch_2.bin"
    images, labels = cifar.read_batch(path)
    assert images.shape == (2, 3, 32, 32) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [1, 4])
    assert images[1, 2, 3, 4] == batch_bytes("data_batch_2.bin")[RECORD + 1 + 2 * 1024 + 3 * 32 + 4]


@pytest.mark.parametrize("size, what", [
    (RECORD * 2 - 1, "6,145 bytes is not a whole number of 3,073-byte records (1 label byte, then "
                     "3,072 pixel bytes); 3,073 bytes of whole records, then 3,072 bytes over"),
    (RECORD * 2 + 5, "6,146 bytes of whole records, then 5 bytes over"),
    (0, "0 bytes is not a whole number"), (100, "0 bytes of whole records, then 100 bytes over")])
def test_a_truncated_or_wrong_size_batch_names_the_file(places, size, what):
    folder = write_batches(places["tmp"] / "cifar")
    bad = folder / "data_batch_3.bin"
    bad.write_bytes(batch_bytes("data_batch_1.bin")[:size])            # 3 records long
    with pytest.raises(DataError) as e:
        cifar.load_cifar10(folder, verify=False)
    message = str(e.value)
    assert message.startswith(str(bad)) and "truncated or wrong size" in message and what in message


def test_verify_demands_the_official_10000_records_of_an_unpacked_batch(places):
    folder = write_batches(places["tmp"] / "cifar")
    with pytest.raises(DataError) as e:
        cifar.load_cifar10(folder)
    message = str(e.value)
    assert str(folder / "data_batch_1.bin") in message and "10,000" in message
    assert "verify=False" in message


def test_a_label_outside_0_to_9_names_the_file_and_record(places):
    folder = write_batches(places["tmp"] / "cifar")
    raw = bytearray(batch_bytes("test_batch.bin"))
    raw[2 * RECORD] = 10
    (folder / "test_batch.bin").write_bytes(bytes(raw))
    with pytest.raises(DataError, match=r"test_batch.bin: record 2 has label 10"):
        cifar.load_cifar10(folder, verify=False)


def test_a_folder_where_a_batch_should_be_is_a_data_error(tmp_path):
    (tmp_path / "data_batch_1.bin").mkdir()
    with pytest.raises(DataError, match="is a folder"):
        cifar.read_batch(tmp_path / "data_batch_1.bin")
    with pytest.raises(DataError, match="no such file"):
        cifar.read_batch(tmp_path / "missing.bin")


@pytest.mark.parametrize("dtype", [np.int64, "float16", "int32"])
def test_only_float32_and_float64_are_offered(places, dtype):
    folder = write_batches(places["tmp"] / "cifar")
    with pytest.raises(ConfigError, match="float32 or float64"):
        cifar.load_cifar10(folder, dtype=dtype, verify=False)


# --- the archive --------------------------------------------------------------------------

def test_the_archive_is_read_without_unpacking_and_gives_the_same_arrays(places, monkeypatch):
    unpacked = cifar.load_cifar10(write_batches(places["tmp"] / "unpacked", marker=4), verify=False)
    archive = write_archive(places["tmp"] / "packed", marker=4)
    pin(monkeypatch, archive.read_bytes())
    packed = cifar.load_cifar10(archive.parent)                    # verified by its checksum
    for (a, b), (c, d) in zip(unpacked, packed):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)
    assert os.listdir(archive.parent) == ["cifar-10-binary.tar.gz"]


def test_path_may_name_the_archive_itself(places):
    archive = write_archive(places["tmp"] / "downloads", marker=8)
    assert marker_of(cifar.load_cifar10(archive, verify=False)) == 8
    assert marker_of(cifar.load_cifar10(str(archive), verify=False)) == 8


def test_an_archive_that_is_not_the_official_one_fails_verification(places, monkeypatch):
    pin(monkeypatch, b"the official bytes")
    archive = write_archive(places["tmp"] / "packed", marker=2)
    with pytest.raises(DataError) as e:
        cifar.load_cifar10(archive.parent)
    assert str(archive) in str(e.value) and "sha256 mismatch" in str(e.value)
    assert marker_of(cifar.load_cifar10(archive.parent, verify=False)) == 2


def test_a_truncated_member_of_the_archive_names_archive_and_member(places):
    members = {f"cifar-10-batches-bin/{name}": batch_bytes(name) for name in NAMES}
    members["cifar-10-batches-bin/data_batch_4.bin"] = batch_bytes("data_batch_4.bin")[:-1]
    archive = write_archive(places["tmp"], members=members)
    with pytest.raises(DataError) as e:
        cifar.load_cifar10(places["tmp"], verify=False)
    assert str(e.value).startswith(f"{archive} (cifar-10-batches-bin/data_batch_4.bin): truncated")


def test_an_archive_missing_a_batch_says_which(places):
    members = {f"cifar-10-batches-bin/{name}": batch_bytes(name) for name in NAMES[1:]}
    archive = write_archive(places["tmp"], members=members)
    with pytest.raises(DataError, match="has no cifar-10-batches-bin/data_batch_1.bin"):
        cifar.load_cifar10(archive.parent, verify=False)


@pytest.mark.parametrize("cut", [10, 0.5])
def test_a_damaged_archive_is_a_data_error_naming_it(places, cut):
    raw = archive_bytes()
    archive = places["tmp"] / "cifar-10-binary.tar.gz"
    archive.write_bytes(raw[:cut] if isinstance(cut, int) else raw[:int(len(raw) * cut)])
    with pytest.raises(DataError) as e:
        cifar.load_cifar10(places["tmp"], verify=False)
    assert str(e.value).startswith(str(archive))


# --- finding the files --------------------------------------------------------------------

@pytest.mark.parametrize("layout", ["flat", "batches-bin", "cifar-10/batches-bin", "archive"])
def test_explicit_path_beats_nndl_data_beats_project_folder(places, monkeypatch, layout):
    def put(folder, marker):
        if layout == "archive":
            write_archive(folder, marker)
        elif layout == "flat":
            write_batches(folder, marker)
        elif layout == "batches-bin":
            write_batches(folder / "cifar-10-batches-bin", marker)
        else:
            write_batches(folder / "cifar-10" / "cifar-10-batches-bin", marker)

    put(places["tmp"] / "mine", 1)
    put(places["tmp"] / "env", 2)
    put(places["project"] / "cifar-10" if layout != "cifar-10/batches-bin" else places["project"], 3)
    monkeypatch.setenv("NNDL_DATA", str(places["tmp"] / "env"))
    assert marker_of(cifar.load_cifar10(places["tmp"] / "mine", verify=False)) == 1
    assert marker_of(cifar.load_cifar10(verify=False)) == 2
    monkeypatch.delenv("NNDL_DATA")
    assert marker_of(cifar.load_cifar10(verify=False)) == 3


def test_a_folder_with_only_some_batches_is_skipped(places, monkeypatch):
    write_batches(places["tmp"] / "some", names=NAMES[:2])
    write_batches(places["project"] / "cifar-10", marker=5)
    monkeypatch.setenv("NNDL_DATA", str(places["tmp"] / "some"))
    assert marker_of(cifar.load_cifar10(verify=False)) == 5


def test_a_folder_given_is_the_only_one_searched(places):
    write_batches(places["tmp"] / "some", names=NAMES[:2])
    write_batches(places["project"] / "cifar-10", marker=5)
    with pytest.raises(DataError, match="only data_batch_1.bin, data_batch_2.bin"):
        cifar.load_cifar10(places["tmp"] / "some", verify=False)
    with pytest.raises(DataError, match="no such folder"):
        cifar.load_cifar10(places["tmp"] / "missing")


def test_offline_without_data_says_where_to_put_the_files(places, monkeypatch):
    monkeypatch.setenv("NNDL_DATA", str(places["tmp"] / "env"))
    with pytest.raises(DataError) as e:
        cifar.load_cifar10()
    message = str(e.value)
    assert message.startswith("CIFAR-10 not found in")
    assert len(message.splitlines()) <= 4
    for searched in ["env", os.path.join("env", "cifar-10")]:
        assert f"{places['tmp'] / searched} (NNDL_DATA: no such folder)" in message
    assert "tests never use the network" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert "--data DIR" in message and "NNDL_DATA" in message and "path=" not in message
    assert "cifar-10-batches-bin/" in message
    assert not (places["project"] / "cifar-10").exists()  # no empty folder left behind


def test_download_false_never_fetches(places, monkeypatch):
    def fail(url, out):
        raise AssertionError("download=False must not fetch")

    monkeypatch.setattr(data, "_fetch", fail)
    with pytest.raises(DataError, match=r"download=False"):
        cifar.load_cifar10(download=False)


# --- downloading --------------------------------------------------------------------------

def serve(monkeypatch, body):
    urls = []

    def urlopen(url, timeout=None):
        assert timeout is not None and timeout <= 60
        urls.append(url)
        return io.BytesIO(body(url))

    monkeypatch.setattr(data, "_fetch", REAL_FETCH)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    return urls


def test_download_lands_the_verified_archive_atomically(places, monkeypatch):
    raw = archive_bytes(marker=6)
    pin(monkeypatch, raw)
    target = places["project"] / "cifar-10"

    def body(url):
        # mid-download the bytes go to a hidden .part file, never to the final name
        assert not (target / "cifar-10-binary.tar.gz").exists()
        assert any(p.name.endswith(".part") for p in target.iterdir())
        return raw

    urls = serve(monkeypatch, body)
    assert marker_of(cifar.load_cifar10()) == 6
    assert urls == ["https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"]
    assert os.listdir(target) == ["cifar-10-binary.tar.gz"]
    assert marker_of(cifar.load_cifar10()) == 6 and len(urls) == 1   # found there next time


def test_a_download_with_the_wrong_checksum_leaves_nothing_behind(places, monkeypatch):
    pin(monkeypatch, archive_bytes(marker=6))
    serve(monkeypatch, lambda url: archive_bytes(marker=7))
    with pytest.raises(DataError) as e:
        cifar.load_cifar10()
    assert "sha256 mismatch" in str(e.value) and "NNDL_DATA" in str(e.value)
    assert not (places["project"] / "cifar-10").exists()  # nothing left, not even the folder


def test_nndl_exports_the_loader():
    assert nndl.load_cifar10 is cifar.load_cifar10
    assert len(cifar.CLASSES) == 10 and cifar.CLASSES[0] == "airplane" and cifar.CLASSES[9] == "truck"


# --- the real files, where a machine has them ----------------------------------------------

@pytest.mark.slow
def test_real_cifar10_has_5000_and_1000_images_of_each_class():
    try:
        (X, y), (X_test, y_test) = cifar.load_cifar10(dtype=np.float32, download=False)
    except DataError as e:
        if "not found" in str(e):
            pytest.skip("CIFAR-10 is not on this machine")
        raise
    assert X.shape == (50_000, 3, 32, 32) and X_test.shape == (10_000, 3, 32, 32)
    np.testing.assert_array_equal(np.bincount(y), [5000] * 10)
    np.testing.assert_array_equal(np.bincount(y_test), [1000] * 10)
    assert 0.4 < X.mean() < 0.55
