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

from nnscratch.core.builders import mlp
from nnscratch.core.layers import ACTIVATIONS, Dense, Dropout
from nnscratch.core.losses import l2_penalty, softmax_cross_entropy
from nnscratch.core.network import Sequential
from nnscratch.core.optimizers import OPTIMIZERS, make_optimizer

from .gradcheck import numeric_gradient, relative_error

TOLERANCE = 1e-5


def in_float64(network):
    """The network in float64, with random biases.

    Biases get random values: Xavier and He start them at 0, and a unit whose
    inputs dropout zeroed would then sit exactly on ReLU's kink, where the
    slope is undefined and finite differences measure 1/2.
    """
    rng = np.random.default_rng(99)
    network.astype(np.float64)
    for layer in network.leaves():
        if isinstance(layer, Dense):
            layer.b += rng.normal(0, 0.1, layer.b.shape)
    return network


def small_problem(seed=0, n=7, sizes=(6, 5, 4, 3)):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(n, sizes[0]))
    labels = rng.integers(0, sizes[-1], n)
    return inputs, labels


def check_network(network, inputs, labels, before_forward=lambda: None):
    """Compare backprop with finite differences for every parameter of ``network``."""
    def cost():
        before_forward()
        cost, grad, _ = softmax_cross_entropy(network(inputs), labels)
        network.backward(grad)
        return cost

    cost()
    analytic = [g.copy() for g in network.gradients()]
    dense = [layer for layer in network.leaves() if isinstance(layer, Dense)]
    assert len(analytic) == 2 * len(dense)
    for (name, param, _, _), grad in zip(network.named_params(), analytic):
        numeric = numeric_gradient(cost, param)
        assert np.abs(numeric).max() > 0, f"parameter {name} has no effect on the cost"
        error = relative_error(grad, numeric)
        assert error < TOLERANCE, f"parameter {name} (shape {param.shape}): relative error {error:.2e}"


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_whole_network_gradients(activation):
    """Three hidden layers, every activation: every W and b."""
    inputs, labels = small_problem(sizes=(6, 5, 4, 4, 3))
    network = in_float64(mlp([6, 5, 4, 4, 3], activation=activation, seed=1, input_scale=1.0))
    check_network(network, inputs, labels)


@pytest.mark.parametrize("init", ["uniform", "xavier", "he"])
def test_gradients_with_each_initialisation(init):
    inputs, labels = small_problem(seed=2)
    network = in_float64(mlp([6, 5, 4, 3], activation="sigmoid", init=init, seed=3, input_scale=1.0))
    check_network(network, inputs, labels)


def test_gradients_through_dropout():
    """With the dropout mask held fixed, backward is exact too."""
    inputs, labels = small_problem(seed=4)
    network = in_float64(mlp([6, 5, 4, 3], activation="relu", dropout=0.3, seed=5, input_scale=1.0))
    dropouts = [layer for layer in network.leaves() if isinstance(layer, Dropout)]
    assert dropouts

    def same_mask():
        for layer in dropouts:
            layer.rng = np.random.default_rng(6)

    check_network(network, inputs, labels, before_forward=same_mask)


def test_gradients_through_nested_networks():
    """A Sequential inside a Sequential: backward goes through both, parameters are named by place."""
    inputs, labels = small_problem(seed=8)
    inner = mlp([6, 5, 4], activation="tanh", seed=9, input_scale=1.0)
    network = in_float64(Sequential([inner, ACTIVATIONS["sigmoid"](), mlp([4, 3], seed=10, input_scale=1.0)]))
    assert [name for name, *_ in network.named_params()] == ["0.1.W", "0.1.b", "0.3.W", "0.3.b", "2.1.W", "2.1.b"]
    check_network(network, inputs, labels)


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_weight_decay_is_the_gradient_of_the_l2_penalty(name):
    """Every optimizer adds ``l2 * w`` to the weights' gradients (the slope of l2/2 * w**2), never to biases."""
    network = in_float64(mlp([6, 5, 3], seed=11, input_scale=1.0))
    l2 = 0.3
    decays = network.decays()
    assert decays == [True, False, True, False]  # W and b of each Dense
    weights = [p for p, d in zip(network.parameters(), decays) if d]
    for w in weights:
        numeric = numeric_gradient(lambda: l2_penalty(weights, l2), w)
        assert relative_error(numeric, l2 * w) < TOLERANCE
    # The same step with zero gradients moves only the decayed parameters, by the decay term.
    for decay_on in (False, True):
        params = [p.copy() for p in network.parameters()]
        grads = [np.zeros_like(p) for p in params]
        make_optimizer(name, 0.1, l2 if decay_on else 0.0).step(params, grads, decays)
        moved = [not np.array_equal(p, q) for p, q in zip(params, network.parameters())]
        assert moved == ([d for d in decays] if decay_on else [False] * len(decays))
        if name in ("gd", "sgd") and decay_on:
            assert np.allclose(params[0], network.parameters()[0] * (1 - 0.1 * l2))


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_input_gradient_of_each_layer(activation):
    """dCost/dInput, which each layer hands to the one below it."""
    rng = np.random.default_rng(7)
    first, last = Dense(5, 4, dtype=np.float64), Dense(4, 3, dtype=np.float64)
    for layer in (first, last):
        layer.W[...] = rng.normal(size=layer.W.shape)
        layer.b[...] = rng.normal(size=layer.b.shape)
    net = Sequential([ACTIVATIONS["tanh"](), first, ACTIVATIONS[activation](), last])
    x = rng.normal(size=(6, 5))
    labels = rng.integers(0, 3, 6)

    def cost():
        return softmax_cross_entropy(net.forward(x), labels)[0]

    _, grad, _ = softmax_cross_entropy(net.forward(x), labels)
    net.input_grad = True  # ask for dCost/dInput all the way down
    analytic = net.backward(grad)
    assert relative_error(analytic, numeric_gradient(cost, x)) < TOLERANCE


def test_first_layer_skips_the_pixel_gradient_only():
    """The network does not compute dCost/dPixels (nobody uses it), but the other layers still pass theirs down."""
    network = mlp([6, 5, 4, 3], activation="tanh", seed=0)
    dense = [layer for layer in network.leaves() if isinstance(layer, Dense)]
    assert not dense[0].input_grad and all(layer.input_grad for layer in dense[1:])
    rebuilt = Sequential.from_config(**network.config())
    assert not [layer for layer in rebuilt.leaves() if isinstance(layer, Dense)][0].input_grad


def test_l2_penalty_value():
    weights = [np.array([[1.0, 2.0]]), np.array([3.0])]
    assert l2_penalty(weights, 0.5) == pytest.approx(0.25 * 14)
    assert l2_penalty(weights, 0.0) == 0.0


def test_float32_training_stays_float32():
    """No silent float64 upcasts in the hot loop: weights, gradients and optimizer memory stay float32."""
    from nnscratch import Classifier

    inputs, labels = small_problem(n=32, sizes=(6, 5, 4, 3))
    network = mlp([6, 5, 4, 3], activation="leaky_relu", dropout=0.1, seed=0)
    model = Classifier(network, epochs=2, batch_size=8, optimizer="adam", l2=1e-3).fit(inputs * 100, labels)
    assert all(p.dtype == np.float32 for p in network.parameters())
    assert all(g.dtype == np.float32 for g in network.gradients())
    assert model.predict_proba(inputs * 100).dtype == np.float32
