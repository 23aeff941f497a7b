"""Export a network to ONNX, the exchange format every runtime reads.

ONNX describes a network as a graph: *nodes* (one operator each, such as
``Gemm`` for ``x @ W + b`` or ``Relu``) joined by named tensors, and
*initializers*, the constant arrays (weights) the nodes read. A runtime such
as onnxruntime, OpenCV's dnn module or onnxruntime-web then computes the
same forward pass as nnscratch's layers, without nnscratch.

The graph's contract (what a user of the file may count on):

* one input ``pixels``: float32, shape (N, 784), raw 0-255 grey levels,
  exactly the rows :meth:`~nnscratch.Classifier.predict_proba` takes;
* one output ``probabilities``: float32, shape (N, classes), rows sum to 1;
* the network's own preprocessing is inside the graph (its ``Rescale``
  input step, and the ``Reshape`` into N x 1 x 28 x 28 images for a
  convolutional network), so pixels go in as they come;
* ``metadata_props`` hold nnscratch's version, the architecture
  (``network.describe()`` as JSON), the class names and the input layout.

Each nnscratch layer becomes a few nodes, written by one small function in
:data:`EMITTERS`, looked up by the layer's class name (as model files name
layers). A layer without one is refused, before anything is written.

The opset (which version of each operator's definition) and the IR version
(of the file format itself) are pinned: a file that claims a newer IR
version than a runtime knows is the most common reason it will not load.
Opset 17 with IR version 8 is what ONNX 1.12 wrote; onnxruntime 1.15 and
1.32 load it (1.12 on should). See docs/onnx.md for the table of layers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import DataError, MissingExtra
from .atomic import atomic_path
from .modelfile import PREPROCESSING

OPSET = 17  # operator definitions of ONNX 1.12
IR_VERSION = 8  # the file format of ONNX 1.10 to 1.13 (the onnx package would write its newest)
INPUT, OUTPUT = "pixels", "probabilities"


def require_onnx():
    """The ``onnx`` module, or a one-line error saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise MissingExtra("exporting to ONNX needs the onnx package: pip install 'nnscratch[onnx]'") from None
    return onnx


class Graph:
    """The nodes and constant arrays of an ONNX graph, collected as the layers are visited.

    Tensor names follow the model file's names for the arrays
    (``1.W`` is layer 1's weights), so one can be matched with the other.
    """

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes: list = []
        self.initializers: list = []

    def constant(self, name: str, array) -> str:
        """Store ``array`` in the graph (as float32 unless it is integer) and return its name."""
        array = np.asarray(array)
        if not np.issubdtype(array.dtype, np.integer):
            array = array.astype(np.float32)
        self.initializers.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op: str, inputs: list[str], name: str, **attributes) -> str:
        """Add one ``op`` node reading ``inputs``; its output is the tensor called ``name``."""
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [name], name=name, **attributes))
        return name


# --------------------------------------------------------------------------- #
# One function per layer type: (graph, layer, input tensor, place) -> output tensor
# --------------------------------------------------------------------------- #
def _rescale(g, layer, x, place):
    # The input is float32 already; the Cast says what the step does (pixels -> floats).
    y = g.node("Cast", [x], f"{place}.cast", to=g.onnx.TensorProto.FLOAT)
    if layer.scale == 1:  # the blog's raw pixels: the layer multiplies by nothing either
        return y
    return g.node("Mul", [y, g.constant(f"{place}.scale", np.float32(layer.scale))], f"{place}.rescale")


def _reshape(g, layer, x, place):
    # 0 in ONNX's shape copies that axis from the input: the batch keeps its size.
    shape = g.constant(f"{place}.shape", np.array([0, *layer.shape], np.int64))
    return g.node("Reshape", [x, shape], f"{place}.reshape")


def _dense(g, layer, x, place):
    # Gemm computes A @ B + C: with B = W (inputs x outputs) and C = b, Dense exactly.
    return g.node("Gemm", [x, g.constant(f"{place}.W", layer.W), g.constant(f"{place}.b", layer.b)],
                  f"{place}.dense")


def _elementwise(op: str):
    return lambda g, layer, x, place: g.node(op, [x], f"{place}.{op.lower()}")


def _leaky_relu(g, layer, x, place):
    return g.node("LeakyRelu", [x], f"{place}.leakyrelu", alpha=layer.slope)


def _dropout(g, layer, x, place):
    return x  # predicting passes the input through untouched: no node at all


def _sequential(g, layer, x, place):
    for i, sublayer in enumerate(layer.layers):
        x = emit(g, sublayer, x, f"{place}.{i}" if place else str(i))
    return x


def _conv2d(g, layer, x, place):
    # "same" pads (k - 1) // 2 zeros before and the rest after (one more for even k); "valid" none.
    k = layer.kernel_size
    before = (k - 1) // 2 if layer.padding == "same" else 0
    after = k - 1 - before if layer.padding == "same" else 0
    return g.node("Conv", [x, g.constant(f"{place}.W", layer.W), g.constant(f"{place}.b", layer.b)],
                  f"{place}.conv", kernel_shape=[layer.kernel_size] * 2, strides=[1, 1],
                  pads=[before, before, after, after])  # ONNX: all the starts, then all the ends


def _maxpool2d(g, layer, x, place):
    # Blocks side by side; leftover rows and columns dropped (ceil_mode=0), as nnscratch does.
    return g.node("MaxPool", [x], f"{place}.maxpool", kernel_shape=[layer.size] * 2,
                  strides=[layer.size] * 2)


def _flatten(g, layer, x, place):
    return g.node("Flatten", [x], f"{place}.flatten", axis=1)  # (N, C, H, W) -> (N, C*H*W), C, H, W order


def _batchnorm(g, layer, x, place):
    # Inference mode: the running statistics, as nnscratch predicts; on (N, F) rows or (N, C, H, W) images.
    arrays = [g.constant(f"{place}.{name}", getattr(layer, name))
              for name in ("gamma", "beta", "running_mean", "running_var")]
    return g.node("BatchNormalization", [x, *arrays], f"{place}.batchnorm", epsilon=layer.eps)


EMITTERS = {
    "Rescale": _rescale,
    "Reshape": _reshape,
    "Dense": _dense,
    "Sigmoid": _elementwise("Sigmoid"),
    "Tanh": _elementwise("Tanh"),
    "ReLU": _elementwise("Relu"),
    "LeakyReLU": _leaky_relu,
    "Dropout": _dropout,
    "Sequential": _sequential,
    "Conv2D": _conv2d,
    "MaxPool2D": _maxpool2d,
    "Flatten": _flatten,
    "BatchNorm": _batchnorm,
}


def emit(g: Graph, layer, x: str, place: str) -> str:
    """Add ``layer``'s nodes reading tensor ``x``; return the name of its output tensor."""
    return EMITTERS[type(layer).__name__](g, layer, x, place)


def unexportable(network) -> list[str]:
    """The type names of the layers in ``network`` that have no ONNX emitter (none: all exportable)."""
    names = [type(layer).__name__ for layer in network.walk()]
    return sorted({name for name in names if name not in EMITTERS})


# --------------------------------------------------------------------------- #
# The whole model
# --------------------------------------------------------------------------- #
def to_onnx_model(model):
    """The ONNX ``ModelProto`` of a Classifier: its network, then softmax, with the contract above."""
    onnx = require_onnx()
    network = model.network
    refused = unexportable(network)
    if refused:
        raise DataError(f"cannot export layer {', '.join(refused)} to ONNX "
                        f"(exportable layers: {', '.join(EMITTERS)})")
    n_inputs, n_classes = model.n_inputs, model.n_classes
    g = Graph(onnx)
    logits = _sequential(g, network, INPUT, "")
    g.node("Softmax", [logits], OUTPUT, axis=1)
    float32 = onnx.TensorProto.FLOAT
    graph = onnx.helper.make_graph(
        g.nodes, "nnscratch", [onnx.helper.make_tensor_value_info(INPUT, float32, ["N", n_inputs])],
        [onnx.helper.make_tensor_value_info(OUTPUT, float32, ["N", n_classes])], g.initializers)
    onnx_model = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", OPSET)], ir_version=IR_VERSION,
        producer_name="nnscratch", producer_version=__version__,
        doc_string=f"Digits from raw pixels: '{INPUT}' float32 (N, {n_inputs}) grey levels 0-255 in, "
                   f"'{OUTPUT}' float32 (N, {n_classes}) out.")
    onnx.helper.set_model_props(onnx_model, metadata(model))
    return onnx_model


def metadata(model) -> dict[str, str]:
    """The model's ``metadata_props``: strings only, the structured ones as JSON."""
    classes = model.classes or [str(i) for i in range(model.n_classes)]
    return {
        "nnscratch_version": __version__,
        "architecture": json.dumps(model.network.describe()),
        "classes": json.dumps(classes),
        "input": json.dumps(PREPROCESSING),
    }


def export_onnx(model, path) -> None:
    """Write ``model`` (a Classifier) to ``path`` as an ONNX file, atomically.

    The graph is built and checked in full before anything is written, so a
    network that cannot be exported leaves ``path`` as it was.
    """
    onnx = require_onnx()
    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; name the file to write, e.g. {path / 'model.onnx'}")
    if not path.parent.is_dir():
        raise DataError(f"{path}: the folder {path.parent} does not exist")
    onnx_model = to_onnx_model(model)
    onnx.checker.check_model(onnx_model, full_check=True)  # a failure here is a bug in this module
    try:
        with atomic_path(path) as tmp:
            onnx.save_model(onnx_model, str(tmp))
    except OSError as exc:  # e.g. a folder we may not write in: name the user's path, not the temporary one
        raise DataError(f"{path}: cannot write ({exc.strerror or exc})") from None
