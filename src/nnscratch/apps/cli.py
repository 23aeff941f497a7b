"""The ``nnscratch`` command: a thin layer over the Python API.

Each subcommand parses its flags, calls one function of the package, and
turns an :class:`~nnscratch.errors.NnscratchError` into one line on stderr
and exit status 2 (a traceback only with ``--debug``).
"""
from __future__ import annotations

import argparse
import functools
import os
import sys

from .. import __version__
from ..core.initializers import INITIALIZERS
from ..core.layers import ACTIVATIONS
from ..core.optimizers import OPTIMIZERS, SCHEDULES
from ..errors import DataError, NnscratchError, TrainingDiverged
from .flags import (
    batch_size,
    distortion,
    epochs,
    fraction,
    from_preset,
    layer_sizes,
    layers_text,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)
from .presets import PRESETS

EXIT_BAD_INPUT = 2  # bad file, flag or request: one line on stderr
EXIT_DIVERGED = 3  # training blew up (NaN or exploding cost): nothing was saved
EXIT_BUG = 1  # anything else: a bug in nnscratch, or the machine ran out of memory


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a bad flag in one line (and exit status 2)."""

    def error(self, message):
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")




# --------------------------------------------------------------------------- #
# Subcommands
# --------------------------------------------------------------------------- #
def add_train_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a network and write a run folder",
                              description="Train a network; writes model.npz, metrics.json, cost.png and weights.png "
                              "into its run folder.")
    p.add_argument("--data", help="a Kaggle-style CSV (.csv or .csv.gz) or a folder of MNIST IDX files "
                   "(default: the bundled 5000-digit sample)")
    p.add_argument("--preset", default="default", choices=list(PRESETS),
                   help="seed = the blog's experiment exactly; default = its network trained well; "
                   "best = the most accurate MLP; cnn = a convolutional network; mlp-record = an MLP trained on "
                   "distorted digits (default: %(default)s)")
    p.add_argument("--epochs", type=epochs, help=f"passes over the training data ({from_preset('epochs')})")
    p.add_argument("--seed", type=non_negative_int, help="random seed: same seed, same result (default: 0)")
    p.add_argument("--out", help="run folder to write (default: a new folder under runs/)")
    p.add_argument("--resume", metavar="DIR", help="continue the interrupted run in DIR with its own data and "
                   "settings (with --epochs N: extend it to N epochs; default: start a new run)")
    p.add_argument("--train-rows", type=positive_int,
                   help="with a CSV: rows used for training, the rest test (default: the blog's 30000, "
                   "or 4/5 of a smaller file)")
    model = p.add_argument_group("network")
    model.add_argument("--layers", type=layers_text, metavar="'LAYER, LAYER, ...'",
                       help="the hidden layers, e.g. 'dense 16, sigmoid, dense 16, sigmoid' or 'conv 32 5x5, relu, "
                       "maxpool 2, flatten, dense 128, relu' (the output layer is added; names: dense N, sigmoid, "
                       "tanh, relu, leaky_relu, dropout RATE, conv N KxK [same], maxpool N, flatten, batchnorm; "
                       "default: the preset's MLP, or the one --hidden, --activation and --dropout describe)")
    model.add_argument("--hidden", type=layer_sizes,
                       help=f"short form for an MLP: hidden layer widths, e.g. 256,128 ({from_preset('hidden')})")
    model.add_argument("--activation", choices=list(ACTIVATIONS),
                       help=f"hidden layers' activation ({from_preset('activation')})")
    model.add_argument("--init", choices=list(INITIALIZERS), help=f"initial weights ({from_preset('init')})")
    model.add_argument("--dropout", type=fraction,
                       help=f"dropout rate after each hidden layer ({from_preset('dropout')})")
    training = p.add_argument_group("training")
    training.add_argument("--optimizer", choices=list(OPTIMIZERS),
                          help=f"gd = full batch, as in the blog ({from_preset('optimizer')})")
    training.add_argument("--lr", type=positive_float, help=f"learning rate ({from_preset('lr')})")
    training.add_argument("--batch-size", type=batch_size, help="mini-batch size, or 'full' for the whole set "
                          f"({from_preset('batch_size')}; with --optimizer gd: full; sgd on the seed preset: 128)")
    training.add_argument("--schedule", choices=list(SCHEDULES),
                          help=f"learning-rate schedule ({from_preset('schedule')})")
    training.add_argument("--l2", type=non_negative_float, help=f"L2 weight decay ({from_preset('l2')})")
    training.add_argument("--validation-split", type=fraction,
                          help="fraction of training data held out (default: 0, none)")
    training.add_argument("--augment", choices=["none", "affine", "elastic"],
                          help="distort the training digits afresh every epoch: affine = random rotation, scaling, "
                          "shear and shift; elastic = that plus Simard's elastic distortion; writes augmented.png "
                          "(default: none)")
    training.add_argument("--distortion", type=distortion, metavar="NAME=VALUE,...",
                          help="the distortion's settings: rotate (degrees), scale, shear, shift (pixels), sigma and "
                          "alpha (the elastic field's smoothness and strength), keep (the chance a digit is left "
                          "as it was), e.g. 'sigma=4,alpha=34,rotate=0' "
                          "(default: rotate=10,scale=0.1,shear=0.15,shift=1,sigma=4,alpha=34)")
    training.add_argument("--patience", type=positive_int, help="early stopping: epochs without improvement on the "
                          "validation digits; holds out 10 %% of the training digits unless --validation-split "
                          "says otherwise (default: no early stopping)")
    p.set_defaults(run=cmd_train)


def cmd_train(args) -> int:
    from ..core.progress import progress_callback
    from .experiment import train_run

    overrides = {k: getattr(args, k) for k in (
        "data", "train_rows", "epochs", "seed", "layers", "hidden", "activation", "init", "dropout", "optimizer",
        "lr", "batch_size", "schedule", "l2", "validation_split", "patience", "augment", "distortion")}
    if args.resume is not None:
        return resume_train(args, overrides)
    settings = train_settings(args.preset, overrides)
    train_run(settings, args.out, callbacks=[progress_callback(settings["epochs"])])
    return 0


def train_settings(preset: str, overrides: dict, batch_size=None) -> dict:
    """The settings of ``nnscratch train`` given these flags (``nnscratch sweep`` builds its trials here too).

    ``overrides`` are the flags that map onto :func:`~nnscratch.apps.experiment.settings_for`
    (None = not given); ``batch_size`` is the --batch-size flag (a number, 'full' or None)
    when it is not among them. How an optimizer and a batch size go together, and what
    --patience needs, is decided there and in TrainConfig, for the API and the CLI alike.
    """
    from .experiment import settings_for

    if overrides.get("layers") and (overrides.get("hidden") or overrides.get("activation")
                                    or overrides.get("dropout") is not None):
        raise DataError("--layers gives the whole hidden part; drop --hidden, --activation and --dropout")
    if batch_size is not None:
        overrides = {**overrides, "batch_size": batch_size}
    return settings_for(preset, **overrides)


def add_predict_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="read the digit in images, folders of images and pixel CSVs",
                              description="Read the digit in each input with a trained model and print it with "
                              "its top-3 probabilities. Inputs: images (PNG, JPEG, BMP, GIF; any size and colour), "
                              "folders (every image inside, sorted by name) and CSVs of pixel rows such as Kaggle's "
                              "test.csv (one digit per row). Every readable input is answered; each unreadable one "
                              "gets one line on stderr, and the exit status is then 2.")
    p.add_argument("model", metavar="MODEL", help="a model file (model.npz) or a run folder")
    p.add_argument("images", metavar="INPUT", nargs="+", help="image files, folders of images, or .csv/.csv.gz "
                   "files of pixel rows (header pixel0,...,pixel783; a label column is ignored)")
    p.add_argument("--json", action="store_true", help='print a JSON list of {"file", "digit", "probabilities"} '
                   '(and "row" for a CSV row)')
    p.add_argument("--submission", metavar="FILE", help="write Kaggle's submission file ImageId,Label (ImageId "
                   "counts the digits read from 1, in input order) instead of listing the answers; "
                   "written only if every input was read")
    p.add_argument("--save-input", metavar="DIR", help="write the 28x28 digit the network saw for each input "
                   "into DIR, as <ImageId>-<name>.png")
    p.set_defaults(run=cmd_predict)


def cmd_predict(args) -> int:
    from .prediction import predict_files

    failed = predict_files(args.model, args.images, as_json=args.json, submission=args.submission,
                           save_input=args.save_input)
    return EXIT_BAD_INPUT if failed else 0


def add_serve_parser(subparsers) -> None:
    p = subparsers.add_parser("serve", help="a web page to draw digits and watch the network read them",
                              description="Serve a local web page: draw a digit, see the prediction, the "
                              "28x28 input and the hidden activations. Without MODEL, uses the latest finished run "
                              "under runs/ (or first trains a quick model on the bundled sample).")
    p.add_argument("model", metavar="MODEL", nargs="?",
                   help="a model file or run folder (default: latest finished run)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=non_negative_int, default=8000, help="port (default: %(default)s; 0 = any free port)")
    add_serve_bounds(p)
    p.set_defaults(run=cmd_serve)


def add_serve_bounds(p) -> None:
    """serve's bounds under load (see docs/web.md, "A classroom at once")."""
    from .web import limits

    p.add_argument("--backlog", type=positive_int, default=limits.BACKLOG,
                   help="connections the system holds until the server takes them (default: %(default)s)")
    p.add_argument("--threads", type=positive_int, default=limits.THREADS,
                   help="connections served at once, one thread each; the next wait in the backlog "
                   "(default: %(default)s)")
    p.add_argument("--queue", type=positive_int, default=limits.QUEUE,
                   help="drawings in hand at once; one more gets 503 with Retry-After (default: %(default)s)")
    p.add_argument("--timeout", type=positive_float, default=limits.TIMEOUT,
                   help="seconds for a request to arrive whole; a stalled one gets 408 (default: %(default)g)")
    p.add_argument("--log", action="store_true", help="write one line per request to stderr (time, request, "
                   "status, bytes, milliseconds)")


def cmd_serve(args) -> int:
    from .web.server import serve

    if args.port > 65535:
        raise DataError(f"--port {args.port}: must be 0-65535")
    serve(args.model, args.host, args.port, backlog=args.backlog, threads=args.threads, queue=args.queue,
          timeout=args.timeout, log_requests=args.log)
    return 0


def resume_train(args, overrides: dict) -> int:
    """``train --resume DIR [--epochs N]``: the run's own settings, nothing else."""
    from ..core.progress import progress_callback
    from .experiment import resume_run

    given = [f"--{k.replace('_', '-')}" for k, v in overrides.items() if v is not None and k != "epochs"]
    given += [flag for flag, v in (("--out", args.out),) if v is not None]
    if args.preset != "default":
        given.append("--preset")
    if given:
        raise DataError(f"--resume continues a run with its own data and settings; drop {', '.join(given)} "
                        "(only --epochs may be given, to extend the run)")
    resume_run(args.resume, args.epochs, progress=progress_callback)
    return 0


def add_evaluate_parser(subparsers) -> None:
    p = subparsers.add_parser("evaluate", help="score a saved model: accuracy, per-digit precision and recall",
                              description="Score a saved model; writes metrics.json, confusion.png, "
                              "mistakes.png and weights.png.")
    p.add_argument("model", metavar="MODEL", help="a model file (.npz) or a run folder holding model.npz")
    p.add_argument("--data", help="a folder of MNIST IDX files (its test split is used) or a Kaggle-style CSV "
                   "(every row is used); default: the bundled sample's test split (every fifth digit)")
    p.add_argument("--out", help="folder to write the figures and metrics.json "
                   "(default: evaluation-<data> beside the model)")
    p.set_defaults(run=cmd_evaluate)


def cmd_evaluate(args) -> int:
    from .evaluation import evaluate_file

    evaluate_file(args.model, args.data, args.out)
    return 0


def add_download_parser(subparsers) -> None:
    from ..files.download import DATASETS

    p = subparsers.add_parser("download", help="fetch MNIST or Fashion-MNIST, checked against published sums",
                              description="Fetch the four IDX files of a dataset from its public mirrors into a "
                              "folder, checking each against its published SHA-256 sum: a damaged, partial or "
                              "different file is refused and nothing half-written is left. Then: nnscratch train "
                              "--data DIR.")
    p.add_argument("dataset", choices=list(DATASETS), help="which dataset")
    p.add_argument("--to", metavar="DIR", required=True, help="the folder to write the files into")
    p.add_argument("--mirror", metavar="URL", help="a folder URL holding the four files "
                   "(default: the public mirrors, tried in turn)")
    p.set_defaults(run=cmd_download)


def cmd_download(args) -> int:
    from ..files.download import download

    download(args.dataset, args.to, args.mirror)
    return 0


def add_export_parser(subparsers) -> None:
    p = subparsers.add_parser("export", help="write a model as an ONNX file, for other runtimes",
                              description="Write a trained model as an ONNX graph (needs the onnx extra: "
                              "pip install 'nnscratch[onnx]'). Input 'pixels': float32 (N, 784) raw 0-255; "
                              "output 'probabilities': float32 (N, 10). See docs/onnx.md.")
    p.add_argument("model", metavar="RUN_OR_MODEL", help="a model file (model.npz) or a run folder")
    p.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write (replaced atomically if it exists)")
    p.set_defaults(run=cmd_export)


def cmd_export(args) -> int:
    from ..files.checkpoint import unfinished_note
    from ..files.modelfile import load_model
    from ..files.onnx_export import OPSET, export_onnx

    model = load_model(args.model)
    export_onnx(model, args.out)
    note = unfinished_note(model)
    if note:
        print(f"nnscratch: {note}", file=sys.stderr)
    print(f"wrote {args.out} (ONNX opset {OPSET}): input 'pixels' (N, {model.n_inputs}) raw 0-255, "
          f"output 'probabilities' (N, {model.n_classes})")
    return 0


def add_sweep_parser(subparsers) -> None:
    p = subparsers.add_parser("sweep", help="train many runs that differ in a few settings (Ray Tune)",
                              description="Run the trials a sweep file describes ([train], [grid], [random] "
                              "tables; see docs/sweep.md) with Ray Tune, on this machine or a Ray cluster; writes "
                              "DIR/trials/, DIR/results.csv and DIR/sweep.png. Rerun it to finish an interrupted "
                              "sweep.")
    p.add_argument("file", metavar="FILE.toml", help="the sweep file")
    p.add_argument("--out", required=True, metavar="DIR", help="the sweep folder")
    p.add_argument("--address", metavar="HOST:PORT", help="run on the Ray cluster there (what ray start --head "
                   "prints); default: a Ray of our own on this machine, stopped at the end")
    p.add_argument("--max-concurrent", type=positive_int, metavar="N",
                   help="trials at once (default: one per core of the machine or cluster)")
    p.add_argument("--scheduler", choices=["asha"], help="asha: stop trials whose validation accuracy falls "
                   "behind (default: run every trial to the end)")
    p.set_defaults(run=cmd_sweep)


def cmd_sweep(args) -> int:
    import signal

    from .sweep import run_sweep
    from .sweep.trial import DONE

    def interrupt(signum, frame):
        raise KeyboardInterrupt  # so that `kill` stops Ray on the way out, as Ctrl-C does

    signal.signal(signal.SIGTERM, interrupt)
    try:
        records = run_sweep(args.file, args.out, args.address, args.max_concurrent, args.scheduler)
    except KeyboardInterrupt:
        print("nnscratch: interrupted; run the same command again to finish the sweep", file=sys.stderr)
        return 130
    return 0 if all(r["status"] in DONE for r in records.values()) else EXIT_BUG


def make_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="nnscratch", allow_abbrev=False, description="A neural network from scratch in NumPy "
                           "that learns to read handwritten digits.")
    parser.add_argument("--version", action="version", version=f"nnscratch {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True,
                                       parser_class=functools.partial(OneLineParser, allow_abbrev=False))
    add_train_parser(subparsers)
    add_evaluate_parser(subparsers)
    add_predict_parser(subparsers)
    add_serve_parser(subparsers)
    add_download_parser(subparsers)
    add_export_parser(subparsers)
    add_sweep_parser(subparsers)
    for sub in subparsers.choices.values():  # --debug also after the command name
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                         help="show tracebacks of errors")
    return parser


def main(argv=None) -> int:
    """Run the command; errors become one line on stderr and an exit status (see docs/errors.md)."""
    parser = make_parser()
    args = parser.parse_args(argv)
    quiet_pillow_bomb_warning()
    try:
        return args.run(args)
    except BrokenPipeError:  # output piped into e.g. `head`, which stopped reading: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0
    except Exception as exc:
        if args.debug:
            raise
        message, status = explain(exc)
        print(f"nnscratch: {message}", file=sys.stderr)
        return status
    except KeyboardInterrupt as exc:
        run_dir = getattr(exc, "run_dir", None)  # set by training: the run can be resumed
        resume = f"; continue with: nnscratch train --resume {run_dir}" if run_dir else ""
        print(f"nnscratch: interrupted{resume}", file=sys.stderr)
        return 130


def quiet_pillow_bomb_warning() -> None:
    """Silence Pillow's two-line warning for images between its pixel limit and twice it.

    nnscratch.images refuses those images anyway, in one line (its own limit is lower).
    Set once here, by the program, before any thread starts: ``warnings.catch_warnings``
    around each decode would not be thread-safe.
    """
    import warnings

    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


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
