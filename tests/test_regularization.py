"""L1 and L2 regularization (chapter 3): penalties, their gradients, and lookup."""
import numpy as np
import pytest

from nndl import regularization
from nndl.errors import ConfigError
from nndl.gradcheck import assert_close, numerical_gradient
from nndl.regularization import L1, L2


@pytest.mark.parametrize("reg", [L1(0.7), L2(0.7)], ids=["L1", "L2"])
def test_grad_is_the_derivative_of_the_penalty(reg, rng):
    w = rng.standard_normal((4, 3))
    w = np.where(np.abs(w) < 0.1, w + 0.2, w)             # L1: off the kink at 0
    other = rng.standard_normal((2, 4))                    # a second layer's weights
    n = 50
    numeric = numerical_gradient(lambda: reg.penalty([w, other], n), w)
    assert_close(reg.grad(w, n), numeric, err_msg=reg.name)


def test_l2_penalty_is_lambda_over_2n_times_the_sum_of_squares():
    ws = [np.array([[1.0, -2.0]]), np.array([[3.0]])]
    # (λ/2n) Σ w² = (0.5 / (2·10)) · (1 + 4 + 9) = 0.025 · 14 = 0.35
    assert L2(0.5).penalty(ws, 10) == pytest.approx(0.35, rel=1e-15)


def test_l1_penalty_is_lambda_over_n_times_the_sum_of_magnitudes():
    ws = [np.array([[1.0, -2.0]]), np.array([[3.0]])]
    # (λ/n) Σ |w| = (0.5 / 10) · 6 = 0.3
    assert L1(0.5).penalty(ws, 10) == pytest.approx(0.3, rel=1e-15)


def test_l1_grad_is_zero_at_zero_weights():
    w = np.array([0.0, 2.0, -3.0])
    np.testing.assert_array_equal(L1(1.0).grad(w, 1), [0.0, 1.0, -1.0])


@pytest.mark.parametrize("reg", [L1(0.3), L2(0.3)], ids=["L1", "L2"])
def test_grad_keeps_the_dtype_of_the_weights(reg):
    w = np.ones((2, 2), np.float32)
    assert reg.grad(w, 10).dtype == np.float32


def test_get_builds_the_named_penalty_or_none():
    assert isinstance(regularization.get("L2", 1.0), L2)
    assert isinstance(regularization.get("l1", 1.0), L1)
    assert regularization.get("L1", 2.5).lmbda == 2.5
    assert regularization.get(None, 1.0) is None
    assert regularization.get("L2", 0) is None            # λ = 0: no penalty at all
    l1 = L1(0.1)
    assert regularization.get(l1, 0.1) is l1


def test_get_rejects_an_unknown_regularization_naming_the_argument():
    with pytest.raises(ConfigError, match=r"regularization: expected 'L1' or 'L2', got 'L3'"):
        regularization.get("L3", 1.0)
