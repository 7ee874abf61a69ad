"""Exercise 5: update rules (SGD with momentum, Adam)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import numpy as np

from bpgrade.checks._trust import BUILTINS as __builtins__  # noqa: F401 - see _trust
from bpgrade.checks.compare import (
    as_float,
    call,
    check_unchanged,
    compare_array,
    refuse_reference,
    rng,
    unpack,
)
from bpgrade.checks.diagnoses import Diagnosis, diagnose
from bpgrade.language import text
from bplib import optim

__all__ = ["check_sgd_momentum_update", "check_adam_update"]


def _update_check(student_fn, reference_fn, state: dict, hyper: dict, out_names, fn_name,
                  mistakes: Sequence[tuple[str, Callable]] = ()) -> None:
    """Call ``student_fn(**state, **hyper)`` on copies; compare every output with the reference.

    ``mistakes`` are ``(diagnosis id, fn(*state, *hyper) -> the wrong outputs)``. A known
    mistake that makes NaN (the square root of a negative number) is named as that mistake
    rather than as numerical instability.
    """
    saved = {k: np.array(v, dtype=np.float64) for k, v in state.items()}
    args = {k: v.copy() for k, v in saved.items()}
    wrong = [(i, partial(fn, *saved.values(), *hyper.values())) for i, fn in mistakes]
    try:
        result = call(student_fn, (*args.values(), *hyper.values()), fn_name)
    except Diagnosis as unstable:
        if unstable.id != "unstable-nan":
            raise
        _name_a_mistake_that_makes_nan(student_fn, saved, hyper, out_names, fn_name, wrong)
        raise
    got = unpack(result, out_names, fn_name)
    check_unchanged(saved, args, fn_name, {k: text("return a new array, e.g. {k} = {k} - ...", k=k)
                                           for k in saved})
    want = reference_fn(*(v.copy() for v in saved.values()), *hyper.values())
    for i, (name, g, w) in enumerate(zip(out_names, got, want, strict=True)):
        compare_array(g, w, text("the new {name}", name=name), fn_name, like=name,
                      like_shape=saved["w"].shape, reference="expected",
                      mistakes=[(id_, lambda fn=fn, i=i: fn()[i]) for id_, fn in wrong])


def _name_a_mistake_that_makes_nan(student_fn, saved, hyper, out_names, fn_name, wrong):
    """Run the student's function again with NaN allowed; raise the known mistake it matches."""
    try:
        got = unpack(call(student_fn, (*(v.copy() for v in saved.values()), *hyper.values()),
                          fn_name, strict=False), out_names, fn_name)
        got = [as_float(g, n, fn_name) for g, n in zip(got, out_names, strict=True)]
    except Diagnosis:  # then the instability is the diagnosis
        return
    with np.errstate(all="ignore"):
        for id_, fn in wrong:
            results = [np.asarray(r, dtype=np.float64) for r in fn()]
            if all(g.shape == r.shape and np.array_equal(np.isnan(g), np.isnan(r)) and
                   np.allclose(g, r, equal_nan=True) for g, r in zip(got, results, strict=True)):
                raise diagnose(id_, what=text("{fn}: {name}", fn=fn_name,
                                              name=text("the new {name}", name=out_names[0])))


def check_sgd_momentum_update(student_fn: Callable, shape: tuple = (3, 4), seed: int = 0,
                              steps: int = 1) -> None:
    """``sgd_momentum_update(w, dw, v, lr, momentum) -> (w, v)``; ``v = mu v - lr dw; w += v``.

    With ``steps > 1`` the check repeats with the reference state of the previous step.
    """
    refuse_reference(student_fn, optim.sgd_momentum_update, "sgd_momentum_update")
    gen = rng(seed)
    w, v = gen.standard_normal(shape), 0.1 * gen.standard_normal(shape)
    lr, mu = float(gen.uniform(0.01, 0.5)), float(gen.uniform(0.5, 0.95))
    mistakes = [
        ("momentum-old-velocity", lambda w, dw, v, lr, mu: (w + v, mu * v - lr * dw)),
        ("momentum-adds-gradient",
         lambda w, dw, v, lr, mu: (w + mu * v + lr * dw, mu * v + lr * dw)),
        ("momentum-sign-convention",
         lambda w, dw, v, lr, mu: (w - (mu * v + lr * dw), mu * v + lr * dw)),
    ]
    for _ in range(steps):
        dw = gen.standard_normal(shape)
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
    refuse_reference(student_fn, optim.adam_update, "adam_update")
    gen = rng(seed)
    w = gen.standard_normal(shape)
    m, v = np.zeros(shape), np.zeros(shape)
    hyper = {"lr": float(gen.uniform(0.01, 0.1)), "beta1": 0.9, "beta2": 0.999, "eps": 1e-3}
    mistakes = [
        ("adam-no-bias-correction", _adam_no_correction),
        ("adam-eps-inside-sqrt", _adam_eps_inside),
        ("adam-v-not-squared", _adam_plain_square),
    ]
    for t in range(1, steps + 1):
        dw = gen.standard_normal(shape)
        _update_check(student_fn, optim.adam_update, {"w": w, "dw": dw, "m": m, "v": v},
                      {"t": t, **hyper}, ("w", "m", "v"), text("adam_update (at step t={t})", t=t),
                      mistakes)
        w, m, v = optim.adam_update(w, dw, m, v, t, *hyper.values())
