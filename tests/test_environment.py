"""The notebooks' setup: version checks, seeds, the environment report, the online probe."""

import time

import numpy as np

from camutils import environment


def test_setup_notebook_seeds_and_reports(capsys):
    report = environment.setup_notebook(seed=3, check_online=False)
    line = capsys.readouterr().out
    assert "TensorFlow 2.21" in line and "seed 3" in line
    first = np.random.rand(3)
    environment.setup_notebook(seed=3, check_online=False)
    np.testing.assert_array_equal(first, np.random.rand(3))
    assert report["cpu cores"] >= 1
    assert environment._check_versions(report) == []


def test_untested_versions_are_reported():
    problems = environment._check_versions({"python": "3.9.18", "tensorflow": "2.21.0", "keras": None})
    assert problems == ["python 3.9.18 (the course is tested on 3.10-3.13)",
                        "keras missing (the course is tested on 3.15)"]
    # every supported Python passes, and a version is matched by major.minor, not by prefix
    for python in ("3.10.12", "3.11.7", "3.12.1", "3.13.5"):
        assert environment._check_versions({"python": python, "tensorflow": "2.21.0", "keras": "3.15.1"}) == []
    assert environment._check_versions({"python": "3.1.5", "tensorflow": "2.210", "keras": "3.15"}) == [
        "python 3.1.5 (the course is tested on 3.10-3.13)", "tensorflow 2.210 (the course is tested on 2.21)"]


def test_online_probe_is_quick_and_false_for_a_closed_port():
    start = time.perf_counter()
    assert environment.is_online(("127.0.0.1", 9), timeout=1.0) is False
    assert time.perf_counter() - start < 3.0
