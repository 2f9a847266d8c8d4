"""The course detector's output format: centre heat maps and boxes, as CenterNet has them.

The detector (``shapes_detector``, built in `camutils.course.architecture`) sees a 64 x 64
image and outputs one tensor ``(batch, 16, 16, 10)``: a grid of cells of 4 x 4 pixels
(`STRIDE`), and for each cell (Zhou, Wang and Krähenbühl, "Objects as Points", 2019):

========= ======== =================================================================
channels  name     meaning
========= ======== =================================================================
0 - 5     heat map one logit per class (`SHAPE_CLASSES` order); its sigmoid is the
                   probability that an object of that class has its centre in the cell
6 - 7     size     the box's width and height, in pixels
8 - 9     offset   where the centre lies inside the cell, ``(dx, dy)`` in cells, 0 to 1
========= ======== =================================================================

A detection is a peak of a class's heat map (a cell whose probability is the largest of its
3 x 3 neighbourhood): its score is that probability, its box is centred at
``((col + dx) * 4, (row + dy) * 4)`` with the predicted width and height. `decode_detections`
turns a batch of outputs into boxes, classes and scores, and keeps each detection's cell
``(row, col)``: the heat-map logit ``outputs[i, row, col, class]`` is the one number that "why
this detection" explains. Coordinates are continuous pixels (pixel ``x`` spans ``[x, x + 1)``),
boxes ``(x0, y0, x1, y1)``, as the shapes world's (`camutils.course.shapes`).

The training targets (`encode_targets`), the loss (`detection_loss`) and the scores of
`evaluate_detections` (mean average precision and recall at IoU 0.5) are here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..boxes import pairwise_box_iou
from .shapes import IMAGE_SIZE, SHAPE_CLASSES

__all__ = ["STRIDE", "GRID", "HEATMAP", "SIZE", "OFFSET", "CHANNELS", "TARGET_CHANNELS",
           "Detections", "decode_detections", "encode_targets", "detection_loss",
           "average_precision", "evaluate_detections"]

STRIDE = 4
"""Pixels per cell side: the detector's grid is 16 x 16 on a 64 x 64 image."""
GRID: tuple[int, int] = (IMAGE_SIZE[0] // STRIDE, IMAGE_SIZE[1] // STRIDE)
_CLASSES = len(SHAPE_CLASSES)
HEATMAP = slice(0, _CLASSES)
"""Channels of the per-class centre heat-map logits."""
SIZE = slice(_CLASSES, _CLASSES + 2)
"""Channels of the box's (width, height) in pixels."""
OFFSET = slice(_CLASSES + 2, _CLASSES + 4)
"""Channels of the centre's (dx, dy) inside its cell, in cells."""
CHANNELS = _CLASSES + 4
TARGET_CHANNELS = CHANNELS + 1
"""`encode_targets` adds one channel: 1 at each object's centre cell, where size and offset
are learnt."""
_SIZE_WEIGHT = 0.1      # CenterNet's weights of the size and offset terms
_OFFSET_WEIGHT = 1.0


@dataclass
class Detections:
    """Decoded detections, ``k`` per image, best first; padding where fewer were found.

    Attributes:
        boxes: ``(n, k, 4)`` float32 ``(x0, y0, x1, y1)`` in pixels (``-1`` for padding).
        classes: ``(n, k)`` int64 class indices (``-1`` for padding).
        scores: ``(n, k)`` float32 heat-map probabilities (0 for padding).
        cells: ``(n, k, 2)`` int64 ``(row, col)`` of each peak on the grid (``-1`` for padding).
    """

    boxes: np.ndarray
    classes: np.ndarray
    scores: np.ndarray
    cells: np.ndarray

    def __len__(self) -> int:
        return len(self.boxes)

    @property
    def counts(self) -> np.ndarray:
        """How many detections each image has ``(n,)``."""
        return (self.classes >= 0).sum(axis=1)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # no overflow warning for large |x|


def decode_detections(outputs, max_detections: int = 10, min_score: float = 0.3) -> Detections:
    """The detections of a batch of detector outputs ``(n, 16, 16, 10)``.

    Args:
        outputs: the detector's outputs (a numpy array or tensor).
        max_detections: at most this many per image (the ``k`` highest peaks, all classes
            together).
        min_score: peaks whose probability is lower are dropped (padding in their place).

    Returns:
        `Detections`, sorted by score within each image.
    """
    from scipy.ndimage import maximum_filter

    outputs = np.asarray(outputs, np.float32)
    if outputs.ndim != 4 or outputs.shape[-1] != CHANNELS:
        raise ValueError(f"Detector outputs must have shape (n, rows, cols, {CHANNELS}) (the "
                         f"course detector's format); got {outputs.shape}.")
    if not 0 <= min_score <= 1:
        raise ValueError(f"min_score must be a probability between 0 and 1; got {min_score}.")
    n, rows, cols, _ = outputs.shape
    heat = _sigmoid(outputs[..., HEATMAP])
    peaks = heat == maximum_filter(heat, size=(1, 3, 3, 1), mode="constant", cval=-1.0)
    candidates = np.where(peaks, heat, 0.0).reshape(n, -1)
    k = min(int(max_detections), candidates.shape[1])
    top = np.argsort(-candidates, axis=1, kind="stable")[:, :k]
    scores = np.take_along_axis(candidates, top, axis=1).astype(np.float32)
    row, col, cls = np.unravel_index(top, (rows, cols, _CLASSES))
    picked = outputs[np.arange(n)[:, None], row, col]                     # (n, k, channels)
    cx = (col + picked[..., OFFSET][..., 0]) * STRIDE
    cy = (row + picked[..., OFFSET][..., 1]) * STRIDE
    w, h = picked[..., SIZE][..., 0], picked[..., SIZE][..., 1]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1).astype(np.float32)
    keep = scores >= min_score
    boxes[~keep] = -1.0
    scores[~keep] = 0.0
    return Detections(boxes, np.where(keep, cls, -1).astype(np.int64), scores,
                      np.where(keep[..., None], np.stack([row, col], -1), -1).astype(np.int64))


def encode_targets(labels: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The training target of scenes: ``(n, 16, 16, TARGET_CHANNELS)`` float32.

    ``labels (n, objects)`` and ``boxes (n, objects, 4)`` as `ShapeScenes` has them (``-1``
    padding). Each object puts a Gaussian bump on its class's heat map, peaking at exactly 1 in
    the cell that holds its centre (its width, in cells, is a sixth of the box's shorter side,
    at least half a cell, as in CenterNet); that cell also holds the box's size, the centre's
    offset and a 1 in the last channel.
    """
    labels, boxes = np.asarray(labels), np.asarray(boxes, np.float64)
    n, objects = labels.shape
    target = np.zeros((n, *GRID, TARGET_CHANNELS), np.float32)
    ys, xs = np.arange(GRID[0])[:, None], np.arange(GRID[1])[None, :]
    for j in range(objects):
        rows = np.nonzero(labels[:, j] >= 0)[0]
        if not len(rows):
            continue
        x0, y0, x1, y1 = boxes[rows, j].T
        cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE       # centre, in cells
        col = np.minimum(cx.astype(np.int64), GRID[1] - 1)
        row = np.minimum(cy.astype(np.int64), GRID[0] - 1)
        sigma = np.maximum(np.minimum(x1 - x0, y1 - y0) / STRIDE / 6, 0.5)
        bump = np.exp(-((xs - col[:, None, None]) ** 2 + (ys - row[:, None, None]) ** 2)
                      / (2 * sigma[:, None, None] ** 2))
        cls = labels[rows, j]
        target[rows, :, :, cls] = np.maximum(target[rows, :, :, cls], bump)
        target[rows, row, col, SIZE] = np.stack([x1 - x0, y1 - y0], -1)
        target[rows, row, col, OFFSET] = np.stack([cx - col, cy - row], -1)
        target[rows, row, col, CHANNELS] = 1.0
    return target


def detection_loss(target, outputs):
    """CenterNet's loss, per image: the penalty-reduced focal loss of the heat maps (alpha 2,
    beta 4), plus 0.1 x the L1 error of the box size and 1 x that of the offset at the
    centre cells, each divided by the image's number of objects."""
    from keras import ops

    heat_true = target[..., HEATMAP]
    centre = target[..., CHANNELS]
    logits = outputs[..., HEATMAP]
    prob = ops.sigmoid(logits)
    is_peak = ops.cast(heat_true >= 1.0, logits.dtype)
    positive = is_peak * ops.log_sigmoid(logits) * (1.0 - prob) ** 2
    negative = ((1.0 - is_peak) * ops.log_sigmoid(-logits) * prob ** 2
                * (1.0 - heat_true) ** 4)
    objects = ops.maximum(ops.sum(centre, axis=(1, 2)), 1.0)
    focal = -ops.sum(positive + negative, axis=(1, 2, 3)) / objects
    where = centre[..., None]
    size = ops.sum(ops.abs(outputs[..., SIZE] - target[..., SIZE]) * where, axis=(1, 2, 3))
    offset = ops.sum(ops.abs(outputs[..., OFFSET] - target[..., OFFSET]) * where, axis=(1, 2, 3))
    return focal + (_SIZE_WEIGHT * size + _OFFSET_WEIGHT * offset) / objects


def average_precision(detections: Detections, labels: np.ndarray, boxes: np.ndarray,
                      iou: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Average precision per class at an IoU threshold, as PASCAL VOC (2010 on) computes it.

    Every detection of a class, over all images, best score first, is a true positive when it
    overlaps a not yet matched ground-truth object of that class by at least ``iou``; AP is
    the area under the precision-recall curve (precision made monotone). Returns
    ``(ap, recall)`` per class ``(classes,)``: ``recall`` is the share of that class's objects
    found by any detection. A class absent from the ground truth gets NaN.
    """
    labels, truth = np.asarray(labels), np.asarray(boxes, np.float64)
    ap = np.full(_CLASSES, np.nan)
    recall = np.full(_CLASSES, np.nan)
    for c in range(_CLASSES):
        total = int((labels == c).sum())
        if total == 0:
            continue
        image, slot = np.nonzero(detections.classes == c)
        order = np.argsort(-detections.scores[image, slot], kind="stable")
        image, slot = image[order], slot[order]
        matched = np.zeros(labels.shape, bool)
        hits = np.zeros(len(image), bool)
        for d, (i, s) in enumerate(zip(image, slot)):
            candidates = np.nonzero((labels[i] == c) & ~matched[i])[0]
            if not len(candidates):
                continue
            overlap = pairwise_box_iou(detections.boxes[i, s][None], truth[i, candidates])[0]
            best = overlap.argmax()
            if overlap[best] >= iou:
                matched[i, candidates[best]] = True
                hits[d] = True
        tp = np.cumsum(hits)
        rec = tp / total
        prec = tp / np.arange(1, len(hits) + 1)
        # all-point interpolation: precision made non-increasing, summed over recall steps
        envelope = np.maximum.accumulate(np.concatenate([prec, [0.0]])[::-1])[::-1]
        steps = np.diff(np.concatenate([[0.0], rec]))
        ap[c] = float((steps * envelope[:-1]).sum()) if len(hits) else 0.0
        recall[c] = float(rec[-1]) if len(hits) else 0.0
    return ap, recall


def evaluate_detections(outputs: np.ndarray, labels: np.ndarray, boxes: np.ndarray,
                        min_score: float = 0.3) -> dict:
    """The detector's scores on scenes with ground truth ``labels`` and ``boxes``.

    ``mean_ap_at_0.5``: the mean over classes of the average precision at IoU 0.5 (every peak
    scored at least 0.01, at most 20 per image), and ``mean_ap_at_0.75`` (a stricter fit of
    the boxes); ``box_recall_at_0.5`` and
    ``box_precision_at_0.5``: with `decode_detections`' defaults (scores from ``min_score``),
    the share of objects found with the right class and IoU at least 0.5, and the share of
    detections that found one.
    """
    ranked = decode_detections(outputs, 20, 0.01)
    ap, _ = average_precision(ranked, labels, boxes)
    strict, _ = average_precision(ranked, labels, boxes, iou=0.75)
    kept = decode_detections(outputs, 10, min_score)
    _, recall = average_precision(kept, labels, boxes)
    objects = np.array([(np.asarray(labels) == c).sum() for c in range(_CLASSES)])
    found = np.nansum(recall * objects)
    detections = int((kept.classes >= 0).sum())
    return {
        "mean_ap_at_0.5": round(float(np.nanmean(ap)), 4),
        "ap_at_0.5": {name: round(float(a), 4) for name, a in zip(SHAPE_CLASSES, ap)},
        "mean_ap_at_0.75": round(float(np.nanmean(strict)), 4),
        "box_recall_at_0.5": round(float(found / objects.sum()), 4),
        "box_precision_at_0.5": round(float(found / max(detections, 1)), 4),
    }
