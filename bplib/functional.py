"""Forward and backward functions, one pair per operation, and the losses.

Every forward function returns ``(out, cache)``; the matching backward function
takes the upstream gradient ``dout`` (the gradient of the loss with respect to
``out``) and the cache, and returns the gradient with respect to the inputs.
Batch-first row vectors throughout: ``x`` has shape (N, D), ``W`` (D, M),
``b`` (M,), and ``out = x @ W + b``.
"""

from __future__ import annotations

import numpy as np

from ._validate import as_float_array, as_labels, require_ndim, require_same_shape

__all__ = [
    "linear_forward",
    "linear_backward",
    "relu_forward",
    "relu_backward",
    "leaky_relu_forward",
    "leaky_relu_backward",
    "sigmoid",
    "sigmoid_forward",
    "sigmoid_backward",
    "tanh_forward",
    "tanh_backward",
    "softmax",
    "log_softmax",
    "logsumexp",
    "softmax_forward",
    "softmax_backward",
    "mse_loss",
    "softmax_cross_entropy",
    "binary_cross_entropy",
]


# --------------------------------------------------------------------------- linear


def linear_forward(x, W, b):
    """Affine layer ``out = x @ W + b``.

    Parameters
    ----------
    x : ndarray, shape (N, D)
    W : ndarray, shape (D, M)
    b : ndarray, shape (M,)

    Returns
    -------
    out : ndarray, shape (N, M)
    cache : tuple ``(x, W, b)``
    """
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
    out = x @ W
    out += b
    return out, (x, W, b)


def linear_backward(dout, cache):
    """Backward pass of :func:`linear_forward`.

    With ``out = x W + b``: ``dx = dout W^T`` (N, D), ``dW = x^T dout`` (D, M),
    ``db = sum over the batch of dout`` (M,).
    """
    x, W, b = cache
    dout = as_float_array(dout, "dout")
    expected = (x.shape[0], W.shape[1])
    if dout.shape != expected:
        raise ValueError(
            f"dout has shape {dout.shape} but the layer's output has shape {expected} "
            f"(x {x.shape} @ W {W.shape})"
        )
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


# --------------------------------------------------------------------------- activations


def _check_dout(dout, ref: np.ndarray, ref_name: str) -> np.ndarray:
    dout = as_float_array(dout, "dout")
    require_same_shape(dout, ref, "dout", ref_name)
    return dout


def relu_forward(x):
    """ReLU, ``out = max(0, x)``; the cache is ``x``."""
    x = as_float_array(x, "x")
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    """``dx = dout * [x > 0]`` (the subgradient at 0 is taken to be 0)."""
    x = cache
    dout = _check_dout(dout, x, "x (the cache)")
    return dout * (x > 0)


def leaky_relu_forward(x, alpha: float = 0.01):
    """Leaky ReLU, ``out = x`` where ``x > 0`` else ``alpha * x``; the cache is ``(x, alpha)``."""
    x = as_float_array(x, "x")
    return np.where(x > 0, x, x * x.dtype.type(alpha)), (x, alpha)


def leaky_relu_backward(dout, cache):
    """``dx = dout`` where ``x > 0`` else ``alpha * dout``."""
    x, alpha = cache
    dout = _check_dout(dout, x, "x (the cache)")
    return np.where(x > 0, dout, dout * dout.dtype.type(alpha))


def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow for any ``x``."""
    x = as_float_array(x, "x")
    with np.errstate(under="ignore"):  # exp(-1000) is 0: the exact limit, not an error
        z = np.exp(-np.abs(x))  # in [0, 1]: never overflows
        return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


def sigmoid_forward(x):
    """Sigmoid; the cache is ``out`` (its derivative is ``out * (1 - out)``)."""
    out = sigmoid(x)
    return out, out


def sigmoid_backward(dout, cache):
    """``dx = dout * out * (1 - out)``."""
    out = cache
    dout = _check_dout(dout, out, "out (the cache)")
    return dout * out * (1 - out)


def tanh_forward(x):
    """Hyperbolic tangent; the cache is ``out`` (its derivative is ``1 - out**2``)."""
    x = as_float_array(x, "x")
    out = np.tanh(x)
    return out, out


def tanh_backward(dout, cache):
    """``dx = dout * (1 - out**2)``."""
    out = cache
    dout = _check_dout(dout, out, "out (the cache)")
    return dout * (1 - out * out)


def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """``log(sum(exp(x)))`` along ``axis``, shifted by the maximum so that it never overflows."""
    x = as_float_array(x, "x")
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(x):
    """Row-wise ``log softmax(x) = x - logsumexp(x)`` for ``x`` of shape (N, C).

    Computed as ``(x - m) - log(sum(exp(x - m)))`` with ``m`` the row maximum, so
    the largest entry is exactly ``-log(sum(...))`` even when ``|x|`` is large.
    """
    x = as_float_array(x, "x")
    shifted = x - np.max(x, axis=-1, keepdims=True)
    with np.errstate(under="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


def softmax(x):
    """Row-wise softmax ``exp(x_i) / sum_j exp(x_j)``, stable for large logits."""
    x = as_float_array(x, "x")
    with np.errstate(under="ignore"):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)


def softmax_forward(x):
    """Row-wise softmax of ``x`` (N, C); the cache is ``out``."""
    out = softmax(x)
    return out, out


def softmax_backward(dout, cache):
    """Vector-Jacobian product of softmax: ``dx = out * (dout - sum(dout * out, axis=1))``."""
    out = cache
    dout = _check_dout(dout, out, "out (the cache)")
    return out * (dout - np.sum(dout * out, axis=-1, keepdims=True))


# --------------------------------------------------------------------------- losses


def mse_loss(y, t):
    """Squared error averaged over the batch, with the conventional 1/2.

    ``loss = sum((y - t)**2) / (2 N)`` and ``dy = (y - t) / N``, where N is
    ``y.shape[0]``. ``y`` and ``t`` must have the same shape (no broadcasting:
    a (N, 1) prediction against (N,) targets is an error, not an (N, N) matrix).
    """
    y = as_float_array(y, "y")
    t = as_float_array(t, "t").astype(y.dtype, copy=False)  # dy has the dtype of y
    if y.ndim == 0:
        raise ValueError("y must have a batch axis: shape (N,) or (N, K), got a scalar")
    require_same_shape(y, t, "y", "t")
    n = y.shape[0]
    diff = y - t
    loss = float(np.sum(diff * diff) / (2 * n))
    return loss, diff / diff.dtype.type(n)


def softmax_cross_entropy(logits, labels):
    """Softmax followed by cross-entropy with integer labels, averaged over the batch.

    ``loss = mean_i( logsumexp(z_i) - z_i[y_i] )`` and
    ``dlogits = (softmax(z) - onehot(y)) / N``. Stable for any finite logits.

    Parameters
    ----------
    logits : ndarray, shape (N, C)
    labels : ndarray of int, shape (N,), values in ``0..C-1``
    """
    z = as_float_array(logits, "logits")
    require_ndim(z, 2, "logits", "(N, C)")
    n, c = z.shape
    y = as_labels(labels, n, c)
    logp = log_softmax(z)
    rows = np.arange(n)
    loss = float(-np.sum(logp[rows, y]) / n)
    with np.errstate(under="ignore"):
        d = np.exp(logp)
        d[rows, y] -= 1
        d /= d.dtype.type(n)
    return loss, d


def binary_cross_entropy(logits, t):
    """Sigmoid followed by binary cross-entropy, on logits, averaged over the batch.

    ``loss = sum( max(z, 0) - z t + log(1 + exp(-|z|)) ) / N`` (the stable
    form of ``-t log s - (1 - t) log(1 - s)`` with ``s = sigmoid(z)``) and
    ``dlogits = (sigmoid(z) - t) / N``.

    Parameters
    ----------
    logits : ndarray, shape (N,) or (N, 1)
    t : ndarray, the same shape as ``logits`` (a (N,) target with (N, 1) logits is
        accepted and reshaped), values in {0, 1}
    """
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
    n = z.shape[0]
    with np.errstate(under="ignore"):
        loss = float(np.sum(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))) / n)
        return loss, (sigmoid(z) - t) / z.dtype.type(n)
