"""The whole sandbox's budget: a cgroup per kernel (memory of all its processes, number of
processes and threads) and a capped private ``/tmp``.

Fast tests run the cgroup helper of :mod:`bpgrade.kernel` on real processes, and check
the bubblewrap command and the launcher's log line. The slow test grades the three
budget cases of ``tests/hostile/`` (memory across processes, fork bomb, full ``/tmp``)
between two correct students with real ``nbgrader autograde``, in a course with small
budgets, and checks that the machine gets its memory back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import require

from bpgrade import kernel

MIB = kernel.MIB


def _require_cgroup() -> None:
    mechanism, problem = kernel.budget_problem()
    require(problem, "a writable cgroup (v2 with memory and pids delegated, or v1 "
                     "memory and pids) for the whole-sandbox budget")


def _python(code: str, group: kernel.Cgroup, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code], preexec_fn=group.add, **kw)  # noqa: PLW1509


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    status = Path(f"/proc/{pid}/status")
    return "zombie" in (status.read_text() if status.exists() else "zombie")


# --------------------------------------------------------------------- the cgroup helper


def test_the_memory_budget_kills_a_process_of_the_group_that_allocates_beyond_it():
    _require_cgroup()
    group = kernel.Cgroup.create(96 * MIB, 32)
    try:
        assert all(Path(p).is_dir() for p in group.folders.values())
        sleeper = _python("import time; time.sleep(600)", group)
        hog = _python("b = b'x' * (400 * 1024 * 1024); print('survived')", group,
                      stdout=subprocess.PIPE)
        out, _ = hog.communicate(timeout=60)
        assert hog.returncode == -signal.SIGKILL, (hog.returncode, out)
        assert b"survived" not in out
        assert group.events()["oom_kill"] >= 1, group.events()
        assert sleeper.pid in group.pids() and sleeper.poll() is None
    finally:
        assert group.remove(), "the group could not be removed"
    sleeper.wait(timeout=10)  # killed by remove()
    assert sleeper.returncode == -signal.SIGKILL
    assert not any(Path(p).exists() for p in group.folders.values())


def test_the_task_limit_refuses_a_fork_and_remove_ends_every_child(tmp_path):
    _require_cgroup()
    group = kernel.Cgroup.create(256 * MIB, 8)
    code = ("import os, time\nkids = []\ntry:\n    while len(kids) < 100:\n"
            "        pid = os.fork()\n        if pid == 0:\n            time.sleep(600)\n"
            "            os._exit(0)\n        kids.append(pid)\nexcept OSError as exc:\n"
            "    print(len(kids), exc, flush=True)\n")
    try:
        with open(tmp_path / "out", "w") as fh:  # the children keep a pipe open
            _python(code, group, stdout=fh).wait(timeout=60)
        out = (tmp_path / "out").read_text()
        assert "Resource temporarily unavailable" in out, out
        assert int(out.split()[0]) < 8
        children = group.pids()
        assert children, "the forked children should still be sleeping in the group"
        assert group.events()["tasks_max"] >= 1, group.events()
    finally:
        assert group.remove()
    assert all(_gone(pid) for pid in children), "a process of the group outlived it"


def test_a_group_whose_launcher_died_is_swept_by_the_next_one():
    _require_cgroup()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    stale = kernel.Cgroup.create(0, 0, name=f"{dead}-stale")
    fresh = kernel.Cgroup.create(0, 0)
    try:
        assert not any(Path(p).exists() for p in stale.folders.values())
    finally:
        fresh.remove()
        stale.remove()


def test_a_group_named_by_the_budget_file_must_be_a_bpgrade_group_under_sys_fs_cgroup():
    good = {"version": 1, "folders": {"memory": "/sys/fs/cgroup/memory/x/bpgrade-1-a",
                                      "pids": "/sys/fs/cgroup/pids/bpgrade-1-a"}}
    assert kernel.Cgroup.from_dict(good) is not None
    for folders in ({"memory": "/etc/bpgrade-1", "pids": "/sys/fs/cgroup/pids/bpgrade-1"},
                    {"memory": "/sys/fs/cgroup/memory/../../etc/bpgrade-x",
                     "pids": "/sys/fs/cgroup/pids/bpgrade-1"},
                    {"memory": "/sys/fs/cgroup/memory/user", "pids": "/sys/fs/cgroup/pids/b"},
                    {"unified": "/sys/fs/cgroup/bpgrade-1"}):
        assert kernel.Cgroup.from_dict({"version": 1, "folders": folders}) is None, folders


def test_cgroup_v2_is_used_where_a_subtree_with_memory_and_pids_is_delegated():
    mounts, own = kernel._cgroup_mounts(), kernel._own_cgroups()
    base = kernel._folder(mounts, own, "unified")
    delegated = base is not None and any(
        {"memory", "pids"} <= set(kernel._read(p / "cgroup.subtree_control").split())
        for p in (base, base.parent))
    if not delegated:
        pytest.skip(f"no cgroup v2 subtree with memory and pids delegated here ({base}); "
                    "the v1 path is tested instead")
    group = kernel.Cgroup.create(64 * MIB, 16)
    try:
        assert group.version == 2, group
        folder = Path(group.folders["unified"])
        assert (folder / "memory.max").read_text().strip() == str(64 * MIB)
        assert (folder / "pids.max").read_text().strip() == "16"
    finally:
        assert group.remove()


# ---------------------------------------------------------- bwrap, launcher, reasons


def test_the_private_tmp_is_capped_by_size_before_its_tmpfs(tmp_path):
    cmd = kernel.bwrap_command(["python"], workdir=tmp_path / "w", runtime_dir=tmp_path / "rt",
                                course_root=tmp_path, env={}, tmp_size=5 * MIB)
    tmp = tempfile.gettempdir()
    i = next(i for i in range(len(cmd) - 1) if cmd[i:i + 2] == ["--tmpfs", tmp])
    assert cmd[i - 2:i] == ["--size", str(5 * MIB)], cmd[:i + 2]
    # every other tmpfs only hides a folder: it gets a small size too
    for j in range(len(cmd)):
        if cmd[j] == "--tmpfs" and j != i:
            assert cmd[j - 2] == "--size", cmd[j - 2:j + 2]


def test_bwrap_accepts_size_before_tmpfs_and_the_tmp_is_that_small(tmp_path):
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    cmd = [kernel.shutil.which("bwrap"), "--ro-bind", "/", "/", "--dev", "/dev",
           # the interpreter itself, not the venv's link: a checkout under /tmp is hidden
           "--size", str(3 * MIB), "--tmpfs", "/tmp", "--", os.path.realpath(sys.executable), "-c",
           "import os; s = os.statvfs('/tmp'); print(s.f_blocks * s.f_frsize)"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    assert int(out) == 3 * MIB


def test_the_kernel_has_no_capability_to_leave_its_cgroup(tmp_path):
    """bwrap run by root keeps root's capabilities unless ``--cap-drop ALL``: with
    CAP_SYS_ADMIN the kernel could remount ``/sys/fs/cgroup`` and move out of its budget."""
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    code = ("import os\n"
            "print(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
            "print(os.access('/sys/fs/cgroup', os.W_OK))")
    cmd = kernel.bwrap_command([sys.executable, "-c", code], workdir=tmp_path,
                                runtime_dir=tmp_path, course_root=None, env={},
                                tmp_size=MIB)
    assert cmd[cmd.index("--cap-drop") + 1] == "ALL"
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=True).stdout
    assert out.split() == ["0000000000000000", "False"], out


def test_limits_with_the_budget_round_trip_through_the_environment():
    limits = kernel.Limits(memory=1, cpu=2, file_size=3, memory_budget=4, max_tasks=5,
                           tmp_size=6)
    assert kernel.Limits.from_env(limits.as_env()) == limits


def test_the_launcher_says_which_budget_applies_and_records_it_for_the_grader(
        tmp_path, capsys):
    _require_cgroup()
    conn = tmp_path / "kernel.json"
    limits = kernel.Limits(memory_budget=512 * MIB, max_tasks=64, tmp_size=32 * MIB)
    group, path = kernel._start_budget(limits, str(conn))
    try:
        err = capsys.readouterr().err
        assert re.search(r"budget by cgroup v[12]: 512 MiB of memory over all the kernel's "
                         r"processes, 64 processes/threads, /tmp 32 MiB", err), err
        info = json.loads(path.read_text())
        assert info["mechanism"] == group.mechanism
        assert kernel.Cgroup.from_dict(info["group"]) == group
    finally:
        kernel._end_budget(group, path, limits)
    assert json.loads(path.read_text())["ended"] is True
    assert not any(Path(p).exists() for p in group.folders.values())

    kernel._start_budget(kernel.Limits(memory_budget=0, max_tasks=0), str(conn))
    assert "WARNING: NO BUDGET for the whole sandbox" in capsys.readouterr().err


def test_the_budget_file_is_rewritten_never_followed(tmp_path):
    target = tmp_path / "precious"
    target.write_text("keep")
    path = tmp_path / "kernel.budget.json"
    path.symlink_to(target)
    kernel._write_new(path, '{"ended": true}')
    assert target.read_text() == "keep" and not path.is_symlink()
    assert kernel.read_budget_file(path) == {"ended": True}


def test_each_limit_has_a_one_line_reason_for_the_student():
    limits = kernel.Limits(memory_budget=2 * kernel.GIB, max_tasks=256, tmp_size=256 * MIB)
    reasons = kernel.budget_messages(limits)
    assert "more than 2 GiB in total across its processes" in reasons["memory"]
    assert "more than 256 processes/threads" in reasons["tasks"]
    assert reasons["tmp"] == "/tmp is full: the sandbox's /tmp holds at most 256 MiB"
    assert kernel.death_reason(137, limits, {"oom_kill": 1}) == reasons["memory"]
    assert "CPU limit" in kernel.death_reason(137, limits, {"oom_kill": 0})
    assert all("\n" not in r for r in reasons.values())


# -------------------------------------------------------------- real nbgrader, batched

BUDGET_CASES = ("memory_across_processes", "fork_bomb", "fill_tmp")
SMALL = {"memory_budget": 1024 * MIB, "max_tasks": 96, "tmp_size": 64 * MIB}


def _mem_available() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no MemAvailable in /proc/meminfo")


def _resident_total() -> int:
    """The resident memory of every process on the machine (``/proc/*/statm``), bytes."""
    page, total = os.sysconf("SC_PAGE_SIZE"), 0
    for statm in Path("/proc").glob("[0-9]*/statm"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            total += int(statm.read_text().split()[1]) * page
    return total


def _memory_not_given_back(available_before: int, resident_before: int) -> int:
    """What the machine has less of than before, minus what its live processes took
    meanwhile: other tests run beside this one (a venv being installed, a browser), and
    their growth is theirs. The sandbox's processes are all gone by then (checked before),
    so what stays unexplained is what the kernels left behind (a tmpfs, a cgroup)."""
    lost = available_before - _mem_available()
    return lost - max(0, _resident_total() - resident_before)


def _orphan_groups() -> set[str]:
    """Kernel groups beside ours whose launcher has ended. Only the memory (v1) or unified
    (v2) hierarchy: the ``pids`` one may be shared with other graders on the machine."""
    mounts, own = kernel._cgroup_mounts(), kernel._own_cgroups()
    found = set()
    for key in ("memory", "unified"):
        folder = kernel._folder(mounts, own, key)
        for parent in ([folder, folder.parent] if folder else []):
            for p in parent.glob(kernel.Cgroup.PREFIX + "*") if parent.is_dir() else []:
                pid = p.name[len(kernel.Cgroup.PREFIX):].split("-")[0]
                if pid.isdigit() and not kernel._alive(int(pid)):
                    found.add(str(p))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("start", ["cold", "zygote"])
def test_budget_cases_get_a_grade_and_a_reason_and_the_machine_gets_its_memory_back(
        tmp_path, start):
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    _require_cgroup()
    import test_sandbox as ts

    config = "\n".join([f"c.Execute.timeout = {ts.CELL_TIMEOUT}"]
                       + [f"c.SandboxedExecute.{k} = {v}" for k, v in SMALL.items()])
    course = tmp_path / "course"
    ts._make_course(course, [ts.ASSIGNMENT], ts.ROOT, extra_config=config)
    ts._nbgrader(course, "generate_assignment", ts.ASSIGNMENT, "--force")
    cases = [ts.load_case(ts.HOSTILE / f"{name}.cell") for name in BUDGET_CASES]
    ts.submit(course, "aaa_correct", ts.correct_notebook(course))
    for case in cases:
        ts.submit(course, f"h_{case.name}", ts.apply_case(ts.correct_notebook(course), case))
    ts.submit(course, "zzz_correct", ts.correct_notebook(course))

    groups_before, available_before = _orphan_groups(), _mem_available()
    resident_before = _resident_total()
    t0 = time.perf_counter()
    log = ts._nbgrader(course, "autograde", ts.ASSIGNMENT, "--force",
                       *(["--SandboxedExecute.zygote=True"] if start == "zygote" else []))
    seconds = time.perf_counter() - t0
    table = ts.grades(course)
    forked = log.count("forked from the worker's zygote")
    assert forked == (len(cases) + 2 if start == "zygote" else 0), log[-3000:]

    assert re.search(r"budget by cgroup v[12]: 1 GiB of memory over all the kernel's "
                     r"processes, 96 processes/threads, /tmp 64 MiB", log), log[-3000:]
    for case in cases:
        got = table[f"h_{case.name}"]
        lost = {g for g, (score, top) in got.items() if score < top}
        assert lost == case.lose, f"{case.name}: lost {lost}, expected {case.lose}"
        text = "\n".join(ts._outputs(course, f"h_{case.name}", g) for g in sorted(case.lose))
        assert re.search(case.reason, text), f"{case.name}: {case.reason!r} not in {text}"
        assert "ResourceLimitError" in text, text
    assert "more than 1 GiB in total" in ts._outputs(course, "h_memory_across_processes")
    assert "more than 96 processes/threads" in ts._outputs(course, "h_fork_bomb")
    assert "holds at most 64 MiB" in ts._outputs(course, "h_fill_tmp")
    for student in ("aaa_correct", "zzz_correct"):
        assert all(score == top > 0 for score, top in table[student].values()), table[student]
    assert seconds < 5 * 20, f"grading 5 students took {seconds:.0f} s"

    for _ in range(50):  # the last kernel's group is removed as its notebook ends
        leftover, left_groups = ts.processes_of(course), _orphan_groups() - groups_before
        if not leftover and not left_groups:
            break
        time.sleep(0.1)
    assert leftover == [] and left_groups == set(), (leftover, left_groups)
    # 4 x 700 MiB of children, 64 MiB of /tmp per kernel: none of it may stay taken. The
    # machine is shared with other tests, hence the tolerance; and it may give freed memory
    # back slowly (measured on the course's build machine: about 16 MiB/s after this
    # test, 10 s to fall under 400 MiB), hence up to a minute of tries.
    for _ in range(120):
        lost_memory = _memory_not_given_back(available_before, resident_before)
        if lost_memory < 400 * MIB:
            break
        time.sleep(0.5)
    assert lost_memory < 400 * MIB, f"{lost_memory / MIB:.0f} MiB of memory not given back"


# ------------------------------------------------------------- refusing, kernel deaths


def test_require_budget_refuses_to_grade_without_one(tmp_path):
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    from bpgrade.nbgrader_plugins import SandboxedExecute

    try:
        KernelSpecManager().get_kernel_spec(kernel.KERNEL_NAME)
    except NoSuchKernel:
        pytest.skip("the bpgrade-sandbox kernel spec is not installed (make setup)")
    import nbformat

    ep = SandboxedExecute(memory_budget=0, max_tasks=0, require_budget=True)
    with pytest.raises(RuntimeError, match="no whole-sandbox budget"):
        ep.preprocess(nbformat.v4.new_notebook(), {"metadata": {"path": str(tmp_path)}})


def test_the_launcher_refuses_to_start_a_kernel_without_a_budget_when_required(tmp_path):
    env = {**os.environ, kernel.ENV_REQUIRE_BUDGET: "1", kernel.ENV_BUDGET: "0",
           kernel.ENV_TASKS: "0"}
    proc = subprocess.run([sys.executable, "-P", "-m", "bpgrade", "kernel", "-f",
                           str(tmp_path / "kernel.json")], capture_output=True, text=True,
                          timeout=60, env=env, cwd=tmp_path, check=False)
    assert proc.returncode == 3, proc
    assert "refusing to start: no whole-sandbox budget" in proc.stderr


@pytest.mark.slow
@pytest.mark.parametrize("zygote", [False, True], ids=["cold", "zygote"])
def test_a_kernel_the_memory_budget_kills_gets_the_reason_in_every_later_cell(tmp_path,
                                                                              zygote):
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    _require_cgroup()
    import nbformat

    from bpgrade.nbgrader_plugins import SandboxedExecute

    folder = tmp_path / "course" / "submitted" / "ana"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = b'x' * (900 * 1024 * 1024)"),  # under RLIMIT_AS
        nbformat.v4.new_code_cell("print('never')")])
    ep = SandboxedExecute(course_root=str(tmp_path / "course"), timeout=30,
                          memory_budget=384 * MIB, zygote=zygote)
    ep.preprocess(nb, {"metadata": {"path": str(folder)}})
    outs = [(o.get("ename"), o.get("evalue")) for c in nb.cells for o in c.outputs]
    reason = "your code used more than 384 MiB in total across its processes"
    assert outs[0][0] == "DeadKernelError" and reason in outs[0][1], outs
    assert outs[1][0] == "NotRunError" and reason in outs[1][1], outs
    assert ep._group is not None
    assert not any(Path(p).exists() for p in ep._group.folders.values())


# ------------------------------------------------- no cgroup: a uid of its own, RLIMIT_NPROC


def test_without_a_cgroup_the_bwrap_command_drops_to_the_given_uid(tmp_path):
    cmd = kernel.bwrap_command(["python"], workdir=tmp_path, runtime_dir=tmp_path,
                               course_root=None, env={}, tmp_size=MIB, run_as=2_000_123)
    tail = cmd[cmd.index("--") + 1:]
    assert tail[0].endswith("setpriv") and "--reuid=2000123" in tail and "--clear-groups" in tail
    assert tail[-1] == "python"
    caps = [cmd[i + 1] for i, a in enumerate(cmd[:cmd.index("--")]) if a == "--cap-add"]
    assert sorted(caps) == ["CAP_SETGID", "CAP_SETUID"]
    tmp = cmd.index(tempfile.gettempdir())
    assert cmd[tmp - 5:tmp] == ["--perms", "1777", "--size", str(MIB), "--tmpfs"]


@pytest.mark.slow
@pytest.mark.parametrize("zygote", [False, True], ids=["cold", "zygote"])
def test_without_a_cgroup_the_kernel_runs_as_its_own_uid_and_a_fork_bomb_is_refused(
        tmp_path, monkeypatch, zygote):
    """On a machine without cgroups the launcher (root) gives the kernel a uid no other
    process has, and RLIMIT_NPROC as its task limit: a fork bomb is refused with the
    reason, the kernel keeps no capability, and nothing is left running."""
    require(kernel.bwrap_problem(), "bubblewrap, the sandbox of student code")
    if os.geteuid() != 0:
        pytest.skip("the uid fallback needs a launcher started by root")
    import nbformat

    from bpgrade.nbgrader_plugins import SandboxedExecute

    monkeypatch.setenv(kernel.ENV_NO_CGROUP, "1")
    folder = tmp_path / "course" / "submitted" / "ana"
    folder.mkdir(parents=True)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell(
            "import os\nprint(os.getuid(), os.getgid(), os.getgroups(),"
            " open('/proc/self/status').read().split('CapEff:')[1].split()[0])\n"
            "open('/tmp/scratch', 'w').write('ok')"),
        nbformat.v4.new_code_cell(
            "import subprocess\nkids = []\nfor _ in range(500):\n"
            "    kids.append(subprocess.Popen(['sleep', '60']))"),
        nbformat.v4.new_code_cell("print('still graded')")])
    ep = SandboxedExecute(course_root=str(tmp_path / "course"), timeout=30, max_tasks=48,
                          zygote=zygote)
    ep.preprocess(nb, {"metadata": {"path": str(folder)}})
    uid, gid, groups, caps = nb.cells[0].outputs[0]["text"].split()
    assert int(uid) >= kernel.UID_BASE and uid == gid and groups == "[]", (uid, gid, groups)
    assert caps == "0000000000000000"
    outs = [(o.get("ename"), o.get("evalue")) for o in nb.cells[1].outputs
            if o.get("output_type") == "error"]
    assert any("Resource temporarily unavailable" in (v or "") for _, v in outs), outs
    assert ("ResourceLimitError", kernel.budget_messages(ep._limits)["tasks"]) in outs, outs
    assert nb.cells[2].outputs[0]["text"].strip() == "still graded"
    for _ in range(50):  # killed with its sandbox; a forked kernel's minder reaps it
        ps = subprocess.run(["ps", "-e", "-o", "uid="], capture_output=True, text=True).stdout
        if uid not in ps.split():
            break
        time.sleep(0.1)
    assert uid not in ps.split(), "a process of the kernel's uid outlived it"
