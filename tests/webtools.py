"""Fixtures shared by the web tests: a small trained model and a live server."""
from __future__ import annotations

import threading

import pytest

import nnscratch
from nnscratch import data
from nnscratch.web.server import DigitReader, find_history, make_server


_TRAINED = {}  # test_web.py and test_browser.py each import the fixtures: train only once


@pytest.fixture(scope="session")
def model(tmp_path_factory):
    """A small network trained for a second on the bundled sample, saved and loaded back."""
    if "model" in _TRAINED:
        return _TRAINED["model"]
    split = data.load()
    net = nnscratch.MLP([784, 32, 16, 10], activation="relu", dropout=0.1, seed=0)
    history = net.fit(split.train.images, split.train.labels, epochs=4, optimizer="adam", lr=2e-3, batch_size=64)
    path = tmp_path_factory.mktemp("model") / "model.npz"
    net.save(path, history=history.as_dict())
    _TRAINED["model"] = nnscratch.load(path), path
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
