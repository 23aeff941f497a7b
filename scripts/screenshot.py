"""Make docs/screenshot.png: the page of ``nnscratch serve`` with a digit drawn on it.

    python scripts/screenshot.py [MODEL] [--out docs/screenshot.png]

Starts the server on a free port (MODEL as ``nnscratch serve`` takes it: a
model file or run folder; default the latest run under runs/), opens the page
in headless Chromium (Debian's /usr/bin/chromium driven by Playwright), draws
a 3 with the mouse, waits for the answer and saves the picture. Also saves
the "Inside the model" view beside it (``-model.png``).
"""
from __future__ import annotations

import argparse
import math
import threading
from pathlib import Path

from playwright.sync_api import sync_playwright

from nnscratch.apps.web.server import make_server, open_reader

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def three() -> list[tuple[float, float]]:
    """A hand-drawn 3 as points in [0, 1]^2: two arcs, open on the left."""
    top = [(0.5 + 0.17 * math.cos(a), 0.3 + 0.14 * math.sin(a)) for a in
           [math.radians(d) for d in range(-160, 91, 10)]]
    bottom = [(0.5 + 0.2 * math.cos(a), 0.62 + 0.19 * math.sin(a)) for a in
              [math.radians(d) for d in range(-90, 161, 10)]]
    return top + bottom


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?")
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "screenshot.png"))
    args = parser.parse_args()
    server = make_server(open_reader(args.model), "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1180, "height": 640})
        page.goto(url)
        box = page.locator("#pad").bounding_box()
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in three()]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=3)
        page.mouse.up()
        page.wait_for_function("document.getElementById('digit').textContent.trim().match(/^[0-9]$/)")
        page.wait_for_timeout(500)  # let the bars finish their transition
        page.screenshot(path=args.out, full_page=True)
        page.click("#tab-model")
        page.wait_for_function("document.getElementById('weights').naturalWidth > 0")
        model_view = str(Path(args.out).with_name(Path(args.out).stem + "-model.png"))
        page.screenshot(path=model_view, full_page=True)
        browser.close()
    server.shutdown()
    print(f"wrote {args.out} and {model_view}")


if __name__ == "__main__":
    main()
