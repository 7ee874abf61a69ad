"""Exercise 7: the backward rules of a scalar autodiff engine in micrograd's design.

A class ``Value(data, _children=(), _op="")`` with ``.data``, ``.grad``, ``._prev`` (its
inputs) and ``._backward`` (a closure that adds its share of ``out.grad`` into its inputs'
grads). Each check grades one method only. A graph is a *program*: a list of instructions
``(op, arguments)`` over numbered nodes (the first ones are leaves). The grader runs it
three ways: on floats (to take numerical gradients by central differences), in its own
reverse mode on floats (the exact gradient, for the diagnosis), and on the student's
class, where the operation under test is the student's and every other node is made by
the grader with its own backward rule (so one broken method never fails another's check).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bpgrade.checks.compare import describe, fmt, rng, strict_floats
from bpgrade.checks.diagnoses import diagnose
from bplib.gradcheck import TOLERANCE, grad_close, numerical_gradient

__all__ = ["check_value_add", "check_value_mul", "check_value_pow", "check_value_tanh",
           "check_value_relu", "check_value_exp", "check_value_backward"]

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


def _numerical_grads(leaves, program) -> np.ndarray:
    x = np.array(leaves, dtype=np.float64)
    return numerical_gradient(lambda: _run_floats(x, program)[-1], x, h=TOLERANCE.h)


def _random_program(gen, n_leaves: int, n_ops: int, op: str, share: float = 0.5):
    """Leaves and a random program that uses ``op`` often and reuses nodes (fan-out).

    Every instruction's inputs are chosen so that the result stays real and moderate and
    no ReLU input is within 0.05 of its kink (central differences must not cross it).
    """
    leaves = list(gen.uniform(-1.5, 1.5, n_leaves))
    vals = list(leaves)
    program = []
    while len(program) < n_ops:
        kind = op if gen.random() < share else str(gen.choice(_VALUE_OPS))
        i = int(gen.integers(len(vals)))
        j = int(gen.integers(len(vals))) if gen.random() < 0.7 else i  # i twice: fan-out
        x = vals[i]
        if abs(x) > 8 and kind not in ("tanh", "relu"):
            kind = "tanh"
        if kind == "relu" and abs(x) < 0.05:
            continue
        if kind == "exp" and abs(x) > 3:
            continue
        if kind == "pow":
            choices = [2, 3] + ([-1, 0.5, 1.5] if x > 0.3 else [])
            args = (i, choices[int(gen.integers(len(choices)))])
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


def _mlp_program(gen, n_in: int = 3, n_hidden: int = 4, act: str = "tanh"):
    """A 3-4-1 network with a squared error, as a program: inputs, weights, biases, target."""
    leaves = list(gen.uniform(-1, 1, n_in))                      # x
    w1 = list(gen.normal(0, 0.8, n_in * n_hidden))
    b1 = list(gen.normal(0, 0.3, n_hidden))
    w2 = list(gen.normal(0, 0.8, n_hidden))
    leaves += w1 + b1 + w2 + [float(gen.normal(0, 0.2)), float(gen.uniform(-1, 1)), -1.0]
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
            raise diagnose("value-grad-not-number", fn=fn_name, got=describe(g)) from None
    return np.array(out)


def _refuse_bplib_value(V, fn_name: str) -> None:
    from bplib import autodiff

    if V is autodiff.Value or (isinstance(V, type) and issubclass(V, autodiff.Value)):
        raise diagnose("reference-used", fn=fn_name, what="Value (bplib.autodiff.Value)")


def _compare_graph(got, leaves, program, fn_name: str, what: str, backward: bool = False) -> None:
    numerical = _numerical_grads(leaves, program)
    if grad_close(got, numerical):
        return
    bad = int(np.argmax(np.abs(got - numerical) / (TOLERANCE.atol + np.abs(numerical))))
    raise diagnose("backward-graph-gradient-wrong" if backward else "value-graph-gradient-wrong",
                   fn=fn_name, what=what, index=bad, got=fmt(got[bad]),
                   want=fmt(numerical[bad]))


_PROBE_MISTAKES = {  # op: [(diagnosis id, wrong d out/d x given x, n, out)]
    "add": [],
    "mul": [("mul-own-data", lambda x, n, o: x)],
    "pow": [("pow-exponent-not-lowered", lambda x, n, o: n * x ** n),
            ("pow-factor-missing", lambda x, n, o: x ** (n - 1))],
    "tanh": [("tanh-used-input", lambda x, n, o: 1 - x ** 2)],
    "exp": [("exp-used-input", lambda x, n, o: x)],
    "relu": [],
}


def _probe(V, op: str, seed: int) -> None:
    """One operation on fresh inputs whose grads are already non-zero, then ``out._backward()``
    with a random ``out.grad``: each input must gain exactly ``local * out.grad``."""
    fn_name = _OP_LABEL[op]
    gen = rng(seed)
    sign = 1 if seed % 2 == 0 else -1
    a_val = float(gen.uniform(0.4, 1.6)) * (sign if op != "pow" else 1)
    b_val = float(gen.uniform(-1.6, -0.4))
    n = [2, 3, -1, 0.5, 1.5][seed % 5]
    a, b = V(a_val), V(b_val)
    before = float(gen.uniform(0.3, 0.9))
    a.grad, b.grad = before, -before
    out = {"add": lambda: a + b, "mul": lambda: a * b, "pow": lambda: a ** n,
           "tanh": lambda: a.tanh(), "relu": lambda: a.relu(), "exp": lambda: a.exp()}[op]()
    if not hasattr(out, "_backward") or not hasattr(out, "_prev"):
        raise diagnose("value-not-returned", fn=fn_name, got=describe(out))
    args = (0, 1) if op in ("add", "mul") else ((0, n) if op == "pow" else (0,))
    vals = [a_val, b_val]
    expected_out = float(_op_float(op, args, vals))
    if not np.isclose(float(out.data), expected_out, rtol=1e-12, atol=1e-15):
        raise diagnose("value-forward-changed", fn=fn_name, got=fmt(out.data),
                       want=fmt(expected_out))
    g = float(gen.uniform(0.5, 2.0)) * -sign
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
            raise diagnose("relu-passes-negative")
        if op == "relu" and x > 0 and near(start):
            raise diagnose("relu-blocks-positive")
        if near(local * g):
            raise diagnose("value-grad-overwritten", fn=fn_name,
                           context=f"{name}.grad lost the gradient it already had "
                                   f"({fmt(start)} before, {fmt(got)} after); ")
        if near(start):
            raise diagnose("value-grad-unchanged", fn=fn_name, name=name)
        if near(start + local):
            raise diagnose("value-chain-rule-missing", fn=fn_name, name=name)
        if near(start - local * g):
            raise diagnose("value-wrong-sign", fn=fn_name, name=name)
        for id_, wrong in _PROBE_MISTAKES[op]:
            if near(start + wrong(x, n, expected_out) * g):
                raise diagnose(id_)
        raise diagnose("value-local-grad-wrong", fn=fn_name, g=fmt(g), name=name, got=fmt(got),
                       want=fmt(want), start=fmt(start), local=fmt(local))


def _fan_out(V, op: str, seed: int) -> None:
    """The same Value used twice: ``a op a`` for a binary op, two uses of ``a`` otherwise."""
    fn_name = _OP_LABEL[op]
    gen = rng(seed + 100)
    x = float(gen.uniform(0.4, 1.4))
    a = V(x)
    if op in ("add", "mul"):
        out = a + a if op == "add" else a * a
        out.grad = 1.0
        out._backward()
        want = 2.0 if op == "add" else 2 * x
        what = f"a {'+' if op == 'add' else '*'} a"
    else:
        program = [(op, (0, 2) if op == "pow" else (0,)), (op, (0, 3) if op == "pow" else (0,))]
        nodes = _build(V, [x], program, op)
        a = nodes[0]
        for node in nodes[1:]:
            node.grad = 1.0
            node._backward()
        locals_ = [_local_grads(o, ar, [x], _op_float(o, ar, [x]))[0][1] for o, ar in program]
        want = sum(locals_)
        what = f"two {fn_name} nodes of the same a"
    got = _grads_of([a], 1, fn_name)[0]
    if np.isclose(got, want, rtol=1e-9, atol=1e-12):
        return
    raise diagnose("value-fan-out-wrong", fn=fn_name, what=what, got=fmt(got), want=fmt(want))


def _grader_backward(out) -> None:
    out.grad = 1.0
    for v in reversed(_topo(out)):
        v._backward()


def _check_value_op(V, op: str, seed: int, graphs: int) -> None:
    fn_name = _OP_LABEL[op]
    _refuse_bplib_value(V, fn_name)
    with strict_floats(fn_name):
        _probe(V, op, 2 * seed)  # a positive and a negative input
        _probe(V, op, 2 * seed + 1)
        _fan_out(V, op, seed)
        for k in range(graphs):
            gen = rng(1000 * seed + k)
            leaves, program = _random_program(gen, n_leaves=3, n_ops=12, op=op)
            nodes = _build(V, leaves, program, op)
            _grader_backward(nodes[-1])
            _compare_graph(_grads_of(nodes, len(leaves), fn_name), leaves, program, fn_name,
                           f"a random graph (seed {seed}.{k})")
        if op in ("add", "mul", "tanh", "relu"):
            leaves, program = _mlp_program(rng(seed + 7), act="relu" if op == "relu" else "tanh")
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
    x = V(float(rng(seed).uniform(-2, 2)))
    with strict_floats(fn_name):
        x.backward()
    if not np.isclose(_grads_of([x], 1, fn_name)[0], 1.0):
        raise diagnose("backward-seed-missing", got=fmt(x.grad))
    # u = tanh(x), w = tanh(u), out = u + w: u is used by out and by w, so its _backward
    # must wait for w's (a breadth-first walk from out runs it first)
    problems = [([0.4], [("tanh", (0,)), ("tanh", (1,)), ("add", (1, 2))],
                 "out = u + tanh(u) with u = tanh(x)")]
    for k in range(graphs + 1):
        gen = rng(2000 * seed + k)
        if k == graphs:
            leaves, program = _mlp_program(gen)
            what = "a small MLP made of Values"
        else:
            leaves, program = _random_program(gen, 3, 14, "add", share=0.3)
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
            with strict_floats(fn_name):
                out.backward()
        except RecursionError:
            raise diagnose("backward-recursive", what=what) from None
        _check_order(record, nodes, len(leaves), what)
        got = _grads_of(nodes, len(leaves), fn_name)
        _compare_graph(got, leaves, program, fn_name, what, backward=True)


def _check_order(record: list, nodes: list, n_leaves: int, what: str) -> None:
    made = [n for n in _topo(nodes[-1]) if n._prev]  # the grader's nodes the output uses
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
        for child in node._prev:
            if id(child) in position and position[id(child)] < position[id(node)]:
                raise diagnose("backward-not-topological", what=what)
