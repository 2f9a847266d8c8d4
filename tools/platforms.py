"""Where the course runs: the platforms and Pythons it supports, in one table.

Used by tools/wheelhouse.py (which wheels to download) and platform_tests/ (the dependency
resolution matrix). The Python versions are pyproject.toml's classifiers.

Markers are evaluated for the *target* platform: pip cannot do that (``pip install --platform``
still evaluates ``sys_platform`` and ``platform_machine`` for the machine it runs on, so a
dry run "for macOS" on Linux asks for tensorflow-cpu), so the target's full dependency set is
resolved with uv (``uv pip compile --python-platform``), a resolver that does.
"""

from __future__ import annotations

import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Platform:
    """One operating system and processor, as uv and pip name it."""

    name: str
    uv_target: str              # uv's --python-platform
    pip_tags: tuple[str, ...]   # pip's --platform values (every tag its wheels may carry)
    unsupported: str = ""       # why, when the course cannot be installed there at all
    pythons: tuple[str, ...] = ()   # the Pythons supported here, when not all of them
    why_not_others: str = ""    # why the other Pythons are not

    @property
    def supported(self) -> bool:
        return not self.unsupported

    def supports(self, python: str) -> bool:
        return self.supported and (not self.pythons or python in self.pythons)


def _manylinux(arch: str) -> tuple[str, ...]:
    # TensorFlow 2.21 needs glibc 2.27; older wheels of other packages carry older tags.
    return tuple(f"manylinux_2_{minor}_{arch}" for minor in (28, 27, 24, 17)) + (
        f"manylinux2014_{arch}",)


PLATFORMS = (
    Platform("linux-x86_64", "x86_64-manylinux_2_28", _manylinux("x86_64")),
    Platform("linux-aarch64", "aarch64-manylinux_2_28", _manylinux("aarch64")),
    Platform("macos-arm64", "aarch64-apple-darwin",
             tuple(f"macosx_{v}_0_arm64" for v in (14, 13, 12, 11))
             + ("macosx_11_0_universal2", "macosx_10_9_universal2")),
    Platform("windows-x86_64", "x86_64-pc-windows-msvc", ("win_amd64",)),
    Platform("macos-x86_64", "x86_64-apple-darwin",
             tuple(f"macosx_{v}_0_x86_64" for v in (14, 13, 12, 11)) + ("macosx_10_15_x86_64",
                                                                       "macosx_10_9_x86_64"),
             pythons=("3.10", "3.11", "3.12"),
             why_not_others="TensorFlow 2.16 is the last release with Intel-macOS wheels, "
                            "and it has none for Python 3.13"),
    Platform("windows-arm64", "aarch64-pc-windows-msvc", ("win_arm64",),
             unsupported="TensorFlow publishes no Windows-on-ARM wheels"),
)


def platform(name: str) -> Platform:
    for p in PLATFORMS:
        if p.name == name:
            return p
    raise SystemExit(f"unknown platform {name!r}; choose from {[p.name for p in PLATFORMS]}")


def this_platform() -> Platform:
    import platform as stdlib_platform

    machine = stdlib_platform.machine().lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine, machine)
    system = {"linux": "linux", "darwin": "macos", "win32": "windows"}.get(sys.platform, "")
    name = f"{system}-{'arm64' if system == 'macos' and arch == 'aarch64' else arch}"
    return platform(name)


def supported_pythons() -> list[str]:
    """pyproject.toml's Python classifiers: the versions the course is tested on."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    found = set(re.findall(r'"Programming Language :: Python :: (3\.\d+)"', text))
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def resolve(target: Platform, python: str, extras: str = "cpu,lab", resolution: str = "highest",
            project: Path = ROOT, timeout: float = 300) -> subprocess.CompletedProcess:
    """Resolve the course's full dependency set for one (platform, Python), wheels only.

    ``resolution`` is uv's: ``highest`` (what an install gets today) or ``lowest-direct``
    (the lowest versions pyproject allows). Returns uv's completed process: on success its
    stdout is the pinned list (one ``name==version`` a line, camutils itself left out); on
    failure stderr says why.
    """
    requirement = f"camutils{f'[{extras}]' if extras else ''} @ {project.resolve().as_uri()}"
    return compile_requirements(target, python, requirement, resolution, timeout)


def compile_requirements(target: Platform, python: str, requirements: str,
                         resolution: str = "highest", timeout: float = 300):
    """uv's resolution of ``requirements`` (requirements-file text) for one target, wheels only."""
    command = [sys.executable, "-m", "uv", "pip", "compile", "-", "--no-config",
               "--python-platform", target.uv_target, "--python-version", python,
               "--only-binary", ":all:", "--resolution", resolution,
               "--no-header", "--no-annotate",
               "--no-emit-package", "camutils", "--no-python-downloads", "--quiet"]
    return subprocess.run(command, input=requirements, capture_output=True, text=True,
                          timeout=timeout)
