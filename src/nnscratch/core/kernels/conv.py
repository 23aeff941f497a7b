"""Compiled loops for the convolutional layers (core/conv.py): window copies and max pooling.

The NumPy code in core/conv.py makes these steps out of whole-array
operations, and each operation is one more walk through memory: col2im is
k*k slice additions, max pooling's argmax a comparison, a product and a
maximum per entry of the block, its backward a product per entry. A loop
here walks once, and moves a pixel's C channels as one short run.

Every array is channels last (batch, height, width, channels), as inside the
layers, and every function works on whatever samples it is given, so the
layers hand each core its own part of the batch (core/parallel.py).
"""
from __future__ import annotations

import numpy as np

from . import jit


def im2col(xh, k, out):
    """As conv.im2col: the k x k windows of ``xh`` (N, H, W, C) as rows of ``out`` (N, Ho, Wo, k*k*C).

    Seen as (N, H, W*C), a window's row of k pixels times C channels is one
    contiguous run of k*C numbers, in ``xh`` and in ``out`` alike.
    """
    n, h, w, c = xh.shape
    _copy_windows(np.ascontiguousarray(xh).reshape(n, h, w * c), k, c, out)


@jit
def _copy_windows(rows, k, c, out):
    """The loop of :func:`im2col`, on images whose rows are (W*C) runs."""
    n, h, _ = rows.shape
    _, ho, wo, _ = out.shape
    run = k * c
    for m in range(n):
        for i in range(ho):
            for j in range(wo):
                for a in range(k):
                    for t in range(run):
                        out[m, i, j, a * run + t] = rows[m, i + a, j * c + t]


@jit
def col2im(dcols, dx, k):
    """As conv.col2im: add each window's gradient (the rows of ``dcols``, one per window in
    (N, Ho, Wo) order) onto its pixels in ``dx`` (N, H, W, C)."""
    n, h, w, c = dx.shape
    ho, wo = h - k + 1, w - k + 1
    # Offsets (a, b) outermost, as the NumPy code adds its k*k slices: every pixel then gets its
    # windows' entries in the same order, so the sums are the same to the last bit.
    for m in range(n):
        for a in range(k):
            for b in range(k):
                start = (a * k + b) * c
                for i in range(ho):
                    for j in range(wo):
                        window = dcols[(m * ho + i) * wo + j]
                        for t in range(c):
                            dx[m, i + a, j + b, t] += window[start + t]


@jit
def max_pool(x, s, y, where):
    """The max of each s x s block of ``x`` (N, H, W, C) into ``y`` (N, Ho, Wo, C), and in ``where``
    its place in the block (a * s + b for row a, column b), the first in reading order on ties.

    The running max and its place are chosen without a branch (``v if gt else
    best``): on real feature maps a branch guesses wrong half the time, and
    this loop was 2-3x faster than the one with an ``if``. (With the channels
    innermost, to run 8 at a time, it was 2-3x slower: the running max then
    lives in memory, not in a register.)
    """
    n, ho, wo, c = y.shape
    for m in range(n):
        for i in range(ho):
            for j in range(wo):
                for t in range(c):
                    best, place = x[m, i * s, j * s, t], 0
                    for a in range(s):
                        for b in range(s):
                            v = x[m, i * s + a, j * s + b, t]
                            gt = v > best  # strictly: an equal later value loses
                            place = a * s + b if gt else place
                            best = v if gt else best
                    y[m, i, j, t] = best
                    where[m, i, j, t] = place


@jit
def max_pool_backward(grad, where, s, dx):
    """The adjoint of :func:`max_pool`: each block of ``dx`` gets ``grad`` at the max's place, 0 elsewhere.

    Writes every entry of the blocks (rows and columns left over are the caller's).
    """
    n, ho, wo, c = grad.shape
    for m in range(n):
        for i in range(ho):
            for j in range(wo):
                for a in range(s):
                    for b in range(s):
                        place = np.uint8(a * s + b)
                        for t in range(c):
                            hit = where[m, i, j, t] == place
                            dx[m, i * s + a, j * s + b, t] = grad[m, i, j, t] if hit else 0

