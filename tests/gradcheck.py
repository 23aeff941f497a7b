"""Finite differences, for checking backward passes: shared by the gradient tests of every layer."""
import numpy as np

H = 1e-6  # the nudge: small enough for the slope, large enough for float64's rounding


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``|a - b| / (|a| + |b|)`` over whole arrays: about 1e-9 when backward is right."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def numeric_gradient(cost, array: np.ndarray) -> np.ndarray:
    """Central differences ``(C(w + h) - C(w - h)) / 2h`` of ``cost()`` for each entry of ``array``.

    ``array`` is changed in place, one entry at a time, and restored.
    """
    grad = np.zeros_like(array)
    for index in np.ndindex(array.shape):
        saved = array[index]
        array[index] = saved + H
        up = cost()
        array[index] = saved - H
        down = cost()
        array[index] = saved
        grad[index] = (up - down) / (2 * H)
    return grad
