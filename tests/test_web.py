"""The web server over a real socket: pages, predictions, refusals, concurrency."""
from __future__ import annotations

import http.client
import io
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from nnscratch.apps.web.server import MAX_BODY

from .badfiles import png_declaring
from .loadtools import drawn_digit
from .webtools import model, server  # noqa: F401 - pytest fixtures shared with test_browser.py


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection(*server, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type"), response.read()
    finally:
        conn.close()


def test_page_and_assets_are_served_locally(server):
    status, kind, page = request(server, "GET", "/")
    assert status == 200 and kind.startswith("text/html")
    assert b'<canvas id="pad"' in page
    for asset, kind_start in (("/app.js", "text/javascript"), ("/style.css", "text/css")):
        status, kind, body = request(server, "GET", asset)
        assert status == 200 and kind.startswith(kind_start) and len(body) > 500
        assert b"http://" not in body and b"https://" not in body  # no CDN, nothing fetched elsewhere
    assert b"https://" not in page and b"http://" not in page
    assert request(server, "GET", "/nothing-here")[0] == 404


@pytest.mark.parametrize("kind, mime", [("PNG", "image/png"), ("JPEG", "image/jpeg")])
def test_predict_answers_digit_probabilities_input_and_activations(server, model, kind, mime):
    status, ctype, body = request(server, "POST", "/api/predict", drawn_digit(kind), {"Content-Type": mime})
    assert status == 200 and ctype == "application/json"
    answer = json.loads(body)
    probabilities = np.array(answer["probabilities"])
    assert probabilities.shape == (10,) and abs(probabilities.sum() - 1) < 1e-4
    assert answer["digit"] == int(probabilities.argmax())
    pixels = np.array(answer["input"])
    assert pixels.shape == (28, 28) and pixels.min() >= 0 and pixels.max() == 255
    assert [len(layer) for layer in answer["activations"]] == [32, 16]
    # the same answer as the Python API on the same preprocessing
    from nnscratch.files.images import digit_from_image
    expected = model[0].predict_proba(digit_from_image(drawn_digit(kind)))[0]
    assert np.allclose(probabilities, expected, atol=1e-5)


@pytest.mark.parametrize("body, headers, says", [
    (b"this is not an image", {"Content-Type": "image/png"}, "request body: not an image"),
    (b"", {"Content-Type": "image/png"}, "request body: empty (0 bytes)"),
    (drawn_digit()[:200], {"Content-Type": "image/png"}, "truncated"),
    (png_declaring(30000, 30000), {"Content-Type": "image/png"}, "request body: image too large to decode safely"),
    (png_declaring(8000, 8000), {"Content-Type": "image/png"}, "8000x8000 pixels is too large"),
    (drawn_digit(), {"Content-Type": "text/plain"}, "Content-Type 'text/plain': send image/png or image/jpeg"),
    (b"just text", {}, "request body: not an image"),  # no Content-Type (http.client sends none): the bytes decide
    (drawn_digit(), {"Content-Type": "application/x-www-form-urlencoded"}, "curl -F file=@digit.png"),
    (b"--x\r\nContent-Disposition: form-data; name=\"n\"\r\n\r\n7\r\n--x--\r\n",
     {"Content-Type": "multipart/form-data; boundary=x"}, "multipart form without a file"),
    (b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\nnot a png\r\n--x--\r\n",
     {"Content-Type": "multipart/form-data; boundary=x"}, "form file 'a.png': not an image"),
    (drawn_digit(), {"Content-Type": "image/png", "Content-Length": "lots"}, "Content-Length 'lots' is not a size"),
])
def test_bad_bodies_get_400_with_a_one_line_message(server, body, headers, says):
    status, ctype, answer = request(server, "POST", "/api/predict", body, headers)
    assert status == 400 and ctype == "application/json"
    error = json.loads(answer)["error"]
    assert says in error and "\n" not in error and "Traceback" not in error


def test_a_body_without_content_length_gets_411(server):
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        conn.putrequest("POST", "/api/predict")
        conn.putheader("Content-Type", "image/png")
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 411 and "Content-Length" in json.loads(response.read())["error"]
    finally:
        conn.close()


def test_blank_canvas_gets_400_no_ink(server):
    blank = io.BytesIO()
    Image.new("RGB", (280, 280), "white").save(blank, "PNG")
    status, _, answer = request(server, "POST", "/api/predict", blank.getvalue(), {"Content-Type": "image/png"})
    assert status == 400 and "no ink" in json.loads(answer)["error"]


def test_body_over_2mb_gets_413(server):
    big = b"\x89PNG" + bytes(MAX_BODY)  # one byte too many, all sent
    status, _, answer = request(server, "POST", "/api/predict", big, {"Content-Type": "image/png"})
    assert status == 413 and "limit" in json.loads(answer)["error"]


def test_413_is_decided_from_content_length_before_reading(server):
    """A client announcing 1 GB gets 413 at once, without the server waiting for (or storing) it."""
    conn = http.client.HTTPConnection(*server, timeout=10)
    conn.putrequest("POST", "/api/predict")
    conn.putheader("Content-Type", "image/png")
    conn.putheader("Content-Length", str(2**30))
    conn.endheaders()
    conn.send(b"x" * 1000)
    response = conn.getresponse()
    assert response.status == 413
    conn.close()


def test_model_description_and_weights(server):
    status, _, body = request(server, "GET", "/api/model")
    info = json.loads(body)
    assert status == 200 and info["sizes"] == [784, 32, 16, 10] and "ReLU()" in info["layers"]
    assert len(info["history"]["train_cost"]) == 4
    status, kind, png = request(server, "GET", "/api/weights.png")
    assert status == 200 and kind == "image/png"
    assert Image.open(io.BytesIO(png)).size[0] > 100


def test_400_requests_from_16_threads_all_succeed(server, model):
    """The page sends a request per stroke: the shared network must stay exact under load."""
    bodies = [drawn_digit("PNG"), drawn_digit("JPEG")]
    expected = {}
    for i, body in enumerate(bodies):
        _, _, answer = request(server, "POST", "/api/predict", body, {"Content-Type": "image/png"})
        expected[i] = json.loads(answer)["probabilities"]

    def one(i):
        status, _, answer = request(server, "POST", "/api/predict", bodies[i % 2], {"Content-Type": "image/png"})
        return status, json.loads(answer)["probabilities"], i % 2

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(one, range(400)))
    assert [r[0] for r in results] == [200] * 400
    assert all(r[1] == expected[r[2]] for r in results)  # dropout never switched on by a neighbour


def test_serve_command_without_model_trains_a_quick_one_and_serves(tmp_path):
    """``nnscratch serve`` in a folder without runs/: says it trains, trains, then serves."""
    import os
    import re
    import subprocess
    import sys

    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    child = subprocess.Popen([sys.executable, "-m", "nnscratch", "serve", "--port", "0"], cwd=tmp_path,
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        said = []
        for line in child.stdout:
            said.append(line)
            if "open http://" in line:
                break
        assert any("training a quick one" in line for line in said), said
        host, port = re.search(r"http://([\d.]+):(\d+)/", said[-1]).groups()
        assert host == "127.0.0.1"  # this machine only, unless --host says otherwise
        status, _, body = request((host, int(port)), "GET", "/api/model")
        assert status == 200 and json.loads(body)["sizes"] == [784, 64, 32, 10]
        assert (tmp_path / "runs").is_dir() and list((tmp_path / "runs").glob("*/model.npz"))
    finally:
        child.terminate()
        child.wait(timeout=10)


def test_serve_uses_the_latest_run(tmp_path, monkeypatch, model):
    import shutil

    from nnscratch.apps.web.server import open_reader

    _, run = model
    for name in ("20250101-000000", "20250102-000000"):
        shutil.copytree(run, tmp_path / "runs" / name)
    monkeypatch.chdir(tmp_path)
    said = []
    reader = open_reader(None, log=said.append)
    assert reader.source.endswith("20250102-000000") and "latest finished run" in said[0]
    assert len(reader.describe()["history"]["train_cost"]) == 4  # from the run's metrics.json


def test_serve_prefers_finished_runs_and_never_takes_a_diverged_one(tmp_path, monkeypatch, model):
    """Newest first: a diverged run is skipped, a finished one beats a newer unfinished one."""
    import os
    import shutil

    from nnscratch.apps.web import server as web
    from nnscratch.files.checkpoint import mark_diverged
    from nnscratch.files.modelfile import read_model_file, write_model_file

    _, run = model
    runs = tmp_path / "runs"
    for age, name in enumerate(["3-newest-diverged", "2-unfinished", "1-finished"]):
        shutil.copytree(run, runs / name)
        os.utime(runs / name / "model.npz", (1e9 - age * 1000, 1e9 - age * 1000))
    mark_diverged(runs / "3-newest-diverged" / "model.npz", "cost became NaN at epoch 2")  # rewrites: newest
    meta, arrays = read_model_file(runs / "2-unfinished" / "model.npz")
    assert meta.pop("finished")
    write_model_file(runs / "2-unfinished" / "model.npz", meta, arrays)
    os.utime(runs / "2-unfinished" / "model.npz", (1e9 + 10, 1e9 + 10))  # newer than the finished run
    monkeypatch.chdir(tmp_path)

    said = []
    assert web.open_reader(None, log=said.append).source == str(Path("runs", "1-finished"))
    assert "latest finished run" in said[0]

    shutil.rmtree(runs / "1-finished")  # no finished run left: the unfinished one, with a note
    said.clear()
    assert web.open_reader(None, log=said.append).source == str(Path("runs", "2-unfinished"))
    assert "no finished run" in said[0] and "--resume" in said[0]

    shutil.rmtree(runs / "2-unfinished")  # only the diverged run: never served, a quick model instead
    monkeypatch.setattr(web, "quick_model", lambda log: run)
    assert web.open_reader(None, log=said.append).source == str(run)


@pytest.mark.parametrize("argv, says", [
    (["serve", "no/such/model.npz"], "no such model file"),
    (["serve", "--port", "70000"], "--port"),
    (["serve", "--host", "256.0.0.1", "--port", "0"], "cannot listen"),
])
def test_serve_refuses_bad_arguments_in_one_line(argv, says, model, capsys):
    from nnscratch.apps import cli

    if argv[1].startswith("--"):
        argv = [argv[0], str(model[1]), *argv[1:]]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and len(err.strip().splitlines()) == 1


def test_at_most_decoders_images_are_decoded_at_once(model, monkeypatch):
    """Each decode may take a few hundred MB for a moment: 16 requests must not run 16 at once."""
    import threading
    import time

    from nnscratch.apps.web import server as web

    busy, most, guard = [0], [0], threading.Lock()

    def slow_decode(image, name):
        with guard:
            busy[0] += 1
            most[0] = max(most[0], busy[0])
        time.sleep(0.05)
        with guard:
            busy[0] -= 1
        return np.zeros(784, np.uint8)

    monkeypatch.setattr(web, "digit_from_image", slow_decode)
    reader = web.DigitReader(model[0])
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda _: reader.read(b"image"), range(32)))
    assert len(answers) == 32 and most[0] == web.DECODERS


@pytest.mark.parametrize("method, path", [("POST", "/api/predict"), ("GET", "/api/model")])
def test_a_bug_of_ours_gets_500_and_one_log_line(model, monkeypatch, capsys, method, path):
    """Any exception other than DataError: 500 with a one-line error, a one-line log, no traceback."""
    import threading

    from nnscratch.apps.web.server import DigitReader, make_server

    def broken(*args, **kwargs):
        raise RuntimeError("the reader broke\non two lines")

    reader = DigitReader(model[0])
    monkeypatch.setattr(reader, "read", broken)
    monkeypatch.setattr(reader, "describe", broken)
    httpd = make_server(reader, "127.0.0.1", 0)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        status, ctype, body = request(httpd.server_address[:2], method, path, drawn_digit(),
                                      {"Content-Type": "image/png"})
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert status == 500 and ctype == "application/json"
    assert json.loads(body) == {"error": "internal error: RuntimeError: the reader broke on two lines"}
    logged = capsys.readouterr().err
    assert "Traceback" not in logged
    [line] = [line for line in logged.splitlines() if "RuntimeError" in line]
    assert f"{method} {path}: internal error: RuntimeError: the reader broke on two lines" in line


def test_weights_png_is_figures_mosaic_red_positive_blue_negative():
    """The server draws figures.weight_mosaic's tiles (one implementation): 2 neurons -> 2x1 tiles, zoomed 3x."""
    from nnscratch import Classifier, mlp
    from nnscratch.apps.web.server import DigitReader

    net = Classifier(mlp([784, 2, 10], seed=0))
    W = net.network.layers[1].W
    W[:, 0], W[:, 1] = 0.3, -0.2
    picture = np.asarray(Image.open(io.BytesIO(DigitReader(net).weights_png())).convert("RGB"), int)
    assert picture.shape == (28 * 3, (2 * 29 - 1) * 3, 3)  # figures.weight_mosaic: 1 px between tiles
    red, blue = picture[40, 40], picture[40, 29 * 3 + 40]
    assert red[0] > 100 and red[1:].max() == 0 and blue[2] > 50 and blue[:2].max() == 0  # seismic: dark ends


def form(fields: dict, boundary: str = "----nnscratch-test") -> tuple[bytes, dict]:
    """A ``multipart/form-data`` body as browsers and ``curl -F`` send it: name -> (filename, bytes) or text."""
    body = b""
    for name, value in fields.items():
        if isinstance(value, tuple):
            filename, data = value
            body += (f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
        else:
            body += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    body += f"--{boundary}--\r\n".encode()
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}


def probabilities_for(server, body, headers):
    status, _, answer = request(server, "POST", "/api/predict", body, headers)
    assert status == 200, answer
    return json.loads(answer)["probabilities"]


def test_a_form_upload_and_an_untyped_body_read_like_a_typed_one(server):
    """``curl -F file=@digit.png``, a form with other fields first, no Content-Type, octet-stream: one answer."""
    png = drawn_digit()
    expected = probabilities_for(server, png, {"Content-Type": "image/png"})
    assert probabilities_for(server, *form({"file": ("digit.png", png)})) == expected
    assert probabilities_for(server, *form({"note": "a 1", "picture": ("d.png", png)})) == expected  # any file field
    assert probabilities_for(server, png, {}) == expected
    assert probabilities_for(server, png, {"Content-Type": "application/octet-stream"}) == expected
    jpeg = drawn_digit("JPEG")
    assert (probabilities_for(server, *form({"file": ("d.jpg", jpeg)}))
            == probabilities_for(server, jpeg, {"Content-Type": "image/jpeg"}))


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_readmes_curl_line_works(server, tmp_path):
    """The curl line shown in the README's web section, run as written (on the test server's port)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    web = readme[readme.index("## Draw a digit in your browser"):]
    [line] = [line for line in web.splitlines() if line.startswith("curl ")][:1]
    assert "-F file=@digit.png" in line and "/api/predict" in line
    (tmp_path / "digit.png").write_bytes(drawn_digit())
    command = line.split("#")[0].replace("127.0.0.1:8000", f"{server[0]}:{server[1]}")
    done = subprocess.run(command, shell=True, check=False, cwd=tmp_path, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["digit"] == int(np.argmax(answer["probabilities"]))


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/api/predict", "POST"),
    ("POST", "/api/model", "GET"),
    ("POST", "/", "GET"),
    ("POST", "/api/weights.png", "GET"),
])
def test_a_known_path_with_the_wrong_method_gets_405_and_allow(server, method, path, allow):
    conn = http.client.HTTPConnection(*server, timeout=10)
    try:
        conn.request(method, path, body=b"x" if method == "POST" else None)
        response = conn.getresponse()
        error = json.loads(response.read())["error"]
    finally:
        conn.close()
    assert response.status == 405 and response.getheader("Allow") == allow
    assert error == f"{path} answers {allow} only"
    assert request(server, "POST", "/no/such/endpoint", b"x")[0] == 404
