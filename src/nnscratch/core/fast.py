"""A faster full-batch step: the same math as the layers, done in fewer passes.

Full-batch gradient descent (the blog's way, and the ``seed`` preset's) runs
the whole training set through the network once per epoch. The plain path,
``model.loss_and_gradients(inputs, labels)``, does that layer by layer on all
30000 digits at once. :class:`FullBatchStep` computes exactly the same cost,
accuracy and gradients, with four changes that only touch *how* the work is
done, never *what* is computed:

1. **Dead pixels are left out of the first product.** A pixel column that is
   0 in every training digit adds nothing to ``x @ W1`` and its row of
   ``dW1 = x^T d1`` is exactly 0. So the inputs are kept once, at the start,
   as the ``k`` live columns only (705 of 784 on the Kaggle file), and
   ``W1`` and ``dW1`` are used through those rows; the dead rows of ``dW1``
   are set to 0 once. ``W1`` keeps its full (784, 16) shape in the model.
2. **Blocks of rows, forward and backward together.** The cost is a mean over
   the digits, so every gradient is a sum over the rows: the rows can be cut
   into blocks, each block run forward *and* backward while it is still in
   the processor's cache, and the blocks' gradient contributions added up.
   The input block is then read from memory once per epoch instead of twice
   (once for ``x @ W1``, once for ``x^T d1``).
3. **Nothing is allocated in the big loop** that can be allocated once:
   the live-column inputs, the first layer's outputs and its gradient buffer
   are made in ``__init__`` and reused every epoch. The heavy products go
   to BLAS through ``np.matmul(..., out=...)``.
4. **One worker per core, BLAS on one thread in each.** Products 16
   columns wide are too thin for OpenBLAS's own threads: they meet at a
   barrier after every product, and when the other core is busy (as on a
   shared machine) each epoch became 2-10x *slower* than with one thread.
   So the rows are split into one contiguous part per core, each part runs
   its blocks in its own Python thread (NumPy releases the GIL inside BLAS
   and its loops) with its own gradient sums, and BLAS is asked for one
   thread (``threadpoolctl``) while the step runs. The parts meet once per
   epoch, when their sums are added up.

Per block ``x`` of rows (``m`` = all training digits, not the block's rows):

    forward    z1 = x W1 + b1, a1 = f(z1), z2 = a1 W2 + b2, ..., logits
    loss       p = softmax(logits); cost += sum(-log p[label])
               d = (p - onehot(label)) / m           (dCost/dlogits)
    backward   for each Dense layer, last first:
                   dW += a_in^T d,  db += sum of d over the rows
                   d  = f'(.) * (d W^T)               (the layer below's d)

which is what :class:`~nnscratch.layers.Dense` and the activation layers do
(the activations' own ``forward``/``backward`` are called), with ``+=``
across blocks instead of ``=`` over the whole set. Summing in a different
order changes float32 results only in the last bits; ``tests/test_fast.py``
checks the gradients against the plain layers.

Used by :class:`~nnscratch.training.Trainer` when the batch is the whole
training set and the network is Dense layers with activations between them
(no dropout); any optimizer then updates the weights from ``gradients()`` as
usual.
"""
from __future__ import annotations

import copy
import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from .layers import Activation, Dense
from .losses import softmax_cross_entropy

BLOCK_ROWS = 2048  # rows per block: a 2048 x 705 float32 block is 5.8 MB
PARTS = 2  # the rows are cut into this many parts, one thread each where cores allow


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def supports(model) -> bool:
    """True if ``model`` is Dense, activation, Dense, ..., Dense (no dropout)."""
    layers = getattr(model, "layers", None)
    if not layers or not isinstance(layers[0], Dense) or not isinstance(layers[-1], Dense):
        return False
    for i, layer in enumerate(layers):
        expected = Dense if i % 2 == 0 else Activation
        if not isinstance(layer, expected):
            return False
    return True


def blas_limiter(threads: int | None):
    """A context-manager factory that runs BLAS on ``threads`` threads (None: as it is).

    Needs ``threadpoolctl``; without it BLAS keeps its own thread count.
    """
    if threads is None:
        return nullcontext
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return nullcontext
    controller = ThreadpoolController()  # finds the BLAS libraries once (about 1 ms)
    return lambda: controller.limit(limits=threads, user_api="blas")


def live_columns(inputs: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Indices of the columns that are non-zero in at least one row."""
    live = np.zeros(inputs.shape[1], bool)
    for start in range(0, len(inputs), block_rows):
        live |= np.any(inputs[start:start + block_rows] != 0, axis=0)
    return np.flatnonzero(live)


class FullBatchStep:
    """Cost, accuracy and every gradient of ``model`` on the whole training set.

    ``inputs`` are the training inputs and ``labels`` their digits; their live
    columns are copied here once. Raw uint8 pixels (what the Trainer passes)
    stay uint8 in that copy, a quarter of the memory of float32, and each
    block is turned into network inputs (times ``scale``, e.g. the model's
    ``input_scale``) in a small buffer just before use: the same numbers as
    converting everything up front, with far less to read from memory every
    epoch. Inputs of any other dtype are used as they are. Call :meth:`loss_and_gradients` once per epoch: it returns
    ``(cost, accuracy)`` and leaves dCost/dParameter in ``model.gradients()``,
    exactly like ``model.loss_and_gradients`` does for the plain path.

    The rows are cut into ``workers`` contiguous parts (default ``PARTS``,
    whatever the machine, so results do not depend on it), run on as many
    threads as there are cores for them; ``blas_threads`` is what BLAS may use
    meanwhile (None: leave it alone).
    """

    def __init__(self, model, inputs: np.ndarray, labels: np.ndarray, block_rows: int = BLOCK_ROWS,
                 drop_dead_pixels: bool = True, blas_threads: int | None = 1, workers: int | None = None,
                 scale: float = 1.0):
        if not supports(model):
            raise ValueError(f"{model!r}: the fast step needs Dense and activation layers only")
        self.dense = model.layers[0::2]
        self.labels = np.asarray(labels, np.intp)  # index type: no conversion per block
        self.m = len(self.labels)
        self.block_rows = max(1, int(block_rows))
        # 1. the live pixel columns, stored once (a copy made here, never per epoch)
        self.live = live_columns(inputs) if drop_dead_pixels else np.arange(inputs.shape[1])
        self.x = np.empty((len(inputs), len(self.live)), inputs.dtype)
        for start in range(0, len(inputs), self.block_rows):  # by blocks: no full-size temporaries
            self.x[start:start + self.block_rows] = inputs[start:start + self.block_rows, self.live]
        raw = self.x.dtype == np.uint8  # raw pixels: converted block by block (see _Part._block)
        # 4. the rows cut into a fixed number of contiguous parts, each with its own
        #    sums. The cut never depends on the machine's cores, so neither does the
        #    order of the additions: the same seed gives the same weights everywhere.
        n_parts = max(1, min(workers or PARTS, -(-self.m // self.block_rows)))  # no empty parts
        bounds = np.linspace(0, self.m, n_parts + 1).astype(int)
        dtype = np.result_type(np.float32 if raw else self.x, self.dense[0].W)  # float32; float64 in tests
        self.parts = [_Part(model, self.live, rows, dtype, self.block_rows, scale if raw else None)
                      for rows in zip(bounds, bounds[1:])]
        n_threads = min(n_parts, available_cores())
        self._pool = ThreadPoolExecutor(n_threads) if n_threads > 1 else None
        self._blas = blas_limiter(blas_threads)

    def loss_and_gradients(self) -> tuple[float, float]:
        """One forward and backward pass over all rows; returns (cost, accuracy)."""
        first = self.dense[0]
        W1 = first.W[self.live]  # (k, 16): the rows of W1 that live pixels use
        with self._blas():
            if self._pool is None:
                results = [part.run(self.x, self.labels, W1, self.m) for part in self.parts]
            else:
                jobs = [self._pool.submit(part.run, self.x, self.labels, W1, self.m) for part in self.parts]
                results = [job.result() for job in jobs]
        # add up the parts' sums: the gradients of the whole set
        for i, layer in enumerate(self.dense):
            layer.db[...] = sum(part.db[i] for part in self.parts)
            if i:  # dW1 is written through its live rows below
                layer.dW[...] = sum(part.dW[i] for part in self.parts)
        first.dW[...] = 0
        first.dW[self.live] = sum(part.dW[0] for part in self.parts)  # the dead rows stay exactly 0
        cost = sum(r[0] for r in results)
        correct = sum(r[1] for r in results)
        return cost / self.m, correct / self.m


class _Part:
    """One worker's share of an epoch: rows ``rows[0]:rows[1]``, its own sums and buffers.

    The activation layers are shallow copies of the model's (they remember
    their last output for backward, so each thread needs its own); the
    Dense weights are read from the model itself.
    """

    def __init__(self, model, live, rows, dtype, block_rows, scale=None):
        self.dense = model.layers[0::2]
        self.scale = None if scale is None else dtype.type(scale)
        if scale is not None:  # where a block of raw pixels becomes network inputs
            self._inputs = np.empty((min(block_rows, rows[1] - rows[0]), len(live)), dtype)
        self.activations = [copy.copy(layer) for layer in model.layers[1::2]]
        self.rows, self.block_rows = rows, block_rows
        width = self.dense[0].W.shape[1]
        self.dW = [np.zeros((len(live), width), dtype)] + [np.zeros_like(d.dW) for d in self.dense[1:]]
        self.db = [np.zeros_like(d.db) for d in self.dense]
        self._part = np.empty_like(self.dW[0])  # one block's share of dW1
        self._z1 = np.empty((min(block_rows, rows[1] - rows[0]), width), dtype)

    def run(self, x, labels, W1, m) -> tuple[float, int]:
        """All blocks of this part: returns (summed cost, number right); gradients in dW, db."""
        for g in self.dW + self.db:
            g[...] = 0
        cost, hits = 0.0, 0
        for start in range(self.rows[0], self.rows[1], self.block_rows):
            stop = min(start + self.block_rows, self.rows[1])
            block_cost, block_hits = self._block(x[start:stop], labels[start:stop], W1, m)
            cost += block_cost
            hits += block_hits
        return cost, hits

    def _block(self, x, labels, W1, m) -> tuple[float, int]:
        """Forward and backward on one block of rows; adds its share to the sums."""
        if self.scale is not None:  # raw pixels -> inputs, into a buffer that stays in cache
            buffer = self._inputs[:len(x)]
            np.copyto(buffer, x)  # uint8 -> float: twice as fast as a mixed-type multiply
            if self.scale != 1:
                buffer *= self.scale
            x = buffer
        z1 = self._z1[:len(x)]
        np.matmul(x, W1, out=z1)          # the heavy product: BLAS
        z1 += self.dense[0].b
        h, outputs = z1, []  # outputs[i]: activation i's output, the input of Dense i + 1
        for activation, dense in zip(self.activations, self.dense[1:]):
            outputs.append(activation.forward(h))  # the activation layer's own code
            h = outputs[-1] @ dense.W + dense.b
        # the mean over *all* m digits: each block's gradient is scaled by 1/m, not 1/len(x)
        cost, grad, probabilities = softmax_cross_entropy(h, labels, scale=1.0 / m)
        hits = int(np.count_nonzero(probabilities.argmax(axis=1) == labels))
        # backward, top to bottom: Dense.backward with += instead of =
        for i in range(len(self.dense) - 1, 0, -1):
            self.dW[i] += outputs[i - 1].T @ grad
            self.db[i] += grad.sum(axis=0)
            # the activation below remembers this block's output: its own backward applies
            grad = self.activations[i - 1].backward(grad @ self.dense[i].W.T)
        np.matmul(x.T, grad, out=self._part)  # the other heavy product: BLAS
        self.dW[0] += self._part
        self.db[0] += grad.sum(axis=0)
        return cost * len(x), hits
