"""Exercise 4: backward functions of layers and activations, and a two-layer network's gradients.

Gradients that pass the numerical comparison must also agree with bplib's analytic
backward functions to within rounding (:func:`~bpgrade.checks.compare.check_derived`): the
chain rule gets there (4e-16 at most in float64); difference quotients cannot (1e-12..1e-5
with h = 1e-5, 1e-13 at best with a five-point stencil). Two cases close the ways round
that where a function is linear, so that a large step is exact up to rounding: a linear
layer whose bias is about 1e6 (the rounding of so large an output is more than any step
divides away), and ReLU inputs within 1e-9..1e-4 of the kink (a difference quotient
straddling 0 averages the two slopes), where ReLU is also probed exactly at 0.
A float16 or float32 result, right only to its own rounding, is told to use float64.

Partial credit: each check looks at one function only. ``check_two_layer_net`` grades the
student's network on its own output; if it calls the student's layer functions, their
mistakes show up there too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks.compare import (
    Mistake,
    as_float,
    call,
    check_derived,
    check_loss_value,
    check_unchanged,
    compare_array,
    copy_tree,
    derived_close,
    describe,
    fmt,
    refuse_reference,
    rng,
    rounding_allowance,
    shape_diagnosis,
    tree_equal,
    unpack,
)
from bpgrade.checks.diagnoses import diagnose
from bpgrade.checks.ex02_forward import (
    check_params_unchanged,
    copy_params,
    two_layer_problem,
    two_layer_scores,
)
from bpgrade.checks.numgrad import two_layer_loss_gradient, vjp
from bpgrade.language import N_, text
from bplib import functional as F
from bplib.gradcheck import TOLERANCE

__all__ = ["check_backward", "check_linear_backward", "check_relu_backward",
           "check_sigmoid_backward", "check_tanh_backward", "check_two_layer_net"]


def _away_from_zero(a: np.ndarray, margin: float = 1e-2) -> np.ndarray:
    """Move entries away from 0 so that a kink (ReLU) is never crossed by ``+-h``."""
    return np.where(a >= 0, a + margin, a - margin)


def check_backward(
    student_fn: Callable,
    forward_fn: Callable,
    inputs: dict[str, np.ndarray],
    grad_names: Sequence[str],
    fn_name: str,
    *,
    seed: int = 0,
    mistakes: Sequence[Mistake] = (),
    dout_hint: str = N_("work on a copy or build a new array instead"),
    backward_fn: Callable | None = None,
) -> None:
    """Check a backward function ``student_fn(dout, cache)`` against numerical gradients.

    ``forward_fn(*inputs.values())`` is the reference forward function returning
    ``(out, cache)``; ``grad_names[i]`` is the gradient with respect to the i-th input
    (``"dx"`` for ``"x"``). A random upstream gradient ``dout`` is drawn from ``seed``;
    the expected gradient of every input is the numerical vector-Jacobian product
    ``d sum(dout * out) / d input``. ``mistakes`` are ``(grad name, diagnosis id,
    fn(dout, *inputs) -> wrong gradient)``.

    ``backward_fn(dout, cache)``, the analytic reference (bplib's backward function),
    is called by the grader on its own copies once every gradient has passed: each must
    also agree with it to within rounding, which finite differences cannot.
    """
    names = list(inputs)
    arrays = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    out, _ = forward_fn(*arrays.values())
    dout = rng(seed + 7919).standard_normal(np.shape(out))
    _, cache = forward_fn(*(a.copy() for a in arrays.values()))
    cache_copy = copy_tree(cache)
    dout_arg = dout.copy()
    result = call(student_fn, (dout_arg, cache), fn_name)
    grads = unpack(result, grad_names, fn_name)
    check_unchanged({"dout": dout}, {"dout": dout_arg}, fn_name, {"dout": dout_hint})
    if not tree_equal(cache, cache_copy):
        raise diagnose("cache-modified", fn=fn_name)
    batch = arrays[names[0]].shape[0] if arrays[names[0]].ndim else None
    for name, gname, got in zip(names, grad_names, grads, strict=True):
        x = arrays[name]

        expected = vjp(forward_fn, arrays, name, dout, TOLERANCE.h)
        wrong = [(i, partial(fn, dout, *arrays.values())) for g, i, fn in mistakes if g == gname]
        compare_array(got, expected, gname, fn_name, like=name, like_shape=x.shape,
                      batch_size=batch, mistakes=wrong)
    if backward_fn is not None:
        _check_derived_backward(grads, backward_fn, forward_fn, arrays, dout, grad_names,
                                fn_name)


def _check_derived_backward(grads, backward_fn, forward_fn, arrays: dict, dout: np.ndarray,
                            grad_names: Sequence[str], fn_name: str, where: str = "") -> None:
    """Each of the student's ``grads`` against ``backward_fn`` on the grader's own copies,
    to the rounding the inputs allow."""

    def reference_of(*args):
        _, cache = forward_fn(*(a.copy() for a in args[:-1]))
        return unpack(backward_fn(args[-1].copy(), cache), grad_names, N_("the reference"))

    reference = reference_of(*arrays.values(), dout)
    allowed = rounding_allowance(reference_of, (*arrays.values(), dout))
    for gname, got, ref, bound in zip(grad_names, grads, reference, allowed, strict=True):
        check_derived(got, ref, gname, fn_name, where=where, allowed=bound)


def check_linear_backward(student_fn: Callable, N: int = 4, D: int = 3, M: int = 5,
                          seed: int = 0) -> None:
    """``linear_backward(dout, cache) -> (dx, dW, db)`` with ``cache = (x, W, b)``."""
    refuse_reference(student_fn, F.linear_backward, "linear_backward")
    gen = rng(seed)
    inputs = {"x": gen.standard_normal((N, D)), "W": gen.standard_normal((D, M)),
              "b": gen.standard_normal(M)}
    mistakes = [
        ("db", "db-averaged", lambda d, x, W, b: d.mean(axis=0)),
        ("db", "db-wrong-axis", lambda d, x, W, b: d.sum(axis=1)),
    ]
    names = ("dx", "dW", "db")
    check_backward(student_fn, F.linear_forward, inputs, names, "linear_backward",
                   seed=seed, mistakes=mistakes, backward_fn=F.linear_backward)
    # The layer is linear in each input, so a difference quotient with a large step (h = 1,
    # say) is exact up to rounding, and rounding is small when out is. With a bias of 1e6
    # every output carries about 1e-10 of rounding, which no step can divide away; the
    # chain rule never looks at b.
    inputs["b"] = inputs["b"] + 1e6
    dout = rng(seed + 7919).standard_normal((N, M))
    _, cache = F.linear_forward(*(a.copy() for a in inputs.values()))
    grads = unpack(call(student_fn, (dout.copy(), cache), "linear_backward"), names,
                   "linear_backward")
    _check_derived_backward(grads, F.linear_backward, F.linear_forward, inputs, dout, names,
                            "linear_backward", where=N_(" (on a layer whose bias is about 1e6)"))


def check_relu_backward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``relu_backward(dout, cache) -> dx`` with ``cache = x``."""
    refuse_reference(student_fn, F.relu_backward, "relu_backward")
    x = _away_from_zero(rng(seed).standard_normal(shape))
    mistakes = [("dx", "relu-mask-inverted", lambda d, x: d * (x < 0)),
                ("dx", "relu-mask-from-dout", lambda d, x: d * (d > 0))]
    check_backward(student_fn, F.relu_forward, {"x": x}, ("dx",), "relu_backward", seed=seed,
                   mistakes=mistakes,
                   dout_hint=N_("`dout[x <= 0] = 0` writes into dout; use `dout * (x > 0)`"),
                   backward_fn=F.relu_backward)
    _check_relu_near_kink(student_fn, shape, seed)


def _check_relu_near_kink(student_fn: Callable, shape: tuple, seed: int) -> None:
    """Inputs within 1e-9..1e-4 of 0, and two exactly at 0: the derivative is exactly dout
    or 0 there too (0 at 0, as the exercise says).

    A difference quotient whose step reaches across the kink averages the two slopes
    (about dout / 2); the numerical comparison cannot look there, the analytic one can.
    """
    fn_name = "relu_backward"
    gen = rng(seed + 104729)
    x = gen.choice([-1.0, 1.0], size=shape) * 10.0 ** gen.uniform(-9, -4, size=shape)
    x.flat[0], x.flat[-1] = 10.0 ** -6.5, -(10.0 ** -6.5)  # both sides, whatever the draw
    if x.size >= 4:
        x.flat[1], x.flat[-2] = 0.0, 0.0
    dout = rng(seed + 7919).standard_normal(shape)
    got = unpack(call(student_fn, (dout.copy(), x.copy()), fn_name), ("dx",), fn_name)[0]
    got = as_float(got, "dx", fn_name)
    want = F.relu_backward(dout, x)
    if got.shape != want.shape:
        raise shape_diagnosis(text("{fn}: {name}", fn=fn_name, name="dx"), got, want.shape, "x",
                              shape)
    if derived_close(got, want):
        return
    off = got != want
    at_zero = off & (x == 0)
    if at_zero.any() and not (off & (x != 0)).any() and np.allclose(got[at_zero], dout[at_zero]):
        raise diagnose("relu-mask-at-zero", fn=fn_name, got=fmt(got[at_zero][0]))
    pick = np.where(off & (x != 0), np.abs(got - want), -1.0) if (off & (x != 0)).any() \
        else np.abs(got - want)
    i = tuple(int(k) for k in np.unravel_index(int(np.argmax(pick)), shape))
    right = (text("dout = {dout}, since x > 0", dout=fmt(dout[i])) if x[i] > 0 else
             N_("0, since x < 0") if x[i] < 0 else N_("0, which the exercise takes it to be at 0"))
    raise diagnose("looks-numerical-at-kink", fn=fn_name, name="dx", x=f"{x[i]:.1e}",
                   got=fmt(got[i]), right=right, fix=N_("compute dx = dout * (x > 0) instead"))


def check_sigmoid_backward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``sigmoid_backward(dout, cache) -> dx`` with ``cache = out = sigmoid(x)``."""
    refuse_reference(student_fn, F.sigmoid_backward, "sigmoid_backward")
    x = 2 * rng(seed).standard_normal(shape)

    def as_if_cache_were_x(d, x):
        s = F.sigmoid(F.sigmoid(x))
        return d * s * (1 - s)

    mistakes = [
        ("dx", "sigmoid-cache-as-x", as_if_cache_were_x),
        ("dx", "dout-missing", lambda d, x: F.sigmoid(x) * (1 - F.sigmoid(x))),
    ]
    check_backward(student_fn, F.sigmoid_forward, {"x": x}, ("dx",), "sigmoid_backward",
                   seed=seed, mistakes=mistakes, backward_fn=F.sigmoid_backward)


def check_tanh_backward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``tanh_backward(dout, cache) -> dx`` with ``cache = out = tanh(x)``."""
    refuse_reference(student_fn, F.tanh_backward, "tanh_backward")
    x = 1.5 * rng(seed).standard_normal(shape)
    mistakes = [
        ("dx", "tanh-cache-as-x", lambda d, x: d * (1 - np.tanh(np.tanh(x)) ** 2)),
        ("dx", "tanh-one-minus-out", lambda d, x: d * (1 - np.tanh(x))),
        ("dx", "dout-missing", lambda d, x: 1 - np.tanh(x) ** 2),
    ]
    check_backward(student_fn, F.tanh_forward, {"x": x}, ("dx",), "tanh_backward", seed=seed,
                   mistakes=mistakes, backward_fn=F.tanh_backward)


# --------------------------------------------------------------------------- a whole network


def _two_layer_loss(params: dict, X: np.ndarray, y: np.ndarray) -> float:
    return F.softmax_cross_entropy(two_layer_scores(params, X), y)[0]


def check_two_layer_net(student_fn: Callable, N: int = 5, D: int = 4, H: int = 6, C: int = 3,
                        seed: int = 0) -> None:
    """``two_layer_net(params, X, y) -> (loss, grads)``; ReLU hidden layer, softmax cross-entropy.

    The loss is compared with the grader's forward pass; each of ``grads["W1"]``,
    ``grads["b1"]``, ``grads["W2"]``, ``grads["b2"]`` with a numerical gradient of
    the grader's loss. Graded on its own output only.
    """
    fn_name = "two_layer_net"
    params, X, y = two_layer_problem(seed, N, D, H, C)
    given, X_arg, y_arg = copy_params(params), X.copy(), y.copy()
    result = call(student_fn, (given, X_arg, y_arg), fn_name)
    got_loss, grads = unpack(result, ("loss", "grads"), fn_name)
    check_params_unchanged(params, given, fn_name)
    check_unchanged({"X": X, "y": y}, {"X": X_arg, "y": y_arg}, fn_name)
    check_loss_value(got_loss, _two_layer_loss(params, X, y), fn_name, N)
    if not isinstance(grads, dict):
        raise diagnose("grads-not-dict", fn=fn_name, got=describe(grads))
    missing = [k for k in params if k not in grads]
    if missing:
        raise diagnose("grads-missing-keys", fn=fn_name, keys=sorted(map(str, grads)),
                       missing=missing)
    work = copy_params(params)
    skipped = _two_layer_grads(params, X, y, relu=False)
    for k in ("W2", "b2", "W1", "b1"):
        expected = two_layer_loss_gradient(work, X, y, k, _two_layer_loss, TOLERANCE.h)
        compare_array(grads[k], expected, f"grads[{k!r}]", fn_name, like=k,
                      like_shape=params[k].shape, batch_size=N,
                      mistakes=[("net-relu-skipped", skipped[k])] if k in ("W1", "b1") else ())
    keys = ("W1", "b1", "W2", "b2")
    reference = _two_layer_grads(params, X, y)
    allowed = dict(zip(keys, rounding_allowance(
        lambda *a: tuple(_two_layer_grads(dict(zip(keys, a[:4], strict=True)), a[4], y)[k]
                         for k in keys), (*(params[k] for k in keys), X)), strict=True))
    for k in ("W2", "b2", "W1", "b1"):
        check_derived(grads[k], reference[k], f"grads[{k!r}]", fn_name, allowed=allowed[k])


def _two_layer_grads(params: dict, X: np.ndarray, y: np.ndarray,
                     relu: bool = True) -> dict[str, np.ndarray]:
    """The analytic gradients of :func:`_two_layer_loss`, by bplib's backward functions
    (with ``relu=False``: what a backward pass that skips the ReLU gives)."""
    p = copy_params(params)
    a, cache1 = F.linear_forward(X.copy(), p["W1"], p["b1"])
    h, cache_relu = F.relu_forward(a)
    scores, cache2 = F.linear_forward(h, p["W2"], p["b2"])
    _, dscores = F.softmax_cross_entropy(scores, y.copy())
    dh, dW2, db2 = F.linear_backward(dscores, cache2)
    da = F.relu_backward(dh, cache_relu) if relu else dh
    _, dW1, db1 = F.linear_backward(da, cache1)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}

