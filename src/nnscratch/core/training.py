"""Step 5 of the pipeline: the training loop.

One epoch = one pass over the training digits. With ``batch_size=None`` the
whole set is one batch: full-batch gradient descent, as in the blog. With a
batch size, the digits are reshuffled every epoch and cut into mini-batches,
with one optimizer step per batch.

Per epoch the History records the cost and accuracy *seen while training*
(averaged over the epoch's batches, with the weights as they were for each
batch, like Keras), the learning rate, and, with validation data, the cost
and accuracy on it. Early stopping watches the validation accuracy and puts
back the best weights at the end.

Everything a run needs to continue exactly where it stopped (epoch, weights,
optimizer memory, random generator, history, best weights) is in
:meth:`Trainer.state`, so a run can be checkpointed and resumed.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import DataError, TrainingDiverged
from .fast import FullBatchStep, blas_limiter
from .fast import supports as supports_fast
from .layers import Dropout
from .optimizers import OPTIMIZERS, SCHEDULES, make_optimizer

DIVERGENCE_FACTOR = 100.0  # a cost 100x its first value means the run blew up


def one_blas_thread():
    """A context in which NumPy's matrix products use a single thread.

    A mini-batch's products are small (128 x 784 times 784 x 256 is about a
    millisecond): splitting them over threads gains little, and on a busy
    machine a thread that waits for a descheduled partner spins, which made
    them up to 10 times slower in our measurements (bench/mlp.py).
    """
    global _ONE_BLAS_THREAD
    if _ONE_BLAS_THREAD is None:
        _ONE_BLAS_THREAD = blas_limiter(1)  # finds the BLAS libraries once
    return _ONE_BLAS_THREAD()


_ONE_BLAS_THREAD = None


@dataclass
class TrainConfig:
    """How to train. ``batch_size=None`` is full-batch gradient descent."""

    epochs: int = 30
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int | None = 128
    schedule: str = "constant"
    l2: float = 0.0
    validation_split: float = 0.0
    patience: int | None = None
    seed: int | None = 0

    def __post_init__(self):
        self.validate()

    def validate(self) -> None:
        """Refuse settings that cannot train, naming the setting."""
        checks = [
            (isinstance(self.epochs, (int, np.integer)) and self.epochs >= 1, "epochs must be a whole number >= 1"),
            (np.isfinite(self.lr) and self.lr > 0, "lr must be a positive finite number"),
            (self.batch_size is None or self.batch_size >= 1, "batch_size must be >= 1"),
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

    cost: list = field(default_factory=list)
    train_accuracy: list = field(default_factory=list)
    val_cost: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    seconds: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v}


class Trainer:
    """Trains ``model`` on raw pixels ``X`` and labels ``y`` as ``config`` says.

    ``callbacks`` are objects with an ``on_epoch_end(trainer)`` method (for
    progress bars and checkpoints); they may set ``trainer.stop = True``.
    With ``fast=True`` (the default), full-batch epochs of a plain Dense and
    activation network go through :class:`nnscratch.fast.FullBatchStep`: the
    same math, fewer passes over memory. ``fast=False`` always uses the layers.
    """

    def __init__(self, model, X, y, config: TrainConfig, validation=None, callbacks=(), fast=True):
        self.model, self.config, self.callbacks = model, config, list(callbacks)
        inputs = model.check_inputs(X)  # raw pixels; scaled to floats only where needed
        labels = model.check_labels(y, len(inputs))
        if len(inputs) == 0:
            raise DataError("no training digits")
        self.rng = np.random.default_rng(config.seed)
        for layer in model.layers:  # dropout draws from the run's generator: resumable
            if isinstance(layer, Dropout):
                layer.rng = self.rng
        if validation is None and config.validation_split:
            n_val = max(1, int(round(len(inputs) * config.validation_split)))
            order = np.random.default_rng(config.seed).permutation(len(inputs))
            val_rows, train_rows = np.sort(order[:n_val]), np.sort(order[n_val:])
            self.val_inputs, self.val_labels = model.scale(inputs[val_rows]), labels[val_rows]
            inputs, labels = inputs[train_rows], labels[train_rows]
        elif validation is not None:
            self.val_inputs = model.prepare(validation[0])
            self.val_labels = model.check_labels(validation[1], len(self.val_inputs))
        else:
            self.val_inputs = self.val_labels = None
        self.raw_inputs, self.labels = inputs, labels
        self._inputs = None  # the float32 copy, made on first use by the plain path
        self.fast_step = None  # made on the first full-batch epoch, if the model allows it
        self.use_fast = fast and not config.l2  # the fast step adds no L2 penalty
        self.optimizer = make_optimizer(config.optimizer, config.lr)
        self.history = History()
        self.epoch = 0  # epochs completed
        self.best = None  # (val_accuracy, epoch, copies of the parameters)
        self.last_weights = None  # set when run() puts the best weights back
        self.stop = False
        self.train_seconds = 0.0
        self._first_cost = None  # the cost of the first batch: the yardstick for divergence

    @property
    def inputs(self) -> np.ndarray:
        """The training inputs as float32 network inputs (made once, when first needed).

        The fast full-batch step never needs this copy: it keeps its own,
        of the live pixel columns only, which keeps the seed preset's memory low.
        """
        if self._inputs is None:
            self._inputs = self.model.scale(self.raw_inputs)
        return self._inputs

    # ------------------------------------------------------------------ #
    def run(self) -> History:
        """Train until ``config.epochs`` epochs are done (or early stopping)."""
        config = self.config
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
        if self.best is not None:
            # Keep the last weights too: a run extended later continues from them.
            self.last_weights = [p.copy() for p in self.model.parameters()]
            self._restore_best()
        self.fast_step = self._inputs = None  # free the float copies; made again if training goes on
        return self.history

    def train_epoch(self) -> tuple[float, float]:
        """One pass over the training set; returns its mean cost and accuracy."""
        n, size = len(self.labels), self.config.batch_size or len(self.labels)
        if size >= n:
            if self.use_fast and supports_fast(self.model):
                return self._fast_step()
            return self._step(self.inputs, self.labels)
        order = self.rng.permutation(n)
        total_cost = total_correct = 0.0
        with one_blas_thread():
            for i in range(0, n, size):
                rows = order[i:i + size]
                cost, accuracy = self._step(self.inputs[rows], self.labels[rows])
                total_cost += cost * len(rows)
                total_correct += accuracy * len(rows)
        return total_cost / n, total_correct / n

    def _step(self, inputs, labels) -> tuple[float, float]:
        """Forward, backward and one optimizer step on one batch."""
        cost, probabilities = self.model.loss_and_gradients(inputs, labels, self.config.l2)
        self._check_divergence(cost)  # before the step: never step on a blown-up cost
        self.optimizer.step(self.model.parameters(), self.model.gradients())
        return cost, float(np.mean(probabilities.argmax(axis=1) == labels))

    def _fast_step(self) -> tuple[float, float]:
        """The full-batch step of :mod:`nnscratch.fast`: same cost, accuracy and gradients."""
        if self.fast_step is None:
            if self.raw_inputs.dtype == np.uint8:  # raw pixels: kept small, scaled block by block
                self.fast_step = FullBatchStep(self.model, self.raw_inputs, self.labels, scale=self.model.input_scale)
            else:
                self.fast_step = FullBatchStep(self.model, self.inputs, self.labels)
        cost, accuracy = self.fast_step.loss_and_gradients()
        self._check_divergence(cost)  # before the step, as in _step
        self.optimizer.step(self.model.parameters(), self.model.gradients())
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
                weights and not all(np.all(np.isfinite(p)) for p in self.model.parameters())):
            raise TrainingDiverged(
                f"training diverged at epoch {self.epoch + 1}: the cost became {cost:.4g}"
                + (f" (it started at {first:.4g})" if np.isfinite(first) else "")
                + f"; try a lower learning rate than {self.config.lr:g}"
            )

    def _record(self, cost: float, accuracy: float, seconds: float) -> None:
        h = self.history
        h.cost.append(cost)
        h.train_accuracy.append(accuracy)
        h.lr.append(self.optimizer.lr)
        h.seconds.append(seconds)
        if self.val_inputs is None:
            return
        val_cost, val_accuracy = self.evaluate(self.val_inputs, self.val_labels)
        h.val_cost.append(val_cost)
        h.val_accuracy.append(val_accuracy)
        if self.config.patience is None:
            return
        if self.best is None or val_accuracy > self.best[0]:
            self.best = (val_accuracy, self.epoch, [p.copy() for p in self.model.parameters()])
        elif self.epoch - self.best[1] >= self.config.patience:
            self.stop = True

    def _restore_best(self) -> None:
        for p, best in zip(self.model.parameters(), self.best[2]):
            p[...] = best

    def evaluate(self, inputs, labels) -> tuple[float, float]:
        """Cost and accuracy on prepared inputs, dropout off, weights untouched."""
        from .losses import softmax_cross_entropy

        self.model.train(False)
        try:
            logits = self.model.forward(inputs)
        finally:
            self.model.train(True)
        cost, _, probabilities = softmax_cross_entropy(logits, labels)
        return cost, float(np.mean(probabilities.argmax(axis=1) == labels))

    # ------------------------------------------------------------------ #
    def state(self) -> tuple[dict, dict]:
        """What a resumed run needs: (JSON-able facts, named arrays)."""
        facts = {
            "epoch": self.epoch,
            "rng": self.rng.bit_generator.state,
            "history": self.history.as_dict(),
            "train_seconds": self.train_seconds,
            "best_epoch": None if self.best is None else self.best[1],
            "best_val_accuracy": None if self.best is None else self.best[0],
            "stopped_early": self.stop,
            "first_cost": self._first_cost,  # a resumed run keeps its yardstick for divergence
        }
        arrays = {f"optimizer/{k}": v for k, v in self.optimizer.state().items()}
        if self.best is not None:
            arrays.update({f"best/{i}": p for i, p in enumerate(self.best[2])})
        if self.last_weights is not None:
            arrays.update({f"last/{i}": p for i, p in enumerate(self.last_weights)})
        return facts, arrays

    def load_state(self, facts: dict, arrays: dict) -> None:
        """Continue from :meth:`state` (the model's weights are loaded separately)."""
        self.epoch = int(facts["epoch"])
        self.rng.bit_generator.state = facts["rng"]
        self.history = History(**facts["history"])
        self.train_seconds = float(facts.get("train_seconds", 0.0))
        self.stop = bool(facts.get("stopped_early", False))
        first = facts.get("first_cost")
        self._first_cost = None if first is None else float(first)
        self.optimizer.load_state({k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("optimizer/")})
        if facts.get("best_epoch") is not None:
            n = len(self.model.parameters())
            self.best = (facts["best_val_accuracy"], facts["best_epoch"], [np.array(arrays[f"best/{i}"]) for i in range(n)])
