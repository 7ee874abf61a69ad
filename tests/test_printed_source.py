"""What the chapters print of bplib is the math; the checks run before it, through the public name.

Chapters show bplib's functions with ``print(inspect.getsource(...))``. The
printed body must be the formula of the chapter (short, no ``raise``, no shape
checks): the argument checks live in the validator named on the function's
``@checked(...)`` line (``bplib/_validate.py``). These tests find every such
print in ``chapters/*.md``, so a new one is covered (or fails, asking for a
bad call below), and they fail if a check moves back into a printed body. The
same holds for every function a validator guards and no chapter prints: a
``raise``, a ``require_*`` call or a shape comparison in its body fails too.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

import bplib
import bplib.functional as F
import bplib.optim
from bplib import McCullochPittsUnit

REPO_ROOT = Path(__file__).resolve().parent.parent
MAX_BODY_LINES = 12  # statements after the docstring, comments included

PRINT = re.compile(r"print\(inspect\.getsource\(([\w.]+)\)\)")


def printed_in_chapters() -> dict[str, object]:
    """``{"chapters/02_forward.md: bplib.functional.linear_forward": the object}``."""
    namespace = {"bplib": bplib, "F": F, "McCullochPittsUnit": McCullochPittsUnit}
    found = {}
    for md in sorted((REPO_ROOT / "chapters").glob("*.md")):
        for expr in PRINT.findall(md.read_text(encoding="utf-8")):
            obj = namespace[expr.split(".")[0]]
            for attr in expr.split(".")[1:]:
                obj = getattr(obj, attr)
            found[f"chapters/{md.name}: {expr}"] = obj
    return found


PRINTED = printed_in_chapters()

# Lines that only a check has: they belong in the validator, not in the printed body.
CHECK_LINE = re.compile(
    r"\braise\b|\bas_float_array\b|\bas_labels\b|\brequire_\w+|_same_shape|\.shape\s*[!=]="
    r"|\.ndim\s*(!=|not in)|np\.isin\b|\bisinstance\b"
)


def body_lines(fn) -> list[str]:
    """Source lines of ``fn``'s body after its docstring (as ``inspect.getsource`` prints them)."""
    source = textwrap.dedent(inspect.getsource(fn))
    (node,) = ast.parse(source).body
    stmts = node.body
    if stmts and isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant):
        stmts = stmts[1:]  # the docstring
    lines = source.splitlines()
    return lines[stmts[0].lineno - 1: stmts[-1].end_lineno]


def test_the_chapters_print_the_functions_this_file_expects():
    names = {key.split(": ")[1].split(".")[-1] for key in PRINTED}
    assert {"linear_forward", "linear_backward", "mse_loss", "softmax_cross_entropy",
            "logsumexp", "sgd_update", "sgd_momentum_update", "adam_update",
            "__call__"} <= names, sorted(names)


@pytest.mark.parametrize("key", list(PRINTED))
def test_a_printed_function_is_its_formula_with_the_checks_on_its_decorator_line(key):
    fn = PRINTED[key]
    source = inspect.getsource(fn)
    assert source.lstrip().startswith("@checked("), (
        f"{key} prints without its @checked(...) line:\n{source}")
    checks = [line for line in body_lines(fn) if CHECK_LINE.search(line)]
    assert not checks, f"{key} prints argument checks in its body: {checks}"
    body = body_lines(fn)
    assert len(body) <= MAX_BODY_LINES, (
        f"{key} prints {len(body)} lines after its docstring (at most {MAX_BODY_LINES}):\n"
        + "\n".join(body))


# One call per printed function with arguments that do not fit, the error it
# must raise, and what the message must name (for shapes: both of them).
BAD_CALLS = {
    "linear_forward": (lambda: F.linear_forward(np.ones((2, 5)), np.ones((3, 4)), np.ones(4)),
                       ValueError, ("(2, 5)", "(3, 4)")),
    "linear_backward": (lambda: F.linear_backward(
        np.ones((4, 2)), F.linear_forward(np.ones((2, 3)), np.ones((3, 4)), np.zeros(4))[1]),
                        ValueError, ("(4, 2)", "(2, 4)")),
    "mse_loss": (lambda: F.mse_loss(np.ones((4, 1)), np.ones(4)),
                 ValueError, ("(4, 1)", "(4,)")),
    "softmax_cross_entropy": (lambda: F.softmax_cross_entropy(np.zeros((2, 3)), np.eye(3)[:2]),
                              ValueError, ("(2, 3)", "(2,)")),
    # logsumexp takes any shape; what it checks is that x holds numbers
    "logsumexp": (lambda: F.logsumexp(["a", "b"]), TypeError, ("x", "numbers")),
    "sgd_update": (lambda: bplib.sgd_update(np.ones(3), np.ones((3, 1)), 0.1),
                   ValueError, ("(3,)", "(3, 1)")),
    "sgd_momentum_update": (lambda: bplib.sgd_momentum_update(
        np.ones(3), np.ones(3), np.zeros(2), 0.1, 0.9), ValueError, ("(3,)", "(2,)")),
    "adam_update": (lambda: bplib.adam_update(
        np.ones((2, 3)), np.ones((3, 2)), np.zeros((2, 3)), np.zeros((2, 3)), 1,
        0.1, 0.9, 0.999, 1e-8), ValueError, ("(2, 3)", "(3, 2)")),
    "__call__": (lambda: McCullochPittsUnit([1, 1], 2)(np.ones((4, 3))),
                 ValueError, ("(4, 3)", "2 inputs")),
}


@pytest.mark.parametrize("key", list(PRINTED))
def test_the_checks_still_run_through_the_public_name(key):
    name = key.split(".")[-1]
    assert name in BAD_CALLS, f"add a bad call for {key} to BAD_CALLS"
    call, error, must_name = BAD_CALLS[name]
    with pytest.raises(error) as info:
        call()
    missing = [s for s in must_name if s not in str(info.value)]
    assert not missing, f"{key}: {info.value!s} does not name {missing}"


# --------------------------------------------------------------------------- every public function


def checked_functions():
    names = [(F, n) for n in F.__all__]
    names += [(bplib.optim, n) for n in bplib.optim.__all__ if n.endswith("_update")]
    return {f"{mod.__name__}.{n}": getattr(mod, n) for mod, n in names}


@pytest.mark.parametrize("name", list(checked_functions()))
def test_every_function_and_update_rule_is_checked_by_a_validator_of_its_own_signature(name):
    fn = checked_functions()[name]
    assert hasattr(fn, "validate") and hasattr(fn, "__wrapped__"), f"{name} is not @checked"
    params = inspect.signature(fn.__wrapped__).parameters.values()
    wanted = [(p.name, p.kind, p.default) for p in params]
    got = [(p.name, p.kind, p.default)
           for p in inspect.signature(fn.validate).parameters.values()]
    assert got == wanted, (
        f"{name}: validator {fn.validate.__name__} takes {got}, the function {wanted}")


# --------------------------------------------------------------------------- every guarded body
# A function that a validator guards (``@checked(...)``, anywhere in bplib), and the in-place
# twin its decorator names, keeps no check in its body, printed by a chapter or not: a
# ``require_*`` call, a shape or ndim comparison or a ``raise`` moved back from the validator
# fails here. Found in the source, so a new guarded function is covered without a list.


def _is_checked(node: ast.FunctionDef) -> ast.Call | None:
    for decorator in node.decorator_list:
        if (isinstance(decorator, ast.Call) and isinstance(decorator.func, ast.Name)
                and decorator.func.id == "checked"):
            return decorator
    return None


def _body_of(node: ast.FunctionDef, lines: list[str]) -> list[str]:
    stmts = node.body
    if stmts and isinstance(stmts[0], ast.Expr) and isinstance(stmts[0].value, ast.Constant):
        stmts = stmts[1:]  # the docstring
    return lines[stmts[0].lineno - 1: stmts[-1].end_lineno] if stmts else []


def guarded_bodies() -> dict[str, list[str]]:
    """``{"bplib/optim.py: adam_update": its body's lines}`` for every guarded function
    and every in-place twin (``inplace=...`` on the decorator) of bplib."""
    found = {}
    for path in sorted((REPO_ROOT / "bplib").glob("*.py")):
        if path.name == "_validate.py":
            continue
        source = path.read_text(encoding="utf-8")
        tree, lines = ast.parse(source), source.splitlines()
        functions = {node.name: node for node in ast.walk(tree)
                     if isinstance(node, ast.FunctionDef)}
        for node in functions.values():
            decorator = _is_checked(node)
            if decorator is None:
                continue
            found[f"bplib/{path.name}: {node.name}"] = _body_of(node, lines)
            for keyword in decorator.keywords:
                if keyword.arg == "inplace" and isinstance(keyword.value, ast.Name):
                    twin = functions[keyword.value.id]
                    found[f"bplib/{path.name}: {twin.name}"] = _body_of(twin, lines)
    return found


GUARDED = guarded_bodies()


def test_the_guarded_bodies_found_in_the_source_cover_every_checked_function():
    names = {key.split(": ")[1] for key in GUARDED}
    assert {name.split(".")[-1] for name in checked_functions()} <= names, sorted(names)
    assert {"__call__", "__pow__", "log", "_adam_in_place"} <= names, sorted(names)
    printed = {getattr(fn, "__name__", "") for fn in PRINTED.values()}
    assert names - printed, "every guarded function is printed: nothing left to cover here"


@pytest.mark.parametrize("key", list(GUARDED))
def test_a_guarded_body_holds_no_check_printed_or_not(key):
    checks = [line.strip() for line in GUARDED[key] if CHECK_LINE.search(line)]
    assert not checks, (f"{key} checks its arguments in its body; the check belongs in its "
                        f"validator (bplib/_validate.py): {checks}")


def test_update_rules_keep_their_keyword_only_inplace_flag():
    for name, fn in checked_functions().items():
        if name.startswith("bplib.optim."):
            flag = inspect.signature(fn).parameters["inplace"]
            assert flag.kind is inspect.Parameter.KEYWORD_ONLY and flag.default is False, name


def _calls(dtype):
    """Every function of bplib.functional on float inputs of ``dtype``."""
    rng = np.random.default_rng(0)
    x, W, b = (rng.normal(size=s).astype(dtype) for s in ((3, 4), (4, 2), (2,)))
    dout = rng.normal(size=(3, 4)).astype(dtype)
    out, lin_cache = F.linear_forward(x, W, b)
    calls = {
        "linear_forward": (F.linear_forward, (x, W, b)),
        "linear_backward": (F.linear_backward, (np.ones_like(out), lin_cache)),
        "mse_loss": (F.mse_loss, (x, dout)),
        "softmax_cross_entropy": (F.softmax_cross_entropy, (x, np.array([0, 3, 1]))),
        "binary_cross_entropy": (F.binary_cross_entropy, (x[:, 0], np.array([0.0, 1, 1], dtype))),
    }
    for name in ("relu", "leaky_relu", "sigmoid", "tanh", "softmax"):
        forward, backward = getattr(F, f"{name}_forward"), getattr(F, f"{name}_backward")
        calls[f"{name}_forward"] = (forward, (x,))
        calls[f"{name}_backward"] = (backward, (dout, forward(x)[1]))
    for name in ("sigmoid", "softmax", "log_softmax", "logsumexp"):
        calls[name] = (getattr(F, name), (x,))
    return calls


def test_the_calls_below_cover_every_function_of_bplib_functional():
    assert set(_calls(np.float64)) == set(F.__all__)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functions_never_change_their_arguments(dtype):
    for name, (fn, args) in _calls(dtype).items():
        before = [np.copy(a) for a in args if isinstance(a, np.ndarray)]
        fn(*args)
        after = [a for a in args if isinstance(a, np.ndarray)]
        for a, b in zip(before, after, strict=True):
            np.testing.assert_array_equal(a, b, err_msg=f"{name} changed an argument")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("inplace", [False, True])
def test_update_rules_keep_the_dtype_of_the_parameter(dtype, inplace):
    w, dw, v, m = (np.full(3, x, dtype) for x in (1.0, 0.5, 0.1, 0.2))
    outs = {
        "sgd_update": [bplib.sgd_update(w.copy(), dw, 0.1, inplace=inplace)],
        "sgd_momentum_update": bplib.sgd_momentum_update(
            w.copy(), dw, v.copy(), 0.1, 0.9, inplace=inplace),
        "nesterov_update": bplib.nesterov_update(w.copy(), dw, v.copy(), 0.1, 0.9, inplace=inplace),
        "rmsprop_update": bplib.rmsprop_update(w.copy(), dw, v.copy(), 0.1, inplace=inplace),
        "adam_update": bplib.adam_update(
            w.copy(), dw, m.copy(), v.copy(), 1, 0.1, 0.9, 0.999, 1e-7, inplace=inplace),
    }
    wrong = {k: [a.dtype.name for a in arrs] for k, arrs in outs.items()
             if any(a.dtype != dtype for a in arrs)}
    assert not wrong, wrong
