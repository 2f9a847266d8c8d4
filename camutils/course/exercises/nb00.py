"""Notebook 00: the warm-up exercise that shows how exercises work."""

import numpy as np

from . import Wrong, exercise


def _demo():
    def right(x):
        x = np.asarray(x, dtype=np.float32)
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)

    def naive(x):  # the original post's normalisation: divides by a maximum that can be zero
        x = np.maximum(np.asarray(x, dtype=np.float32), 0)
        return x / x.max()

    return right, naive, {}


@exercise(
    "00.safe_normalise",
    "Normalise a map to [0, 1] safely",
    """
    Write a function `normalise(x)` that maps an array linearly onto [0, 1] (the minimum to 0,
    the maximum to 1), and returns all zeros, never NaN, when the array is constant.
    The original blog post divided a heat map by its maximum: on a map that is all zero that
    gives 0 / 0 = NaN, and the plot silently shows nothing.
    """,
    hints=[
        "Subtract the minimum first, then divide by the range (maximum minus minimum).",
        "When the range is 0 there is nothing to scale: return np.zeros_like(x).",
    ],
    solution="""
    def normalise(x):
        x = np.asarray(x, dtype=np.float32)
        span = x.max() - x.min()
        return (x - x.min()) / span if span > 0 else np.zeros_like(x)
    """,
    demo=_demo,
    minutes=5,
)
def check_safe_normalise(normalise):
    cases = {
        "an all-zero map": np.zeros((5, 5), np.float32),
        "a ramp": np.arange(12, dtype=np.float32).reshape(3, 4),
        "a constant map": np.full((4, 4), 2.5, np.float32),
        "a map with negative values only": -np.arange(1, 10, dtype=np.float32).reshape(3, 3),
    }
    for name, x in cases.items():
        with np.errstate(all="ignore"):
            y = np.asarray(normalise(x.copy()), dtype=np.float64)
        if y.shape != x.shape:
            raise Wrong(f"On {name} the result has shape {y.shape}, expected {x.shape}.")
        if not np.all(np.isfinite(y)):
            raise Wrong(f"On {name} the result contains NaN or inf: guard the division.")
        span = x.max() - x.min()
        expected = (x - x.min()) / span if span > 0 else np.zeros_like(x)
        if not np.allclose(y, expected, atol=1e-6):
            raise Wrong(f"On {name} the values are not the linear map of the minimum to 0 and "
                        "the maximum to 1 (or all zeros for a constant map).")
    return "It maps onto [0, 1] and never divides by zero."
