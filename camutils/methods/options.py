"""A method's options, as its row of the method table declares them: `Option`.

    Option("counterfactual", False, flag, "explain what speaks against the class")
    Option("batch_size", 32, positive, "masked images per forward pass")

Each option has a name, a default, a check (``check(value, name) -> value``, raising a
ValueError that names the option) and a one-line meaning, which the plain function's
signature and docstring, `explain`'s error for an unknown option and the command line show.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..checks import positive_int

__all__ = ["Option", "flag", "optional_flag", "positive", "optional_positive", "one_of",
           "checked_options"]


@dataclass(frozen=True)
class Option:
    """One option of a method.

    Attributes:
        name: the keyword (``"max_channels"``).
        default: its value when not given (passed through ``check`` too).
        check: ``check(value, name) -> value``: the value as the method uses it, or a
            ValueError that names the option and says what it takes.
        help: what it does, in one line.
    """

    name: str
    default: Any
    check: Callable[[Any, str], Any]
    help: str


def flag(value, name: str) -> bool:
    """A yes/no option: any value, taken by its truth."""
    return bool(value)


def optional_flag(value, name: str) -> bool | None:
    """None (decided by the method), or yes/no."""
    return None if value is None else bool(value)


def positive(value, name: str) -> int:
    """A whole number of at least 1."""
    return positive_int(value, name)


def optional_positive(value, name: str) -> int | None:
    """None, or a whole number of at least 1."""
    return positive_int(value, name, none=True)


def one_of(choices: dict) -> Callable[[Any, str], str]:
    """A check that accepts only the keys of ``choices`` (key -> what it means)."""

    def check(value, name: str) -> str:
        if not isinstance(value, str) or value not in choices:
            listed = "; ".join(f"{key!r}: {meaning}" for key, meaning in choices.items())
            raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))} "
                             f"({listed}); got {value!r}.")
        return value

    check.__doc__ = f"One of {', '.join(map(repr, choices))}."
    return check


def checked_options(method: str, options: tuple[Option, ...], given: dict) -> dict:
    """Every option of ``method`` with its value: ``given`` ones checked, the others their
    defaults. An option the method does not have is a TypeError that lists its options."""
    known = {option.name: option for option in options}
    unknown = [name for name in given if name not in known]
    if unknown:
        listed = ", ".join(known) if known else "none"
        raise TypeError(
            f"Method {method!r} has no option {', '.join(repr(u) for u in unknown)}; its "
            f"options are: {listed}.")
    return {name: option.check(given.get(name, option.default), name)
            for name, option in known.items()}
