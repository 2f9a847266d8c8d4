"""An offline workshop, as the README tells it: build the wheelhouse (`make wheelhouse`), then,
with every package index unreachable, run the README's three commands verbatim in a copy of
the repository: a venv, the install from the wheelhouse, and `python course.py lab`, which must
serve notebook 00 in JupyterLab. Then notebooks 00 and 02 run under nbval in that venv's kernel.

"Unreachable": pip's configuration files are not read (PIP_CONFIG_FILE is the null device),
no other PIP_ setting or proxy is passed on, and PIP_INDEX_URL is a local port that refuses
connections, so any step that asked an index for a package would fail.

Needs the package registry to build the wheelhouse (pip's cache makes a second run quick).
Figures go to build/platforms/wheelhouse.json.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

from support import ROOT, Stopwatch, course_env, git_copy_of_working_tree, wait_for_jupyter

PROXIES = {"http_proxy", "https_proxy", "all_proxy", "ftp_proxy", "no_proxy"}


def readme_workshop_commands(readme: str) -> list[str]:
    """The commands of the README's "Workshop without Wi-Fi" block, as a learner types them."""
    section = readme.split("**Workshop without Wi-Fi**", 1)[1]
    block = re.search(r"```[a-z]*\n(.*?)```", section, re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def offline_env(index_port: int) -> dict:
    env = {k: v for k, v in course_env().items()
           if not k.upper().startswith(("PIP_", "UV_")) and k.lower() not in PROXIES}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=f"http://127.0.0.1:{index_port}/simple/")
    return env


def _get(url: str, timeout: float = 5):
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return response.status, response.read()


def test_readme_workshop_steps_work_offline_and_serve_notebook_00(tmp_path):
    clock = Stopwatch()
    copy = git_copy_of_working_tree(tmp_path / "course")
    readme = (copy / "README.md").read_text(encoding="utf-8")
    commands = readme_workshop_commands(readme)
    assert [c.split()[:3] for c in commands] == [
        ["python", "-m", "venv"], [".venv/bin/python", "-m", "pip"], ["python", "course.py", "lab"]]

    # `make wheelhouse` in the copy: tools/wheelhouse.py with its defaults, in the course's venv.
    done = subprocess.run([sys.executable, "tools/wheelhouse.py"], cwd=copy,
                          capture_output=True, text=True, timeout=3600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    wheelhouse = copy / "wheelhouse"
    wheels = sorted(p.name for p in wheelhouse.glob("*.whl"))
    assert any(w.startswith("camutils-") for w in wheels)
    size = sum(p.stat().st_size for p in wheelhouse.glob("*.whl")) / 2**30
    clock.lap("wheelhouse")

    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        env = offline_env(closed.getsockname()[1])
        python = sys.executable  # the laptop's `python`
        *install, lab = [shlex.split(c) for c in commands]
        for argv in install:
            argv = [python if argv[0] == "python" else argv[0], *argv[1:]]
            done = subprocess.run(argv, cwd=copy, env=env, capture_output=True, text=True,
                                  timeout=1800)
            assert done.returncode == 0, f"{argv}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        clock.lap("offline install")

        runtime, config = tmp_path / "jupyter-runtime", tmp_path / "jupyter-config"
        config.mkdir()
        (config / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"open_browser": False}}))  # a headless machine
        lab_env = dict(env, JUPYTER_RUNTIME_DIR=str(runtime), JUPYTER_CONFIG_DIR=str(config),
                       JUPYTER_DATA_DIR=str(tmp_path / "jupyter-data"))
        log = tmp_path / "lab.log"
        with open(log, "w") as out:
            server = subprocess.Popen([python, *lab[1:]], cwd=copy, env=lab_env, stdout=out,
                                      stderr=subprocess.STDOUT, start_new_session=True)
        try:
            info = wait_for_jupyter(runtime, server, log)
            base, token = info["url"].rstrip("/"), info["token"]
            clock.lap("lab started")
            assert Path(info["root_dir"]).resolve() == (copy / "notebooks").resolve()
            status, body = _get(f"{base}/api/contents/00_start_here.ipynb?token={token}")
            model = json.loads(body)
            assert status == 200 and model["type"] == "notebook"
            assert model["content"]["cells"][0]["source"].startswith("# 00")
            status, body = _get(f"{base}/lab/tree/00_start_here.ipynb?token={token}")
            assert status == 200 and b"JupyterLab" in body
            request = urllib.request.Request(f"{base}/api/shutdown?token={token}", method="POST")
            urllib.request.urlopen(request, timeout=10).close()
            assert server.wait(timeout=60) == 0, log.read_text()[-3000:]
        finally:
            if server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
        assert not (copy / ".venv" / ".installed").exists(), "course.py lab reinstalled the course"
        assert "Installing" not in log.read_text(), log.read_text()[-3000:]

    # Notebooks 00 and 02 (real photos, EfficientNet-Lite0) in that venv's kernel, driven by
    # this venv's nbval (the offline venv holds only what the README installs).
    kernels = tmp_path / "jupyter-path" / "kernels" / "offline"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(copy / ".venv" / "bin" / "python"), "-m", "ipykernel_launcher",
                 "-f", "{connection_file}"], "display_name": "offline", "language": "python"}))
    notebooks = ["00_start_here.ipynb", "02_cam_on_real_photos.ipynb"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-kernel-name", "offline",
         "-p", "no:cacheprovider", "-q", *notebooks], cwd=copy / "notebooks",
        env=dict(course_env(), JUPYTER_PATH=str(tmp_path / "jupyter-path")),
        capture_output=True, text=True, timeout=1800)
    clock.lap("notebooks 00 and 02")
    venv_gib = sum(p.stat().st_size for p in (copy / ".venv").rglob("*") if p.is_file()) / 2**30
    figures = {"wheels": len(wheels), "wheelhouse_gib": round(size, 2),
               "venv_gib": round(venv_gib, 2),
               "seconds": {k: round(v, 1) for k, v in clock.laps.items()},
               "nbval": result.stdout.strip().splitlines()[-1:]}
    (ROOT / "build" / "platforms").mkdir(parents=True, exist_ok=True)
    (ROOT / "build" / "platforms" / "wheelhouse.json").write_text(json.dumps(figures, indent=1))
    print(json.dumps(figures, indent=1))
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
