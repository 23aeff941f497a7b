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
import math
import os
import zlib
from contextlib import contextmanager
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
_CHUNK = 1 << 18  # read and parse about 256 KB at a time: temporaries stay small
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
# CSV
# --------------------------------------------------------------------------- #
N_COLUMNS = N_PIXELS + 1  # the label and the pixels


def load_csv(path) -> Dataset:
    """Read a Kaggle-style digits CSV: header with ``label``, then 784 pixels.

    The file is read in pieces of whole lines. Each piece of plain integers
    (the common case) is parsed by a vectorized reader, checked, and turned
    into uint8 at once, so neither the whole text nor a big integer table is
    ever held in memory. A piece the fast reader cannot vouch for (decimals,
    spaces, blank lines, stray text, values out of range) goes through a
    careful line-by-line reader that accepts it or names the line and column
    of the first bad cell. Blank lines are skipped; Windows line ends are fine.
    """
    path = Path(path)
    with _open(path) as (stream, size):
        names, offset, rest = _read_header(path, stream)
        # Every row takes at least 2 bytes per value, so this many rows at most (gzip's
        # record of the size may lie: then the arrays grow). Untouched rows cost no memory.
        rows = _Rows(min(size // (2 * N_COLUMNS) + 1, 1 << 20))
        line = 2  # line numbers count from 1, and line 1 is the header
        for piece in _whole_lines(path, stream, rest):
            rows.add(*_parse_piece(path, piece, line, offset, names))
            line += piece.count(b"\n")
            offset += len(piece)
    if rows.n == 0:
        raise DataError(f"{path}: has a header but no rows of digits")
    return Dataset(rows.images[:rows.n], rows.labels[:rows.n], str(path))


class _Rows:
    """Digits collected block by block into arrays made once (grown if need be).

    Collecting blocks in a list and joining them at the end would hold every
    digit twice for a moment; this holds them once.
    """

    def __init__(self, capacity: int):
        self.images = np.empty((capacity, N_PIXELS), np.uint8)
        self.labels = np.empty(capacity, np.uint8)
        self.n = 0

    def add(self, images: np.ndarray, labels: np.ndarray) -> None:
        end = self.n + len(labels)
        if end > len(self.labels):  # more rows than foreseen: make twice the room
            self.images = _with_room(self.images[:self.n], max(end, 2 * len(self.labels)))
            self.labels = _with_room(self.labels[:self.n], max(end, 2 * len(self.labels)))
        self.images[self.n:end] = images
        self.labels[self.n:end] = labels
        self.n = end


def _with_room(array: np.ndarray, rows: int) -> np.ndarray:
    """A copy of ``array`` with room for ``rows`` rows (the new ones uninitialised)."""
    out = np.empty((rows, *array.shape[1:]), array.dtype)
    out[:len(array)] = array
    return out


def _read_header(path: Path, stream) -> tuple[list[str], int, bytes]:
    """The header's column names, its length in bytes, and the bytes read after it."""
    data = b""
    while b"\n" not in data and len(data) < (1 << 20):
        more = _read(path, stream, _CHUNK)
        if not more:
            break
        data += more
    header, newline, rest = data.partition(b"\n")
    if not newline and len(data) >= (1 << 20):
        raise DataError(f"{path}: line 1 is over 1 MB long: not a digits CSV")
    if not data.strip():
        raise DataError(f"{path}: is empty, expected a CSV with a header line (label,pixel0,...,pixel783)")
    try:
        text = header.decode("utf-8-sig")  # -sig: Excel starts UTF-8 files with a BOM
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: line 1, byte {exc.start}: not UTF-8 text (a binary file?), "
                        "expected a CSV header label,pixel0,...,pixel783") from None
    control = next((i for i, c in enumerate(text) if c < " " and c not in "\t\r"), None)
    if control is not None:
        raise DataError(f"{path}: line 1, character {control + 1}: control character {text[control]!r}: "
                        "not a text CSV (a binary file?)")
    names = [n.strip().strip('"').lower() for n in text.strip().split(",")]
    if "label" not in names:
        looks_numeric = all(n.replace(".", "", 1).isdigit() for n in names)
        raise DataError(
            f"{path}: line 1: " + ("no header line (the file starts with numbers)" if looks_numeric
                                   else "no 'label' column in the header")
            + "; expected label,pixel0,...,pixel783 as in Kaggle's train.csv"
        )
    if len(names) != N_COLUMNS:
        raise DataError(
            f"{path}: line 1: header has {len(names) - 1} pixel columns, expected {N_PIXELS} "
            "(28x28 digits)"
        )
    return names, len(header) + 1, rest


def _whole_lines(path: Path, stream, start: bytes):
    """Yield pieces of about ``_CHUNK`` bytes that each end with a newline."""
    carry = start
    while True:
        more = _read(path, stream, _CHUNK)
        if not more:
            break
        data = carry + more
        cut = data.rfind(b"\n") + 1
        if cut:
            yield data[:cut]
        carry = data[cut:]
    if carry:
        yield carry + b"\n"  # a last line without its newline


def _parse_piece(path, piece: bytes, line: int, offset: int, names):
    """(images, labels) as uint8 from whole lines, the first being line ``line`` of the file
    and starting at byte ``offset``."""
    label_col = names.index("label")
    unix = piece.replace(b"\r\n", b"\n") if b"\r" in piece else piece
    table = _parse_int_piece(unix, label_col)
    if table is None:
        table = _parse_piece_slowly(path, piece, line, offset, names, label_col)
    labels = table[:, label_col].astype(np.uint8)
    if label_col == 0:
        return table[:, 1:].astype(np.uint8), labels
    return np.delete(table, label_col, axis=1).astype(np.uint8), labels


def _parse_int_piece(piece: bytes, label_col: int) -> np.ndarray | None:
    """Rows of comma-separated integers 0-255 as a (rows, 785) uint16 table, or None.

    None means "not sure": the piece holds something else than digits,
    commas and newlines, a row of the wrong length, an empty cell, a blank
    line, a number of 4 or more digits, or a value out of range. The careful
    reader then decides, and names the problem if there is one.

    How: every comma and newline ends a cell; the (at most 3) bytes before it
    are the cell's digits, gathered at fixed offsets, with no loop per cell.
    """
    padded = np.frombuffer(b"\n\n\n" + piece, np.uint8)  # padding: a cell at the start has 3 bytes before it
    buf = padded[3:]
    if buf.max() > 57:  # letters and other bytes above '9'
        return None
    ends = np.flatnonzero(buf < 48)  # every comma and newline ('0' is 48)
    n_rows = np.count_nonzero(buf == 10)
    if len(ends) != n_rows * N_COLUMNS or len(ends) != n_rows + np.count_nonzero(buf == 44):
        return None  # other bytes below '0' (space, '.', '-') or ragged rows
    if not np.all(buf[ends[N_COLUMNS - 1::N_COLUMNS]] == 10):
        return None  # newlines not every 785th separator: ragged rows
    # The 1, 2 and 3 bytes before each end: the cell's units, tens and hundreds digits,
    # when they are digits. Gathering makes copies, so they may be changed in place.
    units, tens, hundreds = padded[2:][ends], padded[1:][ends], padded[ends]
    units -= 48
    if units.max() > 9:
        return None  # an empty cell or a blank line: a separator where a digit should be
    has_tens = tens >= 48
    has_hundreds = hundreds >= 48
    has_hundreds &= has_tens
    n_digits = len(buf) - len(ends)
    if n_digits != len(ends) + np.count_nonzero(has_tens) + np.count_nonzero(has_hundreds):
        return None  # some cell has 4 or more digits (perhaps 0007, perhaps too big)
    tens -= 48
    tens *= has_tens
    units += tens * np.uint8(10)  # below 100: fits in uint8
    hundreds -= 48
    hundreds *= has_hundreds
    values = hundreds.astype(np.uint16) * np.uint16(100) + units
    table = values.reshape(n_rows, N_COLUMNS)
    if table.max() > 255 or table[:, label_col].max() > 9:
        return None
    return table


def _parse_piece_slowly(path, piece: bytes, line0: int, offset: int, names, label_col: int) -> np.ndarray:
    """Line-by-line reader: accepts any whole numbers, else names the first bad cell."""
    try:
        text = piece.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = line0 + piece.count(b"\n", 0, exc.start)
        raise DataError(f"{path}: line {line}, byte {offset + exc.start}: not UTF-8 text "
                        "(a binary file?)") from None
    rows = []
    for line, row_text in enumerate(text.split("\n")[:-1], start=line0):
        if not row_text.strip():
            continue  # blank lines are skipped
        cells = row_text.split(",")
        if len(cells) != N_COLUMNS:
            raise DataError(f"{path}: line {line}: has {len(cells)} values, expected "
                            f"{N_COLUMNS} (a label and {N_PIXELS} pixels)")
        row = _numbers(cells)
        limits = np.full(N_COLUMNS, 255.0)
        limits[label_col] = 9
        ok = np.isfinite(row) & (row == np.round(row)) & (row >= 0) & (row <= limits)
        if not ok.all():
            _explain_bad_cell(path, line, names, label_col, cells, row)
        rows.append(row)
    return np.array(rows, np.uint16).reshape(len(rows), N_COLUMNS)


def _explain_bad_cell(path, line: int, names, label_col: int, cells, row) -> None:
    """Raise the DataError for the first cell of ``row`` that is no whole number in range."""
    for col, value in enumerate(row):
        where = f"{path}: line {line}, column {col + 1} ({names[col]})"
        if not (np.isfinite(value) and value == round(value)):
            raise DataError(f"{where}: {cells[col].strip()!r} is not a whole number")
        high, what = (9, "label") if col == label_col else (255, "pixel value")
        if not 0 <= value <= high:
            raise DataError(f"{where}: {what} {value:g} is outside 0-{high}")


def _numbers(cells: list[str]) -> np.ndarray:
    """The cells as float64; a cell that is no number becomes NaN (reported by the caller)."""
    try:
        return np.array(cells, np.float64)
    except ValueError:
        return np.array([_number(cell) for cell in cells])


def _number(cell: str) -> float:
    try:
        return float(cell)
    except ValueError:
        return float("nan")


def save_csv(dataset: Dataset, path) -> None:
    """Write ``dataset`` in the Kaggle layout (label first), atomically; ``.gz`` names are gzipped."""
    from .modelfile import atomic_path

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
