"""Many clients at once against ``nnscratch serve``: used by tests/test_web_load.py and bench/serve_load.py.

Every request opens its own connection, as a burst of new visitors would
(which is what overflowed the standard library's listen backlog of 5), and
whatever goes wrong at the connection level (reset, refused, cut short, no
answer in time) is recorded, never raised, so a test can count it.
"""
from __future__ import annotations

import http.client
import io
import os
import re
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

from PIL import Image, ImageDraw

STROKES = {1: [(150, 40), (135, 240)], 7: [(60, 50), (220, 50), (120, 240)], 4: [(170, 240), (170, 40), (60, 170), (230, 170)]}


def drawn_digit(kind: str = "PNG", digit: int = 1) -> bytes:
    """A digit drawn like on the page: dark strokes on a white 280x280 canvas (1 by default, or 7 or 4)."""
    canvas = Image.new("RGB", (280, 280), "white")
    ImageDraw.Draw(canvas).line(STROKES[digit], fill="black", width=18, joint="curve")
    out = io.BytesIO()
    canvas.save(out, kind)
    return out.getvalue()


@dataclass
class Outcome:
    """One request: which picture, what came back, how long it took, or what failed."""

    picture: int
    status: int | None = None
    retry_after: str | None = None
    body: bytes = b""
    seconds: float = 0.0
    error: str | None = None  # a connection-level failure: "ConnectionResetError: ...", "IncompleteRead..."


def post(address, body: bytes, picture: int = 0, timeout: float = 30) -> Outcome:
    """POST ``body`` (a PNG) to /api/predict on a new connection; the answer read to its last byte."""
    outcome = Outcome(picture)
    started = time.perf_counter()
    conn = http.client.HTTPConnection(*address, timeout=timeout)
    try:
        conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "image/png"})
        response = conn.getresponse()
        outcome.body = response.read()  # IncompleteRead if the answer is cut short of its Content-Length
        outcome.status, outcome.retry_after = response.status, response.getheader("Retry-After")
    except (OSError, http.client.HTTPException) as exc:
        outcome.error = f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
    outcome.seconds = time.perf_counter() - started
    return outcome


def hammer(address, pictures: list[bytes], requests: int, clients: int, bursts: bool = False) -> list[Outcome]:
    """``requests`` POSTs from ``clients`` threads, cycling through ``pictures``.

    Each client sends its next request when its last one is answered (a
    closed loop, as the page does). With ``bursts``, the clients also wait for
    one another before each round, so that every round is ``clients``
    connections arriving at the same instant.
    """
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients) if bursts else None
    share = [requests // clients + (k < requests % clients) for k in range(clients)]

    def client(k: int) -> None:
        mine = []
        for i in range(max(share)):
            if barrier is not None:
                barrier.wait()
            if i < share[k]:
                n = k + i * clients
                mine.append(post(address, pictures[n % len(pictures)], n % len(pictures)))
        with lock:
            outcomes.extend(mine)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


@contextmanager
def cpu_hog(processes: int = 1):
    """A CPU-bound process beside the server (a busy machine), stopped on leaving."""
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(processes)]
    try:
        yield
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()


def serving(model, *flags: str):
    """``nnscratch serve MODEL --port 0 FLAGS`` in a child process; yields its (host, port)."""
    return serving_command([sys.executable, "-m", "nnscratch", "serve", str(model), "--port", "0", *flags])


@contextmanager
def serving_command(command: list[str]):
    """A server started by ``command``, which prints ``http://HOST:PORT/`` when ready; yields (host, port)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OPENBLAS_NUM_THREADS": "1"}
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        said = []
        for line in child.stdout:
            said.append(line)
            found = re.search(r"http://([\d.]+):(\d+)/", line)
            if found:
                break
        else:
            raise RuntimeError(f"nnscratch serve did not start: {''.join(said)}")
        # keep reading what it says, so that a full pipe never blocks the server
        threading.Thread(target=lambda: said.extend(child.stdout), daemon=True).start()
        yield found.group(1), int(found.group(2))
    finally:
        child.terminate()
        child.wait(timeout=10)
        child.stdout.close()
