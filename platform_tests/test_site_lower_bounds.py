"""The website's tools at the oldest versions pyproject declares (every package of the `site`
extra, and the test extra's check-jsonschema), on the oldest supported Python: the site builds
from the notebooks and passes its checks (notebooks, remote resources, LinkChecker, sections),
and the GitHub workflows validate against that check-jsonschema's vendored schema.

Needs the package registry; about a minute. Figures go to build/platforms/site_lower_bounds.json.
"""

from __future__ import annotations

import json
import sys

from packaging.requirements import Requirement
from packaging.version import Version
from support import (ROOT, Stopwatch, Venv, course_env, find_python, lower_bound,
                     newest_available_python, pyproject)


def test_the_site_builds_at_the_lower_bounds(tmp_path):
    clock = Stopwatch()
    python = find_python("3.10") or newest_available_python()
    venv = Venv(tmp_path / "lowest", python)
    site_tools = [Requirement(line).name for line in pyproject()["optional-dependencies"]["site"]]
    pins = {name: lower_bound(name, "site") for name in site_tools}
    pins["check-jsonschema"] = lower_bound("check-jsonschema", "test")
    venv.pip("install", "--quiet", "--upgrade", "pip")
    # tomli: pyproject.toml is read with it before Python 3.11 (the course's test extra has it)
    venv.pip("install", "--quiet", *(f"{name}=={version}" for name, version in pins.items()),
             "tomli>=2; python_version < '3.11'")
    probe = venv.run("-c", "import importlib.metadata as m, json, platform, sys; "
                           f"print(json.dumps({{n: m.version(n) for n in {sorted(pins)}}})); "
                           "print(platform.python_version())")
    assert probe.returncode == 0, probe.stderr[-2000:]
    versions, python_version = probe.stdout.splitlines()
    assert {n: Version(v) for n, v in json.loads(versions).items()} == {
        n: Version(v) for n, v in pins.items()}
    clock.lap("install")

    built = venv.run(ROOT / "tools" / "website" / "build_site.py", "--out", tmp_path / "site",
                     env=course_env(), timeout=900)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    assert (tmp_path / "site" / "notebooks" / "03_grad_cam.html").is_file()
    clock.lap("site")

    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    checked = venv.run("-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
                       *workflows)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    clock.lap("workflows")

    figures = {"python": python_version, "versions": pins, "build": built.stdout.strip(),
               "seconds": {k: round(v, 1) for k, v in clock.laps.items()}}
    out = ROOT / "build" / "platforms"
    out.mkdir(parents=True, exist_ok=True)
    (out / "site_lower_bounds.json").write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2), file=sys.stderr)
