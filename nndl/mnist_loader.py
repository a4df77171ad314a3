"""The book's mnist_loader (chapter 1), on top of nndl.data.

Chapter 1's `network.py` takes its data from `mnist_loader`: `load_data` returns the three
sets as (images, labels) arrays and `load_data_wrapper` reshapes them into what the
book's one-example-at-a-time code wants, a list of (x, y) pairs with x a (784, 1) column
of pixels. For the training set y is the desired output, a (10, 1) one-hot column; for the
validation and test sets it is the digit itself, which `evaluate` compares with the
network's argmax. Unlike the book's Python 2 code these are lists, not zip iterators, so
they survive being iterated more than once. Pixels are float64, as in the book.
"""

import numpy as np

from nndl import data


def load_data(path=None):
    """(training_data, validation_data, test_data), each (images (N, 784), labels (N,))."""
    return data.load_mnist(path, dtype=np.float64)


def load_data_wrapper(path=None):
    """Lists of (x (784, 1), y): y one-hot (10, 1) for training, an int label otherwise."""
    tr_d, va_d, te_d = load_data(path)
    training_inputs = list(tr_d[0][:, :, None])            # N x (784, 1)
    training_results = list(data.one_hot(tr_d[1])[:, :, None])  # N x (10, 1)
    training_data = list(zip(training_inputs, training_results))
    validation_data = list(zip(va_d[0][:, :, None], va_d[1].tolist()))
    test_data = list(zip(te_d[0][:, :, None], te_d[1].tolist()))
    return training_data, validation_data, test_data


def vectorized_result(j):
    """The digit j as a (10, 1) column: 1.0 in row j, 0.0 elsewhere."""
    return data.one_hot([j]).reshape(10, 1)
