#!/usr/bin/env python
"""The classic two-layer ReLU network without biases, fitted to random data, three ways.

The well-known warm-up example: N = 64 random inputs x ∈ R^1000 and targets y ∈ R^10
(standard normal), a network y_pred = relu(x w1ᵀ) w2ᵀ with w1 (100, 1000) and w2
(10, 100) drawn N(0, 1), the loss L = Σ (y_pred - y)² (summed over the batch and the
outputs, no ½), and 500 full-batch gradient steps w → w - lr ∂L/∂w with lr = 1e-6.
The loss falls from ~10⁷ to near zero.  It is written three times, from the same data
and starting weights, and the three give the same loss step by step:

* by hand in numpy, the backward pass worked out line by line (``by_hand``);
* with :mod:`nndl.autograd`, which derives the backward pass itself (``by_autograd``);
* from nndl parts: ``Dense(1000, 100, "relu", init="large", bias=False)``,
  ``Dense(100, 10, "identity", init="large", bias=False)``, the quadratic cost, and
  ``Network.SGD`` with mini-batches of all 64 examples, so each epoch is one step.

How eta maps to the classic lr: nndl's QuadraticCost is C = ½ Σ (a - y)², so
∂L/∂w = 2 ∂C/∂w, and the optimizer divides the summed gradient by the mini-batch size m
(w → w - (eta/m) ∂C/∂w).  Equal steps need eta/m = 2 lr, i.e.
eta = 2 · m · lr = 2 · 64 · 1e-6 = 1.28e-4.  The printed loss is the classic L = 2C.

    python scripts/two_layer_relu.py                 # 500 steps, loss every 50
    python scripts/two_layer_relu.py --quick         # 50 steps
    python scripts/two_layer_relu.py --from-json runs/two_layer_relu/two_layer_relu.json
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from nndl import Dense, Network, QuadraticCost  # noqa: E402
from nndl import cli  # noqa: E402
from nndl.autograd import Tensor  # noqa: E402

NAME = "two_layer_relu"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--N", type=cli.positive_int, default=64, help="examples (the batch), default 64")
    p.add_argument("--D-in", type=cli.positive_int, default=1000)
    p.add_argument("--H", type=cli.positive_int, default=100)
    p.add_argument("--D-out", type=cli.positive_int, default=10)
    p.add_argument("--lr", type=cli.number(0.0, True), default=1e-6, help="the classic learning rate on L = Σ(ŷ-y)²")
    p.add_argument("--iterations", type=cli.positive_int, default=500)
    p.add_argument("--seed", type=cli.nonneg_int, default=0)
    p.add_argument("--quick", action="store_true", help="50 iterations")
    cli.add_results_options(p, NAME, plots="plot")
    args = p.parse_args(argv)
    cli.check_results_options(p, args, NAME)
    if args.quick:
        args.iterations = min(args.iterations, 50)
    return args


def build(args, rng):
    layers = [Dense(args.D_in, args.H, "relu", init="large", bias=False),   # h = relu(x w1ᵀ)
              Dense(args.H, args.D_out, "identity", init="large", bias=False)]  # ŷ = h w2ᵀ
    return Network(layers, cost=QuadraticCost, rng=rng)


def by_hand(x, y, w1, w2, lr, iterations):
    """The classic numpy loop, w1 (D_in, H) and w2 (H, D_out): the loss before each step
    and after the last."""
    w1, w2 = w1.copy(), w2.copy()
    losses = []
    for t in range(iterations + 1):
        h = x @ w1                                      # (N, H)
        h_relu = np.maximum(h, 0)
        y_pred = h_relu @ w2                            # (N, D_out)
        losses.append(float(((y_pred - y) ** 2).sum()))
        if t == iterations:
            break
        grad_y_pred = 2.0 * (y_pred - y)                # ∂L/∂y_pred
        grad_w2 = h_relu.T @ grad_y_pred                # (H, D_out)
        grad_h = grad_y_pred @ w2.T                     # (N, H)
        grad_h[h < 0] = 0                               # through the ReLU
        grad_w1 = x.T @ grad_h                          # (D_in, H)
        w1 -= lr * grad_w1
        w2 -= lr * grad_w2
    return losses


def by_autograd(x, y, w1, w2, lr, iterations):
    """The same loop with nndl.autograd deriving the backward pass: the same losses."""
    x, y = Tensor(x), Tensor(y)
    w1, w2 = Tensor(w1.copy(), requires_grad=True), Tensor(w2.copy(), requires_grad=True)
    losses = []
    for t in range(iterations + 1):
        y_pred = (x @ w1).relu() @ w2
        loss = ((y_pred - y) ** 2).sum()
        losses.append(loss.item())
        if t == iterations:
            break
        w1.grad = w2.grad = None
        loss.backward()
        w1.data -= lr * w1.grad
        w2.data -= lr * w2.grad
    return losses


def run(args):
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.N, args.D_in))                  # (N, D_in)
    y = rng.standard_normal((args.N, args.D_out))                 # (N, D_out)
    net = build(args, rng)  # weights drawn after x and y from the same stream, as in the classic
    w1, w2 = net.layers[0].w.T.copy(), net.layers[1].w.T.copy()   # (D_in, H), (H, D_out)
    eta = 2 * args.N * args.lr                                    # see the module docstring
    loss = lambda: 2 * QuadraticCost.fn(net.feedforward(x), y)    # noqa: E731  L = Σ(ŷ-y)² = 2C
    losses = [loss()]
    net.SGD((x, y), args.iterations, args.N, eta, verbose=False,
            callback=lambda epoch, net, h: losses.append(loss()))
    return {"config": {k: v for k, v in vars(args).items() if k not in ("out", "from_json")},
            "eta": eta, "loss": losses,
            "loss_by_hand": by_hand(x, y, w1, w2, args.lr, args.iterations),
            "loss_autograd": by_autograd(x, y, w1, w2, args.lr, args.iterations)}


def report(results):
    losses = results["loss"]
    others = [results.get("loss_by_hand"), results.get("loss_autograd")]
    every = max(1, (len(losses) - 1) // 10)
    print(f"eta = 2·N·lr = {results['eta']:.3g}; loss L = Σ(y_pred - y)² after t steps"
          + ("" if None in others else ": nndl, by hand, by autograd"))
    for t in sorted(set(range(0, len(losses), every)) | {len(losses) - 1}):
        print(f"{t:5d} {losses[t]:.6g}" + ("" if None in others else
                                           f"  {others[0][t]:.6g}  {others[1][t]:.6g}"))
    if None not in others:
        hand = np.asarray(others[0])
        worst = max(np.abs(np.asarray(series) / hand - 1).max() for series in (losses, others[1]))
        print(f"largest relative difference from the loop by hand: {worst:.1e}")


def plot(results, out):
    from nndl import plots

    return [plots.curves({"L = Σ(ŷ - y)²": results["loss"]}, os.path.join(out, "loss.png"),
                         xlabel="iteration", ylabel="loss", logy=True,
                         title="Two-layer ReLU network on random data")]


def main(argv=None):
    return cli.results_then_plots(NAME, parse_args(argv), run, plot, report)


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
