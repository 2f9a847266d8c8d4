"""What the platform tests share: fresh venvs, a git copy of the working tree, pyproject's bounds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.platforms import supported_pythons  # noqa: E402

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on Python 3.10
    import tomli as tomllib


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def lower_bound(name: str, extra: str | None = None) -> str:
    """The version a ``>=`` bound in pyproject names for ``name`` (this platform's line)."""
    project = pyproject()
    lines = project["optional-dependencies"][extra] if extra else project["dependencies"]
    for line in lines:
        req = Requirement(line)
        if req.name == name and (req.marker is None or req.marker.evaluate()):
            bounds = [s.version for s in req.specifier if s.operator == ">="]
            assert bounds, f"{line!r} declares no lower bound"
            return bounds[0]
    raise LookupError(f"pyproject declares no requirement on {name} here")


def find_python(version: str) -> str | None:
    """An interpreter of that version on this machine (PATH, then pyenv's folder), or None.

    Each candidate must run: a pyenv shim on PATH for a version not selected fails to start.
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates = [shutil.which(f"python{version}")]
    candidates += [str(p / "bin" / "python") for p in sorted(pyenv.glob(f"{version}.*"), reverse=True)]
    for candidate in filter(None, candidates):
        try:
            done = subprocess.run([candidate, "-c", "import sys, venv; print(sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=60)
        except OSError:
            continue
        if done.returncode == 0 and done.stdout.strip() == str(tuple(map(int, version.split(".")))):
            return candidate
    return None


def newest_available_python() -> str:
    """The newest supported Python here (Colab runs the newest), else the one running the tests."""
    for version in reversed(supported_pythons()):
        found = find_python(version)
        if found:
            return found
    return sys.executable


class Venv:
    """A fresh virtual environment, made with ``python -m venv``."""

    def __init__(self, path: Path, python: str):
        self.path = path
        subprocess.run([python, "-m", "venv", str(path)], check=True)
        self.python = str(path / ("Scripts/python.exe" if os.name == "nt" else "bin/python"))

    def run(self, *args, env: dict | None = None, timeout: float = 1800, cwd=ROOT, **kwargs):
        return subprocess.run([self.python, *map(str, args)], cwd=cwd, env=env, timeout=timeout,
                              capture_output=True, text=True, **kwargs)

    def pip(self, *args, timeout: float = 1800):
        done = self.run("-m", "pip", *args, "--disable-pip-version-check", timeout=timeout)
        assert done.returncode == 0, f"pip {' '.join(map(str, args))} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        return done

    def size_gib(self) -> float:
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file()) / 2**30


def git_copy_of_working_tree(dest: Path) -> Path:
    """The working tree as it is now (tracked and untracked, not ignored), committed in a new
    repository at ``dest``: what a clone of the course would hold once this change lands."""
    files = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           cwd=ROOT, capture_output=True, check=True).stdout.split(b"\0")
    for name in filter(None, files):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = dest / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    git = ["git", "-c", "user.name=course tests", "-c", "user.email=tests@localhost"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "working tree"]):
        subprocess.run(git + command, cwd=dest, check=True, capture_output=True)
    return dest


def course_env(onednn: str = "off") -> dict:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONHASHSEED="0",
               TF_ENABLE_ONEDNN_OPTS="1" if onednn == "on" else "0")
    env.pop("MPLBACKEND", None)
    env.pop("PYTHONPATH", None)
    return env


class Stopwatch:
    def __init__(self):
        self.start = time.perf_counter()
        self.laps: dict[str, float] = {}

    def lap(self, name: str) -> float:
        now = time.perf_counter()
        self.laps[name] = now - self.start
        self.start = now
        return self.laps[name]


def wait_for_jupyter(runtime: Path, process: subprocess.Popen, log: Path,
                     seconds: float = 180) -> dict:
    """The info (url, token, root_dir, ...) of the Jupyter server that ``process`` started,
    found in its runtime folder, once the server answers /api/status."""
    import json
    import urllib.request

    deadline = time.time() + seconds
    while True:
        assert process.poll() is None, f"the Jupyter server stopped:\n{log.read_text()[-6000:]}"
        assert time.time() < deadline, f"no Jupyter server in {seconds} s:\n{log.read_text()[-6000:]}"
        for info_file in runtime.glob("jpserver-*.json"):
            try:
                info = json.loads(info_file.read_text())
                url = f"{info['url'].rstrip('/')}/api/status?token={info['token']}"
                with urllib.request.urlopen(url, timeout=2):
                    return info
            except (OSError, ValueError, KeyError):
                pass
        time.sleep(0.5)
