"""One trial: an ordinary nnscratch run, wherever Ray runs it.

This is the only place where the sweep calls into the training code: it hands
the trial's settings to :func:`~nnscratch.apps.experiment.train_run`, the very
function behind ``nnscratch train``, with one callback that reports each
epoch's validation accuracy, so that a scheduler such as ASHA can compare
trials while they train. Same settings and seed, same weights, on any machine.
"""
from __future__ import annotations

import math
from pathlib import Path

from ...errors import NnscratchError, TrainingDiverged

DONE = ("finished", "stopped", "diverged")  # a rerun of the sweep skips these; "error" is tried again


class EpochReport:
    """A training callback: after each epoch, ``report`` the validation accuracy so far."""

    def __init__(self, report):
        self.report = report
        self.last = {"epoch": 0, "val_accuracy": math.nan, "best_val_accuracy": math.nan}

    def on_epoch_end(self, trainer) -> None:
        accuracies = trainer.history.val_accuracy
        self.last = {"epoch": trainer.epoch, "val_accuracy": accuracies[-1], "best_val_accuracy": max(accuracies)}
        self.report(dict(self.last))


def train_trial(settings: dict, out: Path, report) -> dict:
    """Train ``settings`` into the run folder ``out``, calling ``report`` each epoch.

    Returns how the trial ended: its status (finished, diverged or error),
    the last epoch's report, and for a finished run its test accuracy.
    A diverged run is a result (its learning rate is too high), not a failure.
    """
    from ..experiment import train_run

    epochs = EpochReport(report)
    try:
        metrics = train_run(settings, out, callbacks=[epochs], log=lambda *args: None)
    except TrainingDiverged as exc:
        return {**epochs.last, "status": "diverged", "message": str(exc)}
    except (NnscratchError, OSError) as exc:
        return {**epochs.last, "status": "error", "message": str(exc)}
    return {**epochs.last, "status": "finished", "test_accuracy": metrics["test_accuracy"]}
