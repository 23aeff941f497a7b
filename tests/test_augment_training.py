"""Training on distorted digits (#12): the same seed gives the same weights, and resume continues the same stream."""
import numpy as np

from nnscratch.apps import cli

from .conftest import interrupt_at_epoch

FLAGS = ["--epochs", "3", "--augment", "elastic"]


def weights(folder):
    with np.load(folder / "model.npz") as npz:
        return {k: npz[k] for k in npz.files if k.startswith("param/")}


def test_augmented_runs_are_reproducible_and_resume_bit_identical(tmp_path, monkeypatch):
    assert cli.main(["train", *FLAGS, "--out", str(tmp_path / "a")]) == 0
    assert cli.main(["train", *FLAGS, "--out", str(tmp_path / "b")]) == 0
    assert (tmp_path / "a" / "augmented.png").stat().st_size > 0
    interrupt_at_epoch(monkeypatch, 3)
    assert cli.main(["train", *FLAGS, "--out", str(tmp_path / "c")]) == 130
    monkeypatch.undo()
    assert cli.main(["train", "--resume", str(tmp_path / "c")]) == 0
    a, b, c = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    for key in a:
        assert np.array_equal(a[key], b[key]) and np.array_equal(a[key], c[key]), key


def test_distortions_change_what_the_network_learns(tmp_path):
    assert cli.main(["train", "--epochs", "2", "--out", str(tmp_path / "plain")]) == 0
    assert cli.main(["train", "--epochs", "2", "--augment", "affine", "--out", str(tmp_path / "affine")]) == 0
    plain, affine = weights(tmp_path / "plain"), weights(tmp_path / "affine")
    assert not np.array_equal(plain["param/1.W"], affine["param/1.W"])
    assert not (tmp_path / "plain" / "augmented.png").exists()


def test_bad_distortion_settings_are_one_line(tmp_path, capsys):
    assert cli.main(["train", "--augment", "elastic", "--distortion", "sigma=-1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "sigma" in err and not (tmp_path / "r").exists()


def test_the_record_presets_are_offered_and_build():
    """The long record runs are not for tests: check only that the CLI offers them and they build."""
    from nnscratch.apps.experiment import build, settings_for

    for name in ("mlp-record", "cnn-record"):
        assert cli.make_parser().parse_args(["train", "--preset", name]).preset == name
    model = build(settings_for("cnn-record"), n_inputs=784)
    kinds = [type(layer).__name__ for layer in model.network.leaves()]
    assert kinds.count("Conv2D") == 2 and kinds.count("BatchNorm") == 3
    augmenter = model.train_config().augmenter()
    assert augmenter.config()["kind"] == "affine" and augmenter.config()["rotate"] > 0
    digits = np.random.default_rng(0).integers(0, 256, size=(4, 784), dtype=np.uint8)
    assert model.predict_proba(augmenter(digits, np.random.default_rng(0))).shape == (4, 10)
