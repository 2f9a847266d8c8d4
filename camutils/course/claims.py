"""Claims a notebook makes about its own numbers, checked where they are made.

    camutils.claim("GAP covers more of the object than GMP at 20%", gap > gmp,
                   GAP=f"{gap:.3f}", GMP=f"{gmp:.3f}")

prints ``✓ GAP covers more of the object than GMP at 20% (GAP 0.998, GMP 0.871)`` when the
claim holds, and raises `ClaimFailed` (an AssertionError, so the notebook stops there and
its test fails) with ``✗`` and the same values when it does not. A reader sees what was
measured, not only that an assert passed.

Measured values print as given: strings as they are (format numbers yourself, with no more
digits than are stable on another CPU), whole numbers as they are, other numbers with three
decimals, booleans as yes / no.
"""

from __future__ import annotations

import numbers

import numpy as np

__all__ = ["claim", "ClaimFailed"]


class ClaimFailed(AssertionError):
    """A claim of the notebook does not hold for the numbers it was checked on."""


def _shown(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return f"{float(value):.3f}"
    return str(value)


def claim(statement: str, holds, **measured) -> None:
    """Check one claim: print ``✓ statement (name value, ...)``, or raise `ClaimFailed`.

    Args:
        statement: the claim, in the words of the notebook's prose.
        holds: whether the measurement supports it (a bool, or anything with a truth value
            such as a numpy bool; an array must be reduced with ``.all()`` or ``.any()``).
        **measured: the values the claim rests on, by name (underscores print as spaces).

    Returns None, so that a claim at the end of a cell shows nothing but its line.
    """
    if hasattr(holds, "shape") and getattr(holds, "shape", ()) not in ((), (1,)):
        raise TypeError(f"claim({statement!r}): `holds` is an array of shape {holds.shape}; "
                        "reduce it with .all() or .any() to say which claim is meant.")
    details = ", ".join(f"{name.replace('_', ' ')} {_shown(value)}" for name, value in measured.items())
    line = f"{statement} ({details})" if details else statement
    if not bool(holds):
        raise ClaimFailed(f"✗ {line}")
    print(f"✓ {line}")
