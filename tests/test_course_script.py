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
