"""Bilinear sampling of distorted digits in one pass.

:func:`nnscratch.core.augment.sample_bilinear` reads each output pixel's
grey level off the original at a fractional position, with NumPy lines that
each walk through all the pixels of a chunk of digits: clip, floor, index,
four gathers, three blends. Here one loop does all of it for one pixel at a
time, with the same float32 arithmetic in the same order, so the distorted
digits are bit for bit the same (and so are the weights of a seeded run).
The chunk's digits are shared between the cores.
"""
from __future__ import annotations

import numpy as np

from ..parallel import in_parallel
from . import jit

SIDE = 28


@jit
def _sample(images, rows, cols, out, last, first_digit, stop_digit):
    """``out[n, p]`` = ``images[n]`` read at (``rows[n, p]``, ``cols[n, p]``), for digits ``first..stop-1``.

    Positions are first brought into [-1, ``last``] (as the NumPy code
    does: beyond that all four neighbours are paper); a neighbour outside
    the 28x28 square reads 0.
    """
    for n in range(first_digit, stop_digit):
        for p in range(SIDE * SIDE):
            r, c = rows[n, p], cols[n, p]
            # into [-1, last]; a NaN fails both tests and reads paper (never a stray index)
            r = min(r, last) if r >= -1 else np.float32(-1)
            c = min(c, last) if c >= -1 else np.float32(-1)
            top, left = np.floor(r), np.floor(c)
            fr, fc = r - top, c - left
            i, j = int(top), int(left)
            top_left = images[n, i * SIDE + j] if i >= 0 and j >= 0 else np.float32(0)
            top_right = images[n, i * SIDE + j + 1] if i >= 0 and j + 1 < SIDE else np.float32(0)
            bottom_left = images[n, (i + 1) * SIDE + j] if i + 1 < SIDE and j >= 0 else np.float32(0)
            bottom_right = images[n, (i + 1) * SIDE + j + 1] if i + 1 < SIDE and j + 1 < SIDE else np.float32(0)
            upper = np.float32(top_left) + (np.float32(top_right) - np.float32(top_left)) * fc
            lower = np.float32(bottom_left) + (np.float32(bottom_right) - np.float32(bottom_left)) * fc
            out[n, p] = upper + (lower - upper) * fr


def sample_bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray, last: float) -> np.ndarray:
    """Grey levels of ``images`` (n, 784) at ``rows``, ``cols`` (n, 28, 28): float32 (n, 784)."""
    n = len(images)
    out = np.empty((n, SIDE * SIDE), np.float32)
    flat_rows, flat_cols = rows.reshape(n, -1), cols.reshape(n, -1)
    in_parallel(lambda part: _sample(images, flat_rows, flat_cols, out, np.float32(last), part.start, part.stop),
                n, 12 * SIDE * SIDE)  # per digit: two float32 positions and a float32 grey level per pixel
    return out
