"""scripts/lenet.py --dataset cifar10: LeNet trained on small synthetic data written in
CIFAR-10's official binary format, with the classic tutorial's settings."""
import hashlib
import importlib
import io
import json
import os
import sys
import tarfile

import numpy as np
import pytest

from nndl import Momentum, cifar, data

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))

lenet = importlib.import_module("lenet")

N_TRAIN_BATCH, N_TEST = 40, 60                       # records per training batch file, test file


def synthetic_records(n, rng):
    """n records of an easy ten-class problem: class c is a bright 8 × 6 patch at the
    c-th of ten places on a noisy grey background."""
    labels = rng.integers(0, 10, n)
    images = 0.3 + 0.1 * rng.standard_normal((n, 3, 32, 32))
    for image, c in zip(images, labels):
        row, col = divmod(c, 5)
        image[:, 4 + 14 * row:12 + 14 * row, 1 + 6 * col:7 + 6 * col] += 0.6
    pixels = np.clip(np.rint(255 * images), 0, 255).astype(np.uint8)
    return labels, np.concatenate([labels[:, None].astype(np.uint8), pixels.reshape(n, -1)], axis=1)


@pytest.fixture
def cifar_archive(tmp_path, monkeypatch):
    """A folder holding cifar-10-binary.tar.gz of synthetic batches, pinned as the good copy."""
    rng = np.random.default_rng(0)
    buf, test_labels = io.BytesIO(), None
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name in cifar.FILE_NAMES:
            labels, records = synthetic_records(N_TEST if name == cifar.TEST_FILE else N_TRAIN_BATCH, rng)
            test_labels = labels if name == cifar.TEST_FILE else test_labels
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = records.size
            tar.addfile(info, io.BytesIO(records.tobytes()))
    raw = buf.getvalue()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / cifar.ARCHIVE).write_bytes(raw)
    monkeypatch.setitem(data.KNOWN_FILES, "cifar-10", {
        cifar.ARCHIVE: ((hashlib.sha256(raw).hexdigest(), len(raw)),)})
    return tmp_path / "data", test_labels


def test_cifar10_defaults_are_the_classic_tutorials():
    args = lenet.parse_args(["--dataset", "cifar10"])
    assert (args.epochs, args.mini_batch_size, args.optimizer, args.eta, args.lmbda) == \
        (2, 4, "momentum", 0.001, 0.0)
    mnist = lenet.parse_args([])
    assert (mnist.epochs, mnist.mini_batch_size, mnist.eta, mnist.lmbda) == (5, 32, 0.01, 0.1)
    assert lenet.parse_args(["--dataset", "cifar10", "--optimizer", "adam"]).eta == 0.001
    assert lenet.parse_args(["--dataset", "cifar10", "--epochs", "7"]).epochs == 7


def test_the_network_is_lenet_for_three_channels():
    net = lenet.lenet(seed=0, channels=3, init=lenet.uniform_init)
    shapes = [p.shape for layer in net.layers for _, p, _ in layer.parameters()]
    assert shapes == [(6, 3, 5, 5), (6,), (16, 6, 5, 5), (16,), (120, 400), (120,), (84, 120), (84,),
                      (10, 84), (10,)]
    assert net.feedforward(np.zeros((2, 3, 32, 32), np.float32)).shape == (2, 10)
    w = net.layers[0].w                                  # U(-1/√75, 1/√75), as PyTorch starts
    assert np.abs(w).max() <= 1 / np.sqrt(75) and np.abs(w).max() > 0.9 / np.sqrt(75)
    assert np.abs(net.layers[4].b).max() <= 1 / np.sqrt(400) and net.layers[4].b.std() > 0


def test_nndl_momentum_takes_the_tutorials_steps(rng):
    """nndl's v → μv - η g, p → p + v equals PyTorch's v → μv + g, p → p - η v, with g
    the mini-batch's average gradient (what the mean cross-entropy loss gives)."""
    ours, theirs = (lenet.lenet(seed=3, dtype="float64", channels=3, init=lenet.uniform_init) for _ in range(2))
    ours.optimizer = Momentum(0.9)
    velocity = {}
    for step in range(3):
        x = rng.uniform(-1, 1, (4, 3, 32, 32))
        y = np.eye(10)[rng.integers(0, 10, 4)]
        ours.update_mini_batch(x, y, 0.001)
        theirs.backprop(x, y)
        for i, layer in enumerate(theirs.layers):
            for name, p, g in layer.parameters():
                v = velocity[i, name] = 0.9 * velocity.get((i, name), 0) + g / 4
                p -= 0.001 * v
    for a, b in zip(ours.layers, theirs.layers):
        for (name, p, _), (_, q, _) in zip(a.parameters(), b.parameters()):
            np.testing.assert_allclose(p, q, rtol=1e-12, atol=1e-15, err_msg=name)


def test_lenet_trains_on_cifar_format_files_and_reports_every_class(cifar_archive, tmp_path, capsys):
    folder, test_labels = cifar_archive
    out = tmp_path / "run"
    results = lenet.main(["--dataset", "cifar10", "--data", str(folder), "--epochs", "3",
                          "--eta", "0.01", "--out", str(out)])
    printed = capsys.readouterr().out
    saved = json.loads((out / "lenet.json").read_text())
    assert saved == json.loads(json.dumps(results))
    assert sorted(os.listdir(out)) == ["conv1_filters.png", "learning_curves.png", "lenet.json"]
    h = results["history"]
    assert h["n_training"] == 5 * N_TRAIN_BATCH and h["n_evaluation"] == N_TEST
    assert [f"Epoch {e}: " in printed for e in range(3)] == [True] * 3
    acc = np.array(h["evaluation_accuracy"]) / N_TEST
    assert len(acc) == 3 and acc[-1] > 0.5               # an easy problem; chance is 0.1
    table = results["per_class"]
    assert table["classes"] == list(cifar.CLASSES)
    assert table["total"] == np.bincount(test_labels, minlength=10).tolist()
    assert sum(table["correct"]) == h["evaluation_accuracy"][-1]
    assert all(0 <= c <= t for c, t in zip(table["correct"], table["total"]))
    for name, right, n in zip(table["classes"], table["correct"], table["total"]):
        if n:
            assert f"{name}  " in printed and f"({right} / {n})" in printed
    assert "LeNet-5 style on CIFAR-10" in printed
    # the plots come back from the JSON alone
    for png in ("conv1_filters.png", "learning_curves.png"):
        (out / png).unlink()
    lenet.main(["--from-json", str(out / "lenet.json"), "--out", str(tmp_path / "again")])
    assert sorted(os.listdir(tmp_path / "again")) == ["conv1_filters.png", "learning_curves.png"]


def test_cifar_images_reach_the_network_scaled_to_minus_1_to_1(cifar_archive):
    folder, _ = cifar_archive
    training, test = lenet.load(lenet.parse_args(["--dataset", "cifar10", "--data", str(folder),
                                                  "--train-size", "30", "--eval-size", "7"]))
    assert training[0].shape == (30, 3, 32, 32) and test[0].shape == (7, 3, 32, 32)
    assert training[0].dtype == np.float32
    assert training[0].min() == -1.0 and training[0].max() == 1.0   # clipped noise hits 0 and 255
