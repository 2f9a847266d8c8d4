"""camutils.claim: a true claim prints a tick and its numbers; a false one stops the notebook."""

import numpy as np
import pytest

import camutils
from camutils.course.claims import ClaimFailed


def test_a_true_claim_prints_a_tick_and_the_measured_values(capsys):
    assert camutils.claim("GAP covers more than GMP", 0.998 > 0.871, GAP=0.998, GMP="0.871",
                          misses=14, all_hit=np.bool_(True)) is None
    assert capsys.readouterr().out == "✓ GAP covers more than GMP (GAP 0.998, GMP 0.871, misses 14, all hit yes)\n"


def test_a_false_claim_raises_with_a_cross_and_the_values(capsys):
    with pytest.raises(ClaimFailed, match=r"✗ the Flatten network localises less well \(GAP 32, Flatten 32\)"):
        camutils.claim("the Flatten network localises less well", 32 < 32, GAP=32, Flatten=32)
    assert capsys.readouterr().out == ""
    assert issubclass(ClaimFailed, AssertionError)     # nbval and pytest report it as a failure


def test_numpy_truth_values_and_arrays():
    camutils.claim("numpy bool", np.float32(2) > 1)
    with pytest.raises(TypeError, match=r"\.all\(\) or \.any\(\)"):
        camutils.claim("an array", np.array([True, False]))
    with pytest.raises(ClaimFailed):
        camutils.claim("reduced", np.array([True, False]).all())
