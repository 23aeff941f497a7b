"""How the pieces of nnscratch's convolution were chosen: each alternative timed side by side.

For the two convolutions of the benchmark CNN on a batch of 128 (conv1: 1 -> 32
channels on 28x28, conv2: 32 -> 64 on 12x12, both 5x5) it times:

* **im2col**, making the column matrix: k*k shifted-slice copies; one copy of
  ``sliding_window_view`` as it comes (axes N, Ho, Wo, C, k, k); one copy of
  the window view with the channels put last (nnscratch's NumPy code); the
  compiled loop (core/kernels/conv.py, nnscratch when Numba is installed);
* **col2im**, adding the windows' gradients back onto the pixels:
  ``np.add.at``; k*k shifted-slice additions over the whole batch; the same in
  chunks of 8 samples, each chunk's gradient product made just before (so it
  is still in the cache), product included (NumPy code); the compiled loop
  in the same chunks;
* **the products** with rows of 800 and 801 numbers (a bias column of ones);
* **max pooling's argmax**: a masked copy vs the running ``maximum`` (NumPy
  code); and the whole MaxPool2D layer, forward and backward, with its NumPy
  code and with the compiled loop.

The variants of one piece are timed in turns (round robin), so a change in
the machine's load hits them alike; each figure is the median of ``--repeat``.
BLAS is limited to one thread here: these are the pieces of one worker.

``--steps N`` times instead whole training steps of the benchmark CNN (forward,
loss, backward, Adam; batches of 128) for each way of sharing the work
between the cores, with and without the compiled loops (:data:`STEP_VARIANTS`), and PyTorch's step on its default
threads: each in its own process, the processes in turns ``--repeat`` times,
the median ms per step of each, and its ratio to PyTorch's.

    python bench/cnn_pieces.py [--repeat 15]
    python bench/cnn_pieces.py --steps 40 [--repeat 3]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from nnscratch.core import parallel
from nnscratch.core.conv import col2im, im2col

N, K = 128, 5
STEP_VARIANTS = {  # name: (threads sharing a batch, 0 for BLAS's own; chunk kB, 0 for none; compiled
    # kernels) or "torch"
    "BLAS's own threads, whole-batch products": (0, 0, False),
    "BLAS's own threads, chunks": (0, None, False),
    "one thread, chunks": (1, None, False),
    "two threads (BLAS on one each), no chunks": (2, 0, False),
    "two threads, chunks, NumPy only": (None, None, False),
    "two threads, chunks, compiled loops (nnscratch)": (None, None, True),
    "PyTorch 2.13, default threads": "torch",
}
SHAPES = {"conv1": (1, 28, 32), "conv2": (32, 12, 64)}  # in channels, input side, out channels


def race(variants: dict, repeat: int) -> dict:
    """Median ms of each variant, timed in turns."""
    times = {name: [] for name in variants}
    for f in variants.values():
        f()  # warm up: first-touch page faults, BLAS start-up
    for _ in range(repeat):
        for name, f in variants.items():
            start = time.perf_counter()
            f()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}


def im2col_variants(xh, cols):
    _, h, w, _ = xh.shape
    ho, wo = h - K + 1, w - K + 1

    def shifted():
        for a in range(K):
            for b in range(K):
                cols[:, :, :, a, b, :] = xh[:, a:a + ho, b:b + wo, :]

    return {
        "k*k shifted-slice copies": shifted,
        "sliding_window_view, copied as it comes": lambda: np.ascontiguousarray(
            sliding_window_view(xh, (K, K), axis=(1, 2))),
        "window view, channels last, one copy": lambda: im2col(xh, K, cols),
        **compiled_variant("compiled loop (nnscratch)",
                           lambda fast: fast.im2col(xh, K, cols.reshape(len(xh), ho, wo, -1))),
    }


def compiled_variant(name: str, run) -> dict:
    """``{name: run(core.kernels.conv)}`` if the compiled kernels are on (Numba installed), else nothing."""
    from nnscratch.core import kernels

    if not kernels.enabled():
        return {}
    from nnscratch.core.kernels import conv as fast

    return {name: lambda: run(fast)}


def col2im_variants(g, kernel, shape):
    n, h, w, c = shape
    ho, wo = h - K + 1, w - K + 1
    # where entry (n, i, j, a, b, ch) of the windows' gradient goes: pixel (n, i + a, j + b, ch)
    index = (np.arange(n)[:, None, None, None, None, None],
             np.arange(ho)[:, None, None, None, None] + np.arange(K)[:, None, None],
             np.arange(wo)[:, None, None, None] + np.arange(K)[:, None], np.arange(c))

    def add_at():
        dx = np.zeros(shape, g.dtype)
        np.add.at(dx, index, (g @ kernel.T).reshape(n, ho, wo, K, K, c))

    def whole():
        dx = np.zeros(shape, g.dtype)
        col2im(g @ kernel.T, dx, K)

    def chunked(add=col2im):
        dx = np.zeros(shape, g.dtype)
        per = ho * wo
        for s in range(0, n, 8):
            add(g[s * per:(s + 8) * per] @ kernel.T, dx[s:s + 8], K)

    return {"np.add.at": add_at, "k*k slice additions, whole batch": whole,
            "k*k slice additions, 8 samples at a time": chunked,
            **compiled_variant("compiled loop, 8 samples at a time (nnscratch)", lambda fast: chunked(fast.col2im))}


def product_variants(rng, width, g):
    x, kernel = rng.random((len(g), width), dtype=np.float32), rng.random((width, g.shape[1]), dtype=np.float32)
    return {f"X K, rows of {width}": lambda: x @ kernel, f"X^T dY, rows of {width}": lambda: x.T @ g}


def argmax_variants(x):
    n, h, w, c = x.shape
    blocks = x.reshape(n, h // 2, 2, w // 2, 2, c)
    first, second = blocks[:, :, :, :, 0], blocks[:, :, :, :, 1]

    def masked():
        best, where = first.copy(), np.zeros(first.shape, np.uint8)
        better = second > best
        np.copyto(where, 1, where=better)
        np.copyto(best, second, where=better)

    def running_max():
        where = np.zeros(first.shape, np.uint8)
        better = np.greater(second, first).view(np.uint8)
        np.maximum(where, better, out=where)
        np.maximum(first, second)

    return {"masked copies (np.copyto where=)": masked, "running maximum": running_max}


def pooling_variants(x):
    """Max pooling 2x2 with its argmax, forward and backward: the NumPy two steps, the compiled loop."""
    from nnscratch.core.conv import MaxPool2D

    pool, nchw = MaxPool2D(2), x.transpose(0, 3, 1, 2)
    grad = np.ones((len(x), x.shape[3], x.shape[1] // 2, x.shape[2] // 2), x.dtype)
    pool.forward(nchw)  # (threads: the layer shares the batch as in training)

    def both():
        pool.forward(nchw)
        pool.backward(grad)

    def switched(on: bool):
        from nnscratch.core import kernels

        os.environ["NNSCRATCH_KERNELS"] = "" if on else "numpy"
        kernels.enabled.cache_clear()
        both()

    return {"two steps of running maxima, forward + backward": lambda: switched(False),
            **compiled_variant("compiled loop, forward + backward (nnscratch)", lambda _: switched(True))}


def step_worker(variant: str, batches: int) -> None:
    """Median ms of ``batches`` training steps (after 20 to warm up) of one variant; prints JSON."""
    sys.path.insert(0, str(Path(__file__).parent))
    import cnn

    X, y, _, _ = cnn.load(cnn.DEFAULT_DATA)
    rng = np.random.default_rng(0)
    how = STEP_VARIANTS[variant]
    if how == "torch":
        step = torch_step(cnn)
    else:
        workers, chunk_kb, compiled = how
        if not compiled:
            from nnscratch.core import kernels

            os.environ["NNSCRATCH_KERNELS"] = "numpy"
            kernels.enabled.cache_clear()
        parallel.WORKERS = parallel.WORKERS if workers is None else workers
        parallel.CHUNK_BYTES = parallel.CHUNK_BYTES if chunk_kb is None else (chunk_kb * 1024 or 1 << 40)
        threadpool_limits(None if workers == 0 else 1, user_api="blas")  # as bench/cnn.py's loop
        step = nnscratch_step(cnn, rng)
    times = []
    for i in range(batches + 20):
        rows = rng.choice(len(X), N, replace=False)
        start = time.perf_counter()
        step(X[rows], y[rows])
        if i >= 20:
            times.append(time.perf_counter() - start)
    print(json.dumps({"ms_per_step": 1000 * statistics.median(times)}))


def nnscratch_step(cnn, rng):
    from nnscratch.core.losses import softmax_cross_entropy
    from nnscratch.core.optimizers import Adam

    layers, optimizer = cnn.benchmark_cnn(rng), Adam(cnn.LR)
    params, grads = cnn.params_and_grads(layers)

    def step(x, labels):
        for layer in layers:
            x = layer(x)
        _, grad, _ = softmax_cross_entropy(x, labels)
        for layer in reversed(layers):
            grad = layer.backward(grad)
        optimizer.step(params, grads)

    return step


def torch_step(cnn):
    import torch

    model = cnn.torch_cnn()
    optimizer, loss_fn = torch.optim.Adam(model.parameters(), lr=cnn.LR), torch.nn.CrossEntropyLoss()

    def step(x, labels):
        optimizer.zero_grad(set_to_none=True)
        loss_fn(model(torch.from_numpy(x)), torch.from_numpy(labels)).backward()
        optimizer.step()

    return step


def steps(batches: int, repeat: int) -> None:
    """Each variant's step in its own process, in turns; medians and ratios to PyTorch."""
    loads, ms = [os.getloadavg()[0]], {name: [] for name in STEP_VARIANTS}
    for _ in range(repeat):
        for name in STEP_VARIANTS:
            done = subprocess.run([sys.executable, __file__, "--step-worker", name, "--steps", str(batches)],
                                  check=True, stdout=subprocess.PIPE, text=True)
            ms[name].append(json.loads(done.stdout.strip().splitlines()[-1])["ms_per_step"])
            loads.append(os.getloadavg()[0])
    torch_ms = statistics.median(ms["PyTorch 2.13, default threads"])
    print(f"ms per training step of the benchmark CNN (batch {N}), median of {batches} steps x {repeat} "
          f"processes; 1-min load {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores:")
    for name, runs in ms.items():
        print(f"  {name:58s}{statistics.median(runs):7.1f}   {statistics.median(runs) / torch_ms:5.2f}x PyTorch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--steps", type=int, default=0, help="time N whole training steps of each variant instead")
    parser.add_argument("--step-worker", choices=STEP_VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.step_worker:
        return step_worker(args.step_worker, args.steps)
    if args.steps:
        return steps(args.steps, args.repeat)
    rng = np.random.default_rng(0)
    print(f"ms per batch of {N}, BLAS on 1 thread, median of {args.repeat}; "
          f"1-min load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    with threadpool_limits(1, user_api="blas"):
        for name, (c, side, out) in SHAPES.items():
            ho = side - K + 1
            xh = rng.random((N, side, side, c), dtype=np.float32)
            cols = np.empty((N, ho, ho, K, K, c), np.float32)
            g = rng.random((N * ho * ho, out), dtype=np.float32)
            kernel = rng.random((K * K * c, out), dtype=np.float32)
            figures = race(im2col_variants(xh, cols), args.repeat)
            figures |= race(col2im_variants(g, kernel, xh.shape), max(3, args.repeat // 5))
            for width in (K * K * c, K * K * c + 1):
                figures |= race(product_variants(rng, width, g), args.repeat)
            print(f"\n{name} ({c} -> {out} channels, {side}x{side}, 5x5):")
            for what, ms in figures.items():
                print(f"  {what:55s}{ms:8.2f}")
        x = rng.normal(size=(N, 24, 24, 32)).astype(np.float32)
        print("\nmax pooling 2x2 of conv1's output, one of the two steps (over the columns):")
        for what, ms in race(argmax_variants(x), args.repeat).items():
            print(f"  {what:55s}{ms:8.2f}")
    print("\nmax pooling 2x2 of conv1's output, the layer on two threads (BLAS plays no part):")
    for what, ms in race(pooling_variants(x), args.repeat).items():
        print(f"  {what:55s}{ms:8.2f}")


if __name__ == "__main__":
    main()
