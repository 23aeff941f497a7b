"""The fast full-batch step computes the same math as the plain layers.

The blog's whole experiment on the 42k CSV (500 epochs, accuracy in the
blog's range) is tests/test_training.py::test_seed_preset_lands_where_the_blog_did,
which goes through the fast step since the Trainer uses it by default.
"""
import numpy as np
import pytest

from nnscratch import data
from nnscratch.core import kernels
from nnscratch.core.builders import mlp, network_from_layers
from nnscratch.core.fast import FullBatchStep, SplitBatchStep, first_dense, supports
from nnscratch.core.losses import softmax_cross_entropy
from nnscratch.core.training import TrainConfig, Trainer


def digits(n=600, seed=0):
    """``n`` real digits drawn from the bundled sample."""
    sample = data.load_sample()
    rows = np.random.default_rng(seed).permutation(len(sample))[:n]
    return sample.images[rows], sample.labels[rows].astype(np.intp)


def plain_pass(network, X, y):
    """The plain path: the whole batch through the layers at once; returns (cost, probabilities)."""
    cost, grad, probabilities = softmax_cross_entropy(network(X), y)
    network.backward(grad)
    return cost, probabilities


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("block_rows", [64, 1000])
@pytest.mark.parametrize("hidden", [[16, 12], [], [8, 8, 8]])
def test_same_cost_accuracy_and_gradients_as_the_layers(activation, block_rows, hidden):
    X, y = digits()
    network = mlp([784, *hidden, 10], activation, "uniform", seed=1).astype(np.float64)
    cost, probabilities = plain_pass(network, X, y)
    plain = [g.copy() for g in network.gradients()]
    for g in network.gradients():
        g[...] = np.nan  # the fast step must overwrite every gradient, dead rows included

    fast_cost, fast_accuracy = FullBatchStep(network, X, y, block_rows=block_rows).loss_and_gradients()

    assert fast_cost == pytest.approx(cost, rel=1e-12)
    assert fast_accuracy == np.mean(probabilities.argmax(axis=1) == y)
    for fast, expected in zip(network.gradients(), plain):
        np.testing.assert_allclose(fast, expected, rtol=1e-9, atol=1e-12)


def test_any_rowwise_stack_goes_through_the_same_layers():
    """Not only Dense-activation chains: a tanh before the first Dense, two activations in a row."""
    X, y = digits(300)
    network = network_from_layers("tanh, dense 12, relu, sigmoid, dense 8, leaky_relu", seed=2).astype(np.float64)
    assert first_dense(network) is None  # no dead-pixel trick here: the tanh comes first
    plain_pass(network, X, y)
    plain = [g.copy() for g in network.gradients()]
    FullBatchStep(network, X, y, block_rows=128).loss_and_gradients()
    for fast, expected in zip(network.gradients(), plain):
        np.testing.assert_allclose(fast, expected, rtol=1e-9, atol=1e-12)


def test_dead_pixel_rows_of_dW1_are_zero_and_W1_keeps_its_shape():
    X, y = digits(300)
    network = mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    step = FullBatchStep(network, X, y)
    step.loss_and_gradients()
    dead = ~np.any(X != 0, axis=0)
    first = first_dense(network)
    kept = {block.shape[1] for blocks in step.blocks for block, _ in blocks}
    assert dead.sum() > 0 and kept == ({784} if kernels.enabled() else {784 - dead.sum()})  # sparse: no dead pixels
    assert first.W.shape == (784, 16) and first.input_columns is None  # only the workers' replicas skip columns
    assert np.all(first.grad["W"][dead] == 0)


def test_float32_seed_network_is_as_exact_as_the_layers():
    """The seed preset's own setting (raw pixels, float32): the fast step's
    gradients are as close to the float64 truth as the plain layers' are."""
    X, y = digits(1000)
    network = mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    plain_pass(network, X, y)
    plain = [g.copy() for g in network.gradients()]
    FullBatchStep(network, X, y, block_rows=256).loss_and_gradients()
    fast = [g.copy() for g in network.gradients()]
    network.astype(np.float64)
    plain_pass(network, X, y)
    for f, p, truth in zip(fast, plain, network.gradients()):
        scale = np.abs(truth).max()
        assert np.abs(f - truth).max() <= 2 * np.abs(p - truth).max() + 1e-6 * scale


@pytest.mark.parametrize("l2", [0.0, 1e-3])
def test_trainer_gives_the_same_weights_with_and_without_the_fast_step(l2):
    """Weight decay included: it lives in the optimizer, so the fast step has it too."""
    X, y = digits(500)
    runs = []
    for fast in (True, False):
        network = mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=3, input_scale=1.0).astype(np.float64)
        config = TrainConfig(epochs=5, optimizer="gd", lr=0.8, batch_size=None, l2=l2)
        trainer = Trainer(network, X, y, config, fast=fast)
        trainer.run()
        runs.append((trainer.history, [p.copy() for p in network.parameters()]))
        trainer.train_epoch()  # one more, to see which path it takes
        assert (trainer.fast_step is not None) == fast
    (fast_history, fast_params), (plain_history, plain_params) = runs
    np.testing.assert_allclose(fast_history.train_cost, plain_history.train_cost, rtol=1e-8)
    assert fast_history.train_accuracy == plain_history.train_accuracy
    for a, b in zip(fast_params, plain_params):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)  # 5 steps of lr 0.8 on raw pixels


def test_weight_decay_changes_the_full_batch_run():
    X, y = digits(300)
    weights = []
    for l2 in (0.0, 0.1):
        network = mlp([784, 8, 10], seed=0)
        Trainer(network, X, y, TrainConfig(epochs=3, optimizer="gd", lr=0.5, batch_size=None, l2=l2)).run()
        weights.append(np.abs(first_dense(network).W).sum())
    assert weights[1] < weights[0]  # decay pulls the weights towards zero


def test_plain_path_kept_where_the_fast_step_does_not_apply():
    X, y = digits(200)
    dropout = mlp([784, 8, 10], dropout=0.5, seed=0)
    assert not supports(dropout)
    assert supports(mlp([784, 8, 10], seed=0))
    for network, config in [
        (dropout, TrainConfig(epochs=1, optimizer="gd", lr=0.1, batch_size=None)),
        (mlp([784, 8, 10], seed=0), TrainConfig(epochs=1, optimizer="gd", lr=0.1, batch_size=50)),
    ]:
        trainer = Trainer(network, X, y, config)
        trainer.train_epoch()
        assert trainer.fast_step is None


def test_seed_preset_on_a_slice_learns():
    """The seed recipe (raw pixels, lr 0.8, full batch) on 2000 digits, 60 epochs, fast step."""
    from nnscratch import Classifier

    X, y = digits(3000)
    network = mlp([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    model = Classifier(network, epochs=60, optimizer="gd", lr=0.8).fit(X[:2000], y[:2000])
    assert model.train_config().batch_size is None  # gd means the full batch, in the API too
    assert model.history_.train_cost[-1] < 0.75 * model.history_.train_cost[0]
    assert model.score(X[2000:], y[2000:]) > 0.45  # 4.5x chance; the blog needs 500 epochs for 85 %


@pytest.mark.parametrize("layers", ["dense 16, sigmoid, dense 10",
                                    "conv 4 3x3, relu, maxpool 2, flatten, dense 10"])
def test_same_gradients_whatever_the_number_of_cores(monkeypatch, layers):
    """The rows (and a layer's samples) are cut the same way on any machine, so the sums round the same way."""
    from nnscratch.core import parallel

    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (600, 784)).astype(np.uint8)
    y = rng.integers(0, 10, 600)

    def gradients(cores, step):
        monkeypatch.setattr(parallel, "WORKERS", cores)
        network = network_from_layers(layers, seed=0)
        network.train(True)
        if step == "full":
            FullBatchStep(network, X, y, block_rows=250).loss_and_gradients()
        elif step == "split":
            SplitBatchStep(network).loss_and_gradients(X[:200], y[:200])
        else:  # the plain path: a conv layer shares its own batch
            cost, grad, _ = softmax_cross_entropy(network(X), y)
            network.backward(grad)
        return [g.copy() for g in network.gradients()]
    for step in ("full", "split", "plain"):
        for one, two in zip(gradients(1, step), gradients(2, step)):
            np.testing.assert_array_equal(one, two)


def test_replaced_weights_are_followed_by_the_steps():
    """The parts' replicas share the network's weight arrays; a weight array replaced (not updated) is followed."""
    rng = np.random.default_rng(7)
    X, y = rng.integers(0, 256, (64, 784)).astype(np.uint8), rng.integers(0, 10, 64)
    network = mlp([784, 16, 10], seed=0)
    network.train(True)
    step = SplitBatchStep(network)
    step.loss_and_gradients(X, y)
    first = first_dense(network)
    first.W = first.W * 0.5  # a new array: the replicas must see it
    step.loss_and_gradients(X, y)
    split = [g.copy() for g in network.gradients()]
    cost, grad, _ = softmax_cross_entropy(network(X), y)
    network.backward(grad)
    for a, b in zip(split, network.gradients()):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-7)
    assert step.parts[0].replica.parameters()[0] is first.W


def test_raw_pixels_scaled_block_by_block_give_the_same_gradients_as_floats():
    """Stored as uint8 and scaled per block by the input step, or scaled up front: the very same numbers."""
    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, (2500, 784)).astype(np.uint8)
    y = rng.integers(0, 10, 2500)

    def gradients(inputs, scale):
        network = mlp([784, 16, 10], seed=0, input_scale=scale)
        FullBatchStep(network, inputs, y, block_rows=600).loss_and_gradients()
        return [g.copy() for g in network.gradients()]
    scaled = X.astype(np.float32) * np.float32(1 / 255)
    for raw, floats in zip(gradients(X, 1 / 255), gradients(scaled, 1.0)):
        np.testing.assert_array_equal(raw, floats)


def test_ahead_makes_each_next_result_meanwhile_and_stops_cleanly():
    from nnscratch.core import parallel

    def halves(n):  # work that would share itself: inside ahead it stays in its thread (no deadlock)
        return sum(parallel.run_parts([(sum, (range(n // 2),)), (sum, (range(n // 2, n),))]))

    assert list(parallel.ahead(halves, [(10,), (20,), (0,)])) == [45, 190, 0]
    made = parallel.ahead(halves, [(n,) for n in range(100)])
    assert next(made) == 0
    made.close()  # the consumer stops early: the job in flight is let go
    assert list(parallel.ahead(halves, [])) == []
