"""The training loop and the blog's seed preset."""
import numpy as np

from nnscratch import MLP
from nnscratch.apps.experiment import build, settings_for
from nnscratch.core.training import Trainer

from .conftest import DIGITS_42K, need


def test_seed_preset_is_the_blogs_network():
    settings = settings_for("seed")
    model, config = build(settings, 784)
    assert model.sizes == [784, 16, 16, 10] and model.activation == "sigmoid"
    assert model.input_scale == 1.0  # raw 0-255 pixels
    assert (config.optimizer, config.lr, config.batch_size, config.epochs) == ("gd", 0.8, None, 500)
    for p in model.parameters():  # weights and biases uniform in [-0.5, 0.5)
        assert p.min() >= -0.5 and p.max() < 0.5
    assert abs(model.parameters()[0].std() - 12 ** -0.5) < 0.01  # the std of U[-0.5, 0.5)


def test_seed_preset_learns_on_a_slice_without_warnings(sample_split, recwarn):
    settings = settings_for("seed", epochs=100)
    model, config = build(settings, 784)
    trainer = Trainer(model, sample_split.train.images, sample_split.train.labels, config)
    history = trainer.run()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]
    assert history.cost[-1] < 0.6 * history.cost[0]
    assert model.score(sample_split.test.images, sample_split.test.labels) > 0.65


def test_same_seed_same_weights(sample_split):
    def weights(seed):
        model = MLP([784, 16, 10], seed=seed)
        model.fit(sample_split.train.images[:500], sample_split.train.labels[:500], epochs=2, seed=seed)
        return model.parameters()
    for a, b in zip(weights(3), weights(3)):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(weights(3)[0], weights(4)[0])


def test_seed_preset_lands_where_the_blog_did():
    """The blog's whole experiment: 500 epochs on the 42k CSV (about 30 s)."""
    from nnscratch import data

    split = data.load(need(DIGITS_42K))
    model, config = build(settings_for("seed"), 784)
    Trainer(model, split.train.images, split.train.labels, config).run()
    train = model.score(split.train.images, split.train.labels)
    test = model.score(split.test.images, split.test.labels)
    assert 0.855 <= train <= 0.90 and 0.835 <= test <= 0.88, (train, test)
