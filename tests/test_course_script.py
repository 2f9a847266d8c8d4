"""course.py: the one entry point on every OS, which the Makefile only forwards to."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import course  # noqa: E402


def test_supported_pythons_come_from_pyproject():
    assert course.supported_pythons() == ["3.10", "3.11", "3.12", "3.13"]
    course.check_python((3, 10))
    course.check_python((3, 13))


@pytest.mark.parametrize("version, words", [((3, 9), "3.9"), ((3, 14), "3.14")])
def test_unsupported_python_is_refused_with_the_remedy(version, words):
    with pytest.raises(SystemExit) as refused:
        course.check_python(version)
    message = str(refused.value)
    assert words in message and "3.10 to 3.13" in message and "course.py lab" in message


def test_venv_python_on_windows_and_elsewhere(monkeypatch):
    monkeypatch.setattr(course, "WINDOWS", True)
    assert course.venv_python().as_posix().endswith(".venv/Scripts/python.exe")
    monkeypatch.setattr(course, "WINDOWS", False)
    assert course.venv_python().as_posix().endswith(".venv/bin/python")


def test_tool_arguments_pass_through_untouched(monkeypatch):
    seen = {}

    def fake_test(args):
        seen.update(onednn=args.onednn, rest=args.rest)
        return 0

    monkeypatch.setitem(course.COMMANDS, "test", (fake_test, "unit tests"))
    assert course.main(["test", "--onednn", "on", "-k", "cam", "--co", "-x"]) == 0
    # pytest's own options (--co is not mistaken for --course) reach pytest as typed.
    assert seen == {"onednn": "on", "rest": ["-k", "cam", "--co", "-x"]}


def test_environment_of_every_command():
    env = course.course_env("on")
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1" and env["TF_CPP_MIN_LOG_LEVEL"] == "3"
    assert course.course_env()["TF_ENABLE_ONEDNN_OPTS"] == "0"
    with pytest.raises(SystemExit):
        course.course_env("maybe")


def test_every_make_target_forwards_to_course_py():
    makefile = (ROOT / "Makefile").read_text()
    recipes = re.findall(r"^\t(.+)$", makefile, re.M)
    assert recipes and all(line.lstrip("@").startswith("$(COURSE) ") for line in recipes), recipes
    for command in re.findall(r"\$\(COURSE\) (\S+)", makefile):
        assert command == "--help" or command in course.COMMANDS, command


def test_help_runs_on_a_bare_python():
    done = subprocess.run([sys.executable, "-I", str(ROOT / "course.py"), "--help"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "doctor" in done.stdout and "lab" in done.stdout


def test_make_test_splits_the_work_over_the_cores_and_keeps_a_notebook_in_one_process(monkeypatch):
    monkeypatch.delenv("COURSE_TEST_WORKERS", raising=False)
    monkeypatch.setattr(course.os, "cpu_count", lambda: 8)
    assert course.test_workers() == ["-n", "2", "--dist", "loadfile"]   # at most two kernels
    monkeypatch.setattr(course.os, "cpu_count", lambda: 1)
    assert course.test_workers() == []
    monkeypatch.setenv("COURSE_TEST_WORKERS", "3")
    assert course.test_workers() == ["-n", "3", "--dist", "loadfile"]
    calls = []
    monkeypatch.setattr(course, "run", lambda cmd, **kw: calls.append([str(c) for c in cmd]) or 0)
    course.unit_tests(Path("python"), {}, [])
    course.notebook_tests(Path("python"), {}, [])
    unit, notebooks = calls
    assert "not browser" in " ".join(unit) and "tests/test_browser.py" in notebooks
    assert {"notebooks", "--nbval-lax"} <= set(notebooks)


def _fake_distribution(site: Path, name: str, version: str, requires: list[str]) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    (info / "METADATA").write_text("\n".join(lines + [f"Requires-Dist: {r}" for r in requires]) + "\n")


@pytest.mark.parametrize("extras, missing", [
    ("cpu,lab", ""),                                  # everything the lab needs is there
    ("dev", "course-fake-pytest>=8"),                    # dev names camutils[cpu,lab,test]
    ("cpu,lab,old", "course-fake-widgets>=9 (8.1 is installed)"),
])
def test_the_installed_probe_reads_what_each_extra_requires(tmp_path, extras, missing):
    site = tmp_path / "site"
    _fake_distribution(site, "camutils", "0.1.0", [
        "course-fake-numpy>=1.26", "course-fake-widgets>=7.7,<9",
        'course-fake-tf>=2.16; extra == "cpu"', 'course-fake-lab>=4.4; extra == "lab"',
        'course-fake-pytest>=8; extra == "test"', 'course-fake-widgets>=9; extra == "old"',
        'camutils[cpu,lab,test]; extra == "dev"', 'course-fake-absent; python_version < "3"'])
    for name, version in [("course-fake-numpy", "2.0"), ("course-fake-widgets", "8.1"),
                          ("course-fake-tf", "2.21"), ("course-fake-lab", "4.5")]:
        _fake_distribution(site, name, version, [])
    # the probe as the venv runs it, its distributions found first on sys.path
    program = (f"import sys; sys.path.insert(0, {str(site)!r}); sys.argv[1:] = [{extras!r}]; "
               f"exec({course._INSTALLED_PROBE!r})")
    done = subprocess.run([sys.executable, "-I", "-c", program], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == (1 if missing else 0), done.stderr
    assert done.stdout.strip() == missing


def test_setup_installs_only_what_is_not_there(tmp_path, monkeypatch):
    """No stamp but the course installed by hand (the workshop's wheelhouse): nothing runs,
    so `course.py lab` needs no network. Missing, or installed from an older pyproject: pip.
    pip failing says how to install offline."""
    venv = tmp_path / ".venv"
    python = venv / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("")
    monkeypatch.setattr(course, "VENV", venv)
    monkeypatch.setattr(course, "STAMP", venv / ".installed")
    monkeypatch.setattr(course, "venv_python", lambda: python)
    monkeypatch.setattr(course, "ROOT", tmp_path)
    monkeypatch.setattr(course, "_install_key", lambda: "this pyproject")
    probed, calls = [], []
    there = {"cpu,lab": True, "dev": False}
    monkeypatch.setattr(course, "installed", lambda p, extras: probed.append(extras) or there[extras])
    monkeypatch.setattr(course, "run", lambda command, **kw: calls.append(command) or 0)

    assert course.setup(extras=course.LAB) == python and calls == [] and probed == ["cpu,lab"]
    course.setup()  # dev is not there: pip installs it, and stamps it
    assert [c[4:] for c in calls] == [["--quiet", "--upgrade", "pip"], ["--quiet", "-e", ".[dev]"]]
    assert course.STAMP.read_text() == "this pyproject"
    calls.clear(), probed.clear()
    course.setup(), course.setup(extras=course.LAB)
    assert calls == [] and probed == []  # the stamp answers
    monkeypatch.setattr(course, "_install_key", lambda: "a newer pyproject")
    there["dev"] = True  # installed, but from the older pyproject: the stamp is stale
    course.setup()
    assert len(calls) == 2 and probed == []

    course.STAMP.unlink()
    there["cpu,lab"] = False
    monkeypatch.setattr(course, "run", lambda command, **kw: 1)  # no network
    with pytest.raises(SystemExit, match=r'--no-index --find-links wheelhouse "camutils\[cpu,lab\]"'):
        course.setup(extras=course.LAB)


@pytest.mark.parametrize("command, extras", [("lab", "cpu,lab"), ("doctor", "cpu,lab"),
                                             ("test", "dev"), ("notebooks", "dev")])
def test_each_command_asks_for_what_it_needs(monkeypatch, command, extras):
    asked = []

    def fake_setup(force=False, extras="dev"):
        asked.append(extras)
        raise SystemExit(0)

    monkeypatch.setattr(course, "setup", fake_setup)
    with pytest.raises(SystemExit):
        course.main([command])
    assert asked == [extras]
