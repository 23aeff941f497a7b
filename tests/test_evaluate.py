"""nnscratch evaluate: the metrics math, the report folder, and agreement with training."""
import json

import numpy as np
import pytest

import nnscratch
from nnscratch import data
from nnscratch.apps.cli import main
from nnscratch.apps.evaluation import confusion_matrix, evaluate, precision_recall
from nnscratch.apps.experiment import settings_for, train_run

from .conftest import MNIST_DIR, need

PNG = b"\x89PNG\r\n\x1a\n"


def quiet(*_):
    pass


def test_confusion_precision_recall_by_hand():
    true = [0, 0, 0, 1, 1, 2]
    predicted = [0, 0, 1, 1, 2, 1]
    cm = confusion_matrix(true, predicted, 3)
    assert cm.tolist() == [[2, 1, 0], [0, 1, 1], [0, 1, 0]]
    precision, recall = precision_recall(cm)
    # called 0: 2, both right; called 1: 3, one right; called 2: 1, none right.
    assert precision.tolist() == pytest.approx([1.0, 1 / 3, 0.0])
    # real 0s: 3, two found; real 1s: 2, one found; real 2s: 1, none found.
    assert recall.tolist() == pytest.approx([2 / 3, 1 / 2, 0.0])


def test_a_digit_never_predicted_or_absent_counts_as_zero():
    cm = confusion_matrix([0, 0], [0, 0], 3)
    precision, recall = precision_recall(cm)
    assert precision.tolist() == [1.0, 0.0, 0.0] and recall.tolist() == [1.0, 0.0, 0.0]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "run"
    metrics = train_run(settings_for("default", epochs=3), out, log=quiet)
    return out, metrics


def test_evaluate_reproduces_the_training_runs_test_accuracy(run, tmp_path, capsys):
    folder, metrics = run
    assert main(["evaluate", str(folder), "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["accuracy"] == metrics["test_accuracy"]
    assert report["digits"] == 1000
    printed = capsys.readouterr().out
    assert f"accuracy {100 * metrics['test_accuracy']:.2f} %" in printed
    assert len([line for line in printed.splitlines() if line.split()[:1] and line.split()[0].isdigit()]) == 10


def test_evaluate_writes_metrics_and_figures(run, tmp_path):
    folder, _ = run
    out = tmp_path / "ev"
    assert main(["evaluate", str(folder / "model.npz"), "--out", str(out)]) == 0
    report = json.loads((out / "metrics.json").read_text())
    cm = np.array(report["confusion_matrix"])
    assert cm.shape == (10, 10) and cm.sum() == 1000 and (cm.sum(axis=1) == 100).all()
    assert report["accuracy"] == pytest.approx(np.trace(cm) / 1000)
    assert set(report["per_class"]) == {str(d) for d in range(10)}
    for digit, figures in report["per_class"].items():
        d = int(digit)
        assert figures["recall"] == pytest.approx(cm[d, d] / cm[d].sum())
        assert figures["precision"] == pytest.approx(cm[d, d] / max(cm[:, d].sum(), 1))
        assert figures["support"] == 100
    for name in ("confusion.png", "mistakes.png", "weights.png"):
        assert (out / name).read_bytes()[:8] == PNG
    assert (folder / "weights.png").read_bytes()[:8] == PNG  # train writes it too


def test_default_out_is_beside_the_model_and_never_over_a_run(run, tmp_path, capsys):
    folder, _ = run
    before = (folder / "metrics.json").read_bytes()
    assert main(["evaluate", str(folder)]) == 0
    assert (folder / "evaluation-sample" / "metrics.json").is_file()
    assert main(["evaluate", str(folder), "--out", str(folder)]) == 2
    assert "holds a training run" in capsys.readouterr().err
    assert (folder / "metrics.json").read_bytes() == before


def test_evaluate_on_a_csv_uses_every_row(run, tmp_path):
    folder, _ = run
    sample = data.load_sample().take(slice(3, None, 10))  # 500 digits of every kind
    csv = tmp_path / "digits.csv"
    data.save_csv(sample, csv)
    model = nnscratch.load(folder)
    result = evaluate(model, sample.images, sample.labels)
    assert main(["evaluate", str(folder), "--data", str(csv), "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["digits"] == 500 and report["accuracy"] == model.score(sample.images, sample.labels)
    assert report["confusion_matrix"] == result["confusion_matrix"]


def test_evaluate_refuses_bad_data_in_one_line(run, tmp_path, capsys):
    folder, _ = run
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    assert main(["evaluate", str(folder), "--data", str(bad), "--out", str(tmp_path / "ev")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.csv" in err and "Traceback" not in err
    assert not (tmp_path / "ev").exists()


def test_evaluate_on_mnist_reproduces_training(tmp_path):
    MNIST = need(MNIST_DIR)
    metrics = train_run(settings_for("seed", data=str(MNIST), epochs=1), tmp_path / "run", log=quiet)
    assert main(["evaluate", str(tmp_path / "run"), "--data", str(MNIST), "--out", str(tmp_path / "ev")]) == 0
    report = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    assert report["digits"] == 10000 and report["accuracy"] == metrics["test_accuracy"]
