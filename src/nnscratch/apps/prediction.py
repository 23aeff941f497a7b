"""``nnscratch predict``: read the digits in pictures, folders of pictures and pixel CSVs.

Every input that can be read gets its answer; each one that cannot gets one
line on stderr, and the command then ends with exit status 2. One blank
picture among a hundred no longer hides the other ninety-nine answers.

Inputs, in the order given:

* a picture (PNG, JPEG, BMP, GIF...): brought to MNIST's form by
  :func:`nnscratch.files.images.digit_from_image`;
* a folder: every picture in it, sorted by name (not its subfolders);
* a CSV of pixel rows (``.csv`` or ``.csv.gz``), such as Kaggle's ``test.csv``
  (a header ``pixel0,...,pixel783``, one 28x28 digit per row, no labels; a
  label column, if there is one, is ignored): every row is one digit,
  already in MNIST's form.

Each digit read is numbered from 1 in that order: the ``ImageId`` of
Kaggle's submission file (``--submission``), and the start of the file name
of the 28x28 picture the network saw (``--save-input``).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError

PICTURE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
BATCH = 4096  # digits per forward pass: bounds the memory of a 28000-row CSV


@dataclass
class Answer:
    """One digit read: where it came from (``name``; ``row`` of a CSV) and the 784 grey levels."""

    name: str
    digit: np.ndarray
    path: str
    row: int | None = None


def is_pixel_csv(path: Path) -> bool:
    return path.name.lower().endswith((".csv", ".csv.gz"))


def pictures_in(folder: Path) -> list[Path]:
    """The pictures in ``folder``, sorted by name; other files and subfolders are left alone."""
    pictures = sorted(p for p in folder.iterdir() if p.suffix.lower() in PICTURE_SUFFIXES and p.is_file())
    if not pictures:
        raise DataError(f"{folder}: no pictures in this folder ({', '.join(sorted(PICTURE_SUFFIXES))})")
    return pictures


def read_input(path: Path) -> list[Answer]:
    """The digits one input holds: one for a picture, one per row for a pixel CSV. Raises DataError."""
    from ..files.data import load_csv_images
    from ..files.images import digit_from_image

    if is_pixel_csv(path):
        return [Answer(f"{path} row {i}", digit, str(path), i)
                for i, digit in enumerate(load_csv_images(path), start=1)]
    return [Answer(str(path), digit_from_image(path), str(path))]


def read_inputs(arguments, report) -> tuple[list[Answer], int]:
    """Every digit the inputs hold, in order, and how many inputs failed (each told to ``report``)."""
    answers, failed = [], 0
    for argument in arguments:
        path = Path(argument)
        try:
            paths = pictures_in(path) if path.is_dir() else [path]
        except (DataError, OSError) as exc:
            report(exc)
            failed += 1
            continue
        for one in paths:
            try:
                answers += read_input(one)
            except DataError as exc:
                report(exc)
                failed += 1
    return answers, failed


def check_outputs(submission, save_input) -> None:
    """Refuse output paths that cannot be written, before any work is done."""
    if submission is not None:
        path = Path(submission)
        if path.is_dir():
            raise DataError(f"--submission {path}: is a folder; give the CSV file to write, e.g. submission.csv")
        if not path.parent.is_dir():
            raise DataError(f"--submission {path}: no folder {path.parent} to write it in")
    if save_input is not None and Path(save_input).exists() and not Path(save_input).is_dir():
        raise DataError(f"--save-input {save_input}: exists and is not a folder")


def probabilities(model, answers: list[Answer]) -> np.ndarray:
    """The network's probabilities for every digit, in batches."""
    if not answers:
        return np.zeros((0, model.n_classes))
    digits = np.stack([a.digit for a in answers])
    return np.concatenate([model.predict_proba(digits[i:i + BATCH]) for i in range(0, len(digits), BATCH)])


def answer_line(answer: Answer, p: np.ndarray) -> str:
    """``name: digit  (top three with their probabilities)``."""
    top = np.argsort(p)[::-1][:3]
    return f"{answer.name}: {top[0]}  (" + ", ".join(f"{d}: {100 * p[d]:.1f} %" for d in top) + ")"


def answer_record(answer: Answer, p: np.ndarray) -> dict:
    record = {"file": answer.path, "digit": int(p.argmax()), "probabilities": [round(float(x), 6) for x in p]}
    if answer.row is not None:
        record["row"] = answer.row
    return record


def write_submission(path, predicted) -> None:
    """Kaggle's submission file, atomically: ``ImageId,Label``, ImageId counting from 1."""
    from ..files.modelfile import atomic_path

    rows = "".join(f"{i},{label}\n" for i, label in enumerate(predicted, start=1))
    with atomic_path(path) as tmp:
        tmp.write_text("ImageId,Label\n" + rows)


def save_inputs(folder, answers: list[Answer]) -> None:
    """Each 28x28 digit the network saw, as a PNG named ``<ImageId>-<input>.png`` (white ink on black)."""
    from PIL import Image

    from ..files.images import SIDE
    from ..files.modelfile import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    width = len(str(len(answers)))
    for i, answer in enumerate(answers, start=1):
        stem = Path(answer.path).name.split(".")[0] + (f"-row{answer.row}" if answer.row is not None else "")
        with atomic_path(folder / f"{i:0{width}d}-{stem}.png") as tmp:
            Image.fromarray(answer.digit.reshape(SIDE, SIDE)).save(tmp, format="PNG")


def predict_files(model_path, inputs, as_json=False, submission=None, save_input=None, out=print,
                  report=None) -> int:
    """Answer for every readable input; returns how many inputs could not be read.

    ``out`` gets the answers (one line each, or one JSON list), ``report`` one
    line per input that failed (default: stderr, "nnscratch: error: ...").
    """
    from ..files.checkpoint import unfinished_note
    from ..files.images import SIDE
    from ..files.modelfile import load_model

    report = report or (lambda exc: print(f"nnscratch: error: {exc}", file=sys.stderr))
    check_outputs(submission, save_input)
    model = load_model(model_path, SIDE * SIDE, "an image read as 28x28 grey levels")
    note = unfinished_note(model)
    if note:
        print(f"nnscratch: {note}", file=sys.stderr)
    answers, failed = read_inputs(inputs, report)
    p = probabilities(model, answers)
    if as_json:
        out("[\n" + ",\n".join(json.dumps(answer_record(a, q)) for a, q in zip(answers, p)) + "\n]")
    elif submission is None:
        for a, q in zip(answers, p):
            out(answer_line(a, q))
    if save_input is not None and answers:
        save_inputs(save_input, answers)
    if submission is not None:
        if failed:
            report(DataError(f"--submission {submission}: not written: {failed} input(s) could not be read, "
                             "and a submission needs an answer for every digit"))
        else:
            write_submission(submission, p.argmax(axis=1))
            if not as_json:
                out(f"wrote {len(answers)} answers to {submission} (ImageId,Label)")
    return failed
