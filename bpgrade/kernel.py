"""The sandboxed grading kernel: resource limits, the bubblewrap command, the kernel spec.

``python -P -m bpgrade kernel -f {connection_file}`` (the ``argv`` of the
``bpgrade-sandbox`` kernel spec that ``make setup`` installs with ``python -m bpgrade
install-kernel --sys-prefix``) starts ``ipykernel`` under bubblewrap: read-only
system, no network, private ``/tmp``, private process tree (every process dies with
the kernel), and of the course root only the submission's own folder (read-only),
the venv and the two packages ``bplib`` and ``bpgrade`` (read-only). Memory
(``RLIMIT_AS``), CPU time and file size are limited. Without bubblewrap it prints a
warning and starts the kernel with the limits only.

Standard library only: the launcher runs outside the sandbox, before any student
code, and must not import what a submission could shadow (``-P`` keeps the
submission's folder off ``sys.path``). The nbgrader side is
:mod:`bpgrade.nbgrader_plugins`.
"""

from __future__ import annotations

import importlib.util
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

KERNEL_NAME = "bpgrade-sandbox"
ENV_ROOT = "BPGRADE_COURSE_ROOT"
ENV_MEMORY = "BPGRADE_SANDBOX_MEMORY"
ENV_CPU = "BPGRADE_SANDBOX_CPU"
ENV_FSIZE = "BPGRADE_SANDBOX_FSIZE"
ENV_OUTPUT = "BPGRADE_SANDBOX_OUTPUT"  # characters a cell may print
ENV_OFF = "BPGRADE_SANDBOX_OFF"  # tests only: force the unsandboxed path
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
        """Limits from ``BPGRADE_SANDBOX_MEMORY/CPU/FSIZE``, defaults where unset."""
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
    """The course root: ``$BPGRADE_COURSE_ROOT``, else the nearest folder above ``workdir``
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


def package_dirs() -> list[Path]:
    """The folders of ``bpgrade`` and ``bplib`` (found without importing ``bplib``)."""
    dirs = [Path(__file__).resolve().parent]
    spec = importlib.util.find_spec("bplib")
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).resolve().parent)
    return dirs


def hidden_folders(course_root: Path | None, packages: list[Path]) -> list[Path]:
    """Folders the kernel must not see: the course root, the project that holds
    the packages (for an editable install elsewhere) and ``$HOME``."""
    hidden = [course_root] if course_root else []
    hidden += [p.parent for p in packages if (p.parent / "pyproject.toml").is_file()]
    hidden.append(Path.home())
    tmp = Path(tempfile.gettempdir()).resolve()
    out: list[Path] = []
    for p in sorted({h.resolve() for h in hidden}, key=lambda p: len(p.parts)):
        if p != Path("/") and not _inside(p, tmp) and not any(_inside(p, o) for o in out):
            out.append(p)
    return out


def bwrap_command(kernel: list[str], *, workdir: Path, runtime_dir: Path,
                  course_root: Path | None, prefix: Path | None = None,
                  packages: list[Path] | None = None,
                  env: dict[str, str] | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``kernel`` in the sandbox.

    Order matters: the tmpfs mounts hide folders, the binds after them re-expose
    the venv (``prefix``), ``bplib`` and ``bpgrade`` (``packages``), the connection folder
    (``runtime_dir``, read-write: the kernel's sockets) and ``workdir`` (read-only).
    """
    prefix = Path(prefix or sys.prefix)
    packages = [Path(p) for p in (packages or package_dirs())]
    env = os.environ if env is None else env
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev",
           "--proc", "/proc", "--tmpfs", tempfile.gettempdir()]
    for folder in hidden_folders(course_root, packages):
        cmd += ["--tmpfs", str(folder)]
    for folder in _python_folders(prefix):
        cmd += ["--ro-bind", str(folder), str(folder)]
    for folder in packages:
        cmd += ["--ro-bind", str(folder), str(folder)]
    cmd += ["--bind", str(runtime_dir), str(runtime_dir),
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
                    f"__import__('bpgrade.kernel').kernel.cap_output({int(output_limit)})")
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
                out.write(b"\n[bpgrade sandbox: the kernel's log is cut here]\n")
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
        "argv": [python or sys.executable, "-P", "-m", "bpgrade", "kernel", "-f",
                 "{connection_file}"],
        "display_name": "Python 3 (bpgrade sandbox)",
        "language": "python",
        "interrupt_mode": "message",
        "metadata": {"debugger": False},
    }


def install_kernel(user: bool = False, prefix: str | None = None) -> str:
    """Install the ``bpgrade-sandbox`` kernel spec; return the folder it went to.

    ``prefix=sys.prefix`` (the CLI's ``--sys-prefix``) puts it in the venv.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "kernel.json").write_text(json.dumps(kernel_spec(), indent=1) + "\n")
        return KernelSpecManager().install_kernel_spec(tmp, KERNEL_NAME, user=user,
                                                       prefix=prefix)


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    """``kernel -f FILE`` (the launcher) or ``install-kernel [--user | --sys-prefix]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m bpgrade", description=__doc__.split("\n")[0])
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

