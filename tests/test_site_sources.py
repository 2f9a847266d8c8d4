"""The course website's sources, its checks and the CI workflows, without building the site (so
without the `site` extra): which pages it has and in what order, the notebooks it refuses, the
remote resources and broken sections it finds, and the GitHub Actions workflows (valid against
the GitHub-workflow schema that check-jsonschema vendors, offline, and running only commands
that course.py runs and that are tested here). tests/test_site.py builds the site and opens it
in a browser (`make site-test`)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools" / "website"))
import build_site  # noqa: E402
import course  # noqa: E402
from site_contents import (SLUG, course_notebooks, reference_pages, site_url,  # noqa: E402
                           toctree_source)

WORKFLOWS = ROOT / ".github" / "workflows"
PLATFORM_WORKFLOWS = {"tests-linux.yml": "ubuntu-", "tests-macos.yml": "macos-",
                      "tests-windows.yml": "windows-"}


def _notebook(path: Path, cells: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4,
                                "nbformat_minor": 5}))
    return path


def _code(count, outputs):
    return {"cell_type": "code", "execution_count": count, "metadata": {}, "outputs": outputs,
            "source": "x = 1"}


PRINTED = {"output_type": "stream", "name": "stdout", "text": "1\n"}


# --------------------------------------------------------------------------- the pages


def test_the_notebooks_and_docs_are_found_in_course_order(tmp_path):
    for name in ("10_k", "00_a", "09_j", "learner/00_a", "scratch"):
        _notebook(tmp_path / "notebooks" / f"{name}.ipynb", [])
    (tmp_path / "docs").mkdir()
    for name in ("zeta", "cheatsheet", "instructor_guide"):
        (tmp_path / "docs" / f"{name}.md").write_text("# x\n")

    assert [p.stem for p in course_notebooks(tmp_path)] == ["00_a", "09_j", "10_k"]
    assert reference_pages(tmp_path) == ["docs/instructor_guide", "docs/cheatsheet", "docs/zeta"]
    toc = toctree_source(tmp_path)
    assert "notebooks/00_a\nnotebooks/09_j\nnotebooks/10_k\n" in toc
    assert "learner" not in toc and "scratch" not in toc
    assert toc.index("notebooks/10_k") < toc.index("docs/instructor_guide")


def test_every_committed_notebook_can_go_on_the_site():
    notebooks = course_notebooks()
    assert [p.name for p in notebooks] == sorted(
        p.name for p in (ROOT / "notebooks").glob("*.ipynb") if re.match(r"\d\d_", p.name))
    assert len(notebooks) >= 9
    build_site.check_notebooks(notebooks)  # raises SiteError naming any that cannot


def test_a_notebook_without_outputs_or_with_an_error_is_named(tmp_path):
    fine = _notebook(tmp_path / "notebooks" / "01_fine.ipynb", [_code(1, [PRINTED])])
    bare = _notebook(tmp_path / "notebooks" / "02_bare.ipynb", [_code(None, []), _code(None, [])])
    half = _notebook(tmp_path / "notebooks" / "03_half.ipynb", [_code(1, [PRINTED]),
                                                                _code(None, [])])
    error = {"output_type": "error", "ename": "ValueError", "evalue": "no such layer",
             "traceback": []}
    failed = _notebook(tmp_path / "notebooks" / "04_failed.ipynb",
                       [_code(1, [PRINTED]), _code(2, [error])])

    assert build_site.notebook_problems(fine) == []
    assert build_site.notebook_problems(bare) == ["it has no outputs (committed without being run)"]
    assert build_site.notebook_problems(half) == ["cell 2 has not been run"]
    assert build_site.notebook_problems(failed) == [
        "cell 2 has an error output (ValueError: no such layer)"]
    with pytest.raises(build_site.SiteError) as refused:
        build_site.check_notebooks([fine, bare, failed])
    message = str(refused.value)
    assert "notebooks/02_bare.ipynb: it has no outputs" in message
    assert "notebooks/04_failed.ipynb: cell 2 has an error output (ValueError" in message
    assert "01_fine" not in message and "make notebooks" in message


def test_the_build_stops_on_a_broken_notebook_before_anything_is_written(tmp_path, monkeypatch,
                                                                         capsys):
    failed = _notebook(tmp_path / "notebooks" / "05_failed.ipynb", [_code(1, [
        {"output_type": "error", "ename": "KeyError", "evalue": "'x'", "traceback": []}])])
    monkeypatch.setattr(build_site, "course_notebooks", lambda root: [failed])
    out = tmp_path / "site"
    assert build_site.main(["--out", str(out)]) == 1
    assert "notebooks/05_failed.ipynb: cell 1 has an error output (KeyError" in (
        capsys.readouterr().err)
    assert not out.exists()


def _pages(tmp_path: Path, pages: dict[str, str]) -> dict:
    for name, body in pages.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(f"<html><head></head><body>{body}</body></html>")
    return build_site.read_pages(tmp_path)


def test_remote_resources_are_found_and_links_to_other_sites_are_not(tmp_path):
    pages = _pages(tmp_path, {
        "index.html": '<script src="_static/theme.js"></script><img src="_images/a.png">'
                      '<a href="https://arxiv.org/abs/1512.04150">CAM</a>'
                      '<link rel="canonical" href="https://example.org/index.html">'
                      '<link rel="stylesheet" href="_static/a.css">',
        "docs/page.html": '<script src="https://cdn.example.org/mathjax.js"></script>'
                          '<link rel="stylesheet" href="//fonts.example.org/font.css">'
                          '<img srcset="small.png 1x, https://img.example.org/b.png 2x">',
    })
    assert build_site.remote_resources(pages) == [
        ("docs/page.html", "https://cdn.example.org/mathjax.js"),
        ("docs/page.html", "//fonts.example.org/font.css"),
        ("docs/page.html", "https://img.example.org/b.png"),
    ]


def test_links_into_missing_sections_are_named_with_their_page(tmp_path):
    pages = _pages(tmp_path, {
        "index.html": '<h1 id="top">x</h1><a href="#top">up</a><a href="#gone">down</a>'
                      '<a href="notebooks/03.html#grad-cam">ok</a>'
                      '<a href="notebooks/03.html#no-such-section">broken</a>'
                      '<a href="https://example.org/#anything">elsewhere</a>',
        "notebooks/03.html": '<section id="grad-cam"></section><a href="../index.html#top">'
                             'home</a><a href="../index.html#nowhere">x</a>',
    })
    found = {(b.page, b.target) for b in build_site.broken_anchors(pages)}
    assert found == {("index.html", "#gone"), ("index.html", "notebooks/03.html#no-such-section"),
                     ("notebooks/03.html", "../index.html#nowhere")}


# --------------------------------------------------------------------------- the workflows


def _workflow(name: str) -> dict:
    # YAML 1.1 reads the key `on` as True
    return {("on" if k is True else k): v
            for k, v in yaml.safe_load((WORKFLOWS / name).read_text()).items()}


def test_workflows_are_valid_github_workflows(tmp_path):
    """check-jsonschema with its vendored GitHub-workflow schema (offline), given every workflow
    and a copy of one broken on purpose (a job with `runs_on`): only the broken one fails, so
    the check can fail and the workflows pass it (one process: it takes seconds to start)."""
    workflows = sorted(WORKFLOWS.glob("*.yml"))
    assert {p.name for p in workflows} >= {*PLATFORM_WORKFLOWS, "tests.yml", "pages.yml"}
    broken = tmp_path / "broken.yml"
    broken.write_text((WORKFLOWS / "pages.yml").read_text().replace("runs-on:", "runs_on:"))
    done = subprocess.run([sys.executable, "-m", "check_jsonschema", "--builtin-schema",
                           "vendor.github-workflows", *map(str, workflows), str(broken)],
                          capture_output=True, text=True, timeout=300)
    failed = set(re.findall(r"^\s*(\S+?)::\$", done.stdout, re.M))
    assert done.returncode == 1 and failed == {str(broken)}, done.stdout + done.stderr
    assert "'runs-on' is a required property" in done.stdout


def _run_steps() -> list[tuple[str, str]]:
    found = []
    for path in sorted(WORKFLOWS.glob("*.yml")):
        for job in _workflow(path.name)["jobs"].values():
            found += [(path.name, step["run"]) for step in job.get("steps", []) if "run" in step]
    return found


def test_workflows_run_only_course_commands_that_are_tested_here():
    """Every `run:` is `python course.py <command>`, and .ci/run runs each command here through
    its make target (site-test runs `site`, then tests what it built: the next test)."""
    make_target = {"setup": "venv", "test": "test", "site": "site-test"}
    recipes = dict(re.findall(r"^([\w-]+):\n\t\$\(COURSE\) ([\w-]+)",
                              (ROOT / "Makefile").read_text(), re.M))
    ci = (ROOT / ".ci" / "run").read_text()
    steps = _run_steps()
    assert steps
    for workflow, command in steps:
        match = re.fullmatch(r"python course\.py ([\w-]+)", command.strip())
        assert match, f"{workflow} runs {command!r}, not a course.py command"
        name = match.group(1)
        assert name in course.COMMANDS and name in make_target, (workflow, name)
        target = make_target[name]
        assert recipes[target] == (name if name != "site" else "site-test")
        assert re.search(rf"^make {target}\b", ci, re.M), f".ci/run does not run make {target}"


def test_site_test_runs_the_very_command_the_pages_workflow_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "setup", lambda: Path("python"))
    monkeypatch.setattr(course, "install_extra", lambda python, extra: calls.append(["extra",
                                                                                      extra]))
    monkeypatch.setattr(course, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    assert course.main(["site-test", "-x"]) == 0
    assert ["extra", "site"] in calls
    builds = [c for c in calls if "tools/website/build_site.py" in c]
    tests = [c for c in calls if "tests/test_site.py" in c]
    assert builds and tests and calls.index(builds[0]) < calls.index(tests[0])
    assert tests[0][-1] == "-x"


def test_every_platform_is_tested_at_the_lowest_and_highest_python():
    pythons = course.supported_pythons()
    matrix = _workflow("tests.yml")["jobs"]["test"]["strategy"]["matrix"]["python"]
    assert matrix == [pythons[0], pythons[-1]]
    assert "workflow_call" in _workflow("tests.yml")["on"]
    readme = (ROOT / "README.md").read_text()
    for name, runner in PLATFORM_WORKFLOWS.items():
        workflow = _workflow(name)
        (job,) = workflow["jobs"].values()
        assert job["uses"] == "./.github/workflows/tests.yml"
        assert job["with"]["runner"].startswith(runner)
        assert {"push", "pull_request"} <= set(workflow["on"])
        badge = f"https://github.com/{SLUG}/actions/workflows/{name}/badge.svg"
        assert f"[![{workflow['name']}]({badge})](https://github.com/{SLUG}/actions/workflows/" \
               f"{name})" in readme


def test_the_site_is_published_from_main_and_linked_from_the_readme():
    pages = _workflow("pages.yml")
    assert pages["on"]["push"]["branches"] == ["main"]
    assert pages["permissions"]["pages"] == "write"
    build, deploy = pages["jobs"]["build"], pages["jobs"]["deploy"]
    upload = [s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", "")]
    assert upload and upload[0]["with"]["path"] == "build/site"
    assert build_site.DEFAULT_OUT == ROOT / "build" / "site"
    assert any("deploy-pages" in s.get("uses", "") for s in deploy["steps"])
    assert site_url() == f"https://{SLUG.split('/')[0].lower()}.github.io/{SLUG.split('/')[1]}/"
    assert f"]({site_url()})" in (ROOT / "README.md").read_text()


# --------------------------------------------------------------------------- course.py


def test_the_site_extra_is_installed_once_per_pyproject(tmp_path, monkeypatch):
    monkeypatch.setattr(course, "VENV", tmp_path)
    calls = []
    monkeypatch.setattr(course, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]))
    course.install_extra(Path("python"), "site")
    course.install_extra(Path("python"), "site")
    assert calls == [["python", "-m", "pip", "install", "--quiet", "-e", ".[site]"]]
    (tmp_path / ".installed-site").write_text("an older pyproject.toml")
    course.install_extra(Path("python"), "site")
    assert len(calls) == 2
    # the plain set-up does not bring the site's tools
    extras = re.search(r"^dev = \[(.*)\]", (ROOT / "pyproject.toml").read_text(), re.M).group(1)
    assert "site" not in extras


def test_unit_tests_leave_the_site_and_browser_tests_to_their_commands(monkeypatch):
    calls = []
    monkeypatch.setattr(course, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    course.unit_tests(Path("python"), {}, [])
    assert "not retrain and not browser and not site" in calls[0]
