"""Modern training: optimizers against hand-computed steps, schedules, early
stopping, determinism, optimizer state round trips, and the estimator API."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nnscratch import data
from nnscratch.apps import cli
from nnscratch.core.optimizers import GD, SCHEDULES, Adam, Momentum, Nesterov, cosine, make_optimizer, step_decay
from nnscratch.core.training import TrainConfig, Trainer
from nnscratch.errors import DataError

from .conftest import mlp_model

# --------------------------------------------------------------------------- #
# Optimizers: one or two steps, computed by hand
# --------------------------------------------------------------------------- #
W0 = np.array([1.0, -2.0, 0.5])
G1 = np.array([0.5, -1.0, 0.0])
G2 = np.array([-0.25, 2.0, 1.0])


def two_steps(optimizer, dtype=np.float64):
    w = W0.astype(dtype)
    for g in (G1, G2):
        optimizer.step([w], [g.astype(dtype)])
    return w


def test_gd_step():
    assert np.allclose(two_steps(GD(0.1)), W0 - 0.1 * G1 - 0.1 * G2)


def test_momentum_steps():
    v1 = G1
    v2 = 0.9 * v1 + G2
    assert np.allclose(two_steps(Momentum(0.1, beta=0.9)), W0 - 0.1 * v1 - 0.1 * v2)


def test_nesterov_steps():
    v1 = G1
    v2 = 0.9 * v1 + G2
    expected = W0 - 0.1 * (G1 + 0.9 * v1) - 0.1 * (G2 + 0.9 * v2)
    assert np.allclose(two_steps(Nesterov(0.1, beta=0.9)), expected)


def test_adam_steps_match_the_paper():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w, m, v = W0.copy(), np.zeros(3), np.zeros(3)
    for t, g in enumerate((G1, G2), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    assert np.allclose(two_steps(Adam(lr, beta1=b1, beta2=b2, eps=eps)), w, rtol=1e-12, atol=1e-12)
    # The first step of Adam moves every weight with a gradient by about lr.
    first = W0.copy()
    Adam(lr).step([first], [G1.copy()])
    assert np.allclose(np.abs(first - W0), [lr, lr, 0], atol=1e-7)


@pytest.mark.parametrize("make", [lambda: GD(0.1), lambda: Momentum(0.1), lambda: Nesterov(0.1), lambda: Adam(0.1)])
def test_float32_in_float32_out(make):
    w = two_steps(make(), np.float32)
    assert w.dtype == np.float32
    assert np.allclose(w, two_steps(make()), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["gd", "momentum", "nesterov", "adam"])
def test_optimizer_state_round_trip(name):
    """An optimizer rebuilt from state() continues exactly like the original."""
    rng = np.random.default_rng(0)
    params = [rng.normal(size=(3, 2)).astype(np.float32), rng.normal(size=2).astype(np.float32)]
    grads = [[rng.normal(size=p.shape).astype(np.float32) for p in params] for _ in range(4)]
    original = make_optimizer(name, 0.05)
    for g in grads[:2]:
        original.step(params, g)
    state = {k: [np.array(a) for a in v] if isinstance(v, list) else v  # as a checkpoint file would
             for k, v in original.state().items()}
    resumed = make_optimizer(name, 0.05)
    resumed.load_state(state)
    copy = [p.copy() for p in params]
    for g in grads[2:]:
        original.step(params, g)
        resumed.step(copy, g)
    for a, b in zip(params, copy):
        assert np.array_equal(a, b)
    assert set(resumed.state()) == set(state)


# --------------------------------------------------------------------------- #
# Schedules
# --------------------------------------------------------------------------- #
def test_schedules():
    assert SCHEDULES["constant"](7, 10) == 1.0
    assert [step_decay(e, 20) for e in (0, 9, 10, 14, 15, 19)] == pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert step_decay(12, 100, every=5) == pytest.approx(0.01)
    assert cosine(0, 10) == 1.0
    assert cosine(5, 10) == pytest.approx(0.5)
    assert 0 < cosine(9, 10) < 0.03
    factors = [cosine(e, 30) for e in range(30)]
    assert all(a > b for a, b in zip(factors, factors[1:]))


def test_trainer_follows_the_schedule():
    X, y = tiny_digits(64)
    history = mlp_model([784, 8, 10], epochs=4, lr=0.01, schedule="cosine", batch_size=32).fit(X, y).history_
    assert history.lr == pytest.approx([0.01 * cosine(e, 4) for e in range(4)])


# --------------------------------------------------------------------------- #
# Training loop
# --------------------------------------------------------------------------- #
def tiny_digits(n=600, offset=0):
    """``n`` digits of the bundled sample, in a fixed shuffled order."""
    sample = data.load_sample()
    rows = np.random.default_rng(0).permutation(len(sample))[offset:offset + n]
    return sample.images[rows], sample.labels[rows]


class Snapshots:
    """A callback keeping a copy of the weights after every epoch."""

    def __init__(self):
        self.weights = []

    def on_epoch_end(self, trainer):
        self.weights.append([p.copy() for p in trainer.network.parameters()])


def test_early_stopping_restores_the_best_weights():
    X, _ = tiny_digits(400)
    y = np.random.default_rng(1).integers(0, 10, len(X))  # random labels: validation accuracy wanders
    model = mlp_model([784, 32, 10], activation="relu")
    snapshots = Snapshots()
    trainer = Trainer(model.network, X, y, TrainConfig(epochs=60, lr=0.01, batch_size=50, validation_split=0.25,
                                                       patience=3), callbacks=[snapshots])
    history = trainer.run()
    assert trainer.stop and trainer.epoch < 60, "early stopping never triggered"
    best = int(np.argmax(history.val_accuracy))  # the first epoch with the best validation accuracy
    assert trainer.epoch - 1 - best == 3  # it waited exactly `patience` epochs
    for p, kept in zip(model.network.parameters(), snapshots.weights[best]):
        assert np.array_equal(p, kept)
    assert not all(np.array_equal(p, last) for p, last in zip(model.network.parameters(), snapshots.weights[-1]))


def test_patience_alone_holds_out_a_tenth_in_the_api_too():
    """The same policy as the command line: early stopping needs something to watch."""
    config = TrainConfig(patience=2)
    assert config.validation_split == 0.1
    assert TrainConfig(optimizer="gd").batch_size is None and TrainConfig(optimizer="sgd").batch_size == 128


def test_history_records_accuracies_per_epoch():
    X, y = tiny_digits(300)
    history = mlp_model([784, 16, 10], epochs=3, validation_split=0.2).fit(X, y).history_
    record = history.as_dict()
    for key in ("train_cost", "train_accuracy", "val_cost", "val_accuracy", "lr", "seconds"):
        assert len(record[key]) == 3, key
    assert all(0 <= a <= 1 for a in record["train_accuracy"] + record["val_accuracy"])


@pytest.mark.parametrize("optimizer", ["gd", "sgd", "momentum", "nesterov", "adam"])
def test_every_optimizer_learns(optimizer):
    X, y = tiny_digits(500)
    lr = {"gd": 0.5, "sgd": 0.1, "momentum": 0.05, "nesterov": 0.05, "adam": 3e-3}[optimizer]
    batch = None if optimizer == "gd" else 50
    model = mlp_model([784, 32, 10], activation="tanh", epochs=8, optimizer=optimizer, lr=lr, batch_size=batch)
    history = model.fit(X, y).history_
    assert history.train_cost[-1] < 0.6 * history.train_cost[0]
    assert model.score(*tiny_digits(300, offset=1000)) > 0.6


def test_same_seed_same_weights_different_seed_different_weights():
    X, y = tiny_digits(200)

    def train(seed):
        model = mlp_model([784, 16, 16, 10], activation="relu", dropout=0.2, seed=seed, epochs=2, batch_size=32,
                          validation_split=0.1)
        return model.fit(X, y).network.parameters()

    a, b, c = train(3), train(3), train(4)
    assert all(np.array_equal(p, q) for p, q in zip(a, b))
    assert not all(np.array_equal(p, q) for p, q in zip(a, c))


# --------------------------------------------------------------------------- #
# The estimator API and the CLI's default preset
# --------------------------------------------------------------------------- #
def test_estimator_api():
    X, y = tiny_digits(2000)
    X_test, y_test = tiny_digits(500, offset=4500)
    model = mlp_model([784, 256, 128, 10], activation="relu", epochs=3, optimizer="adam", lr=1e-3, batch_size=128)
    assert model.fit(X, y) is model and len(model.history_.train_cost) == 3
    assert model.get_params()["lr"] == 1e-3 and model.set_params(lr=0.5).lr == 0.5
    proba = model.predict_proba(X_test)
    assert proba.shape == (500, 10) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(model.predict(X_test), proba.argmax(axis=1))
    assert model.score(X_test, y_test) > 0.85
    assert model.predict(X_test[0]).shape == (1,)  # a single digit as a flat row
    with pytest.raises(DataError, match="do not fit"):
        model.predict(np.zeros((2, 783)))
    with pytest.raises(DataError, match="lr"):
        model.set_params(lr=-1).fit(X, y)
    with pytest.raises(DataError, match="no setting"):
        model.set_params(learning_rate=1)


def test_default_preset_on_the_bundled_sample(tmp_path):
    """``nnscratch train`` with no flags: the blog's network trained well, in seconds."""
    assert cli.main(["train", "--out", str(tmp_path / "run")]) == 0
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test_accuracy"] >= 0.88
    assert len(metrics["history"]["train_accuracy"]) == metrics["epochs"]
    assert (tmp_path / "run" / "cost.png").stat().st_size > 0
    assert math.isfinite(metrics["final_cost"])
