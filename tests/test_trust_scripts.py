"""The scripts against a hostile user: every option and output path is checked before any
data loads, an explicit --data beats NNDL_DATA, the offline message is short and makes no
folders, and a save that fails after training does not lose the trained network."""
import errno
import importlib
import os
import subprocess
import sys

import numpy as np
import pytest

from nndl import DataError, Network, SaveError, cli

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)

mnist_mlp = importlib.import_module("mnist_mlp")
mnist_conv = importlib.import_module("mnist_conv")
sweep = importlib.import_module("sweep")
ch3_more_data = importlib.import_module("ch3_more_data")


@pytest.fixture
def place(tmp_path, monkeypatch):
    """A working folder holding one of each awkward thing, and no data anywhere: a script
    that loaded data before checking its options would fail with "MNIST not found"."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("NNDL_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr("nndl.data._fetch", lambda url, out: pytest.fail("tried to download"))
    return tmp_path


def refused(parse, argv, capsys):
    """The one-line error of ``parse(argv)``, which must exit with status 2."""
    with pytest.raises(SystemExit) as e:
        parse(argv)
    assert e.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]


MLP_BAD = [
    (["--eta", "-1"], "--eta: expected a number > 0.0"),
    (["--eta", "nan"], "--eta: expected a number > 0.0"),
    (["--eta", "inf"], "--eta: expected a number > 0.0"),
    (["--eta", "fast"], "--eta: expected a number"),
    (["--epochs", "0"], "--epochs: expected a positive integer"),
    (["--epochs", "1.7"], "--epochs: expected a positive integer"),
    (["--train-size", "0"], "--train-size: expected a positive integer"),
    (["--train-size", "60000"], "--train-size: expected 1..50000"),
    (["--mini-batch-size", "0"], "--mini-batch-size: expected a positive integer"),
    (["--train-size", "5", "--mini-batch-size", "10"], "larger than the 5 training images"),
    (["--sizes", "784,x,10"], "--sizes: expected comma-separated integers"),
    (["--sizes", "784,0,10"], "--sizes: expected comma-separated integers"),
    (["--sizes", "784,30"], "then 10 outputs"),
    (["--sizes", "100,30,10"], "784 inputs"),
    (["--lmbda", "-1"], "--lmbda: expected a number >= 0.0"),
    (["--lmbda", "1", "--l1", "1"], "alternatives"),
    (["--dropout", "1"], "--dropout: expected a number >= 0.0 and < 1.0"),
    (["--seed", "-1"], "--seed: expected an integer >= 0"),
    (["--early-stopping", "-1"], "--early-stopping: expected an integer >= 0"),
    (["--activation", "swish"], "invalid choice"),
    (["--resume"], "--resume needs --checkpoint"),
    (["--data", "nowhere"], "--data nowhere: no such folder"),
    (["--data", "file"], "--data file: is not a folder"),
    (["--save", "net.pkl"], "expected a .npz or .json file name"),
    (["--save", "new/net.npz"], "does not exist (nndl creates no folders"),
    (["--save", "file/net.npz"], "is a file, not a folder"),
    (["--checkpoint", "folder/"], "the name is a folder"),
    (["--checkpoint", "folder"], "it is a folder, not a regular file"),
    (["--plot", "fifo"], "it is a FIFO, not a regular file"),
    (["--json", "file/x/r.json"], "is a file, not a folder"),
    (["--save", "a.npz", "--json", "a.npz"], "--save and --json name the same file"),
    (["--checkpoint", "c.npz", "--save", "./c.npz"], "name the same file"),
]


@pytest.mark.parametrize("argv, says", MLP_BAD, ids=[" ".join(a) for a, _ in MLP_BAD])
def test_mnist_mlp_refuses_bad_options_before_loading_data(place, capsys, argv, says):
    line = refused(mnist_mlp.parse_args, argv, capsys)
    assert says in line and "MNIST not found" not in line
    assert sorted(os.listdir(place)) == ["empty", "fifo", "file", "folder"]  # nothing made


def test_a_read_only_folder_is_refused_before_training(place, capsys, monkeypatch):
    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr("nndl.io.tempfile.mkstemp", read_only)
    line = refused(mnist_mlp.parse_args, ["--save", "net.npz"], capsys)
    assert "--save: net.npz: cannot save (Read-only file system)" in line


CONV_BAD = [
    (["--epochs", "0"], "--epochs: expected a positive integer"),
    (["--train-size", "0"], "--train-size: expected a positive integer"),
    (["--train-size", "50001"], "--train-size: expected 1..50000"),
    (["--train-size", "5", "--mini-batch-size", "10"], "larger than the 5 training images"),
    (["--eta", "-1"], "--eta: expected a number > 0.0"),
    (["--save", "fifo"], "expected a .npz or .json"),
    (["--save", "new/net.npz"], "does not exist"),
    (["--plot", "folder"], "it is a folder"),
    (["--checkpoint", "file/c.npz"], "is a file, not a folder"),
    (["--json", "fifo"], "it is a FIFO"),
    (["--data", "nowhere"], "no such folder"),
]


@pytest.mark.parametrize("argv, says", CONV_BAD, ids=[" ".join(a) for a, _ in CONV_BAD])
def test_mnist_conv_refuses_bad_options_before_loading_data(place, capsys, argv, says):
    line = refused(mnist_conv.parse_args, ["--preset", "conv1", *argv], capsys)
    assert says in line
    assert sorted(os.listdir(place)) == ["empty", "fifo", "file", "folder"]


def test_mnist_conv_checks_every_file_an_ensemble_writes(place, capsys):
    (place / "net-3.npz").mkdir()  # the fourth network's file
    line = refused(mnist_conv.parse_args, ["--preset", "ensemble", "--save", "net.npz"], capsys)
    assert "net-3.npz" in line and "it is a folder" in line


SWEEP_BAD = [
    (["--epochs", "0"], "--epochs: expected a positive integer"),
    (["--etas", "0.1,-1"], "--etas: expected a number > 0.0"),
    (["--lmbdas", "x"], "--lmbdas: expected a number"),
    (["--seeds", "-1"], "--seeds: expected comma-separated integers >= 0"),
    (["--hidden", "0"], "--hidden: expected comma-separated integers >= 1"),
    (["--workers", "0"], "--workers: expected a positive integer"),
    (["--train-size", "60000"], "--train-size: expected 1..50000"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler needs --engine dask"),
    (["--out", "file/sub"], "does not exist"),
    (["--out", "file"], "--out file: not a folder"),
    (["--data", "nowhere"], "no such folder"),
    (["--from-json", "nowhere.jsonl"], "no such file"),
]


@pytest.mark.parametrize("argv, says", SWEEP_BAD, ids=[" ".join(a) for a, _ in SWEEP_BAD])
def test_sweep_refuses_bad_options_before_any_run(place, capsys, argv, says):
    line = refused(sweep.parse_args, argv, capsys)
    assert says in line
    assert sorted(os.listdir(place)) == ["empty", "fifo", "file", "folder"]


def test_sweep_finds_the_data_up_front_not_in_every_worker(place):
    with pytest.raises(DataError, match="MNIST not found in .*empty"):
        sweep.parse_args(["--data", "empty"])


CH3_BAD = [
    (["--sizes", "0,100"], "--sizes: expected comma-separated integers"),
    (["--eta", "0"], "--eta: expected a number > 0.0"),
    (["--examples", "-5"], "--examples: expected a positive integer"),
    (["--out", "file/x"], "does not exist"),
    (["--data", "nowhere"], "no such folder"),
]


@pytest.mark.parametrize("argv, says", CH3_BAD, ids=[" ".join(a) for a, _ in CH3_BAD])
def test_a_chapter_script_refuses_bad_options_before_loading_data(place, capsys, argv, says):
    line = refused(ch3_more_data.parse_args, argv, capsys)
    assert says in line
    assert sorted(os.listdir(place)) == ["empty", "fifo", "file", "folder"]


# -- after training -------------------------------------------------------------------------------

@pytest.fixture
def tiny_mnist(monkeypatch):
    """load_mnist replaced by 200 random examples per split: the scripts' plumbing only."""
    rng = np.random.default_rng(0)
    split = lambda n: (rng.random((n, 784)), rng.integers(0, 10, n))  # noqa: E731
    data = (split(200), split(100), split(100))
    monkeypatch.setattr("nndl.data.load_mnist", lambda path=None, dtype=np.float64, **kw: tuple(
        (x.astype(dtype), y) for x, y in data))


def test_a_save_that_fails_after_training_puts_the_network_in_a_fallback_file(
        place, tiny_mnist, monkeypatch, capsys):
    real_save = Network.save

    def save(self, path):  # the disk fills up during training
        if os.path.basename(os.fspath(path)) == "net.npz":
            raise SaveError(f"{path}: cannot save (No space left on device)")
        real_save(self, path)

    monkeypatch.setattr(Network, "save", save)
    status = mnist_mlp.main(["--epochs", "1", "--eta", "0.5", "--no-progress", "--save", "net.npz",
                             "--json", "r.json"])
    err = capsys.readouterr().err
    assert status == 1
    assert "--save: net.npz: cannot save (No space left on device)" in err
    rescued = [n for n in os.listdir(place) if n.startswith("nndl-rescued-net-")]
    assert len(rescued) == 1 and rescued[0].endswith(".npz")
    assert f"saved to {place / rescued[0]} instead" in err
    assert Network.load(rescued[0]).layers[0].w.shape == (30, 784)
    assert (place / "r.json").exists()  # the other outputs are still written


def test_the_header_shows_the_effective_settings(place, tiny_mnist, capsys):
    assert mnist_mlp.main(["--epochs", "1", "--eta", "0.25", "--lmbda", "2", "--train-size", "150",
                           "--no-progress"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].endswith("changed by --epochs, --eta, --lmbda")
    assert "eta 0.25, regularization L2 2.0" in out[1] and "1 epoch, 150 training images" in out[1]


def test_run_script_reports_an_os_error_in_one_line(capsys):
    def main():
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), "/some/file")

    with pytest.raises(SystemExit) as e:
        cli.run_script(main)
    assert e.value.code == 2
    assert capsys.readouterr().err.strip().endswith("error: /some/file: Permission denied")


# -- where the data comes from, in a real process ------------------------------------------------

def run(script, args, cwd, **env):
    # A proxy that refuses: a test never downloads MNIST, even on a machine that could.
    env = {**os.environ, "MPLBACKEND": "Agg", "http_proxy": "http://127.0.0.1:9",
           "https_proxy": "http://127.0.0.1:9", "PYTHONPATH": ROOT, **env}
    env = {k: v for k, v in env.items() if v is not None}
    return subprocess.run([sys.executable, os.path.join(SCRIPTS, script), *args], cwd=cwd,
                          capture_output=True, text=True, timeout=120, env=env)


def real_mnist():
    folder = os.environ.get("NNDL_DATA")
    if not folder:
        pytest.skip("set NNDL_DATA to the MNIST folder")
    return folder


def test_an_explicit_data_folder_beats_nndl_data(tmp_path):
    real = real_mnist()
    (tmp_path / "mine").mkdir()
    r = run("mnist_mlp.py", ["--data", "mine", "--epochs", "1"], tmp_path, NNDL_DATA=real)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert f"MNIST not found in {os.path.join('mine')} (given" in r.stderr
    assert os.listdir(tmp_path / "mine") == [] and os.listdir(tmp_path) == ["mine"]
    r = run("mnist_mlp.py", ["--data", real, "--epochs", "1", "--train-size", "100",
                             "--no-progress"], tmp_path, NNDL_DATA=str(tmp_path / "mine"))
    assert r.returncode == 0, r.stderr
    assert "Epoch 0: " in r.stdout


def test_the_offline_message_is_short_names_data_and_nndl_data_and_makes_no_folder(tmp_path):
    project = os.path.join(ROOT, "data", "mnist")
    if os.path.exists(project):
        pytest.skip("this checkout holds data/mnist")
    r = run("mnist_mlp.py", ["--epochs", "1"], tmp_path, NNDL_DATA=None)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[0].startswith("mnist_mlp.py: error: MNIST not found") and len(lines) <= 4
    assert "--data DIR" in r.stderr and "NNDL_DATA" in r.stderr and "path=" not in r.stderr
    assert not os.path.exists(project) and os.listdir(tmp_path) == []
