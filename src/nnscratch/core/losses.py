"""The loss: how wrong is the network?

The output layer turns 10 scores ("logits") into probabilities with softmax,
and the cost is the categorical cross-entropy: the average over the batch of
``-log(probability given to the right digit)``.

Softmax and cross-entropy are computed together because their combined
gradient is beautifully simple, ``(p - onehot(y)) / m``, and because doing
them together lets us work with log-probabilities, which never overflow.
"""
from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities ``exp(z_k) / sum_j exp(z_j)`` for each row of ``logits``.

    Subtracting the row's maximum first changes nothing mathematically (it
    cancels in the fraction) but keeps every ``exp`` at most 1, so it cannot
    overflow however large the scores get.
    """
    z = logits - logits.max(axis=1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=1, keepdims=True)
    return z


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray, scale: float | None = None):
    """Mean cross-entropy of ``softmax(logits)`` against integer ``labels``.

    Returns ``(cost, grad, probabilities)`` where ``grad`` is dCost/dLogits:
    ``(softmax(logits) - onehot(labels)) * scale``. ``scale`` defaults to
    ``1 / m`` (the mean over the batch of m digits); the blog's full-batch
    gradient descent sums the gradients and divides by m, which is the same.
    """
    m = len(labels)
    scale = 1.0 / m if scale is None else scale
    rows = np.arange(m)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    # log p(correct) = shifted_correct - log(sum exp(shifted)): no log(0) possible.
    log_p_correct = shifted[rows, labels] - np.log(total[:, 0])
    cost = float(-log_p_correct.mean(dtype=np.float64))
    probabilities = exp
    probabilities /= total
    grad = probabilities * np.asarray(scale, probabilities.dtype)
    grad[rows, labels] -= np.asarray(scale, grad.dtype)  # the onehot(labels) part, scaled alike
    return cost, grad, probabilities


def l2_penalty(weights: list[np.ndarray], l2: float) -> float:
    """``l2 / 2 * sum of squared weights``: the cost of large weights (biases excluded)."""
    if not l2:
        return 0.0
    return 0.5 * l2 * float(sum(np.vdot(w, w) for w in weights))
