"""core/kernels/conv.py against the NumPy code of core/conv.py it stands in for.

Small random shapes (odd sizes, one and several channels, contiguous and
transposed inputs); copies and routes must match exactly, sums up to rounding.
The layers' own checks (finite differences, plain loops) run with the kernels
on and off in tests/test_conv.py.
"""
from __future__ import annotations

import numpy as np
import pytest

from nnscratch.core import conv, kernels
from nnscratch.core.conv import Conv2D, MaxPool2D

pytest.importorskip("numba")
from nnscratch.core.kernels import conv as compiled  # noqa: E402  (only with Numba)

SHAPES = [(3, 7, 9, 1, 3), (2, 6, 5, 4, 2), (1, 5, 5, 3, 5), (2, 4, 6, 2, 1)]  # n, h, w, c, k


@pytest.fixture
def switch(monkeypatch):
    """``switch(on)``: the compiled kernels on or off for what follows."""
    def flip(on: bool):
        monkeypatch.setenv("NNSCRATCH_KERNELS", "" if on else "numpy")
        kernels.enabled.cache_clear()
    yield flip
    kernels.enabled.cache_clear()


@pytest.mark.parametrize("n, h, w, c, k", SHAPES)
@pytest.mark.parametrize("transposed", [False, True])
def test_im2col_copies_the_same_windows(n, h, w, c, k, transposed):
    rng = np.random.default_rng(1)
    xh = rng.normal(size=(n, c, h, w)).transpose(0, 2, 3, 1) if transposed else rng.normal(size=(n, h, w, c))
    shape = (n, h - k + 1, w - k + 1, k * k * c)
    want, got = np.empty(shape), np.full(shape, np.nan)
    conv.im2col(xh, k, want)
    compiled.im2col(xh, k, got)
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("n, h, w, c, k", SHAPES)
def test_col2im_adds_the_same_gradients_bit_for_bit(n, h, w, c, k):
    rng = np.random.default_rng(2)
    dcols = rng.normal(size=(n * (h - k + 1) * (w - k + 1), k * k * c)).astype(np.float32)
    start = rng.normal(size=(n, h, w, c)).astype(np.float32)  # col2im adds onto what is there
    want, got = start.copy(), start.copy()
    conv.col2im(dcols, want, k)
    compiled.col2im(dcols, got, k)
    np.testing.assert_array_equal(got, want)  # the same additions in the same order: the same bits


@pytest.mark.parametrize("size, h, w, c", [(2, 6, 4, 3), (2, 7, 5, 1), (3, 7, 9, 2), (1, 3, 2, 2), (4, 9, 8, 5)])
def test_max_pool_matches_the_two_numpy_steps_ties_included(switch, size, h, w, c):
    """Forward (max and place) and backward through the layer, kernels on and off: identical."""
    rng = np.random.default_rng(3)
    x = rng.integers(0, 3, size=(3, c, h, w)).astype(np.float32)  # few values: many ties
    grad = rng.normal(size=(3, c, h // size, w // size)).astype(np.float32)
    results = {}
    for on in (False, True):
        switch(on)
        layer = MaxPool2D(size)
        results[on] = layer(x), layer.backward(grad)
    for want, got in zip(results[False], results[True]):
        np.testing.assert_array_equal(got, want)


def test_max_pool_places_count_in_reading_order():
    x = np.array([[[[1, 5, 2], [5, 0, 7], [9, 9, 9]]]], np.float32).transpose(0, 2, 3, 1)  # one 3x3 block
    y, where = np.empty((1, 1, 1, 1), np.float32), np.empty((1, 1, 1, 1), np.uint8)
    compiled.max_pool(x, 3, y, where)
    assert (y.item(), where.item()) == (9, 6)  # the first 9: row 2, column 0
    dx = np.full(x.shape, np.nan, np.float32)
    compiled.max_pool_backward(np.full((1, 1, 1, 1), 4, np.float32), where, 3, dx)
    np.testing.assert_array_equal(dx.ravel(), [0, 0, 0, 0, 0, 0, 4, 0, 0])


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_layer_gives_the_same_numbers_with_and_without_kernels(switch, padding):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 3, 8, 7)).astype(np.float32)
    results = {}
    for on in (False, True):
        switch(on)
        layer = Conv2D(3, 5, 3, padding)
        layer.W[...] = np.random.default_rng(5).normal(size=layer.W.shape)
        y = layer(x)
        grad = np.random.default_rng(6).normal(size=y.shape).astype(np.float32)
        results[on] = y, layer.backward(grad), layer.grad["W"].copy(), layer.grad["b"].copy()
    for want, got in zip(results[False], results[True]):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_relu_compiled_and_numpy_agree_whatever_the_memory_order(switch):
    """Feature maps (channels-last memory seen as NCHW), plain rows, an array with gaps, NaN."""
    from nnscratch.core.layers import ReLU

    rng = np.random.default_rng(4)
    maps = rng.normal(size=(8, 24, 24, 32)).astype(np.float32).transpose(0, 3, 1, 2)
    maps[0, 0, 0, 0] = np.nan
    inputs = [maps, rng.normal(size=(64, 2000)).astype(np.float32), rng.normal(size=(300, 500))[:, ::2]]
    for x in inputs:
        grads = [rng.normal(size=x.shape).astype(x.dtype)]
        grads[0].reshape(-1)[:3] = [np.nan, np.inf, -np.inf]  # blown-up gradients stay blown up (0 * NaN)
        grads.append(grads[0].transpose(*reversed(range(x.ndim))).copy().transpose(*reversed(range(x.ndim))))
        results = []
        for on in (True, False):
            switch(on)
            layer = ReLU()
            y = layer(x)
            with np.errstate(invalid="ignore"):  # inf * 0 in NumPy's product: NaN, and a warning
                results.append([y, *(layer.backward(g) for g in grads)])
        for got, want in zip(*results):
            np.testing.assert_array_equal(got, want)
        np.testing.assert_array_equal(results[0][0], np.maximum(x, 0))
        with np.errstate(invalid="ignore"):
            np.testing.assert_array_equal(results[0][1], grads[0] * (x > 0))
