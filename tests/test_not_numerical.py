"""Backprop, not finite differences: the checks refuse numerically differentiated gradients.

A gradient by finite differences meets the numerical comparison's tolerance, so every
gradient check also compares with the analytic reference (bplib's backward functions,
called by the grader) to the rounding the inputs allow
(:func:`bpgrade.checks.compare.rounding_allowance`: the reference's spread when its inputs
move by a few units of rounding, times :data:`~bpgrade.checks.compare.DERIVED_SPREAD`, at
least :data:`~bpgrade.checks.compare.DERIVED_RTOL`), which only an analytic computation
reaches. Exercise 7's rules are held to the rounding of their own formula
(``bpgrade.checks.ex07_autodiff``). Both sides are tested here, on every input the
notebooks grade (visible and hidden tests, every scale): numerical variants (central,
forward and five-point differences, loops over entries and vectorised, steps from 1e-8 to
1) are refused; analytic variants (``@``, ``np.dot``, einsum, loops, sigmoid and tanh
recomputed from x, softmax by hand, a stable log-sum-exp cross-entropy at logits of 1000,
tanh's rule as sech squared, ...) pass; and with the guard disabled the numerical variants
pass, so the guard is what stops them.

``python -m tests.test_not_numerical`` prints the false-reject rate on the correct variants
and the catch rate on the difference quotients, per function, and the measured errors.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from pathlib import Path

import nbformat
import numpy as np
import pytest

from bpgrade import checks as T
from bpgrade.checks import compare, ex04_backward
from bplib import functional as F
from tools import samples as S

ROOT = Path(__file__).resolve().parent.parent


@contextmanager
def replaced(module, name: str, value):
    """A module of the checks with one attribute replaced, for a test: they are read-only
    (``bpgrade.checks._trust``), so this uses ``object.__setattr__``, which the integrity
    check refuses in a submission."""
    old = getattr(module, name)
    object.__setattr__(module, name, value)
    try:
        yield
    finally:
        object.__setattr__(module, name, old)

# --------------------------------------------------------------------------- numerical variants


def _diff(f, p: np.ndarray, h: float, scheme: str) -> np.ndarray:
    """Gradient of the scalar ``f()`` with respect to ``p`` (perturbed in place, restored)."""
    g = np.zeros_like(p)
    for i in np.ndindex(p.shape):
        old = p[i]

        def at(step, i=i, old=old):
            p[i] = old + step
            try:
                return float(f())
            finally:
                p[i] = old

        if scheme == "central":
            g[i] = (at(h) - at(-h)) / (2 * h)
        elif scheme == "forward":
            g[i] = (at(h) - float(f())) / h
        else:  # five-point stencil, error O(h**4)
            g[i] = (-at(2 * h) + 8 * at(h) - 8 * at(-h) + at(-2 * h)) / (12 * h)
    return g


def numerical_linear(h=1e-5, scheme="central"):
    """Loops over every entry of x, W and b with differences of linear_forward."""
    def linear_backward(dout, cache):
        x, W, b = (np.array(a, dtype=np.float64) for a in cache)

        def f():
            return np.sum(dout * F.linear_forward(x, W, b)[0])

        return _diff(f, x, h, scheme), _diff(f, W, h, scheme), _diff(f, b, h, scheme)
    return linear_backward


def numerical_linear_per_output(h=1e-5):
    """Differences of the output array (not of sum(dout * out)), then the product with dout."""
    def linear_backward(dout, cache):
        x, W, b = (np.array(a, dtype=np.float64) for a in cache)
        grads = []
        for p in (x, W, b):
            g = np.zeros_like(p)
            for i in np.ndindex(p.shape):
                old = p[i]
                p[i] = old + h
                up = F.linear_forward(x, W, b)[0]
                p[i] = old - h
                down = F.linear_forward(x, W, b)[0]
                p[i] = old
                g[i] = np.sum(dout * (up - down)) / (2 * h)
            grads.append(g)
        return tuple(grads)
    return linear_backward


def _elementwise(forward, from_out, h, scheme):
    """dout * f'(x) with f' by a difference quotient, entry by entry (vectorised)."""
    def backward(dout, cache):
        x = from_out(np.asarray(cache, dtype=np.float64))

        def f(z):
            return forward(z)[0]

        if scheme == "central":
            return dout * (f(x + h) - f(x - h)) / (2 * h)
        if scheme == "forward":
            return dout * (f(x + h) - f(x)) / h
        return dout * (-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)
    return backward


def _logit(out):
    return np.log(out) - np.log1p(-out)


def numerical_sigmoid(h=1e-5, scheme="central"):
    return _elementwise(F.sigmoid_forward, _logit, h, scheme)


def numerical_tanh(h=1e-5, scheme="central"):
    return _elementwise(F.tanh_forward, np.arctanh, h, scheme)


def numerical_relu(h=1e-5, scheme="central"):
    return _elementwise(F.relu_forward, lambda x: x, h, scheme)


def numerical_relu_looped(h=1e-5):
    """Loops over entries with differences of sum(dout * relu_forward(x))."""
    def relu_backward(dout, cache):
        x = np.array(cache, dtype=np.float64)
        return _diff(lambda: np.sum(dout * F.relu_forward(x)[0]), x, h, "central")
    return relu_backward


def _net_loss(p, X, y):
    a, _ = F.linear_forward(X, p["W1"], p["b1"])
    h, _ = F.relu_forward(a)
    return F.softmax_cross_entropy(F.linear_forward(h, p["W2"], p["b2"])[0], y)[0]


def numerical_net(h=1e-5, scheme="central"):
    def two_layer_net(params, X, y):
        p = {k: np.array(v, dtype=np.float64) for k, v in params.items()}
        grads = {k: _diff(lambda: _net_loss(p, X, y), p[k], h, scheme) for k in p}
        return _net_loss(p, X, y), grads
    return two_layer_net


def numerical_net_with_numerical_layer(h=1e-5):
    """The correct network, built on a numerical linear_backward (fails its own check too)."""
    return correct_net(linear_backward=numerical_linear(h))


def numerical_loss(loss_fn, h=1e-5, scheme="central"):
    """A loss that returns the right value and a numerically differentiated gradient."""
    def loss(pred, target):
        z = np.array(pred, dtype=np.float64)
        return loss_fn(z, target)[0], _diff(lambda: loss_fn(z, target)[0], z, h, scheme)
    return loss


# --------------------------------------------------------------------------- analytic variants


def _lin_matmul(d, c):
    x, W, b = c
    return d @ W.T, x.T @ d, d.sum(axis=0)


def _lin_dot(d, c):
    x, W, b = c
    return np.dot(d, W.T), np.dot(x.T, d), np.sum(d, axis=0)


def _lin_einsum(d, c):
    x, W, b = c
    return (np.einsum("nm,dm->nd", d, W), np.einsum("nd,nm->dm", x, d),
            np.einsum("nm->m", d))


def _lin_transposed_products(d, c):
    x, W, b = c
    return (W @ d.T).T, (d.T @ x).T, np.ones(d.shape[0]) @ d


def _lin_batch_loop(d, c):
    x, W, b = c
    dx, dW, db = np.zeros_like(x), np.zeros_like(W), np.zeros_like(b)
    for n in range(x.shape[0]):
        dx[n] = W @ d[n]
        dW += np.outer(x[n], d[n])
        db += d[n]
    return dx, dW, db


def _lin_entry_loop(d, c):
    x, W, b = c
    (N, D), M = x.shape, W.shape[1]
    dx, dW, db = np.zeros((N, D)), np.zeros((D, M)), np.zeros(M)
    for n in range(N):
        for j in range(D):
            dx[n, j] = sum(d[n, k] * W[j, k] for k in range(M))
    for j in range(D):
        for k in range(M):
            dW[j, k] = sum(x[n, j] * d[n, k] for n in range(N))
    for k in range(M):
        db[k] = sum(d[n, k] for n in range(N))
    return dx, dW, db


def _lin_written_out(d, c):
    x, W, b = c
    return ((d[:, None, :] * W[None, :, :]).sum(axis=2),
            (x[:, :, None] * d[:, None, :]).sum(axis=0), d.T.sum(axis=1))


ANALYTIC_LINEAR = [_lin_matmul, _lin_dot, _lin_einsum, _lin_transposed_products,
                   _lin_batch_loop, _lin_entry_loop, _lin_written_out]

ANALYTIC_RELU = [
    lambda d, x: d * (x > 0),
    lambda d, x: np.where(x > 0, d, 0.0),
    lambda d, x: d * np.heaviside(x, 0.0),
    lambda d, x: d * (np.maximum(x, 0) > 0).astype(float),
    lambda d, x: d * np.sign(np.maximum(x, 0)),
    lambda d, x: np.array([[di if xi > 0 else 0.0 for di, xi in zip(dr, xr, strict=True)]
                           for dr, xr in zip(d, x, strict=True)]),
]


def _relu_mask_copy(d, x):
    dx = d.copy()
    dx[x <= 0] = 0
    return dx


ANALYTIC_RELU.append(_relu_mask_copy)


def _sig_from_x(d, out):
    x = _logit(out)  # recompute x from the cache, then s = sigmoid(x) again
    s = 1 / (1 + np.exp(-x))
    return d * s * (1 - s)


def _sig_exp_form(d, out):
    x = _logit(out)
    e = np.exp(-x)
    return d * e / (1 + e) ** 2


def _sig_entry_loop(d, out):
    dx = np.zeros_like(out)
    for i in np.ndindex(out.shape):
        dx[i] = d[i] * out[i] * (1.0 - out[i])
    return dx


ANALYTIC_SIGMOID = [
    lambda d, out: d * out * (1 - out),
    lambda d, out: out * (1 - out) * d,
    lambda d, out: d * (out - out**2),
    lambda d, out: d * (out - out * out),
    _sig_from_x, _sig_exp_form, _sig_entry_loop,
]


def _tanh_entry_loop(d, out):
    dx = np.zeros_like(out)
    for i in np.ndindex(out.shape):
        dx[i] = d[i] * (1.0 - out[i] ** 2)
    return dx


ANALYTIC_TANH = [
    lambda d, out: d * (1 - out**2),
    lambda d, out: d * (1 - out * out),
    lambda d, out: d * (1 - out) * (1 + out),
    lambda d, out: d / np.cosh(np.arctanh(out)) ** 2,
    lambda d, out: d * (1 - np.tanh(np.arctanh(out)) ** 2),
    lambda d, out: d * 4 / (np.exp(np.arctanh(out)) + np.exp(-np.arctanh(out))) ** 2,
    _tanh_entry_loop,
]


def correct_net(linear_backward=_lin_matmul, relu_backward=lambda d, x: d * (x > 0),
                softmax=F.softmax, dot=np.matmul):
    def two_layer_net(params, X, y):
        W1, b1, W2, b2 = (params[k] for k in ("W1", "b1", "W2", "b2"))
        a = dot(X, W1) + b1
        h = np.maximum(a, 0)
        scores = dot(h, W2) + b2
        N = X.shape[0]
        p = softmax(scores)
        loss = -np.mean(np.log(p[np.arange(N), y]))
        dscores = p.copy()
        dscores[np.arange(N), y] -= 1
        dscores /= N
        dh, dW2, db2 = linear_backward(dscores, (h, W2, b2))
        da = relu_backward(dh, a)
        _, dW1, db1 = linear_backward(da, (X, W1, b1))
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return two_layer_net


def _softmax_by_hand(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


ANALYTIC_NET = [
    correct_net(),
    correct_net(_lin_einsum, softmax=_softmax_by_hand),
    correct_net(_lin_batch_loop, lambda d, x: np.where(x > 0, d, 0.0), dot=np.dot),
    correct_net(_lin_entry_loop, softmax=lambda z: np.exp(F.log_softmax(z))),
    correct_net(_lin_written_out),
]


def _mse_variants():
    return [
        lambda y, t: (np.sum((y - t) ** 2) / (2 * y.shape[0]), (y - t) / y.shape[0]),
        lambda y, t: (0.5 * np.mean(np.sum((y - t) ** 2, axis=tuple(range(1, y.ndim)))),
                      (y - t) * (1 / y.shape[0])),
        lambda y, t: (np.sum((y - t) ** 2) / (2 * y.shape[0]), 2 * (y - t) / (2 * y.shape[0])),
    ]


def _ce_by_hand(z, y):
    n = z.shape[0]
    p = _softmax_by_hand(z)
    logp = z - z.max(axis=1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=1, keepdims=True))
    d = p.copy()
    d[np.arange(n), y] -= 1
    return -logp[np.arange(n), y].mean(), d / n


def _ce_onehot(z, y):
    n, c = z.shape
    onehot = np.eye(c)[y]
    with np.errstate(under="ignore"):
        p = np.exp(F.log_softmax(z))
    return F.softmax_cross_entropy(z, y)[0], (p - onehot) / n


def _bce_where(z, t):
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(z))
        s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return F.binary_cross_entropy(z, t)[0], (s - t) / z.shape[0]


def _ce_log_sum_exp(z, y):
    """The stable form: lse = m + log(sum(exp(z - m))), gradient exp(z - lse) - onehot."""
    n = z.shape[0]
    m = z.max(axis=1, keepdims=True)
    lse = m + np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    d = np.exp(z - lse)
    d[np.arange(n), y] -= 1
    return float((lse[:, 0] - z[np.arange(n), y]).mean()), d / n


def _ce_log_softmax(z, y):
    n = z.shape[0]
    log_p = F.log_softmax(z)
    d = np.exp(log_p)
    d[np.arange(n), y] -= 1
    return float(-log_p[np.arange(n), y].mean()), d / n


def _bce_logaddexp(z, t):
    s = np.exp(-np.logaddexp(0, -z))
    return float(np.mean(np.logaddexp(0, z) - z * t)), (s - t) / z.shape[0]


def _bce_split(z, t):
    with np.errstate(under="ignore"):
        e = np.exp(-np.abs(z))
        s = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        one_minus_s = np.where(z >= 0, e / (1 + e), 1 / (1 + e))
    return F.binary_cross_entropy(z, t)[0], (-t * one_minus_s + (1 - t) * s) / z.shape[0]


# --------------------------------------------------------------------------- how each is graded

# Every configuration the notebooks grade (visible and hidden tests of ex03 and ex04).
RUNS = {
    "linear_backward": lambda fn: [T.check_linear_backward(fn, N, D, M, seed=s)
                                   for s in range(4)
                                   for N, D, M in ((4, 3, 5), (5, 3, 4), (3, 3, 3), (2, 4, 4))],
    "relu_backward": lambda fn: [T.check_relu_backward(fn, shape, seed=s) for s in range(4)
                                 for shape in ((4, 5), (3, 3), (2, 7))],
    "sigmoid_backward": lambda fn: [T.check_sigmoid_backward(fn, shape, seed=s)
                                    for s in range(4) for shape in ((4, 5), (3, 3), (6, 2))],
    "tanh_backward": lambda fn: [T.check_tanh_backward(fn, shape, seed=s) for s in range(4)
                                 for shape in ((4, 5), (3, 3), (5, 1))],
    "two_layer_net": lambda fn: [T.check_two_layer_net(fn, *dims, seed=s) for s in range(4)
                                 for dims in ((5, 4, 6, 3), (6, 3, 5, 4), (4, 4, 4, 4))],
    "mse_loss": lambda fn: [T.check_mse_loss(fn, shape, seed=s) for s in range(4)
                            for shape in ((5, 3), (4, 2), (3, 3), (6,))],
    "softmax_cross_entropy": lambda fn: [
        T.check_softmax_cross_entropy(fn, N, C, seed=s, scale=scale) for s in range(4)
        for N, C, scale in ((5, 3, 2.0), (4, 6, 2.0), (3, 3, 2.0), (5, 4, 1000.0))],
    "binary_cross_entropy": lambda fn: [
        T.check_binary_cross_entropy(fn, shape, seed=s, scale=scale) for s in range(4)
        for shape, scale in (((6,), 2.0), ((5,), 2.0), ((4, 1), 2.0), ((7,), 1000.0),
                             ((8,), 2.0), ((5, 1), 2.0), ((6,), 1000.0))],
}

ANALYTIC = {
    "linear_backward": ANALYTIC_LINEAR,
    "relu_backward": ANALYTIC_RELU,
    "sigmoid_backward": ANALYTIC_SIGMOID,
    "tanh_backward": ANALYTIC_TANH,
    "two_layer_net": ANALYTIC_NET,
    "mse_loss": _mse_variants(),
    "softmax_cross_entropy": [_ce_by_hand, _ce_onehot, _ce_log_sum_exp, _ce_log_softmax],
    "binary_cross_entropy": [_bce_where, _bce_split, _bce_logaddexp],
}

# The numerical variants the fast tests run (the h = 1e-5 central differences a student
# copies from the chapter, and the best a difference quotient can do); `_measure` runs more.
NUMERICAL = {
    "linear_backward": [numerical_linear(), numerical_linear_per_output(),
                        numerical_linear(1.0), numerical_linear(1e-2, "five-point")],
    "relu_backward": [numerical_relu(), numerical_relu_looped(), numerical_relu(1e-3)],
    "sigmoid_backward": [numerical_sigmoid(), numerical_sigmoid(1e-3, "five-point")],
    "tanh_backward": [numerical_tanh(), numerical_tanh(6e-6), numerical_tanh(1e-3, "five-point")],
    "two_layer_net": [numerical_net(), numerical_net(1e-3, "five-point"),
                      numerical_net_with_numerical_layer()],
    "mse_loss": [numerical_loss(F.mse_loss), numerical_loss(F.mse_loss, 1.0)],
    "softmax_cross_entropy": [numerical_loss(F.softmax_cross_entropy)],
    "binary_cross_entropy": [numerical_loss(F.binary_cross_entropy)],
}

LOOKS_NUMERICAL = r"looks numerical, not derived"


def _cases(table):
    return [pytest.param(name, i, id=f"{name}-{i}") for name in table
            for i in range(len(table[name]))]


@pytest.mark.parametrize(("name", "i"), _cases(NUMERICAL))
def test_a_numerically_differentiated_gradient_is_refused_with_words_that_say_so(name, i):
    with pytest.raises(AssertionError) as info:
        RUNS[name](NUMERICAL[name][i])
    message = str(info.value)
    assert re.search(LOOKS_NUMERICAL, message), message
    assert re.search(r"chain rule|derivative gives", message), message


@pytest.mark.parametrize(("name", "i"), _cases(ANALYTIC))
def test_an_analytic_gradient_passes_however_it_is_written(name, i):
    RUNS[name](ANALYTIC[name][i])


@pytest.mark.parametrize(("name", "i"), _cases(NUMERICAL))
def test_without_the_guard_the_numerical_gradient_would_pass(name, i):
    with replaced(compare, "DERIVED_RTOL", np.inf):
        if name == "relu_backward":
            with replaced(ex04_backward, "_check_relu_near_kink", lambda *args: None):
                RUNS[name](NUMERICAL[name][i])
        else:
            RUNS[name](NUMERICAL[name][i])


def test_a_stable_cross_entropy_at_logits_of_1000_is_derived_not_numerical():
    """The issue's case: right to 3e-14 where rounding at |z| = 1000 allows about 1e-13,
    while a difference quotient there is off by 1e-8 or more."""
    for seed in range(4):
        T.check_softmax_cross_entropy(_ce_log_sum_exp, 5, 4, seed=seed, scale=1000.0)
    with pytest.raises(T.Diagnosis, match="looks-numerical"):
        T.check_softmax_cross_entropy(numerical_loss(F.softmax_cross_entropy), 5, 4,
                                      scale=1000.0)


def test_the_message_names_the_gradient_and_the_size_of_the_error():
    with pytest.raises(AssertionError) as info:
        T.check_linear_backward(numerical_linear(), seed=0)
    assert re.fullmatch(
        r"linear_backward: dx looks numerical, not derived: it is right to about \de-1\d "
        r"relative error, where the chain rule gives \de-1\d or better\. .*apply the chain rule",
        info.value.message), str(info.value)
    assert info.value.id == "looks-numerical"


def test_a_large_step_on_the_linear_layer_is_caught_by_the_large_bias():
    # h = 1 is exact on a linear function up to rounding: only the case with b ~ 1e6 sees it
    with pytest.raises(AssertionError, match=r"dx looks numerical.*bias is about 1e6"):
        T.check_linear_backward(numerical_linear(1.0), seed=0)


def test_relu_by_a_difference_quotient_is_caught_at_the_kink():
    with pytest.raises(AssertionError) as info:
        T.check_relu_backward(numerical_relu(1e-3), seed=0)
    assert re.search(r"relu_backward: dx looks numerical, not derived: at x = -?[\d.]+e-0\d, "
                     r"that close to the kink at 0, it is \S+ where the derivative gives "
                     r"(dout = \S+, since x > 0|0, since x < 0)\. .* averages the two slopes",
                     str(info.value)), str(info.value)


def test_an_analytic_gradient_in_float32_is_told_to_use_float64_not_called_numerical():
    def in_float32(d, out):
        out32 = out.astype(np.float32)
        return d.astype(np.float32) * (1 - out32 * out32)

    with pytest.raises(AssertionError, match=r"tanh_backward: dx is float32 and only right to "
                                             r"about \de-0\d relative error; compute it in "
                                             r"float64"):
        T.check_tanh_backward(in_float32)


def test_a_wrong_gradient_is_still_diagnosed_by_the_numerical_comparison_first():
    # The guard comes after the numerical comparison: a mistake keeps its own words.
    with pytest.raises(AssertionError, match=r"average over the batch instead of summing"):
        T.check_linear_backward(lambda d, c: (d @ c[1].T, c[0].T @ d, d.mean(axis=0)))


# --------------------------------------------------------------------------- exercise 7's rules

EX = "ex07_autodiff"
OPS = ("__add__", "__mul__", "__pow__", "tanh", "relu", "exp")
# how the notebook grades each rule: its visible test, then its hidden tests
VALUE_CHECKS = {"__add__": T.check_value_add, "__mul__": T.check_value_mul,
                "__pow__": T.check_value_pow, "tanh": T.check_value_tanh,
                "relu": T.check_value_relu, "exp": T.check_value_exp}


def run_rule(op: str, V) -> None:
    VALUE_CHECKS[op](V, seed=0)
    for seed in range(1, 5):
        VALUE_CHECKS[op](V, seed=seed, graphs=4)


def value_class(op: str, body: str) -> type:
    """The exercise's solution with the ``_backward`` body of ``op`` replaced."""
    source = nbformat.read(ROOT / "solutions" / EX / f"{EX}.ipynb", 4)
    release = nbformat.read(ROOT / "exercises" / EX / f"{EX}.ipynb", 4)
    stub = S.solution_cells(release)[op].source
    ns: dict = {}
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id")
        if cell.cell_type == "code" and (gid == "setup" or meta.get("solution")):
            code = S.fill_stubs(stub, [body]) if gid == op else cell.source
            exec(compile(code, gid, "exec"), ns)  # noqa: S102 - the course's own code
    return ns["Value"]


# Right rules, written in every way a derivation gives them (false rejects: none allowed)
ANALYTIC_RULES = {
    "__add__": ["self.grad += out.grad\nother.grad += out.grad",
                "self.grad += 1.0 * out.grad\nother.grad += 1.0 * out.grad",
                "self.grad = self.grad + out.grad\nother.grad = other.grad + out.grad"],
    "__mul__": ["self.grad += other.data * out.grad\nother.grad += self.data * out.grad",
                "self.grad += out.grad * other.data\nother.grad += out.grad * self.data",
                "g = out.grad\nself.grad = self.grad + g * other.data\n"
                "other.grad = other.grad + g * self.data"],
    "__pow__": ["self.grad += n * self.data ** (n - 1) * out.grad",
                "self.grad += n * out.data / self.data * out.grad",
                "self.grad += out.grad * n * math.pow(self.data, n - 1)",
                "self.grad += n * (self.data ** n / self.data) * out.grad"],
    "tanh": ["self.grad += (1 - out.data ** 2) * out.grad",
             "self.grad += (1 - out.data) * (1 + out.data) * out.grad",
             "self.grad += out.grad / math.cosh(self.data) ** 2",
             "self.grad += (1 - math.tanh(self.data) ** 2) * out.grad",
             "self.grad += 4 * out.grad / (math.exp(self.data) + math.exp(-self.data)) ** 2"],
    "relu": ["self.grad += (self.data > 0) * out.grad",
             "self.grad += float(self.data > 0) * out.grad",
             "self.grad += out.grad if self.data > 0 else 0.0",
             "self.grad += (out.data > 0) * out.grad"],
    "exp": ["self.grad += out.data * out.grad",
            "self.grad += math.exp(self.data) * out.grad",
            "self.grad += math.e ** self.data * out.grad",
            "import numpy as np\nself.grad += float(np.exp(self.data)) * out.grad"],
}

_FORWARD = {  # (what self's forward is, as a function of t; the same for other)
    "__add__": ("t + other.data", "self.data + t"),
    "__mul__": ("t * other.data", "self.data * t"),
    "__pow__": ("t ** n", None),
    "tanh": ("math.tanh(t)", None),
    "relu": ("max(t, 0.0)", None),
    "exp": ("math.exp(t)", None),
}
_SCHEMES = {
    "central": "(f(x + h) - f(x - h)) / (2 * h)",
    "forward": "(f(x + h) - f(x)) / h",
    "five-point": "(-f(x + 2 * h) + 8 * f(x + h) - 8 * f(x - h) + f(x - 2 * h)) / (12 * h)",
}
STEPS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8)


def numerical_rule(op: str, scheme: str, h: float) -> str:
    """A ``_backward`` that differentiates the forward formula by a difference quotient."""
    lines = [f"h = {h!r}"]
    for name, forward in zip(("self", "other"), _FORWARD[op], strict=True):
        if forward is None:
            continue
        x = f"{name}.data"
        lines += [f"f = lambda t: {forward}", f"x = {x}",
                  f"{name}.grad += {_SCHEMES[scheme]} * out.grad"]
    return "\n".join(lines)


NUMERICAL_RULES = {op: [(f"{scheme} h={h:g}", numerical_rule(op, scheme, h))
                        for scheme in _SCHEMES for h in STEPS] for op in OPS}


@pytest.mark.parametrize(("op", "i"), [(op, i) for op in OPS
                                       for i in range(len(ANALYTIC_RULES[op]))])
def test_a_rule_derived_in_any_way_passes_every_hidden_test(op, i):
    run_rule(op, value_class(op, ANALYTIC_RULES[op][i]))


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("scheme", sorted(_SCHEMES))
def test_a_rule_computed_by_a_difference_quotient_is_refused_at_every_step(op, scheme):
    for h in STEPS:
        with pytest.raises(T.Diagnosis) as info:
            run_rule(op, value_class(op, numerical_rule(op, scheme, h)))
        assert info.value.id in ("looks-numerical", "looks-numerical-at-kink",
                                 "value-local-grad-wrong", "value-graph-gradient-wrong"), \
            f"{op} {scheme} h={h:g}: {info.value}"


def test_the_tanh_rule_of_the_issue_is_refused_as_numerical():
    body = ("h = 1e-5\nself.grad += (math.tanh(self.data + h) - math.tanh(self.data - h)) "
            "/ (2 * h) * out.grad")
    with pytest.raises(T.Diagnosis, match=r"looks numerical, not derived") as info:
        T.check_value_tanh(value_class("tanh", body))
    assert info.value.id == "looks-numerical"


# --------------------------------------------------------------------------- the rates


def _grade(run, fn) -> str:
    """'' when ``fn`` passes every graded input, else the id of the first failure."""
    try:
        run(fn)
    except AssertionError as exc:
        return getattr(exc, "id", type(exc).__name__)
    return ""


def numerical_families() -> dict[str, list]:
    """The difference quotients measured: every scheme and step a student might use."""
    return {
        "linear_backward": [numerical_linear(h, s) for s in ("central", "forward", "five-point")
                            for h in (1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)]
        + [numerical_linear_per_output()],
        "relu_backward": [numerical_relu(h, s) for s in ("central", "forward", "five-point")
                          for h in (1e-9, 1e-7, 1e-5, 1e-3)] + [numerical_relu_looped()],
        "sigmoid_backward": [numerical_sigmoid(h, s) for s in ("central", "forward", "five-point")
                             for h in (1e-7, 1e-6, 6e-6, 1e-5, 1e-4, 1e-3)],
        "tanh_backward": [numerical_tanh(h, s) for s in ("central", "forward", "five-point")
                          for h in (1e-7, 1e-6, 6e-6, 1e-5, 1e-4, 1e-3)],
        "two_layer_net": [numerical_net(h, s) for s in ("central", "five-point")
                          for h in (1e-6, 1e-5, 1e-4, 1e-3)]
        + [numerical_net_with_numerical_layer()],
        "mse_loss": [numerical_loss(F.mse_loss, h, s) for s in ("central", "five-point")
                     for h in (1e-5, 1e-3, 1e-1, 1.0, 10.0)],
        "softmax_cross_entropy": [numerical_loss(F.softmax_cross_entropy, h, s)
                                  for s in ("central", "forward", "five-point")
                                  for h in (1e-7, 1e-5, 1e-3)],
        "binary_cross_entropy": [numerical_loss(F.binary_cross_entropy, h, s)
                                 for s in ("central", "forward", "five-point")
                                 for h in (1e-7, 1e-5, 1e-3)],
    }


def rates() -> dict[str, tuple[int, int, int, int, int]]:
    """Per function: (correct variants, of them rejected, difference quotients, of them
    refused, of them refused as looking numerical), over every input the notebooks grade."""
    table = {}
    families = numerical_families()
    for name, run in RUNS.items():
        wrong = [_grade(run, fn) for fn in ANALYTIC[name]]
        caught = [_grade(run, fn) for fn in families[name]]
        table[name] = (len(wrong), sum(map(bool, wrong)), len(caught), sum(map(bool, caught)),
                       sum(c.startswith("looks-numerical") for c in caught))
    for op in OPS:
        wrong = [_grade(lambda V, op=op: run_rule(op, V), value_class(op, body))
                 for body in ANALYTIC_RULES[op]]
        caught = [_grade(lambda V, op=op: run_rule(op, V), value_class(op, body))
                  for _, body in NUMERICAL_RULES[op]]
        table[f"Value.{op}"] = (len(wrong), sum(map(bool, wrong)), len(caught),
                                sum(map(bool, caught)),
                                sum(c.startswith("looks-numerical") for c in caught))
    return table


def format_rates(table) -> str:
    lines = [f"{'function':24} {'correct':>7} {'rejected':>8} {'quotients':>9} {'refused':>7}"
             f" {'as numerical':>12}"]
    for name, (n, rejected, m, refused, numerical) in table.items():
        lines.append(f"{name:24} {n:7d} {rejected:8d} {m:9d} {refused:7d} {numerical:12d}")
    n, rejected, m, refused, numerical = (sum(col) for col in zip(*table.values(), strict=True))
    lines.append(f"{'all':24} {n:7d} {rejected:8d} {m:9d} {refused:7d} {numerical:12d}")
    lines.append(f"false-reject rate {rejected}/{n} = {rejected / n:.0%}; catch rate "
                 f"{refused}/{m} = {refused / m:.0%} ({numerical} as looking numerical)")
    return "\n".join(lines)


@pytest.mark.slow
def test_no_correct_variant_is_rejected_and_every_difference_quotient_is_refused():
    table = rates()
    print(format_rates(table))
    assert all(rejected == 0 for _, rejected, _, _, _ in table.values()), format_rates(table)
    assert all(refused == m for _, _, m, refused, _ in table.values()), format_rates(table)


# --------------------------------------------------------------------------- measuring


def _measure() -> None:  # pragma: no cover - prints the numbers the bounds are chosen from
    """The rates, then the worst error of each correct variant and the best of each
    difference quotient, as multiples of the bound each input allowed."""
    print(format_rates(rates()))
    seen: list[float] = []

    def recording(got, ref, allowed=compare.DERIVED_RTOL):
        seen.append(compare.derived_error(got, ref) / max(allowed, compare.DERIVED_RTOL))
        return True

    families = numerical_families()
    with replaced(compare, "derived_close", recording):
        for name, run in RUNS.items():
            worst = []
            for fn in ANALYTIC[name]:
                seen.clear()
                run(fn)
                worst.append(max(seen))
            best = []  # each quotient's largest excess, where the numerical check lets it by
            for fn in families[name]:
                seen.clear()
                if not _grade(run, fn) and seen:
                    best.append(max(seen))
            print(f"{name}: correct variants at most {max(worst):.2g} of the bound; "
                  "difference quotients that pass the numerical comparison at least "
                  + (f"{min(best):.3g} times it" if best else "(none passes it)"))


if __name__ == "__main__":  # pragma: no cover
    _measure()
