"""Where the weights start.

A network that starts with every weight equal never breaks the symmetry
between its neurons; one that starts with weights too large saturates its
sigmoids; one that starts too small makes the signal fade layer by layer.

* ``uniform``: the blog's choice, every weight *and bias* uniform in
  [-0.5, 0.5). Fine for 16 neurons on raw pixels as the blog used it.
* ``xavier`` (Glorot & Bengio, 2010): uniform in ``±sqrt(6 / (fan_in + fan_out))``,
  keeping the variance of the signal about constant through sigmoid and tanh
  layers. Biases start at 0.
* ``he`` (He et al., 2015): normal with standard deviation ``sqrt(2 / fan_in)``,
  the same idea for ReLU, which zeroes half of its inputs. Biases start at 0.

``fan_in`` is how many inputs feed one neuron (784 for a first Dense layer;
channels x k x k for a convolution), ``fan_out`` how many outputs one input
feeds.
"""
from __future__ import annotations

import numpy as np


def uniform(shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """The blog's initialisation: uniform in [-0.5, 0.5), whatever the layer's size."""
    return rng.random(shape) - 0.5


def xavier(shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """Glorot/Xavier uniform: ``±sqrt(6 / (fan_in + fan_out))``."""
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape)


def he(shape, fan_in: int, fan_out: int, rng: np.random.Generator) -> np.ndarray:
    """He normal: standard deviation ``sqrt(2 / fan_in)``."""
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)


INITIALIZERS = {"uniform": uniform, "xavier": xavier, "he": he}


def initialize(layer, scheme: str, rng: np.random.Generator) -> None:
    """Draw the starting weights of ``layer`` (one with ``W``, ``b``, ``fan_in``, ``fan_out``).

    The weights come from ``scheme``; the biases are drawn too by the blog's
    ``uniform`` and start at 0 otherwise. Weights first, then biases: the
    order of the draws is part of what makes a seed reproducible.
    """
    layer.W[...] = INITIALIZERS[scheme](layer.W.shape, layer.fan_in, layer.fan_out, rng)
    if scheme == "uniform":
        layer.b[...] = rng.random(layer.b.shape) - 0.5
    else:
        layer.b[...] = 0


def default_init(activations) -> str:
    """He for the ReLU family, Xavier for sigmoid and tanh (by the hidden layers' activations)."""
    return "he" if any(a in ("relu", "leaky_relu") for a in activations) else "xavier"
