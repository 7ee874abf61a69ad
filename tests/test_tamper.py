"""Checks that nothing a submission can reach decides its grade (issue 20, section 4).

A submission runs in the interpreter that runs the checks. Whatever route it takes to
change a module (an assignment, ``setattr``, exercise 7's own ``Value.method`` helper,
``unittest.mock``, a string run by ``timeit`` that the integrity check cannot read):

- exercise 7's checks compute with nothing it can replace: wrong backward rules fail and
  right ones pass with numpy's comparisons, bplib's ``grad_close`` and the builtins lying;
- the checks' own modules refuse every attribute write, so no check can be replaced;
- the checks that compute with numpy (exercises 1 to 5) see a change to numpy, bplib or the
  builtins, made before or during the student's call, and refuse to score
  (``IntegrityError``); a change that undoes itself cannot lie to a comparison either;
- the integrity check refuses the routes that name no forbidden identifier today.

Fast tests call the checks in this process; the slow ones grade real submissions of
exercise 7 with real nbgrader (the sandboxed kernel imports the checks before the first
cell). Each fails on the checks as they were before this section of issue 20.
"""

from __future__ import annotations

import builtins
import importlib
import pkgutil
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import nbformat
import numpy as np
import pytest
from conftest import value_class

import bpgrade.checks
import bplib.gradcheck
from bpgrade import integrity
from bpgrade.checks import ex07_autodiff
from bpgrade.course import make_course, run_nbgrader
from bpgrade.integrity import IntegrityError
from tools import samples as S

ROOT = Path(__file__).resolve().parent.parent
EX = "ex07_autodiff"
CHECKS = {"__add__": bpgrade.checks.check_value_add, "__mul__": bpgrade.checks.check_value_mul,
          "__pow__": bpgrade.checks.check_value_pow, "tanh": bpgrade.checks.check_value_tanh,
          "relu": bpgrade.checks.check_value_relu, "exp": bpgrade.checks.check_value_exp}
WRONG = {"__add__": "__add__", "__mul__": "__mul__", "__pow__": "__pow__", "tanh": "tanh",
         "relu": "relu", "exp": "exp"}  # the sample mistake of each rule


def _notebooks(assignment: str = EX):
    return (nbformat.read(ROOT / "solutions" / assignment / f"{assignment}.ipynb", 4),
            nbformat.read(ROOT / "exercises" / assignment / f"{assignment}.ipynb", 4))


def _classes() -> dict[str, type]:
    """The exercise's solution ("correct") and each wrong rule's sample, as Value classes."""
    source, release = _notebooks()
    out = {"correct": value_class(source)}
    for nb, e in S.variants(source, release, EX):
        for method, stem in WRONG.items():
            if e.student == "wrong_" + stem.replace("--", "_").replace("-", "_"):
                out[method] = value_class(nb)
    return out


@contextmanager
def _lying():
    """numpy's comparisons, bplib's grad_close and some builtins say "equal" or "0" (put
    back before anything, pytest included, handles what the block raised)."""
    yes = lambda *args, **kwargs: True  # noqa: E731
    isclose = lambda a, b, *args, **kw: np.ones(np.shape(a), bool)  # noqa: E731
    lies = [(np, "isclose", isclose), (np, "allclose", yes), (np, "array_equal", yes),
            (np, "all", yes), (np, "any", lambda *args, **kwargs: False),
            (bplib.gradcheck, "grad_close", yes), (builtins, "abs", lambda x: 0.0),
            (builtins, "round", lambda *args, **kwargs: 0.0)]
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in lies]
    try:
        for owner, name, lie in lies:
            setattr(owner, name, lie)
        yield
    finally:
        for owner, name, value in saved:
            setattr(owner, name, value)


# --------------------------------------------------------------------------- exercise 7


@pytest.mark.parametrize("method", sorted(CHECKS))
def test_wrong_rules_fail_and_right_ones_pass_with_numpy_and_the_builtins_lying(method):
    classes, check = _classes(), CHECKS[method]
    with _lying():
        check(classes["correct"], seed=1, graphs=2)
    with pytest.raises(bpgrade.checks.Diagnosis), _lying():
        check(classes[method], seed=1, graphs=2)


def test_exercise_7s_checks_compute_without_numpy():
    source = Path(ex07_autodiff.__file__).read_text()
    assert "numpy" not in source.split('"""', 2)[2] and "_topo" in source
    assert "from _random import Random" in source  # a C type: its methods cannot be replaced


def test_check_value_of_one_number_computes_without_numpy():
    with _lying():
        bpgrade.checks.check_value(5.0, 5.0, "a.grad", "__add__")
    with pytest.raises(bpgrade.checks.Diagnosis, match="wrong-values"), _lying():
        bpgrade.checks.check_value(1.0, 5.0, "a.grad", "__add__")


# --------------------------------------------------------------------------- the checks' modules


def _modules() -> list:
    return [bpgrade.checks] + [importlib.import_module(f"bpgrade.checks.{m.name}")
                               for m in pkgutil.iter_modules(bpgrade.checks.__path__)]


def _routes():
    """Ways to set a module attribute that name no forbidden identifier, or only one."""

    def helper(module, name, value):  # exercise 7's Value.method, unwrapped
        class Value:
            @classmethod
            def method(cls, function):
                setattr(cls, function.__name__, function)
                return function

        value.__name__ = name
        Value.method.__func__(module, value)

    def patch(module, name, value):
        mock.patch.object(module, name, value).start()

    def patch_by_name(module, name, value):
        mock.patch(f"{module.__name__}.{name}", value).start()

    return {"setattr": setattr, "helper": helper, "mock.patch.object": patch,
            "mock.patch": patch_by_name, "builtins.setattr": builtins.setattr}


@pytest.mark.parametrize("route", sorted(_routes()))
def test_no_route_replaces_a_function_of_the_checks(route):
    set_it = _routes()[route]
    try:
        for module in _modules():
            for name in [n for n, v in vars(module).items() if callable(v)][:5]:
                before = vars(module)[name]

                def fake(*args, **kwargs):
                    return None

                with pytest.raises(AttributeError, match="read-only"):
                    set_it(module, name, fake)
                assert vars(module)[name] is before
            with pytest.raises(AttributeError, match="read-only"):
                delattr(module, "__all__" if hasattr(module, "__all__") else "__doc__")
    finally:
        mock.patch.stopall()


# --------------------------------------------------------------------------- exercises 1 to 5


def _linear_backward(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def _db_mean(dout, cache):
    x, W, b = cache
    return dout @ W.T, x.T @ dout, dout.mean(axis=0)


def test_a_check_does_not_score_after_numpy_was_changed(monkeypatch):
    bpgrade.checks.check_linear_backward(_linear_backward)
    monkeypatch.setattr(np, "all", lambda *args, **kwargs: True)
    with pytest.raises(IntegrityError, match=r"numpy\.all"):
        bpgrade.checks.check_linear_backward(_linear_backward)
    monkeypatch.undo()
    bpgrade.checks.check_linear_backward(_linear_backward)


@pytest.mark.parametrize("owner", ["module", "class"])
def test_reading_annotations_is_not_a_change(owner):
    """Python creates the ``__annotations__`` of a module or a class the first time they
    are read (``inspect.get_annotations``, ``cls.__annotations__``, Sphinx's autodoc in
    another test of the same process): an honest notebook that reads them is scored."""
    import inspect

    import bplib.functional
    import bplib.optim

    if owner == "module":
        bplib.functional.__dict__.pop("__annotations__", None)  # as in a fresh kernel
        inspect.get_annotations(bplib.functional)
        assert "__annotations__" in bplib.functional.__dict__
    else:
        if "__annotations__" in bplib.optim.Optimizer.__dict__:
            del bplib.optim.Optimizer.__annotations__  # as in a fresh kernel
        bplib.optim.Optimizer.__annotations__  # noqa: B018
        assert "__annotations__" in bplib.optim.Optimizer.__dict__
    bpgrade.checks.check_linear_backward(_linear_backward)
    # and the watch is back on its fast comparison, which still sees a change to that class
    from bpgrade.checks._trust import WATCH

    assert WATCH.changed() is None and WATCH._untouched()
    saved = bplib.optim.Optimizer.step
    bplib.optim.Optimizer.step = lambda self: None
    try:
        assert not WATCH._untouched()
        assert WATCH.changed() == "bplib.optim.Optimizer (its code, defaults or attributes)"
    finally:
        bplib.optim.Optimizer.step = saved
    assert WATCH._untouched()


def test_a_change_made_by_the_students_call_is_caught_before_anything_is_compared():
    original = np.all

    def patches_numpy(dout, cache):
        np.all = lambda *args, **kwargs: True
        return _db_mean(dout, cache)

    try:
        with pytest.raises(IntegrityError, match=r"numpy\.all"):
            bpgrade.checks.check_linear_backward(patches_numpy)
    finally:
        np.all = original


def test_a_change_that_undoes_itself_cannot_lie_to_a_comparison():
    """The returned object patches numpy when the check reads it, and the patch restores
    numpy the first time it is called: the check reads everything the student returned,
    then verifies numpy, before it compares anything, so it sees the patch."""
    original_all, original_max = np.all, np.max

    class Sneaky:
        def __init__(self, value):
            self.value = value

        def __array__(self, dtype=None, copy=None):
            def lie(*args, **kwargs):
                np.all, np.max = original_all, original_max
                return True
            np.all = lie
            return np.asarray(self.value, dtype=dtype)

    def sneaky(dout, cache):
        dx, dW, db = _db_mean(dout, cache)
        return dx, dW, Sneaky(db)

    try:
        with pytest.raises(IntegrityError, match=r"numpy\.all"):
            bpgrade.checks.check_linear_backward(sneaky)
    finally:
        np.all, np.max = original_all, original_max


def _tamperings():
    """(what, change, undo): each kind of change the watch of the checks must see."""
    from bplib import functional, optim

    fn, impl, heap = functional.relu_forward, np.linalg.norm._implementation, optim.SGD
    saved = {}

    def setter(obj, attribute, value):
        def change():
            saved[(id(obj), attribute)] = getattr(obj, attribute)
            setattr(obj, attribute, value)

        def undo():
            setattr(obj, attribute, saved[(id(obj), attribute)])
        return change, undo

    def added():
        np.not_a_numpy_name = 1

    def unadded():
        del np.not_a_numpy_name

    def heap_added():
        heap.not_an_attribute = 1

    def heap_unadded():
        del heap.not_an_attribute

    return [
        ("a rebound name", *setter(np, "all", lambda *a, **k: True)),
        ("a builtin", *setter(builtins, "abs", lambda x: x)),
        ("an added name", added, unadded),
        ("a function's code", *setter(fn, "__code__", fn.__code__.replace(co_name="x"))),
        ("a function's defaults", *setter(fn, "__defaults__", (1,))),
        ("a function's keyword defaults", *setter(fn, "__kwdefaults__", {"x": 1})),
        ("a dispatcher's implementation's code",
         *setter(impl, "__code__", impl.__code__.replace(co_name="x"))),
        ("a class's attribute", *setter(heap, "__init__", lambda self, *a: None)),
        ("an attribute added to a class", heap_added, heap_unadded),
    ]


@pytest.mark.parametrize("index", range(9))
def test_the_watch_of_the_checks_sees_each_change_and_names_it_as_the_exact_loop(index):
    """:meth:`bpgrade.checks._trust.Watch.changed` asks a fast identity comparison first
    and the exact name-by-name loop only when that sees a change: for each kind of change
    the answer and the message are the exact loop's, and nothing is seen once undone."""
    from bpgrade.checks._trust import WATCH

    what, change, undo = _tamperings()[index]
    assert WATCH.changed() is None
    change()
    try:
        exact = WATCH._first_change()
        assert exact is not None, what
        assert not WATCH._untouched(), what
        assert WATCH.changed() == exact, what
    finally:
        undo()
    assert WATCH._untouched() and WATCH.changed() is None


def test_a_replaced_entry_of_params_is_named_without_reading_it():
    read = []

    class Entry:
        def __array__(self, dtype=None, copy=None):
            read.append(1)
            return np.zeros((3, 6))

    def net(params, X, y):
        from bpgrade.checks.ex04_backward import _two_layer_grads, _two_layer_loss

        loss, grads = _two_layer_loss(params, X, y), _two_layer_grads(params, X, y)
        params["W1"] = Entry()
        return loss, grads

    with pytest.raises(bpgrade.checks.Diagnosis, match="params-modified"):
        bpgrade.checks.check_two_layer_net(net, D=3)
    assert not read


# --------------------------------------------------------------------------- the integrity check

ROUTES = {  # code that sets numpy.isclose, naming no forbidden identifier before this change
    "the exercise's helper": "import numpy as np\n"
                             "def isclose(*a, **k):\n    return True\n"
                             "Value.method.__func__(np, isclose)",
    "setattr under another name": "import numpy as np\ns = setattr\n"
                                  "s(np, 'isclose', lambda *a, **k: True)",
    "setattr of the builtins module": "import builtins\nimport numpy as np\n"
                                      "builtins.setattr(np, 'isclose', lambda *a, **k: True)",
    "a builtin's __self__": "import numpy as np\n"
                            "print.__self__.setattr(np, 'isclose', lambda *a, **k: True)",
    "functools.partial": "import functools\nimport numpy as np\n"
                         "functools.partial(setattr, np)('isclose', lambda *a, **k: True)",
    "getattr of __dict__": "import numpy as np\n"
                           "getattr(np, '__dict__')['isclose'] = lambda *a, **k: True",
    "unittest.mock": "from unittest import mock\nimport numpy as np\n"
                     "mock.patch.object(np, 'isclose', lambda *a, **k: True).start()",
    "mock by name": "import unittest.mock\n"
                    "unittest.mock.patch('numpy.isclose', lambda *a, **k: True).start()",
}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_the_integrity_check_refuses_each_route_that_names_nothing_forbidden(route):
    assert integrity.find_violations(ROUTES[route], set()), route


@pytest.mark.parametrize("code", [
    "import numpy as np\ndef f(x):\n    return np.maximum(x, 0)",
    "import functools\ng = functools.partial(max, 0)",
    "import re\npattern = re.compile('a+')",
    "d = {'a': 1}\nv = getattr(d, 'get')('a')",
    "name = 'modules of the course'",
])
def test_ordinary_code_is_still_run(code):
    assert integrity.find_violations(code, set()) == []


# --------------------------------------------------------------------------- real grading

EX4 = "ex04_backward"
WRONG_ADD = "self.grad = out.grad\nother.grad = out.grad"
WRONG_MUL = "self.grad += self.data * out.grad\nother.grad += other.data * out.grad"
HELPER = ("import numpy as np\n\n\ndef isclose(a, b, *args, **kwargs):\n"
          "    return np.ones(np.shape(a), bool)\n\n\n"
          "def allclose(*args, **kwargs):\n    return True\n\n\n"
          "def all(*args, **kwargs):\n    return True\n\n\n"
          "for f in (isclose, allclose, all):\n    Value.method.__func__(np, f)\n\n\n")
LIES = ("import numpy as np\nimport bplib.gradcheck\n\n"
        "np.isclose = lambda a, b, *args, **kwargs: np.ones(np.shape(a), bool)\n"
        "np.allclose = np.array_equal = np.all = lambda *args, **kwargs: True\n"
        "bplib.gradcheck.grad_close = lambda *args, **kwargs: True\n\n\n")
REPLACE_CHECKS = ("import bpgrade.checks as c\nimport bpgrade.checks.ex07_autodiff as e\n\n"
                  "e._check_value_op = lambda *args, **kwargs: None\n"
                  "c.check_value = c.check_value_mul = lambda *args, **kwargs: None\n\n\n")
ALL_EX4 = {f"test_{f}" for f in ("linear_backward", "relu_backward", "sigmoid_backward",
                                  "tanh_backward", "two_layer_net")}
# student: (assignment, integrity check on, {solution grade_id: (code above, stub body)},
#           the test cells it must lose)
SUBMISSIONS = {
    # the route: refused by the integrity check
    "helper": (EX, True, {"__add__": (HELPER, WRONG_ADD)}, {"test___add__"}),
    # the integrity check switched off, as if it missed the route:
    "numpy_lies": (EX, False, {"__add__": (LIES, WRONG_ADD), "__mul__": ("", WRONG_MUL)},
                   {"test___add__", "test___mul__"}),
    "checks_replaced": (EX, False, {"__mul__": (REPLACE_CHECKS, WRONG_MUL)}, {"test___mul__"}),
    "builtins_lie": (EX, False, {"tanh": ("import builtins\n\nbuiltins.abs = lambda x: 0.0\n\n\n",
                                          "self.grad += (1 - self.data ** 2) * out.grad")},
                     {"test_tanh"}),
    "numpy_changed": (EX4, False, {"linear_backward": (
        "import numpy as np\n\nnp.all = lambda *args, **kwargs: True\n\n\n",
        "x, W, b = cache\nreturn dout @ W.T, x.T @ dout, dout.mean(axis=0)")}, ALL_EX4),
}


def _grade_course(root: Path, integrity_on: bool, zygote: bool = False) -> dict:
    """Release ex07 and ex04 in a course, submit the solution (first and last), a cell
    added above the install cell, and the tampering students; autograde; the scores."""
    make_course(root, [EX, EX4], ROOT,
                extra_config="" if integrity_on else "c.CheckIntegrity.enabled = False")
    scores = {}
    for assignment in (EX, EX4):
        run_nbgrader(root, "generate_assignment", assignment, "--force")
        source = nbformat.read(root / "solutions" / assignment / f"{assignment}.ipynb", 4)
        release = nbformat.read(root / "exercises" / assignment / f"{assignment}.ipynb", 4)
        correct = S.correct_notebook(source, release)
        first = nbformat.from_dict(correct)
        first.cells.insert(0, nbformat.v4.new_code_cell(
            "import sys\nprint('checks loaded:', 'bpgrade.checks' in sys.modules)"))
        students = {"aaa_correct": correct, "zzz_correct": correct, "first_cell": first}
        for name, (where, on, edits, _) in SUBMISSIONS.items():
            if where != assignment or on != integrity_on:
                continue
            nb = nbformat.from_dict(correct)
            for cell in nb.cells:
                gid = cell.metadata.get("nbgrader", {}).get("grade_id")
                if gid in edits:
                    above, body = edits[gid]
                    stubbed = S.solution_cells(release)[gid].source
                    cell.source = above + S.fill_stubs(stubbed, [body])
            students[name] = nb
        for name, nb in students.items():
            folder = root / "submitted" / name / assignment
            folder.mkdir(parents=True)
            nbformat.write(nb, folder / f"{assignment}.ipynb")
        run_nbgrader(root, "autograde", assignment, "--force",
                     *(["--SandboxedExecute.zygote=True"] if zygote else []))
        from nbgrader.api import Gradebook

        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            for name in students:
                nb = gb.find_submission_notebook(assignment, assignment, name)
                scores[assignment, name] = {g.name: (g.score, g.max_score) for g in nb.grades
                                            if g.cell.cell_type == "code"}
    return scores


@pytest.fixture(scope="session", params=["cold", "zygote"])
def tampering(tmp_path_factory, request):
    """Two courses: the course's configuration, and the same with the integrity check off;
    every kernel started cold (plain ``nbgrader autograde``), or forked from the zygote
    (the class grader's fast path: the checks' snapshot was taken in the zygote)."""
    base = tmp_path_factory.mktemp(f"tamper-{request.param}")
    return {on: (base / f"integrity_{on}",
                 _grade_course(base / f"integrity_{on}", on, request.param == "zygote"))
            for on in (True, False)}


@pytest.mark.slow
@pytest.mark.parametrize("student", sorted(SUBMISSIONS))
def test_a_tampering_submission_scores_0_for_its_wrong_rules_and_keeps_its_right_ones(
        tampering, student):
    assignment, on, _, lose = SUBMISSIONS[student]
    scores = tampering[on][1][assignment, student]
    lost = {g for g, (score, top) in scores.items() if score < top}
    assert lost == lose, scores


@pytest.mark.slow
def test_the_honest_students_around_them_keep_full_marks(tampering):
    for _, scores in tampering.values():
        for (assignment, name), cells in scores.items():
            if name in ("aaa_correct", "zzz_correct", "first_cell"):
                assert all(score == top for score, top in cells.values()), (assignment, name)


@pytest.mark.slow
def test_the_grading_kernel_imports_the_checks_before_the_first_cell(tampering):
    """So that what the checks keep (the builtins, the numpy they watch) is taken before
    any student code, even a cell added above the install cell (read where the integrity
    check, which refuses ``sys.modules``, is off)."""
    root, _ = tampering[False]
    for assignment in (EX, EX4):
        nb = nbformat.read(root / "autograded" / "first_cell" / assignment /
                           f"{assignment}.ipynb", 4)
        text = "".join(o.get("text", "") for o in nb.cells[0].outputs)
        assert text.strip() == "checks loaded: True", nb.cells[0].outputs


@pytest.mark.slow
def test_a_check_after_numpy_was_changed_says_so_in_the_notebook(tampering):
    root, _ = tampering[False]
    nb = nbformat.read(root / "autograded" / "numpy_changed" / EX4 / f"{EX4}.ipynb", 4)
    cell = next(c for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade_id") == "test_linear_backward")
    [error] = [o for o in cell.outputs if o.output_type == "error"]
    assert error.ename == "IntegrityError" and "numpy.all" in error.evalue, error
