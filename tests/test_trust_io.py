"""nndl/io.py against a hostile user: where saves may write, what OS failures become,
and model files that lie about their arrays.

The tests run as root in CI containers, where a read-only folder is writable anyway, so
read-only and full file systems are simulated by making the os calls fail.
"""
import errno
import io as _io
import json
import os
import socket
import stat
import subprocess
import sys
import time
import warnings
import zipfile

import numpy as np
import pytest

from nndl import ConfigError, FormatError, NNDLError, SaveError, io

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_bytes(path, data=b"new"):
    with io.atomic_write(path) as f:
        f.write(data)


def temps(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(io.TEMP_SUFFIX))


# -- what a save may replace -------------------------------------------------------------

def make_folder(p):
    p.mkdir()


def make_fifo(p):
    os.mkfifo(p)


def make_device(p):
    # A private copy of /dev/null's device node: if the refusal ever broke, the test
    # would replace this node, not the system's /dev/null.
    try:
        os.mknod(p, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, AttributeError):
        pytest.skip("cannot make a device node here")


def make_socket(p):
    s = socket.socket(socket.AF_UNIX)
    cwd = os.getcwd()
    os.chdir(p.parent)  # a short relative name: AF_UNIX paths are limited to ~100 bytes
    try:
        s.bind(p.name)
    finally:
        os.chdir(cwd)
    return s


def make_link_to_folder(p):
    (p.parent / "elsewhere").mkdir()
    p.symlink_to(p.parent / "elsewhere")


def make_link_loop(p):
    p.symlink_to(p.parent / "loop-b")
    (p.parent / "loop-b").symlink_to(p)


NOT_REGULAR = [
    ("folder", make_folder, "a folder"),
    ("fifo", make_fifo, "a FIFO"),
    ("device", make_device, "a character device"),
    ("socket", make_socket, "a socket"),
    ("link to a folder", make_link_to_folder, "a folder"),
    ("link loop", make_link_loop, "loop of symlinks"),
]


@pytest.mark.parametrize("what, make, says", NOT_REGULAR, ids=[c[0] for c in NOT_REGULAR])
def test_a_target_that_is_not_a_regular_file_is_refused_and_left_as_it_was(tmp_path, what, make,
                                                                           says):
    target = tmp_path / "net.npz"
    keep = make(target)
    before = os.lstat(target)
    with pytest.raises(SaveError, match=says) as e:
        write_bytes(target)
    assert str(target) in str(e.value)
    after = os.lstat(target)
    assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
    assert temps(tmp_path) == []
    if keep is not None:
        keep.close()


def test_a_symlink_keeps_pointing_where_it_did_and_its_target_is_replaced(tmp_path):
    real = tmp_path / "runs" / "net-3.npz"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "latest.npz"
    link.symlink_to(os.path.join("runs", "net-3.npz"))
    write_bytes(link, b"new")
    assert link.is_symlink() and os.readlink(link) == os.path.join("runs", "net-3.npz")
    assert real.read_bytes() == b"new"
    assert temps(real.parent) == [] and temps(tmp_path) == []


def test_a_dangling_symlink_gets_its_target_created(tmp_path):
    link = tmp_path / "latest.npz"
    link.symlink_to(tmp_path / "net-4.npz")
    write_bytes(link, b"new")
    assert link.is_symlink() and (tmp_path / "net-4.npz").read_bytes() == b"new"


# -- folders: none created, bad ones named ------------------------------------------------

def test_a_missing_folder_is_an_error_naming_it_and_nothing_is_created(tmp_path):
    with pytest.raises(SaveError, match="does not exist") as e:
        write_bytes(tmp_path / "new" / "sub" / "net.npz")
    assert str(tmp_path / "new" / "sub") in str(e.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("under", ["a-file/net.npz", "a-file/sub/net.npz"])
def test_a_path_under_a_regular_file_is_an_error(tmp_path, under):
    (tmp_path / "a-file").write_bytes(b"x")
    with pytest.raises(SaveError, match="not a folder"):
        write_bytes(tmp_path / under)
    assert (tmp_path / "a-file").read_bytes() == b"x"


@pytest.mark.parametrize("path", ["", None, True, 3, b"\0x".decode()])
def test_a_path_of_the_wrong_type_is_a_config_error(path):
    with pytest.raises(ConfigError, match="path"):
        write_bytes(path)


@pytest.mark.parametrize("path", ["folder/", "."])
def test_a_name_that_is_a_folder_is_refused(tmp_path, monkeypatch, path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    with pytest.raises(SaveError, match="folder"):
        write_bytes(path)


# -- the system failing ---------------------------------------------------------------------

def fail_with(code):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))
    return fail


@pytest.mark.parametrize("where, code", [
    ("tempfile.mkstemp", errno.EROFS),   # a read-only file system: no file can be created
    ("tempfile.mkstemp", errno.EACCES),  # a folder we may not write to
    ("os.fsync", errno.ENOSPC),          # the disk filled up while writing
    ("os.fsync", errno.EIO),
    ("os.replace", errno.EXDEV),
])
def test_os_failures_are_save_errors_naming_the_path_and_cause_leaving_the_old_file(
        tmp_path, monkeypatch, where, code):
    target = tmp_path / "net.npz"
    target.write_bytes(b"old")
    module, name = where.split(".")
    monkeypatch.setattr({"os": os, "tempfile": io.tempfile}[module], name, fail_with(code))
    with pytest.raises(SaveError) as e:
        write_bytes(target)
    monkeypatch.undo()
    message = str(e.value)
    assert str(target) in message and os.strerror(code) in message and "\n" not in message
    assert e.value.errno == code and isinstance(e.value, OSError) and isinstance(e.value, NNDLError)
    assert target.read_bytes() == b"old" and temps(tmp_path) == []


def test_a_full_disk_during_the_callers_write_is_a_save_error_and_leaves_no_temp(tmp_path):
    target = tmp_path / "net.json"
    with pytest.raises(SaveError, match="No space left on device"):
        with io.atomic_write(target, "w") as f:
            f.write("{")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert os.listdir(tmp_path) == []


def test_other_errors_in_the_callers_block_pass_through_and_clean_up(tmp_path):
    with pytest.raises(TypeError):
        with io.atomic_write(tmp_path / "r.json", "w") as f:
            json.dump({"x": object()}, f)
    assert os.listdir(tmp_path) == []


def test_check_writable_creates_nothing_and_reports_a_read_only_folder(tmp_path, monkeypatch):
    assert io.check_writable(tmp_path / "net.npz") == str(tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(io.tempfile, "mkstemp", fail_with(errno.EROFS))
    with pytest.raises(SaveError, match="Read-only file system"):
        io.check_writable(tmp_path / "net.npz")


# -- permissions -------------------------------------------------------------------------------

@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o002, 0o664),
                                        (0o077, 0o600)])
def test_a_new_file_gets_0666_less_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    write_bytes(tmp_path / "net.npz")
    assert stat.S_IMODE(os.stat(tmp_path / "net.npz").st_mode) == mode


def test_a_replaced_file_keeps_its_permissions(tmp_path, umask):
    target = tmp_path / "net.npz"
    target.write_bytes(b"old")
    os.chmod(target, 0o604)
    write_bytes(target)
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o604 and target.read_bytes() == b"new"


# -- temporary files left by a killed save -------------------------------------------------

def stale(folder, name, age=3600):
    p = folder / name
    p.write_bytes(b"half a file")
    t = time.time() - age
    os.utime(p, (t, t))
    return p


def test_only_abandoned_temp_files_of_the_same_target_are_removed(tmp_path):
    import fcntl

    abandoned = stale(tmp_path, ".net.npz.abcd_123.nndl-tmp")
    fresh = stale(tmp_path, ".net.npz.fresh123.nndl-tmp", age=1)       # a save just started
    locked = stale(tmp_path, ".net.npz.locked12.nndl-tmp")              # a save still writing
    other = stale(tmp_path, ".other.npz.abcd1234.nndl-tmp")             # another target's
    odd = stale(tmp_path, ".net.npz.not-ours-at-all.nndl-tmp")          # not our pattern
    mine = stale(tmp_path, ".net.npz.abcd1234.tmp")                     # not our suffix
    link = tmp_path / ".net.npz.link1234.nndl-tmp"
    link.symlink_to(stale(tmp_path, "precious"))
    with open(locked, "rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        write_bytes(tmp_path / "net.npz")
    assert not abandoned.exists()
    for kept in (fresh, locked, other, odd, mine, link, tmp_path / "precious"):
        assert os.path.lexists(kept), kept.name


def test_the_temp_file_of_a_save_killed_mid_write_is_cleaned_up_by_the_next_save(tmp_path):
    target = tmp_path / "net.npz"
    code = ("import sys, time; sys.path.insert(0, sys.argv[1]); from nndl import io\n"
            "with io.atomic_write(sys.argv[2]) as f:\n"
            "    f.write(b'half'); f.flush(); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, ROOT, str(target)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "writing"
        left = temps(tmp_path)
        assert len(left) == 1
        write_bytes(target, b"first")  # the writer is alive and holds its lock: kept
        assert temps(tmp_path) == left
    finally:
        proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
    t = time.time() - 2 * io.STALE_AFTER_S
    os.utime(tmp_path / left[0], (t, t))
    write_bytes(target, b"second")
    assert temps(tmp_path) == [] and target.read_bytes() == b"second"


# -- model files that lie ------------------------------------------------------------------------

META = {"format": "nndl-model", "version": 1, "kind": "model",
        "layers": [{"type": "Dense", "config": {"n_in": 784, "n_out": 30}}]}


def npy_header(shape, descr="<f8", version=(1, 0)):
    buf = _io.BytesIO()
    d = {"descr": descr, "fortran_order": False, "shape": shape}
    if version == (1, 0):
        np.lib.format.write_array_header_1_0(buf, d)
    else:
        np.lib.format.write_array_header_2_0(buf, d)
    return buf.getvalue()


def npy(a):
    buf = _io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def write_npz(path, entries, meta=META, compress=zipfile.ZIP_STORED):
    """An .npz from raw entry bytes; ``meta`` None leaves out __meta__."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate-name case
        with zipfile.ZipFile(path, "w", compress) as z:
            if meta is not None:
                z.writestr("__meta__.npy", npy(np.frombuffer(json.dumps(meta).encode(), np.uint8)))
            for name, data in entries:
                z.writestr(name, data)
    return path


@pytest.fixture
def no_data_reads(monkeypatch):
    """Fail the test if any array's data is read (only headers may be)."""
    real = np.lib.format.read_array
    calls = []

    def counting(fp, *args, **kwargs):
        calls.append(fp)
        return real(fp, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "read_array", counting)
    return calls


def test_a_small_deflated_entry_claiming_a_huge_array_is_refused_at_once(tmp_path, no_data_reads):
    # 3 MB of deflated zeros behind a header claiming (40000, 10000) float64 = 3.2 GB.
    data = npy_header((40000, 10000)) + bytes(3 << 20)
    path = write_npz(tmp_path / "bomb.npz", [("a/0/w.npy", data)], compress=zipfile.ZIP_DEFLATED)
    start = time.perf_counter()
    with pytest.raises(FormatError, match=r"claims shape \(40000, 10000\) of float64, "
                                          r"3,200,000,000 bytes, over the limit"):
        io.read_arrays(path)
    assert time.perf_counter() - start < 1.0
    assert len(no_data_reads) == 1  # the description only


def test_a_header_claiming_a_billion_rows_is_a_format_error_not_a_memory_error(tmp_path):
    path = write_npz(tmp_path / "big.npz", [("a/0/w.npy", npy_header((10**9, 784)) + bytes(64))])
    with pytest.raises(FormatError, match="over the limit"):
        io.read_arrays(path)
    # A cap raised past what the machine holds still ends in a FormatError: the zip entry
    # holds 64 bytes, not what the header promises.
    with pytest.raises(FormatError, match="the zip entry holds 64"):
        io.read_arrays(path, max_bytes=10**13)


def test_arrays_are_checked_against_the_expected_shapes_before_any_data_is_read(tmp_path,
                                                                                 no_data_reads):
    path = write_npz(tmp_path / "m.npz", [("a/0/w.npy", npy(np.zeros((40, 784)))),
                                          ("a/0/b.npy", npy(np.zeros(30)))])
    expect = {"0/w": ((30, 784), "float64"), "0/b": ((30,), "float64")}
    with pytest.raises(FormatError, match=r"array 0/w has shape \(40, 784\), expected \(30, 784\)"):
        io.read_arrays(path, expect)
    assert len(no_data_reads) == 1


def shapes_from_meta(meta):
    (layer,) = meta["layers"]
    n_in, n_out = layer["config"]["n_in"], layer["config"]["n_out"]
    return {"0/w": ((n_out, n_in), "float64"), "0/b": ((n_out,), "float64")}


HOSTILE_NPZ = [
    ("wrong dtype", [("a/0/w.npy", npy(np.zeros((30, 784), np.float32))),
                     ("a/0/b.npy", npy(np.zeros(30)))], r"dtype float32, expected float64"),
    ("object dtype", [("a/0/w.npy", npy_header((30, 784), "|O") + bytes(8)),
                      ("a/0/b.npy", npy(np.zeros(30)))],
     "unsupported array dtype"),
    ("structured dtype", [("a/0/w.npy", npy_header((3,), [("x", "<f8")]) + bytes(24)),
                          ("a/0/b.npy", npy(np.zeros(30)))],
     "unsupported array dtype"),
    ("missing array", [("a/0/w.npy", npy(np.zeros((30, 784))))], "missing array 0/b"),
    ("short entry", [("a/0/w.npy", npy(np.zeros((30, 784)))[:-8]),
                     ("a/0/b.npy", npy(np.zeros(30)))], "the zip entry holds"),
    ("bad header", [("a/0/w.npy", b"\x93NUMPY\x01\x00\x10\x00{'descr': nope}  \n"),
                    ("a/0/b.npy", npy(np.zeros(30)))], "bad .npy header"),
    ("npy version 3", [("a/0/w.npy", b"\x93NUMPY\x03\x00" + bytes(20)),
                       ("a/0/b.npy", npy(np.zeros(30)))], "bad .npy header"),
    ("not npy", [("a/0/w.npy", b"PK not an array"), ("a/0/b.npy", npy(np.zeros(30)))],
     "bad .npy header"),
    ("foreign entry", [("evil.py", b"print(1)")], "entry 'evil.py'"),
    ("duplicate entry", [("a/0/w.npy", npy(np.zeros((30, 784)))),
                         ("a/0/w.npy", npy(np.zeros((30, 784))))], "appears twice"),
]


@pytest.mark.parametrize("what, entries, says", HOSTILE_NPZ, ids=[c[0] for c in HOSTILE_NPZ])
def test_hostile_npz_files_are_format_errors(tmp_path, what, entries, says):
    path = write_npz(tmp_path / "m.npz", entries)
    with pytest.raises(FormatError, match=says) as e:
        io.read_arrays(path, shapes_from_meta)
    assert str(e.value).startswith("m.npz: ")


@pytest.mark.parametrize("what, meta, says", [
    ("huge description", None, "entry __meta__ holds"),
    ("description of the wrong type", "f8", "not an nndl model's description"),
    ("layer description the hook cannot read", dict(META, layers="nope"), "bad layer description"),
    ("foreign format", dict(META, format="keras"), "not an nndl model file"),
    ("newer version", dict(META, version=99), "upgrade nndl"),
    ("boolean version", dict(META, version=True), "format version True"),
])
def test_a_hostile_description_is_a_format_error(tmp_path, what, meta, says):
    path = tmp_path / "m.npz"
    if meta is None:
        write_npz(path, [("__meta__.npy", npy_header((io.MAX_META_BYTES * 2,), "|u1")
                                          + bytes(io.MAX_META_BYTES + 8192))], meta=None)
    elif meta == "f8":
        write_npz(path, [("__meta__.npy", npy(np.zeros(3)))], meta=None)
    else:
        write_npz(path, [], meta=meta)
    with pytest.raises(FormatError, match=says):
        io.read_arrays(path, shapes_from_meta)


def test_arrays_not_expected_are_never_read_and_big_endian_ones_come_back_native(tmp_path):
    w = np.arange(30 * 784, dtype=">f8").reshape(30, 784)
    path = write_npz(tmp_path / "m.npz", [("a/0/w.npy", npy(w)), ("a/0/b.npy", npy(np.ones(30))),
                                          ("a/optimizer/v.npy", npy_header((10**9,)))])
    meta, arrays = io.read_arrays(path, shapes_from_meta)
    assert sorted(arrays) == ["0/b", "0/w"] and meta["kind"] == "model"
    assert arrays["0/w"].dtype.isnative and np.array_equal(arrays["0/w"], w)


def test_too_many_entries_are_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(io, "MAX_ENTRIES", 3)
    path = write_npz(tmp_path / "m.npz", [(f"a/{k}.npy", npy(np.zeros(1))) for k in range(5)])
    with pytest.raises(FormatError, match="6 entries"):
        io.read_arrays(path)


def test_the_expect_hook_round_trips_a_file_written_by_write_arrays(tmp_path):
    w, b = np.ones((30, 784)), np.zeros(30)
    for suffix in (".npz", ".json"):
        path = tmp_path / f"m{suffix}"
        io.write_arrays(path, {"kind": "model", "layers": META["layers"]}, {"0/w": w, "0/b": b})
        meta, arrays = io.read_arrays(path, shapes_from_meta)
        assert np.array_equal(arrays["0/w"], w) and np.array_equal(arrays["0/b"], b)
        with pytest.raises(FormatError, match=r"expected \(31, 784\)"):
            io.read_arrays(path, {"0/w": ((31, 784), None)})
        with pytest.raises(FormatError, match="over the limit of 1,000"):
            io.read_arrays(path, max_bytes=1000)


@pytest.mark.parametrize("bad", ["3", 1.5, True, -1, None])
def test_read_arrays_arguments_of_the_wrong_type_are_config_errors(tmp_path, bad):
    with pytest.raises(ConfigError, match="max_bytes"):
        io.read_arrays(tmp_path / "m.npz", max_bytes=bad)
    with pytest.raises(ConfigError, match="expect"):
        io.read_arrays(tmp_path / "m.npz", expect=bad if bad is not None else 3)


# -- JSON model files that lie ----------------------------------------------------------------

def json_model(path, arrays):
    path.write_text(json.dumps(dict(META, arrays=arrays)))
    return path


GOOD_B = {"dtype": "float64", "shape": [30], "data": [0.0] * 30}
HOSTILE_JSON = [
    ("billion rows", {"0/w": {"dtype": "float64", "shape": [10**9, 784], "data": [0.0]},
                      "0/b": GOOD_B}, "over the limit"),
    ("shape unlike the data", {"0/w": {"dtype": "float64", "shape": [30, 784], "data": [0.0] * 5},
                               "0/b": GOOD_B}, "but 5 values"),
    ("negative size", {"0/w": {"dtype": "float64", "shape": [-30, -784], "data": []},
                       "0/b": GOOD_B}, "bad shape"),
    ("boolean size", {"0/w": {"dtype": "float64", "shape": [True, 784], "data": [0.0] * 784},
                      "0/b": GOOD_B}, "bad shape"),
    ("strings as values", {"0/w": {"dtype": "float64", "shape": [30, 784],
                                   "data": ["1"] * (30 * 784)}, "0/b": GOOD_B}, "not numbers"),
    ("unsafe dtype", {"0/w": {"dtype": "object", "shape": [30, 784], "data": []}, "0/b": GOOD_B},
     "unsupported array dtype"),
    ("expected shape", {"0/w": {"dtype": "float64", "shape": [784, 30], "data": [0.0] * 23520},
                        "0/b": GOOD_B}, r"expected \(30, 784\)"),
    ("not an object", {"0/w": [1, 2], "0/b": GOOD_B}, "needs a dtype"),
    ("missing", {"0/b": GOOD_B}, "missing array 0/w"),
]


@pytest.mark.parametrize("what, arrays, says", HOSTILE_JSON, ids=[c[0] for c in HOSTILE_JSON])
def test_hostile_json_files_are_format_errors(tmp_path, what, arrays, says):
    path = json_model(tmp_path / "m.json", arrays)
    with pytest.raises(FormatError, match=says):
        io.read_arrays(path, shapes_from_meta)


def test_a_json_file_too_big_for_the_cap_is_refused_before_parsing(tmp_path, monkeypatch):
    path = json_model(tmp_path / "m.json", {"0/b": GOOD_B})
    monkeypatch.setattr(io, "MAX_META_BYTES", 10)
    monkeypatch.setattr(json, "loads", lambda *a, **k: pytest.fail("parsed"))
    with pytest.raises(FormatError, match="over the limit"):
        io.read_arrays(path, max_bytes=10)


# -- what is read at all -----------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_reading_a_fifo_or_a_folder_fails_at_once_instead_of_blocking(tmp_path, suffix):
    fifo = tmp_path / f"m{suffix}"
    os.mkfifo(fifo)
    with pytest.raises(FormatError, match="a FIFO, not a regular file"):
        io.read_arrays(fifo)
    with pytest.raises(FormatError, match="a folder, not a regular file"):
        io.read_arrays(tmp_path)
    with pytest.raises(FormatError, match="a character device"):
        io.read_arrays("/dev/zero")


def test_network_load_refuses_the_3mb_file_claiming_3gb_at_once(tmp_path):
    from nndl import Network

    meta = dict(META, cost="QuadraticCost", dtype="float64", input_shape=[784],
                layers=[{"type": "Dense", "config": {"n_in": 10000, "n_out": 40000}}])
    path = write_npz(tmp_path / "bomb.npz", [("a/0/w.npy", npy_header((40000, 10000)) + bytes(3 << 20)),
                                             ("a/0/b.npy", npy(np.zeros(40000)))],
                     meta=meta, compress=zipfile.ZIP_DEFLATED)
    start = time.perf_counter()
    with pytest.raises(FormatError, match="over the limit"):
        Network.load(path)
    assert time.perf_counter() - start < 1.0


def test_a_target_name_near_the_length_limit_still_saves(tmp_path):
    target = tmp_path / ("n" * 250 + ".npz")  # 254 bytes: valid, its temp name would not be
    write_bytes(target)
    assert target.read_bytes() == b"new" and temps(tmp_path) == []
    with pytest.raises(SaveError, match="File name too long"):
        write_bytes(tmp_path / ("n" * 300 + ".npz"))


def test_optional_arrays_may_be_missing_but_are_checked_when_present(tmp_path):
    path = tmp_path / "ck.npz"
    io.write_arrays(path, {"kind": "checkpoint"}, {"0/w": np.ones((3, 2)),
                                                   "optimizer/v/0/w": np.ones((2, 3))})
    expect = {"0/w": ((3, 2), "float64"), "optimizer/v/0/w": io.optional((3, 2), "float64"),
              "optimizer/v/0/b": io.optional((3,), "float64")}
    with pytest.raises(FormatError, match=r"array optimizer/v/0/w has shape \(2, 3\), expected"):
        io.read_arrays(path, expect)
    io.write_arrays(path, {"kind": "checkpoint"}, {"0/w": np.ones((3, 2))})
    _, arrays = io.read_arrays(path, expect)
    assert sorted(arrays) == ["0/w"]
