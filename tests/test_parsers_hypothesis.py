"""Property-based tests: whatever bytes the loaders (CSV, IDX, model files,
images) are given, they either load them correctly or raise DataError, never
anything else.

Examples are bounded (and deadlines off) so the suite stays fast on 2 cores;
set NNSCRATCH_EXAMPLES to search harder.
"""
from __future__ import annotations

import gzip
import io
import os
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from nnscratch.errors import DataError
from nnscratch.files import csv_parser, data
from nnscratch.files.images import digit_from_image
from nnscratch.files.modelfile import load_model, read_model_file

from .badfiles import GOOD_PNG, HEADER, csv_rows, csv_text, digits, idx_bytes, model_bytes, png_declaring

# NNSCRATCH_EXAMPLES=2000 pytest tests/test_parsers_hypothesis.py searches harder.
FAST = settings(max_examples=int(os.environ.get("NNSCRATCH_EXAMPLES", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
NAMES = HEADER.split(",")
# Bytes that matter to the parsers, so that mutations hit interesting cases often.
SPECIAL = b"0123456789,\n\r -+.eEnaNI\"\t\x00\x1f\x8b\xff\xc3"


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("hypothesis")


@st.composite
def mutations(draw, base: bytes, max_changes: int = 4) -> bytes:
    """``base`` with a few bytes replaced, inserted or deleted, or cut short."""
    out = bytearray(base)
    for _ in range(draw(st.integers(1, max_changes))):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(len(out) - 1, 0)))
        byte = draw(st.one_of(st.sampled_from(list(SPECIAL)), st.integers(0, 255)))
        if kind == "replace" and out:
            out[at] = byte
        elif kind == "insert":
            out[at:at] = bytes([byte]) * draw(st.integers(1, 4))
        elif kind == "delete":
            del out[at:at + draw(st.integers(1, 8))]
        else:
            del out[at:]
    return bytes(out)


def load_or_data_error(loader, path):
    """Call ``loader(path)``; DataError is a fine answer, anything else fails the test."""
    try:
        return loader(path)
    except DataError as exc:
        assert str(exc) and "\n" not in str(exc), "a DataError message is one non-empty line"
        return None


def check_dataset(dataset):
    if dataset is not None:
        assert dataset.images.dtype == np.uint8 and dataset.labels.dtype == np.uint8
        assert dataset.images.shape == (len(dataset.labels), 784)
        assert dataset.labels.max(initial=0) <= 9


# --------------------------------------------------------------------------- #
# CSV
# --------------------------------------------------------------------------- #
GOOD_CSV = csv_text(csv_rows(3))


@FAST
@given(content=st.binary(max_size=3000))
def test_csv_random_bytes_load_or_raise_data_error(folder, content):
    (folder / "r.csv").write_bytes(content)
    check_dataset(load_or_data_error(data.load_csv, folder / "r.csv"))


@FAST
@given(content=mutations(GOOD_CSV), gz=st.booleans())
def test_csv_mutated_files_load_or_raise_data_error(folder, content, gz):
    (folder / "m.csv").write_bytes(gzip.compress(content) if gz else content)
    check_dataset(load_or_data_error(data.load_csv, folder / "m.csv"))


@FAST
@given(piece=mutations(GOOD_CSV.split(b"\n", 1)[1], max_changes=3))
def test_fast_csv_reader_never_says_yes_wrongly(piece):
    """When the vectorized reader accepts a piece, the careful reader reads the same numbers."""
    assume(piece.endswith(b"\n"))
    fast = csv_parser._parse_int_piece(piece, 0)
    if fast is not None:
        careful = csv_parser._parse_piece_slowly("p.csv", piece, 2, 0, NAMES, 0)
        np.testing.assert_array_equal(fast, careful)


@FAST
@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), zeros=st.integers(0, 3),
       newline=st.sampled_from(["\n", "\r\n"]), final_newline=st.booleans(),
       blank_lines=st.integers(0, 2), gz=st.booleans())
def test_csv_round_trip_in_any_spelling(folder, n, seed, zeros, newline, final_newline, blank_lines, gz):
    images, labels = digits(n, seed)
    images[:, :5] = [0, 1, 99, 100, 255]  # the edges of 1, 2 and 3 digits
    rows = [[str(v).zfill(zeros + 1) for v in (label, *row)] for label, row in zip(labels, images)]
    content = csv_text(rows, newline=newline, final_newline=final_newline) + newline.encode() * blank_lines
    (folder / "t.csv").write_bytes(gzip.compress(content) if gz else content)
    back = data.load_csv(folder / "t.csv")
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_array_equal(back.labels, labels)


@FAST
@given(n=st.integers(1, 4), seed=st.integers(0, 2**32 - 1), gz=st.booleans())
def test_save_csv_load_csv_round_trip(folder, n, seed, gz):
    images, labels = digits(n, seed)
    path = folder / ("s.csv.gz" if gz else "s.csv")
    data.save_csv(data.Dataset(images, labels), path)
    back = data.load_csv(path)
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_array_equal(back.labels, labels)


# --------------------------------------------------------------------------- #
# IDX
# --------------------------------------------------------------------------- #
GOOD_IDX_IMAGES = idx_bytes(digits(3, 5)[0].reshape(3, 28, 28))
GOOD_IDX_LABELS = idx_bytes(digits(3, 5)[1])


@FAST
@given(content=st.one_of(st.binary(max_size=600),
                         st.binary(max_size=40).map(lambda b: b"\x00\x00\x08" + b)))
def test_idx_random_bytes_load_or_raise_data_error(folder, content):
    (folder / "r-idx").write_bytes(content)
    array = load_or_data_error(data.read_idx, folder / "r-idx")
    if array is not None:
        assert array.dtype == np.uint8 and 1 <= array.ndim <= 3


@FAST
@given(images=mutations(GOOD_IDX_IMAGES), labels=mutations(GOOD_IDX_LABELS), gz=st.booleans())
def test_idx_mutated_pairs_load_or_raise_data_error(folder, images, labels, gz):
    pack = gzip.compress if gz else bytes
    (folder / "i-idx").write_bytes(pack(images))
    (folder / "l-idx").write_bytes(pack(labels))
    check_dataset(load_or_data_error(lambda _: data.load_idx_pair(folder / "i-idx", folder / "l-idx"), None))


# --------------------------------------------------------------------------- #
# Model files (nnscratch.files.modelfile.read_model_file / load_model)
# --------------------------------------------------------------------------- #
GOOD_MODEL = model_bytes()
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                           max_leaves=8)


def check_model(model):
    if model is not None:
        assert model.predict_proba(np.zeros((1, model.n_inputs))).shape == (1, model.n_classes)


def test_good_model_file_loads(folder):
    (folder / "good.npz").write_bytes(GOOD_MODEL)
    model = load_model(folder / "good.npz")
    assert (model.n_inputs, model.n_classes) == (12, 3)


@FAST
@given(content=st.one_of(st.binary(max_size=2000), mutations(GOOD_MODEL, max_changes=3)))
def test_damaged_model_files_load_or_raise_data_error(folder, content):
    (folder / "m.npz").write_bytes(content)
    load_or_data_error(read_model_file, folder / "m.npz")
    check_model(load_or_data_error(load_model, folder / "m.npz"))


@FAST
@given(path=st.sampled_from([("version",), ("network",), ("network", "type"), ("network", "layers"),
                             ("network", "layers", 0), ("network", "layers", 0, "scale"), ("network", "layers", 1),
                             ("network", "layers", 1, "n_in"), ("network", "layers", 2, "type"), ("classes",)]),
       value=JSON_VALUES)
def test_model_files_with_odd_meta_load_or_raise_data_error(folder, path, value):
    def change(meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    (folder / "j.npz").write_bytes(model_bytes(meta_change=change))
    check_model(load_or_data_error(load_model, folder / "j.npz"))


def test_model_file_with_unsupported_compression_is_a_data_error(folder):
    """A zip member compressed with a method zipfile cannot read (e.g. written by another tool)."""
    content = bytearray(GOOD_MODEL)
    with zipfile.ZipFile(io.BytesIO(GOOD_MODEL)) as z:
        offset = z.infolist()[0].header_offset
    content[offset + 8:offset + 10] = (99).to_bytes(2, "little")  # local header: method 99 (AES)
    (folder / "c.npz").write_bytes(bytes(content))
    load_or_data_error(load_model, folder / "c.npz")


# --------------------------------------------------------------------------- #
# Images (nnscratch.files.images.digit_from_image): what predict and the web page read
# --------------------------------------------------------------------------- #
# Pillow warns (then we refuse) for sizes between its warning and error limits;
# the CLI silences that warning once at start-up, the library leaves it to the caller.
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@FAST
@given(content=st.one_of(st.binary(max_size=600), mutations(GOOD_PNG, max_changes=3),
                         st.builds(png_declaring, st.integers(0, 40000), st.integers(0, 40000))))
def test_random_and_mutated_images_give_a_digit_or_raise_data_error(content):
    digit = load_or_data_error(lambda b: digit_from_image(b, "upload.png"), content)
    if digit is not None:
        assert digit.shape == (784,) and digit.dtype == np.uint8
