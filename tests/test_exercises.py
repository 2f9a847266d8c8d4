"""Every exercise's checker accepts its correct demo answer and rejects its wrong one."""

import numpy as np
import pytest

from camutils.course import exercises

ALL = exercises.all_exercises()


def test_exercises_exist():
    assert "00.safe_normalise" in ALL


@pytest.mark.parametrize("key", sorted(ALL))
def test_checker_accepts_right_and_rejects_wrong(key, capsys):
    ex = ALL[key]
    right, wrong, context = ex.demo()
    assert ex.check(right, **context) is True, capsys.readouterr().out
    assert "correct" in capsys.readouterr().out
    assert ex.check(wrong, **context) is False
    assert "not yet" in capsys.readouterr().out


@pytest.mark.parametrize("key", sorted(ALL))
def test_hints_solution_and_task_print(key, capsys):
    ex = ALL[key]
    ex.show()
    ex.hint()
    ex.solution()
    out = capsys.readouterr().out
    assert key in out and "Hint 1/" in out
    assert ex.solution_code.strip().splitlines()[0].strip() in out


def test_no_answer_and_crashing_answer(capsys):
    ex = exercises.get("00.safe_normalise")
    assert ex.check(...) is False
    assert "not attempted yet" in capsys.readouterr().out

    def crashes(x):
        raise RuntimeError("boom")

    assert ex.check(crashes) is False
    assert "RuntimeError: boom" in capsys.readouterr().out


def test_unknown_exercise_suggests():
    with pytest.raises(KeyError, match="00.safe_normalise"):
        exercises.get("00.safe_normalize")


def _empty(x, y=1):
    ...


def _documented(x):
    """Your code here."""


def _passes(x):
    pass


def _one_line(x):
    return x


def _returns_zero(x):
    return 0


def _returns_text(x):
    return "..."


def _named(x):
    ...
    return np.zeros(3)


def test_placeholders_are_not_attempts():
    for placeholder in (..., None, _empty, _documented, _passes):
        assert exercises.is_placeholder(placeholder), placeholder
    for attempt in (_one_line, _returns_zero, _returns_text, _named, 0, [], np.zeros(3), "...", lambda x: x):
        assert not exercises.is_placeholder(attempt), attempt


@pytest.mark.parametrize("key", sorted(ALL))
def test_an_unattempted_exercise_says_so_and_never_raises(key, capsys):
    ex = ALL[key]
    _, _, context = ex.demo()
    for placeholder in (..., _empty):
        assert ex.check(placeholder, **context) is False
        assert "not attempted yet" in capsys.readouterr().out


def test_every_exercise_states_its_minutes():
    assert all(3 <= ex.minutes <= 30 for ex in ALL.values())


@pytest.mark.parametrize("key", sorted(k for k, ex in ALL.items() if ex.reference_answer is not None))
def test_a_reference_answer_is_accepted_by_its_own_checker(key, capsys):
    """`ex.reference`, which cells after an exercise use, is a right answer."""
    ex = ALL[key]
    right, _, context = ex.demo()
    if callable(right):
        assert ex.check(ex.reference_answer, **context), capsys.readouterr().out
    else:
        assert ex.check(ex.reference(**context), **context), capsys.readouterr().out


def test_the_task_says_how_many_minutes_and_a_number_accepted_is_named(capsys):
    ex = exercises.get("06.partial_leak")
    ex.show()
    assert f"{ex.title} (about {ex.minutes} minutes)" in capsys.readouterr().out
    right, _, context = ex.demo()
    assert ex.check(right, **context)
    assert f"correct (your answer: {float(right):.6g})" in capsys.readouterr().out
    assert exercises.get("00.safe_normalise").check(ALL["00.safe_normalise"].demo()[0])
    assert "your answer" not in capsys.readouterr().out          # only numbers are named


@pytest.mark.parametrize("key", sorted(k for k, ex in ALL.items() if ex.giveaways))
def test_giveaways_find_the_answer_in_words(key):
    """Each giveaway is a valid pattern that matches the answer said plainly."""
    import re

    plainly = {"04.class_agnostic": "Eigen-CAM is class-agnostic.",
               "07.what_needs_recomputing": "Opacity and colour map only redraw the cached map.",
               "10.zero_layers": "After the last attention, every map is zero."}
    patterns = [re.compile(g, re.I | re.S) for g in ALL[key].giveaways]
    assert any(p.search(plainly[key]) for p in patterns)
    assert not any(p.search(ALL[key].task) for p in patterns)     # the task itself does not say it
