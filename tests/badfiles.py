"""Small good and bad input files for the error tests (not a test module itself)."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

N_PIXELS = 784
HEADER = "label," + ",".join(f"pixel{i}" for i in range(N_PIXELS))
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def digits(n: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` random digits: (images (n, 784) uint8, labels (n,) uint8)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, N_PIXELS), dtype=np.uint8), rng.integers(0, 10, n, dtype=np.uint8)


def csv_rows(n: int = 5, seed: int = 0) -> list[list[str]]:
    """Rows of cells (label first) as strings, to be damaged by a test."""
    images, labels = digits(n, seed)
    return [[str(label), *map(str, row)] for label, row in zip(labels, images)]


def csv_text(rows, header: str = HEADER, newline: str = "\n", final_newline: bool = True) -> bytes:
    lines = [header, *(",".join(r) for r in rows)]
    return (newline.join(lines) + (newline if final_newline else "")).encode()


def with_cell(row: int, col: int, value: str, n: int = 5) -> bytes:
    """A good CSV of ``n`` rows whose data row ``row`` (0-based) has ``value`` in column ``col``."""
    rows = csv_rows(n)
    rows[row][col] = value
    return csv_text(rows)


def idx_bytes(array: np.ndarray) -> bytes:
    """``array`` (uint8) in MNIST's IDX layout."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + array.tobytes()


def write_idx_folder(folder: Path, n_train: int = 20, n_test: int = 10, gz: bool = False,
                     replace: dict | None = None) -> Path:
    """A folder of the four MNIST IDX files; ``replace`` maps a file name to other bytes (None: no file)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_images, train_labels = digits(n_train, 1)
    test_images, test_labels = digits(n_test, 2)
    files = {
        "train-images-idx3-ubyte": idx_bytes(train_images.reshape(-1, 28, 28)),
        "train-labels-idx1-ubyte": idx_bytes(train_labels),
        "t10k-images-idx3-ubyte": idx_bytes(test_images.reshape(-1, 28, 28)),
        "t10k-labels-idx1-ubyte": idx_bytes(test_labels),
    }
    for name, content in {**files, **(replace or {})}.items():
        if content is None:
            continue  # a missing file
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(content) if gz else content)
    return folder


# --------------------------------------------------------------------------- #
# Every bad file the tests cover: name -> (content, the message it must give, as a regex)
# --------------------------------------------------------------------------- #
BAD_CSV = {
    "ragged row": (csv_text([*csv_rows(2), csv_rows(1)[0][:-1]]), r"line 4: has 784 values, expected 785"),
    "long row": (csv_text([*csv_rows(2), csv_rows(1)[0] + ["0"]]), r"line 4: has 786 values, expected 785"),
    "text cell": (with_cell(1, 5, "abc"), r"line 3, column 6 \(pixel4\): 'abc' is not a whole number"),
    "nan cell": (with_cell(0, 2, "NaN"), r"line 2, column 3 \(pixel1\): 'NaN' is not a whole number"),
    "empty cell": (with_cell(2, 784, ""), r"line 4, column 785 \(pixel783\): '' is not a whole number"),
    "fraction": (with_cell(0, 1, "0.5"), r"line 2, column 2 \(pixel0\): '0.5' is not a whole number"),
    "label 10": (with_cell(3, 0, "10"), r"line 5, column 1 \(label\): label 10 is outside 0-9"),
    "label -1": (with_cell(3, 0, "-1"), r"line 5, column 1 \(label\): label -1 is outside 0-9"),
    "pixel 256": (with_cell(4, 9, "256"), r"line 6, column 10 \(pixel8\): pixel value 256 is outside 0-255"),
    "pixel 1000": (with_cell(4, 9, "1000"), r"pixel value 1000 is outside 0-255"),
    "pixel -3": (with_cell(1, 9, "-3"), r"line 3, column 10 \(pixel8\): pixel value -3 is outside 0-255"),
    "no label column": (csv_text(csv_rows(2), header=HEADER.replace("label", "digit")), r"line 1: no 'label' column"),
    "no header": (csv_text(csv_rows(2)[1:], header=",".join(csv_rows(1)[0])), r"line 1: no header line"),
    "783 pixels": (csv_text([r[:-1] for r in csv_rows(2)], header=HEADER.rsplit(",", 1)[0]),
                   r"line 1: header has 783 pixel columns, expected 784"),
    "785 pixels": (csv_text([r + ["0"] for r in csv_rows(2)], header=HEADER + ",pixel784"),
                   r"line 1: header has 785 pixel columns, expected 784"),
    "empty file": (b"", r"is empty"),
    "blank file": (b"\n\n  \n", r"is empty"),
    "header only": (HEADER.encode() + b"\n", r"has a header but no rows of digits"),
    "header and blank lines": (HEADER.encode() + b"\n\n\n", r"has a header but no rows of digits"),
    "binary header": (bytes(range(128, 256)) * 4, r"line 1, byte 0: not UTF-8 text"),
    "control characters": (bytes(range(256)) * 4, r"line 1, character 1: control character '\\x00'"),
    "binary body": (csv_text(csv_rows(2)) + b"\x00\xff\xfe\x80garbage\n", r"line 4, byte \d+: not UTF-8 text"),
    "damaged gzip": (gzip.compress(csv_text(csv_rows(2)))[:-30], r"damaged gzip data"),
}

GOOD_IMAGES = idx_bytes(digits(20, 1)[0].reshape(-1, 28, 28))
BAD_IDX = {
    "truncated images": ({"train-images-idx3-ubyte": GOOD_IMAGES[:-100]},
                         r"train-images-idx3-ubyte: byte 15596: file ends after 15580 of the 15680 data bytes"),
    "extra bytes": ({"train-images-idx3-ubyte": GOOD_IMAGES + b"\0"}, r"byte 15696: more data than its header"),
    "wrong magic": ({"t10k-labels-idx1-ubyte": b"\x00\x00\x0d\x01" + bytes(14)},
                    r"t10k-labels-idx1-ubyte: byte 0: magic number 0x00000d01 is not an IDX file"),
    "text file": ({"t10k-labels-idx1-ubyte": b"hello, world"}, r"magic number 0x68656c6c"),
    "header cut": ({"train-labels-idx1-ubyte": b"\x00\x00\x08\x01\x00"}, r"byte 5: file ends inside the IDX header"),
    "tiny file": ({"train-labels-idx1-ubyte": b"\x00"}, r"1 bytes, too short for an IDX header"),
    "empty file": ({"train-labels-idx1-ubyte": b""}, r"0 bytes, too short"),
    "counts differ": ({"train-labels-idx1-ubyte": idx_bytes(digits(19, 1)[1])},
                      r"train-images-idx3-ubyte: holds 20 images but train-labels-idx1-ubyte holds 19 labels"),
    "missing file": ({"t10k-images-idx3-ubyte": None}, r"no t10k-images-idx3-ubyte file \(plain or .gz\) in this folder"),
    "label 12": ({"t10k-labels-idx1-ubyte": idx_bytes(np.full(10, 12))}, r"item 0 \(byte 8\): label 12 is not a digit 0-9"),
    "not 28x28": ({"train-images-idx3-ubyte": idx_bytes(np.zeros((20, 27, 29)))}, r"shape \(27, 29\), expected 28x28"),
    "huge header": ({"train-images-idx3-ubyte": b"\x00\x00\x08\x03" + b"\xff" * 12},
                    r"byte 4: header says \(4294967295, 4294967295, 4294967295\).*refusing"),
}
