"""The oldest supported versions, whole: the unit tests, and the notebooks that the Colab-like
run does not execute (04-08), in a venv with the lower bounds of TensorFlow and Keras that
pyproject declares (and the NumPy 1.x that TensorFlow 2.16 brings), on the oldest supported
Python. test_colab.py runs notebooks 00-03 at the same versions.

Its first run found two bugs that the newest versions hide: Keras 3.3 lets a layer shrink a
map to zero size (the clear error for images too small for a model missed it), and notebook
05 called np.trapezoid, which NumPy 1.x does not have.

Needs the package registry; several minutes. Figures go to build/platforms/lower_bounds.json.
"""

from __future__ import annotations

import json

from packaging.version import Version
from support import (ROOT, Stopwatch, Venv, course_env, find_python, git_copy_of_working_tree,
                     lower_bound, newest_available_python)

NOTEBOOKS = ["04_beyond_grad_cam", "05_evaluating_explanations",
             "06_case_study_shortcut_learning", "07_explorer", "08_auditing_a_dataset"]
# `make lab` builds the project's own .venv (test_lab.py); the browser test needs JupyterLab:
# both test the course's set-up, not the library at these versions.
NOT_HERE = ["--ignore=tests/test_lab.py", "-m", "not retrain and not browser"]


def _last_line(result) -> str:
    lines = result.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def test_unit_tests_and_notebooks_pass_at_the_lower_bounds(tmp_path):
    clock = Stopwatch()
    python = find_python("3.10") or find_python("3.12") or newest_available_python()
    venv = Venv(tmp_path / "lowest", python)
    tensorflow, keras = lower_bound("tensorflow-cpu", "cpu"), lower_bound("keras")
    constraints = tmp_path / "constraints.txt"
    constraints.write_text(f"tensorflow-cpu=={tensorflow}\ntensorflow=={tensorflow}\n"
                           f"keras=={keras}\n")
    copy = git_copy_of_working_tree(tmp_path / "repository")
    venv.pip("install", "--quiet", "--upgrade", "pip")
    venv.pip("install", "--quiet", "-c", constraints, "-e", f"{copy}[cpu,test]")
    probe = venv.run("-c", "import tensorflow as tf, keras, numpy, platform; print(tf.__version__, "
                           "keras.__version__, numpy.__version__, platform.python_version())")
    assert probe.returncode == 0, probe.stderr[-2000:]
    versions = dict(zip(["tensorflow", "keras", "numpy", "python"], probe.stdout.split()))
    assert Version(versions["tensorflow"]) == Version(tensorflow)
    assert Version(versions["keras"]) == Version(keras)
    clock.lap("install")

    env = course_env()
    workers = ["-n", "2", "--dist", "loadfile"]
    unit = venv.run("-m", "pytest", "tests", *NOT_HERE, *workers, "-q", "-p", "no:cacheprovider",
                    cwd=copy, env=env, timeout=3600)
    clock.lap("unit tests")
    notebooks = venv.run("-m", "pytest", "--nbval-lax", "--nbval-current-env", *workers, "-q",
                         "-p", "no:cacheprovider", "--nbval-cell-timeout=900",
                         *(f"notebooks/{n}.ipynb" for n in NOTEBOOKS),
                         cwd=copy, env=env, timeout=3600)
    clock.lap("notebooks 04-08")

    figures = {"versions": versions, "seconds": {k: round(v, 1) for k, v in clock.laps.items()},
               "venv_gib": round(venv.size_gib(), 2),
               "unit tests": _last_line(unit), "notebooks 04-08": _last_line(notebooks)}
    (ROOT / "build" / "platforms").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "platforms" / "lower_bounds.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    assert unit.returncode == 0, unit.stdout[-6000:] + unit.stderr[-2000:]
    assert notebooks.returncode == 0, notebooks.stdout[-6000:] + notebooks.stderr[-2000:]
