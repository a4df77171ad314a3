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
  ``sweep`` extra: ``pip install nndl[sweep]``; each worker needs nndl).  The data is
  loaded once, here (``--data``, else ``$NNDL_DATA``), and scattered to the workers with
  the work: they need neither the MNIST files nor ``NNDL_DATA``.
* ``--engine serial``: one after another in this process (debugging).

Each finished run is appended to ``<out>/results.jsonl`` at once, as one JSON line,
flushed and fsync'ed, so an interrupted sweep loses nothing: run the same command again
and it skips every run already in the file.  A run that fails (an error, or its worker
process dying) is reported and tried once more; one that fails twice is left out of the
file, the others are kept, and the sweep ends with an error naming it.  At the end the rows are also written to
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

from nndl import ConfigError, Network, NNDLError  # noqa: E402
from nndl import cli  # noqa: E402
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
TRIES = 2  # a run that fails is tried once more


def _data_key(config):
    return config["dataset"], config.get("data")


def _load(dataset, path):
    """(training, validation) of ``dataset``; ``path`` is the MNIST folder or None."""
    if dataset == "mnist":
        from nndl.data import load_mnist

        training, validation, _ = load_mnist(path)
    elif dataset == "synthetic":  # learnable and instant: for tests and dry runs
        rng = np.random.default_rng(0)  # ten noisy "digits": prototypes plus noise
        labels = rng.integers(0, 10, 3000)
        x = np.clip(rng.random((10, 784))[labels] + 0.5 * rng.standard_normal((3000, 784)), 0, 1)
        training, validation = (x[:2000], labels[:2000]), (x[2000:], labels[2000:])
    else:
        raise ConfigError(f"dataset: expected 'mnist' or 'synthetic', got {dataset!r}")
    return training, validation


def _data(dataset, train_size, eval_size, path=None):
    """(training, validation) for one run; loaded once per process (threads share it),
    unless the sweep put it there (_with_data)."""
    with _DATA_LOCK:
        if (dataset, path) not in _DATA:
            _DATA[dataset, path] = _load(dataset, path)
        training, validation = _DATA[dataset, path]
    return ((training[0][:train_size], training[1][:train_size]),
            (validation[0][:eval_size], validation[1][:eval_size]))


def _with_data(run_fn, config, data):
    """``run_fn(config)`` on a worker, with the data scattered to it in this process's
    cache: a worker on another machine needs neither the files nor NNDL_DATA."""
    with _DATA_LOCK:
        _DATA[_data_key(config)] = data
    return run_fn(config)


def train_one(config):
    """Train the run ``config`` describes; return its row of the results table."""
    training, validation = _data(config["dataset"], config["train_size"], config["eval_size"],
                                 config.get("data"))
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
    """Append one row as a JSON line and make it durable (flush + fsync) before returning.
    The folder must exist (main makes the output folder)."""
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
              run_fn=train_one, verbose=True, failures=None):
    """Run every config not yet in the results file ``path``; return all its rows.

    ``engine`` is "local" (a process pool of ``workers``), "dask" (``client``, or a new
    client of ``scheduler``, or of a new LocalCluster of ``workers`` processes) or
    "serial".  Each row is appended to ``path`` the moment its run finishes.  A run that
    raises, or whose worker dies, is reported and tried once more; runs that fail twice
    are appended to the list ``failures`` as (config, error), or, without that list,
    raise an NNDLError once every other run is done.
    """
    done = {r["key"] for r in read_results(path)}
    todo = [c for c in configs if run_key(c) not in done]
    if verbose:
        print(f"{len(configs)} runs in the grid, {len(configs) - len(todo)} already in {path}, "
              f"{len(todo)} to go ({engine})", flush=True)
    finished = 0
    tries = {}
    failed = [] if failures is None else failures

    def record(row):
        nonlocal finished
        append_result(path, row)
        finished += 1
        if verbose:
            print(f"[{finished}/{len(todo)}] eta {row['eta']} lambda {row['lmbda']} hidden "
                  f"{row['hidden']} seed {row['seed']}: {row['accuracy']:.2f}% "
                  f"({row['seconds']:.1f} s, {row['host']})", flush=True)

    def retry(config, error):
        """True if ``config`` is to be tried again after ``error``; reports either way."""
        key = run_key(config)
        tries[key] = tries.get(key, 1) + 1
        again = tries[key] <= TRIES
        what = f"run eta {config['eta']} lambda {config['lmbda']} hidden {config['hidden']} " \
               f"seed {config['seed']}"
        print(f"{what} failed ({type(error).__name__}: {error}); "
              + ("trying it once more" if again else "giving up on it"), file=sys.stderr, flush=True)
        if not again:
            failed.append((config, error))
        return again

    run_fn = _importable(run_fn)
    if not todo:
        pass
    elif engine == "serial":
        for c in todo:
            while True:
                try:
                    record(run_fn(c))
                    break
                except Exception as e:  # noqa: BLE001 -- any failure of one run; not Ctrl-C
                    if not retry(c, e):
                        break
    elif engine == "local":
        _run_locally(todo, run_fn, record, retry, workers)
    elif engine == "dask":
        _run_on_dask(todo, run_fn, record, retry, workers, client, scheduler)
    else:
        raise ConfigError(f"engine: expected 'local', 'dask' or 'serial', got {engine!r}")
    if failures is None and failed:
        config, error = failed[0]
        raise NNDLError(f"{len(failed)} of {len(todo)} runs failed twice (first: eta "
                        f"{config['eta']} lambda {config['lmbda']} hidden {config['hidden']} "
                        f"seed {config['seed']}: {type(error).__name__}: {error}); the other "
                        f"results are in {path}: run the same command again to retry")
    return read_results(path)


def _run_locally(todo, run_fn, record, retry, workers):
    """A pool of processes; a worker that dies breaks the pool, so the runs it took down
    are retried in a fresh one."""
    workers = workers or os.cpu_count() or 1
    ctx = multiprocessing.get_context("spawn")  # no fork of a threaded process
    pending = list(todo)
    while pending:
        again = []
        with _environment(ONE_THREAD), \
                concurrent.futures.ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            futures = {pool.submit(run_fn, c): c for c in pending}
            try:
                for future in concurrent.futures.as_completed(futures):
                    try:
                        row = future.result()
                    except Exception as e:  # noqa: BLE001 -- a run's error or a dead worker
                        if retry(futures[future], e):
                            again.append(futures[future])
                        continue
                    record(row)
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        pending = again


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


def _run_on_dask(todo, run_fn, record, retry, workers, client, scheduler):
    from dask.distributed import Client, LocalCluster, as_completed

    # The data for every run, loaded here once (the largest sizes any run uses).
    data = {}
    for c in todo:
        key = _data_key(c)
        size = data.get(key, (0, 0))
        data[key] = (max(size[0], c["train_size"]), max(size[1], c["eval_size"]))
    with contextlib.ExitStack() as stack:
        if client is None:
            if scheduler:
                client = stack.enter_context(Client(scheduler, timeout="30s"))
                client.upload_file(os.path.abspath(__file__))  # workers can import this module
            else:
                stack.enter_context(_environment(ONE_THREAD))
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers or os.cpu_count() or 1, threads_per_worker=1,
                    dashboard_address=None))
                client = stack.enter_context(Client(cluster))
        # Scattered once: every worker gets a copy with its first task, not one per task.
        # A worker that dies may take the only copy with it (scattered data cannot be
        # recomputed), cancelling every run waiting on it: then it is scattered again and
        # those runs resubmitted, which does not count as their retry (a few times at most,
        # in case workers keep dying).
        local = {key: _data(key[0], n_train, n_eval, key[1]) for key, (n_train, n_eval) in data.items()}

        def scatter(d):  # as one piece: a bare tuple would be scattered item by item
            return client.scatter([d], broadcast=True, hash=False)[0]

        scattered = {key: scatter(d) for key, d in local.items()}
        rescatters = 0
        call = _importable(_with_data)
        uses = {}

        def submit(c):
            future = client.submit(call, run_fn, c, scattered[_data_key(c)], pure=False)
            uses[future] = scattered[_data_key(c)]
            return future

        futures = {submit(c): c for c in todo}
        pending = as_completed(list(futures))
        try:
            for future in pending:
                c = futures.pop(future)
                used = uses.pop(future)
                try:
                    row = future.result()
                except Exception as e:  # noqa: BLE001 -- a run's error, or its worker died
                    key = _data_key(c)
                    if used.status != "finished" and rescatters < 3 * len(scattered):
                        if scattered[key] is used:  # the first run to notice sends it again
                            rescatters += 1
                            print("the workers lost the data (a worker died?): sending it again",
                                  file=sys.stderr, flush=True)
                            scattered[key] = scatter(local[key])
                        again = submit(c)
                    elif retry(c, e):
                        again = submit(c)
                    else:
                        continue
                    futures[again] = c
                    pending.add(again)
                    continue
                record(row)
        except BaseException:
            client.cancel(list(futures))
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
N_TRAINING, N_VALIDATION = 50_000, 10_000  # MNIST as the book splits it


def parse_args(argv=None):
    """The options, each checked (and the paths tried) before any data loads."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--etas", default="0.1,0.5,3.0")
    p.add_argument("--lmbdas", default="0,5")
    p.add_argument("--hidden", default="30,100")
    p.add_argument("--seeds", default="0,1")
    p.add_argument("--epochs", type=cli.positive_int, default=10)
    p.add_argument("--mini-batch-size", type=cli.positive_int, default=10)
    p.add_argument("--train-size", type=cli.positive_int, default=N_TRAINING)
    p.add_argument("--eval-size", type=cli.positive_int, default=N_VALIDATION,
                   help="validation images")
    p.add_argument("--dataset", choices=["mnist", "synthetic"], default="mnist")
    p.add_argument("--data", metavar="DIR",
                   help="folder holding the MNIST files (beats $NNDL_DATA); read here and "
                        "sent to the workers, which need no copy")
    p.add_argument("--engine", choices=["local", "dask", "serial"], default="local")
    p.add_argument("--workers", type=cli.positive_int,
                   help="processes at once (default: the machine's cores)")
    p.add_argument("--scheduler", help="address of a running Dask scheduler (engine dask)")
    p.add_argument("--quick", action="store_true",
                   help="eta 0.5,3 × lambda 0 × hidden 10 × seed 0, 2 epochs on 1,000 images")
    p.add_argument("--out", help=f"output folder (default runs/{NAME}, created if needed)")
    p.add_argument("--from-json", metavar="PATH", help="only rebuild the table and plot from this .jsonl")
    args = p.parse_args(argv)
    if args.quick:
        args.etas, args.lmbdas, args.hidden, args.seeds = "0.5,3", "0", "10", "0"
        args.epochs = min(args.epochs, 2)
        args.train_size, args.eval_size = min(args.train_size, 1000), min(args.eval_size, 1000)
    for name, kind in (("etas", cli.number_list(0.0, True)), ("lmbdas", cli.number_list(0.0, False)),
                       ("hidden", cli.int_list), ("seeds", cli.int_list_from(0))):
        setattr(args, name, cli.convert(p, f"--{name}", getattr(args, name), kind))
    if args.dataset == "mnist":
        for option, value, most in (("--train-size", args.train_size, N_TRAINING),
                                    ("--eval-size", args.eval_size, N_VALIDATION)):
            if value > most:
                p.error(f"{option}: expected 1..{most}, got {value}")
    if args.mini_batch_size > args.train_size:
        p.error(f"--mini-batch-size {args.mini_batch_size} is larger than --train-size "
                f"{args.train_size}")
    if args.scheduler and args.engine != "dask":
        p.error("--scheduler needs --engine dask")
    if args.from_json is not None and not os.path.isfile(args.from_json):
        p.error(f"--from-json {args.from_json}: no such file")
    cli.check_paths(p, args.data)
    if args.from_json is None:
        cli.check_out_folder(p, args.out, os.path.join("runs", NAME), "results.jsonl")
        if args.dataset == "mnist":  # found now, not in every worker after it starts
            from nndl.data import mnist_files

            mnist_files(args.data, download=False)
    return args


def main(argv=None):
    args = parse_args(argv)
    failures = []
    if args.from_json:
        rows = read_results(args.from_json)
        out = args.out or os.path.dirname(os.path.abspath(args.from_json))
    else:
        out = args.out or os.path.join("runs", NAME)
        cli.make_folder(out)
        data = os.path.abspath(args.data) if args.data else None
        configs = grid(args.etas, args.lmbdas, args.hidden, args.seeds, epochs=args.epochs,
                       mini_batch_size=args.mini_batch_size, train_size=args.train_size,
                       eval_size=args.eval_size, dataset=args.dataset, data=data)
        keys = {run_key(c) for c in configs}
        rows = [r for r in run_sweep(configs, os.path.join(out, "results.jsonl"), args.engine,
                                     args.workers, scheduler=args.scheduler, failures=failures)
                if r["key"] in keys]
    for path in finish(rows, out):
        print(f"wrote {path}")
    if failures:
        config, error = failures[0]
        raise NNDLError(f"{len(failures)} runs failed twice (first: eta {config['eta']} lambda "
                        f"{config['lmbda']} hidden {config['hidden']} seed {config['seed']}: "
                        f"{type(error).__name__}: {error}); run the same command again to "
                        "retry them")
    return rows


if __name__ == "__main__":
    cli.run_script(main)
