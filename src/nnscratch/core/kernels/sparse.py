"""Products with mostly blank digits: only the inked pixels take part.

About four pixels in five of an MNIST digit are 0, blank paper. In the first
layer's product ``y = x @ W`` each of them costs a multiplication by zero,
and so it does in the weight gradient ``dW = x^T @ g``. Kept as its
non-zero entries only, a batch lets both products skip the blanks::

    y[r]  = sum of x[r, j] * W[j]     over the pixels j inked in digit r
    dW[j] = sum of x[r, j] * g[r]     over the digits r inked at pixel j

A fifth of the multiplications, each one a whole row at a time.
:class:`SparseRows` keeps the entries twice, by rows ("compressed sparse
rows", CSR: each row's pixels together) for the first sum and by columns
(CSC: each pixel's rows together) for the second, so that each sum is
added up in the processor's registers and stored once
(:func:`~.vector.gather`, with hand-written vector instructions: why by
hand, see :mod:`.vector`).

Used where the training digits do not change between epochs, so their
entries are found once: the full-batch step's blocks (:mod:`nnscratch.core.fast`)
and, for mini-batches, :class:`SparseTable`.
Imports Numba: import this module only when :func:`nnscratch.core.kernels.enabled`.
"""
from __future__ import annotations

import numpy as np

from . import jit
from .vector import gather

TILE = 64  # columns made together when ``source`` is large: 64 columns of W (784 x 256) are 200 kB
CACHED = 256 << 10  # a source this large or smaller stays in the processor's cache anyway: no tiles


# --------------------------------------------------------------------------- #
# The loops
# --------------------------------------------------------------------------- #
def _sums(starts, indices, values, unit, source, out):
    """``out[o] = sum(unit * values[k] * source[indices[k]] for k in starts[o]:starts[o+1])`` for each row ``o``.

    Both products are this loop (all float32; ``out`` is overwritten):

    * ``x @ W`` from x's rows: o is a row r, the k are its pixels j, ``source`` is ``W``;
    * ``x^T @ g`` from x's columns: o is a pixel j, the k are its rows r, ``source`` is ``g``.

    A large ``source`` (a wide W) is read a tile of columns at a time, so
    that the rows it jumps between stay in the cache (measured, 784 x 256:
    0.36 ms against 0.47 ms at once); a small one (g) at once, so that the
    entries are read once (0.36 ms against 0.48 ms in tiles).
    """
    tile = TILE if source.nbytes > CACHED else source.shape[1]
    _sums_in_tiles(starts, indices, values, unit, source, out, tile)


@jit
def _sums_in_tiles(starts, indices, values, unit, source, out, tile):
    n = source.shape[1]
    out_flat, source_flat = out.reshape(-1), source.reshape(-1)
    out_flat[:] = 0
    for first in range(0, n, tile):
        for o in range(len(starts) - 1):
            gather(out_flat, o * n, unit, values, indices, starts[o], starts[o + 1], source_flat, n, first,
                   min(first + tile, n))


@jit
def _count_nonzero(x, counts):
    """``counts[r]`` = the number of non-zero entries of row ``r`` of ``x``."""
    for r in range(x.shape[0]):
        n = 0
        for j in range(x.shape[1]):
            n += x[r, j] != 0  # no branch: ink is too irregular for the processor to guess
        counts[r] = n


@jit
def _fill(x, indptr, indices, values):
    """Each row's non-zero entries and their columns, in column order, from ``indptr[r]`` on.

    Every pixel is written, but the place moves on only after an inked one
    (no branch to mispredict); ``indices`` and ``values`` have one spare
    place at the end for the blank pixels written after the last inked one.
    """
    for r in range(x.shape[0]):
        k = indptr[r]
        for j in range(x.shape[1]):
            indices[k] = j
            values[k] = x[r, j]
            k += x[r, j] != 0


@jit
def _fill_by_words(x, words, indptr, indices, values):
    """:func:`_fill` for bytes, 8 at a time: ``words`` is ``x`` seen as uint64, and a word of 8 blank
    pixels (most of a digit's margins) is passed over in one test (60000 digits: 41 ms, against 98)."""
    for r in range(x.shape[0]):
        k = indptr[r]
        for w in range(words.shape[1]):
            if words[r, w] != 0:
                for j in range(8 * w, 8 * w + 8):
                    indices[k] = j
                    values[k] = x[r, j]
                    k += x[r, j] != 0


def _compressed(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the 2-D array ``x``: ``indptr`` (rows + 1), ``indices``, ``values``.

    As small as they come, since every epoch reads them all: raw pixels stay
    uint8 (anything else becomes float32), and column numbers are uint16
    when there are few enough columns (int32 otherwise).
    """
    x = np.ascontiguousarray(x)
    counts = np.empty(len(x), np.int64)
    _count_nonzero(x, counts)
    indptr = np.zeros(len(x) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    index_type = np.uint16 if x.shape[1] <= 2**16 else np.int32
    indices = np.empty(indptr[-1] + 1, index_type)
    values = np.empty(indptr[-1] + 1, np.uint8 if x.dtype == np.uint8 else np.float32)
    if x.dtype == np.uint8 and x.shape[1] % 8 == 0:
        _fill_by_words(x, x.view(np.uint64), indptr, indices, values)
    else:
        _fill(x, indptr, indices, values)
    return indptr, indices[:-1], values[:-1]


@jit
def _take(indptr, indices, values, chosen, b_ptr, b_indices, b_values, c_ptr, c_rows, c_values):
    """The entries of the rows ``chosen`` by rows (``b_``, CSR) and by columns (``c_``, CSC).

    ``b_ptr`` comes filled (each chosen row's start); the rest is written.
    The columns: count each column's entries, add the counts up into start
    places, then put every entry at its column's next place.
    """
    for i in range(len(chosen)):
        lo, hi, at = indptr[chosen[i]], indptr[chosen[i] + 1], b_ptr[i]
        b_indices[at:at + hi - lo] = indices[lo:hi]
        b_values[at:at + hi - lo] = values[lo:hi]
    c_ptr[:] = 0
    for k in range(b_ptr[-1]):
        c_ptr[b_indices[k] + 1] += 1
    for j in range(1, len(c_ptr)):
        c_ptr[j] += c_ptr[j - 1]
    place = c_ptr[:-1].copy()
    for i in range(len(chosen)):
        for k in range(b_ptr[i], b_ptr[i + 1]):
            j = b_indices[k]
            c_rows[place[j]] = i
            c_values[place[j]] = b_values[k]
            place[j] += 1


# --------------------------------------------------------------------------- #
# The container
# --------------------------------------------------------------------------- #
class SparseRows:
    """A batch kept as its non-zero entries, by rows (CSR) and by columns (CSC).

    Supports what the first Dense layer does with its inputs: ``x @ W`` and
    ``x.T @ g`` (for dense float32 ``W`` and ``g``), scaling
    (:meth:`scaled`: the input step), ``len``, ``shape``, ``dtype`` and
    :meth:`toarray`; nothing else, on purpose. Each entry stands for
    ``unit * value`` in float32 (the input step's scaling, done as the
    products read it, rounded as the input step rounds it).
    """

    def __init__(self, by_rows, by_columns, shape, unit=1.0):
        self.by_rows, self.by_columns, self.shape = by_rows, by_columns, tuple(shape)
        self.unit = np.float32(unit)

    @classmethod
    def from_dense(cls, x: np.ndarray) -> "SparseRows":
        """The non-zero entries of the 2-D array ``x``."""
        return cls(_compressed(x), _compressed(np.ascontiguousarray(x.T)), x.shape)

    @property
    def dtype(self):
        return np.dtype(np.float32)  # what the entries stand for, and the products' type

    @property
    def nnz(self) -> int:
        return len(self.by_rows[2])

    def __len__(self) -> int:
        return self.shape[0]

    def scaled(self, factor: float, dtype) -> "SparseRows":
        """Every entry times ``factor`` (the same arrays, a new ``unit``); ``dtype`` must be float32."""
        dtype = np.dtype(dtype)
        if dtype != np.float32:
            raise ValueError(f"SparseRows holds float32 entries, not {dtype}")
        if factor == 1:
            return self
        unit = np.float32(factor) if self.unit == 1 else self.unit * np.float32(factor)
        return SparseRows(self.by_rows, self.by_columns, self.shape, unit)

    def toarray(self) -> np.ndarray:
        """The dense batch (for tests and for looking at)."""
        indptr, indices, values = self.by_rows
        dense = np.zeros(self.shape, np.float32)
        dense[np.repeat(np.arange(len(self)), np.diff(indptr)), indices] = values
        if self.unit != 1:
            dense *= self.unit
        return dense

    def _dense(self, a: np.ndarray, rows: int, what: str) -> np.ndarray:
        if a.ndim != 2 or len(a) != rows:
            raise ValueError(f"cannot multiply {what}: shapes {self.shape} and {a.shape}")
        return np.ascontiguousarray(a, self.dtype)

    def __matmul__(self, W: np.ndarray) -> np.ndarray:
        """``x @ W``."""
        W = self._dense(W, self.shape[1], "x @ W")
        y = np.empty((len(self), W.shape[1]), self.dtype)
        _sums(*self.by_rows, self.unit, W, y)  # y[r] = sum of x[r, j] W[j] over r's inked pixels
        return y

    def transposed_times(self, g: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``x^T @ g``: the weight gradient of ``y = x @ W`` when ``g`` is dCost/dy (into ``out``, if given)."""
        g = self._dense(g, len(self), "x.T @ g")
        dW = np.empty((self.shape[1], g.shape[1]), self.dtype) if out is None else out
        if dW.shape != (self.shape[1], g.shape[1]) or dW.dtype != self.dtype or not dW.flags.c_contiguous:
            raise ValueError(f"x.T @ g of shape {(self.shape[1], g.shape[1])} cannot go into {dW.dtype} {dW.shape}")
        _sums(*self.by_columns, self.unit, g, dW)  # dW[j] = sum of x[r, j] g[r] over the rows inked at j
        return dW

    @property
    def T(self) -> "_Transposed":
        return _Transposed(self)

    def __repr__(self):
        return f"SparseRows(shape={self.shape}, nnz={self.nnz})"


class _Transposed:
    """``x.T`` of a :class:`SparseRows`, good for one thing: ``x.T @ g``."""

    def __init__(self, x: SparseRows):
        self.x = x

    def __matmul__(self, g: np.ndarray) -> np.ndarray:
        return self.x.transposed_times(g)


class SparseTable:
    """Every row of a 2-D array kept as its non-zero entries (by rows), once; batches of rows taken from it.

    For mini-batches of training digits that do not change between epochs:
    the digits are compressed once, and each batch's entries (by rows and by
    columns, a :class:`SparseRows`) are copied out of the table, without
    looking at a blank pixel again. ``prefetch``: taking a batch is worth
    doing on the other core while the one before trains
    (:func:`nnscratch.core.fast.mini_batches`).
    """

    prefetch = True  # 0.1-0.2 ms a batch of 128, most of it waiting for memory (its rows are anywhere)

    def __init__(self, x: np.ndarray):
        self.by_rows, self.shape = _compressed(x), tuple(x.shape)
        self.lengths = np.diff(self.by_rows[0])

    def rows(self, chosen: np.ndarray) -> SparseRows:
        """The rows ``chosen`` (indices), in that order."""
        indptr, indices, values = self.by_rows
        chosen = np.asarray(chosen, np.intp)
        if len(chosen) and not 0 <= chosen.min() <= chosen.max() < self.shape[0]:
            raise IndexError(f"rows {chosen.min()}..{chosen.max()} asked of a table of {self.shape[0]}")
        b_ptr = np.zeros(len(chosen) + 1, np.int64)
        np.cumsum(self.lengths[chosen], out=b_ptr[1:])
        nnz = int(b_ptr[-1])
        by_rows = (b_ptr, np.empty(nnz, indices.dtype), np.empty(nnz, values.dtype))
        row_type = np.uint16 if len(chosen) <= 2**16 else np.int32  # a column's entries name their rows
        by_columns = (np.empty(self.shape[1] + 1, np.int64), np.empty(nnz, row_type), np.empty(nnz, values.dtype))
        _take(indptr, indices, values, chosen, *by_rows, *by_columns)
        return SparseRows(by_rows, by_columns, (len(chosen), self.shape[1]))

