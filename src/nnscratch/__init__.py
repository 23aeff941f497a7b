"""nnscratch: a neural network from scratch in NumPy that learns to read handwritten digits.

The package in three layers, following the blog's pipeline:

* ``core/``: the math. Layers (``Dense``, ``Sigmoid``...), the network
  (``Sequential``) and its builders (``mlp``, ``network_from_layers``), the
  loss, the optimizers, the training loop, and ``Classifier``, the estimator;
* ``files/``: what is read and written. Data sets, model files, checkpoints,
  real pictures;
* ``apps/``: what is done with them. A whole training run, evaluation and
  figures, the ``nnscratch`` command and the web page.

Quick use::

    import nnscratch
    split = nnscratch.data.load()                      # the bundled 5000 digits
    model = nnscratch.Classifier(nnscratch.mlp([784, 16, 16, 10]), epochs=30, lr=0.01)
    model.fit(split.train.images, split.train.labels)
    model.score(split.test.images, split.test.labels)
"""
__version__ = "0.2.0"

from .core.builders import mlp, network_from_layers  # noqa: E402
from .core.estimator import Classifier  # noqa: E402
from .core.layers import Dense, Dropout, LeakyReLU, ReLU, Rescale, Reshape, Sigmoid, Tanh  # noqa: E402
from .core.losses import softmax, softmax_cross_entropy  # noqa: E402
from .core.network import Sequential  # noqa: E402
from .core.optimizers import GD, Adam, Momentum, Nesterov  # noqa: E402
from .errors import DataError, NnscratchError, TrainingDiverged  # noqa: E402
from .files import data, images  # noqa: E402
from .files.modelfile import load_model as load  # noqa: E402

__all__ = [
    "Classifier", "mlp", "network_from_layers", "Sequential", "Dense", "Sigmoid", "Tanh", "ReLU", "LeakyReLU",
    "Dropout", "Rescale", "Reshape", "softmax", "softmax_cross_entropy", "GD", "Momentum", "Nesterov", "Adam",
    "DataError", "NnscratchError", "TrainingDiverged", "data", "images", "load",
]
