"""The warm kernel (bpgrade/zygote.py): a kernel forked from the worker's zygote is in
the same sandbox as a cold one, and a student cannot see the one before.

Each test runs real kernels under real bubblewrap, through the very preprocessor
nbgrader runs (:class:`bpgrade.nbgrader_plugins.SandboxedExecute`) or the kernel
spec's launcher; the hostile corpus on the zygote path is in ``test_sandbox.py``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from conftest import require

from bpgrade import kernel, zygote
from bpgrade.nbgrader_plugins import SandboxedExecute

pytestmark = pytest.mark.slow  # real kernels in real sandboxes

# What a kernel reports about its sandbox (one JSON line).
PROBE = r'''
import json, os, re, resource, socket, sys, threading
def status():
    keys = ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh", "NoNewPrivs", "Uid", "Gid",
            "Groups", "Seccomp")
    return {k: v.strip() for k, v in (l.split(":", 1) for l in open("/proc/self/status"))
            if k in keys}
def mounts():  # mountinfo without the ids: root, mount point, options, type, source
    out = []
    for line in open("/proc/self/mountinfo"):
        left, right = line.split(" - ")
        f = left.split()
        out.append(" ".join([f[3], f[4], f[5], *right.split()]))
    return sorted(re.sub(r"bpgrade-kernel-\w+", "bpgrade-kernel-*", m) for m in out)
def fd_kinds():
    kinds = {}
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/self/fd/{fd}")
            kinds[int(fd)] = target.split(":")[0] if ":" in target else target
            if target.startswith("socket:"):
                s = socket.socket(fileno=int(fd))
                try:
                    if s.family == socket.AF_UNIX:
                        kinds[int(fd)] += ":" + re.sub(r"bpgrade-kernel-\w+",
                                                       "bpgrade-kernel-*", str(s.getsockname()))
                finally:
                    s.detach()
    return kinds
def tty():  # a new session has no controlling terminal (TIOCSTI could type into it)
    try:
        os.close(os.open("/dev/tty", os.O_RDWR))
    except OSError:
        return False
    return True
import contextlib
others = {}
for p in os.listdir("/proc"):
    if p.isdigit() and int(p) != os.getpid():
        with contextlib.suppress(OSError):
            others[p] = os.path.basename(open(f"/proc/{p}/cmdline", "rb").read()
                                         .split(b"\0")[0].decode())
print(json.dumps({
    "status": status(), "mounts": mounts(), "env": dict(os.environ),
    "rlimits": {n: resource.getrlimit(getattr(resource, n)) for n in dir(resource)
                if n.startswith("RLIMIT_")},
    "path": sys.path, "safe_path": sys.flags.safe_path, "cwd": os.getcwd(),
    "ns": {n: os.readlink(f"/proc/self/ns/{n}") for n in
           ("mnt", "pid", "net", "ipc", "uts", "cgroup", "user")},
    "cgroup": open("/proc/self/cgroup").read().split(), "others": others,
    "tmp": sorted(re.sub(r"bpgrade-kernel-\w+", "bpgrade-kernel-*", n)
                  for n in os.listdir("/tmp")),
    "fds": fd_kinds(), "umask": os.umask(0o022),
    "seen": {p: os.path.exists(p) for p in PATHS},
    "home": sorted(os.listdir(HOME)), "tty": tty(),
    "sid": str(os.getsid(0)) in [*others, str(os.getpid())],
    "threads": threading.active_count(), "main": __name__,
    "argv": [re.sub(r"bpgrade-kernel-\w+", "bpgrade-kernel-*", a) for a in sys.argv],
    "numpy": {"random": __import__("numpy").random.random()},
}))
'''


def _require_bwrap() -> None:
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")


def _run(cells: list[str], folder: Path, course_root: Path, *, use_zygote: bool,
         **traits) -> list[str]:
    """Run ``cells`` in one sandboxed kernel as nbgrader would; their printed text."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    ep = SandboxedExecute(course_root=str(course_root), timeout=60, zygote=use_zygote,
                          **traits)
    ep.preprocess(nb, {"metadata": {"path": str(folder)}})
    out = []
    for cell in nb.cells:
        texts = [o.get("text", "") if o.output_type == "stream"
                 else f"{o.get('ename')}: {o.get('evalue')}" for o in cell.outputs]
        out.append("".join(texts))
    return out


def _probe(folder: Path, course_root: Path, paths: list[str], *, use_zygote: bool) -> dict:
    text = _run([f"PATHS = {paths!r}\nHOME = {str(Path.home())!r}\n" + PROBE], folder,
                course_root,
                use_zygote=use_zygote)[0]
    try:
        return json.loads(text)
    except ValueError:
        pytest.fail(f"the probe did not report:\n{text}")


@pytest.fixture
def course(tmp_path):
    root = tmp_path / "course"
    folder = root / "submitted" / "ana" / "ex04_backward"
    folder.mkdir(parents=True)
    (root / "nbgrader_config.py").write_text("# the course's secret: hidden\n")
    (root / "source.txt").write_text("instructor's file\n")
    return root, folder


@pytest.fixture(autouse=True)
def _own_zygotes():
    """Every test starts its own zygotes and leaves none running."""
    zygote.stop_all()
    yield
    zygote.stop_all()


@pytest.mark.parametrize("budget", ["cgroup", "uid"])
def test_a_kernel_from_the_zygote_reports_the_same_sandbox_as_a_cold_one(
        course, budget, monkeypatch):
    """Read inside each kernel: capabilities, no_new_privs, uid/gid, mounts, namespaces,
    cgroup, environment, rlimits, sys.path, what it can see. ``uid``: a machine without
    cgroups, where the kernel runs as a uid of its own."""
    _require_bwrap()
    if budget == "uid":
        if os.geteuid() != 0:
            pytest.skip("the uid of its own needs a launcher run by root")
        monkeypatch.setenv(kernel.ENV_NO_CGROUP, "1")
    elif kernel.budget_problem()[0] is None:
        pytest.skip(f"no cgroup here: {kernel.budget_problem()[1]}")
    root, folder = course
    paths = [str(root / "source.txt"), str(root / "nbgrader_config.py"),
             str(Path(sys.prefix).parent / "pyproject.toml")]
    cold = _probe(folder, root, paths, use_zygote=False)
    assert not zygote._ZYGOTES, "the cold run started a zygote"
    warm = _probe(folder, root, paths, use_zygote=True)
    (z,) = zygote._ZYGOTES.values()
    assert warm["others"] != cold["others"], "the zygote was not used (its holder is missing)"
    paths += [z.path, str(z.folder)]
    again = _probe(folder, root, paths, use_zygote=True)  # a second fork, knowing the socket
    assert again["seen"] == dict.fromkeys(paths, False), again["seen"]
    assert len(zygote._ZYGOTES) == 1

    mine = {n: os.readlink(f"/proc/self/ns/{n}") for n in warm["ns"]}
    zygote_ns = {n: os.readlink(f"/proc/{z.proc.pid}/ns/{n}") for n in warm["ns"]}
    for name in ("mnt", "pid", "net", "ipc", "uts", "cgroup"):
        assert warm["ns"][name] != mine[name] and cold["ns"][name] != mine[name], name
        assert warm["ns"][name] != zygote_ns[name], name
    assert warm["ns"]["user"] == cold["ns"]["user"]

    status = dict(warm["status"])
    # The zygote's kernel drops the bounding and inheritable sets too; bubblewrap leaves
    # the bounding set whole, and with run_as CAP_SETUID and CAP_SETGID inheritable
    # (harmless under no_new_privs: the sandbox page of docs/ says why).
    for key in ("CapBnd", "CapInh"):
        assert status.pop(key) == "0000000000000000", warm["status"]
        cold["status"].pop(key)
    if budget == "uid":  # a uid of its own: UID_BASE + the launcher's pid, each time anew
        for st in (status, cold["status"]):
            for key in ("Uid", "Gid"):
                ids = {int(i) for i in st.pop(key).split()}
                assert len(ids) == 1 and ids.pop() >= kernel.UID_BASE, st
    assert status == cold["status"]
    assert status["CapEff"] == status["CapPrm"] == status["CapAmb"] == "0000000000000000"
    assert status["NoNewPrivs"] == "1"
    if budget == "cgroup":
        assert status["Uid"].split() == status["Gid"].split() == ["0"] * 4, status
    assert warm["mounts"] == cold["mounts"]
    assert warm["env"] == cold["env"]
    assert warm["rlimits"] == cold["rlimits"]
    assert warm["path"] == cold["path"] and warm["safe_path"] is True
    assert "" not in warm["path"] and str(folder) not in warm["path"]
    assert warm["cwd"] == cold["cwd"] == str(folder)
    assert warm["cgroup"] == cold["cgroup"]
    if budget == "cgroup":  # the cgroup namespace's root is the student's group
        assert all(line.endswith(":/") for line in warm["cgroup"]), warm["cgroup"]
    assert warm["tmp"] == cold["tmp"]
    assert cold["seen"] == warm["seen"] == dict.fromkeys(cold["seen"], False), warm["seen"]
    assert warm["home"] == cold["home"]  # $HOME: a tmpfs, and only the binds made in it
    assert not [n for n in warm["tmp"] if "zygote" in n]
    # no process of the grader: bubblewrap's init, and the zygote's holder
    assert sorted(cold["others"].values()) == ["bwrap"], cold["others"]
    assert sorted(warm["others"].values()) == ["bwrap", "cat"], warm["others"]
    # the same kinds of descriptor (how many of zmq's sockets are open varies)
    assert set(warm["fds"].values()) == set(cold["fds"].values())
    assert {k: v for k, v in warm["fds"].items() if int(k) < 3} == {
        k: v for k, v in cold["fds"].items() if int(k) < 3}
    assert not any("zygote" in kind for kind in warm["fds"].values()), warm["fds"]
    assert warm["umask"] == cold["umask"]
    assert warm["sid"] and cold["sid"], "the session is not the sandbox's own"
    assert warm["tty"] is cold["tty"] is False
    assert warm["argv"] == cold["argv"] and warm["main"] == cold["main"] == "__main__"
    assert warm["numpy"] != cold["numpy"]


STUDENT_A = r'''
import bplib, bpgrade.checks, numpy, os, subprocess, threading, time
drawn = numpy.random.random()
open("/tmp/left_by_a", "w").write("{token}")
for module in (numpy, bplib, bpgrade.checks):
    try:
        module.left_by_a = "{token}"
    except AttributeError:  # the checks are read-only (bpgrade/checks/_trust.py)
        pass
numpy.allclose = lambda *a, **k: True
bplib.rel_error = lambda *a, **k: 0.0
threading.Thread(target=time.sleep, args=(600,), daemon=True, name="a_thread").start()
subprocess.Popen(["sleep", "6064"], start_new_session=True)
print(os.getpid(), drawn, hasattr(numpy, "left_by_a"), hasattr(bplib, "left_by_a"))
'''

STUDENT_B = r'''
import bplib, bpgrade.checks, numpy, os, threading
seen = []
seen += ["file"] if os.path.exists("/tmp/left_by_a") else []
seen += [m.__name__ for m in (numpy, bplib, bpgrade.checks) if hasattr(m, "left_by_a")]
seen += ["allclose"] if numpy.allclose(1.0, 2.0) else []
seen += ["rel_error"] if bplib.rel_error(1.0, 2.0) == 0.0 else []
seen += [t.name for t in threading.enumerate() if t.name == "a_thread"]
for p in os.listdir("/proc"):
    if p.isdigit():
        try:
            if b"6064" in open(f"/proc/{p}/cmdline", "rb").read():
                seen.append("process " + p)
        except OSError:
            pass
print(seen, os.getpid(), numpy.random.random())
'''


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable mapping of process ``pid`` holds ``needle``."""
    chunk = 1 << 20
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or (len(fields) > 5 and fields[5].startswith("[v")):
                continue
            for at in range(start, end, chunk):  # overlapping reads: no needle cut in two
                try:
                    mem.seek(at)
                    if needle in mem.read(min(chunk + len(needle), end - at)):
                        return True
                except (OSError, OverflowError, ValueError):
                    continue
    return False


def test_a_student_cannot_see_the_one_before(course):
    """Student A leaves a file in /tmp, attributes on numpy and bplib (the checks are
    read-only), patched functions, a thread and a background process; student B, forked next from
    the same zygote, sees none of it, and the zygote holds nothing of A or B (not even
    the path of their folders, which their requests to the zygote named)."""
    _require_bwrap()
    root, _ = course
    token = os.urandom(8).hex()
    folder_a = root / "submitted" / f"student_{token}" / "ex04_backward"
    folder_a.mkdir(parents=True)
    token_b = os.urandom(8).hex()
    folder_b = root / "submitted" / f"student_{token_b}" / "ex04_backward"
    folder_b.mkdir(parents=True)
    a = _run([STUDENT_A.replace("{token}", token)], folder_a, root, use_zygote=True)[0]
    (z,) = zygote._ZYGOTES.values()
    b = _run([STUDENT_B], folder_b, root, use_zygote=True)[0]
    assert len(zygote._ZYGOTES) == 1 and z.alive(), "B was not forked from A's zygote"
    seen, _, random_b = b.split("] ")[0] + "]", *b.split("] ")[1].split()
    assert seen == "[]", b
    assert a.split()[2:] == ["True", "True"], a  # A did leave them
    assert a.split()[1] != random_b, "A and B drew the same numbers from numpy"
    assert _memory_holds(z.proc.pid, z.path.encode()), "the scan does not work"
    for name, secret in (("A", token), ("B", token_b)):
        assert not _memory_holds(z.proc.pid, secret.encode()), f"the zygote holds {name}'s data"
    assert not [p for p in _live() if "6064" in p], "A's background process outlived A"


def _live() -> list[str]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(OSError):
                out.append(p.name + " " + (p / "cmdline").read_bytes().replace(
                    b"\0", b" ").decode(errors="replace"))
    return out


def _start_launcher(tmp_path: Path, env: dict) -> tuple[subprocess.Popen, Path]:
    """``python -P -m bpgrade kernel -f FILE`` as jupyter_client starts it, its stderr
    piped; returns once the kernel has written its connection file's sockets."""
    from jupyter_client.connect import write_connection_file

    runtime = Path(tempfile.mkdtemp(prefix="bpgrade-kernel-"))
    conn = runtime / "kernel.json"
    write_connection_file(str(conn), transport="ipc", ip=str(runtime / "k"))
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    proc = subprocess.Popen([sys.executable, "-P", "-m", "bpgrade", "kernel", "-f",
                             str(conn)], cwd=work, env=env, stderr=subprocess.PIPE,
                            start_new_session=True)
    return proc, conn


def _kernels_of(z: zygote.Zygote) -> list[int]:
    """The kernels forked by ``z`` (its minders' children), by host pid."""
    out = []
    for minder in Path(f"/proc/{z.proc.pid}/task/{z.proc.pid}/children").read_text().split():
        with contextlib.suppress(OSError):
            out += [int(k) for k in
                    Path(f"/proc/{minder}/task/{minder}/children").read_text().split()]
    return out


def _wait_for(predicate, seconds: float = 60.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_the_kernel_dies_with_its_launcher(tmp_path):
    """The launcher is the process jupyter_client kills: with it go the kernel the zygote
    forked, its minder and its sandbox."""
    _require_bwrap()
    env = {**os.environ, **kernel.Limits().as_env()}
    z = zygote.zygote_for(env)
    env[zygote.ENV_ZYGOTE] = z.path
    proc, _ = _start_launcher(tmp_path, env)
    try:
        assert _wait_for(lambda: _kernels_of(z)), "no kernel was forked"
        (kid,) = _kernels_of(z)
        assert Path(f"/proc/{kid}/comm").read_text().strip() == "bpgrade-kernel"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert _wait_for(lambda: not Path(f"/proc/{kid}").exists() or
                     "Z" in Path(f"/proc/{kid}/stat").read_text().split(")")[1][:3], 20)
    assert _wait_for(lambda: not _kernels_of(z), 20)
    assert z.alive(), "the zygote must outlive a kernel"


def _launcher_log(tmp_path: Path, env: dict) -> str:
    proc, _ = _start_launcher(tmp_path, env)
    try:
        lines = []
        while len(lines) < 3:
            line = proc.stderr.readline().decode()
            if not line:
                break
            lines.append(line)
            if "kernel start" in line or "forked" in line:
                break
        return "".join(lines)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_a_kernel_whose_environment_is_not_the_zygotes_starts_cold_and_says_why(tmp_path):
    """The zygote imported numpy (its thread count), the checks (their classic mode) and
    the interpreter (the hash seed, the locale) under its own environment."""
    _require_bwrap()
    env = {**os.environ, **kernel.Limits().as_env(), "OPENBLAS_NUM_THREADS": "1"}
    z = zygote.zygote_for(env)
    log = _launcher_log(tmp_path, {**env, "OPENBLAS_NUM_THREADS": "2",
                                   zygote.ENV_ZYGOTE: z.path})
    assert "cold kernel start (the zygote could not start the kernel: the kernel's " \
           "environment is not the zygote's (OPENBLAS_NUM_THREADS differ))" in log, log
    log = _launcher_log(tmp_path, {**env, zygote.ENV_ZYGOTE: z.path})
    assert "forked from the worker's zygote" in log, log


def test_a_zygote_whose_socket_a_sandbox_would_see_is_not_used():
    """The socket must be in a folder every sandbox hides: never in one it binds."""
    _require_bwrap()
    env = {**os.environ, **kernel.Limits().as_env()}
    # not pytest's tmp_path: under xdist its socket path passes AF_UNIX's 108 bytes
    tmp_path = Path(tempfile.mkdtemp(prefix="bz-"))
    (tmp_path / "work").mkdir()
    z = zygote.Zygote(kernel.sandbox_env(env), folder=tmp_path / "work")
    try:
        log = _launcher_log(tmp_path, {**env, zygote.ENV_ZYGOTE: z.path})
    finally:
        z.stop()
        shutil.rmtree(tmp_path, ignore_errors=True)
    assert "cold kernel start (the zygote is not hidden from the sandbox" in log, log
    bound = [tmp_path / "work"]
    assert zygote.socket_problem(Path(z.path), bound)
    assert zygote.socket_problem(Path("/var/run/z.sock"), [])
    hidden = Path(tempfile.gettempdir()) / "bpgrade-zygote-1-x" / "sock"
    assert zygote.socket_problem(hidden, bound) is None


def test_without_a_zygote_the_launcher_says_the_kernel_starts_cold(tmp_path):
    _require_bwrap()
    env = {**os.environ, **kernel.Limits().as_env()}
    env.pop(zygote.ENV_ZYGOTE, None)
    log = _launcher_log(tmp_path, env)
    assert f"cold kernel start ({zygote.ENV_ZYGOTE} is not set)" in log, log


def test_the_zygote_ends_with_the_worker_that_started_it_and_takes_its_socket():
    """A worker killed with SIGKILL runs no clean-up: its zygote must notice by itself."""
    starter = ("import os, sys, time\nfrom bpgrade import zygote\n"
               "z = zygote.zygote_for(dict(os.environ))\n"
               "print(z.proc.pid, z.path, flush=True)\ntime.sleep(600)\n")
    worker = subprocess.Popen([sys.executable, "-c", starter], stdout=subprocess.PIPE,
                              text=True)
    try:
        pid, path = worker.stdout.readline().split()
        assert Path(path).is_socket()
    finally:
        worker.kill()
        worker.wait()
    assert _wait_for(lambda: not Path(f"/proc/{pid}").exists(), 20), "the zygote lives on"
    assert not Path(path).parent.exists(), "the zygote left its socket behind"


def test_the_folder_of_a_zygote_killed_with_its_worker_is_swept_by_the_next_one(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = tmp_path / f"{zygote.PREFIX}{dead}-abc"
    live = tmp_path / f"{zygote.PREFIX}{os.getpid()}-abc"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "zygote.sock").touch()
    zygote._sweep_stale(tmp_path)
    assert not stale.exists() and live.exists()
