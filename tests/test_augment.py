"""Distorted training digits (nnscratch.core.augment): shapes, range, determinism, the geometry."""
import inspect
import json
import math
from multiprocessing.shared_memory import SharedMemory

import numpy as np
import pytest
from PIL import Image

from nnscratch.apps.figures import plot_augmented
from nnscratch.core import augment
from nnscratch.core.augment import (
    Augmenter,
    affine_matrices,
    draw_wave_weights,
    make_augmenter,
    sample_bilinear,
    sampling_grid,
    smooth_waves,
    smoothing_matrix,
    warp,
)
from nnscratch.core.prefetch import DistortedEpochs
from nnscratch.errors import DataError

KINDS = ["affine", "elastic"]


@pytest.fixture(scope="module")
def digits(sample_split):
    """200 real digits from the bundled sample, every label represented."""
    return sample_split.train.images[::20]


def bar(n=1):
    """A 28x28 picture with a horizontal bar near the top, as (n, 784) uint8 rows."""
    picture = np.zeros((28, 28), np.uint8)
    picture[3, 6:22] = 255
    picture[10:14, 20] = 120  # something off-centre too, to catch a mirror image
    return np.tile(picture.reshape(1, 784), (n, 1))


def still(n=1):
    """Maps that change nothing: identity matrices and zero shifts for n digits."""
    return affine_matrices(np.zeros(n), 1, 1, 0), np.zeros((n, 2))


# ------------------------------------------------------------------ #
# The contract: shape, dtype, range, determinism, no labels
# ------------------------------------------------------------------ #
@pytest.mark.parametrize("kind", KINDS)
def test_shape_dtype_and_range_are_kept(kind, digits):
    out = make_augmenter(kind)(digits, np.random.default_rng(0))
    assert out.shape == digits.shape and out.dtype == np.uint8
    as_floats = make_augmenter(kind)(digits.astype(np.float32), np.random.default_rng(0))
    assert as_floats.dtype == np.float32
    # A blend of pixels and blank paper never leaves the original range.
    assert as_floats.min() >= 0 and as_floats.max() <= 255
    # uint8 output is the float output rounded.
    assert np.abs(out.astype(np.float32) - as_floats).max() <= 0.5 + 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_same_seed_same_distortions_other_seed_others(kind, digits):
    augmenter = make_augmenter(kind)
    first = augmenter(digits, np.random.default_rng(7))
    again = augmenter(digits, np.random.default_rng(7))
    other = augmenter(digits, np.random.default_rng(8))
    np.testing.assert_array_equal(first, again)
    assert np.mean(first != other) > 0.05
    # New distortions on every call from a running generator (a new epoch).
    rng = np.random.default_rng(7)
    assert np.mean(augmenter(digits, rng) != augmenter(digits, rng)) > 0.05


def test_none_is_the_identity_and_draws_nothing(digits):
    rng = np.random.default_rng(3)
    before = rng.bit_generator.state
    out = make_augmenter("none")(digits, rng)
    np.testing.assert_array_equal(out, digits)
    assert rng.bit_generator.state == before  # a run without augmentation keeps its random stream


@pytest.mark.parametrize("kind", KINDS)
def test_labels_are_not_its_business_and_inputs_stay_untouched(kind, digits):
    """The API takes images only, so it cannot change a label; and it never writes into its input."""
    assert list(inspect.signature(Augmenter.__call__).parameters) == ["self", "images", "rng"]
    copy = digits.copy()
    make_augmenter(kind)(digits, np.random.default_rng(0))
    np.testing.assert_array_equal(digits, copy)


def test_zero_strength_is_the_identity(digits):
    still_augmenter = make_augmenter("elastic", rotate=0, scale=0, shear=0, shift=0, alpha=0)
    np.testing.assert_array_equal(still_augmenter(digits, np.random.default_rng(0)), digits)
    gentle = make_augmenter("elastic", rotate=0.5, scale=0.005, shear=0.005, shift=0.05, alpha=0.5)
    change = np.abs(gentle(digits, np.random.default_rng(0)).astype(int) - digits).mean()
    assert change < 0.1 * np.abs(make_augmenter("elastic")(digits, np.random.default_rng(0)).astype(int) - digits).mean()


@pytest.mark.parametrize("kind", KINDS)
def test_distortions_keep_most_of_the_ink(kind, digits):
    out = make_augmenter(kind)(digits, np.random.default_rng(0))
    ratio = out.sum(axis=1, dtype=np.int64) / digits.sum(axis=1, dtype=np.int64)
    assert 0.9 < ratio.mean() < 1.1
    assert ratio.min() > 0.5 and ratio.max() < 2  # scaling alone may grow or shrink a digit's area by 20 %
    # ...and stay in the picture: the distorted digit's centre of ink moves a few pixels at most.
    grid = np.arange(28)
    for images, moved in ((digits, out),):
        weights = images.reshape(-1, 28, 28).astype(float), moved.reshape(-1, 28, 28).astype(float)
        centres = [(w.sum(2) @ grid / w.sum((1, 2)), w.sum(1) @ grid / w.sum((1, 2))) for w in weights]
        assert np.abs(np.subtract(centres[0], centres[1])).max() < 4


def test_a_whole_batch_is_distorted_at_once(digits, monkeypatch):
    """No loop over digits: a 10000-digit batch is warped in ceil(10000 / CHUNK) calls, not 10000."""
    calls = []
    real_warp = augment.warp
    monkeypatch.setattr(augment, "warp", lambda images, *rest: calls.append(len(images)) or real_warp(images, *rest))
    batch = np.tile(digits, (50, 1))  # 10000 digits
    out = make_augmenter("elastic")(batch, np.random.default_rng(0))
    assert out.shape == batch.shape
    assert len(calls) == math.ceil(len(batch) / augment.CHUNK) and sum(calls) == len(batch)


# ------------------------------------------------------------------ #
# The geometry: rotation, shift, bilinear sampling
# ------------------------------------------------------------------ #
def test_a_quarter_turn_is_counter_clockwise_and_exact():
    picture = bar()
    turned = warp(picture, affine_matrices(90, 1, 1, 0), np.zeros((1, 2)))
    np.testing.assert_array_equal(turned.reshape(28, 28), np.rot90(picture.reshape(28, 28)))  # numpy: counter-clockwise
    assert turned.reshape(28, 28)[6:22, 3].min() == 255  # the top bar now stands on the left
    half_turn = warp(picture, affine_matrices(180, 1, 1, 0), np.zeros((1, 2)))
    np.testing.assert_array_equal(half_turn.reshape(28, 28), picture.reshape(28, 28)[::-1, ::-1])


def test_a_shift_moves_the_content_by_whole_pixels():
    F, _ = still()
    moved = warp(bar(), F, np.array([[2.0, -3.0]])).reshape(28, 28)  # 2 rows down, 3 columns left
    expected = np.zeros((28, 28), np.uint8)
    expected[2:, :25] = bar().reshape(28, 28)[:-2, 3:]
    np.testing.assert_array_equal(moved, expected)


def test_scaling_and_shear_act_on_the_right_axes():
    F = affine_matrices(0, 1, 1.5, 0)  # half as wide again, same height
    wide = warp(bar(), F, np.zeros((1, 2))).reshape(28, 28)
    assert 1.4 * 16 <= np.count_nonzero(wide[3] > 128) <= 1.6 * 16
    assert np.count_nonzero(wide[:, 14]) == 1  # the bar is still on row 3 only
    slanted = warp(bar(), affine_matrices(0, 1, 1, 0.5), np.zeros((1, 2))).reshape(28, 28)
    # Leaning right like italics: the bar 10.5 rows above the centre slides 5.25 pixels right.
    assert np.argmax(slanted[3] > 128) == 6 + 5 and slanted[3, :11].max() < 128


def test_bilinear_sampling_blends_the_four_neighbours_and_reads_paper_outside():
    picture = np.zeros((1, 784), np.float32)
    picture[0, 5 * 28 + 5], picture[0, 5 * 28 + 6], picture[0, 6 * 28 + 5], picture[0, 6 * 28 + 6] = 10, 20, 30, 40
    rows = np.full((1, 28, 28), -5.0, np.float32)  # everything else: far outside
    cols = np.full((1, 28, 28), 40.0, np.float32)
    rows[0, 0, :4] = [5.0, 5.0, 5.5, 5.25]
    cols[0, 0, :4] = [5.0, 5.5, 5.5, 5.0]
    out = sample_bilinear(picture, rows, cols).reshape(28, 28)
    np.testing.assert_allclose(out[0, :4], [10, 15, 25, 15], rtol=1e-6)
    assert not out[0, 4:].any() and not out[1:].any()
    # Half a pixel beyond the last row reads half of it: the frame of paper is 0.
    rows[0, 0, 0], cols[0, 0, 0] = 27.5, 3.0
    picture[0, 27 * 28 + 3] = 100
    assert sample_bilinear(picture, rows, cols)[0, 0] == pytest.approx(50)


# ------------------------------------------------------------------ #
# The elastic field
# ------------------------------------------------------------------ #
def test_smoothing_matrix_is_a_gaussian_blur_with_zeros_beyond_the_border():
    rng = np.random.default_rng(0)
    field = rng.uniform(-1, 1, (28, 28))
    G = smoothing_matrix(4.0).astype(np.float64)
    smoothed = G @ field @ G
    radius = 16  # 4 sigma
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / 4.0) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(field, radius)
    for i, j in [(0, 0), (13, 14), (27, 3)]:
        direct = np.sum(padded[i:i + 2 * radius + 1, j:j + 2 * radius + 1] * np.outer(kernel, kernel))
        assert smoothed[i, j] == pytest.approx(direct, abs=1e-6)


def fields(n, sigma, alpha, seed=0):
    """Elastic displacement fields as the augmenter makes them: (2, n, 28, 28), row and column offsets."""
    waves = smooth_waves(sigma)
    middles = draw_wave_weights(n, np.random.default_rng(seed), waves.shape[1], alpha)
    rows, cols = sampling_grid(*still(n), waves, middles)
    unmoved = np.arange(28, dtype=np.float32)
    return np.stack([rows - unmoved[:, None], cols - unmoved[None, :]])


@pytest.mark.parametrize("sigma", [2.0, 4.0, 6.0])
def test_fields_have_the_spread_of_simards_smoothed_noise(sigma):
    """Same variance at every pixel as alpha * G @ uniform noise @ G, analytically and by drawing."""
    G = smoothing_matrix(sigma).astype(np.float64)
    W = smooth_waves(sigma).astype(np.float64)
    simard = np.outer((G ** 2).sum(1), (G ** 2).sum(1)) / 3  # Var of (G N G)[i, j], Var N = 1/3
    ours = np.outer((W ** 2).sum(1), (W ** 2).sum(1)) / 3
    np.testing.assert_allclose(ours, simard, rtol=1e-4)
    assert W.shape[1] < 28
    drawn = fields(2000, sigma, alpha=34.0)
    np.testing.assert_allclose(drawn.std(axis=(0, 1)), 34 * np.sqrt(simard), rtol=0.08)
    assert abs(drawn.mean()) < 0.05 * drawn.std()
    # Smooth: neighbours move nearly together.
    step = np.abs(np.diff(drawn, axis=-1)).mean() / np.abs(drawn).mean()
    assert step < 0.5


def test_fields_are_simards_recipe_written_with_waves():
    """W M W^T equals G (Q M Q^T) G: the middle matrix is noise seen through the waves."""
    G = smoothing_matrix(4.0).astype(np.float64)
    weights, Q = np.linalg.eigh(G)
    order = np.argsort(-np.abs(weights))
    W = smooth_waves(4.0).astype(np.float64)
    k = W.shape[1]
    M = np.random.default_rng(0).uniform(-1, 1, (k, k))
    noise = Q[:, order[:k]] @ M @ Q[:, order[:k]].T  # a noise whose slow-wave part is M
    np.testing.assert_allclose(W @ M @ W.T, G @ noise @ G, atol=1e-5)


# ------------------------------------------------------------------ #
# Settings, config, bad input
# ------------------------------------------------------------------ #
@pytest.mark.parametrize("kind", ["none", "affine", "elastic"])
def test_config_is_json_and_rebuilds_the_same_augmenter(kind, digits):
    augmenter = make_augmenter(kind, rotate=12, sigma=5) if kind != "none" else make_augmenter("none")
    config = json.loads(json.dumps(augmenter.config()))
    again = make_augmenter(**config)
    assert again.config() == augmenter.config() and config["kind"] == kind
    np.testing.assert_array_equal(augmenter(digits, np.random.default_rng(1)), again(digits, np.random.default_rng(1)))


def test_keep_leaves_that_share_of_digits_as_they_were_and_is_repeatable(digits):
    augmenter = make_augmenter("affine", rotate=15, keep=0.5)
    kept = augmenter(digits, np.random.default_rng(3))
    same = np.all(kept == digits, axis=1)
    assert 0.3 < same.mean() < 0.7  # about half of 200 digits left as they were, the rest distorted
    np.testing.assert_array_equal(kept, augmenter(digits, np.random.default_rng(3)))
    assert make_augmenter(**augmenter.config()).keep == 0.5 and "keep" not in make_augmenter("affine").config()


@pytest.mark.parametrize("call, message", [
    (lambda: make_augmenter("wobbly"), "choose one of none, affine, elastic"),
    (lambda: make_augmenter("elastic", twist=3), "unknown setting(s) twist"),
    (lambda: make_augmenter("elastic", sigma=0), "sigma"),
    (lambda: make_augmenter("affine", scale=1.0), "scale"),
    (lambda: make_augmenter("affine", rotate=-5), "rotate"),
    (lambda: make_augmenter("elastic", alpha=float("nan")), "alpha"),
    (lambda: make_augmenter("elastic", alpha="34"), "alpha"),
    (lambda: make_augmenter("affine", keep=1.0), "keep"),
    (lambda: make_augmenter("affine")(np.zeros((3, 100)), np.random.default_rng()), "784 pixels"),
    (lambda: make_augmenter("affine")(np.array([["a"] * 784]), np.random.default_rng()), "numeric"),
])
def test_bad_settings_and_images_get_one_clear_message(call, message):
    with pytest.raises(DataError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call()


# ------------------------------------------------------------------ #
# Prefetching and the figure
# ------------------------------------------------------------------ #
def test_epochs_made_by_the_worker_are_those_made_in_line(digits):
    """The same sets, epoch after epoch, and the generator left in the same state: resumable either way."""
    augmenter = make_augmenter("elastic")
    made = {}
    for background in (False, True):
        rng = np.random.default_rng(5)
        with DistortedEpochs(augmenter, digits, rng, background=background) as epochs:
            made[background] = [epochs.next().copy() for _ in range(3)]
            shared = [block.name for block in epochs._blocks]
        made[background].append(rng.bit_generator.state)
    for name in shared:  # the worker's shared memory is freed
        with pytest.raises(FileNotFoundError):
            SharedMemory(name=name)
    for in_line, by_worker in zip(made[False][:3], made[True][:3]):
        np.testing.assert_array_equal(in_line, by_worker)
    assert made[False][3] == made[True][3]
    # ...and they are augmenter(images, rng) called once per epoch.
    rng = np.random.default_rng(5)
    np.testing.assert_array_equal(made[False][0], augmenter(digits, rng))
    np.testing.assert_array_equal(made[False][1], augmenter(digits, rng))


def test_plot_augmented_draws_originals_beside_distortions(digits, tmp_path):
    path = tmp_path / "augmented.png"
    plot_augmented(digits, make_augmenter("elastic"), np.random.default_rng(0), path, versions=4, limit=5)
    with Image.open(path) as picture:
        assert picture.format == "PNG" and picture.width > 200 and picture.height > 200
    assert [p.name for p in tmp_path.iterdir()] == ["augmented.png"]  # no temporary file left behind
