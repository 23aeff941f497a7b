"""Conv2D, MaxPool2D, Flatten and BatchNorm: forward against plain loops, backward against finite differences.

The gradient checks use a linear cost ``C = sum(y * R)`` with a fixed random
``R``, so dC/dy = R is what backward receives, and compare every gradient
backward computes (input and parameters) with central differences in float64.

Every test runs twice: with the compiled loops of core/kernels/conv.py (when
Numba is installed) and with the layers' NumPy code alone.
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from nnscratch.core import kernels, parallel
from nnscratch.core.batchnorm import BatchNorm
from nnscratch.core.conv import Conv2D, Flatten, MaxPool2D

from .gradcheck import numeric_gradient, relative_error

TOLERANCE = 1e-6


@pytest.fixture(autouse=True, params=["compiled", "numpy"])
def code(request, monkeypatch):
    """Each test with the compiled kernels switched on, then off (``NNSCRATCH_KERNELS=numpy``)."""
    if request.param == "compiled" and importlib.util.find_spec("numba") is None:
        pytest.skip("Numba is not installed: the compiled kernels are off")
    monkeypatch.setenv("NNSCRATCH_KERNELS", "" if request.param == "compiled" else "numpy")
    kernels.enabled.cache_clear()
    assert kernels.enabled() == (request.param == "compiled")
    yield request.param
    kernels.enabled.cache_clear()  # (monkeypatch restores the variable after this)


def randomise(layer, rng):
    """Random float64 values in every parameter (and positive BatchNorm scales)."""
    for name, p in layer.params().items():
        p[...] = rng.uniform(0.5, 1.5, p.shape) if name == "gamma" else rng.normal(0, 1, p.shape)
    return layer


def check_gradients(layer, x, rng):
    """backward's dC/dx and dC/dparam against finite differences of a linear cost."""
    weights = rng.normal(size=layer(x).shape)
    def cost():
        return float(np.sum(layer(x) * weights))
    layer(x)
    dx = layer.backward(weights)
    analytic = {"x": dx, **{name: g.copy() for name, g in layer.grad.items()}}
    numeric = {"x": numeric_gradient(cost, x),
               **{name: numeric_gradient(cost, p) for name, p in layer.params().items()}}
    for name, slope in numeric.items():
        assert analytic[name].shape == slope.shape, name
        if np.linalg.norm(slope) < 1e-7:  # truly zero (a bias just before BatchNorm)
            assert np.linalg.norm(analytic[name]) < 1e-7, name
        else:
            assert relative_error(analytic[name], slope) < TOLERANCE, name


# --------------------------------------------------------------------------- #
# Plain loops: slow, obviously right
# --------------------------------------------------------------------------- #
def loop_conv(x, W, b, padding):
    n = len(x)
    out, _, k, _ = W.shape
    if padding == "same":
        before = (k - 1) // 2
        x = np.pad(x, ((0, 0), (0, 0), (before, k - 1 - before), (before, k - 1 - before)))
    ho, wo = x.shape[2] - k + 1, x.shape[3] - k + 1
    y = np.zeros((n, out, ho, wo))
    for i in range(n):
        for o in range(out):
            for r in range(ho):
                for s in range(wo):
                    y[i, o, r, s] = np.sum(x[i, :, r:r + k, s:s + k] * W[o]) + b[o]
    return y


def loop_maxpool(x, size):
    n, c, h, w = x.shape
    y = np.zeros((n, c, h // size, w // size))
    for index in np.ndindex(y.shape):
        i, ch, r, s = index
        y[index] = x[i, ch, r * size:(r + 1) * size, s * size:(s + 1) * size].max()
    return y


# --------------------------------------------------------------------------- #
# Conv2D
# --------------------------------------------------------------------------- #
CONV_CASES = [  # (in, out, k, padding, height, width)
    (1, 2, 3, "valid", 6, 5),
    (3, 4, 3, "valid", 7, 6),
    (3, 2, 3, "same", 5, 7),
    (2, 3, 2, "same", 5, 4),  # even kernel: one more zero below and right, like PyTorch
    (2, 3, 5, "same", 4, 3),  # kernel larger than the image
    (2, 2, 1, "valid", 3, 3),
]


@pytest.mark.parametrize("c_in, c_out, k, padding, h, w", CONV_CASES)
def test_conv_forward_matches_loops(c_in, c_out, k, padding, h, w):
    rng = np.random.default_rng(1)
    layer = randomise(Conv2D(c_in, c_out, k, padding, dtype=np.float64), rng)
    x = rng.normal(size=(3, c_in, h, w))
    y = layer(x)
    np.testing.assert_allclose(y, loop_conv(x, layer.W, layer.b, padding), rtol=1e-12, atol=1e-12)
    assert y.shape[1:] == layer.output_shape(x.shape[1:])


@pytest.mark.parametrize("c_in, c_out, k, padding, h, w", CONV_CASES)
def test_conv_gradients(c_in, c_out, k, padding, h, w):
    rng = np.random.default_rng(2)
    layer = randomise(Conv2D(c_in, c_out, k, padding, dtype=np.float64), rng)
    check_gradients(layer, rng.normal(size=(2, c_in, h, w)), rng)


def test_conv_first_layer_skips_input_gradient_but_not_weights():
    rng = np.random.default_rng(3)
    layer = randomise(Conv2D(1, 2, 3, dtype=np.float64), rng)
    x = rng.normal(size=(2, 1, 5, 5))
    grad = rng.normal(size=(2, 2, 3, 3))
    layer(x)
    expected = layer.backward(grad) is not None, layer.grad["W"].copy()
    layer.input_grad = False
    layer(x)
    assert layer.backward(grad) is None and expected[0]
    np.testing.assert_array_equal(layer.grad["W"], expected[1])


def test_conv_smaller_last_batch_reuses_work_arrays_correctly():
    """The layer keeps its column matrix between batches; a smaller batch must not see stale rows."""
    rng = np.random.default_rng(4)
    layer = randomise(Conv2D(2, 3, 3, "same", dtype=np.float64), rng)
    big, small = rng.normal(size=(5, 2, 6, 6)), rng.normal(size=(2, 2, 6, 6))
    layer(big)
    np.testing.assert_allclose(layer(small), loop_conv(small, layer.W, layer.b, "same"), atol=1e-12)
    check_gradients(layer, small, rng)


@pytest.mark.parametrize("padding", ["valid", "same"])
def test_conv_in_chunks_on_two_threads_gives_the_same_numbers(monkeypatch, padding):
    """Big batches go in chunks of samples over two threads; tiny ones (as above) in one piece."""
    rng = np.random.default_rng(12)
    layer = randomise(Conv2D(3, 4, 3, padding, dtype=np.float64), rng)
    x, grad = rng.normal(size=(7, 3, 6, 5)), rng.normal(size=(7, 4, *layer.output_shape((3, 6, 5))[1:]))
    whole = layer(x), layer.backward(grad), layer.grad["W"].copy(), layer.grad["b"].copy()
    monkeypatch.setattr(parallel, "CHUNK_BYTES", 1)  # one sample per chunk
    monkeypatch.setattr(parallel, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "WORKERS", 2)
    parts = layer(x), layer.backward(grad), layer.grad["W"].copy(), layer.grad["b"].copy()
    for a, b in zip(whole, parts):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size, h, w", [(2, 6, 6), (3, 7, 8)])
def test_maxpool_on_two_threads_gives_the_same_numbers(monkeypatch, size, h, w):
    rng = np.random.default_rng(13)
    layer, x = MaxPool2D(size), rng.normal(size=(5, 3, h, w))
    grad = rng.normal(size=(5, 3, h // size, w // size))
    whole = layer(x), layer.backward(grad)
    monkeypatch.setattr(parallel, "PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "WORKERS", 2)
    for a, b in zip(whole, (layer(x), layer.backward(grad))):
        np.testing.assert_array_equal(a, b)


def test_conv_is_float32_by_default_and_describes_itself():
    layer = Conv2D(3, 8, 5, padding="same")
    y = layer(np.ones((2, 3, 9, 9), np.float32))
    assert y.dtype == np.float32 and layer.W.shape == (8, 3, 5, 5) and layer.W.dtype == np.float32
    assert y.shape[1:] == layer.output_shape((3, 9, 9)) == (8, 9, 9)
    assert Conv2D(**layer.config()).config() == layer.config()
    assert set(layer.params()) == set(layer.grad) == {"W", "b"} and layer.decay == ("W",)
    assert (layer.fan_in, layer.fan_out) == (3 * 25, 8 * 25)
    assert layer.buffers() == {}


@pytest.mark.parametrize("kwargs, shape", [
    ({"in_channels": 0, "out_channels": 2, "kernel_size": 3}, None),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 3, "padding": "full"}, None),
    ({"in_channels": 1, "out_channels": 2, "kernel_size": 5}, (1, 4, 4)),  # does not fit
    ({"in_channels": 3, "out_channels": 2, "kernel_size": 3}, (1, 8, 8)),  # wrong channels
])
def test_conv_bad_arguments_are_named(kwargs, shape):
    with pytest.raises(ValueError, match="Conv2D"):
        Conv2D(**kwargs).output_shape(shape)


# --------------------------------------------------------------------------- #
# MaxPool2D and Flatten
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("size, h, w", [(2, 6, 4), (2, 7, 5), (3, 7, 9), (1, 3, 2)])
def test_maxpool_forward_and_gradients(size, h, w):
    rng = np.random.default_rng(5)
    layer = MaxPool2D(size)
    x = rng.normal(size=(2, 3, h, w))
    y = layer(x)
    np.testing.assert_array_equal(y, loop_maxpool(x, size))
    assert y.shape[1:] == layer.output_shape(x.shape[1:])
    check_gradients(layer, x, rng)


def test_maxpool_sends_a_tied_gradient_to_the_first_max_only():
    layer = MaxPool2D(2)
    x = np.array([[[[1.0, 3.0], [3.0, 3.0]], [[0.0, 0.0], [0.0, 0.0]]]])  # ties in both channels
    layer(x)
    dx = layer.backward(np.array([[[[10.0]], [[20.0]]]]))
    np.testing.assert_array_equal(dx, [[[[0, 10], [0, 0]], [[20, 0], [0, 0]]]])


def test_flatten_keeps_pytorch_order_and_shape():
    layer = Flatten()
    x = np.arange(2 * 3 * 4 * 5, dtype=np.float64).reshape(2, 3, 4, 5)
    channels_last = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # as conv gives
    np.testing.assert_array_equal(layer(channels_last), x.reshape(2, 60))
    assert layer.output_shape((3, 4, 5)) == (60,)
    np.testing.assert_array_equal(layer.backward(x.reshape(2, 60)), x)


def test_layers_write_nothing_when_predicting():
    """In eval mode a forward keeps no inputs or work arrays, so threads may share the layer."""
    rng = np.random.default_rng(6)
    x = rng.normal(size=(2, 2, 6, 6))
    for layer in (Conv2D(2, 3, 3, "same", dtype=np.float64), MaxPool2D(2), Flatten(), BatchNorm(2, dtype=np.float64)):
        layer.training = False
        before = {name: (id(v), v.copy() if isinstance(v, np.ndarray) else v) for name, v in vars(layer).items()}
        layer(x)
        after = vars(layer)
        assert set(after) == set(before), type(layer).__name__
        for name, (identity, value) in before.items():
            assert id(after[name]) == identity, (type(layer).__name__, name)
            if isinstance(value, np.ndarray):
                np.testing.assert_array_equal(after[name], value)


# --------------------------------------------------------------------------- #
# BatchNorm
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 4, 5), (2, 3, 3, 1)])
def test_batchnorm_gradients(shape):
    rng = np.random.default_rng(7)
    layer = randomise(BatchNorm(shape[1], dtype=np.float64), rng)
    check_gradients(layer, rng.normal(2, 3, size=shape), rng)


def test_batchnorm_gradients_on_channels_last_conv_output():
    rng = np.random.default_rng(8)
    layer = randomise(BatchNorm(3, dtype=np.float64), rng)
    x = np.ascontiguousarray(rng.normal(size=(2, 4, 5, 3))).transpose(0, 3, 1, 2)
    check_gradients(layer, x, rng)


def test_batchnorm_training_uses_the_batch_and_updates_running_statistics():
    rng = np.random.default_rng(9)
    layer = BatchNorm(3, dtype=np.float64)
    x = rng.normal(5, 2, size=(4, 3, 2, 2))
    y = layer(x)
    per_channel = x.transpose(1, 0, 2, 3).reshape(3, -1)
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), per_channel.var(axis=1) / (per_channel.var(axis=1) + 1e-5))
    # momentum 0.1 from mean 0 / variance 1, the variance unbiased (as PyTorch)
    np.testing.assert_allclose(layer.running_mean, 0.1 * per_channel.mean(axis=1))
    np.testing.assert_allclose(layer.running_var, 0.9 + 0.1 * per_channel.var(axis=1, ddof=1))
    assert set(layer.buffers()) == {"running_mean", "running_var"} and layer.decay == ()


def test_batchnorm_eval_uses_running_statistics_one_row_at_a_time():
    rng = np.random.default_rng(10)
    layer = randomise(BatchNorm(4, dtype=np.float64), rng)
    layer.running_mean[...] = rng.normal(size=4)
    layer.running_var[...] = rng.uniform(0.5, 2, size=4)
    layer.training = False
    x = rng.normal(size=(5, 4))
    expected = layer.gamma * (x - layer.running_mean) / np.sqrt(layer.running_var + 1e-5) + layer.beta
    np.testing.assert_allclose(layer(x), expected)
    np.testing.assert_allclose(layer(x[:1]), expected[:1])  # no dependence on the rest of the batch
    running = layer.running_mean.copy()
    layer(x)
    np.testing.assert_array_equal(layer.running_mean, running)


def test_batchnorm_describes_itself_and_checks_shapes():
    layer = BatchNorm(8)
    assert BatchNorm(**layer.config()).config() == layer.config() == {"num_features": 8, "momentum": 0.1,
                                                                      "eps": 1e-5}
    assert layer.output_shape((8, 5, 5)) == (8, 5, 5) and layer.output_shape((8,)) == (8,)
    assert layer(np.ones((2, 8), np.float32)).dtype == np.float32
    with pytest.raises(ValueError, match="BatchNorm"):
        layer.output_shape((4, 5, 5))


# --------------------------------------------------------------------------- #
# The layers chained, as a network runs them
# --------------------------------------------------------------------------- #
def test_chained_layers_gradient():
    """'same' conv, batchnorm, odd-size pooling, valid conv, flatten: the NHWC views pass through intact."""
    rng = np.random.default_rng(11)
    layers = [randomise(Conv2D(2, 3, 3, "same", dtype=np.float64), rng), randomise(BatchNorm(3, dtype=np.float64), rng),
              MaxPool2D(2), randomise(Conv2D(3, 2, 2, dtype=np.float64), rng), Flatten()]
    x = rng.normal(size=(2, 2, 7, 7))

    class Chain:
        def __call__(self, x):
            for layer in layers:
                x = layer(x)
            return x

        def backward(self, grad):
            for layer in reversed(layers):
                grad = layer.backward(grad)
            return grad

        def params(self):
            return {f"{i}{name}": p for i, layer in enumerate(layers) for name, p in layer.params().items()}

        @property
        def grad(self):
            return {f"{i}{name}": g for i, layer in enumerate(layers) for name, g in layer.grad.items()}

    check_gradients(Chain(), x, rng)
