"""The checks' fast path (issue #24) changes no verdict: the same words, cell by cell.

The fast path of the checks differs from the classic one (``BPGRADE_CLASSIC_CHECKS=1``,
what ``python -m bench grading_scale --classic`` grades with) in how it computes, never in
what: numerical gradients taken on a stack of moved inputs in one evaluation of the
reference (:mod:`bpgrade.checks.numgrad`) instead of bplib's loop over entries, and the
watch's comparison in C loops before its exact loop (:mod:`bpgrade.checks._trust`). Here:

- every numerical gradient the test cells of exercise 4 ask for is, bit for bit, what
  :func:`bplib.gradcheck.numerical_gradient` returns on the same input (recorded while the
  instructor's solution is graded), and so are those of random problems of many shapes
  and scales and of a gradient large enough to be taken in several stacks;
- every sample submission of exercise 4 in ``tools/samples`` (the solution, the blank
  release, one per typical mistake), the exercise whose checks take these gradients,
  gets with the stacked gradients exactly the verdict it gets with bplib's loop in every
  test cell: passed, or the same exception with the same message (numbers included).
  Both run in this process, one after the other, by switching ``numgrad.STACKED``.
  (The watch's two comparisons are compared by ``tests/test_tamper.py``.)

``python -m tests.test_fast_checks`` prints the CPU the test cells of exercise 4's samples
take with each (and with the classic path's exact watch too).
"""

from __future__ import annotations

import contextlib
import io
import sys
import time
from pathlib import Path

import nbformat
import numpy as np

from bpgrade.checks import _trust, numgrad
from bpgrade.checks.ex02_forward import copy_params, two_layer_problem
from bpgrade.checks.ex04_backward import _two_layer_loss
from bplib import functional as F
from bplib.gradcheck import TOLERANCE, numerical_gradient
from tools import samples as S

ROOT = Path(__file__).resolve().parent.parent


@contextlib.contextmanager
def path(classic: bool, exact_watch: bool = False):
    """The checks' gradients by bplib's loop (``classic``) or stacked within the block,
    and with ``exact_watch`` the watch's exact loop only (the classic path). Their modules
    are read-only, so this uses ``object.__setattr__``, which a submission cannot."""
    old = numgrad.STACKED, _trust._EXACT_ONLY
    object.__setattr__(numgrad, "STACKED", not classic)
    object.__setattr__(_trust, "_EXACT_ONLY", exact_watch)
    try:
        yield
    finally:
        object.__setattr__(numgrad, "STACKED", old[0])
        object.__setattr__(_trust, "_EXACT_ONLY", old[1])


def _loop_net(loss, params, X, y, key, h):
    return numerical_gradient(lambda: loss(params, X, y), params[key], h)


def _loop_vjp(forward_fn, arrays, name, dout, h):
    return numerical_gradient(lambda: float(np.sum(forward_fn(*arrays.values())[0] * dout)),
                              arrays[name], h)


# --------------------------------------------------------------------------- the gradients


def test_the_gradients_of_exercise_4s_test_cells_are_the_loops_bit_for_bit():
    recorded = []

    def record(frame, event, _arg):
        if event == "call" and frame.f_code in (numgrad.vjp.__code__,
                                                numgrad.two_layer_loss_gradient.__code__):
            args = dict(frame.f_locals)
            copied = {k: (copy_params(v) if isinstance(v, dict) else
                          v.copy() if isinstance(v, np.ndarray) else v)
                      for k, v in args.items()}
            recorded.append((frame.f_code.co_name, copied))

    source, release = _notebooks("ex04_backward")
    [(nb, _)] = [(nb, e) for nb, e in S.variants(source, release, "ex04_backward")
                 if e.student == "correct"]
    sys.setprofile(record)
    try:
        outcomes = _run(nb, S.test_cells(source))
    finally:
        sys.setprofile(None)
    assert set(outcomes.values()) == {"passed"}, outcomes
    kinds = {name for name, _ in recorded}
    assert kinds == {"vjp", "two_layer_loss_gradient"} and len(recorded) > 60, kinds
    for name, a in recorded:
        if name == "vjp":
            fast = numgrad.vjp(a["forward_fn"], a["arrays"], a["name"], a["dout"], a["h"])
            loop = _loop_vjp(a["forward_fn"], a["arrays"], a["name"], a["dout"], a["h"])
        else:
            net = (a["params"], a["X"], a["y"], a["key"])
            fast = numgrad.two_layer_loss_gradient(*net, a["loss"], a["h"])
            loop = _loop_net(a["loss"], *net, a["h"])
        assert fast.dtype == loop.dtype and np.array_equal(fast, loop), (name, a)


def test_the_gradients_of_random_problems_are_the_loops_bit_for_bit():
    gen, h = np.random.default_rng(24), TOLERANCE.h
    for trial in range(60):
        N, D, M = (int(v) for v in gen.integers(1, 9, 3))
        scale = 10.0 ** gen.uniform(-3, 3)
        arrays = {"x": scale * gen.standard_normal((N, D)), "W": gen.standard_normal((D, M)),
                  "b": scale * gen.standard_normal(M)}
        dout = gen.standard_normal((N, M))
        for name in arrays:
            assert np.array_equal(numgrad.vjp(F.linear_forward, arrays, name, dout, h),
                                  _loop_vjp(F.linear_forward, arrays, name, dout, h))
        for forward in (F.relu_forward, F.sigmoid_forward, F.tanh_forward):
            x = {"x": scale * gen.standard_normal((N, D))}
            d = gen.standard_normal((N, D))
            assert np.array_equal(numgrad.vjp(forward, x, "x", d, h),
                                  _loop_vjp(forward, x, "x", d, h)), forward
        params, X, y = two_layer_problem(trial, *(int(v) for v in gen.integers(1, 8, 4)))
        for key in ("W1", "b1", "W2", "b2"):
            assert np.array_equal(
                numgrad.two_layer_loss_gradient(params, X, y, key, _two_layer_loss, h),
                _loop_net(_two_layer_loss, params, X, y, key, h)), key


def test_a_large_gradient_is_taken_in_several_stacks_and_is_still_the_loops():
    gen, h = np.random.default_rng(7), TOLERANCE.h
    x = {"x": gen.standard_normal((40, 60))}  # 2 * 2400 moves of 2400 entries: 3 stacks
    d = gen.standard_normal((40, 60))
    assert 2 * x["x"].size ** 2 > 2 * numgrad._CHUNK
    assert np.array_equal(numgrad.vjp(F.sigmoid_forward, x, "x", d, h),
                          _loop_vjp(F.sigmoid_forward, x, "x", d, h))


def test_the_classic_path_uses_bplibs_loop():
    calls = []

    def count(frame, event, _arg):
        if event == "call" and frame.f_code is numerical_gradient.__code__:
            calls.append(1)

    arrays = {"x": np.ones((2, 3))}
    d = np.ones((2, 3))
    for classic in (False, True):
        with path(classic):
            sys.setprofile(count)
            try:
                numgrad.vjp(F.tanh_forward, arrays, "x", d, TOLERANCE.h)
            finally:
                sys.setprofile(None)
        assert len(calls) == classic, classic


# --------------------------------------------------------------------------- the verdicts


def _notebooks(assignment: str):
    return tuple(nbformat.read(ROOT / folder / assignment / f"{assignment}.ipynb",
                               as_version=4) for folder in ("solutions", "exercises"))


def _run(nb, tests: dict) -> dict[str, str]:
    """Every code cell of ``nb`` in one namespace, the instructor's version of each test
    cell (hidden tests included), as the grader's kernel runs them: what each test cell
    (and each cell that raised) ended with, the exception's words included."""
    ns: dict = {"__name__": "__main__"}
    out: dict[str, str] = {}
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        meta = cell.metadata.get("nbgrader", {})
        gid = meta.get("grade_id") or f"cell-{index}"
        is_test = meta.get("grade") and not meta.get("solution")
        code = tests[gid].source if is_test else cell.source
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                exec(compile(code, gid, "exec"), ns)  # noqa: S102 - the course's samples
        except Exception as exc:  # noqa: BLE001 - a failing cell is a verdict
            out[gid] = f"{type(exc).__name__}: {exc}"
        else:
            if is_test:
                out[gid] = "passed"
    return out


def verdicts(assignment: str, classic: bool, exact_watch: bool = False
             ) -> tuple[dict, float]:
    """Every sample student's verdicts (but ``never_ending``'s, which loops), on one path,
    and the CPU seconds the path took."""
    source, release = _notebooks(assignment)
    tests = S.test_cells(source)
    out, cpu = {}, 0.0
    with path(classic, exact_watch):
        for nb, expected in S.variants(source, release, assignment):
            if expected.student != "never_ending":
                start = time.process_time()
                out[expected.student] = _run(nb, tests)
                cpu += time.process_time() - start
    return out, cpu


def test_every_sample_of_exercise_4_gets_the_same_verdict_in_every_test_cell_both_ways():
    classic, _ = verdicts("ex04_backward", classic=True)
    fast, _ = verdicts("ex04_backward", classic=False)
    assert fast.keys() == classic.keys() and len(fast) > 2
    failed = sum(v != "passed" for cells in fast.values() for v in cells.values())
    assert failed > len(fast) - 2, "the samples' mistakes should fail their test cells"
    for student, cells in classic.items():
        assert fast[student] == cells, student


if __name__ == "__main__":
    seconds = {label: verdicts("ex04_backward", *flags)[1] for label, flags in [
        ("classic path (loop, exact watch)", (True, True)), ("bplib's loop", (True, False)),
        ("stacked (the fast path)", (False, False))]}
    for label, cpu in seconds.items():
        print(f"ex04_backward, the test cells of every sample, {label}: {cpu:.2f} CPU s")
