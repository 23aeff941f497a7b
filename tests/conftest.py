"""Shared fixtures: where the full datasets live, and small slices of digits.

The full datasets are looked for in the folder named by the environment
variable ``NNSCRATCH_DATA``, else in ``../shared/data`` beside the checkout
(always there in CI). MNIST's four IDX files may sit in that folder's
``mnist/`` or in the folder itself, as ``nnscratch download mnist --to DIR``
writes them; the 42000-row CSV sits in ``digits-42k/data.csv``.
"""
import os
from pathlib import Path

import numpy as np
import pytest

from nnscratch import data

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def data_root(environ=os.environ) -> Path:
    """``$NNSCRATCH_DATA`` if set, else ../shared/data."""
    return Path(environ["NNSCRATCH_DATA"]) if environ.get("NNSCRATCH_DATA") else SHARED_DATA


def mnist_dir(root: Path) -> Path:
    """Where MNIST's IDX files are under ``root``: ``root/mnist`` (the shared layout) or ``root`` itself."""
    return root if any(root.glob("train-images*")) else root / "mnist"


DATA_ROOT = data_root()
MNIST_DIR = mnist_dir(DATA_ROOT)
DIGITS_42K = DATA_ROOT / "digits-42k" / "data.csv"
HOW_TO_GET = {
    MNIST_DIR: "get MNIST with: nnscratch download mnist --to DIR, then run the tests with NNSCRATCH_DATA=DIR",
    DIGITS_42K: "the first 42000 MNIST training digits as a CSV (label,pixel0,...,pixel783) in "
                "DIR/digits-42k/data.csv, with NNSCRATCH_DATA=DIR (nnscratch.data.save_csv writes one)",
}


def need(path: Path) -> Path:
    """``path``, or skip the test, saying how to get the dataset (see the module's docstring)."""
    present = any(path.glob("train-images*")) if path == MNIST_DIR else path.exists()
    if not present:
        pytest.skip(f"needs {path}: {HOW_TO_GET.get(path, 'a full dataset')} "
                    "(or ../shared/data beside the checkout, as in CI)")
    return path


@pytest.fixture(scope="session")
def sample_split():
    """The bundled sample, split 4000 train / 1000 test."""
    return data.load()


@pytest.fixture(scope="session")
def mnist_split():
    """Full MNIST (60000 / 10000), or skip where ../shared/data is absent."""
    return data.load(need(MNIST_DIR))


@pytest.fixture
def tiny_dataset():
    """200 random 'digits' with labels: enough to exercise code, not to learn."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (200, 784), dtype=np.uint8)
    return data.Dataset(images, rng.integers(0, 10, 200).astype(np.uint8), "tiny")


def widths(model) -> list[int]:
    """The widths of a model's Dense chain, inputs first: [784, 16, 16, 10] for the blog's network."""
    from nnscratch.core.layers import Dense

    dense = [layer for layer in model.network.leaves() if isinstance(layer, Dense)]
    return [dense[0].fan_in, *(layer.fan_out for layer in dense)]


def mlp_model(sizes, seed=0, activation="sigmoid", init=None, dropout=0.0, input_scale=1 / 255, **training):
    """A Classifier around ``nnscratch.mlp(...)``: the short way to an MLP in tests."""
    from nnscratch import Classifier, mlp

    network = mlp(sizes, activation=activation, init=init, dropout=dropout, seed=seed, input_scale=input_scale)
    return Classifier(network, seed=seed, **training)


def interrupt_at_epoch(monkeypatch, n: int) -> None:
    """Make training stop as Ctrl-C would when epoch ``n`` starts (``monkeypatch.undo()`` lifts it)."""
    from nnscratch.core.training import Trainer

    real, calls = Trainer.train_epoch, []

    def train_epoch(self):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return real(self)
    monkeypatch.setattr(Trainer, "train_epoch", train_epoch)
