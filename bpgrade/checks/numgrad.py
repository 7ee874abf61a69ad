"""The grader's numerical gradients, every entry in one evaluation of the reference.

:func:`bplib.gradcheck.numerical_gradient` moves one entry of ``x`` by ``+h``, evaluates
the function, moves it by ``-h``, evaluates again, for every entry: ``2 n`` calls of
bplib's checked functions (their argument checks included) per gradient, some five
thousand per notebook of exercise 4. Here the ``2 n`` moved copies of ``x`` are stacked
along a new first axis and the *bodies* of the same bplib functions (taken when the
checks are imported, before any student code) run once on the stack; the reductions
that end each evaluation run along the stack's trailing axes, entry for entry the
operations of one evaluation. The result is the loop's, bit for bit:
``tests/test_fast_checks.py`` compares the two on every input the test cells of the
course use and on random ones, and compares the verdicts of every sample submission.

Only the references the checks differentiate are stacked: a layer's output times an
upstream gradient, summed (:func:`vjp`), and the loss of the two-layer network
(:func:`two_layer_loss_gradient`). On the grader's classic path
(``BPGRADE_CLASSIC_CHECKS=1``, the side-by-side benchmark of issue #24) the checks use
bplib's loop, as before.
"""

from __future__ import annotations

from types import MappingProxyType

import numpy as np

from bpgrade.checks._trust import _EXACT_ONLY
from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bplib import functional as F
from bplib.gradcheck import numerical_gradient

__all__ = ["STACKED", "moved_stack", "stacked_gradient", "vjp", "two_layer_loss_gradient"]

#: Whether the checks use the stacked evaluation (not on the classic path).
STACKED = not _EXACT_ONLY

# The bodies of bplib's checked functions (``@checked`` keeps them as ``__wrapped__``),
# taken now: what a submission later does to the attribute changes nothing here.
_linear = F.linear_forward.__wrapped__
_relu = F.relu_forward.__wrapped__
_log_softmax = F.log_softmax.__wrapped__
#: Forward functions whose body takes a stack of inputs along a new first axis and
#: returns the stack of outputs (elementwise, or a matrix product with broadcasting).
_BODIES = MappingProxyType({F.linear_forward: _linear, F.relu_forward: _relu,
           F.sigmoid_forward: F.sigmoid_forward.__wrapped__,
           F.tanh_forward: F.tanh_forward.__wrapped__})


#: At most this many float64 entries in one stack (8 MB): a larger gradient is taken in
#: several stacks of consecutive moves.
_CHUNK = 1 << 20


def moved_stack(x: np.ndarray, h: float, start: int = 0, stop: int | None = None
                ) -> np.ndarray:
    """Copies ``start`` to ``stop`` (default: all ``2 n``, ``n = x.size``) of ``x`` along a
    new first axis, where copy ``i < n`` has entry ``i`` (flat, C order: the order of
    ``np.nditer``) moved to ``x[i] + h`` and copy ``n + i`` has it moved to ``x[i] - h``
    (the values :func:`numerical_gradient` writes)."""
    n = x.size
    stop = 2 * n if stop is None else stop
    flat = x.reshape(-1)
    stack = np.tile(flat, (stop - start, 1))
    moves = np.arange(start, stop)
    entry = moves % n
    stack[moves - start, entry] = np.where(moves < n, flat[entry] + h, flat[entry] - h)
    return stack.reshape((stop - start, *x.shape))


def stacked_gradient(evaluate, x: np.ndarray, h: float) -> np.ndarray:
    """The central-difference gradient of the function whose values on a stack of moved
    copies of ``x`` (:func:`moved_stack`) ``evaluate(stack)`` returns, one float64 each
    (as ``float(f())``): ``(f(x + h e_i) - f(x - h e_i)) / (2 h)``."""
    n = x.size
    rows = max(1, _CHUNK // max(n, 1))
    values = np.concatenate([evaluate(moved_stack(x, h, i, min(i + rows, 2 * n)))
                             for i in range(0, 2 * n, rows)])
    return ((values[:n] - values[n:]) / (2 * h)).reshape(x.shape)


def _sum_each(stack: np.ndarray) -> np.ndarray:
    """``np.sum`` of each element of a stack, over its trailing axes (one contiguous row
    each, as ``np.sum`` of one element sees it)."""
    return np.ascontiguousarray(stack).reshape(len(stack), -1).sum(axis=1)


def vjp(forward_fn, arrays: dict, name: str, dout: np.ndarray, h: float) -> np.ndarray:
    """``numerical_gradient(lambda: float(np.sum(forward_fn(*arrays.values())[0] * dout)),
    arrays[name], h)``: the numerical vector-Jacobian product of a bplib forward function
    with respect to one of its inputs (all float64)."""
    x = arrays[name]
    body = _BODIES.get(forward_fn) if STACKED else None
    if body is None or x.size == 0:
        return numerical_gradient(
            lambda: float(np.sum(forward_fn(*arrays.values())[0] * dout)), x, h)
    bias = forward_fn is F.linear_forward and name == "b"

    def evaluate(stack):
        if bias:
            stack = stack[:, None, :]  # (k, 1, M): one bias per element of the stack
        out = body(*(stack if key == name else value for key, value in arrays.items()))[0]
        return _sum_each(out * dout)

    return stacked_gradient(evaluate, x, h)


def _stack_loss(X: np.ndarray, W1, b1, W2, b2, y: np.ndarray) -> np.ndarray:
    """The loss of ``two_layer_scores`` and ``softmax_cross_entropy`` for each element of
    the stack, where each of the parameters is one array or a stack of them (``b1`` and
    ``b2`` stacked as ``(k, 1, width)``), by the bodies of bplib's functions."""
    hidden = _relu(_linear(X, W1, b1)[0])[0]
    scores = _linear(hidden, W2, b2)[0]
    logp = _log_softmax(scores)
    n = scores.shape[-2]
    picked = logp[..., np.arange(n), y]  # (k, N): what softmax_cross_entropy sums
    return -_sum_each(picked) / n


def two_layer_loss_gradient(params: dict, X: np.ndarray, y: np.ndarray, key: str,
                            loss, h: float) -> np.ndarray:
    """``numerical_gradient(lambda: loss(params, X, y), params[key], h)``, where ``loss``
    is the two-layer network's softmax cross-entropy (ReLU hidden layer) on ``params``
    ``W1, b1, W2, b2``."""
    x = params[key]
    if not STACKED or x.size == 0:
        return numerical_gradient(lambda: loss(params, X, y), x, h)

    def evaluate(stack):
        parts = {k: params[k] for k in ("W1", "b1", "W2", "b2")}
        parts[key] = stack[:, None, :] if key in ("b1", "b2") else stack
        return _stack_loss(X, parts["W1"], parts["b1"], parts["W2"], parts["b2"], y)

    return stacked_gradient(evaluate, x, h)
