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

import numba
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
@numba.njit(inline="always")
def _add_row(y, at, v, W, start, n_out, wide):
    """``y[at:at+n_out] += v * W[start:start+n_out]`` (flat float32).

    The first ``wide`` numbers (a multiple of 8) 8 at a time, any others one by one.
    """
    for c in range(0, wide, LANES):
        axpy8(y, at + c, v, W, start + c)
    for c in range(wide, n_out):
        y[at + c] += v * W[start + c]


@jit
def _times_dense(colptr, rows, values, W, y):
    """``y = x @ W`` from x's columns: ``y[r] += x[r, j] W[j]`` for each pixel j, each of its rows r."""
    n_out = W.shape[1]
    wide = n_out - n_out % LANES
    y_flat, W_flat = y.reshape(-1), W.reshape(-1)
    y_flat[:] = 0
    for j in range(len(colptr) - 1):
        for k in range(colptr[j], colptr[j + 1]):
            _add_row(y_flat, rows[k] * n_out, values[k], W_flat, j * n_out, n_out, wide)


@jit
def _transposed_times_dense(indptr, indices, values, g, dW):
    """``dW = x^T @ g`` from x's rows: ``dW[j] += x[r, j] g[r]`` for each row r, each of its pixels j."""
    n_out = g.shape[1]
    wide = n_out - n_out % LANES
    dW_flat, g_flat = dW.reshape(-1), g.reshape(-1)
    dW_flat[:] = 0
    for r in range(len(indptr) - 1):
        for k in range(indptr[r], indptr[r + 1]):
            _add_row(dW_flat, indices[k] * n_out, values[k], g_flat, r * n_out, n_out, wide)


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

    Supports what the first Dense layer does with its inputs: ``x @ W``,
    ``x.T @ g`` and ``g.T @ x`` (for dense float32 ``W`` and ``g``), scaling
    (:meth:`scaled`: the input step), ``len``, ``shape``, ``dtype`` and
    :meth:`toarray`; nothing else, on purpose.
    """

    __array_ufunc__ = None  # NumPy then leaves ``g.T @ x`` to our __rmatmul__

    def __init__(self, by_rows, by_columns, shape):
        self.by_rows, self.by_columns, self.shape = by_rows, by_columns, tuple(shape)

    @classmethod
    def from_dense(cls, x: np.ndarray, dtype=np.float32) -> "SparseRows":
        """The non-zero entries of the 2-D array ``x`` (values converted to ``dtype``)."""
        return cls(_compressed(x, dtype), _compressed(np.ascontiguousarray(x.T), dtype), x.shape)

    @property
    def dtype(self):
        return self.by_rows[2].dtype

    @property
    def nnz(self) -> int:
        return len(self.by_rows[2])

    def __len__(self) -> int:
        return self.shape[0]

    def scaled(self, factor: float, dtype) -> "SparseRows":
        """Every entry times ``factor``, as ``dtype`` (itself if that changes nothing)."""
        if factor == 1 and np.dtype(dtype) == self.dtype:
            return self
        dtype = np.dtype(dtype)

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
        _times_dense(*self.by_columns, W, y)
        return y

    def transposed_times(self, g: np.ndarray) -> np.ndarray:
        """``x^T @ g``: the weight gradient of ``y = x @ W`` when ``g`` is dCost/dy."""
        g = self._dense(g, len(self), "x.T @ g")
        dW = np.empty((self.shape[1], g.shape[1]), self.dtype)
        _transposed_times_dense(*self.by_rows, g, dW)
        return dW

    @property
    def T(self) -> "_Transposed":
        return _Transposed(self)

    def __rmatmul__(self, gT: np.ndarray) -> np.ndarray:
        """``g.T @ x`` = ``(x^T @ g)^T``."""
        return self.transposed_times(gT.T).T

    def __repr__(self):
        return f"SparseRows(shape={self.shape}, nnz={self.nnz})"


class _Transposed:
    """``x.T`` of a :class:`SparseRows`, good for one thing: ``x.T @ g``."""

    def __init__(self, x: SparseRows):
        self.x = x

    def __matmul__(self, g: np.ndarray) -> np.ndarray:
        return self.x.transposed_times(g)
