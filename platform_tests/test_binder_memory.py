"""Binder's memory limit, checked: every notebook runs under a hard 2 GB limit, with a Jupyter
server beside its kernel, as on mybinder.org (2 GB, no swap).

The limit is a cgroup (v1 memory controller, as root): a child of this process's own memory
cgroup, so that the whole tree it holds (JupyterLab's server, pytest with nbval, the kernel)
is counted together and killed when it goes over, as Binder's container is. Swap is counted
too where the kernel accounts it. First a process that allocates past the limit must be
killed, which proves the limit bites; then JupyterLab starts in the cgroup and each notebook
is run under nbval there, one at a time, after the server has read it (as when a learner
opens it). Each notebook's peak is reported four ways: what the cgroup charged the tree
(anonymous and mapped memory, from its own accounting), the cgroup's own peak (which also
counts page cache, reclaimed before anything is killed), and its processes' resident sets
summed (server, pytest, the kernel and any process the notebook starts), proportionally
(PSS: a page mapped by n processes counts 1/n to each) and in full (RSS: an upper bound).
A page of a library that another process read first (TensorFlow's, say) is charged to that
process's cgroup, not to this one, while Binder's fresh container is charged for it: so the
PSS sum, which counts those pages, must stay under the limit too.

Needs Linux, root and a writable cgroup v1 memory controller; skipped elsewhere. Several
minutes. Figures go to build/platforms/binder_memory.json.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from support import ROOT, course_env, wait_for_jupyter

LIMIT = 2 * 10**9  # Binder: 2 GB
CONTROLLER = Path("/sys/fs/cgroup/memory")
NOTEBOOKS = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Allocates, touching every page, 100 MB at a time up to 3 GB, and says how far it got.
ALLOCATE = ("import sys\nheld = []\nfor step in range(1, 31):\n"
            "    held.append(b'x' * 10**8)\n    print(step * 100, flush=True)\n")


class MemoryCgroup:
    """A child of this process's v1 memory cgroup with a hard limit (memory, and memory plus
    swap where accounted); processes started with `enter` as their preexec_fn run in it."""

    def __init__(self, name: str, limit: int):
        own = next(line.split(":", 2)[2] for line in Path("/proc/self/cgroup").read_text().splitlines()
                   if line.split(":", 2)[1] == "memory")
        self.path = CONTROLLER / own.lstrip("/") / name
        self.path.mkdir()
        self._write("memory.limit_in_bytes", limit)
        if (self.path / "memory.memsw.limit_in_bytes").exists():
            self._write("memory.memsw.limit_in_bytes", limit)
        self.limit = int(self._read("memory.limit_in_bytes"))

    def _read(self, name: str) -> str:
        return (self.path / name).read_text()

    def _write(self, name: str, value) -> None:
        (self.path / name).write_text(str(value))

    def enter(self) -> None:
        """Move the calling process into the cgroup (a subprocess's preexec_fn)."""
        self._write("cgroup.procs", os.getpid())

    def oom_kills(self) -> int:
        fields = dict(line.split() for line in self._read("memory.oom_control").splitlines())
        return int(fields.get("oom_kill", 0))

    def resident(self) -> int:
        """Anonymous and mapped-file memory of every process in the cgroup, in bytes."""
        stat = dict(line.split() for line in self._read("memory.stat").splitlines())
        return int(stat["rss"]) + int(stat["mapped_file"])

    def reset_peak(self) -> None:
        self._write("memory.max_usage_in_bytes", 0)

    def peak(self) -> int:
        return int(self._read("memory.max_usage_in_bytes"))

    def processes(self) -> list[int]:
        return [int(p) for p in self._read("cgroup.procs").split()]

    def summed(self) -> dict[str, int]:
        """Its processes' resident sets summed, in bytes: ``Rss`` (every mapped page in full,
        even one that several of them map: an upper bound) and ``Pss`` (a page that n
        processes map counted 1/n to each: the tree's own footprint, libraries included)."""
        total = {"Rss": 0, "Pss": 0}
        for pid in self.processes():
            try:
                rollup = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:  # gone meanwhile
                continue
            for key in total:
                found = re.search(rf"^{key}:\s+(\d+) kB", rollup, re.M)
                total[key] += int(found.group(1)) * 1024 if found else 0
        return total

    def remove(self) -> None:
        for pid in self.processes():
            os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)


class PeakSampler(threading.Thread):
    """The highest `MemoryCgroup.resident` and `MemoryCgroup.summed` seen, sampled every
    50 ms while running."""

    def __init__(self, cgroup: MemoryCgroup):
        super().__init__(daemon=True)
        self.cgroup, self.resident, self.rss, self.pss = cgroup, 0, 0, 0
        self._finished = threading.Event()

    def run(self) -> None:
        while not self._finished.is_set():
            self.resident = max(self.resident, self.cgroup.resident())
            summed = self.cgroup.summed()
            self.rss, self.pss = max(self.rss, summed["Rss"]), max(self.pss, summed["Pss"])
            time.sleep(0.05)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._finished.set()
        self.join()


def _usable() -> str:
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "needs Linux and root"
    if not (CONTROLLER / "memory.limit_in_bytes").exists():
        return "needs the cgroup v1 memory controller at /sys/fs/cgroup/memory"
    return ""


@pytest.fixture
def cgroup():
    reason = _usable()
    if reason:
        pytest.skip(f"a hard memory limit {reason}")
    group = MemoryCgroup(f"course-binder-{os.getpid()}", LIMIT)
    try:
        yield group
    finally:
        group.remove()


def _mb(n: int) -> int:
    return round(n / 10**6)


def test_every_notebook_fits_binders_2_gb_beside_a_jupyter_server(cgroup, tmp_path):
    assert cgroup.limit <= LIMIT
    # The limit bites: allocating 3 GB in the cgroup is killed before 2 GB is reached.
    before = cgroup.oom_kills()
    hog = subprocess.run([sys.executable, "-c", ALLOCATE], preexec_fn=cgroup.enter,
                         capture_output=True, text=True, timeout=300)
    reached = int(hog.stdout.split()[-1]) if hog.stdout.split() else 0
    assert hog.returncode == -signal.SIGKILL, (hog.returncode, hog.stdout[-200:], hog.stderr[-2000:])
    assert reached * 10**6 < LIMIT and cgroup.oom_kills() == before + 1, reached
    assert cgroup.processes() == []

    env = dict(course_env(), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "config"),
               JUPYTER_DATA_DIR=str(tmp_path / "data"))
    token = "binder-memory-test"
    log = tmp_path / "lab.log"
    with open(log, "w") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
             f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={ROOT / 'notebooks'}"]
            + (["--allow-root"] if os.geteuid() == 0 else []),
            env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=cgroup.enter)
    figures = {"limit_bytes": cgroup.limit, "allocation_killed_at_mb": reached, "notebooks": {}}
    try:
        base = wait_for_jupyter(tmp_path / "runtime", server, log)["url"].rstrip("/")
        for name in NOTEBOOKS:
            cgroup.reset_peak()
            with PeakSampler(cgroup) as sampler:
                with urllib.request.urlopen(f"{base}/api/contents/{name}?token={token}",
                                            timeout=30) as response:
                    assert json.load(response)["type"] == "notebook"
                start = time.perf_counter()
                result = subprocess.run(
                    [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
                     "--nbval-cell-timeout=900", "-p", "no:cacheprovider", "-q", name],
                    cwd=ROOT / "notebooks", env=course_env(), capture_output=True, text=True,
                    timeout=1800, preexec_fn=cgroup.enter)
            figures["notebooks"][name] = {
                "charged_peak_mb": _mb(sampler.resident), "cgroup_peak_mb": _mb(cgroup.peak()),
                "pss_sum_peak_mb": _mb(sampler.pss), "rss_sum_peak_mb": _mb(sampler.rss),
                "seconds": round(time.perf_counter() - start, 1),
                "nbval": (result.stdout.strip().splitlines() or [""])[-1]}
            print(name, figures["notebooks"][name], flush=True)
            assert server.poll() is None, f"the Jupyter server died:\n{log.read_text()[-3000:]}"
            assert result.returncode == 0, (f"{name} under {_mb(LIMIT)} MB (OOM kills: "
                                            f"{cgroup.oom_kills() - before - 1}):\n"
                                            + result.stdout[-6000:] + result.stderr[-2000:])
            assert sampler.pss < LIMIT, f"{name}: the processes' own memory summed " \
                                        f"{_mb(sampler.pss)} MB"
        assert cgroup.oom_kills() == before + 1, "a process was killed for memory"
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        (ROOT / "build" / "platforms").mkdir(parents=True, exist_ok=True)
        (ROOT / "build" / "platforms" / "binder_memory.json").write_text(json.dumps(figures, indent=1))
        print(json.dumps(figures, indent=1))

