"""Checks of the plain arguments that many functions share, with one wording for each error.

    batch_size = positive_int(batch_size, "batch_size")
    chunk_size = positive_int(chunk_size, "chunk_size", none=True)
    images = stacked(images, "image", "resize them to one size first.")
"""

from __future__ import annotations

import numpy as np

__all__ = ["positive_int", "stacked"]


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


def _shapes(items) -> list | None:
    """The shape of each item of a list or tuple (None when it cannot be told)."""
    if not isinstance(items, (list, tuple)):
        return None
    try:
        return [np.shape(item) for item in items]
    except ValueError:  # an item is ragged itself
        return None


def stacked(items, what: str, fix: str) -> np.ndarray:
    """``np.asarray(items)``, where a list of arrays of different shapes is an error that
    names two of them.

    Args:
        what: what one item is, for the message (``"image"``, ``"map"``).
        fix: what to do about it (a sentence).

    Raises:
        ValueError: ``"The images have different shapes: image 0 is (16, 16, 3) but image 2
            is (8, 16, 3); <fix>"``, instead of numpy's "inhomogeneous shape".
    """
    try:
        array = np.asarray(items)
    except ValueError as error:
        array, reason = None, str(error)
    else:
        if array.dtype != object:
            return array
        reason = None
    shapes = _shapes(items)
    differ = [] if shapes is None else [i for i, s in enumerate(shapes) if s != shapes[0]]
    if differ:
        j = differ[0]
        raise ValueError(f"The {what}s have different shapes: {what} 0 is {shapes[0]} but "
                         f"{what} {j} is {shapes[j]}; {fix}")
    if array is None:
        raise ValueError(f"Cannot read the {what}s as one array ({reason}); {fix}")
    return array
