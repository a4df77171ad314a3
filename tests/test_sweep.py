"""scripts/sweep.py: a grid of runs, recorded as they finish, resumable, locally or on Dask."""
import json
import os
import sys

import pytest

SCRIPTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts")
sys.path.insert(0, SCRIPTS)  # spawned workers inherit sys.path, so they can import it too

import sweep  # noqa: E402

TINY = dict(epochs=1, mini_batch_size=10, train_size=200, eval_size=100, dataset="synthetic")


def tiny_grid():
    return sweep.grid([0.5, 3.0], [0.0], [10], [0, 1], **TINY)


def fake_run(config):
    return {**config, "accuracy": config["eta"] * 10 + config["seed"], "best_accuracy": 0.0,
            "best_epoch": 0, "seconds": 0.0, "host": "test", "key": sweep.run_key(config)}


def test_the_grid_is_every_combination_with_distinct_keys():
    configs = sweep.grid([0.1, 0.5, 3.0], [0.0, 5.0], [30, 100], [0, 1, 2], **TINY)
    assert len(configs) == 3 * 2 * 2 * 3
    assert len({sweep.run_key(c) for c in configs}) == len(configs)
    assert sweep.run_key(dict(reversed(list(configs[0].items())))) == sweep.run_key(configs[0])
    assert sweep.run_key({**configs[0], "epochs": 2}) != sweep.run_key(configs[0])


def test_a_line_cut_short_by_a_crash_is_skipped_and_does_not_spoil_the_next(tmp_path):
    path = tmp_path / "results.jsonl"
    configs = tiny_grid()
    sweep.append_result(path, fake_run(configs[0]))
    with open(path, "a") as f:
        f.write('{"eta": 0.5, "lmb')  # the process died mid-write
    sweep.append_result(path, fake_run(configs[1]))
    rows = sweep.read_results(path)
    assert [r["key"] for r in rows] == [sweep.run_key(c) for c in configs[:2]]


def test_a_rerun_skips_the_runs_already_in_the_file(tmp_path):
    path = tmp_path / "results.jsonl"
    calls = []

    def counting(config):
        calls.append(config)
        return fake_run(config)

    configs = tiny_grid()
    sweep.run_sweep(configs[:3], path, "serial", run_fn=counting, verbose=False)
    rows = sweep.run_sweep(configs, path, "serial", run_fn=counting, verbose=False)
    assert len(calls) == 4 and calls[3] == configs[3]
    assert sorted(r["key"] for r in rows) == sorted(sweep.run_key(c) for c in configs)


def test_an_interrupted_sweep_keeps_its_finished_runs_and_resumes(tmp_path):
    path = tmp_path / "results.jsonl"
    configs = tiny_grid()

    def interrupted(config):
        if config is configs[2]:
            raise KeyboardInterrupt
        return fake_run(config)

    with pytest.raises(KeyboardInterrupt):
        sweep.run_sweep(configs, path, "serial", run_fn=interrupted, verbose=False)
    assert len(sweep.read_results(path)) == 2
    rows = sweep.run_sweep(configs, path, "serial", run_fn=fake_run, verbose=False)
    assert len(rows) == 4 and len(path.read_text().splitlines()) == 4


def test_train_one_trains_and_reports_a_row():
    row = sweep.train_one(tiny_grid()[0])
    assert 0 <= row["accuracy"] <= 100 and row["key"] == sweep.run_key(tiny_grid()[0])
    json.dumps(row)  # a JSON line


@pytest.mark.slow  # starting worker processes (each imports numpy, numba, nndl) takes seconds
def test_the_local_sweep_uses_worker_processes_and_writes_table_and_plot(tmp_path):
    import matplotlib.image

    rows = sweep.main(["--engine", "local", "--workers", "2", "--dataset", "synthetic", "--quick",
                       "--train-size", "200", "--eval-size", "100", "--out", str(tmp_path)])
    serial = {sweep.run_key(c): sweep.train_one(c)["accuracy"] for c in sweep.grid(
        [0.5, 3.0], [0.0], [10], [0], epochs=2, mini_batch_size=10, train_size=200, eval_size=100,
        dataset="synthetic")}
    assert len(rows) == 2
    assert {r["key"]: r["accuracy"] for r in rows} == serial  # same numbers as in-process runs
    assert len((tmp_path / "results.jsonl").read_text().splitlines()) == 2
    assert (tmp_path / "results.csv").read_text().splitlines()[0].startswith("eta,lmbda,hidden,seed,accuracy")
    assert matplotlib.image.imread(tmp_path / "sweep.png").shape[:2] == (500, 800)
    again = sweep.main(["--from-json", str(tmp_path / "results.jsonl")])
    assert sorted(r["key"] for r in again) == sorted(r["key"] for r in rows)


def test_the_same_sweep_runs_on_a_dask_local_cluster(tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    configs = tiny_grid()
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        rows = sweep.run_sweep(configs, tmp_path / "results.jsonl", "dask", client=client,
                               verbose=False)
        assert len(rows) == 4
        # Resuming on Dask submits nothing new.
        again = sweep.run_sweep(configs, tmp_path / "results.jsonl", "dask", client=client,
                                verbose=False)
        assert len(again) == 4
    serial = {sweep.run_key(c): sweep.train_one(c)["accuracy"] for c in configs}
    assert {r["key"]: r["accuracy"] for r in rows} == serial
