"""Benchmark: the blog's seed experiment with nnscratch, PyTorch and the blog's loop.

One run measures, on the same machine at the same time:

1. ``nnscratch train --preset seed`` as a whole process (a subprocess): its
   wall time, its peak resident memory, and the training loop alone
   (``train_seconds`` from its metrics.json);
2. the same math in PyTorch on the CPU (784-16-16-10 sigmoid, softmax,
   cross-entropy, uniform [-0.5, 0.5) init, raw pixels, float32, full-batch
   gradient descent lr 0.8), also as a whole process: this file run with
   ``--worker torch``; the digits are read with nnscratch's CSV reader so both
   processes pay the same for loading;
3. a timed slice (``--blog-epochs``, default 2) of the blog's per-sample
   Python loop, one digit at a time as column vectors, float64, each blog
   epoch followed by ten epochs of nnscratch's fast step in the same process
   (so the speed-up is measured under the same load);
4. what each step of the fast path buys (``--steps`` epochs of each
   variant, each in its own process).

It prints ms per epoch for each and the ratios. Needs the optional extra
``bench`` (``pip install -e '.[bench]'``, i.e. torch==2.13.0).

    python bench/seed.py --data ../shared/data/digits-42k/data.csv
    python bench/seed.py --data ... --epochs 100 --repeat 3   # shorter, medians of 3

The machine may set OPENBLAS_CORETYPE (see the workplace notes); the bench
leaves the environment as it finds it and prints what it was, since it
changes which OpenBLAS kernels NumPy uses.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "digits-42k" / "data.csv"
TRAIN_ROWS = 30000
LR = 0.8
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------- #
# Running a whole process and measuring it
# --------------------------------------------------------------------------- #
def measured(command: list[str]) -> tuple[float, float, str]:
    """Run ``command``; returns (wall seconds, its peak RSS in MB, its stdout).

    The command runs under a tiny Python wrapper whose only child it is, so
    the wrapper's RUSAGE_CHILDREN peak is that process's peak alone.
    """
    wrapper = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter(); p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "s = time.perf_counter() - t\n"
        "sys.stderr.write(p.stderr); sys.stdout.write(p.stdout)\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "print(f'@@measure {s} {rss}'); sys.exit(p.returncode)\n"
    )
    proc = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed:\n{proc.stderr[-2000:]}")
    lines = proc.stdout.splitlines()
    tag = [line for line in lines if line.startswith("@@measure ")][-1].split()
    return float(tag[1]), float(tag[2]), "\n".join(line for line in lines if not line.startswith("@@measure "))


def nnscratch_run(data: Path, epochs: int) -> dict:
    """``nnscratch train --preset seed`` as a whole process."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        command = [sys.executable, "-m", "nnscratch", "train", "--preset", "seed", "--data", str(data),
                   "--seed", "0", "--epochs", str(epochs), "--out", str(out)]
        seconds, rss, _ = measured(command)
        metrics = json.loads((out / "metrics.json").read_text())
    return {"process_seconds": seconds, "peak_rss_mb": rss, "train_seconds": metrics["train_seconds"],
            "train_accuracy": metrics["train_accuracy"], "test_accuracy": metrics["test_accuracy"]}


def torch_run(data: Path, epochs: int) -> dict:
    """This file with ``--worker torch`` as a whole process."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "torch", "--data", str(data),
               "--epochs", str(epochs)]
    seconds, rss, out = measured(command)
    result = json.loads(out.strip().splitlines()[-1])
    return {"process_seconds": seconds, "peak_rss_mb": rss, **result}


# --------------------------------------------------------------------------- #
# The same math in PyTorch (run in its own process by --worker torch)
# --------------------------------------------------------------------------- #
def torch_worker(data: Path, epochs: int, seed: int = 0) -> None:
    """Train the seed network with PyTorch autograd; print a JSON line of results."""
    import torch

    from nnscratch.files.data import load_csv

    table = load_csv(data)
    X = torch.from_numpy(table.images.astype(np.float32))
    y = torch.from_numpy(table.labels.astype(np.int64))
    X_train, y_train, X_test, y_test = X[:TRAIN_ROWS], y[:TRAIN_ROWS], X[TRAIN_ROWS:], y[TRAIN_ROWS:]
    torch.manual_seed(seed)
    sizes = [784, 16, 16, 10]
    # the blog's init: every weight and bias uniform in [-0.5, 0.5)
    params = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        params += [(torch.rand(n_in, n_out) - 0.5).requires_grad_(), (torch.rand(n_out) - 0.5).requires_grad_()]

    def forward(x):
        W1, b1, W2, b2, W3, b3 = params
        return torch.sigmoid(torch.sigmoid(x @ W1 + b1) @ W2 + b2) @ W3 + b3

    start = time.perf_counter()
    for _ in range(epochs):
        logits = forward(X_train)
        loss = torch.nn.functional.cross_entropy(logits, y_train)  # mean over the batch
        loss.backward()
        with torch.no_grad():
            accuracy = (logits.argmax(dim=1) == y_train).float().mean().item()  # as nnscratch records
            cost = loss.item()
            for p in params:
                p -= LR * p.grad
                p.grad = None
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        train_acc = (forward(X_train).argmax(dim=1) == y_train).float().mean().item()
        test_acc = (forward(X_test).argmax(dim=1) == y_test).float().mean().item()
    print(json.dumps({"train_seconds": train_seconds, "train_accuracy": train_acc, "test_accuracy": test_acc,
                      "final_cost": cost, "last_epoch_accuracy": accuracy, "threads": torch.get_num_threads(),
                      "torch": torch.__version__}))


# --------------------------------------------------------------------------- #
# What each step of the fast path buys (run in its own process by --worker steps)
# --------------------------------------------------------------------------- #
STEPS = [  # (what, FullBatchStep keyword arguments; None = the plain layers)
    ("plain layers (the whole batch through each layer)", None),
    ("fused, all 784 pixels, one block",
     {"block_rows": TRAIN_ROWS, "first_layer": False, "blas_threads": None, "workers": 1}),
    ("fused, inked pixels (without Numba: live columns), one block",
     {"block_rows": TRAIN_ROWS, "blas_threads": None, "workers": 1, "compiled": False}),
    ("fused, inked pixels, blocks of 2048 rows", {"blas_threads": None, "workers": 1, "compiled": False}),
    ("... one worker per core, BLAS 1 thread", {"compiled": False}),
    ("... each block in one compiled call (default)", {}),
]


def steps_worker(data: Path, epochs: int, variant: int) -> None:
    """ms per epoch (median) of one variant of the full-batch step, alone in this process.

    One process per variant: OpenBLAS's idle threads keep spinning for a while
    after a multi-threaded product, which would slow whatever runs next.
    """
    from nnscratch import mlp
    from nnscratch.core.fast import FullBatchStep
    from nnscratch.core.training import TrainConfig, Trainer
    from nnscratch.files.data import load_csv

    table = load_csv(data)
    network = mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    inputs = table.images[:TRAIN_ROWS]
    labels = table.labels[:TRAIN_ROWS].astype(np.intp)
    options = STEPS[variant][1]
    if options is None:
        trainer = Trainer(network, inputs, labels, TrainConfig(optimizer="gd"), fast=False)
        step = lambda: trainer.loss_and_gradients(inputs, labels)  # noqa: E731
    else:
        step = FullBatchStep(network, inputs, labels, **options).loss_and_gradients
    times = []
    for _ in range(epochs + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    print(json.dumps({"ms_per_epoch": 1000 * float(np.median(times[1:]))}))


# --------------------------------------------------------------------------- #
# The blog's loop: one digit at a time
# --------------------------------------------------------------------------- #
def blog_worker(data: Path, epochs: int, seed: int = 0) -> None:
    """Time the blog's per-sample loop, alternating with nnscratch's fast step.

    Each blog epoch is followed by ten epochs of the fast step, in this same
    process, so the speed-up is measured under the same machine load. Prints
    a JSON line: seconds per epoch of each.
    """
    from nnscratch import mlp
    from nnscratch.core.fast import FullBatchStep
    from nnscratch.files.data import load_csv

    table = load_csv(data)
    X, Y = table.images[:TRAIN_ROWS], table.labels[:TRAIN_ROWS].astype(np.intp)
    fast = FullBatchStep(mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=seed, input_scale=1.0), X, Y)
    blog_epoch = blog_loop(X.astype(np.float64), Y, seed)
    blog_times, fast_times = [], []
    for _ in range(epochs):
        start = time.perf_counter()
        next(blog_epoch)
        blog_times.append(time.perf_counter() - start)
        for _ in range(10):
            start = time.perf_counter()
            fast.loss_and_gradients()
            fast_times.append(time.perf_counter() - start)
    print(json.dumps({"blog_seconds_per_epoch": float(np.mean(blog_times)),
                      "fast_seconds_per_epoch": float(np.median(fast_times))}))


def blog_loop(X: np.ndarray, Y: np.ndarray, seed: int = 0):
    """Full-batch GD done one sample at a time, as in the blog; yields after each epoch.

    Column vectors, float64, gradients summed over the digits in a Python
    loop and divided by m before the step. The sigmoid uses the same tanh
    form as nnscratch so raw pixels print no overflow warnings.
    """
    rng = np.random.default_rng(seed)
    sizes = [784, 16, 16, 10]
    W = [rng.random((n_out, n_in)) - 0.5 for n_in, n_out in zip(sizes, sizes[1:])]
    b = [rng.random((n_out, 1)) - 0.5 for n_out in sizes[1:]]

    def sigmoid(z):
        return 0.5 * (1 + np.tanh(0.5 * z))

    m = len(X)
    while True:
        dW = [np.zeros_like(w) for w in W]
        db = [np.zeros_like(v) for v in b]
        for i in range(m):
            a0 = X[i].reshape(-1, 1)
            a1 = sigmoid(W[0] @ a0 + b[0])
            a2 = sigmoid(W[1] @ a1 + b[1])
            z3 = W[2] @ a2 + b[2]
            e = np.exp(z3 - z3.max())
            d3 = e / e.sum()  # softmax, then minus the one-hot label: dCost/dz3
            d3[Y[i]] -= 1
            d2 = (W[2].T @ d3) * a2 * (1 - a2)
            d1 = (W[1].T @ d2) * a1 * (1 - a1)
            for k, (d, a) in enumerate(((d1, a0), (d2, a1), (d3, a2))):
                dW[k] += d @ a.T
                db[k] += d
        for k in range(3):
            W[k] -= LR * dW[k] / m
            b[k] -= LR * db[k] / m
        yield


# --------------------------------------------------------------------------- #
def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the Kaggle-style 42000-row CSV")
    parser.add_argument("--epochs", type=int, default=500, help="epochs for nnscratch and PyTorch (blog: 500)")
    parser.add_argument("--blog-epochs", type=int, default=2, help="epochs of the blog's loop to time (0: skip)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="alternate nnscratch and PyTorch runs N times; report medians")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    parser.add_argument("--threads", type=int, help="BLAS/OpenMP threads for every process (default: theirs)")
    parser.add_argument("--steps", type=int, default=20,
                        help="epochs to time each step of the fast path in-process (0: skip)")
    parser.add_argument("--worker", choices=["torch", "steps", "blog"], help=argparse.SUPPRESS)
    parser.add_argument("--variant", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not args.data.exists():
        parser.exit(2, f"{args.data}: no such file (pass --data, the digits CSV)\n")
    if args.threads:
        for name in THREAD_VARIABLES:
            os.environ[name] = str(args.threads)  # inherited by every process started below
    if args.worker == "torch":
        return torch_worker(args.data, args.epochs)
    if args.worker == "steps":
        return steps_worker(args.data, args.epochs, args.variant)
    if args.worker == "blog":
        return blog_worker(args.data, args.epochs)
    try:
        import torch  # noqa: F401
    except ImportError:
        parser.exit(2, "PyTorch is not installed: pip install -e '.[bench]'\n")

    env = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", *THREAD_VARIABLES)
           if k in os.environ}
    print(f"seed preset, {args.epochs} epochs, {args.data}; environment {env or 'no BLAS variables set'}; "
          f"{os.cpu_count()} cores", flush=True)
    ours, theirs, loads = [], [], [os.getloadavg()[0]]
    for i in range(args.repeat):  # alternate, so both see the same machine load
        ours.append(nnscratch_run(args.data, args.epochs))
        theirs.append(torch_run(args.data, args.epochs))
        loads.append(os.getloadavg()[0])
        print(f"  run {i + 1}: nnscratch loop {ours[-1]['train_seconds']:.2f} s, process "
              f"{ours[-1]['process_seconds']:.2f} s | torch loop {theirs[-1]['train_seconds']:.2f} s, process "
              f"{theirs[-1]['process_seconds']:.2f} s", flush=True)
    median = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
    ours_loop, theirs_loop = median(ours, "train_seconds"), median(theirs, "train_seconds")
    ours_proc, theirs_proc = median(ours, "process_seconds"), median(theirs, "process_seconds")
    blog = None
    if args.blog_epochs:
        command = [sys.executable, str(Path(__file__).resolve()), "--worker", "blog", "--data", str(args.data),
                   "--epochs", str(args.blog_epochs)]
        blog = json.loads(measured(command)[2].strip().splitlines()[-1])

    ms = lambda seconds: 1000 * seconds / args.epochs  # noqa: E731
    figures = {
        "epochs": args.epochs,
        "nnscratch_ms_per_epoch": ms(ours_loop),
        "torch_ms_per_epoch": ms(theirs_loop),
        "blog_loop_ms_per_epoch": None if blog is None else 1000 * blog["blog_seconds_per_epoch"],
        "nnscratch_process_seconds": ours_proc,
        "torch_process_seconds": theirs_proc,
        "loop_ratio_nnscratch_over_torch": ours_loop / theirs_loop,
        "process_ratio_nnscratch_over_torch": ours_proc / theirs_proc,
        "speedup_over_blog_loop": None if blog is None else
        blog["blog_seconds_per_epoch"] / blog["fast_seconds_per_epoch"],
        "nnscratch_peak_rss_mb": max(r["peak_rss_mb"] for r in ours),
        "torch_peak_rss_mb": max(r["peak_rss_mb"] for r in theirs),
        "nnscratch_accuracy": [ours[-1]["train_accuracy"], ours[-1]["test_accuracy"]],
        "torch_accuracy": [theirs[-1]["train_accuracy"], theirs[-1]["test_accuracy"]],
        "environment": env,
        "load_average_1min": [min(loads), max(loads)],
    }
    print(f"\nmedians of {args.repeat}; 1-min load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores")
    print(f"{'':26s}{'ms/epoch':>10s}{'process s':>11s}{'peak MB':>9s}{'train %':>9s}{'test %':>8s}")
    for name, loop, proc, runs in (("nnscratch (fast step)", ours_loop, ours_proc, ours),
                                   ("PyTorch 2.13 CPU", theirs_loop, theirs_proc, theirs)):
        print(f"{name:26s}{ms(loop):10.1f}{proc:11.2f}{max(r['peak_rss_mb'] for r in runs):9.0f}"
              f"{100 * runs[-1]['train_accuracy']:9.2f}{100 * runs[-1]['test_accuracy']:8.2f}")
    if blog is not None:
        print(f"{'blog per-sample loop':26s}{1000 * blog['blog_seconds_per_epoch']:10.1f}   "
              f"({args.blog_epochs} epochs timed, each next to 10 epochs of the fast step: "
              f"{1000 * blog['fast_seconds_per_epoch']:.1f} ms)")
    print(f"\nnnscratch / PyTorch, training loop: {figures['loop_ratio_nnscratch_over_torch']:.2f}x"
          f"   whole process: {figures['process_ratio_nnscratch_over_torch']:.2f}x")
    if blog is not None:
        print(f"nnscratch's fast step is {figures['speedup_over_blog_loop']:.0f}x faster per epoch than the "
              "blog's loop (measured side by side)")
    if args.steps:
        figures["steps_ms_per_epoch"] = {}
        for variant, (what, _) in enumerate(STEPS):
            command = [sys.executable, str(Path(__file__).resolve()), "--worker", "steps", "--data",
                       str(args.data), "--epochs", str(args.steps), "--variant", str(variant)]
            out = measured(command)[2]
            figures["steps_ms_per_epoch"][what] = json.loads(out.strip().splitlines()[-1])["ms_per_epoch"]
        print(f"\nwhat each step buys (median of {args.steps} epochs, each variant in its own process):")
        for name, value in figures["steps_ms_per_epoch"].items():
            print(f"  {name:62s}{value:8.1f} ms/epoch")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
