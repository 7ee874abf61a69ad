"""Input checks of bplib's functions: clear messages that name the shapes.

The functions of :mod:`bplib.functional` and the update rules of
:mod:`bplib.optim` keep their checks out of their bodies, so that the source a
chapter prints is the formula. Each is decorated with ``@checked(validator)``,
where the validator (defined below) takes the same arguments, raises
``ValueError``/``TypeError`` naming what was expected and what came, and
returns the arguments (as float arrays where that applies) for the body.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable

import numpy as np


def checked(validate: Callable[..., tuple], *, inplace: Callable | None = None):
    """Decorator: run ``validate`` on the arguments, then the function on what it returns.

    ``functools.wraps`` sets ``__wrapped__``, so ``inspect.getsource`` and
    ``inspect.signature`` show the function as written, with this decorator line.

    ``inplace`` (the update rules of :mod:`bplib.optim`) is a twin of the function
    that writes its results into the arrays it is given; the decorated function
    then takes a keyword-only ``inplace=False`` and calls the twin when it is true.
    The validator is kept as the attribute ``validate`` of the decorated function.
    """

    def decorate(f):
        if inplace is None:

            @functools.wraps(f)
            def call(*args, **kwargs):
                return f(*validate(*args, **kwargs))

        else:
            twin = inplace

            @functools.wraps(f)
            def call(*args, inplace: bool = False, **kwargs):
                args = validate(*args, **kwargs)
                return twin(*args) if inplace else f(*args)

            sig = inspect.signature(f)
            flag = inspect.Parameter("inplace", inspect.Parameter.KEYWORD_ONLY, default=False,
                                     annotation="bool")
            call.__signature__ = sig.replace(parameters=[*sig.parameters.values(), flag])
        call.validate = validate
        return call

    return decorate


def as_float_array(a, name: str) -> np.ndarray:
    """Return ``a`` as a floating ndarray (float32 stays float32, anything else becomes float64)."""
    if isinstance(a, np.ndarray) and a.dtype in (np.float32, np.float64):
        return a
    try:
        arr = np.asarray(a)
    except Exception as exc:  # pragma: no cover - numpy rarely fails here
        raise TypeError(f"{name} must be array-like, got {type(a).__name__}") from exc
    if arr.dtype == object or not (
        np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.bool_)
    ):
        raise TypeError(f"{name} must hold numbers, got an array of dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{name} must be real, got dtype {arr.dtype}")
    if arr.dtype == np.float32:
        return arr
    return arr.astype(np.float64)


def require_ndim(a: np.ndarray, ndim: int, name: str, layout: str) -> None:
    if a.ndim != ndim:
        raise ValueError(
            f"{name} must be {ndim}-D with shape {layout}, got shape {a.shape}"
        )


def require_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{name_a} has shape {a.shape} but {name_b} has shape {b.shape}; they must match"
        )


def as_labels(labels, n: int, num_classes: int) -> np.ndarray:
    """Integer class labels of shape (n,) with values in [0, num_classes)."""
    y = np.asarray(labels)
    if y.ndim != 1:
        raise ValueError(
            f"labels must be 1-D of shape (N,) = ({n},) holding class indices, "
            f"got shape {y.shape}"
        )
    if y.shape[0] != n:
        raise ValueError(f"labels has {y.shape[0]} entries but logits has {n} rows")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.issubdtype(y.dtype, np.floating):
            raise TypeError(f"labels must be integer class indices, got dtype {y.dtype}")
        whole = np.isfinite(y) & (y == np.round(y))
        if not np.all(whole):
            raise TypeError(
                f"labels must be integer class indices, got {y[~whole][0]} (dtype {y.dtype})"
            )
        y = y.astype(np.int64)
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        bad = y[(y < 0) | (y >= num_classes)][0]
        raise ValueError(
            f"label {bad} is out of range: logits has {num_classes} classes, "
            f"so labels must lie in 0..{num_classes - 1}"
        )
    return y


def require_shape_of(ref, ref_name: str, **arrays) -> None:
    """Every array in ``arrays`` (name -> array-like) must have the shape of ``ref``."""
    for name, a in arrays.items():
        if np.shape(a) != np.shape(ref):
            raise ValueError(
                f"{name} has shape {np.shape(a)} but {ref_name} has shape {np.shape(ref)}; "
                "they must match"
            )


# --------------------------------------------------------------------------- bplib.functional
# Each validator takes the arguments of the function(s) it guards and returns them.


def x_args(x):
    """One array ``x``, made a float array."""
    return (as_float_array(x, "x"),)


def leaky_relu_forward_args(x, alpha=0.01):
    return as_float_array(x, "x"), alpha


def logsumexp_args(x, axis=-1, keepdims=False):
    return as_float_array(x, "x"), axis, keepdims


def linear_forward_args(x, W, b):
    """``x`` (N, D), ``W`` (D, M), ``b`` (M,)."""
    x = as_float_array(x, "x")
    W = as_float_array(W, "W")
    b = as_float_array(b, "b")
    require_ndim(x, 2, "x", "(N, D)")
    require_ndim(W, 2, "W", "(D, M)")
    if W.shape[0] != x.shape[1]:
        raise ValueError(
            f"W has shape {W.shape} but x has {x.shape[1]} features (x has shape {x.shape}); "
            f"expected W of shape ({x.shape[1]}, M)"
        )
    if b.shape != (W.shape[1],):
        raise ValueError(
            f"b has shape {b.shape} but W has shape {W.shape}; expected b of shape ({W.shape[1]},)"
        )
    return x, W, b


def linear_backward_args(dout, cache):
    """``dout`` has the shape of the layer's output, (N, M)."""
    x, W, _ = cache
    dout = as_float_array(dout, "dout")
    expected = (x.shape[0], W.shape[1])
    if dout.shape != expected:
        raise ValueError(
            f"dout has shape {dout.shape} but the layer's output has shape {expected} "
            f"(x {x.shape} @ W {W.shape})"
        )
    return dout, cache


def _dout_like(dout, ref: np.ndarray, ref_name: str) -> np.ndarray:
    dout = as_float_array(dout, "dout")
    require_same_shape(dout, ref, "dout", ref_name)
    return dout


def dout_like_x(dout, cache):
    """``dout`` has the shape of the cached input ``x`` (ReLU)."""
    return _dout_like(dout, cache, "x (the cache)"), cache


def dout_like_out(dout, cache):
    """``dout`` has the shape of the cached output ``out`` (sigmoid, tanh, softmax)."""
    return _dout_like(dout, cache, "out (the cache)"), cache


def leaky_relu_backward_args(dout, cache):
    """``dout`` has the shape of ``x`` in the cache ``(x, alpha)``."""
    return _dout_like(dout, cache[0], "x (the cache)"), cache


def mse_loss_args(y, t):
    """``y`` and ``t`` of one shape with a batch axis; ``t`` takes the dtype of ``y``."""
    y = as_float_array(y, "y")
    t = as_float_array(t, "t").astype(y.dtype, copy=False)  # dy has the dtype of y
    if y.ndim == 0:
        raise ValueError("y must have a batch axis: shape (N,) or (N, K), got a scalar")
    require_same_shape(y, t, "y", "t")
    return y, t


def softmax_cross_entropy_args(logits, labels):
    """``logits`` (N, C); ``labels`` integer class indices (N,) in ``0..C-1``."""
    z = as_float_array(logits, "logits")
    require_ndim(z, 2, "logits", "(N, C)")
    return z, as_labels(labels, *z.shape)


def binary_cross_entropy_args(logits, t):
    """``logits`` (N,) or (N, 1); ``t`` in {0, 1}, of their shape (a flat (N,) is reshaped)."""
    z = as_float_array(logits, "logits")
    t = as_float_array(t, "t").astype(z.dtype, copy=False)
    if z.ndim == 0:
        raise ValueError("logits must have a batch axis: shape (N,) or (N, 1), got a scalar")
    if z.ndim == 2 and z.shape[1] == 1 and t.shape == (z.shape[0],):
        t = t.reshape(z.shape)
    require_same_shape(z, t, "logits", "t")
    if t.size and not np.all((t == 0) | (t == 1)):
        bad = t[(t != 0) & (t != 1)].flat[0]
        raise ValueError(f"targets t must be 0 or 1, found {bad}")
    return z, t


# --------------------------------------------------------------------------- bplib.optim
# The gradient and the state (velocity, moments) must have the parameter's shape.
# Nothing is converted: with ``inplace=True`` the arrays given are the ones updated.


def sgd_update_args(w, dw, lr):
    require_shape_of(w, "w", dw=dw)
    return w, dw, lr


def momentum_update_args(w, dw, v, lr, momentum):
    require_shape_of(w, "w", dw=dw, v=v)
    return w, dw, v, lr, momentum


def rmsprop_update_args(w, dw, s, lr, rho=0.9, eps=1e-7):
    require_shape_of(w, "w", dw=dw, s=s)
    return w, dw, s, lr, rho, eps


def adam_update_args(w, dw, m, v, t, lr, beta1, beta2, eps):
    require_shape_of(w, "w", dw=dw, m=m, v=v)
    if int(t) < 1:
        raise ValueError(f"t counts the steps from 1, got t={t}")
    return w, dw, m, v, t, lr, beta1, beta2, eps


# ----------------------------------------------------------------------------- autodiff


def _real_number(x, name: str) -> float:
    """``x`` as a finite Python float, or an error that says what came."""
    if isinstance(x, bool) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number (int or float), got {type(x).__name__}")
    value = float(x)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def value_args(self, data, _children=(), _op=""):
    """``Value(data)``: a finite real number; the inputs it was made from are Values."""
    data = _real_number(data, "Value(data): data")
    children = tuple(_children)
    for child in children:
        if not (hasattr(child, "_prev") and hasattr(child, "data")):
            raise TypeError(f"the inputs of a Value must be Values, got {type(child).__name__}")
    return self, data, children, str(_op)


def value_pow_args(self, n):
    """``v ** n``: ``n`` is a number (not a Value); the result and its derivative are finite.

    At ``v = 0`` the derivative ``n * v ** (n - 1)`` is infinite for ``0 < n < 1`` (the
    square root's slope at 0), so that power is refused here, when it is built, rather
    than failing later in ``backward()``. ``v ** 0`` is the constant 1, derivative 0.
    """
    if hasattr(n, "_prev"):
        raise TypeError("v ** n takes a number n, not a Value (the exponent is a constant)")
    n = _real_number(n, "the exponent n of v ** n")
    if self.data < 0 and not n.is_integer():
        raise ValueError(f"{self.data} ** {n}: a negative base to a non-integer power is not real")
    if self.data == 0 and n < 0:
        raise ValueError(f"0 ** {n}: zero to a negative power is infinite")
    if self.data == 0 and 0 < n < 1:
        raise ValueError(
            f"0 ** {n}: the derivative n * x ** (n - 1) of x ** {n} is infinite at x = 0, "
            "so backward() could not pass a gradient through it; keep the base away from 0 "
            "(for a norm, sqrt(x + 1e-12) instead of sqrt(x))")
    return self, n


def value_log_args(self):
    """``v.log()``: ``v.data`` must be positive."""
    if self.data <= 0:
        raise ValueError(f"log needs a positive value, got {self.data}")
    return (self,)
