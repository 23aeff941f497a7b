"""The sweep file: which runs a sweep trains, read and checked before anything runs.

A sweep file is TOML with up to three tables::

    [train]                    # fixed settings, named like `nnscratch train`'s flags
    epochs = 2
    activation = "relu"

    [grid]                     # lists: every combination is a trial
    lr = [0.001, 0.01]
    hidden = [[16], [64, 32]]

    [random]                   # `samples` draws of these ranges (times every grid combination)
    samples = 8
    dropout = { uniform = [0.0, 0.5] }
    l2 = { log_uniform = [1e-6, 1e-3] }
    optimizer = { choice = ["adam", "nesterov"] }

Every value goes through the very check that `nnscratch train` gives the flag
of the same name, so a sweep accepts exactly what the command line accepts.
Random draws come from a generator with a fixed seed: the same file always
gives the same trials, which is what lets a rerun recognise the finished ones.
"""
from __future__ import annotations

import argparse
import itertools
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import DataError

TABLES = ("train", "grid", "random")
RANGES = ("log_uniform", "uniform", "choice")
NOT_SETTINGS = {"help", "out", "resume", "debug"}  # train flags that say where a run goes, not how it trains
SWEEP_VALIDATION_SPLIT = 0.1  # trials are compared on held-out digits, never on the test set
DRAW_SEED = 0
SIGNIFICANT_DIGITS = 4  # drawn numbers are rounded: readable in results.csv and exact in JSON


@dataclass
class Trial:
    """One run of the sweep: its id, the values of the swept settings, and all its settings."""

    id: str
    params: dict
    settings: dict


@dataclass
class Sweep:
    """A checked sweep file: the swept names (in order), how each is swept, and the trials."""

    path: Path
    swept: list
    log_scale: set = field(default_factory=set)  # swept with log_uniform: plotted on a log axis
    grid_only: bool = True
    trials: list = field(default_factory=list)

    @property
    def max_epochs(self) -> int:
        return max(t.settings["epochs"] for t in self.trials)


def train_flags() -> dict:
    """The flags of ``nnscratch train`` by setting name (``batch_size`` for ``--batch-size``)."""
    from ..cli import add_train_parser

    subparsers = argparse.ArgumentParser().add_subparsers()
    add_train_parser(subparsers)
    actions = subparsers.choices["train"]._actions
    return {a.dest: a for a in actions if a.option_strings and a.dest not in NOT_SETTINGS}


def read_sweep(path) -> Sweep:
    """Read and check the sweep file at ``path``; DataError names the first problem."""
    path = Path(path)
    tables = parse_toml(path)
    flags = train_flags()
    fixed = check_table(path, "train", tables.get("train", {}), flags,
                        lambda where, flag, value: check_value(where, flag, value, path))
    grid = check_table(path, "grid", tables.get("grid", {}), flags,
                       lambda where, flag, value: check_list(where, flag, value, path))
    random = dict(tables.get("random", {}))
    samples = check_samples(path, random.pop("samples", None), random)
    ranges = check_table(path, "random", random, flags,
                         lambda where, flag, value: check_range(where, flag, value, path))
    refuse_repeated_names(path, fixed, grid, ranges)
    if not grid and not ranges:
        raise DataError(f"{path}: nothing to sweep; give a [grid] table of lists or a [random] table of ranges")
    sweep = Sweep(path, [*grid, *ranges], {n for n, r in ranges.items() if r[0] == "log_uniform"}, not ranges)
    sweep.trials = make_trials(path, fixed, grid, ranges, samples)
    check_data(sweep.trials)
    return sweep


def parse_toml(path: Path) -> dict:
    """The file's tables, refusing anything but [train], [grid] and [random]."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise DataError("nnscratch sweep needs the sweep extra: pip install 'nnscratch[sweep]'") from None
    try:
        with open(path, "rb") as f:
            tables = tomllib.load(f)
    except tomllib.TOMLDecodeError as exc:
        raise DataError(f"{path}: not a valid TOML file ({exc})") from None
    for name, table in tables.items():
        if name not in TABLES:
            raise DataError(f"{path}: unknown table [{name}]; a sweep file has [train], [grid] and [random]")
        if not isinstance(table, dict):
            raise DataError(f"{path}: {name} must be a table ([{name}] followed by name = value lines)")
    return tables


def check_table(path: Path, table: str, entries: dict, flags: dict, check) -> dict:
    """``entries`` with known setting names (``-`` or ``_``), each value passed through ``check``."""
    checked = {}
    for key, value in entries.items():
        name = key.replace("-", "_")
        if name not in flags:
            raise DataError(f"{path}: [{table}] {key}: unknown setting; known: {', '.join(flags)}")
        checked[name] = check(f"{path}: [{table}] {key}", flags[name], value)
    return checked


def refuse_repeated_names(path: Path, *tables: dict) -> None:
    """A setting is either fixed, or in the grid, or drawn: never two of these."""
    for (a, first), (b, second) in itertools.combinations(zip(TABLES, tables), 2):
        for name in first.keys() & second.keys():
            raise DataError(f"{path}: {name} is in both [{a}] and [{b}]; keep it in one")


# --------------------------------------------------------------------------- #
# One value, a list of values, a range
# --------------------------------------------------------------------------- #
def flag_text(value):
    """What one would type after the flag for this TOML value (None if nothing would do)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, str)):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return ",".join(map(str, value))  # hidden = [64, 32] is --hidden 64,32
    return None


def check_value(where: str, flag: argparse.Action, value, path: Path):
    """``value`` as ``nnscratch train`` would take it for ``flag``, or DataError."""
    text = flag_text(value)
    if text is None:
        raise DataError(f"{where}: {value!r} is not a value for {flag.option_strings[0]}")
    try:
        typed = flag.type(text) if flag.type else text
    except (argparse.ArgumentTypeError, ValueError) as exc:
        raise DataError(f"{where}: {exc}") from None
    if flag.choices is not None and typed not in flag.choices:
        raise DataError(f"{where}: {value!r} is not one of {', '.join(map(str, flag.choices))}")
    if flag.dest == "data":
        return check_data_path(where, path, typed)
    return typed


def check_data_path(where: str, sweep_file: Path, text: str) -> str:
    """The data path as an absolute path (relative ones are relative to the sweep file)."""
    data = (sweep_file.parent / text).resolve()
    if not data.exists():
        raise DataError(f"{where}: {data}: no such file or folder")
    return str(data)


def check_list(where: str, flag: argparse.Action, values, path: Path) -> list:
    """A [grid] entry: a non-empty list of distinct values, each checked."""
    if not isinstance(values, list) or not values:
        raise DataError(f"{where}: a [grid] entry is a non-empty list, e.g. [0.001, 0.01]")
    checked = [check_value(where, flag, v, path) for v in values]
    for a, b in itertools.combinations(range(len(checked)), 2):
        if checked[a] == checked[b]:
            raise DataError(f"{where}: {values[a]!r} is listed twice")
    return checked


def check_samples(path: Path, samples, ranges: dict) -> int:
    """``samples = N`` of the [random] table: required with ranges, meaningless without."""
    if samples is None:
        if ranges:
            raise DataError(f"{path}: [random] needs samples = N (how many draws)")
        return 1
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise DataError(f"{path}: [random] samples: {samples!r} must be a whole number >= 1")
    if not ranges:
        raise DataError(f"{path}: [random] has samples but no ranges, e.g. lr = {{ log_uniform = [1e-4, 1e-1] }}")
    return samples


def check_range(where: str, flag: argparse.Action, value, path: Path) -> tuple:
    """A [random] entry, ``{ log_uniform | uniform = [low, high] }`` or ``{ choice = [...] }``."""
    if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in RANGES:
        raise DataError(f"{where}: a [random] entry is {{ log_uniform = [low, high] }}, "
                        "{ uniform = [low, high] } or { choice = [a, b, ...] }")
    kind, args = next(iter(value.items()))
    if kind == "choice":
        return kind, check_list(where, flag, args, path)
    if not (isinstance(args, list) and len(args) == 2):
        raise DataError(f"{where}: {kind} takes [low, high]")
    low, high = (check_value(where, flag, v, path) for v in args)
    if not all(isinstance(v, (int, float)) for v in (low, high)):
        raise DataError(f"{where}: {kind} needs a numeric setting; draw other settings with choice")
    if not low < high:
        raise DataError(f"{where}: {kind} needs low < high (got {args[0]!r}, {args[1]!r})")
    if kind == "log_uniform" and low <= 0:
        raise DataError(f"{where}: log_uniform needs low > 0 (got {args[0]!r})")
    return kind, (low, high), isinstance(low, int)


# --------------------------------------------------------------------------- #
# The trials
# --------------------------------------------------------------------------- #
def draw(rng: np.random.Generator, spec: tuple):
    """One value from a checked range: uniform in value, or in log value, or one of the choices."""
    if spec[0] == "choice":
        return spec[1][rng.integers(len(spec[1]))]
    kind, (low, high), whole = spec
    if kind == "log_uniform":
        value = math.exp(rng.uniform(math.log(low), math.log(high)))
    else:
        value = rng.uniform(low, high)
    return round(value) if whole else float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def make_trials(path: Path, fixed: dict, grid: dict, ranges: dict, samples: int) -> list:
    """Every grid combination for each of ``samples`` draws of the ranges (as Ray Tune orders them)."""
    rng = np.random.default_rng(DRAW_SEED)
    combos = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
    params = []
    for _ in range(samples):
        drawn = {name: draw(rng, spec) for name, spec in ranges.items()}
        params += [{**combo, **drawn} for combo in combos]
    width = max(3, len(str(len(params) - 1)))
    return [Trial(f"{i:0{width}d}", p, trial_settings(path, {**fixed, **p})) for i, p in enumerate(params)]


def trial_settings(path: Path, given: dict) -> dict:
    """The settings of ``nnscratch train`` with these flags, and a validation split to compare on."""
    from ..cli import train_settings

    given = dict(given)
    preset, batch_size = given.pop("preset", "default"), given.pop("batch_size", None)
    settings = train_settings(preset, given, batch_size)
    if "validation_split" not in given and not settings["validation_split"]:
        settings["validation_split"] = SWEEP_VALIDATION_SPLIT
    if not settings["validation_split"]:
        raise DataError(f"{path}: validation_split = 0: a sweep compares its trials on a validation split "
                        f"(default {SWEEP_VALIDATION_SPLIT}); give a fraction above 0")
    return settings


def check_data(trials: list) -> None:
    """Load each data set the trials train on once, so a bad file stops the sweep before it starts."""
    from ...files import data as datasets

    for data, train_rows in {(t.settings["data"], t.settings["train_rows"]) for t in trials}:
        datasets.load(data, train_rows)


def show(value) -> str:
    """A setting's value as text for tables and labels (hidden [64, 32] as 64,32)."""
    if isinstance(value, list):
        return ",".join(map(str, value))
    return f"{value:g}" if isinstance(value, float) else str(value)
