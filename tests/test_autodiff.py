"""The scalar autodiff engine ``bplib.autodiff.Value`` and the checks of exercise 7.

Every operation's gradient is checked twice: against central differences of the
engine's own forward pass, and against JAX's reverse mode in float64 on the same
expression written with ``jax.numpy`` (``tests/oracle.py``). Then: values used
several times, graphs deeper than the recursion limit, a small MLP made of Values
against bplib's layer functions, ``zero_grad``, the input checks of
``bplib/_validate.py``, and the checks of ``bpgrade.checks`` on the exercise's own
solution and on its sample mistakes (``tools/samples/ex07_autodiff``).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import jax.numpy as jnp
import nbformat
import numpy as np
import oracle
import pytest
from conftest import value_class

import bplib
from bpgrade import checks as T
from bplib.autodiff import Value
from bplib.gradcheck import grad_close, numerical_gradient
from tools import samples as S

ROOT = Path(__file__).resolve().parent.parent
ORACLE_TOL = {"rtol": 1e-10, "atol": 1e-12}  # float64 vs float64: only rounding differs


# the same expression on Values and on JAX scalars
def _tanh(v):
    return v.tanh() if isinstance(v, Value) else jnp.tanh(v)


def _relu(v):
    return v.relu() if isinstance(v, Value) else jnp.where(v > 0, v, 0.0)


def _exp(v):
    return v.exp() if isinstance(v, Value) else jnp.exp(v)


def _log(v):
    return v.log() if isinstance(v, Value) else jnp.log(v)


CASES = {  # name: (expression of a list of leaves, leaf values)
    "a + b": (lambda p: p[0] + p[1], [0.7, -1.3]),
    "a + 2.5": (lambda p: p[0] + 2.5, [0.7]),
    "2.5 + a": (lambda p: 2.5 + p[0], [0.7]),
    "a * b": (lambda p: p[0] * p[1], [0.7, -1.3]),
    "a * 3": (lambda p: p[0] * 3, [-0.4]),
    "3 * a": (lambda p: 3 * p[0], [-0.4]),
    "a ** 3": (lambda p: p[0] ** 3, [-1.2]),
    "a ** -1.5": (lambda p: p[0] ** -1.5, [0.8]),
    "a ** 0.5": (lambda p: p[0] ** 0.5, [2.0]),
    "a ** 0": (lambda p: p[0] ** 0, [1.3]),
    "a ** 0, a = 0": (lambda p: p[0] ** 0, [0.0]),
    "a ** 2, a = 0": (lambda p: p[0] ** 2, [0.0]),
    "-a": (lambda p: -p[0], [0.3]),
    "a - b": (lambda p: p[0] - p[1], [0.3, 1.1]),
    "1 - a": (lambda p: 1 - p[0], [0.3]),
    "a / b": (lambda p: p[0] / p[1], [0.3, -1.7]),
    "2 / a": (lambda p: 2 / p[0], [1.3]),
    "exp(a)": (lambda p: _exp(p[0]), [0.9]),
    "log(a)": (lambda p: _log(p[0]), [0.9]),
    "tanh(a)": (lambda p: _tanh(p[0]), [-0.6]),
    "relu(a), a > 0": (lambda p: _relu(p[0]), [0.6]),
    "relu(a), a < 0": (lambda p: _relu(p[0]), [-0.6]),
    "a used three times": (lambda p: p[0] * p[0] + p[0], [1.5]),
    "a neuron": (lambda p: _tanh(p[0] * p[2] + p[1] * p[3] + p[4]), [2.0, 0.0, -3.0, 1.0, 6.88]),
    "everything": (lambda p: _log(_exp(p[0] * p[1]) + _relu(p[1] - p[0]) ** 2)
                   / (1 + _tanh(p[0]) ** 2) - p[1] / p[0], [0.8, -0.5]),
}


def _engine(expr, xs):
    leaves = [Value(float(x)) for x in xs]
    out = expr(leaves)
    out.backward()
    return out, np.array([v.grad for v in leaves])


@pytest.mark.parametrize("name", sorted(CASES))
def test_each_operation_gradient_agrees_with_numerical_and_jax(name):
    expr, xs = CASES[name]
    out, grads = _engine(expr, xs)
    x = np.array(xs, dtype=np.float64)
    numerical = numerical_gradient(lambda: expr([Value(float(v)) for v in x]).data, x)
    assert grad_close(grads, numerical), (grads, numerical)
    value, jax_grads = oracle.value_and_grad(lambda p: expr([p[i] for i in range(len(xs))]), x)
    np.testing.assert_allclose(out.data, value, **ORACLE_TOL)
    np.testing.assert_allclose(grads, jax_grads, **ORACLE_TOL)


def test_a_value_used_several_times_gets_the_sum_of_its_paths():
    a = Value(3.0)
    b = a * 2          # path 1
    c = b + a          # path 2
    d = c * b          # b used twice
    d.backward()
    # d = (2a + a) * 2a = 6 a^2, dd/da = 12 a
    assert a.grad == pytest.approx(36.0)
    assert b.grad == pytest.approx(c.data + b.data)
    s = a + a
    a.zero_grad()
    s.backward()
    assert a.grad == 2.0


def test_zero_grad_resets_every_value_the_output_depends_on():
    a, b = Value(0.5), Value(-2.0)
    out = (a * b).tanh() + a
    out.backward()
    assert a.grad != 0 and b.grad != 0
    first = (a.grad, b.grad)
    out.backward()  # without zero_grad, the old gradients stay in and are added to
    assert (a.grad, b.grad) != pytest.approx(first)
    out.zero_grad()
    assert (a.grad, b.grad, out.grad) == (0.0, 0.0, 0.0)
    out.backward()
    assert (a.grad, b.grad) == pytest.approx(first)


def test_topological_order_puts_inputs_before_what_is_made_from_them():
    x = Value(0.4)
    u = x.tanh()
    w = u.tanh()
    out = u + w  # a breadth-first walk would visit u before w
    order = out.topological_order()
    pos = {id(v): i for i, v in enumerate(order)}
    assert len(order) == 4
    for v in order:
        for child in v._prev:
            assert pos[id(child)] < pos[id(v)]


def test_a_chain_of_10000_nodes_has_no_recursion_error():
    assert sys.getrecursionlimit() < 10000  # the chain is deeper than recursion could go
    x = Value(0.3)
    y, dy = x, 1.0  # dy = dy/dx, by forward mode on floats
    for _ in range(5000):
        t = math.tanh(0.9 * y.data + 0.1)
        dy = (1 - t * t) * 0.9 * dy
        y = (y * 0.9 + 0.1).tanh()  # two nodes per step (and a constant)
    y.backward()
    assert x.grad == pytest.approx(dy, rel=1e-12, abs=1e-300)
    y.zero_grad()
    assert x.grad == 0.0


def test_an_unrolled_rnn_of_5000_steps_backpropagates_through_time():
    rng = np.random.default_rng(0)
    xs = rng.normal(0, 1, 5000)
    p = np.array([0.5, 0.8, -0.1])  # input weight, recurrent weight, bias

    def run_floats():
        h = 0.0
        for x in xs:
            h = math.tanh(p[0] * x + p[1] * h + p[2])
        return h ** 2

    w_in, w_h, b = (Value(float(v)) for v in p)
    h = Value(0.0)
    for x in xs:
        h = (w_in * float(x) + w_h * h + b).tanh()
    loss = h ** 2
    loss.backward()
    numerical = numerical_gradient(run_floats, p)
    assert grad_close([w_in.grad, w_h.grad, b.grad], numerical)


def test_a_small_mlp_of_values_agrees_with_bplibs_layer_functions():
    rng = np.random.default_rng(3)
    N, D, H, C = 4, 3, 5, 3
    X, y = rng.normal(size=(N, D)), np.array([0, 2, 1, 2])
    params = {"W1": rng.normal(size=(D, H)), "b1": rng.normal(0, 0.1, H),
              "W2": rng.normal(size=(H, C)), "b2": rng.normal(0, 0.1, C)}
    # bplib's layers
    h_pre, c1 = bplib.linear_forward(X, params["W1"], params["b1"])
    h, c2 = bplib.relu_forward(h_pre)
    logits, c3 = bplib.linear_forward(h, params["W2"], params["b2"])
    loss, dlogits = bplib.softmax_cross_entropy(logits, y)
    dh, dW2, db2 = bplib.linear_backward(dlogits, c3)
    _, dW1, db1 = bplib.linear_backward(bplib.relu_backward(dh, c2), c1)
    # the same network made of Values
    V = {k: np.vectorize(Value, otypes=[object])(v) for k, v in params.items()}
    total = Value(0.0)
    for n in range(N):
        hidden = [sum((V["W1"][d, j] * float(X[n, d]) for d in range(D)), V["b1"][j]).relu()
                  for j in range(H)]
        z = [sum((hidden[j] * V["W2"][j, c] for j in range(H)), V["b2"][c]) for c in range(C)]
        total = total + sum((zc.exp() for zc in z[1:]), z[0].exp()).log() - z[y[n]]
    mean = total / N
    mean.backward()
    assert mean.data == pytest.approx(float(loss), rel=1e-12)
    for key, want in {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}.items():
        got = np.vectorize(lambda v: v.grad)(V[key])
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=key)


def test_value_is_exported_lazily_from_bplib():
    assert bplib.Value is Value and "Value" in dir(bplib)
    assert bplib.autodiff.Value is Value


# ------------------------------------------------------------------- the guards (_validate.py)


@pytest.mark.parametrize("bad, error, words", [
    ("x", TypeError, "must be a real number"),
    (None, TypeError, "must be a real number"),
    (True, TypeError, "must be a real number"),
    (float("nan"), ValueError, "must be finite"),
    (float("inf"), ValueError, "must be finite"),
])
def test_value_refuses_what_is_not_a_finite_real_number(bad, error, words):
    with pytest.raises(error, match=words):
        Value(bad)


def test_value_data_is_a_float_even_from_numpy_or_int():
    assert type(Value(np.float32(0.5)).data) is float and type(Value(3).data) is float


def test_an_overflowing_product_is_refused_rather_than_inf():
    with pytest.raises(ValueError, match="must be finite"):
        Value(1e200) * Value(1e200)


def test_the_inputs_of_a_value_must_be_values():
    with pytest.raises(TypeError, match="inputs of a Value must be Values"):
        Value(1.0, (1.0,), "+")


@pytest.mark.parametrize("base, n, error, words", [
    (2.0, Value(2.0), TypeError, "takes a number n, not a Value"),
    (2.0, "2", TypeError, "must be a real number"),
    (-2.0, 0.5, ValueError, "negative base to a non-integer power"),
    (0.0, -1, ValueError, "zero to a negative power"),
    (0.0, 0.5, ValueError, r"derivative n \* x \*\* \(n - 1\) of x \*\* 0.5 is infinite at x = 0"),
    (-0.0, 0.25, ValueError, "is infinite at x = 0"),
])
def test_pow_takes_a_number_exponent_and_a_real_result(base, n, error, words):
    with pytest.raises(error, match=words):
        Value(base) ** n


@pytest.mark.parametrize("n", [0, 0.0, 1, 1.5, 2, 3])
def test_a_power_of_zero_that_is_built_also_backpropagates(n):
    # the powers that the check lets through at x = 0 have a finite derivative there:
    # n * 0 ** (n - 1) for n >= 1, and 0 for the constant x ** 0 (as JAX defines it)
    x = Value(0.0)
    y = x ** n
    y.backward()
    assert y.data == (1.0 if n == 0 else 0.0)
    assert x.grad == (1.0 if n == 1 else 0.0)


@pytest.mark.parametrize("x", [0.0, -1.0])
def test_log_needs_a_positive_value(x):
    with pytest.raises(ValueError, match="log needs a positive value"):
        Value(x).log()


# ------------------------------------------------------------------- the checks of exercise 7

EX = "ex07_autodiff"
CHECKS = [("__add__", T.check_value_add), ("__mul__", T.check_value_mul),
          ("__pow__", T.check_value_pow), ("tanh", T.check_value_tanh),
          ("relu", T.check_value_relu), ("exp", T.check_value_exp)]


def _notebooks():
    source = nbformat.read(ROOT / "solutions" / EX / f"{EX}.ipynb", as_version=4)
    release = nbformat.read(ROOT / "exercises" / EX / f"{EX}.ipynb", as_version=4)
    return source, release


def _grade(V, seeds: int = 5) -> dict[str, str]:
    """What the visible and hidden tests say, per method: '' when its checks pass."""
    results = {}
    for name, check in CHECKS:
        try:
            for seed in range(0, seeds):
                check(V, seed=seed, graphs=4)
            results[name] = ""
        except Exception as exc:  # noqa: BLE001
            results[name] = f"{type(exc).__name__}: {exc}"
    try:
        for seed in range(0, seeds - 1):
            T.check_value_backward(V, seed=seed, graphs=4)
        T.check_value_backward(V, seed=seeds, depth=3000)
        results["backward"] = ""
    except Exception as exc:  # noqa: BLE001
        results["backward"] = f"{type(exc).__name__}: {exc}"
    return results


def test_the_exercise_solution_passes_every_check():
    source, _ = _notebooks()
    assert _grade(value_class(source)) == {name: "" for name in [*dict(CHECKS), "backward"]}


def test_a_blank_release_fails_every_check_with_not_implemented():
    _, release = _notebooks()
    results = _grade(value_class(release))
    assert all(r.startswith("NotImplementedError") for r in results.values()), results


def test_the_checks_refuse_bplibs_own_value():
    for _, check in CHECKS:
        with pytest.raises(AssertionError, match="bplib's own Value"):
            check(Value)


SAMPLE_WORDS = {  # sample file stem: what the failing check must say
    "__add__": "the gradient of a value used twice counts one path only: accumulate with \\+=",
    "__mul__": "instead of the other factor's",
    "__pow__": "forgot to lower the exponent by one",
    "tanh": "used 1 - x\\*\\*2 where the derivative of tanh is",
    "relu": "relu passes gradient where its input was negative",
    "exp": "multiply by out.grad \\(the chain rule\\)",
    "backward--breadth-first": "backward visits a node before all its parents: .*topological",
    "backward--every-use": "ran more than once.*visited nodes",
    "backward--recursive": "RecursionError on a chain of 6001 nodes",
}


def test_every_sample_mistake_fails_its_own_check_only_with_the_intended_words():
    source, release = _notebooks()
    stems = sorted(p.stem for p in (S.HERE / EX).glob("*.py"))
    assert set(SAMPLE_WORDS) <= set(stems)  # every other sample: tests/test_diagnoses.py
    for nb, expected in S.variants(source, release, EX):
        if not expected.student.startswith("wrong_"):
            continue
        stem = next(s for s in stems if "wrong_" + s.replace("--", "_").replace("-", "_")
                    == expected.student)
        if stem not in SAMPLE_WORDS:  # graded by tests/test_diagnoses.py and test_pipeline.py
            continue
        results = _grade(value_class(nb), seeds=2)
        broken = {g for g, r in results.items() if r}
        assert {f"test_{g}" for g in broken} == expected.failing, (stem, results)
        [message] = [results[g] for g in broken]
        assert re.search(SAMPLE_WORDS.get(stem, ""), message), (stem, message)


def test_backward_that_never_sets_the_output_grad_to_one_is_told_so():
    source, _ = _notebooks()
    V = value_class(source)

    def backward(self):  # every _backward in a topological order, but the output's grad stays 0
        for node in reversed(Value.topological_order(self)):
            node._backward()

    V.backward = backward
    with pytest.raises(AssertionError, match="d self / d self = 1"):
        T.check_value_backward(V)


# ------------------------------------------------------------------- a backward rule touches only
# its inputs' grads (issue 20, section 4): every .data, every ._prev and ._backward and
# out.grad are as they were after it ran, in each rule and in backward()


def _engine_with(**bodies) -> type:
    """The exercise's solution, with the ``_backward`` body (a rule) or the whole body
    (``backward``) of some methods replaced: ``_engine_with(__mul__="self.grad += ...")``."""
    source, release = _notebooks()
    stubbed = {g: c for g, c in S.solution_cells(release).items()}
    ns: dict = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell.cell_type != "code" or not (gid == "setup" or meta.get("solution")):
            continue
        code = S.fill_stubs(stubbed[gid].source, [bodies[gid]]) if gid in bodies else cell.source
        exec(compile(code, gid, "exec"), ns)  # noqa: S102
    return ns["Value"]


BACKWARD = dict(CHECKS)
STATE_CHANGES = {  # (method, body, the diagnosis)
    "mul takes a step on its input": (
        "__mul__", "self.grad += other.data * out.grad\nother.grad += self.data * out.grad\n"
                   "self.data -= 0.01 * self.grad", "value-data-changed"),
    "tanh resets its output's data": (
        "tanh", "self.grad += (1 - out.data ** 2) * out.grad\nout.data = 0.0",
        "value-data-changed"),
    "exp forgets its inputs": (
        "exp", "self.grad += out.data * out.grad\nout._prev = ()", "value-graph-changed"),
    "add disables its inputs' rules": (
        "__add__", "self.grad += out.grad\nother.grad += out.grad\n"
                   "self._backward = other._backward = lambda: None", "value-graph-changed"),
    "relu zeroes its output's grad": (
        "relu", "self.grad += (self.data > 0) * out.grad\nout.grad = 0.0",
        "value-graph-changed"),
}


@pytest.mark.parametrize("case", sorted(STATE_CHANGES))
def test_a_rule_that_also_changes_data_or_the_graph_fails(case):
    method, body, diagnosis = STATE_CHANGES[case]
    with pytest.raises(T.Diagnosis) as info:
        for seed in range(3):
            BACKWARD[method](_engine_with(**{method: body}), seed=seed, graphs=2)
    assert info.value.id == diagnosis, str(info.value)


_TOPO = ("order, visited, stack = [], set(), [(self, False)]\n"
         "while stack:\n"
         "    node, inputs_done = stack.pop()\n"
         "    if inputs_done:\n"
         "        order.append(node)\n"
         "    elif id(node) not in visited:\n"
         "        visited.add(id(node))\n"
         "        stack.append((node, True))\n"
         "        stack.extend((c, False) for c in node._prev if id(c) not in visited)\n"
         "self.grad = 1.0\n"
         "for node in reversed(order):\n"
         "    node._backward()\n")


@pytest.mark.parametrize(("extra", "diagnosis"), [
    ("for node in order:\n    node.data -= 0.1 * node.grad\n", "value-data-changed"),
    ("for node in order:\n    node._prev = ()\n", "value-graph-changed"),
    ("for node in order:\n    node._backward = lambda: None\n", "value-graph-changed"),
])
def test_a_backward_that_also_changes_data_or_the_graph_fails(extra, diagnosis):
    with pytest.raises(T.Diagnosis) as info:
        T.check_value_backward(_engine_with(backward=_TOPO + extra), seed=0)
    assert info.value.id == diagnosis, str(info.value)


def test_the_solution_with_the_state_checks_still_passes_every_hidden_test():
    V = value_class(_notebooks()[0])
    for seed in range(5):
        for check in BACKWARD.values():
            check(V, seed=seed, graphs=4)
    T.check_value_backward(V, seed=1, graphs=4, depth=3000)


# ------------------------------------------------------------------- ReLU exactly at 0


@pytest.mark.parametrize("body", ["self.grad += (self.data >= 0) * out.grad",
                                  "self.grad += (0 if self.data < 0 else 1) * out.grad"])
def test_relu_that_passes_the_gradient_at_0_is_told_the_derivative_there_is_0(body):
    with pytest.raises(T.Diagnosis) as info:
        T.check_value_relu(_engine_with(relu=body))
    assert info.value.id == "relu-mask-at-zero", str(info.value)
