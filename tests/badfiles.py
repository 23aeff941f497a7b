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
