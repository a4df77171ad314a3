import numpy as np
import pytest


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST, loaded once per session: (training, validation, test), each (X, y)."""
    from nndl.data import load_mnist

    return load_mnist()


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator for each test."""
    return np.random.default_rng(0)
