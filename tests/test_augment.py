"""Random shifts: each output is its input moved by at most max_shift pixels, zeros coming in."""
import numpy as np

from nnscratch.core.augment import random_shift


def shifted(image, down, right):
    """``image`` (C, H, W) moved ``down`` rows and ``right`` columns (negative: up, left), zeros in."""
    out = np.zeros_like(image)
    h, w = image.shape[1:]
    out[:, max(down, 0):h + min(down, 0), max(right, 0):w + min(right, 0)] = \
        image[:, max(-down, 0):h - max(down, 0), max(-right, 0):w - max(right, 0)]
    return out


def test_every_image_is_moved_by_an_allowed_offset_and_all_offsets_occur():
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (300, 2, 7, 6)).astype(np.uint8)  # no zeros: every offset tells apart
    out = random_shift(images, 2, rng)
    assert out.shape == images.shape and out.dtype == np.uint8
    seen = set()
    for image, moved in zip(images, out):
        offsets = [(d, r) for d in range(-2, 3) for r in range(-2, 3)
                   if np.array_equal(shifted(image, d, r), moved)]
        assert len(offsets) == 1
        seen.add(offsets[0])
    assert len(seen) == 25


def test_no_shift_is_a_copy():
    images = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    out = random_shift(images, 0, np.random.default_rng(0))
    np.testing.assert_array_equal(out, images)
    assert out is not images
