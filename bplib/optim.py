"""Weight updates: the update rules as functions, and optimiser objects that use them.

Every update function is pure by default (it returns new arrays and leaves its
arguments alone): its body is the rule as the chapter writes it. With the
keyword ``inplace=True`` it runs an in-place twin instead, which writes into the
arrays it was given and returns them; the optimiser objects use that, so that a
training step allocates no new parameter or state arrays. The shapes are
checked before either runs (``@checked``, see ``bplib/_validate.py``).

Names: ``w`` is any parameter array (a weight matrix ``W``, a bias ``b``, ...)
and ``dw`` its gradient, the same shape; inside a model the gradient of ``W``
is ``dW``. The state is ``v`` (velocity), ``s`` and ``m`` (running means).

Defaults of the optimiser objects follow Keras 3 (for example ``eps = 1e-7``),
so that the Keras chapter compares like with like.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

from ._validate import (
    adam_update_args,
    checked,
    momentum_update_args,
    rmsprop_update_args,
    sgd_update_args,
)

__all__ = [
    "sgd_update",
    "sgd_momentum_update",
    "nesterov_update",
    "rmsprop_update",
    "adam_update",
    "Optimizer",
    "SGD",
    "RMSProp",
    "Adam",
]


# --------------------------------------------------------------------------- in place
# The same rules, written into the arrays they are given: what ``inplace=True``
# runs, so that an optimiser's step allocates no new parameter or state arrays.
# tests/test_optim.py checks that each twin agrees with the pure rule below.


def _sgd_in_place(w, dw, lr):
    w -= lr * dw
    return w


def _momentum_in_place(w, dw, v, lr, momentum):
    v *= momentum
    v -= lr * dw
    w += v
    return w, v


def _nesterov_in_place(w, dw, v, lr, momentum):
    v *= momentum
    v -= lr * dw
    w += momentum * v - lr * dw
    return w, v


def _rmsprop_in_place(w, dw, s, lr, rho, eps):
    s *= rho
    s += (1 - rho) * dw * dw
    w -= lr * dw / (np.sqrt(s) + eps)
    return w, s


def _adam_in_place(w, dw, m, v, t, lr, beta1, beta2, eps):
    m *= beta1
    m += (1 - beta1) * dw
    v *= beta2
    v += (1 - beta2) * dw * dw
    w -= lr * (m / (1 - beta1**t)) / (np.sqrt(v / (1 - beta2**t)) + eps)
    return w, m, v


# --------------------------------------------------------------------------- the rules


@checked(sgd_update_args, inplace=_sgd_in_place)
def sgd_update(w, dw, lr: float):
    """Plain gradient descent: ``w <- w - lr * dw``."""
    return w - lr * dw


@checked(momentum_update_args, inplace=_momentum_in_place)
def sgd_momentum_update(w, dw, v, lr: float, momentum: float):
    """Gradient descent with momentum.

    ``v <- momentum * v - lr * dw``, then ``w <- w + v``. Returns ``(w, v)``.
    """
    v = momentum * v - lr * dw
    return w + v, v


@checked(momentum_update_args, inplace=_nesterov_in_place)
def nesterov_update(w, dw, v, lr: float, momentum: float):
    """Nesterov momentum in the form Keras uses.

    ``v <- momentum * v - lr * dw``, then ``w <- w + momentum * v - lr * dw``:
    the step looks ahead along the new velocity. Returns ``(w, v)``.
    """
    v = momentum * v - lr * dw
    return w + momentum * v - lr * dw, v


@checked(rmsprop_update_args, inplace=_rmsprop_in_place)
def rmsprop_update(w, dw, s, lr: float, rho: float = 0.9, eps: float = 1e-7):
    """RMSProp: a running mean of squared gradients scales each step.

    ``s <- rho * s + (1 - rho) * dw**2``, then ``w <- w - lr * dw / (sqrt(s) + eps)``.
    Returns ``(w, s)``.
    """
    s = rho * s + (1 - rho) * dw**2
    return w - lr * dw / (np.sqrt(s) + eps), s


@checked(adam_update_args, inplace=_adam_in_place)
def adam_update(w, dw, m, v, t: int, lr: float, beta1: float, beta2: float, eps: float):
    """Adam (Kingma and Ba, 2014), with bias correction; ``t`` counts from 1.

    ``m <- beta1 m + (1 - beta1) dw``; ``v <- beta2 v + (1 - beta2) dw**2``;
    ``m_hat = m / (1 - beta1**t)``; ``v_hat = v / (1 - beta2**t)``;
    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps)``. Returns ``(w, m, v)``.
    """
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


class Optimizer:
    """Base class: ``step(params, grads)`` updates every array of ``params`` in place.

    ``params`` and ``grads`` have the same keys: ``grads[name]`` is the gradient
    of ``params[name]`` (for a :class:`~bplib.model.Sequential`, ``grads["0.W"]``
    is the ``dW`` of layer 0). Inside, each parameter is a generic ``w`` with
    gradient ``dw``. State (velocities, moments) is kept per parameter name, so
    the same optimiser must always be given the same names.
    """

    def __init__(self, lr: float) -> None:
        if not lr > 0:
            raise ValueError(f"the learning rate must be positive, got lr={lr}")
        self.lr = lr
        self.state: dict[str, dict[str, np.ndarray]] = {}
        self.iterations = 0

    def reset(self) -> None:
        """Forget all state, as if no step had been taken."""
        self.state.clear()
        self.iterations = 0

    def _slots(self, name: str, w: np.ndarray, *names: str) -> dict[str, np.ndarray]:
        slots = self.state.get(name)
        if slots is None:
            slots = self.state[name] = {n: np.zeros_like(w) for n in names}
        return slots

    def step(self, params: MutableMapping[str, np.ndarray], grads) -> None:
        self.iterations += 1
        for name, w in params.items():
            dw = grads[name]
            if dw.shape != w.shape:
                raise ValueError(
                    f"gradient {name!r} has shape {dw.shape} but parameter has shape {w.shape}"
                )
            self._update(name, w, dw)

    def _update(self, name: str, w: np.ndarray, dw: np.ndarray) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        hidden = ("state", "iterations")
        args = ", ".join(f"{k}={v}" for k, v in vars(self).items() if k not in hidden)
        return f"{type(self).__name__}({args})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False) -> None:
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        self.momentum = momentum
        self.nesterov = nesterov

    def _update(self, name, w, dw):
        if self.momentum == 0 and not self.nesterov:
            sgd_update(w, dw, self.lr, inplace=True)
            return
        v = self._slots(name, w, "v")["v"]
        rule = nesterov_update if self.nesterov else sgd_momentum_update
        rule(w, dw, v, self.lr, self.momentum, inplace=True)


class RMSProp(Optimizer):
    """RMSProp (Hinton's lecture 6e) with Keras's defaults."""

    def __init__(self, lr: float = 0.001, rho: float = 0.9, eps: float = 1e-7) -> None:
        super().__init__(lr)
        self.rho = rho
        self.eps = eps

    def _update(self, name, w, dw):
        s = self._slots(name, w, "s")["s"]
        rmsprop_update(w, dw, s, self.lr, self.rho, self.eps, inplace=True)


class Adam(Optimizer):
    """Adam (Kingma and Ba) with Keras's defaults, and Algorithm 1 of the paper.

    One difference from Keras 3 remains, in where ``eps`` goes. This class (through
    :func:`adam_update`) adds it to the bias-corrected ``sqrt(v_hat)``, as the paper's
    Algorithm 1 does; Keras adds it to the uncorrected ``sqrt(v)`` and corrects the
    step size instead (the paper's "epsilon hat" form). Keras's step ``t`` is
    therefore exactly :func:`adam_update` with ``eps / sqrt(1 - beta2**t)``: 31.6
    times ``eps`` at ``t = 1``, tending to ``eps``. The two agree to within rounding
    whenever ``sqrt(v_hat)`` is much larger than ``eps`` (any gradient above about
    1e-5 with the default ``eps = 1e-7``), and differ where gradients are tiny.
    """

    def __init__(
        self, lr: float = 0.001, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-7
    ) -> None:
        super().__init__(lr)
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps

    def _update(self, name, w, dw):
        slots = self._slots(name, w, "m", "v")
        adam_update(
            w, dw, slots["m"], slots["v"], self.iterations, self.lr,
            self.beta1, self.beta2, self.eps, inplace=True,
        )
