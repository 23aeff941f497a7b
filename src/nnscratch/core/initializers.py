"""Where the weights start.

A network that starts with every weight equal never breaks the symmetry
between its neurons; one that starts with weights too large saturates its
sigmoids; one that starts too small makes the signal fade layer by layer.

* ``uniform``: the blog's choice, every weight *and bias* uniform in
  [-0.5, 0.5). Fine for 16 neurons on raw pixels as the blog used it.
* ``xavier`` (Glorot & Bengio, 2010): uniform in ``±sqrt(6 / (n_in + n_out))``,
  keeping the variance of the signal about constant through sigmoid and tanh
  layers. Biases start at 0.
* ``he`` (He et al., 2015): normal with standard deviation ``sqrt(2 / n_in)``,
  the same idea for ReLU, which zeroes half of its inputs. Biases start at 0.
"""
from __future__ import annotations

import numpy as np


def uniform(n_in: int, n_out: int, rng: np.random.Generator):
    """The blog's initialisation: weights and biases uniform in [-0.5, 0.5)."""
    return rng.random((n_in, n_out)) - 0.5, rng.random(n_out) - 0.5


def xavier(n_in: int, n_out: int, rng: np.random.Generator):
    """Glorot/Xavier uniform weights, zero biases."""
    limit = np.sqrt(6.0 / (n_in + n_out))
    return rng.uniform(-limit, limit, (n_in, n_out)), np.zeros(n_out)


def he(n_in: int, n_out: int, rng: np.random.Generator):
    """He normal weights, zero biases."""
    return rng.normal(0.0, np.sqrt(2.0 / n_in), (n_in, n_out)), np.zeros(n_out)


INITIALIZERS = {"uniform": uniform, "xavier": xavier, "he": he}


def default_init(activation: str) -> str:
    """He for the ReLU family, Xavier for sigmoid and tanh."""
    return "he" if activation in ("relu", "leaky_relu") else "xavier"
