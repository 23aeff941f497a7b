"""Bad input never crashes nnscratch and never loses work (issue #7).

One table of every bad input the command line can meet (data files, flags,
model files, images, run folders to resume; through train, evaluate, predict
and serve): each must end with exit status 2, exactly one line on stderr
naming the problem, no traceback, nothing on stdout, and every file of the
test folder (an earlier run, an earlier evaluation, the bad inputs
themselves) left byte for byte as it was, with nothing added.
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from nnscratch.apps import cli
from nnscratch.apps.reports import write_json
from nnscratch.errors import DataError
from nnscratch.files.modelfile import atomic_path, load_model, read_model_file, write_model_file

from .badfiles import (
    BAD_CSV,
    BAD_IDX,
    BAD_IMAGES,
    BAD_MODELS,
    GOOD_PNG,
    MISFIT_MODELS,
    csv_rows,
    csv_text,
    model_bytes,
    write_idx_folder,
)


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
    assert cli.main(["evaluate", str(root / "earlier"), "--out", str(root / "evaluated")]) == 0
    for name, (content, _) in {**BAD_MODELS, **MISFIT_MODELS}.items():
        (root / f"{name}.npz").write_bytes(content)
        (root / f"resume {name}").mkdir()
        (root / f"resume {name}" / "model.npz").write_bytes(content)
    for name, (content, _) in BAD_IMAGES.items():
        if content is not None:
            (root / name).write_bytes(content)
    (root / "digit.png").write_bytes(GOOD_PNG)
    (root / "three classes.npz").write_bytes(model_bytes((784, 16, 3)))
    for name, (change, _) in DAMAGED_RUNS.items():
        shutil.copytree(root / "earlier", root / name)
        meta, arrays = read_model_file(root / name / "model.npz")
        change(meta, arrays)
        write_model_file(root / name / "model.npz", meta, arrays)
    return root


def snapshot(folder):
    """Every file under ``folder``, by relative path: what a failing command must leave alone."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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

# Checkpoints of the earlier run, damaged: folder -> (change(meta, arrays), message)
DAMAGED_RUNS = {
    "run: hidden damaged": (lambda m, a: m["run"].update(hidden="abc"),
                            r"run: hidden damaged/model\.npz: field 'run': damaged settings \(ValueError"),
    "run: other widths": (lambda m, a: m["run"].update(hidden=[7]),
                          r"other widths/model\.npz: array 'param/1\.W': expected shape \(784, 7\), found shape \(784, 16\)"),
    "run: no lr": (lambda m, a: m["run"].pop("lr"), r"no lr/model\.npz: field 'run': damaged settings \(KeyError: 'lr'\)"),
    "run: bad optimizer": (lambda m, a: m["run"].update(optimizer="nope"),
                           r"bad optimizer/model\.npz: field 'run': damaged settings \(DataError: optimizer must be"),
    "data: path damaged": (lambda m, a: m["data"].update(path=5), r"path damaged/model\.npz: field 'data': damaged path 5"),
    "trainer: epoch damaged": (lambda m, a: m["trainer"].update(epoch=[1]),
                               r"epoch damaged/model\.npz: fields 'trainer' and 'run': damaged epoch counts"),
    "trainer: rng damaged": (lambda m, a: m["trainer"].update(rng={}),
                             r"rng damaged/model\.npz: field 'trainer': damaged training state"),
    "checkpoint: NaN weights": (lambda m, a: a["param/1.b"].fill(np.nan),
                                r"NaN weights/model\.npz: array 'param/1\.b': holds NaN or infinite values"),
    "checkpoint: weights cut": (lambda m, a: a.update({"param/1.W": a["param/1.W"][:10]}),
                                r"weights cut/model\.npz: array 'param/1\.W': expected shape \(784, 16\), found shape \(10, 16\)"),
    "run: train_rows damaged": (lambda m, a: m["run"].update(train_rows="abc"),
                                r"train_rows damaged/model\.npz: field 'run': damaged train_rows 'abc'"),
    "checkpoint: optimizer memory cut": (lambda m, a: a.update({k: v[:1] for k, v in a.items() if k.startswith("optimizer/") and v.ndim}),
                                         r"memory cut/model\.npz: array 'optimizer/m/1\.W': expected shape \(784, 16\), "
                                         r"found shape \(1, 16\)"),
    "diverged run": (lambda m, a: m.update(diverged="training diverged at epoch 2: the cost became 4e+06"),
                     r"--resume .*diverged run: training diverged at epoch 2: .*resuming would repeat that\. "
                     r"Start again instead: nnscratch train --out .*diverged run --lr \.\.\. replaces the diverged run"),
}

WEIGHTS_ONLY = {"nan-weights", "wrong-shape", "unknown-layer", "layers-do-not-fit"}  # bare models: resume refuses them for lack of a training state

MODEL_COMMANDS = {  # a model file handed to each command that takes one (serve: must fail before listening)
    "evaluate": lambda model: ["evaluate", model, "--out", "@evaluated"],
    "predict": lambda model: ["predict", model, "@digit.png"],
    "serve": lambda model: ["serve", model, "--port", "0"],
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
    # model files, through every command that reads one
    **{f"model {k} via {cmd}": (argv(f"@{k}.npz"), 2, re.escape(f"{k}.npz: ") + m)
       for k, (_, m) in {**BAD_MODELS, **MISFIT_MODELS}.items() for cmd, argv in MODEL_COMMANDS.items()},
    **{f"model {k} via train --resume": (["train", "--resume", f"@resume {k}", "--epochs", "2"], 2,
                                         re.escape(f"resume {k}/model.npz: ") + m)
       for k, (_, m) in BAD_MODELS.items() if k not in WEIGHTS_ONLY},  # those: see DAMAGED_RUNS
    "no such model": (["predict", "@nope.npz", "@digit.png"], 2, r"nope\.npz: no such model file"),
    "folder without a model": (["evaluate", "@empty folder"], 2, r"empty folder/model\.npz: no such model file"),
    "model without training state via train --resume": (["train", "--resume", "@resume 100-inputs"], 2,
                                                        r"resume 100-inputs: its model\.npz holds a model but no training state"),
    "model with 3 classes via evaluate": (["evaluate", "@three classes.npz", "--out", "@evaluated"], 2,
                                          r"three classes\.npz: this network tells 3 classes apart, but the digits "
                                          r"to score include label 9"),
    # images, through predict (alone: beside a good one, it gets its answer, see test_predict.py)
    **{f"image {k}": (["predict", "@earlier", f"@{k}"], 2, re.escape(f"{k}: ") + m)
       for k, (_, m) in BAD_IMAGES.items()},
    # run folders to resume
    "resume: empty folder": (["train", "--resume", "@empty folder"], 2,
                             r"--resume .*empty folder: no run to resume there \(no model\.npz\); start one with"),
    "resume: no such folder": (["train", "--resume", "@nope"], 2, r"--resume .*nope: no such folder"),
    "resume: a file": (["train", "--resume", "@earlier/model.npz"], 2,
                       r"earlier/model\.npz: not a folder; give the run folder that holds model\.npz"),
    **{f"resume: {k}": (["train", "--resume", f"@{k}", "--epochs", "2"], 2, m) for k, (_, m) in DAMAGED_RUNS.items()},
    "resume with other flags": (["train", "--resume", "@earlier", "--lr", "0.1"], 2,
                                r"--resume continues a run with its own data and settings; drop --lr"),
    # evaluate's other inputs
    "evaluate: bad CSV": (["evaluate", "@earlier", "--data", "@ragged row.csv", "--out", "@evaluated"], 2,
                          r"ragged row\.csv: line 4: has 784 values"),
    "evaluate: bad IDX": (["evaluate", "@earlier", "--data", "@truncated images", "--out", "@evaluated"], 2,
                          r"train-images-idx3-ubyte: byte 15596"),
    "evaluate: --out holds a run": (["evaluate", "@earlier", "--out", "@earlier"], 2,
                                    r"--out .*earlier: holds a training run whose metrics\.json would be overwritten"),
    "evaluate: --out is a file": (["evaluate", "@earlier", "--out", "@a file"], 2, r"--out .*a file: exists and is not a folder"),
    "serve: --port 70000": (["serve", "@earlier", "--port", "70000"], 2, r"--port 70000: must be 0-65535"),
    "no command": ([], 2, r"the following arguments are required: COMMAND"),
    "unknown command": (["fly"], 2, r"argument COMMAND: invalid choice: 'fly'"),
}


@pytest.mark.parametrize("case", CASES, ids=list(CASES))
def test_bad_input_gives_one_line_exit_2_and_loses_nothing(place, capsys, monkeypatch, case):
    argv, expected_status, message = CASES[case]
    argv = paths(place, argv)
    if argv and argv[0] == "train" and "--out" not in argv and "--resume" not in argv:
        argv += ["--out", str(place / "earlier")]  # a failing command aimed at an earlier run
    monkeypatch.setattr("nnscratch.apps.web.server.make_server", refuse_to_listen)
    before = snapshot(place)
    capsys.readouterr()
    status = run(argv)
    out, err = capsys.readouterr()
    assert status == expected_status, err
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("nnscratch") and "Traceback" not in err
    assert re.search(message, err), f"{message!r} not in {err!r}"
    assert out == "", "a failing command printed results"
    assert snapshot(place) == before, "a file was changed, removed or added"


def refuse_to_listen(*args, **kwargs):
    raise AssertionError("serve got as far as listening: a bad MODEL must be refused before")


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
        proc = subprocess.run([sys.executable, "-m", "nnscratch", *argv], capture_output=True, text=True)
        assert proc.returncode == 2
        assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


# --------------------------------------------------------------------------- #
# Divergence: stops at once, says which epoch, suggests a lower rate, saves no NaN
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("argv, epoch", [
    (["--preset", "seed", "--lr", "1e6", "--epochs", "20"], 2),  # full batch: blows up after one step
    (["--optimizer", "gd", "--lr", "1e6", "--epochs", "3"], 2),  # the default network, full-batch gd
    (["--lr", "1e6", "--epochs", "3"], 1),  # Adam on mini-batches: blows up inside epoch 1
])
def test_divergence_stops_with_a_message_and_saves_no_nan(place, capsys, argv, epoch):
    out = place / f"diverged-{'-'.join(argv)}"
    capsys.readouterr()
    status = run(["train", *argv, "--out", str(out)])
    err = capsys.readouterr().err
    assert status == cli.EXIT_DIVERGED
    assert err.count("\n") == 1 and f"training diverged at epoch {epoch}:" in err
    assert "try a lower learning rate than 1e+06" in err
    assert not (out / "metrics.json").exists() and not (out / "cost.png").exists()
    # The last checkpoint, written before the blow-up, is kept: finite, loadable, labelled.
    meta, arrays = read_model_file(out / "model.npz")
    assert all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind == "f")
    assert meta["trainer"]["epoch"] == epoch - 1 and meta["diverged"] in err
    assert load_model(out).predict(np.zeros((1, 784))).shape == (1,)
    # Resuming would only repeat it: refused, saying so; the folder is left as it was.
    before = snapshot(out)
    assert run(["train", "--resume", str(out)]) == 2
    assert "resuming would repeat that" in capsys.readouterr().err and snapshot(out) == before
    # A rerun of the same network with a lower rate may take the folder over: nothing else is in it.
    assert run(["train", *argv[:-4], "--lr", "0.05", "--epochs", "1", "--out", str(out)]) == 0
    assert "diverged" not in read_model_file(out / "model.npz")[0]


def test_a_run_killed_before_its_blow_up_was_seen_diverges_again_on_resume(place, capsys):
    """The checkpoint's weights can be one step past good; the resumed run still measures the
    cost against the run's first cost, not against its own (already exploded) first one."""
    out = place / "killed before the blow-up"
    assert run(["train", "--preset", "seed", "--lr", "1e6", "--epochs", "20", "--out", str(out)]) == 3
    meta, arrays = read_model_file(out / "model.npz")
    del meta["diverged"]  # as if killed between the checkpoint and the next epoch
    write_model_file(out / "model.npz", meta, arrays)
    capsys.readouterr()
    assert run(["train", "--resume", str(out)]) == cli.EXIT_DIVERGED
    assert "training diverged at epoch 2: the cost became 2.257e+05 (it started at 2.435)" in capsys.readouterr().err


def test_an_out_folder_with_a_diverged_run_and_other_results_is_not_taken_over(place):
    out = place / "diverged, with results"
    assert run(["train", "--preset", "seed", "--lr", "1e6", "--epochs", "20", "--out", str(out)]) == 3
    (out / "notes.txt").write_text("mine")
    assert run(["train", "--epochs", "1", "--out", str(out)]) == 2


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
    from nnscratch import Classifier, mlp

    with pytest.raises(DataError, match=r"inputs of shape \(5, 783\) do not fit this network, "
                                        r"which takes rows of 784 values"):
        Classifier(mlp([784, 16, 10])).predict(np.zeros((5, 783)))
