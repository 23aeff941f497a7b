"""Showing training progress: a bar on a terminal, plain lines elsewhere."""
from __future__ import annotations

import sys

from tqdm import tqdm


class ProgressBar:
    """A tqdm bar over the epochs with the current cost and accuracy."""

    def __init__(self, epochs: int, stream=None):
        self.bar = tqdm(total=epochs, unit="epoch", file=stream or sys.stderr, dynamic_ncols=True)

    def on_epoch_end(self, trainer) -> None:
        h = trainer.history
        if self.bar.n == 0 and trainer.epoch > 1:  # a resumed run starts part-way
            self.bar.update(trainer.epoch - 1)
        self.bar.set_postfix(cost=f"{h.train_cost[-1]:.4f}", acc=f"{100 * h.train_accuracy[-1]:.1f}%", refresh=False)
        self.bar.update(1)
        if trainer.epoch >= trainer.config.epochs or trainer.stop:
            self.bar.close()


class ProgressLines:
    """About ten plain lines per run, for logs and pipes."""

    def __init__(self, epochs: int, stream=None):
        self.every, self.stream = max(1, epochs // 10), stream  # None: sys.stdout at print time

    def on_epoch_end(self, trainer) -> None:
        h, e = trainer.history, trainer.epoch
        if e % self.every == 0 or e == 1 or e >= trainer.config.epochs or trainer.stop:
            line = (f"epoch {e}/{trainer.config.epochs}: cost {h.train_cost[-1]:.4f}, "
                    f"train accuracy {100 * h.train_accuracy[-1]:.2f} %")
            if h.val_accuracy:
                line += f", validation accuracy {100 * h.val_accuracy[-1]:.2f} %"
            print(line, file=self.stream, flush=True)


def progress_callback(epochs: int):
    """A bar when stderr is a terminal, plain lines otherwise."""
    return ProgressBar(epochs) if sys.stderr.isatty() else ProgressLines(epochs)
