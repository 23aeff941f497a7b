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


# Recorded in the page itself (Python's clock would see the sync API's event dispatch, not the page):
# when each prediction is asked (ms), and every message the status line shows.
RECORDER = """
window.seen = {asked: [], status: []};
const realFetch = window.fetch;
window.fetch = (url, options) => {
  if (String(url).includes("/api/predict")) window.seen.asked.push(performance.now());
  return realFetch(url, options);
};
document.addEventListener("DOMContentLoaded", () => {
  const status = document.getElementById("status");
  new MutationObserver(() => window.seen.status.push(status.textContent))
    .observe(status, {childList: true, characterData: true, subtree: true});
});
"""


def drawn_page(browser, server, busy_answers: int):
    """A page with a 7 drawn and read; then its next ``busy_answers`` predictions get 503 Retry-After: 1."""
    page = browser.new_page()
    page.add_init_script(RECORDER)
    page.goto("http://{}:{}/".format(*server))
    draw_seven(page)
    page.wait_for_function("document.getElementById('digit').textContent.trim().match(/^[0-9]$/)", timeout=15000)
    page.wait_for_timeout(500)  # any request still out for the drawing comes back
    refused = []

    def route(route):
        if len(refused) < busy_answers:
            refused.append(1)
            route.fulfill(status=503, headers={"Retry-After": "1"}, content_type="application/json",
                          body='{"error": "the server is busy"}')
        else:
            route.continue_()

    page.route("**/api/predict", route)
    page.evaluate("window.seen.asked = []; window.seen.status = []")
    box = page.locator("#pad").bounding_box()
    page.mouse.click(box["x"] + 0.7 * box["width"], box["y"] + 0.8 * box["height"])  # a dot: one new request
    return page


def test_a_503_is_asked_again_once_after_retry_after(browser, server):
    page = drawn_page(browser, server, busy_answers=1)
    page.wait_for_function("window.seen.asked.length === 2 && document.getElementById('status').textContent === ''"
                           " && document.getElementById('digit').textContent.trim().match(/^[0-9]$/)", timeout=15000)
    seen = page.evaluate("window.seen")
    assert "the server is busy: asking again in 1 s" in seen["status"]
    assert seen["asked"][1] - seen["asked"][0] >= 1000  # after the advertised second, not before
    page.wait_for_timeout(1500)
    assert len(page.evaluate("window.seen.asked")) == 2  # and only once
    page.close()


def test_a_second_503_clears_the_old_answer_and_says_so(browser, server):
    page = drawn_page(browser, server, busy_answers=100)
    page.wait_for_function("document.getElementById('status').textContent.includes('still busy')", timeout=15000)
    assert page.locator("#digit").inner_text() == "?"  # not the old drawing's answer
    assert page.locator("#bar-0 .value").inner_text() == "–"
    page.wait_for_timeout(1500)
    assert len(page.evaluate("window.seen.asked")) == 2  # asked again once only
    page.close()
