"""How well a network trained on MNIST reads digits in photos and in printed fonts.

    python bench/image_accuracy.py [--model RUN_OR_MODEL] [--data /work/shared/data/mnist] [--n 1000]

Without --model it trains the network the tests use (784-256-10 relu, Adam,
6 epochs) with ``nnscratch train``. It prints, for the same MNIST test digits,
the accuracy on the raw 28x28 digits (the peer) and on photo-like pictures of
them (PNG and JPEG) after :func:`nnscratch.files.images.digit_from_image`, then the
accuracy on digits printed in each installed font. The pictures are built by
tests/digit_pictures.py, the same code as the tests.
"""
from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

import nnscratch  # noqa: E402
from digit_pictures import font_digits, photo_like  # noqa: E402
from nnscratch import data  # noqa: E402
from nnscratch.files.images import digit_from_image  # noqa: E402

TRAIN_FLAGS = ["--hidden", "256", "--activation", "relu", "--init", "he", "--optimizer", "adam", "--lr", "1e-3",
               "--batch-size", "128", "--schedule", "cosine", "--epochs", "6"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model file or run folder (default: train one)")
    parser.add_argument("--data", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--n", type=int, default=1000, help="photo-like pictures to make")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()
    split = data.load(args.data)
    if args.model is None:
        args.model = str(Path(tempfile.mkdtemp()) / "run")
        print(f"training: nnscratch train --data {args.data} {' '.join(TRAIN_FLAGS)} --out {args.model}")
        subprocess.run([sys.executable, "-m", "nnscratch", "train", "--data", args.data, "--out", args.model,
                        *TRAIN_FLAGS], check=True, stdout=subprocess.DEVNULL)
    model = nnscratch.load(args.model)
    print(f"model {args.model}: {model.network!r}, "
          f"MNIST test accuracy {100 * model.score(split.test.images, split.test.labels):.2f} %")

    rng = np.random.default_rng(args.seed)
    rows = rng.choice(len(split.test), args.n, replace=False)
    labels = split.test.labels[rows]
    raw = model.predict(split.test.images[rows]) == labels
    seen = {"PNG": [], "JPEG": []}
    for k, row in enumerate(rows):
        kind = "JPEG" if k % 2 else "PNG"
        encoded = io.BytesIO()
        photo_like(split.test.images[row], rng).save(encoded, kind, quality=85, compress_level=1)
        seen[kind].append(model.predict(digit_from_image(encoded.getvalue()))[0] == labels[k])
    photo = np.array(seen["PNG"] + seen["JPEG"])
    print(f"{args.n} MNIST test digits: raw 28x28 {100 * raw.mean():.1f} %, as photo-like pictures "
          f"{100 * photo.mean():.1f} % (PNG {100 * np.mean(seen['PNG']):.1f} %, "
          f"JPEG {100 * np.mean(seen['JPEG']):.1f} %)")

    pictures = font_digits()
    predicted = model.predict(np.stack([digit_from_image(p) for _, _, p in pictures]))
    fonts = sorted({name for name, _, _ in pictures})
    print(f"printed digits, {len(fonts)} fonts x 10: "
          f"{100 * np.mean(predicted == [d for _, d, _ in pictures]):.1f} %")
    for font in fonts:
        misread = [f"{d}->{p}" for (name, d, _), p in zip(pictures, predicted) if name == font and d != p]
        print(f"  {font:30s} {10 - len(misread)}/10  {' '.join(misread)}")


if __name__ == "__main__":
    main()
