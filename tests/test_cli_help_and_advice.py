"""What the command line tells its user: advice that can be followed, help that names defaults,
and words and tables that read right (issue #17, points 9 and 10)."""
import argparse
import re

import pytest

from nnscratch.apps import cli
from nnscratch.apps.evaluation import format_report
from nnscratch.files.modelfile import read_model_file


def run(argv):
    try:
        return cli.main(argv)
    except SystemExit as exc:  # argparse: --help, or a bad flag
        return exc.code


# --------------------------------------------------------------------------- #
# After a run diverged, the advice leads somewhere
# --------------------------------------------------------------------------- #
def test_the_advice_after_a_diverged_and_evaluated_run_can_be_followed(tmp_path, capsys):
    """train (diverges) -> evaluate it -> resume says start again with --out -> that command works."""
    out = tmp_path / "run"
    assert run(["train", "--lr", "1e6", "--epochs", "3", "--out", str(out)]) == cli.EXIT_DIVERGED
    assert run(["evaluate", str(out)]) == 0  # writes out/evaluation-sample: a report about the diverged run
    assert (out / "evaluation-sample" / "metrics.json").is_file()
    capsys.readouterr()
    assert run(["train", "--resume", str(out)]) == 2
    advice = re.search(r"nnscratch (train --out \S+ --lr \.\.\.)", capsys.readouterr().err)
    assert advice, "resume does not say how to start again"
    argv = advice[1].replace("...", "0.05").split() + ["--epochs", "1"]
    assert run(argv) == 0, capsys.readouterr().err
    assert "diverged" not in read_model_file(out / "model.npz")[0]
    # The old report described the replaced weights: gone, not left beside the new run.
    assert not (out / "evaluation-sample").exists()
    assert sorted(p.name for p in out.iterdir()) == ["cost.png", "metrics.json", "model.npz", "weights.png"]


def test_a_diverged_run_beside_other_files_is_refused_naming_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert run(["train", "--lr", "1e6", "--epochs", "3", "--out", str(out)]) == cli.EXIT_DIVERGED
    (out / "notes.txt").write_text("mine")
    (out / "evaluation-mine").mkdir()
    (out / "evaluation-mine" / "metrics.json").write_text("{}")  # not a report evaluate wrote
    capsys.readouterr()
    assert run(["train", "--lr", "0.05", "--epochs", "1", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds a run that diverged" in err and "evaluation-mine, notes.txt" in err
    assert (out / "notes.txt").read_text() == "mine" and (out / "evaluation-mine" / "metrics.json").is_file()


# --------------------------------------------------------------------------- #
# --help names every default
# --------------------------------------------------------------------------- #
NO_DEFAULT = {"--resume", "--submission", "--save-input", "--to"}  # flags that only do something when given
REQUIRED = {("sweep", "--out"), ("download", "--to")}  # flags that must be given: no default to name


def value_flags(parser):
    """(command, flag, help) for every flag that takes a value, in every subcommand."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for command, subparser in sub.choices.items():
        for action in subparser._actions:
            if action.option_strings and action.nargs != 0 and action.help != argparse.SUPPRESS:
                yield command, action.option_strings[-1], action.help or ""


def test_help_names_the_default_of_every_flag():
    missing = [f"{command} {flag}" for command, flag, text in value_flags(cli.make_parser())
               if flag not in NO_DEFAULT and (command, flag) not in REQUIRED and "default" not in text]
    assert missing == []


def test_train_help_gives_each_presets_value_and_the_files_it_writes(capsys):
    assert run(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split()).replace("mlp- record", "mlp-record")  # argparse wraps lines anywhere, hyphens too
    assert "default from the preset: seed 500, default 30, best 15, cnn 8, mlp-record 40" in text  # --epochs
    assert "default from the preset: seed 0.8, default 0.01, best 0.002" in text  # --lr
    assert "default from the preset: seed full, default 64, best 256" in text  # --batch-size
    assert "writes model.npz, metrics.json, cost.png and weights.png" in text


# --------------------------------------------------------------------------- #
# Words and tables
# --------------------------------------------------------------------------- #
def test_one_epoch_is_not_one_epochs(tmp_path, capsys):
    assert run(["train", "--epochs", "1", "--out", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "1 epochs" not in printed and "1 epoch;" in printed and "(1 epoch in" in printed
    assert run(["train", "--resume", str(tmp_path / "run")]) == 0
    assert "this run is finished (1 epoch," in capsys.readouterr().out


@pytest.mark.parametrize("share", [1.0, 0.0, 0.5])
def test_the_evaluate_table_stays_aligned_at_100_percent(share):
    per_class = {str(d): {"precision": share if d % 2 else 1.0, "recall": 0.01 if d % 3 else 1.0, "support": 1000}
                 for d in range(10)}
    table = format_report({"accuracy": share, "digits": 1, "per_class": per_class}, "test digits")
    lines = table.splitlines()
    assert lines[1].endswith(" of 1 digit)")
    rows = lines[2:]
    assert len({len(row) for row in rows}) == 1, "\n" + table
    # Every column ends at the same place in the header and in every row.
    ends = [[m.end() for m in re.finditer(r"\S+( %)?", row)] for row in rows]
    assert all(e == ends[0] for e in ends), "\n" + table
