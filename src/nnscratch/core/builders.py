"""Networks from a short description: the blog's MLPs, and any stack of layers.

Two ways to say what network you want:

* ``mlp([784, 16, 16, 10], activation="sigmoid")``: the layer widths, inputs
  first and classes last, with an activation between the Dense layers;
* ``network_from_layers("conv 32 5x5, relu, maxpool 2, flatten, dense 128, relu")``:
  the hidden part as a comma-separated list of layers, each a name and its
  arguments (the ``--layers`` flag). The output layer, Dense to the number of
  classes, is added.

The layer names::

    dense N              N neurons, fully connected
    sigmoid | tanh | relu | leaky_relu [SLOPE]
    dropout RATE         zero a share RATE of the values while training
    conv N KxK [same]    N filters of K x K ("valid" padding unless "same")
    maxpool N            the largest value of each N x N window
    flatten              images -> rows
    batchnorm            normalise each feature (or channel) over the batch

Every network starts with its input step, :class:`~nnscratch.core.layers.Rescale`
(raw pixels x ``input_scale``), and, when a layer needs images, a
:class:`~nnscratch.core.layers.Reshape` of the rows of 784 pixels into
(1, 28, 28) images. The builder follows the shape of one example through the
stack, so only the number of outputs of each layer is given; it draws every
weight from one generator seeded by ``seed``, layer by layer, so the same
seed gives the same network.
"""
from __future__ import annotations

import math
import re

import numpy as np

from ..errors import DataError
from .initializers import INITIALIZERS, default_init, initialize
from .layers import ACTIVATIONS, Dense, Dropout, Layer, LeakyReLU, Rescale, Reshape
from .network import Sequential

MAX_WIDTH = 100_000  # neurons or filters in one layer: more is surely a typo


def _count(word: str, what: str) -> int:
    if not re.fullmatch(r"\d+", word) or not 1 <= int(word) <= MAX_WIDTH:
        raise ValueError(f"{what} must be a whole number from 1 to {MAX_WIDTH}, not {word!r}")
    return int(word)


def _fraction(word: str, what: str) -> float:
    try:
        value = float(word)
    except ValueError:
        raise ValueError(f"{what} must be a number, not {word!r}") from None
    if not 0 <= value < 1:
        raise ValueError(f"{what} must be in [0, 1), not {word}")
    return value


def _flat(shape) -> int:
    return math.prod(shape)


def _dense(args, shape):
    (n,) = args
    return Dense(_flat(shape), _count(n, "the number of neurons"))


def _dropout(args, shape):
    (rate,) = args
    return Dropout(_fraction(rate, "the dropout rate"))


def _leaky_relu(args, shape):
    return LeakyReLU(*[_fraction(a, "the slope") for a in args])


def _conv(args, shape):
    from .conv import Conv2D

    n, size, *padding = args
    match = re.fullmatch(r"(\d+)x(\d+)", size)
    if not match or match[1] != match[2]:
        raise ValueError(f"the kernel size must be square, like 5x5, not {size!r}")
    if padding not in ([], ["same"], ["valid"]):
        raise ValueError(f"padding must be 'same' or 'valid', not {' '.join(padding)!r}")
    k = _count(match[1], "the kernel size")
    if not padding or padding == ["valid"]:
        if k > min(shape[1:]):
            raise ValueError(f"a {k}x{k} kernel does not fit in images of {shape[1]}x{shape[2]}")
    return Conv2D(shape[0], _count(n, "the number of filters"), k, padding=(padding or ["valid"])[0])


def _maxpool(args, shape):
    from .conv import MaxPool2D

    (size,) = args
    size = _count(size, "the pool size")
    if size > min(shape[1:]):
        raise ValueError(f"a {size}x{size} pool does not fit in images of {shape[1]}x{shape[2]}")
    return MaxPool2D(size)


def _flatten(args, shape):
    from .conv import Flatten

    return Flatten()


def _batchnorm(args, shape):
    from .batchnorm import BatchNorm

    return BatchNorm(shape[0])


def _activation(cls):
    return lambda args, shape: cls()


# name: (how to build it from its arguments and the input shape, the arguments it takes, needs images)
LAYER_SPECS = {
    "dense": (_dense, "N", False),
    **{name: (_activation(cls), "", False) for name, cls in ACTIVATIONS.items() if name != "leaky_relu"},
    "leaky_relu": (_leaky_relu, "[SLOPE]", False),
    "dropout": (_dropout, "RATE", False),
    "conv": (_conv, "N KxK [same]", True),
    "maxpool": (_maxpool, "N", True),
    "flatten": (_flatten, "", False),
    "batchnorm": (_batchnorm, "", False),
}


def parse_layers(text: str) -> list[tuple[str, list[str]]]:
    """``"dense 16, sigmoid"`` -> ``[("dense", ["16"]), ("sigmoid", [])]``, names checked."""
    items = [item.split() for item in str(text).split(",")]
    for i, words in enumerate(items, 1):
        if not words:
            raise DataError(f"layers {text!r}: item {i} is empty")
        if words[0].lower() not in LAYER_SPECS:
            raise DataError(f"layers {text!r}: unknown layer {words[0]!r} (item {i}); "
                            f"known: {', '.join(LAYER_SPECS)}")
        words[0] = words[0].lower()
    return [(words[0], words[1:]) for words in items]


def network_from_specs(specs, n_classes: int = 10, input_shape=(784,), input_scale: float = 1 / 255,
                       init: str | None = None, seed: int | None = 0) -> Sequential:
    """Build the network: input step, the ``specs`` (from :func:`parse_layers`), output layer."""
    init = init or default_init([name for name, _ in specs])
    if init not in INITIALIZERS:
        raise DataError(f"init {init!r}: choose one of {', '.join(INITIALIZERS)}")
    rng = np.random.default_rng(seed)
    layers: list[Layer] = [Rescale(input_scale)]
    shape = tuple(input_shape)
    for i, (name, args) in enumerate([*specs, ("dense", [str(n_classes)])], 1):
        make, usage, needs_images = LAYER_SPECS[name]
        what = f"{name} {' '.join(args)}".strip()
        if not len([w for w in usage.split() if w[0] != "["]) <= len(args) <= len(usage.split()):
            raise DataError(f"layer {i} {what!r}: write {name} {usage}".rstrip())
        if needs_images and len(shape) == 1:  # rows of pixels -> (1, side, side) images
            side = math.isqrt(shape[0])
            if side * side != shape[0]:
                raise DataError(f"layer {name!r} needs square images, but the inputs are rows of {shape[0]}")
            layers.append(Reshape((1, side, side)))
            shape = (1, side, side)
        elif len(shape) > 1 and name == "dense":  # images -> rows, where a flatten was left out
            layers.append(Reshape((_flat(shape),)))
            shape = (_flat(shape),)
        try:
            layer = make(args, shape)
        except ValueError as exc:
            raise DataError(f"layer {i} {what!r}: {exc}") from None
        if "W" in layer.params():
            initialize(layer, init, rng)
        if isinstance(layer, Dropout):
            layer.rng = rng
        layers.append(layer)
        shape = layer.output_shape(shape)
    return Sequential(layers)


def network_from_layers(text: str, **options) -> Sequential:
    """The network that a ``--layers`` text describes (see the module docstring)."""
    return network_from_specs(parse_layers(text), **options)


def mlp_specs(hidden, activation: str = "sigmoid", dropout: float = 0.0) -> list[tuple[str, list[str]]]:
    """The hidden part of an MLP as layer specs: Dense, activation and optional dropout per layer."""
    if activation not in ACTIVATIONS:
        raise DataError(f"activation {activation!r}: choose one of {', '.join(ACTIVATIONS)}")
    specs = []
    for width in hidden:
        specs += [("dense", [str(int(width))]), (activation, [])]
        if dropout:
            specs.append(("dropout", [repr(float(dropout))]))
    return specs


def mlp(sizes, activation: str = "sigmoid", init: str | None = None, dropout: float = 0.0,
        seed: int | None = 0, input_scale: float = 1 / 255) -> Sequential:
    """A multilayer perceptron, e.g. ``mlp([784, 16, 16, 10])``: widths from inputs to classes.

    Hidden layers use ``activation`` (sigmoid, tanh, relu, leaky_relu), each
    optionally followed by ``Dropout(dropout)``; the last Dense layer gives the
    logits. ``init`` defaults to He for the ReLU family, Xavier otherwise.
    """
    sizes = [int(s) for s in sizes]
    if len(sizes) < 2 or min(sizes) < 1:
        raise DataError(f"layer sizes {sizes}: need at least inputs and outputs, all positive")
    return network_from_specs(mlp_specs(sizes[1:-1], activation, dropout), n_classes=sizes[-1],
                              input_shape=(sizes[0],), input_scale=input_scale, init=init, seed=seed)
