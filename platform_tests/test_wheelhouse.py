"""An offline workshop: build a wheelhouse for this machine, install from it with no index,
and run notebook 02 (real photos, EfficientNet-Lite0) under nbval.

Needs the package registry to build the wheelhouse (pip's cache makes a second run quick);
the install itself is `--no-index`. Figures go to build/platforms/wheelhouse.json.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from support import ROOT, Stopwatch, Venv, course_env


def test_wheelhouse_installs_offline_and_runs_notebook_02(tmp_path):
    clock = Stopwatch()
    wheelhouse = tmp_path / "wheelhouse"
    # Built as `make wheelhouse` builds it (in the course's venv, which has pip and uv), with
    # the test tools added so that nbval can run from it.
    done = subprocess.run([sys.executable, str(ROOT / "tools" / "wheelhouse.py"),
                           "--extras", "cpu,lab,test", "--dest", str(wheelhouse)],
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    assert any(w.startswith("camutils-") for w in wheels)
    size = sum(p.stat().st_size for p in wheelhouse.glob("*.whl")) / 2**30
    clock.lap("wheelhouse")

    venv = Venv(tmp_path / "offline", sys.executable)
    venv.pip("install", "--quiet", "--no-index", "--find-links", str(wheelhouse),
             "camutils[cpu,lab,test]")
    clock.lap("offline install")

    folder = tmp_path / "notebooks"
    folder.mkdir()
    shutil.copy(ROOT / "notebooks" / "02_cam_on_real_photos.ipynb", folder)
    result = venv.run("-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                      "-q", "02_cam_on_real_photos.ipynb", cwd=folder, env=course_env())
    clock.lap("notebook 02")
    figures = {"wheels": len(wheels), "wheelhouse_gib": round(size, 2),
               "venv_gib": round(venv.size_gib(), 2),
               "seconds": {k: round(v, 1) for k, v in clock.laps.items()},
               "nbval": result.stdout.strip().splitlines()[-1:]}
    (ROOT / "build" / "platforms").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "platforms" / "wheelhouse.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
