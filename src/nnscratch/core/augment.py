"""Data augmentation: new training images from old ones, made afresh for each batch.

A digit moved by a pixel or two is the same digit. Showing the network each
training image at a random small offset every time it comes round teaches it
that, and keeps it from learning the 60000 images by heart: the gap between
training and test accuracy closes (docs/cnn.md).
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator) -> np.ndarray:
    """Each image of ``images`` (N, C, H, W) moved by up to ``max_shift`` pixels up or down and
    left or right (each of the (2 * max_shift + 1)^2 offsets equally likely), the uncovered
    edge filled with 0 (the background of MNIST digits).

    The images are framed with ``max_shift`` zeros on every side; every H x W window of the
    framed image is then an image shifted by some offset, and each image takes the window at
    its own random offset (one fancy-indexing copy, no loop over images).
    """
    n, c, h, w = images.shape
    s = int(max_shift)
    if s == 0:
        return images.copy()
    framed = np.zeros((n, c, h + 2 * s, w + 2 * s), images.dtype)
    framed[:, :, s:s + h, s:s + w] = images
    windows = sliding_window_view(framed, (h, w), axis=(2, 3))  # (N, C, 2s+1, 2s+1, H, W)
    down, right = rng.integers(0, 2 * s + 1, (2, n))
    return windows[np.arange(n), :, down, right]  # (N, C, H, W)
