"""Model files: exact save/load round trips, clear errors for foreign or damaged files,
and atomic writes."""
import json
import os
import zipfile

import numpy as np
import pytest

from nndl import (CrossEntropyCost, Dense, Dropout, FormatError, SaveError, LogLikelihoodCost, Network,
                  QuadraticCost, io)

NETS = {
    "sigmoid": lambda dtype: Network([6, 5, 3], cost=QuadraticCost, dtype=dtype, seed=1),
    "relu-dropout-softmax": lambda dtype: Network(
        [Dense(6, 7, "relu"), Dropout(0.3), Dense(7, 5, "tanh", bias=False),
         Dense(5, 3, "softmax")], cost=LogLikelihoodCost, dtype=dtype, seed=2),
}


def parameter_list(net):
    return [(i, name, p) for i, layer in enumerate(net.layers) for name, p, _ in layer.parameters()]


def saved_net(tmp_path, suffix=".npz"):
    net = NETS["sigmoid"](np.float64)
    path = tmp_path / f"net{suffix}"
    net.save(path)
    return net, path


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize("kind", list(NETS))
def test_save_then_load_restores_the_network_exactly(kind, suffix, dtype, tmp_path, rng):
    net = NETS[kind](dtype)
    # Train a little so the parameters are not just what the seed draws.
    x = rng.random((30, 6))
    net.SGD((x, rng.integers(0, 3, 30)), 1, 10, 0.5, lmbda=0.1, verbose=False, fast=False)
    path = tmp_path / f"model{suffix}"
    net.save(path)
    loaded = Network.load(path)
    assert loaded.cost is net.cost and loaded.dtype == net.dtype
    assert loaded.input_shape == net.input_shape
    assert [type(l) for l in loaded.layers] == [type(l) for l in net.layers]
    assert [l.config() for l in loaded.layers] == [l.config() for l in net.layers]
    saved, restored = parameter_list(net), parameter_list(loaded)
    assert [(i, n) for i, n, _ in saved] == [(i, n) for i, n, _ in restored]
    for (i, name, p), (_, _, q) in zip(saved, restored):
        assert q.dtype == p.dtype, f"{i}/{name}"
        assert np.array_equal(p, q), f"{i}/{name}"
    xt = x.astype(dtype)
    assert np.array_equal(loaded.feedforward(xt), net.feedforward(xt))
    assert np.array_equal(loaded.predict(xt), net.predict(xt))


def test_a_loaded_network_keeps_training_like_the_original(tmp_path, rng):
    net, path = saved_net(tmp_path)
    loaded = Network.load(path)
    x, labels = rng.random((20, 6)), rng.integers(0, 3, 20)
    for n in (net, loaded):
        n.rng = np.random.default_rng(5)
        n.SGD((x, labels), 1, 5, 0.5, verbose=False, fast=False)
    for (_, _, p), (_, _, q) in zip(parameter_list(net), parameter_list(loaded)):
        assert np.array_equal(p, q)


def test_the_npz_file_is_readable_without_pickle(tmp_path):
    net, path = saved_net(tmp_path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}          # reads every entry
    meta = json.loads(arrays.pop("__meta__").tobytes().decode("utf-8"))
    assert meta["format"] == "nndl-model" and meta["version"] == io.VERSION
    assert meta["cost"] == "QuadraticCost"
    assert all(a.dtype != object for a in arrays.values())
    np.testing.assert_array_equal(arrays["a/0/w"], net.layers[0].w)


def test_the_json_file_is_plain_json_with_format_and_version(tmp_path):
    net, path = saved_net(tmp_path, ".json")
    doc = json.loads(path.read_text())
    assert doc["format"] == "nndl-model" and doc["version"] == io.VERSION
    assert doc["arrays"]["1/b"]["shape"] == [3]
    assert [l["type"] for l in doc["layers"]] == ["Dense", "Dense"]


def test_save_accepts_a_string_path_but_creates_no_folders(tmp_path):
    net = NETS["sigmoid"](np.float64)
    path = os.path.join(str(tmp_path), "runs", "ch3", "net.npz")
    with pytest.raises(SaveError, match="does not exist"):
        net.save(path)
    assert os.listdir(tmp_path) == []
    os.makedirs(os.path.dirname(path))
    net.save(path)
    assert np.array_equal(Network.load(path).layers[0].w, net.layers[0].w)


def test_save_overwrites_an_existing_file(tmp_path):
    _, path = saved_net(tmp_path)
    other = Network([6, 5, 3], cost=CrossEntropyCost, seed=99)
    other.save(path)
    loaded = Network.load(path)
    assert loaded.cost is CrossEntropyCost
    assert np.array_equal(loaded.layers[0].w, other.layers[0].w)


# -- files that are not ours, or damaged -----------------------------------------------

def test_loading_a_foreign_npz_raises_format_error(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, weights=np.ones((3, 2)))
    with pytest.raises(FormatError, match=r"foreign\.npz: not an nndl model file \(no __meta__"):
        Network.load(path)


def test_loading_the_books_network2_json_raises_format_error(tmp_path):
    path = tmp_path / "book.json"
    path.write_text(json.dumps({"sizes": [2, 1], "weights": [[[0.5, 0.5]]], "biases": [[[0.0]]],
                                "cost": "CrossEntropyCost"}))
    with pytest.raises(FormatError, match=r"book\.json: not an nndl model file"):
        Network.load(path)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_loading_a_file_from_a_newer_version_asks_to_upgrade(suffix, tmp_path):
    path = tmp_path / f"future{suffix}"
    io.write_arrays(path, {"version": io.VERSION + 1, "layers": []}, {"0/w": np.ones((2, 2))})
    with pytest.raises(FormatError, match=rf"future\{suffix}: format version {io.VERSION + 1}.*upgrade"):
        Network.load(path)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_loading_garbage_raises_format_error(suffix, tmp_path):
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(np.random.default_rng(0).bytes(300))
    with pytest.raises(FormatError, match=rf"garbage\{suffix}: not a readable nndl model file"):
        Network.load(path)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize("keep", [0.5, 0.1, 0.0])
def test_loading_a_truncated_file_raises_format_error(suffix, keep, tmp_path):
    _, path = saved_net(tmp_path, suffix)
    raw = path.read_bytes()
    path.write_bytes(raw[:int(len(raw) * keep)])
    with pytest.raises(FormatError, match=rf"net\{suffix}: not a readable nndl model file"):
        Network.load(path)


def test_loading_a_missing_file_raises_format_error(tmp_path):
    with pytest.raises(FormatError, match="no such file"):
        Network.load(tmp_path / "missing.npz")


def test_loading_an_array_of_the_wrong_shape_raises_format_error(tmp_path):
    net, path = saved_net(tmp_path)
    meta, arrays = io.read_arrays(path)
    arrays["0/w"] = np.ones((2, 2))
    io.write_arrays(path, meta, arrays)
    with pytest.raises(FormatError, match=r"array 0/w has shape \(2, 2\), expected \(5, 6\)"):
        Network.load(path)


def test_loading_a_file_missing_an_array_raises_format_error(tmp_path):
    net, path = saved_net(tmp_path)
    meta, arrays = io.read_arrays(path)
    del arrays["1/b"]
    io.write_arrays(path, meta, arrays)
    with pytest.raises(FormatError, match=r"missing array 1/b"):
        Network.load(path)


def test_loading_an_unknown_layer_type_raises_format_error(tmp_path):
    net, path = saved_net(tmp_path, ".json")
    doc = json.loads(path.read_text())
    doc["layers"][0]["type"] = "Capsule"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"net\.json: bad layer description.*Capsule"):
        Network.load(path)


@pytest.mark.parametrize("layer, key, value", [(1, "n_out", 10 ** 12), (0, "n_in", 7)])
def test_layer_sizes_that_disagree_with_the_arrays_raise_format_error_before_allocating(
        tmp_path, monkeypatch, layer, key, value):
    _, path = saved_net(tmp_path, ".json")
    doc = json.loads(path.read_text())
    doc["layers"][layer]["config"][key] = value       # damaged: the arrays are unchanged
    path.write_text(json.dumps(doc))
    built = []
    monkeypatch.setattr(Dense, "initialize", lambda self, *a, **k: built.append(self))
    with pytest.raises(FormatError, match=rf"array {layer}/w has shape \(.*\), expected \("):
        Network.load(path)
    assert built == []                               # nothing was allocated or drawn


def test_a_conv_layer_whose_filter_shape_disagrees_with_its_weights_raises_format_error(tmp_path):
    from nndl.conv import ConvPoolLayer, SoftmaxLayer

    net = Network([ConvPoolLayer((2, 1, 3, 3), (None, 1, 6, 6)), SoftmaxLayer(8, 3)],
                  cost=LogLikelihoodCost, seed=0)
    path = tmp_path / "conv.json"
    net.save(path)
    doc = json.loads(path.read_text())
    doc["layers"][0]["config"]["filter_shape"] = [2000, 1, 3, 3]
    doc["layers"][0]["config"]["image_shape"] = [None, 1, 6, 6]
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"array 0/w has shape \(2, 1, 3, 3\), expected "
                                          r"\(2000, 1, 3, 3\)"):
        Network.load(path)


def test_loading_a_json_array_with_an_unsafe_dtype_raises_format_error(tmp_path):
    _, path = saved_net(tmp_path, ".json")
    doc = json.loads(path.read_text())
    doc["arrays"]["0/w"]["dtype"] = "object"
    path.write_text(json.dumps(doc))
    with pytest.raises(FormatError, match=r"unsupported array dtype 'object'"):
        Network.load(path)


def test_format_error_is_a_value_error():
    assert issubclass(FormatError, ValueError)


# -- atomic writes -------------------------------------------------------------------

def test_a_failed_npz_write_leaves_the_previous_file_intact_and_no_temp_file(tmp_path, monkeypatch):
    net, path = saved_net(tmp_path)
    before = path.read_bytes()

    def savez_that_fails(f, **arrays):
        f.write(b"PK\x03\x04 half a zip file")          # a partial write, then a crash
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_that_fails)
    with pytest.raises(OSError, match="disk full"):
        Network([6, 5, 3], seed=42).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.npz"]
    assert np.array_equal(Network.load(path).layers[0].w, net.layers[0].w)


def test_a_failed_json_write_leaves_the_previous_file_intact_and_no_temp_file(tmp_path,
                                                                                monkeypatch):
    _, path = saved_net(tmp_path, ".json")
    before = path.read_bytes()

    def dump_that_fails(obj, f, **kwargs):
        f.write('{"format": "nndl-model", "ver')
        raise KeyboardInterrupt                          # even an interrupt cleans up

    monkeypatch.setattr(json, "dump", dump_that_fails)
    with pytest.raises(KeyboardInterrupt):
        Network([6, 5, 3], seed=42).save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["net.json"]


def test_a_failed_first_write_leaves_no_file_at_all(tmp_path, monkeypatch):
    def savez_that_fails(f, **arrays):
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", savez_that_fails)
    with pytest.raises(OSError):
        Network([6, 5, 3], seed=0).save(tmp_path / "net.npz")
    assert os.listdir(tmp_path) == []


def test_atomic_write_renames_into_place_only_on_success(tmp_path):
    path = tmp_path / "out.bin"
    with io.atomic_write(path) as f:
        f.write(b"abc")
        assert not path.exists()                          # not visible before the rename
    assert path.read_bytes() == b"abc"


def test_npz_files_are_zip_archives_of_npy_entries(tmp_path):
    _, path = saved_net(tmp_path)
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
    assert "__meta__.npy" in names and all(n.endswith(".npy") for n in names)
