"""Finite-difference gradient checks (chapter 2's "checking backpropagation").

Central differences, (f(x + ε) - f(x - ε)) / 2ε, in float64.  The tests compare every
layer's ``backward``, every cost's ``delta`` and ``Network.backprop`` against these.
"""
import numpy as np


def numerical_gradient(f, x, eps=1e-6):
    """∂f/∂x by central differences; ``f()`` reads ``x``, which is perturbed in place."""
    grad = np.zeros_like(x, dtype=np.float64)
    flat, gflat = x.reshape(-1), grad.reshape(-1)
    assert np.shares_memory(flat, x), "x must be contiguous so it can be perturbed in place"
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        fp = f()
        flat[i] = old - eps
        fm = f()
        flat[i] = old
        gflat[i] = (fp - fm) / (2 * eps)
    return grad


def directional_derivative(f, x, direction, eps=1e-6):
    """d/dt f(x + t·direction) at t = 0: checks a big gradient along one direction."""
    old = x.copy()
    x += eps * direction
    fp = f()
    x[...] = old - eps * direction
    fm = f()
    x[...] = old
    return (fp - fm) / (2 * eps)


def relative_error(a, b):
    """max |a - b| / max(|a|, |b|, 1e-8), elementwise-max: 0 for equal arrays."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-8)
    return float((np.abs(a - b) / scale).max()) if a.size else 0.0


def assert_close(analytic, numeric, tol=1e-6, err_msg=""):
    """Fail unless the two gradients agree to relative error ``tol`` (with an absolute
    floor of 1e-9 for entries that are zero up to rounding)."""
    analytic = np.asarray(analytic, np.float64)
    numeric = np.asarray(numeric, np.float64)
    assert analytic.shape == numeric.shape, f"{err_msg}: shapes {analytic.shape} != {numeric.shape}"
    diff = np.abs(analytic - numeric)
    scale = np.maximum(np.abs(analytic), np.abs(numeric))
    bad = diff > np.maximum(tol * scale, 1e-9)
    if bad.any():
        i = np.unravel_index(np.argmax(np.where(bad, diff / np.maximum(scale, 1e-300), 0)), bad.shape)
        raise AssertionError(
            f"{err_msg} gradient mismatch at {i}: analytic {analytic[i]!r}, numeric {numeric[i]!r}; "
            f"{int(bad.sum())} of {bad.size} entries off (relative error {relative_error(analytic, numeric):.2e})"
        )
