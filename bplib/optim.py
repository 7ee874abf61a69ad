"""Weight updates: the update rules as functions, and optimiser objects that use them.

Every update function is pure by default (it returns new arrays and leaves its
arguments alone). With the keyword ``inplace=True`` it writes into the arrays
it was given and returns them, which is what the optimiser objects do so that
a training step allocates nothing.

Defaults of the optimiser objects follow Keras 3 (for example ``eps = 1e-7``),
so that the Keras chapter compares like with like.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import numpy as np

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


def _same_shape(w: np.ndarray, **others: np.ndarray) -> None:
    for name, a in others.items():
        if np.shape(a) != np.shape(w):
            raise ValueError(
                f"{name} has shape {np.shape(a)} but w has shape {np.shape(w)}; they must match"
            )


def sgd_update(w, dw, lr: float, *, inplace: bool = False):
    """Plain gradient descent: ``w <- w - lr * dw``."""
    _same_shape(w, dw=dw)
    if inplace:
        w -= lr * dw
        return w
    return w - lr * dw


def sgd_momentum_update(w, dw, v, lr: float, momentum: float, *, inplace: bool = False):
    """Gradient descent with momentum.

    ``v <- momentum * v - lr * dw``, then ``w <- w + v``. Returns ``(w, v)``.
    """
    _same_shape(w, dw=dw, v=v)
    if inplace:
        v *= momentum
        v -= lr * dw
        w += v
        return w, v
    v = momentum * v - lr * dw
    return w + v, v


def nesterov_update(w, dw, v, lr: float, momentum: float, *, inplace: bool = False):
    """Nesterov momentum in the form Keras uses.

    ``v <- momentum * v - lr * dw``, then ``w <- w + momentum * v - lr * dw``:
    the step looks ahead along the new velocity. Returns ``(w, v)``.
    """
    _same_shape(w, dw=dw, v=v)
    if inplace:
        v *= momentum
        v -= lr * dw
        w += momentum * v - lr * dw
        return w, v
    v = momentum * v - lr * dw
    return w + momentum * v - lr * dw, v


def rmsprop_update(w, dw, s, lr: float, rho: float = 0.9, eps: float = 1e-7, *, inplace=False):
    """RMSProp: a running mean of squared gradients scales each step.

    ``s <- rho * s + (1 - rho) * dw**2``, then ``w <- w - lr * dw / (sqrt(s) + eps)``.
    Returns ``(w, s)``.
    """
    _same_shape(w, dw=dw, s=s)
    if inplace:
        s *= rho
        s += (1 - rho) * dw * dw
        w -= lr * dw / (np.sqrt(s) + eps)
        return w, s
    s = rho * s + (1 - rho) * dw * dw
    return w - lr * dw / (np.sqrt(s) + eps), s


def adam_update(
    w, dw, m, v, t: int, lr: float, beta1: float, beta2: float, eps: float, *, inplace=False
):
    """Adam (Kingma and Ba, 2014), with bias correction; ``t`` counts from 1.

    ``m <- beta1 m + (1 - beta1) dw``; ``v <- beta2 v + (1 - beta2) dw**2``;
    ``m_hat = m / (1 - beta1**t)``; ``v_hat = v / (1 - beta2**t)``;
    ``w <- w - lr * m_hat / (sqrt(v_hat) + eps)``. Returns ``(w, m, v)``.
    """
    _same_shape(w, dw=dw, m=m, v=v)
    if int(t) < 1:
        raise ValueError(f"t counts the steps from 1, got t={t}")
    c1 = 1 - beta1**t
    c2 = 1 - beta2**t
    if inplace:
        m *= beta1
        m += (1 - beta1) * dw
        v *= beta2
        v += (1 - beta2) * dw * dw
        w -= lr * (m / c1) / (np.sqrt(v / c2) + eps)
        return w, m, v
    m = beta1 * m + (1 - beta1) * dw
    v = beta2 * v + (1 - beta2) * dw * dw
    return w - lr * (m / c1) / (np.sqrt(v / c2) + eps), m, v


class Optimizer:
    """Base class: ``step(params, grads)`` updates every array of ``params`` in place.

    State (velocities, moments) is kept per parameter name, so the same
    optimiser must always be given the same names.
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
    """Adam (Kingma and Ba) with Keras's defaults."""

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
