"""Re-execute the course's notebooks in place, in order, and report time and peak memory.

    python tools/run_notebooks.py                 # every notebook in notebooks/
    python tools/run_notebooks.py 03_grad_cam     # the ones whose names contain the words

Run it through `make notebooks`, which uses the project's .venv and sets
TF_ENABLE_ONEDNN_OPTS=0 and TF_CPP_MIN_LOG_LEVEL=3, so no TensorFlow log line lands in a
stored output. Each notebook gets a fresh kernel in its own folder; cells run top to bottom;
execution counts start at 1. Timing metadata is not recorded, so re-running an unchanged
notebook changes only what the computation changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"

# Asked of the kernel after the last cell: its own peak resident memory (MiB) and the CPU
# time it used (s). CPU time, unlike wall time, barely moves when the machine is shared.
_PROBE = ("import resource as _r; _u = _r.getrusage(_r.RUSAGE_SELF); "
          "print(_u.ru_maxrss / 1024, _u.ru_utime + _u.ru_stime)")


def notebook_paths(words: list[str] | None = None) -> list[Path]:
    paths = sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    if words:
        paths = [p for p in paths if any(w in p.stem for w in words)]
    return paths


def execute_notebook(path: Path, write: bool = True, timeout: int = 600) -> dict:
    """Execute one notebook in a fresh kernel; return its wall and CPU time (s), peak RSS (MiB)."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # A backend inherited from a script (Agg) would stop the kernel from drawing inline figures.
    os.environ.pop("MPLBACKEND", None)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(path.parent)}},
    )
    start = time.perf_counter()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        seconds = time.perf_counter() - start
        probe = nbformat.v4.new_code_cell(_PROBE)
        nb.cells.append(probe)
        try:
            client.execute_cell(probe, len(nb.cells) - 1)
        finally:
            nb.cells.pop()
    peak, cpu = (float(v) for v in probe.outputs[0]["text"].split()) if probe.outputs else (float("nan"),) * 2
    if write:
        nbformat.write(nb, path)
    return {"notebook": path.name, "seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1),
            "peak_rss_mib": round(peak)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("words", nargs="*", help="run only notebooks whose names contain these")
    parser.add_argument("--check", action="store_true",
                        help="execute without writing the notebooks back")
    args = parser.parse_args(argv)
    paths = notebook_paths(args.words)
    if not paths:
        print(f"No notebook matches {args.words}.", file=sys.stderr)
        return 2
    failed = False
    for path in paths:
        print(f"{path.name} ...", end=" ", flush=True)
        try:
            result = execute_notebook(path, write=not args.check)
        except Exception as error:  # report, go on with the next notebook
            failed = True
            print(f"FAILED: {type(error).__name__}: {str(error)[-2000:]}")
            continue
        print(f"{result['seconds']} s wall, {result['cpu_seconds']} s CPU in the kernel, "
              f"peak {result['peak_rss_mib']} MiB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
