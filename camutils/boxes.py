"""Boxes of ground-truth regions: ``(x0, y0, x1, y1)`` pixel coordinates with exclusive ends.

The shapes world (`camutils.course.shapes`) gives each object its tight box, and the
localisation metrics (`camutils.metrics.localisation`) box the regions of a map; both use
this one function.
"""

from __future__ import annotations

import numpy as np

__all__ = ["boxes_from_masks"]


def boxes_from_masks(masks: np.ndarray) -> np.ndarray:
    """Tight boxes ``(x0, y0, x1, y1)`` (exclusive ends) of boolean masks ``(..., H, W)``.

    An empty mask gets ``(-1, -1, -1, -1)``.
    """
    masks = np.asarray(masks, dtype=bool)
    rows, cols = masks.any(axis=-1), masks.any(axis=-2)
    h, w = masks.shape[-2:]
    y0 = rows.argmax(-1)
    y1 = h - rows[..., ::-1].argmax(-1)
    x0 = cols.argmax(-1)
    x1 = w - cols[..., ::-1].argmax(-1)
    boxes = np.stack([x0, y0, x1, y1], axis=-1).astype(np.int64)
    boxes[~rows.any(-1)] = -1
    return boxes
