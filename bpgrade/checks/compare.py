"""What every exercise's checks share: reading what came back, comparing it, and the words.

Each ``check_*`` function calls a student's function on inputs the student has not seen
(drawn from a seeded generator), compares what comes back with what the grader computes
itself, and raises a :class:`~bpgrade.checks.diagnoses.Diagnosis` that says what is wrong:

- the return value: ``None``, not a tuple, a tuple of the wrong length, not numbers;
- a shape: ``"dW has shape (5, 3) but W has shape (3, 5): it is transposed"``;
- NaN or infinity, overflow on large inputs (the student's code runs under
  ``np.errstate(over="raise", divide="raise", invalid="raise")``);
- an input modified in place where the contract says the function is pure;
- the values: a wrong sign, a transposed square matrix, a constant factor
  (``"a factor of about 0.2 = 1/N: did you divide by the batch size twice?"``),
  a known mistake recognised by its id, otherwise the worst entry
  (``"relative error 0.41 at index (2, 1): analytic 0.12, numerical -0.07"``).

Gradients are compared with a numerical gradient computed by the grader by central
differences (:func:`bplib.gradcheck.numerical_gradient`) of the *reference* forward
function or loss, never of the student's, with the one tolerance
:data:`bplib.gradcheck.TOLERANCE`. That comparison diagnoses mistakes, but finite
differences meet its tolerance too, so a gradient that passes it must also agree with the
*analytic* reference (bplib's backward function, called by the grader on its own copies)
to within rounding (:func:`check_derived`, :data:`DERIVED_RTOL`).

The student's returned objects are never trusted: :func:`call` copies what the student's
function returned into plain data (:func:`~bpgrade.checks._trust.plain`) and then checks
that numpy, bplib and the builtins are as they were (:func:`~bpgrade.checks._trust.verify`),
before anything is compared; every input is a copy, kept again to detect mutation.

The bound of the derived comparison follows the rounding the inputs allow: the grader
perturbs the reference's inputs by a few units of rounding and measures how far the
reference moves (:func:`rounding_allowance`); a derived gradient may be
:data:`DERIVED_SPREAD` times that far off, and never less than :data:`DERIVED_RTOL`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager

import numpy as np

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks._trust import Opaque, plain, verify
from bpgrade.checks.diagnoses import diagnose
from bpgrade.language import N_, render, text
from bplib.gradcheck import TOLERANCE, Tolerance, grad_close

__all__ = ["DERIVED_RTOL", "check_array", "check_value", "expect"]

#: The least bound of the derived comparison, ``max|got - ref| / max|ref|`` over one
#: gradient array: on inputs of moderate size rounding moves the reference far less, and
#: analytic variants (``@``, ``np.dot``, einsum, loops, sigmoid and tanh recomputed from x,
#: softmax by hand) are at most 4e-16 off; central differences with h = 1e-5 at least
#: 9e-13, the best difference quotient (five-point, h = 1e-3) at least 1.1e-13.
DERIVED_RTOL = 1e-14
#: How many times the spread of the reference under rounding-size perturbations of its
#: inputs (:func:`rounding_allowance`) a derived gradient may be off. Measured, with the
#: false-reject and catch rates: ``python -m tests.test_not_numerical``.
DERIVED_SPREAD = 16.0
_PERTURB = 4.0  # the perturbation, in units of rounding of each input entry
_EPS = float(np.finfo(np.float64).eps)

Mistake = tuple[str, str, Callable[..., np.ndarray]]
"""A known mistake of a backward function: (gradient name, diagnosis id, the wrong result)."""


# --------------------------------------------------------------------------- return values


def describe(obj) -> str:
    """A few words for what the student returned: ``"an array of shape (3,)"``."""
    if obj is None:
        return "None"
    if isinstance(obj, Opaque):
        return text("a {kind}", kind=obj.name)
    if isinstance(obj, np.ndarray):
        return text("an array of shape {shape}", shape=obj.shape)
    if isinstance(obj, (tuple, list)):
        return text("a {kind} of length {n}", kind=type(obj).__name__, n=len(obj))
    return text("a {kind}", kind=type(obj).__name__)


def unpack(result, names: Sequence[str], fn_name: str) -> tuple:
    """Split the student's return value into ``len(names)`` parts, or explain why not."""
    expected = "(" + ", ".join(names) + ")"
    if result is None:
        raise diagnose("returned-none", fn=fn_name, expected=expected)
    if len(names) == 1:
        return (result,)
    if not isinstance(result, (tuple, list)):
        raise diagnose("not-a-tuple", fn=fn_name, got=describe(result), expected=expected)
    if len(result) != len(names):
        raise diagnose("wrong-count", fn=fn_name, kind=type(result).__name__,
                       count=len(result), want=len(names), expected=expected)
    return tuple(result)


def as_float(value, name: str, fn_name: str) -> np.ndarray:
    """A new float64 array of what the student returned for ``name``."""
    if value is None:
        raise diagnose("entry-none", fn=fn_name, name=name)
    if isinstance(value, Opaque):
        if value.array is None:
            raise diagnose("not-numbers", fn=fn_name, name=name, got=describe(value),
                           error=value.error)
        return np.array(value.array, dtype=np.float64)
    try:
        arr = np.array(value, dtype=np.float64)  # a copy: nothing the student returned is kept
    except (TypeError, ValueError) as exc:
        raise diagnose("not-numbers", fn=fn_name, name=name, got=describe(value),
                       error=exc) from None
    return arr


def as_scalar(value, name: str, fn_name: str) -> float:
    """One finite number, or the diagnosis of why not."""
    arr = as_float(value, name, fn_name)
    if arr.size != 1:
        raise diagnose("not-one-number", fn=fn_name, name=name, shape=arr.shape)
    x = float(arr.reshape(()))
    if not np.isfinite(x):
        raise diagnose("not-finite", fn=fn_name, name=name, value=x, where="")
    return x


_UNSTABLE = {"overflow": "unstable-overflow", "divide": "unstable-log-zero",
             "invalid": "unstable-nan"}


@contextmanager
def strict_floats(fn_name: str, inputs: str = ""):
    """Turn overflow, division by zero and invalid operations into a diagnosis."""
    with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
        try:
            yield
        except FloatingPointError as exc:
            kind = next((k for k in _UNSTABLE if k in str(exc)), "invalid")
            raise diagnose(_UNSTABLE[kind], fn=fn_name, error=exc,
                           inputs=text(" on {inputs}", inputs=inputs) if inputs else "") from None


def call(fn: Callable, args: Sequence, fn_name: str, inputs: str = "", strict: bool = True):
    """What ``fn(*args)`` returns, as plain data (:func:`~bpgrade.checks._trust.plain`),
    once numpy, bplib and the builtins are verified to be as they were; with ``strict``,
    overflow and invalid operations are diagnosed (:func:`strict_floats`)."""
    if strict:
        with strict_floats(fn_name, inputs):
            result = plain(fn(*args))
    else:
        with np.errstate(all="ignore"):
            result = plain(fn(*args))
    verify(fn_name)
    return result


def refuse_reference(student_fn, reference_fn, fn_name: str) -> None:
    """Refuse bplib's own function handed in as the student's."""
    if student_fn is reference_fn:
        raise diagnose("reference-used", fn=fn_name, what=N_("function"))


def check_unchanged(saved: dict, current: dict, fn_name: str, hints: dict | None = None) -> None:
    """Each ``current[name]`` must still equal the copy ``saved[name]`` taken before the call."""
    for name, before in saved.items():
        after = current[name]
        if np.shape(after) != np.shape(before) or not np.array_equal(
            np.asarray(after), before, equal_nan=True
        ):
            hint = (hints or {}).get(name, N_("work on a copy or build a new array instead"))
            raise diagnose("input-modified", fn=fn_name, name=name, hint=hint)


def copy_tree(obj):
    """A copy of nested tuples and lists of arrays."""
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, (tuple, list)):
        return type(obj)(copy_tree(o) for o in obj)
    return obj


def tree_equal(a, b) -> bool:
    """Whether two nested tuples/lists of arrays are equal, entry by entry."""
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.shape == b.shape and np.array_equal(a, b)
    if isinstance(a, (tuple, list)):
        return len(a) == len(b) and all(tree_equal(x, y) for x, y in zip(a, b, strict=True))
    return a == b


def rng(seed: int) -> np.random.Generator:
    """The grader's generator for ``seed`` (the student never sees these inputs)."""
    return np.random.default_rng([20240611, seed])


# --------------------------------------------------------------------------- comparing arrays


def fmt(x: float) -> str:
    """A number in messages: four significant digits."""
    return f"{x:.4g}"


def factor_id(ratio: float, batch_size: int | None) -> str:
    """The diagnosis of a constant factor between the student's result and the right one."""
    if batch_size and batch_size > 1:
        if np.isclose(ratio, 1 / batch_size, rtol=1e-3):
            return "factor-batch-twice"
        if np.isclose(ratio, batch_size, rtol=1e-3):
            return "factor-batch-missing"
    if np.isclose(ratio, 2, rtol=1e-3):
        return "factor-two"
    if np.isclose(ratio, 0.5, rtol=1e-3):
        return "factor-half"
    return "constant-factor"


def fitted_factor(got: np.ndarray, expected: np.ndarray) -> float | None:
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


def _evaluate(wrong) -> np.ndarray | None:
    """The result of a known mistake (an array or a function of no arguments computing it),
    or ``None`` when that mistake is impossible for these shapes."""
    try:
        with np.errstate(all="ignore"):
            return np.asarray(wrong() if callable(wrong) else wrong, dtype=np.float64)
    except (ValueError, ArithmeticError):
        return None


def _same(arr: np.ndarray, wrong: np.ndarray, tol: Tolerance) -> bool:
    """``arr`` is ``wrong`` to the tolerance, NaN where ``wrong`` is NaN."""
    if wrong.shape != arr.shape:
        return False
    nan = np.isnan(wrong)
    if not np.array_equal(nan, np.isnan(arr)):
        return False
    return grad_close(arr[~nan], wrong[~nan], tol)


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
    mistakes : pairs (diagnosis id, the result of that mistake or a function of no
        arguments computing it, called only when the values are wrong)

    Raises
    ------
    Diagnosis
        naming the first thing that is wrong (and ``IntegrityError`` when numpy, bplib
        or the builtins are not what they were).
    """
    got = plain(got)
    verify(fn_name)
    compare_array(got, expected, name, fn_name, like=like, like_shape=like_shape,
                  reference=reference, batch_size=batch_size, mistakes=mistakes, tol=tol)


def compare_array(got, expected, name, fn_name, *, like=None, like_shape=None,
                  reference="numerical", batch_size=None, mistakes=(), tol=TOLERANCE) -> None:
    """:func:`check_array` on plain, verified data (what :func:`call` returned)."""
    expected = np.asarray(expected, dtype=np.float64)
    arr = as_float(got, name, fn_name)
    what = text("{fn}: {name}", fn=fn_name, name=name)
    if arr.shape != expected.shape:
        raise shape_diagnosis(what, arr, expected.shape, like, like_shape, mistakes, tol)
    bad = ~np.isfinite(arr)
    if bad.any() and not any(_same(arr, w, tol) for w in _mistake_results(mistakes)):
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise diagnose("not-finite", fn=fn_name, name=name, value=arr[idx],
                       where=text(" at index {index}", index=idx))
    if not bad.any() and grad_close(arr, expected, tol):
        return
    raise value_diagnosis(what, arr, expected, reference, batch_size, mistakes, tol)


def _mistake_results(mistakes):
    for _, wrong in mistakes:
        result = _evaluate(wrong)
        if result is not None:
            yield result


def shape_diagnosis(what, arr, want_shape, like, like_shape, mistakes=(), tol=TOLERANCE):
    """The diagnosis of ``arr`` having another shape than ``want_shape``."""
    got_shape = arr.shape
    target = (text("{like} has shape {shape}", like=like, shape=like_shape) if like
              else text("expected shape {shape}", shape=want_shape))
    fields = {"what": what, "got": got_shape, "target": target, "want": want_shape}
    for id_, wrong in mistakes:
        result = _evaluate(wrong)
        if result is not None and result.shape == got_shape != want_shape and \
                _same(arr, result, tol):
            return diagnose(id_, **fields)
    if len(got_shape) == 2 and got_shape == tuple(reversed(want_shape)):
        return diagnose("transposed", what=what,
                        detail=text("has shape {got} but {target}: it is transposed",
                                    got=got_shape, target=target))
    if tuple(s for s in got_shape if s != 1) == tuple(s for s in want_shape if s != 1):
        return diagnose("shape-extra-axis", **fields)
    return diagnose("wrong-shape", **fields)


def value_diagnosis(what, arr, expected, reference, batch_size, mistakes, tol):
    """The diagnosis of values that differ from ``expected`` (same shape)."""
    ref = N_("the numerical gradient") if reference == "numerical" else N_("the expected value")
    for id_, wrong in mistakes:
        result = _evaluate(wrong)
        if result is not None and _same(arr, result, tol):
            return diagnose(id_, what=what)
    if grad_close(-arr, expected, tol):
        return diagnose("wrong-sign", what=what, reference=ref)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] > 1 and grad_close(arr.T, expected, tol):
        return diagnose("transposed", what=what,
                        detail=text("is the transpose of {reference} (the shapes agree only "
                                    "because the matrix is square)", reference=ref))
    if not np.any(arr) and np.any(expected):
        return diagnose("all-zeros", what=what, reference=ref)
    c = fitted_factor(arr, expected) if np.all(np.isfinite(arr)) else None
    if c is not None:
        return diagnose(factor_id(abs(c), batch_size), what=what, reference=ref,
                        factor=fmt(c), sign=N_(" and the opposite sign") if c < 0 else "",
                        n=batch_size)
    with np.errstate(invalid="ignore"):
        excess = np.abs(arr - expected) - (tol.atol + tol.rtol * np.maximum(np.abs(arr),
                                                                             np.abs(expected)))
    excess = np.where(np.isnan(excess), np.inf, excess)
    idx = np.unravel_index(int(np.argmax(excess)), arr.shape)
    a, n = float(arr[idx]), float(expected[idx])
    rel = abs(a - n) / max(1e-8, abs(a) + abs(n))
    where = text(" at index {index}", index=tuple(int(i) for i in idx)) if arr.ndim else ""
    word = N_("numerical") if reference == "numerical" else N_("expected")
    return diagnose("wrong-values", what=what, error=f"{rel:.2g}", where=where, got=fmt(a),
                    word=word, want=fmt(n))


def derived_error(got, reference) -> float:
    """``max|got - ref| / max|ref|``: how far ``got`` is from the analytic reference."""
    g = np.asarray(got, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if g.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(r))), float(np.finfo(np.float64).tiny))
    return float(np.max(np.abs(g - r))) / scale


def derived_close(got, reference, allowed: float = DERIVED_RTOL) -> bool:
    """Whether ``got`` is the analytic ``reference`` to within ``allowed`` (relative to the
    largest entry of ``reference``)."""
    return derived_error(got, reference) <= max(allowed, DERIVED_RTOL)


def rounding_allowance(reference_fn: Callable, args: Sequence, draws: int = 3,
                       moved: Sequence[int] | None = None) -> list[float]:
    """How far rounding may move each array ``reference_fn(*args)`` returns, relative to its
    largest entry, times :data:`DERIVED_SPREAD` (at least :data:`DERIVED_RTOL`).

    Every float64 array of ``args`` (of those at the indexes ``moved``, if given: not the
    targets of a loss, which must stay 0 or 1) is perturbed entry by entry by up to
    :data:`_PERTURB` units of rounding (``x * (1 + 4 eps u)``, ``u`` uniform in [-1, 1]),
    ``draws`` times; the reference's largest relative move is the spread. An algorithm
    that is right to rounding lands within a small multiple of it; the quotient of two
    rounded values of a function does not (its error is ``eps / h`` and ``h**2``).
    """
    base = _as_tuple(reference_fn(*args))
    gen = rng(7)
    spread = [0.0] * len(base)
    for _ in range(draws):
        nudged = [a * (1 + _PERTURB * _EPS * gen.uniform(-1, 1, np.shape(a)))
                  if isinstance(a, np.ndarray) and a.dtype == np.float64
                  and (moved is None or i in moved) else a for i, a in enumerate(args)]
        for k, (b, m) in enumerate(zip(base, _as_tuple(reference_fn(*nudged)), strict=True)):
            spread[k] = max(spread[k], derived_error(m, b))
    return [max(DERIVED_RTOL, DERIVED_SPREAD * s) for s in spread]


def _as_tuple(result) -> tuple:
    return tuple(result) if isinstance(result, (tuple, list)) else (result,)


def check_derived(got, reference, name: str, fn_name: str, *, where: str = "",
                  allowed: float = DERIVED_RTOL) -> None:
    """Refuse a gradient that matches the analytic ``reference`` only as well as finite differences.

    Called once ``got`` (plain, verified data) has passed the numerical comparison (so it
    has the right shape and is right to :data:`TOLERANCE`); ``reference`` is computed by
    the grader with bplib's backward functions, ``allowed`` by :func:`rounding_allowance`.
    """
    dtype = getattr(got, "dtype", None)
    low = str(dtype) if dtype in (np.float16, np.float32) else ""  # rounding, not a quotient
    got, reference = as_float(got, name, fn_name), np.asarray(reference)
    if got.shape != reference.shape:
        raise shape_diagnosis(text("{fn}: {name}{where}", fn=fn_name, name=name, where=where),
                              got, reference.shape, None, None)
    if derived_close(got, reference, allowed):
        return
    err = derived_error(got, reference)
    if low:
        raise diagnose("low-precision", fn=fn_name, name=name, dtype=low, error=f"{err:.0e}")
    raise diagnose("looks-numerical", fn=fn_name, name=name, where=where, error=f"{err:.0e}",
                   allowed=f"{max(allowed, DERIVED_RTOL):.0e}")


_NUMBER_TYPES = frozenset({int, float, np.float64, np.float32, np.int64, np.int32})


def check_value(got, expected, name: str = N_("value"),
                fn_name: str = N_("your function")) -> None:
    """Compare a result with a hand-computed expected value (visible tests).

    Two numbers are compared on floats, without numpy (exercise 7's visible tests);
    anything else as arrays, by :func:`check_array`.
    """
    if type(got) in _NUMBER_TYPES and type(expected) in _NUMBER_TYPES:
        return _check_number(float(got), float(expected), name, fn_name)
    check_array(got, np.asarray(expected, dtype=np.float64), name, fn_name, reference="expected")


_RTOL, _ATOL = float(TOLERANCE.rtol), float(TOLERANCE.atol)


def _check_number(got: float, want: float, name: str, fn_name: str) -> None:
    """One number against the expected one, in the words of :func:`value_diagnosis`."""
    def close(a, b):
        return abs(a - b) <= _ATOL + _RTOL * max(abs(a), abs(b))

    what = text("{fn}: {name}", fn=fn_name, name=name)
    if got != got or got in (float("inf"), float("-inf")):
        raise diagnose("not-finite", fn=fn_name, name=name, value=got, where="")
    if close(got, want):
        return
    if close(-got, want):
        raise diagnose("wrong-sign", what=what, reference=N_("the expected value"))
    if got == 0.0:
        raise diagnose("all-zeros", what=what, reference=N_("the expected value"))
    rel = abs(got - want) / max(1e-8, abs(got) + abs(want))
    raise diagnose("wrong-values", what=what, error=f"{rel:.2g}", where="", got=fmt(got),
                   word=N_("expected"), want=fmt(want))


def expect(condition, message: str, **fields) -> None:
    """A test cell's own check, for what the numpy-only checks cannot look at (exercise
    6's Keras models): unless ``condition`` holds, an ``AssertionError`` whose text is
    ``message`` (a ``str.format`` template, which ``tools.i18n`` extracts from the test
    cells into the catalog of the grader's messages) filled with ``fields``, in the
    language of the checks' messages."""
    if not condition:
        raise AssertionError(render(message, fields))


def check_loss_value(got, expected: float, fn_name: str, batch_size: int,
                     mistakes: Sequence[tuple[str, Callable[[], float]]] = ()) -> float:
    """The student's loss, one finite number equal to ``expected``, or its diagnosis."""
    loss = as_scalar(got, N_("the loss"), fn_name)
    if np.isclose(loss, expected, rtol=TOLERANCE.rtol, atol=TOLERANCE.atol):
        return loss
    fields = {"fn": fn_name, "got": fmt(loss), "want": fmt(expected)}
    for id_, wrong_fn in mistakes:
        if np.isclose(loss, wrong_fn(), rtol=TOLERANCE.rtol, atol=TOLERANCE.atol):
            raise diagnose(id_, **fields)
    ratio = loss / expected if expected != 0 else None
    if ratio is not None and np.isclose(ratio, -1, rtol=1e-4):
        raise diagnose("loss-wrong-sign", **fields)
    factor = factor_id(ratio, batch_size) if ratio is not None and ratio > 0 else ""
    if factor and factor != "constant-factor":
        raise diagnose(factor, what=text("{fn}: the loss {loss}", fn=fn_name, loss=fmt(loss)),
                       reference=text("the right value {value}", value=fmt(expected)),
                       factor=fmt(ratio), sign="", n=batch_size)
    raise diagnose("wrong-loss", ratio=text(", a factor of {factor}", factor=fmt(ratio))
                   if factor else "", **fields)
