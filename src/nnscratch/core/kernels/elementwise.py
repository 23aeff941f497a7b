"""Compiled loops for elementwise layers on large arrays (a convolution's feature maps).

NumPy's ReLU backward, ``grad * (y > 0)``, walks memory twice (the
comparison makes an array of its own); these loops walk it once. Same
results bit for bit, NaN and infinities included (``tests/test_kernels_conv.py``).
"""
from __future__ import annotations

import numpy as np

from . import enabled, jit

BIG = 1 << 16  # numbers from which the loops below pay (smaller arrays stay with NumPy)


def applies(x: np.ndarray, *partners: np.ndarray) -> bool:
    """Can the loops below take ``x`` and its ``partners`` as flat arrays in memory order?

    Yes with the kernels on, for a large float32 or float64 ``x`` whose
    partners lie in memory the same way (same strides, same type; an array
    with gaps in memory has other strides than a fresh one, so it is left to
    NumPy). Importing this module does not import Numba; calling a loop does.
    """
    return (x.size >= BIG and x.dtype in (np.float32, np.float64) and enabled()
            and all(a.strides == x.strides and a.dtype == x.dtype for a in partners))


@jit
def relu(x, y):
    """``y = max(x, 0)`` for flat arrays, NaN kept (as ``np.maximum``)."""
    zero = x.dtype.type(0)
    for i in range(x.size):
        y[i] = x[i] if not x[i] <= zero else zero


@jit
def relu_backward(grad, y, out):
    """``out = grad * (y > 0)`` for flat arrays: ``grad`` where the output ``y`` was positive, else 0 * grad."""
    one, zero = grad.dtype.type(1), grad.dtype.type(0)
    for i in range(grad.size):
        out[i] = grad[i] * (one if y[i] > zero else zero)  # 0 * NaN is NaN, as in NumPy
