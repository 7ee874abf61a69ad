"""The warm kernel: a zygote per grading worker that forks each student's kernel into a
fresh sandbox (issue #24).

A cold sandboxed kernel spends most of its start-up on the interpreter and on
importing IPython, ipykernel, zmq, numpy, ``bplib`` and ``bpgrade.checks``. The
zygote (``python -P -c`` :data:`BOOT`, one per grading worker and kernel
environment, started by :func:`zygote_for`) imports them once, *runs no student
code and starts no thread of its own*, and waits on a Unix socket in a private
folder that every sandbox hides (it is under the host's ``/tmp``, which the sandbox
covers with its own). Per student:

1. The launcher (:func:`bpgrade.kernel.run_kernel`, the process jupyter_client
   manages) starts bubblewrap exactly as for a cold kernel, with the same mounts,
   namespaces, cgroup, rlimits and capabilities, but running a *holder* (``cat``)
   instead of the kernel. When the holder echoes a byte back, the sandbox is built.
2. The launcher opens the holder's namespaces (``/proc/<pid>/ns/*``) and its
   cgroup's ``cgroup.procs`` and sends them, with its log pipe and the request
   (:func:`request_for`), to the zygote over the socket (``SCM_RIGHTS``).
3. The zygote forks; the zygote itself never reads a request, so nothing of one
   student stays in the memory the next one is forked from. The fork (the
   *minder*) checks the peer's uid and that the kernel's environment is the one the
   zygote imported under, enters the holder's PID namespace for its children and
   forks the kernel, then waits for it and reports its exit status to the launcher
   (and kills it if the launcher goes away).
4. The kernel (:func:`_become_kernel`) joins the student's cgroup, sets the
   rlimits (:meth:`~bpgrade.kernel.Limits.apply`), ``setns`` into the holder's
   cgroup, IPC, UTS, network and mount namespaces (its root and working folder are
   the sandbox's), starts a new session, takes the log pipe as stdout and stderr
   and ``/dev/null`` as stdin, drops every capability (bounding and ambient sets
   too), sets ``no_new_privs`` (and the ``run_as`` uid where there is no cgroup),
   takes the kernel's environment, reseeds numpy's global generator, closes every
   other descriptor and runs ipykernel's application in-process with the argv of
   :func:`bpgrade.kernel.kernel_argv`.

The launcher then waits for the status (or the kernel's end), kills bubblewrap
(whose PID-namespace init takes every process left in the sandbox with it) and
removes the cgroup, as for a cold kernel. Where the zygote cannot serve (no
bubblewrap, ``BPGRADE_SANDBOX_OFF``, no zygote named, a different environment, a
failed set-up) the launcher says why in its log and starts the kernel cold.

Standard library only, like :mod:`bpgrade.kernel`.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .kernel import ENV_ZYGOTE, Limits, sandbox_env  # noqa: F401

SOCKET_NAME = "sock"  # short: a Unix socket path holds at most 107 bytes
# entered by the kernel, in this order; the PID namespace by the minder, for its child
NAMESPACES = ("cgroup", "ipc", "uts", "net", "mnt")
CLONE = {"cgroup": 0x02000000, "ipc": 0x08000000, "uts": 0x04000000, "net": 0x40000000,
         "mnt": 0x00020000, "pid": 0x20000000}
# What every kernel imports before its first cell (bpgrade.kernel.KERNEL_BOOT), in its
# order. Not matplotlib: it reads its configuration folder when imported.
BOOT = ("import sys; sys.modules['debugpy'] = None\n"
        "from bpgrade.zygote import serve; serve(sys.argv[1])")
PRELOAD = ("bpgrade.checks", "ipykernel.kernelapp", "ipykernel.ipkernel",
           "ipykernel.zmqshell", "numpy.random",
           # and what ipykernel imports while it starts or runs a notebook's first cells
           # (modules only: none starts a thread or reads a file of the sandbox)
           "ipykernel.debugger", "IPython.core.debugger", "IPython.core.completerlib",
           "IPython.core.oinspect", "IPython.core.logger", "IPython.extensions.storemagic",
           "IPython.utils.wildcard", "tornado.platform.asyncio", "tornado.queues",
           "tornado.locks", "tornado.gen", "faulthandler", "unicodedata", "resource")
NOT_STARTED = 70  # the kernel's status when its set-up failed before ipykernel ran
_MAX_REQUEST = 1 << 20
_MAX_FDS = 16

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG, PR_SET_NAME, PR_CAPBSET_DROP = 1, 15, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
_CAP_VERSION_3 = 0x20080522


def _check(result: int, what: str) -> None:
    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _name(title: str) -> None:
    """The process's name in ``/proc/<pid>/comm`` (the benchmark tells them apart)."""
    _libc.prctl(PR_SET_NAME, title.encode()[:15], 0, 0, 0)


# ------------------------------------------------------------------ the zygote


def serve(path: str) -> None:
    """The zygote: import what every kernel imports, then fork a minder per connection
    on the socket ``path`` until the process that started it is gone."""
    parent = os.getppid()
    _name("bpgrade-zygote")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so that the socket goes too
    for module in PRELOAD:
        try:
            __import__(module)
        except ImportError:  # as KERNEL_BOOT: a kernel without bpgrade.checks still runs
            pass
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(64)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    try:
        _serve(listener, parent)
    finally:  # the worker is gone (or stops it): so is the socket and its folder
        with contextlib.suppress(OSError):
            os.unlink(path)
            os.rmdir(os.path.dirname(path))


def _serve(listener: socket.socket, parent: int) -> None:
    while os.getppid() == parent:
        readable, _, _ = select.select([listener], [], [], 1.0)
        with contextlib.suppress(ChildProcessError):
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        if not readable:
            continue
        try:
            conn, _ = listener.accept()
        except OSError:
            continue
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # as in a cold kernel
                listener.close()
                status = _mind(conn)
            except BaseException:  # noqa: BLE001 - a minder never returns into the loop
                with contextlib.suppress(BaseException):
                    import traceback

                    traceback.print_exc()
            finally:
                os._exit(status)
        conn.close()


def _send(conn: socket.socket, message: dict) -> None:
    with contextlib.suppress(OSError):
        conn.sendall(json.dumps(message).encode() + b"\n")


def _mind(conn: socket.socket) -> int:
    """The minder: take a request, fork the kernel into the sandbox, report on it."""
    _name("bpgrade-minder")
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    uid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                              struct.calcsize("3i")))[1]
    if uid != os.getuid():
        return 0
    data, fds, _flags, _addr = socket.recv_fds(conn, _MAX_REQUEST, _MAX_FDS)
    request = json.loads(data)
    fd = dict(zip(request["fds"], fds, strict=True))
    kernel_env = {k: str(v) for k, v in request["env"].items()}
    if kernel_env != _START_ENV:
        differ = sorted(k for k in set(kernel_env) | set(_START_ENV)
                        if kernel_env.get(k) != _START_ENV.get(k))
        _send(conn, {"started": False, "problem": "the kernel's environment is not the "
                     f"zygote's ({', '.join(differ)} differ)"})
        return 0
    ready_r, ready_w = os.pipe()
    _check(_libc.setns(fd["pid"], CLONE["pid"]), "setns pid")
    kid = os.fork()
    if kid == 0:
        conn.detach()
        os.close(ready_r)
        _become_kernel(request, fd, ready_w)  # never returns
    os.close(ready_w)
    for n in fds:
        os.close(n)
    started = os.read(ready_r, 1) == b"1"
    os.close(ready_r)
    _send(conn, {"started": started, "pid": kid})
    pidfd = os.pidfd_open(kid)
    while True:
        readable, _, _ = select.select([pidfd, conn], [], [])
        if pidfd in readable:
            break
        if not conn.recv(1):  # the launcher is gone: so is its kernel
            os.kill(kid, signal.SIGKILL)
            os.waitpid(kid, 0)
            return 0
    _, status = os.waitpid(kid, 0)
    code = os.waitstatus_to_exitcode(status)
    _send(conn, {"status": 128 - code if code < 0 else code})
    return 0


def _become_kernel(request: dict, fd: dict[str, int], ready_w: int) -> None:
    """In the fork that becomes the kernel: enter the sandbox, then run ipykernel."""
    status = NOT_STARTED
    try:
        _name("bpgrade-kernel")
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "PR_SET_PDEATHSIG")
        for key in request["fds"]:
            if key.startswith("cgroup:"):  # before the cgroup namespace: its root is the group
                os.write(fd[key], b"0")
        limits = Limits(**request["limits"])
        limits.apply()
        run_as = request.get("run_as")
        if run_as is not None:
            import resource

            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_tasks, limits.max_tasks))
        for n in NAMESPACES:
            if n in fd:
                _check(_libc.setns(fd[n], CLONE[n]), f"setns {n}")
        os.setsid()
        os.chdir(request["workdir"])
        null = os.open("/dev/null", os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(fd["log"], 1)
        os.dup2(fd["log"], 2)
        _drop_privileges(run_as)
        os.environ.clear()
        os.environ.update(request["env"])
        os.environ["PWD"] = request["workdir"]  # as bubblewrap's --chdir sets it
        _reseed()
        sys.argv = list(request["argv"])
        sys.orig_argv = list(request["orig_argv"])
        os.write(ready_w, b"1")
        os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    except BaseException:  # noqa: BLE001 - say why on the log pipe, if it is ours yet
        with contextlib.suppress(BaseException):
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
        os._exit(status)
    os._exit(_run_ipykernel())


def _drop_privileges(run_as: int | None) -> None:
    """Every capability gone for good (bounding, ambient, effective, permitted,
    inheritable), ``no_new_privs``, and the uid ``run_as`` where one is given."""
    last = int(Path("/proc/sys/kernel/cap_last_cap").read_text())
    for cap in range(last + 1):
        _check(_libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"PR_CAPBSET_DROP {cap}")
    _check(_libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "ambient")
    if run_as is not None:
        os.setgroups([])
        os.setresgid(run_as, run_as, run_as)
        os.setresuid(run_as, run_as, run_as)
    header = (ctypes.c_uint32 * 2)(_CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable: twice 32 bits
    _check(_libc.capset(header, data), "capset")
    _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "PR_SET_NO_NEW_PRIVS")


def _reseed() -> None:
    """numpy's global generator was seeded once, in the zygote (:data:`PRELOAD`):
    every kernel would draw the same numbers. A cold kernel seeds it from the system;
    so does this one. (Python's ``random`` reseeds itself after a fork.)"""
    random = sys.modules.get("numpy.random")
    if random is not None:
        random.seed()


def _run_ipykernel() -> int:
    """ipykernel's entry point, as the cold kernel's ``-c`` runs it; its exit status."""
    code = 0
    try:
        from ipykernel.kernelapp import launch_new_instance

        launch_new_instance()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # noqa: BLE001 - the interpreter would print it and exit 1
        import traceback

        traceback.print_exc()
        code = 1
    with contextlib.suppress(BaseException):
        atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    return code


_START_ENV = dict(os.environ)  # the zygote's (and so every kernel's) environment


# ------------------------------------------------------------------ the launcher's side


def socket_problem(path: Path, bound: list[Path]) -> str | None:
    """Why the zygote at ``path`` must not be used by a sandbox that binds ``bound``
    (it would reach the zygote's socket), or ``None``."""
    folder = path.resolve().parent
    tmp = Path(tempfile.gettempdir()).resolve()
    if not (folder == tmp or tmp in folder.parents):
        return f"its socket {path} is not under {tmp}, which the sandbox hides"
    for b in bound:
        b = b.resolve()
        if folder == b or b in folder.parents or folder in b.parents:
            return f"its socket's folder {folder} and the sandbox's {b} overlap"
    return None


def request_for(connection_file: str, workdir: Path, env: dict[str, str], limits: Limits,
                kernel: list[str], run_as: int | None) -> dict:
    """What the kernel needs from the launcher (descriptors travel beside it)."""
    return {"workdir": str(workdir), "env": sandbox_env(env),
            "limits": {f: getattr(limits, f) for _, f in Limits._ENV},
            "argv": ["-c", *kernel[4:]], "orig_argv": kernel, "run_as": run_as,
            "connection_file": connection_file}


def namespace_fds(pid: int) -> dict[str, int]:
    """The namespaces of ``pid`` (the holder), open: ``{"pid": fd, "mnt": fd, ...}``."""
    out = {}
    try:
        for n in ("pid", *NAMESPACES):
            out[n] = os.open(f"/proc/{pid}/ns/{n}", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        for fd in out.values():
            os.close(fd)
        raise
    return out


def holder_pid(bwrap_pid: int) -> int:
    """The holder: the child of bubblewrap's child (the sandbox's PID 1)."""
    pid = bwrap_pid
    for _ in range(2):
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if len(children) != 1:
            raise OSError(f"process {pid} has {len(children)} children, not one")
        pid = int(children[0])
    return pid


class Spawn:
    """One kernel forked by a zygote: the connection its minder reports on."""

    def __init__(self, path: str, request: dict, fds: dict[str, int]):
        self.conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.conn.settimeout(60)
        self.conn.connect(path)
        keys = list(fds)
        socket.send_fds(self.conn, [json.dumps({**request, "fds": keys}).encode()],
                        [fds[k] for k in keys])
        self.buffer = b""
        self.conn.settimeout(None)

    def message(self, timeout: float | None = None) -> dict | None:
        """The minder's next message; ``None`` if it closed the connection."""
        end = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = None if end is None else max(0.0, end - time.monotonic())
            readable, _, _ = select.select([self.conn], [], [], left)
            if not readable:
                raise TimeoutError("the zygote did not answer")
            chunk = self.conn.recv(65536)
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def close(self) -> None:
        self.conn.close()


# ------------------------------------------------------------------ the worker's side


class Zygote:
    """A running zygote: its process and its socket."""

    def __init__(self, env: dict[str, str], python: str | None = None,
                 folder: Path | None = None):
        _sweep_stale(Path(folder or tempfile.gettempdir()))
        self.folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-", dir=folder))
        self.path = str(self.folder / SOCKET_NAME)
        self.proc = subprocess.Popen(
            [python or sys.executable, "-P", "-c", BOOT, self.path], env=env, cwd="/",
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        line = self.proc.stdout.readline()
        if line != b"ready\n":
            self.stop()
            raise RuntimeError(f"the zygote did not start (exit status {self.proc.wait()})")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()
        shutil.rmtree(self.folder, ignore_errors=True)


PREFIX = "bpgrade-zygote-"  # the zygote's folder: PREFIX<pid of its worker>-<random>, 0700


def _sweep_stale(parent: Path) -> None:
    """Remove the folders of zygotes whose worker has died (a zygote killed with
    SIGKILL, as with its worker's process group, removes nothing)."""
    from .kernel import _alive

    for folder in parent.glob(PREFIX + "*"):
        pid = folder.name[len(PREFIX):].split("-")[0]
        if pid.isdigit() and not _alive(int(pid)) and not folder.is_symlink():
            shutil.rmtree(folder, ignore_errors=True)


_ZYGOTES: dict[tuple, Zygote] = {}


def zygote_for(env: dict[str, str]) -> Zygote:
    """This process's zygote for kernels with the environment ``env`` (the launcher's:
    the kernel's is :func:`bpgrade.kernel.sandbox_env` of it), started on first use and
    stopped when this process exits (or, at the latest, a second after it died)."""
    kernel_env = sandbox_env(env)
    key = tuple(sorted(kernel_env.items()))
    zygote = _ZYGOTES.get(key)
    if zygote is None or not zygote.alive():
        if zygote is not None:
            zygote.stop()
        zygote = _ZYGOTES[key] = Zygote(kernel_env)
    return zygote


@atexit.register
def stop_all() -> None:
    """Stop this process's zygotes."""
    for zygote in _ZYGOTES.values():
        zygote.stop()
    _ZYGOTES.clear()
