"""Shared fixtures: where the full datasets live, and small slices of digits."""
from pathlib import Path

import numpy as np
import pytest

from nnscratch import data

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
MNIST_DIR = SHARED_DATA / "mnist"
DIGITS_42K = SHARED_DATA / "digits-42k" / "data.csv"


def need(path: Path) -> Path:
    """``path``, or skip the test: full datasets live in ../shared/data (always there in CI)."""
    if not path.exists():
        pytest.skip(f"needs {path} (the shared datasets beside the checkout; CI has them)")
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
