"""`make lab` serves the start notebook: start it on a free port, fetch the notebook, stop it."""

import json
import os
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

from browser_support import free_port, stop_process_group

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_make_lab_serves_the_start_notebook(tmp_path):
    port, token = free_port(), "course-test-token"
    args = (f"--no-browser --ip=127.0.0.1 --port={port} --IdentityProvider.token={token} "
            f"--ServerApp.port_retries=0")
    env = dict(os.environ, JUPYTER_RUNTIME_DIR=str(tmp_path), JUPYTER_CONFIG_DIR=str(tmp_path / "cfg"))
    log_path = tmp_path / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(["make", "--no-print-directory", "lab", f"LAB_ARGS={args}"],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                assert server.poll() is None, log_path.read_text()
                assert time.time() < deadline, "JupyterLab did not start in 90 s:\n" + log_path.read_text()
                time.sleep(0.5)
        with urllib.request.urlopen(f"{base}/api/contents/00_start_here.ipynb?token={token}") as r:
            model = json.load(r)
        assert model["type"] == "notebook"
        assert model["content"]["cells"][0]["source"].startswith("# 00")
        with urllib.request.urlopen(f"{base}/lab/tree/00_start_here.ipynb?token={token}") as r:
            assert r.status == 200 and "JupyterLab" in r.read().decode()
        # the server is rooted in notebooks/, and the page it opens in a browser (written to
        # its runtime folder) is the start notebook
        opened = " ".join(p.read_text() for p in tmp_path.glob("jpserver-file-to-run-*-open.html"))
        assert f":{port}/lab/tree/00_start_here.ipynb" in opened, log_path.read_text()
    finally:
        stop_process_group(server)

