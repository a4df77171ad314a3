"""Optimizers: one hand-computed step each, PyTorch's optimizers as a reference, a tiny
problem each must solve, state that survives a checkpoint, and eta as a function of
the epoch (chapter 3's exercise)."""
import numpy as np
import pytest

from nndl import ConfigError, Dense, Network, QuadraticCost
from nndl.layers import Layer
from nndl.optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSProp
from nndl.regularization import L2

ALL = {
    "SGD": SGD,
    "Momentum": lambda: Momentum(0.9),
    "Nesterov": lambda: Nesterov(0.9),
    "AdaGrad": AdaGrad,
    "RMSProp": RMSProp,
    "Adam": Adam,
}


class Params(Layer):
    """A layer that is only parameters: w (regularized) and b, with gradients we set."""

    regularized = ("w",)

    def __init__(self, w, b):
        self.w, self.b = np.array(w, dtype=float), np.array(b, dtype=float)
        self.nabla_w, self.nabla_b = np.zeros_like(self.w), np.zeros_like(self.b)

    def parameters(self):
        return [("w", self.w, self.nabla_w), ("b", self.b, self.nabla_b)]


def two_steps(opt, g1, g2, m=2, eta=0.1, reg=None, n=10):
    """w = [1, -2], b = [0.5]; the mean gradients g1 then g2 (for w; b's is 0.1), summed over m."""
    layer = Params([1.0, -2.0], [0.5])
    out = []
    for g in (g1, g2):
        layer.nabla_w[...] = m * np.asarray(g)
        layer.nabla_b[...] = m * 0.1
        opt.step([layer], eta, m, reg, n)
        out.append(layer.w.copy())
    return out, layer


# -- one step, by hand ------------------------------------------------------------------
# Every case: eta = 0.1, mean gradient g = [0.2, -0.1] for both steps unless noted.
G = [0.2, -0.1]
HAND = {
    # p -= 0.1 g: [1 - 0.02, -2 + 0.01], then once more.
    "SGD": (SGD(), G, G, [[0.98, -1.99], [0.96, -1.98]]),
    # v = -0.1 g = [-0.02, 0.01]; then v = 0.9 v - 0.1 g = [-0.038, 0.019].
    "Momentum": (Momentum(0.9), G, G, [[0.98, -1.99], [0.942, -1.971]]),
    # v = [-0.02, 0.01], p += 0.9 v - 0.1 g = [-0.038, 0.019];
    # v = [-0.038, 0.019], p += 0.9 v - 0.1 g = [-0.0542, 0.0271].
    "Nesterov": (Nesterov(0.9), G, G, [[0.962, -1.981], [0.9078, -1.9539]]),
    # G = g² = [0.04, 0.01], p -= 0.1 g/√G = 0.1 sgn g; G = [0.08, 0.02], g/√G = ±1/√2.
    "AdaGrad": (AdaGrad(eps=0.0), G, G, [[0.9, -1.9], [0.9 - 0.1 / 2 ** 0.5, -1.9 + 0.1 / 2 ** 0.5]]),
    # E = 0.1 g² = [0.004, 0.001], g/√E = ±√10, p -= 0.1√10 = 0.316228;
    # E = 0.9·0.004 + 0.1·0.04 = 0.0076 (and 0.0019), g/√E = ±0.2/√0.0076 = ±2.294157.
    "RMSProp": (RMSProp(rho=0.9, eps=0.0), G, G,
                [[1 - 0.1 * 10 ** 0.5, -2 + 0.1 * 10 ** 0.5],
                 [1 - 0.1 * 10 ** 0.5 - 0.1 * 0.2 / 0.0076 ** 0.5,
                  -2 + 0.1 * 10 ** 0.5 + 0.1 * 0.2 / 0.0076 ** 0.5]]),
    # t = 1: m̂ = g, v̂ = g², p -= 0.1 sgn g.  t = 2 with g2 = [-0.2, -0.1]:
    # m = 0.9·0.1 g + 0.1 g2 = [-0.002, -0.019], m̂ = m/0.19 = [-0.0105263, -0.1];
    # v = 0.999·0.001 g² + 0.001 g2² = [7.996e-5, 1.999e-5], v̂ = v/0.001999 = [0.04, 0.01];
    # p -= 0.1 m̂/√v̂ = 0.1·[-0.0526316, -1].
    "Adam": (Adam(eps=0.0), G, [-0.2, -0.1], [[0.9, -1.9], [0.9 + 0.1 * 0.01 / 0.19, -1.8]]),
}


@pytest.mark.parametrize("name", HAND)
def test_two_steps_match_the_hand_computed_update(name):
    opt, g1, g2, expected = HAND[name]
    got, _ = two_steps(opt, g1, g2)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_the_l2_penalty_is_added_to_the_weights_gradient_only():
    # λ = 1, n = 10: ∂penalty/∂w = 0.1 w = [0.1, -0.2], so g = [0.3, -0.3] and
    # w = [1 - 0.03, -2 + 0.03]; b's gradient 0.1 is untouched: b = 0.5 - 0.01.
    for opt in (SGD(), Momentum(0.5)):
        layer = Params([1.0, -2.0], [0.5])
        layer.nabla_w[...] = [0.4, -0.2]
        layer.nabla_b[...] = 0.2
        opt.step([layer], 0.1, 2, L2(1.0), 10)
        np.testing.assert_allclose(layer.w, [0.97, -1.97], rtol=1e-13)
        np.testing.assert_allclose(layer.b, [0.49], rtol=1e-13)


@pytest.mark.parametrize("name", ALL)
def test_state_lives_in_the_optimizer_not_in_the_layers(name):
    opt = ALL[name]()
    layer = Params([1.0, -2.0], [0.5])
    before = set(vars(layer))
    two_steps(opt, G, G)
    assert set(vars(layer)) == before
    assert all(isinstance(v, np.ndarray) for v in opt.state().values())


@pytest.mark.parametrize("name", ["Momentum", "Nesterov", "AdaGrad", "RMSProp", "Adam"])
def test_float32_parameters_stay_float32(name):
    layer = Params(np.ones(3, np.float32), np.zeros(1, np.float32))
    layer.w, layer.b = layer.w.astype(np.float32), layer.b.astype(np.float32)
    layer.nabla_w, layer.nabla_b = np.full(3, 0.1, np.float32), np.full(1, 0.1, np.float32)
    ALL[name]().step([layer], 0.1, 1)
    assert layer.w.dtype == np.float32 and layer.b.dtype == np.float32


def test_momentum_reads_velocities_saved_under_the_old_keys():
    opt = Momentum(0.9)
    opt.load_state({"0/w": np.array([1.0, 2.0])})
    assert np.array_equal(opt.velocity["0/w"], [1.0, 2.0])


# -- PyTorch's optimizers as a reference ------------------------------------------------
def torch_twin(name, params):
    torch = pytest.importorskip("torch")
    o = torch.optim
    return {
        "SGD": lambda: o.SGD(params, lr=0.05),
        "Momentum": lambda: o.SGD(params, lr=0.05, momentum=0.9),
        "Nesterov": lambda: o.SGD(params, lr=0.05, momentum=0.9, nesterov=True),
        "AdaGrad": lambda: o.Adagrad(params, lr=0.05, eps=1e-8),
        "RMSProp": lambda: o.RMSprop(params, lr=0.05, alpha=0.9, eps=1e-8),
        "Adam": lambda: o.Adam(params, lr=0.05, betas=(0.9, 0.999), eps=1e-8),
    }[name]()


@pytest.mark.slow  # importing torch alone takes seconds
@pytest.mark.parametrize("name", ALL)
def test_five_steps_match_pytorch(name, rng):
    torch = pytest.importorskip("torch")
    w0, b0 = rng.standard_normal((3, 4)), rng.standard_normal(3)
    grads = [(rng.standard_normal((3, 4)), rng.standard_normal(3)) for _ in range(5)]
    layer = Params(w0, b0)
    tw, tb = torch.tensor(w0, requires_grad=True), torch.tensor(b0, requires_grad=True)
    ref = torch_twin(name, [tw, tb])
    opt = ALL[name]()
    for gw, gb in grads:
        layer.nabla_w[...], layer.nabla_b[...] = 4 * gw, 4 * gb  # summed over m = 4
        opt.step([layer], 0.05, 4)
        tw.grad, tb.grad = torch.tensor(gw), torch.tensor(gb)
        ref.step()
    np.testing.assert_allclose(layer.w, tw.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.b, tb.detach().numpy(), rtol=1e-10, atol=1e-12)


# -- a tiny problem each must solve ------------------------------------------------------
# Linear regression y = 3x + 0.8 with one Dense(1, 1, "identity") unit and the quadratic
# cost, mini-batches of 10: every optimizer must reach the line.
SOLVE = {"SGD": 0.5, "Momentum": 0.1, "Nesterov": 0.1, "AdaGrad": 0.5, "RMSProp": 0.01, "Adam": 0.05}


@pytest.mark.parametrize("name", ALL)
def test_each_optimizer_fits_a_line(name, rng):
    x = rng.random((100, 1))
    y = 3 * x + 0.8
    net = Network([Dense(1, 1, "identity")], cost=QuadraticCost, seed=0)
    net.SGD((x, y), 100, 10, SOLVE[name], optimizer=ALL[name](), verbose=False)
    w, b = float(net.layers[0].w[0, 0]), float(net.layers[0].b[0])
    assert abs(w - 3) < 0.05 and abs(b - 0.8) < 0.03, (w, b)
    assert net.total_cost((x, y)) < 1e-3


@pytest.mark.parametrize("name", ALL)
def test_each_optimizer_reaches_the_bottom_of_an_elongated_bowl(name):
    # C = ½(p₀² + 25 p₁²): curvatures 1 and 25, the shape that makes plain SGD zig-zag.
    eta = {"SGD": 0.07, "Momentum": 0.02, "Nesterov": 0.02, "AdaGrad": 0.5,
           "RMSProp": 0.01, "Adam": 0.05}[name]
    layer = Params([1.0, 1.0], [0.0])
    opt = ALL[name]()
    for _ in range(1000):
        layer.nabla_w[...] = [1.0, 25.0] * layer.w
        layer.nabla_b[...] = 0.0
        opt.step([layer], eta, 1)
    assert np.abs(layer.w).max() < 0.02, layer.w


# -- state in checkpoints -----------------------------------------------------------------
def small_problem():
    rng = np.random.default_rng(3)
    x = rng.random((60, 6))
    labels = (x @ np.random.default_rng(4).standard_normal((6, 3))).argmax(axis=1)
    return x, labels


def all_params(net):
    return [p.copy() for layer in net.layers for _, p, _ in layer.parameters()]


@pytest.mark.parametrize("suffix", [".npz", ".json"])
@pytest.mark.parametrize("name", ALL)
def test_a_resumed_run_equals_an_uninterrupted_one(name, suffix, tmp_path):
    data = small_problem()
    eta = {"SGD": 0.5, "Momentum": 0.1, "Nesterov": 0.1}.get(name, 0.01)
    kw = dict(lmbda=1.0, verbose=False)
    whole = Network([6, 5, 3], seed=1)
    whole.SGD(data, 4, 10, eta, optimizer=ALL[name](), checkpoint=tmp_path / f"whole{suffix}", **kw)

    ck = tmp_path / f"broken{suffix}"
    first = Network([6, 5, 3], seed=1)
    first.SGD(data, 2, 10, eta, optimizer=ALL[name](), checkpoint=ck, **kw)
    saved = first.optimizer.state()
    resumed = Network([6, 5, 3], seed=99)  # different weights: the checkpoint replaces them
    fresh = ALL[name]()
    history = resumed.SGD(data, 4, 10, eta, optimizer=fresh, checkpoint=ck, resume=True, **kw)

    assert len(history.eta) == 4
    for a, b in zip(all_params(whole), all_params(resumed)):
        np.testing.assert_array_equal(a, b)
    for k, v in whole.optimizer.state().items():
        np.testing.assert_array_equal(fresh.state()[k], v, err_msg=k)
    assert set(saved) == set(whole.optimizer.state())


def test_the_checkpoint_holds_the_optimizer_state(tmp_path):
    from nndl import io

    net = Network([6, 5, 3], seed=1)
    net.SGD(small_problem(), 2, 10, 0.01, optimizer=Adam(), checkpoint=tmp_path / "ck.npz",
            verbose=False)
    meta, arrays = io.read_arrays(tmp_path / "ck.npz")
    assert meta["optimizer"] == "Adam"
    assert arrays["optimizer/t"].tolist() == [2 * 6]  # two epochs of six mini-batches
    assert {"optimizer/m/0/w", "optimizer/v/0/b", "optimizer/m/1/w"} <= set(arrays)


# -- eta as a function of the epoch --------------------------------------------------------
def test_eta_may_be_a_function_of_the_epoch():
    data = small_problem()
    schedule = lambda epoch: 0.5 / (1 + epoch)  # noqa: E731
    scheduled = Network([6, 5, 3], seed=1)
    h = scheduled.SGD(data, 3, 10, schedule, verbose=False)
    assert h.eta == [0.5, 0.25, 0.5 / 3]
    stepwise = Network([6, 5, 3], seed=1)
    for epoch in range(3):  # the same run, one epoch (and one float eta) per call
        stepwise.SGD(data, 1, 10, schedule(epoch), verbose=False)
    for a, b in zip(all_params(scheduled), all_params(stepwise)):
        np.testing.assert_array_equal(a, b)


def test_a_scheduled_eta_resumes_from_a_checkpoint(tmp_path):
    data = small_problem()
    schedule = lambda epoch: 0.4 * 0.5 ** epoch  # noqa: E731
    whole = Network([6, 5, 3], seed=1)
    whole.SGD(data, 4, 10, schedule, optimizer=Momentum(0.5), verbose=False)
    broken = Network([6, 5, 3], seed=1)
    broken.SGD(data, 2, 10, schedule, optimizer=Momentum(0.5), checkpoint=tmp_path / "c.npz",
               verbose=False)
    resumed = Network([6, 5, 3], seed=1)
    h = resumed.SGD(data, 4, 10, schedule, optimizer=Momentum(0.5), checkpoint=tmp_path / "c.npz",
                    resume=True, verbose=False)
    assert h.eta == [0.4, 0.2, 0.1, 0.05]
    for a, b in zip(all_params(whole), all_params(resumed)):
        np.testing.assert_array_equal(a, b)


def test_halving_scales_a_scheduled_eta():
    data = small_problem()
    net = Network([6, 5, 3], seed=1)
    # The same data for evaluation, and a tiny rate: accuracy stalls, eta halves.
    h = net.SGD(data, 4, 10, lambda epoch: 1e-9 * (epoch + 1), evaluation_data=data,
                schedule_n=1, verbose=False)
    assert h.eta[0] == 1e-9
    assert all(e < 1e-9 * (k + 1) for k, e in enumerate(h.eta[2:], start=2))


@pytest.mark.parametrize("bad", [lambda e: 0.0, lambda e: -1.0, lambda e: float("nan"),
                                 lambda e: "fast", lambda e: 0.1 if e < 1 else None])
def test_a_schedule_returning_a_bad_rate_is_a_config_error(bad):
    with pytest.raises(ConfigError, match=r"eta\(\d\)"):
        Network([6, 5, 3], seed=1).SGD(small_problem(), 3, 10, bad, verbose=False)
