#!/usr/bin/env python
"""Linear regression by gradient descent, three ways: by hand, by autograd, and with nndl.

A single ``Dense(1, 1, "identity")`` unit computes a = w x + b; with the quadratic cost
C = (1/2n) Σ_x (a - y)², ``Network.SGD`` is exactly gradient descent on w and b (chapter
1's update rule with σ replaced by the identity).  The same descent is written twice
more, from the same starting w and b:

* by hand, with the two derivatives worked out on paper,
  ∂C/∂w = (1/n) Σ_x (a - y) x and ∂C/∂b = (1/n) Σ_x (a - y);
* with :mod:`nndl.autograd`, which finds them itself from C written as a formula.

All three agree to 1e-12 on full batches (they differ only in the order of their
floating-point sums).  Two classic data sets:

* y = 3x + 0.8 exactly, 100 points x ~ U(0, 1): the fit recovers w = 3, b = 0.8;
* y = 2x + 3 + noise, noise ~ N(0, 0.1²): the fit reaches the least-squares line
  (printed beside it), not the true one.

Full-batch steps by default; ``--mini-batch-size 10`` makes nndl's fit stochastic (the
other two stay full-batch), and it then jitters around the least-squares line by an
amount that shrinks with eta.

    python scripts/linear_regression.py
    python scripts/linear_regression.py --epochs 50 --eta 0.1
    python scripts/linear_regression.py --from-json runs/linear_regression/linear_regression.json

Writes ``<out>/linear_regression.json`` and one ``fit_<name>.png`` per data set.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Dense, Network, QuadraticCost  # noqa: E402
from nndl import cli  # noqa: E402
from nndl.autograd import Tensor  # noqa: E402

NAME = "linear_regression"
PROBLEMS = {"3x+0.8": (3.0, 0.8, 0.0), "2x+3_noisy": (2.0, 3.0, 0.1)}  # w, b, noise std


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=cli.positive_int, default=100, help="data points (default 100)")
    p.add_argument("--epochs", type=cli.positive_int, default=500)
    p.add_argument("--mini-batch-size", type=cli.positive_int,
                   help="default: all n points, i.e. plain (full-batch) gradient descent")
    p.add_argument("--eta", type=cli.number(0.0, True), default=0.5)
    p.add_argument("--seed", type=cli.nonneg_int, default=0)
    p.add_argument("--quick", action="store_true", help="200 epochs")
    cli.add_results_options(p, NAME)
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.epochs = min(args.epochs, 200)
    return args


def fit(x, y, args):
    """Gradient descent on C = (1/2n) Σ (w x + b - y)² with nndl: (w, b, final cost, the
    starting (w, b))."""
    net = Network([Dense(1, 1, "identity")], cost=QuadraticCost, seed=args.seed)
    start = float(net.layers[0].w[0, 0]), float(net.layers[0].b[0])
    net.SGD((x, y), args.epochs, args.mini_batch_size or len(x), args.eta, verbose=False)
    return float(net.layers[0].w[0, 0]), float(net.layers[0].b[0]), net.total_cost((x, y)), start


def by_hand(x, y, w, b, eta, epochs):
    """The same descent with the derivatives worked out on paper: (w, b)."""
    for _ in range(epochs):
        a = w * x + b                                   # (n, 1)
        nabla_w = ((a - y) * x).mean()                  # ∂C/∂w = (1/n) Σ (a - y) x
        nabla_b = (a - y).mean()                        # ∂C/∂b = (1/n) Σ (a - y)
        w, b = w - eta * nabla_w, b - eta * nabla_b
    return float(w), float(b)


def by_autograd(x, y, w, b, eta, epochs):
    """The same descent with nndl.autograd finding ∂C/∂w and ∂C/∂b: (w, b)."""
    x, y = Tensor(x), Tensor(y)
    w, b = Tensor(w, requires_grad=True), Tensor(b, requires_grad=True)
    for _ in range(epochs):
        C = 0.5 * ((w * x + b - y) ** 2).mean()
        w.grad = b.grad = None
        C.backward()
        w.data -= eta * w.grad                          # a step, outside the recorded formula
        b.data -= eta * b.grad
    return w.item(), b.item()


def run(args):
    rng = np.random.default_rng(args.seed)
    results = {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json")},
               "fits": {}}
    for name, (w_true, b_true, noise) in PROBLEMS.items():
        x = rng.random((args.n, 1))                                  # (n, 1)
        y = w_true * x + b_true + noise * rng.standard_normal((args.n, 1))
        w, b, cost, (w0, b0) = fit(x, y, args)
        w_ls, b_ls = np.polyfit(x[:, 0], y[:, 0], 1)                 # the least-squares answer
        results["fits"][name] = {"x": x[:, 0].tolist(), "y": y[:, 0].tolist(), "w": w, "b": b,
                                 "cost": cost, "true": [w_true, b_true], "least_squares": [w_ls, b_ls],
                                 "start": [w0, b0],
                                 "by_hand": by_hand(x, y, w0, b0, args.eta, args.epochs),
                                 "autograd": by_autograd(x, y, w0, b0, args.eta, args.epochs)}
    return results


def report(results):
    for name, r in results["fits"].items():
        print(f"y = {r['true'][0]}x + {r['true'][1]}{' + noise' if 'noisy' in name else ''}: "
              f"fitted w = {r['w']:.4f}, b = {r['b']:.4f} (least squares: w = "
              f"{r['least_squares'][0]:.4f}, b = {r['least_squares'][1]:.4f}); cost {r['cost']:.2e}")
        if "by_hand" in r:
            nndl_fit, hand, auto = np.array([r["w"], r["b"]]), np.array(r["by_hand"]), np.array(r["autograd"])
            print(f"  by hand w = {hand[0]:.4f}, b = {hand[1]:.4f}; by autograd the same to "
                  f"{np.abs(auto - hand).max():.1e}; nndl's to {np.abs(nndl_fit - hand).max():.1e}")


def plot(results, out):
    from nndl import plots

    return [plots.fitted_line(r["x"], r["y"], r["w"], r["b"], os.path.join(out, f"fit_{name}.png"),
                              title=f"gradient descent on y = {r['true'][0]}x + {r['true'][1]}"
                                    f"{' + noise' if 'noisy' in name else ''}")
            for name, r in results["fits"].items()]


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot, report)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
