"""The network: layers in a row.

``Sequential`` runs its layers forward in order and backward in reverse
order: that is all backpropagation needs. It is itself a layer, so networks
nest. Everything that learns or is kept is found by walking the layers:
``named_params()`` and ``state_dict()`` name each array by its place
(``"1.W"`` is the weights of layer 1, ``"2.0.b"`` a bias inside a nested
block), which is how model files and optimizers refer to them.

A network nnscratch builds (see :mod:`nnscratch.core.builders`) starts
with its input step, :class:`~nnscratch.core.layers.Rescale`, so it always
takes raw pixels, and ends with the layer that gives the logits: the loss
(:mod:`nnscratch.core.losses`) turns those into probabilities.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from .layers import Dense, Layer, Reshape, layer_from_description, register
from .losses import softmax


@register
class Sequential(Layer):
    """Layers applied one after the other; backward runs them in reverse."""

    def __init__(self, layers: list[Layer]):
        self.layers = list(layers)
        learning = [i for i, layer in enumerate(self.layers) if layer.parameters()]
        self._first_learning = learning[0] if learning else len(self.layers)
        for layer in self.layers[self._first_learning + 1:]:
            layer.input_grad = True  # the layers above the first that learns pass gradients down
        self.input_grad = False  # nobody needs dCost/dInput of a whole network (its pixels)

    @property
    def input_grad(self) -> bool:
        return self._input_grad

    @input_grad.setter
    def input_grad(self, value: bool) -> None:
        """False: backward stops at the first layer that learns, which skips dCost/dInput.

        Layers before it (the input step) then get no gradient at all. A network
        nested inside another one, above its first learning layer, must pass
        the gradient all the way down: True.
        """
        self._input_grad = value
        for i, layer in enumerate(self.layers[:self._first_learning + 1]):
            layer.input_grad = value or i < self._first_learning

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers[0 if self.input_grad else self._first_learning:]):
            grad = layer.backward(grad)
        return grad

    # -- what learns, by name --------------------------------------------------
    def sublayers(self):
        return self.layers

    def named_layers(self, prefix: str = ""):
        """``(name, layer)`` for every leaf layer, depth first: ``("1", Dense)``, ``("2.0", ReLU)``."""
        for i, layer in enumerate(self.layers):
            name = f"{prefix}{i}"
            if layer.sublayers():
                yield from layer.named_layers(name + ".")
            else:
                yield name, layer

    def named_params(self) -> list[tuple[str, np.ndarray, np.ndarray, bool]]:
        """``(name, parameter, gradient, decays)`` for every parameter, in a fixed order."""
        return [(f"{name}.{key}", p, layer.grad[key], key in layer.decay)
                for name, layer in self.named_layers() for key, p in layer.params().items()]

    def params(self):
        return {name: p for name, p, _, _ in self.named_params()}

    def parameters(self):
        return [p for _, p, _, _ in self.named_params()]

    def gradients(self):
        return [g for _, _, g, _ in self.named_params()]

    def decays(self) -> list[bool]:
        """For each of ``parameters()``: does weight decay apply to it (weights yes, biases no)?"""
        return [d for _, _, _, d in self.named_params()]

    def state_dict(self) -> dict[str, np.ndarray]:
        """Every parameter and buffer by name: what a model file stores."""
        state = {}
        for name, layer in self.named_layers():
            for key, array in {**layer.params(), **layer.buffers()}.items():
                state[f"{name}.{key}"] = array
        return state

    def walk(self):
        """This network and every layer inside it, nested ones included."""
        yield self
        for layer in self.layers:
            yield from (layer.walk() if layer.sublayers() else [layer])

    def leaves(self) -> list[Layer]:
        return [layer for _, layer in self.named_layers()]

    # -- training and prediction modes ---------------------------------------
    def train(self, mode: bool = True) -> "Sequential":
        """Training mode (dropout on, batch statistics) or, with False, prediction mode; every nested layer."""
        for layer in self.walk():
            layer.training = mode
        return self

    def eval(self) -> "Sequential":
        return self.train(False)

    @contextmanager
    def mode(self, training: bool):
        """Run a block in training or prediction mode, then put the previous mode back."""
        before = [(layer, layer.training) for layer in self.walk()]
        self.train(training)
        try:
            yield self
        finally:
            for layer, was in before:
                layer.training = was

    # -- looking inside ---------------------------------------------------------
    def input_size(self) -> int:
        """Values per example the network takes: fixed by its first Reshape or Dense layer."""
        for layer in self.leaves():
            if isinstance(layer, (Reshape, Dense)):
                return int(np.prod(layer.shape)) if isinstance(layer, Reshape) else layer.fan_in
        raise ValueError("the network has no Dense or Reshape layer to tell how many inputs it takes")

    def output_shape(self, input_shape):
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape

    def shapes(self, input_shape) -> list[tuple]:
        """Each layer's output shape for one example of ``input_shape``."""
        shapes = []
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
            shapes.append(tuple(input_shape))
        return shapes

    def outputs(self, x) -> list[np.ndarray]:
        """Every layer's output for ``x``, in prediction mode (for looking inside)."""
        outputs = []
        with self.mode(False):
            for layer in self.layers:
                x = layer(x)
                outputs.append(x)
        return outputs

    def probabilities(self, x) -> np.ndarray:
        """softmax of the logits for ``x``, in prediction mode (no checks: see Classifier)."""
        with self.mode(False):
            return softmax(self.forward(x))

    # -- copies and descriptions ------------------------------------------------
    def replica(self):
        return Sequential([layer.replica() for layer in self.layers])

    def astype(self, dtype):
        for layer in self.layers:
            layer.astype(dtype)
        return self

    def config(self):
        return {"layers": [layer.describe() for layer in self.layers]}

    @classmethod
    def from_config(cls, layers):
        return cls([layer_from_description(d) for d in layers])

    def __repr__(self):
        return f"Sequential({', '.join(map(repr, self.layers))})"
