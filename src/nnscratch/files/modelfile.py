"""Model files: a trained network in one ``.npz``, loadable without pickle.

Inside the zip:

* ``meta``: UTF-8 JSON as a uint8 array: ``format`` and ``version``, the
  architecture ``model`` (``MLP.describe()``), the input ``preprocessing``,
  the ``classes``, and, in a run folder, the run's settings (``run``), its
  training configuration (``config``), its ``data`` and the trainer's state
  (``trainer``: epoch, random generator, history), see :mod:`nnscratch.checkpoint`;
* ``param/0``, ``param/1``, ...: the weights and biases, in ``parameters()`` order;
* any extra arrays a checkpoint needs (optimizer memory, best weights).

Loading checks the format, the version, the architecture and every array's
shape, and refuses anything else with a :class:`~nnscratch.errors.DataError`.

Every write goes to a temporary file in the same folder which is renamed over
the target only when complete: a crash, even SIGKILL, leaves either the old
file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from ..errors import DataError

FORMAT = "nnscratch-model"
VERSION = 1
# What the network expects as input: MNIST's own layout (the network multiplies by ``scale``).
PREPROCESSING = {"input": "28x28 grey levels 0-255, row-major, white ink on black",
                 "shape": [28, 28], "range": [0, 255], "ink": "light on dark"}

_UMASK = os.umask(0o022)  # read the process's umask (the only way is to set it) ...
os.umask(_UMASK)  # ... and put it back at once


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private; give it the usual mode
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_model(model, path, **extra) -> None:
    """Save ``model`` to ``path`` atomically.

    ``extra`` may hold ``arrays`` (a dict of more arrays to store) and any
    JSON-able entries for the ``meta`` record (``training``, ``trainer``...).
    """
    arrays = dict(extra.pop("arrays", None) or {})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.describe(),
        "preprocessing": PREPROCESSING | {"scale": model.input_scale},
        "classes": [str(i) for i in range(model.sizes[-1])],
        **extra,
    }
    arrays.update({f"param/{i}": p for i, p in enumerate(model.parameters())})
    write_model_file(path, meta, arrays)


def write_model_file(path, meta: dict, arrays: dict) -> None:
    """Write the ``meta`` record and ``arrays`` to ``path`` atomically (what :func:`read_model_file` reads)."""
    arrays = {**arrays, "meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def read_model_file(path) -> tuple[dict, dict]:
    """The ``meta`` record and every array of a model file, checked for damage."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.npz"
    if not path.is_file():
        raise DataError(f"{path}: no such model file")
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if magic != b"PK\x03\x04":  # every .npz is a zip archive
        what = "is empty" if not magic else "is not an .npz archive (no zip signature)"
        raise DataError(f"{path}: not an nnscratch model file: {what}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except MemoryError:
        raise DataError(f"{path}: damaged model file (an array claims more memory than there is)") from None
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # NumPy's words for an object array
            raise DataError(f"{path}: not a readable model file: it holds pickled Python objects, "
                            "which nnscratch never loads (unpickling can run any code)") from None
        raise DataError(f"{path}: not a readable model file (ValueError: {exc})") from None
    except Exception as exc:  # noqa: BLE001 - any failure to parse a foreign or damaged file is bad input
        raise DataError(f"{path}: not a readable model file ({type(exc).__name__}: {exc})") from None
    if "meta" not in arrays:
        raise DataError(f"{path}: not an nnscratch model file (no 'meta' record)")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path}: field 'meta': damaged JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path}: field 'format': not an nnscratch model file")
    if meta.get("version") != VERSION:
        raise DataError(
            f"{path}: field 'version': format version {meta.get('version')!r} is not supported "
            f"(this nnscratch reads version {VERSION})"
        )
    return meta, arrays


def load_model(path, inputs: int | None = None, what: str = "the data's digits"):
    """Load the network saved at ``path`` (a model file or a run folder).

    ``inputs``: how many values each digit the caller will feed has (784 for
    28x28 images); a network that takes another number is refused here,
    naming the file, rather than failing later on the first prediction.
    The returned MLP carries the file's ``meta`` record as ``model.meta``.
    """
    meta, arrays = read_model_file(path)
    model = model_from_meta(path, meta)
    if inputs is not None and model.sizes[0] != inputs:
        raise DataError(f"{path}: this network takes {model.sizes[0]} values per digit, not the {inputs} "
                        f"of {what}; it was trained on other data")
    set_parameters(path, model, arrays, "param")
    model.meta = meta
    return model


def model_from_meta(path, meta: dict):
    """An MLP (zero weights) built from the file's architecture, checked for consistency."""
    from ..core.network import MLP

    try:
        desc = meta["model"]
        model = MLP.from_description(desc)
        chain = [(d.W.shape[0], d.W.shape[1]) for d in model.dense_layers()]
        if chain != list(zip(model.sizes, model.sizes[1:])):
            raise ValueError(f"dense layers {chain} do not match sizes {model.sizes}")
    except Exception as exc:  # noqa: BLE001 - a damaged description is bad input, whatever breaks
        raise DataError(f"{path}: field 'model': damaged architecture ({type(exc).__name__}: {exc})") from None
    return model


def set_parameters(path, model, arrays: dict, prefix: str) -> None:
    """Copy ``prefix/0``, ``prefix/1``... into the model's parameters, checking each shape."""
    params = model.parameters()
    for i, p in enumerate(params):
        stored = arrays.get(f"{prefix}/{i}")
        if stored is None or stored.shape != p.shape or not np.issubdtype(stored.dtype, np.floating):
            found = "missing" if stored is None else f"shape {stored.shape}, dtype {stored.dtype}"
            raise DataError(f"{path}: array '{prefix}/{i}': expected shape {p.shape}, found {found}")
        if not np.all(np.isfinite(stored)):
            raise DataError(f"{path}: array '{prefix}/{i}': holds NaN or infinite weights")
        p[...] = stored
    if f"{prefix}/{len(params)}" in arrays:
        raise DataError(f"{path}: array '{prefix}/{len(params)}': more parameters than the architecture has")


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
