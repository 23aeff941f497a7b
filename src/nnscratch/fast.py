"""A faster full-batch step: the same math as the layers, done in fewer passes.

Full-batch gradient descent (the blog's way, and the ``seed`` preset's) runs
the whole training set through the network once per epoch. The plain path,
``model.loss_and_gradients(inputs, labels)``, does that layer by layer on all
30000 digits at once. :class:`FullBatchStep` computes exactly the same cost,
accuracy and gradients, with three changes that only touch *how* the work is
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
4. **BLAS on one thread.** Products 16 columns wide are too thin for
   OpenBLAS's threads to pay: on the 2-core machines we measured, two BLAS
   threads made an epoch 2-5x *slower* than one (each product waits for the
   slower thread, and the other core is often busy). The step asks
   ``threadpoolctl`` for one BLAS thread while it runs (``blas_threads``).

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

from contextlib import nullcontext

import numpy as np

from .layers import Activation, Dense
from .losses import softmax_cross_entropy

BLOCK_ROWS = 2048  # rows per block: a 2048 x 705 float32 block is 5.8 MB


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

    ``inputs`` are the prepared (scaled, float) training inputs and ``labels``
    their digits, as the Trainer holds them; they are read here once and not
    kept. Call :meth:`loss_and_gradients` once per epoch: it returns
    ``(cost, accuracy)`` and leaves dCost/dParameter in ``model.gradients()``,
    exactly like ``model.loss_and_gradients`` does for the plain path.
    """

    def __init__(self, model, inputs: np.ndarray, labels: np.ndarray, block_rows: int = BLOCK_ROWS,
                 drop_dead_pixels: bool = True, blas_threads: int | None = 1):
        if not supports(model):
            raise ValueError(f"{model!r}: the fast step needs Dense and activation layers only")
        self.model = model
        self.dense = model.layers[0::2]
        self.activations = model.layers[1::2]
        self.labels = np.asarray(labels)
        self.m = len(self.labels)
        self.block_rows = max(1, int(block_rows))
        # 1. the live pixel columns, stored once (a copy made here, never per epoch)
        self.live = live_columns(inputs) if drop_dead_pixels else np.arange(inputs.shape[1])
        self.x = np.empty((len(inputs), len(self.live)), inputs.dtype)
        for start in range(0, len(inputs), self.block_rows):  # by blocks: no full-size temporaries
            self.x[start:start + self.block_rows] = inputs[start:start + self.block_rows, self.live]
        first = self.dense[0]
        dtype = np.result_type(self.x, first.W)  # float32 for the presets; float64 in tests
        self._dW1 = np.zeros((len(self.live), first.W.shape[1]), dtype)  # dW1's live rows
        self._part = np.empty_like(self._dW1)                          # one block's share
        self._z1 = np.empty((min(self.block_rows, self.m), first.W.shape[1]), dtype)
        self._blas = blas_limiter(blas_threads)

    def loss_and_gradients(self) -> tuple[float, float]:
        """One forward and backward pass over all rows; returns (cost, accuracy)."""
        first = self.dense[0]
        W1 = first.W[self.live]  # (k, 16): the rows of W1 that live pixels use
        for layer in self.dense:
            layer.dW[...] = 0
            layer.db[...] = 0
        self._dW1[...] = 0
        total_cost = 0.0
        correct = 0
        with self._blas():
            for start in range(0, self.m, self.block_rows):
                stop = min(start + self.block_rows, self.m)
                cost, hits = self._block(self.x[start:stop], self.labels[start:stop], W1)
                total_cost += cost
                correct += hits
        first.dW[self.live] = self._dW1  # the dead rows stay exactly 0
        return total_cost / self.m, correct / self.m

    def _block(self, x: np.ndarray, labels: np.ndarray, W1: np.ndarray) -> tuple[float, int]:
        """Forward and backward on one block of rows; adds its share to the gradients."""
        z1 = self._z1[:len(x)]
        np.matmul(x, W1, out=z1)          # the heavy product: BLAS
        z1 += self.dense[0].b
        h, outputs = z1, []  # outputs[i]: activation i's output, the input of Dense i + 1
        for activation, dense in zip(self.activations, self.dense[1:]):
            outputs.append(activation.forward(h))  # the activation layer's own code
            h = outputs[-1] @ dense.W + dense.b
        logits = h
        # the mean over *all* m digits: each block's gradient is scaled by 1/m, not 1/len(x)
        cost, grad, probabilities = softmax_cross_entropy(logits, labels, scale=1.0 / self.m)
        hits = int(np.count_nonzero(probabilities.argmax(axis=1) == labels))
        # backward, top to bottom: Dense.backward with += instead of =
        for i in range(len(self.dense) - 1, 0, -1):
            dense, below = self.dense[i], outputs[i - 1]
            dense.dW += below.T @ grad
            dense.db += grad.sum(axis=0)
            grad = self._activation_backward(i - 1, grad @ dense.W.T)
        np.matmul(x.T, grad, out=self._part)  # the other heavy product: BLAS
        self._dW1 += self._part
        self.dense[0].db += grad.sum(axis=0)
        return cost * len(x), hits

    def _activation_backward(self, i: int, grad: np.ndarray) -> np.ndarray:
        """dCost/d(input) of activation ``i`` for this block, by the layer's own backward.

        The layers remember their last forward output; in a block loop the
        last forward of activation ``i`` *is* this block's, so the layer's
        backward applies unchanged.
        """
        return self.activations[i].backward(grad)
