"""What a learner sees at the end of a run (#17, points 1-3): early stopping, held-out digits, chance level."""
import json

from PIL import Image

from nnscratch.apps import cli


def test_early_stopping_says_which_epoch_it_kept_and_that_digits_were_held_out(tmp_path, capsys):
    out = tmp_path / "run"
    assert cli.main(["train", "--epochs", "6", "--patience", "1", "--lr", "0.05", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    best = metrics["best_epoch"]
    assert 1 <= best <= metrics["epochs"]
    assert "10 % of the training digits were held out for validation (--patience needs digits to watch)" in printed
    assert f"kept the weights of epoch {best}, the best validation accuracy" in printed
    assert len(metrics["history"]["val_accuracy"]) == metrics["epochs"]
    width, _ = Image.open(out / "cost.png").size
    assert width >= 1500  # three panels: cost, accuracy (with validation) and the learning rate


def test_a_run_that_learned_nothing_says_so(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "1", "--lr", "1e-9", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "warning: the network learned nothing" in printed and "chance is 10 %" in printed
    assert "(1 epoch in" in printed  # not "1 epochs"


def test_a_run_that_learned_gets_no_warning(tmp_path, capsys):
    assert cli.main(["train", "--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    assert "learned nothing" not in capsys.readouterr().out
