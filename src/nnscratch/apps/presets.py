"""Named recipes: a network and a way to train it.

* ``seed``: the blog's experiment exactly. 784-16-16-10, sigmoid, softmax,
  cross-entropy, every weight and bias uniform in [-0.5, 0.5), raw 0-255
  pixels, full-batch gradient descent (gradients averaged over m) with
  learning rate 0.8 for 500 epochs.
* ``default``: the blog's architecture trained the modern way: pixels scaled
  to [0, 1], Xavier initialisation, Adam (lr 0.01, cosine decay) on
  mini-batches of 64 for 30 epochs, and a little L2 (1e-4), which on full
  MNIST lifts test accuracy from 94.7 % to 96.3 % (16 neurons overfit).
* ``best``: the most accurate MLP we train on full MNIST within 3 minutes on
  2 cores: 784-512-256-10 ReLU with He initialisation and dropout 0.2 after
  each hidden layer, Adam (lr 2e-3, cosine decay to 0) on mini-batches of
  256 for 15 epochs; about 98.7 % test accuracy in under a minute of CPU
  (see docs/best.md for the measured figures and bench/accuracy.py to rerun them).
  Batches of 256 rather than 128 halve the number of Adam updates, whose cost
  grows with the weights (535k here), for the same number of multiplications.

* ``cnn``: a convolutional network for full MNIST: two 5x5 convolutions (32
  and 64 filters) each with batch normalisation, ReLU and 2x2 max pooling,
  then 256 neurons with batch normalisation, ReLU and dropout 0.3; He
  initialisation, Adam (lr 1e-3, cosine decay) on mini-batches of 128 for
  8 epochs, every training digit shifted by up to 2 pixels afresh each epoch
  (without the shifts it learns the training digits by heart: 99.24-99.32 %;
  with whole-pixel shifts 99.52 %; docs/cnn.md).

* ``mlp-record``: Simard et al.'s (2003) way to the MLP record: an MLP
  trained on elastically distorted digits. 784-800-800-10 ReLU with He
  initialisation, Adam (lr 1e-3, cosine decay) on mini-batches of 128 for 40
  epochs, every epoch on new elastic distortions (sigma 4, alpha 34, no
  rotation, scaling, shear or shift); see docs/best.md.

* ``cnn-record``: the ``cnn`` network trained longer on more varied digits:
  30 epochs (Adam lr 1e-3, cosine decay, batch 128); each epoch, half the
  training digits (drawn afresh) are rotated within +-12 degrees, each axis
  scaled within +-12 %, slanted by a shear within +-0.2 and shifted within
  +-2.5 pixels (sampled bilinearly), the other half left sharp as the test
  digits are. 99.60 % test in one run of 27.6 minutes whole process (20
  epochs: 99.57 %, 15: 99.49 %); see docs/best.md for the runs.

A preset is two dicts: the network (``layers``, a ``--layers`` text, or the
MLP short form ``hidden``/``activation``/``dropout``; ``init``; ``input_scale``)
and the keyword arguments of :class:`~nnscratch.core.training.TrainConfig`.
Command-line flags override either.
"""
from __future__ import annotations

CNN = {"layers": "conv 32 5x5, batchnorm, relu, maxpool 2, conv 64 5x5, batchnorm, relu, maxpool 2, "
                 "flatten, dense 256, batchnorm, relu, dropout 0.3",
       "hidden": [], "activation": "relu", "init": "he", "dropout": 0.0, "input_scale": 1 / 255}  # cnn, cnn-record

PRESETS = {
    "seed": {
        "model": {"layers": None, "hidden": [16, 16], "activation": "sigmoid", "init": "uniform", "dropout": 0.0,
                  "input_scale": 1.0},
        "train": {"epochs": 500, "optimizer": "gd", "lr": 0.8, "batch_size": None,
                  "schedule": "constant", "l2": 0.0},
    },
    "default": {
        "model": {"layers": None, "hidden": [16, 16], "activation": "sigmoid", "init": "xavier", "dropout": 0.0,
                  "input_scale": 1 / 255},
        "train": {"epochs": 30, "optimizer": "adam", "lr": 0.01, "batch_size": 64,
                  "schedule": "cosine", "l2": 1e-4},
    },
    "best": {
        "model": {"layers": None, "hidden": [512, 256], "activation": "relu", "init": "he", "dropout": 0.2,
                  "input_scale": 1 / 255},
        "train": {"epochs": 15, "optimizer": "adam", "lr": 2e-3, "batch_size": 256,
                  "schedule": "cosine", "l2": 0.0},
    },
    "cnn": {
        "model": CNN,
        "train": {"epochs": 8, "optimizer": "adam", "lr": 1e-3, "batch_size": 128,
                  "schedule": "cosine", "l2": 0.0, "augment": "affine",
                  "distortion": {"rotate": 0.0, "scale": 0.0, "shear": 0.0, "shift": 2.0}},
    },
    "mlp-record": {
        "model": {"layers": None, "hidden": [800, 800], "activation": "relu", "init": "he", "dropout": 0.0,
                  "input_scale": 1 / 255},
        "train": {"epochs": 40, "optimizer": "adam", "lr": 1e-3, "batch_size": 128, "schedule": "cosine",
                  "l2": 0.0, "augment": "elastic",
                  "distortion": {"rotate": 0.0, "scale": 0.0, "shear": 0.0, "shift": 0.0, "sigma": 4.0, "alpha": 34.0}},
    },
    "cnn-record": {
        "model": CNN,
        "train": {"epochs": 30, "optimizer": "adam", "lr": 1e-3, "batch_size": 128,
                  "schedule": "cosine", "l2": 0.0, "augment": "affine",
                  "distortion": {"rotate": 12.0, "scale": 0.12, "shear": 0.2, "shift": 2.5, "keep": 0.5}},
    },
}


def preset(name: str) -> dict:
    """A copy of preset ``name`` (so callers may change it freely)."""
    recipe = PRESETS[name]
    return {"model": dict(recipe["model"]), "train": dict(recipe["train"])}
