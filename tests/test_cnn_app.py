"""A convolutional network through everything a user does: train, resume, evaluate, predict, serve, bad input."""
import io
import json

import numpy as np
import pytest
from PIL import Image, ImageDraw

import nnscratch
from nnscratch.apps import cli

from .conftest import interrupt_at_epoch

pytest.importorskip("nnscratch.core.conv", reason="the convolutional layers (#9) are not merged yet")

SMALL_CNN = "conv 4 5x5, relu, maxpool 2, conv 8 3x3 same, batchnorm, relu, maxpool 2, flatten, dense 16, relu"
FLAGS = ["--layers", SMALL_CNN, "--train-rows", "600", "--lr", "3e-3"]


def sample_csv(tmp_path_factory):
    """800 bundled digits as a CSV: 600 to train, 200 to test (a CNN on the whole sample takes longer)."""
    sample = nnscratch.data.load_sample()
    path = tmp_path_factory.mktemp("cnn-data") / "digits.csv"
    nnscratch.data.save_csv(sample.take(slice(0, 800)), path)
    return path


@pytest.fixture(scope="module")
def cnn_run(tmp_path_factory):
    """A small CNN trained for 3 epochs through the command line."""
    data = sample_csv(tmp_path_factory)
    out = tmp_path_factory.mktemp("cnn") / "run"
    assert cli.main(["train", "--data", str(data), "--epochs", "3", "--out", str(out), *FLAGS]) == 0
    return data, out


def test_a_cnn_trains_from_the_command_line_and_its_model_file_says_what_it_is(cnn_run):
    _, out = cnn_run
    model = nnscratch.load(out)
    kinds = [type(layer).__name__ for layer in model.network.leaves()]
    assert kinds[:3] == ["Rescale", "Reshape", "Conv2D"] and "BatchNorm" in kinds and "MaxPool2D" in kinds
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_accuracy"] > 0.5  # 600 digits, 3 epochs: far above chance
    assert (out / "kernels.png").exists() and not (out / "weights.png").exists()
    state = model.network.state_dict()
    assert any(name.endswith("running_mean") for name in state)  # batch norm's statistics are kept


def test_resuming_a_cnn_gives_the_very_same_weights(cnn_run, tmp_path, monkeypatch):
    data, whole = cnn_run
    interrupt_at_epoch(monkeypatch, 2)
    out = tmp_path / "run"
    assert cli.main(["train", "--data", str(data), "--epochs", "3", "--out", str(out), *FLAGS]) == 130
    monkeypatch.undo()
    assert cli.main(["train", "--resume", str(out)]) == 0
    a, b = np.load(whole / "model.npz"), np.load(out / "model.npz")
    for key in a.files:
        if key.startswith("param/"):
            assert np.array_equal(a[key], b[key]), key


def test_evaluate_and_predict_read_digits_with_a_cnn(cnn_run, tmp_path, capsys):
    _, out = cnn_run
    assert cli.main(["evaluate", str(out), "--out", str(tmp_path / "ev")]) == 0
    assert (tmp_path / "ev" / "kernels.png").exists()
    picture = Image.new("L", (120, 120), 255)
    ImageDraw.Draw(picture).line([(60, 15), (55, 105)], fill=0, width=12)
    picture.save(tmp_path / "one.png")
    capsys.readouterr()
    assert cli.main(["predict", str(out), str(tmp_path / "one.png"), "--json"]) == 0
    [answer] = json.loads(capsys.readouterr().out)
    assert len(answer["probabilities"]) == 10 and abs(sum(answer["probabilities"]) - 1) < 1e-4


def test_the_web_page_gets_feature_maps_for_a_cnn(cnn_run):
    from nnscratch.apps.web.server import MAPS_SHOWN, DigitReader

    _, out = cnn_run
    reader = DigitReader(nnscratch.load(out))
    picture = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(picture).line([(50, 10), (50, 90)], fill=0, width=10)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    answer = reader.read(buffer.getvalue())
    maps = answer["feature_maps"]
    assert [len(m) for m in maps] == [4, min(8, MAPS_SHOWN)]  # the two convolutions' ReLUs
    assert np.array(maps[0]).shape == (4, 24, 24) and np.array(maps[1]).shape == (8, 12, 12)
    assert [len(layer) for layer in answer["activations"]] == [16]  # the dense hidden layer
    assert reader.describe()["sizes"][0] == 784
    assert reader.weights_png()[:8] == b"\x89PNG\r\n\x1a\n"  # the kernels: no 500 for a convolution


@pytest.mark.parametrize("layers, words", [
    ("conv 4 5x", "the kernel size must be square, like 5x5"),
    ("conv 4 5x5 full", "padding must be 'same' or 'valid'"),
    ("conv 4 31x31", "a 31x31 kernel does not fit in images of 28x28"),
    ("maxpool 0", "the pool size must be a whole number"),
])
def test_bad_convolutional_layers_are_one_line(tmp_path, capsys, layers, words):
    assert cli.main(["train", "--layers", layers, "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err
    assert not (tmp_path / "run").exists()
