"""Exercise 3: the losses and their gradients (squared error, softmax and binary cross-entropy)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks.compare import (
    call,
    check_derived,
    check_loss_value,
    check_unchanged,
    compare_array,
    fmt,
    refuse_reference,
    rng,
    rounding_allowance,
    unpack,
)
from bpgrade.language import N_, text
from bplib import functional as F
from bplib.gradcheck import TOLERANCE, numerical_gradient

__all__ = ["check_loss", "check_mse_loss", "check_softmax_cross_entropy",
           "check_binary_cross_entropy"]


def check_loss(
    student_fn: Callable,
    reference_fn: Callable,
    pred: np.ndarray,
    target: np.ndarray,
    fn_name: str,
    grad_name: str,
    pred_name: str,
    *,
    loss_mistakes: Sequence[tuple[str, Callable]] = (),
    grad_mistakes: Sequence[tuple[str, Callable]] = (),
    describe_inputs: str = "",
    numerical: bool = True,
) -> None:
    """Check ``student_fn(pred, target) -> (loss, dpred)``.

    The loss is compared with ``reference_fn``'s; the gradient with the numerical
    gradient of the reference loss (or, when ``numerical`` is false, e.g. for
    huge logits, with the reference's analytic gradient). Mistakes are
    ``(diagnosis id, fn(pred, target) -> wrong loss / wrong gradient)``.
    """
    pred = np.array(pred, dtype=np.float64)
    target = np.array(target)
    p_arg, t_arg = pred.copy(), target.copy()
    result = call(student_fn, (p_arg, t_arg), fn_name, describe_inputs)
    got_loss, got_grad = unpack(result, ("loss", grad_name), fn_name)
    check_unchanged({pred_name: pred, N_("the targets"): target},
                    {pred_name: p_arg, N_("the targets"): t_arg}, fn_name)
    n = pred.shape[0]
    loss, ref_grad = reference_fn(pred, target)
    check_loss_value(got_loss, loss, fn_name, n,
                     [(d, partial(fn, pred, target)) for d, fn in loss_mistakes])
    if numerical:
        work = pred.copy()
        expected = numerical_gradient(lambda: reference_fn(work, target)[0], work, TOLERANCE.h)
    else:
        expected = ref_grad
    compare_array(got_grad, expected, grad_name, fn_name, like=pred_name,
                  like_shape=pred.shape, reference="numerical" if numerical else "expected",
                  batch_size=n,
                  mistakes=[(d, partial(fn, pred, target)) for d, fn in grad_mistakes])
    [allowed] = rounding_allowance(lambda p, t: reference_fn(p, t)[1], (pred, target),
                                   moved=(0,))
    check_derived(got_grad, ref_grad, grad_name, fn_name, allowed=allowed)


def check_mse_loss(student_fn: Callable, shape: tuple = (5, 3), seed: int = 0) -> None:
    """``mse_loss(y, t) -> (loss, dy)`` with ``loss = sum((y - t)**2) / (2N)``."""
    refuse_reference(student_fn, F.mse_loss, "mse_loss")
    gen = rng(seed)
    y, t = gen.standard_normal(shape), gen.standard_normal(shape)
    n = shape[0]
    check_loss(
        student_fn, F.mse_loss, y, t, "mse_loss", "dy", "y",
        loss_mistakes=[
            ("mse-missing-half", lambda y, t: np.sum((y - t) ** 2) / n),
            ("mse-mean-over-entries", lambda y, t: np.mean((y - t) ** 2) / 2),
        ],
        grad_mistakes=[
            ("mse-grad-over-entries", lambda y, t: (y - t) / y.size),
            ("mse-grad-reversed", lambda y, t: (t - y) / n),
        ],
    )
    # The loss is quadratic, so a central difference with a large step is exact up to
    # rounding, and rounding is small when the loss is. With predictions 1e4 away from the
    # targets the loss is about 1e8 times its gradient's scale, and so is its rounding,
    # which no reasonable step divides away; (y - t) / N never sees it.
    far = t + 1e4 * (y - t)
    got = unpack(call(student_fn, (far.copy(), t.copy()), "mse_loss"), ("loss", "dy"),
                 "mse_loss")[1]
    ref = F.mse_loss(far, t)[1]
    [allowed] = rounding_allowance(lambda p, q: F.mse_loss(p, q)[1], (far, t))
    check_derived(got, ref, "dy", "mse_loss",
                  where=N_(" (on predictions 1e4 away from the targets)"),
                  allowed=allowed)


def _ce_problem(seed: int, N: int, C: int, scale: float):
    gen = rng(seed)
    logits = scale * gen.standard_normal((N, C))
    if scale >= 100:
        logits = np.sign(logits) * scale  # +-scale: huge, and ties between classes
        logits[0] = scale * np.where(np.arange(C) % 2, 1.0, -1.0)
    return logits, gen.integers(0, C, size=N)


def check_softmax_cross_entropy(student_fn: Callable, N: int = 5, C: int = 3, seed: int = 0,
                                scale: float = 2.0) -> None:
    """``softmax_cross_entropy(logits, labels) -> (loss, dlogits)``, mean over the batch.

    With ``scale=1000`` the logits are +-1000: the loss must still be finite and right.
    """
    refuse_reference(student_fn, F.softmax_cross_entropy, "softmax_cross_entropy")
    logits, labels = _ce_problem(seed, N, C, scale)

    def no_mean(z, y):
        return F.softmax_cross_entropy(z, y)[1] * N

    def onehot_missing(z, y):
        return F.softmax(z) / N

    check_loss(
        student_fn, F.softmax_cross_entropy, logits, labels, "softmax_cross_entropy",
        "dlogits", "logits",
        loss_mistakes=[("loss-summed", lambda z, y: F.softmax_cross_entropy(z, y)[0] * N)],
        grad_mistakes=[("ce-grad-not-averaged", no_mean), ("ce-onehot-missing", onehot_missing)],
        describe_inputs=text("logits as large as +-{size}",
                             size=fmt(np.abs(logits).max())),
        numerical=scale < 100,
    )


def check_binary_cross_entropy(student_fn: Callable, shape: tuple = (6,), seed: int = 0,
                               scale: float = 2.0) -> None:
    """``binary_cross_entropy(logits, t) -> (loss, dlogits)`` on logits, mean over the batch."""
    refuse_reference(student_fn, F.binary_cross_entropy, "binary_cross_entropy")
    gen = rng(seed)
    logits = scale * gen.standard_normal(shape)
    if scale >= 100:
        logits = np.sign(logits) * scale
    t = gen.integers(0, 2, size=shape).astype(np.float64)
    t.flat[0], t.flat[-1] = 0.0, 1.0
    n = shape[0]
    check_loss(
        student_fn, F.binary_cross_entropy, logits, t, "binary_cross_entropy", "dlogits",
        "logits",
        loss_mistakes=[("loss-summed", lambda z, t: F.binary_cross_entropy(z, t)[0] * n)],
        grad_mistakes=[("bce-grad-reversed", lambda z, t: (t - F.sigmoid(z)) / n)],
        describe_inputs=text("logits as large as +-{size}",
                             size=fmt(np.abs(logits).max())),
        numerical=scale < 100,
    )
