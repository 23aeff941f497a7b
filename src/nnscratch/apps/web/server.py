"""``nnscratch serve``: a local web page to draw digits and watch the network read them.

Built on the standard library's :mod:`http.server`: the page needs three
static files (HTML, JavaScript, CSS) and three small endpoints (two answer
JSON, one a PNG), which it handles without adding a dependency (see
docs/web.md). Here: :class:`DigitReader`, the network and what it says about
a picture, and which model to serve. The requests are answered in
:mod:`.handler`, each connection in its own thread within the bounds of
:mod:`.limits` (listen backlog, thread cap, 503 when full, a time limit per
request). The one thing the threads share, the network, is only read, behind a
lock, and at most ``DECODERS`` images are decoded at once.

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
from pathlib import Path

import numpy as np

from ...core.layers import Activation
from ...errors import DataError
from ...files.images import digit_from_image
from ...files.modelfile import load_model, read_model_file
from ..figures import first_layer_tiles, tile_mosaic
from ..reports import plt
from .handler import MAX_BODY, Handler, make_server  # noqa: F401 - the HTTP side, named here for callers

DECODERS = 2  # images decoded at once: a 2 MB PNG may decode to ~200 MB, so 16 at once would take GBs
MAPS_SHOWN = 8  # feature maps per convolutional layer sent to the page


class DigitReader:
    """A trained network shared by every request thread.

    The network is put in prediction mode once, here. In that mode its
    layers keep nothing of the inputs they see (see :mod:`nnscratch.core.layers`),
    so any number of threads can run it at once without a lock: every answer
    is the one a lone request would get.

    Decoding is bounded, by a semaphore: at most ``DECODERS`` images are
    decoded at once, because each may take a few hundred MB for a moment.
    """

    def __init__(self, model, source: str = "", history: dict | None = None):
        self.model = model
        self.model.network.eval()
        self.source = source
        self.history = history or {}
        self._decoding = threading.BoundedSemaphore(DECODERS)
        self._weights_png = None

    def read(self, image: bytes, name: str = "request body") -> dict:
        """Everything the page shows about one image (raises DataError if it holds no digit)."""
        with self._decoding:
            pixels = digit_from_image(image, name)
        probabilities = self.model.predict_proba(pixels)[0]
        inside = self.model.hidden_outputs(pixels)
        activations = [out for _, out in inside if out.ndim == 2]
        feature_maps = [out[0, :MAPS_SHOWN] for _, out in inside if out.ndim == 4]  # (channels, height, width)
        return {
            "digit": int(probabilities.argmax()),
            "probabilities": [round(float(p), 6) for p in probabilities],
            "input": pixels.reshape(28, 28).tolist(),
            "activations": [[round(float(a), 4) for a in layer[0]] for layer in activations],
            "feature_maps": [np.round(maps.astype(float), 3).tolist() for maps in feature_maps],
        }

    def describe(self) -> dict:
        """What ``GET /api/model`` answers: architecture, accuracy and history."""
        meta = getattr(self.model, "meta", {}) or {}
        return {
            "source": self.source,
            "sizes": sizes(self.model),
            "layers": [repr(layer) for layer in self.model.network.layers],
            "parameters": int(sum(p.size for p in self.model.network.parameters())),
            "metrics": meta.get("metrics", {}),
            "history": self.history,
        }

    def weights_png(self, max_tiles: int = 100, zoom: int = 3) -> bytes:
        """The first layer's weights (or convolution kernels) as a PNG mosaic, made once.

        Red positive, blue negative, tiled by :func:`nnscratch.apps.figures.tile_mosaic`
        as in the run folder's figures; each tile is at its own contrast. A
        network with neither (say a Dense layer behind a tanh) gets one blank tile.
        """
        if self._weights_png is None:
            tiles = first_layer_tiles(self.model.network, max_tiles)
            tiles = np.zeros((1, 28, 28)) if tiles is None else tiles
            mosaic = tile_mosaic(tiles, math.ceil(math.sqrt(len(tiles))))
            colours = plt.colormaps["seismic"].with_extremes(bad="#282828")  # NaN: the gaps between tiles
            out = io.BytesIO()
            plt.imsave(out, mosaic.repeat(zoom, axis=0).repeat(zoom, axis=1), cmap=colours, vmin=-1, vmax=1,
                       format="png")
            self._weights_png = out.getvalue()
        return self._weights_png


def sizes(model) -> list[int]:
    """The widths the page draws: inputs, each hidden activation's size, classes."""
    widths = [int(np.prod(shape)) for layer, shape in zip(model.network.layers, model.network.shapes((model.n_inputs,)))
              if isinstance(layer, Activation)]
    return [model.n_inputs, *widths, model.n_classes]


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
    log(f"network {' -> '.join(map(str, sizes(reader.model)))} from {reader.source}")
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
