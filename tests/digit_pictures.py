"""Pictures of digits as people have them, built from MNIST and from fonts.

Used by the tests of :mod:`nnscratch.files.images` and by ``bench/image_accuracy.py``:

* ``photo_like(digit28, rng)``: an MNIST digit as if photographed on paper:
  enlarged, off-centre in a bigger picture, dark ink on light (slightly
  tinted) paper, blurred and noisy;
* ``font_digits(size)``: the digits 0-9 printed in every ordinary font found
  (Pillow's built-in scalable font, plus DejaVu and Liberation when installed).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_FOLDERS = [Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation")]
FONT_FILES = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf",
              "LiberationSans-Regular.ttf", "LiberationSans-Bold.ttf", "LiberationSerif-Regular.ttf",
              "LiberationMono-Regular.ttf"]


def photo_like(digit28: np.ndarray, rng: np.random.Generator) -> Image.Image:
    """An RGB 'photo' of an MNIST digit: dark ink on light paper, anywhere in the frame."""
    side = int(rng.integers(90, 220))
    big = Image.fromarray(digit28.reshape(28, 28).astype(np.uint8)).resize((side, side), Image.Resampling.BICUBIC)
    width, height = side + int(rng.integers(40, 260)), side + int(rng.integers(40, 200))
    ink = np.zeros((height, width), np.float32)
    top, left = int(rng.integers(0, height - side + 1)), int(rng.integers(0, width - side + 1))
    ink[top:top + side, left:left + side] = np.asarray(big, np.float32) / 255
    paper = rng.uniform(190, 240) + np.linspace(-12, 12, width)[None, :]  # uneven light
    pen = rng.uniform(20, 80)
    grey = paper * (1 - ink) + pen * ink
    tint = rng.uniform(0.9, 1.0, size=3)
    rgb = np.clip(grey[..., None] * tint, 0, 255).astype(np.uint8)
    picture = Image.fromarray(rgb).filter(ImageFilter.GaussianBlur(float(rng.uniform(0.8, 2.0))))
    noisy = np.asarray(picture, np.float32) + 8 * rng.standard_normal((height, width, 3), np.float32)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def fonts(size: int = 96) -> list[tuple[str, ImageFont.ImageFont]]:
    """(name, font) for Pillow's scalable default font and each TrueType font installed."""
    found = []
    try:  # Pillow >= 10.1 with FreeType: a scalable built-in font
        found.append(("pillow-default", ImageFont.load_default(size=size)))
    except (TypeError, OSError, ImportError):
        pass
    for folder in FONT_FOLDERS:
        for file in FONT_FILES:
            if (folder / file).is_file():
                found.append((file, ImageFont.truetype(str(folder / file), size)))
    return found


def font_digits(size: int = 96) -> list[tuple[str, int, Image.Image]]:
    """(font name, digit, picture): black digits printed on white, one per picture."""
    pictures = []
    for name, font in fonts(size):
        for digit in range(10):
            picture = Image.new("L", (2 * size, 2 * size), 255)
            ImageDraw.Draw(picture).text((size // 2, size // 3), str(digit), fill=0, font=font)
            pictures.append((name, digit, picture))
    return pictures
