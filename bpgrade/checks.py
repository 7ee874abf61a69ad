"""The autograder's checks: one module, so that every exercise uses the same tolerances and words.

Each ``check_*`` function calls a student's function on inputs the student has
not seen (drawn from a seeded generator), compares what comes back with what
the grader computes itself, and raises :class:`AssertionError` with a message
that says what is wrong:

- the return value: ``None``, not a tuple, a tuple of the wrong length, not numbers;
- a shape: ``"dW has shape (5, 3) but W has shape (3, 5): it is transposed"``;
- NaN or infinity, overflow on large inputs (the checks run the student's code
  under ``np.errstate(over="raise", divide="raise", invalid="raise")``);
- an input modified in place where the contract says the function is pure;
- the values: a wrong sign, a transposed square matrix, a constant factor
  (``"a factor of about 0.2 = 1/N: did you divide by the batch size twice?"``),
  a known mistake recognised by name, otherwise the worst entry
  (``"relative error 0.41 at index (2, 1): analytic 0.12, numerical -0.07"``).

Gradients are compared with a numerical gradient computed here by central
differences (:func:`bplib.gradcheck.numerical_gradient`) of the *reference*
forward function or loss, never of the student's, and with the one tolerance
:data:`bplib.gradcheck.TOLERANCE`. That comparison diagnoses mistakes, but finite
differences meet its tolerance too, so a gradient that passes it must also agree
with the *analytic* reference (bplib's backward function, called by the grader on
its own copies) to within rounding: ``max|g - ref| <= DERIVED_RTOL * max|ref|``
(``_check_derived``). The chain rule gets there (4e-16 at most in float64);
difference quotients cannot (1e-12..1e-5 with h = 1e-5, 1e-13 at best with a
five-point stencil). Three cases close the ways round that where a function is
linear or quadratic, so that a large step is exact up to rounding: a linear layer
whose bias is about 1e6 and MSE predictions 1e4 away from the targets (the rounding
of so large an output is more than any step divides away), and ReLU inputs within
1e-9..1e-4 of the kink (a difference quotient straddling 0 averages the two slopes).
A float16 or float32 result, right only to its own rounding, is told to use float64.

The student's returned objects are never trusted: they are copied into new float64
arrays (``np.array``), and every input is a copy, kept again to detect mutation.

Partial credit: each check looks at one function only. ``check_two_layer_net``
and ``check_two_layer_forward`` grade the student's network on its own output;
if it calls the student's layer functions, their mistakes show up there too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from functools import partial

import numpy as np

from bplib import functional as F
from bplib import optim
from bplib.gradcheck import TOLERANCE, Tolerance, grad_close, numerical_gradient

#: How closely a gradient that passed the numerical comparison must also agree with the
#: analytic reference, as ``max|got - ref| / max|ref|`` over one gradient array. Measured on
#: every input the notebooks grade (``python -m tests.test_not_numerical``): analytic
#: variants (``@``, ``np.dot``, einsum, loops over the batch or over entries with the
#: formula, sigmoid and tanh recomputed from x, softmax by hand) are at most 4e-16 off;
#: central differences with h = 1e-5 at least 9e-13, the best difference quotient
#: (five-point, h = 1e-3) at least 1.1e-13. The bound leaves a factor of 25 above the one
#: and of 10 below the other.
DERIVED_RTOL = 1e-14

__all__ = [
    "check_array",
    "check_value",
    "check_backward",
    "check_linear_backward",
    "check_relu_backward",
    "check_sigmoid_backward",
    "check_tanh_backward",
    "check_forward",
    "check_linear_forward",
    "check_relu_forward",
    "check_sigmoid_forward",
    "check_two_layer_forward",
    "check_loss",
    "check_mse_loss",
    "check_softmax_cross_entropy",
    "check_binary_cross_entropy",
    "check_two_layer_net",
    "check_sgd_momentum_update",
    "check_adam_update",
    "check_perceptron_update",
    "check_train_perceptron",
    "reference_perceptron_update",
    "check_value_add",
    "check_value_mul",
    "check_value_pow",
    "check_value_tanh",
    "check_value_relu",
    "check_value_exp",
    "check_value_backward",
]

Mistake = tuple[str, str, Callable[..., np.ndarray]]
"""A known mistake: (output name, what the student probably did, the wrong result)."""


# --------------------------------------------------------------------------- return values


def _describe(obj) -> str:
    if obj is None:
        return "None"
    if isinstance(obj, np.ndarray):
        return f"an array of shape {obj.shape}"
    if isinstance(obj, (tuple, list)):
        return f"a {type(obj).__name__} of length {len(obj)}"
    return f"a {type(obj).__name__}"


def _unpack(result, names: Sequence[str], fn_name: str) -> tuple:
    """Split the student's return value into ``len(names)`` parts, or explain why not."""
    expected = "(" + ", ".join(names) + ")"
    if result is None:
        raise AssertionError(
            f"{fn_name} returned None; it must return {expected}. Did you forget `return`?"
        )
    if len(names) == 1:
        return (result,)
    if not isinstance(result, (tuple, list)):
        raise AssertionError(
            f"{fn_name} returned {_describe(result)}; it must return a tuple {expected}"
        )
    if len(result) != len(names):
        raise AssertionError(
            f"{fn_name} returned a {type(result).__name__} of {len(result)} values; "
            f"it must return {len(names)}: {expected}"
        )
    return tuple(result)


def _as_float(value, name: str, fn_name: str) -> np.ndarray:
    if value is None:
        raise AssertionError(f"{fn_name} returned None for {name}; expected an array")
    try:
        arr = np.array(value, dtype=np.float64)  # a copy: nothing the student returned is kept
    except (TypeError, ValueError) as exc:
        raise AssertionError(
            f"{fn_name}: {name} is {_describe(value)}, which is not an array of numbers ({exc})"
        ) from None
    return arr


def _as_scalar(value, name: str, fn_name: str) -> float:
    arr = _as_float(value, name, fn_name)
    if arr.size != 1:
        raise AssertionError(
            f"{fn_name}: {name} has shape {arr.shape}; it must be one number "
            "(the mean over the batch, not one value per example)"
        )
    x = float(arr.reshape(()))
    if not np.isfinite(x):
        raise AssertionError(f"{fn_name}: {name} is {x}; expected a finite number")
    return x


@contextmanager
def _strict_floats(fn_name: str, inputs: str = ""):
    """Turn overflow, division by zero and invalid operations into a clear AssertionError."""
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        try:
            yield
        except FloatingPointError as exc:
            where = f" on {inputs}" if inputs else ""
            raise AssertionError(
                f"{fn_name} is numerically unstable{where}: numpy reports '{exc}'. "
                + _UNSTABLE_HINTS[next((k for k in _UNSTABLE_HINTS if k in str(exc)), "")]
            ) from None


_UNSTABLE_HINTS = {
    "overflow": "Rewrite it so that no exp() gets a large positive argument "
    "(subtract the row's maximum first, or use exp(-|x|)).",
    "divide": "Something is divided by zero or log(0) is taken: work with log-probabilities "
    "(x - logsumexp(x)) rather than log(probabilities).",
    "invalid": "An operation such as inf - inf or 0/0 gave NaN.",
    "": "",
}


def _call(fn: Callable, args: Sequence, fn_name: str, inputs: str = ""):
    with _strict_floats(fn_name, inputs):
        return fn(*args)


def _refuse_reference(student_fn, reference_fn, fn_name: str) -> None:
    if student_fn is reference_fn:
        raise AssertionError(
            f"{fn_name} is bplib's own function: the exercise asks you to write it yourself"
        )


def _check_unchanged(saved: dict, current: dict, fn_name: str, hints: dict | None = None) -> None:
    for name, before in saved.items():
        after = current[name]
        if np.shape(after) != np.shape(before) or not np.array_equal(
            np.asarray(after), before, equal_nan=True
        ):
            hint = (hints or {}).get(name, "work on a copy or build a new array instead")
            raise AssertionError(
                f"{fn_name} changed its input {name} in place; it must leave its inputs "
                f"as they were: {hint}"
            )


# --------------------------------------------------------------------------- comparing arrays


def _fmt(x: float) -> str:
    return f"{x:.4g}"


def _factor_hint(ratio: float, batch_size: int | None) -> str:
    """Words for a constant factor between the student's result and the right one."""
    if batch_size and batch_size > 1:
        n = batch_size
        if np.isclose(ratio, 1 / n, rtol=1e-3):
            return f" (= 1/N with N = {n}): did you divide by the batch size twice?"
        if np.isclose(ratio, n, rtol=1e-3):
            return f" (= N = {n}): did you forget to divide by the batch size?"
    if np.isclose(ratio, 2, rtol=1e-3):
        return ": is a factor 1/2 missing, or the 2 of d(u**2)/du = 2u counted twice?"
    if np.isclose(ratio, 0.5, rtol=1e-3):
        return ": did you drop the 2 of d(u**2)/du = 2u, or halve twice?"
    return ""


def _fitted_factor(got: np.ndarray, expected: np.ndarray) -> float | None:
    """The constant c with got ~ c * expected, if there is one (and c != 1).

    Needs at least two entries: any single number is a multiple of any other.
    """
    if got.size < 2:
        return None
    denom = float(np.sum(expected * expected))
    if denom == 0.0:
        return None
    c = float(np.sum(got * expected)) / denom
    residual = np.linalg.norm(got - c * expected)
    if residual > 1e-6 * max(np.linalg.norm(got), 1e-12) or np.isclose(c, 1.0, rtol=1e-4):
        return None
    return c


def check_array(
    got,
    expected: np.ndarray,
    name: str,
    fn_name: str,
    *,
    like: str | None = None,
    like_shape: tuple | None = None,
    reference: str = "numerical",
    batch_size: int | None = None,
    mistakes: Sequence[tuple[str, np.ndarray | Callable[[], np.ndarray]]] = (),
    tol: Tolerance = TOLERANCE,
) -> None:
    """Compare ``got`` (from the student) with ``expected`` (computed by the grader).

    Parameters
    ----------
    got : anything the student returned for ``name``
    expected : ndarray, the correct values
    name : str, e.g. ``"dW"``
    fn_name : str, e.g. ``"linear_backward"``
    like, like_shape : the array whose shape ``got`` must have (e.g. ``"W"``, ``(3, 5)``)
    reference : word for ``expected`` in messages, ``"numerical"`` (a gradient by central
        differences) or ``"expected"``
    batch_size : N, to recognise a factor of N or 1/N
    mistakes : pairs (what the student probably did, the result of that mistake or a
        function of no arguments computing it, called only when the values are wrong)

    Raises
    ------
    AssertionError
        naming the first thing that is wrong.
    """
    expected = np.asarray(expected, dtype=np.float64)
    arr = _as_float(got, name, fn_name)
    what = f"{fn_name}: {name}"
    if arr.shape != expected.shape:
        raise AssertionError(_shape_message(what, arr.shape, expected.shape, like, like_shape))
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise AssertionError(f"{what} contains {arr[idx]} at index {idx}; expected finite numbers")
    if grad_close(arr, expected, tol):
        return
    raise AssertionError(f"{what} " + _value_message(arr, expected, reference, batch_size,
                                                       mistakes, tol))


def _shape_message(what, got_shape, want_shape, like, like_shape) -> str:
    target = f"{like} has shape {like_shape}" if like else f"expected shape {want_shape}"
    msg = f"{what} has shape {got_shape} but {target}"
    if len(got_shape) == 2 and got_shape == tuple(reversed(want_shape)):
        return msg + ": it is transposed (check the order of the matrix product)"
    if tuple(s for s in got_shape if s != 1) == tuple(s for s in want_shape if s != 1):
        return msg + (
            ": the same entries with an extra or missing axis of length 1 "
            "(summed with keepdims=True, or a column where a row was needed?)"
        )
    return msg + f"; it must have shape {want_shape}"


def _value_message(arr, expected, reference, batch_size, mistakes, tol) -> str:
    ref = "the numerical gradient" if reference == "numerical" else "the expected value"
    for description, wrong in mistakes:
        try:
            wrong = np.asarray(wrong() if callable(wrong) else wrong, dtype=np.float64)
        except (ValueError, ArithmeticError):  # this mistake is impossible for these shapes
            continue
        if wrong.shape == arr.shape and grad_close(arr, wrong, tol):
            return f"is wrong: it matches what you get if you {description}"
    if grad_close(-arr, expected, tol):
        return f"has the wrong sign: it equals minus {ref}"
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] > 1 and grad_close(arr.T, expected, tol):
        return (
            f"is the transpose of {ref} (the shapes agree only because the matrix is "
            "square): check the order of the matrix product"
        )
    if not np.any(arr) and np.any(expected):
        return f"is all zeros but {ref} is not"
    c = _fitted_factor(arr, expected)
    if c is not None:
        hint = _factor_hint(abs(c), batch_size)
        sign = " and the opposite sign" if c < 0 else ""
        return f"differs from {ref} by a factor of about {_fmt(c)}{sign}{hint}"
    excess = np.abs(arr - expected) - (tol.atol + tol.rtol * np.maximum(np.abs(arr),
                                                                         np.abs(expected)))
    idx = np.unravel_index(int(np.argmax(excess)), arr.shape)
    a, n = float(arr[idx]), float(expected[idx])
    rel = abs(a - n) / max(1e-8, abs(a) + abs(n))
    where = f" at index {tuple(int(i) for i in idx)}" if arr.ndim else ""
    word = "numerical" if reference == "numerical" else "expected"
    return f"is wrong: relative error {rel:.2g}{where}: yours {_fmt(a)}, {word} {_fmt(n)}"


def _derived_error(got, reference) -> float:
    """``max|got - ref| / max|ref|``: how far ``got`` is from the analytic reference."""
    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if g.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(r))), float(np.finfo(np.float64).tiny))
    return float(np.max(np.abs(g - r))) / scale


def _check_derived(got, reference, name: str, fn_name: str, *, where: str = "") -> None:
    """Refuse a gradient that matches the analytic ``reference`` only as well as finite differences.

    Called once ``got`` has passed the numerical comparison (so it has the right shape
    and is right to :data:`TOLERANCE`); ``reference`` is computed by the grader with
    bplib's backward functions. See ``DERIVED_RTOL``.
    """
    dtype = getattr(got, "dtype", None)
    low = str(dtype) if dtype in (np.float16, np.float32) else ""  # rounding, not a quotient
    got, reference = _as_float(got, name, fn_name), np.asarray(reference)
    if got.shape != reference.shape:
        raise AssertionError(_shape_message(f"{fn_name}: {name}{where}", got.shape,
                                            reference.shape, None, None))
    err = _derived_error(got, reference)
    if err <= DERIVED_RTOL:
        return
    if low:
        raise AssertionError(
            f"{fn_name}: {name} is {low} and only right to about {err:.0e} relative "
            "error; compute it in float64 (the dtype of the inputs)"
        )
    raise AssertionError(
        f"{fn_name}: {name} looks numerical, not derived{where}: it is right to about "
        f"{err:.0e} relative error, where the chain rule gives 1e-15 or better. Finite "
        "differences (nudging an input by h and calling the forward function or the loss "
        "again) are how the grader checks a gradient, not how to compute one: apply the "
        "chain rule"
    )


def check_value(got, expected, name: str = "value", fn_name: str = "your function") -> None:
    """Compare a result with a hand-computed expected value (visible tests)."""
    check_array(got, np.asarray(expected, dtype=np.float64), name, fn_name, reference="expected")


def _check_loss_value(got, expected: float, fn_name: str, batch_size: int,
                      mistakes: Sequence[tuple[str, Callable[[], float]]] = ()) -> float:
    loss = _as_scalar(got, "the loss", fn_name)
    if np.isclose(loss, expected, rtol=TOLERANCE.rtol, atol=TOLERANCE.atol):
        return loss
    for description, wrong_fn in mistakes:
        wrong = wrong_fn()
        if np.isclose(loss, wrong, rtol=TOLERANCE.rtol, atol=TOLERANCE.atol):
            raise AssertionError(
                f"{fn_name}: the loss {_fmt(loss)} should be {_fmt(expected)}; it matches what "
                f"you get if you {description}"
            )
    msg = f"{fn_name}: the loss is {_fmt(loss)} but should be {_fmt(expected)}"
    if expected != 0:
        ratio = loss / expected
        if np.isclose(ratio, -1, rtol=1e-4):
            msg += ": it has the wrong sign (these losses are never negative)"
        elif ratio > 0:
            hint = _factor_hint(ratio, batch_size)
            msg += f", a factor of {_fmt(ratio)}{hint}"
    raise AssertionError(msg)


# --------------------------------------------------------------------------- backward functions


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng([20240611, seed])


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
    dout_hint: str = "work on a copy or build a new array instead",
    backward_fn: Callable | None = None,
) -> None:
    """Check a backward function ``student_fn(dout, cache)`` against numerical gradients.

    ``forward_fn(*inputs.values())`` is the reference forward function returning
    ``(out, cache)``; ``grad_names[i]`` is the gradient with respect to the i-th input
    (``"dx"`` for ``"x"``). A random upstream gradient ``dout`` is drawn from ``seed``;
    the expected gradient of every input is the numerical vector-Jacobian product
    ``d sum(dout * out) / d input``. ``mistakes`` are ``(grad name, description,
    fn(dout, *inputs) -> wrong gradient)``.

    ``backward_fn(dout, cache)``, the analytic reference (bplib's backward function),
    is called by the grader on its own copies once every gradient has passed: each must
    also agree with it to ``DERIVED_RTOL``, which finite differences cannot.
    """
    names = list(inputs)
    arrays = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    out, _ = forward_fn(*arrays.values())
    dout = _rng(seed + 7919).standard_normal(np.shape(out))
    _, cache = forward_fn(*(a.copy() for a in arrays.values()))
    cache_copy = _copy_tree(cache)
    dout_arg = dout.copy()
    result = _call(student_fn, (dout_arg, cache), fn_name)
    grads = _unpack(result, grad_names, fn_name)
    _check_unchanged({"dout": dout}, {"dout": dout_arg}, fn_name, {"dout": dout_hint})
    if not _tree_equal(cache, cache_copy):
        raise AssertionError(
            f"{fn_name} changed the cache in place; it must leave its inputs as they were"
        )
    batch = arrays[names[0]].shape[0] if arrays[names[0]].ndim else None
    for name, gname, got in zip(names, grad_names, grads, strict=True):
        x = arrays[name]

        expected = numerical_gradient(
            lambda: float(np.sum(forward_fn(*arrays.values())[0] * dout)), x, TOLERANCE.h
        )
        wrong = [(d, partial(fn, dout, *arrays.values())) for g, d, fn in mistakes if g == gname]
        check_array(got, expected, gname, fn_name, like=name, like_shape=x.shape,
                    batch_size=batch, mistakes=wrong)
    if backward_fn is not None:
        _check_derived_backward(grads, backward_fn, forward_fn, arrays, dout, grad_names,
                                fn_name)


def _check_derived_backward(grads, backward_fn, forward_fn, arrays: dict, dout: np.ndarray,
                            grad_names: Sequence[str], fn_name: str, where: str = "") -> None:
    """Each of the student's ``grads`` against ``backward_fn`` on the grader's own copies."""
    _, cache = forward_fn(*(a.copy() for a in arrays.values()))
    reference = _unpack(backward_fn(dout.copy(), cache), grad_names, "the reference")
    for gname, got, ref in zip(grad_names, grads, reference, strict=True):
        _check_derived(got, ref, gname, fn_name, where=where)


def _copy_tree(obj):
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, (tuple, list)):
        return type(obj)(_copy_tree(o) for o in obj)
    return obj


def _tree_equal(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(_tree_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def check_linear_backward(student_fn: Callable, N: int = 4, D: int = 3, M: int = 5,
                          seed: int = 0) -> None:
    """``linear_backward(dout, cache) -> (dx, dW, db)`` with ``cache = (x, W, b)``."""
    _refuse_reference(student_fn, F.linear_backward, "linear_backward")
    rng = _rng(seed)
    inputs = {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, M)),
              "b": rng.standard_normal(M)}
    mistakes = [
        ("dx", "multiply by W instead of W.T (dx = dout @ W.T)", lambda d, x, W, b: d @ W),
        ("db", "average over the batch instead of summing (db = dout.sum(axis=0))",
         lambda d, x, W, b: d.mean(axis=0)),
    ]
    names = ("dx", "dW", "db")
    check_backward(student_fn, F.linear_forward, inputs, names, "linear_backward",
                   seed=seed, mistakes=mistakes, backward_fn=F.linear_backward)
    # The layer is linear in each input, so a difference quotient with a large step (h = 1,
    # say) is exact up to rounding, and rounding is small when out is. With a bias of 1e6
    # every output carries about 1e-10 of rounding, which no step can divide away; the
    # chain rule never looks at b.
    inputs["b"] = inputs["b"] + 1e6
    dout = _rng(seed + 7919).standard_normal((N, M))
    _, cache = F.linear_forward(*(a.copy() for a in inputs.values()))
    grads = _unpack(_call(student_fn, (dout.copy(), cache), "linear_backward"), names,
                    "linear_backward")
    _check_derived_backward(grads, F.linear_backward, F.linear_forward, inputs, dout, names,
                            "linear_backward", where=" (on a layer whose bias is about 1e6)")


def check_relu_backward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``relu_backward(dout, cache) -> dx`` with ``cache = x``."""
    _refuse_reference(student_fn, F.relu_backward, "relu_backward")
    x = _away_from_zero(_rng(seed).standard_normal(shape))
    mistakes = [("dx", "pass dout through where x < 0 instead of where x > 0",
                 lambda d, x: d * (x < 0))]
    check_backward(student_fn, F.relu_forward, {"x": x}, ("dx",), "relu_backward", seed=seed,
                   mistakes=mistakes,
                   dout_hint="`dout[x <= 0] = 0` writes into dout; use `dout * (x > 0)`",
                   backward_fn=F.relu_backward)
    _check_relu_near_kink(student_fn, shape, seed)


def _check_relu_near_kink(student_fn: Callable, shape: tuple, seed: int) -> None:
    """Inputs within 1e-9..1e-4 of 0: the derivative is exactly dout or 0 there too.

    A difference quotient whose step reaches across the kink averages the two slopes
    (about dout / 2); the numerical comparison cannot look there, the analytic one can.
    """
    fn_name = "relu_backward"
    rng = _rng(seed + 104729)
    x = rng.choice([-1.0, 1.0], size=shape) * 10.0 ** rng.uniform(-9, -4, size=shape)
    x.flat[0], x.flat[-1] = 10.0 ** -6.5, -(10.0 ** -6.5)  # both sides, whatever the draw
    dout = _rng(seed + 7919).standard_normal(shape)
    got = _unpack(_call(student_fn, (dout.copy(), x.copy()), fn_name), ("dx",), fn_name)[0]
    got = _as_float(got, "dx", fn_name)
    want = F.relu_backward(dout, x)
    if got.shape == want.shape and _derived_error(got, want) <= DERIVED_RTOL:
        return
    if got.shape != want.shape:
        raise AssertionError(_shape_message(f"{fn_name}: dx", got.shape, want.shape, "x", shape))
    idx = np.unravel_index(int(np.argmax(np.abs(got - want))), shape)
    i = tuple(int(k) for k in idx)
    right = f"dout = {_fmt(dout[i])}, since x > 0" if x[i] > 0 else "0, since x < 0"
    raise AssertionError(
        f"{fn_name}: dx looks numerical, not derived: at x = {x[i]:.1e}, that close to the "
        f"kink at 0, it is {_fmt(got[i])} where the derivative gives {right}. A difference "
        "quotient whose step reaches across the kink averages the two slopes; compute "
        "dx = dout * (x > 0) instead"
    )


def check_sigmoid_backward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``sigmoid_backward(dout, cache) -> dx`` with ``cache = out = sigmoid(x)``."""
    _refuse_reference(student_fn, F.sigmoid_backward, "sigmoid_backward")
    x = 2 * _rng(seed).standard_normal(shape)

    def as_if_cache_were_x(d, x):
        s = F.sigmoid(F.sigmoid(x))
        return d * s * (1 - s)

    mistakes = [
        ("dx", "treat the cache as x: the cache is out = sigmoid(x), so dx = dout*out*(1-out)",
         as_if_cache_were_x),
        ("dx", "forget to multiply by dout", lambda d, x: F.sigmoid(x) * (1 - F.sigmoid(x))),
    ]
    check_backward(student_fn, F.sigmoid_forward, {"x": x}, ("dx",), "sigmoid_backward",
                   seed=seed, mistakes=mistakes, backward_fn=F.sigmoid_backward)


def check_tanh_backward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``tanh_backward(dout, cache) -> dx`` with ``cache = out = tanh(x)``."""
    _refuse_reference(student_fn, F.tanh_backward, "tanh_backward")
    x = 1.5 * _rng(seed).standard_normal(shape)
    mistakes = [
        ("dx", "treat the cache as x: the cache is out = tanh(x), so dx = dout*(1-out**2)",
         lambda d, x: d * (1 - np.tanh(np.tanh(x)) ** 2)),
        ("dx", "write 1 - out instead of 1 - out**2", lambda d, x: d * (1 - np.tanh(x))),
        ("dx", "forget to multiply by dout", lambda d, x: 1 - np.tanh(x) ** 2),
    ]
    check_backward(student_fn, F.tanh_forward, {"x": x}, ("dx",), "tanh_backward", seed=seed,
                   mistakes=mistakes, backward_fn=F.tanh_backward)


# --------------------------------------------------------------------------- forward functions


def check_forward(
    student_fn: Callable,
    reference_fn: Callable,
    inputs: dict[str, np.ndarray],
    fn_name: str,
    cache_names: Sequence[str],
    cache_from: Callable[[dict, np.ndarray], Sequence[np.ndarray]],
    describe_inputs: str = "",
) -> None:
    """Check a forward function ``student_fn(*inputs) -> (out, cache)``.

    ``cache_from(inputs, out)`` gives the arrays the contract puts in the cache, named
    ``cache_names`` (a single name means the cache is that array itself).
    """
    arrays = {k: np.array(v, dtype=np.float64) for k, v in inputs.items()}
    args = {k: v.copy() for k, v in arrays.items()}
    result = _call(student_fn, list(args.values()), fn_name, describe_inputs)
    got_out, got_cache = _unpack(result, ("out", "cache"), fn_name)
    _check_unchanged(arrays, args, fn_name)
    out, _ = reference_fn(*arrays.values())
    first = next(iter(arrays.values()))
    check_array(got_out, out, "out", fn_name, reference="expected",
                like="the expected output", like_shape=out.shape,
                batch_size=first.shape[0] if first.ndim else None)
    want = cache_from(arrays, out)
    if len(cache_names) == 1:
        parts = (got_cache,)
    else:
        parts = _unpack(got_cache, cache_names, f"{fn_name}'s cache")
    for cname, got, w in zip(cache_names, parts, want, strict=True):
        check_array(got, w, f"the cache entry {cname}", fn_name, reference="expected")


def check_linear_forward(student_fn: Callable, N: int = 4, D: int = 3, M: int = 5,
                         seed: int = 0) -> None:
    """``linear_forward(x, W, b) -> (out, (x, W, b))`` with ``out = x @ W + b``."""
    _refuse_reference(student_fn, F.linear_forward, "linear_forward")
    rng = _rng(seed)
    inputs = {"x": rng.standard_normal((N, D)), "W": rng.standard_normal((D, M)),
              "b": rng.standard_normal(M)}
    check_forward(student_fn, F.linear_forward, inputs, "linear_forward", ("x", "W", "b"),
                  lambda a, out: (a["x"], a["W"], a["b"]))


def check_relu_forward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0) -> None:
    """``relu_forward(x) -> (max(0, x), x)``."""
    _refuse_reference(student_fn, F.relu_forward, "relu_forward")
    x = _rng(seed).standard_normal(shape)
    check_forward(student_fn, F.relu_forward, {"x": x}, "relu_forward", ("x",),
                  lambda a, out: (a["x"],))


def check_sigmoid_forward(student_fn: Callable, shape: tuple = (4, 5), seed: int = 0,
                          scale: float = 3.0) -> None:
    """``sigmoid_forward(x) -> (out, out)``; with ``scale=1000`` it checks stability."""
    _refuse_reference(student_fn, F.sigmoid_forward, "sigmoid_forward")
    x = scale * _rng(seed).standard_normal(shape)
    check_forward(student_fn, F.sigmoid_forward, {"x": x}, "sigmoid_forward", ("out",),
                  lambda a, out: (out,), describe_inputs=f"inputs as large as {_fmt(abs(x).max())}")


def _two_layer_scores(params: dict, X: np.ndarray) -> np.ndarray:
    h, _ = F.relu_forward(F.linear_forward(X, params["W1"], params["b1"])[0])
    return F.linear_forward(h, params["W2"], params["b2"])[0]


def _two_layer_params(rng, D: int, H: int, C: int) -> dict[str, np.ndarray]:
    return {"W1": rng.standard_normal((D, H)) / np.sqrt(D), "b1": 0.1 * rng.standard_normal(H),
            "W2": rng.standard_normal((H, C)) / np.sqrt(H), "b2": 0.1 * rng.standard_normal(C)}


def _two_layer_problem(seed: int, N: int, D: int, H: int, C: int):
    """Random parameters and data whose hidden pre-activations stay away from ReLU's kink."""
    rng = _rng(seed)
    for _ in range(100):
        params = _two_layer_params(rng, D, H, C)
        X = rng.standard_normal((N, D))
        pre = X @ params["W1"] + params["b1"]
        if np.min(np.abs(pre)) > 1e-3:
            break
    y = rng.integers(0, C, size=N)
    return params, X, y


def _copy_params(params: dict) -> dict:
    return {k: np.array(v, dtype=np.float64) for k, v in params.items()}


def _check_params_unchanged(saved: dict, given: dict, fn_name: str) -> None:
    for k, v in saved.items():
        if k not in given or not np.array_equal(np.asarray(given[k]), v):
            raise AssertionError(f"{fn_name} changed params[{k!r}]; it must leave params alone")


def check_two_layer_forward(student_fn: Callable, N: int = 4, D: int = 3, H: int = 6,
                            C: int = 2, seed: int = 0) -> None:
    """``two_layer_forward(params, X) -> scores``, ``relu(X W1 + b1) W2 + b2``, shape (N, C)."""
    fn_name = "two_layer_forward"
    params, X, _ = _two_layer_problem(seed, N, D, H, C)
    given, X_arg = _copy_params(params), X.copy()
    scores = _unpack(_call(student_fn, (given, X_arg), fn_name), ("scores",), fn_name)[0]
    _check_params_unchanged(params, given, fn_name)
    _check_unchanged({"X": X}, {"X": X_arg}, fn_name)
    check_array(scores, _two_layer_scores(params, X), "scores", fn_name, reference="expected",
                like="(N, C)", like_shape=(N, C))


# --------------------------------------------------------------------------- losses


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
    ``(description, fn(pred, target) -> wrong loss / wrong gradient)``.
    """
    pred = np.array(pred, dtype=np.float64)
    target = np.array(target)
    p_arg, t_arg = pred.copy(), target.copy()
    result = _call(student_fn, (p_arg, t_arg), fn_name, describe_inputs)
    got_loss, got_grad = _unpack(result, ("loss", grad_name), fn_name)
    _check_unchanged({pred_name: pred, "the targets": target},
                     {pred_name: p_arg, "the targets": t_arg}, fn_name)
    n = pred.shape[0]
    loss, ref_grad = reference_fn(pred, target)
    _check_loss_value(got_loss, loss, fn_name, n,
                      [(d, partial(fn, pred, target)) for d, fn in loss_mistakes])
    if numerical:
        work = pred.copy()
        expected = numerical_gradient(lambda: reference_fn(work, target)[0], work, TOLERANCE.h)
    else:
        expected = ref_grad
    check_array(got_grad, expected, grad_name, fn_name, like=pred_name, like_shape=pred.shape,
                reference="numerical" if numerical else "expected", batch_size=n,
                mistakes=[(d, partial(fn, pred, target)) for d, fn in grad_mistakes])
    _check_derived(got_grad, ref_grad, grad_name, fn_name)


def check_mse_loss(student_fn: Callable, shape: tuple = (5, 3), seed: int = 0) -> None:
    """``mse_loss(y, t) -> (loss, dy)`` with ``loss = sum((y - t)**2) / (2N)``."""
    _refuse_reference(student_fn, F.mse_loss, "mse_loss")
    rng = _rng(seed)
    y, t = rng.standard_normal(shape), rng.standard_normal(shape)
    n = shape[0]
    check_loss(
        student_fn, F.mse_loss, y, t, "mse_loss", "dy", "y",
        loss_mistakes=[
            ("leave out the 1/2: the contract is sum((y - t)**2) / (2N)",
             lambda y, t: np.sum((y - t) ** 2) / n),
            ("take the mean over every entry (np.mean) instead of dividing by N only",
             lambda y, t: np.mean((y - t) ** 2) / 2),
        ],
        grad_mistakes=[
            ("divide by every entry (y.size) instead of N = y.shape[0]",
             lambda y, t: (y - t) / y.size),
            ("compute (t - y) / N: the gradient is (y - t) / N", lambda y, t: (t - y) / n),
        ],
    )
    # The loss is quadratic, so a central difference with a large step is exact up to
    # rounding, and rounding is small when the loss is. With predictions 1e4 away from the
    # targets the loss is about 1e8 times its gradient's scale, and so is its rounding,
    # which no reasonable step divides away; (y - t) / N never sees it.
    far = t + 1e4 * (y - t)
    got = _unpack(_call(student_fn, (far.copy(), t.copy()), "mse_loss"), ("loss", "dy"),
                  "mse_loss")[1]
    ref = F.mse_loss(far, t)[1]
    _check_derived(got, ref, "dy", "mse_loss", where=" (on predictions 1e4 away from the targets)")


def _ce_problem(seed: int, N: int, C: int, scale: float):
    rng = _rng(seed)
    logits = scale * rng.standard_normal((N, C))
    if scale >= 100:
        logits = np.sign(logits) * scale  # +-scale: huge, and ties between classes
        logits[0] = scale * np.where(np.arange(C) % 2, 1.0, -1.0)
    return logits, rng.integers(0, C, size=N)


def check_softmax_cross_entropy(student_fn: Callable, N: int = 5, C: int = 3, seed: int = 0,
                                scale: float = 2.0) -> None:
    """``softmax_cross_entropy(logits, labels) -> (loss, dlogits)``, mean over the batch.

    With ``scale=1000`` the logits are +-1000: the loss must still be finite and right.
    """
    _refuse_reference(student_fn, F.softmax_cross_entropy, "softmax_cross_entropy")
    logits, labels = _ce_problem(seed, N, C, scale)

    def no_mean(z, y):
        return F.softmax_cross_entropy(z, y)[1] * N

    def onehot_missing(z, y):
        return F.softmax(z) / N

    check_loss(
        student_fn, F.softmax_cross_entropy, logits, labels, "softmax_cross_entropy",
        "dlogits", "logits",
        loss_mistakes=[("sum over the batch instead of taking the mean",
                        lambda z, y: F.softmax_cross_entropy(z, y)[0] * N)],
        grad_mistakes=[("forget to divide by N", no_mean),
                       ("forget to subtract 1 at the true class (softmax(z) - onehot(y))",
                        onehot_missing)],
        describe_inputs=f"logits as large as +-{_fmt(np.abs(logits).max())}",
        numerical=scale < 100,
    )


def check_binary_cross_entropy(student_fn: Callable, shape: tuple = (6,), seed: int = 0,
                               scale: float = 2.0) -> None:
    """``binary_cross_entropy(logits, t) -> (loss, dlogits)`` on logits, mean over the batch."""
    _refuse_reference(student_fn, F.binary_cross_entropy, "binary_cross_entropy")
    rng = _rng(seed)
    logits = scale * rng.standard_normal(shape)
    if scale >= 100:
        logits = np.sign(logits) * scale
    t = rng.integers(0, 2, size=shape).astype(np.float64)
    t.flat[0], t.flat[-1] = 0.0, 1.0
    n = shape[0]
    check_loss(
        student_fn, F.binary_cross_entropy, logits, t, "binary_cross_entropy", "dlogits",
        "logits",
        loss_mistakes=[("sum over the batch instead of taking the mean",
                        lambda z, t: F.binary_cross_entropy(z, t)[0] * n)],
        grad_mistakes=[("use t - sigmoid(z): the gradient is (sigmoid(z) - t) / N",
                        lambda z, t: (t - F.sigmoid(z)) / n)],
        describe_inputs=f"logits as large as +-{_fmt(np.abs(logits).max())}",
        numerical=scale < 100,
    )


# --------------------------------------------------------------------------- a whole network


def _two_layer_loss(params: dict, X: np.ndarray, y: np.ndarray) -> float:
    return F.softmax_cross_entropy(_two_layer_scores(params, X), y)[0]


def check_two_layer_net(student_fn: Callable, N: int = 5, D: int = 4, H: int = 6, C: int = 3,
                        seed: int = 0) -> None:
    """``two_layer_net(params, X, y) -> (loss, grads)``; ReLU hidden layer, softmax cross-entropy.

    The loss is compared with the grader's forward pass; each of ``grads["W1"]``,
    ``grads["b1"]``, ``grads["W2"]``, ``grads["b2"]`` with a numerical gradient of
    the grader's loss. Graded on its own output only.
    """
    fn_name = "two_layer_net"
    params, X, y = _two_layer_problem(seed, N, D, H, C)
    given, X_arg, y_arg = _copy_params(params), X.copy(), y.copy()
    result = _call(student_fn, (given, X_arg, y_arg), fn_name)
    got_loss, grads = _unpack(result, ("loss", "grads"), fn_name)
    _check_params_unchanged(params, given, fn_name)
    _check_unchanged({"X": X, "y": y}, {"X": X_arg, "y": y_arg}, fn_name)
    _check_loss_value(got_loss, _two_layer_loss(params, X, y), fn_name, N)
    if not isinstance(grads, dict):
        raise AssertionError(
            f"{fn_name}: grads is {_describe(grads)}; it must be a dict with keys W1, b1, W2, b2"
        )
    missing = [k for k in params if k not in grads]
    if missing:
        raise AssertionError(
            f"{fn_name}: grads has keys {sorted(map(str, grads))} but is missing {missing}; "
            "it must have W1, b1, W2, b2"
        )
    work = _copy_params(params)
    for k in ("W2", "b2", "W1", "b1"):
        expected = numerical_gradient(lambda: _two_layer_loss(work, X, y), work[k], TOLERANCE.h)
        check_array(grads[k], expected, f"grads[{k!r}]", fn_name, like=k,
                    like_shape=params[k].shape, batch_size=N)
    reference = _two_layer_grads(params, X, y)
    for k in ("W2", "b2", "W1", "b1"):
        _check_derived(grads[k], reference[k], f"grads[{k!r}]", fn_name)


def _two_layer_grads(params: dict, X: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """The analytic gradients of :func:`_two_layer_loss`, by bplib's backward functions."""
    p = _copy_params(params)
    a, cache1 = F.linear_forward(X.copy(), p["W1"], p["b1"])
    h, cache_relu = F.relu_forward(a)
    scores, cache2 = F.linear_forward(h, p["W2"], p["b2"])
    _, dscores = F.softmax_cross_entropy(scores, y.copy())
    dh, dW2, db2 = F.linear_backward(dscores, cache2)
    _, dW1, db1 = F.linear_backward(F.relu_backward(dh, cache_relu), cache1)
    return {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


# --------------------------------------------------------------------------- updates


def _update_check(student_fn, reference_fn, state: dict, hyper: dict, out_names, fn_name,
                  mistakes: Sequence[tuple[str, Callable]] = ()) -> None:
    """Call ``student_fn(**state, **hyper)`` on copies; compare every output with the reference."""
    saved = {k: np.array(v, dtype=np.float64) for k, v in state.items()}
    args = {k: v.copy() for k, v in saved.items()}
    result = _call(student_fn, (*args.values(), *hyper.values()), fn_name)
    got = _unpack(result, out_names, fn_name)
    _check_unchanged(saved, args, fn_name, {k: f"return a new array, e.g. {k} = {k} - ..."
                                            for k in saved})
    want = reference_fn(*(v.copy() for v in saved.values()), *hyper.values())
    wrong = [(d, partial(fn, *saved.values(), *hyper.values())) for d, fn in mistakes]
    for i, (name, g, w) in enumerate(zip(out_names, got, want, strict=True)):
        check_array(g, w, f"the new {name}", fn_name, like=name, like_shape=saved["w"].shape,
                    reference="expected",
                    mistakes=[(d, lambda fn=fn, i=i: fn()[i]) for d, fn in wrong])


def check_sgd_momentum_update(student_fn: Callable, shape: tuple = (3, 4), seed: int = 0,
                              steps: int = 1) -> None:
    """``sgd_momentum_update(w, dw, v, lr, momentum) -> (w, v)``; ``v = mu v - lr dw; w += v``.

    With ``steps > 1`` the check repeats with the reference state of the previous step.
    """
    _refuse_reference(student_fn, optim.sgd_momentum_update, "sgd_momentum_update")
    rng = _rng(seed)
    w, v = rng.standard_normal(shape), 0.1 * rng.standard_normal(shape)
    lr, mu = float(rng.uniform(0.01, 0.5)), float(rng.uniform(0.5, 0.95))
    mistakes = [
        ("update w with the old velocity (w + v before v is updated)",
         lambda w, dw, v, lr, mu: (w + v, mu * v - lr * dw)),
        ("use v = mu*v + lr*dw and w = w - v: the contract keeps v = mu*v - lr*dw and w = w + v",
         lambda w, dw, v, lr, mu: (w - (mu * v + lr * dw), mu * v + lr * dw)),
    ]
    for _ in range(steps):
        dw = rng.standard_normal(shape)
        _update_check(student_fn, optim.sgd_momentum_update, {"w": w, "dw": dw, "v": v},
                      {"lr": lr, "momentum": mu}, ("w", "v"), "sgd_momentum_update", mistakes)
        w, v = optim.sgd_momentum_update(w, dw, v, lr, mu)


def _adam_no_correction(w, dw, m, v, t, lr, b1, b2, eps):
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    return w - lr * m / (np.sqrt(v) + eps), m, v


def _adam_eps_inside(w, dw, m, v, t, lr, b1, b2, eps):
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw * dw
    return w - lr * (m / (1 - b1**t)) / np.sqrt(v / (1 - b2**t) + eps), m, v


def _adam_plain_square(w, dw, m, v, t, lr, b1, b2, eps):
    m = b1 * m + (1 - b1) * dw
    v = b2 * v + (1 - b2) * dw
    with np.errstate(invalid="ignore"):
        return w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps), m, v


def check_adam_update(student_fn: Callable, shape: tuple = (3, 4), seed: int = 0,
                      steps: int = 3) -> None:
    """``adam_update(w, dw, m, v, t, lr, beta1, beta2, eps) -> (w, m, v)``, t = 1, 2, ...

    Each step starts from the reference state of the previous one, so a mistake
    is reported at the first step where it shows.
    """
    _refuse_reference(student_fn, optim.adam_update, "adam_update")
    rng = _rng(seed)
    w = rng.standard_normal(shape)
    m, v = np.zeros(shape), np.zeros(shape)
    hyper = {"lr": float(rng.uniform(0.01, 0.1)), "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}
    mistakes = [
        ("leave out the bias correction m_hat = m / (1 - beta1**t), v_hat = v / (1 - beta2**t)",
         _adam_no_correction),
        ("put eps inside the square root: the step is lr * m_hat / (sqrt(v_hat) + eps)",
         _adam_eps_inside),
        ("average dw instead of dw**2 into v", _adam_plain_square),
    ]
    for t in range(1, steps + 1):
        dw = rng.standard_normal(shape)
        _update_check(student_fn, optim.adam_update, {"w": w, "dw": dw, "m": m, "v": v},
                      {"t": t, **hyper}, ("w", "m", "v"), f"adam_update (at step t={t})",
                      mistakes)
        w, m, v = optim.adam_update(w, dw, m, v, t, *hyper.values())


# --------------------------------------------------------------------------- the perceptron


def reference_perceptron_update(w, b, x, y, lr):
    """One step of Rosenblatt's rule: ``y_hat = [x . w + b >= 0]``; ``w += lr (y - y_hat) x``.

    The same rule as :class:`bplib.prehistory.Perceptron`.
    """
    err = y - (1 if float(np.dot(x, w) + b) >= 0 else 0)
    return w + lr * err * x, b + lr * err


def check_perceptron_update(student_fn: Callable, D: int = 3, seed: int = 0) -> None:
    """``perceptron_update(w, b, x, y, lr) -> (w, b)`` for one example ``x`` (D,), ``y`` in {0, 1}.

    Checks a correctly classified example (nothing changes), a missed positive and
    a missed negative.
    """
    fn_name = "perceptron_update"
    rng = _rng(seed)
    lr = float(rng.choice([0.5, 1.0, 2.0]))
    for _ in range(6):
        w, x = rng.standard_normal(D), rng.standard_normal(D)
        b = float(rng.standard_normal())
        if abs(x @ w + b) < 1e-3:
            continue
        for y in (0, 1):
            args = [w.copy(), b, x.copy(), y, lr]
            got = _unpack(_call(student_fn, args, fn_name), ("w", "b"), fn_name)
            _check_unchanged({"w": w, "x": x}, {"w": args[0], "x": args[2]}, fn_name)
            want_w, want_b = reference_perceptron_update(w, b, x, y, lr)
            case = f"(for x={np.round(x, 3).tolist()}, y={y}, w={np.round(w, 3).tolist()}, " \
                   f"b={b:.3f}, lr={lr})"
            check_array(got[0], want_w, "the new w", f"{fn_name} {case}", reference="expected",
                        like="w", like_shape=w.shape)
            check_array(got[1], want_b, "the new b", f"{fn_name} {case}", reference="expected")


def _perceptron_predict(w, b, X):
    return (X @ w + b >= 0).astype(int)


def check_train_perceptron(student_fn: Callable, gate: str = "and", max_epochs: int = 20) -> None:
    """``train_perceptron(X, y, lr, max_epochs) -> (w, b, mistakes)``.

    On AND, OR and NAND it must stop after the first epoch with no mistake and
    classify all four points; on XOR it must run all ``max_epochs`` epochs and
    never reach zero mistakes.
    """
    fn_name = f"train_perceptron on {gate.upper()}"
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    table = {"and": [0, 0, 0, 1], "or": [0, 1, 1, 1], "nand": [1, 1, 1, 0], "xor": [0, 1, 1, 0]}
    y = np.array(table[gate])
    X_arg, y_arg = X.copy(), y.copy()
    got = _unpack(_call(student_fn, (X_arg, y_arg, 1.0, max_epochs), fn_name),
                  ("w", "b", "mistakes"), fn_name)
    _check_unchanged({"X": X, "y": y}, {"X": X_arg, "y": y_arg}, fn_name)
    w = _as_float(got[0], "w", fn_name)
    if w.shape != (2,):
        raise AssertionError(f"{fn_name}: w has shape {w.shape}; expected (2,), one per input")
    b = _as_scalar(got[1], "b", fn_name)
    mistakes = _as_float(got[2], "mistakes", fn_name).ravel()
    if mistakes.size == 0:
        raise AssertionError(f"{fn_name}: mistakes is empty; record one count per epoch")
    if gate == "xor":
        if mistakes.size != max_epochs or np.any(mistakes == 0):
            raise AssertionError(
                f"{fn_name}: mistakes per epoch are {mistakes.astype(int).tolist()}; XOR is not "
                f"linearly separable, so every one of the {max_epochs} epochs must make a mistake"
            )
        return
    pred = _perceptron_predict(w, b, X)
    if not np.array_equal(pred, y):
        raise AssertionError(
            f"{fn_name}: the returned w={w.tolist()}, b={b} classify the four points as "
            f"{pred.tolist()}, but the targets are {y.tolist()}"
        )
    if mistakes[-1] != 0 or np.any(mistakes[:-1] == 0):
        raise AssertionError(
            f"{fn_name}: mistakes per epoch are {mistakes.astype(int).tolist()}; training must "
            "stop right after the first epoch with no mistakes, and that epoch's count is 0"
        )


# --------------------------------------------------------------------------- ex07: the Value engine
#
# The checks of a scalar autodiff engine in micrograd's design: a class ``Value(data,
# _children=(), _op="")`` with ``.data``, ``.grad``, ``._prev`` (its inputs) and
# ``._backward`` (a closure that adds its share of ``out.grad`` into its inputs' grads).
# Each check grades one method only. A graph is a *program*: a list of instructions
# ``(op, arguments)`` over numbered nodes (the first ones are leaves). The grader runs it
# three ways: on floats (to take numerical gradients by central differences), in its own
# reverse mode on floats (the exact gradient, for the diagnosis), and on the student's
# class, where the operation under test is the student's and every other node is made by
# the grader with its own backward rule (so one broken method never fails another's check).

_VALUE_OPS = ("add", "mul", "pow", "tanh", "relu", "exp")
_OP_LABEL = {"add": "__add__", "mul": "__mul__", "pow": "__pow__", "tanh": "tanh",
             "relu": "relu", "exp": "exp"}


def _op_float(op: str, args: tuple, vals) -> float:
    if op == "add":
        return vals[args[0]] + vals[args[1]]
    if op == "mul":
        return vals[args[0]] * vals[args[1]]
    if op == "pow":
        return vals[args[0]] ** args[1]
    x = vals[args[0]]
    return {"tanh": np.tanh, "relu": lambda v: max(v, 0.0), "exp": np.exp}[op](x)


def _local_grads(op: str, args: tuple, vals, out: float) -> list[tuple[int, float]]:
    """``[(input node, d out / d input)]`` of one instruction (exact, the grader's rules)."""
    if op == "add":
        return [(args[0], 1.0), (args[1], 1.0)]
    if op == "mul":
        return [(args[0], vals[args[1]]), (args[1], vals[args[0]])]
    x = vals[args[0]]
    if op == "pow":
        n = args[1]
        return [(args[0], n * x ** (n - 1))]
    local = {"tanh": 1.0 - out ** 2, "relu": float(x > 0), "exp": out}[op]
    return [(args[0], local)]


def _run_floats(leaves: Sequence[float], program) -> list[float]:
    vals = [float(v) for v in leaves]
    for op, args in program:
        vals.append(float(_op_float(op, args, vals)))
    return vals


def _exact_grads(leaves, program) -> np.ndarray:
    """d(last node)/d(leaf) by the grader's own reverse mode on floats."""
    vals = _run_floats(leaves, program)
    grads = [0.0] * len(vals)
    grads[-1] = 1.0
    for k in range(len(program) - 1, -1, -1):
        op, args = program[k]
        node = len(leaves) + k
        for i, local in _local_grads(op, args, vals, vals[node]):
            grads[i] += local * grads[node]
    return np.array(grads[:len(leaves)])


def _numerical_grads(leaves, program) -> np.ndarray:
    x = np.array(leaves, dtype=np.float64)
    return numerical_gradient(lambda: _run_floats(x, program)[-1], x, h=TOLERANCE.h)


def _random_program(rng, n_leaves: int, n_ops: int, op: str, share: float = 0.5):
    """Leaves and a random program that uses ``op`` often and reuses nodes (fan-out).

    Every instruction's inputs are chosen so that the result stays real and moderate and
    no ReLU input is within 0.05 of its kink (central differences must not cross it).
    """
    leaves = list(rng.uniform(-1.5, 1.5, n_leaves))
    vals = list(leaves)
    program = []
    while len(program) < n_ops:
        kind = op if rng.random() < share else str(rng.choice(_VALUE_OPS))
        i = int(rng.integers(len(vals)))
        j = int(rng.integers(len(vals))) if rng.random() < 0.7 else i  # i twice: fan-out
        x = vals[i]
        if abs(x) > 8 and kind not in ("tanh", "relu"):
            kind = "tanh"
        if kind == "relu" and abs(x) < 0.05:
            continue
        if kind == "exp" and abs(x) > 3:
            continue
        if kind == "pow":
            choices = [2, 3] + ([-1, 0.5, 1.5] if x > 0.3 else [])
            args = (i, choices[int(rng.integers(len(choices)))])
            if abs(x) < 0.05 and args[1] < 1:
                continue
        elif kind in ("add", "mul"):
            args = (i, j)
        else:
            args = (i,)
        program.append((kind, args))
        vals.append(float(_op_float(kind, args, vals)))
    # the output: the sum of the last three nodes (so several paths reach it)
    n = len(vals)
    program += [("add", (n - 1, n - 2)), ("add", (n, n - 3))]
    return leaves, program


def _mlp_program(rng, n_in: int = 3, n_hidden: int = 4, act: str = "tanh"):
    """A 3-4-1 network with a squared error, as a program: inputs, weights, biases, target."""
    leaves = list(rng.uniform(-1, 1, n_in))                      # x
    w1 = list(rng.normal(0, 0.8, n_in * n_hidden))
    b1 = list(rng.normal(0, 0.3, n_hidden))
    w2 = list(rng.normal(0, 0.8, n_hidden))
    leaves += w1 + b1 + w2 + [float(rng.normal(0, 0.2)), float(rng.uniform(-1, 1)), -1.0]
    idx_b2, idx_t, idx_m1 = len(leaves) - 3, len(leaves) - 2, len(leaves) - 1
    program, hidden = [], []

    def emit(op, args):
        program.append((op, args))
        return len(leaves) + len(program) - 1

    vals = _run_floats(leaves, [])
    for h in range(n_hidden):
        acc = n_in + n_in * n_hidden + h                         # b1[h]
        for d in range(n_in):
            acc = emit("add", (acc, emit("mul", (d, n_in + h * n_in + d))))
        vals = _run_floats(leaves, program)
        if act == "relu" and abs(vals[acc]) < 0.05:              # keep away from the kink
            acc = emit("add", (acc, n_in + n_in * n_hidden + h))
        hidden.append(emit(act, (acc,)))
    y = idx_b2
    for h, node in enumerate(hidden):
        y = emit("add", (y, emit("mul", (node, n_in + n_in * n_hidden + n_hidden + h))))
    diff = emit("add", (y, emit("mul", (idx_t, idx_m1))))
    emit("pow", (diff, 2))
    return leaves, program


def _topo(out) -> list:
    """An iterative topological order over ``_prev`` (inputs first), bplib's own, applied to
    any object with ``_prev``: never the student's implementation of it."""
    from bplib.autodiff import Value

    return Value.topological_order(out)


def _grader_node(V, op: str, args: tuple, nodes: list, record=None):
    """A node of the student's class made by the grader, with the grader's backward rule."""
    used = args[:1] if op in ("pow", "tanh", "relu", "exp") else args
    vals = {i: float(nodes[i].data) for i in used}
    data = float(_op_float(op, args, vals))
    inputs = tuple(nodes[i] for i in used)
    out = V(data, inputs, "grader " + op)

    def _backward():
        if record is not None:
            record.append(out)
        for i, local in _local_grads(op, args, vals, data):
            nodes[i].grad += local * out.grad
    out._backward = _backward
    return out


def _student_node(op: str, args: tuple, nodes: list):
    a = nodes[args[0]]
    if op == "add":
        return a + nodes[args[1]]
    if op == "mul":
        return a * nodes[args[1]]
    if op == "pow":
        return a ** args[1]
    return getattr(a, op)()


def _build(V, leaves, program, student_op: str | None, record=None) -> list:
    nodes = [V(float(v)) for v in leaves]
    for op, args in program:
        if op == student_op:
            nodes.append(_student_node(op, args, nodes))
        else:
            nodes.append(_grader_node(V, op, args, nodes, record))
    return nodes


def _grads_of(nodes: list, n: int, fn_name: str) -> np.ndarray:
    out = []
    for k in range(n):
        g = nodes[k].grad
        try:
            out.append(float(g))
        except (TypeError, ValueError):
            raise AssertionError(f"{fn_name}: .grad of an input is {_describe(g)}, not a number; "
                                 "add a float into it (self.grad += ...)") from None
    return np.array(out)


def _refuse_bplib_value(V, fn_name: str) -> None:
    from bplib import autodiff

    if V is autodiff.Value or (isinstance(V, type) and issubclass(V, autodiff.Value)):
        raise AssertionError(f"{fn_name}: this is bplib's own Value; the exercise asks you to "
                             "write its backward rules yourself")


def _compare_graph(got, leaves, program, fn_name: str, what: str, hint: str = "") -> None:
    numerical = _numerical_grads(leaves, program)
    if grad_close(got, numerical):
        return
    bad = int(np.argmax(np.abs(got - numerical) / (TOLERANCE.atol + np.abs(numerical))))
    raise AssertionError(
        f"{fn_name}: on {what}, the gradient of input {bad} is {_fmt(got[bad])} but the "
        f"numerical gradient is {_fmt(numerical[bad])}{hint}")


_PROBE_MISTAKES = {  # op: [(what the student probably did, wrong d out/d x given x, n, out)]
    "add": [],
    "mul": [("multiplies by its own data instead of the other factor's "
             "(self.grad += self.data * out.grad)", lambda x, n, o: x)],
    "pow": [("forgot to lower the exponent by one: d(x**n)/dx = n * x**(n-1)",
             lambda x, n, o: n * x ** n),
            ("forgot the factor n: d(x**n)/dx = n * x**(n-1)", lambda x, n, o: x ** (n - 1))],
    "tanh": [("used 1 - x**2 where the derivative of tanh is 1 - tanh(x)**2 = 1 - out.data**2",
              lambda x, n, o: 1 - x ** 2)],
    "exp": [("used x where the derivative of exp(x) is exp(x) itself = out.data",
             lambda x, n, o: x)],
    "relu": [],
}


def _probe(V, op: str, seed: int) -> None:
    """One operation on fresh inputs whose grads are already non-zero, then ``out._backward()``
    with a random ``out.grad``: each input must gain exactly ``local * out.grad``."""
    fn_name = _OP_LABEL[op]
    rng = _rng(seed)
    sign = 1 if seed % 2 == 0 else -1
    a_val = float(rng.uniform(0.4, 1.6)) * (sign if op != "pow" else 1)
    b_val = float(rng.uniform(-1.6, -0.4))
    n = [2, 3, -1, 0.5, 1.5][seed % 5]
    a, b = V(a_val), V(b_val)
    before = float(rng.uniform(0.3, 0.9))
    a.grad, b.grad = before, -before
    out = {"add": lambda: a + b, "mul": lambda: a * b, "pow": lambda: a ** n,
           "tanh": lambda: a.tanh(), "relu": lambda: a.relu(), "exp": lambda: a.exp()}[op]()
    if not hasattr(out, "_backward") or not hasattr(out, "_prev"):
        raise AssertionError(f"{fn_name} returned {_describe(out)}; it must return a new Value")
    args = (0, 1) if op in ("add", "mul") else ((0, n) if op == "pow" else (0,))
    vals = [a_val, b_val]
    expected_out = float(_op_float(op, args, vals))
    if not np.isclose(float(out.data), expected_out, rtol=1e-12, atol=1e-15):
        raise AssertionError(f"{fn_name}: the forward value is {_fmt(out.data)} but should be "
                             f"{_fmt(expected_out)}; keep the given forward half as it is")
    g = float(rng.uniform(0.5, 2.0)) * -sign
    out.grad = g
    out._backward()
    local_grads = [lg for _, lg in _local_grads(op, args, vals, expected_out)]
    for k, (node, start) in enumerate([(a, before), (b, -before)][:len(local_grads)]):
        name = "self" if k == 0 else "other"
        got = _grads_of([node], 1, fn_name)[0]
        local = local_grads[k]
        want = start + local * g

        def near(value, got=got):
            return bool(np.isclose(got, value, rtol=1e-9, atol=1e-12))

        if near(want):
            continue
        x = vals[k]
        if op == "relu" and x <= 0 and not near(start):
            raise AssertionError("relu passes gradient where its input was negative: "
                                 "the derivative of max(0, x) is 0 for x <= 0")
        if op == "relu" and x > 0 and near(start):
            raise AssertionError("relu blocks the gradient where its input was positive: "
                                 "the derivative of max(0, x) is 1 for x > 0")
        if near(local * g):
            raise AssertionError(
                f"{fn_name}: {name}.grad lost the gradient it already had "
                f"({_fmt(start)} before, {_fmt(got)} after); the gradient of a value used "
                "twice counts one path only: accumulate with += instead of =")
        if near(start):
            raise AssertionError(
                f"{fn_name}: out._backward() left {name}.grad unchanged; it must add "
                f"d out/d {name} * out.grad into {name}.grad (did you set out._backward?)")
        if near(start + local):
            raise AssertionError(f"{fn_name}: {name}.grad gained the local derivative "
                                 "but not times out.grad: multiply by out.grad (the chain rule)")
        if near(start - local * g):
            raise AssertionError(f"{fn_name}: the gradient of {name} has the wrong sign")
        for description, wrong in _PROBE_MISTAKES[op]:
            if near(start + wrong(x, n, expected_out) * g):
                raise AssertionError(f"{fn_name}: {description}")
        raise AssertionError(
            f"{fn_name}: after out._backward() with out.grad = {_fmt(g)}, {name}.grad is "
            f"{_fmt(got)} but should be {_fmt(want)} ({_fmt(start)} it had + {_fmt(local)} "
            f"* {_fmt(g)})")


def _fan_out(V, op: str, seed: int) -> None:
    """The same Value used twice: ``a op a`` for a binary op, two uses of ``a`` otherwise."""
    fn_name = _OP_LABEL[op]
    rng = _rng(seed + 100)
    x = float(rng.uniform(0.4, 1.4))
    a = V(x)
    if op in ("add", "mul"):
        out = a + a if op == "add" else a * a
        out.grad = 1.0
        out._backward()
        want, one = (2.0, 1.0) if op == "add" else (2 * x, x)
        what = f"a {'+' if op == 'add' else '*'} a"
    else:
        program = [(op, (0, 2) if op == "pow" else (0,)), (op, (0, 3) if op == "pow" else (0,))]
        nodes = _build(V, [x], program, op)
        a = nodes[0]
        for node in nodes[1:]:
            node.grad = 1.0
            node._backward()
        locals_ = [_local_grads(o, ar, [x], _op_float(o, ar, [x]))[0][1] for o, ar in program]
        want, one = sum(locals_), locals_[1]
        what = f"two {fn_name} nodes of the same a"
    got = _grads_of([a], 1, fn_name)[0]
    if np.isclose(got, want, rtol=1e-9, atol=1e-12):
        return
    if np.isclose(got, one, rtol=1e-9, atol=1e-12):
        raise AssertionError(f"{fn_name}: in {what}, the gradient of a value used twice counts "
                             "one path only: accumulate with += instead of =")
    raise AssertionError(f"{fn_name}: in {what}, a.grad is {_fmt(got)} but should be "
                         f"{_fmt(want)} (the sum over both paths)")


def _grader_backward(out) -> None:
    out.grad = 1.0
    for v in reversed(_topo(out)):
        v._backward()


def _check_value_op(V, op: str, seed: int, graphs: int) -> None:
    fn_name = _OP_LABEL[op]
    _refuse_bplib_value(V, fn_name)
    with _strict_floats(fn_name):
        _probe(V, op, 2 * seed)  # a positive and a negative input
        _probe(V, op, 2 * seed + 1)
        _fan_out(V, op, seed)
        for k in range(graphs):
            rng = _rng(1000 * seed + k)
            leaves, program = _random_program(rng, n_leaves=3, n_ops=12, op=op)
            nodes = _build(V, leaves, program, op)
            _grader_backward(nodes[-1])
            _compare_graph(_grads_of(nodes, len(leaves), fn_name), leaves, program, fn_name,
                           f"a random graph (seed {seed}.{k})")
        if op in ("add", "mul", "tanh", "relu"):
            leaves, program = _mlp_program(_rng(seed + 7), act="relu" if op == "relu" else "tanh")
            nodes = _build(V, leaves, program, op)
            _grader_backward(nodes[-1])
            _compare_graph(_grads_of(nodes, len(leaves), fn_name), leaves, program, fn_name,
                           "a small MLP made of Values")


def check_value_add(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.__add__``: its ``_backward`` adds ``out.grad`` into both inputs' grads."""
    _check_value_op(V, "add", seed, graphs)


def check_value_mul(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.__mul__``: each input gains the other's data times ``out.grad``."""
    _check_value_op(V, "mul", seed, graphs)


def check_value_pow(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.__pow__`` (a number exponent n): ``n * x**(n-1) * out.grad``."""
    _check_value_op(V, "pow", seed, graphs)


def check_value_tanh(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.tanh``: ``(1 - out.data**2) * out.grad``."""
    _check_value_op(V, "tanh", seed, graphs)


def check_value_relu(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.relu``: ``out.grad`` where the input was positive, nothing elsewhere."""
    _check_value_op(V, "relu", seed, graphs)


def check_value_exp(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.exp``: ``out.data * out.grad``."""
    _check_value_op(V, "exp", seed, graphs)


def check_value_backward(V, seed: int = 0, graphs: int = 1, depth: int = 200) -> None:
    """``Value.backward``: the output's grad set to 1, then every node's ``_backward`` once,
    each after all the nodes that use it (a topological order), iteratively.

    Every node is made by the grader with its own rules, so only ``backward`` is graded:
    random graphs with values used several times, a small MLP, a chain ``depth`` long.
    """
    fn_name = "backward"
    _refuse_bplib_value(V, fn_name)
    x = V(float(_rng(seed).uniform(-2, 2)))
    with _strict_floats(fn_name):
        x.backward()
    if not np.isclose(_grads_of([x], 1, fn_name)[0], 1.0):
        raise AssertionError("backward: after x.backward() on a lone Value, x.grad is "
                             f"{_fmt(x.grad)}; d self / d self = 1: set self.grad = 1 first")
    # u = tanh(x), w = tanh(u), out = u + w: u is used by out and by w, so its _backward
    # must wait for w's (a breadth-first walk from out runs it first)
    problems = [([0.4], [("tanh", (0,)), ("tanh", (1,)), ("add", (1, 2))],
                 "out = u + tanh(u) with u = tanh(x)")]
    for k in range(graphs + 1):
        rng = _rng(2000 * seed + k)
        if k == graphs:
            leaves, program = _mlp_program(rng)
            what = "a small MLP made of Values"
        else:
            leaves, program = _random_program(rng, 3, 14, "add", share=0.3)
            what = f"a random graph (seed {seed}.{k})"
        problems.append((leaves, program, what))
    # a chain: x -> tanh -> ... -> tanh, each step also reusing x (so x fans out `depth` times)
    chain = [("mul", (0, 0))]
    for _ in range(depth):
        chain += [("tanh", (len(chain),)), ("add", (len(chain) + 1, 0))]
    problems.append(([0.3], chain, f"a chain of {len(chain)} nodes"))
    for leaves, program, what in problems:
        record: list = []
        nodes = _build(V, leaves, program, None, record)
        out = nodes[-1]
        try:
            with _strict_floats(fn_name):
                out.backward()
        except RecursionError:
            raise AssertionError(
                f"backward: RecursionError on {what}: a graph deeper than Python's recursion "
                "limit (an unrolled RNN) must work: build the topological order with a loop "
                "and an explicit stack, not a recursive function") from None
        _check_order(record, nodes, len(leaves), what)
        got = _grads_of(nodes, len(leaves), fn_name)
        _compare_graph(got, leaves, program, fn_name, what,
                       hint=" (did backward set the output's grad to 1 and run each node once?)")


def _check_order(record: list, nodes: list, n_leaves: int, what: str) -> None:
    made = [n for n in _topo(nodes[-1]) if n._prev]  # the grader's nodes the output uses
    counts: dict[int, int] = {}
    for node in record:
        counts[id(node)] = counts.get(id(node), 0) + 1
    if any(c > 1 for c in counts.values()):
        raise AssertionError(
            f"backward: on {what}, the _backward of a node ran more than once (a value used "
            "several times was visited once per use): keep a set of visited nodes")
    missing = [n for n in made if id(n) not in counts]
    if missing:
        raise AssertionError(
            f"backward: on {what}, {len(missing)} of the {len(made)} nodes never ran their "
            "_backward: visit every node the output depends on (through _prev)")
    position = {id(n): i for i, n in enumerate(record)}
    for node in made:
        for child in node._prev:
            if id(child) in position and position[id(child)] < position[id(node)]:
                raise AssertionError(
                    f"backward: on {what}, backward visits a node before all its parents: "
                    "a node's _backward must run only after every node that uses it has "
                    "passed its gradient on; use a topological order, reversed")
