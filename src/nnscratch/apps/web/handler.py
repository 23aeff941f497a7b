"""The HTTP side of ``nnscratch serve``: each request to a page, a prediction or a refusal.

Every refusal is one line of JSON, ``{"error": ...}``, with the status that
names it: 400 (bad input), 404, 405 (with ``Allow``), 408 (stalled), 411,
413, 503 (with ``Retry-After``), 500 (a bug of ours, also logged in one line,
never a traceback). The network itself is behind :class:`~.server.DigitReader`,
handed in by :func:`make_server`; the bounds under load are :mod:`.limits`'.
"""
from __future__ import annotations

import io
import json
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from importlib import resources
from typing import TYPE_CHECKING

from ...errors import DataError
from . import limits
from .limits import Busy, ClassroomServer, Deadline, Gate, Stalled
from .uploads import picture_from_body

if TYPE_CHECKING:  # server.py imports this module: the reader's class is named for the annotations only
    from .server import DigitReader

MAX_BODY = 2 * 1024 * 1024  # bytes: a 280x280 canvas PNG is ~10 kB; phone photos fit too
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/index.html": ("index.html", "text/html; charset=utf-8"),
          "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
METHODS = {**{path: "GET" for path in STATIC}, "/api/model": "GET", "/api/weights.png": "GET",
           "/favicon.ico": "GET", "/api/predict": "POST"}  # for 405 and its Allow header


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
        except ConnectionError:  # reset by the client while we read: nobody to answer, nothing to print
            self.close_connection = True
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
        except ConnectionError:  # the client went away: nobody to answer
            self.close_connection = True
        except (Stalled, TimeoutError):  # stalled, or not reading our answer: handle_one_request answers or logs
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
