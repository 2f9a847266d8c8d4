"""Class probabilities from logits: the one softmax of camutils (numpy, float64, stable).

    probabilities = softmax(logits)              # rows sum to 1
    top_classes(logits, k=3)                     # [[(index, probability), ...], ...]
"""

from __future__ import annotations

import numpy as np

from .checks import positive_int

__all__ = ["softmax", "top_classes"]


def softmax(logits) -> np.ndarray:
    """Softmax over the last axis, in float64 (the maximum is subtracted first, so it never
    overflows). One row of logits ``(classes,)`` or a batch ``(n, classes)``."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def top_classes(logits, k: int) -> list[list[tuple[int, float]]]:
    """For each row of ``logits`` ``(n, classes)``, the ``k`` most probable classes as
    ``(index, probability)``, most probable first."""
    probabilities = softmax(np.atleast_2d(logits))
    k = min(positive_int(k, "k"), probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return [[(int(i), float(p[i])) for i in row] for row, p in zip(order, probabilities)]
