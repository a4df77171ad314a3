"""scripts/ch6_ladder.py on real MNIST, cut short: a run's record, the ensemble members'
softmax outputs and their vote, resuming, and the generated tables and figures."""
import importlib
import json
import os
import shutil
import sys

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "scripts"))
ladder = importlib.import_module("ch6_ladder")


@pytest.fixture
def folders(tmp_path, mnist):
    runs, results = tmp_path / "runs", tmp_path / "results"
    runs.mkdir()
    results.mkdir()
    return str(runs), str(results)


def _read(path):
    with open(path) as f:
        return json.load(f)


def _run(runs, results, *args):
    assert ladder.main(["--runs", runs, "--results", results, "--train-size", "40",
                        "--epochs", "1", *args]) == 0


def test_dropout_members_records_vote_and_report(folders, monkeypatch, tmp_path, mnist):
    runs, results = folders
    for seed in (0, 1):
        _run(runs, results, "--preset", "dropout", "--seed", str(seed))
    rec = _read(os.path.join(results, "ch6-dropout-seed0.json"))
    assert rec["preset"] == "dropout" and rec["seed"] == 0 and rec["partial"] is False
    assert rec["epochs_run"] == 1 and len(rec["test_accuracy_per_epoch"]) == 1
    assert rec["test_accuracy"] == rec["test_accuracy_per_epoch"][rec["best_epoch"]]
    assert rec["command"] == ("python scripts/ch6_ladder.py --runs RUNS --results results "
                              "--train-size 40 --epochs 1 --preset dropout --seed 0")
    assert os.path.exists(os.path.join(runs, "ch6-dropout-seed0.ckpt.npz"))
    outs = [np.load(os.path.join(results, f"ch6-dropout-seed{s}-softmax.npy")) for s in (0, 1)]
    labels = mnist[2][1]
    for out, s in zip(outs, (0, 1)):
        assert out.dtype == np.float16 and out.shape == (len(labels), 10)
        member = _read(os.path.join(results, f"ch6-dropout-seed{s}.json"))
        assert np.isclose((out.astype(np.float64).argmax(1) == labels).mean(),
                          member["test_accuracy"], atol=2e-4)   # float16 ties aside

    assert ladder.main(["--results", results, "--vote", "0", "1"]) == 0
    vote = _read(os.path.join(results, "ch6-ensemble.json"))
    predicted = (outs[0].astype(np.float64) + outs[1]).argmax(1)
    assert vote["members"] == [0, 1]
    assert vote["test_accuracy"] == pytest.approx((predicted == labels).mean())
    wrong = np.flatnonzero(predicted != labels)
    assert vote["misclassified"]["index"] == wrong.tolist()
    assert vote["misclassified"]["label"] == labels[wrong].tolist()

    # --report rewrites the tables between their markers and draws the figures
    root = tmp_path / "root"
    (root / "docs").mkdir(parents=True)
    shutil.copy(os.path.join(ROOT, "README.md"), root / "README.md")
    shutil.copy(os.path.join(ROOT, "docs", "results.md"), root / "docs" / "results.md")
    monkeypatch.setattr(ladder, "ROOT", str(root))
    assert ladder.main(["--results", results, "--report"]) == 0
    readme = (root / "README.md").read_text()
    assert f"| ch6 two FC1000, dropout 0.5 (`dropout`) | 99.60% | {100 * rec['test_accuracy']:.2f}% |" in readme
    table = (root / "docs" / "results.md").read_text()
    assert "| `ensemble` | 99.67% |" in table and "| `dropout` | 99.60% |" in table
    for png in ("ch6-ladder.png", "ch6-ensemble-mistakes.png"):
        assert os.path.getsize(os.path.join(results, png)) > 1000


def test_a_finished_run_resumes_to_nothing_and_keeps_its_record(folders):
    runs, results = folders
    _run(runs, results, "--preset", "conv2", "--seed", "3")
    path = os.path.join(results, "ch6-conv2-seed3.json")
    before = _read(path)
    _run(runs, results, "--preset", "conv2", "--seed", "3", "--resume")
    after = _read(path)
    assert after["validation_accuracy"] == before["validation_accuracy"]
    assert after["test_accuracy"] == before["test_accuracy"]
