"""Checkpoints and resume: a run interrupted (even by kill -9) and resumed, once
or several times, ends with exactly the weights of the same run left alone."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from nnscratch import data
from nnscratch.apps.cli import main
from nnscratch.apps.experiment import resume_run, settings_for, train_run
from nnscratch.files.modelfile import read_model_file


class Interrupted(Exception):
    """Stands for a crash in the middle of training."""


class CrashAt:
    """Callback that crashes once ``at`` epochs are done, before that epoch's checkpoint."""

    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, trainer):
        if trainer.epoch >= self.at:
            raise Interrupted


@pytest.fixture(scope="module")
def small_csv(tmp_path_factory):
    """1000 bundled digits (every fifth, so all ten digits) as a CSV: 800 train, 200 test."""
    sample = data.load_sample()
    path = tmp_path_factory.mktemp("data") / "digits.csv"
    data.save_csv(sample.take(slice(0, None, 5)), path)
    return path


def quiet(*_):
    pass


def weights(folder):
    meta, arrays = read_model_file(folder / "model.npz")
    return meta, [arrays[k] for k in sorted(arrays) if k.startswith("param/")]


def assert_same_run(a, b):
    meta_a, wa = weights(a)
    meta_b, wb = weights(b)
    assert len(wa) == len(wb) > 0
    for x, y in zip(wa, wb):
        assert x.dtype == y.dtype and np.array_equal(x, y)  # bit for bit
    assert meta_a["trainer"]["history"]["train_cost"] == meta_b["trainer"]["history"]["train_cost"]
    assert meta_a["metrics"] == meta_b["metrics"]
    assert meta_a["finished"] and meta_b["finished"]


def interrupted_then_resumed(settings, out, crashes):
    """Train with a crash after ``crashes[0]`` epochs, resume with a crash after ``crashes[1]``... then finish."""
    with pytest.raises(Interrupted):
        train_run(settings, out, callbacks=[CrashAt(crashes[0])], log=quiet)
    for at in crashes[1:]:
        with pytest.raises(Interrupted):
            resume_run(out, progress=lambda epochs, at=at: CrashAt(at), log=quiet)
    return resume_run(out, log=quiet)


def test_minibatch_adam_with_dropout_resumes_bit_identical(small_csv, tmp_path):
    settings = settings_for("default", data=str(small_csv), train_rows=800, epochs=6, dropout=0.2,
                            hidden=[24], activation="relu", init="he")
    alone = train_run(settings, tmp_path / "alone", log=quiet)
    resumed = interrupted_then_resumed(settings, tmp_path / "resumed", crashes=[2, 3, 5])
    assert_same_run(tmp_path / "alone", tmp_path / "resumed")
    assert resumed["test_accuracy"] == alone["test_accuracy"]
    assert resumed["epochs"] == 6 and len(resumed["history"]["train_cost"]) == 6


def test_full_batch_gd_resumes_bit_identical(small_csv, tmp_path):
    settings = settings_for("seed", data=str(small_csv), train_rows=800, epochs=60)  # checkpoint every 3
    train_run(settings, tmp_path / "alone", log=quiet)
    interrupted_then_resumed(settings, tmp_path / "resumed", crashes=[10, 31])
    assert_same_run(tmp_path / "alone", tmp_path / "resumed")


def test_early_stopping_run_resumes_bit_identical(small_csv, tmp_path):
    settings = settings_for("default", data=str(small_csv), train_rows=800, epochs=8, validation_split=0.2,
                            patience=2, lr=0.05)
    train_run(settings, tmp_path / "alone", log=quiet)
    interrupted_then_resumed(settings, tmp_path / "resumed", crashes=[3])
    assert_same_run(tmp_path / "alone", tmp_path / "resumed")


def test_extending_a_constant_schedule_run_equals_a_longer_run(small_csv, tmp_path):
    settings = settings_for("seed", data=str(small_csv), train_rows=800, epochs=20)
    train_run(settings, tmp_path / "short", log=quiet)
    metrics = resume_run(tmp_path / "short", epochs=35, log=quiet)
    assert metrics["epochs"] == 35
    train_run({**settings, "epochs": 35}, tmp_path / "long", log=quiet)
    assert_same_run(tmp_path / "short", tmp_path / "long")


def test_resuming_a_finished_run_says_so(small_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(small_csv), "--train-rows", "800", "--epochs", "2", "--out", str(out)]) == 0
    before = (out / "model.npz").read_bytes()
    capsys.readouterr()
    assert main(["train", "--resume", str(out)]) == 0
    assert "finished" in capsys.readouterr().out
    assert (out / "model.npz").read_bytes() == before


@pytest.mark.parametrize("flags, expected", [
    ([], "no run to resume"),
    (["--lr", "0.1"], "drop --lr"),
])
def test_resume_refusals_are_one_line(tmp_path, capsys, flags, expected):
    assert main(["train", "--resume", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err
    assert expected in err and err.count("\n") == 1 and "Traceback" not in err


def test_resume_refuses_shorter_than_done_and_changed_data(small_csv, tmp_path, capsys):
    out = tmp_path / "run"
    train_run(settings_for("seed", data=str(small_csv), train_rows=800, epochs=3), out, log=quiet)
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 2
    assert "already trained 3 epochs" in capsys.readouterr().err
    table = small_csv.read_text().splitlines()
    changed = tmp_path / "changed.csv"
    changed.write_text("\n".join([table[0], table[2], table[1], *table[3:]]) + "\n")
    small_csv_backup = small_csv.read_bytes()
    try:
        small_csv.write_bytes(changed.read_bytes())
        assert main(["train", "--resume", str(out), "--epochs", "5"]) == 2
        assert "not the run's own" in capsys.readouterr().err
    finally:
        small_csv.write_bytes(small_csv_backup)


def _epochs_done(folder):
    try:
        meta, _ = read_model_file(folder / "model.npz")
    except Exception:  # noqa: BLE001 - not written yet
        return -1
    return meta["trainer"]["epoch"]


def _start_and_kill(args, folder, at_epoch, timeout=60):
    """Run ``nnscratch train args`` in a subprocess and SIGKILL it once ``at_epoch`` epochs are saved."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "nnscratch", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    try:
        while _epochs_done(folder) < at_epoch and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode


def test_kill_9_leaves_a_loadable_resumable_run(small_csv, tmp_path):
    import nnscratch

    common = ["--hidden", "32", "--dropout", "0.1", "--batch-size", "100"]
    settings = settings_for("default", data=str(small_csv), train_rows=800, epochs=14, hidden=[32], dropout=0.1,
                            batch_size=100)
    folder = tmp_path / "killed"
    code = _start_and_kill(["--data", str(small_csv), "--train-rows", "800", "--epochs", "14", "--out",
                            str(folder), *common], folder, at_epoch=3)
    assert code == -signal.SIGKILL
    nnscratch.load(folder)  # loadable right after the kill
    first = _epochs_done(folder)
    assert 3 <= first < 14, "the run should have been killed part-way"
    _start_and_kill(["--resume", str(folder)], folder, at_epoch=first + 3)
    nnscratch.load(folder)
    assert not read_model_file(folder / "model.npz")[0].get("finished")
    resume_run(folder, log=quiet)
    train_run(settings, tmp_path / "alone", log=quiet)
    assert_same_run(tmp_path / "alone", folder)
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")], "no temporary files left behind"
