"""Exercise 7: the backward rules of a scalar autodiff engine in micrograd's design.

A class ``Value(data, _children=(), _op="")`` with ``.data``, ``.grad``, ``._prev`` (its
inputs) and ``._backward`` (a closure that adds its share of ``out.grad`` into its inputs'
grads). Each check grades one method only. A graph is a *program*: a list of instructions
``(op, arguments)`` over numbered nodes (the first ones are leaves). The grader runs it
three ways: on floats (to take numerical gradients by central differences), in its own
reverse mode on floats (the exact gradient), and on the student's class, where the
operation under test is the student's and every other node is made by the grader with its
own backward rule (so one broken method never fails another's check).

What the checks look at, besides the gradients: a backward rule adds into its inputs'
``.grad`` and touches nothing else, so every ``.data``, every ``._prev`` and every
``._backward`` (and ``out.grad``) must be as they were after it ran; a local derivative
must be *derived*, right to the rounding its inputs allow, which a difference quotient is
not (probes on inputs near 1 and, for the rules that are linear or quadratic in their
input, near 1e6, where a large step is no longer exact); ReLU is probed exactly at 0, where
the exercise takes its derivative to be 0.

The checks compute on floats with private references to ``math``'s functions and their
own random generator (``_random.Random``, a C type), taken when ``bpgrade.checks`` is
imported: they call no numpy and nothing a submission can replace (see
:mod:`bpgrade.checks._trust`).
"""

from __future__ import annotations

from _random import Random as _Random
from math import cos as _cos
from math import exp as _exp
from math import log as _log
from math import pi as _PI
from math import sqrt as _sqrt
from math import tanh as _tanh

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks.diagnoses import diagnose
from bpgrade.language import N_, text
from bplib import autodiff as _autodiff
from bplib.gradcheck import TOLERANCE

__all__ = ["check_value_add", "check_value_mul", "check_value_pow", "check_value_tanh",
           "check_value_relu", "check_value_exp", "check_value_backward"]

_RTOL, _ATOL, _H = float(TOLERANCE.rtol), float(TOLERANCE.atol), float(TOLERANCE.h)
_EPS = 2.0 ** -52
_VALUE_OPS = ("add", "mul", "pow", "tanh", "relu", "exp")
_OP_LABEL = {"add": "__add__", "mul": "__mul__", "pow": "__pow__", "tanh": "tanh",
             "relu": "relu", "exp": "exp"}
_UNARY = ("pow", "tanh", "relu", "exp")
_LINEAR_IN_X = ("add", "mul", "pow", "relu")  # a large step is (nearly) exact near x ~ 1
#: How many units of rounding a derived local derivative may be off (its formula, say
#: ``1 - out**2`` or ``(1 - out) * (1 + out)``, and one multiply-add into ``.grad``), times
#: the condition of the formula. Measured: ``python -m tests.test_not_numerical``.
_ULPS = 16.0


# --------------------------------------------------------------------------- floats


class _Draws:
    """The grader's random numbers for one seed (a C generator, private to the checks)."""

    def __init__(self, seed: int):
        self._r = _Random((20240611 << 32) + seed)

    def random(self) -> float:
        return self._r.random()

    def uniform(self, low: float, high: float) -> float:
        return low + (high - low) * self._r.random()

    def integers(self, n: int) -> int:
        return int(self._r.random() * n) % n

    def choice(self, seq):
        return seq[self.integers(len(seq))]

    def normal(self, mu: float, sigma: float) -> float:
        u = 1.0 - self._r.random()
        return mu + sigma * _sqrt(-2.0 * _log(u)) * _cos(2.0 * _PI * self._r.random())


def _close(a: float, b: float, rtol: float = _RTOL, atol: float = _ATOL) -> bool:
    return abs(a - b) <= atol + rtol * max(abs(a), abs(b))


def _near(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12 + 1e-9 * abs(b)


def _fmt(x) -> str:
    return f"{x:.4g}"


def _op_float(op: str, args: tuple, vals) -> float:
    if op == "add":
        return vals[args[0]] + vals[args[1]]
    if op == "mul":
        return vals[args[0]] * vals[args[1]]
    x = vals[args[0]]
    if op == "pow":
        return x ** args[1]
    if op == "tanh":
        return _tanh(x)
    if op == "exp":
        return _exp(x)
    return x if x > 0 else 0.0


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
    return [(args[0], {"tanh": 1.0 - out * out, "relu": 1.0 if x > 0 else 0.0, "exp": out}[op])]


def _condition(op: str, args: tuple, vals, out: float) -> float:
    """How many times the relative rounding of its inputs a local derivative's formula may
    carry: ``1 - out**2`` loses digits where ``|out|`` is near 1; ``x**(n-1)`` amplifies by
    ``|n - 1|``."""
    if op == "tanh":
        return 1.0 + 2.0 * out * out / max(1.0 - out * out, _EPS)
    if op == "pow":
        return 2.0 + abs(args[1] - 1.0)
    return 1.0


def _run_floats(leaves, program) -> list[float]:
    vals = [float(v) for v in leaves]
    for op, args in program:
        vals.append(float(_op_float(op, args, vals)))
    return vals


def _exact_grads(leaves, program) -> tuple[list[float], list[float]]:
    """d(last node)/d(every node) by the grader's reverse mode, and for each the sum over
    paths of the magnitudes of the terms, times the formulas' conditions (what rounding
    can move a derived gradient by, once multiplied by a few units of rounding)."""
    vals = _run_floats(leaves, program)
    grads, scale = [0.0] * len(vals), [0.0] * len(vals)
    grads[-1], scale[-1] = 1.0, 1.0
    for k in range(len(program) - 1, -1, -1):
        op, args = program[k]
        node = len(leaves) + k
        cond = _condition(op, args, vals, vals[node])
        for i, local in _local_grads(op, args, vals, vals[node]):
            grads[i] += local * grads[node]
            scale[i] += abs(local) * cond * scale[node]
    return grads, scale


def _numerical_grads(leaves, program) -> list[float]:
    x = [float(v) for v in leaves]
    out = []
    for i in range(len(x)):
        old = x[i]
        x[i] = old + _H
        up = _run_floats(x, program)[-1]
        x[i] = old - _H
        down = _run_floats(x, program)[-1]
        x[i] = old
        out.append((up - down) / (2 * _H))
    return out


def _random_program(gen: _Draws, n_leaves: int, n_ops: int, op: str, share: float = 0.5):
    """Leaves and a random program that uses ``op`` often and reuses nodes (fan-out).

    Every instruction's inputs are chosen so that the result stays real and moderate and
    no ReLU input is within 0.05 of its kink (central differences must not cross it).
    """
    leaves = [gen.uniform(-1.5, 1.5) for _ in range(n_leaves)]
    vals = list(leaves)
    program = []
    while len(program) < n_ops:
        kind = op if gen.random() < share else gen.choice(_VALUE_OPS)
        i = gen.integers(len(vals))
        j = gen.integers(len(vals)) if gen.random() < 0.7 else i  # i twice: fan-out
        x = vals[i]
        if abs(x) > 8 and kind not in ("tanh", "relu"):
            kind = "tanh"
        if kind == "relu" and abs(x) < 0.05:
            continue
        if kind == "exp" and abs(x) > 3:
            continue
        if kind == "pow":
            choices = [2, 3] + ([-1, 0.5, 1.5] if x > 0.3 else [])
            args = (i, gen.choice(choices))
            if abs(x) < 0.05:  # not 0 (a relu's output): n * out / x is a derivation too
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


def _mlp_program(gen: _Draws, n_in: int = 3, n_hidden: int = 4, act: str = "tanh"):
    """A 3-4-1 network with a squared error, as a program: inputs, weights, biases, target."""
    leaves = [gen.uniform(-1, 1) for _ in range(n_in)]                      # x
    leaves += [gen.normal(0, 0.8) for _ in range(n_in * n_hidden)]          # W1
    leaves += [gen.normal(0, 0.3) for _ in range(n_hidden)]                 # b1
    leaves += [gen.normal(0, 0.8) for _ in range(n_hidden)]                 # W2
    leaves += [gen.normal(0, 0.2), gen.uniform(-1, 1), -1.0]               # b2, target, -1
    idx_b2, idx_t, idx_m1 = len(leaves) - 3, len(leaves) - 2, len(leaves) - 1
    program, hidden = [], []

    def emit(op, args):
        program.append((op, args))
        return len(leaves) + len(program) - 1

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


# --------------------------------------------------------------------------- the student's Values


def _describe(obj) -> str:
    return "None" if obj is None else text("a {kind}", kind=type(obj).__name__)


def _topo(out) -> list:
    """An iterative topological order over ``_prev`` (inputs first): the grader's own."""
    order, seen, stack = [], set(), [(out, False)]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((child, False) for child in tuple(node._prev))
    return order


def _grader_node(V, op: str, args: tuple, nodes: list, record=None):
    """A node of the student's class made by the grader, with the grader's backward rule."""
    used = args[:1] if op in _UNARY else args
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


def _float_of(value, fn_name: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        raise diagnose("value-grad-not-number", fn=fn_name, got=_describe(value)) from None


def _grads_of(nodes: list, fn_name: str) -> list[float]:
    return [_float_of(node.grad, fn_name) for node in nodes]


class _State:
    """Every node's ``.data``, ``._prev`` and ``._backward``, to see that a backward pass
    changed none of them (and, given, the ``.grad`` of nodes it must leave alone)."""

    def __init__(self, nodes: list, grads_of=()):
        self.nodes = list(nodes)
        self.data = [node.data for node in self.nodes]
        self.prev = [tuple(id(p) for p in tuple(node._prev)) for node in self.nodes]
        self.backward = [node._backward for node in self.nodes]
        self.grads = [(node, node.grad) for node in grads_of]

    def check(self, fn_name: str, where: str, names=None) -> None:
        for k, node in enumerate(self.nodes):
            name = names[k] if names else text("node {k}", k=k)
            before, after = self.data[k], node.data
            if not _same_number(after, before):
                raise diagnose("value-data-changed", fn=fn_name, where=where, node=name,
                               before=_show(before), after=_show(after))
            if tuple(id(p) for p in tuple(node._prev)) != self.prev[k]:
                raise diagnose("value-graph-changed", fn=fn_name, where=where,
                               what=text("._prev of {name}", name=name))
            if node._backward is not self.backward[k]:
                raise diagnose("value-graph-changed", fn=fn_name, where=where,
                               what=text("._backward of {name}", name=name))
        for node, grad in self.grads:
            if node.grad is not grad and node.grad != grad:
                raise diagnose("value-graph-changed", fn=fn_name, where=where,
                               what=N_(".grad of out (a rule adds into its inputs' grads only)"))


def _show(value) -> str:
    return _fmt(value) if type(value) in (float, int) else _describe(value)


def _same_number(after, before) -> bool:
    if after is before:
        return True
    try:
        a, b = float(after), float(before)
    except (TypeError, ValueError):
        return False
    return a == b or (a != a and b != b)


_BPLIB_VALUE = _autodiff.Value


def _refuse_bplib_value(V, fn_name: str) -> None:
    if V is _BPLIB_VALUE or (isinstance(V, type) and issubclass(V, _BPLIB_VALUE)):
        raise diagnose("reference-used", fn=fn_name, what=N_("Value (bplib.autodiff.Value)"))


def _compare_graph(got: list[float], leaves, program, fn_name: str, what: str,
                   backward: bool = False) -> None:
    """The student's gradients of the leaves against central differences (the diagnosis)
    and against the grader's reverse mode, to the rounding the graph allows (derived)."""
    numerical = _numerical_grads(leaves, program)
    bad = [i for i in range(len(got)) if not _close(got[i], numerical[i])]
    if bad:
        i = max(bad, key=lambda k: abs(got[k] - numerical[k]) / (_ATOL + abs(numerical[k])))
        raise diagnose("backward-graph-gradient-wrong" if backward else
                       "value-graph-gradient-wrong", fn=fn_name, what=what, index=i,
                       got=_fmt(got[i]), want=_fmt(numerical[i]))
    exact, scale = _exact_grads(leaves, program)
    _check_derived_floats(got, exact[:len(got)], scale[:len(got)], len(program), fn_name,
                          N_("the gradient of an input"), text(" on {what}", what=what))


def _check_derived_floats(got, exact, scale, depth: int, fn_name: str, name: str,
                          where: str) -> None:
    """Each ``got[i]`` within ``_ULPS * eps * (depth + 2) * scale[i]`` of ``exact[i]``."""
    worst, worst_i = 0.0, -1
    for i in range(len(got)):
        allowed = _ULPS * _EPS * (depth + 2) * scale[i]
        if abs(got[i] - exact[i]) > allowed:
            rel = abs(got[i] - exact[i]) / max(abs(exact[i]), scale[i] * _EPS, 1e-300)
            if rel > worst:
                worst, worst_i = rel, i
    if worst_i >= 0:
        raise diagnose("looks-numerical", fn=fn_name, name=name, where=where,
                       error=f"{worst:.0e}",
                       allowed=f"{_ULPS * _EPS * (depth + 2):.0e}")


# --------------------------------------------------------------------------- one rule at a time


_PROBE_MISTAKES = {  # op: [(diagnosis id, wrong d out/d x given x, n, out)]
    "add": [],
    "mul": [("mul-own-data", lambda x, n, o: x)],
    "pow": [("pow-exponent-not-lowered", lambda x, n, o: n * x ** n),
            ("pow-factor-missing", lambda x, n, o: x ** (n - 1))],
    "tanh": [("tanh-used-input", lambda x, n, o: 1 - x ** 2)],
    "exp": [("exp-used-input", lambda x, n, o: x)],
    "relu": [],
}


def _probe(V, op: str, seed: int, magnitude: float = 1.0) -> None:
    """One operation on fresh inputs whose grads are already non-zero, then ``out._backward()``
    with a random ``out.grad``: each input must gain exactly ``local * out.grad``, derived
    (to the rounding the inputs allow), and nothing else may change."""
    fn_name = _OP_LABEL[op]
    gen = _Draws(seed)
    sign = 1 if seed % 2 == 0 else -1
    a_val = gen.uniform(0.4, 1.6) * (sign if op != "pow" else 1) * magnitude
    b_val = gen.uniform(-1.6, -0.4) * magnitude
    n = [2, 3, -1, 0.5, 1.5][seed % 5]
    a, b = V(a_val), V(b_val)
    before = gen.uniform(0.3, 0.9)
    a.grad, b.grad = before, -before
    out = {"add": lambda: a + b, "mul": lambda: a * b, "pow": lambda: a ** n,
           "tanh": lambda: a.tanh(), "relu": lambda: a.relu(), "exp": lambda: a.exp()}[op]()
    if not hasattr(out, "_backward") or not hasattr(out, "_prev"):
        raise diagnose("value-not-returned", fn=fn_name, got=_describe(out))
    args = (0, 1) if op in ("add", "mul") else ((0, n) if op == "pow" else (0,))
    vals = [a_val, b_val]
    expected_out = float(_op_float(op, args, vals))
    if not _close(_float_of(out.data, fn_name), expected_out, 1e-12, 1e-15):
        raise diagnose("value-forward-changed", fn=fn_name, got=_fmt(float(out.data)),
                       want=_fmt(expected_out))
    g = gen.uniform(0.5, 2.0) * -sign
    out.grad = g
    inputs = [a, b][:1 if op in _UNARY else 2]
    state = _State([*inputs, out], grads_of=[out])
    out._backward()
    where = (text("after out._backward() on {fn} of {a} and {b}", fn=fn_name, a=_fmt(a_val),
                  b=_fmt(b_val)) if op in ("add", "mul") else
             text("after out._backward() on {fn} of {a}", fn=fn_name, a=_fmt(a_val)))
    state.check(fn_name, where, names=[*(["self", "other"][:len(inputs)]), "out"])
    local_grads = [lg for _, lg in _local_grads(op, args, vals, expected_out)]
    cond = _condition(op, args, vals, expected_out)
    for k, (node, start) in enumerate([(a, before), (b, -before)][:len(local_grads)]):
        name = "self" if k == 0 else "other"
        got = _float_of(node.grad, fn_name)
        local = local_grads[k]
        want = start + local * g
        if not _near(got, want):
            _diagnose_probe(op, fn_name, name, got, want, start, local, g, vals[k], n,
                            expected_out)
        allowed = _ULPS * _EPS * (abs(start) + abs(want) + cond * abs(local * g))
        if abs(got - want) > allowed:
            raise diagnose("looks-numerical", fn=fn_name, name=f"d out/d {name}",
                           where=text(" (at {name} = {value})", name=name, value=_fmt(vals[k])),
                           error=f"{abs(got - want) / abs(local * g):.0e}",
                           allowed=f"{_ULPS * _EPS * (1 + cond):.0e}")


def _diagnose_probe(op, fn_name, name, got, want, start, local, g, x, n, out) -> None:
    if op == "relu" and x <= 0 and not _near(got, start):
        raise diagnose("relu-passes-negative")
    if op == "relu" and x > 0 and _near(got, start):
        raise diagnose("relu-blocks-positive")
    if _near(got, local * g):
        raise diagnose("value-grad-overwritten", fn=fn_name,
                       context=text("{name}.grad lost the gradient it already had "
                                    "({before} before, {after} after); ", name=name,
                                    before=_fmt(start), after=_fmt(got)))
    if _near(got, start):
        raise diagnose("value-grad-unchanged", fn=fn_name, name=name)
    if _near(got, start + local):
        raise diagnose("value-chain-rule-missing", fn=fn_name, name=name)
    if _near(got, start - local * g):
        raise diagnose("value-wrong-sign", fn=fn_name, name=name)
    for id_, wrong in _PROBE_MISTAKES[op]:
        if _near(got, start + wrong(x, n, out) * g):
            raise diagnose(id_)
    raise diagnose("value-local-grad-wrong", fn=fn_name, g=_fmt(g), name=name, got=_fmt(got),
                   want=_fmt(want), start=_fmt(start), local=_fmt(local))


def _probe_relu_at_zero(V, seed: int) -> None:
    """ReLU exactly at 0, where the exercise takes its derivative to be 0."""
    gen = _Draws(seed + 31)
    a = V(0.0)
    before, g = gen.uniform(0.3, 0.9), gen.uniform(0.5, 2.0)
    a.grad = before
    out = a.relu()
    if not hasattr(out, "_backward"):
        raise diagnose("value-not-returned", fn="relu", got=_describe(out))
    out.grad = g
    state = _State([a, out], grads_of=[out])
    out._backward()
    state.check("relu", N_("after out._backward() on relu of 0"), names=["self", "out"])
    got = _float_of(a.grad, "relu")
    if got == before:
        return
    if _near(got, before + g):
        raise diagnose("relu-mask-at-zero", fn="relu", got=_fmt(g))
    raise diagnose("looks-numerical-at-kink", fn="relu", name="d out/d self", x="0",
                   got=_fmt((got - before) / g),
                   right=N_("0, which the exercise takes it to be at 0"),
                   fix=N_("add (self.data > 0) * out.grad"))


def _fan_out(V, op: str, seed: int) -> None:
    """The same Value used twice: ``a op a`` for a binary op, two uses of ``a`` otherwise."""
    fn_name = _OP_LABEL[op]
    gen = _Draws(seed + 100)
    x = gen.uniform(0.4, 1.4)
    a = V(x)
    if op in ("add", "mul"):
        out = a + a if op == "add" else a * a
        out.grad = 1.0
        out._backward()
        want = 2.0 if op == "add" else 2 * x
        what = "a + a" if op == "add" else "a * a"
    else:
        program = [(op, (0, 2) if op == "pow" else (0,)), (op, (0, 3) if op == "pow" else (0,))]
        nodes = _build(V, [x], program, op)
        a = nodes[0]
        for node in nodes[1:]:
            node.grad = 1.0
            node._backward()
        want = sum(_local_grads(o, ar, [x], _op_float(o, ar, [x]))[0][1] for o, ar in program)
        what = text("two {fn} nodes of the same a", fn=fn_name)
    got = _float_of(a.grad, fn_name)
    if not _near(got, want):
        raise diagnose("value-fan-out-wrong", fn=fn_name, what=what, got=_fmt(got),
                       want=_fmt(want))


def _grader_backward(out) -> None:
    out.grad = 1.0
    for v in reversed(_topo(out)):
        v._backward()


def _check_graph(V, leaves, program, op: str | None, fn_name: str, what: str) -> None:
    nodes = _build(V, leaves, program, op)
    state = _State(nodes)
    _grader_backward(nodes[-1])
    state.check(fn_name, text("after the backward pass on {what}", what=what))
    _compare_graph(_grads_of(nodes[:len(leaves)], fn_name), leaves, program, fn_name, what)


def _check_value_op(V, op: str, seed: int, graphs: int) -> None:
    fn_name = _OP_LABEL[op]
    _refuse_bplib_value(V, fn_name)
    _probe(V, op, 2 * seed)  # a positive and a negative input
    _probe(V, op, 2 * seed + 1)
    if op in _LINEAR_IN_X:
        _probe(V, op, 2 * seed, magnitude=1e6)
    if op == "relu":
        _probe_relu_at_zero(V, seed)
    _fan_out(V, op, seed)
    for k in range(graphs):
        leaves, program = _random_program(_Draws(1000 * seed + k), 3, 12, op)
        _check_graph(V, leaves, program, op, fn_name,
                     text("a random graph (seed {seed}.{k})", seed=seed, k=k))
    if op in ("add", "mul", "tanh", "relu"):
        leaves, program = _mlp_program(_Draws(seed + 7), act="relu" if op == "relu" else "tanh")
        _check_graph(V, leaves, program, op, fn_name, N_("a small MLP made of Values"))


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
    """``Value.relu``: ``out.grad`` where the input was positive, nothing elsewhere (nor at 0)."""
    _check_value_op(V, "relu", seed, graphs)


def check_value_exp(V, seed: int = 0, graphs: int = 1) -> None:
    """``Value.exp``: ``out.data * out.grad``."""
    _check_value_op(V, "exp", seed, graphs)


# --------------------------------------------------------------------------- backward()


def check_value_backward(V, seed: int = 0, graphs: int = 1, depth: int = 200) -> None:
    """``Value.backward``: the output's grad set to 1, then every node's ``_backward`` once,
    each after all the nodes that use it (a topological order), iteratively.

    Every node is made by the grader with its own rules, so only ``backward`` is graded:
    random graphs with values used several times, a small MLP, a chain ``depth`` long.
    Every node's ``.grad`` must be its gradient, and every ``.data``, ``._prev`` and
    ``._backward`` as it was.
    """
    fn_name = "backward"
    _refuse_bplib_value(V, fn_name)
    x = V(_Draws(seed).uniform(-2, 2))
    x.backward()
    if not _near(_float_of(x.grad, fn_name), 1.0):
        raise diagnose("backward-seed-missing", got=_show(x.grad))
    # u = tanh(x), w = tanh(u), out = u + w: u is used by out and by w, so its _backward
    # must wait for w's (a breadth-first walk from out runs it first)
    problems = [([0.4], [("tanh", (0,)), ("tanh", (1,)), ("add", (1, 2))],
                 N_("out = u + tanh(u) with u = tanh(x)"))]
    for k in range(graphs + 1):
        gen = _Draws(2000 * seed + k)
        if k == graphs:
            leaves, program = _mlp_program(gen)
            what = N_("a small MLP made of Values")
        else:
            leaves, program = _random_program(gen, 3, 14, "add", share=0.3)
            what = text("a random graph (seed {seed}.{k})", seed=seed, k=k)
        problems.append((leaves, program, what))
    # a chain: x -> tanh -> ... -> tanh, each step also reusing x (so x fans out `depth` times)
    chain = [("mul", (0, 0))]
    for _ in range(depth):
        chain += [("tanh", (len(chain),)), ("add", (len(chain) + 1, 0))]
    problems.append(([0.3], chain, text("a chain of {n} nodes", n=len(chain))))
    for leaves, program, what in problems:
        record: list = []
        nodes = _build(V, leaves, program, None, record)
        state = _State(nodes)
        try:
            nodes[-1].backward()
        except RecursionError:
            raise diagnose("backward-recursive", what=what) from None
        state.check(fn_name, text("after backward() on {what}", what=what))
        _check_order(record, nodes, what)
        got = _grads_of(nodes, fn_name)
        exact, _ = _exact_grads(leaves, program)
        _compare_graph(got[:len(leaves)], leaves, program, fn_name, what, backward=True)
        bad = [i for i in range(len(leaves), len(nodes)) if not _close(got[i], exact[i])]
        if bad:
            raise diagnose("backward-graph-gradient-wrong", fn=fn_name, what=what,
                           index=text("node {k} (not an input)", k=bad[0]),
                           got=_fmt(got[bad[0]]),
                           want=_fmt(exact[bad[0]]))


def _check_order(record: list, nodes: list, what: str) -> None:
    made = [n for n in _topo(nodes[-1]) if tuple(n._prev)]  # the grader's nodes the output uses
    counts: dict[int, int] = {}
    for node in record:
        counts[id(node)] = counts.get(id(node), 0) + 1
    if any(c > 1 for c in counts.values()):
        raise diagnose("backward-visits-twice", what=what)
    missing = [n for n in made if id(n) not in counts]
    if missing:
        raise diagnose("backward-nodes-missed", what=what, missing=len(missing), total=len(made))
    position = {id(n): i for i, n in enumerate(record)}
    for node in made:
        for child in tuple(node._prev):
            if id(child) in position and position[id(child)] < position[id(node)]:
                raise diagnose("backward-not-topological", what=what)

