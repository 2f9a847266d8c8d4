"""The notebooks' setup: version checks, seeds, the environment report, the online probe."""

import time

import numpy as np

from camutils import environment


def test_setup_notebook_seeds_and_reports(capsys):
    report = environment.setup_notebook(seed=3, check_online=False)
    line = capsys.readouterr().out
    import tensorflow as tf

    assert f"TensorFlow {tf.__version__}" in line and "seed 3" in line
    first = np.random.rand(3)
    environment.setup_notebook(seed=3, check_online=False)
    np.testing.assert_array_equal(first, np.random.rand(3))
    assert report["cpu cores"] >= 1
    assert environment._check_versions(report) == []


def test_unsupported_versions_are_reported():
    from camutils.preflight import requirement, supported_pythons

    pythons = supported_pythons()
    keras = requirement("keras").specifier
    problems = environment._check_versions({"python": "3.9.18", "tensorflow": "2.0.0", "keras": None})
    assert problems[0] == f"python 3.9.18 (the course supports {pythons[0]}-{pythons[-1]})"
    assert problems[1].startswith("tensorflow 2.0.0 (the course supports >=")
    assert problems[2] == f"keras missing (the course supports {keras})"
    assert environment._check_versions(
        {"python": f"{pythons[-1]}.0", "tensorflow": "2.21.0", "keras": "3.15.1"}) == []


def test_online_probe_is_quick_and_false_for_a_closed_port():
    start = time.perf_counter()
    assert environment.is_online(("127.0.0.1", 9), timeout=1.0) is False
    assert time.perf_counter() - start < 3.0
