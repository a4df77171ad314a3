"""scripts/sweep.py on a real Dask cluster: a `dask scheduler` and a `dask worker` started
as separate processes on 127.0.0.1, whose environment has no NNDL_DATA, as on a cluster
whose workers are other machines.  The data reaches them with the work."""
import os
import signal
import subprocess
import sys
import time

import pytest

distributed = pytest.importorskip("distributed")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPTS = os.path.join(ROOT, "scripts")
sys.path.insert(0, SCRIPTS)

import sweep  # noqa: E402

START_TIMEOUT_S = 60

# Imported by the workers from a folder on their PYTHONPATH: a run that fails the first
# time, a run whose worker process dies the first time, and a run that always fails.
FLAKY = '''
import os

MARKS = {marks!r}


def flaky(config):
    mark = os.path.join(MARKS, str(config["seed"]))
    first = not os.path.exists(mark)
    open(mark, "a").close()
    if config["seed"] == 1 and first:
        raise RuntimeError("a flaky run")
    if config["seed"] == 2 and first:
        os._exit(1)  # the worker process dies mid-task
    if config["seed"] == 3:
        raise ValueError("always broken")
    return {{**config, "accuracy": 50.0 + config["seed"], "best_accuracy": 0.0, "best_epoch": 0,
            "seconds": 0.0, "host": "worker", "key": __import__("sweep").run_key(config)}}
'''


def _import_flaky(mods, marks):
    import importlib

    (mods / "flaky_runs.py").write_text(FLAKY.format(marks=str(marks)))
    sys.modules.pop("flaky_runs", None)
    sys.path.insert(0, str(mods))
    try:
        return importlib.import_module("flaky_runs")
    finally:
        sys.path.remove(str(mods))


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, folder on the workers' path): one scheduler, one worker process
    (behind a nanny, which restarts it if it dies), both always stopped."""
    mods = tmp_path / "mods"
    mods.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "NNDL_DATA"}
    env["PYTHONPATH"] = os.pathsep.join([ROOT, SCRIPTS, str(mods)])
    env["DASK_DISTRIBUTED__WORKER__DAEMON"] = "False"
    scheduler_file = tmp_path / "scheduler.json"
    logs = open(tmp_path / "cluster.log", "wb")
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
             "--port", "0", "--no-dashboard", "--scheduler-file", str(scheduler_file)],
            env=env, cwd=tmp_path, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.exists() or scheduler_file.stat().st_size == 0:
            if time.monotonic() > deadline or procs[0].poll() is not None:
                pytest.fail("the dask scheduler did not start:\n" + (tmp_path / "cluster.log").read_text())
            time.sleep(0.1)
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file",
             str(scheduler_file), "--host", "127.0.0.1", "--nworkers", "1", "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(tmp_path / "worker"),
             "--death-timeout", "60"],
            env=env, cwd=tmp_path, stdout=logs, stderr=subprocess.STDOUT, start_new_session=True))
        with distributed.Client(scheduler_file=str(scheduler_file), timeout=30) as client:
            client.wait_for_workers(1, timeout=START_TIMEOUT_S)
            # The workers really lack NNDL_DATA.
            assert set(client.run(lambda: os.environ.get("NNDL_DATA")).values()) == {None}
            address = client.scheduler.address
        yield address, mods
    finally:
        for proc in reversed(procs):
            _stop(proc)
        logs.close()


def test_a_sweep_on_mnist_runs_on_workers_without_nndl_data(cluster, tmp_path, mnist):
    address, _ = cluster
    out = tmp_path / "out"
    rows = sweep.main(["--engine", "dask", "--scheduler", address, "--etas", "0.5,3",
                       "--lmbdas", "0", "--hidden", "10", "--seeds", "0", "--epochs", "1",
                       "--train-size", "300", "--eval-size", "200", "--out", str(out)])
    assert len(rows) == 2 and all(0 <= r["accuracy"] <= 100 for r in rows)
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    # The same runs here, in this process, give the same numbers: the scattered data is
    # the data this process loaded.
    config = dict(epochs=1, mini_batch_size=10, train_size=300, eval_size=200, dataset="mnist",
                  data=None)
    here = {sweep.run_key(c): sweep.train_one(c)["accuracy"]
            for c in sweep.grid([0.5, 3.0], [0.0], [10], [0], **config)}
    assert {r["key"]: r["accuracy"] for r in rows} == here


def test_failed_runs_and_a_dead_worker_are_retried_without_losing_other_results(cluster, tmp_path,
                                                                               capsys):
    address, mods = cluster
    marks = tmp_path / "marks"
    marks.mkdir()
    flaky_runs = _import_flaky(mods, marks)
    configs = sweep.grid([0.5], [0.0], [10], [0, 1, 2, 3], epochs=1, mini_batch_size=10,
                         train_size=100, eval_size=100, dataset="synthetic")
    failures = []
    with distributed.Client(address, timeout=30) as client:
        rows = sweep.run_sweep(configs, tmp_path / "results.jsonl", "dask", client=client,
                               run_fn=flaky_runs.flaky, verbose=False, failures=failures)
    assert sorted(r["seed"] for r in rows) == [0, 1, 2]
    assert [(c["seed"], type(e).__name__) for c, e in failures] == [(3, "ValueError")]
    err = capsys.readouterr().err
    # Seed 1's first failure may or may not be reported: if the worker died before
    # reporting it, the run was resubmitted with the data (the order is Dask's to choose).
    # Either way it ran twice and its row is in the file.
    assert "the workers lost the data (a worker died?): sending it again" in err
    assert (marks / "1").exists()
    assert "always broken); trying it once more" in err and "always broken); giving up" in err


def test_the_local_engine_retries_a_failed_run_and_a_dead_worker_process_too(tmp_path, monkeypatch,
                                                                            capsys):
    mods, marks = tmp_path / "mods", tmp_path / "marks"
    mods.mkdir()
    marks.mkdir()
    flaky_runs = _import_flaky(mods, marks)
    monkeypatch.syspath_prepend(str(mods))  # spawned workers start with this sys.path
    configs = sweep.grid([0.5], [0.0], [10], [0, 1, 2, 3], epochs=1, mini_batch_size=10,
                         train_size=100, eval_size=100, dataset="synthetic")
    failures = []
    # One worker: the runs go in order, so which runs the dead worker takes down is fixed.
    rows = sweep.run_sweep(configs, tmp_path / "results.jsonl", "local", workers=1,
                           run_fn=flaky_runs.flaky, verbose=False, failures=failures)
    assert sorted(r["seed"] for r in rows) == [0, 1, 2]
    assert [(c["seed"], type(e).__name__) for c, e in failures] == [(3, "ValueError")]
    assert "BrokenProcessPool" in capsys.readouterr().err
    with pytest.raises(sweep.NNDLError, match="1 of 1 runs failed twice"):
        sweep.run_sweep(configs, tmp_path / "results.jsonl", "serial", run_fn=flaky_runs.flaky,
                        verbose=False)
