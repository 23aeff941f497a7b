"""The training loop and the blog's seed preset."""
import numpy as np

from nnscratch.apps.experiment import build, settings_for

from .conftest import DIGITS_42K, mlp_model, need, widths


def test_seed_preset_is_the_blogs_network():
    settings = settings_for("seed")
    model = build(settings, 784)
    config = model.train_config()
    assert widths(model) == [784, 16, 16, 10]
    assert [type(layer).__name__ for layer in model.network.layers] == [
        "Rescale", "Dense", "Sigmoid", "Dense", "Sigmoid", "Dense"]
    assert model.network.layers[0].scale == 1.0  # raw 0-255 pixels
    assert (config.optimizer, config.lr, config.batch_size, config.epochs) == ("gd", 0.8, None, 500)
    for p in model.network.parameters():  # weights and biases uniform in [-0.5, 0.5)
        assert p.min() >= -0.5 and p.max() < 0.5
    assert abs(model.network.parameters()[0].std() - 12 ** -0.5) < 0.01  # the std of U[-0.5, 0.5)


def test_seed_preset_learns_on_a_slice_without_warnings(sample_split, recwarn):
    settings = settings_for("seed", epochs=100)
    model = build(settings, 784).fit(sample_split.train.images, sample_split.train.labels)
    history = model.history_
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert history.train_cost[-1] < 0.6 * history.train_cost[0]
    assert model.score(sample_split.test.images, sample_split.test.labels) > 0.65


def test_same_seed_same_weights(sample_split):
    def weights(seed):
        model = mlp_model([784, 16, 10], seed=seed, epochs=2)
        model.fit(sample_split.train.images[:500], sample_split.train.labels[:500])
        return model.network.parameters()
    for a, b in zip(weights(3), weights(3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(3)[0], weights(4)[0])


def test_seed_preset_lands_where_the_blog_did():
    """The blog's whole experiment: 500 epochs on the 42k CSV (about 30 s)."""
    from nnscratch import data

    split = data.load(need(DIGITS_42K))
    model = build(settings_for("seed"), 784).fit(split.train.images, split.train.labels)
    train = model.score(split.train.images, split.train.labels)
    test = model.score(split.test.images, split.test.labels)
    assert 0.855 <= train <= 0.90 and 0.835 <= test <= 0.88, (train, test)


def test_layers_flag_gives_the_seed_presets_very_weights(tmp_path):
    """``--preset seed --layers 'dense 16, sigmoid, dense 16, sigmoid'`` is ``--preset seed``, weight for weight."""
    from nnscratch.apps import cli
    from nnscratch.files.modelfile import read_model_file

    runs = []
    for flags in ([], ["--layers", "dense 16, sigmoid, dense 16, sigmoid"]):
        out = tmp_path / str(len(runs))
        assert cli.main(["train", "--preset", "seed", "--epochs", "30", "--out", str(out), *flags]) == 0
        runs.append(read_model_file(out)[1])
    assert runs[0].keys() == runs[1].keys()
    for key in runs[0]:
        assert np.array_equal(runs[0][key], runs[1][key]), key
