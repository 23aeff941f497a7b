"""Checkpoints: the run folder's ``model.npz`` rewritten while training, so a run can resume.

A checkpoint is an ordinary model file (see :mod:`nnscratch.modelfile`) whose
``meta`` record also holds what a resumed run needs:

* ``run``: the run's settings (preset, layer sizes, optimizer, epochs...);
* ``config``: the training configuration built from them;
* ``data``: where the training digits came from and a fingerprint of them, so
  a resume refuses data that changed;
* ``trainer``: the epochs done, the random generator's state, the history
  (:meth:`nnscratch.training.Trainer.state`);

and, as arrays beside ``param/NAME``, the optimizer's memory (``optimizer/m/NAME``,
one array per parameter for each thing it remembers), the best weights so far
(``best/NAME``, with early stopping) and, once early stopping put the best
weights back, the last ones (``last/NAME``), which are where an extended run
continues from.

A run that diverged keeps its last checkpoint, labelled ``diverged`` in its
``meta`` (see :func:`mark_diverged`).

Every write is atomic (temporary file, then rename): a run killed at any
moment, even by SIGKILL, leaves the previous checkpoint or the new one.
"""
from __future__ import annotations

import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import DataError
from .modelfile import copy_arrays, read_model_file, stored_names, write_model_file


def data_record(settings: dict, split) -> dict:
    """Where the training digits came from, and a fingerprint to recognise them by."""
    train = split.train
    crc = zlib.crc32(np.ascontiguousarray(train.images))
    crc = zlib.crc32(np.ascontiguousarray(train.labels), crc)
    path = settings.get("data")
    return {"path": None if path is None else str(Path(path).resolve()), "how": split.how,
            "train_digits": len(train), "crc32": crc}


def check_same_data(record: dict, split, where) -> None:
    """Refuse to resume on training digits other than the run's own."""
    now = data_record({"data": record.get("path")}, split)
    if (now["train_digits"], now["crc32"]) != (record.get("train_digits"), record.get("crc32")):
        raise DataError(
            f"{where}: the training data is not the run's own ({record.get('how')}: "
            f"{record.get('train_digits')} digits, crc32 {record.get('crc32')}; now {now['train_digits']} "
            f"digits, crc32 {now['crc32']}); resuming needs exactly the same digits"
        )


def save_checkpoint(trainer, model, path, settings: dict, data: dict, **extra) -> None:
    """Write ``model`` (the Classifier ``trainer`` trains) with everything :func:`restore` needs, atomically."""
    facts, groups = trainer.state()
    arrays = {f"{group}/{name}": a for group, named in groups.items() for name, a in named.items()}
    model.save(path, run=settings, config=asdict(trainer.config), data=data, trainer=facts, arrays=arrays, **extra)


def restore(trainer, path, meta: dict, arrays: dict) -> None:
    """Put a checkpoint's weights and training state back into a fresh ``trainer``.

    Every array is checked against the parameter it belongs to here, at
    loading: a wrong one would otherwise only fail at the first step of the
    resumed run, as an obscure broadcasting error.
    """
    network = trainer.network
    state = network.state_dict()
    copy_arrays(path, stored_names(network, meta), arrays, "param")
    if any(k.startswith("last/") for k in arrays):  # after early stopping, param/ holds the best weights
        copy_arrays(path, state, arrays, "last")
    unknown = sorted(k for k in arrays if not k.startswith(("param/", "last/", "best/", "optimizer/")))
    if unknown:
        raise DataError(f"{path}: array '{unknown[0]}': not part of a checkpoint")
    params = {name: p for name, p, *_ in network.named_params()}
    saved = {}
    for group in sorted({k.rsplit("/", 1)[0] for k in arrays if k.startswith(("optimizer/", "best/"))}):
        like = state if group == "best" else params  # the optimizer remembers one array per parameter
        saved[group] = {name: np.empty_like(a) for name, a in like.items()}
        copy_arrays(path, saved[group], arrays, group)
    try:
        trainer.load_state(meta["trainer"], saved)
    except Exception as exc:  # noqa: BLE001 - a damaged state record is bad input
        raise DataError(f"{path}: field 'trainer': damaged training state ({type(exc).__name__}: {exc})") from None


def mark_diverged(path, message: str) -> None:
    """Label the checkpoint at ``path`` as a run that diverged, weights and state unchanged.

    The weights are those of the last checkpoint, written before the cost blew
    up (never the NaN ones in memory). The label tells a resume that it would
    only repeat the blow-up, and lets a new run take the folder over.
    """
    meta, arrays = read_model_file(path)
    write_model_file(path, {**meta, "diverged": message}, arrays)


def unfinished_note(model) -> str | None:
    """A warning for a model that is not a finished run's: a diverged or interrupted checkpoint.

    Such files load (they are valid models), but their weights are not what a
    finished run would give, so ``evaluate`` and ``predict`` say so.
    """
    meta = getattr(model, "meta", None) or {}
    if meta.get("diverged"):
        return f"note: this is the last checkpoint of a run that diverged ({meta['diverged']})"
    trainer, config = meta.get("trainer"), meta.get("config") or {}
    if trainer and not meta.get("finished"):
        return (f"note: this is a checkpoint of an unfinished run (epoch {trainer.get('epoch')} of "
                f"{config.get('epochs')}); finish it with nnscratch train --resume")
    return None


def checkpoint_every(config) -> int:
    """Every epoch for mini-batch runs; about 20 times per full-batch run.

    A full-batch epoch is one small step (the blog's seed preset takes 500 of
    them), so writing the file after each would cost more than the epoch itself.
    """
    return 1 if config.batch_size else max(1, config.epochs // 20)


class Checkpoint:
    """Callback: rewrite ``path`` every ``every`` epochs and after the last epoch."""

    def __init__(self, model, path, settings: dict, data: dict, every: int = 1):
        self.model, self.path, self.settings, self.data, self.every = model, Path(path), settings, data, every
        self.saves = 0

    def save(self, trainer) -> None:
        save_checkpoint(trainer, self.model, self.path, self.settings, self.data)
        self.saves += 1

    def on_epoch_end(self, trainer) -> None:
        if trainer.epoch % self.every == 0 or trainer.epoch >= trainer.config.epochs or trainer.stop:
            self.save(trainer)
