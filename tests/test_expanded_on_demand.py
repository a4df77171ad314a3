"""Chapter 6's expanded training set made a mini-batch at a time (nndl.expand.
ExpandedImages): the same rows as the held array, bit for bit, so training on it gives
the same weights on every path, for a fifth of the memory."""
import numpy as np
import pytest

from nndl import Network
from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer
from nndl.errors import DataError, ShapeError
from nndl.expand import ExpandedImages, expand_mnist
from nndl.inputs import Examples
from nndl.layers import Dense


def _images(n=30, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return rng.random((n, 784)).astype(dtype), rng.integers(0, 10, n)


def test_rows_equal_the_held_expanded_set_for_every_kind_of_index():
    X, y = _images()
    held, labels = expand_mnist(X, y)
    lazy, lazy_labels = expand_mnist(X, y, on_demand=True)
    assert isinstance(lazy, Examples) and lazy.shape == held.shape and lazy.dtype == held.dtype
    np.testing.assert_array_equal(lazy_labels, labels)
    perm = np.random.default_rng(1).permutation(len(held))
    for key in (perm, perm[:7], slice(3, 77, 2), slice(None), [149, 0, -1, -150],
                np.arange(150) % 3 == 0, np.array([], np.int64)):
        np.testing.assert_array_equal(lazy[key], held[key], err_msg=str(key))
    for i in (0, 4, 5, 149, -1):
        np.testing.assert_array_equal(lazy[i], held[i])
    assert lazy[perm[:5]].flags.c_contiguous


def test_reshape_astype_and_the_source_dtype():
    X, y = _images(dtype=np.float64)
    lazy = ExpandedImages(X, dtype=np.float32)
    assert lazy.images.dtype == np.float32 and lazy.images.nbytes == X.size * 4
    held = expand_mnist(X, y, dtype=np.float32)[0]
    four = lazy.reshape(len(lazy), 1, 28, 28)
    assert four.shape == (150, 1, 28, 28) and lazy.reshape(-1, 1, -1, 28).shape == four.shape
    np.testing.assert_array_equal(four[[3, 9]], held[[3, 9]].reshape(2, 1, 28, 28))
    np.testing.assert_array_equal(four.reshape(150, -1)[10:20], held[10:20])
    as64 = lazy.astype(np.float64)
    assert as64.dtype == np.float64 and as64[[7]].dtype == np.float64


def test_bad_indexes_and_shapes_are_clear_errors():
    X, y = _images()
    lazy = expand_mnist(X, y, on_demand=True)[0]
    for key in (150, -151, [0, 150], np.array([1.5]), np.zeros((2, 2), int), np.ones(3, bool)):
        with pytest.raises(IndexError):
            lazy[key]
    with pytest.raises(ShapeError):
        lazy.reshape(150, 27, 28)
    with pytest.raises(ShapeError):
        lazy.reshape(149, 784)
    with pytest.raises(ShapeError):
        ExpandedImages(np.zeros((3, 100), np.float32))


def test_nan_in_the_source_images_is_a_data_error_before_training():
    X, y = _images()
    X[4, 17] = np.nan
    lazy, labels = expand_mnist(X, y, on_demand=True)
    net = Network([784, 10, 10], seed=0, dtype=np.float32)
    with pytest.raises(DataError, match="NaN"):
        net.SGD((lazy, labels), 1, 10, 0.1, verbose=False)


def _conv_net():
    return Network([ConvPoolLayer((4, 1, 5, 5), (None, 1, 28, 28), (2, 2), "relu"),
                    FullyConnectedLayer(4 * 12 * 12, 20, "relu", p_dropout=0.5, book_dropout=True),
                    SoftmaxLayer(20, 10, p_dropout=0.5, book_dropout=True)],
                   cost="log-likelihood", seed=1, input_shape=(1, 28, 28), dtype=np.float32)


def _dense_net():
    return Network([Dense(784, 20, "sigmoid"), Dense(20, 10, "sigmoid")], seed=1,
                   dtype=np.float32)


@pytest.mark.parametrize("make", [_conv_net, _dense_net], ids=["conv-dropout", "dense"])
@pytest.mark.parametrize("mb, fast", [(10, True), (10, False), (40, True), (40, False)])
def test_training_on_it_gives_the_held_sets_weights_bit_for_bit(make, mb, fast):
    X, y = _images(40)
    held, lazy = expand_mnist(X, y), expand_mnist(X, y, on_demand=True)
    a, b = make(), make()
    ha = a.SGD(held, 2, mb, 0.1, lmbda=0.1, verbose=False, fast=fast,
               monitor_training_accuracy=True, monitor_training_cost=True)
    hb = b.SGD(lazy, 2, mb, 0.1, lmbda=0.1, verbose=False, fast=fast,
               monitor_training_accuracy=True, monitor_training_cost=True)
    for la, lb in zip(a.layers, b.layers):
        for (name, p, _), (_, q, _) in zip(la.parameters(), lb.parameters()):
            np.testing.assert_array_equal(q, p, err_msg=name)
    assert ha.training_accuracy == hb.training_accuracy and ha.training_cost == hb.training_cost
    np.testing.assert_array_equal(b.predict(lazy[0]), a.predict(held[0]))


def test_a_checkpointed_run_resumes_on_it(tmp_path):
    X, y = _images(40)
    lazy = expand_mnist(X, y, on_demand=True)
    ckpt = str(tmp_path / "run.npz")
    whole = _conv_net()
    whole.SGD(lazy, 2, 10, 0.1, verbose=False)
    first = _conv_net()
    first.SGD(lazy, 1, 10, 0.1, verbose=False, checkpoint=ckpt)
    resumed = _conv_net()
    resumed.SGD(lazy, 2, 10, 0.1, verbose=False, checkpoint=ckpt, resume=True)
    for la, lb in zip(whole.layers, resumed.layers):
        for (_, p, _), (_, q, _) in zip(la.parameters(), lb.parameters()):
            np.testing.assert_array_equal(q, p)
    # the checkpoint's data fingerprint is the held set's: a run may switch between them
    held = expand_mnist(X, y)
    again = _conv_net()
    again.SGD(held, 2, 10, 0.1, verbose=False, checkpoint=ckpt, resume=True)
