"""Products with mostly blank digits: only the inked pixels take part.

About four pixels in five of an MNIST digit are 0, blank paper. In the first
layer's product ``y = x @ W`` each of them costs a multiplication by zero,
and so it does in the weight gradient ``dW = x^T @ g``. Kept as its
non-zero entries only, a batch lets both products skip the blanks::

    y[r]  += x[r, j] * W[j]     for every inked pixel (r, j): a row of W per pixel
    dW[j] += x[r, j] * g[r]     for every inked pixel (r, j): a row of g per pixel

A fifth of the multiplications, each one a whole row at a time.
:class:`SparseRows` keeps the entries twice, by rows ("compressed sparse
rows", CSR: each row's pixels together) and by columns (CSC: each pixel's
rows together), so that in both loops consecutive updates go to different
rows of the result and never wait for each other.

**Why a hand-made vector instruction.** Each update is 16 (or 8, 32, ...)
numbers wide. Numba's compiler turns such a short loop into one vector
instruction only if it knows the row it writes and the row it reads do not
overlap in memory, which it cannot know of two arrays passed in; it then
falls back to one number at a time, and BLAS, multiplying the zeros but 8
numbers at a time, wins. :func:`axpy8` says it directly: load 8 numbers of
each row, multiply-add, store.

Used by the full-batch step (:mod:`nnscratch.core.fast`), whose training
digits do not change between epochs, so their entries are found once.
Imports Numba: import this module only when :func:`nnscratch.core.kernels.enabled`.
"""
from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import jit

LANES = 8  # float32 numbers in one 256-bit vector register (AVX)


@intrinsic
def axpy8(typingctx, y, i, a, x, j):
    """``y[i:i+8] += a * x[j:j+8]`` for flat float32 arrays: one vector load, multiply-add and store."""
    if not all(isinstance(a, types.Array) and a.dtype == types.float32 and a.ndim == 1 for a in (y, x)):
        return None  # float32 only: anything else would be read as the wrong numbers
    signature = types.void(y, types.intp, types.float32, x, types.intp)

    def codegen(context, builder, sig, args):
        y_array = context.make_array(sig.args[0])(context, builder, args[0])
        x_array = context.make_array(sig.args[3])(context, builder, args[3])
        vector = ir.VectorType(ir.FloatType(), LANES)
        y_at = builder.bitcast(builder.gep(y_array.data, [args[1]]), vector.as_pointer())
        x_at = builder.bitcast(builder.gep(x_array.data, [args[4]]), vector.as_pointer())
        a_once = builder.insert_element(ir.Constant(vector, ir.Undefined), args[2], ir.Constant(ir.IntType(32), 0))
        a_all = builder.shuffle_vector(a_once, ir.Constant(vector, ir.Undefined),
                                       ir.Constant(ir.VectorType(ir.IntType(32), LANES), [0] * LANES))
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vector, [vector] * 3),
                                             f"llvm.fma.v{LANES}f32")  # a * x + y, rounded once
        total = builder.call(fma, [a_all, builder.load(x_at, align=4), builder.load(y_at, align=4)])
        builder.store(total, y_at, align=4)
        return context.get_dummy_value()

    return signature, codegen


# --------------------------------------------------------------------------- #
# The loops
# --------------------------------------------------------------------------- #
@functools.lru_cache(maxsize=None)
def scatter_rows(n: int):
    """The loop below for rows of ``n`` numbers, compiled once per ``n``.

    ``n`` is a constant of the compiled loop, not a number read at run time,
    so the compiler lays a row's 8-number steps out one after the other (for
    the blog's 16 neurons: two vector multiply-adds, no loop left): 1.6x
    faster than the same loop with ``n`` read from the array.
    """
    wide = n - n % LANES

    def scatter(starts, targets, values, source, out):
        """``out[targets[k]] += values[k] * source[o]`` for each o and each k of ``starts[o]:starts[o+1]``.

        Both products are this loop (``out`` is overwritten; all float32):

        * ``x @ W``, from x's columns: o is a pixel j, the k are its rows r, ``source`` is ``W``;
        * ``x^T @ g``, from x's rows: o is a row r, the k are its pixels j, ``source`` is ``g``.

        The first ``wide`` numbers of a row (a multiple of 8) go 8 at a time
        through :func:`axpy8`, any others one by one.
        """
        out_flat, source_flat = out.reshape(-1), source.reshape(-1)
        out_flat[:] = 0
        for o in range(len(starts) - 1):
            for k in range(starts[o], starts[o + 1]):
                at, v = targets[k] * n, values[k]
                for c in range(0, wide, LANES):
                    axpy8(out_flat, at + c, v, source_flat, o * n + c)
                for c in range(wide, n):
                    out_flat[at + c] += v * source_flat[o * n + c]

    return jit(scatter)


@jit
def _count_nonzero(x, counts):
    """``counts[r]`` = the number of non-zero entries of row ``r`` of ``x``."""
    for r in range(x.shape[0]):
        n = 0
        for j in range(x.shape[1]):
            if x[r, j] != 0:
                n += 1
        counts[r] = n


@jit
def _fill(x, indptr, indices, values):
    """Each row's non-zero entries and their columns, in column order, from ``indptr[r]`` on."""
    for r in range(x.shape[0]):
        k = indptr[r]
        for j in range(x.shape[1]):
            if x[r, j] != 0:
                indices[k] = j
                values[k] = x[r, j]
                k += 1


def _compressed(x: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR of the 2-D array ``x``: ``indptr`` (rows + 1), ``indices`` (int32), ``values`` (dtype)."""
    x = np.ascontiguousarray(x)
    counts = np.empty(len(x), np.int64)
    _count_nonzero(x, counts)
    indptr = np.zeros(len(x) + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    indices, values = np.empty(indptr[-1], np.int32), np.empty(indptr[-1], dtype)
    _fill(x, indptr, indices, values)
    return indptr, indices, values


# --------------------------------------------------------------------------- #
# The container
# --------------------------------------------------------------------------- #
class SparseRows:
    """A batch kept as its non-zero entries, by rows (CSR) and by columns (CSC).

    Supports what the first Dense layer does with its inputs: ``x @ W`` and
    ``x.T @ g`` (for dense float32 ``W`` and ``g``), scaling
    (:meth:`scaled`: the input step), ``len``, ``shape``, ``dtype`` and
    :meth:`toarray`; nothing else, on purpose.
    """

    def __init__(self, by_rows, by_columns, shape):
        self.by_rows, self.by_columns, self.shape = by_rows, by_columns, tuple(shape)

    @classmethod
    def from_dense(cls, x: np.ndarray) -> "SparseRows":
        """The non-zero entries of the 2-D array ``x``, as float32 (the products' only type)."""
        return cls(_compressed(x, np.float32), _compressed(np.ascontiguousarray(x.T), np.float32), x.shape)

    @property
    def dtype(self):
        return self.by_rows[2].dtype

    @property
    def nnz(self) -> int:
        return len(self.by_rows[2])

    def __len__(self) -> int:
        return self.shape[0]

    def scaled(self, factor: float, dtype) -> "SparseRows":
        """Every entry times ``factor`` (itself if that changes nothing); ``dtype`` must be float32."""
        dtype = np.dtype(dtype)
        if dtype != np.float32:
            raise ValueError(f"SparseRows holds float32 entries, not {dtype}")
        if factor == 1:
            return self

        def scale(values):
            out = values.astype(dtype)
            out *= dtype.type(factor)
            return out

        (indptr, indices, values), (colptr, rows, by_column) = self.by_rows, self.by_columns
        return SparseRows((indptr, indices, scale(values)), (colptr, rows, scale(by_column)), self.shape)

    def toarray(self) -> np.ndarray:
        """The dense batch (for tests and for looking at)."""
        indptr, indices, values = self.by_rows
        dense = np.zeros(self.shape, values.dtype)
        dense[np.repeat(np.arange(len(self)), np.diff(indptr)), indices] = values
        return dense

    def _dense(self, a: np.ndarray, rows: int, what: str) -> np.ndarray:
        if a.ndim != 2 or len(a) != rows:
            raise ValueError(f"cannot multiply {what}: shapes {self.shape} and {a.shape}")
        return np.ascontiguousarray(a, self.dtype)

    def __matmul__(self, W: np.ndarray) -> np.ndarray:
        """``x @ W``."""
        W = self._dense(W, self.shape[1], "x @ W")
        y = np.empty((len(self), W.shape[1]), self.dtype)
        scatter_rows(W.shape[1])(*self.by_columns, W, y)  # y[r] += x[r, j] W[j], pixel by pixel
        return y

    def transposed_times(self, g: np.ndarray) -> np.ndarray:
        """``x^T @ g``: the weight gradient of ``y = x @ W`` when ``g`` is dCost/dy."""
        g = self._dense(g, len(self), "x.T @ g")
        dW = np.empty((self.shape[1], g.shape[1]), self.dtype)
        scatter_rows(g.shape[1])(*self.by_rows, g, dW)  # dW[j] += x[r, j] g[r], row by row
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
