"""Helpers for tests in a real browser: a JupyterLab server and headless Debian Chromium.

Nothing here downloads a browser or a driver: the test uses Debian's ``chromium`` and
``chromedriver`` (``apt-get install chromium chromium-driver``), driven by Selenium with the
driver's path given, so that Selenium Manager never runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "artifacts" / "browser"
ENABLE_HINT = ("apt-get install chromium chromium-driver (Debian), then pip install -e \".[dev]\" "
               "for selenium")

CHROMIUM_FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-extensions", "--disable-sync", "--window-size=1400,1200",
)


def missing_browser() -> str | None:
    """Why the browser test cannot run here (None when it can)."""
    for program in ("chromium", "chromedriver"):
        if shutil.which(program) is None:
            return f"{program} is not installed; to enable the browser test: {ENABLE_HINT}"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return f"selenium is not installed; to enable the browser test: {ENABLE_HINT}"
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_settings(folder: Path) -> None:
    """JupyterLab user settings for a test: every cell in the DOM, no news, no update checks."""
    settings = {
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


@contextlib.contextmanager
def jupyter_lab(root: Path, scratch: Path, timeout: float = 90.0):
    """Serve ``root`` with JupyterLab on a free local port; yields ``(base_url, token)``.

    The server runs in its own process group with its own runtime, config, settings and
    workspace folders under ``scratch``, and is stopped (the whole group) on exit.
    """
    port, token = free_port(), "camutils-browser-test"
    _write_settings(scratch / "settings")
    env = dict(
        os.environ, JUPYTER_RUNTIME_DIR=str(scratch / "runtime"),
        JUPYTER_CONFIG_DIR=str(scratch / "config"),
        JUPYTERLAB_SETTINGS_DIR=str(scratch / "settings"),
        JUPYTERLAB_WORKSPACES_DIR=str(scratch / "workspaces"),
        TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0",
        MPLBACKEND="module://matplotlib_inline.backend_inline",
    )
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")
    log_path = scratch / "lab.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env,
                                  start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None:
                    raise RuntimeError("JupyterLab stopped:\n" + log_path.read_text()) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(f"JupyterLab did not answer in {timeout:.0f} s:\n"
                                       + log_path.read_text()) from None
                time.sleep(0.25)  # polling a server that is starting, not synchronisation
        yield base, token
    finally:
        stop_process_group(server)


def stop_process_group(process: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session=True`` and everything it started."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@contextlib.contextmanager
def chromium(profile: Path, logs: bool = False):
    """Headless Debian Chromium through Debian's chromedriver; yields the Selenium driver.

    With ``logs``, the driver keeps the console (``driver.get_log("browser")``) and every
    network event (``driver.get_log("performance")``)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    if logs:
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(executable_path=shutil.which("chromedriver"),
                      log_output=str(profile.parent / "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        yield driver
    finally:
        driver.quit()


# Reads an <img> into a canvas and returns [width, height, FNV-1a hash of the RGBA bytes,
# mean byte value], or null while the image is not loaded yet.
IMAGE_DIGEST_JS = """
const img = arguments[0];
if (!img || !img.complete || img.naturalWidth === 0) { return null; }
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(img, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
let hash = 2166136261, total = 0;
for (let i = 0; i < data.length; i++) {
  hash = Math.imul(hash ^ data[i], 16777619) >>> 0;
  total += data[i];
}
return [canvas.width, canvas.height, hash, total / data.length];
"""
