"""What a sweep leaves: one record per trial, results.csv, sweep.png and the best trial.

Trials are compared on their best validation accuracy (digits held out of
training), never on the test accuracy: picking the winner by its test score
would make that score an optimistic guess of how it does on new digits. The
test accuracy of each finished trial is shown beside it, for reading.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
from matplotlib.ticker import NullFormatter

from ...files.modelfile import atomic_path
from ..reports import plt, save_figure, write_json
from .spec import Sweep, show
from .trial import DONE

COLUMNS = ("status", "test_accuracy", "best_val_accuracy", "epochs", "seconds")


def record_path(trials_dir: Path, trial_id: str) -> Path:
    return trials_dir / trial_id / "trial.json"


def write_record(trials_dir: Path, trial, record: dict) -> None:
    """``trials/ID/trial.json``: the trial's swept values, settings and outcome (written last)."""
    record_path(trials_dir, trial.id).parent.mkdir(parents=True, exist_ok=True)
    write_json({"id": trial.id, "params": trial.params, "settings": trial.settings, **record},
               record_path(trials_dir, trial.id))


def done_records(sweep: Sweep, trials_dir: Path) -> dict:
    """Records of the trials that ended in an earlier run of this sweep (id -> record).

    A trial folder without a readable record, or whose record says "error",
    is unfinished and will run again. A record whose settings differ from the
    file's belongs to another sweep: refused, rather than mixed into this one.
    """
    from ...errors import DataError

    done = {}
    for trial in sweep.trials:
        try:
            record = json.loads(record_path(trials_dir, trial.id).read_text())
        except (OSError, ValueError):
            continue
        if not isinstance(record, dict) or record.get("status") not in DONE:
            continue
        if record.get("settings") != json.loads(json.dumps(trial.settings)):
            raise DataError(f"{trials_dir / trial.id}: a trial of another sweep (its settings differ from "
                            f"{sweep.path}'s trial {trial.id}); give another --out")
        done[trial.id] = record
    return done


# --------------------------------------------------------------------------- #
# Text: progress lines, the table, the winner
# --------------------------------------------------------------------------- #
def describe(sweep: Sweep, trial_id: str) -> str:
    """``trial 003 (lr 0.01, hidden 64,32)``."""
    params = next(t.params for t in sweep.trials if t.id == trial_id)
    return f"trial {trial_id} (" + ", ".join(f"{k} {show(v)}" for k, v in params.items()) + ")"


def percent(value) -> str:
    return "-" if value is None else f"{100 * value:.2f} %"


def outcome(record: dict) -> str:
    """How a trial ended, in a few words."""
    status, epochs = record["status"], record.get("epochs", 0)
    epochs = f"{epochs} epoch" + ("" if epochs == 1 else "s")
    validation = f"validation {percent(record.get('best_val_accuracy'))}"
    if status == "finished":
        test = percent(record.get("test_accuracy"))
        return f"{validation}, test {test}, {epochs} in {record.get('seconds', 0):.1f} s"
    if status == "stopped":
        return f"stopped by the scheduler after {epochs}, {validation}"
    return f"{status}: {record.get('message', '')}"


def best_trial(records: dict):
    """The id of the finished trial with the highest best validation accuracy (None if none finished)."""
    finished = {i: r for i, r in records.items() if r["status"] == "finished" and "best_val_accuracy" in r}
    return max(finished, key=lambda i: (finished[i]["best_val_accuracy"], -int(i)), default=None)


def write_csv(sweep: Sweep, records: dict, path: Path) -> None:
    """results.csv: one row per trial (not yet run: status 'pending'), written atomically."""
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["id", *sweep.swept, *COLUMNS])
    for trial in sweep.trials:
        record = records.get(trial.id, {"status": "pending"})
        row = [record.get("status"), *(fixed(record.get(k), 4) for k in COLUMNS[1:3]),
               record.get("epochs", ""), fixed(record.get("seconds"), 2)]
        writer.writerow([trial.id, *(show(trial.params[n]) for n in sweep.swept), *row])
    with atomic_path(path) as tmp:
        tmp.write_text(text.getvalue())


def fixed(value, digits: int) -> str:
    return "" if value is None else f"{value:.{digits}f}"


# --------------------------------------------------------------------------- #
# The figure
# --------------------------------------------------------------------------- #
def plot_sweep(sweep: Sweep, records: dict, path: Path) -> None:
    """sweep.png: a heat map for a grid of two settings, else accuracy against each swept setting."""
    if len(sweep.swept) == 2 and sweep.grid_only:
        plot_heat_map(sweep, records, path)
    else:
        plot_panels(sweep, records, path)


def accuracy_of(records: dict, trial_id: str, key: str = "best_val_accuracy") -> float:
    return 100 * records.get(trial_id, {}).get(key, np.nan)


def plot_heat_map(sweep: Sweep, records: dict, path: Path) -> None:
    """Best validation accuracy for each pair of values (rows: first setting, columns: second)."""
    rows, columns = sweep.swept
    row_values = list(dict.fromkeys(show(t.params[rows]) for t in sweep.trials))
    column_values = list(dict.fromkeys(show(t.params[columns]) for t in sweep.trials))
    grid = np.full((len(row_values), len(column_values)), np.nan)
    labels = {}
    for trial in sweep.trials:
        i, j = row_values.index(show(trial.params[rows])), column_values.index(show(trial.params[columns]))
        grid[i, j] = accuracy_of(records, trial.id)
        test = accuracy_of(records, trial.id, "test_accuracy")
        labels[i, j] = (records.get(trial.id, {}).get("status", "pending") if np.isnan(grid[i, j]) else
                        f"{grid[i, j]:.1f}" + ("" if np.isnan(test) else f"\ntest {test:.1f}"))
    fig, ax = plt.subplots(figsize=(2 + 1.4 * len(column_values), 1.5 + 0.9 * len(row_values)))
    image = ax.imshow(grid, cmap="viridis", aspect="auto")
    for (i, j), label in labels.items():  # white on the dark half of the colour scale
        dark = not np.isnan(grid[i, j]) and image.norm(grid[i, j]) < 0.5
        ax.text(j, i, label, ha="center", va="center", fontsize=8, color="white" if dark else "black")
    fig.colorbar(image, ax=ax, label="best validation accuracy (%)")
    ax.set(xticks=range(len(column_values)), xticklabels=column_values, xlabel=columns,
           yticks=range(len(row_values)), yticklabels=row_values, ylabel=rows,
           title="Best validation accuracy (%) per trial")
    fig.tight_layout()
    save_figure(fig, path)


def plot_panels(sweep: Sweep, records: dict, path: Path) -> None:
    """One panel per swept setting: each trial's accuracies at its value of that setting."""
    fig, axes = plt.subplots(1, len(sweep.swept), figsize=(4.5 * len(sweep.swept), 3.8), squeeze=False)
    validation = [accuracy_of(records, t.id) for t in sweep.trials]
    test = [accuracy_of(records, t.id, "test_accuracy") for t in sweep.trials]
    for ax, name in zip(axes[0], sweep.swept):
        values = [t.params[name] for t in sweep.trials]
        numeric = all(isinstance(v, (int, float)) for v in values)
        if numeric:
            x = np.array(values, dtype=float)
        else:  # categories (activations, layer widths...) at evenly spaced places
            labels = list(dict.fromkeys(map(show, values)))
            x = np.array([labels.index(show(v)) for v in values], dtype=float)
            ax.set_xticks(range(len(labels)), labels)
            ax.set_xlim(-0.5, len(labels) - 0.5)
        ax.plot(x, validation, "o", label="best validation")
        ax.plot(x, test, "x", label="test")
        if name in sweep.log_scale or (numeric and min(x) > 0 and max(x) / min(x) >= 100):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(NullFormatter())  # a short range gets crowded minor labels
        ax.set(xlabel=name, ylabel="accuracy (%)")
    axes[0][0].legend()
    fig.suptitle(f"{len(sweep.trials)} trials of {sweep.path.name}")
    fig.tight_layout()
    save_figure(fig, path)
