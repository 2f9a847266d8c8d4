"""Hostile inputs cost bounded time and memory, and end in camutils' own errors.

Every case of `hostile_inputs.CASES` (decompression bombs, billion laughs, zero-stride
tensors, zip bombs, FIFOs, ...) runs in a subprocess, one subprocess per group (weights files,
images), and reports its outcome, its time and its peak resident memory (on Linux the peak is
reset before each case; elsewhere it is the subprocess's peak so far, which bounds every case
before it). A case that hangs is stopped after `CASE_SECONDS` and reported as such; the
subprocess is then started again after it. The bounds are generous safety limits, far above
what the cases take when they are refused (about 1 ms and a few MiB each), and far below what
they took before they were (minutes to forever, 400 MiB to gigabytes).
"""

from __future__ import annotations

import json
import os
import queue
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from hostile_inputs import CASES

resource = pytest.importorskip("resource", reason="needs the resource module (not on Windows)")

HOSTILE = Path(__file__).with_name("hostile_inputs.py")
CASE_SECONDS = 20  # a case (with the building of its file) that takes longer has hung
MAX_SECONDS = 5.0  # each case's own time, when refused or loaded
# Peak resident memory of the subprocess: numpy, OpenCV and camutils' module take 30-60 MiB;
# each case may add up to about 150 MiB (a 3000 x 3000 16-bit RGBA PNG, which it loads).
MAX_PEAK_MIB = 350
ADDRESS_SPACE = 3 * 2**30  # the subprocess cannot take more (a safety net for this machine)


def _limit_memory():  # pragma: no cover - runs in the child
    try:
        resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    except (ValueError, OSError):
        pass


def run_group(group: str) -> tuple[dict[str, dict], list[str]]:
    """Each case's report, and the heavy modules imported by the subprocess."""
    results: dict[str, dict] = {}
    imported: list[str] = []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    skip: set[str] = set()
    while True:
        process = subprocess.Popen(
            [sys.executable, str(HOSTILE), group, *sorted(skip)], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True, env=env,
            preexec_fn=_limit_memory if sys.platform.startswith("linux") else None)
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=lambda: [lines.put(x) for x in process.stdout] + [lines.put(None)],
                         daemon=True).start()
        current, hung, other = None, False, []
        while True:
            try:
                line = lines.get(timeout=CASE_SECONDS)
            except queue.Empty:
                hung = True
                break
            if line is None:
                break
            try:
                report = json.loads(line)
            except json.JSONDecodeError:
                other.append(line)
                continue
            if "start" in report:
                current = report["start"]
            elif "case" in report:
                results[report["case"]] = report
                skip.add(report["case"])
                current = None
            elif "imported" in report:
                imported = report["imported"]
        if hung or process.poll() is None:
            process.kill()
        process.wait()
        if current is None:
            if hung or process.returncode:
                pytest.fail(f"The {group} cases' subprocess failed ({process.returncode}) "
                            f"between cases:\n{''.join(other)[-3000:]}")
            return results, imported
        # the case in progress hung or crashed the subprocess: report it, and go on after it
        results[current] = {"case": current, "error": "hung" if hung else "crashed",
                            "message": f"no answer within {CASE_SECONDS} s" if hung
                            else f"exit status {process.returncode}: {''.join(other)[-1500:]}",
                            "seconds": None, "peak_mib": None}
        skip.add(current)


@pytest.fixture(scope="module")
def reports():
    cache: dict[str, tuple[dict, list]] = {}

    def get(group: str):
        if group not in cache:
            cache[group] = run_group(group)
        return cache[group]
    return get


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_case_is_bounded_and_clear(reports, case):
    results, _ = reports(case.group)
    if case.name not in results:
        pytest.skip("this platform cannot make the file (no FIFO or /dev/zero)")
    report = results[case.name]
    outcome = f"{case.name}: {report['error']}: {report['message']}"
    assert report["error"] == case.error, outcome
    assert re.search(case.match, report["message"]), outcome
    assert report["seconds"] <= MAX_SECONDS, f"{case.name} took {report['seconds']} s"
    assert report["peak_mib"] <= MAX_PEAK_MIB, (
        f"{case.name}: peak memory {report['peak_mib']} MiB ({report['peak_by']})")


@pytest.mark.parametrize("group", ["torch", "images"])
def test_the_readers_do_not_import_tensorflow(reports, group):
    _, imported = reports(group)
    assert imported == [], f"reading {group} files imported {imported}"
