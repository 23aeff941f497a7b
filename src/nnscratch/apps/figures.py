"""Figures for looking at a trained network: its first-layer weights, its
confusion matrix, the digits it got wrong, and the distorted digits it
trained on. Each is written atomically
with :func:`nnscratch.reports.save_figure`.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .reports import plt, save_figure

SIDE = 28  # MNIST digits are 28x28


def _grid(n: int, columns: int | None = None) -> tuple[int, int]:
    """Rows and columns of a near-square grid for ``n`` small pictures."""
    columns = columns or max(1, math.ceil(math.sqrt(n)))
    return max(1, math.ceil(n / columns)), columns


def used_pixels(images) -> np.ndarray | None:
    """Which of the 784 pixels carry ink in at least one of ``images`` (None: no images given).

    MNIST's outer border is blank in every digit, so the weights from those
    pixels never receive a gradient: they keep their random initial values
    (shrunk by weight decay, if any) and say nothing about what was learned.
    """
    if images is None or len(images) == 0:
        return None
    return np.asarray(images).reshape(len(images), -1).any(axis=0)


def strongest_neurons(W: np.ndarray, n: int, used: np.ndarray | None = None) -> np.ndarray:
    """The columns of the ``n`` neurons with the largest weights on the used pixels, strongest first.

    "Largest" is the length (Euclidean norm) of a neuron's weight vector: the
    neurons that react most to ink, whose pictures are the least noisy.
    """
    norms = np.linalg.norm(W if used is None else W[used], axis=0)
    return np.argsort(-norms, kind="stable")[:n]


def tile_mosaic(tiles: np.ndarray, columns: int) -> np.ndarray:
    """Small pictures (n, height, width) in one array, each scaled to [-1, 1] by its own largest value.

    One pixel of NaN separates the tiles (drawn as the colour map's "bad" colour).
    """
    n, h, w = tiles.shape
    rows = math.ceil(n / columns)
    mosaic = np.full((rows * (h + 1) - 1, columns * (w + 1) - 1), np.nan)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        mosaic[r * (h + 1):r * (h + 1) + h, c * (w + 1):c * (w + 1) + w] = tile / (np.abs(tile).max() or 1)
    return mosaic


def weight_mosaic(W: np.ndarray, columns: int, used: np.ndarray | None = None) -> np.ndarray:
    """Neurons' weight columns as 28x28 tiles in one array, NaN between tiles.

    Each tile is scaled to [-1, 1] by its largest weight on a ``used`` pixel
    (every pixel when ``used`` is None); pixels never used are drawn as 0, so
    their leftover random weights neither set the scale nor add noise.
    """
    columns_used = W if used is None else np.where(used[:, None], W, 0.0)
    return tile_mosaic(columns_used.T.reshape(-1, SIDE, SIDE), columns)


def first_layer_tiles(network, limit: int) -> np.ndarray | None:
    """What the first layer looks for as pictures: 28x28 weights of a Dense layer, or convolution kernels."""
    W = pixel_weights(network)
    if W is not None:
        return W[:, :limit].T.reshape(-1, SIDE, SIDE)
    kernels = first_kernels(network)
    return None if kernels is None else kernels[:limit, 0]


def pixel_weights(network) -> np.ndarray | None:
    """The first layer's weights (784, neurons), if it is a Dense layer that reads the pixels; else None."""
    from ..core.fast import first_dense

    dense = first_dense(network)
    return dense.W if dense is not None and dense.fan_in == SIDE * SIDE else None


def plot_weights(model, path, limit: int = 64, images=None) -> bool:
    """Each first-layer neuron's 784 input weights drawn as a 28x28 picture.

    Red pixels push the neuron up, blue ones push it down; each picture has
    its own colour scale, centred on zero. ``images`` are the digits the
    network learned from (or is scored on): pixels blank in all of them are
    left white and do not set the scale (see :func:`used_pixels`). Layers
    wider than ``limit`` show the ``limit`` neurons with the largest weights,
    strongest first. Returns False (and writes nothing) when the inputs are
    not 28x28 images.
    """
    W = pixel_weights(model.network)
    if W is None:
        return False
    used = used_pixels(images)
    n = min(limit, W.shape[1])
    shown = strongest_neurons(W, n, used)
    rows, cols = _grid(n)
    # One picture of all tiles is far quicker to draw than one matplotlib axis per neuron.
    fig, ax = plt.subplots(figsize=(max(4.0, 0.9 * cols), 0.9 * rows + 0.8))
    ax.imshow(weight_mosaic(W[:, shown], cols, used), cmap="seismic", vmin=-1, vmax=1, interpolation="nearest")
    ax.axis("off")
    which = f"the {n} of {W.shape[1]} neurons with the largest weights" if n < W.shape[1] else f"all {n} neurons"
    blank = "; pixels blank in every digit left white" if used is not None else ""
    ax.set_title(f"First-layer weights, {which}\n(red +, blue -{blank})", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def plot_confusion(confusion: np.ndarray, path, classes=None, title: str = "") -> None:
    """The confusion matrix: row = true digit, column = predicted digit, counts in the cells."""
    confusion = np.asarray(confusion)
    k = len(confusion)
    classes = classes or [str(i) for i in range(k)]
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    # Colour by each row's share, so that rare digits are as readable as common ones.
    shares = confusion / np.maximum(confusion.sum(axis=1, keepdims=True), 1)
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            if confusion[i, j]:
                ax.text(j, i, str(confusion[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if shares[i, j] > 0.5 else "black")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=classes, yticklabels=classes,
           xlabel="predicted digit", ylabel="true digit", title=title or "Confusion matrix")
    fig.colorbar(image, ax=ax, label="share of the true digit's row")
    fig.tight_layout()
    save_figure(fig, path)


def plot_mistakes(images: np.ndarray, true, predicted, path, confidence=None, limit: int = 60) -> None:
    """A gallery of misclassified digits, each labelled "true -> predicted (confidence)".

    ``images`` are the misclassified rows (n, 784) in the order to show them
    (e.g. most confident mistakes first); at most ``limit`` are drawn, dark
    ink on white as on paper.
    """
    n = min(limit, len(images))
    cols = min(10, max(n, 1))
    rows = max(1, math.ceil(n / cols))
    gap = 12  # pixels between rows of digits, room for the labels
    mosaic = np.zeros((rows * (SIDE + gap), cols * (SIDE + 2)))
    for k in range(n):
        r, c = divmod(k, cols)
        top, left = r * (SIDE + gap) + gap, c * (SIDE + 2) + 1
        mosaic[top:top + SIDE, left:left + SIDE] = np.asarray(images[k]).reshape(SIDE, SIDE)
    fig, ax = plt.subplots(figsize=(1.0 * cols + 0.4, 1.3 * rows + 0.6))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    for k in range(n):
        r, c = divmod(k, cols)
        label = f"{true[k]}\u2192{predicted[k]}" + (f" {100 * confidence[k]:.0f}%" if confidence is not None else "")
        ax.text(c * (SIDE + 2) + 1 + SIDE / 2, r * (SIDE + gap) + gap - 2, label, ha="center", va="bottom",
                fontsize=8, color="firebrick")
    if n == 0:
        ax.text(mosaic.shape[1] / 2, mosaic.shape[0] / 2, "no mistakes", ha="center", va="center")
    ax.axis("off")
    ax.set_title(f"Misclassified digits, true \u2192 predicted (confidence): {n} of {len(images)} shown",
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def first_kernels(network) -> np.ndarray | None:
    """The first convolution's kernels (filters, channels, k, k), if the network has one; else None."""
    for layer in network.leaves():
        W = getattr(layer, "W", None)
        if W is not None and W.ndim == 4:
            return W
    return None


def plot_kernels(model, path, limit: int = 64) -> bool:
    """Each first-layer convolution kernel (its first input channel) as a small picture.

    What a convolutional network looks for first: edges, strokes and blobs
    a few pixels wide, slid over the whole digit. Red pushes the filter's
    output up, blue down; each kernel has its own colour scale. Returns False
    (and writes nothing) when the network has no convolution.
    """
    W = first_kernels(model.network)
    if W is None:
        return False
    n = min(limit, len(W))
    rows, cols = _grid(n)
    fig, ax = plt.subplots(figsize=(max(4.0, 0.7 * cols), 0.7 * rows + 0.8))
    ax.imshow(tile_mosaic(W[:n, 0], cols), cmap="seismic", vmin=-1, vmax=1, interpolation="nearest")
    ax.axis("off")
    shown = f"first {n} of {len(W)}" if n < len(W) else f"all {n}"
    ax.set_title(f"First convolution's {W.shape[2]}x{W.shape[3]} kernels, {shown}\n(red +, blue -)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)
    return True


def plot_first_layer(model, folder, images=None) -> str | None:
    """What the first layer looks for: weights.png (Dense on pixels) or kernels.png (a convolution).

    ``images``: the digits it learned from (see :func:`plot_weights`). Returns
    the file name written, or None for a network with neither.
    """
    if plot_weights(model, Path(folder) / "weights.png", images=images):
        return "weights.png"
    return "kernels.png" if plot_kernels(model, Path(folder) / "kernels.png") else None


def plot_augmented(images: np.ndarray, augmenter, rng: np.random.Generator, path, versions: int = 6,
                   limit: int = 8) -> None:
    """Training digits beside distorted versions of them: what the network really trains on.

    Each row is one of ``limit`` digits taken evenly through ``images`` (raw
    pixel rows, n x 784; evenly, so that a set sorted by label still shows
    several digits): the original on the left, then ``versions`` distortions
    drawn by ``augmenter`` (see :mod:`nnscratch.core.augment`) from ``rng``.
    Give it a generator of its own, so that drawing the figure does not move
    the training's random stream. Dark ink on white, as on paper.
    """
    images = np.asarray(images)
    originals = images[np.linspace(0, len(images) - 1, min(limit, len(images))).astype(int)]
    m, gap = len(originals), 4
    distorted = augmenter(np.repeat(originals, versions, axis=0), rng).reshape(m, versions, SIDE * SIDE)
    mosaic = np.zeros((max(m, 1) * (SIDE + gap) - gap, (versions + 1) * (SIDE + gap) + gap))
    for r in range(m):
        top = r * (SIDE + gap)
        mosaic[top:top + SIDE, :SIDE] = originals[r].reshape(SIDE, SIDE)
        for c in range(versions):  # the originals' column stands apart, an extra gap to its right
            left = (c + 1) * (SIDE + gap) + gap
            mosaic[top:top + SIDE, left:left + SIDE] = distorted[r, c].reshape(SIDE, SIDE)
    fig, ax = plt.subplots(figsize=(0.75 * (versions + 1) + 0.6, 0.75 * max(m, 1) + 0.8))
    ax.imshow(mosaic, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.axvline(SIDE + gap - 0.5, color="firebrick", linewidth=1)
    ax.set_xticks([SIDE / 2 - 0.5, SIDE + gap + (versions * (SIDE + gap)) / 2])
    ax.set_xticklabels(["original", f"{versions} distorted versions"], fontsize=8)
    ax.set_yticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    settings = ", ".join(f"{k} {v:g}" for k, v in augmenter.config().items() if k != "kind")
    ax.set_title(f"Augmentation: {augmenter.config()['kind']}\n{settings}", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
