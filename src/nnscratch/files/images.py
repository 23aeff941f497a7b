"""Real images -> MNIST-style digits: the preprocessing behind ``predict`` and the web page.

A network trained on MNIST has only ever seen one kind of picture: a white
digit on a black 28x28 field, scaled so that its longer side is 20 pixels and
placed so that its centre of mass sits at pixel (14, 14). A photo, a scan or
a drawing must be brought to that form before the network can read it, the
same way MNIST's authors normalised their digits:

1. decode (Pillow: PNG, JPEG, BMP, GIF...) and turn into grey levels;
2. find which way round it is: MNIST is light ink on a dark background, paper
   is the opposite, so dark-on-light images are inverted;
3. remove the background level and stretch the ink to full white;
4. crop to the ink, scale the longer side to 20 px keeping the aspect ratio;
5. paste into 28x28 so that the centre of mass lands on pixel (14, 14).

Anything that cannot be read, or holds no ink, raises
:class:`~nnscratch.errors.DataError` naming the image: a blank page gets a
clear message, never a guess.
"""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, ImageOps, UnidentifiedImageError

from ..errors import DataError

SIDE = 28        # MNIST images are 28x28 ...
BOX = 20         # ... with the digit scaled to fit a 20x20 box ...
CENTRE = 14.0    # ... and its centre of mass at (14, 14): measured on MNIST's training set
MAX_PIXELS = 50_000_000   # refuse larger images: a small file can decode to gigabytes
WORK_SIDE = 512  # big photos are shrunk to this before the analysis (plenty for a 20 px digit)
MIN_CONTRAST = 40  # ink must differ from the background by this many grey levels (of 255)


def digit_from_image(source, name: str | None = None) -> np.ndarray:
    """The MNIST-style digit in an image: 784 grey levels (uint8, white ink on black).

    ``source`` is a file path, the bytes of an image file, or a PIL image.
    ``name`` is how error messages refer to it (by default the path, or "image").
    """
    name = name or (str(source) if isinstance(source, (str, Path)) else "image")
    grey = to_grey(open_image(source, name), name)
    ink = ink_levels(grey, name)
    return centre_in_field(crop_to_ink(ink)).reshape(SIDE * SIDE)


# --------------------------------------------------------------------------- #
# 1. Decoding, with the checks a server needs
# --------------------------------------------------------------------------- #
def open_image(source, name: str) -> Image.Image:
    """Decode ``source`` into a PIL image (first frame of an animation), or raise DataError."""
    if isinstance(source, Image.Image):
        image = source
    else:
        if isinstance(source, (bytes, bytearray, memoryview)):
            if len(source) == 0:
                raise DataError(f"{name}: empty (0 bytes), not an image")
            fp = io.BytesIO(source)
        else:
            path = Path(source)
            if not path.is_file():
                raise DataError(f"{name}: no such file")
            if path.stat().st_size == 0:
                raise DataError(f"{name}: empty file (0 bytes), not an image")
            fp = path
        try:
            image = Image.open(fp)  # over twice Pillow's own limit it refuses; the size check below does the rest
        except Image.DecompressionBombError:
            raise DataError(f"{name}: image too large to decode safely (limit {MAX_PIXELS:,} pixels)") from None
        except UnidentifiedImageError:
            raise DataError(f"{name}: not an image Pillow can read (PNG, JPEG, BMP, GIF...)") from None
        except (OSError, ValueError, SyntaxError) as exc:  # Pillow's words for a damaged header vary by format
            raise DataError(f"{name}: unreadable image ({exc})") from None
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise DataError(f"{name}: {width}x{height} pixels is too large (limit {MAX_PIXELS:,} pixels)")
    if width == 0 or height == 0:
        raise DataError(f"{name}: image has no pixels ({width}x{height})")
    try:
        image.seek(0)  # an animated GIF: its first frame
        if image.format == "JPEG":
            image.draft("RGB", (WORK_SIDE, WORK_SIDE))  # JPEG can decode straight at 1/2, 1/4, 1/8 size
        image.load()
    except (OSError, ValueError, EOFError, SyntaxError) as exc:
        raise DataError(f"{name}: damaged or truncated image ({exc})") from None
    return image


def to_grey(image: Image.Image, name: str) -> np.ndarray:
    """Grey levels 0-255 as float32, shrunk to at most ``WORK_SIDE`` pixels a side.

    Transparent pixels are laid on a background that contrasts with the
    opaque ones, so black strokes on a transparent canvas stay readable,
    and so do white ones.
    """
    transparent = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if max(image.size) > WORK_SIDE:
        # Shrink first: a 7000x7000 PNG decodes to 196 MB, and each full-size copy made below
        # (RGBA, alpha, grey, float32) would cost as much again. Pillow resizes these four modes
        # as they are (RGBA premultiplied by alpha, so hidden pixels' colour never bleeds in);
        # it would resize a palette with NEAREST, so other modes are converted first.
        if image.mode not in ("L", "LA", "RGB", "RGBA"):
            image = image.convert("RGBA" if transparent else "L")
        scale = WORK_SIDE / max(image.size)  # at least one pixel a side: a 1x1024 strip stays 1 wide
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        image = image.resize(size, Image.Resampling.BOX)  # BOX averages: no aliasing
    image = ImageOps.exif_transpose(image)  # photos taken sideways
    if transparent:
        rgba = image.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"), np.float32)
        if alpha.min() < 255:
            grey = np.asarray(rgba.convert("L"), np.float32)
            opaque = alpha > 127
            dark_ink = not opaque.any() or grey[opaque].mean() < 128
            background = Image.new("RGBA", rgba.size, (255, 255, 255, 255) if dark_ink else (0, 0, 0, 255))
            image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), np.float32)


# --------------------------------------------------------------------------- #
# 2-3. Which way round, and how much ink where
# --------------------------------------------------------------------------- #
def ink_levels(grey: np.ndarray, name: str) -> np.ndarray:
    """How much ink each pixel holds, from 0 (background) to 1 (full stroke).

    The background is the median of the image's border (a digit rarely
    covers its edges). If the background is light, the ink is dark and the
    image is inverted: MNIST's digits are white on black. Levels are measured
    on a slightly blurred copy so that camera noise and specks of dust
    neither count as ink nor hide a blank page.
    """
    border = np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])
    if np.median(border) > 127:
        grey = 255 - grey
    background = float(np.median(np.concatenate([grey[0], grey[-1], grey[:, 0], grey[:, -1]])))
    radius = max(1.0, max(grey.shape) / 200)
    smooth = np.asarray(Image.fromarray(grey.astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)), np.float32)
    ink = float(smooth.max())  # the blur has already evened out noise and specks
    if ink - background < MIN_CONTRAST:
        raise DataError(f"{name}: no ink found (the image looks blank: no digit to read)")
    # Everything within a fifth of the way from background to ink is background
    # (noise, paper texture); the strongest strokes become full white.
    floor = background + 0.2 * (ink - background)
    return np.clip((grey - floor) / (ink - floor), 0.0, 1.0) * (smooth > floor)


# --------------------------------------------------------------------------- #
# 4-5. MNIST's normalisation: 20 px box, centre of mass at (14, 14)
# --------------------------------------------------------------------------- #
def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding all of the ink."""
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def centre_in_field(ink: np.ndarray) -> np.ndarray:
    """Scale the longer side to 20 px (keeping the aspect ratio) and centre by mass in 28x28."""
    height, width = ink.shape
    scale = BOX / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = Image.fromarray(ink.astype(np.float32)).resize(size, Image.Resampling.LANCZOS)
    digit = np.clip(np.asarray(small), 0.0, 1.0)
    field = np.zeros((SIDE, SIDE), np.float32)
    mass = digit.sum()
    ys, xs = np.indices(digit.shape)
    cy, cx = ((ys * digit).sum() / mass, (xs * digit).sum() / mass) if mass > 0 else (size[1] / 2, size[0] / 2)
    top = int(np.clip(round(CENTRE - cy), 0, SIDE - size[1]))  # stay inside the field
    left = int(np.clip(round(CENTRE - cx), 0, SIDE - size[0]))
    field[top:top + size[1], left:left + size[0]] = digit
    return np.round(field * 255).astype(np.uint8)
