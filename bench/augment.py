"""What distorting the training digits costs: an epoch with augmentation against one without.

The network of the issue's bar: 784-256-128-10 ReLU, Adam lr 1e-3, batches of
128, full MNIST (469 batches an epoch). In one run, alternating ``--repeat``
times, it measures:

* **fit, plain**: an epoch of ``MLP.fit``, the library's training loop (its
  second epoch: the first also converts the whole training set to floats);
* **loop, plain**: the same epoch in this script's loop (the same steps as
  ``fit``'s mini-batch loop), the yardstick for the next two;
* **loop, augmented**: that loop fed distorted batches, the next ones being
  distorted in a background thread while the current one trains
  (``nnscratch.core.prefetch``);
* **augmentation alone**: distorting the 469 batches of an epoch one after
  the other, no training.

and prints the medians and two ratios against the plain loop: the augmented
loop (with prefetching), and plain loop + augmentation alone (distorting in
line, without a thread). The issue's bar: an epoch with ``--augment
elastic`` <= 1.6x an epoch without. Prefetching gains only when the second
core is free; on a busy machine the two threads fight and in line is better
(check ``uptime``; the script prints the load average).

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
from nnscratch.core.prefetch import prefetch
from nnscratch.core.training import one_blas_thread

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
HIDDEN, LR, BATCH = (256, 128), 1e-3, 128


def train_epoch(model, optimizer, X, y, batch_size, rng, augmenter=None, augment_rng=None, l2=0.0, ahead=2):
    """One epoch of mini-batches, as ``fit`` does it; with ``augmenter``, on distorted digits.

    ``rng`` shuffles; ``augment_rng`` (a generator of its own) draws the
    distortions, ``ahead`` batches early in a background thread, or in line
    with ``ahead=0`` (the same distortions either way). Returns the epoch's
    mean cost and training accuracy.
    """
    order = rng.permutation(len(y))
    batches = [order[i:i + batch_size] for i in range(0, len(y), batch_size)]
    if augmenter is None:
        images = (X[rows] for rows in batches)
    else:
        images = prefetch(lambda rows: augmenter(X[rows], augment_rng), batches, ahead)
    total_cost = total_correct = 0.0
    with one_blas_thread():
        for rows, raw in zip(batches, images):
            cost, probabilities = model.loss_and_gradients(model.scale(raw), y[rows], l2)
            optimizer.step(model.parameters(), model.gradients())
            total_cost += cost * len(rows)
            total_correct += np.sum(probabilities.argmax(axis=1) == y[rows])
    return total_cost / len(y), total_correct / len(y)


def augment_alone(augmenter, X, batch_size, rng):
    """Distort every batch of an epoch, one after the other (as a loop without prefetching would)."""
    order = rng.permutation(len(X))
    with one_blas_thread():
        for i in range(0, len(X), batch_size):
            augmenter(X[order[i:i + batch_size]], rng)


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
    rng, augment_rng = np.random.default_rng(args.seed), np.random.default_rng(args.seed + 1)
    times = {"fit, plain": [], "loop, plain": [], "loop, augmented": [], "augmentation alone": []}
    print(f"load average {os.getloadavg()[0]:.2f} at the start; {augmenter}")
    for _ in range(args.repeat):
        history = model.fit(X, y, epochs=2, optimizer="adam", lr=LR, batch_size=BATCH, seed=args.seed)
        run = {
            "fit, plain": history.seconds[-1],
            "loop, plain": timed(train_epoch, model, optimizer, X, y, BATCH, rng),
            "loop, augmented": timed(train_epoch, model, optimizer, X, y, BATCH, rng, augmenter, augment_rng),
            "augmentation alone": timed(augment_alone, augmenter, X, BATCH, augment_rng),
        }
        for name, seconds in run.items():
            times[name].append(seconds)
        print("  " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in run.items()), flush=True)
    med = {name: statistics.median(values) for name, values in times.items()}
    print(f"784-256-128-10 relu, Adam lr {LR:g}, batch {BATCH}, one epoch of full MNIST "
          f"(median of {args.repeat}; load average {os.getloadavg()[0]:.2f} at the end):")
    for name, seconds in med.items():
        print(f"  {name:20s} {seconds:6.2f} s")
    plain = med["loop, plain"]
    print(f"epoch time ratio, {args.kind} / none: {med['loop, augmented'] / plain:.2f}x with prefetching, "
          f"{(plain + med['augmentation alone']) / plain:.2f}x distorted in line; the bar is 1.6x")

if __name__ == "__main__":
    main()
