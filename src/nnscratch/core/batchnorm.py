"""Batch normalisation (Ioffe & Szegedy, 2015), for dense and convolutional outputs.

Each feature (a dense layer's unit, or a convolution's channel over every
pixel) is shifted and scaled to mean 0 and variance 1 over the batch, then
given a learned scale ``gamma`` and shift ``beta``. Training gets easier
because a layer's inputs no longer drift as the layers below learn.
"""
from __future__ import annotations

import numpy as np

from .layers import Layer, register


@register
class BatchNorm(Layer):
    """``y = gamma * (x - mean) / sqrt(var + eps) + beta``, per feature.

    Works on (N, F) rows (one mean per column) and on (N, C, H, W) images
    (one mean per channel, over the batch and every pixel), as PyTorch's
    BatchNorm1d and BatchNorm2d.

    * **Training**: ``mean`` and ``var`` are the batch's own (the variance
      divides by m, the number of values per feature). The running averages
      ``running_mean`` and ``running_var`` (buffers, kept in model files)
      move ``momentum`` of the way towards them at each batch, the variance
      with m / (m - 1) (unbiased), both as PyTorch does.
    * **Prediction**: the running averages replace the batch's, so a digit's
      answer does not depend on the other digits in its batch.

    Backward (training), with ``xhat = (x - mean) / std`` and ``g`` = dC/dy,
    all sums and means over the m values of one feature:

    * dC/dbeta = sum(g), dC/dgamma = sum(g * xhat), as for any ``a * x + b``;
    * dC/dx = gamma / std * (g - mean(g) - xhat * mean(g * xhat)). Moving one
      x moves its own xhat by 1/std, but also the batch's mean (which takes
      mean(g) back from every x) and its std (which takes back the part of g
      along xhat); what is left is g with those two directions removed.

    ``gamma`` and ``beta`` learn but get no weight decay (``decay`` is empty).
    A batch's statistics depend on the whole batch, so the layer is not
    ``rowwise``: the full-batch step, which cuts the rows into blocks, leaves
    networks with it to the plain path.
    A feature with one value per batch (m = 1) has no spread to normalise:
    its output is ``beta`` and the running variance is updated with m / 1.
    """

    rowwise = False

    def __init__(self, num_features: int, momentum: float = 0.1, eps: float = 1e-5, dtype=np.float32):
        super().__init__()
        if not isinstance(num_features, (int, np.integer)) or num_features < 1:
            raise ValueError(f"BatchNorm: num_features must be a whole number >= 1, got {num_features!r}")
        self.num_features, self.momentum, self.eps = int(num_features), float(momentum), float(eps)
        self.gamma = np.ones(num_features, dtype)
        self.beta = np.zeros(num_features, dtype)
        self.running_mean = np.zeros(num_features, dtype)
        self.running_var = np.ones(num_features, dtype)
        self.grad = {"gamma": np.zeros_like(self.gamma), "beta": np.zeros_like(self.beta)}
        self._saved = None

    def params(self):
        return {"gamma": self.gamma, "beta": self.beta}

    def buffers(self):
        return {"running_mean": self.running_mean, "running_var": self.running_var}

    def config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps}

    def output_shape(self, input_shape):
        if len(input_shape) not in (1, 3) or input_shape[0] != self.num_features:
            raise ValueError(f"BatchNorm({self.num_features}) takes ({self.num_features},) rows or "
                             f"({self.num_features}, height, width) images, got {tuple(input_shape)}")
        return tuple(input_shape)

    @staticmethod
    def _rows(x: np.ndarray) -> np.ndarray:
        """(m, features): rows as they are; images with each pixel a row of its channels."""
        return x if x.ndim == 2 else x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])

    @staticmethod
    def _unrows(rows: np.ndarray, shape: tuple) -> np.ndarray:
        """Undo :meth:`_rows`: images come back NCHW (channels-last memory, a view)."""
        if len(shape) == 2:
            return rows
        n, c, h, w = shape
        return rows.reshape(n, h, w, c).transpose(0, 3, 1, 2)

    def forward(self, x):
        self.output_shape(x.shape[1:])
        rows = self._rows(x)
        f = self.gamma.dtype.type
        if not self.training:
            scale = self.gamma / np.sqrt(self.running_var + f(self.eps))
            y = rows * scale
            y += self.beta - self.running_mean * scale
            return self._unrows(y, x.shape)
        m = len(rows)
        mean = rows.mean(axis=0)
        xhat = rows - mean
        var = np.mean(np.square(xhat), axis=0)
        inv_std = 1 / np.sqrt(var + f(self.eps))
        xhat *= inv_std
        self.running_mean += f(self.momentum) * (mean - self.running_mean)
        self.running_var += f(self.momentum) * (var * f(m / max(m - 1, 1)) - self.running_var)
        self._saved = (xhat, inv_std, x.shape)
        y = xhat * self.gamma
        y += self.beta
        return self._unrows(y, x.shape)

    def backward(self, grad):
        xhat, inv_std, shape = self._saved
        g = self._rows(grad)
        np.sum(g, axis=0, out=self.grad["beta"])
        np.sum(g * xhat, axis=0, out=self.grad["gamma"])
        if not self.input_grad:
            return None
        m = g.dtype.type(len(g))
        dx = g - self.grad["beta"] / m
        dx -= xhat * (self.grad["gamma"] / m)
        dx *= self.gamma * inv_std
        return self._unrows(dx, shape)
