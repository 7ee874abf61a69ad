"""The Dask LocalCluster row of ``bench_grading_scale``, alone and repeated: the figure
to watch when the grader's per-submission cost changes, without the serial runs.

A template course is built once (``bench_grading_scale.make_template``: the same 40
submissions); each run grades a fresh copy of it with ``python -m bpgrade autograde
ex04_backward --jobs <CPUs>`` (sandboxed), timed from the command's start to its end,
the machine's busy CPU seconds during the run (``/proc/stat``: kernels included,
and any other work on the machine too) and the CPU seconds of the grader's own
processes (the command and its reaped descendants, ``RUSAGE_CHILDREN``: other work on
the machine does not count, a kernel that bubblewrap's PID namespace never reaps may
not). Prints every run, then the medians and the ratio against the hand-written
pool's last figure (``POOL_FIGURE``, machine CPU).

Run: ``python -m bench dask_localcluster [RUNS]`` (default 3) from the repository root.
"""

from __future__ import annotations

import os
import resource
import statistics
import sys
import tempfile
from pathlib import Path

from bench import bench_grading_scale as scale

RUNS = 3


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    runs = int(next((a for a in argv if a.isdigit()), RUNS))
    jobs = os.cpu_count() or 1
    sandbox = scale.SANDBOX_CONFIG.exists()
    rows, owns = [], []
    with tempfile.TemporaryDirectory(prefix="bench-dask-") as tmp:
        template, mix = scale.make_template(Path(tmp) / "template")
        print(f"{scale.ASSIGNMENT}: {scale.SUBMISSIONS} submissions ({mix}); {jobs} CPUs; "
              f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
        for i in range(runs):
            course = scale.configured_copy(template, Path(tmp) / f"run{i}", sandbox)
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            row = scale.parallel_run(course, f"bpgrade --jobs {jobs} (Dask LocalCluster), "
                                     f"run {i + 1}", jobs)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            own = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
            rows.append(row)
            owns.append(own / max(row.graded, 1))
            print(f"{row.label:<48}{row.seconds:>8.1f} s{row.graded:>4} graded"
                  f"{row.per_minute:>8.1f}/min{row.cpu_per_submission:>7.2f} CPU s/sub"
                  f"{owns[-1]:>7.2f} own CPU s/sub"
                  + (f"   ({row.note})" if row.note else ""), flush=True)
    rate = statistics.median(r.per_minute for r in rows)
    cpu = statistics.median(r.cpu_per_submission for r in rows)
    own = statistics.median(owns)
    pool_rate, pool_cpu = scale.POOL_FIGURE
    print(f"median of {runs}: {rate:.1f} submissions per minute, {cpu:.2f} CPU s per "
          f"submission (machine), {own:.2f} (the grader's processes); "
          f"against the hand-written pool ({pool_rate} per minute, {pool_cpu} CPU "
          f"s): {rate / pool_rate:.2f}x the rate, {cpu - pool_cpu:+.2f} CPU s per submission "
          f"(load average {os.getloadavg()[0]:.1f} now)")


if __name__ == "__main__":
    main()
