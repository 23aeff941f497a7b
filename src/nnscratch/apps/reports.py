"""Step 6 of the pipeline: what a run leaves behind for people to read.

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


def write_json(data: dict, path) -> None:
    """``data`` as indented JSON at ``path``, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")


def save_figure(fig, path) -> None:
    """Save a matplotlib figure as PNG atomically and free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def plot_history(history: dict, path, title: str = "") -> None:
    """The blog's figure, cost versus epoch, with accuracy beside it when known."""
    cost = history.get("train_cost") or history.get("cost", [])  # "cost": runs of nnscratch 0.1
    epochs = range(1, len(cost) + 1)
    has_accuracy = bool(history.get("train_accuracy"))
    fig, axes = plt.subplots(1, 2 if has_accuracy else 1, figsize=(11 if has_accuracy else 6, 4), squeeze=False)
    ax = axes[0][0]
    ax.plot(epochs, cost, label="training cost")
    if history.get("val_cost"):
        ax.plot(epochs, history["val_cost"], label="validation cost")
    ax.set(xlabel="epoch", ylabel="cost (cross-entropy)", title="Cost")
    ax.legend()
    if has_accuracy:
        ax = axes[0][1]
        ax.plot(epochs, [100 * a for a in history["train_accuracy"]], label="training")
        if history.get("val_accuracy"):
            ax.plot(epochs, [100 * a for a in history["val_accuracy"]], label="validation")
        ax.set(xlabel="epoch", ylabel="accuracy (%)", title="Accuracy")
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
