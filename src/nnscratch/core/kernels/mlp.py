"""A multilayer perceptron's forward and backward pass over a block of digits, in one compiled call.

For the full-batch step (:mod:`nnscratch.core.fast`) of a network made of
the input step, Dense layers and elementwise activations (sigmoid, tanh or
ReLU) between them, ending in softmax cross-entropy: the blog's network and
its kin. The math is the layers' own, line for line::

    forward   z_1 = x @ W_1 + b_1                x: the digits, scaled by the input step
              a_l = f(z_l),  z_l+1 = a_l @ W_l+1 + b_l+1
              p = softmax(z_L),  cost = -log p[label]
    backward  g_L = (p - onehot(label)) / m
              dW_l += a_l-1^T g_l,  db_l += sum of g_l over the rows
              g_l-1 = (g_l @ W_l^T) * f'(z_l-1), with f' written in terms of a_l-1 = f(z_l-1)
              dW_1 += x^T g_1

Why one call: the NumPy layers take about thirty calls per block, each a
short pass over memory with Python in between; with two threads sharing
the rows, the threads then wait for each other at Python's lock about as
long as they compute. One compiled call per block holds no lock. The
products use :mod:`.vector`'s instructions; the first layer's only over a
digit's inked pixels (kept by rows for ``x @ W_1`` and by columns for
``x^T g_1``: :class:`~nnscratch.core.kernels.sparse.SparseRows`).

What differs from the layers, up to rounding only: the sigmoid is
``1 / (1 + exp(-z))`` (the layer writes ``(1 + tanh(z/2)) / 2``, the same
number, because ``tanh`` is three times slower here than ``exp``; where
``exp`` is past float32's range it is infinite, and the sigmoid exactly 0),
tanh is ``1 - 2 / (1 + exp(2z))``, and the sums add in another order.
``tests/test_kernels_mlp.py`` checks cost, accuracy and every gradient
against the layers.
Imports Numba: import this module only when :func:`nnscratch.core.kernels.enabled`.
"""
from __future__ import annotations

import numpy as np
from numba.extending import register_jitable

from ..layers import Dense, ReLU, Rescale, Sigmoid, Tanh
from . import jit
from .vector import float_from_bits, gather

SIGMOID, TANH, RELU = 0, 1, 2  # the activations, by number (the compiled code takes numbers)
ACTIVATIONS = {Sigmoid: SIGMOID, Tanh: TANH, ReLU: RELU}
ROUND = np.float32(1.5 * 2**23)  # y + ROUND - ROUND rounds y to a whole number (|y| < 2**22), in float32


def activations(network) -> tuple[int, ...] | None:
    """The activations' numbers if :func:`block_pass` can run ``network``, else None.

    That is: the input step, then Dense layers with one of the activations
    between each two, all float32, and nothing else.
    """
    leaves = network.leaves()
    if len(leaves) < 2 or not isinstance(leaves[0], Rescale) or leaves[0].dtype != np.float32:
        return None
    dense, between = leaves[1::2], leaves[2::2]
    if len(dense) != len(between) + 1 or not all(
            type(d) is Dense and d.W.dtype == np.float32 and d.b.dtype == np.float32 and d.W.flags.c_contiguous
            and d.input_columns is None for d in dense):
        return None
    kinds = tuple(ACTIVATIONS.get(type(layer)) for layer in between)
    return None if None in kinds else kinds


@register_jitable
def _exp(x):
    """``e**x`` for float32, to about a unit in the last place, as code the compiler can run 8 at a time.

    The library's ``exp`` is a call the compiler cannot put in a vector; this
    is the classic recipe: ``e**x = 2**k * e**r`` with ``k`` the whole number
    nearest ``x / ln 2`` and ``|r| <= ln(2) / 2``; ``e**r`` from its Taylor-like
    polynomial (Cephes' coefficients), ``2**k`` written straight into a
    float's exponent bits. Past float32's range the answer is 0 or infinity
    (chosen without a branch, so the loop still runs 8 at a time).
    """
    if x > np.float32(88.3):
        return np.float32(np.inf)
    if x < np.float32(-87.3):
        return np.float32(0)
    k = x * np.float32(1.44269504) + ROUND - ROUND  # rounded to a whole number (floor() is a call)
    r = x - k * np.float32(0.693359375) + k * np.float32(2.12194440e-4)  # ln 2 in two parts: r stays exact
    p = np.float32(1.9875691500e-4) * r + np.float32(1.3981999507e-3)
    p = p * r + np.float32(8.3334519073e-3)
    p = p * r + np.float32(4.1665795894e-2)
    p = p * r + np.float32(1.6666665459e-1)
    p = p * r + np.float32(5.0000001201e-1)
    return (p * r * r + r + np.float32(1)) * float_from_bits(np.int32((np.int32(k) + 127) << 23))


@register_jitable
def _activate(z, kind):
    """``z = f(z)`` in place, for each number of the flat array ``z``."""
    one, two = np.float32(1), np.float32(2)
    if kind == SIGMOID:
        for i in range(z.size):
            z[i] = one / (one + _exp(-z[i]))
    elif kind == TANH:
        for i in range(z.size):
            z[i] = one - two / (one + _exp(two * z[i]))
    else:
        for i in range(z.size):
            z[i] = max(z[i], np.float32(0))


@register_jitable
def _times_slope(g, y, kind):
    """``y = g * f'(z)`` in place, with ``f'`` written in terms of the output ``y = f(z)`` (flat arrays)."""
    one = np.float32(1)
    if kind == SIGMOID:
        for i in range(y.size):
            y[i] = g[i] * y[i] * (one - y[i])
    elif kind == TANH:
        for i in range(y.size):
            y[i] = g[i] * (one - y[i] * y[i])
    else:
        for i in range(y.size):
            y[i] = g[i] * (one if y[i] > 0 else np.float32(0))  # 0 * NaN is NaN, as in the layer


@register_jitable
def _softmax_cross_entropy(z, labels, rows, n, scale):
    """Each row of logits in ``z`` becomes its gradient ``(p - onehot) * scale``; returns (cost sum, hits).

    Three passes, so that the exps (the costly part) run over the whole
    block in one loop, 8 at a time; a loop over a row of 10 would not.
    """
    cost, hits = 0.0, 0
    for r in range(rows):  # z -= the row's highest; count the rows where the label is highest
        first, label = r * n, labels[r]
        top = first
        for c in range(first + 1, first + n):
            if z[c] > z[top]:
                top = c
        hits += top - first == label
        highest = z[top]
        for c in range(first, first + n):
            z[c] -= highest
        cost -= z[first + label]  # -log p(label) = log(sum of exps) - shifted z[label]: no log(0) possible
    for i in range(rows * n):
        z[i] = _exp(z[i])
    for r in range(rows):  # p = exps / their sum, then the gradient
        first = r * n
        total = np.float32(0)
        for c in range(first, first + n):
            total += z[c]
        cost += np.log(total)
        share = scale / total
        for c in range(first, first + n):
            z[c] *= share
        z[first + labels[r]] -= scale
    return cost, hits


@jit
def block_pass(by_rows_ptr, by_rows_pixels, by_rows_values, by_columns_ptr, by_columns_rows, by_columns_values,
               unit, labels, scale, Ws, WTs, bs, dWs, dbs, kinds, outs):
    """Forward and backward over one block of digits; adds to ``dWs``, ``dbs``; returns (cost sum, hits).

    The block is its inked pixels by rows and by columns, each standing for
    ``unit * value`` (see :class:`~.sparse.SparseRows`); ``scale`` is ``1/m`` for all ``m`` digits of the
    batch. ``Ws``, ``WTs`` (their transposes), ``bs``, ``dWs``, ``dbs``: one
    per Dense layer; ``kinds``: the activation after each but the last (numbers, an int array);
    ``outs``: one scratch array per Dense layer, at least as many rows as
    the block (each layer's outputs, then its gradients).
    """
    # outs[layer] holds that layer's outputs a (for the first rows rows), and then, going back, its gradients g
    rows, layers = len(labels), len(Ws)
    n, W, out = Ws[0].shape[1], Ws[0].reshape(-1), outs[0].reshape(-1)
    for r in range(rows):  # forward: z_1 = x @ W_1 + b_1, over each row's inked pixels
        out[r * n:(r + 1) * n] = bs[0]
        gather(out, r * n, unit, by_rows_values, by_rows_pixels, by_rows_ptr[r], by_rows_ptr[r + 1], W, n, 0, n)
    for layer in range(1, layers):  # a = f(z), z_l+1 = a @ W_l+1 + b_l+1
        a = outs[layer - 1][:rows].reshape(-1)
        _activate(a, kinds[layer - 1])
        (n_in, n), W, out, b = Ws[layer].shape, Ws[layer].reshape(-1), outs[layer].reshape(-1), bs[layer]
        for r in range(rows):
            out[r * n:(r + 1) * n] = b
            gather(out, r * n, np.float32(1), a, None, r * n_in, (r + 1) * n_in, W, n, 0, n)
    cost, hits = _softmax_cross_entropy(outs[layers - 1].reshape(-1), labels, rows, Ws[layers - 1].shape[1],
                                        scale)
    ones = np.ones(rows, np.float32)
    for layer in range(layers - 1, -1, -1):  # backward: outs[layer] now holds g_l
        n, g, dW = Ws[layer].shape[1], outs[layer].reshape(-1), dWs[layer].reshape(-1)
        gather(dbs[layer], 0, np.float32(1), ones, None, 0, rows, g, n, 0, n)  # db += the column sums of g
        if layer == 0:
            for j in range(Ws[0].shape[0]):  # dW_1[j] += x[:, j]^T g, over the rows inked at pixel j
                gather(dW, j * n, unit, by_columns_values, by_columns_rows, by_columns_ptr[j],
                       by_columns_ptr[j + 1], g, n, 0, n)
            continue
        n_in, a = Ws[layer].shape[0], outs[layer - 1].reshape(-1)
        columns = np.ascontiguousarray(outs[layer - 1][:rows].T).reshape(-1)  # a's columns, each a row here
        for i in range(n_in):  # dW_l[i] += a[:, i]^T g
            gather(dW, i * n, np.float32(1), columns, None, i * rows, (i + 1) * rows, g, n, 0, n)
        back, WT = np.zeros(rows * n_in, np.float32), WTs[layer].reshape(-1)
        for r in range(rows):  # g_l-1 = (g_l @ W^T) * f'(a), over a, which is no longer needed
            gather(back, r * n_in, np.float32(1), g, None, r * n, (r + 1) * n, WT, n_in, 0, n_in)
        _times_slope(back, a[:rows * n_in], kinds[layer - 1])
    return cost, hits
