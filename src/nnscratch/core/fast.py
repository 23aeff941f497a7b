"""Faster steps: the network's own math, the rows shared between the cores.

:class:`FullBatchStep` (full-batch gradient descent, the blog's way and the
``seed`` preset's) and :class:`SplitBatchStep` (a mini-batch) run the very
same layers (their own ``forward`` and ``backward``; item 4: the same
math compiled) and compute the same cost, accuracy and gradients as the
plain path; they change only *how* the work is done, never *what* is
computed:

1. **One part of the rows per core.** The cost is a mean over the digits, so
   every gradient is a sum over the rows: the rows are cut into a fixed
   number of contiguous parts (:data:`~nnscratch.core.parallel.PARTS`,
   whatever the machine, so the same seed gives the same weights
   everywhere), each part runs in its own thread on its own replica of the
   network (the same weights, its own gradients and saved inputs), BLAS on
   one thread, and the parts' gradients are added up. NumPy and the compiled
   loops let go of Python's lock, so the threads really run side by side.
   Products 16 columns wide are too thin for OpenBLAS's own threads: they
   meet at a barrier after every product, and on a busy machine an epoch got
   2-10x *slower*. A mini-batch step is two hand-overs between the threads
   (this and the optimizer's), not one per layer.
2. **Blocks of rows, forward and backward together** (full batch). Each
   part cuts its rows into blocks, runs each block forward *and* backward
   while it is in the processor's cache, and adds the blocks' gradients.
3. **Only the pixels that matter in the first product** (full batch). With
   the compiled kernels, each block of digits is kept once as its inked
   pixels (:class:`~nnscratch.core.kernels.sparse.SparseRows`): the first
   Dense layer multiplies only those, a fifth of the work. Without them,
   the pixels blank in *every* digit (79 of 784 on the Kaggle file) are left
   out (``Dense.input_columns``) and the others kept as raw uint8, turned
   into floats block by block by the network's input step.
4. **An MLP's whole block in one compiled call** (full batch, compiled
   kernels, float32, Dense layers with sigmoid, tanh or ReLU between them:
   the seed network). The layers make some thirty NumPy calls per block,
   with Python in between, and two threads then wait for each other at
   Python's lock about as long as they compute (measured: an epoch of the
   seed network took 25 ms on two threads, 32 ms on one);
   :func:`~nnscratch.core.kernels.mlp.block_pass` does the block's forward
   and backward in one call that holds no lock (11-13 ms on two threads).

Per block the loss is scaled by ``1/m`` for *all* m digits (not the block's
rows), so the blocks' gradients add up to the whole batch's. Summing in
another order than one big product changes float32 results only in the last
bits; ``tests/test_fast.py``, ``tests/test_kernels.py`` and
``tests/test_kernels_mlp.py`` check the gradients against the plain path.

Used by :class:`~nnscratch.core.training.Trainer` when every layer works row
by row (:func:`supports`: no dropout, whose masks depend on the draw order,
and no batch normalisation, whose statistics depend on the batch).
"""
from __future__ import annotations

import numpy as np

from . import kernels
from .layers import Dense, Rescale
from .losses import softmax_cross_entropy
from .parallel import PARTS, ahead, blas_threads, chunks, run_parts

BLOCK_ROWS = 2048  # rows per block: a 2048 x 705 float32 block is 5.8 MB


def supports(network) -> bool:
    """True if every layer of ``network`` computes each output row from its input row alone."""
    leaves = getattr(network, "leaves", None)
    return bool(leaves) and all(layer.rowwise for layer in leaves())


def worth_splitting(network) -> bool:
    """Should mini-batches go through :class:`SplitBatchStep`: rows apart, and heavy layers (convolutions)?

    Measured: the benchmark CNN's steps took 5-20 % less time split; the
    MLP's 784-256-128-10 steps (under 2 ms for 128 rows) took *more*, since
    half of a part's time is Python between the products, and two threads
    take turns at Python's lock.
    """
    return supports(network) and any(layer.heavy for layer in network.leaves())


def live_columns(inputs: np.ndarray, block_rows: int = BLOCK_ROWS) -> np.ndarray:
    """Indices of the columns that are non-zero in at least one row."""
    live = np.zeros(inputs.shape[1], bool)
    for start in range(0, len(inputs), block_rows):
        live |= np.any(inputs[start:start + block_rows] != 0, axis=0)
    return np.flatnonzero(live)


MOSTLY_BLANK = 1 / 3  # mini-batches come as inked pixels only if at most this share of the pixels is inked,
WIDE = 128  # and the first layer has at least this many neurons (for fewer, BLAS's product is cheaper than a take)


class DenseRows:
    """Mini-batches taken straight from the array of digits (see :func:`batch_source`)."""

    prefetch = False  # a few microseconds a batch: not worth a hand-over to the other core

    def __init__(self, x: np.ndarray):
        self.x = x

    def rows(self, chosen) -> np.ndarray:
        return self.x[chosen]


def mini_batches(source, order: np.ndarray, size: int):
    """``(rows, batch)`` for each run of ``size`` indices of ``order``, the batches from ``source.rows``.

    With ``source.prefetch``, each next batch is made on the other core
    while the one before is used (:func:`~nnscratch.core.parallel.ahead`).
    """
    runs = [order[i:i + size] for i in range(0, len(order), size)]
    batches = ahead(source.rows, ((rows,) for rows in runs)) if source.prefetch else map(source.rows, runs)
    return zip(runs, batches)


def batch_source(network, inputs: np.ndarray):
    """Where the mini-batches of ``inputs`` come from: an object whose ``rows(chosen)`` is a batch (see
    :func:`mini_batches`).

    With the compiled kernels, a wide first Dense layer right after the input
    step, float32, and mostly blank digits (MNIST: 19 % of the pixels
    inked), the digits are kept once as a table of their inked pixels
    (:class:`~nnscratch.core.kernels.sparse.SparseTable`) and each batch
    comes out of it as such, so the first layer multiplies only those.
    Measured on 784-256-128-10 with batches of 128: its two products took
    0.36 ms each against 0.58 ms in BLAS, and taking a batch out of the
    table 0.14 ms; an epoch of 20000 digits took 15-25 % less time with 256
    or 512 neurons, as long with 64, and 20-50 % more with 16. Otherwise
    the rows of the array (:class:`DenseRows`), and always for a network
    whose batches are split between the cores (:func:`worth_splitting`).
    """
    dense = first_dense(network)
    if dense is None or inputs.ndim != 2 or dense.fan_out < WIDE or worth_splitting(network) or \
            not _inked_pixels_apply(network, dense):
        return DenseRows(inputs)
    sample = inputs[:1000]
    if np.count_nonzero(sample) > MOSTLY_BLANK * sample.size:
        return DenseRows(inputs)
    from .kernels.sparse import SparseTable

    return SparseTable(inputs)


def first_dense(network) -> Dense | None:
    """The first Dense layer, if only the input step (elementwise) comes before it."""
    leaves = network.leaves()
    rest = leaves[1:] if leaves and isinstance(leaves[0], Rescale) else leaves
    return rest[0] if rest and isinstance(rest[0], Dense) else None


class FullBatchStep:
    """Cost, accuracy and every gradient of ``network`` on the whole training set.

    ``inputs`` are the training digits (raw pixels, as the network takes them)
    and ``labels`` their digits; the step keeps its own copy of them, made
    once (their inked pixels, or their live columns). Call
    :meth:`loss_and_gradients` once per epoch: it returns ``(cost,
    accuracy)`` and leaves dCost/dParameter in the network's gradients,
    exactly like the plain path does.

    ``workers``: parts of the rows (default ``PARTS``); ``blas_threads``:
    what BLAS may use meanwhile (None: leave it alone); ``first_layer=False``
    gives the first layer the plain blocks and ``compiled=False`` keeps the
    layers of an MLP that item 4 would run compiled (only to measure what
    the shortcuts buy).
    """

    def __init__(self, network, inputs: np.ndarray, labels: np.ndarray, block_rows: int = BLOCK_ROWS,
                 first_layer: bool = True, blas_threads: int | None = 1, workers: int | None = None,
                 compiled: bool = True):
        if not supports(network):
            raise ValueError(f"{network!r}: the full-batch step needs layers that work row by row")
        self.network, self.blas_threads = network, blas_threads
        self.labels = np.asarray(labels, np.intp)  # index type: no conversion per block
        self.m = len(self.labels)
        dense = first_dense(network) if first_layer else None
        n_parts = max(1, min(workers or PARTS, -(-self.m // block_rows)))  # no empty parts
        bounds = np.linspace(0, self.m, n_parts + 1).astype(int)
        inked = dense is not None and _inked_pixels_apply(network, dense)
        kinds = _compiled_mlp(network, self.labels) if inked and compiled else None
        columns = None
        if inked:
            from .kernels.sparse import SparseRows  # found once: the digits do not change between epochs

            keep = SparseRows.from_dense
        elif dense is not None:
            columns = live_columns(inputs)
            keep = lambda block: block[:, columns]  # noqa: E731 - a copy of the live columns only
        else:
            keep = lambda block: block  # noqa: E731

        def part_blocks(first, stop):
            return [(keep(inputs[rows]), self.labels[rows]) for rows in chunks(slice(first, stop), block_rows)]

        self.blocks = run_parts([(part_blocks, part) for part in zip(bounds, bounds[1:])])  # each core its own part
        self.parts = [_Part(network, columns) if kinds is None else _CompiledPart(network, kinds, block_rows)
                      for _ in self.blocks]

    def loss_and_gradients(self) -> tuple[float, float]:
        """One forward and backward pass over all rows; returns (cost, accuracy)."""
        with blas_threads(self.blas_threads):
            return _sum_parts(self.network, self.parts, self.blocks, self.m)


def _inked_pixels_apply(network, dense: Dense) -> bool:
    """Can the compiled products over inked pixels serve ``dense``: kernels on, float32 all along?"""
    first = network.leaves()[0]
    step_dtype = first.dtype if isinstance(first, Rescale) else dense.W.dtype
    return kernels.enabled() and dense.W.dtype == np.float32 and step_dtype == np.float32


def _compiled_mlp(network, labels: np.ndarray) -> tuple[int, ...] | None:
    """The activations' numbers if the compiled pass of :mod:`.kernels.mlp` can run ``network``, else None.

    Refuses ``labels`` the network's outputs cannot hold: the layers would
    fail on them with an IndexError, the compiled pass does not look.
    """
    from .kernels.mlp import activations

    kinds = activations(network)
    classes = network.leaves()[-1].fan_out
    if kinds is not None and len(labels) and not 0 <= labels.min() <= labels.max() < classes:
        raise ValueError(f"labels must be 0..{classes - 1} for {classes} outputs, got {labels.min()}..{labels.max()}")
    return kinds


class SplitBatchStep:
    """Cost, accuracy and every gradient of a mini-batch, its rows shared between the cores.

    For networks with heavy layers (:func:`worth_splitting`). The batch is cut
    into ``workers`` (default ``PARTS``) contiguous parts,
    each run forward and backward on its own replica of the network in its
    own thread, and the parts' gradients are added up (batches of fewer than
    ``2 * MIN_ROWS`` rows run in one piece). Call it with BLAS on one thread
    (the training loop does). Needs a network that works row by row.
    """

    MIN_ROWS = 16  # a part gets at least this many rows, or the batch runs in one piece

    def __init__(self, network, workers: int | None = None):
        if not supports(network):
            raise ValueError(f"{network!r}: a split batch needs layers that work row by row")
        self.network = network
        self.parts = [_Part(network) for _ in range(workers or PARTS)]

    def loss_and_gradients(self, inputs: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
        """Forward and backward over the batch ``inputs``, ``labels``; returns (cost, accuracy)."""
        m = len(labels)
        n_parts = max(1, min(len(self.parts), m // self.MIN_ROWS))
        bounds = np.linspace(0, m, n_parts + 1).astype(int)
        labels = np.asarray(labels, np.intp)
        blocks = [[(inputs[a:b], labels[a:b])] for a, b in zip(bounds, bounds[1:])]
        return _sum_parts(self.network, self.parts[:n_parts], blocks, m)


def _sum_parts(network, parts, blocks, m: int) -> tuple[float, float]:
    """Each part runs its ``blocks`` (at once where cores allow); the network gets the summed gradients.

    Returns (cost, accuracy) over all ``m`` rows.
    """
    for part in parts:
        part.follow(network)
    results = run_parts([(part.run, (part_blocks, m)) for part, part_blocks in zip(parts, blocks)])
    for i, total in enumerate(network.gradients()):  # the gradients of the whole batch
        total[...] = parts[0].sums[i]
        for part in parts[1:]:
            total += part.sums[i]
    return sum(cost for cost, _ in results) / m, sum(hits for _, hits in results) / m


class _Part:
    """One worker's share of a batch: its own replica of the network and its own sums of gradients."""

    def __init__(self, network, columns=None):
        self.columns = columns
        self.follow(network)

    def follow(self, network) -> None:
        """A new replica if ``network``'s weight arrays are no longer the replica's (replaced, not updated)."""
        replica = getattr(self, "replica", None)
        if replica is not None and all(a is b for a, b in zip(replica.parameters(), network.parameters())):
            return
        self.replica = network.replica()
        if self.columns is not None:
            first_dense(self.replica).input_columns = self.columns
        self.totals = [np.zeros_like(g) for g in self.replica.gradients()]  # for the sums of several blocks
        self.sums = self.totals

    def run(self, blocks, m) -> tuple[float, int]:
        """Each ``(x, labels)`` of ``blocks`` in turn: returns (summed cost, number right); gradients in ``sums``.

        One block leaves its gradients where the layers put them (``sums`` are
        the replica's own arrays); more blocks add theirs up in ``sums``.
        """
        cost, hits = 0.0, 0
        for i, (x, labels) in enumerate(blocks):
            block_cost, block_hits = self._block(x, labels, m)
            cost += block_cost
            hits += block_hits
            grads = self.replica.gradients()
            if len(blocks) == 1:
                self.sums = grads
            else:
                for total, g in zip(self.totals, grads):
                    if i == 0:  # the first block starts the sums (no pass to zero them)
                        total[...] = g
                    else:
                        total += g
                self.sums = self.totals
        return cost, hits

    def _block(self, x, labels, m) -> tuple[float, int]:
        """Forward and backward on one block of rows through the layers; gradients left in the replica."""
        logits = self.replica(x)
        # the mean over *all* m digits: each block's gradient is scaled by 1/m, not 1/len(x)
        cost, grad, probabilities = softmax_cross_entropy(logits, labels, scale=1.0 / m)
        self.replica.backward(grad)
        hits = int(np.count_nonzero(probabilities.argmax(axis=1) == labels))
        return cost * len(x), hits


class _CompiledPart:
    """One worker's share of a full batch, a block at a time in one compiled call (:mod:`.kernels.mlp`).

    The same interface as :class:`_Part`; it needs no replica: the compiled
    pass reads the network's weights and writes only its own sums.
    """

    def __init__(self, network, kinds, block_rows: int):
        self.kinds = np.array(kinds, np.intp)  # an array: a network without hidden layers has none
        self.input_step = network.leaves()[0]  # Rescale: on kept pixels, it sets their unit
        self.dense = [layer for layer in network.leaves() if isinstance(layer, Dense)]
        self.outs = tuple(np.empty((block_rows, layer.fan_out), np.float32) for layer in self.dense)
        self.sums = [np.zeros_like(g) for g in network.gradients()]  # W_1, b_1, W_2, b_2, ...: the network's order

    def follow(self, network) -> None:
        """Nothing to do: every run reads the network's weights as they are."""

    def run(self, blocks, m) -> tuple[float, int]:
        """All ``(x, labels)`` of ``blocks``: returns (summed cost, number right); gradients in ``sums``."""
        from .kernels.mlp import block_pass

        for total in self.sums:
            total[...] = 0
        weights = tuple(np.ascontiguousarray(layer.W) for layer in self.dense)  # (an optimizer may replace W)
        layers = (weights, tuple(np.ascontiguousarray(W.T) for W in weights), tuple(layer.b for layer in self.dense),
                  tuple(self.sums[0::2]), tuple(self.sums[1::2]), self.kinds, self.outs)
        cost, hits = 0.0, 0
        for pixels, labels in blocks:
            x = self.input_step(pixels)
            block_cost, block_hits = block_pass(*x.by_rows, *x.by_columns, x.unit, labels, np.float32(1.0 / m),
                                                *layers)
            cost += block_cost
            hits += block_hits
        return cost, hits
