"""The sources' warm-up examples, each computed by hand, by nndl.autograd and with nndl's
layers: linear regression agrees to 1e-12, the two-layer ReLU net loss by loss."""
import os
import sys

import numpy as np
import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))

import linear_regression  # noqa: E402
import two_layer_relu  # noqa: E402


@pytest.mark.parametrize("problem", sorted(linear_regression.PROBLEMS))
def test_linear_regression_by_hand_by_autograd_and_by_nndl_agree_to_1e_12(problem):
    results = linear_regression.run(linear_regression.parse_args(["--quick"]))
    fit = results["fits"][problem]
    hand, auto, nndl_fit = np.array(fit["by_hand"]), np.array(fit["autograd"]), np.array([fit["w"], fit["b"]])
    np.testing.assert_allclose(auto, hand, rtol=0, atol=1e-12)
    np.testing.assert_allclose(nndl_fit, hand, rtol=0, atol=1e-12)
    assert np.abs(hand - fit["start"]).max() > 0.1                # it moved from the start
    w_true, b_true, noise = linear_regression.PROBLEMS[problem]
    if not noise:
        assert hand == pytest.approx([w_true, b_true], abs=0.01)


def test_linear_regression_by_hand_and_by_autograd_are_gradient_descent(rng):
    """One step of each from (0, 0) is -eta times the derivative worked out here."""
    x = rng.random((20, 1))
    y = 3 * x + 0.8
    step = np.array([(-(y * x)).mean(), (-y).mean()])              # ∂C/∂w, ∂C/∂b at w = b = 0
    for method in (linear_regression.by_hand, linear_regression.by_autograd):
        np.testing.assert_allclose(method(x, y, 0.0, 0.0, 0.1, 1), -0.1 * step, rtol=1e-14)


def test_the_two_layer_net_by_hand_by_autograd_and_by_nndl_gives_the_same_loss_each_step(capsys):
    results = two_layer_relu.run(two_layer_relu.parse_args(["--quick"]))
    hand = np.asarray(results["loss_by_hand"])
    assert len(hand) == 51 and hand[-1] < 1e-2 * hand[0]
    np.testing.assert_allclose(results["loss_autograd"], hand, rtol=1e-9)
    np.testing.assert_allclose(results["loss"], hand, rtol=1e-9)
    two_layer_relu.report(results)
    out = capsys.readouterr().out
    assert "nndl, by hand, by autograd" in out and "largest relative difference" in out
