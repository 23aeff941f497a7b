"""The loaders read good files exactly and name the problem in bad ones."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from badfiles import (HEADER, SHARED_DATA, csv_rows, csv_text, digits, idx_bytes, with_cell,
                      write_idx_folder)
from nnscratch import data
from nnscratch.errors import DataError


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
                                     "leading zeros", "spaces", "decimals", "bom", "label last", "gzip"])
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
    fast = data._parse_int_piece(piece, 0)
    careful = data._parse_piece_slowly("x", piece, 2, 0, names, 0)
    np.testing.assert_array_equal(fast, careful)


# --------------------------------------------------------------------------- #
# CSV: bad files, each with its message
# --------------------------------------------------------------------------- #
BAD_CSV = {
    "ragged row": (csv_text([*csv_rows(2), csv_rows(1)[0][:-1]]), r"line 4: has 784 values, expected 785"),
    "long row": (csv_text([*csv_rows(2), csv_rows(1)[0] + ["0"]]), r"line 4: has 786 values, expected 785"),
    "text cell": (with_cell(1, 5, "abc"), r"line 3, column 6 \(pixel4\): 'abc' is not a whole number"),
    "nan cell": (with_cell(0, 2, "NaN"), r"line 2, column 3 \(pixel1\): 'NaN' is not a whole number"),
    "empty cell": (with_cell(2, 784, ""), r"line 4, column 785 \(pixel783\): '' is not a whole number"),
    "fraction": (with_cell(0, 1, "0.5"), r"line 2, column 2 \(pixel0\): '0.5' is not a whole number"),
    "label 10": (with_cell(3, 0, "10"), r"line 5, column 1 \(label\): label 10 is outside 0-9"),
    "label -1": (with_cell(3, 0, "-1"), r"line 5, column 1 \(label\): label -1 is outside 0-9"),
    "pixel 256": (with_cell(4, 9, "256"), r"line 6, column 10 \(pixel8\): pixel value 256 is outside 0-255"),
    "pixel 1000": (with_cell(4, 9, "1000"), r"pixel value 1000 is outside 0-255"),
    "pixel -3": (with_cell(1, 9, "-3"), r"line 3, column 10 \(pixel8\): pixel value -3 is outside 0-255"),
    "no label column": (csv_text(csv_rows(2), header=HEADER.replace("label", "digit")), r"line 1: no 'label' column"),
    "no header": (csv_text(csv_rows(2)[1:], header=",".join(csv_rows(1)[0])), r"line 1: no header line"),
    "783 pixels": (csv_text([r[:-1] for r in csv_rows(2)], header=HEADER.rsplit(",", 1)[0]),
                   r"line 1: header has 783 pixel columns, expected 784"),
    "785 pixels": (csv_text([r + ["0"] for r in csv_rows(2)], header=HEADER + ",pixel784"),
                   r"line 1: header has 785 pixel columns, expected 784"),
    "empty file": (b"", r"is empty"),
    "blank file": (b"\n\n  \n", r"is empty"),
    "header only": (HEADER.encode() + b"\n", r"has a header but no rows of digits"),
    "header and blank lines": (HEADER.encode() + b"\n\n\n", r"has a header but no rows of digits"),
    "binary header": (bytes(range(128, 256)) * 4, r"line 1, byte 0: not UTF-8 text"),
    "control characters": (bytes(range(256)) * 4, r"line 1, character 1: control character '\\x00'"),
    "binary body": (csv_text(csv_rows(2)) + b"\x00\xff\xfe\x80garbage\n", r"line 4, byte \d+: not UTF-8 text"),
    "damaged gzip": (gzip.compress(csv_text(csv_rows(2)))[:-30], r"damaged gzip data"),
}


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


GOOD_IMAGES = idx_bytes(digits(20, 1)[0].reshape(-1, 28, 28))
BAD_IDX = {
    "truncated images": ({"train-images-idx3-ubyte": GOOD_IMAGES[:-100]},
                         r"train-images-idx3-ubyte: byte 15596: file ends after 15580 of the 15680 data bytes"),
    "extra bytes": ({"train-images-idx3-ubyte": GOOD_IMAGES + b"\0"}, r"byte 15696: more data than its header"),
    "wrong magic": ({"t10k-labels-idx1-ubyte": b"\x00\x00\x0d\x01" + bytes(14)},
                    r"t10k-labels-idx1-ubyte: byte 0: magic number 0x00000d01 is not an IDX file"),
    "text file": ({"t10k-labels-idx1-ubyte": b"hello, world"}, r"magic number 0x68656c6c"),
    "header cut": ({"train-labels-idx1-ubyte": b"\x00\x00\x08\x01\x00"}, r"byte 5: file ends inside the IDX header"),
    "tiny file": ({"train-labels-idx1-ubyte": b"\x00"}, r"1 bytes, too short for an IDX header"),
    "empty file": ({"train-labels-idx1-ubyte": b""}, r"0 bytes, too short"),
    "counts differ": ({"train-labels-idx1-ubyte": idx_bytes(digits(19, 1)[1])},
                      r"train-images-idx3-ubyte: holds 20 images but train-labels-idx1-ubyte holds 19 labels"),
    "missing file": ({"t10k-images-idx3-ubyte": None}, r"no t10k-images-idx3-ubyte file \(plain or .gz\) in this folder"),
    "label 12": ({"t10k-labels-idx1-ubyte": idx_bytes(np.full(10, 12))}, r"item 0 \(byte 8\): label 12 is not a digit 0-9"),
    "not 28x28": ({"train-images-idx3-ubyte": idx_bytes(np.zeros((20, 27, 29)))}, r"shape \(27, 29\), expected 28x28"),
    "huge header": ({"train-images-idx3-ubyte": b"\x00\x00\x08\x03" + b"\xff" * 12},
                    r"byte 4: header says \(4294967295, 4294967295, 4294967295\).*refusing"),
}


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
    path = SHARED_DATA / "digits-42k" / "data.csv"
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared data folder is not on this machine)")
    dataset = data.load_csv(path)
    assert dataset.images.shape == (42000, 784) and dataset.images.dtype == np.uint8
    assert dataset.labels.min() == 0 and dataset.labels.max() == 9
    assert np.bincount(dataset.labels).min() > 3500  # every digit is there


def test_mnist_idx_folder_loads_whole():
    folder = SHARED_DATA / "mnist"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent (the shared data folder is not on this machine)")
    split = data.load(folder)
    assert split.train.images.shape == (60000, 784) and split.test.images.shape == (10000, 784)
