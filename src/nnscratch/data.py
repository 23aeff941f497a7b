"""Step 1 of the pipeline: digits in, NumPy arrays out.

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
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .errors import DataError

N_PIXELS = 784
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


@dataclass
class Split:
    """A training set, a test set, and a sentence saying how they were made."""

    train: Dataset
    test: Dataset
    how: str


# --------------------------------------------------------------------------- #
# Reading files
# --------------------------------------------------------------------------- #
def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it is gzip (by content, not by name)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise DataError(f"{path}: is a folder, expected a file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, ValueError) as exc:
            raise DataError(f"{path}: damaged gzip data ({exc})") from None
    return raw


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
_DIGIT = np.zeros(256, np.int32)
_DIGIT[48:58] = np.arange(10)
_CHUNK = 1 << 18  # parse about 256 KB of text at a time so temporaries stay in cache


def load_csv(path) -> Dataset:
    """Read a Kaggle-style digits CSV: header with ``label``, then 784 pixels.

    Plain integer files (the common case) are parsed by a vectorized reader
    that loads the 42000-row Kaggle file in well under a second; anything else
    (decimals, spaces, stray text) goes through a careful line-by-line reader
    that names the row and column of the first bad cell.
    """
    path = Path(path)
    text = _read_bytes(path).replace(b"\r", b"")
    header, _, body = text.partition(b"\n")
    label_col = _label_column(path, header)
    if not body.strip():
        raise DataError(f"{path}: has a header but no rows of digits")
    if not body.endswith(b"\n"):
        body += b"\n"
    buf = np.frombuffer(body, np.uint8)
    only_digits = not np.any((buf - np.uint8(48) > 9) & (buf != 44) & (buf != 10))
    table = _parse_int_csv(path, body) if only_digits else _parse_csv_slowly(path, body)
    _check_ranges(path, table, label_col)
    images = np.delete(table, label_col, axis=1).astype(np.uint8)
    return Dataset(images, table[:, label_col].astype(np.uint8), str(path))


def _label_column(path: Path, header: bytes) -> int:
    try:
        names = [n.strip().strip('"').lower() for n in header.decode("utf-8").split(",")]
    except UnicodeDecodeError:
        raise DataError(f"{path}: line 1: not a text CSV header") from None
    if names == [""]:
        raise DataError(f"{path}: is empty, expected a CSV with a header line")
    if "label" not in names:
        raise DataError(
            f"{path}: line 1: no 'label' column in the header "
            "(expected label,pixel0,...,pixel783 as in Kaggle's train.csv)"
        )
    if len(names) != N_PIXELS + 1:
        raise DataError(
            f"{path}: line 1: header has {len(names) - 1} pixel columns, expected {N_PIXELS}"
        )
    return names.index("label")


def _parse_int_csv(path: Path, body: bytes) -> np.ndarray:
    """Parse comma-separated unsigned integers, chunk by chunk, without a loop per cell."""
    rows, pos, row0 = [], 0, 0
    while pos < len(body):
        end = body.find(b"\n", min(pos + _CHUNK, len(body) - 1)) + 1 or len(body)
        block = _parse_int_block(path, body[pos:end], row0)
        rows.append(block)
        row0 += len(block)
        pos = end
    return np.concatenate(rows)


def _parse_int_block(path: Path, chunk: bytes, row0: int) -> np.ndarray:
    buf = np.frombuffer(b"\n\n\n" + chunk, np.uint8)  # padding: ends-3 never < 0
    ends = np.flatnonzero(buf < 48)[3:]  # every comma and newline of this chunk
    is_newline = buf[ends] == 10
    fields_per_row = np.diff(np.flatnonzero(is_newline), prepend=-1)
    if np.any(fields_per_row != N_PIXELS + 1):
        bad = int(np.flatnonzero(fields_per_row != N_PIXELS + 1)[0])
        raise DataError(
            f"{path}: line {row0 + bad + 2}: has {fields_per_row[bad]} values, "
            f"expected {N_PIXELS + 1} (a label and {N_PIXELS} pixels)"
        )
    d1, d2, d3, d4 = (buf[ends - k] for k in (1, 2, 3, 4))
    empty = d1 < 48
    too_long = (d2 >= 48) & (d3 >= 48) & (d4 >= 48)
    if np.any(empty | too_long):
        cell = int(np.flatnonzero(empty | too_long)[0])
        row, col = divmod(cell, N_PIXELS + 1)
        what = "an empty cell" if empty[cell] else "a value over 255"
        raise DataError(f"{path}: line {row0 + row + 2}, column {col + 1}: {what}")
    values = _DIGIT[d1] + 10 * _DIGIT[d2] + 100 * _DIGIT[d3] * (d2 >= 48)
    return values.reshape(-1, N_PIXELS + 1)


def _parse_csv_slowly(path: Path, body: bytes) -> np.ndarray:
    """Line-by-line reader for files that are not plain integers; exact error places."""
    lines = body.decode("utf-8", errors="replace").split("\n")[:-1]
    table = np.empty((len(lines), N_PIXELS + 1), np.float64)
    for r, line in enumerate(lines):
        cells = line.split(",")
        if len(cells) != N_PIXELS + 1:
            raise DataError(
                f"{path}: line {r + 2}: has {len(cells)} values, expected {N_PIXELS + 1}"
            )
        for c, cell in enumerate(cells):
            try:
                value = float(cell)
            except ValueError:
                value = float("nan")
            if not np.isfinite(value) or value != int(value):
                raise DataError(
                    f"{path}: line {r + 2}, column {c + 1}: {cell.strip()!r} is not a whole number"
                )
            table[r, c] = value
    return table


def _check_ranges(path: Path, table: np.ndarray, label_col: int) -> None:
    labels = table[:, label_col]
    bad_label = (labels < 0) | (labels > 9)
    if bad_label.any():
        row = int(np.flatnonzero(bad_label)[0])
        raise DataError(
            f"{path}: line {row + 2}, column {label_col + 1}: label {labels[row]:g} is not a digit 0-9"
        )
    bad_pixel = (table < 0) | (table > 255)
    bad_pixel[:, label_col] = False
    if bad_pixel.any():
        row, col = (int(i[0]) for i in np.nonzero(bad_pixel))
        raise DataError(
            f"{path}: line {row + 2}, column {col + 1}: pixel value {table[row, col]:g} is outside 0-255"
        )


def save_csv(dataset: Dataset, path) -> None:
    """Write ``dataset`` in the Kaggle layout (label first); ``.gz`` names are gzipped."""
    path = Path(path)
    header = "label," + ",".join(f"pixel{i}" for i in range(N_PIXELS))
    table = np.column_stack([dataset.labels, dataset.images]).astype(np.int64)
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")


# --------------------------------------------------------------------------- #
# IDX (MNIST's own format)
# --------------------------------------------------------------------------- #
_IDX_NAMES = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (plain or gzip) of unsigned bytes into an array.

    Layout: a big-endian magic ``0x0000 08 NN`` (08 = uint8, NN = number of
    dimensions), one big-endian uint32 per dimension, then the data.
    """
    path = Path(path)
    raw = _read_bytes(path)
    if len(raw) < 4:
        raise DataError(f"{path}: {len(raw)} bytes, too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08 or not 1 <= raw[3] <= 3:
        raise DataError(
            f"{path}: byte 0: magic number 0x{raw[:4].hex()} is not an IDX file of "
            "unsigned bytes (expected 0x00000801 or 0x00000803)"
        )
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise DataError(f"{path}: byte {len(raw)}: file ends inside the IDX header")
    shape = tuple(int(n) for n in np.frombuffer(raw, ">u4", ndim, 4))
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"{path}: byte {len(raw)}: file is {len(raw)} bytes but its header "
            f"{shape} says {expected}" + (" (truncated?)" if len(raw) < expected else "")
        )
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


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
        raise DataError(f"{labels_path}: label {row}: {labels[row]} is not a digit 0-9")
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
    """The 5000 MNIST digits bundled with nnscratch (500 per digit, sorted by label)."""
    with resources.files("nnscratch").joinpath("sample/mnist_5k.npz").open("rb") as f:
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
