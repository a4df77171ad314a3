"""Layers: every backward pass against finite differences, and Dropout's two modes."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from nndl.errors import ConfigError, ShapeError
from nndl.gradcheck import assert_close, numerical_gradient
from nndl.layers import Dense, Dropout, Flatten

ACTIVATIONS = ["sigmoid", "tanh", "relu", "identity", "softmax"]


def built(layer, input_shape, rng):
    layer.build(input_shape, rng, np.float64)
    return layer


def check_backward(layer, x, rng, train=False):
    """The input gradient and every parameter gradient against central differences,
    for loss = Σ forward(x) ⊙ r with a fixed random upstream gradient r."""
    r = rng.standard_normal(layer.forward(x, train).shape)
    loss = lambda: float((layer.forward(x, train) * r).sum())
    layer.forward(x, train)
    assert_close(layer.backward(r), numerical_gradient(loss, x), err_msg="input")
    for name, p, g in layer.parameters():
        g = g.copy()
        assert_close(g, numerical_gradient(loss, p), err_msg=name)


def frozen_mask(mask):
    """A Dropout mask_fn that always keeps the same units."""
    def mask_fn(shape, rng):
        assert shape == mask.shape
        return mask
    return mask_fn


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_dense_backward_matches_finite_differences(activation, rng):
    layer = built(Dense(4, 3, activation), (4,), rng)
    x = rng.standard_normal((5, 4))
    if activation == "relu":                       # keep z off the kink at 0
        z = x @ layer.w.T + layer.b
        layer.b += np.where(np.abs(z).min(axis=0) < 0.05, 0.1, 0.0)
        assert np.abs(x @ layer.w.T + layer.b).min() > 1e-3
    check_backward(layer, x, rng)


def test_dense_without_bias_has_only_w_and_its_gradient_is_right(rng):
    layer = built(Dense(4, 3, "tanh", bias=False), (4,), rng)
    assert [name for name, _, _ in layer.parameters()] == ["w"]
    assert not layer.b.any()
    check_backward(layer, rng.standard_normal((5, 4)), rng)
    assert not layer.b.any()


def test_dense_flattens_an_image_input_and_returns_the_gradient_in_its_shape(rng):
    layer = built(Dense(12, 3, "sigmoid"), (3, 2, 2), rng)
    x = rng.standard_normal((2, 3, 2, 2))
    assert layer.forward(x).shape == (2, 3)
    check_backward(layer, x, rng)


def test_dense_forward_is_sigma_of_a_wT_plus_b(rng):
    layer = built(Dense(3, 2, "sigmoid"), (3,), rng)
    x = rng.standard_normal((4, 3))
    expected = 1 / (1 + np.exp(-(x @ layer.w.T + layer.b)))
    np.testing.assert_allclose(layer.forward(x), expected, rtol=1e-14)
    # w[j, k] is the book's w_jk: output j reads input k.
    assert layer.w.shape == (2, 3)


@pytest.mark.parametrize("init, std", [("default", 1 / np.sqrt(400)), ("large", 1.0)])
def test_dense_init_draws_weights_with_the_chosen_std(init, std, rng):
    layer = built(Dense(400, 50, init=init), (400,), rng)
    assert layer.w.std() == pytest.approx(std, rel=0.05)
    assert abs(layer.w.mean()) < 0.05 * std
    assert layer.b.std() == pytest.approx(1.0, rel=0.4)


def test_dense_zeros_init_gives_zero_parameters(rng):
    layer = built(Dense(3, 2, init="zeros"), (3,), rng)
    assert not layer.w.any() and not layer.b.any()


def test_dense_keeps_float32(rng):
    layer = Dense(3, 2, "tanh")
    layer.build((3,), rng, np.float32)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    assert layer.w.dtype == layer.b.dtype == np.float32
    assert layer.forward(x).dtype == np.float32
    assert layer.backward(np.ones((4, 2), np.float32)).dtype == np.float32
    assert layer.nabla_w.dtype == layer.nabla_b.dtype == np.float32


def test_dense_build_rejects_an_input_of_the_wrong_size(rng):
    with pytest.raises(ShapeError, match=r"Dense\(n_in=5\).*\(4,\).*expected 5"):
        Dense(5, 2).build((4,), rng, np.float64)


@pytest.mark.parametrize("kwargs, match", [
    (dict(n_in=0, n_out=3), "n_in and n_out must be >= 1"),
    (dict(n_in=3, n_out=2, init="xavier"), "init"),
    (dict(n_in=3, n_out=2, activation="swish"), "activation"),
])
def test_dense_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        Dense(**kwargs)


# -- Dropout -------------------------------------------------------------------------

def test_dropout_backward_with_a_frozen_mask_matches_finite_differences(rng):
    mask = (rng.random((5, 6)) >= 0.4).astype(np.float64)
    layer = built(Dropout(0.4, mask_fn=frozen_mask(mask)), (6,), rng)
    x = rng.standard_normal((5, 6))
    check_backward(layer, x, rng, train=True)
    np.testing.assert_allclose(layer.forward(x, train=True), x * mask / 0.6, rtol=1e-15)


@settings(deadline=None, max_examples=40)
@given(x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=2, max_dims=4, max_side=5),
                    elements=st.floats(-1e6, 1e6)),
       p=st.floats(0.0, 0.95))
def test_dropout_in_evaluation_mode_is_the_identity(x, p):
    layer = Dropout(p)
    layer.build(x.shape[1:], np.random.default_rng(0), np.float64)
    out = layer.forward(x, train=False)
    np.testing.assert_array_equal(out, x)
    np.testing.assert_array_equal(layer.backward(np.ones_like(x)), np.ones_like(x))


@settings(deadline=None, max_examples=40)
@given(p=st.floats(0.05, 0.9), seed=st.integers(0, 2**32 - 1))
def test_dropout_in_training_zeroes_units_and_scales_the_kept_ones_by_1_over_1_minus_p(p, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0.5, 2.0, (20, 30))                  # no zeros: kept units stay nonzero
    layer = Dropout(p)
    layer.build((30,), rng, np.float64)
    out = layer.forward(x, train=True)
    kept = out != 0
    np.testing.assert_allclose(out[kept], x[kept] / (1 - p), rtol=1e-12)
    g = rng.standard_normal(x.shape)
    back = layer.backward(g)
    np.testing.assert_allclose(back[kept], g[kept] / (1 - p), rtol=1e-12)
    assert not back[~kept].any()


def test_dropout_drops_a_fraction_p_of_the_units(rng):
    p = 0.3
    layer = built(Dropout(p), (100,), rng)
    out = layer.forward(np.ones((200, 100)), train=True)
    dropped = (out == 0).mean()
    # 20,000 Bernoulli(0.3) draws: standard deviation ≈ 0.0032.
    assert dropped == pytest.approx(p, abs=0.02)
    # Inverted dropout keeps the expected activation: mean ≈ 1.
    assert out.mean() == pytest.approx(1.0, abs=0.03)


def test_dropout_draws_a_new_mask_each_forward_pass(rng):
    layer = built(Dropout(0.5), (50,), rng)
    x = np.ones((4, 50))
    assert not np.array_equal(layer.forward(x, train=True), layer.forward(x, train=True))


def test_dropout_keeps_float32(rng):
    layer = built(Dropout(0.5), (8,), rng)
    assert layer.forward(np.ones((3, 8), np.float32), train=True).dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_rejects_p_outside_0_1(p):
    with pytest.raises(ConfigError, match="Dropout p"):
        Dropout(p)


# -- Flatten -------------------------------------------------------------------------

def test_flatten_backward_matches_finite_differences(rng):
    layer = Flatten()
    assert layer.build((2, 3, 4), rng, np.float64) == (24,)
    x = rng.standard_normal((5, 2, 3, 4))
    assert layer.forward(x).shape == (5, 24)
    check_backward(layer, x, rng)


def test_flatten_orders_values_as_a_c_order_reshape(rng):
    layer = built(Flatten(), (2, 2, 2), rng)
    x = np.arange(16.0).reshape(2, 2, 2, 2)
    np.testing.assert_array_equal(layer.forward(x), np.arange(16.0).reshape(2, 8))
