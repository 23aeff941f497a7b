"""Export to ONNX (#14): onnxruntime computes what nnscratch computes, from raw pixels.

Needs the ``onnx`` and ``onnxruntime`` packages (the ``test`` extra installs
both); the convolutional tests also need the layers of #9 (``core/conv.py``).
"""
import json
import sys

import numpy as np
import pytest

import nnscratch
from nnscratch import Classifier, Sequential, network_from_layers
from nnscratch.apps import cli
from nnscratch.apps.experiment import build, settings_for
from nnscratch.core.layers import LAYERS, Activation
from nnscratch.files.onnx_export import INPUT, IR_VERSION, OPSET, OUTPUT

TOLERANCE = 1e-4  # largest difference allowed between the two runtimes' probabilities

EVERY_MLP_LAYER = "dense 32, relu, dropout 0.2, dense 24, tanh, dense 16, leaky_relu 0.1, dense 16, sigmoid"
CNN = "conv 6 5x5, relu, maxpool 2, batchnorm, conv 8 4x4 same, tanh, maxpool 3, flatten, dense 32, batchnorm, relu"


@pytest.fixture(scope="module")
def ort():
    pytest.importorskip("onnx", reason="needs the onnx package (pip install -e '.[test]')")
    return pytest.importorskip("onnxruntime", reason="needs onnxruntime (pip install -e '.[test]')")


def need_conv():
    pytest.importorskip("nnscratch.core.conv", reason="the convolutional layers (#9, branch cnn) are not merged yet")


def shaken(network, seed=1):
    """``network`` with every array moved at random: biases, BatchNorm's statistics too, none left at 0 or 1."""
    rng = np.random.default_rng(seed)
    for name, array in network.state_dict().items():
        array += rng.normal(0, 0.3, array.shape).astype(array.dtype)
        if name.endswith("running_var"):
            np.abs(array, out=array)
            array += 0.5
    return network


def nested(network):
    """The same layers with the first hidden Dense, its activation and its dropout in a block of their own."""
    first, inner, rest = network.layers[:1], network.layers[1:4], network.layers[4:]
    return Sequential([*first, Sequential(inner), *rest])


def onnx_probabilities(ort, path, pixels):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run([OUTPUT], {INPUT: np.asarray(pixels, np.float32)})[0]


def assert_same_answers(ort, model, path, pixels):
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    theirs, ours = onnx_probabilities(ort, path, pixels), model.predict_proba(pixels)
    assert theirs.dtype == np.float32 and theirs.shape == ours.shape
    assert np.abs(theirs - ours).max() <= TOLERANCE
    assert np.count_nonzero(theirs.argmax(axis=1) == ours.argmax(axis=1)) >= len(pixels) - 1


@pytest.mark.parametrize("make", [
    pytest.param(lambda: nested(shaken(network_from_layers(EVERY_MLP_LAYER))), id="every-mlp-layer-nested"),
    pytest.param(lambda: shaken(build(settings_for("seed"), 784).network), id="seed-preset-raw-pixels"),
])
def test_mlp_on_onnxruntime_gives_predict_proba(ort, make, sample_split, tmp_path):
    model = Classifier(make())
    model.to_onnx(tmp_path / "mlp.onnx")
    assert_same_answers(ort, model, tmp_path / "mlp.onnx", sample_split.test.images)


def test_cnn_on_onnxruntime_gives_predict_proba(ort, sample_split, tmp_path):
    need_conv()
    model = Classifier(shaken(network_from_layers(CNN)))
    assert {"Conv2D", "MaxPool2D", "Flatten", "BatchNorm"} <= {type(layer).__name__ for layer in model.network.walk()}
    model.to_onnx(tmp_path / "cnn.onnx")
    assert_same_answers(ort, model, tmp_path / "cnn.onnx", sample_split.test.images)


def test_graph_contract_and_metadata(ort, tmp_path):
    import onnx

    model = Classifier(network_from_layers("dense 16, relu"), classes=list("abcdefghij"))
    model.to_onnx(tmp_path / "m.onnx")
    graph_model = onnx.load(str(tmp_path / "m.onnx"))
    assert graph_model.ir_version == IR_VERSION
    assert [(o.domain, o.version) for o in graph_model.opset_import] == [("", OPSET)]
    meta = {p.key: p.value for p in graph_model.metadata_props}
    assert meta["nnscratch_version"] == nnscratch.__version__
    assert json.loads(meta["architecture"]) == model.network.describe()
    assert json.loads(meta["classes"]) == list("abcdefghij")
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (given,), (answer,) = session.get_inputs(), session.get_outputs()
    assert (given.name, given.type, given.shape[1]) == (INPUT, "tensor(float)", 784)
    assert (answer.name, answer.type, answer.shape[1]) == (OUTPUT, "tensor(float)", 10)
    rows = onnx_probabilities(ort, tmp_path / "m.onnx", np.zeros((3, 784)))
    assert np.allclose(rows.sum(axis=1), 1, atol=1e-6)


def test_cli_exports_a_run_folder(ort, sample_split, tmp_path, capsys):
    model = Classifier(shaken(network_from_layers("dense 16, sigmoid")))
    model.save(tmp_path / "model.npz")  # a run folder is a folder holding model.npz
    assert cli.main(["export", str(tmp_path), str(tmp_path / "digits.onnx")]) == 0
    assert "digits.onnx" in capsys.readouterr().out
    assert_same_answers(ort, model, tmp_path / "digits.onnx", sample_split.test.images[:100])


class Square(Activation):
    """A layer nnscratch can train but the exporter does not know."""

    def forward(self, x):
        return x * x


@pytest.mark.parametrize("existing", [False, True])
def test_cli_refuses_a_layer_it_cannot_export_and_writes_nothing(ort, tmp_path, capsys, monkeypatch, existing):
    monkeypatch.setitem(LAYERS, "Square", Square)  # known to model files, so the model loads
    network = network_from_layers("dense 16")
    Classifier(Sequential([*network.layers[:2], Square(), network.layers[2]])).save(tmp_path / "model.npz")
    out = tmp_path / "out.onnx"
    if existing:
        out.write_bytes(b"an earlier export")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert cli.main(["export", str(tmp_path / "model.npz"), str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot export layer Square" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no temporary file left either
    assert out.read_bytes() == b"an earlier export" if existing else not out.exists()


def test_without_the_onnx_package_says_what_to_install(tmp_path, capsys, monkeypatch):
    Classifier(network_from_layers("dense 16")).save(tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "onnx", None)  # import onnx now raises ImportError
    assert cli.main(["export", str(tmp_path / "model.npz"), str(tmp_path / "m.onnx")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'nnscratch[onnx]'" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.parametrize("out, problem", [(".", "is a folder"), ("no-such-folder/m.onnx", "does not exist")])
def test_cli_refuses_a_bad_output_path_in_one_line(ort, tmp_path, capsys, monkeypatch, out, problem):
    Classifier(network_from_layers("dense 16")).save(tmp_path / "model.npz")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["export", "model.npz", out]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and problem in err


def test_full_mnist_seed_mlp_gives_the_same_digits(ort, mnist_split, tmp_path):
    """The Done-when on the 10000 test digits (bench/onnx_parity.py does it with fully trained networks)."""
    model = build(settings_for("seed", epochs=3), 784)  # 3 epochs of the blog's full-batch descent: quick
    model.fit(mnist_split.train.images, mnist_split.train.labels)
    model.to_onnx(tmp_path / "seed.onnx")
    assert_same_answers(ort, model, tmp_path / "seed.onnx", mnist_split.test.images)


def test_full_mnist_cnn_gives_the_same_digits(ort, mnist_split, tmp_path):
    need_conv()
    model = Classifier(shaken(network_from_layers("conv 4 5x5, relu, maxpool 2, flatten, dense 16, batchnorm, relu")))
    model.to_onnx(tmp_path / "cnn.onnx")
    assert_same_answers(ort, model, tmp_path / "cnn.onnx", mnist_split.test.images)
