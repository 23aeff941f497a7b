"""What keeps ``nnscratch serve`` answering a classroom: bounds on everything a client can hold.

The standard library's :class:`~http.server.ThreadingHTTPServer` parses HTTP
well but bounds nothing: a listen backlog of 5 connections (a burst of 64
overflows it and the kernel drops connections), a new thread for every
connection however many there are, a time limit on each ``recv`` rather than
on a request (a client sending one byte every few seconds holds its thread
forever: slowloris), and no way to say "busy, come back in a second". Each is
a small addition at a hook the standard library documents, kept here:

* :class:`ClassroomServer`: the backlog (``request_queue_size``, read by
  ``listen``) and at most ``threads`` connections served at once
  (``process_request``); the next connections wait in the kernel's backlog,
  which holds them without resetting any.
* :class:`Gate`: at most ``queue`` drawings in hand at once (being read or
  waiting for the network); one more is refused at once with
  ``503 Retry-After``, a cheap answer, instead of a wait nobody would sit
  through.
* :class:`Deadline`: each request must arrive whole within ``timeout``
  seconds, however slowly it trickles in; the handler answers ``408`` and
  hangs up.

docs/web.md says why this, rather than a server library such as waitress.
"""
from __future__ import annotations

import io
import threading
import time
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

BACKLOG = 1024  # connections the kernel holds for us (Linux caps it at net.core.somaxconn, 4096 here)
THREADS = 256  # connections served at once, a thread each; mostly asleep in recv, so cheap
QUEUE = 64  # drawings in hand at once: about 0.2 s of work on a quiet 2-core machine
TIMEOUT = 10.0  # seconds for a request to arrive whole, and for a kept-alive connection to stay idle
RETRY_AFTER = 1  # seconds, told to a client refused with 503


class Busy(Exception):
    """The gate is full: the request is answered 503 with ``Retry-After``."""


class Stalled(Exception):
    """A request did not arrive whole in time (not a TimeoutError, which http.server would swallow)."""


class Gate:
    """Admission to the network: at most ``size`` requests inside at once, the next turned away.

    Inside, requests wait their turn on :class:`~nnscratch.apps.web.server.DigitReader`'s
    own bounds (two decodes at once, one forward pass at a time). The gate only
    counts them, so that a flood is refused in microseconds, while the
    requests already inside keep their place and their exact answers.
    """

    def __init__(self, size: int = QUEUE):
        self.size = size
        self._tickets = threading.BoundedSemaphore(size)

    @contextmanager
    def admit(self):
        """``with gate.admit():`` the block runs, or :class:`Busy` is raised at once."""
        if not self._tickets.acquire(blocking=False):
            raise Busy(f"the server is busy ({self.size} drawings in hand): try again in {RETRY_AFTER} s")
        try:
            yield
        finally:
            self._tickets.release()


class Deadline(io.RawIOBase):
    """The reading side of a connection, with one deadline per request.

    Before each ``recv`` the socket's timeout is set to the time left, so
    however the bytes trickle in, the request (and, on a kept-alive
    connection, the wait for it) ends by ``start() + seconds``; then
    :class:`Stalled` is raised. ``received`` tells an idle connection
    (nothing received: close quietly) from a stalled request (answer 408).
    """

    def __init__(self, sock, seconds: float = TIMEOUT):
        self.sock, self.seconds = sock, seconds
        self.start()

    def start(self) -> None:
        """A new request: a new deadline."""
        self.ends = time.monotonic() + self.seconds
        self.received = 0
        self.first_byte = None  # time.monotonic() when this request's first byte came

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise Stalled(f"request not received whole within {self.seconds:g} s")
        self.sock.settimeout(left)
        try:
            count = self.sock.recv_into(buffer)
        except TimeoutError:
            raise Stalled(f"request not received whole within {self.seconds:g} s") from None
        if count and not self.received:
            self.first_byte = time.monotonic()
        self.received += count
        return count


class ClassroomServer(ThreadingHTTPServer):
    """A thread per connection, at most ``threads`` at once, behind a listen backlog of ``backlog``.

    ``threads=None`` lifts the cap (the standard library's behaviour, kept
    for ``bench/serve_load.py``'s comparison).
    """

    daemon_threads = True  # Ctrl+C does not wait for kept-alive connections

    def __init__(self, address, handler, backlog: int = BACKLOG, threads: int | None = THREADS):
        self.request_queue_size = backlog  # read by server_activate's listen(), called by __init__
        self.threads = threads
        self._slots = threading.BoundedSemaphore(threads) if threads else None
        super().__init__(address, handler)

    def process_request(self, request, client_address):
        """Start the connection's thread once a slot is free.

        Waiting here stops ``accept``: meanwhile new connections queue in the
        kernel's backlog, which holds them (no reset) until we take them.
        """
        if self._slots is None:
            return super().process_request(request, client_address)
        self._slots.acquire()
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            if self._slots is not None:
                self._slots.release()
