"""The command line, end to end, as a user runs it."""
import json
import subprocess
import sys

import numpy as np

import nnscratch
from nnscratch.apps import cli

from .conftest import widths


def test_train_on_the_bundled_sample_writes_the_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" in printed and "train accuracy" in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0.5 <= metrics["train_accuracy"] <= 1 and 0.5 <= metrics["test_accuracy"] <= 1  # 3 epochs of Adam
    assert metrics["epochs"] == 3 and len(metrics["history"]["train_cost"]) == 3
    assert metrics["train_seconds"] > 0
    assert (out / "cost.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    model = nnscratch.load(out / "model.npz")
    assert widths(model) == [784, 16, 16, 10]


def test_default_training_reaches_88_percent_on_the_sample(tmp_path):
    """`nnscratch train` with no arguments, the Quickstart's main job, in a real process."""
    result = subprocess.run([sys.executable, "-m", "nnscratch", "train", "--out", str(tmp_path / "r")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr and "Traceback" not in result.stderr
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.88


def test_model_file_loads_without_pickle(tmp_path):
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path)]) == 0
    with np.load(tmp_path / "model.npz", allow_pickle=False) as npz:
        assert "meta" in npz.files and npz["param/1.W"].shape == (784, 16)


def test_existing_run_is_never_overwritten(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path)]) == 0
    before = (tmp_path / "model.npz").read_bytes()
    assert cli.main(["train", "--epochs", "1", "--out", str(tmp_path)]) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "model.npz").read_bytes() == before


def test_ctrl_c_during_training_says_how_to_resume(tmp_path, capsys, monkeypatch):
    from nnscratch.core.training import Trainer

    def interrupted(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "3", "--out", str(out)]) == 130
    err = capsys.readouterr().err.strip()
    assert err == f"nnscratch: interrupted; continue with: nnscratch train --resume {out}"
    assert widths(nnscratch.load(out / "model.npz")) == [784, 16, 16, 10]  # the checkpoint is there


def test_ctrl_c_outside_training_is_one_plain_line(tmp_path, capsys, monkeypatch):
    import nnscratch.apps.evaluation

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(nnscratch.apps.evaluation, "evaluate_file", interrupted)
    assert cli.main(["evaluate", str(tmp_path / "model.npz"), "--out", str(tmp_path / "ev")]) == 130
    assert capsys.readouterr().err.strip() == "nnscratch: interrupted"


def test_predict_and_evaluate_say_when_the_model_is_an_unfinished_checkpoint(tmp_path, capsys, monkeypatch):
    from PIL import Image, ImageDraw

    from nnscratch.core.training import Trainer

    def interrupted(self):
        raise KeyboardInterrupt
    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    assert cli.main(["train", "--epochs", "3", "--out", str(tmp_path / "run")]) == 130
    monkeypatch.undo()
    picture = Image.new("L", (100, 100), 255)
    ImageDraw.Draw(picture).line([(20, 20), (80, 20), (40, 90)], fill=0, width=12)
    picture.save(tmp_path / "seven.png")
    capsys.readouterr()
    assert cli.main(["predict", str(tmp_path / "run"), str(tmp_path / "seven.png")]) == 0
    assert "unfinished run (epoch 0 of 3)" in capsys.readouterr().err
    assert cli.main(["evaluate", str(tmp_path / "run"), "--out", str(tmp_path / "ev")]) == 0
    assert "unfinished run" in capsys.readouterr().out
