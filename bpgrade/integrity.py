"""The integrity check: student code that the autograder refuses to run.

Before a notebook runs, :class:`bpgrade.nbgrader_plugins.CheckIntegrity` parses each
student cell (its AST, after IPython's transforms) and refuses a cell that

* rebinds an attribute of a module (``np.allclose = ...``, also through an alias),
* uses dynamic code or the interpreter's internals (``exec``, ``setattr``,
  ``__dict__``, ``sys.modules`` ...), also by another name or through another object
  (``s = setattr``, ``builtins.setattr``, ``getattr(np, "__dict__")``, a bound method's
  ``__func__``: exercise 7's own ``Value.method`` helper unwrapped), or imports the grader
  (``bpgrade``) or a module that sets attributes or runs code by name or from a string
  (``unittest.mock``, ``builtins``, ``pickle``, ``timeit``, ``code``, ``runpy`` ...),
* uses bplib's own implementation of a function the exercise asks for.

What an exercise asks for comes from the exercise itself: the top-level ``def``
names of its solution cells, and the bplib names listed in a solution cell's
metadata ``bpgrade.reference`` (other bplib names that implement the same
thing, such as ``Linear`` for ``linear_backward``). Nothing here lists exercises.

A refused cell is kept as comments, and each function it defines raises
:class:`IntegrityError` with the reason, so the tests of that function fail with
that message. Standard library only.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from . import language
from .language import N_, text
from .memo import by_source

METADATA_KEY = "bpgrade"
"""Cell metadata of the course: ``{"bpgrade": {"reference": ["Linear", ...]}}``."""


class IntegrityError(Exception):
    """Raised in place of student code that the autograder refuses to run."""


FORBIDDEN_CALLS = {
    "setattr": N_("setattr can change a module behind the checker's back"),
    "delattr": N_("delattr can change a module behind the checker's back"),
    "exec": N_("exec runs code that cannot be checked"),
    "eval": N_("eval runs code that cannot be checked"),
    "compile": N_("compile builds code that cannot be checked"),
    "__import__": N_("__import__ hides an import from the checker"),
    "globals": N_("globals() can rebind names behind the checker's back"),
    "vars": N_("vars() exposes a module's namespace"),
    "get_ipython": N_("get_ipython() can change how cells and their errors are handled"),
    "breakpoint": N_("breakpoint() would stop the grader"),
}
FORBIDDEN_ATTRIBUTES = {
    "__dict__", "__code__", "__globals__", "__builtins__", "__closure__", "__defaults__",
    "__kwdefaults__", "__subclasses__", "__setattr__", "__delattr__", "__getattribute__",
    "__import__", "__loader__", "__spec__", "f_globals", "f_locals", "f_back", "f_builtins",
    "modules", "settrace", "setprofile", "_getframe", "excepthook", "displayhook",
    # a bound method's parts: exercise 7's Value.method unwrapped sets attributes of any
    # object (Value.method.__func__(np, f)); print.__self__ is the builtins module
    "__func__", "__self__", "__get__", "__set__", "__delete__",
}
#: The calls of FORBIDDEN_CALLS that are refused as names too (``s = setattr``,
#: ``builtins.setattr``, ``partial(setattr, np)``): the others have ordinary namesakes
#: (``re.compile``, ``model.compile``).
FORBIDDEN_NAMES = {"setattr", "delattr", "exec", "eval", "__import__", "globals", "vars",
                   "get_ipython", "breakpoint"}
FORBIDDEN_MODULES = {"ctypes", "gc", "importlib", "IPython", "bpgrade",
                     # set attributes or items by name (mock.patch("numpy.isclose", ...)),
                     # or hold setattr itself
                     "builtins", "unittest", "pytest", "_pytest",
                     # run code that the check cannot read: from a string, or unpickled
                     "timeit", "code", "codeop", "runpy", "cProfile", "profile", "pdb", "bdb",
                     "trace", "doctest", "pickle", "_pickle", "copyreg", "shelve", "marshal"}


@dataclass(frozen=True)
class Violation:
    """One reason a cell is not run: its line and what it does."""

    line: int
    message: str  # a bpgrade.language.Text: it can be said in the student's language

    def text(self) -> language.Text:
        return text("line {line}: {message}", line=self.line, message=self.message)

    def __str__(self) -> str:
        return str(self.text())


def parse_cell(source: str) -> ast.Module | None:
    """The cell's AST, after IPython's transforms (``!cmd``, ``%magic``); ``None`` if
    it is not valid Python (it will fail with a SyntaxError when run)."""
    try:
        return ast.parse(source)
    except SyntaxError:
        pass
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return ast.parse(TransformerManager().transform_cell(source))
    except (ImportError, SyntaxError, ValueError):
        return None


def imported_names(tree: ast.AST) -> dict[str, str]:
    """Names bound by imports: ``{"np": "numpy", "F": "bplib.functional", "lb":
    "bplib.functional.linear_backward"}`` (``import a.b`` binds ``a``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                names[a.asname or a.name.split(".")[0]] = a.name if a.asname else \
                    a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    names[a.asname or a.name] = f"{node.module}.{a.name}"
    return names


def defined_functions(tree: ast.AST) -> set[str]:
    """Top-level ``def`` names of a cell."""
    return {n.name for n in getattr(tree, "body", [])
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _root(node: ast.AST) -> ast.AST:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    """``np.linalg.norm`` -> ``"numpy.linalg.norm"`` when ``np`` is an alias."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id in aliases:
        return ".".join([aliases[node.id], *reversed(parts)])
    return None


def _module_aliases(tree: ast.AST, imports: dict[str, str]) -> dict[str, str]:
    """Imports plus plain names assigned from them (``n = np``, ``t = bpgrade.checks``)."""
    aliases = dict(imports)
    changed = True
    while changed:
        changed = False
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, (ast.Name, ast.Attribute)):
                target = _dotted(node.value, aliases)
                for t in node.targets:
                    if target and isinstance(t, ast.Name) and t.id not in aliases:
                        aliases[t.id] = target
                        changed = True
    return aliases


def _targets(node: ast.AST) -> list[ast.AST]:
    if isinstance(node, ast.Assign):
        return list(node.targets)
    if isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        return [node.target]
    if isinstance(node, ast.Delete):
        return list(node.targets)
    if isinstance(node, (ast.For, ast.AsyncFor)):
        return [node.target]
    if isinstance(node, (ast.With, ast.AsyncWith)):
        return [i.optional_vars for i in node.items if i.optional_vars is not None]
    return []


def _flatten(targets: list[ast.AST]) -> list[ast.AST]:
    out = []
    for t in targets:
        out += _flatten(list(t.elts)) if isinstance(t, (ast.Tuple, ast.List)) else [t]
    return out


def find_violations(source: str, forbidden: set[str],
                    notebook_imports: dict[str, str] | None = None) -> list[Violation]:
    """What in a student's cell the autograder refuses to run.

    Parameters
    ----------
    source : str
        The cell's code.
    forbidden : set of str
        bplib names the student must write, not use (:func:`forbidden_names`).
    notebook_imports : dict, optional
        Names other cells import (:func:`imported_names` of the whole notebook).

    Returns
    -------
    list of Violation
        Empty when the cell may run (also for a syntax error: running it reports that).
    """
    tree = parse_cell(source)
    if tree is None:
        return []
    aliases = _module_aliases(tree, {**(notebook_imports or {}), **imported_names(tree)})
    found = _rebinding(tree, aliases) + _dynamic(tree) + _references(tree, aliases, forbidden)
    return sorted(set(found), key=lambda v: v.line)


def _rebinding(tree: ast.AST, aliases: dict[str, str]) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        for t in _flatten(_targets(node)):
            if not isinstance(t, (ast.Attribute, ast.Subscript)):
                continue
            root = _root(t)
            if isinstance(root, ast.Name) and (root.id in aliases or root.id == "__builtins__"):
                what = ast.unparse(t)
                module = aliases.get(root.id, "builtins")
                found.append(Violation(node.lineno, text(
                    "it rebinds {what}, an attribute of the module {module}; a solution may "
                    "not change modules (they are shared with the checker)", what=what,
                    module=module.split(".")[0])))
    return found


def _dynamic(tree: ast.AST) -> list[Violation]:
    found = []
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in FORBIDDEN_CALLS:
            found.append(Violation(node.lineno, text(
                "it calls {name}(): {reason}", name=node.func.id,
                reason=FORBIDDEN_CALLS[node.func.id])))
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(Violation(node.lineno, text(
                "it uses .{name}, which reaches into the interpreter's or a module's internals",
                name=node.attr)))
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_NAMES:
            found.append(Violation(node.lineno, text(
                "it uses .{name}: {reason}", name=node.attr, reason=FORBIDDEN_CALLS[node.attr])))
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES and \
                isinstance(node.ctx, ast.Load) and id(node) not in called:
            found.append(Violation(node.lineno, text(
                "it takes {name} as a value: {reason}", name=node.id,
                reason=FORBIDDEN_CALLS[node.id])))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in ("getattr", "hasattr") and len(node.args) >= 2 and \
                isinstance(node.args[1], ast.Constant) and \
                node.args[1].value in FORBIDDEN_ATTRIBUTES | FORBIDDEN_NAMES:
            found.append(Violation(node.lineno, text(
                "it reaches {name} by name, which reaches into the interpreter's or a "
                "module's internals", name=repr(node.args[1].value))))
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append(Violation(node.lineno, N_("it uses __builtins__")))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in _imported_modules(node):
                if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                    found.append(Violation(node.lineno, text(
                        "it imports {name}, which a solution does not need and which can "
                        "change the grader", name=name)))
    return found


def _imported_modules(node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    return [base] + [f"{base}.{a.name}" for a in node.names]


def _references(tree: ast.AST, aliases: dict[str, str], forbidden: set[str]) -> list[Violation]:
    """Uses of bplib's own version of a function the student must write."""
    found = []

    def check(dotted: str | None, line: int) -> None:
        if dotted and dotted.split(".")[0] == "bplib" and dotted.split(".")[-1] in forbidden:
            found.append(Violation(line, text(
                "it uses bplib's reference implementation {dotted}; the exercise asks you to "
                "write {name} yourself", dotted=dotted, name=dotted.split(".")[-1])))

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            check(aliases.get(node.id), node.lineno)
        elif isinstance(node, ast.Attribute):
            check(_dotted(node, aliases), node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for a in node.names:
                check(f"{node.module}.{a.name}", node.lineno)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id == "getattr" and len(node.args) >= 2:
            obj, name = node.args[0], node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                found.append(Violation(node.lineno, N_(
                    "it calls getattr() with a computed name, which hides what it uses")))
            else:
                base = _dotted(obj, aliases)
                check(f"{base}.{name.value}" if base else None, node.lineno)
    return found


def reference_names(cell) -> set[str]:
    """The bplib names a solution cell's metadata says implement its functions."""
    meta = (cell.get("metadata") or {}).get(METADATA_KEY) or {}
    names = meta.get("reference") or []
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"cell metadata {METADATA_KEY}.reference must be a list of names, "
                         f"got {names!r}")
    return set(names)


def forbidden_names(solution_cells) -> set[str]:
    """What students must write and not take from bplib: the ``def`` names of the
    exercise's solution cells and the :func:`reference_names` of those cells.

    ``solution_cells`` are notebook cells (dicts with ``source`` and ``metadata``) of
    the instructor's source notebook.
    """
    names: set[str] = set()
    for cell in solution_cells:
        tree = parse_cell(cell["source"])
        if tree is not None:
            names |= defined_functions(tree)
        names |= reference_names(cell)
    return names


def replacement_source(source: str, violations: list[Violation], functions: set[str],
                       lang: str = language.ENGLISH) -> str:
    """Code that runs instead of a refused cell: the original as comments, each of its
    functions defined to raise :class:`IntegrityError`, then a raise of its own; its words
    in ``lang``, the language of the notebook's checks."""
    reason = language.translate(N_("; "), lang).join(
        language.render(v.text(), None, lang) for v in violations)
    names = ", ".join(sorted(functions)) or N_("this cell")
    message = language.render(N_("The autograder did not run the cell that defines {names}, "
                                 "so it earns no points: {reason}."),
                              {"names": names, "reason": reason}, lang)
    lines = ["# " + language.translate(N_("The autograder did not run this cell. Your code, "
                                          "as submitted:"), lang)]
    lines += ["#     " + line for line in source.splitlines()]
    lines += ["class IntegrityError(Exception):",
              '    """Code the autograder refused to run."""',
              f"_integrity_reason = {message!r}"]
    for name in sorted(functions):
        lines += [f"def {name}(*args, **kwargs):", "    raise IntegrityError(_integrity_reason)"]
    lines.append("raise IntegrityError(_integrity_reason)")
    return "\n".join(lines)




@by_source
def _imports_of(source: str) -> tuple[tuple[str, str], ...]:
    """:func:`imported_names` of a cell's source, as pairs (none if it is not Python)."""
    tree = parse_cell(source)
    return () if tree is None else tuple(imported_names(tree).items())


@by_source
def _violations_of(source: str, forbidden: frozenset[str],
                   notebook_imports: tuple[tuple[str, str], ...]) -> tuple[Violation, ...]:
    """:func:`find_violations`, as a tuple."""
    return tuple(find_violations(source, set(forbidden), dict(notebook_imports)))


def refuse_cells(cells, forbidden: set[str], is_student_cell,
                 lang: str = language.ENGLISH) -> list[tuple[int, object, list]]:
    """Replace every student cell the autograder refuses to run, in place.

    ``cells`` are a notebook's cells; ``is_student_cell(cell)`` says which code cells a
    student wrote (neither test cells nor locked ones); imports are read from every code
    cell. Each refused cell's source becomes :func:`replacement_source` (its words in
    ``lang``). Returns
    ``(index in cells, cell, violations)`` for each refused cell.
    """
    imports: dict[str, str] = {}
    for cell in cells:
        if cell["cell_type"] == "code":
            imports.update(_imports_of(cell["source"]))
    refused = []
    frozen, notebook_imports = frozenset(forbidden), tuple(imports.items())
    for index, cell in enumerate(cells):
        if cell["cell_type"] != "code" or not is_student_cell(cell):
            continue
        violations = list(_violations_of(cell["source"], frozen, notebook_imports))
        if violations:
            tree = parse_cell(cell["source"])
            defines = defined_functions(tree) if tree is not None else set()
            cell["source"] = replacement_source(cell["source"], violations, defines, lang)
            refused.append((index, cell, violations))
    return refused
