"""The exercises and the grader's checks.

Fast tests: the checks of :mod:`bpgrade.checks` accept the reference functions and
reject planted mistakes with the intended words; the notebooks keep the exercise
contract (names, one function per solution cell, no solution text in a release).

Slow tests (``-m slow``) run the real nbgrader in a temporary copy of the course:
``generate_assignment`` (also the staleness check of ``exercises/``), then one
batched ``autograde`` of a full solution, a blank release and a partly wrong
submission per assignment.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import numpy as np
import pytest

import bplib
from bpgrade import checks as T
from bpgrade.checks import ex02_forward, ex05_updates
from bpgrade.course import tools_env, tools_on_path
from bpgrade.integrity import forbidden_names
from bplib import optim
from tools import build_exercises

ROOT = Path(__file__).resolve().parent.parent
ASSIGNMENTS = {
    "ex01_perceptron": ["perceptron_update", "train_perceptron"],
    "ex02_forward": ["linear_forward", "relu_forward", "sigmoid_forward", "two_layer_forward"],
    "ex03_error": ["mse_loss", "softmax_cross_entropy", "binary_cross_entropy"],
    "ex04_backward": ["linear_backward", "relu_backward", "sigmoid_backward", "tanh_backward",
                      "two_layer_net"],
    "ex05_updates": ["sgd_momentum_update", "adam_update"],
    "ex07_autodiff": ["__add__", "__mul__", "__pow__", "tanh", "relu", "exp", "backward"],
}
# Every assignment in solutions/ (ex06_keras has its own tests in test_ex06_keras.py).
ALL_ASSIGNMENTS = sorted(p.name for p in (ROOT / "solutions").iterdir() if p.is_dir())


def _copy_of(fn):
    """The reference function under another identity (the checks refuse bplib's own)."""
    return lambda *args: fn(*args)


def _fails_with(check, *fragments: str) -> str:
    with pytest.raises(AssertionError) as info:
        check()
    message = str(info.value)
    for fragment in fragments:
        assert re.search(fragment, message), f"{fragment!r} not in message: {message}"
    return message


# --------------------------------------------------------------------------- the reference passes

REFERENCE_CHECKS = {
    "linear_backward": lambda s: [
        T.check_linear_backward(_copy_of(bplib.linear_backward), 5, 3, 4, seed=s),
        T.check_linear_backward(_copy_of(bplib.linear_backward), 3, 3, 3, seed=s)],
    "relu_backward": lambda s: T.check_relu_backward(_copy_of(bplib.relu_backward), seed=s),
    "sigmoid_backward": lambda s: T.check_sigmoid_backward(_copy_of(bplib.sigmoid_backward),
                                                           seed=s),
    "tanh_backward": lambda s: T.check_tanh_backward(_copy_of(bplib.tanh_backward), seed=s),
    "linear_forward": lambda s: T.check_linear_forward(_copy_of(bplib.linear_forward), seed=s),
    "relu_forward": lambda s: T.check_relu_forward(_copy_of(bplib.relu_forward), seed=s),
    "sigmoid_forward": lambda s: [
        T.check_sigmoid_forward(_copy_of(bplib.sigmoid_forward), seed=s),
        T.check_sigmoid_forward(_copy_of(bplib.sigmoid_forward), seed=s, scale=1000.0)],
    "two_layer_forward": lambda s: T.check_two_layer_forward(ex02_forward.two_layer_scores, seed=s),
    "mse_loss": lambda s: [T.check_mse_loss(_copy_of(bplib.mse_loss), seed=s),
                           T.check_mse_loss(_copy_of(bplib.mse_loss), shape=(6,), seed=s)],
    "softmax_cross_entropy": lambda s: [
        T.check_softmax_cross_entropy(_copy_of(bplib.softmax_cross_entropy), seed=s),
        T.check_softmax_cross_entropy(_copy_of(bplib.softmax_cross_entropy), seed=s,
                                      scale=1000.0)],
    "binary_cross_entropy": lambda s: [
        T.check_binary_cross_entropy(_copy_of(bplib.binary_cross_entropy), seed=s),
        T.check_binary_cross_entropy(_copy_of(bplib.binary_cross_entropy), shape=(5, 1), seed=s,
                                     scale=1000.0)],
    "sgd_momentum_update": lambda s: T.check_sgd_momentum_update(
        _copy_of(optim.sgd_momentum_update), seed=s, steps=3),
    "adam_update": lambda s: T.check_adam_update(_copy_of(optim.adam_update), seed=s, steps=3),
    "perceptron_update": lambda s: T.check_perceptron_update(T.reference_perceptron_update,
                                                             seed=s),
}


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("name", sorted(REFERENCE_CHECKS))
def test_every_check_accepts_the_reference_function(name, seed):
    REFERENCE_CHECKS[name](seed)


def test_two_layer_net_check_accepts_a_correct_network():
    net = _correct_net()
    for seed in range(3):
        T.check_two_layer_net(net, N=6, D=3, H=5, C=4, seed=seed)
        T.check_two_layer_net(net, N=4, D=4, H=4, C=4, seed=seed)


def test_bplibs_own_function_is_refused():
    _fails_with(lambda: T.check_linear_backward(bplib.linear_backward),
                "write it yourself")


def test_returned_lists_are_accepted_and_returned_objects_are_not_trusted():
    T.check_relu_backward(lambda d, x: (d * (x > 0)).tolist())
    T.check_linear_backward(lambda d, c: [d @ c[1].T, c[0].T @ d, d.sum(axis=0)])

    # A returned object is copied into a plain float array before the check looks at it:
    # an ndarray subclass whose == lies cannot hide the zero of a perceptron that "converged"
    # on XOR ...
    class NeverEqual(np.ndarray):
        def __eq__(self, other):
            return np.zeros(self.shape, dtype=bool)

    def converged_on_xor(X, y, lr, max_epochs):
        mistakes = np.array([2.0] * (max_epochs - 1) + [0.0]).view(NeverEqual)
        return np.zeros(2), 0.0, mistakes

    _fails_with(lambda: T.check_train_perceptron(converged_on_xor, "xor"),
                "every one of the 20 epochs must make a mistake")

    # ... and an array the student changes after returning it (here in the __float__ of the
    # returned b, which runs when the check converts b) is judged as it was returned.
    class FixesW:
        def __init__(self, w):
            self.w = w

        def __float__(self):
            self.w[:] = [1.0, 1.0]  # with b = -1.5 that is the AND gate
            return -1.5

    def fixes_w_afterwards(X, y, lr, max_epochs):
        w = np.zeros(2)
        return w, FixesW(w), [1, 0]

    _fails_with(lambda: T.check_train_perceptron(fixes_w_afterwards, "and"),
                r"the returned w=\[0\.0, 0\.0\], b=-1\.5 classify")


# --------------------------------------------------------------------------- planted mistakes


def _lin(dx=None, dW=None, db=None):
    def f(d, cache):
        x, W, b = cache
        return (d @ W.T if dx is None else dx(d, x, W),
                x.T @ d if dW is None else dW(d, x, W),
                d.sum(axis=0) if db is None else db(d))
    return f


def test_transposed_dW_on_square_shapes_is_named():
    _fails_with(lambda: T.check_linear_backward(_lin(dW=lambda d, x, W: d.T @ x), 3, 3, 3),
                r"dW is the transpose of the numerical gradient", "square")


def test_transposed_dW_on_rectangular_shapes_names_both_shapes():
    _fails_with(lambda: T.check_linear_backward(_lin(dW=lambda d, x, W: d.T @ x), 5, 3, 4),
                r"dW has shape \(4, 3\) but W has shape \(3, 4\): it is transposed")


def test_a_sign_flip_is_named():
    _fails_with(lambda: T.check_linear_backward(_lin(dW=lambda d, x, W: -(x.T @ d))),
                "dW has the wrong sign")


def test_dividing_by_the_batch_size_twice_is_named():
    _fails_with(lambda: T.check_linear_backward(_lin(dW=lambda d, x, W: x.T @ d / 5), 5, 3, 4),
                r"factor of about 0\.2 \(= 1/N with N = 5\): did you divide by the batch size "
                "twice")


def test_db_with_keepdims_is_named():
    _fails_with(lambda: T.check_linear_backward(_lin(db=lambda d: d.sum(0, keepdims=True))),
                r"db has shape \(1, 5\) but b has shape \(5,\)", "keepdims")


def test_db_summed_over_the_wrong_axis_is_recognised_whatever_the_shapes():
    _fails_with(lambda: T.check_linear_backward(_lin(db=lambda d: d.sum(axis=1))),
                "db is wrong", r"dout\.sum\(axis=1\)", r"\[diagnosis: db-wrong-axis\]$")
    _fails_with(lambda: T.check_linear_backward(_lin(db=lambda d: d.sum(axis=1)), 3, 3, 3),
                "db is wrong", r"\[diagnosis: db-wrong-axis\]$")


def test_returning_none_or_a_short_tuple_or_text_is_named():
    _fails_with(lambda: T.check_linear_backward(lambda d, c: None), "returned None",
                "forget `return`")
    _fails_with(lambda: T.check_linear_backward(lambda d, c: (d, d)),
                r"returned a tuple of 2 values; it must return 3: \(dx, dW, db\)")
    _fails_with(lambda: T.check_relu_backward(lambda d, x: "dx"), "not an array of numbers")


def test_nan_in_a_gradient_is_named():
    _fails_with(lambda: T.check_tanh_backward(lambda d, out: np.full(out.shape, np.nan)),
                r"dx contains nan at index \(0, 0\)")


def test_an_arbitrary_error_reports_the_worst_entry():
    def off(d, out):
        dx = d * (1 - out**2)
        dx[2, 1] += 0.5
        return dx

    _fails_with(lambda: T.check_tanh_backward(off),
                r"relative error [\d.]+ at index \(2, 1\): yours -?[\d.]+, numerical -?[\d.]+")


def test_relu_backward_that_writes_into_dout_is_caught():
    def inplace(d, x):
        d[x <= 0] = 0
        return d

    _fails_with(lambda: T.check_relu_backward(inplace), "changed its input dout in place",
                r"dout \* \(x > 0\)")


def test_sigmoid_and_tanh_backward_that_treat_the_cache_as_x_are_recognised():
    _fails_with(lambda: T.check_sigmoid_backward(
        lambda d, c: d * bplib.sigmoid(c) * (1 - bplib.sigmoid(c))), "treat the cache as x")
    _fails_with(lambda: T.check_tanh_backward(lambda d, c: d * (1 - np.tanh(c) ** 2)),
                "treat the cache as x")
    _fails_with(lambda: T.check_tanh_backward(lambda d, c: d * (1 - c)),
                r"1 - out instead of 1 - out\*\*2")


def test_forward_returning_only_out_is_named():
    _fails_with(lambda: T.check_linear_forward(lambda x, W, b: x @ W + b),
                r"returned an array of shape \(4, 5\); it must return a tuple \(out, cache\)")


def test_naive_sigmoid_overflows_on_large_inputs():
    def naive(x):
        out = 1 / (1 + np.exp(-x))
        return out, out

    T.check_sigmoid_forward(naive, scale=3.0)  # fine on small inputs
    _fails_with(lambda: T.check_sigmoid_forward(naive, scale=1000.0),
                "numerically unstable", "overflow")


def test_mse_without_the_half_is_named():
    def no_half(y, t):
        return np.sum((y - t) ** 2) / len(y), 2 * (y - t) / len(y)

    def grad_no_half(y, t):
        return np.sum((y - t) ** 2) / (2 * len(y)), 2 * (y - t) / len(y)

    _fails_with(lambda: T.check_mse_loss(no_half), "leave out the 1/2")
    _fails_with(lambda: T.check_mse_loss(grad_no_half),
                "dy differs from the numerical gradient by a factor of about 2")


def test_a_loss_per_example_is_rejected():
    _fails_with(lambda: T.check_mse_loss(lambda y, t: ((y - t) ** 2 / 2, (y - t) / len(y))),
                r"the loss has shape \(5, 3\); it must be one number")


def _naive_softmax_ce(z, y):
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    n = len(y)
    d = p.copy()
    d[np.arange(n), y] -= 1
    return -np.log(p[np.arange(n), y]).mean(), d / n


def test_naive_softmax_cross_entropy_passes_small_logits_and_fails_large_ones():
    T.check_softmax_cross_entropy(_naive_softmax_ce, scale=2.0)
    _fails_with(lambda: T.check_softmax_cross_entropy(_naive_softmax_ce, scale=1000.0),
                "numerically unstable on logits as large as", "1000", "maximum")


def test_softmax_cross_entropy_summed_over_the_batch_is_named():
    def summed(z, y):
        loss, d = bplib.softmax_cross_entropy(z, y)
        return loss * len(y), d * len(y)

    _fails_with(lambda: T.check_softmax_cross_entropy(summed),
                "sum over the batch instead of taking the mean")


def test_softmax_cross_entropy_that_shifts_logits_in_place_is_caught():
    def shifts(z, y):
        z -= z.max(axis=1, keepdims=True)
        return bplib.softmax_cross_entropy(z, y)

    _fails_with(lambda: T.check_softmax_cross_entropy(shifts), "changed its input logits in place")


def test_binary_cross_entropy_with_the_gradient_upside_down_is_named():
    def upside_down(z, t):
        loss, _ = bplib.binary_cross_entropy(z, t)
        return loss, (t - bplib.sigmoid(z)) / len(z)

    _fails_with(lambda: T.check_binary_cross_entropy(upside_down), r"use t - sigmoid\(z\)")


def test_momentum_update_in_place_or_with_the_old_velocity_is_named():
    def inplace(w, dw, v, lr, mu):
        v *= mu
        v -= lr * dw
        w += v
        return w, v

    _fails_with(lambda: T.check_sgd_momentum_update(inplace), "changed its input w in place")
    _fails_with(lambda: T.check_sgd_momentum_update(
        lambda w, dw, v, lr, mu: (w + v, mu * v - lr * dw)), "with the old velocity")


def test_adam_without_bias_correction_or_with_eps_inside_the_root_is_named():
    _fails_with(lambda: T.check_adam_update(ex05_updates._adam_no_correction),
                r"step t=1", "leave out the bias correction")
    _fails_with(lambda: T.check_adam_update(ex05_updates._adam_eps_inside),
                "put eps inside the square root")


def test_two_layer_net_mistakes_are_named():
    net = _correct_net()

    def missing_b2(params, X, y):
        loss, grads = net(params, X, y)
        del grads["b2"]
        return loss, grads

    def transposed_W1(params, X, y):
        loss, grads = net(params, X, y)
        return loss, {**grads, "W1": grads["W1"].T}

    def summed(params, X, y):
        loss, grads = net(params, X, y)
        return loss * len(y), grads

    def changes_params(params, X, y):
        out = net(params, X, y)
        params["W1"] -= 0.1 * out[1]["W1"]
        return out

    _fails_with(lambda: T.check_two_layer_net(missing_b2), r"missing \['b2'\]")
    _fails_with(lambda: T.check_two_layer_net(lambda p, X, y: (net(p, X, y)[0], [])),
                "grads is a list of length 0; it must be a dict with keys W1, b1, W2, b2")
    _fails_with(lambda: T.check_two_layer_net(transposed_W1, D=4, H=4),
                r"grads\['W1'\] is the transpose")
    _fails_with(lambda: T.check_two_layer_net(summed, N=5),
                r"did you forget to divide by the batch size")
    _fails_with(lambda: T.check_two_layer_net(changes_params), r"changed params\['W1'\]")


def _correct_net():
    def net(params, X, y):
        a, c1 = bplib.linear_forward(X, params["W1"], params["b1"])
        h, cr = bplib.relu_forward(a)
        s, c2 = bplib.linear_forward(h, params["W2"], params["b2"])
        loss, ds = bplib.softmax_cross_entropy(s, y)
        dh, dW2, db2 = bplib.linear_backward(ds, c2)
        _, dW1, db1 = bplib.linear_backward(bplib.relu_backward(dh, cr), c1)
        return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}
    return net


def test_perceptron_mistakes_are_named():
    _fails_with(lambda: T.check_perceptron_update(lambda w, b, x, y, lr: (w + lr * y * x,
                                                                          b + lr * y)),
                "the new w is wrong")

    def never_stops(X, y, lr, max_epochs):
        w, b, mistakes = np.zeros(2), 0.0, []
        for _ in range(max_epochs):
            count = 0
            for xi, yi in zip(X, y, strict=True):
                y_hat = int(xi @ w + b >= 0)
                count += y_hat != yi
                w, b = w + lr * (yi - y_hat) * xi, b + lr * (yi - y_hat)
            mistakes.append(count)
        return w, b, mistakes

    _fails_with(lambda: T.check_train_perceptron(never_stops, "and"),
                "must stop right after the first epoch with no mistakes")
    T.check_train_perceptron(never_stops, "xor")


def test_check_value_reports_a_hand_computed_mismatch_in_words():
    _fails_with(lambda: T.check_value([1.0, 2.0], [1.0, 3.0], "dy", "mse_loss"),
                r"mse_loss: dy is wrong: relative error 0\.2 at index \(1,\): yours 2, expected 3")


# --------------------------------------------------------------------------- the notebooks


def _cells(path: Path, kind: str) -> list:
    nb = nbformat.read(path, as_version=4)
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get(kind)]


def _notebook(folder: str, name: str) -> Path:
    return ROOT / folder / name / f"{name}.ipynb"


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_each_solution_cell_defines_exactly_one_function_with_the_contract_name(name):
    defined = []
    for cell in _cells(_notebook("solutions", name), "solution"):
        tree = ast.parse(cell.source)
        functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
        assert len(functions) == 1 and len(tree.body) == 1, (
            f"solution cell {cell.metadata.nbgrader.grade_id} must hold one function only")
        defined += functions
    assert defined == ASSIGNMENTS[name]


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_each_function_has_its_own_test_cell_with_points_and_hidden_tests(name):
    graded = _cells(_notebook("solutions", name), "grade")
    assert [c.metadata.nbgrader.grade_id for c in graded] == [
        f"test_{f}" for f in ASSIGNMENTS[name]]
    for cell in graded:
        assert cell.metadata.nbgrader.points > 0
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_a_release_contains_no_solution_and_no_hidden_test(name):
    release = _notebook("exercises", name).read_text()
    source = nbformat.read(_notebook("solutions", name), as_version=4)
    assert "BEGIN SOLUTION" not in release and "HIDDEN TESTS" not in release
    pattern = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END", re.S)
    public = "\n".join(pattern.sub("", cell.source) for cell in source.cells)
    for cell in source.cells:
        for _, block in pattern.findall(cell.source):
            for line in map(str.strip, block.splitlines()):
                # a line may reappear only where the source shows it too (a docstring's formula)
                if len(line) > 12 and line not in public:
                    assert line not in release, f"{name} release leaks: {line}"


@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_a_release_never_imports_the_functions_the_student_writes(name):
    source = nbformat.read(_notebook("solutions", name), as_version=4)
    forbidden = set(ASSIGNMENTS[name]) | forbidden_names(
        [c for c in source.cells if c.metadata.get("nbgrader", {}).get("solution")])
    nb = nbformat.read(_notebook("exercises", name), as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bplib"):
                imported = {a.name for a in node.names}
                assert not imported & forbidden, (
                    f"{name} imports {imported & forbidden} from {node.module}")


# --------------------------------------------------------------------------- real nbgrader

STUDENTS = ("full", "blank", "partial")


def _break_sigmoid_backward(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """ex04 with sigmoid_backward wrong (cache read as x) and everything else right."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "sigmoid_backward":
            cell.source = cell.source.replace(
                "out = cache", "out = 1 / (1 + np.exp(-cache))")
    return nb


@pytest.fixture(scope="session")  # session: built once per worker even if xdist interleaves modules
def graded_course(tmp_path_factory):
    """A temporary course: releases generated, three students submitted, all autograded once."""
    course = build_exercises.make_course_copy(tmp_path_factory.mktemp("course"))
    release = build_exercises.generate_in(course)
    for name in ASSIGNMENTS:
        nb_name = f"{name}.ipynb"
        source = nbformat.read(course / "solutions" / name / nb_name, as_version=4)
        blank = nbformat.read(release / name / nb_name, as_version=4)
        subs = {"full": source, "blank": blank}
        if name == "ex04_backward":
            subs["partial"] = _break_sigmoid_backward(nbformat.from_dict(source))
        for student, nb in subs.items():
            folder = course / "submitted" / student / name
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / nb_name)
    proc = subprocess.run(
        [sys.executable, "-m", "nbgrader", "autograde", "ex0*", "--force"],
        cwd=course, env=tools_env(), capture_output=True, text=True, timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return course, _scores(build_exercises, course)


def _scores(build, course: Path) -> dict:
    """{(student, assignment): {grade_id: (score, max_score)}} from nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    scores = {}
    with tools_on_path(), Gradebook(f"sqlite:///{course / 'gradebook.db'}", "backprop") as gb:
        for name in ASSIGNMENTS:
            for sub in gb.assignment_submissions(name):
                nb = gb.find_submission_notebook(name, name, sub.student.id)
                scores[sub.student.id, name] = {g.name: (g.score, g.max_score) for g in nb.grades}
    return scores


def _errors(course: Path, student: str, name: str) -> dict[str, list[tuple[str, str]]]:
    nb = nbformat.read(course / "autograded" / student / name / f"{name}.ipynb", as_version=4)
    found = {}
    for cell in nb.cells:
        errs = [(o.ename, o.evalue) for o in cell.get("outputs", []) if o.output_type == "error"]
        if errs:
            found[cell.metadata.get("nbgrader", {}).get("grade_id", cell.get("id"))] = errs
    return found


@pytest.mark.slow
def test_committed_exercises_are_what_nbgrader_generates_from_solutions(graded_course):
    course, _ = graded_course
    assert build_exercises.differences(course / "exercises", ROOT / "exercises") == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_every_solution_scores_full_marks(graded_course, name):
    course, scores = graded_course
    grades = scores["full", name]
    assert set(grades) == {f"test_{f}" for f in ASSIGNMENTS[name]}
    assert all(score == top > 0 for score, top in grades.values()), grades
    assert _errors(course, "full", name) == {}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(ASSIGNMENTS))
def test_a_blank_release_scores_zero_and_fails_only_with_not_implemented(graded_course, name):
    course, scores = graded_course
    assert all(score == 0 for score, _ in scores["blank", name].values())
    errors = _errors(course, "blank", name)
    assert {f"test_{f}" for f in ASSIGNMENTS[name]} <= set(errors)
    assert {e for errs in errors.values() for e, _ in errs} == {"NotImplementedError"}


@pytest.mark.slow
def test_one_wrong_function_costs_only_its_own_points_and_says_why(graded_course):
    course, scores = graded_course
    grades = scores["partial", "ex04_backward"]
    assert grades["test_sigmoid_backward"][0] == 0
    assert all(score == top for gid, (score, top) in grades.items()
               if gid != "test_sigmoid_backward")
    [(ename, evalue)] = _errors(course, "partial", "ex04_backward")["test_sigmoid_backward"]
    assert ename == "Diagnosis" and "treat the cache as x" in evalue
    assert evalue.splitlines()[-1] == "[diagnosis: sigmoid-cache-as-x]"


def test_build_tool_reports_a_changed_cell(tmp_path):
    for name in ALL_ASSIGNMENTS:
        shutil.copytree(ROOT / "exercises" / name, tmp_path / name)
    assert build_exercises.differences(ROOT / "exercises", tmp_path) == []
    path = tmp_path / "ex03_error" / "ex03_error.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\nedited by hand"
    nbformat.write(nb, path)
    assert build_exercises.differences(ROOT / "exercises", tmp_path) == [
        "ex03_error/ex03_error.ipynb: cell 0 (install) differs in its source"]


# ------------------------------------------------------------------------ inputs changed in place
# Every guard of bpgrade.checks that keeps a copy of an input and compares it after the
# student's call: a function that is right except that it then changes one of its inputs
# in place fails, and the message names that input.


def _fresh(obj):
    """A copy of ``obj`` with every array in its dicts, tuples and lists copied."""
    if isinstance(obj, dict):
        return {k: _fresh(v) for k, v in obj.items()}
    if isinstance(obj, (tuple, list)):
        return type(obj)(_fresh(o) for o in obj)
    return obj.copy() if isinstance(obj, np.ndarray) else obj


def _then_changes(fn, pick):
    """``fn`` on copies of the arguments (so: right); then, if ``pick`` is given, 1 is added
    in place to the input array ``pick(args)``."""
    def student(*args):
        result = _fresh(fn(*_fresh(args)))
        if pick is not None:
            changed = pick(args)
            changed[...] += 1
        return result
    return student


def _train_perceptron(X, y, lr, max_epochs):
    w, b, mistakes = np.zeros(X.shape[1]), 0.0, []
    for _ in range(max_epochs):
        count = 0
        for xi, yi in zip(X, y, strict=True):
            w, b_new = T.reference_perceptron_update(w, b, xi, yi, lr)
            count += b_new != b
            b = b_new
        mistakes.append(count)
        if count == 0:
            break
    return w, b, mistakes


def _changed(name):
    return f"changed its input {re.escape(name)} in place"


def _params(key):
    return re.escape(f"changed params[{key!r}]")


_CACHE = "changed the cache in place"
_BACKWARD = [("linear_backward", T.check_linear_backward, bplib.linear_backward),
             ("relu_backward", T.check_relu_backward, bplib.relu_backward),
             ("sigmoid_backward", T.check_sigmoid_backward, bplib.sigmoid_backward),
             ("tanh_backward", T.check_tanh_backward, bplib.tanh_backward)]
_TWO_LAYER_KEYS = ("W1", "b1", "W2", "b2")

# (check, the right function, which argument it changes, what the message must say)
CHANGES_AN_INPUT = [
    *[pytest.param(check, fn, lambda a: a[0], _changed("dout"), id=f"{name}-dout")
      for name, check, fn in _BACKWARD],
    *[pytest.param(T.check_linear_backward, bplib.linear_backward, lambda a, i=i: a[1][i],
                   _CACHE, id=f"linear_backward-cache.{n}") for i, n in enumerate("xWb")],
    *[pytest.param(check, fn, lambda a: a[1], _CACHE, id=f"{name}-cache")
      for name, check, fn in _BACKWARD[1:]],
    *[pytest.param(T.check_linear_forward, bplib.linear_forward, lambda a, i=i: a[i],
                   _changed(n), id=f"linear_forward-{n}") for i, n in enumerate("xWb")],
    pytest.param(T.check_relu_forward, bplib.relu_forward, lambda a: a[0], _changed("x"),
                 id="relu_forward-x"),
    pytest.param(T.check_sigmoid_forward, bplib.sigmoid_forward, lambda a: a[0], _changed("x"),
                 id="sigmoid_forward-x"),
    *[pytest.param(T.check_two_layer_forward, ex02_forward.two_layer_scores, lambda a, k=k: a[0][k],
                   _params(k), id=f"two_layer_forward-params.{k}") for k in _TWO_LAYER_KEYS],
    pytest.param(T.check_two_layer_forward, ex02_forward.two_layer_scores, lambda a: a[1],
                 _changed("X"), id="two_layer_forward-X"),
    *[pytest.param(check, fn, lambda a, i=i: a[i], _changed(n), id=f"{name}-{n}")
      for name, check, fn, names in [
          ("mse_loss", T.check_mse_loss, bplib.mse_loss, ("y", "the targets")),
          ("softmax_cross_entropy", T.check_softmax_cross_entropy, bplib.softmax_cross_entropy,
           ("logits", "the targets")),
          ("binary_cross_entropy", T.check_binary_cross_entropy, bplib.binary_cross_entropy,
           ("logits", "the targets"))]
      for i, n in enumerate(names)],
    *[pytest.param(T.check_two_layer_net, _correct_net(), lambda a, k=k: a[0][k], _params(k),
                   id=f"two_layer_net-params.{k}") for k in _TWO_LAYER_KEYS],
    *[pytest.param(T.check_two_layer_net, _correct_net(), lambda a, i=i: a[i], _changed(n),
                   id=f"two_layer_net-{n}") for i, n in [(1, "X"), (2, "y")]],
    *[pytest.param(T.check_sgd_momentum_update, optim.sgd_momentum_update,
                   lambda a, i=i: a[i], _changed(n), id=f"sgd_momentum_update-{n}")
      for i, n in enumerate(("w", "dw", "v"))],
    *[pytest.param(T.check_adam_update, optim.adam_update, lambda a, i=i: a[i], _changed(n),
                   id=f"adam_update-{n}") for i, n in enumerate(("w", "dw", "m", "v"))],
    *[pytest.param(T.check_perceptron_update, T.reference_perceptron_update,
                   lambda a, i=i: a[i], _changed(n), id=f"perceptron_update-{n}")
      for i, n in [(0, "w"), (2, "x")]],
    *[pytest.param(T.check_train_perceptron, _train_perceptron, lambda a, i=i: a[i],
                   _changed(n), id=f"train_perceptron-{n}") for i, n in [(0, "X"), (1, "y")]],
]


@pytest.mark.parametrize("check, fn, pick, words", CHANGES_AN_INPUT)
def test_a_function_right_but_for_changing_an_input_in_place_fails_naming_that_input(
        check, fn, pick, words):
    check(_then_changes(fn, None))  # the same function without the change passes
    _fails_with(lambda: check(_then_changes(fn, pick)), words)
