"""Bad input never crashes nnscratch and never loses work (issue #7).

One table of every bad input the command line can meet: each must end with
exit status 2 (divergence: 3), exactly one line on stderr naming the problem,
no traceback, and an earlier run folder left byte for byte as it was.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from .badfiles import BAD_CSV, BAD_IDX, csv_rows, csv_text, write_idx_folder
from nnscratch import cli
from nnscratch.errors import DataError
from nnscratch.modelfile import atomic_path, read_model_file
from nnscratch.reports import write_json


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A folder holding an earlier run, every bad file, and room for new runs."""
    root = tmp_path_factory.mktemp("bad_input")
    status = cli.main(["train", "--epochs", "1", "--out", str(root / "earlier")])
    assert status == 0 and (root / "earlier" / "model.npz").is_file()
    for name, (content, _) in BAD_CSV.items():
        (root / f"{name}.csv").write_bytes(content)
    for name, (replace, _) in BAD_IDX.items():
        write_idx_folder(root / name, replace=replace)
    (root / "small.csv").write_bytes(csv_text(csv_rows(5)))
    (root / "empty folder").mkdir()
    (root / "a file").write_text("not a folder")
    return root


def snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def run(argv):
    """``nnscratch argv`` in this process: the exit status (argparse's SystemExit included)."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


FLAGS = {  # flag values out of range or of the wrong kind: argparse refuses them
    "--epochs -1": (["--epochs", "-1"], r"argument --epochs: -1 must be at least 1"),
    "--epochs 0": (["--epochs", "0"], r"argument --epochs: 0 must be at least 1"),
    "--epochs 2.5": (["--epochs", "2.5"], r"argument --epochs: '2.5' is not a whole number"),
    "--epochs huge": (["--epochs", "10" * 12], r"argument --epochs: 1010101010\d+ is more than 1000000 epochs"),
    "--lr nan": (["--lr", "nan"], r"argument --lr: nan must be a positive finite number"),
    "--lr inf": (["--lr", "inf"], r"argument --lr: inf must be a positive finite number"),
    "--lr -1": (["--lr", "-1"], r"argument --lr: -1 must be a positive finite number"),
    "--lr 0": (["--lr", "0"], r"argument --lr: 0 must be a positive finite number"),
    "--lr abc": (["--lr", "abc"], r"argument --lr: 'abc' is not a number"),
    "--hidden abc": (["--hidden", "abc"], r"argument --hidden: 'abc' is not a comma-separated list"),
    "--hidden 16,,16": (["--hidden", "16,,16"], r"argument --hidden: '16,,16' is not a comma-separated list"),
    "--hidden 0": (["--hidden", "16,0"], r"argument --hidden: '16,0': every hidden layer needs 1 to"),
    "--hidden huge": (["--hidden", "10000000"], r"every hidden layer needs 1 to 100000 neurons"),
    "--batch-size 0": (["--batch-size", "0"], r"argument --batch-size: 0 must be at least 1"),
    "--batch-size -5": (["--batch-size", "-5"], r"argument --batch-size: -5 must be at least 1"),
    "--batch-size half": (["--batch-size", "half"], r"argument --batch-size: 'half' is not a whole number"),
    "--dropout 1": (["--dropout", "1"], r"argument --dropout: 1 must be in \[0, 1\)"),
    "--dropout nan": (["--dropout", "nan"], r"argument --dropout: nan must be in \[0, 1\)"),
    "--l2 -1": (["--l2", "-1"], r"argument --l2: -1 must be a finite number >= 0"),
    "--validation-split 1.5": (["--validation-split", "1.5"], r"argument --validation-split: 1.5 must be in"),
    "--patience 0": (["--patience", "0"], r"argument --patience: 0 must be at least 1"),
    "--seed -1": (["--seed", "-1"], r"argument --seed: -1 must be 0 or more"),
    "--train-rows 0": (["--train-rows", "0"], r"argument --train-rows: 0 must be at least 1"),
    "--preset nope": (["--preset", "nope"], r"argument --preset: invalid choice: 'nope'"),
    "--optimizer nope": (["--optimizer", "nope"], r"argument --optimizer: invalid choice: 'nope'"),
    "unknown flag": (["--epohcs", "3"], r"unrecognized arguments: --epohcs 3"),
    "missing value": (["--lr"], r"argument --lr: expected one argument"),
}

CASES = {  # id -> (argv after 'nnscratch', where @x is the path x in the test folder, exit status, message regex)
    **{f"csv: {k}": (["train", "--data", f"@{k}.csv"], 2, m) for k, (_, m) in BAD_CSV.items()},
    **{f"idx: {k}": (["train", "--data", f"@{k}"], 2, m) for k, (_, m) in BAD_IDX.items()},
    **{f"flag: {k}": (["train", *a], 2, m) for k, (a, m) in FLAGS.items()},
    "no such data": (["train", "--data", "@nope.csv"], 2, r"nope.csv: no such file"),
    "folder without IDX files": (["train", "--data", "@empty folder"], 2, r"no train-images-idx3-ubyte file"),
    "train rows leave no test rows": (["train", "--data", "@small.csv", "--train-rows", "5"], 2,
                                      r"cannot keep 5 of 5 rows for training"),
    "train rows with the sample": (["train", "--train-rows", "100"], 2,
                                   r"train_rows \(--train-rows\) applies to a CSV file only; the bundled sample"),
    "train rows with IDX files": (["train", "--data", "@counts differ", "--train-rows", "10"], 2,
                                  r"applies to a CSV file only; .*counts differ \(MNIST IDX files\)"),
    "--out holds a run": (["train", "--epochs", "1", "--out", "@earlier"], 2,
                          r"--out .*earlier: already holds a run"),
    "--out is a file": (["train", "--epochs", "1", "--out", "@a file"], 2, r"--out .*a file: exists and is not a folder"),
    "--out cannot be made": (["train", "--epochs", "1", "--out", "/dev/null/run"], 2, r"/dev/null/run: Not a directory"),
    "no command": ([], 2, r"the following arguments are required: COMMAND"),
    "unknown command": (["fly"], 2, r"argument COMMAND: invalid choice: 'fly'"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gives_one_line_exit_2_and_loses_nothing(place, capsys, case):
    argv, expected_status, message = CASES[case]
    argv = paths(place, argv)
    if argv and argv[0] == "train" and "--out" not in argv:
        argv += ["--out", str(place / "earlier")]  # a failing command aimed at an earlier run
    before = snapshot(place / "earlier")
    capsys.readouterr()
    status = run(argv)
    err = capsys.readouterr().err
    assert status == expected_status, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("nnscratch") and "Traceback" not in err
    assert re.search(message, err), f"{message!r} not in {err!r}"
    assert snapshot(place / "earlier") == before, "the earlier run was changed"


def paths(root, argv):
    """``@name`` in a test's argv -> the path of that name under the test folder."""
    return [str(root / a[1:]) if a.startswith("@") else a for a in argv]


# --------------------------------------------------------------------------- #
# --debug shows the traceback (the exception propagates), wherever it is put
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("argv", [["--debug", "train", "--data", "@text cell.csv"],
                                  ["train", "--data", "@text cell.csv", "--debug"]])
def test_debug_lets_the_error_through(place, argv):
    with pytest.raises(DataError, match="'abc' is not a whole number"):
        cli.main(paths(place, argv))


def test_a_real_process_prints_one_line_and_exits_2(place):
    for argv in (["train", "--data", str(place / "ragged row.csv")], ["train", "--lr", "nan"]):
        proc = subprocess.run([sys.executable, "-m", "nnscratch.cli", *argv], capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- #
# Divergence: stops at once, says which epoch, suggests a lower rate, saves no NaN
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("argv, epoch", [
    (["--preset", "seed", "--lr", "1e6", "--epochs", "20"], 2),  # full batch: blows up after one step
    (["--lr", "1e6", "--epochs", "3"], 1),  # Adam on mini-batches: blows up inside epoch 1
])
def test_divergence_stops_with_a_message_and_saves_no_nan(place, capsys, argv, epoch):
    out = place / f"diverged-{epoch}"
    capsys.readouterr()
    status = run(["train", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_DIVERGED
    assert err.count("\n") == 1 and f"training diverged at epoch {epoch}:" in err
    assert "try a lower learning rate than 1e+06" in err
    assert not (out / "metrics.json").exists() and not (out / "cost.png").exists()
    if (out / "model.npz").exists():  # a checkpoint may be kept: then it must be a good one
        _, arrays = read_model_file(out / "model.npz")
        assert all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind == "f")


# --------------------------------------------------------------------------- #
# Outputs are written whole or not at all
# --------------------------------------------------------------------------- #
def test_atomic_path_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "model.npz"
    target.write_bytes(b"earlier result")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of a new res")
            raise RuntimeError("disk full, say")
    assert target.read_bytes() == b"earlier result"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"], "a temporary file was left behind"


def test_write_json_that_fails_leaves_the_old_metrics(tmp_path):
    target = tmp_path / "metrics.json"
    write_json({"test_accuracy": 0.9}, target)
    with pytest.raises(TypeError):
        write_json({"test_accuracy": object()}, target)  # not JSON-able: fails mid-way
    assert json.loads(target.read_text()) == {"test_accuracy": 0.9}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_pixel_count_that_does_not_fit_the_network_is_named():
    """Files with 783 or 785 pixels are refused by the loader (see BAD_CSV); arrays by the network."""
    from nnscratch import MLP

    with pytest.raises(DataError, match=r"inputs of shape \(5, 783\) do not fit this network, "
                                        r"which takes rows of 784 values"):
        MLP([784, 16, 10]).predict(np.zeros((5, 783)))
