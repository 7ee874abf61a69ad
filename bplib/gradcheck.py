"""Gradient checking by central differences.

The tolerances used everywhere in the course (the tests, the chapters and the
autograder) live here, in :data:`TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "TOLERANCE",
    "Tolerance",
    "numerical_gradient",
    "numerical_gradient_array",
    "rel_error",
    "grad_close",
    "GradCheckEntry",
    "GradCheckReport",
    "check_gradients",
]


@dataclass(frozen=True)
class Tolerance:
    """When an analytic gradient ``a`` counts as equal to a numerical one ``n``.

    Entry-wise ``|a - n| <= atol + rtol * max(|a|, |n|)``. Central differences
    with ``h = 1e-5`` in float64 are accurate to about ``1e-10`` relative to the
    function's scale, so ``rtol = 1e-5`` leaves a wide margin while a gradient
    that is off by a factor, a sign or a transpose fails by orders of magnitude.
    ``atol`` keeps entries that are zero up to rounding from failing.
    """

    rtol: float = 1e-5
    atol: float = 1e-7
    h: float = 1e-5


#: The one tolerance of the course, used by the tests, the chapters and the autograder.
TOLERANCE = Tolerance()


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central-difference gradient of a scalar function ``f()`` with respect to ``x``.

    ``df/dx[i] ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)``. ``f`` takes no
    arguments and reads ``x``; each entry of ``x`` is perturbed in place and
    restored before the next one, so ``x`` is unchanged afterwards.
    """
    if not isinstance(x, np.ndarray):
        raise TypeError(f"x must be a numpy array that f reads, got {type(x).__name__}")
    if not np.issubdtype(x.dtype, np.floating):
        # x[i] = old + h would be truncated to an integer: a silent, wrong gradient
        raise TypeError(
            f"x must be a floating-point array so that it can be perturbed by h={h}, "
            f"got dtype {x.dtype}; convert it with x.astype(float)"
        )
    grad = np.zeros(x.shape, dtype=np.float64)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    while not it.finished:
        i = it.multi_index
        old = x[i]
        try:
            x[i] = old + h
            fp = float(f())
            x[i] = old - h
            fm = float(f())
        finally:
            x[i] = old
        grad[i] = (fp - fm) / (2 * h)
        it.iternext()
    return grad.astype(x.dtype, copy=False)


def numerical_gradient_array(
    f: Callable[[], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical vector-Jacobian product for an array-valued ``f()``.

    Returns ``sum(dout * df/dx[i])`` for every ``i``: the gradient with respect
    to ``x`` of the scalar ``sum(dout * f())``, i.e. what a backward function
    given upstream gradient ``dout`` must return.
    """
    dout = np.asarray(dout)

    def scalar() -> float:
        y = np.asarray(f())
        if y.shape != dout.shape:
            raise ValueError(f"f() returned shape {y.shape} but dout has shape {dout.shape}")
        return float(np.sum(y * dout))

    return numerical_gradient(scalar, x, h)


def rel_error(a, b) -> float:
    """Largest entry-wise relative error ``|a - b| / max(1e-8, |a| + |b|)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: a has shape {a.shape} but b has shape {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


def grad_close(analytic, numerical, tol: Tolerance = TOLERANCE) -> bool:
    """Whether every entry satisfies ``|a - n| <= atol + rtol * max(|a|, |n|)``."""
    a = np.asarray(analytic, dtype=np.float64)
    n = np.asarray(numerical, dtype=np.float64)
    if a.shape != n.shape:
        return False
    bound = tol.atol + tol.rtol * np.maximum(np.abs(a), np.abs(n))
    return bool(np.all(np.abs(a - n) <= bound))


@dataclass
class GradCheckEntry:
    """The worst entry of one parameter's gradient check."""

    name: str
    index: tuple
    analytic: float
    numerical: float
    rel_error: float
    passed: bool
    shape: tuple = ()

    def __str__(self) -> str:
        mark = "ok" if self.passed else "FAIL"
        return (
            f"{self.name:>8} {str(self.shape):>10} worst at {str(self.index):>10}: "
            f"analytic {self.analytic: .6e}  numerical {self.numerical: .6e}  "
            f"rel. error {self.rel_error:.2e}  {mark}"
        )


@dataclass
class GradCheckReport:
    """Result of :func:`check_gradients`: one entry per parameter."""

    entries: list[GradCheckEntry] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.entries)

    @property
    def worst(self) -> GradCheckEntry | None:
        failing = [e for e in self.entries if not e.passed] or self.entries
        return max(failing, key=lambda e: e.rel_error, default=None)

    def __getitem__(self, name: str) -> GradCheckEntry:
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def __str__(self) -> str:
        head = "gradient check " + ("passed" if self.passed else "FAILED")
        return "\n".join([head, *map(str, self.entries)])

    def _repr_pretty_(self, p, cycle) -> None:  # pragma: no cover - IPython display
        p.text(str(self))


def _worst_entry(name: str, a: np.ndarray, n: np.ndarray, tol: Tolerance) -> GradCheckEntry:
    a = np.asarray(a, dtype=np.float64)
    n = np.asarray(n, dtype=np.float64)
    # The worst entry is the one that uses up most of its own allowance; ranking by the
    # difference minus the allowance would pick exact zeros whenever every entry passes.
    ratio = np.abs(a - n) / (tol.atol + tol.rtol * np.maximum(np.abs(a), np.abs(n)))
    idx = np.unravel_index(int(np.argmax(ratio)), a.shape) if a.size else ()
    idx = tuple(int(i) for i in idx)
    return GradCheckEntry(
        name=name,
        index=idx,
        analytic=float(a[idx]) if a.size else 0.0,
        numerical=float(n[idx]) if a.size else 0.0,
        rel_error=rel_error(a[idx], n[idx]) if a.size else 0.0,
        passed=grad_close(a, n, tol),
        shape=a.shape,
    )


def check_gradients(
    f: Callable[[], float],
    params: Mapping[str, np.ndarray],
    grads: Mapping[str, np.ndarray],
    h: float | None = None,
    tol: Tolerance = TOLERANCE,
) -> GradCheckReport:
    """Compare every analytic gradient in ``grads`` with a numerical one.

    ``f()`` computes the scalar loss from the arrays in ``params`` (it must read
    them, since they are perturbed in place). Each parameter's report entry is
    its worst entry: the index where the analytic and numerical values differ
    most beyond the tolerance.
    """
    missing = set(params) - set(grads)
    if missing:
        raise ValueError(f"no analytic gradient for parameter(s) {sorted(missing)}")
    report = GradCheckReport()
    for name, p in params.items():
        g = np.asarray(grads[name])
        if g.shape != p.shape:
            raise ValueError(
                f"gradient {name!r} has shape {g.shape} but parameter {name!r} has shape {p.shape}"
            )
        num = numerical_gradient(f, p, tol.h if h is None else h)
        report.entries.append(_worst_entry(name, g, num, tol))
    return report
