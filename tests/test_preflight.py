"""`camutils doctor`: each check passes here, and fails with its remedy when it should."""

import io
import shutil
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from camutils import preflight
from camutils.__main__ import main

ROOT = Path(__file__).resolve().parents[1]

if sys.version_info >= (3, 11):
    import tomllib
else:  # the test extra installs tomli on Python 3.10
    import tomli as tomllib


def _pyproject():
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_supported_range_is_read_from_the_package_metadata():
    declared = [c.rsplit("::", 1)[1].strip() for c in _pyproject()["classifiers"]
                if c.startswith("Programming Language :: Python :: 3.")]
    assert preflight.supported_pythons() == declared
    cpu = [Requirement(r) for r in _pyproject()["optional-dependencies"]["cpu"]]
    tf = next(r for r in cpu if r.marker.evaluate())  # the one for this platform
    assert preflight.requirement(tf.name).specifier == tf.specifier
    keras = next(Requirement(r) for r in _pyproject()["dependencies"] if r.startswith("keras"))
    assert preflight.requirement("keras").specifier == keras.specifier


def test_python_outside_the_range_fails_with_the_remedy():
    pythons = preflight.supported_pythons()
    assert preflight.check_python((3, int(pythons[0].split(".")[1]), 0)).status == "ok"
    old = preflight.check_python((3, 9, 18))
    assert old.status == "fail" and "3.9" in old.detail and pythons[-1] in old.remedy
    assert preflight.check_python((3, 99, 0)).status == "fail"


def test_a_version_below_the_declared_bound_fails(monkeypatch):
    monkeypatch.setattr(preflight, "requirement", lambda name: Requirement("keras>=99"))
    check = preflight.check_version("keras", ("keras",), "keras")
    assert check.status == "fail" and ">=99" in check.detail
    assert check.remedy == 'pip install "keras>=99"'


def test_a_missing_package_fails_with_the_install_command():
    check = preflight.check_version("nothing", ("no-such-distribution-here",), "json")
    assert check.status == "fail" and "not installed" in check.detail
    assert "pip install" in check.remedy


def test_memory_is_compared_with_the_notebook_budget_in_gb():
    total, available = preflight.memory_gb()
    assert 0 < available <= total
    # the budget is the design's 1.5 GB (10^9 bytes), said as such
    assert preflight.NOTEBOOK_MEMORY_BUDGET_GB == 1.5
    check = preflight.check_memory()
    assert check.detail.endswith("each notebook needs at most 1.5 GB"), check.detail
    assert f"of {total:.1f} GB" in check.detail
    assert preflight.check_memory(budget=0.01).status == "ok"
    short = preflight.check_memory(budget=10_000)
    assert short.status == "fail" and "close other programs" in short.remedy


def test_damaged_course_model_is_caught(monkeypatch, tmp_path):
    from camutils.course import models as course_models

    source = course_models._data_dir()
    for entry in course_models.read_manifest()["models"].values():
        shutil.copyfile(source / entry["file"], tmp_path / entry["file"])
    shutil.copyfile(source / course_models.MANIFEST, tmp_path / course_models.MANIFEST)
    monkeypatch.setattr(course_models, "_data_dir", lambda: tmp_path)
    assert preflight.check_course_models().status == "ok"
    damaged = tmp_path / "shapes_gmp.weights.h5"
    damaged.write_bytes(damaged.read_bytes()[:-10] + b"0123456789")
    check = preflight.check_course_models()
    assert check.status == "fail" and "gmp" in check.detail and "retrain" in check.remedy


def test_lite0_weights_are_verified(monkeypatch, tmp_path):
    from camutils.zoo import efficientnet

    assert preflight.check_lite0().status == "ok"
    fake = tmp_path / "lite0.pth"
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(efficientnet, "weights_path", lambda: str(fake))
    check = preflight.check_lite0()
    assert check.status == "fail" and "damaged" in check.detail


def test_command_prints_one_line_per_check_and_exits_by_the_verdict(monkeypatch, capsys):
    assert main(["doctor", "--no-kernel"]) == 0
    out = capsys.readouterr().out
    for name in ("python", "tensorflow", "keras", "memory", "efficientnet_lite0", "course models"):
        assert any(line.split()[1:2] == [name.split()[0]] for line in out.splitlines()), name
    assert "Ready" in out
    monkeypatch.setattr(preflight, "check_memory",
                        lambda: preflight.Check("memory", "fail", "0.1 GB", "close programs"))
    assert main(["doctor", "--no-kernel"]) == 1
    out = capsys.readouterr().out
    assert "FAIL  memory" in out and "-> close programs" in out and "Not ready" in out


def test_a_crashing_check_is_reported_not_raised(monkeypatch):
    def broken():
        raise OSError("disk on fire")

    monkeypatch.setattr(preflight, "check_memory", broken)
    report = io.StringIO()
    assert preflight.doctor(kernel=False, file=report) is False
    assert "OSError: disk on fire" in report.getvalue()


@pytest.mark.slow
def test_kernel_check_starts_a_real_kernel():
    check = preflight.check_kernel()
    assert check.status == "ok", check
