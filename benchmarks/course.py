"""The course's own cost: each notebook's wall time and peak memory, and `make test`.

    python -m benchmarks --course      # every notebook, one fresh kernel each (minutes)
    python -m benchmarks --make-test   # the whole test suite, as `make test` runs it

Notebooks are executed without being written back, by ``tools/run_notebooks.py``'s
`execute_notebook`, which reports the cell-execution wall time and the kernel's own peak
resident memory (``ru_maxrss``). `make test` is timed from the outside, as a user sees it.
Both take minutes, so `make bench` does not run them: it reports the last figures stored in
``benchmarks/results/course.json``, with the date they were measured.
"""

from __future__ import annotations

import datetime
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["measure_notebooks", "merge_notebooks", "measure_make_test", "ROOT"]

ROOT = Path(__file__).resolve().parents[1]
_ANSI = re.compile(r"\x1b\[[0-9;]*m")  # colour codes in pytest's output


def _now() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _load_average() -> float | None:
    """The 1-minute load average (None where the system has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def _runner_module():
    path = ROOT / "tools" / "run_notebooks.py"
    if not path.is_file():
        raise FileNotFoundError(f"{path.relative_to(ROOT)} is missing: it executes the notebooks.")
    spec = importlib.util.spec_from_file_location("run_notebooks", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure_notebooks(words: list[str] | None = None, progress: bool = True) -> dict:
    """Execute every notebook (or those whose names contain ``words``) in a fresh kernel.

    Returns ``{"date", "results": [{"notebook", "seconds", "peak_rss_mib", "load_average"}
    or {"notebook", "error", "load_average"}]}`` (the 1-minute load average before and
    after each notebook); a failing notebook is recorded and the others still run.
    """
    runner = _runner_module()
    results = []
    for path in runner.notebook_paths(words):
        if progress:
            print(f"notebook {path.name} ...", file=sys.stderr, flush=True)
        load = _load_average()
        try:
            result = dict(runner.execute_notebook(path, write=False))
        except Exception as error:  # record and go on
            message = _ANSI.sub("", str(error)).strip().splitlines()
            result = {"notebook": path.name,
                      "error": f"{type(error).__name__}: {message[-1] if message else ''}"}
        # Wall time stretches when other processes share the CPU: keep the load with it.
        result["load_average"] = [load, _load_average()]
        result["date"] = _now()
        results.append(result)
    return {"date": _now(), "results": results}


def merge_notebooks(stored: dict | None, measured: dict) -> dict:
    """``measured`` (some notebooks) over ``stored`` (the last figures of every notebook):
    the notebooks measured now replace their old figures, the others keep theirs (each
    result keeps the date it was measured on), in notebook order."""
    old = {r["notebook"]: r for r in (stored or {}).get("results", [])}
    for result in old.values():
        result.setdefault("date", (stored or {}).get("date"))
    old.update({r["notebook"]: r for r in measured["results"]})
    return {"date": measured["date"], "results": [old[name] for name in sorted(old)]}


def measure_make_test(progress: bool = True) -> dict:
    """Run `make test` in the repository and time it (its output is not kept)."""
    if progress:
        print("make test ... (several minutes)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    completed = subprocess.run(["make", "test"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    seconds = time.perf_counter() - start
    lines = _ANSI.sub("", completed.stdout).splitlines()
    # pytest's final count lines (unit tests, then notebooks) and its FAILED / ERROR lines
    summary = [line.strip("= ") for line in lines
               if line.startswith("=") and (" passed" in line or " failed" in line
                                            or " error" in line)]
    failures = [line for line in lines if line.startswith(("FAILED ", "ERROR "))]
    return {"date": _now(), "seconds": seconds, "returncode": completed.returncode,
            "summary": summary, "failures": failures[:30]}
