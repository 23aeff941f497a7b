"""How the pieces of nnscratch's convolution were chosen: each alternative timed side by side.

For the two convolutions of the benchmark CNN on a batch of 128 (conv1: 1 -> 32
channels on 28x28, conv2: 32 -> 64 on 12x12, both 5x5) it times:

* **im2col**, making the column matrix: k*k shifted-slice copies; one copy of
  ``sliding_window_view`` as it comes (axes N, Ho, Wo, C, k, k); one copy of
  the window view with the channels put last (nnscratch);
* **col2im**, adding the windows' gradients back onto the pixels:
  ``np.add.at``; k*k shifted-slice additions over the whole batch; the same in
  chunks of 8 samples, each chunk's gradient product made just before (so it
  is still in the cache), product included (nnscratch);
* **the products** with rows of 800 and 801 numbers (a bias column of ones);
* **max pooling's argmax**: a masked copy vs the running ``maximum`` (nnscratch).

The variants of one piece are timed in turns (round robin), so a change in
the machine's load hits them alike; each figure is the median of ``--repeat``.
BLAS is limited to one thread here: these are the pieces of one worker.

    python bench/cnn_pieces.py [--repeat 15]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from threadpoolctl import threadpool_limits

from nnscratch.core.conv import col2im, im2col

N, K = 128, 5
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
        "window view, channels last, one copy (nnscratch)": lambda: im2col(xh, K, cols),
    }


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

    def chunked():
        dx = np.zeros(shape, g.dtype)
        per = ho * wo
        for s in range(0, n, 8):
            col2im(g[s * per:(s + 8) * per] @ kernel.T, dx[s:s + 8], K)

    return {"np.add.at": add_at, "k*k slice additions, whole batch": whole,
            "k*k slice additions, 8 samples at a time (nnscratch)": chunked}


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

    return {"masked copies (np.copyto where=)": masked, "running maximum (nnscratch)": running_max}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
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


if __name__ == "__main__":
    main()
