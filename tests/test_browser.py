"""The page in a real browser: headless Chromium driven by Playwright.

Draws a digit on the canvas with mouse events and checks that the page shows
a prediction with its probabilities, the 28x28 input and the hidden layers.
Needs Debian's ``chromium`` (``apt-get install chromium``) and the
``playwright`` Python package (``pip install -e '.[browser]'``); Playwright's
own browser download is never used. Skipped, with the reason, when either is
missing.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from .webtools import model, server  # noqa: F401 - pytest fixtures

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                   "(pip install -e '.[browser]')")
    if not Path(CHROMIUM).is_file():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield chromium
        chromium.close()


def draw_seven(page):
    """Drag the mouse over the canvas like a hand drawing a 7."""
    box = page.locator("#pad").bounding_box()
    x, y, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x + 0.25 * w, y + 0.2 * h)
    page.mouse.down()
    for fx, fy in [(0.5, 0.2), (0.75, 0.2), (0.65, 0.45), (0.55, 0.65), (0.45, 0.85)]:
        page.mouse.move(x + fx * w, y + fy * h, steps=6)
    page.mouse.up()


def test_drawing_shows_prediction_probabilities_input_and_layers(browser, server):
    host, port = server
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"http://{host}:{port}/")
    assert page.locator("#digit").inner_text() == "?"

    draw_seven(page)
    page.wait_for_function("document.getElementById('digit').textContent.trim().match(/^[0-9]$/)", timeout=15000)
    digit = int(page.locator("#digit").inner_text())
    values = [float(page.locator(f"#bar-{d} .value").inner_text().split()[0]) for d in range(10)]
    assert abs(sum(values) - 100) < 1  # the probabilities, in %
    assert max(values) == values[digit]
    assert "top" in page.locator(f"#bar-{digit}").get_attribute("class")
    assert page.locator("#layers canvas").count() == 2  # one grid per hidden layer
    seen = page.evaluate("""() => {
        const data = document.getElementById('input').getContext('2d').getImageData(0, 0, 28, 28).data;
        let lit = 0; for (let i = 0; i < data.length; i += 4) if (data[i] > 128) lit++; return lit; }""")
    assert seen > 20  # the 28x28 image the network sees has white ink on it

    page.click("#clear")
    assert page.locator("#digit").inner_text() == "?"

    page.click("#tab-model")
    page.wait_for_function("document.getElementById('model-info').textContent.includes('784')", timeout=10000)
    page.wait_for_function("document.getElementById('weights').naturalWidth > 0", timeout=10000)
    assert "4 epochs" in page.locator("#curves-note").inner_text()
    assert errors == []
    assert all(url.startswith(f"http://{host}:{port}/") for url in requests)  # nothing from elsewhere
    page.close()


def busy_server(page, answers: int):
    """Make the page's first ``answers`` predictions get 503 Retry-After: 1 (in the browser); the rest go through.

    Returns the list of times (s) at which the page asked."""
    asked = []

    def route(route):
        asked.append(time.monotonic())
        if len(asked) <= answers:
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": "the server is busy"}')
        else:
            route.continue_()

    page.route("**/api/predict", route)
    return asked


def test_a_503_is_asked_again_once_after_retry_after(browser, server):
    page = browser.new_page()
    page.goto("http://{}:{}/".format(*server))
    asked = busy_server(page, answers=1)
    draw_seven(page)
    page.wait_for_function("document.getElementById('status').textContent.includes('asking again in 1 s')",
                           timeout=5000)
    assert page.locator("#digit").inner_text() == "?"
    page.wait_for_function("document.getElementById('digit').textContent.trim().match(/^[0-9]$/)", timeout=15000)
    assert len(asked) == 2 and asked[1] - asked[0] >= 0.95  # once, after the advertised second
    assert page.locator("#status").inner_text() == ""
    page.close()


def test_a_second_503_clears_the_old_answer_and_says_so(browser, server):
    page = browser.new_page()
    page.goto("http://{}:{}/".format(*server))
    draw_seven(page)
    page.wait_for_function("document.getElementById('digit').textContent.trim().match(/^[0-9]$/)", timeout=15000)
    asked = busy_server(page, answers=100)
    draw_seven(page)  # a new drawing while the server is full
    page.wait_for_function("document.getElementById('status').textContent.includes('still busy')", timeout=10000)
    assert page.locator("#digit").inner_text() == "?"  # not the old drawing's answer
    assert page.locator("#bar-0 .value").inner_text() == "–"
    time.sleep(1.5)
    assert len(asked) == 2  # asked again once only
    page.close()
