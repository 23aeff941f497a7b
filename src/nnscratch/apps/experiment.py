"""A training run from start to finish: data, network, training, outputs.

This is what ``nnscratch train`` does, as a Python function, so that the CLI
and the web server stay thin layers over it. A run folder holds:

* ``model.npz``: the network and its training state, rewritten as a
  checkpoint while training (see :mod:`nnscratch.checkpoint`), so that
  :func:`resume_run` can continue an interrupted run or extend a finished one;
* ``metrics.json``: accuracies, timings, settings and the per-epoch history;
* ``cost.png``: cost and accuracy versus epoch;
* ``weights.png``: what each first-layer neuron looks for.
"""
from __future__ import annotations

import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from ..core import kernels
from ..core.builders import mlp_specs, network_from_specs, parse_layers
from ..core.estimator import Classifier
from ..core.training import TrainConfig
from ..errors import DataError, RunInterrupted, TrainingDiverged
from ..files import data as datasets
from ..files.checkpoint import (
    Checkpoint,
    check_same_data,
    checkpoint_every,
    data_record,
    mark_diverged,
    restore,
    save_checkpoint,
)
from ..files.modelfile import read_model_file
from .evaluation import is_evaluation_report
from .figures import plot_augmented, plot_first_layer
from .presets import PRESETS, preset
from .reports import counted, plot_history, write_json


def settings_for(preset_name: str = "default", **overrides) -> dict:
    """A preset's settings with ``overrides`` applied (``None`` means keep the preset's).

    Keys: those of the preset's ``model`` (layers, hidden, activation, init,
    dropout, input_scale) and ``train`` (epochs, optimizer, lr, batch_size,
    schedule, l2, validation_split, patience, seed) dicts, plus ``data`` and
    ``train_rows``. ``layers`` (a ``--layers`` text), when given, is the
    network's hidden part, instead of ``hidden``/``activation``/``dropout``.
    """
    try:
        recipe = preset(preset_name)
    except KeyError:
        raise DataError(f"--preset {preset_name!r}: choose one of {', '.join(PRESETS)}") from None
    settings = {"preset": preset_name, "data": None, "train_rows": None, "seed": 0, "layers": None,
                "validation_split": 0.0, "patience": None, "augment": "none", "distortion": {},
                **recipe["model"], **recipe["train"]}
    for key, value in overrides.items():
        if value is not None:
            if key not in settings:
                raise DataError(f"unknown setting {key!r}; known: {', '.join(sorted(settings))}")
            settings[key] = value
    if settings["batch_size"] == "full":
        settings["batch_size"] = None
    elif overrides.get("optimizer") and overrides.get("batch_size") is None and \
            (settings["optimizer"] == "gd") != (settings["batch_size"] is None):
        settings["batch_size"] = "auto"  # the preset's batch does not suit the optimizer asked for
    return settings


def layer_specs(settings: dict) -> list:
    """The hidden layers the settings ask for: ``layers`` if given, else the MLP short form."""
    if settings.get("layers"):
        return parse_layers(settings["layers"])
    return mlp_specs(settings["hidden"], settings["activation"], settings["dropout"])


def build(settings: dict, n_inputs: int, n_classes: int = 10) -> Classifier:
    """The network and how to train it, as ``settings`` describe them."""
    network = network_from_specs(layer_specs(settings), n_classes=n_classes, input_shape=(n_inputs,),
                                 input_scale=settings["input_scale"], init=settings["init"], seed=settings["seed"])
    config = TrainConfig(**{k: settings[k] for k in TrainConfig.__dataclass_fields__})
    return Classifier(network, **vars(config))


def describe_network(model: Classifier) -> str:
    """``784 -> dense 16 -> sigmoid -> ... -> 10``, for the run's first lines."""
    return " -> ".join([str(model.n_inputs), *(repr(layer) for layer in model.network.layers[1:])])


def new_run_dir(root="runs") -> Path:
    """A fresh folder ``runs/YYYYmmdd-HHMMSS`` (with a suffix if taken)."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for i in range(1000):
        path = Path(root) / (stamp if i == 0 else f"{stamp}-{i}")
        if not path.exists():
            return path
    raise DataError(f"{root}: cannot find a free run folder name")


def prepare_out_dir(out) -> Path:
    """``out`` (or a new folder under runs/), refusing to overwrite an earlier run.

    A folder holding nothing but a run that diverged (its checkpoint, and the
    reports ``evaluate`` wrote about it) may be reused: that run cannot be
    resumed (it would diverge again), and a rerun with a lower learning rate
    naturally goes to the same place. Its reports are removed: they describe
    the weights being replaced.
    """
    out = Path(out) if out is not None else new_run_dir()
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    if (out / "model.npz").exists():
        if not holds_a_diverged_run(out):
            raise DataError(f"--out {out}: already holds a run; choose another folder or use --resume {out}")
        others = sorted(p.name for p in out.iterdir() if not part_of_the_run(p))
        if others:
            raise DataError(f"--out {out}: holds a run that diverged, which a new run may replace, but also "
                            f"{', '.join(others[:3])}{' ...' if len(others) > 3 else ''}; move "
                            f"{'it' if len(others) == 1 else 'them'} away or choose another folder")
        for report in filter(is_evaluation_report, out.iterdir()):
            shutil.rmtree(report)
    out.mkdir(parents=True, exist_ok=True)
    return out


def holds_a_diverged_run(out: Path) -> bool:
    """True if ``out/model.npz`` is the checkpoint of a run that diverged (see :func:`prepare_out_dir`)."""
    try:
        meta, _ = read_model_file(out / "model.npz")
    except DataError:
        return False  # a damaged file is not ours to replace
    return bool(meta.get("diverged"))


def part_of_the_run(path: Path) -> bool:
    """The run's checkpoint, a temporary file of it, or a report ``evaluate`` wrote about it."""
    return path.name == "model.npz" or path.name.endswith(".tmp") or is_evaluation_report(path)


def train_run(settings: dict, out=None, callbacks=(), log=print) -> dict:
    """Train as ``settings`` say and write the run folder; returns the metrics."""
    kernels.warm_up()  # meanwhile, the digits are read
    split = datasets.load(settings["data"], settings["train_rows"])
    model = build(settings, split.train.images.shape[1])  # bad settings are refused before any output
    out = prepare_out_dir(out)
    log(f"data: {split.how}")
    augmenter = model.train_config().augmenter()
    if augmenter is not None:  # what the network trains on, for the user to see (a generator of its own)
        plot_augmented(split.train.images, augmenter, np.random.default_rng(settings["seed"]), out / "augmented.png")
        log(f"augment: {augmenter!r}, new distortions every epoch (see augmented.png)")
    config = model.train_config()
    log(f"network: {describe_network(model)}; {config.optimizer} lr {config.lr:g}, "
        f"{'full batch' if config.batch_size is None else f'batch {config.batch_size}'}, "
        f"{counted(config.epochs, 'epoch')}; writing to {out}")
    trainer = model.trainer(split.train.images, split.train.labels)
    return _train_and_finish(model, trainer, split, settings, out, callbacks, log)


def _train_and_finish(model, trainer, split, settings: dict, out: Path, callbacks, log) -> dict:
    """Run (or go on running) ``trainer`` with checkpoints in ``out``, then finish the run."""
    every = checkpoint_every(trainer.config)
    checkpoint = Checkpoint(model, out / "model.npz", settings, data_record(settings, split), every)
    trainer.callbacks = [*callbacks, checkpoint]
    checkpoint.save(trainer)  # from the first moment on, the folder holds a resumable run
    try:
        trainer.run()
    except TrainingDiverged as exc:
        mark_diverged(checkpoint.path, str(exc))  # keeps the last good weights, never the NaN ones
        raise
    except KeyboardInterrupt:
        raise RunInterrupted(out) from None  # the checkpoint in out is resumable
    return finish_run(model, trainer, split, settings, out, log)


def resume_run(out, epochs: int | None = None, progress=None, log=print) -> dict | None:
    """Continue the run in folder ``out`` from its checkpoint, to its planned epochs.

    ``epochs`` extends (or, if smaller than planned but not than done, shortens)
    the run: the epochs still to come then follow the learning-rate schedule of
    a run planned with ``epochs`` from the start. ``progress(epochs)`` makes a
    progress callback. Returns the metrics, or None for a run already finished.
    """
    out = Path(out)
    if not out.is_dir():
        raise DataError(f"--resume {out}: " + ("no such folder" if not out.exists() else
                        "not a folder; give the run folder that holds model.npz"))
    if not (out / "model.npz").is_file():
        raise DataError(f"--resume {out}: no run to resume there (no model.npz); "
                        f"start one with: nnscratch train --out {out}")
    where = out / "model.npz"
    meta, arrays = read_model_file(where)
    if meta.get("version") == 1:
        raise DataError(f"--resume {out}: its model.npz was written by nnscratch 0.1 (format 1); it still "
                        "evaluates and predicts, but cannot be resumed: start a new run")
    if not all(isinstance(meta.get(k), dict) for k in ("trainer", "run", "data")):
        raise DataError(f"--resume {out}: its model.npz holds a model but no training state to resume from")
    if meta.get("diverged"):
        raise DataError(f"--resume {out}: {meta['diverged']}; resuming would repeat that. Start again "
                        f"instead: nnscratch train --out {out} --lr ... replaces the diverged run")
    settings, facts = dict(meta["run"]), meta["trainer"]
    try:
        done, planned = int(facts.get("epoch", 0)), int(settings.get("epochs", 0))
    except (TypeError, ValueError) as exc:
        raise DataError(f"{where}: fields 'trainer' and 'run': damaged epoch counts ({exc})") from None
    stopped = bool(facts.get("stopped_early"))
    if epochs is not None and epochs < done:
        raise DataError(f"--epochs {epochs}: the run in {out} has already trained {counted(done, 'epoch')}")
    if epochs is not None and stopped and epochs > done:
        raise DataError(f"--epochs {epochs}: the run in {out} stopped early at epoch {done} "
                        "(no progress on the validation set); it cannot be extended")
    settings["epochs"] = epochs or planned
    if meta.get("finished") and (done >= settings["epochs"] or stopped):
        accuracy = (meta.get("metrics") or {}).get("test_accuracy")
        log(f"{out}: this run is finished ({counted(done, 'epoch')}"
            + (f", test accuracy {100 * accuracy:.2f} %" if accuracy is not None else "")
            + "); nothing to do. To train longer: nnscratch train --resume DIR --epochs N")
        return None
    data_path = meta["data"].get("path")
    if data_path is not None and not isinstance(data_path, str):
        raise DataError(f"{where}: field 'data': damaged path {data_path!r}")
    if data_path is not None and not Path(data_path).exists():
        raise DataError(f"--resume {out}: the run's training data {data_path} is gone")
    rows = settings.get("train_rows")
    if rows is not None and (not isinstance(rows, int) or isinstance(rows, bool) or rows < 1):
        raise DataError(f"{where}: field 'run': damaged train_rows {rows!r}")
    split = datasets.load(data_path, rows)
    check_same_data(meta["data"], split, f"--resume {out}")
    try:
        model = build({"layers": None, "augment": "none", "distortion": {}, **settings},  # as 0.1 ran
                      split.train.images.shape[1])
    except (KeyError, TypeError, ValueError) as exc:  # DataError is a ValueError: named with the file too
        raise DataError(f"{where}: field 'run': damaged settings ({type(exc).__name__}: {exc})") from None
    trainer = model.trainer(split.train.images, split.train.labels)
    config = trainer.config
    restore(trainer, out / "model.npz", meta, arrays)
    for stale in out.glob(".*.tmp*"):  # half-written files of a killed run (see files.atomic)
        stale.unlink()
    log(f"resuming {out} at epoch {done} of {config.epochs} ({split.how})")
    callbacks = [progress(config.epochs)] if progress else []
    return _train_and_finish(model, trainer, split, settings, out, callbacks, log)


def finish_run(model, trainer, split, settings: dict, out: Path, log=print) -> dict:
    """Score the trained network and write model.npz, metrics.json and cost.png."""
    best = None if trainer.best is None else trainer.best.epoch + 1  # 1-based, as printed
    metrics = {
        "train_accuracy": model.score(split.train.images, split.train.labels),
        "test_accuracy": model.score(split.test.images, split.test.labels),
        "epochs": trainer.epoch,
        "best_epoch": best,
        "train_seconds": round(trainer.train_seconds, 3),
        "final_cost": trainer.history.train_cost[-1],
        "data": split.how,
        "settings": settings,
        "config": asdict(trainer.config),
        "history": trainer.history.as_dict(),
    }
    write_json(metrics, out / "metrics.json")
    config = trainer.config
    plot_history(metrics["history"], out / "cost.png", best_epoch=best,
                 title=f"{describe_network(model)}\n{settings['preset']} preset, {config.optimizer} lr {config.lr:g}, "
                       f"{'full batch' if config.batch_size is None else f'batch {config.batch_size}'}: "
                       f"test accuracy {100 * metrics['test_accuracy']:.2f} %")
    plot_first_layer(model, out, images=split.train.images)
    # Last, so that a run killed before this line is resumed and finished again.
    save_checkpoint(trainer, model, out / "model.npz", settings, data_record(settings, split), finished=True,
                    metrics={k: metrics[k] for k in ("train_accuracy", "test_accuracy")})
    log(f"train accuracy {100 * metrics['train_accuracy']:.2f} %, "
        f"test accuracy {100 * metrics['test_accuracy']:.2f} % "
        f"({counted(trainer.epoch, 'epoch')} in {trainer.train_seconds:.1f} s)")
    for line in run_notes(trainer, metrics, model.n_classes):
        log(line)
    return metrics


def run_notes(trainer, metrics: dict, n_classes: int) -> list[str]:
    """What a learner should know about how the run ended: early stopping, held-out digits, chance level."""
    notes, config = [], trainer.config
    if config.validation_split:
        why = " (--patience needs digits to watch)" if config.patience else ""
        notes.append(f"note: {100 * config.validation_split:g} % of the training digits were held out "
                     f"for validation{why}")
    if trainer.best is not None:
        stopped = f"stopped early after epoch {trainer.epoch}" if trainer.stop else f"ran all {trainer.epoch} epochs"
        notes.append(f"note: early stopping {stopped}; kept the weights of epoch {trainer.best.epoch + 1}, "
                     f"the best validation accuracy ({100 * trainer.best.val_accuracy:.2f} %)")
    if metrics["train_accuracy"] <= 1.5 / n_classes:
        notes.append(f"warning: the network learned nothing (train accuracy {100 * metrics['train_accuracy']:.1f} %, "
                     f"chance is {100 / n_classes:.0f} %). Usual causes: a learning rate too high or too low "
                     "(try --lr 10x smaller or larger), saturated starting weights (--init), or inputs scaled twice")
    return notes
