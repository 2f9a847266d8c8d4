"""The full dependency set resolves, wheels only, for every supported (platform, Python).

Each pair is resolved twice: with the newest versions (what a learner gets today) and with
the lowest that pyproject allows (``--resolution lowest-direct``: the declared lower bounds
must be installable too). Unsupported platforms must fail to resolve, so that the reason
written in tools/platforms.py stays true. Needs the package registry (not the network
otherwise); uv's cache makes a second run quick.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from support import lower_bound, supported_pythons
from tools.platforms import PLATFORMS, compile_requirements, resolve

PYTHONS = supported_pythons()
EXTRAS = "cpu,lab,test"
# The TensorFlow distribution the `cpu` extra must choose on each platform.
TENSORFLOW = {"linux-x86_64": "tensorflow-cpu", "windows-x86_64": "tensorflow-cpu",
              "linux-aarch64": "tensorflow", "macos-arm64": "tensorflow",
              "macos-x86_64": "tensorflow"}
# TensorFlow's first release with wheels for a Python newer than the declared lower bound.
FIRST_TENSORFLOW_FOR_PYTHON = {"3.13": "2.20.0"}

PAIRS = [(p, v) for p in PLATFORMS for v in PYTHONS]
LINUX = [(p, v) for p, v in PAIRS if p.name == "linux-x86_64"]
CASES = ([(p, v, EXTRAS, "highest") for p, v in PAIRS]
         + [(p, v, EXTRAS, "lowest-direct") for p, v in PAIRS if p.supports(v)]
         + [(p, v, "gpu", "highest") for p, v in LINUX]
         # Colab: camutils alone, beside the TensorFlow it brings.
         + [(p, v, "", "highest") for p, v in LINUX])


def _id(case) -> str:
    target, python, extras, resolution = case
    return f"{target.name}-py{python}-[{extras or 'none'}]-{resolution}"


@pytest.fixture(scope="module")
def resolved():
    """Every case, resolved in parallel (each is a few network round trips)."""
    def one(case):
        target, python, extras, resolution = case
        return _id(case), resolve(target, python, extras, resolution=resolution)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return dict(pool.map(one, CASES))


def _pins(stdout: str) -> dict[str, Version]:
    pins = {}
    for line in stdout.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            req = Requirement(line)
            pins[req.name] = Version(next(iter(req.specifier)).version)
    return pins


@pytest.mark.parametrize("case", [c for c in CASES if c[0].supports(c[1])], ids=_id)
def test_supported_pair_resolves(case, resolved):
    target, python, extras, resolution = case
    result = resolved[_id(case)]
    assert result.returncode == 0, f"{_id(case)} does not resolve:\n{result.stderr}"
    pins = _pins(result.stdout)
    keras = pins["keras"]
    assert keras >= Version(lower_bound("keras")) and keras.major == 3
    if extras == EXTRAS:
        name = TENSORFLOW[target.name]
        other = {"tensorflow", "tensorflow-cpu"} - {name}
        assert name in pins and not other & set(pins), f"{_id(case)}: wrong TensorFlow {pins}"
        declared = Version(lower_bound("tensorflow-cpu", "cpu"))
        assert pins[name] >= declared
        if resolution == "lowest-direct":  # the declared lower bounds themselves install
            first = Version(FIRST_TENSORFLOW_FOR_PYTHON.get(python, "0"))
            assert pins[name] == max(declared, first), f"{_id(case)}: {pins[name]}"
            if pins[name] == declared:  # (a newer TensorFlow may ask for a newer Keras)
                assert keras == Version(lower_bound("keras")), f"{_id(case)}: keras {keras}"
    if extras == "":
        assert not {"tensorflow", "tensorflow-cpu"} & set(pins), "Colab's TensorFlow must stay"


@pytest.mark.parametrize("case", [c for c in CASES if not c[0].supports(c[1])], ids=_id)
def test_unsupported_pair_fails_for_the_documented_reason(case, resolved):
    result = resolved[_id(case)]
    assert result.returncode != 0, (f"{_id(case)} resolves now: support it in tools/platforms.py "
                                    f"and the README")
    # The reason given: TensorFlow itself (any version the course accepts) has no wheel there.
    target, python = case[0], case[1]
    alone = compile_requirements(target, python, f"tensorflow>={lower_bound('tensorflow-cpu', 'cpu')}")
    assert alone.returncode != 0 and "tensorflow" in alone.stderr, alone.stdout
