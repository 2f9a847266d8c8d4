"""pyproject.toml ships every camutils subpackage and the data folder."""

from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the test extra installs tomli
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    found = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for p in (ROOT / "camutils").rglob("__init__.py")
    }
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert config["package-dir"]["camutils.data"] == "data"


def test_data_files_are_package_data():
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["camutils.data"]
    data = [p for p in (ROOT / "data").iterdir() if p.is_file() and p.name != "__init__.py"]
    unshipped = [p.name for p in data if not any(p.match(pattern) for pattern in patterns)]
    assert not unshipped, f"data files that a pip install would not ship: {unshipped}"


def test_every_requirement_is_valid_pep508():
    """setuptools refuses to build from a pyproject with one malformed requirement (a marker
    written with ``not``, say), which breaks every install, on every platform."""
    from packaging import requirements

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = list(project["dependencies"])
    listed += [r for extra in project["optional-dependencies"].values() for r in extra]
    for line in listed:
        try:
            requirements.Requirement(line)
        except requirements.InvalidRequirement as error:
            pytest.fail(f"pyproject.toml: {line!r} is not a PEP 508 requirement: {error}")
