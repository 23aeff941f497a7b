"""Check the Done-when of the ONNX export (#14) on the 10000 MNIST test digits.

For each case, a network trained on full MNIST is exported with
``nnscratch export``, and onnxruntime's probabilities on the 10000 test
digits are compared with nnscratch's own (``predict_proba``):

* ``seed``: the seed preset's MLP (the blog's 784-16-16-10 sigmoid on raw
  0-255 pixels, full-batch gradient descent);
* ``cnn``: a small convolutional network with batch normalisation (needs
  the convolutional layers of #9).

Targets: the largest difference between the two runtimes' probabilities is
<= 1e-4, and they give the same digit for >= 9999 of the 10000.

Each network is trained with ``nnscratch train`` in its own process, unless
``--seed-model`` / ``--cnn-model`` name a run folder or model file already
trained. Needs the ``onnx`` and ``onnxruntime`` packages (``pip install -e '.[test]'``).

Usage::

    python bench/onnx_parity.py [--data ../shared/data/mnist] [--seed-epochs 500] [--cnn-epochs 1]
                                [--only seed] [--seed-model runs/seed] [--keep runs/onnx-parity]
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist"
CNN_LAYERS = "conv 8 5x5, batchnorm, relu, maxpool 2, conv 16 3x3, relu, maxpool 2, flatten, dense 64, relu"
MAX_DIFFERENCE, MIN_SAME = 1e-4, 9999
NNSCRATCH = [sys.executable, "-c", "import sys; from nnscratch.apps.cli import main; sys.exit(main())"]


def train_command(case: str, data: str, out: Path, epochs: int) -> list[str]:
    if case == "seed":
        flags = ["--preset", "seed"]
    else:
        flags = ["--layers", CNN_LAYERS]
    return [*NNSCRATCH, "train", "--data", data, "--out", str(out), "--epochs", str(epochs), *flags]


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"onnx_parity: {' '.join(command[3:])} failed: {done.stderr.strip()}")


def compare(model_path: Path, onnx_path: Path, images: np.ndarray, labels: np.ndarray) -> dict:
    """Export ``model_path`` with the CLI, then both runtimes' answers on ``images``."""
    import onnxruntime

    import nnscratch

    run([*NNSCRATCH, "export", str(model_path), str(onnx_path)])
    ours = nnscratch.load(model_path).predict_proba(images)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    theirs = session.run(["probabilities"], {"pixels": images.astype(np.float32)})[0]
    return {"max_difference": float(np.abs(theirs - ours).max()),
            "same_digit": int(np.count_nonzero(theirs.argmax(axis=1) == ours.argmax(axis=1))),
            "accuracy_nnscratch": float(np.mean(ours.argmax(axis=1) == labels)),
            "accuracy_onnxruntime": float(np.mean(theirs.argmax(axis=1) == labels)),
            "digits": len(images)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="MNIST IDX folder (default: %(default)s)")
    parser.add_argument("--only", choices=["seed", "cnn"], action="append", help="run only this case (repeatable)")
    parser.add_argument("--seed-epochs", type=int, default=500, help="epochs of the seed preset (default: 500)")
    parser.add_argument("--cnn-epochs", type=int, default=1, help="epochs of the CNN (default: 1)")
    parser.add_argument("--seed-model", help="a trained seed-preset run folder or model file: skip its training")
    parser.add_argument("--cnn-model", help="a trained CNN run folder or model file: skip its training")
    parser.add_argument("--keep", help="write the run folders and .onnx files here instead of a temporary folder")
    args = parser.parse_args(argv)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        parser.exit(2, "onnx_parity: needs onnx and onnxruntime: pip install -e '.[test]'\n")
    if not Path(args.data).is_dir():
        parser.exit(2, f"onnx_parity: {args.data}: no MNIST folder there (give --data)\n")
    import nnscratch

    test = nnscratch.data.load(args.data).test
    given = {"seed": args.seed_model, "cnn": args.cnn_model}
    epochs = {"seed": args.seed_epochs, "cnn": args.cnn_epochs}
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        root.mkdir(parents=True, exist_ok=True)
        for case in args.only or ["seed", "cnn"]:
            model_path = Path(given[case] or root / case)
            if not given[case]:
                run(train_command(case, args.data, model_path, epochs[case]))
            r = compare(model_path, root / f"{case}.onnx", test.images, test.labels)
            ok = r["max_difference"] <= MAX_DIFFERENCE and r["same_digit"] >= MIN_SAME
            failed |= not ok
            trained = f"given {given[case]}" if given[case] else f"{epochs[case]} epochs"
            print(f"{case:5s} ({trained}): max |p_onnxruntime - p_nnscratch| = {r['max_difference']:.2e}, "
                  f"same digit {r['same_digit']}/{r['digits']}, test accuracy {100 * r['accuracy_nnscratch']:.2f} % "
                  f"(nnscratch) / {100 * r['accuracy_onnxruntime']:.2f} % (onnxruntime)  "
                  f"(target <= {MAX_DIFFERENCE:.0e} and >= {MIN_SAME}: {'met' if ok else 'NOT met'})", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
