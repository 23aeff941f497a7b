"""The network: layers in a row, with the estimator API on top.

``Sequential`` runs layers forward in order and backward in reverse order:
that is all backpropagation needs. ``MLP`` builds the blog's kind of network
(dense layers with a non-linearity between them, softmax at the output) and
offers scikit-learn's methods: ``fit``, ``predict``, ``predict_proba``,
``score``.

Inputs arrive as raw pixels (0-255, any numeric dtype) and are turned into
float32 and multiplied by ``input_scale`` (1/255 by default, so pixels lie
in [0, 1]; the blog's seed preset keeps 1, i.e. raw pixels).
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError
from .initializers import INITIALIZERS, default_init
from .layers import ACTIVATIONS, Activation, Dense, Dropout, Layer, layer_from_description
from .losses import l2_penalty, softmax, softmax_cross_entropy


class Sequential(Layer):
    """Layers applied one after the other; backward runs them in reverse."""

    def __init__(self, layers: list[Layer]):
        self.layers = list(layers)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def backward(self, grad):
        for layer in reversed(self.layers):
            grad = layer.backward(grad)
        return grad

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]

    def gradients(self):
        return [g for layer in self.layers for g in layer.gradients()]

    def dense_layers(self) -> list[Dense]:
        return [layer for layer in self.layers if isinstance(layer, Dense)]

    def train(self, mode: bool = True) -> None:
        """Switch dropout on (training) or off (prediction)."""
        for layer in self.layers:
            layer.training = mode

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(map(repr, self.layers))})"


class MLP(Sequential):
    """A multilayer perceptron for digits, e.g. ``MLP([784, 16, 16, 10])``.

    ``sizes`` lists the width of every layer, inputs first and classes last.
    Hidden layers use ``activation`` (sigmoid, tanh, relu, leaky_relu),
    optionally followed by ``Dropout(dropout)``; the last Dense layer gives
    the logits that softmax turns into probabilities.
    """

    def __init__(self, sizes, activation: str = "sigmoid", init: str | None = None,
                 dropout: float = 0.0, seed: int | None = None, input_scale: float = 1 / 255,
                 layers: list[Layer] | None = None):
        sizes = [int(s) for s in sizes]
        if len(sizes) < 2 or min(sizes) < 1:
            raise DataError(f"layer sizes {sizes}: need at least inputs and outputs, all positive")
        if activation not in ACTIVATIONS:
            raise DataError(f"activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
        init = init or default_init(activation)
        if init not in INITIALIZERS:
            raise DataError(f"init {init!r}: choose one of {', '.join(INITIALIZERS)}")
        self.sizes, self.activation, self.init = sizes, activation, init
        self.dropout, self.input_scale = float(dropout), float(input_scale)
        self.rng = np.random.default_rng(seed)
        super().__init__(layers if layers is not None else self._build())
        # Nothing uses the gradient with respect to the pixels: skip computing it.
        self.dense_layers()[0].input_grad = False

    def _build(self) -> list[Layer]:
        layers: list[Layer] = []
        make = INITIALIZERS[self.init]
        for i, (n_in, n_out) in enumerate(zip(self.sizes, self.sizes[1:])):
            weights, bias = make(n_in, n_out, self.rng)
            layers.append(Dense(n_in, n_out, weights, bias))
            if i < len(self.sizes) - 2:  # every layer but the output one
                layers.append(ACTIVATIONS[self.activation]())
                if self.dropout:
                    layers.append(Dropout(self.dropout, self.rng))
        return layers

    # ------------------------------------------------------------------ #
    # Inputs, validated once here
    # ------------------------------------------------------------------ #
    def check_inputs(self, X) -> np.ndarray:
        """``X`` as a 2-D array of finite numbers with one row per digit, or DataError."""
        X = np.asarray(X)
        if X.ndim == 1 and X.size == self.sizes[0]:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.sizes[0]:
            raise DataError(
                f"inputs of shape {X.shape} do not fit this network, which takes rows of {self.sizes[0]} values"
            )
        if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
            raise DataError("inputs must be finite numbers (found NaN, infinity or text)")
        return X

    def scale(self, X) -> np.ndarray:
        """Checked raw pixels -> float32 network inputs, times ``input_scale`` (a new array)."""
        out = X.astype(np.float32)
        if self.input_scale != 1:
            out *= np.float32(self.input_scale)
        return out

    def prepare(self, X) -> np.ndarray:
        """Raw pixels -> float32 network inputs (a copy; ``X`` is untouched)."""
        return self.scale(self.check_inputs(X))

    def check_labels(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise DataError(f"labels of shape {y.shape} do not match {n} inputs")
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= self.sizes[-1]):
            raise DataError(f"labels must be whole numbers 0..{self.sizes[-1] - 1}")
        return y.astype(np.intp)

    # ------------------------------------------------------------------ #
    # Training: cost and gradients, then fit
    # ------------------------------------------------------------------ #
    def loss_and_gradients(self, inputs: np.ndarray, labels: np.ndarray, l2: float = 0.0):
        """One forward and one backward pass over prepared ``inputs``.

        Returns ``(cost, probabilities)`` and leaves dCost/dParameter in
        ``gradients()``. The cost is the mean cross-entropy plus the L2
        penalty ``l2/2 * sum(W**2)`` over the weights (not the biases).
        """
        logits = self.forward(inputs)
        cost, grad, probabilities = softmax_cross_entropy(logits, labels)
        self.backward(grad)
        if l2:
            weights = [layer.W for layer in self.dense_layers()]
            cost += l2_penalty(weights, l2)
            for layer in self.dense_layers():
                layer.dW += np.float32(l2) * layer.W if layer.W.dtype == np.float32 else l2 * layer.W
        return cost, probabilities

    def fit(self, X, y, **options):
        """Train on raw pixels ``X`` (n, 784) and labels ``y``; returns the History.

        Options are those of :class:`nnscratch.training.TrainConfig` (epochs,
        optimizer, lr, batch_size, schedule, l2, validation_split, patience,
        seed) plus ``validation_data=(X_val, y_val)`` and ``callbacks``.
        """
        from .training import TrainConfig, Trainer  # training imports this module

        validation = options.pop("validation_data", None)
        callbacks = options.pop("callbacks", ())
        trainer = Trainer(self, X, y, TrainConfig(**options), validation, callbacks)
        return trainer.run()

    # ------------------------------------------------------------------ #
    # Prediction
    # ------------------------------------------------------------------ #
    def predict_proba(self, X, batch_size: int = 8192) -> np.ndarray:
        """Probabilities of each digit, shape (n, classes); rows sum to 1."""
        X = self.check_inputs(X)
        self.train(False)
        try:  # scaled batch by batch: no float copy of the whole set
            parts = [softmax(self.forward(self.scale(X[i:i + batch_size])))
                     for i in range(0, len(X), batch_size)]
        finally:
            self.train(True)
        return np.concatenate(parts) if parts else np.zeros((0, self.sizes[-1]), np.float32)

    def predict(self, X) -> np.ndarray:
        """The most probable digit for each row of ``X``."""
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X, y) -> float:
        """Accuracy: the fraction of rows whose predicted digit is ``y``."""
        y = self.check_labels(y, len(np.atleast_2d(X)))
        return float(np.mean(self.predict(X) == y)) if len(y) else 0.0

    def hidden_activations(self, X) -> list[np.ndarray]:
        """The output of every hidden activation layer, for looking inside."""
        x = self.prepare(X)
        outputs = []
        self.train(False)
        try:
            for layer in self.layers[:-1]:
                x = layer(x)
                if isinstance(layer, Activation):
                    outputs.append(x)
        finally:
            self.train(True)
        return outputs

    # ------------------------------------------------------------------ #
    # Description, for model files
    # ------------------------------------------------------------------ #
    def describe(self) -> dict:
        return {
            "sizes": self.sizes,
            "activation": self.activation,
            "init": self.init,
            "dropout": self.dropout,
            "input_scale": self.input_scale,
            "layers": [layer.describe() for layer in self.layers],
        }

    @classmethod
    def from_description(cls, desc: dict) -> "MLP":
        """Rebuild an MLP (with zero weights) from ``describe()``."""
        layers = [layer_from_description(d) for d in desc["layers"]]
        return cls(desc["sizes"], desc["activation"], desc["init"], desc["dropout"],
                   input_scale=desc["input_scale"], layers=layers)

    def save(self, path, **extra) -> None:
        """Write the model to ``path`` (.npz, no pickle); see :mod:`nnscratch.modelfile`."""
        from ..files.modelfile import save_model

        save_model(self, path, **extra)

    def __repr__(self):
        return f"MLP({self.sizes}, activation={self.activation!r})"
