"""The compiled kernels (core/kernels) against the NumPy code they replace, and the split batch step."""
import numpy as np
import pytest

from nnscratch import mlp
from nnscratch.core import kernels
from nnscratch.core.builders import network_from_layers
from nnscratch.core.fast import SplitBatchStep, worth_splitting
from nnscratch.core.optimizers import Adam
from nnscratch.core.training import TrainConfig, Trainer


@pytest.fixture
def kernels_off(monkeypatch):
    """Run the body with the NumPy code only (as without Numba)."""
    monkeypatch.setenv("NNSCRATCH_KERNELS", "numpy")
    kernels.enabled.cache_clear()
    yield
    monkeypatch.delenv("NNSCRATCH_KERNELS")
    kernels.enabled.cache_clear()


def test_the_switch_turns_kernels_off(kernels_off):
    assert not kernels.enabled()


def adam_steps(shapes, steps=5, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    optimizer = Adam(1e-2)
    for _ in range(steps):
        optimizer.update(params, [rng.standard_normal(s).astype(np.float32) for s in shapes])
    return params, optimizer


SHAPES = [(300, 40), (40,), (40, 10), (10,)]


def test_adam_in_one_pass_gives_the_numpy_lines_bit_for_bit(monkeypatch):
    pytest.importorskip("numba")
    kernels.enabled.cache_clear()
    compiled, memory = adam_steps(SHAPES)
    monkeypatch.setenv("NNSCRATCH_KERNELS", "numpy")
    kernels.enabled.cache_clear()
    plain, plain_memory = adam_steps(SHAPES)
    monkeypatch.delenv("NNSCRATCH_KERNELS")
    kernels.enabled.cache_clear()
    for a, b in zip(compiled + memory.m + memory.v, plain + plain_memory.m + plain_memory.v):
        np.testing.assert_array_equal(a, b)


def test_adam_kernel_visits_every_weight_once():
    pytest.importorskip("numba")
    from nnscratch.core.kernels.adam import adam_update

    kernels.enabled.cache_clear()
    rng = np.random.default_rng(1)
    p, g = [[rng.standard_normal(n).astype(np.float32) for n in (50_000, 7, 30_001)] for _ in range(2)]
    m, v = [np.zeros_like(a) for a in p], [np.zeros_like(a) for a in p]
    before = [a.copy() for a in p]
    adam_update(p, g, m, v, 0.9, 0.999, 1e-3, 1e-8)
    for a, b, grad, mean in zip(p, before, g, m):
        np.testing.assert_allclose(mean, 0.1 * grad, rtol=1e-6)  # every weight was visited once
        assert np.all(np.sign(b - a) == np.sign(grad))  # and stepped against its gradient


def split_and_plain_gradients(rows):
    rng = np.random.default_rng(2)
    network = mlp([784, 32, 16, 10], activation="relu", seed=0)
    x = rng.integers(0, 256, (rows, 784), dtype=np.uint8)
    y = rng.integers(0, 10, rows)
    network.train(True)
    split = SplitBatchStep(network).loss_and_gradients(x, y)
    split_grads = [g.copy() for g in network.gradients()]
    trainer = Trainer(network, x, y, TrainConfig(epochs=1, batch_size=rows), fast=False)
    plain = trainer.loss_and_gradients(x, y)
    return split, split_grads, plain, network.gradients()


@pytest.mark.parametrize("rows", [128, 20, 1])
def test_a_split_batch_gives_the_gradients_of_the_whole_batch(rows):
    (cost, accuracy), split_grads, (plain_cost, plain_accuracy), plain_grads = split_and_plain_gradients(rows)
    assert cost == pytest.approx(plain_cost, rel=1e-5)
    assert accuracy == plain_accuracy
    for a, b in zip(split_grads, plain_grads):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_only_networks_with_heavy_layers_split_their_mini_batches():
    assert not worth_splitting(mlp([784, 256, 128, 10], activation="relu"))  # measured slower split
    assert worth_splitting(network_from_layers("conv 4 3x3, relu, flatten, dense 10"))
    assert not worth_splitting(network_from_layers("conv 4 3x3, batchnorm, relu, flatten, dense 10"))  # not row-wise


def test_mini_batch_training_with_the_split_step_matches_the_plain_loop_and_repeats_exactly():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 256, (600, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 600)

    def trained(fast):
        network = network_from_layers("conv 4 3x3, relu, maxpool 2, flatten, dense 10", seed=0)
        trainer = Trainer(network, x, y, TrainConfig(epochs=2, optimizer="adam", lr=1e-3, batch_size=100, seed=0),
                          fast=fast)
        assert trainer.split == fast  # a convolution: worth splitting
        trainer.run()
        return network.parameters()

    first, again, plain = trained(True), trained(True), trained(False)
    for a, b, c in zip(first, again, plain):
        np.testing.assert_array_equal(a, b)  # the same seed, the same weights
        np.testing.assert_allclose(a, c, rtol=1e-3, atol=1e-5)  # the same sums, in another order


# --------------------------------------------------------------------------- #
# Sparse products of the first layer (core/kernels/sparse.py)
# --------------------------------------------------------------------------- #
def inked_digits(rows, seed=4):
    """Rows of 784 pixels, about one in five inked (like MNIST)."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(1, 256, (rows, 784), dtype=np.uint8)
    pixels[rng.random((rows, 784)) < 0.8] = 0
    pixels[:, :30] = 0  # a blank border column or two
    if rows > 2:
        pixels[1] = 0  # a blank row
    return pixels


@pytest.mark.parametrize("rows, width", [(50, 16), (33, 10), (7, 256), (1, 3)])
def test_sparse_products_match_numpy(rows, width):
    pytest.importorskip("numba")
    from nnscratch.core.kernels.sparse import SparseRows

    pixels = inked_digits(rows)
    rng = np.random.default_rng(5)
    W = rng.standard_normal((784, width)).astype(np.float32)
    g = rng.standard_normal((rows, width)).astype(np.float32)
    x = SparseRows.from_dense(pixels).scaled(1 / 255, np.float32)
    dense = pixels.astype(np.float32) * np.float32(1 / 255)
    np.testing.assert_array_equal(x.toarray(), dense)
    assert x.nnz == np.count_nonzero(pixels) and len(x) == rows and x.shape == (rows, 784)
    np.testing.assert_allclose(x @ W, dense @ W, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(x.T @ g, dense.T @ g, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="cannot multiply"):
        x @ W[:100]
    with pytest.raises(ValueError, match="float32"):
        x.scaled(2, np.float64)


def test_full_batch_step_on_inked_pixels_gives_the_layers_gradients():
    pytest.importorskip("numba")
    from nnscratch.core.fast import FullBatchStep
    from nnscratch.core.losses import softmax_cross_entropy

    kernels.enabled.cache_clear()
    pixels, labels = inked_digits(300), np.random.default_rng(6).integers(0, 10, 300)
    network = mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    network.train(True)
    cost, grad, probabilities = softmax_cross_entropy(network(pixels), labels)
    network.backward(grad)
    plain = [g.copy() for g in network.gradients()]
    step = FullBatchStep(network, pixels, labels, block_rows=64)
    assert type(step.blocks[0][0][0]).__name__ == "SparseRows"
    fast_cost, fast_accuracy = step.loss_and_gradients()
    assert fast_cost == pytest.approx(cost, rel=1e-5)
    assert fast_accuracy == np.mean(probabilities.argmax(axis=1) == labels)
    for fast, expected in zip(network.gradients(), plain):
        np.testing.assert_allclose(fast, expected, rtol=1e-3, atol=1e-4 * np.abs(expected).max())  # float32 sums


# --------------------------------------------------------------------------- #
# Distortions (core/kernels/warp.py)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("kind", ["affine", "elastic"])
def test_compiled_sampling_distorts_digits_bit_for_bit_like_numpy(kind, monkeypatch):
    pytest.importorskip("numba")
    from nnscratch.core.augment import Augmenter

    pixels = inked_digits(300)
    augmenter = Augmenter(kind, rotate=30, scale=0.3, shear=0.5, shift=8)  # wide ranges: pixels off the edge too
    kernels.enabled.cache_clear()
    compiled = augmenter(pixels, np.random.default_rng(7))
    monkeypatch.setenv("NNSCRATCH_KERNELS", "numpy")
    kernels.enabled.cache_clear()
    plain = augmenter(pixels, np.random.default_rng(7))
    monkeypatch.delenv("NNSCRATCH_KERNELS")
    kernels.enabled.cache_clear()
    np.testing.assert_array_equal(compiled, plain)
    assert compiled.dtype == np.uint8 and not np.array_equal(compiled, pixels)
