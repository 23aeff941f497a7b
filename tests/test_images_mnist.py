"""A network trained on MNIST reads digits in photos and in printed fonts.

Needs full MNIST (``/work/shared/data/mnist``, i.e. ``../shared/data`` beside
the repository); skipped when it is absent. The network is trained once per
session by ``nnscratch train``: 784-256-10 relu, Adam, 6 epochs (about 10 s).
"""
from __future__ import annotations

import io

import numpy as np
import pytest

from nnscratch.files.images import digit_from_image

from .conftest import MNIST_DIR
from .digit_pictures import font_digits, photo_like
from .webtools import train_cli


@pytest.fixture(scope="session")
def mnist(mnist_split):
    return mnist_split  # from conftest.py: full MNIST, or skip


@pytest.fixture(scope="session")
def mnist_model(mnist, tmp_path_factory):
    import nnscratch

    run = train_cli(tmp_path_factory.mktemp("mnist") / "run", "--data", str(MNIST_DIR), "--hidden", "256",
                    "--activation", "relu", "--init", "he", "--optimizer", "adam", "--lr", "1e-3",
                    "--batch-size", "128", "--schedule", "cosine", "--epochs", "6")
    net = nnscratch.load(run)
    assert net.score(mnist.test.images, mnist.test.labels) > 0.97
    return net


def test_photo_like_digits_are_read_at_95_percent(mnist, mnist_model):
    """MNIST test digits enlarged, off-centre, dark on light paper, blurred, noisy; PNG and JPEG."""
    rng = np.random.default_rng(2024)
    rows = rng.choice(len(mnist.test), 200, replace=False)
    pixels = []
    for k, row in enumerate(rows):
        picture = photo_like(mnist.test.images[row], rng)
        encoded = io.BytesIO()
        picture.save(encoded, "JPEG" if k % 2 else "PNG", quality=85, compress_level=1)
        pixels.append(digit_from_image(encoded.getvalue()))
    accuracy = np.mean(mnist_model.predict(np.stack(pixels)) == mnist.test.labels[rows])
    assert accuracy >= 0.95, f"photo-like accuracy {accuracy:.3f}"


def test_printed_digits_are_read_at_85_percent(mnist_model):
    """The digits 0-9 printed in Pillow's own font and every DejaVu and Liberation font installed."""
    pictures = font_digits()
    truetype = {font for font, _, _ in pictures} - {"pillow-default"}
    if len(truetype) < 3:  # Pillow's own font alone is 10 pictures: too few to measure anything
        pytest.skip(f"only {len(truetype)} TrueType fonts found under /usr/share/fonts/truetype "
                    "(apt-get install fonts-dejavu-core fonts-liberation)")
    pixels = np.stack([digit_from_image(picture) for _, _, picture in pictures])
    labels = np.array([digit for _, digit, _ in pictures])
    predicted = mnist_model.predict(pixels)
    misread = [f"{font} {d}->{p}" for (font, d, _), p in zip(pictures, predicted) if p != d]
    accuracy = np.mean(predicted == labels)
    assert accuracy >= 0.85, f"font accuracy {accuracy:.3f} over {len(labels)} digits; misread: {misread}"
