"""``nnscratch predict``: every readable input answered, each bad one told in one line (issue #17, point 6).

Pictures, folders of pictures and label-less pixel CSVs (Kaggle's test.csv),
Kaggle's submission file, and the 28x28 digits the network saw.
"""
import gzip
import json

import numpy as np
import pytest
from PIL import Image

import nnscratch
from nnscratch import data
from nnscratch.apps import cli
from nnscratch.errors import DataError
from nnscratch.files.images import digit_from_image

from .badfiles import GOOD_PNG, png

PIXEL_HEADER = ",".join(f"pixel{i}" for i in range(784))


@pytest.fixture(scope="module")
def place(tmp_path_factory):
    """A trained run, good and bad pictures, a folder of pictures and a Kaggle-style test.csv."""
    root = tmp_path_factory.mktemp("predict")
    assert cli.main(["train", "--epochs", "2", "--out", str(root / "run")]) == 0
    (root / "good.png").write_bytes(GOOD_PNG)
    (root / "blank.png").write_bytes(png(Image.new("L", (64, 64), 255)))
    folder = root / "pictures"
    folder.mkdir()
    test = data.load().test
    for i in (3, 1, 2):  # written out of order: read back sorted by name
        Image.fromarray(test.images[i].reshape(28, 28)).save(folder / f"digit{i}.png")
    (folder / "notes.txt").write_text("not a picture")
    (folder / "inner").mkdir()  # subfolders are left alone
    rows = "\n".join(",".join(map(str, r)) for r in test.images[:7])
    (root / "test.csv").write_text(PIXEL_HEADER + "\n" + rows + "\n")
    return root


def predict(place, capsys, *argv):
    """(exit status, stdout, stderr lines) of ``nnscratch predict RUN argv`` (@x: a path in place)."""
    argv = [str(place / a[1:]) if a.startswith("@") else a for a in argv]
    capsys.readouterr()
    status = cli.main(["predict", str(place / "run"), *argv])
    out, err = capsys.readouterr()
    return status, out, err.splitlines()


def test_a_blank_picture_gets_its_line_and_the_good_one_its_answer(place, capsys):
    status, out, err = predict(place, capsys, "@good.png", "@blank.png")
    assert status == 2
    assert out.startswith(f"{place / 'good.png'}: ") and len(out.splitlines()) == 1
    assert err == [f"nnscratch: error: {place / 'blank.png'}: no ink found (the image looks blank: no digit to read)"]


def test_every_bad_input_is_told_and_every_good_one_answered(place, capsys):
    status, out, err = predict(place, capsys, "@blank.png", "@good.png", "@missing.png", "@pictures/notes.txt")
    assert status == 2 and len(out.splitlines()) == 1 and len(err) == 3
    assert "missing.png: no such file" in err[1] and "notes.txt: not an image" in err[2]


def test_a_folder_is_every_picture_inside_sorted_by_name(place, capsys):
    status, out, err = predict(place, capsys, "@pictures")
    assert status == 0 and err == []
    names = [line.split(":")[0] for line in out.splitlines()]
    assert names == [str(place / "pictures" / f"digit{i}.png") for i in (1, 2, 3)]


def test_a_folder_without_pictures_is_one_error_line(place, capsys):
    status, out, err = predict(place, capsys, "@pictures/inner", "@good.png")
    assert status == 2 and len(out.splitlines()) == 1
    assert len(err) == 1 and "inner: no pictures in this folder" in err[0]


def test_a_kaggle_test_csv_makes_a_submission_file(place, capsys, tmp_path):
    model = nnscratch.load(place / "run")
    expected = model.predict(data.load().test.images[:7])
    status, out, err = predict(place, capsys, "@test.csv", "--submission", str(tmp_path / "submission.csv"))
    assert status == 0 and err == []
    assert out == f"wrote 7 answers to {tmp_path / 'submission.csv'} (ImageId,Label)\n"
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert lines[0] == "ImageId,Label"
    assert lines[1:] == [f"{i},{d}" for i, d in enumerate(expected, start=1)]
    assert [p.name for p in tmp_path.iterdir()] == ["submission.csv"]  # no temporary file left


def test_each_csv_row_is_answered_like_a_picture(place, capsys):
    status, out, _ = predict(place, capsys, "@test.csv", "@good.png")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 8
    assert lines[0].startswith(f"{place / 'test.csv'} row 1: ") and lines[6].startswith(f"{place / 'test.csv'} row 7: ")


def test_no_submission_is_written_when_an_input_failed(place, capsys, tmp_path):
    earlier = tmp_path / "submission.csv"
    earlier.write_text("ImageId,Label\n1,7\n")
    status, out, err = predict(place, capsys, "@test.csv", "@blank.png", "--submission", str(earlier))
    assert status == 2 and out == ""
    assert len(err) == 2 and "--submission" in err[1] and "not written" in err[1]
    assert earlier.read_text() == "ImageId,Label\n1,7\n"


def test_submission_into_a_missing_folder_is_refused_before_any_work(place, capsys, tmp_path):
    status, out, err = predict(place, capsys, "@test.csv", "--submission", str(tmp_path / "nope" / "s.csv"))
    assert status == 2 and out == "" and len(err) == 1 and "no folder" in err[0]


def test_save_input_writes_the_28x28_digit_the_network_saw(place, capsys, tmp_path):
    seen = tmp_path / "seen"
    status, _, _ = predict(place, capsys, "@good.png", "@test.csv", "--save-input", str(seen))
    assert status == 0
    names = sorted(p.name for p in seen.iterdir())
    assert names[0] == "1-good.png" and names[1] == "2-test-row1.png" and len(names) == 8
    saved = np.asarray(Image.open(seen / "1-good.png"))
    assert saved.shape == (28, 28) and saved.dtype == np.uint8
    np.testing.assert_array_equal(saved.reshape(784), digit_from_image(place / "good.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(seen / "2-test-row1.png")).reshape(784),
                                  data.load().test.images[0])


def test_json_lists_the_readable_inputs_with_their_rows(place, capsys):
    status, out, err = predict(place, capsys, "@good.png", "@blank.png", "@test.csv", "--json")
    records = json.loads(out)
    assert status == 2 and len(err) == 1 and len(records) == 8
    assert records[0]["file"] == str(place / "good.png") and "row" not in records[0]
    assert records[1]["file"] == str(place / "test.csv") and records[1]["row"] == 1
    assert all(abs(sum(r["probabilities"]) - 1) < 1e-4 for r in records)


def test_a_damaged_csv_is_one_line_naming_the_cell(place, capsys, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(PIXEL_HEADER + "\n" + ",".join(["0"] * 783 + ["300"]) + "\n")
    status, out, err = predict(place, capsys, str(bad), "@good.png")
    assert status == 2 and len(out.splitlines()) == 1
    assert err == [f"nnscratch: error: {bad}: line 2, column 784 (pixel783): pixel value 300 is outside 0-255"]


# --------------------------------------------------------------------------- #
# The CSV parser reads the label-less layout (one parser for both)
# --------------------------------------------------------------------------- #
def test_label_less_csv_fast_and_careful_readers_agree(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (30, 784), dtype=np.uint8)
    plain = tmp_path / "test.csv"
    plain.write_text(PIXEL_HEADER + "\n" + "\n".join(",".join(map(str, r)) for r in images) + "\n")
    decimals = tmp_path / "decimals.csv.gz"  # decimals go through the careful line-by-line reader
    decimals.write_bytes(gzip.compress((PIXEL_HEADER + "\r\n" + "\r\n".join(
        ",".join(f"{v}.0" for v in r) for r in images)).encode()))
    np.testing.assert_array_equal(data.load_csv_images(plain), images)
    np.testing.assert_array_equal(data.load_csv_images(decimals), images)


def test_a_labelled_csv_gives_its_pixels_to_predict(tmp_path, tiny_dataset):
    path = tmp_path / "train.csv"
    data.save_csv(tiny_dataset, path)
    np.testing.assert_array_equal(data.load_csv_images(path), tiny_dataset.images)


def test_training_still_needs_labels_and_a_short_header_is_named(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text(PIXEL_HEADER + "\n" + ",".join(["0"] * 784) + "\n")
    with pytest.raises(DataError, match="no 'label' column in the header; expected label,pixel0"):
        data.load_csv(path)
    path.write_text(",".join(f"pixel{i}" for i in range(783)) + "\n" + ",".join(["0"] * 783) + "\n")
    with pytest.raises(DataError, match="header has 783 pixel columns, expected 784"):
        data.load_csv_images(path)
    path.write_text(PIXEL_HEADER + "\n" + ",".join(["0"] * 785) + "\n")
    with pytest.raises(DataError, match=r"line 2: has 785 values, expected 784 \(784 pixels\)"):
        data.load_csv_images(path)


@pytest.mark.parametrize("content, message", [
    # a cut header: Pillow raises ValueError, not OSError (it was an internal error)
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\x00IHDR", "unreadable image (Truncated IHDR chunk)"),
    # 1x1024 blank pixels: shrunk to 512 high, the width rounded to 0 pixels (it was an IndexError)
    ((b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x04\x00\x01\x00\x00\x00\x00\x08}\x0e\x92"
      b"\x00\x00\x00\x0cIDATx\x9cc`\xa0\x0c\x00\x00\x00@\x00\x01"), "no ink found"),
], ids=["cut header", "one pixel wide"])
def test_pictures_that_broke_the_reader_get_their_line_and_the_others_their_answers(place, capsys, tmp_path,
                                                                                     content, message):
    """Two pictures hypothesis found (tests/test_parsers_hypothesis.py): each is one error line now."""
    odd = tmp_path / "odd.png"
    odd.write_bytes(content)
    status, out, err = predict(place, capsys, str(odd), "@good.png")
    assert status == 2 and len(out.splitlines()) == 1
    assert len(err) == 1 and err[0].startswith(f"nnscratch: error: {odd}: {message}")
