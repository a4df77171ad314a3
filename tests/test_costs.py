"""Costs (chapters 1 and 3): δ^L = ∂C/∂z^L (BP1) by finite differences for every
cost × output activation, and the costs' basic properties."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nndl import costs
from nndl.activations import Identity, ReLU, Sigmoid, Softmax, Tanh
from nndl.costs import CrossEntropyCost, LogLikelihoodCost, QuadraticCost
from nndl.errors import ConfigError
from nndl.gradcheck import assert_close, numerical_gradient

COSTS = [QuadraticCost, CrossEntropyCost, LogLikelihoodCost]

# (cost, output activation, targets): every pairing where cost.fn(act.fn(z), y) is defined.
PAIRS = [
    (QuadraticCost, Sigmoid, "one-hot"),
    (QuadraticCost, Tanh, "one-hot"),
    (QuadraticCost, Identity, "real"),
    (QuadraticCost, ReLU, "real"),
    (QuadraticCost, Softmax, "one-hot"),
    (CrossEntropyCost, Sigmoid, "one-hot"),     # the cancelled a - y path
    (CrossEntropyCost, Sigmoid, "fraction"),    # a - y holds for any y in [0, 1]
    (CrossEntropyCost, Softmax, "one-hot"),     # generic path through Softmax.grad
    (CrossEntropyCost, Softmax, "fraction"),
    (LogLikelihoodCost, Softmax, "one-hot"),    # the cancelled a - y path
    (LogLikelihoodCost, Sigmoid, "one-hot"),    # generic path through Sigmoid.grad
]


def targets(kind, rng, shape):
    if kind == "one-hot":
        return np.eye(shape[1])[rng.integers(0, shape[1], shape[0])]
    if kind == "fraction":
        return rng.random(shape)
    return rng.standard_normal(shape)


@pytest.mark.parametrize("cost, act, kind", PAIRS,
                         ids=[f"{c.__name__}-{a.__name__}-{k}" for c, a, k in PAIRS])
def test_delta_is_the_derivative_of_the_cost_with_respect_to_z(cost, act, kind, rng):
    z = rng.standard_normal((4, 3)) * 1.5
    z = np.where(np.abs(z) < 0.1, z + 0.2, z)           # off ReLU's kink
    y = targets(kind, rng, z.shape)
    analytic = cost.delta(z.copy(), act.fn(z), y, act)
    numeric = numerical_gradient(lambda: cost.fn(act.fn(z), y), z)
    assert_close(analytic, numeric, err_msg=f"{cost.__name__} with {act.__name__}")


@pytest.mark.parametrize("cost", COSTS, ids=lambda c: c.__name__)
def test_fn_sums_the_per_example_costs(cost, rng):
    a = Softmax.fn(rng.standard_normal((5, 3)))
    y = np.eye(3)[rng.integers(0, 3, 5)]
    total = cost.fn(a, y)
    assert isinstance(total, float)
    assert total == pytest.approx(sum(cost.fn(a[i:i + 1], y[i:i + 1]) for i in range(5)), rel=1e-12)


def test_quadratic_cost_is_half_the_squared_distance():
    a = np.array([[0.5, 0.25]])
    y = np.array([[1.0, 0.0]])
    # ½ (0.5² + 0.25²) = ½ (0.25 + 0.0625) = 0.15625
    assert QuadraticCost.fn(a, y) == 0.15625


def test_cross_entropy_matches_equation_63():
    a = np.array([[0.8, 0.1]])
    y = np.array([[1.0, 0.0]])
    # -[ln 0.8 + ln 0.9]
    assert CrossEntropyCost.fn(a, y) == pytest.approx(-(np.log(0.8) + np.log(0.9)), rel=1e-14)


def test_log_likelihood_is_minus_the_log_of_the_right_class():
    a = np.array([[0.7, 0.2, 0.1], [0.25, 0.25, 0.5]])
    y = np.array([[1.0, 0, 0], [0, 0, 1.0]])
    assert LogLikelihoodCost.fn(a, y) == pytest.approx(-np.log(0.7) - np.log(0.5), rel=1e-14)


@pytest.mark.parametrize("cost", [CrossEntropyCost, LogLikelihoodCost], ids=lambda c: c.__name__)
def test_saturated_outputs_give_a_large_finite_cost_and_delta(cost):
    z = np.array([[-1e4, 1e4]])
    y = np.array([[1.0, 0.0]])          # both neurons as wrong as they can be
    act = Sigmoid
    with np.errstate(all="raise", under="ignore"):
        c = cost.fn(act.fn(z), y)
        d = cost.delta(z, act.fn(z), y, act)
    assert np.isfinite(c) and c > 20
    assert np.isfinite(d).all()


# -- properties ----------------------------------------------------------------------

@st.composite
def outputs_and_one_hot(draw):
    n = draw(st.integers(1, 5))
    k = draw(st.integers(2, 6))
    a = draw(hnp.arrays(np.float64, (n, k), elements=st.floats(0.0, 1.0)))
    labels = draw(hnp.arrays(np.int64, n, elements=st.integers(0, k - 1)))
    return a, np.eye(k)[labels]


@settings(deadline=None, max_examples=60)
@given(outputs_and_one_hot())
def test_every_cost_is_nonnegative_for_outputs_in_the_unit_interval(ay):
    a, y = ay
    for cost in COSTS:
        assert cost.fn(a, y) >= 0, cost.__name__


@settings(deadline=None, max_examples=30)
@given(outputs_and_one_hot())
def test_every_cost_is_zero_when_the_output_equals_a_one_hot_target(ay):
    _, y = ay
    assert QuadraticCost.fn(y.copy(), y) == 0
    assert LogLikelihoodCost.fn(y.copy(), y) == 0
    # Cross-entropy clips a to [1e-12, 1 - 1e-12] before the log: ~1e-12 per entry.
    assert 0 <= CrossEntropyCost.fn(y.copy(), y) < 1e-9


@settings(deadline=None, max_examples=30)
@given(outputs_and_one_hot())
def test_every_delta_is_zero_when_the_output_equals_a_one_hot_target(ay):
    _, y = ay
    z = np.zeros_like(y)                                 # any z: a is given
    assert not QuadraticCost.delta(z, y.copy(), y, Sigmoid).any()
    assert not CrossEntropyCost.delta(z, y.copy(), y, Sigmoid).any()
    assert not LogLikelihoodCost.delta(z, y.copy(), y, Softmax).any()


# -- lookup --------------------------------------------------------------------------

@pytest.mark.parametrize("name, cls", [("quadratic", QuadraticCost),
                                       ("cross-entropy", CrossEntropyCost),
                                       ("CrossEntropyCost", CrossEntropyCost),
                                       ("log-likelihood", LogLikelihoodCost)])
def test_get_finds_costs_by_name_class_or_instance(name, cls):
    assert costs.get(name) is cls
    assert costs.get(cls) is cls
    assert costs.get(cls()) is cls


def test_get_rejects_an_unknown_cost_naming_the_argument():
    with pytest.raises(ConfigError, match=r"cost: unknown name 'hinge'"):
        costs.get("hinge")
    with pytest.raises(ConfigError, match="cost"):
        costs.get(3.0)
