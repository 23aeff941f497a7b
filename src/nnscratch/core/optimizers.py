"""Step 4 of the pipeline: how the weights move, given their gradients.

Each optimizer updates parameter arrays *in place* from their gradients.
``GD`` is the blog's rule, ``w -= lr * grad``; whether it is full-batch
gradient descent or stochastic (mini-batch) gradient descent depends only on
how many digits the gradient was averaged over, which is the training loop's
business. The others keep a little memory of past gradients:

* ``Momentum``: a velocity ``v = beta * v + grad``; step ``w -= lr * v``.
* ``Nesterov``: the same velocity, but steps with a look-ahead
  ``grad + beta * v`` (Sutskever et al., 2013, in the form PyTorch uses).
* ``Adam``: running means of the gradient and of its square, bias-corrected;
  each weight's step is scaled by its own gradient history (Kingma & Ba, 2015).

Learning-rate schedules are plain functions of the epoch, at the bottom.
"""
from __future__ import annotations

import math

import numpy as np


class Optimizer:
    """Updates parameters in place; ``state()`` is what a resumed run needs."""

    name = "gd"

    def __init__(self, lr: float):
        self.lr = lr

    def step(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    def state(self) -> dict[str, np.ndarray]:
        """Arrays the optimizer remembers between steps (empty for plain GD)."""
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Take back what :meth:`state` gave (nothing to do for plain GD)."""

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr:g})"


class GD(Optimizer):
    """Plain gradient descent: ``w -= lr * grad``."""

    def step(self, params, grads):
        for p, g in zip(params, grads):
            p -= np.asarray(self.lr, p.dtype) * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v = beta * v + grad; w -= lr * v``."""

    name = "momentum"
    nesterov = False

    def __init__(self, lr: float, beta: float = 0.9):
        super().__init__(lr)
        self.beta = beta
        self.velocity: list[np.ndarray] | None = None

    def step(self, params, grads):
        if self.velocity is None:
            self.velocity = [np.zeros_like(p) for p in params]
        lr, beta = (np.asarray(v, params[0].dtype) for v in (self.lr, self.beta))
        for p, g, v in zip(params, grads, self.velocity):
            v *= beta
            v += g
            # Nesterov steps along where the velocity is about to take it.
            p -= lr * (g + beta * v) if self.nesterov else lr * v

    def state(self):
        return {f"velocity{i}": v for i, v in enumerate(self.velocity or [])}

    def load_state(self, state):
        if state:
            self.velocity = [np.array(state[f"velocity{i}"]) for i in range(len(state))]


class Nesterov(Momentum):
    """Momentum with a look-ahead: ``v = beta * v + grad; w -= lr * (grad + beta * v)``."""

    name = "nesterov"
    nesterov = True


class Adam(Optimizer):
    """Adam: per-weight steps from running means of the gradient and its square.

    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``, and
    ``w -= lr * m_hat / (sqrt(v_hat) + eps)`` where the hats undo the bias
    of starting ``m`` and ``v`` at zero.
    """

    name = "adam"

    def __init__(self, lr: float = 1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        super().__init__(lr)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m: list[np.ndarray] | None = None
        self.v: list[np.ndarray] | None = None
        self._scratch: list[np.ndarray] | None = None  # work space, so that a step allocates nothing

    def step(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        if self._scratch is None:
            self._scratch = [np.empty_like(p) for p in params]
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Fold both bias corrections into one step size (as in the Adam paper, sec. 2).
        step = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps = self.eps * math.sqrt(1 - b2 ** self.t)
        for p, g, m, v, s in zip(params, grads, self.m, self.v, self._scratch):
            f = p.dtype.type  # keep float32 arrays float32: no float64 detours
            # m += (1 - b1) (g - m): move the running mean a little towards g.
            np.subtract(g, m, out=s)
            s *= f(1 - b1)
            m += s
            # v += (1 - b2) (g^2 - v): the same for the running mean of g^2.
            np.square(g, out=s)
            s -= v
            s *= f(1 - b2)
            v += s
            # w -= step * m / (sqrt(v) + eps)
            np.sqrt(v, out=s)
            s += f(eps)
            np.divide(m, s, out=s)
            s *= f(step)
            p -= s

    def state(self):
        if self.m is None:
            return {}
        arrays = {f"m{i}": m for i, m in enumerate(self.m)}
        arrays.update({f"v{i}": v for i, v in enumerate(self.v)})
        arrays["t"] = np.array(self.t)
        return arrays

    def load_state(self, state):
        if state:
            n = (len(state) - 1) // 2
            self.m = [np.array(state[f"m{i}"]) for i in range(n)]
            self.v = [np.array(state[f"v{i}"]) for i in range(n)]
            self.t = int(state["t"])


OPTIMIZERS = {"gd": GD, "sgd": GD, "momentum": Momentum, "nesterov": Nesterov, "adam": Adam}


def make_optimizer(name: str, lr: float) -> Optimizer:
    """An optimizer by its CLI name (``gd`` and ``sgd`` are the same update rule)."""
    return OPTIMIZERS[name](lr)


# --------------------------------------------------------------------------- #
# Learning-rate schedules: the factor applied to the base rate at each epoch.
# --------------------------------------------------------------------------- #
def constant(epoch: int, epochs: int) -> float:
    """Always the base learning rate."""
    return 1.0


def step_decay(epoch: int, epochs: int, every: int | None = None, factor: float = 0.1) -> float:
    """Divide the rate by 10 at 50 % and again at 75 % of training (or every ``every`` epochs)."""
    if every:
        return factor ** (epoch // every)
    return factor ** ((epoch >= epochs // 2) + (epoch >= (3 * epochs) // 4))


def cosine(epoch: int, epochs: int) -> float:
    """Half a cosine from 1 down to 0 over the run (Loshchilov & Hutter, 2017)."""
    return 0.5 * (1 + math.cos(math.pi * epoch / max(1, epochs)))


SCHEDULES = {"constant": constant, "step": step_decay, "cosine": cosine}
