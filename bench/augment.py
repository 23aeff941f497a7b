"""What augmentation costs: an epoch on distorted digits against a plain epoch, in one run.

Issue #12's bar: ``--augment elastic`` costs at most 1.6x an epoch without it
(784-256-128-10 ReLU, Adam, batch 128, full MNIST). Both go through the
library's own loop (``Classifier.fit``), which distorts the whole training
set afresh at the start of each epoch, in line; the two alternate
``--repeat`` times in this process and the medians are compared, so the
ratio holds when the machine's speed drifts (its load is printed).

Usage::

    python bench/augment.py [--data ../shared/data/mnist] [--repeat 3] [--kind elastic]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from nnscratch import Classifier, mlp
from nnscratch import data as datasets

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"


def epoch_seconds(X, y, augment: str, seed: int) -> float:
    """One epoch of 784-256-128-10 ReLU, Adam lr 1e-3, batch 128, with ``augment``: its training time."""
    model = Classifier(mlp([784, 256, 128, 10], activation="relu", seed=seed), epochs=1, batch_size=128,
                       augment=augment, seed=seed)
    start = time.perf_counter()
    model.fit(X, y)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="a folder of MNIST IDX files")
    parser.add_argument("--repeat", type=int, default=3, help="pairs of epochs, alternating (default: 3)")
    parser.add_argument("--kind", default="elastic", choices=["affine", "elastic"])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    train = datasets.load(args.data).train
    times = {"none": [], args.kind: []}
    for _ in range(args.repeat):
        for kind in times:
            times[kind].append(epoch_seconds(train.images, train.labels, kind, args.seed))
    plain, distorted = (statistics.median(times[k]) for k in times)
    print(f"load {os.getloadavg()[0]:.1f}; median of {args.repeat}: plain epoch {plain:.2f} s, "
          f"with --augment {args.kind} {distorted:.2f} s: ratio {distorted / plain:.2f}x (target <= 1.6x)")


if __name__ == "__main__":
    main()
