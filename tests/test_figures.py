"""weights.png stays readable for wide networks (issue #17, point 5)."""
import numpy as np
from PIL import Image

from nnscratch.apps import figures

from .conftest import mlp_model


def digits_inked_in_the_middle(n=20):
    """Digits with ink only in rows and columns 4-23, as MNIST: the border is blank in all of them."""
    images = np.zeros((n, 28, 28), np.uint8)
    images[:, 4:24, 4:24] = np.random.default_rng(0).integers(0, 256, (n, 20, 20))
    return images.reshape(n, 784)


def test_blank_border_pixels_neither_set_the_scale_nor_show():
    used = figures.used_pixels(digits_inked_in_the_middle())
    assert used.sum() == 400
    w = np.full(784, 0.01)
    w[0] = 5.0  # a leftover random weight on a corner pixel that no digit ever inks
    w[14 * 28 + 14] = -0.02  # the strongest weight the network learned
    tile = figures.weight_mosaic(w[:, None], 1, used)
    assert tile[14, 14] == -1.0  # the learned weight sets the scale, not the corner
    assert tile[10, 10] == 0.5 and tile[0, 0] == 0.0


def test_a_wide_layer_shows_the_neurons_with_the_largest_weights_strongest_first():
    W = np.random.default_rng(1).normal(0, 0.01, (784, 512))
    W[:, [300, 7, 450]] *= [30, 20, 10]
    used = figures.used_pixels(digits_inked_in_the_middle())
    shown = figures.strongest_neurons(W, 64, used)
    assert len(shown) == 64 and shown[:3].tolist() == [300, 7, 450]
    norms = np.linalg.norm(W[used], axis=0)
    assert norms[shown].min() >= np.sort(norms)[-64]  # no neuron left out is stronger than one shown


def test_plot_weights_of_a_wide_network_draws_its_64_strongest_neurons_with_a_blank_border(tmp_path, monkeypatch):
    model = mlp_model([784, 512, 10], activation="relu")
    W = model.network.layers[1].W
    W[:, 3] *= 50  # one neuron far stronger than the rest
    drawn = []
    real_mosaic = figures.weight_mosaic
    monkeypatch.setattr(figures, "weight_mosaic", lambda *a, **k: drawn.append(real_mosaic(*a, **k)) or drawn[-1])
    assert figures.plot_weights(model, tmp_path / "weights.png", images=digits_inked_in_the_middle())
    [mosaic] = drawn
    assert mosaic.shape == (8 * 29 - 1, 8 * 29 - 1)  # 8x8 tiles, not the first 64 of 512 in order
    first_tile = mosaic[:28, :28].reshape(784)
    np.testing.assert_allclose(first_tile[14 * 28 + 14], W[14 * 28 + 14, 3] / np.abs(W[:, 3].reshape(28, 28)[4:24, 4:24]).max())
    assert not first_tile.reshape(28, 28)[:4].any()  # the blank border: drawn as 0, white
    assert Image.open(tmp_path / "weights.png").size[0] < 1000
