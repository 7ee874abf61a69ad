"""Run every benchmark of this folder: ``python -m bench`` calls ``main()`` of each ``bench_*.py``.

``python -m bench mlp`` runs only the modules whose name contains ``mlp``.
Benchmarks print figures; they never assert timings.
"""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path


def bench_modules(folder: Path = Path(__file__).parent) -> list[str]:
    """Names of the ``bench_*.py`` modules in ``folder``, sorted."""
    return sorted(p.stem for p in folder.glob("bench_*.py"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    names = [n for n in bench_modules() if not argv or any(a in n for a in argv)]
    if not names:
        print(f"no benchmark matches {argv}; available: {bench_modules()}", file=sys.stderr)
        return 1
    for name in names:
        module = importlib.import_module(f"{__package__ or 'bench'}.{name}")
        if not hasattr(module, "main"):
            print(f"bench/{name}.py has no main(); skipped", file=sys.stderr)
            continue
        print(f"== bench/{name}.py", flush=True)
        start = time.perf_counter()
        module.main()
        print(f"== bench/{name}.py done in {time.perf_counter() - start:.1f} s\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
