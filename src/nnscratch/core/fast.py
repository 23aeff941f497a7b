"""A faster full-batch step: the network's own layers, run in fewer passes.

Full-batch gradient descent (the blog's way, and the ``seed`` preset's) runs
the whole training set through the network once per epoch. The plain path
runs each layer on all 30000 digits at once. :class:`FullBatchStep` runs the
very same layers (their own ``forward`` and ``backward``) and computes the
same cost, accuracy and gradients, with four changes that only touch *how*
the work is done, never *what* is computed:

1. **Dead pixels are left out of the first product.** A pixel column that is
   0 in every training digit adds nothing to ``x @ W1`` and its row of
   ``dW1 = x^T d1`` is exactly 0. So the inputs are kept once, at the start,
   as the ``k`` live columns only (705 of 784 on the Kaggle file), and the
   first Dense layer is told so (``Dense.input_columns``): it uses only those
   rows of ``W1`` and leaves the others' gradient at exactly 0.
2. **Blocks of rows, forward and backward together.** The cost is a mean over
   the digits, so every gradient is a sum over the rows: the rows can be cut
   into blocks, each block run forward *and* backward while it is still in
   the processor's cache, and the blocks' gradients added up. The input
   block is then read from memory once per epoch instead of twice (once for
   ``x @ W1``, once for ``x^T d1``).
3. **Raw pixels stay uint8.** The network's input step turns each block into
   floats just before use: a quarter of the memory of a float32 copy to read
   every epoch.
4. **One worker per core, BLAS on one thread in each.** Products 16
   columns wide are too thin for OpenBLAS's own threads: they meet at a
   barrier after every product, and when the other core is busy (as on a
   shared machine) each epoch became 2-10x *slower* than with one thread.
   So the rows are split into a fixed number of contiguous parts, each part
   runs its blocks in its own Python thread (NumPy releases the GIL inside
   BLAS and its loops) on its own replica of the network (same weights, its
   own gradients and saved inputs), and BLAS is asked for one thread
   (``threadpoolctl``) while the step runs. The parts meet once per epoch,
   when their sums are added up.

Per block the loss is scaled by ``1/m`` for *all* m digits (not the block's
rows), so the blocks' gradients add up to the full-batch gradient. Summing
in another order than one big product changes float32 results only in the
last bits; ``tests/test_fast.py`` checks the gradients against the plain path.

Used by :class:`~nnscratch.core.training.Trainer` when the batch is the whole
training set and every layer works row by row (:func:`supports`: no dropout,
whose masks depend on the draw order, and no batch normalisation, whose
statistics depend on the batch).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import nullcontext

import numpy as np

from . import kernels
from .layers import Dense, Rescale
from .losses import softmax_cross_entropy
from .parallel import one_part

BLOCK_ROWS = 2048  # rows per block: a 2048 x 705 float32 block is 5.8 MB
PARTS = 2  # the rows are cut into this many parts, one thread each where cores allow


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def supports(network) -> bool:
    """True if every layer of ``network`` computes each output row from its input row alone."""
    leaves = getattr(network, "leaves", None)
    return bool(leaves) and all(layer.rowwise for layer in leaves())


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


def first_dense(network) -> Dense | None:
    """The first Dense layer, if only the input step (elementwise) comes before it."""
    leaves = network.leaves()
    rest = leaves[1:] if leaves and isinstance(leaves[0], Rescale) else leaves
    return rest[0] if rest and isinstance(rest[0], Dense) else None


class FullBatchStep:
    """Cost, accuracy and every gradient of ``network`` on the whole training set.

    ``inputs`` are the training digits (raw pixels, as the network takes them)
    and ``labels`` their digits; their live columns are copied here once.
    Call :meth:`loss_and_gradients` once per epoch: it returns
    ``(cost, accuracy)`` and leaves dCost/dParameter in the network's
    gradients, exactly like the plain path does.

    The rows are cut into ``workers`` contiguous parts (default ``PARTS``,
    whatever the machine, so results do not depend on it), run on as many
    threads as there are cores for them; ``blas_threads`` is what BLAS may use
    meanwhile (None: leave it alone).
    """

    def __init__(self, network, inputs: np.ndarray, labels: np.ndarray, block_rows: int = BLOCK_ROWS,
                 drop_dead_pixels: bool = True, blas_threads: int | None = 1, workers: int | None = None):
        if not supports(network):
            raise ValueError(f"{network!r}: the full-batch step needs layers that work row by row")
        self.network = network
        self.labels = np.asarray(labels, np.intp)  # index type: no conversion per block
        self.m, self.block_rows = len(self.labels), block_rows
        dense = first_dense(network) if drop_dead_pixels else None
        # The rows cut into a fixed number of contiguous parts, each with its own
        # sums. The cut never depends on the machine's cores, so neither does the
        # order of the additions: the same seed gives the same weights everywhere.
        n_parts = max(1, min(workers or PARTS, -(-self.m // block_rows)))  # no empty parts
        bounds = np.linspace(0, self.m, n_parts + 1).astype(int)
        if dense is not None and dense.W.dtype == np.float32 and kernels.enabled():  # (float32 kernels)
            # Only the inked pixels, found once (the digits do not change between epochs).
            from .kernels.sparse import SparseRows

            columns, keep = None, SparseRows.from_dense
        else:
            columns = live_columns(inputs) if dense is not None else None
            keep = (lambda block: block) if columns is None else (lambda block: block[:, columns])
        self.blocks = [[(keep(inputs[rows]), self.labels[rows]) for rows in _blocks(first, stop, block_rows)]
                       for first, stop in zip(bounds, bounds[1:])]
        self.parts = [_Part(network, columns) for _ in self.blocks]
        n_threads = min(n_parts, available_cores())
        self._pool = ThreadPoolExecutor(n_threads - 1) if n_threads > 1 else None  # the caller runs a part too
        self._blas = blas_limiter(blas_threads)

    def loss_and_gradients(self) -> tuple[float, float]:
        """One forward and backward pass over all rows; returns (cost, accuracy)."""
        with self._blas():
            return _run_parts(self.network, self.parts, self._pool, [(blocks, self.m) for blocks in self.blocks])


class SplitBatchStep:
    """Cost, accuracy and every gradient of a mini-batch, its rows shared between the cores.

    The same idea as :class:`FullBatchStep`, for the batches of stochastic
    gradient descent: the batch is cut into ``workers`` (default ``PARTS``)
    contiguous parts, each run forward and backward on its own replica of
    the network in its own thread, and the parts' gradients are added up.
    A whole mini-batch step is then two hand-overs between the threads (this
    and the optimizer's), not one per layer. Call it with BLAS on one thread
    (the training loop does). Needs a network that works row by row.
    """

    MIN_ROWS = 16  # a part gets at least this many rows, or the batch runs in one piece

    def __init__(self, network, workers: int | None = None):
        if not supports(network):
            raise ValueError(f"{network!r}: a split batch needs layers that work row by row")
        self.network = network
        self.parts = [_Part(network) for _ in range(workers or PARTS)]
        n_threads = min(len(self.parts), available_cores())
        self._pool = ThreadPoolExecutor(n_threads - 1) if n_threads > 1 else None

    def loss_and_gradients(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Forward and backward over the batch ``inputs``, ``labels``; returns (cost, accuracy)."""
        m = len(labels)
        n_parts = max(1, min(len(self.parts), m // self.MIN_ROWS))
        bounds = np.linspace(0, m, n_parts + 1).astype(int)
        labels = np.asarray(labels, np.intp)
        return _run_parts(self.network, self.parts[:n_parts], self._pool,
                          [([(inputs[a:b], labels[a:b])], m) for a, b in zip(bounds, bounds[1:])])


def _blocks(first: int, stop: int, size: int):
    """``first:stop`` cut into slices of at most ``size`` rows."""
    return [slice(start, min(start + size, stop)) for start in range(first, stop, size)]


def _run_parts(network, parts, pool, arguments) -> tuple[float, float]:
    """``part.run(*args)`` for each part (the first here, the others on ``pool``); gradients summed.

    Leaves the sum of the parts' gradients in the network's and returns
    (cost, accuracy) over all ``m`` rows.
    """
    jobs = [] if pool is None else [pool.submit(one_part, part.run, *args)
                                    for part, args in zip(parts[1:], arguments[1:])]
    results = [one_part(parts[0].run, *arguments[0])]
    results += [job.result() for job in jobs] if pool is not None else [
        one_part(part.run, *args) for part, args in zip(parts[1:], arguments[1:])]
    for i, total in enumerate(network.gradients()):  # the gradients of the whole batch
        if len(parts) == 1:
            total[...] = parts[0].sums[i]
            continue
        np.add(parts[0].sums[i], parts[1].sums[i], out=total)
        for part in parts[2:]:
            total += part.sums[i]
    m = arguments[0][1]
    return sum(r[0] for r in results) / m, sum(r[1] for r in results) / m


class _Part:
    """One worker's share of a batch: its own replica of the network and its own sums of gradients."""

    def __init__(self, network, columns=None):
        self.replica = network.replica()
        if columns is not None:
            first_dense(self.replica).input_columns = columns
        self._totals = [np.zeros_like(g) for g in self.replica.gradients()]
        self.sums = self._totals

    def run(self, blocks, m) -> tuple[float, int]:
        """Each ``(x, labels)`` of ``blocks`` in turn: returns (summed cost, number right); gradients in ``sums``."""
        cost, hits = 0.0, 0
        for i, (x, labels) in enumerate(blocks):
            block_cost, block_hits = self._block(x, labels, m)
            cost += block_cost
            hits += block_hits
            grads = self.replica.gradients()
            if len(blocks) == 1:  # one block (a split mini-batch): its gradients are the sums, no copy
                self.sums = grads
            else:  # the first block starts the sums (no pass to zero them), the others add to them
                self.sums = self._totals
                for total, g in zip(self.sums, grads):
                    if i == 0:
                        total[...] = g
                    else:
                        total += g
        return cost, hits

    def _block(self, x, labels, m) -> tuple[float, int]:
        """Forward and backward on one block of rows through the layers; gradients left in the replica."""
        logits = self.replica(x)
        # the mean over *all* m digits: each block's gradient is scaled by 1/m, not 1/len(x)
        cost, grad, probabilities = softmax_cross_entropy(logits, labels, scale=1.0 / m)
        self.replica.backward(grad)
        hits = int(np.count_nonzero(probabilities.argmax(axis=1) == labels))
        return cost * len(x), hits
