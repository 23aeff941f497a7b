"""The fast full-batch step computes the same math as the plain layers.

The blog's whole experiment on the 42k CSV (500 epochs, accuracy in the
blog's range) is tests/test_training.py::test_seed_preset_lands_where_the_blog_did,
which goes through the fast step since the Trainer uses it by default.
"""
import numpy as np
import pytest

from nnscratch import data
from nnscratch.core.fast import FullBatchStep, supports
from nnscratch.core.layers import Dense
from nnscratch.core.network import MLP
from nnscratch.core.training import TrainConfig, Trainer

def digits(n=600, seed=0):
    """``n`` real digits drawn from the bundled sample."""
    sample = data.load_sample()
    rows = np.random.default_rng(seed).permutation(len(sample))[:n]
    return sample.images[rows], sample.labels[rows].astype(np.intp)


def float64_copy(model: MLP) -> MLP:
    """``model`` with float64 weights, so both paths can be compared tightly."""
    for layer in model.dense_layers():
        layer.W, layer.b = layer.W.astype(np.float64), layer.b.astype(np.float64)
        layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)
    return model


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu", "leaky_relu"])
@pytest.mark.parametrize("block_rows", [64, 1000])
@pytest.mark.parametrize("hidden", [[16, 12], [], [8, 8, 8]])
def test_same_cost_accuracy_and_gradients_as_the_layers(activation, block_rows, hidden):
    X, y = digits()
    model = float64_copy(MLP([784, *hidden, 10], activation, "uniform", seed=1, input_scale=1 / 255))
    inputs = X.astype(np.float64) / 255
    cost, probabilities = model.loss_and_gradients(inputs, y)
    plain = [g.copy() for g in model.gradients()]
    for g in model.gradients():
        g[...] = np.nan  # the fast step must overwrite every gradient, dead rows included

    fast_cost, fast_accuracy = FullBatchStep(model, inputs, y, block_rows=block_rows).loss_and_gradients()

    assert fast_cost == pytest.approx(cost, rel=1e-12)
    assert fast_accuracy == np.mean(probabilities.argmax(axis=1) == y)
    for fast, expected in zip(model.gradients(), plain):
        np.testing.assert_allclose(fast, expected, rtol=1e-9, atol=1e-12)


def test_dead_pixel_rows_of_dW1_are_zero_and_W1_keeps_its_shape():
    X, y = digits(300)
    model = MLP([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    inputs = model.prepare(X)
    step = FullBatchStep(model, inputs, y)
    step.loss_and_gradients()
    dead = ~np.any(inputs != 0, axis=0)
    assert dead.sum() > 0 and len(step.live) == 784 - dead.sum()
    assert model.layers[0].W.shape == (784, 16)
    assert np.all(model.layers[0].dW[dead] == 0)


def test_float32_seed_network_is_as_exact_as_the_layers():
    """The seed preset's own setting (raw pixels, float32): the fast step's
    gradients are as close to the float64 truth as the plain layers' are."""
    X, y = digits(1000)
    model = MLP([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    inputs = model.prepare(X)
    model.loss_and_gradients(inputs, y)
    plain = [g.copy() for g in model.gradients()]
    FullBatchStep(model, inputs, y, block_rows=256).loss_and_gradients()
    fast = [g.copy() for g in model.gradients()]
    float64_copy(model).loss_and_gradients(inputs.astype(np.float64), y)
    for f, p, truth in zip(fast, plain, model.gradients()):
        scale = np.abs(truth).max()
        assert np.abs(f - truth).max() <= 2 * np.abs(p - truth).max() + 1e-6 * scale


def test_trainer_gives_the_same_weights_with_and_without_the_fast_step():
    X, y = digits(500)
    runs = []
    for fast in (True, False):
        model = float64_copy(MLP([784, 16, 16, 10], "sigmoid", "uniform", seed=3, input_scale=1.0))
        config = TrainConfig(epochs=5, optimizer="gd", lr=0.8, batch_size=None)
        trainer = Trainer(model, X.astype(np.float64), y, config, fast=fast)
        trainer.run()
        runs.append((trainer.history, [p.copy() for p in model.parameters()]))
        trainer.train_epoch()  # one more, to see which path it takes
        assert (trainer.fast_step is not None) == fast
    (fast_history, fast_params), (plain_history, plain_params) = runs
    np.testing.assert_allclose(fast_history.cost, plain_history.cost, rtol=1e-8)
    assert fast_history.train_accuracy == plain_history.train_accuracy
    for a, b in zip(fast_params, plain_params):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-10)  # 5 steps of lr 0.8 on raw pixels


def test_plain_path_kept_where_the_fast_step_does_not_apply():
    X, y = digits(200)
    dropout = MLP([784, 8, 10], dropout=0.5, seed=0)
    assert not supports(dropout)
    assert supports(MLP([784, 8, 10], seed=0))
    for model, config in [
        (dropout, TrainConfig(epochs=1, optimizer="gd", lr=0.1, batch_size=None)),
        (MLP([784, 8, 10], seed=0), TrainConfig(epochs=1, optimizer="gd", lr=0.1, batch_size=None, l2=1e-3)),
        (MLP([784, 8, 10], seed=0), TrainConfig(epochs=1, optimizer="gd", lr=0.1, batch_size=50)),
    ]:
        trainer = Trainer(model, X, y, config)
        trainer.train_epoch()
        assert trainer.fast_step is None


def test_seed_preset_on_a_slice_learns():
    """The seed recipe (raw pixels, lr 0.8, full batch) on 2000 digits, 60 epochs, fast step."""
    X, y = digits(3000)
    model = MLP([784, 16, 16, 10], "sigmoid", "uniform", seed=0, input_scale=1.0)
    history = model.fit(X[:2000], y[:2000], epochs=60, optimizer="gd", lr=0.8, batch_size=None)
    assert history.cost[-1] < 0.75 * history.cost[0]
    assert model.score(X[2000:], y[2000:]) > 0.4


def test_same_gradients_whatever_the_number_of_cores(monkeypatch):
    """The rows are cut the same way on any machine, so the sums round the same way."""
    import nnscratch.core.fast as fast

    rng = np.random.default_rng(5)
    X = rng.integers(0, 256, (3000, 784)).astype(np.uint8)
    y = rng.integers(0, 10, 3000)

    def gradients(cores):
        monkeypatch.setattr(fast, "available_cores", lambda: cores)
        model = MLP([784, 16, 16, 10], init="uniform", input_scale=1.0, seed=0)
        FullBatchStep(model, X, y, block_rows=700, scale=model.input_scale).loss_and_gradients()
        return [g.copy() for g in model.gradients()]
    for one, two in zip(gradients(1), gradients(2)):
        np.testing.assert_array_equal(one, two)


def test_raw_pixels_scaled_block_by_block_give_the_same_gradients_as_floats():
    """Stored as uint8 and scaled per block, or scaled up front: the very same numbers."""
    rng = np.random.default_rng(6)
    X = rng.integers(0, 256, (2500, 784)).astype(np.uint8)
    y = rng.integers(0, 10, 2500)

    def gradients(inputs, scale):
        model = MLP([784, 16, 10], seed=0)  # pixels / 255, as in the default preset
        FullBatchStep(model, inputs, y, block_rows=600, scale=scale).loss_and_gradients()
        return [g.copy() for g in model.gradients()]
    model = MLP([784, 16, 10], seed=0)
    for raw, floats in zip(gradients(X, model.input_scale), gradients(model.scale(X), 1.0)):
        np.testing.assert_array_equal(raw, floats)
