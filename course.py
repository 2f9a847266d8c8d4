"""The course's commands, the same on Linux, macOS and Windows.

    python course.py lab        # set up .venv if needed, then open the course in JupyterLab
    python course.py test       # unit tests, then every notebook under nbval (offline)

On Windows, type ``py course.py lab`` (``py -3.12 course.py lab`` picks a Python). On Linux and
macOS, ``make lab`` and ``make test`` call this script. ``python course.py --help`` lists every
command. Only the standard library is used here, so any Python 3.10-3.13 can run it before
anything is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from tools.platforms import supported_pythons  # noqa: E402

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
# What `lab` and `doctor` need in .venv; every other command needs the `dev` extra.
LAB = "cpu,lab"
NOTEBOOKS = ROOT / "notebooks"
WINDOWS = os.name == "nt"

# No TensorFlow start-up lines in notebook outputs; stable hashing for reproducible runs.
BASE_ENV = {"TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONHASHSEED": "0"}

# --------------------------------------------------------------------------- pyproject


def pyproject_text() -> str:
    return (ROOT / "pyproject.toml").read_text(encoding="utf-8")


def check_python(version: tuple[int, int] = sys.version_info[:2]) -> None:
    """Refuse, with the remedy, a Python outside the tested range."""
    pythons = supported_pythons()
    if f"{version[0]}.{version[1]}" in pythons:
        return
    exe = "py -3.12" if WINDOWS else "python3.12"
    raise SystemExit(
        f"The course runs on Python {pythons[0]} to {pythons[-1]}; this is Python "
        f"{version[0]}.{version[1]} ({sys.executable}). TensorFlow publishes no wheels for it"
        f"{' yet' if version > tuple(int(p) for p in pythons[-1].split('.')) else ''}. Install "
        f"a supported Python (python.org, your package manager or conda) and run this script "
        f"with it, e.g. `{exe} course.py lab`."
    )


# --------------------------------------------------------------------------- the environment


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if WINDOWS else "bin/python")


def _install_key() -> str:
    """The stamp's content: pyproject.toml's sha256 (what `sha256sum pyproject.toml` prints)."""
    return hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()


# Run by the venv's Python: camutils and what the given extras of it require (with the extras
# those name in turn, such as dev's camutils[cpu,lab,test]), each installed at a version that
# fits; prints what is missing. pip's own copy of `packaging` serves where there is no other.
_INSTALLED_PROBE = """
import sys
from importlib import metadata
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

def missing(name, extras, seen):
    if (name, extras) in seen:
        return []
    seen.add((name, extras))
    try:
        requires = metadata.distribution(name).requires or []
    except metadata.PackageNotFoundError:
        return [name]
    problems = []
    for line in requires:
        req = Requirement(line)
        if req.marker and not any(req.marker.evaluate({"extra": e}) for e in extras or ("",)):
            continue
        try:
            version = metadata.version(req.name)
        except metadata.PackageNotFoundError:
            problems.append(f"{req.name}{req.specifier}")
            continue
        if not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}{req.specifier} ({version} is installed)")
        elif req.extras:
            problems += missing(req.name, tuple(sorted(req.extras)), seen)
    return problems

problems = missing("camutils", tuple(sys.argv[1].split(",")), set())
print("\\n".join(problems))
sys.exit(1 if problems else 0)
"""


def installed(python: Path, extras: str) -> bool:
    """Whether ``camutils[extras]`` is installed in the venv of ``python``, every requirement
    met (as after the workshop's install from a wheelhouse, which writes no stamp)."""
    done = subprocess.run([str(python), "-I", "-c", _INSTALLED_PROBE, extras], capture_output=True,
                          text=True)
    return done.returncode == 0


OFFLINE_HINT = (
    "pip could not install the course (its message is above). Installing needs the package "
    "index (pypi.org); on a machine without a network, install from a "
    "wheelhouse (README, 'Workshop without Wi-Fi'): {python} -m pip install --no-index "
    "--find-links wheelhouse \"camutils[cpu,lab]\", then run this command again.")


def setup(force: bool = False, extras: str = "dev") -> Path:
    """Create .venv and install the course into it, unless it is there already.

    It is there when the stamp says that this pyproject.toml was installed (`-e .[dev]`), or,
    with no stamp, when the venv already holds ``camutils[extras]`` (installed by hand, as the
    offline workshop does from its wheelhouse): then nothing is installed, and nothing needs
    the network.
    """
    python = venv_python()
    if not force and python.exists():
        if STAMP.exists() and STAMP.read_text() == _install_key():
            return python
        if not STAMP.exists() and installed(python, extras):
            return python
    check_python()
    if not python.exists():
        print(f"Creating {VENV.name} with Python {sys.version.split()[0]} ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    print("Installing the course and its dependencies (dev): about a minute, 2.3 GB ...",
          flush=True)
    for command in ([python, "-m", "pip", "install", "--quiet", "--upgrade", "pip"],
                    [python, "-m", "pip", "install", "--quiet", "-e", ".[dev]"]):
        if run(command, check=False):
            raise SystemExit(OFFLINE_HINT.format(python=python.relative_to(ROOT)))
    STAMP.write_text(_install_key())
    return python


def install_extra(python: Path, extra: str) -> None:
    """Install an optional extra of pyproject.toml (e.g. `site`) into .venv on first use, and
    again when pyproject.toml changes; `make venv` stays without it."""
    stamp = VENV / f".installed-{extra}"
    if stamp.exists() and stamp.read_text() == _install_key():
        return
    print(f"Installing the course's `{extra}` extra ...", flush=True)
    run([python, "-m", "pip", "install", "--quiet", "-e", f".[{extra}]"])
    stamp.write_text(_install_key())


def course_env(onednn: str = "off") -> dict:
    """The environment of every command: quiet TensorFlow, oneDNN as asked."""
    if onednn not in ("on", "off"):
        raise SystemExit(f"--onednn must be 'on' or 'off', got {onednn!r}")
    env = dict(os.environ, **BASE_ENV)
    env["TF_ENABLE_ONEDNN_OPTS"] = "1" if onednn == "on" else "0"
    # A backend inherited from a script (Agg) would stop kernels from drawing inline figures.
    env.pop("MPLBACKEND", None)
    return env


def run(command: list, env: dict | None = None, check: bool = True) -> int:
    completed = subprocess.run([str(c) for c in command], cwd=ROOT, env=env)
    if check and completed.returncode != 0:
        raise SystemExit(completed.returncode)
    return completed.returncode


# --------------------------------------------------------------------------- commands


def cmd_setup(args) -> int:
    setup(force=args.force)
    print(f"Ready: {venv_python().relative_to(ROOT)}")
    return 0


def cmd_lab(args) -> int:
    python = setup(extras=LAB)
    extra = ["--allow-root"] if not WINDOWS and os.geteuid() == 0 else []  # containers run as root
    return run([python, "-m", "jupyterlab", "notebooks/00_start_here.ipynb", *extra, *args.rest],
               env=course_env(args.onednn), check=False)


def test_workers() -> list[str]:
    """pytest-xdist's options: one test process per core, at most two (each notebook kernel
    needs up to 1.5 GB), or $COURSE_TEST_WORKERS. A file's tests stay in one process, so a
    notebook's cells run in order in one kernel."""
    workers = int(os.environ.get("COURSE_TEST_WORKERS") or min(2, os.cpu_count() or 1))
    return ["-n", str(workers), "--dist", "loadfile"] if workers > 1 else []


def unit_tests(python: Path, env: dict, rest: list[str]) -> int:
    """The unit tests: everything under tests/ but the end-to-end browser tests (notebook 07
    in JupyterLab; the website, which `site-test` runs)."""
    return run([python, "-m", "pytest", "tests", "-m",
                "not retrain and not browser and not site", *test_workers(), *rest],
               env=env, check=False)


def notebook_tests(python: Path, env: dict, rest: list[str]) -> int:
    """Every notebook (complete and learner editions) under nbval, and the explorer's notebook
    in JupyterLab in a real browser (the workshop plans run apart: `workshop-test`)."""
    return run([python, "-m", "pytest", "--nbval-lax", "--nbval-current-env",
                "--nbval-cell-timeout=600", "-p", "no:cacheprovider", "-m",
                "not retrain and not workshop", *test_workers(), "notebooks",
                "tests/test_browser.py", *rest], env=env, check=False)


def cmd_test(args) -> int:
    """Unit tests, then the notebooks; both always run, and either failing fails the command."""
    python = setup()
    env = course_env(args.onednn)
    status = unit_tests(python, env, args.rest)
    status = notebook_tests(python, env, args.rest) or status
    return 1 if status else 0


def cmd_workshop_test(args) -> int:
    """The instructor guide's workshop plans: each part's taught sections of the learner
    edition run alone in a fresh kernel (notebooks/test_workshop_plans.py). Apart from `test`,
    whose time budget the course's learners wait for; .ci/run runs it."""
    workers = test_workers()
    spread = ["-n", workers[1], "--dist", "load"] if workers else []  # the parts, over the cores
    return 1 if run([setup(), "-m", "pytest", "notebooks/test_workshop_plans.py", "-m",
                     "workshop", "-p", "no:cacheprovider", *spread, *args.rest],
                    env=course_env(args.onednn), check=False) else 0


def cmd_nbtest(args) -> int:
    return 1 if notebook_tests(setup(), course_env(args.onednn), args.rest) else 0


def cmd_platforms(args) -> int:
    """Where the course runs: dependency resolution, a Colab-like venv, an offline wheelhouse."""
    python = setup()
    return run([python, "-m", "pytest", "platform_tests", *args.rest],
               env=course_env(args.onednn), check=False)


def cmd_notebooks(args) -> int:
    """Re-execute the notebooks in place, then rewrite their learner editions from them."""
    python = setup()
    status = run([python, "tools/run_notebooks.py", *args.rest], env=course_env(args.onednn),
                 check=False)
    return run([python, "tools/learner_editions.py"], env=course_env(), check=False) or status


def cmd_student(args) -> int:
    """The learner editions (answers replaced by placeholders) and docs/solutions.md."""
    return run([setup(), "tools/learner_editions.py", *args.rest], env=course_env(),
               check=False)


def cmd_site(args) -> int:
    """The course as a website in build/site/, built offline from the committed notebooks."""
    python = setup()
    install_extra(python, "site")
    return run([python, "tools/website/build_site.py", *args.rest], env=course_env(),
               check=False)


def cmd_site_test(args) -> int:
    """`site` (what the Pages workflow runs), then the site it built in a real browser (Debian's
    chromium): pages, figures, search, console errors, no request leaving the machine; its
    link checker shown to catch a broken link."""
    python = setup()
    site = argparse.Namespace(rest=[])
    status = cmd_site(site)
    if status:
        return status
    env = dict(course_env(), COURSE_SITE_DIR=str(ROOT / "build" / "site"))
    return run([python, "-m", "pytest", "tests/test_site.py", "-m", "site", "-p",
                "no:cacheprovider", *args.rest], env=env, check=False)


def cmd_bench(args) -> int:
    extra = ["--skip-models", "--course", "--make-test", "--dataset"] if args.course else []
    return run([setup(), "-m", "benchmarks", *extra, *args.rest], env=course_env(args.onednn),
               check=False)


def cmd_doctor(args) -> int:
    return run([setup(extras=LAB), "-m", "camutils", "doctor", *args.rest], env=course_env(args.onednn),
               check=False)


def cmd_wheelhouse(args) -> int:
    """Every wheel the course needs, for the platforms and Pythons asked, in one folder."""
    python = setup()
    return run([python, "tools/wheelhouse.py", *args.rest], env=course_env(), check=False)


def cmd_py313(args) -> int:
    """Debian 13's Python 3.13 in a debootstrap chroot (Linux, root): unit tests, notebooks 01-03."""
    if WINDOWS or sys.platform == "darwin":
        raise SystemExit("test-py313 builds a Debian chroot: it runs on Linux only, as root.")
    return run(["bash", "tools/py313_chroot.sh", *args.rest], check=False)


def cmd_clean(args) -> int:
    for name in (".venv", ".pytest_cache", ".hypothesis", "build", "camutils.egg-info"):
        shutil.rmtree(ROOT / name, ignore_errors=True)
    return 0


COMMANDS = {
    "lab": (cmd_lab, "set up .venv if needed, then open the course in JupyterLab"),
    "test": (cmd_test, "unit tests, then every notebook under nbval (offline)"),
    "setup": (cmd_setup, "create .venv and install the course (done by every command)"),
    "nbtest": (cmd_nbtest, "every notebook under nbval"),
    "workshop-test": (cmd_workshop_test, "the instructor guide's workshop plans: each part's "
                                         "taught sections run alone"),
    "notebooks": (cmd_notebooks, "re-execute the notebooks in place (names may be given), "
                                 "then write their learner editions"),
    "student": (cmd_student, "write the learner editions (notebooks/learner/) and "
                             "docs/solutions.md from the notebooks (`--check`: only compare)"),
    "doctor": (cmd_doctor, "check that this machine can run the course"),
    "platforms": (cmd_platforms, "where the course runs: resolution matrix, Colab-like venv, "
                                 "wheelhouse (needs the package registry)"),
    "wheelhouse": (cmd_wheelhouse, "download every wheel for offline installs "
                                   "(`wheelhouse --help` for options)"),
    "site": (cmd_site, "build the course's website into build/site/ (offline, from the "
                       "committed notebooks) and check its links"),
    "site-test": (cmd_site_test, "build the website and test it in Debian's chromium"),
    "bench": (cmd_bench, "run the benchmark suite and write docs/benchmarks.md"),
    "test-py313": (cmd_py313, "(opt-in, Linux, root) the course on Debian 13's Python 3.13 "
                              "in a chroot"),
    "clean": (cmd_clean, "remove .venv and caches"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="course.py", description="The course's commands (Linux, macOS and Windows).",
        allow_abbrev=False,
        epilog="Arguments after the command go to the tool it runs (pytest, jupyter, ...).")
    parser.add_argument("command", choices=COMMANDS, metavar="command",
                        help="; ".join(f"{name}: {text}" for name, (_, text) in COMMANDS.items()))
    parser.add_argument("--onednn", choices=("on", "off"), default=os.environ.get("ONEDNN", "off"),
                        help="TensorFlow's oneDNN kernels (default off, or $ONEDNN): results "
                             "must hold both ways")
    parser.add_argument("--force", action="store_true", help="setup: reinstall even if unchanged")
    parser.add_argument("--course", action="store_true",
                        help="bench: time every notebook, the test suite and explain_dataset "
                             "instead")
    args, rest = parser.parse_known_args(argv)
    args.rest = rest
    return COMMANDS[args.command][0](args)


if __name__ == "__main__":
    sys.exit(main())
