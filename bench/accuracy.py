"""Reproduce the accuracy figures of the presets on full MNIST.

Runs ``nnscratch train`` as a whole process for each case, times it end to
end (start-up, reading the data, training, scoring, writing the run folder),
and reads the accuracies from the run's metrics.json:

* ``default``: the blog's network, 784-16-16-10 sigmoid, with the default
  preset's modern training (target: >= 95.0 % test accuracy);
* ``best``: ``--preset best`` (target: >= 98.5 % test in <= 180 s on 2 cores);
* ``cnn``, ``mlp-record``, ``cnn-record``: those presets (targets: >= 99.4 %
  in 15 minutes, >= 99.2 % in 20, >= 99.6 % in 30; each run takes minutes,
  so pick them with ``--only``);
* ``sample``: plain ``nnscratch train``, on the bundled 5000-digit sample
  (no ``--data``; the Quickstart's main job, target: >= 88 % test).

Wall times depend on the machine and on what else runs on it; the CPU time
(user + system, of the process and its threads) is printed beside it.

Usage::

    python bench/accuracy.py [--data /work/shared/data/mnist] [--only best] [--keep runs/accuracy]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
CASES = {
    "default": ["--hidden", "16,16", "--activation", "sigmoid"],
    "best": ["--preset", "best"],
    "cnn": ["--preset", "cnn"],
    "mlp-record": ["--preset", "mlp-record"],
    "cnn-record": ["--preset", "cnn-record"],
    "sample": [],
}
# (test accuracy at least, whole-process seconds at most), from the issues
TARGETS = {"default": (0.950, None), "best": (0.985, 180.0), "cnn": (0.994, 900.0), "mlp-record": (0.992, 1200.0),
           "cnn-record": (0.996, 1800.0), "sample": (0.88, None)}
ON_THE_SAMPLE = {"sample"}  # cases run without --data


def run_case(name: str, data: str, out: Path) -> dict:
    """Train one case in its own process; returns accuracies and times."""
    nnscratch = [sys.executable, "-c", "import sys; from nnscratch.apps.cli import main; sys.exit(main())"]
    data_flags = [] if name in ON_THE_SAMPLE else ["--data", data]
    command = [*nnscratch, "train", *data_flags, "--out", str(out), *CASES[name]]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"accuracy: {name} failed: {done.stderr.strip()}")
    metrics = json.loads((out / "metrics.json").read_text())
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"test_accuracy": metrics["test_accuracy"], "train_accuracy": metrics["train_accuracy"],
            "epochs": metrics["epochs"], "wall_seconds": wall, "cpu_seconds": cpu,
            "train_seconds": metrics["train_seconds"],
            "command": " ".join(["nnscratch train", *(["--data DATA"] if data_flags else []), *CASES[name]])}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST IDX folder (default: %(default)s)")
    parser.add_argument("--only", choices=CASES, action="append", help="run only this case (repeatable)")
    parser.add_argument("--keep", help="write the run folders here instead of a temporary folder")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)
    if not Path(args.data).is_dir() and set(args.only or CASES) - ON_THE_SAMPLE:
        sys.exit(f"accuracy: {args.data}: no MNIST folder there (give --data)")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        for name in args.only or CASES:
            r = results[name] = run_case(name, args.data, root / name)
            min_accuracy, max_seconds = TARGETS[name]
            ok = r["test_accuracy"] >= min_accuracy and (max_seconds is None or r["wall_seconds"] <= max_seconds)
            print(f"{name:8s} test {100 * r['test_accuracy']:.2f} %  train {100 * r['train_accuracy']:.2f} %  "
                  f"{r['epochs']} epochs  whole process {r['wall_seconds']:.1f} s wall, {r['cpu_seconds']:.1f} s CPU  "
                  f"(target >= {100 * min_accuracy:.1f} %" + (f" in <= {max_seconds:.0f} s" if max_seconds else "")
                  + f": {'met' if ok else 'NOT met'})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
