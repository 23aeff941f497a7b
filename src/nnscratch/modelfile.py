"""Model files: a trained network in one ``.npz``, loadable without pickle.

Inside the zip:

* ``meta``: UTF-8 JSON as a uint8 array: format name and version, the
  architecture (``MLP.describe()``), the input preprocessing, the class names,
  and, for a run folder's checkpoint, the training configuration and the
  trainer's state (epoch, random generator, history);
* ``param/0``, ``param/1``, ...: the weights and biases, in ``parameters()`` order;
* any extra arrays a checkpoint needs (optimizer memory, best weights).

Every write goes to a temporary file in the same folder which is renamed over
the target only when complete: a crash, even SIGKILL, leaves either the old
file or the new one, never half of one.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from .errors import DataError

FORMAT = "nnscratch-model"
VERSION = 1


@contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent or ".")
    os.close(fd)
    try:
        yield Path(tmp)
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
        "preprocessing": {"input": "28x28 grey levels 0-255, row-major, white ink on black",
                          "scale": model.input_scale},
        "classes": [str(i) for i in range(model.sizes[-1])],
        **extra,
    }
    arrays.update({f"param/{i}": p for i, p in enumerate(model.parameters())})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
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
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, KeyError) as exc:
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


def load_model(path):
    """Load the network saved at ``path`` (a model file or a run folder)."""
    from .network import MLP

    meta, arrays = read_model_file(path)
    try:
        model = MLP.from_description(meta["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path}: field 'model': damaged architecture ({exc})") from None
    for i, p in enumerate(model.parameters()):
        stored = arrays.get(f"param/{i}")
        if stored is None or stored.shape != p.shape or not np.issubdtype(stored.dtype, np.floating):
            found = "missing" if stored is None else f"shape {stored.shape}, dtype {stored.dtype}"
            raise DataError(f"{path}: array 'param/{i}': expected shape {p.shape}, found {found}")
        p[...] = stored
    model.meta = meta
    return model
