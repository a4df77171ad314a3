#!/usr/bin/env python
"""A hyperparameter sweep: a grid of training runs, on this machine's cores or on Dask.

Chapter 3 chooses eta, lambda and the network's size by hand, one broad experiment
after another.  This script runs the whole grid eta × lambda × hidden size × seed of
[784, hidden, 10] sigmoid networks (cross-entropy cost) and collects the validation
accuracy of each in one table.

* ``--engine local`` (default): one process per run, as many at once as ``--workers``
  (default: the machine's cores), through ``concurrent.futures.ProcessPoolExecutor``.
* ``--engine dask``: the same runs as Dask tasks, on a local cluster or, with
  ``--scheduler tcp://host:8786``, on every machine of a Dask cluster (install the
  ``sweep`` extra: ``pip install nndl[sweep]``; each worker needs nndl and the MNIST
  files under its own ``$NNDL_DATA``).
* ``--engine serial``: one after another in this process (debugging).

Each finished run is appended to ``<out>/results.jsonl`` at once, as one JSON line,
flushed and fsync'ed, so an interrupted sweep loses nothing: run the same command again
and it skips every run already in the file.  At the end the rows are also written to
``<out>/results.csv`` and drawn in ``<out>/sweep.png``.

    python scripts/sweep.py                                # 3 × 2 × 2 × 2 = 24 runs
    python scripts/sweep.py --etas 0.1,0.5,3 --lmbdas 0,1,5 --hidden 30 --seeds 0,1,2
    python scripts/sweep.py --engine dask --workers 4
    python scripts/sweep.py --quick                        # a tiny grid on 1,000 images
    python scripts/sweep.py --from-json runs/sweep/results.jsonl   # only the table and plot
"""
import argparse
import concurrent.futures
import contextlib
import csv
import io as _io
import itertools
import json
import multiprocessing
import os
import socket
import sys
import threading
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Network  # noqa: E402
from nndl import io as nio  # noqa: E402

NAME = "sweep"
HYPER = ("eta", "lmbda", "hidden", "seed")                   # the grid's axes
SETTINGS = ("epochs", "mini_batch_size", "train_size", "eval_size", "dataset")  # shared by all runs
# Each run is one process: keep the BLAS libraries to one thread each.
ONE_THREAD = {k: "1" for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}


# -- the grid --------------------------------------------------------------------------
def grid(etas, lmbdas, hiddens, seeds, **settings):
    """Every combination, as config dicts holding the hyperparameters and ``settings``."""
    return [dict(eta=float(eta), lmbda=float(lmbda), hidden=int(hidden), seed=int(seed), **settings)
            for eta, lmbda, hidden, seed in itertools.product(etas, lmbdas, hiddens, seeds)]


def run_key(config):
    """The identity of a run: its hyperparameters and settings, as a canonical string."""
    return json.dumps({k: config.get(k) for k in HYPER + SETTINGS}, sort_keys=True)


# -- one run ---------------------------------------------------------------------------
_DATA, _DATA_LOCK = {}, threading.Lock()


def _data(dataset, train_size, eval_size):
    """(training, validation) for one run; loaded once per process (threads share it)."""
    with _DATA_LOCK:
        if dataset not in _DATA:
            if dataset == "mnist":
                from nndl.data import load_mnist

                training, validation, _ = load_mnist()
            elif dataset == "synthetic":  # learnable and instant: for tests and dry runs
                rng = np.random.default_rng(0)  # ten noisy "digits": prototypes plus noise
                labels = rng.integers(0, 10, 3000)
                x = np.clip(rng.random((10, 784))[labels] + 0.5 * rng.standard_normal((3000, 784)), 0, 1)
                training, validation = (x[:2000], labels[:2000]), (x[2000:], labels[2000:])
            else:
                raise ValueError(f"dataset: expected 'mnist' or 'synthetic', got {dataset!r}")
            _DATA[dataset] = training, validation
        training, validation = _DATA[dataset]
    return ((training[0][:train_size], training[1][:train_size]),
            (validation[0][:eval_size], validation[1][:eval_size]))


def train_one(config):
    """Train the run ``config`` describes; return its row of the results table."""
    training, validation = _data(config["dataset"], config["train_size"], config["eval_size"])
    net = Network([784, config["hidden"], 10], seed=config["seed"])
    start = time.perf_counter()
    h = net.SGD(training, config["epochs"], config["mini_batch_size"], config["eta"],
                lmbda=config["lmbda"], evaluation_data=validation,
                monitor_evaluation_accuracy=True, verbose=False)
    n = h.n_evaluation
    return {**{k: config[k] for k in HYPER + SETTINGS},
            "accuracy": 100.0 * h.evaluation_accuracy[-1] / n,
            "best_accuracy": 100.0 * max(h.evaluation_accuracy) / n,
            "best_epoch": h.best_epoch(), "seconds": time.perf_counter() - start,
            "host": socket.gethostname(), "key": run_key(config)}


# -- the results file ------------------------------------------------------------------
def read_results(path):
    """The rows in a results file; a line cut short by a crash is skipped."""
    rows = []
    if not os.path.exists(path):
        return rows
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict) and "key" in row:
                rows.append(row)
    return rows


def append_result(path, row):
    """Append one row as a JSON line and make it durable (flush + fsync) before returning."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":  # a line cut short by a crash: start a fresh one
                f.write(b"\n")
        f.write(json.dumps(row).encode("utf-8") + b"\n")
        f.flush()
        os.fsync(f.fileno())


@contextlib.contextmanager
def _environment(values):
    """Set environment variables (inherited by the processes started inside), then restore."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- the engines -----------------------------------------------------------------------
def run_sweep(configs, path, engine="local", workers=None, client=None, scheduler=None,
              run_fn=train_one, verbose=True):
    """Run every config not yet in the results file ``path``; return all its rows.

    ``engine`` is "local" (a process pool of ``workers``), "dask" (``client``, or a new
    client of ``scheduler``, or of a new LocalCluster of ``workers`` processes) or
    "serial".  Each row is appended to ``path`` the moment its run finishes.
    """
    done = {r["key"] for r in read_results(path)}
    todo = [c for c in configs if run_key(c) not in done]
    if verbose:
        print(f"{len(configs)} runs in the grid, {len(configs) - len(todo)} already in {path}, "
              f"{len(todo)} to go ({engine})", flush=True)
    finished = 0

    def record(row):
        nonlocal finished
        append_result(path, row)
        finished += 1
        if verbose:
            print(f"[{finished}/{len(todo)}] eta {row['eta']} lambda {row['lmbda']} hidden "
                  f"{row['hidden']} seed {row['seed']}: {row['accuracy']:.2f}% "
                  f"({row['seconds']:.1f} s, {row['host']})", flush=True)

    run_fn = _importable(run_fn)
    if not todo:
        pass
    elif engine == "serial":
        for c in todo:
            record(run_fn(c))
    elif engine == "local":
        workers = workers or os.cpu_count() or 1
        ctx = multiprocessing.get_context("spawn")  # no fork of a threaded process
        with _environment(ONE_THREAD), \
                concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = [pool.submit(run_fn, c) for c in todo]
            try:
                for future in concurrent.futures.as_completed(futures):
                    record(future.result())
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    elif engine == "dask":
        _run_on_dask(todo, run_fn, record, workers, client, scheduler)
    else:
        raise ValueError(f"engine: expected 'local', 'dask' or 'serial', got {engine!r}")
    return read_results(path)


def _importable(fn):
    """``fn``, or when it is defined in the script being run (``__main__``), the same
    function imported from the module ``sweep``: then workers unpickle it by name instead
    of receiving a copy of the script's globals (locks and all)."""
    if getattr(fn, "__module__", None) != "__main__":
        return fn
    import importlib

    folder = os.path.dirname(os.path.abspath(__file__))
    if folder not in sys.path:
        sys.path.insert(0, folder)
    return getattr(importlib.import_module(NAME), fn.__name__)


def _run_on_dask(todo, run_fn, record, workers, client, scheduler):
    from dask.distributed import Client, LocalCluster, as_completed

    with contextlib.ExitStack() as stack:
        if client is None:
            if scheduler:
                client = stack.enter_context(Client(scheduler))
                client.upload_file(os.path.abspath(__file__))  # workers can import this module
            else:
                stack.enter_context(_environment(ONE_THREAD))
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                    dashboard_address=None))
                client = stack.enter_context(Client(cluster))
        futures = client.map(run_fn, todo, pure=False)
        try:
            for future in as_completed(futures):
                record(future.result())
        except BaseException:
            client.cancel(futures)
            raise


# -- the table and the plot --------------------------------------------------------------
COLUMNS = HYPER + ("accuracy", "best_accuracy", "best_epoch", "seconds", "host") + SETTINGS


def write_table(rows, path):
    """The rows as CSV, sorted by hyperparameters, written atomically."""
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: tuple(r[k] for k in HYPER)):
        writer.writerow(row)
    with nio.atomic_write(path, "w") as f:
        f.write(buf.getvalue())
    return path


def summarize(rows):
    best = max(rows, key=lambda r: r["accuracy"])
    print(f"{len(rows)} runs; best: {best['accuracy']:.2f}% with eta {best['eta']}, lambda "
          f"{best['lmbda']}, hidden {best['hidden']}, seed {best['seed']}")


def finish(rows, out):
    from nndl import plots

    paths = [write_table(rows, os.path.join(out, "results.csv"))]
    if rows:
        paths.append(plots.sweep(rows, os.path.join(out, "sweep.png"), x="eta", y="accuracy",
                                 group=("lmbda", "hidden"), title="Validation accuracy (mean over seeds)"))
        summarize(rows)
    return paths


# -- the command line ------------------------------------------------------------------
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--etas", default="0.1,0.5,3.0")
    p.add_argument("--lmbdas", default="0,5")
    p.add_argument("--hidden", default="30,100")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--mini-batch-size", type=int, default=10)
    p.add_argument("--train-size", type=int, default=50000)
    p.add_argument("--eval-size", type=int, default=10000, help="validation images")
    p.add_argument("--dataset", choices=["mnist", "synthetic"], default="mnist")
    p.add_argument("--engine", choices=["local", "dask", "serial"], default="local")
    p.add_argument("--workers", type=int, help="processes at once (default: the machine's cores)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (engine dask)")
    p.add_argument("--quick", action="store_true",
                   help="eta 0.5,3 × lambda 0 × hidden 10 × seed 0, 2 epochs on 1,000 images")
    p.add_argument("--out", help=f"output folder (default runs/{NAME})")
    p.add_argument("--from-json", metavar="PATH", help="only rebuild the table and plot from this .jsonl")
    args = p.parse_args(argv)
    if args.quick:
        args.etas, args.lmbdas, args.hidden, args.seeds = "0.5,3", "0", "10", "0"
        args.epochs = min(args.epochs, 2)
        args.train_size, args.eval_size = min(args.train_size, 1000), min(args.eval_size, 1000)
    for name, kind in (("etas", float), ("lmbdas", float), ("hidden", int), ("seeds", int)):
        setattr(args, name, [kind(v) for v in str(getattr(args, name)).split(",")])
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.from_json:
        rows = read_results(args.from_json)
        out = args.out or os.path.dirname(os.path.abspath(args.from_json))
    else:
        out = args.out or os.path.join("runs", NAME)
        configs = grid(args.etas, args.lmbdas, args.hidden, args.seeds, epochs=args.epochs,
                       mini_batch_size=args.mini_batch_size, train_size=args.train_size,
                       eval_size=args.eval_size, dataset=args.dataset)
        keys = {run_key(c) for c in configs}
        rows = [r for r in run_sweep(configs, os.path.join(out, "results.jsonl"), args.engine,
                                     args.workers, scheduler=args.scheduler) if r["key"] in keys]
    for path in finish(rows, out):
        print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
