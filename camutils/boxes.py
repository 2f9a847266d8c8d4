"""Boxes of ground-truth regions: ``(x0, y0, x1, y1)`` pixel coordinates with exclusive ends.

The shapes world (`camutils.course.shapes`) gives each object its tight box, and the
localisation metrics (`camutils.metrics.localisation`) box the regions of a map; both use
`boxes_from_masks`. `pairwise_box_iou` compares float boxes, such as a detector's, with them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["boxes_from_masks", "pairwise_box_iou"]


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


def pairwise_box_iou(a, b) -> np.ndarray:
    """Intersection over union of every box of ``a (m, 4)`` with every box of ``b (k, 4)``:
    ``(m, k)`` float64. Boxes are ``(x0, y0, x1, y1)`` in continuous coordinates (exclusive
    ends for pixel boxes, so that a box's area is ``(x1 - x0) * (y1 - y0)``); an empty or
    inverted box has IoU 0 with everything.
    """
    a = np.asarray(a, np.float64).reshape(-1, 4)[:, None]
    b = np.asarray(b, np.float64).reshape(-1, 4)[None]
    iw = np.clip(np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]), 0, None)
    ih = np.clip(np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]), 0, None)
    inter = iw * ih

    def area(x):
        return np.clip(x[..., 2] - x[..., 0], 0, None) * np.clip(x[..., 3] - x[..., 1], 0, None)

    union = area(a) + area(b) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
