"""What the checks trust, taken when ``bpgrade.checks`` is imported, before any student code.

A submission runs in the interpreter that runs the checks, so whatever it can reach it can
change: the functions of ``numpy``, the builtins, the checks' own modules, by any route (an
assignment, ``setattr``, exercise 7's own ``Value.method`` helper, ``unittest.mock``, code
in a string that the integrity check cannot read). So:

- :data:`BUILTINS` is a private copy of the builtins: every module of the checks starts with
  ``__builtins__ = BUILTINS``, so ``abs``, ``float`` or ``isinstance`` in a check are those
  of import time, whatever a submission later puts into the ``builtins`` module;
- :func:`seal` makes the checks' modules refuse every attribute write and delete
  (:class:`ReadOnlyModule`): no check, helper or constant of theirs can be replaced;
- :data:`WATCH` is a snapshot of the namespaces the checks compute with (``numpy``,
  ``bplib``, ``math``, ``builtins``: every name, and the code and defaults of their Python
  functions and the attributes of their Python classes). :func:`verify` compares it, by
  identity, before a check compares anything and after every call into student code, once
  what the call returned has been copied into plain data (:func:`plain`): nothing of the
  student's runs after that, so a change that undoes itself cannot lie to a comparison.
  What changed is reported as :class:`bpgrade.integrity.IntegrityError`, and the check
  does not score.

Exercise 7's checks need no watching: they compute on floats with private references to
``math``'s functions and a private random generator, and call no numpy.

The grader's sandboxed kernel imports ``bpgrade.checks`` before it runs the first cell
(``bpgrade.kernel.KERNEL_BOOT``), so that all of this is taken before any student code,
even a cell added above the notebook's install cell.
"""

from __future__ import annotations

import builtins as _builtins
import math as _math
import os as _os
import sys as _sys
from itertools import chain as _chain
from itertools import repeat as _repeat
from operator import attrgetter as _attrgetter
from operator import is_not as _is_not
from operator import methodcaller as _methodcaller
from types import FunctionType, ModuleType

import numpy as np

import bplib.functional
import bplib.gradcheck
import bplib.optim
import bplib.prehistory  # noqa: F401 - watched: the modules the checks compute with
from bpgrade.integrity import IntegrityError
from bpgrade.language import render, text

BUILTINS: dict = dict(_builtins.__dict__)
"""The builtins as they were when the checks were imported (each module's ``__builtins__``)."""

__builtins__ = BUILTINS  # noqa: A001 - this module's own functions use the copy too

_MISSING = object()
#: Builtins that IPython sets or replaces while it runs a cell (not watched).
_IPYTHON_BUILTINS = frozenset({"_", "__", "___", "exit", "quit", "get_ipython", "display",
                               "__IPYTHON__", "__IPYTHON__active", "help", "copyright",
                               "credits", "license", "dreload", "runfile", "open", "input",
                               "raw_input"})
#: Names Python itself adds to a module or a class while it runs: a module's warnings
#: registry, and the ``__annotations__`` of a module or class, created empty the first time
#: anything reads them (``inspect.get_annotations``, ``typing.get_type_hints``,
#: ``cls.__annotations__``, Sphinx's autodoc). The checks compute with neither, and an
#: honest notebook that reads annotations is scored.
_LAZY_DUNDERS = frozenset({"__warningregistry__", "__annotations__"})
_HEAPTYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class whose attributes can be set
#: The grader's classic path (``bpgrade.kernel.ENV_CLASSIC``, for the benchmark of issue
#: #24): :meth:`Watch.changed` runs the exact loop only. Read once, at import.
_EXACT_ONLY = _os.environ.get("BPGRADE_CLASSIC_CHECKS") == "1"


class ReadOnlyModule(ModuleType):
    """A module whose attributes cannot be set or deleted (the checks' own modules)."""

    def __setattr__(self, name, value):
        raise AttributeError(render(text(
            "{module} is read-only: the grader's checks cannot be changed (setting {name})",
            module=self.__name__, name=repr(name))))

    def __delattr__(self, name):
        raise AttributeError(render(text(
            "{module} is read-only: the grader's checks cannot be changed (deleting {name})",
            module=self.__name__, name=repr(name))))


def seal(modules) -> None:
    """Make each of ``modules`` a :class:`ReadOnlyModule`."""
    for module in modules:
        module.__class__ = ReadOnlyModule


# --------------------------------------------------------------------------- watching


def _fingerprint(value) -> tuple | None:
    """What an object of a watched namespace holds that can change while it stays itself:
    ``(names, objects)``, compared by name and by identity."""
    impl = getattr(value, "_implementation", None)  # numpy's array-function dispatchers
    if type(value) is not FunctionType and type(impl) is FunctionType:
        value = impl
    if type(value) is FunctionType:
        return ((), (value.__code__, value.__defaults__, value.__kwdefaults__))
    if isinstance(value, type) and value.__flags__ & _HEAPTYPE:
        space = {k: v for k, v in value.__dict__.items() if k not in _LAZY_DUNDERS}
        return (tuple(space), tuple(space.values()))
    return None


def _same(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and len(a[1]) == len(b[1]) and all(
        x is y for x, y in zip(a[1], b[1], strict=True))


class Watch:
    """A snapshot of the modules the checks compute with; :meth:`changed` names what moved.

    :meth:`changed` runs after every call into student code (some sixty times per
    notebook, over about 5,000 names and 1,700 functions and classes), so it first asks
    :meth:`_untouched`, which compares the same things by identity in C loops (``map``
    with ``operator.is_not``): only when that finds a difference does the exact,
    name-by-name :meth:`_first_change` run, and its answer is the answer. So the result
    and the message are those of the name-by-name comparison, at a tenth of its cost.
    """

    def __init__(self, prefixes=("numpy", "bplib")):
        modules = [m for name, m in list(_sys.modules.items()) if isinstance(m, ModuleType)
                   and any(name == p or name.startswith(p + ".") for p in prefixes)]
        self._spaces = []
        for module in [*modules, _math, _builtins]:
            space = module.__dict__
            skip = _IPYTHON_BUILTINS if module is _builtins else _LAZY_DUNDERS
            names = {k: v for k, v in space.items() if k not in skip}
            prints = {k: fp for k, v in names.items()
                      if isinstance(getattr(v, "__module__", None), str)
                      and v.__module__.split(".")[0] in (*prefixes, "math", "builtins")
                      and (fp := _fingerprint(v)) is not None}
            self._spaces.append((module.__name__, space, names, prints, skip,
                                 module is not _builtins))
        self._snapshot()

    def _snapshot(self) -> None:
        """The flat tuples :meth:`_untouched` compares: every watched name's value; every
        fingerprinted object and what ``_implementation`` it had; the functions whose
        code, defaults and keyword defaults :func:`_fingerprint` takes; the classes whose
        attributes it takes."""
        self._names = [(space, tuple(names), tuple(names.values()))
                       for _, space, names, _, _, _ in self._spaces]
        objects, functions, classes = [], [], []
        for _, _, names, prints, _, _ in self._spaces:
            for k, fp in prints.items():
                value = names[k]
                objects.append(value)
                impl = getattr(value, "_implementation", None)
                target = impl if (type(value) is not FunctionType
                                  and type(impl) is FunctionType) else value
                if type(target) is FunctionType:
                    functions.append((target, fp[1]))
                else:
                    classes.append((value, fp))
        self._objects = tuple(objects)
        self._impls = tuple(getattr(v, "_implementation", None) for v in objects)
        self._functions = tuple(f for f, _ in functions)
        self._function_parts = tuple(tuple(parts[i] for _, parts in functions)
                                     for i in range(3))
        self._classes = tuple(c for c, _ in classes)
        self._class_keys = [fp[0] for _, fp in classes]
        self._class_values = tuple(_chain.from_iterable(fp[1] for _, fp in classes))

    def _untouched(self) -> bool:
        """True when every watched thing is, by identity, what it was (then
        :meth:`_first_change` finds nothing either); False when anything may differ."""
        for space, keys, values in self._names:
            if any(map(_is_not, map(space.get, keys, _repeat(_MISSING, len(keys))), values)):
                return False
        for _, space, names, _, skip, watch_added in self._spaces:
            if watch_added and len(space) > len(names):
                for k, v in list(space.items()):
                    if k not in names and k not in skip and not isinstance(v, ModuleType):
                        return False
        impls = map(getattr, self._objects, _repeat("_implementation"), _repeat(None))
        if any(map(_is_not, impls, self._impls)):
            return False
        for attribute, then in zip(("__code__", "__defaults__", "__kwdefaults__"),
                                   self._function_parts, strict=True):
            if any(map(_is_not, map(_attrgetter(attribute), self._functions), then)):
                return False
        dicts = list(map(_attrgetter("__dict__"), self._classes))
        if list(map(tuple, dicts)) != self._class_keys:
            return False
        now = _chain.from_iterable(map(_methodcaller("values"), dicts))
        return not any(map(_is_not, now, self._class_values))

    def changed(self) -> str | None:
        """The first name of a watched module that is not what it was, or ``None``."""
        if _EXACT_ONLY:
            return self._first_change()
        if self._untouched():
            return None
        what = self._first_change()
        if what is None:
            # Only what Python adds by itself moved (a class's lazily created
            # __annotations__, _LAZY_DUNDERS): the exact loop found everything else as it
            # was, so the classes as they are now become what the fast comparison expects
            # (else every later call would take the exact loop).
            dicts = list(map(_attrgetter("__dict__"), self._classes))
            self._class_keys = list(map(tuple, dicts))
            self._class_values = tuple(_chain.from_iterable(d.values() for d in dicts))
        return what

    def _first_change(self) -> str | None:
        """:meth:`changed`, name by name."""
        for name, space, names, prints, skip, watch_added in self._spaces:
            for k, v in names.items():
                if space.get(k, _MISSING) is not v:
                    return f"{name}.{k}"
            if watch_added and len(space) > len(names):
                for k, v in list(space.items()):
                    if k not in names and k not in skip and not isinstance(v, ModuleType):
                        return f"{name}.{k} (added)"
            for k, fp in prints.items():
                if not _same(_fingerprint(names[k]), fp):
                    return f"{name}.{k} (its code, defaults or attributes)"
        return None


WATCH = Watch()


def verify(fn_name: str) -> None:
    """Raise :class:`IntegrityError` if a watched module changed since the checks were
    imported."""
    what = WATCH.changed()
    if what is not None:
        raise IntegrityError(render(text(
            "{fn}: the grader does not score this: your code changed {what}, which the "
            "checks compute with (a solution may not change numpy, bplib, math or the "
            "builtins: they are shared with the checker)", fn=fn_name, what=what)))


# --------------------------------------------------------------------------- plain data


class Opaque:
    """Something the student returned that is not plain data: its type's name and, taken
    before :func:`verify`, its conversion to a float64 array or why that failed."""

    __slots__ = ("array", "error", "name")

    def __init__(self, name: str, array, error: str):
        self.name, self.array, self.error = name, array, error


_SCALARS = frozenset({bool, int, float, complex, str, type(None)})
_NUMPY_SCALARS = frozenset(t for t in set(np.sctypeDict.values()) if isinstance(t, type))


def plain(obj, depth: int = 0):
    """A copy of what a student's function returned, made of trusted types only (``None``,
    numbers, strings, numpy scalars and arrays, tuples, lists, dicts); anything else is an
    :class:`Opaque`. Student code may run while this copies (an ``__array__``,
    ``__float__`` or ``__iter__`` of a returned object); none can run on what it returns.
    """
    t = type(obj)
    if t in _SCALARS or t in _NUMPY_SCALARS:
        return obj
    if depth > 20:
        return Opaque(t.__name__, None, "nested more than 20 deep")
    if t is np.ndarray and obj.dtype != object:
        return obj.copy()
    if t is tuple or t is list:
        return t(plain(x, depth + 1) for x in obj)
    if t is dict:
        return {plain(k, depth + 1): plain(v, depth + 1) for k, v in list(obj.items())}
    try:
        if isinstance(obj, float):
            return float(obj)
        if isinstance(obj, int):
            return int(obj)
        if isinstance(obj, np.ndarray) and obj.dtype != object:
            return np.array(np.asarray(obj), copy=True)
        if isinstance(obj, (tuple, list)):
            return tuple(plain(x, depth + 1) for x in list(obj))
        if isinstance(obj, dict):
            return {plain(k, depth + 1): plain(v, depth + 1) for k, v in list(obj.items())}
        return Opaque(t.__name__, np.array(obj, dtype=np.float64), "")
    except Exception as exc:  # noqa: BLE001 - what the student returned explains itself
        return Opaque(t.__name__, None, f"{type(exc).__name__}: {exc}")
