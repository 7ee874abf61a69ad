"""The sandboxed grading kernel: resource limits, the bubblewrap command, the kernel spec.

``python -P -m bpgrade kernel -f {connection_file}`` (the ``argv`` of the
``bpgrade-sandbox`` kernel spec that ``make setup`` installs with ``python -m bpgrade
install-kernel --sys-prefix``) starts ``ipykernel`` under bubblewrap: read-only
system, no network, private ``/tmp``, private process tree (every process dies with
the kernel), and of the course root only the submission's own folder (read-only),
the venv and the two packages ``bplib`` and ``bpgrade`` (read-only), a ``/tmp`` of
at most ``tmp_size`` bytes. The whole sandbox has a budget: the launcher puts the
kernel in a cgroup of its own (v2, else v1: :class:`Cgroup`) that caps the memory of
all its processes together and their number, and removes it (killing what is left)
when the kernel ends. Per process, memory (``RLIMIT_AS``), CPU time and file size
are limited too. Without bubblewrap, or without a writable cgroup, it prints a
warning and starts the kernel with what is left.

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
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import language
from .language import N_, text

KERNEL_NAME = "bpgrade-sandbox"
ENV_ROOT = "BPGRADE_COURSE_ROOT"
ENV_MEMORY = "BPGRADE_SANDBOX_MEMORY"
ENV_CPU = "BPGRADE_SANDBOX_CPU"
ENV_FSIZE = "BPGRADE_SANDBOX_FSIZE"
ENV_OUTPUT = "BPGRADE_SANDBOX_OUTPUT"  # characters a cell may print
ENV_OFF = "BPGRADE_SANDBOX_OFF"  # tests only: force the unsandboxed path
ENV_BUDGET = "BPGRADE_SANDBOX_BUDGET"  # bytes of memory over all the kernel's processes
ENV_TASKS = "BPGRADE_SANDBOX_TASKS"  # processes and threads of the kernel, all together
ENV_TMP = "BPGRADE_SANDBOX_TMP"  # bytes the private /tmp holds
ENV_REQUIRE_BUDGET = "BPGRADE_SANDBOX_REQUIRE_BUDGET"  # refuse to start without a budget
ENV_NO_CGROUP = "BPGRADE_SANDBOX_NO_CGROUP"  # tests: behave as on a machine without cgroups
# The benchmark's classic path (issue #24): the checks' watch runs its exact loop only
# (bpgrade/checks/_trust.py); read once, when the kernel imports the checks.
ENV_CLASSIC = "BPGRADE_CLASSIC_CHECKS"
# Without a cgroup, a kernel started by root runs as a uid of its own (UID_BASE + the
# launcher's pid: no other process has it), with RLIMIT_NPROC as its task limit.
UID_BASE = 2_000_000
UID_ON = ("bpgrade sandbox: no cgroup, so the kernel runs as uid {uid} (no other process "
          "has it) with at most {tasks} processes/threads (RLIMIT_NPROC); memory is limited "
          "per process only ({memory} each)")
GIB, MIB = 1024**3, 1024**2
HIDE_SIZE = 1024 * 1024  # the tmpfs that hide a folder: room for mount points only
LOG_CAP = 64 * 1024  # bytes of the kernel's own stdout/stderr passed on to nbgrader's log
ENV_ZYGOTE = "BPGRADE_ZYGOTE"  # the socket of the grading worker's zygote (bpgrade/zygote.py)
ZYGOTE_ON = "bpgrade sandbox: kernel forked from the worker's zygote (pid {pid}), not cold"
COLD = "bpgrade sandbox: cold kernel start ({})"
# What bubblewrap runs when the kernel comes from the zygote: it echoes one byte once the
# sandbox is built, then holds the sandbox's namespaces open until it is killed.
HOLDER = ["cat"]
WARNING = "WARNING: NO SANDBOX for student code ({}): it runs with resource limits only"
BUDGET_ON = ("bpgrade sandbox: whole-sandbox budget by {mechanism}: {memory} of memory over "
             "all the kernel's processes, {tasks} processes/threads, /tmp {tmp}")
BUDGET_WARNING = ("WARNING: NO BUDGET for the whole sandbox ({}): only per-process limits "
                  "apply (memory per process, not summed; no limit on the number of "
                  "processes)")
# ipykernel's entry point without its debugger: importing debugpy costs about 0.1 s of
# CPU at every kernel start, and nobody attaches a debugger to a grading kernel.
# The checks are imported before any cell runs, so that what they keep (a private copy of
# the builtins, the state of numpy they verify: bpgrade/checks/_trust.py) is taken before
# student code, even a cell above the notebook's install cell, could change it.
KERNEL_BOOT = ("import sys; sys.modules['debugpy'] = None\n"
               "try:\n    import bpgrade.checks\nexcept ImportError:\n    pass\n"
               "from ipykernel.kernelapp import launch_new_instance; launch_new_instance()")
_PASS_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
             "MKL_NUM_THREADS", "KERAS_BACKEND", "MPLBACKEND", "PYTHONHASHSEED", "JAX_PLATFORMS",
             "BPGRADE_LANG",  # the language of the checks' messages (bpgrade/language.py)
             ENV_CLASSIC)


# ---------------------------------------------------------------------------- limits


@dataclass(frozen=True)
class Limits:
    """Per-kernel resource limits (bytes and seconds; 0 means no limit)."""

    memory: int = 2 * GIB  # RLIMIT_AS of every process of the kernel (second line)
    cpu: int = 120  # RLIMIT_CPU, seconds of CPU per process
    file_size: int = 64 * MIB  # RLIMIT_FSIZE, the largest file a process may write
    memory_budget: int = 2 * GIB  # memory of all the kernel's processes (cgroup)
    max_tasks: int = 256  # processes and threads of the kernel, all together (cgroup)
    tmp_size: int = 256 * MIB  # size of the private /tmp (bwrap --size)

    _ENV = ((ENV_MEMORY, "memory"), (ENV_CPU, "cpu"), (ENV_FSIZE, "file_size"),
            (ENV_BUDGET, "memory_budget"), (ENV_TASKS, "max_tasks"), (ENV_TMP, "tmp_size"))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Limits:
        """Limits from ``BPGRADE_SANDBOX_MEMORY/CPU/FSIZE/BUDGET/TASKS/TMP``, defaults
        where unset."""
        env = os.environ if env is None else env
        d = cls()
        return cls(**{field: int(env.get(name, getattr(d, field))) for name, field in cls._ENV})

    def as_env(self) -> dict[str, str]:
        """The environment variables that :meth:`from_env` reads."""
        return {name: str(getattr(self, field)) for name, field in self._ENV}

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


# ---------------------------------------------------------------------------- budget


class BudgetUnavailable(RuntimeError):
    """No cgroup the launcher can create and limit here (the message says why)."""


def _size(n: int) -> str:
    """``2 GiB``, ``256 MiB``, ``1.5 GiB``: sizes as the reasons word them."""
    for unit, name in ((GIB, "GiB"), (MIB, "MiB"), (1024, "KiB")):
        if n >= unit:
            return f"{n / unit:g} {name}"
    return f"{n} bytes"


def budget_messages(limits: Limits, lang: str = language.ENGLISH) -> dict[str, str]:
    """The one-line reasons a student reads when the kernel reaches a whole-sandbox limit,
    in ``lang`` (the language of the notebook's checks)."""
    reasons = {
        "memory": text("your code used more than {size} in total across its processes (the "
                       "sandbox's memory budget): the system killed one of them",
                       size=_size(limits.memory_budget)),
        "tasks": text("your code started more than {n} processes/threads (the sandbox's "
                      "limit; the next one was refused: Resource temporarily unavailable)",
                      n=limits.max_tasks),
        "tmp": text("/tmp is full: the sandbox's /tmp holds at most {size}",
                    size=_size(limits.tmp_size)),
    }
    return {key: language.render(reason, None, lang) for key, reason in reasons.items()}


def _cgroup_mounts() -> dict[str, tuple[Path, str]]:
    """``{"memory": (mount point, root), "pids": ..., "unified": ...}`` from
    ``/proc/self/mountinfo`` (cgroup v1 hierarchies by controller, ``unified`` for v2)."""
    mounts: dict[str, tuple[Path, str]] = {}
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return mounts
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point = fields[3], Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup2":
            mounts.setdefault("unified", (point, root))
        elif tail[0] == "cgroup":
            for option in tail[2].split(","):
                if option in ("memory", "pids"):
                    mounts.setdefault(option, (point, root))
    return mounts


def _own_cgroups() -> dict[str, str]:
    """This process's cgroup paths: ``{"memory": ..., "pids": ..., "unified": ...}``."""
    own: dict[str, str] = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return own
    for line in lines:
        hierarchy, controllers, path = line.split(":", 2)
        if hierarchy == "0" and controllers == "":
            own["unified"] = path
        for name in controllers.split(","):
            if name in ("memory", "pids"):
                own[name] = path
    return own


def _folder(mounts, own, key: str) -> Path | None:
    if key not in mounts or key not in own:
        return None
    point, root = mounts[key]
    path = own[key]
    if root != "/" and (path == root or path.startswith(root.rstrip("/") + "/")):
        path = path[len(root.rstrip("/")):]
    elif root != "/":
        return None
    return point / path.lstrip("/")


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _write(path: Path, value: str) -> None:
    with open(path, "w") as fh:
        fh.write(value)


def _keyed(text: str) -> dict[str, int]:
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if value.strip().isdigit():
            out[key] = int(value)
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


@dataclass
class Cgroup:
    """The per-kernel cgroup: the whole sandbox's memory and number of tasks.

    ``version`` 2: one folder of a delegated cgroup v2 subtree (``memory.max``,
    ``memory.swap.max``, ``pids.max``). ``version`` 1: a folder in the ``memory``
    hierarchy (``memory.limit_in_bytes``, and ``memory.memsw.limit_in_bytes`` where
    swap is accounted) and one in the ``pids`` hierarchy (``pids.max``).
    """

    version: int
    folders: dict[str, str]  # controller ("memory", "pids", "unified") -> folder

    PREFIX = "bpgrade-"

    @property
    def mechanism(self) -> str:
        return f"cgroup v{self.version}"

    def paths(self) -> list[Path]:
        return [Path(p) for p in dict.fromkeys(self.folders.values())]

    @classmethod
    def create(cls, memory: int, tasks: int, name: str | None = None) -> Cgroup:
        """Create and limit a new cgroup beside or below this process's own.

        Raises :class:`BudgetUnavailable` (with the reason) where there is none to make.
        """
        if os.environ.get(ENV_NO_CGROUP):
            raise BudgetUnavailable(f"{ENV_NO_CGROUP} is set")
        name = cls.PREFIX + (name or f"{os.getpid()}-{os.urandom(3).hex()}")
        mounts, own = _cgroup_mounts(), _own_cgroups()
        problems = []
        base = _folder(mounts, own, "unified")
        if base is not None:
            for parent in (base, base.parent):  # a leaf has no processes only at the root
                enabled = _read(parent / "cgroup.subtree_control").split()
                if {"memory", "pids"} <= set(enabled) and _inside(parent, mounts["unified"][0]):
                    try:
                        return cls._make(2, {"unified": parent / name}, memory, tasks)
                    except OSError as exc:
                        problems.append(f"cgroup v2 {parent}: {exc.strerror or exc}")
                        break
            else:
                problems.append("cgroup v2: memory and pids are not delegated to "
                                f"{base} or its parent")
        mem, pids = _folder(mounts, own, "memory"), _folder(mounts, own, "pids")
        if mem is not None and pids is not None:
            try:
                return cls._make(1, {"memory": mem / name, "pids": pids / name}, memory, tasks)
            except OSError as exc:
                problems.append(f"cgroup v1 {mem}, {pids}: {exc.strerror or exc}")
        else:
            problems.append("cgroup v1: no " + " and no ".join(
                k for k, v in (("memory", mem), ("pids", pids)) if v is None) + " hierarchy")
        raise BudgetUnavailable("; ".join(problems))

    @classmethod
    def _make(cls, version: int, folders: dict[str, Path], memory: int, tasks: int) -> Cgroup:
        for folder in dict.fromkeys(folders.values()):
            _sweep_stale(folder.parent)
        group = cls(version, {k: str(v) for k, v in folders.items()})
        try:
            for folder in group.paths():
                folder.mkdir()
            if version == 2:
                d = Path(group.folders["unified"])
                if memory:
                    _write(d / "memory.max", str(memory))
                    if (d / "memory.swap.max").exists():
                        _write(d / "memory.swap.max", "0")
                if tasks:
                    _write(d / "pids.max", str(tasks))
            else:
                m, p = Path(group.folders["memory"]), Path(group.folders["pids"])
                if memory:
                    _write(m / "memory.limit_in_bytes", str(memory))
                    if (m / "memory.memsw.limit_in_bytes").exists():  # swap counts too
                        _write(m / "memory.memsw.limit_in_bytes", str(memory))
                    else:
                        try:
                            _write(m / "memory.swappiness", "0")
                        except OSError:
                            pass
                if tasks:
                    _write(p / "pids.max", str(tasks))
        except OSError:
            group.remove()
            raise
        return group

    def add(self, pid: int = 0) -> None:
        """Move a process (default: this one) into the group. Call it in the child,
        before ``exec``: everything it starts afterwards is in the group too."""
        for folder in self.paths():
            _write(folder / "cgroup.procs", str(pid or os.getpid()))

    def pids(self) -> set[int]:
        found: set[int] = set()
        for folder in self.paths():
            found |= {int(p) for p in _read(folder / "cgroup.procs").split() if p.isdigit()}
        return found

    def events(self) -> dict[str, int]:
        """``oom_kill`` (processes the memory limit killed), ``memory_max`` (times the
        limit was hit), ``tasks_max`` (fork/clone refused by the task limit), ``peak``."""
        if self.version == 2:
            d = Path(self.folders["unified"])
            mem, pids = _keyed(_read(d / "memory.events")), _keyed(_read(d / "pids.events"))
            peak = _read(d / "memory.peak").strip()
            return {"oom_kill": mem.get("oom_kill", 0), "memory_max": mem.get("max", 0),
                    "tasks_max": pids.get("max", 0), "peak": int(peak) if peak.isdigit() else 0}
        m, p = Path(self.folders["memory"]), Path(self.folders["pids"])
        oom = _keyed(_read(m / "memory.oom_control"))
        failcnt = _read(m / "memory.failcnt").strip()
        peak = _read(m / "memory.max_usage_in_bytes").strip()
        out = {"memory_max": int(failcnt) if failcnt.isdigit() else 0,
               "tasks_max": _keyed(_read(p / "pids.events")).get("max", 0),
               "peak": int(peak) if peak.isdigit() else 0}
        # Linux < 4.13 has no oom_kill count: then an OOM is "under_oom" or a failure
        out["oom_kill"] = oom.get("oom_kill", oom.get("under_oom", 0))
        return out

    def kill(self, timeout: float = 5.0) -> bool:
        """SIGKILL every process in the group until it is empty; ``True`` if it is."""
        end = time.monotonic() + timeout
        unified = Path(self.folders.get("unified", "/nonexistent")) / "cgroup.kill"
        while True:
            pids = self.pids()
            if not pids:
                return True
            if unified.exists():
                try:
                    _write(unified, "1")
                except OSError:
                    pass
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            if time.monotonic() > end:
                return False
            time.sleep(0.01)

    def remove(self, timeout: float = 5.0) -> bool:
        """Kill what is left in the group, then remove its folders; ``True`` if gone."""
        self.kill(timeout)
        end, gone = time.monotonic() + timeout, True
        for folder in self.paths():
            while folder.exists():
                try:
                    folder.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    if time.monotonic() > end:
                        gone = False
                        break
                    self.kill(0.1)
                    time.sleep(0.01)
        return gone

    def as_dict(self) -> dict:
        return {"version": self.version, "folders": self.folders}

    @classmethod
    def from_dict(cls, data: dict) -> Cgroup | None:
        """A group described by :meth:`as_dict`; ``None`` if it is not a bpgrade
        group under ``/sys/fs/cgroup`` (the file it came from is only half trusted)."""
        try:
            version, folders = int(data["version"]), dict(data["folders"])
        except (KeyError, TypeError, ValueError):
            return None
        for value in folders.values():
            p = Path(str(value))
            if (not p.is_absolute() or ".." in p.parts or not p.name.startswith(cls.PREFIX)
                    or not _inside(p, Path("/sys/fs/cgroup"))):
                return None
        keys = {"unified"} if version == 2 else {"memory", "pids"}
        return cls(version, {k: str(v) for k, v in folders.items()}) \
            if set(folders) == keys else None


def _sweep_stale(parent: Path) -> None:
    """Remove the groups of launchers that died without removing theirs (a launcher
    killed with SIGKILL, as jupyter_client's immediate shutdown does)."""
    try:
        children = list(parent.iterdir())
    except OSError:
        return
    for child in children:
        pid = child.name[len(Cgroup.PREFIX):].split("-")[0]
        if child.name.startswith(Cgroup.PREFIX) and pid.isdigit() and not _alive(int(pid)):
            if not _read(child / "cgroup.procs").split():
                try:
                    child.rmdir()
                except OSError:
                    pass


def budget_problem() -> tuple[str | None, str | None]:
    """``(mechanism, None)`` where the launcher can give a kernel a whole-sandbox budget
    (``"cgroup v2"`` or ``"cgroup v1"``), else ``(None, why not)``. Creates and removes
    a group to find out."""
    try:
        group = Cgroup.create(0, 0)
    except BudgetUnavailable as exc:
        return None, str(exc)
    group.remove()
    return group.mechanism, None


def budget_file(connection_file: str | Path) -> Path:
    """Where the launcher says which group the kernel is in and, once the kernel has
    ended, what it reached (``kernel.json`` -> ``kernel.budget.json``)."""
    return Path(connection_file).with_suffix(".budget.json")


def _write_new(path: Path, text: str) -> None:
    """Write ``path`` afresh: whatever the kernel left there (a symlink, a file) is
    replaced, never followed."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def read_budget_file(path: Path) -> dict:
    """The launcher's budget file, ``{}`` if missing or unreadable."""
    try:
        if path.is_symlink() or path.stat().st_size > 65536:
            return {}
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


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
                  env: dict[str, str] | None = None, tmp_size: int = 0,
                  run_as: int | None = None) -> list[str]:
    """The ``bwrap`` command line that runs ``kernel`` in the sandbox.

    Order matters: the tmpfs mounts hide folders, the binds after them re-expose
    the venv (``prefix``), ``bplib`` and ``bpgrade`` (``packages``), the connection folder
    (``runtime_dir``, read-write: the kernel's sockets) and ``workdir`` (read-only).
    ``tmp_size`` caps the private ``/tmp`` (``--size``, which applies to the next
    ``--tmpfs``); the tmpfs that only hide folders get ``HIDE_SIZE``.

    ``run_as`` (a uid; only when the launcher is root and has no cgroup): the kernel
    drops to that uid through ``setpriv`` (bubblewrap keeps only the two capabilities
    it needs for that, and they are gone once it has switched), with a ``/tmp`` that
    uid can write.
    """
    prefix = Path(prefix or sys.prefix)
    packages = [Path(p) for p in (packages or package_dirs())]
    env = os.environ if env is None else env
    cmd = [shutil.which("bwrap") or "bwrap", "--ro-bind", "/", "/", "--dev", "/dev",
           "--proc", "/proc"]
    cmd += [*(["--perms", "1777"] if run_as is not None else []),
            *(["--size", str(tmp_size)] if tmp_size else []), "--tmpfs", tempfile.gettempdir()]
    hidden = hidden_folders(course_root, packages)
    for folder in hidden:
        cmd += [*(["--size", str(HIDE_SIZE)] if tmp_size else []), "--tmpfs", str(folder)]
    if run_as is not None:  # folders bwrap makes on the way to a bind are root's, 0700
        cmd += _traversable([*_python_folders(prefix), *packages, Path(runtime_dir),
                             Path(workdir)], [*hidden, Path(tempfile.gettempdir()).resolve()])
    for folder in _python_folders(prefix):
        cmd += ["--ro-bind", str(folder), str(folder)]
    for folder in packages:
        cmd += ["--ro-bind", str(folder), str(folder)]
    cmd += ["--bind", str(runtime_dir), str(runtime_dir),
            "--ro-bind", str(workdir), str(workdir), "--chdir", str(workdir)]
    cmd += ["--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-pid",
            "--unshare-cgroup-try", "--die-with-parent", "--new-session", "--clearenv",
            # bwrap started by root keeps every capability unless told: with them the
            # kernel could remount /sys/fs/cgroup and leave its budget
            "--cap-drop", "ALL"]
    if run_as is not None:
        cmd += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
        kernel = [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={run_as}",
                  f"--regid={run_as}", "--clear-groups", "--", *kernel]
    for name, value in sandbox_env(env).items():
        cmd += ["--setenv", name, value]
    return [*cmd, "--", *kernel]


def sandbox_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """The whole environment of a sandboxed kernel (bubblewrap clears the rest): the
    variables of :data:`_PASS_ENV` that ``env`` sets, and a few of its own."""
    env = os.environ if env is None else env
    out = {name: env[name] for name in _PASS_ENV if name in env}
    # JPY_PARENT_PID=1: ipykernel neither polls its parent (which is the namespace's
    # init, pid 1) nor prints its "started outside a notebook" banner.
    out.update({"JPY_PARENT_PID": "1", "HOME": "/tmp", "IPYTHONDIR": "/tmp/.ipython",
                "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONDONTWRITEBYTECODE": "1"})
    return out


def _traversable(targets: list[Path], tmpfs: list[Path]) -> list[str]:
    """``--perms 0755 --dir`` for each folder between a tmpfs and a bind target below it,
    so that a kernel with a uid of its own can walk down to what is bound there."""
    made: list[Path] = []
    for target in targets:
        for parent in reversed(Path(target).parents):
            if parent not in made and any(_inside(parent, t) and parent != t for t in tmpfs):
                made.append(parent)
    return [arg for folder in made for arg in ("--perms", "0755", "--dir", str(folder))]


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
    """The launcher: start the (sandboxed) kernel in its own cgroup, relay a bounded log,
    remove the cgroup, return the kernel's status.

    The kernel's own stdout and stderr (not the notebook's outputs, which travel
    over the kernel protocol) are passed on up to :data:`LOG_CAP` bytes. Which
    protection applies is the log's first line. The budget file (:func:`budget_file`)
    names the group before the kernel starts and holds its counters once it ended.
    """
    # The launcher is started in a session of its own (jupyter_client does that), so a
    # killed grader (SIGKILL to its process group, a Dask worker that dies) would leave it
    # and its kernel running, holding the grader's output pipe: it dies with its parent.
    _die_with_parent()
    if os.getppid() == 1:  # the parent was gone before the line above took effect
        return 128 + signal.SIGKILL
    workdir = Path.cwd().resolve()
    limits = Limits.from_env()
    kernel = kernel_argv(connection_file, int(os.environ.get(ENV_OUTPUT, 0)))
    problem = bwrap_problem()
    group, status_path = _start_budget(limits, connection_file)
    if group is None and os.environ.get(ENV_REQUIRE_BUDGET):
        return 3
    run_as = None
    zygote, cold_why = os.environ.get(ENV_ZYGOTE), None
    if problem:
        print(WARNING.format(problem), file=sys.stderr, flush=True)
        cmd, cold_why = kernel, "no sandbox"
    else:
        if group is None and limits.max_tasks and os.geteuid() == 0:
            run_as = _own_uid(connection_file, limits, status_path)
        sandbox = {"workdir": workdir, "runtime_dir": Path(connection_file).resolve().parent,
                   "course_root": course_root_of(workdir), "tmp_size": limits.tmp_size,
                   "run_as": run_as}
        cmd = bwrap_command(kernel, **sandbox)
        if not zygote:
            cold_why = f"{ENV_ZYGOTE} is not set"

    def child_setup() -> None:
        _die_with_parent()
        if group is not None:
            group.add()  # before exec: bwrap and everything it starts are in the group
        limits.apply()
        if run_as is not None:  # counts the processes of that uid, once setpriv switched
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_tasks, limits.max_tasks))

    def start() -> subprocess.Popen:
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,  # noqa: PLW1509
                                stdin=subprocess.DEVNULL, preexec_fn=child_setup)

    if zygote and cold_why is None:
        from .zygote import request_for

        request = request_for(connection_file, workdir, dict(os.environ), limits, kernel,
                              run_as)
        try:
            status = _zygote_kernel(zygote, bwrap_command(HOLDER, **sandbox), child_setup,
                                    group, request, [*_bound(sandbox)])
        except BaseException:
            if group is not None:
                group.kill()
                _end_budget(group, status_path, limits)
            raise
        if isinstance(status, int):
            if group is not None:
                group.kill()
                _end_budget(group, status_path, limits)
            return status
        cold_why = status
        if group is not None:
            group.kill()  # what the failed start left: the holder's sandbox
    print(COLD.format(cold_why), file=sys.stderr, flush=True)
    try:
        proc = start()
    except subprocess.SubprocessError as exc:  # the child could not join its group
        if group is None:
            raise
        group.remove()
        group = None
        if os.environ.get(ENV_REQUIRE_BUDGET):
            print(f"bpgrade sandbox: refusing to start: the kernel could not join its cgroup "
                  f"({exc})", file=sys.stderr, flush=True)
            return 3
        print(BUDGET_WARNING.format(f"the kernel could not join its cgroup: {exc}"),
              file=sys.stderr, flush=True)
        _write_new(status_path, json.dumps({"mechanism": None, "problem": str(exc)}))
        proc = start()
    signal.signal(signal.SIGTERM, lambda *_: proc.kill())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        _relay(proc.stdout, LOG_CAP)
        rc = proc.wait()
    finally:
        if group is not None:
            group.kill()  # stragglers (and a fork bomb) end here
            _end_budget(group, status_path, limits)
    return 128 - rc if rc < 0 else rc


def _own_uid(connection_file: str, limits: Limits, status_path: Path) -> int:
    """The uid a kernel without a cgroup runs as; its connection folder and file become
    its own (the kernel creates its sockets there)."""
    uid = UID_BASE + os.getpid()
    runtime = Path(connection_file).resolve().parent
    for path in (runtime, Path(connection_file).resolve()):
        os.chown(path, uid, uid)
    print(UID_ON.format(uid=uid, tasks=limits.max_tasks, memory=_size(limits.memory)),
          file=sys.stderr, flush=True)
    try:
        _write_new(status_path, json.dumps({"mechanism": "uid", "uid": uid}))
    except OSError:
        pass
    return uid


def _start_budget(limits: Limits, connection_file: str) -> tuple[Cgroup | None, Path]:
    """Create the kernel's cgroup (or say in the log why there is none)."""
    path = budget_file(connection_file)
    group, problem = None, None
    if not (limits.memory_budget or limits.max_tasks):
        problem = "no memory budget and no task limit are set"
    else:
        try:
            group = Cgroup.create(limits.memory_budget, limits.max_tasks)
        except BudgetUnavailable as exc:
            problem = str(exc)
    if group is None:
        if os.environ.get(ENV_REQUIRE_BUDGET):
            print(f"bpgrade sandbox: refusing to start: no whole-sandbox budget ({problem})",
                  file=sys.stderr, flush=True)
        else:
            print(BUDGET_WARNING.format(problem), file=sys.stderr, flush=True)
        info = {"mechanism": None, "problem": problem}
    else:
        print(BUDGET_ON.format(mechanism=group.mechanism, memory=_size(limits.memory_budget),
                               tasks=limits.max_tasks, tmp=_size(limits.tmp_size)),
              file=sys.stderr, flush=True)
        info = {"mechanism": group.mechanism, "group": group.as_dict()}
    try:
        _write_new(path, json.dumps(info))
    except OSError:
        pass
    return group, path


def _end_budget(group: Cgroup, path: Path, limits: Limits) -> None:
    """Record what the kernel reached, then remove its group (it is empty by now)."""
    events = group.events()
    group.remove()
    try:
        _write_new(path, json.dumps({"mechanism": group.mechanism, "group": group.as_dict(),
                                     "ended": True, "events": events}))
    except OSError:
        pass
    reasons = budget_messages(limits)
    for key, reason in (("oom_kill", "memory"), ("tasks_max", "tasks")):
        if events.get(key):
            print(f"bpgrade sandbox: {reasons[reason]}", file=sys.stderr, flush=True)


def _relay(stream, cap: int) -> None:
    log = _Log(cap)
    while chunk := stream.read1(65536):
        log.write(chunk)


class _Log:
    """The kernel's own stdout and stderr passed on to the launcher's stderr, up to
    ``cap`` bytes."""

    def __init__(self, cap: int):
        self.cap, self.passed = cap, 0

    def write(self, chunk: bytes) -> None:
        out = sys.stderr.buffer
        if self.passed < self.cap:
            out.write(chunk[: self.cap - self.passed])
            out.flush()
            self.passed += len(chunk)
            if self.passed >= self.cap:
                out.write(b"\n[bpgrade sandbox: the kernel's log is cut here]\n")
                out.flush()


def _bound(sandbox: dict) -> list[Path]:
    """The host folders a sandbox made with ``sandbox`` (the keywords of
    :func:`bwrap_command`) shows its kernel."""
    return [*_python_folders(Path(sys.prefix)), *package_dirs(), sandbox["runtime_dir"],
            sandbox["workdir"]]


def _zygote_kernel(path: str, holder: list[str], child_setup, group: Cgroup | None,
                   request: dict, bound: list[Path]) -> int | str:
    """Run the kernel forked by the zygote at ``path`` in a sandbox that bubblewrap builds
    around ``holder`` (:mod:`bpgrade.zygote`); the kernel's exit status as
    :func:`run_kernel` returns it, or why the kernel must start cold instead (a str:
    nothing of the student's has run then)."""
    from .zygote import Spawn, holder_pid, namespace_fds, socket_problem

    problem = socket_problem(Path(path), bound)
    if problem:
        return f"the zygote is not hidden from the sandbox: {problem}"
    log_r, log_w = os.pipe()
    log = _Log(LOG_CAP)
    try:
        proc = subprocess.Popen(holder, stdin=subprocess.PIPE, stdout=subprocess.PIPE,  # noqa: PLW1509
                                stderr=log_w, preexec_fn=child_setup)
    except BaseException:
        os.close(log_r)
        os.close(log_w)
        raise
    signal.signal(signal.SIGTERM, lambda *_: proc.kill())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    fds: dict[str, int] = {}
    spawn, first = None, None
    try:
        proc.stdin.write(b"\n")
        proc.stdin.flush()
        if proc.stdout.read(1) != b"\n":
            raise OSError("the sandbox did not start")
        fds = namespace_fds(holder_pid(proc.pid))
        fds["log"] = log_w
        for controller, folder in (group.folders.items() if group is not None else ()):
            fds[f"cgroup:{controller}"] = os.open(Path(folder) / "cgroup.procs",
                                                  os.O_WRONLY | os.O_CLOEXEC)
        spawn = Spawn(path, request, fds)
        first = spawn.message(timeout=120)
    except (OSError, ValueError) as exc:
        first = {"started": False, "problem": str(exc)}
    finally:
        for fd in {*fds.values(), log_w}:
            os.close(fd)
    if not first or not first.get("started"):
        proc.kill()
        proc.wait()
        while chunk := os.read(log_r, 65536):
            log.write(chunk)
        os.close(log_r)
        if spawn is not None:
            spawn.close()
        return "the zygote could not start the kernel: " + (
            (first or {}).get("problem") or "its set-up failed (the log above says why)")
    print(ZYGOTE_ON.format(pid=first.get("pid")), file=sys.stderr, flush=True)
    status = None
    while status is None:
        readable, _, _ = select.select([log_r, spawn.conn], [], [])
        if log_r in readable:
            log.write(os.read(log_r, 65536))
        if spawn.conn in readable or spawn.buffer:
            message = spawn.message()
            status = 128 + signal.SIGKILL if message is None else message.get("status")
    spawn.close()
    proc.kill()  # the sandbox's init goes, and every process left in it
    proc.wait()
    while chunk := os.read(log_r, 65536):
        log.write(chunk)
    os.close(log_r)
    return int(status)


def death_reason(status: int | None, limits: Limits, events: dict | None = None,
                 lang: str = language.ENGLISH) -> str:
    """Words for a kernel's exit status, as :func:`run_kernel` returns it, and for what
    its cgroup reached (``events``, :meth:`Cgroup.events`) by then, in ``lang``."""
    events = events or {}
    if events.get("oom_kill"):
        return budget_messages(limits, lang)["memory"]
    if events.get("tasks_max") and status is not None and status <= 128:
        return budget_messages(limits, lang)["tasks"]
    if status is None:
        reason = N_("the kernel stopped answering")
    elif status == 128 + signal.SIGXCPU:
        reason = text("the kernel used more than its CPU time limit ({cpu} s)", cpu=limits.cpu)
    elif status == 128 + signal.SIGKILL:
        reason = text("the kernel was killed (CPU limit of {cpu} s, or memory limit of "
                      "{memory} GiB)", cpu=limits.cpu, memory=format(limits.memory / GIB, "g"))
    elif status > 128:
        reason = text("the kernel was killed by signal {signal}", signal=status - 128)
    else:
        reason = text("the kernel exited with status {status} (os._exit, sys.exit or a "
                      "crash?)", status=status)
    return language.render(reason, None, lang)


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
    sub.add_parser("sandbox-check", help="say whether bubblewrap can sandbox kernels here, "
                   "and which cgroup holds their budget")
    args = parser.parse_args(argv)
    if args.command == "kernel":
        return run_kernel(args.connection_file)
    if args.command == "install-kernel":
        path = install_kernel(user=args.user, prefix=sys.prefix if args.sys_prefix else None)
        print(f"installed kernel spec {KERNEL_NAME!r} in {path}")
        return 0
    problem = bwrap_problem()
    print(f"sandbox: {'unavailable: ' + problem if problem else 'bubblewrap works'}")
    mechanism, why_not = budget_problem()
    print(f"budget of the whole sandbox: {mechanism or 'unavailable: ' + str(why_not)}")
    return 1 if problem else 0


if __name__ == "__main__":
    sys.exit(main())

