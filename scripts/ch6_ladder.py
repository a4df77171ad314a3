#!/usr/bin/env python
"""Chapter 6's ladder, run in full: each rung's record, the ensemble's vote, the tables.

Each run trains one of ``scripts/mnist_conv.py``'s presets with the book's configuration
and writes a small record ``results/ch6-PRESET-seedS.json`` after every epoch (marked
``"partial": true`` until the last): the command, the validation and test accuracy of
every epoch, the test accuracy at the epoch of best validation accuracy (network3's
figure; the latest of ties), wall time and seconds per epoch.  Runs take hours on two
cores, so they checkpoint every epoch into ``--runs DIR`` (outside the work tree) and
``--resume`` continues them.  No weights are kept: an ``ensemble`` member writes its
softmax outputs on the test set (float16, 200 KB) beside its record, and the vote is
computed from those files.

    python scripts/ch6_ladder.py --preset expanded --seed 0 --runs RUNS_DIR --resume
    python scripts/ch6_ladder.py --preset ensemble --seed 0 --runs RUNS_DIR --resume
    python scripts/ch6_ladder.py --report          # tables and figures from results/

The ``dropout`` rung is the ensemble's first member (the same net, the same seed), and
every ``dropout`` run writes the member's softmax outputs.  ``--preset ensemble --seed
S`` trains seeds S..S+4 one after the other and votes; on a machine with cores to spare,
run ``--preset dropout --seed S`` for each seed in processes of their own, then
``--vote S ...``.
"""
import argparse
import glob
import json
import os
import shlex
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

from mnist_conv import ENSEMBLE_SIZE, PRESETS, _build  # noqa: E402

from nndl import cli  # noqa: E402

RESULTS = os.path.join(ROOT, "results")
# The first rungs' test accuracies (%), from full runs of scripts/mnist_conv.py made
# before these records existed (docs/results.md gives their commands).
EARLIER = {"fc100": 97.69, "conv1": 99.00, "relu": 99.27}
MAX_MISTAKES = 100  # digits drawn in the ensemble's mistakes figure (the book's has 33)
LADDER = ["fc100", "conv1", "conv2", "relu", "expanded", "two-fc", "fc300", "fc1000",
          "dropout", "ensemble"]
NAMES = {"fc100": "FC100 sigmoid", "conv1": "ConvPool + FC100", "conv2": "two ConvPool + FC100",
         "relu": "ReLU, λ 0.1", "expanded": "expanded data (250,000 images)",
         "two-fc": "+ a second FC100", "fc300": "two FC300", "fc1000": "two FC1000",
         "dropout": "two FC1000, dropout 0.5", "ensemble": "vote of 5 dropout nets"}


def _read(path):
    with open(path) as f:
        return json.load(f)


def record_path(preset, seed, results=RESULTS):
    return os.path.join(results, f"ch6-{preset}-seed{seed}.json")


def best_epoch(validation):
    """network3's best epoch: the highest validation accuracy, the latest of ties."""
    v = np.asarray(validation)
    return len(v) - 1 - int(np.argmax(v[::-1]))


def make_record(preset, seed, command, history, test, epochs, wall, partial):
    """The record of one run from its history and per-epoch test accuracies (fractions)."""
    validation = [a / history.n_evaluation for a in history.evaluation_accuracy]
    best = best_epoch(validation) if validation else None
    return {
        "preset": preset, "seed": seed, "command": command, "book": PRESETS[preset][4],
        "epochs": epochs, "epochs_run": len(validation), "partial": partial,
        "validation_accuracy": validation, "test_accuracy_per_epoch": test,
        "best_epoch": best,
        "best_validation_accuracy": None if best is None else validation[best],
        "test_accuracy": None if best is None else test[best],
        "wall_seconds": wall, "seconds_per_epoch": list(history.epoch_seconds),
        "stopped": history.stopped,
    }


def train(preset, seed, runs, resume, results, data=None, epochs=None, train_size=None,
          command=None):
    """One full run of ``preset`` (for ``ensemble``: one dropout member) with its record;
    ``command`` is recorded as the command that ran it."""
    from nndl import network3
    from nndl.data import load_mnist
    from nndl.expand import expand_mnist

    net_preset = "dropout" if preset == "ensemble" else preset
    n_epochs, eta, lmbda, expanded, _ = PRESETS[net_preset]
    n_epochs = epochs or n_epochs
    command = command or _command(sys.argv[1:])
    training, validation, test = load_mnist(data, dtype="float32")
    if train_size:
        training = (training[0][:train_size], training[1][:train_size])
    if expanded:
        training = expand_mnist(*training, dtype="float32", on_demand=True)
    net = network3.Network(_build(net_preset, False), 10, dtype="float32", seed=seed)
    path = record_path(net_preset, seed, results)  # an ensemble member is a dropout run
    ckpt = os.path.join(runs, os.path.basename(path).replace(".json", ".ckpt.npz"))
    tests = []
    if resume and os.path.exists(path):
        tests = list(_read(path)["test_accuracy_per_epoch"])
    start = time.time()

    def after_epoch(epoch, net, history):
        tests[epoch:] = [net.accuracy(test) / len(test[0])]
        print(f"{preset} seed {seed} epoch {epoch}: validation "
              f"{history.evaluation_accuracy[-1] / history.n_evaluation:.2%}, test "
              f"{tests[-1]:.2%} ({history.epoch_seconds[-1]:.1f} s)", flush=True)
        done = epoch + 1 >= n_epochs or history.stopped is not None
        rec = make_record(net_preset, seed, command, history, tests[:epoch + 1], n_epochs,
                          time.time() - start + prior, partial=not done)
        cli.write_json(rec, path)

    prior = _read(path)["wall_seconds"] if resume and os.path.exists(path) else 0.0
    net.SGD(training, n_epochs, 10, eta, validation, None, lmbda=lmbda, verbose=False,
            callback=after_epoch, checkpoint=ckpt, resume=resume)
    if net_preset == "dropout":  # every dropout run is a possible ensemble member
        np.save(path.replace(".json", "-softmax.npy"), _softmax(net, test[0]).astype(np.float16))
    return path


def import_json(path, command, results=RESULTS):
    """A record from a run of ``scripts/mnist_conv.py --json`` (which measured the test
    accuracy only at new-best validation epochs: the other epochs' are null)."""
    doc = _read(path)
    h = doc["histories"][0]
    validation = [a / h["n_evaluation"] for a in h["evaluation_accuracy"]]
    best = best_epoch(validation)
    rec = {"preset": doc["preset"], "seed": doc["seed"], "command": command, "book": doc["book"],
           "epochs": doc["epochs"], "epochs_run": len(validation),
           "partial": len(validation) < doc["epochs"] and not h.get("stopped_early"),
           "validation_accuracy": validation, "test_accuracy_per_epoch": h["test_accuracy"],
           "best_epoch": best, "best_validation_accuracy": validation[best],
           "test_accuracy": doc["results"][0]["test_accuracy"],
           "wall_seconds": float(sum(h["epoch_seconds"])), "seconds_per_epoch": h["epoch_seconds"],
           "stopped": None}
    out = record_path(doc["preset"], doc["seed"], results)
    cli.write_json(rec, out)
    return out


def _command(argv):
    """The command line as run, with the folders it was given as placeholders (records
    name no paths of the machine they ran on)."""
    out, hide = [], {"--runs": "RUNS", "--results": "results", "--data": "DATA"}
    for i, a in enumerate(argv):
        out.append(hide[argv[i - 1]] if i and argv[i - 1] in hide else shlex.quote(a))
    return "python scripts/ch6_ladder.py " + " ".join(out)


def _softmax(net, x):
    from nndl import ensemble

    return ensemble.probabilities(net, x)


def vote(seeds, results=RESULTS, data=None):
    """The ensemble's record from its members' saved softmax outputs."""
    from nndl import ensemble
    from nndl.data import load_mnist

    outputs = [np.load(record_path("dropout", s, results).replace(".json", "-softmax.npy"))
               .astype(np.float64) for s in seeds]
    labels = load_mnist(data, dtype="float32")[2][1]
    predicted = ensemble.vote(outputs)
    wrong = np.flatnonzero(predicted != labels)
    rec = {"preset": "ensemble", "members": list(seeds), "book": PRESETS["ensemble"][4],
           "command": "python scripts/ch6_ladder.py --vote " + " ".join(map(str, seeds)),
           "test_accuracy": float((predicted == labels).mean()),
           "member_test_accuracy": [float((p.argmax(axis=1) == labels).mean()) for p in outputs],
           "misclassified": {"index": wrong.tolist(), "label": labels[wrong].tolist(),
                             "predicted": predicted[wrong].tolist()},
           "partial": False}
    cli.write_json(rec, os.path.join(results, "ch6-ensemble.json"))
    return rec


def records(results=RESULTS):
    """{preset: [records, lowest seed first]} of every run under results/."""
    out = {}
    for path in glob.glob(os.path.join(results, "ch6-*.json")):
        rec = _read(path)
        out.setdefault(rec["preset"], []).append(rec)
    for recs in out.values():
        recs.sort(key=lambda r: r.get("seed", -1))
    return out


def ladder(recs):
    """{rung: (nndl's test accuracy %, note)} in LADDER order: the lowest seed's record,
    else EARLIER's figure; a rung with neither is left out."""
    out = {}
    for preset in LADDER:
        rec = recs.get(preset, [{}])[0]
        if rec.get("test_accuracy") is not None:
            note = f" (partial: {rec['epochs_run']} of {rec['epochs']} epochs)" if rec.get("partial") else ""
            out[preset] = (100 * rec["test_accuracy"], note)
        elif preset in EARLIER:
            out[preset] = (EARLIER[preset], "")
    return out


def table_rows(recs):
    """README rows: book vs nndl, one per rung of :func:`ladder`."""
    return [f"| ch6 {NAMES[p]} (`{p}`) | {PRESETS[p][4]:.2f}% | {acc:.2f}%{note} |"
            for p, (acc, note) in ladder(recs).items()]


def results_table(recs):
    """docs/results.md: every run with its seed, epochs, timing and command."""
    lines = ["| rung | book | nndl test (at best validation) | seed | "
             "best epoch (from 0, as network3 counts) | s/epoch (median) | command |",
             "|---|---|---|---|---|---|---|"]
    for preset in LADDER:
        for rec in recs.get(preset, []):
            if preset == "ensemble":
                members = ", ".join(f"{100 * a:.2f}%" for a in rec["member_test_accuracy"])
                lines.append(f"| `ensemble` | {rec['book']:.2f}% | {100 * rec['test_accuracy']:.2f}% "
                             f"(members at their last epoch, whose outputs vote: {members}) "
                             f"| {', '.join(map(str, rec['members']))} | — | — | `{rec['command']}` |")
                continue
            if rec["test_accuracy"] is None:
                continue
            part = f", partial: {rec['epochs_run']} of {rec['epochs']} epochs" if rec.get("partial") else ""
            spe = np.median(rec["seconds_per_epoch"]) if rec["seconds_per_epoch"] else float("nan")
            lines.append(f"| `{preset}` | {rec['book']:.2f}% | {100 * rec['test_accuracy']:.2f}%{part} "
                         f"| {rec['seed']} | {rec['best_epoch']} | {spe:.1f} | `{rec['command']}` |")
    return lines


def replace_between(path, start, end, lines):
    with open(path) as f:
        text = f.read()
    a, b = text.index(start) + len(start), text.index(end)
    with open(path, "w") as f:
        f.write(text[:a] + "\n" + "\n".join(lines) + "\n" + text[b:])


def report(results=RESULTS, data=None):
    """Regenerate the ladder tables in README.md and docs/results.md, and the figures."""
    recs = records(results)
    replace_between(os.path.join(ROOT, "README.md"), "<!-- ladder:start -->", "<!-- ladder:end -->",
                    table_rows(recs))
    replace_between(os.path.join(ROOT, "docs", "results.md"), "<!-- ladder:start -->",
                    "<!-- ladder:end -->", ["## Chapter 6's ladder, from `results/`", "",
                                            "Generated by `python scripts/ch6_ladder.py --report` "
                                            "from the records in `results/`; float32, mini-batch 10, "
                                            "the book's epochs, eta and lambda.", ""]
                    + results_table(recs))
    figures(recs, results, data)


def figures(recs, results=RESULTS, data=None):
    from nndl import plots

    ours = {p: acc for p, (acc, _) in ladder(recs).items()}
    rungs = list(ours)
    if rungs:
        plt = plots._pyplot()
        fig, ax = plt.subplots(figsize=(9, 4))
        xs = np.arange(len(rungs))
        ax.plot(xs, [PRESETS[p][4] for p in rungs], "o-", label="book")
        ax.plot(xs, [ours[p] for p in rungs], "s-", label="nndl")
        ax.set_xticks(xs, rungs, rotation=20)
        ax.set_ylabel("test accuracy (%)")
        ax.set_title("Chapter 6's ladder: book vs nndl")
        ax.legend()
        fig.tight_layout()
        fig.savefig(os.path.join(results, "ch6-ladder.png"), dpi=100)
        plt.close(fig)
    if "ensemble" in recs:
        from nndl.data import load_mnist

        test = load_mnist(data, dtype="float32")[2]
        wrong = {k: v[:MAX_MISTAKES] for k, v in recs["ensemble"][0]["misclassified"].items()}
        if wrong["index"]:  # the book's figure: each digit with its true and predicted label
            plots.misclassified_digits(test[0][np.asarray(wrong["index"], dtype=int)],
                                       wrong["predicted"], wrong["label"],
                                       os.path.join(results, "ch6-ensemble-mistakes.png"))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=[x for x in LADDER if x not in ("fc100", "conv1", "relu")])
    p.add_argument("--seed", type=cli.nonneg_int, default=0)
    p.add_argument("--runs", metavar="DIR", help="checkpoints go here (outside the work tree)")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--results", metavar="DIR", default=RESULTS)
    p.add_argument("--data", metavar="DIR")
    p.add_argument("--epochs", type=cli.positive_int, help="fewer epochs (a test run)")
    p.add_argument("--train-size", type=cli.positive_int, help="fewer images (a test run)")
    p.add_argument("--vote", type=cli.nonneg_int, nargs="+", metavar="SEED",
                   help="the ensemble's record from these members' softmax outputs")
    p.add_argument("--report", action="store_true", help="tables and figures from the records")
    p.add_argument("--import-json", nargs=2, metavar=("PATH", "COMMAND"),
                   help="a record from scripts/mnist_conv.py --json PATH, run as COMMAND")
    args = p.parse_args(argv)
    if args.preset and not args.runs:
        p.error("--preset needs --runs DIR for its checkpoints")
    if args.preset:
        cli.check_paths(p, args.data, [])
        for dirname in (args.runs, args.results):
            if not os.path.isdir(dirname):
                p.error(f"no such folder: {dirname}")
        seeds = [args.seed + k for k in range(ENSEMBLE_SIZE)] if args.preset == "ensemble" else [args.seed]
        command = _command(sys.argv[1:] if argv is None else list(argv))
        for s in seeds:
            print(train(args.preset, s, args.runs, args.resume, args.results, args.data,
                        args.epochs, args.train_size, command))
        if args.preset == "ensemble":
            args.vote = seeds
    if args.vote:
        rec = vote(args.vote, args.results, args.data)
        print(f"ensemble of {len(args.vote)}: test accuracy {100 * rec['test_accuracy']:.2f}% "
              f"(book {rec['book']:.2f}%)")
    if args.import_json:
        print(import_json(*args.import_json, args.results))
    if args.report:
        report(args.results, args.data)
    return 0


if __name__ == "__main__":
    cli.run_script(main)
