"""The ``nnscratch`` command: a thin layer over the Python API.

Each subcommand parses its flags, calls one function of the package, and
turns an :class:`~nnscratch.errors.NnscratchError` into one line on stderr
and exit status 2 (a traceback only with ``--debug``).
"""
from __future__ import annotations

import argparse
import math
import sys

from . import __version__
from .errors import DataError, NnscratchError, TrainingDiverged

EXIT_BAD_INPUT = 2  # bad file, flag or request: one line on stderr
EXIT_DIVERGED = 3  # training blew up (NaN or exploding cost): nothing was saved
EXIT_BUG = 1  # anything else: a bug in nnscratch, or the machine ran out of memory
MAX_EPOCHS = 1_000_000
MAX_WIDTH = 100_000  # neurons in one hidden layer


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (and exit status 2)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- #
# Flag types: each refuses a bad value with a message naming it
# --------------------------------------------------------------------------- #
def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be at least 1")
    return value


def epochs(text: str) -> int:
    value = positive_int(text)
    if value > MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_EPOCHS} epochs")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text} must be a positive finite number")
    return value


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be in [0, 1)")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def layer_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of layer widths, e.g. 256,128") from None
    if not sizes or min(sizes) < 1 or max(sizes) > MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden layer needs 1 to {MAX_WIDTH} neurons")
    return sizes


def batch_size(text: str):
    return "full" if text == "full" else positive_int(text)


# --------------------------------------------------------------------------- #
# Subcommands
# --------------------------------------------------------------------------- #
def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a network and write a run folder",
                              description="Train a network; writes model.npz, metrics.json and cost.png.")
    p.add_argument("--data", help="a Kaggle-style CSV (.csv or .csv.gz) or a folder of MNIST IDX files "
                   "(default: the bundled 5000-digit sample)")
    p.add_argument("--preset", default="default", choices=["seed", "default", "best"],
                   help="seed = the blog's experiment exactly; default = its network trained well; "
                   "best = the most accurate MLP (default: %(default)s)")
    p.add_argument("--epochs", type=epochs)
    p.add_argument("--seed", type=non_negative_int, help="random seed: same seed, same result (default 0)")
    p.add_argument("--out", help="run folder to write (default: a new folder under runs/)")
    p.add_argument("--train-rows", type=positive_int,
                   help="with a CSV: rows used for training, the rest test (default: the blog's 30000, "
                   "or 4/5 of a smaller file)")
    model = p.add_argument_group("network")
    model.add_argument("--hidden", type=layer_sizes, help="hidden layer widths, e.g. 256,128")
    model.add_argument("--activation", choices=["sigmoid", "tanh", "relu", "leaky_relu"])
    model.add_argument("--init", choices=["uniform", "xavier", "he"])
    model.add_argument("--dropout", type=fraction, help="dropout rate after each hidden layer")
    training = p.add_argument_group("training")
    training.add_argument("--optimizer", choices=["gd", "sgd", "momentum", "nesterov", "adam"])
    training.add_argument("--lr", type=positive_float, help="learning rate")
    training.add_argument("--batch-size", type=batch_size, help="mini-batch size, or 'full' for the whole set")
    training.add_argument("--schedule", choices=["constant", "step", "cosine"], help="learning-rate schedule")
    training.add_argument("--l2", type=non_negative_float, help="L2 weight decay")
    training.add_argument("--validation-split", type=fraction, help="fraction of training data held out")
    training.add_argument("--patience", type=positive_int, help="early stopping: epochs without improvement")
    p.set_defaults(run=cmd_train)


def cmd_train(args) -> int:
    from .experiment import settings_for, train_run
    from .progress import progress_callback

    overrides = {k: getattr(args, k) for k in (
        "data", "train_rows", "epochs", "seed", "hidden", "activation", "init", "dropout", "optimizer",
        "lr", "schedule", "l2", "validation_split", "patience")}
    settings = settings_for(args.preset, **overrides)
    if args.batch_size is not None:
        settings["batch_size"] = None if args.batch_size == "full" else args.batch_size
    elif args.optimizer == "gd":
        settings["batch_size"] = None  # plain gd means the full batch, as in the blog
    elif args.optimizer == "sgd" and settings["batch_size"] is None:
        settings["batch_size"] = 128  # stochastic means mini-batches
    if (args.patience or settings["patience"]) and not settings["validation_split"]:
        settings["validation_split"] = 0.1
    train_run(settings, args.out, callbacks=[progress_callback(settings["epochs"])])
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nnscratch", description="A neural network from scratch in NumPy "
                           "that learns to read handwritten digits.")
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=OneLineParser)
    add_train_parser(subparsers)
    for sub in subparsers.choices.values():  # --debug also after the command name
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks of errors")
    return parser


def main(argv=None) -> int:
    """Run the command; errors become one line on stderr and an exit status (see docs/errors.md)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except Exception as exc:
        if args.debug:
            raise
        message, status = explain(exc)
        print(f"nnscratch: {message}", file=sys.stderr)
        return status
    except KeyboardInterrupt:
        print("nnscratch: interrupted", file=sys.stderr)
        return 130


def explain(exc: Exception) -> tuple[str, int]:
    """One line for the user and the exit status, for an error a command raised."""
    if isinstance(exc, TrainingDiverged):
        return str(exc), EXIT_DIVERGED
    if isinstance(exc, NnscratchError):
        return f"error: {exc}", EXIT_BAD_INPUT
    if isinstance(exc, OSError):  # a path the user gave that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        return f"error: {where}{exc.strerror or exc}", EXIT_BAD_INPUT
    if isinstance(exc, MemoryError):
        return "error: not enough memory (try a smaller network, batch or data set)", EXIT_BUG
    first_line = (str(exc).splitlines() or [""])[0]
    return (f"internal error: {type(exc).__name__}: {first_line} "
            "(please report it; --debug shows the traceback)"), EXIT_BUG


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
