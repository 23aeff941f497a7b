"""Reports: what a run leaves behind for people to read.

``metrics.json`` and figures, each written atomically (temporary file, then
rename) so that a failing command never leaves half a file behind.
"""
from __future__ import annotations

import json
import os

import matplotlib

# Files only: no screen needed, works on servers and in CI. A backend chosen by
# MPLBACKEND is kept: Jupyter sets it to draw pictures inside the notebook.
if not os.environ.get("MPLBACKEND"):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from ..files.atomic import atomic_path  # noqa: E402


def counted(n: int, noun: str) -> str:
    """``n`` and the noun, plural unless n is 1: "1 epoch", "30 epochs"."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def write_json(data: dict, path) -> None:
    """``data`` as indented JSON at ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def save_figure(fig, path) -> None:
    """Save a matplotlib figure as PNG atomically and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_history(history: dict, path, title: str = "", best_epoch: int | None = None) -> None:
    """The blog's figure, cost versus epoch, with accuracy and the learning rate beside it when known.

    Validation curves appear when the run held digits out (``--validation-split``
    or ``--patience``): the gap between the training and validation curves is
    overfitting, made visible. ``best_epoch`` (1-based) marks the epoch whose
    weights early stopping kept.
    """
    cost = history.get("train_cost") or history.get("cost", [])  # "cost": runs of nnscratch 0.1
    epochs = range(1, len(cost) + 1)
    panels = [("cost (cross-entropy)", "Cost", [("training", cost), ("validation", history.get("val_cost"))])]
    if history.get("train_accuracy"):
        panels.append(("accuracy (%)", "Accuracy", [
            ("training", [100 * a for a in history["train_accuracy"]]),
            ("validation", [100 * a for a in history.get("val_accuracy") or []])]))
    if history.get("lr"):
        panels.append(("learning rate", "Learning rate", [("", history["lr"])]))
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels) + 1, 4), squeeze=False)
    for ax, (ylabel, name, curves) in zip(axes[0], panels):
        for label, values in curves:
            if values:
                ax.plot(epochs, values, label=label or None)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"kept: epoch {best_epoch}")
        ax.set(xlabel="epoch", ylabel=ylabel, title=name)
        if ax.get_legend_handles_labels()[1]:
            ax.legend()
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)
