"""Autograding under attack: a sandboxed kernel, resource limits and integrity checks.

Three parts, all used by plain ``nbgrader autograde`` through ``nbgrader_sandbox.py``:

* **The kernel launcher** (``python bplib/sandbox.py kernel -f {connection_file}``, the
  ``argv`` of the ``bplib-sandbox`` kernel spec that ``make setup`` installs). It starts
  ``ipykernel`` under bubblewrap: read-only system, no network, private ``/tmp``,
  private process tree (every process dies with the kernel), and of the course root
  only the submission's own folder (read-only), the venv and ``bplib`` (read-only).
  Memory (``RLIMIT_AS``), CPU time and file size are limited. Without bubblewrap it
  prints a warning and starts the kernel with the limits only.
* **SandboxedExecute**, nbgrader's ``Execute`` with that kernel spec, Unix-socket
  transport in a private folder per kernel, a cap on each cell's output, a wall-time
  budget per notebook, and a grade (not a crash) when the kernel dies.
* **CheckIntegrity**, run before execution: a student's cell that rebinds attributes of
  modules, uses dynamic code (``exec``, ``setattr``, ``__dict__`` ...), or uses bplib's
  own implementation of a function the notebook asks for is not run; its code is
  kept as comments and each function it defines raises :class:`IntegrityError` with
  the reason, so the tests of that function fail with that message.

This module imports only the standard library at import time (the launcher runs it
as a script); the two nbgrader classes are built on first access.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

KERNEL_NAME = "bplib-sandbox"
ENV_ROOT = "BPLIB_COURSE_ROOT"
ENV_MEMORY, ENV_CPU, ENV_FSIZE = "BPLIB_SANDBOX_MEMORY", "BPLIB_SANDBOX_CPU", "BPLIB_SANDBOX_FSIZE"
ENV_OUTPUT = "BPLIB_SANDBOX_OUTPUT"  # characters a cell may print
ENV_OFF = "BPLIB_SANDBOX_OFF"  # tests only: force the unsandboxed path
GIB, MIB = 1024**3, 1024**2
LOG_CAP = 64 * 1024  # bytes of the kernel's own stdout/stderr passed on to nbgrader's log
WARNING = "WARNING: NO SANDBOX for student code ({}): it runs with resource limits only"
# ipykernel's entry point without its debugger: importing debugpy costs about 0.1 s of
# CPU at every kernel start, and nobody attaches a debugger to a grading kernel.
KERNEL_BOOT = ("import sys; sys.modules['debugpy'] = None; "
               "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()")
_PASS_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "MKL_NUM_THREADS", "KERAS_BACKEND", "MPLBACKEND", "PYTHONHASHSEED", "JAX_PLATFORMS")


# ---------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Per-kernel resource limits (bytes and seconds; 0 means no limit)."""

    memory: int = 2 * GIB  # RLIMIT_AS of every process of the kernel
    cpu: int = 120  # RLIMIT_CPU, seconds of CPU per process
    file_size: int = 64 * MIB  # RLIMIT_FSIZE, the largest file a process may write

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Limits:
        """Limits from ``BPLIB_SANDBOX_MEMORY/CPU/FSIZE``, defaults where unset."""
        env = os.environ if env is None else env
        d = cls()
        return cls(int(env.get(ENV_MEMORY, d.memory)), int(env.get(ENV_CPU, d.cpu)),
                   int(env.get(ENV_FSIZE, d.file_size)))

    def as_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads."""
        return {ENV_MEMORY: str(self.memory), ENV_CPU: str(self.cpu),
                ENV_FSIZE: str(self.file_size)}

    def apply(self) -> None:
        """Set the limits on this process (inherited by its children)."""
        pairs = [(resource.RLIMIT_AS, self.memory), (resource.RLIMIT_FSIZE, self.file_size),
                 (resource.RLIMIT_CORE, 0)]
        for which, value in pairs:
            if value:
                resource.setrlimit(which, (value, value))
        if self.cpu:  # SIGXCPU at the soft limit, SIGKILL 5 s later if it is caught
            resource.setrlimit(resource.RLIMIT_CPU, (self.cpu, self.cpu + 5))


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)
    except OSError:
        pass


# ---------------------------------------------------------------------------- bubblewrap


def bwrap_problem() -> str | None:
    """Why bubblewrap cannot sandbox a kernel here, or ``None`` if it can.

    Runs ``bwrap`` once with the namespaces the sandbox uses.
    """
    if os.environ.get(ENV_OFF):
        return f"{ENV_OFF} is set"
    exe = shutil.which("bwrap")
    if exe is None:
        return "bubblewrap is not installed: apt-get install bubblewrap"
    probe = [exe, "--ro-bind", "/", "/", "--proc", "/proc", "--dev", "/dev", "--unshare-net",
             "--unshare-pid", "--die-with-parent", "true"]
    try:
        proc = subprocess.run(probe, capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bwrap could not run: {exc}"
    if proc.returncode != 0:
        return ("bwrap cannot create namespaces here (user namespaces disabled?): "
                + (proc.stderr.strip() or f"exit status {proc.returncode}"))
    return None


def course_root_of(workdir: Path, env: dict[str, str] | None = None) -> Path | None:
    """The course root: ``$BPLIB_COURSE_ROOT``, else the nearest folder above ``workdir``
    that holds ``nbgrader_config.py``."""
    env = os.environ if env is None else env
    if env.get(ENV_ROOT):
        return Path(env[ENV_ROOT]).resolve()
    for folder in [workdir, *workdir.parents]:
        if (folder / "nbgrader_config.py").is_file():
            return folder
    return None


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def hidden_folders(course_root: Path | None, package_dir: Path) -> list[Path]:
    """Folders the kernel must not see: the course root, the project that holds
    ``bplib`` (for an editable install elsewhere) and ``$HOME``."""
    hidden = [course_root] if course_root else []
    if (package_dir.parent / "pyproject.toml").is_file():
        hidden.append(package_dir.parent)
    hidden.append(Path.home())
    tmp = Path(tempfile.gettempdir()).resolve()
    out: list[Path] = []
    for p in sorted({h.resolve() for h in hidden}, key=lambda p: len(p.parts)):
        if p != Path("/") and not _inside(p, tmp) and not any(_inside(p, o) for o in out):
            out.append(p)
    return out


def bwrap_command(kernel: list[str], *, workdir: Path, runtime_dir: Path,
                  course_root: Path | None, prefix: Path | None = None,
                  package_dir: Path | None = None,
                  env: dict[str, str] | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``kernel`` in the sandbox.

    Order matters: the tmpfs mounts hide folders, the binds after them re-expose
    the venv (``prefix``), ``bplib`` (``package_dir``), the connection folder
    (``runtime_dir``, read-write: the kernel's sockets) and ``workdir`` (read-only).
    """
    prefix = Path(prefix or sys.prefix)
    package_dir = Path(package_dir or Path(__file__).resolve().parent)
    env = os.environ if env is None else env
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev",
           "--proc", "/proc", "--tmpfs", tempfile.gettempdir()]
    for folder in hidden_folders(course_root, package_dir):
        cmd += ["--tmpfs", str(folder)]
    for folder in _python_folders(prefix):
        cmd += ["--ro-bind", str(folder), str(folder)]
    cmd += ["--ro-bind", str(package_dir), str(package_dir),
            "--bind", str(runtime_dir), str(runtime_dir),
            "--ro-bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    cmd += ["--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-pid",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv"]
    for name in _PASS_ENV:
        if name in env:
            cmd += ["--setenv", name, env[name]]
    # JPY_PARENT_PID=1: ipykernel neither polls its parent (which is the namespace's
    # init, pid 1) nor prints its "started outside a notebook" banner.
    for name, value in (("JPY_PARENT_PID", "1"), ("HOME", "/tmp"), ("IPYTHONDIR", "/tmp/.ipython"),
                        ("MPLCONFIGDIR", "/tmp/.matplotlib"), ("PYTHONDONTWRITEBYTECODE", "1")):
        cmd += ["--setenv", name, value]
    return [*cmd, "--", *kernel]


def _python_folders(prefix: Path) -> list[Path]:
    """The venv and the interpreter it was made from (pyenv keeps it under $HOME)."""
    folders = [prefix, Path(sys.base_prefix).resolve(),
               Path(os.path.realpath(sys.executable)).parent.parent]
    out: list[Path] = []
    for f in folders:
        if f not in out and f != Path("/"):
            out.append(f)
    return out


def kernel_argv(connection_file: str, output_limit: int = 0) -> list[str]:
    """``ipykernel`` with the working folder kept off ``sys.path`` (a submitted
    ``numpy.py`` or ``bplib/`` folder must not shadow the real ones) and, with
    ``output_limit``, :func:`cap_output` run at start-up."""
    argv = [sys.executable, "-P", "-c", KERNEL_BOOT, "-f", connection_file,
            "--IPKernelApp.ignore_cwd=True", "--HistoryManager.enabled=False"]
    if output_limit:
        argv.append("--IPKernelApp.exec_lines="
                    f"__import__('bplib.sandbox').sandbox.cap_output({int(output_limit)})")
    return argv


class OutputLimitError(RuntimeError):
    """A cell printed more than the autograder keeps."""


def cap_output(limit: int) -> None:
    """In the kernel: a cell whose ``print`` output passes ``limit`` characters gets
    :class:`OutputLimitError` from ``print`` (so a flood ends at once, in the kernel)."""
    from IPython import get_ipython

    state = {"n": 0}
    for stream in (sys.stdout, sys.stderr):
        def capped(text, write=stream.write):
            state["n"] += len(text)
            if state["n"] > limit:
                raise OutputLimitError(f"this cell printed more than {limit // 1024} KiB; "
                                       "the autograder stopped it (output cut by the "
                                       "autograder)")
            return write(text)

        stream.write = capped
    shell = get_ipython()
    if shell is not None:
        shell.events.register("pre_run_cell", lambda *_: state.update(n=0))


def run_kernel(connection_file: str) -> int:
    """The launcher: start the (sandboxed) kernel, relay a bounded log, return its status.

    The kernel's own stdout and stderr (not the notebook's outputs, which travel
    over the kernel protocol) are passed on up to :data:`LOG_CAP` bytes.
    """
    workdir = Path.cwd().resolve()
    limits = Limits.from_env()
    kernel = kernel_argv(connection_file, int(os.environ.get(ENV_OUTPUT, 0)))
    problem = bwrap_problem()
    if problem:
        print(WARNING.format(problem), file=sys.stderr, flush=True)
        cmd = kernel
    else:
        cmd = bwrap_command(kernel, workdir=workdir,
                            runtime_dir=Path(connection_file).resolve().parent,
                            course_root=course_root_of(workdir))

    def child_setup() -> None:
        _die_with_parent()
        limits.apply()

    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, preexec_fn=child_setup)  # noqa: PLW1509
    signal.signal(signal.SIGTERM, lambda *_: proc.kill())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _relay(proc.stdout, LOG_CAP)
    rc = proc.wait()
    return 128 - rc if rc < 0 else rc


def _relay(stream, cap: int) -> None:
    passed = 0
    out = sys.stderr.buffer
    while chunk := stream.read1(65536):
        if passed < cap:
            out.write(chunk[: cap - passed])
            out.flush()
            passed += len(chunk)
            if passed >= cap:
                out.write(b"\n[bplib sandbox: the kernel's log is cut here]\n")
                out.flush()


def death_reason(status: int | None, limits: Limits) -> str:
    """Words for a kernel's exit status, as :func:`run_kernel` returns it."""
    if status is None:
        return "the kernel stopped answering"
    if status == 128 + signal.SIGXCPU:
        return f"the kernel used more than its CPU time limit ({limits.cpu} s)"
    if status == 128 + signal.SIGKILL:
        return (f"the kernel was killed (CPU limit of {limits.cpu} s, or memory limit of "
                f"{limits.memory / GIB:g} GiB)")
    if status > 128:
        return f"the kernel was killed by signal {status - 128}"
    return f"the kernel exited with status {status} (os._exit, sys.exit or a crash?)"


# ---------------------------------------------------------------------------- kernel spec


def kernel_spec(python: str | None = None) -> dict:
    """The ``kernel.json`` of the sandboxed kernel.

    ``interrupt_mode`` is ``message``: the kernel is in its own session, so a
    signal to the launcher's process group would not reach it.
    """
    return {
        "argv": [python or sys.executable, str(Path(__file__).resolve()), "kernel", "-f",
                 "{connection_file}"],
        "display_name": "Python 3 (bplib sandbox)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }


def install_kernel(user: bool = False, prefix: str | None = None) -> str:
    """Install the ``bplib-sandbox`` kernel spec; return the folder it went to.

    ``prefix=sys.prefix`` (the CLI's ``--sys-prefix``) puts it in the venv.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n")
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=user,
                                                       prefix=prefix)


# ---------------------------------------------------------------------------- integrity


class IntegrityError(Exception):
    """Raised in place of student code that the autograder refuses to run."""


FORBIDDEN_CALLS = {
    "setattr": "setattr can change a module behind the checker's back",
    "delattr": "delattr can change a module behind the checker's back",
    "exec": "exec runs code that cannot be checked",
    "eval": "eval runs code that cannot be checked",
    "compile": "compile builds code that cannot be checked",
    "__import__": "__import__ hides an import from the checker",
    "globals": "globals() can rebind names behind the checker's back",
    "vars": "vars() exposes a module's namespace",
    "get_ipython": "get_ipython() can change how cells and their errors are handled",
    "breakpoint": "breakpoint() would stop the grader",
}
FORBIDDEN_ATTRIBUTES = {
    "__dict__", "__code__", "__globals__", "__builtins__", "__closure__", "__defaults__",
    "__kwdefaults__", "__subclasses__", "__setattr__", "__delattr__", "__getattribute__",
    "__import__", "__loader__", "__spec__", "f_globals", "f_locals", "f_back", "f_builtins",
    "modules", "settrace", "setprofile", "_getframe", "excepthook", "displayhook",
}
FORBIDDEN_MODULES = {"ctypes", "gc", "importlib", "IPython", "bplib.testing"}
REFERENCE_EXTRAS: dict[str, tuple[str, ...]] = {
    "linear_backward": ("Linear", "Sequential"),
    "relu_backward": ("ReLU", "LeakyReLU", "Sequential"),
    "sigmoid_backward": ("Sigmoid", "Sequential"),
    "tanh_backward": ("Tanh", "Sequential"),
    "two_layer_net": ("Sequential", "Linear", "ReLU", "linear_backward", "relu_backward",
                      "softmax_backward"),
    "sgd_momentum_update": ("SGD", "nesterov_update"),
    "adam_update": ("Adam", "RMSProp", "rmsprop_update"),
    "perceptron_update": ("Perceptron",),
    "train_perceptron": ("Perceptron",),
}
"""bplib names that implement an exercise's function besides the function itself."""


@dataclass(frozen=True)
class Violation:
    """One reason a cell is not run: its line and what it does."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


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
    """Imports plus plain names assigned from them (``n = np``, ``t = bplib.testing``)."""
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
        bplib names the student must write, not use (the notebook's exercise
        functions and :data:`REFERENCE_EXTRAS` of them).
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
                found.append(Violation(node.lineno, f"it rebinds {what}, an attribute of the "
                                       f"module {module.split('.')[0]}; a solution may not "
                                       "change modules (they are shared with the checker)"))
    return found


def _dynamic(tree: ast.AST) -> list[Violation]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and \
                node.func.id in FORBIDDEN_CALLS:
            found.append(Violation(node.lineno, f"it calls {node.func.id}(): "
                                   f"{FORBIDDEN_CALLS[node.func.id]}"))
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            found.append(Violation(node.lineno, f"it uses .{node.attr}, which reaches into "
                                   "the interpreter's or a module's internals"))
        elif isinstance(node, ast.Name) and node.id == "__builtins__":
            found.append(Violation(node.lineno, "it uses __builtins__"))
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for name in _imported_modules(node):
                if any(name == m or name.startswith(m + ".") for m in FORBIDDEN_MODULES):
                    found.append(Violation(node.lineno, f"it imports {name}, which a solution "
                                           "does not need and which can change the grader"))
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
            found.append(Violation(line, f"it uses bplib's reference implementation "
                                   f"{dotted}; the exercise asks you to write "
                                   f"{dotted.split('.')[-1]} yourself"))

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
                found.append(Violation(node.lineno, "it calls getattr() with a computed name, "
                                       "which hides what it uses"))
            else:
                base = _dotted(obj, aliases)
                check(f"{base}.{name.value}" if base else None, node.lineno)
    return found


def forbidden_names(functions: set[str]) -> set[str]:
    """The exercise's functions and the bplib names that implement them."""
    extra = {e for f in functions for e in REFERENCE_EXTRAS.get(f, ())}
    return set(functions) | extra


def replacement_source(source: str, violations: list[Violation], functions: set[str]) -> str:
    """Code that runs instead of a refused cell: the original as comments, each of its
    functions defined to raise :class:`IntegrityError`, then a raise of its own."""
    reason = "; ".join(str(v) for v in violations)
    names = ", ".join(sorted(functions)) or "this cell"
    message = (f"The autograder did not run the cell that defines {names}, so it earns no "
               f"points: {reason}.")
    lines = ["# The autograder did not run this cell. Your code, as submitted:"]
    lines += ["#     " + line for line in source.splitlines()]
    lines += ["class IntegrityError(Exception):",
              '    """Code the autograder refused to run."""',
              f"_integrity_reason = {message!r}"]
    for name in sorted(functions):
        lines += [f"def {name}(*args, **kwargs):", "    raise IntegrityError(_integrity_reason)"]
    lines.append("raise IntegrityError(_integrity_reason)")
    return "\n".join(lines)


# ---------------------------------------------------------------------------- nbgrader side

_NBGRADER_CLASSES = ("SandboxedExecute", "CheckIntegrity")


def __getattr__(name: str):
    """Build the nbgrader preprocessors on first use (nbgrader is slow to import)."""
    if name in _NBGRADER_CLASSES:
        return _nbgrader_classes()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


_CACHE: dict[str, type] = {}


def _nbgrader_classes() -> dict[str, type]:
    if not _CACHE:
        _CACHE.update(_build_nbgrader_classes())
    return _CACHE


def _error_output(ename: str, evalue: str):
    from nbformat.notebooknode import NotebookNode

    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


def _build_nbgrader_classes() -> dict[str, type]:  # noqa: C901 - two classes, kept together
    import asyncio
    import queue
    import time

    from jupyter_client import AsyncKernelManager
    from jupyter_client.asynchronous import AsyncKernelClient
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    from jupyter_core.utils import ensure_async, run_sync
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbformat.notebooknode import NotebookNode
    from nbgrader import utils
    from nbgrader.preprocessors import Execute, NbGraderPreprocessor
    from traitlets import Bool, Enum, Integer, Unicode

    class QuickKernelManager(AsyncKernelManager):
        """After killing the kernel, check for its end every 10 ms, not every 100 ms."""

        async def _async_wait(self, pollinterval: float = 0.01) -> None:
            await super()._async_wait(pollinterval=min(pollinterval, 0.01))

    class ReadyClient(AsyncKernelClient):
        """jupyter_client's client without the 0.2 s of silence it waits for on
        IOPub once the kernel has answered (a quarter of a kernel's start here).
        Nothing is lost: nbclient keeps only the IOPub messages of its own requests."""

        async def wait_for_ready(self, timeout=None):
            deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
            while True:
                self.kernel_info()
                try:
                    reply = await self.shell_channel.get_msg(timeout=1)
                except queue.Empty:
                    reply = None
                if reply is not None and reply["msg_type"] == "kernel_info_reply":
                    try:  # IOPub is connected once it delivers something
                        await self.iopub_channel.get_msg(timeout=0.2)
                    except queue.Empty:
                        pass
                    else:
                        self._handle_kernel_info_reply(reply)
                        return
                if not await self._async_is_alive():
                    raise RuntimeError("Kernel died before replying to kernel_info")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Kernel didn't respond in {timeout:g} seconds")


    class SandboxedExecute(Execute):
        """nbgrader's ``Execute`` in the ``bplib-sandbox`` kernel, with limits.

        Configured in ``nbgrader_sandbox.py``; ``Execute.timeout`` still sets the
        per-cell timeout.
        """

        sandbox_kernel = Unicode(KERNEL_NAME, help="Kernel spec of the sandbox").tag(
            config=True)
        course_root = Unicode("", help="The course root, hidden from the kernel").tag(
            config=True)
        memory_limit = Integer(2 * GIB, help="RLIMIT_AS per kernel process (bytes)").tag(
            config=True)
        cpu_limit = Integer(120, help="RLIMIT_CPU per kernel process (s)").tag(config=True)
        file_size_limit = Integer(64 * MIB, help="RLIMIT_FSIZE (bytes)").tag(config=True)
        max_output_bytes = Integer(1 * MIB, help="Output kept per cell (bytes)").tag(
            config=True)
        notebook_time_limit = Integer(300, help="Wall time per notebook (s)").tag(config=True)
        require_sandbox = Bool(False, help="Fail instead of grading unsandboxed").tag(
            config=True)
        # The notebook has run to its end: kill the kernel at once instead of asking it
        # to exit and polling for 0.3 s (its atexit hooks do not count for the grade).
        shutdown_kernel = Enum(["graceful", "immediate"], default_value="immediate",
                               help="How to stop the kernel after the last cell").tag(config=True)

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("kernel_manager_class", QuickKernelManager)
            super().__init__(*args, **kwargs)

        def preprocess(self, nb, resources=None, km=None):
            limits = Limits(self.memory_limit, self.cpu_limit, self.file_size_limit)
            self._limits, self._dead, self._out_bytes = limits, None, {}
            self._deadline = time.monotonic() + self.notebook_time_limit
            self._announce()
            runtime = tempfile.mkdtemp(prefix="bplib-kernel-")
            self._runtime = runtime
            try:
                return super().preprocess(nb, resources, km)
            finally:
                shutil.rmtree(runtime, ignore_errors=True)

        def _announce(self) -> None:
            try:
                KernelSpecManager().get_kernel_spec(self.sandbox_kernel)
            except NoSuchKernel:
                self.log.warning("SANDBOX OFF: kernel spec %r is not installed (run `make "
                                 "setup` or `python bplib/sandbox.py install-kernel "
                                 "--sys-prefix`); student code runs UNSANDBOXED and "
                                 "UNLIMITED", self.sandbox_kernel)
                return
            self.kernel_name = self.sandbox_kernel
            problem = bwrap_problem()
            if problem and self.require_sandbox:
                raise RuntimeError(f"no sandbox: {problem}")
            if problem:
                self.log.warning(WARNING.format(problem))

        def create_kernel_manager(self):
            km = super().create_kernel_manager()
            km.transport = "ipc"
            km.client_factory = ReadyClient
            km.connection_file = os.path.join(self._runtime, "kernel.json")
            return km

        async def async_start_new_kernel(self, **kwargs):
            env = dict(kwargs.pop("env", None) or os.environ)
            env.update(self._limits.as_env())
            env[ENV_OUTPUT] = str(self.max_output_bytes)
            if self.course_root:
                env[ENV_ROOT] = self.course_root
            await super().async_start_new_kernel(env=env, **kwargs)

        start_new_kernel = run_sync(async_start_new_kernel)

        def _get_timeout(self, cell):
            timeout = super()._get_timeout(cell)
            left = max(1, int(self._deadline - time.monotonic()))
            return left if timeout is None else min(timeout, left)

        async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                     store_history=True):
            runnable = cell.cell_type == "code" and cell.source.strip()
            if runnable and self._dead is None and time.monotonic() > self._deadline:
                self._dead = (f"the notebook used up its time limit of "
                              f"{self.notebook_time_limit} s")
            if runnable and self._dead:
                cell.outputs = [_error_output("NotRunError", f"not run: {self._dead}")]
                return cell
            try:
                return await super().async_execute_cell(cell, cell_index, execution_count,
                                                        store_history)
            except CellTimeoutError:  # the reply came, its output did not stop in time
                cell.outputs.append(_error_output(
                    "CellTimeoutError", "the cell's output did not stop after the timeout"))
                await self._drain_iopub(min(60.0, self._deadline - time.monotonic()))
                return cell
            except DeadKernelError:
                process = getattr(getattr(self.km, "provisioner", None), "process", None)
                status = process.poll() if process is not None else None
                self._dead = death_reason(status, self._limits)
                self.log.warning("kernel died in cell %d: %s", cell_index, self._dead)
                cell.outputs.append(_error_output("DeadKernelError", self._dead))
                return cell

        execute_cell = run_sync(async_execute_cell)

        async def _drain_iopub(self, limit: float) -> None:
            """Drop the rest of a flood of output, so that the next cell's own output
            is not stuck behind it."""
            end = time.monotonic() + max(limit, 1.0)
            while time.monotonic() < end:
                try:
                    msg = await ensure_async(self.kc.iopub_channel.get_msg(timeout=1))
                except queue.Empty:
                    return
                if msg["msg_type"] == "status" and \
                        msg["content"].get("execution_state") == "idle":
                    return

        def output(self, outs, msg, display_id, cell_index):
            size = _message_size(msg)
            used = self._out_bytes.get(cell_index, 0)
            self._out_bytes[cell_index] = used + size
            if used + size <= self.max_output_bytes:
                return super().output(outs, msg, display_id, cell_index)
            if used <= self.max_output_bytes:  # first time over: say so, stop the cell
                outs.append(NotebookNode(
                    output_type="stream", name="stderr",
                    text=f"\n[output cut by the autograder: this cell printed more than "
                         f"{self.max_output_bytes // 1024} KiB; the cell was interrupted]\n"))
                asyncio.ensure_future(ensure_async(self.km.interrupt_kernel()))
            return None

    class CheckIntegrity(NbGraderPreprocessor):
        """Refuse student cells that tamper with modules or use bplib's reference.

        Student cells are code cells that are neither test cells nor locked (those
        are restored from the instructor's copy). The functions the notebook asks
        for are the ``def`` names of its solution cells.
        """

        enabled = Bool(True, help="Check student cells before execution").tag(config=True)

        def preprocess(self, nb, resources):
            if not self.enabled:
                return nb, resources
            code = [c for c in nb.cells if c.cell_type == "code"]
            trees = [parse_cell(c.source) for c in code]
            imports: dict[str, str] = {}
            functions: set[str] = set()
            for cell, tree in zip(code, trees, strict=True):
                if tree is not None:
                    imports.update(imported_names(tree))
                    if utils.is_solution(cell):
                        functions |= defined_functions(tree)
            forbidden = forbidden_names(functions)
            refused = []
            for cell, tree in zip(code, trees, strict=True):
                if (utils.is_grade(cell) and not utils.is_solution(cell)) or utils.is_locked(cell):
                    continue
                violations = find_violations(cell.source, forbidden, imports)
                if violations:
                    defines = defined_functions(tree) if tree is not None else set()
                    cell.metadata["bplib_integrity"] = [str(v) for v in violations]
                    cell.source = replacement_source(cell.source, violations, defines)
                    refused.append(cell.metadata.get("nbgrader", {}).get("grade_id", "?"))
                    self.log.warning("integrity: cell %s not run: %s", refused[-1],
                                     "; ".join(map(str, violations)))
            resources.setdefault("bplib_integrity", refused)
            return nb, resources

    for cls in (SandboxedExecute, CheckIntegrity):
        cls.__qualname__ = cls.__name__
    return {"SandboxedExecute": SandboxedExecute, "CheckIntegrity": CheckIntegrity}


def _message_size(msg: dict) -> int:
    content = msg.get("content", {})
    if "text" in content:
        return len(content["text"])
    data = content.get("data") or {}
    return sum(len(v) if isinstance(v, str) else len(json.dumps(v)) for v in data.values()) + \
        sum(len(x) for x in content.get("traceback", []))


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``kernel -f FILE`` (the launcher) or ``install-kernel [--user | --sys-prefix]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="bplib.sandbox", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("kernel", help="start a sandboxed ipykernel (the kernel spec's argv)")
    k.add_argument("-f", dest="connection_file", required=True)
    i = sub.add_parser("install-kernel", help=f"install the {KERNEL_NAME!r} kernel spec")
    where = i.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true")
    where.add_argument("--sys-prefix", action="store_true")
    sub.add_parser("check", help="say whether bubblewrap can sandbox kernels here")
    args = parser.parse_args(argv)
    if args.command == "kernel":
        return run_kernel(args.connection_file)
    if args.command == "install-kernel":
        path = install_kernel(user=args.user, prefix=sys.prefix if args.sys_prefix else None)
        print(f"installed kernel spec {KERNEL_NAME!r} in {path}")
        return 0
    problem = bwrap_problem()
    print(f"sandbox: {'unavailable: ' + problem if problem else 'bubblewrap works'}")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())
