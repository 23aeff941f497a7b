"""The loaders read good files exactly and name the problem in bad ones."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from nnscratch.errors import DataError
from nnscratch.files import csv_parser, data

from .badfiles import BAD_CSV, BAD_IDX, HEADER, csv_rows, csv_text, digits, write_idx_folder
from .conftest import DIGITS_42K, MNIST_DIR, need


def load_text(tmp_path, content: bytes, name: str = "d.csv"):
    path = tmp_path / name
    path.write_bytes(content)
    return data.load_csv(path)


def expected(n: int = 5):
    rows = np.array(csv_rows(n), dtype=np.int64)
    return rows[:, 1:].astype(np.uint8), rows[:, 0].astype(np.uint8)


# --------------------------------------------------------------------------- #
# CSV: good files, in all their spellings
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ["d.csv", "d.csv.gz"])
def test_save_csv_then_load_csv_gives_the_same_digits(tmp_path, name):
    images, labels = digits(7)
    data.save_csv(data.Dataset(images, labels), tmp_path / name)
    back = data.load_csv(tmp_path / name)
    assert back.images.dtype == np.uint8 and back.labels.dtype == np.uint8
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_array_equal(back.labels, labels)


@pytest.mark.parametrize("variant", ["crlf", "no final newline", "trailing blank lines", "blank line inside",
                                     "leading zeros", "spaces", "decimals", "bom", "label last", "gzip",
                                     "gzip in two members"])
def test_csv_spellings_that_mean_the_same_digits(tmp_path, variant):
    images, labels = expected()
    rows = csv_rows()
    content = {
        "crlf": lambda: csv_text(rows, newline="\r\n"),
        "no final newline": lambda: csv_text(rows, final_newline=False),
        "trailing blank lines": lambda: csv_text(rows) + b"\n\r\n  \n",
        "blank line inside": lambda: csv_text(rows[:2]) + b"\n" + csv_text(rows[2:], header="")[1:],
        "leading zeros": lambda: csv_text([[c.zfill(4) for c in r] for r in rows]),
        "spaces": lambda: csv_text([[f" {c} " for c in r] for r in rows]),
        "decimals": lambda: csv_text([[f"{c}.0" for c in r] for r in rows]),
        "bom": lambda: b"\xef\xbb\xbf" + csv_text(rows),
        "label last": lambda: csv_text([[*r[1:], r[0]] for r in rows],
                                       header=HEADER.split(",", 1)[1] + ",label"),
        "gzip": lambda: gzip.compress(csv_text(rows)),
        # the size gzip records is the last member's: the loader foresees 1 row and must grow
        "gzip in two members": lambda: gzip.compress(csv_text(rows)[:-10]) + gzip.compress(csv_text(rows)[-10:]),
    }[variant]()
    back = load_text(tmp_path, content)
    np.testing.assert_array_equal(back.images, images)
    np.testing.assert_array_equal(back.labels, labels)


def test_csv_larger_than_one_piece_is_read_whole_and_names_the_right_line(tmp_path):
    n = 400  # about 600 KB: several of the loader's 256 KB pieces
    rows = csv_rows(n, seed=3)
    back = load_text(tmp_path, csv_text(rows))
    np.testing.assert_array_equal(back.images, np.array(rows, np.int64)[:, 1:])
    rows[350][100] = "x"
    with pytest.raises(DataError, match=r"line 352, column 101 \(pixel99\): 'x' is not a whole number"):
        load_text(tmp_path, csv_text(rows))


def test_fast_reader_agrees_with_careful_reader():
    """The vectorized reader may only say yes when the careful one gives the same table."""
    rows = csv_rows(20, seed=4)
    rows[3][5], rows[7][9] = "100", "255"
    piece = "\n".join(",".join(r) for r in rows).encode() + b"\n"
    names = HEADER.split(",")
    fast = csv_parser._parse_int_piece(piece, 0)
    careful = csv_parser._parse_piece_slowly("x", piece, 2, 0, names, 0)
    np.testing.assert_array_equal(fast, careful)


# --------------------------------------------------------------------------- #
# CSV: bad files, each with its message
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("case", BAD_CSV, ids=list(BAD_CSV))
def test_bad_csv_raises_data_error_naming_the_file_and_place(tmp_path, case):
    content, message = BAD_CSV[case]
    with pytest.raises(DataError, match=message) as info:
        load_text(tmp_path, content)
    assert str(tmp_path / "d.csv") in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_csv_and_folder_instead_of_file(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        data.load_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="is a folder"):
        data.load_csv(tmp_path)


# --------------------------------------------------------------------------- #
# IDX
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("gz", [False, True])
def test_idx_folder_loads_with_its_split(tmp_path, gz):
    split = data.load(write_idx_folder(tmp_path / "mnist", gz=gz))
    images, labels = digits(20, 1)
    np.testing.assert_array_equal(split.train.images, images)
    np.testing.assert_array_equal(split.train.labels, labels)
    assert len(split.test) == 10


def test_idx_other_spelling_of_names(tmp_path):
    folder = write_idx_folder(tmp_path / "m")
    for f in folder.iterdir():
        f.rename(folder / f.name.replace("-idx", ".idx"))
    assert len(data.load(folder).train) == 20


@pytest.mark.parametrize("case", BAD_IDX, ids=list(BAD_IDX))
def test_bad_idx_folder_raises_data_error(tmp_path, case):
    replace, message = BAD_IDX[case]
    folder = write_idx_folder(tmp_path / "mnist", replace=replace)
    with pytest.raises(DataError, match=message) as info:
        data.load(folder)
    assert "\n" not in str(info.value)


def test_empty_folder_names_the_first_missing_file(tmp_path):
    with pytest.raises(DataError, match="no train-images-idx3-ubyte file"):
        data.load(tmp_path)


# --------------------------------------------------------------------------- #
# The real files, when present
# --------------------------------------------------------------------------- #
def test_kaggle_csv_loads_whole():
    dataset = data.load_csv(need(DIGITS_42K))
    assert dataset.images.shape == (42000, 784) and dataset.images.dtype == np.uint8
    assert dataset.labels.min() == 0 and dataset.labels.max() == 9
    assert np.bincount(dataset.labels).min() > 3500  # every digit is there


def test_mnist_idx_folder_loads_whole():
    split = data.load(need(MNIST_DIR))
    assert split.train.images.shape == (60000, 784) and split.test.images.shape == (10000, 784)
