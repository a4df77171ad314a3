#!/usr/bin/env python
"""How fast nndl trains the book's networks, against the alternatives, in one run.

Every workload is defined once in WORKLOADS and run, interleaved and repeated, by each
implementation that supports it:

* ``nndl``    -- nndl.Network.SGD (the fused numba path where it applies);
* ``numpy``   -- a plain vectorized numpy step (whole mini-batch, no fusion);
* ``loop``    -- the book's chapter 2 code: one example at a time, column vectors;
* ``torch``   -- PyTorch eager on the CPU (if installed), same threads, same step.

Times are seconds per epoch (the loop runs on a slice and is scaled up, as marked),
medians of the repetitions.  Ratios are medians of paired ratios: within each
repetition the implementations run back to back, and each repetition's nndl time is
divided by the other's; "torch range" is the smallest and largest of those ratios.
That is what to trust on a machine whose speed drifts.

    python scripts/benchmark.py --quick          # 1-3 minutes
    python scripts/benchmark.py                  # everything, incl. peak memory
    python scripts/benchmark.py --backend cupy   # on a GPU: nndl on CuPy vs PyTorch on CUDA
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import nndl  # noqa: E402
from nndl import Dense, Network  # noqa: E402

THREADS = int(os.environ.get("NNDL_BENCH_THREADS", "2"))

# name -> definition.  kind "mlp": Dense sigmoid stack; kind "conv": chapter 6's net.
WORKLOADS = {
    "W1": dict(kind="mlp", sizes=[784, 30, 10], cost="quadratic", eta=3.0, lmbda=0.0,
               n=50_000, about="[784,30,10] quadratic, eta 3.0"),
    "W2": dict(kind="mlp", sizes=[784, 100, 10], cost="cross-entropy", eta=0.5, lmbda=5.0,
               n=50_000, about="[784,100,10] cross-entropy, L2 lambda 5"),
    "W3": dict(kind="conv", cost="log-likelihood", eta=0.03, lmbda=0.0, n=10_000,
               about="ConvPool(20,1,5,5)-ConvPool(40,20,5,5)-FC100 ReLU-softmax"),
    # Chapter 6's biggest nets (scripts/mnist_conv.py's fc1000 and dropout presets), at
    # the book's mini-batch of 10 in float32, as network3 ran them.
    "W6": dict(kind="conv", fc=(1000, 1000), p=0.0, cost="log-likelihood", eta=0.03,
               lmbda=0.1, n=10_000, dtypes=("float32",),
               about="ConvPool 20, ConvPool 40, FC1000, FC1000 ReLU, softmax; L2 0.1"),
    "W7": dict(kind="conv", fc=(1000, 1000), p=0.5, cost="log-likelihood", eta=0.03,
               lmbda=0.0, n=10_000, dtypes=("float32",),
               book_dropout=True,
               about="W6 with dropout 0.5 on both FC layers' inputs and the softmax's "
                     "(network3's dropout, as the dropout preset; torch's is inverted)"),
}
PLAN = [("W1", 10), ("W2", 10), ("W3", 10), ("W6", 10), ("W7", 10), ("W1", 64), ("W1", 256),
        ("W2", 64), ("W2", 256), ("W3", 64), ("W3", 256)]


# ---------------------------------------------------------------- FLOP accounting
def mlp_flops(sizes, n):
    """Multiply-adds x2, forward + both backward products (none into the input)."""
    macs = 0
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        macs += a * b * (2 if k == 0 else 3)
    return 2.0 * macs * n


def _fc_sizes(w):
    """The dense layers' sizes of a conv workload: [640, hidden..., 10]."""
    return [40 * 4 * 4, *w.get("fc", (100,)), 10]


def conv_flops(n, w=None):
    c1 = 24 * 24 * 20 * 25            # conv1 outputs x (1*5*5)
    c2 = 8 * 8 * 40 * 20 * 25         # conv2 outputs x (20*5*5)
    sizes = _fc_sizes(w or {})
    fc = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    return 2.0 * (2 * c1 + 3 * c2 + 3 * fc) * n


def inference_flops(w, n):
    if w["kind"] == "mlp":
        return 2.0 * sum(a * b for a, b in zip(w["sizes"][:-1], w["sizes"][1:])) * n
    return 2.0 * (24 * 24 * 20 * 25 + 8 * 8 * 40 * 500 + 640 * 100 + 1000) * n


def peak_gflops(dtype):
    a = np.random.default_rng(0).standard_normal((2048, 2048)).astype(dtype)
    a @ a
    times = []
    for _ in range(3):
        t = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - t)
    return 2 * 2048 ** 3 / np.median(times) / 1e9


# ---------------------------------------------------------------- implementations
def nndl_net(w, dtype, seed=0):
    if w["kind"] == "mlp":
        return Network(w["sizes"], cost=w["cost"], dtype=dtype, seed=seed)
    from nndl.conv import ConvPoolLayer, FullyConnectedLayer, SoftmaxLayer

    sizes, p = _fc_sizes(w), w.get("p", 0.0)
    layers = [ConvPoolLayer((20, 1, 5, 5), (10, 1, 28, 28), (2, 2), "relu"),
              ConvPoolLayer((40, 20, 5, 5), (10, 20, 12, 12), (2, 2), "relu")]
    book = w.get("book_dropout", False)
    layers += [FullyConnectedLayer(a, b, "relu", p_dropout=p, book_dropout=book)
               for a, b in zip(sizes[:-2], sizes[1:-1])]
    layers.append(SoftmaxLayer(sizes[-2], 10, p_dropout=p, book_dropout=book))
    return Network(layers, cost="log-likelihood", dtype=dtype, seed=seed)


def run_nndl(w, X, y, mb, dtype):
    net = nndl_net(w, dtype)
    t = time.perf_counter()
    net.SGD((X, y), 1, mb, w["eta"], lmbda=w["lmbda"], verbose=False)
    return time.perf_counter() - t


# Inference over 10,000 images takes milliseconds, which one sample of a drifting
# machine's speed measures badly: each measurement is the mean of this many passes.
INFER_PASSES = 5


def infer_nndl(w, X, dtype):
    net = nndl_net(w, dtype)
    net.predict(X[:100])
    t = time.perf_counter()
    for _ in range(INFER_PASSES):
        net.predict(X)
    return (time.perf_counter() - t) / INFER_PASSES


def _sig(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def run_numpy(w, X, y, mb, dtype):
    """Plain vectorized numpy: the whole mini-batch per step, nothing fused."""
    rng = np.random.default_rng(0)
    sizes = w["sizes"]
    ws = [(rng.standard_normal((b, a)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal(b).astype(dtype) for b in sizes[1:]]
    Y = np.eye(sizes[-1], dtype=dtype)[y]
    n, eta, lmbda = len(X), w["eta"], w["lmbda"]
    quad = w["cost"] == "quadratic"
    t = time.perf_counter()
    perm = rng.permutation(n)
    for k in range(0, n, mb):
        idx = perm[k:k + mb]
        x, yb = X[idx], Y[idx]
        acts = [x]
        for W, b in zip(ws, bs):
            acts.append(_sig(acts[-1] @ W.T + b))
        a = acts[-1]
        delta = (a - yb) * a * (1 - a) if quad else a - yb
        for l in range(len(ws) - 1, -1, -1):
            nw, nb = delta.T @ acts[l], delta.sum(0)
            if l:
                delta = (delta @ ws[l]) * acts[l] * (1 - acts[l])
            ws[l] *= 1 - eta * lmbda / n
            ws[l] -= (eta / len(idx)) * nw
            bs[l] -= (eta / len(idx)) * nb
    return time.perf_counter() - t


def run_loop(w, X, y, mb, dtype):
    """The book's network.py/network2.py: backprop one (784, 1) column at a time."""
    rng = np.random.default_rng(0)
    sizes = w["sizes"]
    ws = [(rng.standard_normal((b, a)) / np.sqrt(a)).astype(dtype) for a, b in zip(sizes[:-1], sizes[1:])]
    bs = [rng.standard_normal((b, 1)).astype(dtype) for b in sizes[1:]]
    data = [(X[i].reshape(-1, 1), np.eye(sizes[-1], dtype=dtype)[y[i]].reshape(-1, 1)) for i in range(len(X))]
    n, eta, lmbda = len(X), w["eta"], w["lmbda"]
    quad = w["cost"] == "quadratic"
    t = time.perf_counter()
    order = rng.permutation(n)
    for k in range(0, n, mb):
        batch = [data[i] for i in order[k:k + mb]]
        nabla_b = [np.zeros(b.shape, dtype) for b in bs]
        nabla_w = [np.zeros(W.shape, dtype) for W in ws]
        for x, yy in batch:
            activation, activations, zs = x, [x], []
            for b, W in zip(bs, ws):
                z = W @ activation + b
                zs.append(z)
                activation = _sig(z)
                activations.append(activation)
            a = activations[-1]
            delta = (a - yy) * a * (1 - a) if quad else a - yy       # BP1
            nabla_b[-1] += delta                                     # BP3
            nabla_w[-1] += delta @ activations[-2].T                 # BP4
            for l in range(2, len(sizes)):
                sp = activations[-l] * (1 - activations[-l])
                delta = (ws[-l + 1].T @ delta) * sp                  # BP2
                nabla_b[-l] += delta
                nabla_w[-l] += delta @ activations[-l - 1].T
        m = len(batch)
        ws = [(1 - eta * lmbda / n) * W - (eta / m) * nw for W, nw in zip(ws, nabla_w)]
        bs = [b - (eta / m) * nb for b, nb in zip(bs, nabla_b)]
    return time.perf_counter() - t


def _torch_model(w, torch):
    nn = torch.nn
    if w["kind"] == "mlp":
        mods = []
        for a, b in zip(w["sizes"][:-1], w["sizes"][1:]):
            mods += [nn.Linear(a, b), nn.Sigmoid()]
        return nn.Sequential(*mods)
    sizes, p = _fc_sizes(w), w.get("p", 0.0)
    mods = [nn.Conv2d(1, 20, 5), nn.MaxPool2d(2), nn.ReLU(),
            nn.Conv2d(20, 40, 5), nn.MaxPool2d(2), nn.ReLU(), nn.Flatten()]
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        mods += ([nn.Dropout(p)] if p else []) + [nn.Linear(a, b)]
        if k < len(sizes) - 2:
            mods.append(nn.ReLU())
    return nn.Sequential(*mods)


def run_torch(w, X, y, mb, dtype, device="cpu"):
    """PyTorch eager, the same step as nndl's; on CUDA the copy to the GPU is timed too."""
    import torch

    dev = torch.device(device)
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    model = _torch_model(w, torch).to(device=dev, dtype=tdt)
    if cuda:
        torch.cuda.synchronize()
    t = time.perf_counter()
    Xt = torch.from_numpy(X.reshape((-1, 1, 28, 28) if w["kind"] == "conv" else (-1, 784))).to(dev)
    Yt = (torch.from_numpy(np.eye(10, dtype=dtype)[y]) if w["cost"] != "log-likelihood"
          else torch.from_numpy(y)).to(dev)
    n = len(X)
    # weight_decay = lambda/n on the mean-over-batch loss equals the book's L2 step.
    opt = torch.optim.SGD(model.parameters(), lr=w["eta"], weight_decay=w["lmbda"] / n)
    perm = torch.randperm(n, device=dev)
    for k in range(0, n, mb):
        idx = perm[k:k + mb]
        out = model(Xt[idx])
        if w["cost"] == "quadratic":
            loss = 0.5 * ((out - Yt[idx]) ** 2).sum() / len(idx)
        elif w["cost"] == "cross-entropy":
            loss = torch.nn.functional.binary_cross_entropy(out, Yt[idx], reduction="sum") / len(idx)
        else:
            loss = torch.nn.functional.cross_entropy(out, Yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - t


def infer_torch(w, X, dtype, device="cpu"):
    import torch

    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    model = _torch_model(w, torch).to(device=dev, dtype=tdt).eval()
    Xt = torch.from_numpy(X.reshape((-1, 1, 28, 28) if w["kind"] == "conv" else (-1, 784))).to(dev)
    with torch.no_grad():
        model(Xt[:100])
        sync()
        t = time.perf_counter()
        for _ in range(INFER_PASSES):
            for k in range(0, len(Xt), 1000):
                model(Xt[k:k + 1000]).argmax(1)
        sync()
    return (time.perf_counter() - t) / INFER_PASSES


def have_torch():
    try:
        import torch

        torch.set_num_threads(THREADS)
        return True
    except ImportError:
        return False


# ---------------------------------------------------------------- GPU: nndl on CuPy vs torch on CUDA
GPU_PLAN = [(name, mb) for name in ("W1", "W2", "W3") for mb in (10, 64, 256)]


def run_nndl_gpu(w, X, y, mb, dtype):
    """One epoch of nndl on CuPy, from host data: SGD's one copy to the GPU is included."""
    from nndl import backend

    net = nndl_net(w, dtype).to_gpu()
    backend.synchronize(net.xp)
    t = time.perf_counter()
    net.SGD((X, y), 1, mb, w["eta"], lmbda=w["lmbda"], verbose=False)
    backend.synchronize(net.xp)
    return time.perf_counter() - t


def infer_nndl_gpu(w, X, dtype):
    from nndl import backend

    net = nndl_net(w, dtype).to_gpu()
    Xd = net.xp.asarray(X)
    net.predict(Xd[:100])
    backend.synchronize(net.xp)
    t = time.perf_counter()
    for _ in range(INFER_PASSES):
        net.predict(Xd)
    backend.synchronize(net.xp)
    return (time.perf_counter() - t) / INFER_PASSES


def gpu_main(args):
    """``--backend cupy``: float32, W1-W3 at mini-batch 10/64/256, and W5 inference."""
    from nndl import backend
    from nndl.errors import ConfigError

    try:
        cp = backend.array_module("cupy")
    except ConfigError as e:
        print(f"{os.path.basename(sys.argv[0]) or 'benchmark.py'}: error: {e}", file=sys.stderr)
        return 2
    reps = args.reps or (1 if args.quick else 3)
    frac = 0.1 if args.quick else 1.0
    from nndl.data import load_mnist

    (X_all, y_all), _, _ = load_mnist()
    torch_cuda = have_torch() and __import__("torch").cuda.is_available()
    only = set(args.only.split(",")) if args.only else None
    gpu = cp.cuda.runtime.getDeviceProperties(cp.cuda.Device().id)["name"]
    gpu = gpu.decode() if isinstance(gpu, bytes) else gpu
    print(f"nndl {nndl.__version__} on CuPy {cp.__version__}, {gpu}"
          + (", torch " + __import__("torch").__version__ + " CUDA" if torch_cuda else ", no torch CUDA")
          + (" -- quick mode: 10% of each workload, times scaled to a full epoch" if args.quick else ""))
    dtype = np.dtype(np.float32)
    results = []
    print(f"\n== float32 on the GPU ==\n{'workload':<16}{'impl':<12}{'s/epoch':>9}{'samples/s':>11}{'x torch':>9}")
    for name, mb in GPU_PLAN:
        if only and name not in only:
            continue
        w = WORKLOADS[name]
        n = max(int(w["n"] * frac), 2 * mb)
        X, y = X_all[:n].astype(dtype), y_all[:n]
        scale = w["n"] / n
        jobs = {"nndl-cupy": (lambda: run_nndl_gpu(w, X, y, mb, dtype), scale)}
        if torch_cuda:
            jobs["torch-cuda"] = (lambda: run_torch(w, X, y, mb, dtype, "cuda"), scale)
        run_nndl_gpu(w, X[: 4 * mb], y[: 4 * mb], mb, dtype)  # compile the CuPy kernels
        if torch_cuda:
            run_torch(w, X[: 4 * mb], y[: 4 * mb], mb, dtype, "cuda")
        med, runs = median_times(jobs, reps)
        label = f"{name} mb{mb}"
        for impl, secs in med.items():
            results.append(dict(workload=name, mini_batch=mb, dtype=str(dtype), impl=impl,
                                backend="cupy", seconds=secs, samples_per_s=w["n"] / secs))
            ratio = f"{paired_ratio(runs, 'nndl-cupy', 'torch-cuda')[0]:.2f}" \
                if impl == "nndl-cupy" and "torch-cuda" in runs else ""
            print(f"{label:<16}{impl:<12}{secs:>9.3f}{w['n'] / secs:>11.0f}{ratio:>9}")
            label = ""
    for name in ("W1", "W3"):
        if only and name not in only:
            continue
        w = WORKLOADS[name]
        X = X_all[:10_000].astype(dtype)
        jobs = {"nndl-cupy": (lambda: infer_nndl_gpu(w, X, dtype), 1.0)}
        if torch_cuda:
            jobs["torch-cuda"] = (lambda: infer_torch(w, X, dtype, "cuda"), 1.0)
        med, runs = median_times(jobs, max(reps, 3))
        label = f"W5 infer {name}"
        for impl, secs in med.items():
            results.append(dict(workload=f"W5-{name}", dtype=str(dtype), impl=impl, backend="cupy",
                                seconds=secs))
            ratio = f"{paired_ratio(runs, 'nndl-cupy', 'torch-cuda')[0]:.2f}" \
                if impl == "nndl-cupy" and "torch-cuda" in runs else ""
            print(f"{label:<16}{impl:<12}{secs:>9.3f}{10_000 / secs:>11.0f}{ratio:>9}")
            label = ""
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


# ---------------------------------------------------------------- driver
SETTLE_S = 0.5  # pause before each measurement (see median_times)


def median_times(jobs, reps):
    """jobs: name -> (fn, scale).  Run them interleaved ``reps`` times.

    Returns (medians, runs): each job's median x scale, and its list of runs, in order,
    for :func:`paired_ratio`.  Each run starts after a short pause: OpenMP and BLAS
    worker threads keep spinning for a while after their last task, and on a 2-core
    machine the spinning threads of the implementation that ran just before would take
    a core from the next one."""
    runs = {name: [] for name in jobs}
    for _ in range(reps):
        for name, (fn, scale) in jobs.items():
            time.sleep(SETTLE_S)
            runs[name].append(fn() * scale)
    return {name: float(np.median(v)) for name, v in runs.items()}, runs


def paired_ratio(runs, a, b):
    """(median, min, max) of runs[a][i] / runs[b][i]: each repetition's two runs are
    seconds apart, so a stretch in which the machine runs slower (it has some, lasting
    seconds to minutes) moves both; the ratio of the two medians would mix runs from
    different stretches."""
    r = np.asarray(runs[a]) / np.asarray(runs[b])
    return float(np.median(r)), float(r.min()), float(r.max())


def peak_rss_mb(code):
    """Peak resident memory (MiB) of a fresh Python running ``code``."""
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork+exec.
    code += ("; print('RSS', [int(l.split()[1]) for l in open('/proc/self/status')"
             " if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.abspath(__file__))).stdout
    return int(out.split("RSS")[-1]) / 1024.0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer samples and repetitions (1-3 minutes)")
    p.add_argument("--reps", type=int, help="repetitions per measurement (median taken)")
    p.add_argument("--dtypes", default="float64,float32")
    p.add_argument("--only", help="comma-separated workloads, e.g. W1,W2")
    p.add_argument("--no-memory", action="store_true")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    p.add_argument("--backend", choices=["numpy", "cupy"], default="numpy",
                   help="cupy: nndl on CuPy against PyTorch on CUDA, float32 (needs a GPU)")
    args = p.parse_args(argv)
    if args.backend == "cupy":
        return gpu_main(args)
    os.environ["NNDL_BACKEND"] = "numpy"  # the CPU figures, whatever the environment says
    reps = args.reps or (1 if args.quick else 3)
    frac = 0.1 if args.quick else 1.0  # fraction of each workload's samples actually run
    from nndl.data import load_mnist

    (X_all, y_all), _, _ = load_mnist()
    torch_ok = have_torch()
    only = set(args.only.split(",")) if args.only else None
    if nndl.backend.HAS_NUMBA:  # nndl's fused loop shares a layer's rows among numba threads
        nndl.backend.numba.set_num_threads(min(THREADS, nndl.backend.numba.config.NUMBA_NUM_THREADS))
    print(f"nndl {nndl.__version__}, numpy {np.__version__}, {THREADS} threads"
          + (", torch " + __import__("torch").__version__ if torch_ok else ", torch not installed")
          + (" -- quick mode: 10% of each workload, times scaled to a full epoch" if args.quick else ""))
    results = []
    for dtype in [np.dtype(d) for d in args.dtypes.split(",")]:
        peak = peak_gflops(dtype)
        print(f"\n== {dtype}: peak matmul {peak:.0f} GFLOP/s (2048^3, numpy) ==")
        print(f"{'workload':<16}{'impl':<7}{'s/epoch':>9}{'ms/batch':>9}{'samples/s':>11}{'x torch':>9}"
              f"{'x numpy':>9}{'x loop':>8}{'x floor':>9}{'torch range':>13}")
        for name, mb in PLAN:
            w = WORKLOADS[name]
            if (only and name not in only) or str(dtype) not in w.get("dtypes", (str(dtype),)):
                continue
            n = max(int(w["n"] * frac), 2 * mb)
            X, y = X_all[:n].astype(dtype), y_all[:n]
            scale = w["n"] / n
            jobs = {"nndl": (lambda: run_nndl(w, X, y, mb, dtype), scale)}
            if w["kind"] == "mlp":
                jobs["numpy"] = (lambda: run_numpy(w, X, y, mb, dtype), scale)
                if mb == 10:
                    nl = n // 10  # the loop is slow: a tenth of the samples, scaled up
                    jobs["loop"] = (lambda: run_loop(w, X[:nl], y[:nl], mb, dtype), w["n"] / nl)
            if torch_ok:
                jobs["torch"] = (lambda: run_torch(w, X, y, mb, dtype), scale)
            run_nndl(w, X[: 4 * mb], y[: 4 * mb], mb, dtype)  # compile / warm up
            med, runs = median_times(jobs, reps)
            flops = mlp_flops(w["sizes"], w["n"]) if w["kind"] == "mlp" else conv_flops(w["n"], w)
            floor = flops / (peak * 1e9)
            label = f"{name} mb{mb}"
            for impl, secs in med.items():
                ms = 1e3 * secs / -(-w["n"] // mb)
                row = dict(workload=name, mini_batch=mb, dtype=str(dtype), impl=impl, seconds=secs,
                           ms_per_mini_batch=ms, samples_per_s=w["n"] / secs, floor_seconds=floor,
                           runs=runs[impl])
                ratios = {o: paired_ratio(runs, "nndl", o) for o in runs if impl == "nndl" and o != "nndl"}
                row.update({f"x_{o}": q[0] for o, q in ratios.items()})
                results.append(row)
                r = lambda other: f"{ratios[other][0]:.2f}" if other in ratios else ""
                span = "{:.2f}-{:.2f}".format(*ratios["torch"][1:]) if "torch" in ratios and reps > 1 else ""
                print(f"{label:<16}{impl:<7}{secs:>9.3f}{ms:>9.2f}{w['n'] / secs:>11.0f}"
                      f"{r('torch'):>9}{r('numpy'):>9}"
                      f"{r('loop'):>8}{f'{secs / floor:.1f}' if impl == 'nndl' else '':>9}{span:>13}")
                label = ""
        for name in ("W1", "W3"):
            if only and name not in only:
                continue
            w = WORKLOADS[name]
            X = X_all[:10_000].astype(dtype)
            jobs = {"nndl": (lambda: infer_nndl(w, X, dtype), 1.0)}
            if torch_ok:
                jobs["torch"] = (lambda: infer_torch(w, X, dtype), 1.0)
            med, runs = median_times(jobs, max(reps, 3))
            floor = inference_flops(w, 10_000) / (peak * 1e9)
            label = f"W5 infer {name}"
            for impl, secs in med.items():
                row = dict(workload=f"W5-{name}", dtype=str(dtype), impl=impl, seconds=secs,
                           floor_seconds=floor, runs=runs[impl])
                ratio = span = ""
                if impl == "nndl" and "torch" in runs:
                    q = paired_ratio(runs, "nndl", "torch")
                    row["x_torch"] = q[0]
                    ratio, span = f"{q[0]:.2f}", f"{q[1]:.2f}-{q[2]:.2f}"
                results.append(row)
                print(f"{label:<16}{impl:<7}{secs:>9.3f}{'':>9}{10_000 / secs:>11.0f}{ratio:>9}{'':>9}{'':>8}"
                      f"{f'{secs / floor:.1f}' if impl == 'nndl' else '':>9}{span:>13}")
                label = ""
    if not args.no_memory and not args.quick:
        print("\n== peak RSS, one epoch on the full 50,000 training images (fresh process) ==")
        for name, mb in (("W1", 10), ("W3", 10)):
            code = ("import sys; sys.path.insert(0, '..'); import numpy as np; from nndl.data import load_mnist;"
                    "sys.path.insert(0, '.'); import benchmark as b;"
                    f"(X, y), _, _ = load_mnist(dtype='float32'); w = b.WORKLOADS['{name}'];"
                    f"b.run_nndl(w, X, y, {mb}, np.float32)")
            mb_rss = peak_rss_mb(code)
            results.append(dict(workload=f"RSS-{name}", impl="nndl", peak_rss_mb=mb_rss))
            print(f"{name} mb{mb} float32: peak RSS {mb_rss:.0f} MiB")
        # The expanded preset (target: 1 GB): MNIST loaded and expanded to 250,000 images
        # in float32 as scripts/mnist_conv.py does (made a mini-batch at a time from the
        # 50,000 source images, which stay held), the net trained on the first 2,000 of
        # them and evaluated on the validation and test sets.
        code = ("import sys; sys.path.insert(0, '..'); sys.path.insert(0, '.'); import mnist_conv;"
                "from nndl import network3;"
                "args = mnist_conv.parse_args(['--preset', 'expanded']);"
                "(X, y), val, test = mnist_conv._load(args, True);"
                "part = type(X)(X.images[:400]);"
                "net = network3.Network(mnist_conv._build('expanded', False), 10, seed=0);"
                "net.SGD((part, y[:2000]), 1, 10, 0.03, val, test, lmbda=0.1, verbose=False)")
        mb_rss = peak_rss_mb(code)
        results.append(dict(workload="RSS-expanded", impl="nndl", peak_rss_mb=mb_rss))
        print(f"expanded preset mb10 float32: peak RSS {mb_rss:.0f} MiB (2,000 of 250,000 images trained)")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    from nndl.cli import run_script

    run_script(main)
