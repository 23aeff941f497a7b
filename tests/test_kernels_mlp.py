"""The compiled pass of a whole MLP (core/kernels/mlp.py) against the NumPy layers."""
import numpy as np
import pytest

from nnscratch import mlp
from nnscratch.core import kernels
from nnscratch.core.builders import network_from_layers
from nnscratch.core.fast import FullBatchStep, _CompiledPart, _Part
from nnscratch.core.losses import softmax_cross_entropy

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def kernels_on():
    kernels.enabled.cache_clear()
    if not kernels.enabled():
        pytest.skip("the compiled kernels are switched off (NNSCRATCH_KERNELS) or Numba does not load")


def inked_digits(rows, seed=4):
    """Rows of 784 pixels, about one in five inked (like MNIST), and their labels."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(1, 256, (rows, 784), dtype=np.uint8)
    pixels[rng.random((rows, 784)) < 0.8] = 0
    pixels[:, :30] = 0  # blank border columns
    pixels[1] = 0  # a blank digit
    return pixels, rng.integers(0, 10, rows)


def exact_pass(network, pixels, labels):
    """Cost, accuracy and gradients of the layers, in float64 (the yardstick)."""
    twin = network.replica().astype(np.float64)
    twin.train(True)
    cost, grad, probabilities = softmax_cross_entropy(twin(pixels), labels)
    twin.backward(grad)
    return cost, np.mean(probabilities.argmax(axis=1) == labels), twin.gradients()


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
@pytest.mark.parametrize("sizes, scale", [([784, 16, 16, 10], 1.0),  # the blog's network, raw pixels
                                          ([784, 20, 13, 10], 1 / 255),  # widths not a multiple of 8
                                          ([784, 40, 10], 1 / 255),  # wider than 16
                                          ([784, 10], 1 / 255)])  # no hidden layer
def test_compiled_pass_gives_the_layers_cost_accuracy_and_gradients(activation, sizes, scale):
    pixels, labels = inked_digits(300)
    network = mlp(sizes, activation, "uniform" if scale == 1 else None, seed=3, input_scale=scale)
    cost, accuracy, expected = exact_pass(network, pixels, labels)

    step = FullBatchStep(network, pixels, labels, block_rows=64)  # the last block of each part is shorter
    assert all(isinstance(part, _CompiledPart) for part in step.parts)
    for g in network.gradients():
        g[...] = np.nan  # every gradient must be written
    fast_cost, fast_accuracy = step.loss_and_gradients()

    assert fast_cost == pytest.approx(cost, rel=1e-5)
    assert fast_accuracy == accuracy
    for fast, exact in zip(network.gradients(), expected):
        # float32 sums; near saturation f'(z) = 1 - y*y loses digits to cancellation (so do the float32 layers)
        np.testing.assert_allclose(fast, exact, rtol=1e-3, atol=1e-3 * np.abs(exact).max())


def test_compiled_pass_is_run_again_with_the_weights_as_they_are():
    pixels, labels = inked_digits(200)
    network = mlp([784, 16, 10], seed=0)
    step = FullBatchStep(network, pixels, labels, block_rows=64)
    step.loss_and_gradients()
    layer = network.leaves()[1]
    layer.W = layer.W * 0.5  # replaced, not updated
    network.leaves()[3].b += 1  # updated in place
    cost, _, expected = exact_pass(network, pixels, labels)
    assert step.loss_and_gradients()[0] == pytest.approx(cost, rel=1e-5)
    for fast, exact in zip(network.gradients(), expected):
        np.testing.assert_allclose(fast, exact, rtol=1e-3, atol=1e-5 * np.abs(exact).max())


def test_labels_the_outputs_cannot_hold_are_refused():
    pixels, labels = inked_digits(50)
    labels[3] = 10
    with pytest.raises(ValueError, match="labels must be 0..9"):
        FullBatchStep(mlp([784, 16, 10]), pixels, labels)


def test_saturated_activations_are_exactly_their_limits():
    """Raw pixels saturate the blog's sigmoids: 0 and 1 exactly, as the layers give (no tiny denormals)."""
    import numba

    from nnscratch.core.kernels.mlp import RELU, SIGMOID, TANH, _activate

    @numba.njit(error_model="numpy")
    def activate(z, kind):
        _activate(z, kind)

    z = np.array([-1e4, -200, 0, 200, 1e4], np.float32)
    for kind, limits in ((SIGMOID, [0, 0, 0.5, 1, 1]), (TANH, [-1, -1, 0, 1, 1]), (RELU, [0, 0, 0, 200, 1e4])):
        out = z.copy()
        activate(out, kind)
        np.testing.assert_array_equal(out, limits)


@pytest.mark.parametrize("layers", ["dense 16, leaky_relu, dense 10",  # an activation it does not have
                                    "dense 16, relu, relu, dense 10",  # two in a row
                                    "tanh, dense 16, sigmoid, dense 10"])  # not Dense first
def test_other_networks_go_through_their_layers(layers):
    pixels, labels = inked_digits(100)
    network = network_from_layers(layers, seed=0)
    step = FullBatchStep(network, pixels, labels)
    assert all(isinstance(part, _Part) for part in step.parts)
    float64 = FullBatchStep(mlp([784, 16, 10]).astype(np.float64), pixels, labels)
    assert all(isinstance(part, _Part) for part in float64.parts)


def test_the_compiled_exp_is_within_two_units_in_the_last_place():
    import numba

    from nnscratch.core.kernels.mlp import _exp

    @numba.njit
    def exp_of(x, out):
        for i in range(x.size):
            out[i] = _exp(x[i])

    x = np.concatenate([np.linspace(-87, 88, 200_001), [0, -1e-8, 1e-8]]).astype(np.float32)
    out = np.empty_like(x)
    exp_of(x, out)
    exact = np.exp(x.astype(np.float64))
    assert np.max(np.abs(out - exact) / exact) < 2 * 2.0**-23
    edges = np.array([-1e4, -100, -np.inf, 100, 1e4, np.inf], np.float32)  # past float32's range
    exp_of(edges, out[:6])
    np.testing.assert_array_equal(out[:6], [0, 0, 0, np.inf, np.inf, np.inf])


# --------------------------------------------------------------------------- #
# Mini-batches out of a table of inked pixels (core/kernels/sparse.py, core/fast.py)
# --------------------------------------------------------------------------- #
def test_batches_taken_from_the_table_are_the_rows_chosen():
    from nnscratch.core.kernels.sparse import SparseTable

    pixels, _ = inked_digits(500)
    table = SparseTable(pixels)
    chosen = np.array([7, 1, 499, 7, 0])  # any order, a blank digit (1), a row twice
    batch = table.rows(chosen)
    np.testing.assert_array_equal(batch.toarray(), pixels[chosen])
    g = np.random.default_rng(8).standard_normal((5, 300)).astype(np.float32)
    W = np.random.default_rng(9).standard_normal((784, 300)).astype(np.float32)
    dense = pixels[chosen].astype(np.float32)
    np.testing.assert_allclose(batch @ W, dense @ W, rtol=1e-4, atol=1e-2)  # 300 wide: the tiled path
    np.testing.assert_allclose(batch.T @ g, dense.T @ g, rtol=1e-4, atol=1e-2)
    with pytest.raises(ValueError, match="cannot go into"):
        batch.transposed_times(g, out=np.empty((784, 300), np.float64))
    with pytest.raises(IndexError, match="asked of a table of 500"):
        table.rows([3, -1])


def test_mini_batches_come_as_inked_pixels_only_where_they_pay():
    from nnscratch.core.fast import DenseRows, batch_source
    from nnscratch.core.kernels.sparse import SparseTable

    pixels, _ = inked_digits(200)
    assert isinstance(batch_source(mlp([784, 128, 10]), pixels), SparseTable)
    assert isinstance(batch_source(mlp([784, 32, 10]), pixels), DenseRows)  # narrow: BLAS is cheaper
    inked = np.random.default_rng(1).integers(1, 256, (200, 784), dtype=np.uint8)
    assert isinstance(batch_source(mlp([784, 128, 10]), inked), DenseRows)  # nothing blank to skip
    assert isinstance(batch_source(mlp([784, 128, 10]).astype(np.float64), pixels), DenseRows)
    assert isinstance(batch_source(network_from_layers("conv 4 3x3, relu, flatten, dense 10"), pixels), DenseRows)
    split = network_from_layers("dense 784, relu, conv 2 3x3, relu, flatten, dense 10")  # Dense first, then split
    assert isinstance(batch_source(split, pixels), DenseRows)


def test_mini_batch_training_on_inked_pixels_matches_the_plain_loop():
    from nnscratch.core.kernels.sparse import SparseTable
    from nnscratch.core.training import TrainConfig, Trainer

    pixels, labels = inked_digits(600)

    def trained(fast):
        network = mlp([784, 130, 10], "relu", seed=0)
        trainer = Trainer(network, pixels, labels, TrainConfig(epochs=2, lr=1e-3, batch_size=50, seed=0), fast=fast)
        trainer.train_epoch()
        assert isinstance(trainer.batches, SparseTable) == fast
        trainer.run()
        return network.parameters(), trainer.history.train_cost

    (fast, fast_cost), (plain, plain_cost) = trained(True), trained(False)
    np.testing.assert_allclose(fast_cost, plain_cost, rtol=1e-4)
    for a, b in zip(fast, plain):
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-5)  # the same sums, in another order
