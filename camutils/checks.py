"""Checks of the plain arguments that many functions share, with one wording for each error.

    batch_size = positive_int(batch_size, "batch_size")
    chunk_size = positive_int(chunk_size, "chunk_size", none=True)
"""

from __future__ import annotations

import numpy as np

__all__ = ["positive_int"]


def positive_int(value, name: str, *, none: bool = False) -> int | None:
    """``value`` as an int when it is a whole number of at least 1 (or None, with ``none``).

    Booleans, floats and strings are refused (``True`` is not a batch size).

    Raises:
        ValueError: naming the argument and what it was given.
    """
    if value is None and none:
        return None
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) \
            or value < 1:
        allowed = "a positive int or None" if none else "a positive int"
        raise ValueError(f"{name} must be {allowed}, got {value!r}.")
    return int(value)
