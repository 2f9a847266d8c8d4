"""The notebooks' setup: quiet TensorFlow, seeds, version checks and an environment report.

Every notebook's setup cell calls `setup_notebook()`; notebook 00 shows `environment_report()`.
"""

from __future__ import annotations

import os
import platform
import random
import socket
import sys
import threading
import warnings

__all__ = ["setup_notebook", "environment_report", "is_online", "quiet_tensorflow"]

# Keras application weights live here: the one host the course could ever want to reach.
WEIGHTS_HOST = ("storage.googleapis.com", 443)


def quiet_tensorflow() -> None:
    """Silence TensorFlow's start-up log lines; effective only before TensorFlow is imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


def is_online(host: tuple[str, int] = WEIGHTS_HOST, timeout: float = 1.5) -> bool:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds (DNS included)."""
    result: list[bool] = []

    def probe():
        try:
            with socket.create_connection(host, timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _version(module: str) -> str | None:
    from importlib import metadata

    names = {"tensorflow": ["tensorflow-cpu", "tensorflow"], "cv2": ["opencv-python-headless"],
             "skimage": ["scikit-image"], "sklearn": ["scikit-learn"]}.get(module, [module])
    for name in names:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


def _memory_gib() -> tuple[float | None, float | None]:
    """(total, available) memory in GiB, from /proc/meminfo where there is one."""
    try:
        fields = dict(line.split(":", 1) for line in open("/proc/meminfo"))
        kib = lambda key: float(fields[key].split()[0])  # noqa: E731
        return kib("MemTotal") / 2**20, kib("MemAvailable") / 2**20
    except (OSError, KeyError, ValueError):
        return None, None


def environment_report(check_online: bool = True) -> dict:
    """Versions, processors, memory and network status, as a dict (ordered for display)."""
    import tensorflow as tf

    total, available = _memory_gib()
    gpus = [d.name for d in tf.config.list_physical_devices("GPU")]
    report = {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": _version("keras"),
        "numpy": _version("numpy"),
        "opencv": _version("cv2"),
        "matplotlib": _version("matplotlib"),
        "scikit-image": _version("skimage"),
        "ipywidgets": _version("ipywidgets"),
        "jupyterlab": _version("jupyterlab"),
        "camutils": sys.modules["camutils"].__version__,
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu cores": os.cpu_count(),
        "gpus": ", ".join(gpus) if gpus else "none (CPU only: the course needs no GPU)",
        "memory total (GiB)": None if total is None else round(total, 1),
        "memory available (GiB)": None if available is None else round(available, 1),
        "colab": "google.colab" in sys.modules,
    }
    if check_online:
        report["online"] = is_online()
    return report


def _check_versions(report: dict) -> list[str]:
    """Versions outside the range camutils declares (pyproject.toml, read from its metadata)."""
    from .preflight import requirement, supported_pythons

    problems = []
    pythons = supported_pythons()
    python = ".".join(str(report.get("python", "")).split(".")[:2])
    if pythons and python not in pythons:
        problems.append(f"python {report.get('python')} (the course supports "
                        f"{pythons[0]}-{pythons[-1]})")
    for key, names in (("tensorflow", ("tensorflow-cpu", "tensorflow")), ("keras", ("keras",))):
        req = next((r for r in map(requirement, names) if r is not None), None)
        spec = req.specifier if req is not None else None
        found = report.get(key)
        if not found:
            problems.append(f"{key} missing (the course supports {spec or 'any version'})")
        elif spec and not spec.contains(found, prereleases=True):
            problems.append(f"{key} {found} (the course supports {spec})")
    return problems


def setup_notebook(seed: int = 0, check_online: bool = True) -> dict:
    """Prepare a notebook: quiet TensorFlow, seed every generator, check versions, and the
    course's figure style (`camutils.plot.use_course_style`: sharp figures, readable text).

    Prints one line (versions, processor, online or offline) and returns the environment report.
    """
    quiet_tensorflow()
    import keras
    import numpy as np

    from .plot import use_course_style

    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    use_course_style()
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="keras")

    report = environment_report(check_online=check_online)
    for problem in _check_versions(report):
        warnings.warn(f"Unsupported version: {problem}. Run `python -m camutils doctor` for "
                      "the remedy.", stacklevel=2)
    processor = "GPU" if not report["gpus"].startswith("none") else "CPU only"
    network = {True: "online", False: "offline (fine: the course needs no network)",
               None: "network not checked"}[report.get("online")]
    print(f"camutils {report['camutils']} | TensorFlow {report['tensorflow']} | "
          f"Keras {report['keras']} | Python {report['python']} | {processor} | {network} | "
          f"seed {seed}")
    return report
