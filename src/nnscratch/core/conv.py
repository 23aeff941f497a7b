"""The layers of a convolutional network: Conv2D, MaxPool2D, Flatten.

(BatchNorm, for dense and convolutional outputs alike, is in batchnorm.py.)

Images travel between layers as (batch, channels, height, width), "NCHW",
as PyTorch and ONNX have them. Inside, these layers work *channels last*
(batch, height, width, channels), "NHWC": there one pixel's channels sit
side by side in memory, so the windows a convolution reads are long
contiguous runs. The NCHW array a layer returns is ``y.transpose(0, 3, 1, 2)``
of its NHWC result, a view that copies nothing; the next layer transposes it
back, again for free. The shapes and indices are NCHW; only the memory
order is not (``np.ascontiguousarray`` gives plain NCHW memory if needed).

How the speed was found, with figures: docs/cnn.md.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import kernels, parallel
from .layers import Layer, register
from .parallel import chunks, in_parallel


def _image_shape(layer, input_shape, channels=None) -> tuple[int, int, int]:
    """(C, H, W) from a per-sample shape, or a ValueError naming the layer."""
    if len(input_shape) != 3 or (channels is not None and input_shape[0] != channels):
        want = f"({channels}, height, width)" if channels else "(channels, height, width)"
        raise ValueError(f"{type(layer).__name__} takes images of shape {want}, got {tuple(input_shape)}")
    return tuple(int(v) for v in input_shape)


def _compiled():
    """The compiled loops of core/kernels/conv.py if they are on, else None (the NumPy code here runs)."""
    if not kernels.enabled():
        return None
    from .kernels import conv as compiled

    return compiled


# --------------------------------------------------------------------------- #
# Convolution as a matrix product
# --------------------------------------------------------------------------- #
def im2col(xh: np.ndarray, k: int, out: np.ndarray) -> None:
    """Write the k x k windows of a channels-last batch ``xh`` (N, H, W, C) into ``out``.

    ``out`` is (N, Ho, Wo, k*k*C) with Ho = H - k + 1, Wo = W - k + 1: entry
    (n, i, j) is the window whose top-left pixel is (i, j) in image n, read in
    (row, column, channel) order. A convolution is then a matrix product.

    ``sliding_window_view`` gives every window without copying (its axes are
    (N, Ho, Wo, C, k, k)); putting the channels last again makes a window's
    row of k pixels times C channels one contiguous run in both the view and
    ``out``, so the single copy moves runs of k*C numbers. (k*k shifted-slice
    copies move runs of only C, and were about 4x slower for conv2; docs/cnn.md.)
    """
    windows = sliding_window_view(xh, (k, k), axis=(1, 2)).transpose(0, 1, 2, 4, 5, 3)
    np.copyto(out.reshape(windows.shape), windows)


def col2im(dcols: np.ndarray, dx: np.ndarray, k: int) -> None:
    """The adjoint of :func:`im2col`: add each window's gradient onto its pixels in ``dx`` (N, H, W, C).

    A pixel belongs to up to k*k windows, so its gradient is the sum of its
    entries in all of them. For each offset (a, b) inside the window, the
    entries at that offset of all windows form one shifted copy of the image,
    so the sum is k*k whole-slice additions (``np.add.at`` would do the same
    one number at a time).
    """
    n, h, w, c = dx.shape
    ho, wo = h - k + 1, w - k + 1
    dcols = dcols.reshape(n, ho, wo, k, k, c)
    for a in range(k):
        for b in range(k):
            dx[:, a:a + ho, b:b + wo] += dcols[:, :, :, a, b]


@register
class Conv2D(Layer):
    """A 2-D convolution, stride 1: ``y[n, o] = b[o] + sum_c W[o, c] (*) x[n, c]``.

    Each of the ``out_channels`` filters is a (in_channels, k, k) block of
    weights ``W[o]`` slid over the image; its output at (i, j) is the dot
    product of ``W[o]`` with the k x k window of every input channel there,
    plus ``b[o]``. ``W`` has shape (out, in, k, k), as in PyTorch and ONNX.

    ``padding="valid"`` slides the window only where it fits (H - k + 1 rows
    out); ``"same"`` first surrounds the image with (k - 1) // 2 rows and
    columns of zeros (one more below and right for even k, like PyTorch) so
    the output keeps the input's height and width.

    With the windows as the rows of a matrix ``X`` (:func:`im2col`) and the
    filters as the columns of ``K`` (each filter read in the same
    row, column, channel order), the layer is a dense layer on windows:
    ``Y = X K + b``, one row per output pixel. So, exactly as for Dense:

    * dC/dK = X^T dC/dY: each weight's gradient sums, over every window it
      touched, the input under it times the output gradient there;
    * dC/db[o] = the sum of dC/dY over every pixel of channel o of every image;
    * dC/dX = dC/dY K^T, the gradient of every window, which :func:`col2im`
      adds back onto the pixels (overlapping windows share pixels).

    The samples are handled a few at a time (``parallel.CHUNK_BYTES`` of
    columns), so the columns a product reads were just written and are still
    in the cache (and so is the product when ``b`` is added), and the two
    halves of the batch run on the two cores (:func:`in_parallel`).
    """

    heavy = True  # a mini-batch's parts are worth their own threads (fast.SplitBatchStep)

    decay = ("W",)

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, padding: str = "valid",
                 dtype=np.float32):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Conv2D: {name} must be a whole number >= 1, got {value!r}")
        if padding not in ("valid", "same"):
            raise ValueError(f"Conv2D: padding must be 'valid' or 'same', got {padding!r}")
        k = self.kernel_size = int(kernel_size)
        self.in_channels, self.out_channels, self.padding = int(in_channels), int(out_channels), padding
        self.W = np.zeros((out_channels, in_channels, k, k), dtype)
        self.b = np.zeros(out_channels, dtype)
        self.grad = {"W": np.zeros_like(self.W), "b": np.zeros_like(self.b)}
        self.fan_in, self.fan_out = in_channels * k * k, out_channels * k * k  # as PyTorch counts them
        self._work = {}  # training only: reused arrays (a fresh column matrix costs its page faults)
        self._saved = None

    def params(self):
        return {"W": self.W, "b": self.b}

    def config(self):
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "padding": self.padding}

    def _pads(self) -> tuple[int, int]:
        """Zeros added (before, after) each spatial axis."""
        if self.padding == "valid":
            return 0, 0
        before = (self.kernel_size - 1) // 2
        return before, self.kernel_size - 1 - before

    def output_shape(self, input_shape):
        _, h, w = _image_shape(self, input_shape, self.in_channels)
        grow = sum(self._pads()) - self.kernel_size + 1
        if h + grow < 1 or w + grow < 1:
            raise ValueError(f"Conv2D: a {self.kernel_size}x{self.kernel_size} kernel does not fit "
                             f"in a {h}x{w} image without padding")
        return self.out_channels, h + grow, w + grow

    def _array(self, name: str, shape: tuple, prepare) -> np.ndarray:
        """A work array of ``shape``: the layer's own in training, a fresh one in prediction.

        Prediction never writes into the layer, so two threads may predict
        with it at once. A smaller batch (the last one) uses the front of a
        larger array. ``prepare`` fills a new array's parts that never change (zero borders).
        """
        work = self._work.get(name) if self.training else None
        if work is None or work.shape[1:] != shape[1:] or len(work) < shape[0]:
            work = np.empty(shape, self.W.dtype)
            prepare(work)
            if self.training:
                self._work[name] = work
        return work[:shape[0]]

    def replica(self):
        twin = super().replica()
        twin._work = {}  # each replica (one per thread) needs its own work arrays
        return twin

    def _kernel_matrix(self) -> np.ndarray:
        """``K``: the filters as columns, each read in (row, column, channel) order."""
        return self.W.transpose(2, 3, 1, 0).reshape(-1, self.out_channels)

    def _column_bytes(self, ho: int, wo: int) -> int:
        """The size of one sample's windows in the column matrix."""
        return ho * wo * self.fan_in * self.W.itemsize

    def forward(self, x):
        n, _, h, w = x.shape
        _, ho, wo = self.output_shape(x.shape[1:])
        before, after = self._pads()
        xh = x.transpose(0, 2, 3, 1)  # channels last: a view
        if before or after:
            padded = self._array("padded", (n, h + before + after, w + before + after, self.in_channels),
                                 lambda a: a.fill(0))
            padded[:, before:before + h, before:before + w] = xh
            xh = padded
        k, K = self.kernel_size, self._kernel_matrix()
        cols = self._array("cols", (n, ho, wo, len(K)), lambda a: None)
        y = np.empty((n, ho, wo, self.out_channels), K.dtype)  # NHWC: each row of the product one pixel
        per_sample = self._column_bytes(ho, wo)
        chunk = max(1, parallel.CHUNK_BYTES // per_sample)
        fast = _compiled()
        copy_windows = fast.im2col if fast else im2col

        def part(samples):
            for s in chunks(samples, chunk):
                copy_windows(xh[s], k, cols[s])
                np.matmul(cols[s].reshape(-1, len(K)), K, out=y[s].reshape(-1, self.out_channels))
                y[s] += self.b

        in_parallel(part, n, per_sample)
        if self.training:
            self._saved = (cols, xh.shape, (h, w))
        return y.transpose(0, 3, 1, 2)

    def backward(self, grad):
        cols, padded_shape, (h, w) = self._saved
        n, ho, wo, rows = cols.shape
        g = np.ascontiguousarray(grad.transpose(0, 2, 3, 1))  # dC/dY, copied only if not channels-last
        K = self._kernel_matrix()
        dx = np.zeros(padded_shape, g.dtype) if self.input_grad else None
        per_sample = self._column_bytes(ho, wo)
        chunk = max(1, parallel.CHUNK_BYTES // per_sample)
        fast = _compiled()
        add_windows = fast.col2im if fast else col2im

        def part(samples):
            dY = g[samples].reshape(-1, self.out_channels)
            partial = cols[samples].reshape(-1, rows).T @ dY, dY.sum(axis=0)
            for s in chunks(samples, chunk) if self.input_grad else ():
                add_windows(g[s].reshape(-1, self.out_channels) @ K.T, dx[s], self.kernel_size)
            return partial

        partials = in_parallel(part, n, per_sample)  # (dC/dK, dC/db) of each part of the batch
        k, c = self.kernel_size, self.in_channels
        dK = sum(p[0] for p in partials)
        self.grad["W"][...] = dK.reshape(k, k, c, self.out_channels).transpose(3, 2, 0, 1)
        self.grad["b"][...] = sum(p[1] for p in partials)
        if dx is None:
            return None
        before = self._pads()[0]
        return dx[:, before:before + h, before:before + w].transpose(0, 3, 1, 2)


# --------------------------------------------------------------------------- #
# Max pooling
# --------------------------------------------------------------------------- #
def _at(axis: int, t: int) -> tuple:
    """The index of ``a[..., t, ...]`` with ``t`` at ``axis``."""
    return (slice(None),) * axis + (t,)


def _max_along(a: np.ndarray, axis: int, best: np.ndarray, where: np.ndarray | None) -> None:
    """Write the max of ``a`` over ``axis`` into ``best`` and, unless ``where`` is None, where
    it was into ``where`` (the first one on ties)."""
    np.copyto(best, a[_at(axis, 0)])
    if where is not None:
        where.fill(0)
    for t in range(1, a.shape[axis]):
        if where is not None:
            better = np.greater(a[_at(axis, t)], best).view(np.uint8)  # strictly: an equal later value loses
            # The max's position is the last t that beat the running max; as t only grows,
            # that is the largest t * better seen (a masked copy was 4x slower).
            np.maximum(where, better * np.uint8(t), out=where)
        np.maximum(best, a[_at(axis, t)], out=best)


def _route(grad: np.ndarray, where: np.ndarray, axis: int, out: np.ndarray) -> None:
    """The adjoint of :func:`_max_along`: each gradient goes to the entry of ``out`` that was the max."""
    for t in range(out.shape[axis]):
        np.multiply(grad, where == t, out=out[_at(axis, t)])


@register
class MaxPool2D(Layer):
    """The largest value of each ``size`` x ``size`` block, blocks side by side (stride = size).

    Rows or columns left over at the bottom and right when the size does not
    divide the image are dropped, as PyTorch does (floor): 25x25 pooled by 2
    gives 12x12, and the 25th row and column get zero gradient.

    ``y`` is the max of its block, so dy/dx is 1 for the input that was the
    max and 0 for the others: backward sends each output's gradient to that
    one input (the first in reading order when several are equal, as PyTorch
    does; sending it to all of them would count it several times).

    The block max is taken in two steps, over the block's columns and then
    over its rows, each step remembering which entry won; backward undoes
    the two steps in reverse order. With the compiled kernels one loop finds
    each block's max and its place at once (core/kernels/conv.py).
    """

    def __init__(self, size: int = 2):
        super().__init__()
        if not isinstance(size, (int, np.integer)) or size < 1:
            raise ValueError(f"MaxPool2D: size must be a whole number >= 1, got {size!r}")
        self.size = int(size)
        self._saved = None

    def config(self):
        return {"size": self.size}

    def output_shape(self, input_shape):
        c, h, w = _image_shape(self, input_shape)
        if h < self.size or w < self.size:
            raise ValueError(f"MaxPool2D: a {h}x{w} image is smaller than the {self.size}x{self.size} block")
        return c, h // self.size, w // self.size

    def forward(self, x):
        n, c, h, w = x.shape
        _, ho, wo = self.output_shape(x.shape[1:])
        xh = x.transpose(0, 2, 3, 1)  # channels last: a view
        y = np.empty((n, ho, wo, c), x.dtype)
        fast = _compiled() if self.size <= 16 else None  # (a place in the block must fit in a byte)
        if fast:  # one loop: each block's max and its place at once
            where = np.empty(y.shape, np.uint8)
            in_parallel(lambda p: fast.max_pool(xh[p], self.size, y[p], where[p]), n, h * w * c * x.itemsize)
        else:
            where = self._max_in_two_steps(xh, y)
        if self.training:
            self._saved = (fast, where, x.shape)
        return y.transpose(0, 3, 1, 2)

    def _max_in_two_steps(self, xh, y):
        """The NumPy way: write the block maxima of ``xh`` into ``y``; in training, the two steps' winners."""
        n, ho, wo, c = y.shape
        s = self.size
        # (n, ho, s, wo, s, c): block (i, j) is [:, i, :, j, :, :]; splitting axes copies nothing
        blocks = xh[:, :ho * s, :wo * s].reshape(n, ho, s, wo, s, c)
        across = np.empty((n, ho, s, wo, c), y.dtype)  # the max over each block's columns
        which_column = np.empty(across.shape, np.uint8) if self.training else None
        which_row = np.empty(y.shape, np.uint8) if self.training else None

        def part(p):
            _max_along(blocks[p], 4, across[p], None if which_column is None else which_column[p])
            _max_along(across[p], 2, y[p], None if which_row is None else which_row[p])

        in_parallel(part, n, xh[0].size * y.itemsize)
        return which_column, which_row

    def backward(self, grad):
        fast, where, (n, c, h, w) = self._saved
        s, ho, wo = self.size, h // self.size, w // self.size
        g = grad.transpose(0, 2, 3, 1)
        cropped = (ho * s, wo * s) != (h, w)  # the rows and columns left over get zero gradient
        dxh = (np.zeros if cropped else np.empty)((n, h, w, c), grad.dtype)
        if fast:
            in_parallel(lambda p: fast.max_pool_backward(g[p], where[p], s, dxh[p]), n, h * w * c * grad.itemsize)
            return dxh.transpose(0, 3, 1, 2)
        which_column, which_row = where
        blocks = dxh[:, :ho * s, :wo * s].reshape(n, ho, s, wo, s, c)  # a view: splitting axes
        across = np.empty((n, ho, s, wo, c), grad.dtype)

        def part(p):
            _route(g[p], which_row[p], 2, across[p])
            _route(across[p], which_column[p], 4, blocks[p])

        in_parallel(part, n, h * w * c * grad.itemsize)
        return dxh.transpose(0, 3, 1, 2)


@register
class Flatten(Layer):
    """Each image (C, H, W) as one row of C*H*W numbers, in C, H, W order (as PyTorch).

    Nothing is computed, only rearranged, so backward rearranges the gradient
    back into the images' shape.
    """

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)

    def forward(self, x):
        if self.training:
            self._shape = x.shape
        return x.reshape(len(x), -1)  # NCHW order; copies when the memory is channels-last

    def backward(self, grad):
        return grad.reshape(self._shape)
