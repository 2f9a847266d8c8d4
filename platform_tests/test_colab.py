"""Colab for real: the notebooks' own install command, in a venv that looks like Colab.

Colab brings Python 3.12 (or newer) with its own TensorFlow and Keras installed, built for
its GPU, and ipywidgets 7.7, which its front end draws: installing camutils must replace none
of them. This venv gets the oldest TensorFlow and Keras that pyproject allows (so it is also
the "oldest supported versions" run) and Colab's ipywidgets, then runs the install line of
notebook 00's setup cell verbatim, except that the repository URL points at a git copy of this
working tree, then executes notebooks 00-03 and the explorer's, 07, under nbval, and the
explorer's unit tests (tests/test_widgets.py) against the installed camutils.

Needs the package registry; takes several minutes. Figures go to build/platforms/colab.json.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil

import nbformat
from packaging.version import Version

from support import (ROOT, Stopwatch, Venv, course_env, find_python, git_copy_of_working_tree,
                     lower_bound, newest_available_python)

NOTEBOOKS = ["00_start_here", "01_cam_from_scratch", "02_cam_on_real_photos", "03_grad_cam",
             "07_explorer"]
# Colab's ipywidgets: its front end draws the 7.x widget protocol.
COLAB_IPYWIDGETS = "7.7.1"
# What Colab has before the setup cell runs, beside TensorFlow and Keras (unpinned: current).
COLAB_PREINSTALLED = ["numpy", "matplotlib", "scipy", "scikit-learn", "scikit-image",
                      "opencv-python", "tqdm", "ipykernel", f"ipywidgets=={COLAB_IPYWIDGETS}",
                      "h5py"]
# Only to run the notebooks as tests; not part of what is being checked.
HARNESS = ["pytest", "nbval"]
PROBE = ("import json, tensorflow as tf, keras, ipywidgets; "
         "print(json.dumps({'tensorflow': tf.__version__, 'tensorflow_path': tf.__file__, "
         "'keras': keras.__version__, 'keras_path': keras.__file__, "
         "'ipywidgets': ipywidgets.__version__, 'ipywidgets_path': ipywidgets.__file__}))")


def setup_cell_colab_branch() -> tuple[list[str], str]:
    """The lines that notebook 00's setup cell runs on Colab before its `%pip install` line,
    and that line, with the repository variable filled in."""
    nb = nbformat.read(ROOT / "notebooks" / "00_start_here.ipynb", as_version=4)
    setup = next(c for c in nb.cells if "setup" in c.metadata.get("tags", []))
    lines = setup.source.splitlines()
    start = next(i for i, line in enumerate(lines) if '"google.colab" in sys.modules' in line)
    end = next(i for i, line in enumerate(lines) if "%pip install" in line)
    repository = re.search(r'REPOSITORY = "([^"]+)"', setup.source).group(1)
    return ([line.strip() for line in lines[start + 1:end]],
            lines[end].strip().replace("{REPOSITORY}", repository))


def ipython_expand(venv: Venv, prelude: list[str], line: str) -> str:
    """IPython's {expression} expansion of a magic's line, evaluated in the venv."""
    def value(match):
        done = venv.run("-c", "; ".join(prelude + [f"print({match.group(1)})"]))
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    return re.sub(r"\{([^{}]+)\}", value, line)


def test_colab_install_keeps_tensorflow_and_runs_notebooks(tmp_path):
    clock = Stopwatch()
    python = find_python("3.12") or newest_available_python()
    venv = Venv(tmp_path / "colab", python)
    tensorflow, keras = lower_bound("tensorflow-cpu", "cpu"), lower_bound("keras")
    venv.pip("install", "--quiet", "--upgrade", "pip")  # Colab's pip is current
    venv.pip("install", "--quiet", f"tensorflow=={tensorflow}", f"keras=={keras}",
             *COLAB_PREINSTALLED, *HARNESS)
    probe = venv.run("-c", PROBE)
    assert probe.returncode == 0, f"the Colab-like venv itself is broken:\n{probe.stderr[-2000:]}"
    before = json.loads(probe.stdout)
    clock.lap("preinstall")

    # The setup cell's line, verbatim but for the URL: a git copy of this working tree.
    copy = git_copy_of_working_tree(tmp_path / "repository")
    prelude, line = setup_cell_colab_branch()
    url = re.search(r"git\+(\S+?)[\"']", line).group(1)
    command = shlex.split(ipython_expand(venv, prelude, line.replace(url, copy.as_uri())))
    assert command[:2] == ["%pip", "install"], line
    venv.pip(*command[1:])
    probe = venv.run("-c", PROBE)
    assert probe.returncode == 0, f"installing camutils broke TensorFlow:\n{probe.stderr[-2000:]}"
    after = json.loads(probe.stdout)
    clock.lap("camutils install")
    assert after == before, "installing camutils replaced Colab's TensorFlow, Keras or ipywidgets"
    assert Version(before["tensorflow"]) == Version(tensorflow)
    assert Version(before["keras"]) == Version(keras)
    assert Version(before["ipywidgets"]) == Version(COLAB_IPYWIDGETS)

    # Run the notebooks from a folder without the source tree, so the installed camutils runs.
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for name in NOTEBOOKS:
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", folder)
    env = course_env()
    env.pop("TF_ENABLE_ONEDNN_OPTS")  # as on Colab: the notebooks' setup decides
    result = venv.run("-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                      "--nbval-cell-timeout=900", "-q", *(f"{n}.ipynb" for n in NOTEBOOKS),
                      cwd=folder, env=env, timeout=3600)
    clock.lap("notebooks")
    # The explorer's unit tests on Colab's ipywidgets: widgets built, callbacks fired, an
    # upload in the 7.x protocol, the display bundle. Run from outside the copy so that the
    # installed camutils is the one tested.
    widgets = venv.run("-m", "pytest", "-q", "-p", "no:cacheprovider",
                       copy / "tests" / "test_widgets.py", cwd=folder, env=env, timeout=1800)
    clock.lap("explorer unit tests")
    final = json.loads(venv.run("-c", PROBE).stdout)
    figures = {"python": venv.run("-c", "import platform; print(platform.python_version())").stdout.strip(),
               "preinstalled": before, "seconds": {k: round(v, 1) for k, v in clock.laps.items()},
               "venv_gib": round(venv.size_gib(), 2), "nbval": result.stdout.strip().splitlines()[-1:],
               "explorer unit tests": widgets.stdout.strip().splitlines()[-1:]}
    (ROOT / "build" / "platforms").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "platforms" / "colab.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert widgets.returncode == 0, widgets.stdout[-6000:] + widgets.stderr[-2000:]
    assert "camutils" in venv.run("-m", "pip", "list").stdout
    assert final == before, "running the notebooks changed TensorFlow, Keras or ipywidgets"
