"""One estimator for any network: ``Classifier``, with scikit-learn's conventions.

* hyperparameters go to ``__init__`` and are kept as given (``get_params``);
* ``fit(X, y)`` trains and returns the estimator itself; what was learned
  ends with an underscore (``history_``);
* ``predict_proba(X)``, ``predict(X)``, ``score(X, y)`` answer questions.

``X`` is always raw pixels, one row of 784 values (0-255) per digit: the
network's own input step scales them. Inputs are checked here, once, at the
boundary; the layers and the training loop then trust them.

What is *not* scikit-learn's: the network is a hyperparameter that holds
its weights, so ``fit`` trains that very network (it is not cloned first), and
calling ``fit`` again goes on from where it is; there is no
``partial_fit``, ``clone`` or pipeline support.
"""
from __future__ import annotations

import warnings
from dataclasses import fields

import numpy as np

from ..errors import DataError
from .layers import Activation
from .progress import progress_callback
from .training import TrainConfig, Trainer, batch_rows


class Classifier:
    """A network that reads digits, trained by gradient descent.

    ``network`` is any :class:`~nnscratch.core.network.Sequential` that takes
    raw pixel rows and ends in one logit per class (see
    :mod:`nnscratch.core.builders`: ``mlp``, ``network_from_layers``). The
    other arguments say how ``fit`` trains it; they are those of
    :class:`~nnscratch.core.training.TrainConfig`. ``verbose=True`` shows
    progress (a bar on a terminal, about ten lines elsewhere).
    """

    def __init__(self, network, *, epochs: int = 30, optimizer: str = "adam", lr: float = 1e-3,
                 batch_size="auto", schedule: str = "constant", l2: float = 0.0, validation_split: float = 0.0,
                 patience: int | None = None, seed: int | None = 0, augment: str = "none", distortion=None,
                 verbose: bool = False, classes=None):
        self.network = network
        self.epochs, self.optimizer, self.lr, self.batch_size = epochs, optimizer, lr, batch_size
        self.schedule, self.l2, self.validation_split, self.patience = schedule, l2, validation_split, patience
        self.seed, self.augment, self.distortion, self.verbose = seed, augment, distortion or {}, verbose
        self.classes = list(classes) if classes is not None else None
        self.meta: dict = {}  # a loaded model file's record (see nnscratch.files.modelfile)
        self._warned_scaled = False

    # -- scikit-learn's small print ----------------------------------------------
    def get_params(self, deep: bool = False) -> dict:
        """The constructor's arguments, as given."""
        names = ["network", *(f.name for f in fields(TrainConfig)), "verbose", "classes"]
        return {name: getattr(self, name) for name in names}

    def set_params(self, **params) -> "Classifier":
        for name, value in params.items():
            if name not in self.get_params():
                raise DataError(f"Classifier has no setting {name!r}; it has {', '.join(self.get_params())}")
            setattr(self, name, value)
        return self

    def train_config(self) -> TrainConfig:
        return TrainConfig(**{f.name: getattr(self, f.name) for f in fields(TrainConfig)})

    # -- the boundary: inputs checked once, here ---------------------------------
    @property
    def n_inputs(self) -> int:
        """Values per digit the network takes (784 for 28x28 pixels)."""
        try:
            return self.network.input_size()
        except ValueError as exc:
            raise DataError(str(exc)) from None

    @property
    def n_classes(self) -> int:
        return int(self.network.output_shape((self.n_inputs,))[0])

    def check_inputs(self, X) -> np.ndarray:
        """``X`` as a 2-D array of finite numbers with one row per digit, or DataError."""
        X = np.asarray(X)
        if X.ndim == 1 and X.size == self.n_inputs:
            X = X.reshape(1, -1)
        if X.ndim != 2 or X.shape[1] != self.n_inputs:
            raise DataError(f"inputs of shape {X.shape} do not fit this network, which takes rows of "
                            f"{self.n_inputs} values")
        if not np.issubdtype(X.dtype, np.number) or not np.all(np.isfinite(X)):
            raise DataError("inputs must be finite numbers (found NaN, infinity or text)")
        self._warn_if_scaled(X)
        return X

    def _warn_if_scaled(self, X) -> None:
        """Raw pixels are expected: inputs all within [0, 1] were most likely divided by 255 already."""
        if X.size and X.dtype != np.uint8 and not self._warned_scaled and 0 < float(X.max()) <= 1.0:
            self._warned_scaled = True
            warnings.warn("inputs are all <= 1: nnscratch networks take raw 0-255 pixels and scale them "
                          "themselves; pass the pixels as loaded (not divided by 255)", ScaledInputsWarning,
                          stacklevel=4)

    def check_labels(self, y, n: int) -> np.ndarray:
        y = np.asarray(y)
        if y.shape != (n,):
            raise DataError(f"labels of shape {y.shape} do not match {n} inputs")
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= self.n_classes):
            raise DataError(f"labels must be whole numbers 0..{self.n_classes - 1}")
        return y.astype(np.intp)

    # -- training ---------------------------------------------------------------------
    def trainer(self, X, y, validation_data=None, callbacks=()) -> Trainer:
        """The Trainer that ``fit`` runs (checked inputs; ``callbacks`` see every epoch)."""
        X = self.check_inputs(X)
        y = self.check_labels(y, len(X))
        if validation_data is not None:
            X_val = self.check_inputs(validation_data[0])
            validation_data = (X_val, self.check_labels(validation_data[1], len(X_val)))
        if self.verbose:
            callbacks = [*callbacks, progress_callback(self.epochs)]
        return Trainer(self.network, X, y, self.train_config(), validation_data, callbacks)

    def fit(self, X, y, validation_data=None, callbacks=()) -> "Classifier":
        """Train on raw pixels ``X`` (n, 784) and labels ``y``; returns self (history in ``history_``)."""
        trainer = self.trainer(X, y, validation_data, callbacks)
        self.history_ = trainer.run()
        self.best_epoch_ = None if trainer.best is None else trainer.best.epoch + 1
        return self

    # -- prediction -------------------------------------------------------------------
    def predict_proba(self, X) -> np.ndarray:
        """Probabilities of each class, shape (n, classes); rows sum to 1."""
        X = self.check_inputs(X)
        size = batch_rows(self.network, X.shape[1])  # bounded memory, also for convolutions
        parts = [self.network.probabilities(X[i:i + size]) for i in range(0, len(X), size)]
        return np.concatenate(parts) if parts else np.zeros((0, self.n_classes), np.float32)

    def predict(self, X) -> np.ndarray:
        """The most probable class for each row of ``X``."""
        return self.predict_proba(X).argmax(axis=1)

    def score(self, X, y) -> float:
        """Accuracy: the fraction of rows whose predicted class is ``y``."""
        X = self.check_inputs(X)
        y = self.check_labels(y, len(X))
        return float(np.mean(self.predict(X) == y)) if len(y) else 0.0

    def hidden_outputs(self, X) -> list[tuple[str, np.ndarray]]:
        """``(layer, output)`` for every hidden activation layer: what the network sees inside.

        Outputs of convolutional layers are feature maps (n, channels, height,
        width), those of dense layers rows (n, neurons).
        """
        X = self.check_inputs(X)
        layers = self.network.layers
        return [(repr(layer), out) for layer, out in zip(layers, self.network.outputs(X))
                if isinstance(layer, Activation)]

    # -- files --------------------------------------------------------------------------
    def save(self, path, **extra) -> None:
        """Write the model to ``path`` (.npz, no pickle); see :mod:`nnscratch.files.modelfile`."""
        from ..files.modelfile import save_model

        save_model(self, path, **extra)

    def to_onnx(self, path) -> None:
        """Write the network to ``path`` as an ONNX graph for other runtimes (needs the ``onnx`` extra).

        The graph takes raw pixels and gives probabilities; see :mod:`nnscratch.files.onnx_export`.
        """
        from ..files.onnx_export import export_onnx

        export_onnx(self, path)

    def __repr__(self):
        return f"Classifier({self.network!r})"


class ScaledInputsWarning(UserWarning):
    """Inputs that look divided by 255 already, given to a network that scales them itself."""
