"""Exercises for the notebooks: each has ``check(answer)``, ``hint()`` and ``solution()``.

In a notebook:

    ex = camutils.course.exercises.get("00.safe_normalise")
    ex.show()                 # the task, and the minutes it takes
    ex.check(my_answer)       # prints what is right or what is still wrong; returns True/False
    ex.hint()                 # one more hint each call
    ex.solution()             # the reference solution, as code to read
    ex.reference(...)         # camutils' own answer, for the cells after the exercise

An answer that is still the learner edition's placeholder (``...``, or a function whose body
is only ``...``) is reported as "not attempted yet": ``check`` returns False and never raises,
so a learner notebook runs top to bottom before any exercise is done.

Each notebook's exercises live in a module of this package (``nb00.py`` for notebook 00, ...)
and register themselves with `exercise`, with the minutes a learner needs for them (the
course's time estimates add these up; see docs/instructor_guide.md). A checker raises `Wrong` (or AssertionError) with a
message that helps; it may take context from the notebook as keyword arguments
(``ex.check(my_cam, features=features, weights=weights)``). Every exercise also carries a
``demo()`` that returns a correct answer, a wrong one and the context: the test suite checks
that each checker accepts the first and rejects the second.

What the learner editions must not show (tools/learner_leaks.py looks for each): the answer's
code, a function that the checker would accept, a printed value that it would accept (an
accepted number is named in the verdict, "correct (your answer: 0.583)", so that the tools can
find it elsewhere), and the answer in words: each exercise lists in ``giveaways`` the regular
expressions that its answer reads as in prose (for a "predict first" task, say). Cells after an
exercise that need its result use ``ex.reference``, camutils' own answer, never the learner's.
"""

from __future__ import annotations

import importlib
import numbers
import pkgutil
import textwrap
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Exercise", "Wrong", "exercise", "get", "all_exercises", "is_placeholder"]


class Wrong(AssertionError):
    """Raised by a checker: the answer is not right yet; the message says why."""


def _stub(*args, **kwargs):
    ...


def _documented_stub(*args, **kwargs):
    """A docstring and nothing else."""


_EMPTY_BODIES = {_stub.__code__.co_code, _documented_stub.__code__.co_code}


def is_placeholder(answer) -> bool:
    """Whether ``answer`` is the learner edition's placeholder, not an attempt.

    ``...`` and None are; so is a function whose body is only ``...`` (or ``pass``, or a
    docstring): it compiles to the same code as an empty function of this Python.
    """
    if answer is None or answer is Ellipsis:
        return True
    code = getattr(answer, "__code__", None)
    if code is None or code.co_code not in _EMPTY_BODIES or code.co_names:
        return False
    first, *rest = code.co_consts or (None,)
    return (first is None or isinstance(first, str)) and all(c is None for c in rest)


@dataclass
class Exercise:
    key: str
    title: str
    task: str
    checker: Callable[..., Any]
    hints: list[str]
    solution_code: str
    demo: Callable[[], tuple[Any, Any, dict]]
    minutes: int = 5
    reference_answer: Callable[..., Any] | None = field(default=None, repr=False)
    giveaways: tuple[str, ...] = ()
    _hints_shown: int = field(default=0, repr=False)

    @property
    def heading(self) -> str:
        """``Exercise KEY: title (about N minutes)``, as the task and the learner edition show it."""
        return f"Exercise {self.key}: {self.title} (about {self.minutes} minutes)"

    def show(self) -> None:
        """Print the task, with the minutes it takes."""
        print(f"{self.heading}\n\n{textwrap.dedent(self.task).strip()}")

    def reference(self, *args, **kwargs):
        """camutils' own answer: for a value, computed from the check's context
        (``ex.reference(features=..., weights=...)``); for a function, the function called on
        ``args``. Cells after an exercise use it, so that they never depend on the learner's
        answer and never print the answer's code."""
        if self.reference_answer is None:
            raise NotImplementedError(f"Exercise {self.key} has no reference answer.")
        return self.reference_answer(*args, **kwargs)

    def check(self, answer=None, **context) -> bool:
        """Check an answer; print the verdict and return whether it is right."""
        if is_placeholder(answer):
            print(f"Exercise {self.key}: not attempted yet. Replace the ... with your answer and "
                  "run the cell again (ex.hint() gives a hint, ex.solution() shows one).")
            return False
        try:
            message = self.checker(answer, **context)
        except (Wrong, AssertionError) as wrong:
            print(f"Exercise {self.key}: not yet. {wrong}".rstrip())
            return False
        except Exception as error:  # the answer itself failed to run
            print(f"Exercise {self.key}: not yet. Your answer raised "
                  f"{type(error).__name__}: {error}")
            return False
        print(f"Exercise {self.key}: correct{_accepted(answer)}. {message or ''}".rstrip())
        return True

    def hint(self) -> None:
        """Print the next hint (they get more specific)."""
        if not self.hints:
            print("No hints for this one: try ex.solution().")
            return
        index = min(self._hints_shown, len(self.hints) - 1)
        self._hints_shown += 1
        print(f"Hint {index + 1}/{len(self.hints)}: {self.hints[index]}")

    def solution(self) -> None:
        """Print the reference solution."""
        print(textwrap.dedent(self.solution_code).strip())


def _accepted(answer) -> str:
    """`` (your answer: 0.583)`` for an accepted number, so that the tools can find it printed
    elsewhere; empty for anything else."""
    if isinstance(answer, (bool, np.bool_)) or not isinstance(answer, (numbers.Real, np.ndarray)):
        return ""
    value = np.asarray(answer)
    if value.size != 1 or not np.issubdtype(value.dtype, np.floating):
        return ""
    return f" (your answer: {float(value.reshape(())):.6g})"


_REGISTRY: dict[str, Exercise] = {}


def exercise(key: str, title: str, task: str, hints: list[str], solution: str,
             demo: Callable[[], tuple[Any, Any, dict]], minutes: int = 5,
             reference: Callable[..., Any] | None = None, giveaways=()):
    """Decorator that registers a checker as the exercise ``key`` ("<notebook>.<name>").

    ``minutes``: what a learner needs to read the task, write and check an answer (5 for a
    line or two, 10 for a short function, 15 or more for a whole method).
    ``reference``: camutils' own answer (`Exercise.reference`). ``giveaways``: regular
    expressions (case-insensitive) that the answer reads as in prose; the learner editions
    must not show them before the exercise.
    """

    def register(checker):
        if key in _REGISTRY:
            raise ValueError(f"Exercise {key!r} is registered twice.")
        _REGISTRY[key] = Exercise(key, title, task, checker, list(hints), solution, demo,
                                  int(minutes), reference, tuple(giveaways))
        return checker

    return register


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        if module.name.startswith("nb"):
            importlib.import_module(f"{__name__}.{module.name}")


def get(key: str) -> Exercise:
    """The exercise ``key``, e.g. ``"01.cam_by_hand"``."""
    _load_all()
    if key not in _REGISTRY:
        from ...suggestions import did_you_mean

        raise KeyError(f"No exercise {key!r}.{did_you_mean(key, _REGISTRY, cutoff=0.4)}")
    return _REGISTRY[key]


def all_exercises() -> dict[str, Exercise]:
    """Every registered exercise, by key."""
    _load_all()
    return dict(_REGISTRY)
