"""``nnscratch serve``: a local web page to draw digits and watch the network read them.

Built on the standard library's :mod:`http.server`: the page needs three
static files (HTML, JavaScript, CSS) and three small endpoints (two answer
JSON, one a PNG), which it handles without adding a dependency (see
docs/web.md). Each connection gets its own thread, within the bounds of
:mod:`.limits` (listen backlog, thread cap, 503 when full, a time limit per
request). The one thing the threads share, the network, is only read, behind a
lock, and at most ``DECODERS`` images are decoded at once (see
:class:`DigitReader`). Bad input gets 400 with a one-line error; a bug of ours
gets 500 ``{"error": "internal error: ..."}`` and one log line, never a traceback.

Endpoints:

* ``GET /`` (and ``/app.js``, ``/style.css``): the page, every asset served from here;
* ``POST /api/predict``: body = a PNG or JPEG image, or a form upload (see
  :mod:`.uploads`) -> the digit, the 10 probabilities, the 28x28 input the
  network sees and the hidden activations;
* ``GET /api/model``: the architecture, accuracy and training history;
* ``GET /api/weights.png``: the first layer's weights, one 28x28 tile per neuron.
"""
from __future__ import annotations

import io
import json
import math
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path

from ...errors import DataError
from ...files.images import digit_from_image
from ...files.modelfile import load_model, read_model_file
from ..figures import weight_mosaic
from ..reports import plt
from . import limits
from .limits import Busy, ClassroomServer, Deadline, Gate, Stalled
from .uploads import picture_from_body

MAX_BODY = 2 * 1024 * 1024  # bytes: a 280x280 canvas PNG is ~10 kB; phone photos fit too
DECODERS = 2  # images decoded at once: a 2 MB PNG may decode to ~200 MB, so 16 at once would take GBs
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
METHODS = {**{path: "GET" for path in STATIC}, "/api/model": "GET", "/api/weights.png": "GET",
           "/favicon.ico": "GET", "/api/predict": "POST"}  # for 405 and its Allow header


class DigitReader:
    """A trained network shared by every request thread.

    ``MLP.predict_proba`` and ``hidden_activations`` switch the layers'
    ``training`` flags (dropout off, then on again) and the layers remember
    their last input: that is state, so two threads must not run the network
    at once. One forward pass of one digit takes well under a millisecond,
    so a lock costs nothing noticeable and keeps every answer exact.

    Decoding is bounded too, by a semaphore: at most ``DECODERS`` images are
    decoded at once, because each may take a few hundred MB for a moment.
    """

    def __init__(self, model, source: str = "", history: dict | None = None):
        self.model = model
        self.source = source
        self.history = history or {}
        self._lock = threading.Lock()
        self._decoding = threading.BoundedSemaphore(DECODERS)
        self._weights_png = None

    def read(self, image: bytes, name: str = "request body") -> dict:
        """Everything the page shows about one image (raises DataError if it holds no digit)."""
        with self._decoding:
            pixels = digit_from_image(image, name)
        with self._lock:
            probabilities = self.model.predict_proba(pixels)[0]
            activations = self.model.hidden_activations(pixels)
        return {
            "digit": int(probabilities.argmax()),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "input": pixels.reshape(28, 28).tolist(),
            "activations": [[round(float(a), 4) for a in layer[0]] for layer in activations],
        }

    def describe(self) -> dict:
        """What ``GET /api/model`` answers: architecture, accuracy and history."""
        meta = getattr(self.model, "meta", {}) or {}
        return {
            "source": self.source,
            "sizes": self.model.sizes,
            "activation": self.model.activation,
            "parameters": int(sum(p.size for p in self.model.parameters())),
            "metrics": meta.get("metrics", {}),
            "history": self.history,
        }

    def weights_png(self, max_tiles: int = 100, zoom: int = 3) -> bytes:
        """The first layer's weights as a PNG mosaic (made once): red positive, blue negative.

        Tiled by :func:`nnscratch.figures.weight_mosaic`, as in the run folder's
        weights figure; each neuron's tile is at its own contrast.
        """
        if self._weights_png is None:
            W = self.model.dense_layers()[0].W
            n = min(max_tiles, W.shape[1])
            mosaic = weight_mosaic(W[:, :n], math.ceil(math.sqrt(n)))
            colours = plt.colormaps["seismic"].with_extremes(bad="#282828")  # NaN: the gaps between tiles
            out = io.BytesIO()
            plt.imsave(out, mosaic.repeat(zoom, axis=0).repeat(zoom, axis=1), cmap=colours, vmin=-1, vmax=1,
                       format="png")
            self._weights_png = out.getvalue()
        return self._weights_png


def find_history(model, path: Path) -> dict:
    """The per-epoch history: in the model file's meta, or the run folder's metrics.json."""
    meta = getattr(model, "meta", {}) or {}
    for holder in (meta, meta.get("trainer") or {}, meta.get("training") or {}):
        if isinstance(holder, dict) and isinstance(holder.get("history"), dict):
            return holder["history"]
    folder = path if path.is_dir() else path.parent
    try:
        history = json.loads((folder / "metrics.json").read_text()).get("history")
    except (OSError, ValueError, AttributeError):
        return {}
    return history if isinstance(history, dict) else {}


# --------------------------------------------------------------------------- #
# HTTP
# --------------------------------------------------------------------------- #
class Handler(BaseHTTPRequestHandler):
    """One connection: static files, predictions, the model's description; each request within a deadline."""

    reader: DigitReader  # set on the subclass that make_server builds, with the gate and the settings below
    gate: Gate
    timeout = limits.TIMEOUT  # seconds: for a request to arrive whole, and for each answer to be sent
    log_requests = False  # --log: one line per request
    server_version = "nnscratch"
    protocol_version = "HTTP/1.1"  # keep-alive: the page sends a request per stroke

    def setup(self):
        super().setup()
        self.rfile.close()  # the standard library's reader: replaced by one with a deadline per request
        self.deadline = Deadline(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self.deadline)

    def handle_one_request(self):
        """One request within its deadline; a stalled one gets 408 and the connection closes."""
        self.deadline.start()
        self.command = self.path = self.status = self.sent = None  # for log_answer, whatever arrives
        try:
            super().handle_one_request()
        except Stalled as exc:
            self.close_connection = True
            if self.deadline.received:  # half a request: say why we hang up (an idle connection just closes)
                self.send_raw(HTTPStatus.REQUEST_TIMEOUT, {"error": str(exc)})
        self.log_answer()

    def do_GET(self):
        self.answer(self.get)

    def do_POST(self):
        self.answer(self.post)

    def answer(self, handle) -> None:
        """Run ``handle``: bad input gets 400, any other failure 500; one line either way, never a traceback."""
        try:
            handle()
        except DataError as exc:
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
        except Busy as exc:
            self.close_connection = True  # frees this thread too
            self.send_json(HTTPStatus.SERVICE_UNAVAILABLE, {"error": str(exc)},
                           {"Retry-After": str(limits.RETRY_AFTER)})
        except (ConnectionError, Stalled, TimeoutError):  # gone, stalled, or not reading: handle_one_request's
            raise
        except Exception as exc:  # noqa: BLE001 - a bug of ours must not drop the connection silently
            detail = f"internal error: {type(exc).__name__}: {exc}".replace("\n", " ")
            BaseHTTPRequestHandler.log_message(self, "%s %s: %s", self.command, self.path, detail)
            self.close_connection = True
            self.send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": detail})

    def get(self):
        path = self.path.split("?", 1)[0]
        if path in STATIC:
            name, kind = STATIC[path]
            self.send(HTTPStatus.OK, resources.files(__package__).joinpath("static", name).read_bytes(), kind)
        elif path == "/api/model":
            self.send_json(HTTPStatus.OK, self.reader.describe())
        elif path == "/favicon.ico":
            self.send(HTTPStatus.NO_CONTENT, b"", "image/x-icon")
        elif path == "/api/weights.png":
            self.send(HTTPStatus.OK, self.reader.weights_png(), "image/png")
        else:
            self.refuse_method_or_path(path)

    def post(self):
        path = self.path.split("?", 1)[0]
        if path != "/api/predict":
            return self.refuse_method_or_path(path, unread_body=True)
        body = self.read_body()
        if body is None:
            return
        picture, name = picture_from_body(self.headers.get("Content-Type", ""), body)
        with self.gate.admit():  # Busy (503) at once when full
            answer = self.reader.read(picture, name)
        self.send_json(HTTPStatus.OK, answer)

    def refuse_method_or_path(self, path: str, unread_body: bool = False) -> None:
        """405 with ``Allow`` for a known path asked with the wrong method, else 404."""
        if unread_body:
            self.close_connection = True  # the body is left unread
        if path in METHODS:
            allowed = METHODS[path]
            self.send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": f"{path} answers {allowed} only"},
                           {"Allow": allowed})
        else:
            self.send_json(HTTPStatus.NOT_FOUND, {"error": f"{path}: no such page"})

    def read_body(self) -> bytes | None:
        """The request body, or None after answering 411/400/413 (checked before reading)."""
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True
            self.send_json(HTTPStatus.LENGTH_REQUIRED, {"error": "send the image with a Content-Length header"})
            return None
        try:
            length = int(length)
            if length < 0:
                raise ValueError
        except ValueError:
            self.close_connection = True
            self.send_json(HTTPStatus.BAD_REQUEST, {"error": f"Content-Length {length!r} is not a size"})
            return None
        if length > MAX_BODY:
            self.close_connection = True
            self.send_json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                           {"error": f"image of {length} bytes is over the {MAX_BODY // 2**20} MB limit"})
            self.discard(length)
            return None
        return self.rfile.read(length)

    def discard(self, length: int, most: int = 32 * 2**20) -> None:
        """Read and drop a refused body (never kept), so the client gets our answer, not a reset."""
        left = min(length, most)
        try:
            while left > 0:
                chunk = self.rfile.read(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)
        except (OSError, Stalled):
            pass

    def send(self, status: HTTPStatus, body: bytes, kind: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.sent = len(body)

    def send_json(self, status: HTTPStatus, data: dict, headers: dict | None = None) -> None:
        self.send(status, json.dumps(data).encode(), "application/json", headers)

    def send_raw(self, status: HTTPStatus, data: dict) -> None:
        """An answer written by hand, for when the request line itself never arrived whole."""
        body = json.dumps(data).encode()
        head = (f"HTTP/1.1 {status.value} {status.phrase}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")
        try:
            self.connection.settimeout(1)
            self.wfile.write(head.encode() + body)
            self.status, self.sent = status.value, len(body)
        except OSError:
            pass

    def flush_headers(self):
        self.connection.settimeout(self.timeout)  # writing: the full time, not what reading left
        super().flush_headers()

    def log_request(self, code="-", size="-"):  # called by send_response: noted, written by log_answer
        self.status = int(code) if isinstance(code, int) else code

    def log_answer(self) -> None:
        """With ``--log``: one line per request: client, time, request, status, bytes, milliseconds."""
        if self.log_requests and self.status is not None:
            took = 1000 * (time.monotonic() - (self.deadline.first_byte or time.monotonic()))
            request = f"{self.command} {self.path}" if self.command else "-"
            BaseHTTPRequestHandler.log_message(self, "%s %s %s B %.1f ms", request, self.status,
                                               "-" if self.sent is None else self.sent, took)

    def log_message(self, format, *args):
        """The standard library's own notes (malformed requests, timeouts): only with ``--log``."""
        if self.log_requests:
            super().log_message(format, *args)


def make_server(reader: DigitReader, host: str = "127.0.0.1", port: int = 8000, *, backlog: int = limits.BACKLOG,
                threads: int | None = limits.THREADS, queue: int = limits.QUEUE, timeout: float = limits.TIMEOUT,
                log_requests: bool = False) -> ClassroomServer:
    """A server (not yet started) answering with ``reader``; port 0 picks a free one.

    ``backlog``, ``threads``, ``queue`` and ``timeout`` are the bounds of
    :mod:`.limits`; ``log_requests`` writes one line per request to stderr.
    """
    settings = {"reader": reader, "gate": Gate(queue), "timeout": timeout, "log_requests": log_requests}
    handler = type("BoundHandler", (Handler,), settings)
    try:
        return ClassroomServer((host, port), handler, backlog=backlog, threads=threads)
    except OSError as exc:
        raise DataError(f"cannot listen on {host}:{port} ({exc.strerror or exc})") from None


# --------------------------------------------------------------------------- #
# Choosing the model
# --------------------------------------------------------------------------- #
def latest_run(root="runs") -> tuple[Path | None, bool]:
    """The run folder to serve when none is given, and whether that run finished.

    The newest finished run (its model.npz's meta says ``finished``). Runs that
    diverged (``diverged``, see :func:`~nnscratch.checkpoint.mark_diverged`) and
    unreadable files are skipped. If no run finished, the newest unfinished one:
    its last checkpoint is a network that reads digits, only less well.
    """
    newest_first = sorted(Path(root).glob("*/model.npz"), key=lambda p: (p.stat().st_mtime, p.parent.name),
                          reverse=True)  # ties: run folders are named by their start time
    unfinished = None
    for model in newest_first:
        try:
            meta, _ = read_model_file(model)
        except DataError:
            continue
        if meta.get("diverged"):
            continue
        if meta.get("finished"):
            return model.parent, True
        unfinished = unfinished or model.parent
    return unfinished, False


def quick_model(log=print) -> Path:
    """Train a small network on the bundled sample (about a minute at most) and return its run folder."""
    from ..experiment import new_run_dir, settings_for, train_run

    out = new_run_dir()
    log("no model given and no usable run under runs/ (none, or all diverged): training a quick one "
        f"on the bundled sample (784-64-32-10 relu, 20 epochs) into {out}")
    settings = settings_for("default", hidden=[64, 32], activation="relu", init="he", epochs=20)
    train_run(settings, out, log=log)
    return out


def open_reader(model_path=None, log=print) -> DigitReader:
    """The DigitReader for ``model_path``, the latest run, or a freshly trained quick model."""
    if model_path is None:
        model_path, finished = latest_run()
        if model_path is None:
            model_path = quick_model(log)
        elif finished:
            log(f"no model given: using the latest finished run, {model_path}")
        else:
            log(f"no model given and no finished run: using the latest unfinished one, {model_path} "
                "(its last checkpoint; finish it with nnscratch train --resume)")
    path = Path(model_path)
    model = load_model(path, 28 * 28, "a drawing read as 28x28 grey levels")
    return DigitReader(model, str(path), find_history(model, path))


def serve(model_path=None, host: str = "127.0.0.1", port: int = 8000, log=print, **bounds) -> None:
    """Run the page until Ctrl+C; ``bounds`` are make_server's (backlog, threads, queue, timeout, log_requests)."""
    reader = open_reader(model_path, log)
    server = make_server(reader, host, port, **bounds)
    shown = f"[{host}]" if ":" in host else host
    log(f"network {' -> '.join(map(str, reader.model.sizes))} from {reader.source}")
    handler = server.RequestHandlerClass
    log(f"up to {server.threads} connections at once, {handler.gate.size} drawings in hand (then 503), "
        f"listen backlog {server.request_queue_size}, {handler.timeout:g} s per request"
        + (", one log line per request" if handler.log_requests else ""))
    log(f"open http://{shown}:{server.server_address[1]}/ in a browser (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        log("stopped")
    finally:
        server.server_close()
