"""``nnscratch download``: fetched from a mirror, checked against SHA-256 sums, never half-written
(issue #17, point 7).

Every test talks to a server on 127.0.0.1 that serves files the test makes,
with a checksum table the test makes: nothing reaches outside.
"""
import gzip
import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from nnscratch import data
from nnscratch.apps import cli
from nnscratch.errors import DataError
from nnscratch.files import download

from .badfiles import idx_bytes
from .conftest import HOW_TO_GET, MNIST_DIR, data_root, mnist_dir, need

NAMES = ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
         "t10k-labels-idx1-ubyte.gz"]


def tiny_mnist() -> dict:
    """The four gzipped IDX files of a tiny MNIST: 30 training and 10 test digits."""
    rng = np.random.default_rng(0)
    parts = [idx_bytes(rng.integers(0, 256, (30, 28, 28))), idx_bytes(rng.integers(0, 10, 30)),
             idx_bytes(rng.integers(0, 256, (10, 28, 28))), idx_bytes(rng.integers(0, 10, 10))]
    return {name: gzip.compress(part, mtime=0) for name, part in zip(NAMES, parts)}


FILES = tiny_mnist()


class Mirror(BaseHTTPRequestHandler):
    """GET /<behaviour>/<name>: 'good' serves the file, 'damaged' one byte changed, 'partial' announces
    the whole file and closes half-way, 'missing' answers 404, 'shared/' serves ../shared/data's MNIST."""

    requests: list = []  # noqa: RUF012 - shared on purpose: what the tests' server was asked for

    def do_GET(self):
        Mirror.requests.append(self.path)
        behaviour, _, name = self.path.strip("/").partition("/")
        if behaviour == "shared":
            body = (MNIST_DIR / name).read_bytes()
        elif behaviour in ("good", "damaged", "partial") and name in FILES:
            body = FILES[name]
        else:
            self.send_error(404)
            return
        if behaviour == "damaged":
            body = body[:-9] + bytes([body[-9] ^ 1]) + body[-8:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[:len(body) // 2] if behaviour == "partial" else body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Mirror)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def table(server, monkeypatch):
    """The checksum table, injected: 'mnist' is the tiny MNIST, its mirrors on the local server."""
    tiny = {"mnist": {"title": "tiny MNIST", "mirrors": [f"{server}/missing/", f"{server}/good/"],
                      "files": {n: (hashlib.sha256(b).hexdigest(), len(b)) for n, b in FILES.items()}}}
    monkeypatch.setattr(download, "DATASETS", tiny)
    Mirror.requests.clear()
    return tiny


def run(argv, capsys):
    capsys.readouterr()
    try:
        status = cli.main(argv)
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def test_download_tries_the_mirrors_in_turn_and_checks_every_file(table, tmp_path, capsys):
    status, out, err = run(["download", "mnist", "--to", str(tmp_path / "mnist")], capsys)
    assert status == 0, err
    assert sorted(p.name for p in (tmp_path / "mnist").iterdir()) == sorted(NAMES)
    assert all((tmp_path / "mnist" / n).read_bytes() == b for n, b in FILES.items())
    assert "/missing/train-images-idx3-ubyte.gz" in Mirror.requests[0]  # the first mirror failed: the next one
    assert f"nnscratch train --data {tmp_path / 'mnist'}" in out
    split = data.load(tmp_path / "mnist")
    assert (len(split.train), len(split.test)) == (30, 10)


def test_a_damaged_file_is_refused_and_nothing_is_left(table, server, tmp_path, capsys):
    to = tmp_path / "mnist"
    status, _, err = run(["download", "mnist", "--to", str(to), "--mirror", f"{server}/damaged/"], capsys)
    assert status == 2 and err.count("\n") == 1
    assert "train-images-idx3-ubyte.gz: refused" in err and "not the published file (SHA-256" in err
    assert not to.exists()  # nothing fetched: not even the folder


def test_a_partial_file_is_refused_and_the_files_already_checked_stay(table, server, tmp_path, capsys):
    """The images come from a mirror that closes half-way through; the labels were fetched first."""
    files = table["mnist"]["files"]
    table["mnist"]["files"] = {NAMES[1]: files[NAMES[1]], NAMES[0]: files[NAMES[0]]}  # labels first
    to = tmp_path / "mnist"
    to.mkdir()
    (to / NAMES[1]).write_bytes(FILES[NAMES[1]])  # already there, with the right sum: kept, not fetched
    status, _, err = run(["download", "mnist", "--to", str(to), "--mirror", f"{server}/partial/"], capsys)
    assert status == 2 and err.count("\n") == 1
    assert "train-images-idx3-ubyte.gz: refused" in err and "partial" in err
    assert [p.name for p in to.iterdir()] == [NAMES[1]]  # no partial file, no temporary file
    assert not any(NAMES[1] in r for r in Mirror.requests)


def test_a_different_file_already_there_is_never_overwritten(table, tmp_path, capsys):
    to = tmp_path / "mnist"
    to.mkdir()
    (to / NAMES[2]).write_bytes(b"my own test images")
    status, _, err = run(["download", "mnist", "--to", str(to)], capsys)
    assert status == 2 and "t10k-images-idx3-ubyte.gz: already there but not the published file" in err
    assert (to / NAMES[2]).read_bytes() == b"my own test images" and len(list(to.iterdir())) == 1
    assert Mirror.requests == []  # refused before fetching anything


def test_bad_flags_are_one_line(table, tmp_path, capsys):
    (tmp_path / "a file").write_text("x")
    for argv, message in [(["--to", str(tmp_path / "a file")], "exists and is not a folder"),
                          (["--to", str(tmp_path / "m"), "--mirror", "ftp://example.org/"], "give an http://"),
                          (["--to", str(tmp_path / "m"), "--mirror", "http://127.0.0.1:9/"], "refused")]:
        status, _, err = run(["download", "mnist", *argv], capsys)
        assert status == 2 and err.count("\n") == 1 and message in err, err
    status, _, err = run(["download", "kmnist", "--to", str(tmp_path / "m")], capsys)
    assert status == 2 and "invalid choice: 'kmnist'" in err


def test_the_published_sums_refuse_the_recompressed_shared_files(server, tmp_path, capsys):
    """../shared/data's MNIST files were recompressed: a downloader checking the published sums
    must refuse them, even the test images, whose size is the published one."""
    need(MNIST_DIR)
    assert download.DATASETS["mnist"]["files"][NAMES[0]][0].startswith("440fcabf")  # the real table
    status, _, err = run(["download", "mnist", "--to", str(tmp_path / "m"), "--mirror", f"{server}/shared/"], capsys)
    assert status == 2 and "not the published file" in err and not (tmp_path / "m").exists()
    sha256, size = download.DATASETS["mnist"]["files"][NAMES[2]]
    assert (MNIST_DIR / NAMES[2]).stat().st_size == size
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte\.gz: refused.*SHA-256 [0-9a-f]{12}\.\.\., "
                                        r"expected 8d422c7b0a1c\.\.\.; 1648877 bytes, published 1648877"):
        download.download_file(NAMES[2], sha256, size, [f"{server}/shared/"], tmp_path, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_the_tests_find_full_datasets_through_nnscratch_data(tmp_path):
    """A folder written by ``nnscratch download mnist --to DIR`` serves the tests as NNSCRATCH_DATA=DIR."""
    assert data_root({"NNSCRATCH_DATA": str(tmp_path)}) == tmp_path
    assert data_root({}).name == "data" and data_root({}).parent.name == "shared"
    assert mnist_dir(tmp_path) == tmp_path / "mnist"  # the shared layout
    for name, body in FILES.items():
        (tmp_path / name).write_bytes(body)
    assert mnist_dir(tmp_path) == tmp_path  # download's layout: the files in DIR itself
    assert "nnscratch download mnist --to DIR" in HOW_TO_GET[MNIST_DIR]
    assert "NNSCRATCH_DATA=DIR" in HOW_TO_GET[MNIST_DIR]
