"""A recipe for the MLP record on MNIST: a plain MLP trained on distorted digits.

Simard et al. (2003) reached 99.3 % test accuracy with a 784-800-10 MLP
trained on elastically distorted digits (98.4 % without). This script trains
such a network with nnscratch's layers, Adam and a cosine learning-rate
schedule, on digits distorted afresh every epoch
(:mod:`nnscratch.core.augment`: the whole set at the start of each epoch),
and prints the test accuracy and the whole process's time. It uses its own
epoch loop (``bench/augment.py``'s ``train_epoch``, the same steps as
``MLP.fit``) until the training loop takes an augmenter itself. The test set
is scored once, at the end (``--watch`` prints it every few epochs too, for
exploring; it never steers training).

Usage::

    python bench/mlp_record.py [--data ../shared/data/mnist] [--hidden 800,800] [--epochs 40] ...
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

START = time.perf_counter()

import numpy as np
from augment import DEFAULT_DATA, train_epoch  # bench/augment.py, beside this file

from nnscratch import MLP, Adam, Dropout
from nnscratch import data as datasets
from nnscratch.core.augment import KINDS, make_augmenter
from nnscratch.core.optimizers import SCHEDULES
from nnscratch.core.prefetch import DistortedEpochs

RECIPE = {"rotate": 0.0, "scale": 0.0, "shear": 0.0, "shift": 0.0, "sigma": 4.0, "alpha": 34.0}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST IDX folder (default: %(default)s)")
    parser.add_argument("--hidden", default="800,800", help="hidden layer widths (default: %(default)s)")
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--schedule", default="cosine", choices=SCHEDULES)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--l2", type=float, default=0.0)
    parser.add_argument("--augment", default="elastic", choices=KINDS)
    # The recipe: Simard's elastic distortion alone (no rotation, scaling, shear or shift).
    for name, default in RECIPE.items():
        parser.add_argument(f"--{name}", type=float, default=default, help="the distortion's %(dest)s (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--background", action="store_true",
                        help="distort the next epoch's digits in a worker process (pays only with an idle core)")
    parser.add_argument("--watch", type=int, default=0, help="also print the test accuracy every N epochs")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.data):
        sys.exit(f"bench: {args.data}: no MNIST folder there (give --data)")
    options = {name: getattr(args, name) for name in RECIPE} if args.augment != "none" else {}
    augmenter = make_augmenter(args.augment, **options)
    split = datasets.load(args.data)
    X, y = split.train.images, split.train.labels.astype(np.intp)
    hidden = [int(h) for h in args.hidden.split(",")]
    model = MLP([784, *hidden, 10], activation="relu", dropout=args.dropout, seed=args.seed)
    optimizer = Adam(args.lr)
    # Three streams of their own: shuffling, dropout, distortions.
    rng, dropout_rng, augment_rng = (np.random.default_rng([args.seed, k]) for k in range(3))
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layer.rng = dropout_rng
    print(f"{model}, dropout {args.dropout}, {augmenter}, Adam lr {args.lr:g} {args.schedule}, "
          f"batch {args.batch_size}, L2 {args.l2:g}, {args.epochs} epochs; load average {os.getloadavg()[0]:.2f}",
          flush=True)
    history = []
    with DistortedEpochs(augmenter, X, augment_rng, background=args.background) as epochs:
        for epoch in range(args.epochs):
            optimizer.lr = args.lr * SCHEDULES[args.schedule](epoch, args.epochs)
            start = time.perf_counter()
            cost, accuracy = train_epoch(model, optimizer, epochs.next(), y, args.batch_size, rng, args.l2)
            seconds = time.perf_counter() - start
            line = f"epoch {epoch + 1:3d}: cost {cost:.4f}, train (distorted) {100 * accuracy:.2f} %, {seconds:.1f} s"
            if args.watch and ((epoch + 1) % args.watch == 0):
                line += f", test {100 * model.score(split.test.images, split.test.labels):.2f} %"
            history.append({"cost": cost, "train_accuracy": accuracy, "seconds": seconds})
            print(line, flush=True)
    test = model.score(split.test.images, split.test.labels)
    train = model.score(X, y)
    whole = time.perf_counter() - START
    print(f"test accuracy {100 * test:.2f} %, train accuracy (undistorted) {100 * train:.2f} %, "
          f"whole process {whole / 60:.1f} min; load average {os.getloadavg()[0]:.2f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump({"args": vars(args), "augmenter": augmenter.config(), "test_accuracy": test,
                       "train_accuracy": train, "whole_seconds": whole, "history": history}, out, indent=2)


if __name__ == "__main__":
    main()
