"""Forward and backward functions, one pair per operation, and the losses.

Every forward function returns ``(out, cache)``; the matching backward function
takes the upstream gradient ``dout`` (the gradient of the loss with respect to
``out``) and the cache, and returns the gradient with respect to the inputs.
Batch-first row vectors throughout: ``x`` has shape (N, D), ``W`` (D, M),
``b`` (M,), and ``out = x @ W + b``.

The body of each function is its formula. The checks of its arguments (float
arrays, shapes that fit, with errors that name the shapes) run before it, in
the validator named on its ``@checked(...)`` line (see ``bplib/_validate.py``).
"""

from __future__ import annotations

import numpy as np

from ._validate import (
    binary_cross_entropy_args,
    checked,
    dout_like_out,
    dout_like_x,
    leaky_relu_backward_args,
    leaky_relu_forward_args,
    linear_backward_args,
    linear_forward_args,
    logsumexp_args,
    mse_loss_args,
    softmax_cross_entropy_args,
    x_args,
)

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


@checked(linear_forward_args)
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
    out = x @ W + b
    return out, (x, W, b)


@checked(linear_backward_args)
def linear_backward(dout, cache):
    """Backward pass of :func:`linear_forward`.

    With ``out = x W + b``: ``dx = dout W^T`` (N, D), ``dW = x^T dout`` (D, M),
    ``db = sum over the batch of dout`` (M,).
    """
    x, W, b = cache
    dx = dout @ W.T
    dW = x.T @ dout
    db = dout.sum(axis=0)
    return dx, dW, db


# --------------------------------------------------------------------------- activations


@checked(x_args)
def relu_forward(x):
    """ReLU, ``out = max(0, x)``; the cache is ``x``."""
    return np.maximum(x, 0), x


@checked(dout_like_x)
def relu_backward(dout, cache):
    """``dx = dout * [x > 0]`` (the subgradient at 0 is taken to be 0)."""
    x = cache
    return dout * (x > 0)


@checked(leaky_relu_forward_args)
def leaky_relu_forward(x, alpha: float = 0.01):
    """Leaky ReLU, ``out = x`` where ``x > 0`` else ``alpha * x``; the cache is ``(x, alpha)``."""
    return np.where(x > 0, x, x * x.dtype.type(alpha)), (x, alpha)


@checked(leaky_relu_backward_args)
def leaky_relu_backward(dout, cache):
    """``dx = dout`` where ``x > 0`` else ``alpha * dout``."""
    x, alpha = cache
    return np.where(x > 0, dout, dout * dout.dtype.type(alpha))


@checked(x_args)
def sigmoid(x):
    """Logistic function ``1 / (1 + exp(-x))``, computed without overflow for any ``x``."""
    with np.errstate(under="ignore"):  # exp(-1000) is 0: the exact limit, not an error
        z = np.exp(-np.abs(x))  # in [0, 1]: never overflows
        return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


@checked(x_args)
def sigmoid_forward(x):
    """Sigmoid; the cache is ``out`` (its derivative is ``out * (1 - out)``)."""
    out = sigmoid(x)
    return out, out


@checked(dout_like_out)
def sigmoid_backward(dout, cache):
    """``dx = dout * out * (1 - out)``."""
    out = cache
    return dout * out * (1 - out)


@checked(x_args)
def tanh_forward(x):
    """Hyperbolic tangent; the cache is ``out`` (its derivative is ``1 - out**2``)."""
    out = np.tanh(x)
    return out, out


@checked(dout_like_out)
def tanh_backward(dout, cache):
    """``dx = dout * (1 - out**2)``."""
    out = cache
    return dout * (1 - out * out)


@checked(logsumexp_args)
def logsumexp(x, axis: int = -1, keepdims: bool = False):
    """``log(sum(exp(x)))`` along ``axis``, shifted by the maximum so that it never overflows."""
    m = np.max(x, axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


@checked(x_args)
def log_softmax(x):
    """Row-wise ``log softmax(x) = x - logsumexp(x)`` for ``x`` of shape (N, C).

    Computed as ``(x - m) - log(sum(exp(x - m)))`` with ``m`` the row maximum, so
    the largest entry is exactly ``-log(sum(...))`` even when ``|x|`` is large.
    """
    shifted = x - np.max(x, axis=-1, keepdims=True)
    with np.errstate(under="ignore"):
        return shifted - np.log(np.sum(np.exp(shifted), axis=-1, keepdims=True))


@checked(x_args)
def softmax(x):
    """Row-wise softmax ``exp(x_i) / sum_j exp(x_j)``, stable for large logits."""
    with np.errstate(under="ignore"):
        e = np.exp(x - np.max(x, axis=-1, keepdims=True))
        return e / np.sum(e, axis=-1, keepdims=True)


@checked(x_args)
def softmax_forward(x):
    """Row-wise softmax of ``x`` (N, C); the cache is ``out``."""
    out = softmax(x)
    return out, out


@checked(dout_like_out)
def softmax_backward(dout, cache):
    """Vector-Jacobian product of softmax: ``dx = out * (dout - sum(dout * out, axis=1))``."""
    out = cache
    return out * (dout - np.sum(dout * out, axis=-1, keepdims=True))


# --------------------------------------------------------------------------- losses


@checked(mse_loss_args)
def mse_loss(y, t):
    """Squared error averaged over the batch, with the conventional 1/2.

    ``loss = sum((y - t)**2) / (2 N)`` and ``dy = (y - t) / N``, where N is
    ``y.shape[0]``. ``y`` and ``t`` must have the same shape (no broadcasting:
    a (N, 1) prediction against (N,) targets is an error, not an (N, N) matrix).
    """
    n = y.shape[0]
    diff = y - t
    loss = np.sum(diff**2) / (2 * n)
    return float(loss), diff / n


@checked(softmax_cross_entropy_args)
def softmax_cross_entropy(logits, labels):
    """Softmax followed by cross-entropy with integer labels, averaged over the batch.

    ``loss = mean_i( logsumexp(z_i) - z_i[y_i] )`` and
    ``dlogits = (softmax(z) - onehot(y)) / N``. Stable for any finite logits.

    Parameters
    ----------
    logits : ndarray, shape (N, C)
    labels : ndarray of int, shape (N,), values in ``0..C-1``
    """
    n = logits.shape[0]
    rows = np.arange(n)
    logp = log_softmax(logits)  # log softmax(z), never log(0)
    loss = -np.sum(logp[rows, labels]) / n
    with np.errstate(under="ignore"):  # exp(-1000) is 0: the exact limit, not an error
        dlogits = np.exp(logp)  # softmax(z)
        dlogits[rows, labels] -= 1  # minus onehot(y)
        return float(loss), dlogits / n


@checked(binary_cross_entropy_args)
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
    z = logits
    n = z.shape[0]
    with np.errstate(under="ignore"):
        loss = np.sum(np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))) / n
        return float(loss), (sigmoid(z) - t) / n
