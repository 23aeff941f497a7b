"""The blog's CSV, parsed fast and checked cell by cell.

Kaggle's "digit recognizer" ``train.csv`` layout: a header line with a
``label`` column and 784 pixel columns, then one digit per line, every cell
a whole number (labels 0-9, pixels 0-255). Its ``test.csv``, the digits to
answer for, has the same layout without the label column; ``read_csv`` reads
it when asked for no labels (``labelled=False``).

The text is read in pieces of about 256 KB of whole lines. Each piece of
plain integers (the common case) is parsed by a vectorized reader, checked,
and turned into uint8 at once, so neither the whole text nor a big integer
table is ever held in memory. The fast reader only ever says "yes, these
are the numbers" or "not sure": a piece it cannot vouch for (decimals,
spaces, blank lines, stray text, values out of range) goes through a careful
line-by-line reader that accepts it or names the line and column of the
first bad cell. One reader decides what is wrong, so messages stay exact.
"""
from __future__ import annotations

import numpy as np

from ..errors import DataError

N_PIXELS = 784  # 28x28 grey levels, row-major
N_COLUMNS = N_PIXELS + 1  # the label and the pixels
CHUNK = 1 << 18  # read and parse about 256 KB at a time: temporaries stay small


def read_csv(path, read, size: int, labelled: bool = True) -> tuple[np.ndarray, np.ndarray | None]:
    """(images, labels) as uint8 from a Kaggle-style CSV: header with ``label``, then 784 pixels.

    ``read(n)`` gives the file's next ``n`` bytes (b"" at the end), ``size``
    about how many bytes it holds in all, and ``path`` names it in errors.
    With ``labelled=False`` the label column may be missing (Kaggle's
    ``test.csv``: a header ``pixel0,...,pixel783`` and 784 values per row);
    labels is then None when the file has none.

    The file is read in pieces of whole lines. Each piece of plain integers
    (the common case) is parsed by a vectorized reader, checked, and turned
    into uint8 at once, so neither the whole text nor a big integer table is
    ever held in memory. A piece the fast reader cannot vouch for (decimals,
    spaces, blank lines, stray text, values out of range) goes through a
    careful line-by-line reader that accepts it or names the line and column
    of the first bad cell. Blank lines are skipped; Windows line ends are fine.
    """
    names, offset, rest = _read_header(path, read, labelled)
    # Every row takes at least 2 bytes per value, so this many rows at most (gzip's
    # record of the size may lie: then the arrays grow). Untouched rows cost no memory.
    rows = _Rows(min(size // (2 * len(names)) + 1, 1 << 17))
    line = 2  # line numbers count from 1, and line 1 is the header
    for piece in _whole_lines(read, rest):
        rows.add(*_parse_piece(path, piece, line, offset, names))
        line += piece.count(b"\n")
        offset += len(piece)
    if rows.n == 0:
        raise DataError(f"{path}: has a header but no rows of digits")
    return rows.images[:rows.n], rows.labels[:rows.n] if "label" in names else None


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


def _read_header(path, read, labelled: bool = True) -> tuple[list[str], int, bytes]:
    """The header's column names, its length in bytes, and the bytes read after it.

    ``labelled=False`` also accepts a header of 784 pixel columns and no label.
    """
    data = b""
    while b"\n" not in data and len(data) < (1 << 20):
        more = read(CHUNK)
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
    expected = ("expected label,pixel0,...,pixel783 as in Kaggle's train.csv" if labelled else
                "expected pixel0,...,pixel783 as in Kaggle's test.csv (or with a label column, as in train.csv)")
    if all(n.replace(".", "", 1).isdigit() for n in names):
        raise DataError(f"{path}: line 1: no header line (the file starts with numbers); {expected}")
    if "label" not in names and (labelled or not names[0].startswith("pixel")):
        raise DataError(f"{path}: line 1: no 'label' column in the header; {expected}")
    pixels = len(names) - ("label" in names)
    if pixels != N_PIXELS:
        raise DataError(f"{path}: line 1: header has {pixels} pixel columns, expected {N_PIXELS} (28x28 digits)")
    return names, len(header) + 1, rest


def _whole_lines(read, start: bytes):
    """Yield pieces of about ``CHUNK`` bytes that each end with a newline."""
    carry = start
    while True:
        more = read(CHUNK)
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
    and starting at byte ``offset``. Without a label column, the labels are zeros."""
    label_col = names.index("label") if "label" in names else None
    unix = piece.replace(b"\r\n", b"\n") if b"\r" in piece else piece
    table = _parse_int_piece(unix, label_col, len(names))
    if table is None:
        table = _parse_piece_slowly(path, piece, line, offset, names, label_col)
    if label_col is None:
        return table.astype(np.uint8), np.zeros(len(table), np.uint8)
    labels = table[:, label_col].astype(np.uint8)
    if label_col == 0:
        return table[:, 1:].astype(np.uint8), labels
    return np.delete(table, label_col, axis=1).astype(np.uint8), labels


def _parse_int_piece(piece: bytes, label_col: int | None, n_columns: int = N_COLUMNS) -> np.ndarray | None:
    """Rows of ``n_columns`` comma-separated integers 0-255 as a (rows, n_columns) uint16 table, or None.

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
    if len(ends) != n_rows * n_columns or len(ends) != n_rows + np.count_nonzero(buf == 44):
        return None  # other bytes below '0' (space, '.', '-') or ragged rows
    if not np.all(buf[ends[n_columns - 1::n_columns]] == 10):
        return None  # newlines not every 785th (or 784th) separator: ragged rows
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
    table = values.reshape(n_rows, n_columns)
    if table.max() > 255 or (label_col is not None and table[:, label_col].max() > 9):
        return None
    return table


def _parse_piece_slowly(path, piece: bytes, line0: int, offset: int, names, label_col: int | None) -> np.ndarray:
    """Line-by-line reader: accepts any whole numbers, else names the first bad cell."""
    n_columns = len(names)
    what = f"a label and {N_PIXELS} pixels" if label_col is not None else f"{N_PIXELS} pixels"
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
        if len(cells) != n_columns:
            raise DataError(f"{path}: line {line}: has {len(cells)} values, expected {n_columns} ({what})")
        row = _numbers(cells)
        limits = np.full(n_columns, 255.0)
        if label_col is not None:
            limits[label_col] = 9
        ok = np.isfinite(row) & (row == np.round(row)) & (row >= 0) & (row <= limits)
        if not ok.all():
            _explain_bad_cell(path, line, names, label_col, cells, row)
        rows.append(row)
    return np.array(rows, np.uint16).reshape(len(rows), n_columns)


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
