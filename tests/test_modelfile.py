"""Model files: exact round trip, and every damaged or foreign file refused cleanly."""
import json
import zipfile

import numpy as np
import pytest

import nnscratch
from nnscratch.apps.cli import main
from nnscratch.errors import DataError
from nnscratch.files.modelfile import FORMAT, VERSION, read_model_file

from .conftest import mlp_model, widths


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A small trained network (with dropout and leaky ReLU, to exercise every layer kind) and its file."""
    split = nnscratch.files.data.load()
    model = mlp_model([784, 20, 12, 10], activation="leaky_relu", dropout=0.1, seed=3, epochs=2, lr=0.01)
    model.fit(split.train.images[:600], split.train.labels[:600])
    path = tmp_path_factory.mktemp("model") / "model.npz"
    model.save(path)
    return model, path, split.test.images[:200]


def test_round_trip_is_exact(trained):
    model, path, images = trained
    loaded = nnscratch.load(path)
    assert loaded.network.describe() == model.network.describe()
    for a, b in zip(model.network.parameters(), loaded.network.parameters()):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert np.array_equal(loaded.predict_proba(images), model.predict_proba(images))
    assert np.array_equal(loaded.predict(images), model.predict(images))
    loaded.save(path.parent / "again.npz")  # saving what was loaded gives the same arrays again
    _, first = read_model_file(path)
    _, second = read_model_file(path.parent / "again.npz")
    assert first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def test_meta_describes_the_model(trained):
    _, path, _ = trained
    meta, arrays = read_model_file(path)
    assert meta["format"] == FORMAT and meta["version"] == VERSION
    layers = meta["network"]["layers"]
    assert meta["network"]["type"] == "Sequential" and layers[0] == {"type": "Rescale", "scale": pytest.approx(1 / 255)}
    assert [d["type"] for d in layers] == ["Rescale", "Dense", "LeakyReLU", "Dropout", "Dense", "LeakyReLU",
                                           "Dropout", "Dense"]
    assert layers[1] == {"type": "Dense", "n_in": 784, "n_out": 20} and layers[3] == {"type": "Dropout", "rate": 0.1}
    assert meta["classes"] == [str(d) for d in range(10)] and meta["nnscratch"] == nnscratch.__version__
    assert meta["preprocessing"]["shape"] == [28, 28]
    assert sorted(arrays) == sorted(f"param/{i}.{k}" for i in (1, 4, 7) for k in "Wb")
    with zipfile.ZipFile(path) as zf:  # plain arrays only: nothing a loader would unpickle
        for name in zf.namelist():
            assert zf.read(name)[:6] == b"\x93NUMPY" and b"'O'" not in zf.read(name)[:128]


def test_a_run_folder_holds_the_training_configuration(tmp_path):
    from nnscratch.apps.experiment import settings_for, train_run

    train_run(settings_for("seed", epochs=2), tmp_path / "run", log=lambda *_: None)
    meta, arrays = read_model_file(tmp_path / "run")
    assert meta["run"]["preset"] == "seed" and meta["config"]["optimizer"] == "gd"
    assert meta["config"]["epochs"] == 2 and meta["trainer"]["epoch"] == 2 and meta["finished"]
    assert meta["data"]["train_digits"] == 4000
    model = nnscratch.load(tmp_path / "run")
    assert model.network.layers[0].scale == 1.0 and widths(model) == [784, 16, 16, 10]


def _expect_refusal(path, capsys, words):
    with pytest.raises(DataError):
        nnscratch.load(path)
    assert main(["evaluate", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nnscratch: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert words in err and str(path) in err


def test_truncated_files_are_refused(trained, tmp_path, capsys):
    _, path, _ = trained
    raw = path.read_bytes()
    for size in (0, 3, 100, len(raw) // 2, len(raw) - 1):
        bad = tmp_path / f"cut{size}.npz"
        bad.write_bytes(raw[:size])
        with pytest.raises(DataError):
            nnscratch.load(bad)
    _expect_refusal(bad, capsys, "not a readable model file")


def test_every_damaged_byte_is_refused_or_harmless(trained, tmp_path):
    """Flip bytes all over the file: each load fails with DataError or gives the same weights."""
    model, path, _ = trained
    raw = path.read_bytes()
    bad = tmp_path / "flipped.npz"
    positions = [*range(0, len(raw), max(1, len(raw) // 300)), *range(len(raw) - 300, len(raw), 2)]
    for pos in positions:  # all over the arrays, and densely over the zip's directory at the end
        damaged = bytearray(raw)
        damaged[pos] ^= 0xFF
        bad.write_bytes(damaged)
        try:
            loaded = nnscratch.load(bad)
        except DataError:
            continue
        # Only bytes nothing reads (zip timestamps, padding) may change without notice.
        assert all(np.array_equal(a, b) for a, b in zip(model.network.parameters(), loaded.network.parameters())), pos


def _rewrite(path, out, change_meta=None, drop=(), replace=None):
    meta, arrays = read_model_file(path)
    if change_meta:
        change_meta(meta)
    arrays = {k: v for k, v in arrays.items() if k not in drop} | (replace or {})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    np.savez(out, **arrays)
    return out


@pytest.mark.parametrize("case, words", [
    ("text", "not an .npz archive"),
    ("npy", "not an nnscratch model file"),
    ("foreign npz", "no 'meta' record"),
    ("version", "format version 99 is not supported"),
    ("format", "field 'format'"),
    ("shape", "array 'param/4.W': expected shape (20, 12)"),
    ("missing", "array 'param/7.b': expected shape (10,), found missing"),
    ("extra", "array 'param/8.W': not part of this network"),
    ("nan", "NaN or infinite"),
    ("architecture", "field 'network'"),
    ("pickle", "pickled Python objects, which nnscratch never loads"),
])
def test_foreign_and_inconsistent_files_are_refused(trained, tmp_path, capsys, case, words):
    _, path, _ = trained
    bad = tmp_path / "bad.npz"
    if case == "text":
        bad.write_text("label,pixel0\n1,2\n")
    elif case == "npy":
        with open(bad, "wb") as f:
            np.save(f, np.arange(5))
    elif case == "foreign npz":
        np.savez(bad, weights=np.ones(3))
    elif case == "version":
        _rewrite(path, bad, lambda m: m.update(version=99))
    elif case == "format":
        _rewrite(path, bad, lambda m: m.update(format="something-else"))
    elif case == "shape":
        _rewrite(path, bad, replace={"param/4.W": np.zeros((12, 20), np.float32)})
    elif case == "missing":
        _rewrite(path, bad, drop=("param/7.b",))
    elif case == "extra":
        _rewrite(path, bad, replace={"param/8.W": np.zeros(3, np.float32)})
    elif case == "nan":
        _rewrite(path, bad, replace={"param/1.W": np.full((784, 20), np.nan, np.float32)})
    elif case == "architecture":
        _rewrite(path, bad, lambda m: m["network"]["layers"].pop(4))  # Dense(784, 20) then Dense(12, 10)
    elif case == "pickle":
        np.savez(bad, meta=np.array([{"format": FORMAT}], dtype=object))
    _expect_refusal(bad, capsys, words)


def test_a_folder_without_a_model_is_refused(tmp_path, capsys):
    _expect_refusal(tmp_path, capsys, "no such model file")
