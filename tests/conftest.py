import os

import numpy as np
import pytest

from nndl import backend as _backend

# NNDL_BACKEND sets the default backend of every Network.  The suite's ordinary tests
# are written for numpy, so it is taken out of the environment here (subprocesses
# included); the backend tests ask for each backend explicitly through the `xp`
# fixture.  NNDL_BACKEND=cupy still means "test the GPU": the `gpu` tests then run,
# and fail rather than skip where CuPy or a GPU is missing.
REQUESTED_BACKEND = os.environ.pop("NNDL_BACKEND", None)


def pytest_collection_modifyitems(config, items):
    """Skip the `gpu` tests without CuPy and a CUDA GPU (unless NNDL_BACKEND=cupy)."""
    problem = _backend.cupy_problem()
    if problem is None or (REQUESTED_BACKEND or "").strip().lower() == "cupy":
        return
    skip = pytest.mark.skip(reason=f"needs CuPy and a CUDA GPU ({problem})")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST, loaded once per session: (training, validation, test), each (X, y)."""
    from nndl.data import load_mnist

    return load_mnist()


@pytest.fixture
def rng():
    """A fresh, seeded numpy Generator for each test."""
    return np.random.default_rng(0)


def _array_module(name):
    if name == "strict":
        import strict_xp

        strict_xp.transfers.reset()
        return strict_xp
    return _backend.array_module(name)


@pytest.fixture(params=["numpy", "strict", pytest.param("cupy", marks=pytest.mark.gpu)])
def xp(request):
    """The array module of each backend: numpy, the strict CuPy stand-in
    (tests/strict_xp.py, CPU-only), and CuPy itself (marked `gpu`)."""
    return _array_module(request.param)


@pytest.fixture(params=["strict", pytest.param("cupy", marks=pytest.mark.gpu)])
def device_xp(request):
    """Like `xp` without numpy: the backends checked against the numpy reference."""
    return _array_module(request.param)
