"""Distorted training digits: random affine and elastic distortions of a batch.

A network that sees each training digit only as it was written learns those
60000 pictures; one that sees them a little rotated, stretched, slanted,
moved and wobbled, differently every epoch, learns what a 3 looks like.
Simard, Steinkraus and Platt (2003), "Best practices for convolutional neural
networks applied to visual document analysis" (ICDAR 2003), took a plain
784-800-10 MLP from 98.4 % to 99.3 % on MNIST with the elastic distortion
below; Ciresan, Meier, Gambardella and Schmidhuber (2010), "Deep, big, simple
neural nets for handwritten digit recognition" (Neural Computation 22(12)),
reached 99.65 % with affine and elastic distortions together.

**How a distortion is made.** Each pixel of the distorted digit asks: where
in the original do I take my grey level from? The answers, one (row, column)
position per output pixel, form the *sampling grid*. For an output pixel at
position ``p`` (measured from the centre of the 28x28 square)::

    source(p) = F^-1 (p - shift) + d(p)

``F`` is the digit's affine map (a 2x2 matrix: rotation, then shear, then
scaling), so the content turns, slants and stretches by ``F`` and moves by
``shift``; reading the original at ``F^-1(p - shift)`` is how such a map is
drawn (each output pixel looks back to where it came from, so no pixel is
left empty). ``d(p)`` is the *displacement field* of the elastic distortion:
a small vector for every pixel saying how far, and which way, that pixel
reads off to the side.

**Why the displacement field is smoothed.** Drawn independently for each
pixel, the vectors would tear strokes into speckle. Simard draws each
component uniformly in [-1, 1], then smooths the field with a Gaussian of
standard deviation ``sigma`` (pixels), so that neighbouring pixels move
nearly together and strokes bend like rubber, and finally scales it by
``alpha``. A larger ``sigma`` gives gentler, wider bends; ``alpha`` sets the
strength. Smoothing averages the noise away (with ``sigma=4`` the smoothed
field has a standard deviation of about 0.04), so with ``alpha=34`` a pixel
typically reads about 1.4 pixels off in each direction, rarely more than 4.

**Why bilinear sampling.** Source positions fall between pixel centres.
Taking the nearest pixel would make strokes jagged and jumpy; bilinear
sampling blends the four surrounding pixels, each weighted by how close it
is, so the grey level changes smoothly as the position moves. Positions
outside the square read 0, blank paper. A blend of pixels and zeros never
leaves the range of the original grey levels, so 0-255 stays 0-255.

**Cheap.** Everything is done for a whole batch at once, with no Python
loop over digits. The Gaussian is separable (a 2-D Gaussian is a 1-D one
along rows times a 1-D one along columns), so smoothing a 28x28 field is two
products with a 28x28 smoothing matrix, ``G @ noise @ G``. That smoothing
lets only about 10 slow waves through, so the fields are drawn directly as
random mixtures of those waves, with the same statistics
(:func:`draw_wave_weights`); and the affine part is a mixture of two more
patterns, a constant and a ramp, so a digit's whole sampling grid is one
small matrix between two 28 x 12 ones (:func:`sampling_grid`). The four
neighbours of bilinear sampling are gathered with flat indices, or, with
Numba, in one compiled loop (core/kernels/warp.py). ``bench/augment.py``
measures the cost against an epoch of 784-256-128-10.

**Deterministic.** All randomness comes from the ``numpy.random.Generator``
passed in: the same generator state and the same images give the same
distortions, which is what makes seeded runs repeatable and resumed runs
continue the same stream. ``none`` draws nothing, so switching augmentation
off leaves a run's random stream exactly as it was without it.
"""
from __future__ import annotations

import functools
import math
import numbers

import numpy as np

from ..errors import DataError
from . import kernels
from .parallel import PARTS, blas_threads, run_parts

SIDE = 28  # MNIST digits are 28x28
CENTRE = (SIDE - 1) / 2  # 13.5: rotating about it maps the pixel grid onto itself
KINDS = ("none", "affine", "elastic")
CHUNK = 256  # digits distorted at a time: their arrays stay in the cache (faster than more or fewer)
LAST = SIDE - 2 ** -10  # positions are clipped to [-1, LAST]: see sample_bilinear


# --------------------------------------------------------------------------- #
# The affine part: rotation, shear, scaling, shift
# --------------------------------------------------------------------------- #
def affine_matrices(angle, scale_rows, scale_cols, shear) -> np.ndarray:
    """The maps ``F = rotation @ shear @ scaling``, shape (n, 2, 2), in (row, column) order.

    ``angle`` is in degrees, counter-clockwise as seen on the screen (rows
    grow downwards); ``scale_rows`` and ``scale_cols`` stretch the digit
    vertically and horizontally; ``shear`` slides each row sideways by
    ``shear`` times its height above the centre (positive leans right, like
    italics). Each argument is a number or an array of n numbers.
    """
    angle, scale_rows, scale_cols, shear = np.broadcast_arrays(
        *(np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (angle, scale_rows, scale_cols, shear)))
    radians = np.deg2rad(angle)
    cos, sin, one, zero = np.cos(radians), np.sin(radians), np.ones_like(angle), np.zeros_like(angle)
    rotation = np.stack([np.stack([cos, -sin], -1), np.stack([sin, cos], -1)], -2)
    slant = np.stack([np.stack([one, zero], -1), np.stack([-shear, one], -1)], -2)
    scaling = np.stack([np.stack([scale_rows, zero], -1), np.stack([zero, scale_cols], -1)], -2)
    return rotation @ slant @ scaling


def draw_affine(n: int, rng: np.random.Generator, rotate: float, scale: float, shear: float,
                shift: float) -> tuple[np.ndarray, np.ndarray]:
    """Random maps ``F`` (n, 2, 2) and shifts (n, 2), each setting uniform in +-its range.

    The angle is drawn in [-rotate, rotate] degrees, each axis's scale in
    [1 - scale, 1 + scale] (independently, as Ciresan et al. did), the shear
    in [-shear, shear] and each shift in [-shift, shift] pixels.
    """
    u = rng.uniform(-1.0, 1.0, size=(n, 6))
    F = affine_matrices(rotate * u[:, 0], 1 + scale * u[:, 1], 1 + scale * u[:, 2], shear * u[:, 3])
    return F, shift * u[:, 4:6]


# --------------------------------------------------------------------------- #
# The elastic part: a smoothed random displacement field
# --------------------------------------------------------------------------- #
def smoothing_matrix(sigma: float, side: int = SIDE) -> np.ndarray:
    """The (side, side) matrix ``G`` whose product with a column smooths it by a Gaussian.

    ``G[i, j]`` is the weight of value ``j`` in smoothed value ``i``: a
    Gaussian of ``sigma`` pixels in ``i - j``, cut at 4 sigma and normalised
    to sum 1 over its full width; values beyond the border count as 0 (as
    ``scipy.ndimage.gaussian_filter(mode="constant")`` does).
    """
    radius = int(4 * sigma + 0.5)
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    offset = np.arange(side)[None, :] - np.arange(side)[:, None]  # j - i
    G = np.where(np.abs(offset) <= radius, kernel[np.clip(offset + radius, 0, 2 * radius)], 0.0)
    return G.astype(np.float32)


@functools.lru_cache(maxsize=8)
def smooth_waves(sigma: float, keep: float = 1e-3) -> np.ndarray:
    """The smooth patterns that Gaussian smoothing lets through, each times its weight: (28, k) float32.

    ``G`` is symmetric, so ``G = Q diag(lam) Q^T`` with orthonormal columns
    of ``Q`` (eigenvectors): waves across the 28 pixels, slow ones with
    weight ``lam`` near 1, fast ones damped towards 0. Returns the columns
    ``Q[:, m] * lam[m]`` of the waves whose weight is at least ``keep``
    times the largest (10 of 28 for sigma 4); the others would add less
    than a millionth of the field's variance. Cached: the result is shared,
    do not modify it.
    """
    weights, waves = np.linalg.eigh(smoothing_matrix(sigma).astype(np.float64))
    order = np.argsort(-np.abs(weights))
    weights, waves = weights[order], waves[:, order]
    k = max(1, int(np.sum(np.abs(weights) >= keep * abs(weights[0]))))
    return (waves[:, :k] * weights[:k]).astype(np.float32)


def draw_wave_weights(n: int, rng: np.random.Generator, k: int, alpha: float) -> np.ndarray:
    """The random middle matrices of 2n elastic fields, uniform in [-alpha, alpha]: shape (k, 2, n, k).

    Simard's field is ``alpha * G @ noise @ G`` with ``noise`` uniform in
    [-1, 1] for every pixel (once for the rows' offsets, once for the
    columns'). With the waves of :func:`smooth_waves`, ``W = Q diag(lam)``,
    that is ``W (alpha Q^T noise Q) W^T``, and the middle matrix has
    uncorrelated entries of variance alpha^2 / 3, like the noise times alpha
    (``Q`` only turns it). So we draw the middle matrix directly, uniform in
    [-alpha, alpha], for the k slow waves only: 100 random numbers per field
    instead of 784, and products with 28 x 12 matrices instead of 28 x 28.
    The fields have the variance and correlations of Simard's (up to the
    dropped fast waves), for a fraction of the work.

    ``[:, a, m, :]`` is the middle matrix of field ``a`` (0: rows, 1:
    columns) of digit ``m``; this layout lets :func:`sampling_grid` handle
    all fields in one matrix product.
    """
    middles = rng.random((k, 2, n, k), dtype=np.float32)
    middles *= np.float32(2 * alpha)
    middles -= np.float32(alpha)
    return middles


# --------------------------------------------------------------------------- #
# The sampling grid and bilinear sampling
# --------------------------------------------------------------------------- #
def sampling_grid(F: np.ndarray, shift: np.ndarray, waves: np.ndarray | None = None,
                  middles: np.ndarray | None = None):
    """Where each output pixel reads the original: ``(rows, cols)``, each (n, 28, 28) float32.

    ``source(p) = F^-1 (p - shift) + d(p)``, with the elastic field
    ``d = W M W^T`` given by ``waves`` W (:func:`smooth_waves`) and
    ``middles`` M (:func:`draw_wave_weights`), or no field when None.

    Each coordinate of the source is a sum of simple patterns across the
    square: the elastic part, made of slow waves; and the affine part, a
    constant plus a multiple of the output row's distance from the centre
    ``y_i`` plus a multiple of the output column's ``y_j``. With the
    patterns as the columns of ``U = [W | 1 | y]`` (28 x (k+2)), every
    digit's grid of source rows is one product ``U B U^T``, with::

        B = [[M, 0,                        0  ],
             [0, 13.5 - a00 ty - a01 tx,   a01],
             [0, a00,                      0  ]]

    where ``a = F^-1`` and ``(ty, tx)`` the shift; the same for source
    columns with ``a10``, ``a11``. For all digits at once (the B's side by
    side) that is two matrix products, and nothing else touches the 28x28
    grids: cheap.
    """
    n, k = len(F), 0 if waves is None else waves.shape[1]
    size = k + 2
    ramp = np.arange(SIDE, dtype=np.float32) - np.float32(CENTRE)
    U = np.column_stack([*([] if waves is None else [waves]), np.ones(SIDE, np.float32), ramp])
    B = np.zeros((size, 2, n, size), np.float32)  # B[:, axis, m, :] is digit m's B for source rows (0) or columns (1)
    if middles is not None:
        B[:k, :, :, :k] = middles
    (a, b), (c, d) = F[:, 0].T, F[:, 1].T
    inverse = np.array([[d, -b], [-c, a]]) / (a * d - b * c)  # (2, 2, n): the 2x2 inverse of every F
    for axis in (0, 1):
        along_rows, along_cols = inverse[axis]
        B[k, axis, :, k] = CENTRE - along_rows * shift[:, 0] - along_cols * shift[:, 1]
        B[k + 1, axis, :, k] = along_rows  # times y_i (U's ramp) on the left, 1 on the right
        B[k, axis, :, k + 1] = along_cols  # 1 on the left, y_j on the right
    left = (U @ B.reshape(size, -1)).reshape(SIDE, 2 * n, size).transpose(1, 0, 2)  # U @ B, each (28, k+2)
    grid = (left.reshape(2 * n * SIDE, size) @ U.T).reshape(2, n, SIDE, SIDE)  # ... @ U^T, each (28, 28)
    return grid[0], grid[1]


def sample_bilinear(images: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Grey levels of ``images`` (n, 784) read at fractional ``rows``, ``cols`` (n, 28, 28).

    Each value blends the four pixels around the position, weighted by
    closeness: first along the row, ``upper = top-left + fc (top-right -
    top-left)`` and the same for the lower pair, then between the two,
    ``upper + fr (lower - upper)``, where ``fr`` and ``fc`` are the
    fractional parts of the position. The digits get a frame of zeros, so
    positions outside read blank paper. ``rows`` and ``cols`` are used as
    work space. Returns float32 (n, 784).
    """
    if kernels.enabled():  # the same arithmetic in one compiled pass (core/kernels/warp.py)
        from .kernels.warp import sample_bilinear as in_one_pass

        return in_one_pass(images, rows, cols, LAST)
    n, wide = len(images), SIDE + 2
    framed = np.zeros((n, wide, wide), np.float32)
    framed[:, 1:-1, 1:-1] = images.reshape(n, SIDE, SIDE)
    # Far outside is all paper: bring such positions onto the frame, so every index is valid.
    # (Just below SIDE rather than SIDE itself: the last step then never needs a pixel past the frame.)
    for position in (rows, cols):
        np.clip(position, -1, np.float32(LAST), out=position)
    top, left = np.floor(rows), np.floor(cols)
    rows -= top  # now the fractional parts
    cols -= left
    # The flat index of each top-left neighbour in the framed batch.
    top *= wide
    top += left
    index = top.astype(np.int32 if n * wide * wide < 2 ** 31 else np.intp)
    index += (np.arange(n, dtype=index.dtype) * (wide * wide) + (wide + 1))[:, None, None]
    flat = framed.ravel()
    # The other three neighbours are one column, one row, and both further on: shifted views.
    upper = _lerp(np.take(flat, index), np.take(flat[1:], index), cols)
    lower = _lerp(np.take(flat[wide:], index), np.take(flat[wide + 1:], index), cols)
    return _lerp(upper, lower, rows).reshape(n, SIDE * SIDE)


def _lerp(start: np.ndarray, end: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``start + t (end - start)``, in place in ``end``: the linear blend of two arrays."""
    end -= start
    end *= t
    end += start
    return end


def warp(images: np.ndarray, F: np.ndarray, shift: np.ndarray, waves: np.ndarray | None = None,
         middles: np.ndarray | None = None) -> np.ndarray:
    """``images`` (n, 784) distorted by maps ``F``, ``shift`` and optional elastic fields (see :func:`sampling_grid`).

    Returns the same shape and dtype; whole-number pixels (non-negative, as
    pixels are) are rounded to the nearest.
    """
    values = sample_bilinear(images, *sampling_grid(F, shift, waves, middles))
    if np.issubdtype(images.dtype, np.integer):
        # Round to nearest: a blend of pixels (>= 0) and paper is >= 0, and casting x + 0.5 cuts to the
        # whole number below; it stays within the pixels' range, so the cast cannot overflow.
        values += np.float32(0.5)
    return values.astype(images.dtype, copy=False)


# --------------------------------------------------------------------------- #
# The object the training loop holds
# --------------------------------------------------------------------------- #
def _check_images(images) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 2 or images.shape[1] != SIDE * SIDE:
        raise DataError(f"augmentation takes rows of {SIDE * SIDE} pixels (28x28 digits), got shape {images.shape}")
    if not np.issubdtype(images.dtype, np.number):
        raise DataError(f"augmentation takes numeric pixels, got {images.dtype}")
    return images


class Augmenter:
    """Random distortions of digits, new ones on every call.

    ``Augmenter(kind="elastic", rotate=10, scale=0.1, shear=0.15, shift=1, sigma=4, alpha=34)``

    * ``kind="none"``: the digits as they are (nothing is drawn from ``rng``);
    * ``kind="affine"``: per digit a random rotation within +-``rotate``
      degrees, scaling of each axis within 1 +- ``scale``, shear within
      +-``shear`` and shift within +-``shift`` pixels;
    * ``kind="elastic"``: the same affine distortion plus Simard's elastic
      one (``sigma``, ``alpha``); set the affine ranges to 0 for the elastic
      one alone.
    * ``keep`` (default 0): the chance a digit is left as it was (resampling blurs; test digits are sharp).

    ``augmenter(images, rng)`` takes raw pixel rows (n, 784), as the data
    loaders give them, and returns distorted ones of the same shape and
    dtype; labels are not its business, since distortions keep a digit's
    identity. ``config()`` is a JSON-able description;
    ``make_augmenter(**config)`` rebuilds the same augmenter.
    """

    def __init__(self, kind: str = "elastic", rotate: float = 10.0, scale: float = 0.1, shear: float = 0.15,
                 shift: float = 1.0, sigma: float = 4.0, alpha: float = 34.0, keep: float = 0.0):
        if kind not in KINDS:
            raise DataError(f"augment {kind!r}: choose one of {', '.join(KINDS)}")
        self.kind = kind
        self.rotate, self.scale, self.shear, self.shift = float(rotate), float(scale), float(shear), float(shift)
        self.sigma, self.alpha, self.keep = float(sigma), float(alpha), float(keep)
        self._validate()

    def _validate(self) -> None:
        """Refuse settings that cannot make a distortion, naming the setting."""
        checks = [
            ("rotate", 0 <= self.rotate <= 180, "degrees in [0, 180]"),
            ("scale", 0 <= self.scale < 1, "a fraction in [0, 1)"),
            ("shear", 0 <= self.shear <= 2, "in [0, 2]"),
            ("shift", 0 <= self.shift <= SIDE, f"pixels in [0, {SIDE}]"),
            ("sigma", 0 < self.sigma <= 100, "pixels in (0, 100]"),
            ("alpha", 0 <= self.alpha <= 1000, "pixels in [0, 1000]"),
            ("keep", 0 <= self.keep < 1, "a fraction in [0, 1)"),
        ]
        for name, ok, expected in checks:
            if not ok:  # NaN fails every comparison, so it lands here too
                raise DataError(f"augment {name}={getattr(self, name)!r}: must be {expected}")

    def __call__(self, images, rng: np.random.Generator) -> np.ndarray:
        """Distorted copies of ``images`` (n, 784); ``images`` itself for ``none``."""
        images = _check_images(images)
        if self.kind == "none":
            return images
        if self.keep == 0:
            return self._distort_all(images, rng)
        # Which digits stay as they were: drawn only when keep > 0, so keep=0 leaves the random stream alone.
        rows = np.flatnonzero(rng.random(len(images)) >= self.keep)
        distorted = images.copy()
        distorted[rows] = self._distort_all(images[rows], rng)
        return distorted

    def _distort_all(self, images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Chunk by chunk (little memory), two chunks' numbers drawn in turn, then both warped at once.

        The same draws in the same order on any machine: the same digits.
        """
        distorted = np.empty_like(images)
        starts = list(range(0, len(images), CHUNK))
        with blas_threads(1):  # small matrix products: fastest on one thread, wherever we are called from
            for pair in (starts[i:i + PARTS] for i in range(0, len(starts), PARTS)):
                draws = [(at, self._draw(len(images[at:at + CHUNK]), rng)) for at in pair]
                run_parts([(self._warp, (images, distorted, at, draw)) for at, draw in draws])
        return distorted

    def _draw(self, n: int, rng: np.random.Generator) -> tuple:
        """The random numbers that distort ``n`` digits: maps, shifts and (elastic) the fields' weights."""
        F, shift = draw_affine(n, rng, self.rotate, self.scale, self.shear, self.shift)
        waves = smooth_waves(self.sigma) if self.kind == "elastic" else None
        return (F, shift) if waves is None else (F, shift, waves, draw_wave_weights(n, rng, len(waves.T), self.alpha))

    @staticmethod
    def _warp(images, distorted, at: int, draw: tuple) -> None:
        distorted[at:at + CHUNK] = warp(images[at:at + CHUNK], *draw)

    def config(self) -> dict:
        """The settings that act, as JSON-able values (for model files and checkpoints)."""
        if self.kind == "none":
            return {"kind": "none"}
        config = {"kind": self.kind, "rotate": self.rotate, "scale": self.scale, "shear": self.shear,
                  "shift": self.shift}
        if self.kind == "elastic":
            config.update(sigma=self.sigma, alpha=self.alpha)
        if self.keep > 0:  # (absent when 0, so configs written before it existed read the same)
            config["keep"] = self.keep
        return config

    def __repr__(self):
        settings = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"Augmenter({settings})"


def make_augmenter(kind: str = "none", **options) -> Augmenter:
    """An :class:`Augmenter` by its CLI name (``none``, ``affine``, ``elastic``) and settings.

    Unknown settings are refused with a :class:`~nnscratch.errors.DataError`
    naming them; ``make_augmenter(**augmenter.config())`` gives back the same
    augmenter.
    """
    known = ("rotate", "scale", "shear", "shift", "sigma", "alpha", "keep")
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise DataError(f"augment: unknown setting(s) {', '.join(unknown)}; known: {', '.join(known)}")
    for name, value in options.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise DataError(f"augment {name}={value!r}: must be a finite number")
    return Augmenter(kind, **options)
