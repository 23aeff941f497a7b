"""Real images -> MNIST-style digits (nnscratch.files.images) and ``nnscratch predict``."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from nnscratch.apps import cli
from nnscratch.errors import DataError
from nnscratch.files.images import MAX_PIXELS, digit_from_image

from .webtools import train_cli


def stroke_picture(size=(300, 200), ink="black", paper="white", mode="RGB") -> Image.Image:
    """A '7' drawn off-centre: two thick strokes."""
    picture = Image.new(mode, size, paper)
    draw = ImageDraw.Draw(picture)
    draw.line([(40, 30), (120, 30), (70, 170)], fill=ink, width=14, joint="curve")
    return picture


def encoded(picture: Image.Image, kind: str = "PNG") -> bytes:
    out = io.BytesIO()
    picture.save(out, kind)
    return out.getvalue()


# --------------------------------------------------------------------------- #
# MNIST's normalisation
# --------------------------------------------------------------------------- #
def test_digit_is_white_on_black_20px_box_centred_by_mass():
    digit = digit_from_image(stroke_picture())
    assert digit.shape == (784,) and digit.dtype == np.uint8
    grid = digit.reshape(28, 28).astype(float)
    rows, cols = np.flatnonzero(grid.any(1)), np.flatnonzero(grid.any(0))
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in (20, 21)  # 20 px, +1 for resampling fringe
    assert grid.max() == 255 and grid[0].sum() == 0  # full-white strokes, black border
    ys, xs = np.indices(grid.shape)
    assert abs((ys * grid).sum() / grid.sum() - 14) <= 0.5
    assert abs((xs * grid).sum() / grid.sum() - 14) <= 0.5


def test_dark_on_light_and_light_on_dark_read_the_same():
    dark_on_light = digit_from_image(stroke_picture(ink="black", paper="white"))
    light_on_dark = digit_from_image(stroke_picture(ink="white", paper="black"))
    coloured = digit_from_image(stroke_picture(ink=(20, 40, 120), paper=(250, 240, 200)))
    assert np.abs(dark_on_light.astype(int) - light_on_dark).max() <= 2
    assert np.abs(dark_on_light.astype(int) - coloured).mean() < 3


@pytest.mark.parametrize("ink", ["black", "white"])
def test_strokes_on_a_transparent_canvas(ink):
    picture = stroke_picture(ink=ink, paper=(0, 0, 0, 0), mode="RGBA")
    assert np.abs(digit_from_image(encoded(picture)).astype(int) - digit_from_image(stroke_picture())).max() <= 2


@pytest.mark.parametrize("kind", ["PNG", "JPEG", "BMP", "GIF"])
def test_formats_paths_and_bytes(tmp_path, kind):
    path = tmp_path / f"seven.{kind.lower()}"
    stroke_picture().save(path, kind)
    from_path, from_bytes = digit_from_image(path), digit_from_image(path.read_bytes())
    assert np.array_equal(from_path, from_bytes)
    assert np.abs(from_path.astype(int) - digit_from_image(stroke_picture())).mean() < 6


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P"])
def test_big_images_are_shrunk_first_and_read_like_small_ones(mode):
    """Over WORK_SIDE, an image is shrunk before anything else (memory); it must still read the same."""
    paper = (0, 0, 0, 0) if mode != "RGB" else "white"
    small = stroke_picture(paper=paper, mode="RGBA" if mode != "RGB" else "RGB")
    if mode == "P":  # a palette with a transparent entry, as some GIFs and PNGs have
        small = small.convert("P")
        small.info["transparency"] = small.getpixel((0, 0))
    big = small.resize((small.width * 10, small.height * 10), Image.Resampling.NEAREST)
    difference = np.abs(digit_from_image(encoded(big)).astype(int) - digit_from_image(encoded(small)))
    assert difference.mean() < 3 and difference.max() < 40


def test_a_large_allowed_image_decodes_without_a_huge_peak(tmp_path):
    """A 4000x4000 transparent PNG (61 MB decoded) must not cost several times that.

    Measured in a child process as the rise of its peak resident memory (Linux's
    VmHWM), since Pillow's buffers are invisible to tracemalloc.
    """
    if not Path("/proc/self/status").exists():
        pytest.skip("needs Linux's /proc/self/status to read the peak resident memory")
    side = 4000
    picture = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    ImageDraw.Draw(picture).line([(1800, 600), (1500, 3400)], fill=(0, 0, 0, 255), width=300)
    path = tmp_path / "big.png"
    picture.save(path, compress_level=1)
    del picture
    probe = ("import sys\n"
             "from nnscratch.files.images import digit_from_image\n"
             "def peak():  # VmHWM: starts afresh at exec, unlike ru_maxrss (which keeps this test's peak)\n"
             "    status = open('/proc/self/status').read().splitlines()\n"
             "    return next(int(line.split()[1]) for line in status if line.startswith('VmHWM:'))\n"
             "data = open(sys.argv[1], 'rb').read()\n"
             "before = peak()\n"
             "digit = digit_from_image(data)\n"
             "print(peak() - before, digit.max())\n")
    done = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    rise_kb, brightest = map(int, done.stdout.split())
    decoded_mb = side * side * 4 / 2**20
    assert brightest == 255
    # The decoded image plus one premultiplied copy to shrink it: measured 2.1x. Before the fix,
    # full-size float32 copies made it 6.3x (384 MB here; 1.2 GB for 7000x7000).
    assert rise_kb / 1024 < 2.6 * decoded_mb, f"peak rose by {rise_kb / 1024:.0f} MB for a {decoded_mb:.0f} MB image"


# --------------------------------------------------------------------------- #
# Refusals: one clear DataError naming the image, never a guess
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("picture", [
    Image.new("RGB", (200, 200), "white"),
    Image.new("L", (50, 80), 0),
    Image.fromarray(np.clip(np.random.default_rng(0).normal(220, 8, (300, 300)), 0, 255).astype(np.uint8)),
])
def test_blank_images_have_no_ink(picture):
    with pytest.raises(DataError, match="no ink found"):
        digit_from_image(encoded(picture), name="blank.png")


def test_unreadable_files_are_refused_by_name(tmp_path):
    empty, text, truncated = tmp_path / "empty.png", tmp_path / "notes.png", tmp_path / "cut.png"
    empty.write_bytes(b"")
    text.write_text("not an image at all")
    truncated.write_bytes(encoded(stroke_picture())[:300])
    for path, says in ((empty, "empty"), (text, "not an image"), (truncated, "truncated"),
                       (tmp_path / "missing.png", "no such file")):
        with pytest.raises(DataError, match=says) as error:
            digit_from_image(path)
        assert str(path) in str(error.value)


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # 10000: Pillow warns, we refuse
@pytest.mark.parametrize("side", [8000, 10000, 14000])  # over our limit; over Pillow's (it warns); over twice it
def test_decompression_bombs_are_refused(tmp_path, side):
    assert side * side > MAX_PIXELS
    path = tmp_path / "bomb.png"
    Image.new("1", (side, side)).save(path)  # a few kB on disk, hundreds of MB decoded
    assert path.stat().st_size < 2_000_000
    with pytest.raises(DataError, match="too large") as error:
        digit_from_image(path)
    assert "bomb.png" in str(error.value)


# --------------------------------------------------------------------------- #
# nnscratch predict
# --------------------------------------------------------------------------- #
@pytest.fixture(scope="module")
def small_model(tmp_path_factory):
    """A run folder from ``nnscratch train`` on the bundled sample; its model.npz."""
    return train_cli(tmp_path_factory.mktemp("predict") / "run", "--hidden", "32", "--activation", "relu",
                     "--epochs", "2") / "model.npz"


def test_predict_prints_digit_and_top3(tmp_path, small_model, capsys):
    first, second = tmp_path / "a.png", tmp_path / "b.jpg"
    stroke_picture().save(first)
    stroke_picture(ink="white", paper="black").save(second)
    assert cli.main(["predict", str(small_model), str(first), str(second)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{first}: ") and lines[0].count("%") == 3


def test_predict_json(tmp_path, small_model, capsys):
    image = tmp_path / "a.gif"
    stroke_picture().save(image)
    assert cli.main(["predict", str(small_model.parent), str(image), "--json"]) == 0
    [answer] = json.loads(capsys.readouterr().out)
    assert answer["file"] == str(image) and 0 <= answer["digit"] <= 9
    assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-4
    assert answer["digit"] == int(np.argmax(answer["probabilities"]))


def test_predict_on_a_bomb_pillow_only_warns_about_is_one_line(tmp_path, small_model):
    """10000x10000: over Pillow's limit, under twice it, so Pillow warns (2 lines) rather than refuses."""
    bomb = tmp_path / "bomb.png"
    Image.new("1", (10000, 10000)).save(bomb)
    done = subprocess.run([sys.executable, "-m", "nnscratch", "predict", str(small_model), str(bomb)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "too large" in done.stderr, done.stderr


@pytest.mark.parametrize("content", [b"", b"hello", None])
def test_predict_bad_image_is_one_line_and_exit_2(tmp_path, small_model, capsys, content):
    image = tmp_path / "bad.png"
    if content is None:
        Image.new("L", (64, 64), 255).save(image)  # blank
    else:
        image.write_bytes(content)
    assert cli.main(["predict", str(small_model), str(image)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and len(captured.err.strip().splitlines()) == 1 and "bad.png" in captured.err
