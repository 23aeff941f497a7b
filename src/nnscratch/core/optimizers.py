"""How the weights move, given their gradients: the optimizers.

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

from . import kernels


class Optimizer:
    """Updates parameters in place; ``state()`` is what a resumed run needs.

    ``weight_decay`` is L2 regularisation: the cost gains
    ``weight_decay / 2 * sum(w**2)`` over the parameters marked as weights
    (``decays``: never biases or normalisation parameters), so their
    gradient gains ``weight_decay * w`` before the update rule sees it. It
    pulls every weight a little towards zero at each step, which is where the
    name comes from. Doing it here, not in the layers, means every path that
    computes gradients (the layers, the fused full-batch step) gets it alike.
    """

    def __init__(self, lr: float, weight_decay: float = 0.0):
        self.lr, self.weight_decay = lr, weight_decay

    def step(self, params: list[np.ndarray], grads: list[np.ndarray], decays: list[bool] | None = None) -> None:
        """One update of ``params`` from ``grads`` (``decays``: which ones weight decay applies to)."""
        if self.weight_decay:
            for p, g, decays_p in zip(params, grads, decays or [True] * len(params)):
                if decays_p:
                    g += p.dtype.type(self.weight_decay) * p  # the gradient of wd/2 * w**2
        self.update(params, grads)

    def update(self, params: list[np.ndarray], grads: list[np.ndarray]) -> None:  # pragma: no cover
        raise NotImplementedError

    def state(self) -> dict[str, list[np.ndarray] | int]:
        """What the optimizer remembers between steps: lists of arrays (one per parameter) and counters."""
        return {}

    def load_state(self, state: dict) -> None:
        """Take back what :meth:`state` gave (plain GD remembers nothing)."""

    def __repr__(self):
        return f"{type(self).__name__}(lr={self.lr:g})"


class GD(Optimizer):
    """Plain gradient descent: ``w -= lr * grad``."""

    def update(self, params, grads):
        for p, g in zip(params, grads):
            p -= np.asarray(self.lr, p.dtype) * g


class Momentum(Optimizer):
    """Heavy-ball momentum: ``v = beta * v + grad; w -= lr * v``."""

    nesterov = False

    def __init__(self, lr: float, weight_decay: float = 0.0, beta: float = 0.9):
        super().__init__(lr, weight_decay)
        self.beta = beta
        self.velocity: list[np.ndarray] | None = None

    def update(self, params, grads):
        if self.velocity is None:
            self.velocity = [np.zeros_like(p) for p in params]
        lr, beta = (np.asarray(v, params[0].dtype) for v in (self.lr, self.beta))
        for p, g, v in zip(params, grads, self.velocity):
            v *= beta
            v += g
            # Nesterov steps along where the velocity is about to take it.
            p -= lr * (g + beta * v) if self.nesterov else lr * v

    def state(self):
        return {} if self.velocity is None else {"velocity": self.velocity}

    def load_state(self, state):
        if state:
            self.velocity = [np.array(v) for v in state["velocity"]]


class Nesterov(Momentum):
    """Momentum with a look-ahead: ``v = beta * v + grad; w -= lr * (grad + beta * v)``."""

    nesterov = True


class Adam(Optimizer):
    """Adam: per-weight steps from running means of the gradient and its square.

    ``m = b1 m + (1-b1) g``, ``v = b2 v + (1-b2) g^2``, and
    ``w -= lr * m_hat / (sqrt(v_hat) + eps)`` where the hats undo the bias
    of starting ``m`` and ``v`` at zero. Weight decay here is the classic
    L2 term added to the gradient (not AdamW's decoupled decay).
    """

    def __init__(self, lr: float = 1e-3, weight_decay: float = 0.0, beta1: float = 0.9, beta2: float = 0.999,
                 eps: float = 1e-8):
        super().__init__(lr, weight_decay)
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.t = 0
        self.m: list[np.ndarray] | None = None
        self.v: list[np.ndarray] | None = None
        self._scratch: list[np.ndarray] | None = None  # work space, so that a step allocates nothing
        self._compiled: bool | None = None  # does the compiled one-pass update apply (see _one_pass)?

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.t += 1
        b1, b2 = self.beta1, self.beta2
        # Fold both bias corrections into one step size (as in the Adam paper, sec. 2).
        step = self.lr * math.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        eps = self.eps * math.sqrt(1 - b2 ** self.t)
        if self._compiled is None:  # decided once: the arrays keep their dtype and layout from step to step
            self._compiled = _one_pass(params, grads, self.m, self.v)
        if self._compiled:
            # The same lines as below, in one pass over memory (core/kernels/adam.py).
            from .kernels.adam import adam_update

            adam_update(params, grads, self.m, self.v, b1, b2, step, eps)
            return
        if self._scratch is None:  # (only the NumPy lines need it)
            self._scratch = [np.empty_like(p) for p in params]
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
        return {} if self.m is None else {"m": self.m, "v": self.v, "t": self.t}

    def load_state(self, state):
        if state:
            self.m = [np.array(m) for m in state["m"]]
            self.v = [np.array(v) for v in state["v"]]
            self.t = int(state["t"])
            self._compiled = None  # new arrays: decided again at the next step


def _one_pass(*groups) -> bool:
    """Can the compiled kernel update these arrays: kernels on, all contiguous float arrays of one dtype?"""
    arrays = [a for group in groups for a in group]
    return (kernels.enabled() and len({a.dtype for a in arrays}) == 1
            and arrays[0].dtype in (np.float32, np.float64) and all(a.flags.c_contiguous for a in arrays))


OPTIMIZERS = {"gd": GD, "sgd": GD, "momentum": Momentum, "nesterov": Nesterov, "adam": Adam}


def make_optimizer(name: str, lr: float, weight_decay: float = 0.0) -> Optimizer:
    """An optimizer by its CLI name (``gd`` and ``sgd`` are the same update rule)."""
    return OPTIMIZERS[name](lr, weight_decay)


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
