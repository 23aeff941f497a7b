"""Fixtures shared by the web tests: a small trained model and a live server."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import nnscratch
from nnscratch.apps.web.server import DigitReader, find_history, make_server


def train_cli(out: Path, *flags: str) -> Path:
    """Run ``nnscratch train --out OUT FLAGS`` in a child process; returns the run folder.

    The child uses one BLAS thread: on a busy 2-core machine OpenBLAS's
    spinning worker threads made the same training 10x slower (measured:
    15 s with one thread against 180 s with two, while other jobs ran).
    """
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "nnscratch", "train", "--out", str(out), *flags],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out


_TRAINED = {}  # test_web.py and test_browser.py each import the fixtures: train only once


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    """A small network trained on the bundled sample by ``nnscratch train`` (its run folder)."""
    if "model" not in _TRAINED:
        run = train_cli(tmp_path_factory.mktemp("web") / "run", "--hidden", "32,16", "--activation", "relu",
                        "--dropout", "0.1", "--epochs", "4")
        _TRAINED["model"] = nnscratch.load(run), run
    return _TRAINED["model"]


@pytest.fixture(scope="session")
def server(model):
    """The server on an ephemeral port of 127.0.0.1, in a thread; yields (host, port)."""
    net, path = model
    httpd = make_server(DigitReader(net, str(path), find_history(net, path)), "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[:2]
    httpd.shutdown()
    httpd.server_close()
