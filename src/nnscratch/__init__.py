"""nnscratch: a neural network from scratch in NumPy that learns to read handwritten digits.

The pipeline, one module per step:

    data -> layers/network -> losses -> optimizers -> training -> reports -> cli

Quick use::

    import nnscratch
    split = nnscratch.data.load()                      # the bundled 5000 digits
    model = nnscratch.MLP([784, 16, 16, 10])
    model.fit(split.train.images, split.train.labels, epochs=30, lr=0.01)
    model.score(split.test.images, split.test.labels)
"""
__version__ = "0.1.0"

from .files import data  # noqa: E402
from .errors import DataError, NnscratchError, TrainingDiverged  # noqa: E402
from .core.layers import Dense, Dropout, LeakyReLU, ReLU, Sigmoid, Tanh  # noqa: E402
from .core.losses import softmax, softmax_cross_entropy  # noqa: E402
from .files.modelfile import load_model as load  # noqa: E402
from .core.network import MLP, Sequential  # noqa: E402
from .core.optimizers import GD, Adam, Momentum, Nesterov  # noqa: E402

__all__ = [
    "MLP", "Sequential", "Dense", "Sigmoid", "Tanh", "ReLU", "LeakyReLU", "Dropout",
    "softmax", "softmax_cross_entropy", "GD", "Momentum", "Nesterov", "Adam",
    "DataError", "NnscratchError", "TrainingDiverged", "data", "load",
]
