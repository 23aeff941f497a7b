"""The training loop.

One epoch = one pass over the training digits. With ``batch_size=None`` the
whole set is one batch: full-batch gradient descent, as in the blog. With a
batch size, the digits are reshuffled every epoch and cut into mini-batches,
with one optimizer step per batch.

Per epoch the History records the cost and accuracy *seen while training*
(averaged over the epoch's batches, with the weights as they were for each
batch, like Keras), the learning rate, and, with validation data, the cost
and accuracy on it. Early stopping watches the validation accuracy and puts
back the best weights at the end.

The Trainer feeds the network raw pixels (uint8, as loaded) and the network's
input step turns them into floats batch by batch: no float copy of the whole
training set is kept.

Everything a run needs to continue exactly where it stopped (epoch, weights,
optimizer memory, random generator, history, best weights) is in
:meth:`Trainer.state`, so a run can be checkpointed and resumed.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from ..errors import DataError, TrainingDiverged
from .augment import make_augmenter
from .fast import DenseRows, FullBatchStep, SplitBatchStep, batch_source, mini_batches, supports, worth_splitting
from .layers import Dropout
from .losses import l2_penalty, softmax_cross_entropy
from .optimizers import OPTIMIZERS, SCHEDULES, make_optimizer
from .parallel import blas_threads

DIVERGENCE_FACTOR = 100.0  # a cost 100x its first value means the run blew up
DEFAULT_BATCH = 128  # mini-batch size when none is given and the optimizer is not full-batch gd
PREDICT_BYTES = 64 * 2**20  # prediction and validation go in batches of about this much activation


def one_blas_thread():
    """A context in which NumPy's matrix products use a single thread.

    A mini-batch's products are small (128 x 784 times 784 x 256 is about a
    millisecond): splitting them over threads gains little, and on a busy
    machine a thread that waits for a descheduled partner spins, which made
    them up to 10 times slower in our measurements (bench/mlp.py).
    """
    return blas_threads(1)


@dataclass
class TrainConfig:
    """How to train.

    ``batch_size``: ``None`` is full-batch gradient descent; ``"auto"`` (the
    default) means full batch for the blog's ``gd`` and 128 for every other
    optimizer. ``l2`` is the weight decay (see :mod:`nnscratch.core.optimizers`).
    ``patience`` without a ``validation_split`` holds out 10 % of the training
    digits to watch (early stopping needs something to watch). ``augment``
    (``none``, ``affine``, ``elastic``) distorts the training digits afresh
    every epoch, with the settings in ``distortion`` (see
    :class:`nnscratch.core.augment.Augmenter`: rotate, scale, shear, shift,
    sigma, alpha).
    """

    epochs: int = 30
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int | str | None = "auto"
    schedule: str = "constant"
    l2: float = 0.0
    validation_split: float = 0.0
    patience: int | None = None
    seed: int | None = 0
    augment: str = "none"
    distortion: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.batch_size == "auto":
            self.batch_size = None if self.optimizer == "gd" else DEFAULT_BATCH
        if self.patience and not self.validation_split:
            self.validation_split = 0.1
        self.validate()
        self.distortion = dict(self.distortion or {})
        self.augmenter()  # refuses an unknown kind or setting now, naming it

    def augmenter(self):
        """The distortion of the training digits, or None for ``augment="none"``."""
        return None if self.augment == "none" else make_augmenter(self.augment, **(self.distortion or {}))

    def validate(self) -> None:
        """Refuse settings that cannot train, naming the setting."""
        checks = [
            (isinstance(self.epochs, (int, np.integer)) and self.epochs >= 1, "epochs must be a whole number >= 1"),
            (np.isfinite(self.lr) and self.lr > 0, "lr must be a positive finite number"),
            (self.batch_size is None or (isinstance(self.batch_size, (int, np.integer)) and self.batch_size >= 1),
             "batch_size must be a whole number >= 1, None (full batch) or 'auto'"),
            (np.isfinite(self.l2) and self.l2 >= 0, "l2 must be a finite number >= 0"),
            (0 <= self.validation_split < 1, "validation_split must be in [0, 1)"),
            (self.patience is None or self.patience >= 1, "patience must be >= 1"),
            (self.optimizer in OPTIMIZERS, f"optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES, f"schedule must be one of {', '.join(SCHEDULES)}"),
        ]
        for ok, message in checks:
            if not ok:
                raise DataError(f"{message} (got {asdict(self)})")


@dataclass
class History:
    """Per-epoch records; ``as_dict()`` is what goes into metrics.json."""

    train_cost: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_cost: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}

    @classmethod
    def from_dict(cls, record: dict) -> "History":
        record = dict(record)
        if "cost" in record:  # written by nnscratch 0.1
            record["train_cost"] = record.pop("cost")
        return cls(**record)


class Best(NamedTuple):
    """The best epoch so far by validation accuracy, and a copy of its state (weights and buffers, by name)."""

    val_accuracy: float
    epoch: int
    state: dict


def batch_rows(network, n_inputs: int) -> int:
    """Rows per batch for prediction: about ``PREDICT_BYTES`` of the widest layer's outputs."""
    try:
        widest = max(int(np.prod(s)) for s in network.shapes((n_inputs,)))
    except (ValueError, AttributeError):
        widest = n_inputs
    return int(np.clip(PREDICT_BYTES // (4 * max(widest, n_inputs) * 4), 64, 8192))


def cost_and_accuracy(network, inputs, labels) -> tuple[float, float]:
    """Mean cost and accuracy of ``network`` on raw ``inputs``, in prediction mode, in batches."""
    size, cost, hits = batch_rows(network, inputs.shape[1]), 0.0, 0
    with network.mode(False):
        for i in range(0, len(inputs), size):
            batch_cost, _, probabilities = softmax_cross_entropy(network(inputs[i:i + size]), labels[i:i + size])
            cost += batch_cost * len(probabilities)
            hits += int(np.count_nonzero(probabilities.argmax(axis=1) == labels[i:i + size]))
    return cost / len(inputs), hits / len(inputs)


class Trainer:
    """Trains ``network`` on raw pixels ``X`` and labels ``y`` as ``config`` says.

    ``X`` and ``y`` are taken as checked (see :class:`nnscratch.Classifier`,
    which checks them). ``validation`` is ``(X_val, y_val)`` or None.
    ``callbacks`` are objects with an ``on_epoch_end(trainer)`` method (for
    progress bars and checkpoints); they may set ``trainer.stop = True``.
    With ``fast=True`` (the default) and a network that works row by row,
    full-batch epochs go through :class:`nnscratch.core.fast.FullBatchStep`
    and, with convolutions, mini-batches through
    :class:`~nnscratch.core.fast.SplitBatchStep`: the same layers, the rows
    shared between the cores; mini-batches of mostly blank digits may come
    as their inked pixels only (:func:`~nnscratch.core.fast.batch_source`).
    ``fast=False`` always uses the plain path.
    """

    def __init__(self, network, X, y, config: TrainConfig, validation=None, callbacks=(), fast=True):
        self.network, self.config, self.callbacks = network, config, list(callbacks)
        if len(X) == 0:
            raise DataError("no training digits")
        self.rng = np.random.default_rng(config.seed)
        for layer in network.leaves():  # dropout draws from the run's generator: resumable
            if isinstance(layer, Dropout):
                layer.rng = self.rng
        self.inputs, self.labels, self.validation = self._split(X, y, validation)
        self.augmenter = config.augmenter()
        self.fast = fast and supports(network)
        self.fast_step = None  # made on the first full-batch epoch (not with augmentation: it keeps its inputs)
        self.split = fast and worth_splitting(network)
        self.split_step = None  # made on the first mini-batch epoch
        self.batches = None  # where mini-batches come from (fast: inked pixels), made on the first mini-batch epoch
        self.optimizer = make_optimizer(config.optimizer, config.lr, config.l2)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.best: Best | None = None
        self.last_state = None  # set when run() puts the best weights back
        self.stop = False
        self.train_seconds = 0.0
        self._first_cost = None  # the cost of the first batch: the yardstick for divergence

    def _split(self, X, y, validation):
        """Training rows and the validation set: given, or held out by ``validation_split``."""
        if validation is not None or not self.config.validation_split:
            return X, np.asarray(y, np.intp), validation
        n_val = max(1, int(round(len(X) * self.config.validation_split)))
        order = np.random.default_rng(self.config.seed).permutation(len(X))
        val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
        return X[train_rows], np.asarray(y[train_rows], np.intp), (X[val_rows], np.asarray(y[val_rows], np.intp))

    # ------------------------------------------------------------------ #
    def run(self):
        """Train until ``config.epochs`` epochs are done (or early stopping); returns the History."""
        config = self.config
        self.network.train(True)
        try:
            while self.epoch < config.epochs and not self.stop:
                start = time.perf_counter()
                self.optimizer.lr = config.lr * SCHEDULES[config.schedule](self.epoch, config.epochs)
                cost, accuracy = self.train_epoch()
                self.train_seconds += time.perf_counter() - start
                self._check_divergence(cost, weights=True)
                self._record(cost, accuracy, time.perf_counter() - start)
                self.epoch += 1
                for callback in self.callbacks:
                    callback.on_epoch_end(self)
        finally:  # however the run ends: free the steps' copies of the pixels (made again if training goes on)
            self.fast_step = self.split_step = self.batches = None
        if self.best is not None:
            # Keep the last weights too: a run extended later continues from them.
            self.last_state = self.copy_state()
            self._restore_best()
        return self.history

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training set; returns its mean cost and accuracy."""
        n, size = len(self.labels), self.config.batch_size or len(self.labels)
        # Distorted afresh each epoch, from the run's own generator: a resumed run draws the same.
        inputs = self.inputs if self.augmenter is None else self.augmenter(self.inputs, self.rng)
        if size >= n:
            if self.fast and self.augmenter is None:
                if self.fast_step is None:
                    self.fast_step = FullBatchStep(self.network, self.inputs, self.labels)
                return self._step(self.fast_step.loss_and_gradients)
            return self._step(self.loss_and_gradients, inputs, self.labels)
        order = self.rng.permutation(n)
        total_cost = total_correct = 0.0
        if self.split and self.split_step is None:
            self.split_step = SplitBatchStep(self.network)
        gradients = self.split_step.loss_and_gradients if self.split else self.loss_and_gradients
        if not self.fast:
            batches = DenseRows(inputs)
        elif self.augmenter is not None:  # digits distorted afresh: their table afresh (60000 in about 0.1 s)
            batches = batch_source(self.network, inputs)
        else:
            batches = self.batches = self.batches or batch_source(self.network, inputs)
        with one_blas_thread():
            for rows, batch in mini_batches(batches, order, size):
                cost, accuracy = self._step(gradients, batch, self.labels[rows])
                total_cost += cost * len(rows)
                total_correct += accuracy * len(rows)
        return total_cost / n, total_correct / n

    def loss_and_gradients(self, inputs, labels) -> tuple[float, float]:
        """One forward and one backward pass over a batch; returns (cost, accuracy).

        dCost/dParameter is left in the layers' ``grad``.
        """
        logits = self.network(inputs)
        cost, grad, probabilities = softmax_cross_entropy(logits, labels)
        self.network.backward(grad)
        return cost, float(np.mean(probabilities.argmax(axis=1) == labels))

    def _step(self, gradients, *batch) -> tuple[float, float]:
        """Compute the gradients with ``gradients(*batch)``, check the cost, then one optimizer step.

        The cost reported includes the weight-decay penalty, the optimizer
        adds its gradient.
        """
        cost, accuracy = gradients(*batch)
        network = self.network
        if self.config.l2:
            cost += l2_penalty([p for p, d in zip(network.parameters(), network.decays()) if d], self.config.l2)
        self._check_divergence(cost)  # before the step: never step on a blown-up cost
        self.optimizer.step(network.parameters(), network.gradients(), network.decays())
        return cost, accuracy

    # ------------------------------------------------------------------ #
    def _check_divergence(self, cost: float, weights: bool = False) -> None:
        """Stop when the cost is NaN or infinite, or far above the first batch's cost.

        Checked on every batch, so a run that blows up within its first epoch
        (say Adam with lr 1e6) stops there; with ``weights``, also checks that
        no weight has become NaN or infinite.
        """
        if self._first_cost is None:
            self._first_cost = cost
        first = self._first_cost
        exploded = cost > DIVERGENCE_FACTOR * max(first, 1.0)
        if not np.isfinite(cost) or exploded or (
                weights and not all(np.all(np.isfinite(p)) for p in self.network.parameters())):
            raise TrainingDiverged(
                f"training diverged at epoch {self.epoch + 1}: the cost became {cost:.4g}"
                + (f" (it started at {first:.4g})" if np.isfinite(first) else "")
                + f"; try a lower learning rate than {self.config.lr:g}"
            )

    def _record(self, cost: float, accuracy: float, seconds: float) -> None:
        h = self.history
        h.train_cost.append(cost)
        h.train_accuracy.append(accuracy)
        h.lr.append(self.optimizer.lr)
        h.seconds.append(seconds)
        if self.validation is None:
            return
        val_cost, val_accuracy = cost_and_accuracy(self.network, *self.validation)
        h.val_cost.append(val_cost)
        h.val_accuracy.append(val_accuracy)
        if self.config.patience is None:
            return
        if self.best is None or val_accuracy > self.best.val_accuracy:
            self.best = Best(val_accuracy, self.epoch, self.copy_state())
        elif self.epoch - self.best.epoch >= self.config.patience:
            self.stop = True

    def copy_state(self) -> dict:
        """A copy of every parameter and buffer (batch normalisation's statistics go with its weights)."""
        return {name: a.copy() for name, a in self.network.state_dict().items()}

    def _restore_best(self) -> None:
        for name, a in self.network.state_dict().items():
            a[...] = self.best.state[name]

    # ------------------------------------------------------------------ #
    def state(self) -> tuple[dict, dict]:
        """What a resumed run needs: (JSON-able facts, groups of arrays by name).

        The groups: ``optimizer/KEY`` (the optimizer's memory, one array per
        parameter), ``best`` and ``last`` (copies of the network's state).
        """
        optimizer = self.optimizer.state()
        names = [name for name, *_ in self.network.named_params()]
        facts = {
            "epoch": self.epoch,
            "rng": self.rng.bit_generator.state,
            "history": self.history.as_dict(),
            "train_seconds": self.train_seconds,
            "best_epoch": None if self.best is None else self.best.epoch,
            "best_val_accuracy": None if self.best is None else self.best.val_accuracy,
            "stopped_early": self.stop,
            "first_cost": self._first_cost,  # a resumed run keeps its yardstick for divergence
            "optimizer": {k: v for k, v in optimizer.items() if not isinstance(v, list)},
        }
        arrays = {f"optimizer/{k}": dict(zip(names, v, strict=True)) for k, v in optimizer.items()
                  if isinstance(v, list)}
        if self.best is not None:
            arrays["best"] = self.best.state
        if self.last_state is not None:
            arrays["last"] = self.last_state
        return facts, arrays

    def load_state(self, facts: dict, arrays: dict) -> None:
        """Continue from :meth:`state` (the network's weights are loaded separately)."""
        self.epoch = int(facts["epoch"])
        self.rng.bit_generator.state = facts["rng"]
        self.history = History.from_dict(facts["history"])
        self.train_seconds = float(facts.get("train_seconds", 0.0))
        self.stop = bool(facts.get("stopped_early", False))
        first = facts.get("first_cost")
        self._first_cost = None if first is None else float(first)
        names = [name for name, *_ in self.network.named_params()]
        memory = {k.split("/", 1)[1]: [group[name] for name in names] for k, group in arrays.items()
                  if k.startswith("optimizer/")}
        self.optimizer.load_state({**memory, **facts.get("optimizer", {})})
        if facts.get("best_epoch") is not None:
            self.best = Best(facts["best_val_accuracy"], facts["best_epoch"], arrays["best"])
