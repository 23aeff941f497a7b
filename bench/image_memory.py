"""Peak memory of reading one big image with :func:`nnscratch.files.images.digit_from_image`.

    python bench/image_memory.py [--side 7000]

For a digit drawn on a SIDE x SIDE canvas saved as PNG in three modes (a
transparent RGBA canvas like the web page's, RGB paper, grey paper), each read
in a fresh process, it prints how much the process's peak resident memory
rose while decoding and preprocessing, next to the peer: the size of the
decoded image itself (Pillow keeps RGB and RGBA at 4 bytes a pixel, grey at
1), which no PNG reader can avoid.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw

# VmHWM, this process's peak resident memory in kB: unlike getrusage's ru_maxrss it starts
# afresh at exec, so the parent's own peak (the canvas it drew) does not leak into the figure.
PROBE = """
import sys
from nnscratch.files.images import digit_from_image
def peak():
    return next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
data = open(sys.argv[1], "rb").read()
before = peak()
digit_from_image(data)
print(peak() - before)
"""
CANVASES = {"RGBA": ((0, 0, 0, 0), (0, 0, 0, 255), 4), "RGB": ("white", "black", 4), "L": (255, 0, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=7000, help="canvas side in pixels (default: %(default)s)")
    args = parser.parse_args()
    side = args.side
    print(f"{side}x{side} PNG   file     decoded   peak rise   ratio")
    with tempfile.TemporaryDirectory() as tmp:
        for mode, (paper, ink, depth) in CANVASES.items():
            canvas = Image.new(mode, (side, side), paper)
            ImageDraw.Draw(canvas).line([(side // 2, side // 7), (side * 47 // 100, side * 6 // 7)], fill=ink,
                                        width=side // 14)
            path = Path(tmp) / f"{mode}.png"
            canvas.save(path)
            del canvas
            done = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True,
                                  check=True)
            rise = int(done.stdout) / 1024
            decoded = side * side * depth / 2**20
            print(f"{mode:>5}        {path.stat().st_size / 1024:5.0f} kB  {decoded:5.0f} MB  {rise:6.0f} MB"
                  f"   {rise / decoded:4.1f}x")


if __name__ == "__main__":
    main()
