"""Model files: a trained network in one ``.npz``, loadable without pickle.

Inside the zip:

* ``meta``: UTF-8 JSON as a uint8 array: ``format`` and ``version``, the
  ``network`` (its layers, as ``Sequential.describe()`` gives them), the
  input ``preprocessing`` and the ``classes``, nnscratch's version, and, in a
  run folder, the run's settings (``run``), its training configuration
  (``config``), its ``data`` and the trainer's state (``trainer``: epoch,
  random generator, history), see :mod:`nnscratch.files.checkpoint`;
* ``param/NAME``: every parameter and buffer, named by its place in the
  network (``param/1.W`` is layer 1's weights; see ``Sequential.state_dict``);
* any extra arrays a checkpoint needs (optimizer memory, best weights).

Loading checks the format, the version, the architecture and every array's
shape, and refuses anything else with a :class:`~nnscratch.errors.DataError`.

Format 1, written by nnscratch 0.1, described an MLP (``model``: sizes,
activation, the layer list, ``input_scale``) and numbered its parameters
(``param/0``, ``param/1``...). It still loads: the same layers, with the
input step in front, and the parameters in the same order.

Every write is atomic (see :mod:`nnscratch.files.atomic`): a crash, even
SIGKILL, leaves either the old file or the new one, never half of one.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..core.estimator import Classifier
from ..core.layers import Rescale, layer_from_description
from ..core.network import Sequential
from ..errors import DataError
from .atomic import atomic_path

FORMAT = "nnscratch-model"
VERSION = 2
READS = (1, 2)  # format versions this nnscratch loads
# What the network expects as input: MNIST's own layout (the network scales it itself).
PREPROCESSING = {"input": "28x28 grey levels 0-255, row-major, white ink on black",
                 "shape": [28, 28], "range": [0, 255], "ink": "light on dark"}


def save_model(model: Classifier, path, **extra) -> None:
    """Save ``model`` (a Classifier) to ``path`` atomically.

    ``extra`` may hold ``arrays`` (a dict of more arrays to store) and any
    JSON-able entries for the ``meta`` record (``run``, ``trainer``...).
    """
    arrays = dict(extra.pop("arrays", None) or {})
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "nnscratch": __version__,
        "network": model.network.describe(),
        "preprocessing": PREPROCESSING,
        "classes": model.classes or [str(i) for i in range(model.n_classes)],
        **extra,
    }
    arrays.update({f"param/{name}": a for name, a in model.network.state_dict().items()})
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
    if meta.get("version") not in READS:
        raise DataError(
            f"{path}: field 'version': format version {meta.get('version')!r} is not supported "
            f"(this nnscratch reads versions {', '.join(map(str, READS))})"
        )
    return meta, arrays


def load_model(path, inputs: int | None = None, what: str = "the data's digits") -> Classifier:
    """Load the model saved at ``path`` (a model file or a run folder) as a Classifier.

    ``inputs``: how many values each digit the caller will feed has (784 for
    28x28 images); a network that takes another number is refused here,
    naming the file, rather than failing later on the first prediction.
    The Classifier carries the file's ``meta`` record as ``model.meta``.
    """
    meta, arrays = read_model_file(path)
    network = network_from_meta(path, meta)
    copy_arrays(path, stored_names(network, meta), arrays, "param")
    classes = meta.get("classes")
    model = Classifier(network, classes=classes if isinstance(classes, list) else None)
    try:
        n_inputs, n_classes = model.n_inputs, model.n_classes
    except Exception as exc:  # noqa: BLE001 - a network that cannot take digits is a damaged file
        raise DataError(f"{path}: field 'network': not a network for digits ({exc})") from None
    if inputs is not None and n_inputs != inputs:
        raise DataError(f"{path}: this network takes {n_inputs} values per digit, not the {inputs} "
                        f"of {what}; it was trained on other data")
    if model.classes is not None and len(model.classes) != n_classes:
        raise DataError(f"{path}: field 'classes': {len(model.classes)} names for {n_classes} outputs")
    model.meta = meta
    return model


def network_from_meta(path, meta: dict) -> Sequential:
    """The network (zero weights) that the file describes, in format 2 or 1."""
    try:
        if meta["version"] == 1:
            desc = meta["model"]
            layers = [Rescale(float(desc["input_scale"]))] + [layer_from_description(_v1_layer(d))
                                                              for d in desc["layers"]]
            network = Sequential(layers)
        else:
            network = layer_from_description(meta["network"])
            if not isinstance(network, Sequential):
                raise ValueError("the network is not a Sequential of layers")
        network.output_shape((network.input_size(),))  # the layers fit together
    except Exception as exc:  # noqa: BLE001 - a damaged description is bad input, whatever breaks
        field = "model" if meta.get("version") == 1 else "network"
        raise DataError(f"{path}: field '{field}': damaged architecture ({type(exc).__name__}: {exc})") from None
    return network


def _v1_layer(desc: dict) -> dict:
    """A format-1 layer description in format 2's words (Dense said inputs/outputs)."""
    if isinstance(desc, dict) and desc.get("type") == "Dense":
        return {"type": "Dense", "n_in": desc["inputs"], "n_out": desc["outputs"]}
    return desc


def stored_names(network, meta: dict) -> dict[str, np.ndarray]:
    """The network's arrays by the names the file stores them under (format 1 numbered them)."""
    if meta.get("version") == 1:
        return {str(i): p for i, p in enumerate(network.parameters())}
    return network.state_dict()


def copy_arrays(path, targets: dict[str, np.ndarray], arrays: dict, prefix: str) -> None:
    """Copy ``prefix/NAME`` into each target array, checking shape, type and finiteness."""
    for name, target in targets.items():
        key = f"{prefix}/{name}"
        stored = arrays.get(key)
        if stored is None or stored.shape != target.shape or not np.issubdtype(stored.dtype, np.floating):
            found = "missing" if stored is None else f"shape {stored.shape}, dtype {stored.dtype}"
            raise DataError(f"{path}: array '{key}': expected shape {target.shape}, found {found}")
        if not np.all(np.isfinite(stored)):
            raise DataError(f"{path}: array '{key}': holds NaN or infinite values")
        target[...] = stored
    extra = sorted(k for k in arrays if k.startswith(prefix + "/") and k[len(prefix) + 1:] not in targets)
    if extra:
        raise DataError(f"{path}: array '{extra[0]}': not part of this network")
