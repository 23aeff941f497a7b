"""What distorting the training digits costs: an epoch with augmentation against one without.

The network of the issue's bar: 784-256-128-10 ReLU, Adam lr 1e-3, batches of
128, full MNIST (469 batches an epoch). In one run, alternating ``--repeat``
times, it measures:

* **fit, plain**: an epoch of ``MLP.fit``, the library's training loop (its
  second epoch: the first also converts the whole training set to floats);
* **loop, plain**: the same epoch in this script's loop (the same steps as
  ``fit``'s mini-batch loop), the yardstick for the next two;
* **loop, in line**: distort the training set, then train an epoch on it
  (``DistortedEpochs``);
* **loop, worker**: train an epoch while a worker process distorts the
  next epoch's set (``DistortedEpochs(background=True)``; two epochs, averaged);
* **augmentation alone**: distorting the 60000 digits once, no training.

and prints the medians and the two ratios against the plain loop. The
issue's bar: an epoch with ``--augment elastic`` <= 1.6x an epoch without.
The worker gains most when the second core is free; the script prints the
load average (the machine is shared, check ``uptime``).

Usage::

    python bench/augment.py [--data ../shared/data/mnist] [--kind elastic] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from nnscratch import MLP, Adam
from nnscratch import data as datasets
from nnscratch.core.augment import KINDS, make_augmenter
from nnscratch.core.prefetch import DistortedEpochs
from nnscratch.core.training import one_blas_thread

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
HIDDEN, LR, BATCH = (256, 128), 1e-3, 128


def train_epoch(model, optimizer, X, y, batch_size, rng, l2=0.0):
    """One epoch of mini-batches on pixels ``X`` (distorted or not), as ``fit`` does it.

    ``rng`` shuffles. Returns the epoch's mean cost and training accuracy.
    """
    order = rng.permutation(len(y))
    total_cost = total_correct = 0.0
    with one_blas_thread():
        for i in range(0, len(y), batch_size):
            rows = order[i:i + batch_size]
            cost, probabilities = model.loss_and_gradients(model.scale(X[rows]), y[rows], l2)
            optimizer.step(model.parameters(), model.gradients())
            total_cost += cost * len(rows)
            total_correct += np.sum(probabilities.argmax(axis=1) == y[rows])
    return total_cost / len(y), total_correct / len(y)


def timed(function, *args, **options) -> float:
    start = time.perf_counter()
    function(*args, **options)
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST IDX folder (default: %(default)s)")
    parser.add_argument("--kind", default="elastic", choices=KINDS[1:], help="the distortion (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=3, help="alternate the measurements N times; report medians")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir():
        sys.exit(f"bench: {args.data}: no MNIST folder there (give --data)")
    split = datasets.load(args.data)
    X, y = split.train.images, split.train.labels
    augmenter = make_augmenter(args.kind)
    model = MLP([784, *HIDDEN, 10], activation="relu", seed=args.seed)
    optimizer = Adam(LR)
    rng = np.random.default_rng(args.seed)

    def train(pixels):
        train_epoch(model, optimizer, pixels, y, BATCH, rng)

    def two_epochs(first, ahead):
        train(first)
        train(ahead.next())

    inline = DistortedEpochs(augmenter, X, np.random.default_rng(args.seed + 1))
    times = {"fit, plain": [], "loop, plain": [], "loop, in line": [], "loop, worker": [], "augmentation alone": []}
    print(f"load average {os.getloadavg()[0]:.2f} at the start; {augmenter}")
    for _ in range(args.repeat):
        history = model.fit(X, y, epochs=2, optimizer="adam", lr=LR, batch_size=BATCH, seed=args.seed)
        run = {"fit, plain": history.seconds[-1],
               "loop, plain": timed(train, X),
               "loop, in line": timed(lambda: train(inline.next()))}
        with DistortedEpochs(augmenter, X, np.random.default_rng(args.seed + 2), background=True) as ahead:
            first = ahead.next()  # waits for the worker to start and make the first set (untimed)
            run["loop, worker"] = timed(two_epochs, first, ahead) / 2
        with one_blas_thread():
            run["augmentation alone"] = timed(augmenter, X, np.random.default_rng(args.seed + 3))
        for name, seconds in run.items():
            times[name].append(seconds)
        print("  " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in run.items()), flush=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"784-256-128-10 relu, Adam lr {LR:g}, batch {BATCH}, one epoch of full MNIST "
          f"(median of {args.repeat}; load average {os.getloadavg()[0]:.2f} at the end):")
    for name, seconds in med.items():
        print(f"  {name:20s} {seconds:6.2f} s")
    plain = med["loop, plain"]
    print(f"epoch time ratio, {args.kind} / none: {med['loop, worker'] / plain:.2f}x with the worker process, "
          f"{med['loop, in line'] / plain:.2f}x distorted in line; the bar is 1.6x")

if __name__ == "__main__":
    main()
