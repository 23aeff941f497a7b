"""The layers a network is built from.

Every layer is a small object with two methods side by side:

* ``forward(x)`` (also ``layer(x)``) computes the layer's output for a batch
  ``x`` (the batch on the first axis) and, in training mode only, remembers
  what the backward pass needs;
* ``backward(grad)`` takes dCost/dOutput and returns dCost/dInput, storing
  dCost/dParameter in ``layer.grad`` for the layers that learn.

Reading the two next to each other is the whole of backpropagation: each
backward is the chain rule applied to its forward.

What a layer learns, it lists by name: ``params()`` (the arrays the
optimizer moves, e.g. ``{"W": ..., "b": ...}``; each is also an attribute of
that name) with ``grad`` holding a gradient of the same name and shape, and
``buffers()`` for state that is kept but not learned (BatchNorm's running
statistics). ``config()`` holds the constructor's arguments, so
``describe()`` / :func:`layer_from_description` rebuild any registered layer
from a model file. ``decay`` names the parameters that weight decay shrinks:
the weights, never the biases.
"""
from __future__ import annotations

import copy
import math

import numpy as np

from .kernels import elementwise

LAYERS: dict[str, type] = {}


def register(cls):
    """Class decorator: make a layer type known to model files (by its class name)."""
    LAYERS[cls.__name__] = cls
    return cls


class Layer:
    """A step of the network: ``forward`` then, during training, ``backward``."""

    training = True  # dropout and batch normalisation behave differently when predicting
    input_grad = True  # False: backward need not compute dCost/dInput (nothing below uses it)
    rowwise = True  # each output row depends on its input row only (False: dropout, batchnorm)
    heavy = False  # True: milliseconds of work for a few rows (a convolution): see fast.SplitBatchStep
    decay: tuple[str, ...] = ()  # names of the parameters weight decay applies to
    grad: dict[str, np.ndarray] = {}

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def backward(self, grad: np.ndarray) -> np.ndarray | None:  # pragma: no cover - interface
        raise NotImplementedError

    def params(self) -> dict[str, np.ndarray]:
        """The arrays that learn, by name (updated in place by the optimizer)."""
        return {}

    def buffers(self) -> dict[str, np.ndarray]:
        """Arrays kept with the model that do not learn by gradient (e.g. running statistics)."""
        return {}

    def config(self) -> dict:
        """The constructor's arguments, JSON-able: ``type(self)(**config())`` rebuilds the layer."""
        return {}

    def output_shape(self, input_shape: tuple) -> tuple:
        """The shape of one example's output, given one example's input shape."""
        return tuple(input_shape)

    # -- derived from the above: no layer needs to write these ------------------
    @classmethod
    def from_config(cls, **config) -> "Layer":
        """The layer that ``config()`` describes (zero weights: the model file holds them)."""
        return cls(**config)

    def describe(self) -> dict:
        return {"type": type(self).__name__, **self.config()}

    def parameters(self) -> list[np.ndarray]:
        return list(self.params().values())

    def gradients(self) -> list[np.ndarray]:
        """dCost/dParameter for each of ``parameters()``, same order and shapes."""
        return [self.grad[name] for name in self.params()]

    def sublayers(self) -> list["Layer"]:
        """Layers inside this one (a Sequential's); none for a plain layer."""
        return []

    def astype(self, dtype) -> "Layer":
        """Convert parameters, gradients and buffers to ``dtype`` in place (float64 for gradient checks)."""
        for name in [*self.params(), *self.buffers()]:
            setattr(self, name, getattr(self, name).astype(dtype))
        self.grad = {name: g.astype(dtype) for name, g in self.grad.items()}
        if hasattr(self, "dtype"):
            self.dtype = np.dtype(dtype)
        return self

    def replica(self) -> "Layer":
        """A twin that shares the parameters but has its own gradients and saved inputs.

        Two threads can run a forward and backward pass each on its own
        replica at once (see :mod:`nnscratch.core.fast`).
        """
        twin = copy.copy(self)
        twin.grad = {name: np.zeros_like(g) for name, g in self.grad.items()}
        return twin

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


# --------------------------------------------------------------------------- #
# The input step: raw pixels in, network inputs out
# --------------------------------------------------------------------------- #
@register
class Rescale(Layer):
    """Raw pixels (any numeric dtype) to float inputs: ``y = scale * x``.

    The first layer of every network nnscratch builds, so that a network
    always takes raw 0-255 pixels: ``scale`` is 1/255 (inputs in [0, 1]) for
    modern training, 1 for the blog's raw pixels. Nothing learns here and
    nothing below needs dCost/dPixels, so backward stops the chain.
    """

    input_grad = False

    def __init__(self, scale: float = 1 / 255, dtype=np.float32):
        self.scale, self.dtype = float(scale), np.dtype(dtype)

    def forward(self, x):
        if hasattr(x, "scaled"):  # a batch kept as its inked pixels (core/kernels/sparse.py) scales those
            return x.scaled(self.scale, self.dtype)
        # np.copyto converts uint8 to float twice as fast as a mixed-type multiply.
        y = np.empty(np.shape(x), self.dtype)
        np.copyto(y, x)
        if self.scale != 1:
            y *= self.dtype.type(self.scale)
        return y

    def backward(self, grad):
        return grad * self.scale if self.input_grad else None

    def config(self):
        return {"scale": self.scale}


@register
class Reshape(Layer):
    """Give each example a new shape, e.g. rows of 784 pixels -> images (1, 28, 28)."""

    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x):
        if self.training:
            self._in_shape = x.shape
        return x.reshape((len(x), *self.shape))

    def backward(self, grad):
        return grad.reshape(self._in_shape)

    def output_shape(self, input_shape):
        if math.prod(input_shape) != math.prod(self.shape):
            raise ValueError(f"cannot reshape {tuple(input_shape)} into {self.shape}")
        return self.shape

    def config(self):
        return {"shape": list(self.shape)}


# --------------------------------------------------------------------------- #
# Dense
# --------------------------------------------------------------------------- #
@register
class Dense(Layer):
    """A fully connected layer: ``y = x @ W + b``.

    ``W`` has shape (inputs, outputs): column j holds the weights of neuron j.
    ``b`` has shape (outputs,). Both are float32 unless given otherwise; the
    network's builder draws their starting values (see ``initializers``).

    ``input_columns``, when set, says that the inputs this layer receives are
    only those columns of its real inputs, all others being zero in every
    row: the full-batch step leaves out the pixels that are blank in every
    training digit. The product then uses only those rows of ``W``, and the
    other rows of ``dW`` are exactly zero, as they would be.
    """

    decay = ("W",)

    def __init__(self, n_in: int, n_out: int, dtype=np.float32):
        self.W = np.zeros((n_in, n_out), dtype)
        self.b = np.zeros(n_out, dtype)
        self.grad = {"W": np.zeros_like(self.W), "b": np.zeros_like(self.b)}
        self.input_columns: np.ndarray | None = None

    @property
    def fan_in(self) -> int:
        return self.W.shape[0]

    @property
    def fan_out(self) -> int:
        return self.W.shape[1]

    def _weights(self) -> np.ndarray:
        return self.W if self.input_columns is None else self.W[self.input_columns]

    def forward(self, x):
        if self.training:
            self._x = x
        y = x @ self._weights()
        y += self.b  # in place: one (batch, outputs) array per call, not two
        return y

    def backward(self, grad):
        # y = x W + b, so dC/dW = x^T dC/dy, dC/db = sum over the batch of dC/dy,
        # and dC/dx = dC/dy W^T (needed by the layer below, if there is one).
        dW, x = self.grad["W"], self._x
        if self.input_columns is not None:
            dW[...] = 0
            dW[self.input_columns] = x.T @ grad
        elif isinstance(x, np.ndarray):
            np.matmul(x.T, grad, out=dW)
        else:  # a batch kept as its inked pixels (core/kernels/sparse.py) multiplies over those
            x.transposed_times(grad, out=dW)
        np.sum(grad, axis=0, out=self.grad["b"])
        return grad @ self._weights().T if self.input_grad else None

    def params(self):
        return {"W": self.W, "b": self.b}

    def output_shape(self, input_shape):
        if math.prod(input_shape) != self.fan_in:
            raise ValueError(f"Dense({self.fan_in}, {self.fan_out}) cannot take inputs of shape {tuple(input_shape)}")
        return (self.fan_out,)

    def config(self):
        return {"n_in": self.fan_in, "n_out": self.fan_out}

    def __repr__(self):
        return f"Dense({self.fan_in}, {self.fan_out})"


# --------------------------------------------------------------------------- #
# Activations: elementwise, so output_shape is the input's
# --------------------------------------------------------------------------- #
class Activation(Layer):
    """An elementwise non-linearity ``y = f(x)``; backward multiplies by ``f'(x)``."""


@register
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
        if self.training:
            self._y = y
        return y

    def backward(self, grad):
        y = self._y
        return grad * y * (1 - y)


@register
class Tanh(Activation):
    """``tanh(x)``; derivative ``1 - y**2``."""

    def forward(self, x):
        y = np.tanh(x)
        if self.training:
            self._y = y
        return y

    def backward(self, grad):
        return grad * (1 - self._y * self._y)


@register
class ReLU(Activation):
    """``max(0, x)``; derivative 1 where the output is positive, else 0.

    Backward reads the output (positive exactly where the input was), so no
    mask is kept. A large array (a convolution's feature maps) goes through
    one compiled loop each way when the kernels are on
    (``kernels/elementwise.py``): NumPy takes two passes over memory for the
    backward.
    """

    def forward(self, x):
        y = np.empty_like(x)
        if elementwise.applies(x, y):
            elementwise.relu(x.ravel("K"), y.ravel("K"))  # each array's memory, in its own order
        else:
            np.maximum(x, 0, out=y)
        if self.training:
            self._y = y
        return y

    def backward(self, grad):
        out = np.empty_like(grad)
        if elementwise.applies(grad, out, self._y):
            elementwise.relu_backward(grad.ravel("K"), self._y.ravel("K"), out.ravel("K"))
        else:
            np.multiply(grad, self._y > 0, out=out)
        return out


@register
class LeakyReLU(Activation):
    """``x`` where positive, ``slope * x`` elsewhere; derivative 1 or ``slope``."""

    def __init__(self, slope: float = 0.01):
        self.slope = float(slope)

    def forward(self, x):
        positive = x > 0
        if self.training:
            self._positive = positive
        return np.where(positive, x, x * x.dtype.type(self.slope))

    def backward(self, grad):
        return np.where(self._positive, grad, grad * grad.dtype.type(self.slope))

    def config(self):
        return {"slope": self.slope}


ACTIVATIONS = {"sigmoid": Sigmoid, "tanh": Tanh, "relu": ReLU, "leaky_relu": LeakyReLU}


# --------------------------------------------------------------------------- #
# Dropout
# --------------------------------------------------------------------------- #
@register
class Dropout(Layer):
    """Inverted dropout: in training, zero each input with probability ``rate``
    and scale the survivors by ``1 / (1 - rate)`` so the expected output is
    unchanged; in prediction, pass the input through untouched.

    ``rng`` is the generator the masks are drawn from; the training loop sets
    it to the run's own, so that a resumed run draws the same masks.
    """

    rowwise = False  # its masks depend on the order of the draws

    def __init__(self, rate: float, rng: np.random.Generator | None = None):
        self.rate = float(rate)
        self.rng = rng if rng is not None else np.random.default_rng()
        self._mask = None

    def forward(self, x):
        if not self.training:
            return x
        if self.rate == 0:
            self._mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        self._mask = keep * x.dtype.type(1 / (1 - self.rate))
        return x * self._mask

    def backward(self, grad):
        return grad if self._mask is None else grad * self._mask

    def config(self):
        return {"rate": self.rate}


def layer_from_description(desc: dict) -> Layer:
    """Rebuild a layer (with zero weights) from ``Layer.describe()``."""
    if not isinstance(desc, dict) or desc.get("type") not in LAYERS:
        kind = desc.get("type") if isinstance(desc, dict) else desc
        raise ValueError(f"unknown layer type {kind!r}")
    kwargs = {k: v for k, v in desc.items() if k != "type"}
    return LAYERS[desc["type"]].from_config(**kwargs)
