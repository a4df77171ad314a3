"""Activations (chapters 1, 3 and 6): derivatives by finite differences, softmax's
properties, and stability for huge weighted inputs."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nndl import activations
from nndl.activations import Identity, ReLU, Sigmoid, Softmax, Tanh
from nndl.errors import ConfigError
from nndl.gradcheck import assert_close, numerical_gradient

ELEMENTWISE = [Sigmoid, Tanh, ReLU, Identity]
ALL = ELEMENTWISE + [Softmax]


def off_kinks(z):
    """z moved at least 0.1 away from 0, where ReLU has its kink."""
    return np.where(np.abs(z) < 0.1, z + np.where(z < 0, -0.2, 0.2), z)


@pytest.mark.parametrize("act", ALL, ids=lambda a: a.__name__)
def test_grad_is_the_vector_jacobian_product_of_fn(act, rng):
    z = off_kinks(rng.standard_normal((4, 5)))
    r = rng.standard_normal((4, 5))               # fixed upstream gradient ∂C/∂a
    loss = lambda: float((act.fn(z) * r).sum())
    analytic = act.grad(z, act.fn(z), r)
    assert_close(analytic, numerical_gradient(loss, z), err_msg=act.__name__)


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.__name__)
def test_prime_is_the_elementwise_derivative_of_fn(act, rng):
    z = off_kinks(rng.standard_normal((3, 6)))
    # For an elementwise fn, ∂(Σ fn(z))/∂z_i = fn'(z_i).
    numeric = numerical_gradient(lambda: float(act.fn(z).sum()), z)
    assert_close(act.prime(z), numeric, err_msg=act.__name__)


@pytest.mark.parametrize("act", ELEMENTWISE, ids=lambda a: a.__name__)
def test_grad_equals_upstream_times_prime_for_elementwise_activations(act, rng):
    z = off_kinks(rng.standard_normal((3, 4)))
    g = rng.standard_normal((3, 4))
    np.testing.assert_allclose(act.grad(z, act.fn(z), g), g * act.prime(z), rtol=1e-12)


def test_softmax_jacobian_matches_its_closed_form(rng):
    # ∂a_j/∂z_k = a_j (δ_jk - a_k): build the full Jacobian of one row, then Jᵀg.
    z = rng.standard_normal((1, 4))
    g = rng.standard_normal((1, 4))
    a = Softmax.fn(z)[0]
    jac = np.diag(a) - np.outer(a, a)
    np.testing.assert_allclose(Softmax.grad(z, a[None], g)[0], jac.T @ g[0], rtol=1e-12)


def test_sigmoid_matches_its_definition_and_known_values():
    z = np.array([-3.0, -1.0, 0.0, 0.5, 2.0])
    np.testing.assert_allclose(Sigmoid.fn(z), 1 / (1 + np.exp(-z)), rtol=1e-15)
    assert Sigmoid.fn(np.array([0.0]))[0] == pytest.approx(0.5, abs=1e-16)
    assert Sigmoid.prime(np.array([0.0]))[0] == pytest.approx(0.25, abs=1e-16)


def test_relu_and_its_prime_are_zero_for_negative_z():
    z = np.array([-2.0, -0.5, 0.5, 3.0])
    np.testing.assert_array_equal(ReLU.fn(z), [0.0, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(ReLU.prime(z), [0.0, 0.0, 1.0, 1.0])
    np.testing.assert_array_equal(ReLU.grad(z, ReLU.fn(z), np.ones(4)), [0.0, 0.0, 1.0, 1.0])


@pytest.mark.parametrize("act", ALL, ids=lambda a: a.__name__)
def test_activations_keep_float32(act):
    z = np.linspace(-2, 2, 12, dtype=np.float32).reshape(3, 4)
    a = act.fn(z)
    assert a.dtype == np.float32
    assert act.grad(z, a, np.ones_like(z)).dtype == np.float32


# -- properties ----------------------------------------------------------------------

rows = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=6),
                  elements=st.floats(-50, 50))


@settings(deadline=None, max_examples=60)
@given(z=rows)
def test_softmax_rows_sum_to_one(z):
    a = Softmax.fn(z)
    assert (a >= 0).all()
    np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)


@settings(deadline=None, max_examples=60)
@given(z=rows, data=st.data())
def test_softmax_is_invariant_to_adding_a_constant_per_row(z, data):
    shift = data.draw(hnp.arrays(np.float64, (len(z), 1), elements=st.floats(-100, 100)))
    np.testing.assert_allclose(Softmax.fn(z + shift), Softmax.fn(z), rtol=1e-9, atol=1e-12)


huge = hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=2, max_side=5),
                  elements=st.one_of(st.sampled_from([-1e4, 1e4, -800.0, 800.0, 0.0]),
                                     st.floats(-1e4, 1e4)))


@settings(deadline=None, max_examples=60)
@given(z=huge)
def test_sigmoid_and_softmax_stay_finite_without_warnings_for_huge_z(z):
    # filterwarnings=error turns any overflow RuntimeWarning into a failure; errstate
    # also catches what numpy would only count.  Underflow to 0 is the right answer.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = Sigmoid.fn(z)
        sm = Softmax.fn(z)
        sp = Sigmoid.prime(z)
    for a in (s, sm, sp):
        assert np.isfinite(a).all()
    assert ((s >= 0) & (s <= 1)).all()
    np.testing.assert_allclose(sm.sum(axis=1), 1.0, rtol=1e-12)


def test_sigmoid_saturates_to_exactly_zero_and_one():
    s = Sigmoid.fn(np.array([-1e4, 1e4]))
    np.testing.assert_array_equal(s, [0.0, 1.0])


# -- lookup --------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("sigmoid", Sigmoid), ("ReLU", ReLU), ("tanh", Tanh),
                                       ("linear", Identity), ("softmax", Softmax)])
def test_get_finds_activations_by_name_class_or_instance(name, cls):
    assert activations.get(name) is cls
    assert activations.get(cls) is cls
    assert activations.get(cls()) is cls


def test_get_rejects_an_unknown_name_and_lists_the_known_ones():
    with pytest.raises(ConfigError, match=r"activation: unknown name 'swish'.*sigmoid"):
        activations.get("swish")
    with pytest.raises(ConfigError, match="activation"):
        activations.get(42)
