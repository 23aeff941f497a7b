"""Backpropagation checked against finite differences.

For every parameter tensor, the gradient that ``backward`` computes must match
the slope measured by nudging each weight up and down a little:

    dC/dw  ~  (C(w + h) - C(w - h)) / 2h          (central differences)

in float64, where the two agree to about 1e-9 when backward is right. We
compare whole tensors with the relative error ``|a - n| / (|a| + |n|)``.
"""
from __future__ import annotations

import numpy as np
import pytest

from nnscratch.core.layers import ACTIVATIONS, Dense, Dropout
from nnscratch.core.losses import l2_penalty, softmax_cross_entropy
from nnscratch.core.network import MLP, Sequential

H = 1e-6
TOLERANCE = 1e-5


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def to_float64(model) -> None:
    """Turn every Dense layer's weights (and gradient buffers) into float64.

    Biases get random values: Xavier and He start them at 0, and a unit whose
    inputs dropout zeroed would then sit exactly on ReLU's kink, where the
    slope is undefined and finite differences measure 1/2.
    """
    rng = np.random.default_rng(99)
    for layer in model.dense_layers():
        layer.W = layer.W.astype(np.float64)
        layer.b = layer.b.astype(np.float64) + rng.normal(0, 0.1, layer.b.shape)
        layer.dW, layer.db = np.zeros_like(layer.W), np.zeros_like(layer.b)


def numeric_gradient(cost, param: np.ndarray) -> np.ndarray:
    """Central differences of ``cost()`` with respect to each entry of ``param`` (changed in place, restored)."""
    grad = np.zeros_like(param)
    for index in np.ndindex(param.shape):
        saved = param[index]
        param[index] = saved + H
        up = cost()
        param[index] = saved - H
        down = cost()
        param[index] = saved
        grad[index] = (up - down) / (2 * H)
    return grad


def small_problem(seed=0, n=7, sizes=(6, 5, 4, 3)):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, sizes[0]))
    labels = rng.integers(0, sizes[-1], n)
    return inputs, labels


def check_network(model: MLP, inputs, labels, l2=0.0, before_forward=lambda: None):
    """Compare backprop with finite differences for every parameter of ``model``."""
    def cost():
        before_forward()
        return model.loss_and_gradients(inputs, labels, l2)[0]

    cost()
    analytic = [g.copy() for g in model.gradients()]
    assert len(analytic) == 2 * len(model.dense_layers())
    for i, (param, grad) in enumerate(zip(model.parameters(), analytic)):
        numeric = numeric_gradient(cost, param)
        assert np.abs(numeric).max() > 0, f"parameter {i} has no effect on the cost"
        error = relative_error(grad, numeric)
        assert error < TOLERANCE, f"parameter {i} (shape {param.shape}): relative error {error:.2e}"


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_whole_network_gradients(activation, l2):
    """Three hidden layers, every activation, with and without L2: every W and b."""
    inputs, labels = small_problem(sizes=(6, 5, 4, 4, 3))
    model = MLP([6, 5, 4, 4, 3], activation=activation, seed=1, input_scale=1.0)
    to_float64(model)
    check_network(model, inputs, labels, l2)


@pytest.mark.parametrize("init", ["uniform", "xavier", "he"])
def test_gradients_with_each_initialisation(init):
    inputs, labels = small_problem(seed=2)
    model = MLP([6, 5, 4, 3], activation="sigmoid", init=init, seed=3, input_scale=1.0)
    to_float64(model)
    check_network(model, inputs, labels)


def test_gradients_through_dropout():
    """With the dropout mask held fixed, backward is exact too."""
    inputs, labels = small_problem(seed=4)
    model = MLP([6, 5, 4, 3], activation="relu", dropout=0.3, seed=5, input_scale=1.0)
    to_float64(model)
    dropouts = [layer for layer in model.layers if isinstance(layer, Dropout)]
    assert dropouts

    def same_mask():
        for layer in dropouts:
            layer.rng = np.random.default_rng(6)

    check_network(model, inputs, labels, l2=0.01, before_forward=same_mask)


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_input_gradient_of_each_layer(activation):
    """dCost/dInput, which each layer hands to the one below it."""
    rng = np.random.default_rng(7)
    net = Sequential([Dense(5, 4, rng.normal(size=(5, 4)), rng.normal(size=4), dtype=np.float64),
                      ACTIVATIONS[activation](),
                      Dense(4, 3, rng.normal(size=(4, 3)), rng.normal(size=3), dtype=np.float64)])
    x = rng.normal(size=(6, 5))
    labels = rng.integers(0, 3, 6)

    def cost():
        return softmax_cross_entropy(net.forward(x), labels)[0]

    _, grad, _ = softmax_cross_entropy(net.forward(x), labels)
    analytic = net.backward(grad)
    assert relative_error(analytic, numeric_gradient(cost, x)) < TOLERANCE


def test_first_layer_skips_the_pixel_gradient_only():
    """MLP does not compute dCost/dPixels (nobody uses it), but the other layers still pass theirs down."""
    model = MLP([6, 5, 4, 3], activation="tanh", seed=0)
    dense = model.dense_layers()
    assert not dense[0].input_grad and all(layer.input_grad for layer in dense[1:])
    rebuilt = MLP.from_description(model.describe())
    assert not rebuilt.dense_layers()[0].input_grad


def test_l2_penalty_value():
    weights = [np.array([[1.0, 2.0]]), np.array([3.0])]
    assert l2_penalty(weights, 0.5) == pytest.approx(0.25 * 14)
    assert l2_penalty(weights, 0.0) == 0.0


def test_float32_training_stays_float32():
    """No silent float64 upcasts in the hot loop: weights, gradients and optimizer memory stay float32."""
    inputs, labels = small_problem(n=32, sizes=(6, 5, 4, 3))
    model = MLP([6, 5, 4, 3], activation="leaky_relu", dropout=0.1, seed=0)
    model.fit(inputs, labels, epochs=2, batch_size=8, optimizer="adam", l2=1e-3)
    assert all(p.dtype == np.float32 for p in model.parameters())
    assert all(g.dtype == np.float32 for g in model.gradients())
    assert model.predict_proba(inputs).dtype == np.float32
