"""The book's own sessions, through nndl's network / network2 / mnist_loader modules,
on a small slice of real MNIST in the book's list-of-column-vectors format."""
import re

import numpy as np
import pytest

from nndl import CrossEntropyCost, QuadraticCost, mnist_loader, network, network2


@pytest.fixture(scope="module")
def book_data():
    """load_data_wrapper()'s three lists, cut to 1,000 / 200 / 200 examples."""
    training_data, validation_data, test_data = mnist_loader.load_data_wrapper()
    return training_data[:1000], validation_data[:200], test_data[:200]


def test_load_data_wrapper_gives_the_books_formats(book_data):
    training_data, validation_data, test_data = book_data
    x, y = training_data[0]
    assert x.shape == (784, 1) and y.shape == (10, 1) and y.sum() == 1
    x, label = test_data[0]
    assert x.shape == (784, 1) and 0 <= label <= 9 and int(label) == label
    assert len(validation_data[0]) == 2


def test_chapter_1_session_runs_and_prints_epoch_accuracy(book_data, capsys):
    training_data, _, test_data = book_data
    net = network.Network([784, 30, 10], seed=0)
    net.SGD(training_data, 1, 10, 3.0, test_data=test_data)
    out = capsys.readouterr().out
    found = re.search(r"^Epoch 0: (\d+) / 200\b", out, re.MULTILINE)
    assert found, out
    correct = int(found.group(1))
    assert correct == net.evaluate(test_data)
    assert correct >= 40                       # one epoch on 1,000 images; chance is ~20


def test_chapter_1_network_defaults_to_quadratic_cost_and_large_weights():
    net = network.Network([784, 30, 10], seed=0)
    assert net.cost is QuadraticCost
    assert net.weights[0].std() == pytest.approx(1.0, rel=0.03)


def test_chapter_1_weights_and_biases_have_the_books_shapes():
    net = network.Network([784, 30, 10], seed=0)
    assert net.num_layers == 3 and net.sizes == [784, 30, 10]
    assert [w.shape for w in net.weights] == [(30, 784), (10, 30)]
    assert [b.shape for b in net.biases] == [(30, 1), (10, 1)]


def test_chapter_1_feedforward_maps_a_column_to_a_column(book_data):
    net = network.Network([784, 30, 10], seed=0)
    x = book_data[0][0][0]                                # (784, 1)
    a = net.feedforward(x)
    assert a.shape == (10, 1)
    # The book's loop: a = σ(w a + b), layer by layer, on the column.
    expected = x
    for w, b in zip(net.weights, net.biases):
        expected = 1 / (1 + np.exp(-(w @ expected + b)))
    np.testing.assert_allclose(a, expected, rtol=1e-12)
    # A batch of rows still gives rows.
    assert net.feedforward(np.zeros((3, 784))).shape == (3, 10)


def test_chapter_1_sigmoid_helpers():
    np.testing.assert_allclose(network.sigmoid(np.array([0.0, 2.0])), [0.5, 1 / (1 + np.exp(-2))])
    assert network.sigmoid_prime(np.array([0.0]))[0] == pytest.approx(0.25)


def test_chapter_3_session_returns_the_four_monitoring_lists(book_data):
    training_data, validation_data, _ = book_data
    net = network2.Network([784, 30, 10], cost=network2.CrossEntropyCost, seed=0)
    net.large_weight_initializer()
    assert net.weights[0].std() == pytest.approx(1.0, rel=0.03)
    result = net.SGD(training_data, 2, 10, 0.5, lmbda=5.0, evaluation_data=validation_data,
                     monitor_evaluation_accuracy=True, verbose=False)
    evaluation_cost, evaluation_accuracy, training_cost, training_accuracy = result
    assert evaluation_cost == [] and training_cost == [] and training_accuracy == []
    assert len(evaluation_accuracy) == 2
    assert all(type(a) is int and 40 <= a <= 200 for a in evaluation_accuracy)
    assert evaluation_accuracy[-1] == net.accuracy(validation_data)


def test_chapter_3_monitors_all_four_quantities_on_book_data(book_data, capsys):
    training_data, validation_data, _ = book_data
    net = network2.Network([784, 30, 10], seed=1)
    ec, ea, tc, ta = net.SGD(training_data[:300], 1, 10, 0.5, lmbda=1.0,
                             evaluation_data=validation_data,
                             monitor_evaluation_cost=True, monitor_evaluation_accuracy=True,
                             monitor_training_cost=True, monitor_training_accuracy=True)
    assert [len(v) for v in (ec, ea, tc, ta)] == [1, 1, 1, 1]
    out = capsys.readouterr().out
    assert "Epoch 0 training complete" in out
    assert f"Accuracy on training data: {ta[0]} / 300" in out
    assert f"Accuracy on evaluation data: {ea[0]} / 200" in out
    assert ta[0] == net.accuracy(training_data[:300], convert=True)
    assert tc[0] == pytest.approx(net.total_cost(training_data[:300], 1.0))
    assert ec[0] == pytest.approx(net.total_cost(validation_data, 1.0, convert=True))


def test_chapter_3_network_defaults_to_cross_entropy_and_scaled_weights():
    net = network2.Network([784, 30, 10], seed=0)
    assert net.cost is CrossEntropyCost
    assert net.weights[0].std() == pytest.approx(1 / np.sqrt(784), rel=0.03)
    net.large_weight_initializer()
    net.default_weight_initializer()
    assert net.weights[0].std() == pytest.approx(1 / np.sqrt(784), rel=0.03)


@pytest.mark.parametrize("filename", ["net.json", "net.npz"])
def test_chapter_3_save_and_load_round_trip(filename, tmp_path, book_data):
    net = network2.Network([784, 30, 10], cost=network2.QuadraticCost, seed=0)
    path = tmp_path / filename
    net.save(str(path))
    loaded = network2.load(str(path))
    assert isinstance(loaded, network2.Network)
    assert loaded.cost is QuadraticCost
    for w, v in zip(net.weights + net.biases, loaded.weights + loaded.biases):
        assert np.array_equal(w, v)
    x = np.hstack([x for x, _ in book_data[2][:20]]).T      # (20, 784)
    assert np.array_equal(loaded.feedforward(x), net.feedforward(x))


def test_vectorized_result_is_a_one_hot_column():
    for vr in (mnist_loader.vectorized_result, network2.vectorized_result):
        e = vr(3)
        assert e.shape == (10, 1) and e[3, 0] == 1.0 and e.sum() == 1.0


def test_book_backprop_takes_one_column_and_returns_nabla_lists():
    from nndl import Network, network

    rng = np.random.default_rng(1)
    x, y = rng.random((4, 1)), np.array([[0.0], [1.0]])
    book = network.Network([4, 3, 2], seed=0)
    batched = Network([4, 3, 2], cost="quadratic", init="large", seed=0)
    nabla_b, nabla_w = book.backprop(x, y)
    batched.backprop(x.T, y.T)
    assert [b.shape for b in nabla_b] == [(3, 1), (2, 1)]
    for nb, nw, layer in zip(nabla_b, nabla_w, batched.layers):
        np.testing.assert_allclose(nb[:, 0], layer.nabla_b)
        np.testing.assert_allclose(nw, layer.nabla_w)


def test_book_update_mini_batch_takes_a_list_of_tuples():
    from nndl import network

    rng = np.random.default_rng(2)
    batch = [(rng.random((4, 1)), np.eye(2)[:, [k % 2]]) for k in range(3)]
    net = network.Network([4, 3, 2], seed=0)
    before = [w.copy() for w in net.weights]
    nablas = [net.backprop(x, y)[1] for x, y in batch]
    net.update_mini_batch(batch, 3.0)
    for l, w0 in enumerate(before):
        expected = w0 - (3.0 / len(batch)) * sum(nw[l] for nw in nablas)
        np.testing.assert_allclose(net.weights[l], expected, rtol=1e-12)
