"""How good is a trained network? Accuracy, per-digit precision and recall, and
the confusion matrix, written out in NumPy.

* The **confusion matrix** ``C`` counts, for every true digit ``i`` (row) and
  predicted digit ``j`` (column), the digits of class ``i`` read as ``j``. Its
  diagonal holds the correct answers.
* **Precision** of digit ``j``: of the digits the network called ``j``, the
  share that really were ``j`` (``C[j, j]`` over column ``j``'s sum).
* **Recall** of digit ``i``: of the real ``i``s, the share the network found
  (``C[i, i]`` over row ``i``'s sum).

A share with nothing to divide by (a digit never predicted, or absent from the
data) is reported as 0, as scikit-learn does.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import DataError


def confusion_matrix(true, predicted, n_classes: int = 10) -> np.ndarray:
    """Counts ``C[i, j]`` of digits of class ``i`` predicted as ``j``."""
    true, predicted = np.asarray(true, np.intp), np.asarray(predicted, np.intp)
    # Each (true, predicted) pair is one cell index; bincount counts them all at once.
    cells = np.bincount(true * n_classes + predicted, minlength=n_classes * n_classes)
    return cells.reshape(n_classes, n_classes)


def _share(part: np.ndarray, whole: np.ndarray) -> np.ndarray:
    return np.divide(part, whole, out=np.zeros(len(part)), where=whole > 0)


def precision_recall(confusion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-class precision (down each column) and recall (along each row)."""
    correct = np.diag(confusion).astype(float)
    return _share(correct, confusion.sum(axis=0)), _share(correct, confusion.sum(axis=1))


def evaluate(model, images, labels) -> dict:
    """Score ``model`` on raw-pixel ``images`` and ``labels``.

    Returns a JSON-able dict: ``accuracy``, ``digits``, ``per_class`` (one
    record per class: precision, recall, the count of true digits called
    ``support``), ``confusion_matrix`` (rows true, columns predicted) and, for
    the figures, the arrays ``predicted`` and ``confidence`` (the probability
    the network gave its answer).
    """
    labels = model.check_labels(labels, len(np.atleast_2d(images)))
    probabilities = model.predict_proba(images)
    predicted = probabilities.argmax(axis=1)
    k = model.n_classes
    confusion = confusion_matrix(labels, predicted, k)
    precision, recall = precision_recall(confusion)
    classes = (getattr(model, "meta", None) or {}).get("classes") or [str(i) for i in range(k)]
    return {
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0,
        "digits": int(len(labels)),
        "per_class": {
            classes[i]: {"precision": float(precision[i]), "recall": float(recall[i]),
                         "support": int(confusion[i].sum())}
            for i in range(k)
        },
        "confusion_matrix": confusion.tolist(),
        "predicted": predicted,
        "confidence": probabilities[np.arange(len(predicted)), predicted],
    }


def mistakes(images, labels, result: dict) -> dict:
    """The misclassified digits, most confident mistakes first."""
    predicted, confidence = result["predicted"], result["confidence"]
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")]
    return {"rows": wrong, "images": np.asarray(images)[wrong], "true": np.asarray(labels)[wrong],
            "predicted": predicted[wrong], "confidence": confidence[wrong]}


# --------------------------------------------------------------------------- #
# ``nnscratch evaluate``: a model file and digits in, a report folder out
# --------------------------------------------------------------------------- #
def evaluation_data(path=None):
    """The digits to score on, and a sentence saying which.

    An IDX folder gives its test split, a CSV every row, and no path the
    bundled sample's test split (every fifth digit, as :func:`nnscratch.data.load`).
    """
    from ..files import data as datasets

    if path is None:
        split = datasets.load()
        return split.test, "bundled sample: its test split (every fifth digit, 1000)"
    path = Path(path)
    if path.is_dir():
        split = datasets.load_idx_folder(path)
        return split.test, f"MNIST IDX files in {path}: test split ({len(split.test)} digits)"
    dataset = datasets.load_csv(path)
    return dataset, f"{path}: every row ({len(dataset)} digits)"


REPORT_FILES = ("metrics.json", "confusion.png", "mistakes.png", "weights.png")  # what evaluate writes


def is_evaluation_report(folder: Path) -> bool:
    """True if ``folder`` holds an evaluation's outputs and nothing else.

    ``evaluate`` writes its report into the run folder (``evaluation-<data>``);
    such a folder belongs to the run it scored, so a run that diverged and was
    then evaluated still counts as "only a diverged run" (see
    :func:`nnscratch.apps.experiment.prepare_out_dir`).
    """
    import json

    if not folder.is_dir() or not (folder / "metrics.json").is_file():
        return False
    if any(p.name not in REPORT_FILES and not p.name.endswith(".tmp") for p in folder.iterdir()):
        return False
    try:
        report = json.loads((folder / "metrics.json").read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(report, dict) and {"model", "accuracy", "confusion_matrix"} <= report.keys()


def default_out(model_path, data_path) -> Path:
    """``evaluation-<data name>`` beside the model file."""
    model_path = Path(model_path)
    folder = model_path if model_path.is_dir() else model_path.parent
    name = "sample" if data_path is None else Path(data_path).name.split(".")[0] or "data"
    return folder / f"evaluation-{name}"


def evaluate_file(model_path, data_path=None, out=None, log=print) -> dict:
    """Score a saved model and write metrics.json, confusion.png, mistakes.png, weights.png."""
    from ..files.checkpoint import unfinished_note
    from ..files.modelfile import load_model
    from .figures import plot_confusion, plot_first_layer, plot_mistakes
    from .reports import write_json

    dataset, how = evaluation_data(data_path)
    model = load_model(model_path, dataset.images.shape[1], "the digits to score")
    note = unfinished_note(model)
    if note:
        log(note)
    if dataset.labels.max(initial=0) >= model.n_classes:
        raise DataError(f"{model_path}: this network tells {model.n_classes} classes apart, but the digits "
                        f"to score include label {dataset.labels.max()}")
    out = Path(out) if out is not None else default_out(model_path, data_path)
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out}: exists and is not a folder")
    if (out / "model.npz").exists():
        raise DataError(f"--out {out}: holds a training run whose metrics.json would be overwritten; "
                        "choose another folder")
    result = evaluate(model, dataset.images, dataset.labels)
    out.mkdir(parents=True, exist_ok=True)
    report = {"model": str(model_path), "data": how,
              **{k: v for k, v in result.items() if k not in ("predicted", "confidence")}}
    write_json(report, out / "metrics.json")
    plot_confusion(np.array(result["confusion_matrix"]), out / "confusion.png",
                   classes=list(result["per_class"]),
                   title=f"Confusion matrix: accuracy {100 * result['accuracy']:.2f} % on {len(dataset)} digits")
    wrong = mistakes(dataset.images, dataset.labels, result)
    plot_mistakes(wrong["images"], wrong["true"], wrong["predicted"], out / "mistakes.png", wrong["confidence"])
    first = plot_first_layer(model, out, images=dataset.images)
    log(format_report(result, how))
    log(f"wrote {', '.join([*REPORT_FILES[:3], *([first] if first else [])])} to {out}")
    return report


def format_report(result: dict, how: str) -> str:
    """Accuracy and a per-digit table, for the terminal."""
    from .reports import counted

    def percent(share: float) -> str:
        return f"{100 * share:.2f} %"

    row = "{:>5}  {:>9}  {:>8}  {:>6}"  # one layout for the header and every row: the columns stay aligned
    lines = [f"data: {how}",
             f"accuracy {percent(result['accuracy'])} ({int(round(result['accuracy'] * result['digits']))}"
             f" of {counted(result['digits'], 'digit')})",
             row.format("digit", "precision", "recall", "digits")]
    for name, c in result["per_class"].items():
        lines.append(row.format(name, percent(c["precision"]), percent(c["recall"]), c["support"]))
    return "\n".join(lines)
