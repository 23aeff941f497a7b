"""Step 2 of the pipeline: the layers a network is built from.

Every layer is a small object with two methods side by side:

* ``forward(x)`` (also ``layer(x)``) computes the layer's output for a batch
  ``x`` of shape (batch, features) and remembers what the backward pass needs;
* ``backward(grad)`` takes dCost/dOutput and returns dCost/dInput, storing
  dCost/dParameter for the layers that learn.

Reading the two next to each other is the whole of backpropagation: each
backward is the chain rule applied to its forward.
"""
from __future__ import annotations

import numpy as np


class Layer:
    """A step of the network: ``forward`` then, during training, ``backward``."""

    training = True  # dropout behaves differently in training and in prediction

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def parameters(self) -> list[np.ndarray]:
        """The arrays that learn (updated in place by the optimizer)."""
        return []

    def gradients(self) -> list[np.ndarray]:
        """dCost/dParameter for each of ``parameters()``, same order and shapes."""
        return []

    def describe(self) -> dict:
        """A JSON-able description, enough to rebuild the layer (weights aside)."""
        return {"type": type(self).__name__}


class Dense(Layer):
    """A fully connected layer: ``y = x @ W + b``.

    ``W`` has shape (inputs, outputs): column j holds the weights of neuron j.
    ``b`` has shape (outputs,). Both are float32 unless given otherwise.

    ``input_grad=False`` skips dCost/dInput in ``backward``: the first layer's
    input is the pixels, whose gradient nobody uses, and that product is as
    costly as the layer's whole forward pass. :class:`MLP` sets it so.
    """

    def __init__(self, n_in: int, n_out: int, weights: np.ndarray | None = None,
                 bias: np.ndarray | None = None, dtype=np.float32, input_grad: bool = True):
        self.W = np.zeros((n_in, n_out), dtype) if weights is None else np.asarray(weights, dtype)
        self.b = np.zeros(n_out, dtype) if bias is None else np.asarray(bias, dtype)
        self.dW = np.zeros_like(self.W)
        self.db = np.zeros_like(self.b)
        self.input_grad = input_grad
        self._x = None

    def forward(self, x):
        self._x = x
        y = x @ self.W
        y += self.b  # in place: one (batch, outputs) array per call, not two
        return y

    def backward(self, grad):
        # y = x W + b, so dC/dW = x^T dC/dy, dC/db = sum over the batch of dC/dy,
        # and dC/dx = dC/dy W^T (needed by the layer below, if there is one).
        np.matmul(self._x.T, grad, out=self.dW)
        np.sum(grad, axis=0, out=self.db)
        return grad @ self.W.T if self.input_grad else None

    def parameters(self):
        return [self.W, self.b]

    def gradients(self):
        return [self.dW, self.db]

    def describe(self):
        return {"type": "Dense", "inputs": self.W.shape[0], "outputs": self.W.shape[1]}

    def __repr__(self):
        return f"Dense({self.W.shape[0]}, {self.W.shape[1]})"


class Activation(Layer):
    """An elementwise non-linearity ``y = f(x)``; backward multiplies by ``f'(x)``."""

    def __repr__(self):
        return f"{type(self).__name__}()"


class Sigmoid(Activation):
    """``sigmoid(x) = 1 / (1 + exp(-x))``, computed as ``(1 + tanh(x/2)) / 2``.

    The two are equal, but the tanh form never overflows: with raw 0-255
    pixels a neuron's input can reach thousands, and ``exp(-x)`` then
    overflows float32 (the blog's ``+1e-5`` does not prevent that).
    Its derivative is ``y * (1 - y)``, written in terms of the output.
    """

    def forward(self, x):
        y = np.tanh(x * 0.5)
        y += 1
        y *= 0.5
        self._y = y
        return y

    def backward(self, grad):
        y = self._y
        return grad * y * (1 - y)


class Tanh(Activation):
    """``tanh(x)``; derivative ``1 - y**2``."""

    def forward(self, x):
        self._y = np.tanh(x)
        return self._y

    def backward(self, grad):
        return grad * (1 - self._y * self._y)


class ReLU(Activation):
    """``max(0, x)``; derivative 1 where the input was positive, else 0."""

    def forward(self, x):
        self._positive = x > 0
        return np.maximum(x, 0)

    def backward(self, grad):
        return grad * self._positive


class LeakyReLU(Activation):
    """``x`` where positive, ``slope * x`` elsewhere; derivative 1 or ``slope``."""

    def __init__(self, slope: float = 0.01):
        self.slope = slope

    def forward(self, x):
        self._positive = x > 0
        return np.where(self._positive, x, x * np.float32(self.slope))

    def backward(self, grad):
        return np.where(self._positive, grad, grad * np.float32(self.slope))

    def describe(self):
        return {"type": "LeakyReLU", "slope": self.slope}


class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate``
    and scale the survivors by ``1 / (1 - rate)`` so the expected output is
    unchanged; in prediction, pass the input through untouched.
    """

    def __init__(self, rate: float, rng: np.random.Generator | None = None):
        self.rate = rate
        self.rng = rng if rng is not None else np.random.default_rng()

    def forward(self, x):
        if not self.training or self.rate == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep * np.float32(1 / (1 - self.rate))
        return x * self._mask

    def backward(self, grad):
        return grad if self._mask is None else grad * self._mask

    def describe(self):
        return {"type": "Dropout", "rate": self.rate}

    def __repr__(self):
        return f"Dropout({self.rate})"


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU}


def layer_from_description(desc: dict) -> Layer:
    """Rebuild a layer (with zero weights) from ``Layer.describe()``."""
    kind = desc.get("type")
    if kind == "Dense":
        return Dense(int(desc["inputs"]), int(desc["outputs"]))
    if kind == "Dropout":
        return Dropout(float(desc["rate"]))
    if kind == "LeakyReLU":
        return LeakyReLU(float(desc.get("slope", 0.01)))
    by_name = {cls.__name__: cls for cls in ACTIVATIONS.values()}
    if kind in by_name:
        return by_name[kind]()
    raise ValueError(f"unknown layer type {kind!r}")
