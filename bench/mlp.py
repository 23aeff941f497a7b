"""nnscratch against PyTorch on the CPU: the same MLP, the same data, one run.

The network is 784-256-128-10 with ReLU, trained with Adam (lr 1e-3) on
mini-batches of 128 for 5 epochs on full MNIST (60000 train / 10000 test),
pixels scaled to [0, 1]. Each framework runs as its own whole process
(``python bench/mlp.py --worker nnscratch|torch``), timed end to end from
the parent: interpreter start, imports, reading the data, training and
scoring. The workers also report their training-loop time.

The figure that matters is the *ratio* of the two times measured in the same
run, on the same machine: absolute seconds depend on the machine and on
whatever else it is doing. ``--repeat N`` alternates the two N times and
reports the median of each.

Threads: PyTorch runs at its own default thread count (one per core), as
its users run it; nnscratch runs its mini-batch products on one BLAS thread
(see ``nnscratch.core.training.one_blas_thread``). ``--torch-threads N`` pins
PyTorch to N threads, for curiosity only: the figures we quote are against
the default.

Usage::

    pip install -e '.[bench]'        # torch==2.13.0, CPU build
    python bench/mlp.py [--data /work/shared/data/mnist] [--repeat 3]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
HIDDEN, LR, BATCH, EPOCHS = (256, 128), 1e-3, 128, 5


def load(data):
    """Full MNIST as uint8 arrays, read by nnscratch's loader (for both workers, so the cost is equal)."""
    from nnscratch import data as datasets

    split = datasets.load(data)
    return split.train.images, split.train.labels, split.test.images, split.test.labels


def run_nnscratch(data, seed, threads):
    """nnscratch's own way: ``fit`` runs mini-batches on one BLAS thread (see training.one_blas_thread)."""
    from nnscratch import Classifier, mlp
    from nnscratch.core import kernels

    X, y, X_test, y_test = load(data)
    model = Classifier(mlp([784, *HIDDEN, 10], activation="relu", seed=seed), epochs=EPOCHS, optimizer="adam",
                       lr=LR, batch_size=BATCH, seed=seed)
    if kernels.enabled():  # Numba imported before the clock, as the PyTorch worker imports torch before its own
        import numba  # noqa: F401
    start = time.perf_counter()
    model.fit(X, y)
    train_seconds = time.perf_counter() - start
    return train_seconds, model.score(X_test, y_test)


def run_torch(data, seed, threads):
    """The idiomatic PyTorch loop: tensors in memory, a fresh permutation per epoch."""
    import torch
    from torch import nn

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    X, y, X_test, y_test = load(data)
    X = torch.from_numpy(X).float().div_(255)
    y = torch.from_numpy(y).long()
    X_test = torch.from_numpy(X_test).float().div_(255)
    y_test = torch.from_numpy(y_test).long()
    model = nn.Sequential(nn.Linear(784, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                          nn.Linear(HIDDEN[1], 10))
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(EPOCHS):
        order = torch.randperm(len(X))
        for i in range(0, len(X), BATCH):
            rows = order[i:i + BATCH]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[rows]), y[rows])
            loss.backward()
            optimizer.step()
    train_seconds = time.perf_counter() - start
    with torch.no_grad():
        accuracy = (model(X_test).argmax(1) == y_test).float().mean().item()
    return train_seconds, accuracy


WORKERS = {"nnscratch": run_nnscratch, "torch": run_torch}


def measure(name, data, seed, threads):
    """Run one worker as a whole process; returns its wall time and its report."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, __file__, "--worker", name, "--data", str(data), "--seed", str(seed),
                           "--torch-threads", str(threads)],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench: the {name} worker failed:\n{done.stderr.strip()}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return {"wall_seconds": wall, **report}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST IDX folder (default: %(default)s)")
    parser.add_argument("--repeat", type=int, default=1, help="alternate the two workers N times; report medians")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="PyTorch's intra-op threads; 0 (the default) leaves PyTorch's own default, "
                        "one per core, as its users run it")
    parser.add_argument("--worker", choices=WORKERS, help=argparse.SUPPRESS)
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if args.worker:
        train_seconds, accuracy = WORKERS[args.worker](args.data, args.seed, args.torch_threads)
        print(json.dumps({"train_seconds": train_seconds, "test_accuracy": accuracy}))
        return
    if not Path(args.data).is_dir():
        sys.exit(f"bench: {args.data}: no MNIST folder there (give --data)")
    if importlib.util.find_spec("torch") is None:
        sys.exit("bench: PyTorch is not installed; pip install -e '.[bench]' (torch==2.13.0, CPU build)")
    runs = {name: [] for name in WORKERS}
    for _ in range(args.repeat):
        for name in WORKERS:
            runs[name].append(measure(name, args.data, args.seed, args.torch_threads))
            r = runs[name][-1]
            print(f"  {name:9s} whole process {r['wall_seconds']:6.2f} s, training loop {r['train_seconds']:6.2f} s, "
                  f"test accuracy {100 * r['test_accuracy']:.2f} %", flush=True)
    med = {name: {key: statistics.median(r[key] for r in rs) for key in rs[0]} for name, rs in runs.items()}
    ratio = med["nnscratch"]["wall_seconds"] / med["torch"]["wall_seconds"]
    loop_ratio = med["nnscratch"]["train_seconds"] / med["torch"]["train_seconds"]
    threads = f"{args.torch_threads} thread(s)" if args.torch_threads else "default threads"
    print(f"784-256-128-10 relu, Adam lr {LR:g}, batch {BATCH}, {EPOCHS} epochs, full MNIST, "
          f"torch on {threads} (median of {args.repeat}):")
    for name, m in med.items():
        print(f"  {name:9s} whole process {m['wall_seconds']:6.2f} s, training loop {m['train_seconds']:6.2f} s, "
              f"test accuracy {100 * m['test_accuracy']:.2f} %")
    print(f"time ratio nnscratch / torch: whole process {ratio:.2f}x, training loop {loop_ratio:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "median": med, "ratio_whole_process": ratio,
                                               "ratio_training_loop": loop_ratio}, indent=2) + "\n")


if __name__ == "__main__":
    main()
