"""The data: digits in, NumPy arrays out.

Three sources, each validated once, here at the boundary:

* the blog's CSV (Kaggle's "digit recognizer" ``train.csv`` layout): a header
  with a ``label`` column and 784 pixel columns, one digit per row, ``.csv``
  or ``.csv.gz``;
* a folder with the four MNIST IDX files, used with MNIST's own train/test
  split;
* the bundled sample: 5000 real MNIST digits shipped inside the package (see
  ``sample/ATTRIBUTION.md``), so that everything runs offline.

Whatever the source, a digit is a row of 784 ``uint8`` grey levels (0-255,
row-major 28x28) and a label ``0..9``. Scaling to [0, 1] is the network's
business, not the loader's: the blog trained on raw pixels.
"""
from __future__ import annotations

import gzip
import math
import os
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from ..errors import DataError
from .csv_parser import N_PIXELS, read_csv

BLOG_TRAIN_ROWS = 30000  # the blog trained on the first 30000 rows of its CSV


@dataclass
class Dataset:
    """Digits as arrays: ``images`` (n, 784) uint8 and ``labels`` (n,) uint8."""

    images: np.ndarray
    labels: np.ndarray
    source: str = ""

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, rows, source: str | None = None) -> "Dataset":
        """The digits at ``rows`` (a slice or index array) as a new Dataset."""
        return Dataset(self.images[rows], self.labels[rows], source or self.source)

    def __repr__(self) -> str:
        """One line: how many digits, of what size, how many of each label (never the arrays)."""
        labels, counts = np.unique(np.asarray(self.labels), return_counts=True)
        per_label = " ".join(f"{label}:{n}" for label, n in zip(labels.tolist(), counts.tolist())) or "none"
        shape = "x".join(map(str, self.images.shape[1:]))
        source = f" from {self.source}" if self.source else ""
        return f"<Dataset of {len(self)} digits ({shape} values each){source}; per label {per_label}>"


@dataclass
class Split:
    """A training set, a test set, and a sentence saying how they were made."""

    train: Dataset
    test: Dataset
    how: str

    def __repr__(self) -> str:
        """Three short lines: how the split was made, then the two sets (see ``Dataset.__repr__``)."""
        return f"<Split: {self.how}\n  train {self.train!r}\n  test  {self.test!r}>"


# --------------------------------------------------------------------------- #
# Reading files
# --------------------------------------------------------------------------- #
_GZIP_MAGIC = b"\x1f\x8b"


@contextmanager
def _open(path: Path):
    """The file as a binary stream, gunzipped when it is gzip (by content, not by name),
    and how many bytes the stream holds (gzip's own record of it, which may be wrong)."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if f.read(2) != _GZIP_MAGIC:
            f.seek(0)
            yield f, size
            return
        if size >= 18:  # a gzip file ends with the unpacked size modulo 2**32
            f.seek(-4, os.SEEK_END)
            size = int.from_bytes(f.read(4), "little")
        f.seek(0)
        yield gzip.GzipFile(fileobj=f, mode="rb"), size


def _read(path: Path, stream, size: int) -> bytes:
    """Up to ``size`` bytes of ``stream``; damaged gzip data becomes a DataError."""
    try:
        return stream.read(size)
    except (OSError, EOFError, zlib.error) as exc:
        what = "damaged gzip data" if isinstance(stream, gzip.GzipFile) else "cannot read"
        raise DataError(f"{path}: {what} ({exc})") from None


# --------------------------------------------------------------------------- #
# CSV (the parser lives in csv_parser.py)
# --------------------------------------------------------------------------- #
def load_csv(path) -> Dataset:
    """Read a Kaggle-style digits CSV (``.csv`` or ``.csv.gz``): header with ``label``, then 784 pixels.

    Read in pieces of whole lines, each checked and turned into uint8 at
    once (see :mod:`nnscratch.csv_parser`), so the whole text is never in
    memory. Blank lines are skipped and Windows line ends are fine; anything
    else that is not a whole number in range raises a DataError naming the
    line and column.
    """
    path = Path(path)
    with _open(path) as (stream, size):
        images, labels = read_csv(path, lambda n: _read(path, stream, n), size)
    return Dataset(images, labels, str(path))


def load_csv_images(path) -> np.ndarray:
    """The digits of a CSV with or without a label column, as (n, 784) uint8; labels are ignored.

    For reading digits to answer for, as in Kaggle's ``test.csv``: a header
    ``pixel0,...,pixel783`` and 784 pixels per row. Checked as :func:`load_csv`
    checks a training file.
    """
    path = Path(path)
    with _open(path) as (stream, size):
        images, _ = read_csv(path, lambda n: _read(path, stream, n), size, labelled=False)
    return images


def save_csv(dataset: Dataset, path) -> None:
    """Write ``dataset`` in the Kaggle layout (label first), atomically; ``.gz`` names are gzipped."""
    from .atomic import atomic_path

    path = Path(path)
    header = "label," + ",".join(f"pixel{i}" for i in range(N_PIXELS))
    table = np.column_stack([dataset.labels, dataset.images]).astype(np.int64)
    with atomic_path(path, suffix=".gz" if path.name.endswith(".gz") else "") as tmp:
        np.savetxt(tmp, table, fmt="%d", delimiter=",", header=header, comments="")


# --------------------------------------------------------------------------- #
# IDX (MNIST's own format)
# --------------------------------------------------------------------------- #
_IDX_MAX_BYTES = 1 << 30  # full MNIST is 47 MB; anything near 1 GB is a damaged header
_IDX_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (plain or gzip) of unsigned bytes into an array.

    Layout: a big-endian magic ``0x0000 08 NN`` (08 = uint8, NN = number of
    dimensions), one big-endian uint32 per dimension, then the data. The
    header is checked before the data is read, so a damaged size can neither
    exhaust memory nor go unnoticed.
    """
    path = Path(path)
    with _open(path) as (stream, _):
        magic = _read(path, stream, 4)
        if len(magic) < 4:
            raise DataError(f"{path}: {len(magic)} bytes, too short for an IDX header")
        if magic[:3] != b"\x00\x00\x08" or not 1 <= magic[3] <= 3:
            raise DataError(
                f"{path}: byte 0: magic number 0x{magic.hex()} is not an IDX file of "
                "unsigned bytes (expected 0x00000801 or 0x00000803)"
            )
        ndim = magic[3]
        dims = _read(path, stream, 4 * ndim)
        if len(dims) < 4 * ndim:
            raise DataError(f"{path}: byte {4 + len(dims)}: file ends inside the IDX header")
        shape = tuple(int(n) for n in np.frombuffer(dims, ">u4"))
        size, start = math.prod(shape), 4 + 4 * ndim
        if size > _IDX_MAX_BYTES:
            raise DataError(f"{path}: byte 4: header says {shape}, {size} bytes of data; "
                            f"refusing more than {_IDX_MAX_BYTES >> 20} MB")
        data = bytearray()
        while len(data) <= size:  # one byte more than expected tells of extra data
            more = _read(path, stream, min(1 << 24, size + 1 - len(data)))
            if not more:
                break
            data += more
    if len(data) != size:
        raise DataError(
            f"{path}: byte {start + min(len(data), size)}: " + (
                f"file ends after {len(data)} of the {size} data bytes its header {shape} "
                "announces (truncated?)" if len(data) < size
                else f"more data than its header {shape} announces ({size} bytes)")
        )
    return np.frombuffer(data, np.uint8).reshape(shape)


def _find_idx(folder: Path, key: str) -> Path:
    for name in _IDX_NAMES[key]:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return candidate
    raise DataError(f"{folder}: no {_IDX_NAMES[key][0]} file (plain or .gz) in this folder")


def load_idx_pair(images_path, labels_path) -> Dataset:
    """One IDX image file and its label file, checked against each other."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{images_path}: holds arrays of shape {images.shape[1:]}, expected 28x28 images")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: is not an IDX label file (has {labels.ndim} dimensions)")
    if len(images) != len(labels):
        raise DataError(
            f"{images_path}: holds {len(images)} images but {Path(labels_path).name} holds {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        row = int(np.argmax(labels > 9))
        raise DataError(f"{labels_path}: item {row} (byte {8 + row}): label {labels[row]} is not a digit 0-9")
    return Dataset(images.reshape(len(images), N_PIXELS), labels, str(images_path))


def load_idx_folder(folder) -> Split:
    """MNIST as published: 60000 training digits and 10000 test digits."""
    folder = Path(folder)
    parts = {}
    for split in ("train", "test"):
        parts[split] = load_idx_pair(_find_idx(folder, f"{split}_images"), _find_idx(folder, f"{split}_labels"))
    return Split(parts["train"], parts["test"], f"MNIST IDX files in {folder}: official train/test split")


# --------------------------------------------------------------------------- #
# The bundled sample and the choice of split
# --------------------------------------------------------------------------- #
def load_sample() -> Dataset:
    """The 5000 MNIST digits bundled with nnscratch (500 per digit, in a fixed shuffled order).

    Shuffled so that any slice (the first 32 digits, say) holds every kind of
    digit; the order is fixed so that every run sees the same digits (see
    ``scripts/make_sample.py``, which also keeps :func:`load`'s every-fifth
    test split at 100 digits of each kind).
    """
    with resources.files(__package__).joinpath("sample/mnist_5k.npz").open("rb") as f:
        with np.load(f, allow_pickle=False) as npz:
            return Dataset(npz["images"], npz["labels"], "bundled sample (5000 MNIST digits)")


def split_rows(dataset: Dataset, train_rows: int, how: str) -> Split:
    """First ``train_rows`` rows for training, the rest for testing (the blog's way)."""
    if not 0 < train_rows < len(dataset):
        raise DataError(
            f"{dataset.source}: cannot keep {train_rows} of {len(dataset)} rows for training "
            "and still have rows left to test on"
        )
    return Split(dataset.take(slice(0, train_rows)), dataset.take(slice(train_rows, None)), how)


def default_train_rows(n_rows: int) -> int:
    """The blog's 30000 when the file is larger than that, else the first 4/5."""
    return BLOG_TRAIN_ROWS if n_rows > BLOG_TRAIN_ROWS else max(1, n_rows * 4 // 5)


def load(path=None, train_rows: int | None = None) -> Split:
    """Load digits and split them into training and test sets.

    * ``None``: the bundled sample; every fifth digit is kept for testing, so
      both sets hold all ten digits in equal numbers (4000 train / 1000 test).
    * a folder: the MNIST IDX files with their official split.
    * a CSV file: the first ``train_rows`` rows train, the rest test; by default
      the blog's 30000 (or the first 4/5 of a file of 30000 rows or fewer).
    """
    if train_rows is not None and (path is None or Path(path).is_dir()):
        source = "the bundled sample" if path is None else f"{path} (MNIST IDX files)"
        raise DataError(f"train_rows (--train-rows) applies to a CSV file only; {source} has its own "
                        "train/test split")
    if path is None:
        sample = load_sample()
        test = np.arange(len(sample)) % 5 == 4
        return Split(sample.take(~test), sample.take(test),
                     "bundled sample: 4000 digits to train, every fifth (1000) to test")
    path = Path(path)
    if path.is_dir():
        return load_idx_folder(path)
    dataset = load_csv(path)
    rows = train_rows if train_rows is not None else default_train_rows(len(dataset))
    return split_rows(dataset, rows, f"{path}: first {rows} rows to train, the other {len(dataset) - rows} to test")
