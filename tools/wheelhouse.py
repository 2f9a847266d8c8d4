"""Download every wheel the course needs into one folder, for an offline workshop.

    python tools/wheelhouse.py                                  # this machine's platform and Python
    python tools/wheelhouse.py --platform windows-x86_64 macos-arm64 --python 3.11 3.12
    python tools/wheelhouse.py --platform all --python all      # every supported pair (~6 GB)

Run it through ``make wheelhouse`` (``py course.py wheelhouse`` on Windows). Then, on a laptop
with no network (Python and the wheelhouse folder copied from a USB stick):

    python -m venv .venv
    .venv/bin/python -m pip install --no-index --find-links wheelhouse "camutils[cpu,lab]"
    (Windows: .venv\\Scripts\\python -m pip install --no-index --find-links wheelhouse "camutils[cpu,lab]")

For each (platform, Python) pair the dependency set is resolved for that target by uv (pip
evaluates environment markers only for the machine it runs on), then pip downloads exactly
those wheels. camutils itself is built once as a wheel (it is pure Python).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tools.platforms import PLATFORMS, ROOT, platform, resolve, supported_pythons, this_platform  # noqa: E402


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.glob("*.whl"))


def build(dest: Path, pairs: list, extras: str) -> None:
    """The camutils wheel, then every wheel each (platform, Python) pair needs, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--wheel-dir", str(dest), str(ROOT)], check=True)
    for target, python in pairs:
        print(f"{target.name}, Python {python}: resolving ...", flush=True)
        resolved = resolve(target, python, extras)
        if resolved.returncode != 0:
            raise SystemExit(f"{target.name}, Python {python}: the dependencies do not "
                             f"resolve:\n{resolved.stderr.strip()}")
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as pins:
            pins.write(resolved.stdout)
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary=:all:", "--python-version", python, "--dest", str(dest),
                   "--requirement", pins.name]
        for tag in target.pip_tags:
            command += ["--platform", tag]
        subprocess.run(command, check=True)
        Path(pins.name).unlink()
    print(f"{dest}: {len(list(dest.glob('*.whl')))} wheels, {_size(dest) / 2**30:.2f} GiB, "
          f"{time.perf_counter() - start:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    supported = [p.name for p in PLATFORMS if p.supported]  # (Intel Macs: 3.10-3.12)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--platform", nargs="+", default=[this_platform().name],
                        help=f"any of {supported}, or 'all' (default: this machine's)")
    parser.add_argument("--python", nargs="+",
                        default=[f"{sys.version_info[0]}.{sys.version_info[1]}"],
                        help=f"any of {supported_pythons()}, or 'all' (default: this Python)")
    parser.add_argument("--extras", default="cpu,lab",
                        help="the extras to install (default cpu,lab: the course without its tests)")
    parser.add_argument("--dest", type=Path, default=ROOT / "wheelhouse",
                        help="the folder to fill (default: wheelhouse/)")
    args = parser.parse_args(argv)
    targets = [platform(n) for n in (supported if args.platform == ["all"] else args.platform)]
    for target in targets:
        if not target.supported:
            raise SystemExit(f"{target.name} is not supported: {target.unsupported}")
    pythons = supported_pythons() if args.python == ["all"] else args.python
    unknown = sorted(set(pythons) - set(supported_pythons()))
    if unknown:
        raise SystemExit(f"Python {', '.join(unknown)}: the course supports {supported_pythons()}")
    pairs = [(t, v) for t in targets for v in pythons if t.supports(v)]
    for t in targets:
        skipped = [v for v in pythons if not t.supports(v)]
        if skipped:
            print(f"{t.name}: skipping Python {', '.join(skipped)} ({t.why_not_others})")
    build(args.dest, pairs, args.extras)
    return 0


if __name__ == "__main__":
    sys.exit(main())
