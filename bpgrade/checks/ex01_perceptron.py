"""Exercise 1: Rosenblatt's perceptron rule and its training loop."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks.compare import (
    as_float,
    as_scalar,
    call,
    check_unchanged,
    compare_array,
    rng,
    unpack,
)
from bpgrade.checks.diagnoses import diagnose
from bpgrade.language import N_, text

__all__ = ["check_perceptron_update", "check_train_perceptron", "reference_perceptron_update"]


def reference_perceptron_update(w, b, x, y, lr):
    """One step of Rosenblatt's rule: ``y_hat = [x . w + b >= 0]``; ``w += lr (y - y_hat) x``.

    The same rule as :class:`bplib.prehistory.Perceptron`.
    """
    err = y - (1 if float(np.dot(x, w) + b) >= 0 else 0)
    return w + lr * err * x, b + lr * err


def _error_upside_down(w, b, x, y, lr):
    err = (1 if float(np.dot(x, w) + b) >= 0 else 0) - y
    return w + lr * err * x, b + lr * err


def check_perceptron_update(student_fn: Callable, D: int = 3, seed: int = 0) -> None:
    """``perceptron_update(w, b, x, y, lr) -> (w, b)`` for one example ``x`` (D,), ``y`` in {0, 1}.

    Checks a correctly classified example (nothing changes), a missed positive and
    a missed negative.
    """
    fn_name = "perceptron_update"
    gen = rng(seed)
    lr = float(gen.choice([0.5, 1.0, 2.0]))
    for _ in range(6):
        w, x = gen.standard_normal(D), gen.standard_normal(D)
        b = float(gen.standard_normal())
        if abs(x @ w + b) < 1e-3:
            continue
        for y in (0, 1):
            args = [w.copy(), b, x.copy(), y, lr]
            got = unpack(call(student_fn, args, fn_name), ("w", "b"), fn_name)
            check_unchanged({"w": w, "x": x}, {"w": args[0], "x": args[2]}, fn_name)
            want_w, want_b = reference_perceptron_update(w, b, x, y, lr)
            wrong_w, wrong_b = _error_upside_down(w, b, x, y, lr)
            case = text("{fn} (for x={x}, y={y}, w={w}, b={b}, lr={lr})", fn=fn_name,
                        x=np.round(x, 3).tolist(), y=y, w=np.round(w, 3).tolist(),
                        b=format(b, ".3f"), lr=lr)
            compare_array(got[0], want_w, N_("the new w"), case, reference="expected",
                        like="w", like_shape=w.shape,
                        mistakes=[("perceptron-error-sign", wrong_w)])
            compare_array(got[1], want_b, N_("the new b"), case, reference="expected",
                        mistakes=[("perceptron-error-sign", wrong_b)])


def _perceptron_predict(w, b, X):
    return (X @ w + b >= 0).astype(int)


def check_train_perceptron(student_fn: Callable, gate: str = "and", max_epochs: int = 20) -> None:
    """``train_perceptron(X, y, lr, max_epochs) -> (w, b, mistakes)``.

    On AND, OR and NAND it must stop after the first epoch with no mistake and
    classify all four points; on XOR it must run all ``max_epochs`` epochs and
    never reach zero mistakes.
    """
    fn_name = text("train_perceptron on {gate}", gate=gate.upper())
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    table = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0], "xor": [0, 1, 1, 0]}
    y = np.array(table[gate])
    X_arg, y_arg = X.copy(), y.copy()
    got = unpack(call(student_fn, (X_arg, y_arg, 1.0, max_epochs), fn_name),
                 ("w", "b", "mistakes"), fn_name)
    check_unchanged({"X": X, "y": y}, {"X": X_arg, "y": y_arg}, fn_name)
    w = as_float(got[0], "w", fn_name)
    if w.shape != (2,):
        raise diagnose("perceptron-w-shape", fn=fn_name, shape=w.shape)
    b = as_scalar(got[1], "b", fn_name)
    mistakes = as_float(got[2], "mistakes", fn_name).ravel()
    if mistakes.size == 0:
        raise diagnose("perceptron-no-counts", fn=fn_name)
    counts = mistakes.astype(int).tolist()
    if gate == "xor":
        if mistakes.size != max_epochs or np.any(mistakes == 0):
            raise diagnose("perceptron-xor-converged", fn=fn_name, mistakes=counts,
                           epochs=max_epochs)
        return
    pred = _perceptron_predict(w, b, X)
    if not np.array_equal(pred, y):
        raise diagnose("perceptron-misclassifies", fn=fn_name, w=w.tolist(), b=b,
                       pred=pred.tolist(), targets=y.tolist())
    if mistakes[-1] != 0 or np.any(mistakes[:-1] == 0):
        raise diagnose("perceptron-no-early-stop", fn=fn_name, mistakes=counts)
