"""The design of #10: layers by name, nested modes, the --layers language, and files of nnscratch 0.1."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

import nnscratch
from nnscratch import Classifier, mlp, network_from_layers
from nnscratch.apps import cli
from nnscratch.core.builders import parse_layers
from nnscratch.core.estimator import ScaledInputsWarning
from nnscratch.core.layers import LAYERS, Dense, Dropout, ReLU, Rescale, layer_from_description
from nnscratch.core.network import Sequential
from nnscratch.errors import DataError

from .conftest import need

V01 = Path(__file__).parent / "data" / "v0.1"  # a run folder's model.npz written by nnscratch 0.1.0


# --------------------------------------------------------------------------- #
# The registry: every layer describes itself and comes back the same
# --------------------------------------------------------------------------- #
def test_every_registered_layer_rebuilds_from_its_description():
    network = network_from_layers("dense 8, leaky_relu 0.2, dropout 0.25, dense 6, tanh, dense 5, sigmoid", seed=1)
    nested = Sequential([network, ReLU()])
    rebuilt = layer_from_description(nested.describe())
    assert rebuilt.describe() == nested.describe()
    kinds = {type(layer).__name__ for layer in nested.leaves()}
    assert kinds <= set(LAYERS) and {"Rescale", "Dense", "LeakyReLU", "Dropout", "Tanh", "Sigmoid", "ReLU"} <= kinds
    with pytest.raises(ValueError, match="unknown layer type 'Swish'"):
        layer_from_description({"type": "Swish"})


def test_state_dict_names_parameters_by_place():
    network = mlp([784, 16, 10], seed=0)
    assert list(network.state_dict()) == ["1.W", "1.b", "3.W", "3.b"]
    assert network.decays() == [True, False, True, False]  # weights decay, biases never


# --------------------------------------------------------------------------- #
# Training and prediction modes
# --------------------------------------------------------------------------- #
def test_train_and_eval_reach_nested_layers_and_mode_restores_the_previous_one():
    inner = mlp([6, 4, 3], dropout=0.5, seed=0, input_scale=1.0)
    network = Sequential([inner, ReLU()])
    dropout = next(layer for layer in network.leaves() if isinstance(layer, Dropout))
    network.eval()
    assert not dropout.training and not inner.training
    with network.mode(True):
        assert dropout.training
    assert not dropout.training  # back to prediction mode, as it was before
    network.train()
    with network.mode(False):
        assert not dropout.training
    assert dropout.training


def test_predicting_leaves_no_state_in_the_layers():
    """Layers keep their inputs only in training mode, so predicting never changes the network."""
    model = Classifier(mlp([784, 8, 10], activation="relu", seed=0))
    model.network.eval()  # set the flags first: they are the only thing that may change
    before = [set(vars(layer)) for layer in model.network.leaves()]
    model.predict_proba(np.full((3, 784), 100, np.uint8))
    assert [set(vars(layer)) for layer in model.network.leaves()] == before
    assert not any(hasattr(layer, "_x") or hasattr(layer, "_positive") for layer in model.network.leaves())


def test_calling_the_network_and_predicting_agree_on_raw_pixels():
    """The network scales pixels itself, so ``net(X)`` and ``predict_proba`` see the same inputs."""
    X = np.random.default_rng(0).integers(0, 256, (5, 784), dtype=np.uint8)
    model = Classifier(mlp([784, 8, 10], seed=0))
    with model.network.mode(False):
        logits = model.network(X)
    np.testing.assert_allclose(nnscratch.softmax(logits), model.predict_proba(X), rtol=1e-6)


def test_inputs_already_divided_by_255_get_one_warning():
    X = np.random.default_rng(0).integers(0, 256, (20, 784)).astype(np.float32)
    model = Classifier(mlp([784, 8, 10], seed=0))
    with pytest.warns(ScaledInputsWarning, match="raw 0-255 pixels"):
        model.predict(X / 255)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.predict(X / 255)  # once is enough
        Classifier(mlp([784, 8, 10], seed=0)).predict(X)  # raw pixels: no warning


# --------------------------------------------------------------------------- #
# --layers
# --------------------------------------------------------------------------- #
def test_parse_layers():
    assert parse_layers("dense 16, Sigmoid,dense 16 ,sigmoid") == [
        ("dense", ["16"]), ("sigmoid", []), ("dense", ["16"]), ("sigmoid", [])]


@pytest.mark.parametrize("text, words", [
    ("dense 16, swish", "unknown layer 'swish' (item 2)"),
    ("dense 16,, relu", "item 2 is empty"),
    ("dense", "layer 1 'dense': write dense N"),
    ("dense sixteen", "the number of neurons must be a whole number"),
    ("dense 16 16", "write dense N"),
    ("dropout 1.5", "the dropout rate must be in [0, 1)"),
])
def test_bad_layers_are_named(text, words):
    with pytest.raises(DataError) as caught:
        network_from_layers(text)
    assert words in str(caught.value)


@pytest.mark.parametrize("argv, words", [
    (["--layers", "dense 16, swish"], "unknown layer 'swish'"),
    (["--layers", "dense x"], "layer 1 'dense x': the number of neurons must be a whole number"),
    (["--layers", "dense 8", "--hidden", "8"], "--layers gives the whole hidden part"),
    (["--epoch", "3"], "unrecognized arguments: --epoch 3"),  # no abbreviated flags
])
def test_bad_layers_flag_is_one_line_exit_2(tmp_path, capsys, argv, words):
    try:
        status = cli.main(["train", "--out", str(tmp_path / "run"), *argv])
    except SystemExit as exc:  # argparse's own refusals
        status = exc.code
    assert status == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and words in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_layers_flag_trains_the_network_it_names(tmp_path):
    out = tmp_path / "run"
    assert cli.main(["train", "--layers", "dense 24, relu, dropout 0.1, dense 12, tanh", "--epochs", "2",
                     "--out", str(out)]) == 0
    model = nnscratch.load(out)
    assert [type(layer).__name__ for layer in model.network.layers] == [
        "Rescale", "Dense", "ReLU", "Dropout", "Dense", "Tanh", "Dense"]
    test = nnscratch.data.load().test
    assert model.score(test.images, test.labels) > 0.7
    assert cli.main(["train", "--resume", str(out), "--epochs", "3"]) == 0  # resumes with the same layers


# --------------------------------------------------------------------------- #
# Files written by nnscratch 0.1.0 (format 1)
# --------------------------------------------------------------------------- #
def test_a_format_1_model_predicts_exactly_as_before():
    model = nnscratch.load(V01 / "model.npz")
    expected = np.load(V01 / "expected.npz")
    assert model.meta["version"] == 1
    assert [type(layer).__name__ for layer in model.network.layers] == [
        "Rescale", "Dense", "LeakyReLU", "Dropout", "Dense"]
    assert isinstance(model.network.layers[0], Rescale) and model.network.layers[0].scale == pytest.approx(1 / 255)
    np.testing.assert_array_equal(model.predict_proba(expected["images"]), expected["probabilities"])


def test_a_format_1_model_evaluates_to_the_same_mnist_accuracy(mnist_split, tmp_path, capsys):
    expected = float(np.load(V01 / "expected.npz")["mnist_test_accuracy"])
    model = nnscratch.load(V01 / "model.npz")
    assert model.score(mnist_split.test.images, mnist_split.test.labels) == expected
    mnist = need(Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mnist")
    assert cli.main(["evaluate", str(V01 / "model.npz"), "--data", str(mnist), "--out", str(tmp_path / "ev")]) == 0
    assert f"accuracy {100 * expected:.2f} %" in capsys.readouterr().out


def test_a_format_1_run_cannot_be_resumed_but_says_why(tmp_path, capsys):
    run = tmp_path / "old"
    run.mkdir()
    (run / "model.npz").write_bytes((V01 / "model.npz").read_bytes())
    assert cli.main(["train", "--resume", str(run)]) == 2
    assert "written by nnscratch 0.1 (format 1)" in capsys.readouterr().err


def test_dense_layer_weights_are_float32_by_default():
    layer = Dense(3, 2)
    assert layer.W.dtype == np.float32 and layer.grad["W"].shape == (3, 2)
