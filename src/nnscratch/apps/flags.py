"""The command line's flag types: each parses one flag's text and refuses a bad value in words.

argparse calls them; an ``ArgumentTypeError`` becomes one line naming the
flag and the value (see ``cli.OneLineParser``), exit status 2.
"""
from __future__ import annotations

import argparse
import math

from ..core.builders import MAX_WIDTH, parse_layers
from ..errors import DataError
from .presets import PRESETS

MAX_EPOCHS = 1_000_000


def number(kind: type, rule: str, ok):
    """A flag type: parse ``kind`` (int or float), then refuse values for which
    ``ok(value)`` is false with "VALUE must be RULE" (NaN and infinities never pass)."""
    noun = "a whole number" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if not (math.isfinite(value) and ok(value)):
            raise argparse.ArgumentTypeError(f"{text} must be {rule}")
        return value

    parse.__name__ = rule  # argparse names the type in some messages
    return parse


positive_int = number(int, "at least 1", lambda v: v >= 1)
non_negative_int = number(int, "0 or more", lambda v: v >= 0)
positive_float = number(float, "a positive finite number", lambda v: v > 0)
non_negative_float = number(float, "a finite number >= 0", lambda v: v >= 0)
fraction = number(float, "in [0, 1)", lambda v: 0 <= v < 1)


def epochs(text: str) -> int:
    value = positive_int(text)
    if value > MAX_EPOCHS:
        raise argparse.ArgumentTypeError(f"{text} is more than {MAX_EPOCHS} epochs")
    return value


def layer_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of layer widths, e.g. 256,128") from None
    if not sizes or min(sizes) < 1 or max(sizes) > MAX_WIDTH:
        raise argparse.ArgumentTypeError(f"{text!r}: every hidden layer needs 1 to {MAX_WIDTH} neurons")
    return sizes


def layers_text(text: str) -> str:
    """``--layers``: checked for known layer names here; arguments are checked when the network is built."""
    try:
        parse_layers(text)
    except DataError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def distortion(text: str) -> dict:
    """``--distortion 'sigma=4,alpha=34,rotate=0'``: the augmenter's settings (checked when it is made)."""
    settings = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = item.partition("=")
        try:
            settings[name.strip()] = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r}: write NAME=NUMBER, e.g. sigma=4,alpha=34") from None
    return settings


def batch_size(text: str):
    return "full" if text == "full" else positive_int(text)


def from_preset(key: str) -> str:
    """Help text naming a setting's default in each preset.

    For example "default from the preset: seed 500, default 30, best 15".
    """
    def shown(value):
        if value is None:
            return "full"  # a batch size of None is the full batch
        if isinstance(value, list):
            return ",".join(map(str, value))
        return f"{value:g}" if isinstance(value, float) else str(value)

    values = [(name, {**recipe["model"], **recipe["train"]}[key]) for name, recipe in PRESETS.items()]
    return "default from the preset: " + ", ".join(f"{name} {shown(value)}" for name, value in values)
