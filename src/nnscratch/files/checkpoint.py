"""Checkpoints: the run folder's ``model.npz`` rewritten while training, so a run can resume.

A checkpoint is an ordinary model file (see :mod:`nnscratch.modelfile`) whose
``meta`` record also holds what a resumed run needs:

* ``run``: the run's settings (preset, layer sizes, optimizer, epochs...);
* ``config``: the training configuration built from them;
* ``data``: where the training digits came from and a fingerprint of them, so
  a resume refuses data that changed;
* ``trainer``: the epochs done, the random generator's state, the history
  (:meth:`nnscratch.training.Trainer.state`);

and, as arrays beside ``param/i``, the optimizer's memory (``optimizer/...``),
the best weights so far (``best/i``, with early stopping) and, once early
stopping put the best weights back, the last ones (``last/i``), which are
where an extended run continues from.

A run that diverged keeps its last checkpoint, labelled ``diverged`` in its
``meta`` (see :func:`mark_diverged`).

Every write is atomic (temporary file, then rename): a run killed at any
moment, even by SIGKILL, leaves the previous checkpoint or the new one.
"""
from __future__ import annotations

import re
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..errors import DataError
from .modelfile import read_model_file, set_parameters, write_model_file


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


def save_checkpoint(trainer, path, settings: dict, data: dict, **extra) -> None:
    """Write the model with everything :func:`restore` needs, atomically."""
    facts, arrays = trainer.state()
    trainer.model.save(path, run=settings, config=asdict(trainer.config), data=data,
                       trainer=facts, arrays=arrays, **extra)


def restore(trainer, path, meta: dict, arrays: dict) -> None:
    """Put a checkpoint's weights and training state back into a fresh ``trainer``."""
    # After early stopping, param/i are the best weights; training goes on from the last ones.
    set_parameters(path, trainer.model, arrays, "last" if "last/0" in arrays else "param")
    check_optimizer_memory(path, trainer.model, arrays)
    try:
        trainer.load_state(meta["trainer"], arrays)
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


def check_optimizer_memory(path, model, arrays: dict) -> None:
    """The optimizer remembers one array per parameter (momentum's velocity, Adam's m and v), each of its shape.

    Checked here, at loading, because a wrong one would only fail at the
    first step of the resumed run, as an obscure broadcasting error.
    """
    shapes = [p.shape for p in model.parameters()]
    groups = {}
    for key, value in arrays.items():
        match = re.fullmatch(r"optimizer/([a-z_]+)(\d+)", key)
        if not match:
            continue
        i = int(match[2])
        groups.setdefault(match[1], []).append(i)
        expected = shapes[i] if i < len(shapes) else None
        if value.shape != expected or not np.issubdtype(value.dtype, np.floating) or not np.all(np.isfinite(value)):
            found = f"shape {value.shape}, dtype {value.dtype}" + ("" if value.shape != expected else ", not all finite")
            raise DataError(f"{path}: array '{key}': expected shape {expected} (as parameter {i}), found {found}")
    for name, indices in groups.items():
        if sorted(indices) != list(range(len(shapes))):
            raise DataError(f"{path}: arrays 'optimizer/{name}...': {len(indices)} of them, one per parameter "
                            f"({len(shapes)}) expected")


def checkpoint_every(config) -> int:
    """Every epoch for mini-batch runs; about 20 times per full-batch run.

    A full-batch epoch is one small step (the blog's seed preset takes 500 of
    them), so writing the file after each would cost more than the epoch itself.
    """
    return 1 if config.batch_size else max(1, config.epochs // 20)


class Checkpoint:
    """Callback: rewrite ``path`` every ``every`` epochs and after the last epoch."""

    def __init__(self, path, settings: dict, data: dict, every: int = 1):
        self.path, self.settings, self.data, self.every = Path(path), settings, data, every
        self.saves = 0

    def save(self, trainer) -> None:
        save_checkpoint(trainer, self.path, self.settings, self.data)
        self.saves += 1

    def on_epoch_end(self, trainer) -> None:
        if trainer.epoch % self.every == 0 or trainer.epoch >= trainer.config.epochs or trainer.stop:
            self.save(trainer)
