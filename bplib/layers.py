"""Layer objects: each wraps one forward/backward pair of :mod:`bplib.functional`.

A layer remembers the cache of its last ``forward`` call, so that ``backward``
needs only the upstream gradient ``dout``. Layers with parameters keep them in
``params`` (name -> array) and, after ``backward``, their gradients in
``grads`` (the same names). Batch-first row vectors: ``x`` has shape (N, D).
"""

from __future__ import annotations

import numpy as np

from . import functional as F
from ._validate import as_float_array

__all__ = ["Layer", "Linear", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "init_weights"]

_INITS = ("he", "glorot", "normal")


class Layer:
    """Base class: ``forward(x) -> out`` and ``backward(dout) -> dx``.

    Attributes
    ----------
    params : dict[str, ndarray]
        The layer's parameters (empty for activations).
    grads : dict[str, ndarray]
        Gradients of the loss with respect to ``params``, filled by ``backward``.
    trainable : bool
        ``False`` freezes the layer: training leaves ``params`` unchanged, but
        gradients still flow through the layer to the layers before it.
    name : str
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__.lower()
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.trainable = True
        self._cache = None

    def forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dout: np.ndarray, input_grad: bool = True) -> np.ndarray | None:
        """Gradient with respect to the input; ``input_grad=False`` may skip it (returns None)."""
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(
                f"{self.name}: backward() was called before forward(); "
                "run forward(x) first so that the layer has a cache"
            )
        return self._cache

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _make_rng(rng) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, (int, np.integer)):
        return np.random.default_rng(rng)
    raise TypeError(f"rng must be an int seed or a numpy Generator, got {type(rng).__name__}")


def _float_dtype(dtype) -> np.dtype:
    dt = np.dtype(dtype)
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def init_weights(
    in_features: int, out_features: int, init: str, rng: np.random.Generator, scale: float
) -> np.ndarray:
    """Initial ``W`` of shape (in, out), drawn in float64.

    He: ``N(0, 2 / in)``; Glorot: ``U(-a, a)`` with ``a = sqrt(6 / (in + out))``;
    normal: ``N(0, scale**2)``.
    """
    shape = (in_features, out_features)
    if init == "he":
        return rng.standard_normal(shape) * np.sqrt(2.0 / in_features)
    if init == "glorot":
        a = np.sqrt(6.0 / (in_features + out_features))
        return rng.uniform(-a, a, size=shape)
    if init == "normal":
        return rng.standard_normal(shape) * scale
    raise ValueError(f"init must be one of {_INITS}, got {init!r}")


class Linear(Layer):
    """Fully connected layer ``out = x @ W + b``.

    Parameters
    ----------
    in_features, out_features : int
        ``W`` has shape (in_features, out_features) and ``b`` (out_features,).
    init : {"he", "glorot", "normal"}
        How ``W`` is drawn (see :func:`init_weights`); ``b`` starts at zero.
    rng : int, numpy.random.Generator or None
        Seed or generator for the initial weights.
    dtype : float64 (default) or float32
    scale : float
        Standard deviation for ``init="normal"``.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        init: str = "he",
        rng: int | np.random.Generator | None = None,
        dtype=np.float64,
        scale: float = 0.01,
        name: str | None = None,
    ) -> None:
        super().__init__(name)
        for label, n in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{label} must be a positive integer, got {n!r}")
        dt = _float_dtype(dtype)
        W = init_weights(int(in_features), int(out_features), init, _make_rng(rng), scale)
        self.params = {"W": W.astype(dt), "b": np.zeros(out_features, dtype=dt)}
        self.grads = {k: np.zeros_like(v) for k, v in self.params.items()}
        self.init = init

    @property
    def W(self) -> np.ndarray:
        return self.params["W"]

    @property
    def b(self) -> np.ndarray:
        return self.params["b"]

    @property
    def in_features(self) -> int:
        return self.W.shape[0]

    @property
    def out_features(self) -> int:
        return self.W.shape[1]

    def forward(self, x):
        """``out = x @ W + b``; x (N, in_features) -> out (N, out_features)."""
        self._cache = None  # let the last batch's arrays go before this batch's are allocated
        out, self._cache = F.linear_forward(x, self.W, self.b)
        return out

    def backward(self, dout, input_grad: bool = True):
        """Fill ``grads`` with ``dW = x^T dout`` and ``db = sum_n dout``; return ``dx = dout W^T``.

        With ``input_grad=False`` the product ``dout W^T`` is skipped and None is
        returned: a model's first layer needs no gradient for its input, and that
        product would cost as much as ``dW``.
        """
        x, W, _ = cache = self._cached()
        dout = as_float_array(dout, "dout")
        if dout.shape != (x.shape[0], W.shape[1]):
            F.linear_backward(dout, cache)  # raises its error naming both shapes
        # Drop the last batch's gradients before allocating this batch's: the allocator
        # then reuses their memory instead of returning it to the system and faulting it back.
        self.grads = {}
        if input_grad:
            dx, dW, db = F.linear_backward(dout, cache)
        else:  # the same dW and db as linear_backward, without the product dout @ W.T
            dx, dW, db = None, x.T @ dout, dout.sum(axis=0)
        self.grads = {"W": dW, "b": db}
        return dx

    def __repr__(self) -> str:
        return (
            f"Linear({self.in_features}, {self.out_features}, init={self.init!r}, "
            f"dtype={self.W.dtype.name})"
        )


class _Activation(Layer):
    """A layer without parameters wrapping ``forward(x) -> (out, cache)`` and ``backward``."""

    def _fwd(self, x):
        raise NotImplementedError

    def _bwd(self, dout, cache):
        raise NotImplementedError

    def forward(self, x):
        self._cache = None
        out, self._cache = self._fwd(x)
        return out

    def backward(self, dout, input_grad: bool = True):
        cache = self._cached()
        return self._bwd(dout, cache) if input_grad else None


class ReLU(_Activation):
    """``out = max(0, x)``."""

    def _fwd(self, x):
        return F.relu_forward(x)

    def _bwd(self, dout, cache):
        return F.relu_backward(dout, cache)


class LeakyReLU(_Activation):
    """``out = x`` where ``x > 0`` else ``alpha * x``."""

    def __init__(self, alpha: float = 0.01, name: str | None = None) -> None:
        super().__init__(name)
        self.alpha = alpha

    def _fwd(self, x):
        return F.leaky_relu_forward(x, self.alpha)

    def _bwd(self, dout, cache):
        return F.leaky_relu_backward(dout, cache)

    def __repr__(self) -> str:
        return f"LeakyReLU(alpha={self.alpha})"


class Sigmoid(_Activation):
    """``out = 1 / (1 + exp(-x))``."""

    def _fwd(self, x):
        return F.sigmoid_forward(x)

    def _bwd(self, dout, cache):
        return F.sigmoid_backward(dout, cache)


class Tanh(_Activation):
    """``out = tanh(x)``."""

    def _fwd(self, x):
        return F.tanh_forward(x)

    def _bwd(self, dout, cache):
        return F.tanh_backward(dout, cache)


class Softmax(_Activation):
    """Row-wise softmax of x (N, C).

    Not needed before ``loss="softmax_cross_entropy"``, which applies softmax itself.
    """

    def _fwd(self, x):
        return F.softmax_forward(x)

    def _bwd(self, dout, cache):
        return F.softmax_backward(dout, cache)
