"""Localisation: does a heat map point at the object? Scores against ground-truth masks and boxes.

    hits = pointing_game(explanation.maps, boxes=data.boxes)          # (n,) bool
    share = energy_pointing_game(explanation.maps, masks=data.masks)  # (n,) float32 in [0, 1]
    result = box_localisation(explanation.maps, boxes=data.boxes)     # the CAM paper's protocol
    table_row = localisation_scores(explanation.maps, masks=data.masks)  # dict of means

Maps are float32 ``(n, H, W)`` at the network's input resolution (what
``camutils.explain(...).maps`` returns; an `Explanation` itself is accepted too), ground
truth is either bool masks ``(n, H, W)`` or boxes ``(n, 4)`` as ``(x0, y0, x1, y1)`` pixel
coordinates with exclusive ends. Boxes may also be ``(n, K, 4)``, several objects per image
with ``-1`` rows as padding (as `camutils.course.shapes.ShapeScenes` stores them): the ground
truth is then the union of the boxes, and a predicted box is compared with the best one.

Every function is vectorised over the batch (no Python loop over images) and returns
plain numpy arrays, except `box_localisation` and `localisation_scores`, which return
dicts ready to tabulate. Nothing here ever returns NaN: a map with no positive value
scores as a miss, 0 energy, an empty box and 0 IoU.

Papers:
- Pointing game: J. Zhang, Z. Lin, J. Brandt, X. Shen, S. Sclaroff, "Top-down Neural
  Attention by Excitation Backprop", ECCV 2016 (IJCV 2018).
- Energy-based pointing game: H. Wang et al., "Score-CAM: Score-Weighted Visual
  Explanations for Convolutional Neural Networks", CVPR Workshops 2020, sec. 4.3.
- Box protocol: B. Zhou, A. Khosla, A. Lapedriza, A. Oliva, A. Torralba, "Learning Deep
  Features for Discriminative Localization", CVPR 2016, sec. 3.1 and 4.1.
"""

from __future__ import annotations

import numpy as np

from ._inputs import as_boxes, as_maps, as_masks, as_targets, region_masks

__all__ = [
    "POINTING_TOLERANCE_PX", "POINTING_REFERENCE_SIZE", "pointing_tolerance", "peak_locations",
    "pointing_game", "energy_pointing_game", "threshold_regions", "largest_component_boxes",
    "box_iou", "box_localisation", "mask_iou", "mask_coverage", "localisation_scores",
]

POINTING_TOLERANCE_PX = 15.0
"""The pointing game's tolerance in the paper's protocol, in pixels."""

POINTING_REFERENCE_SIZE = 500
"""The longer side, in pixels, of the images the 15-pixel tolerance was set for (PASCAL VOC
images, on which the pointing game was introduced, are at most 500 pixels on their longer side)."""


def pointing_tolerance(size: tuple[int, int], pixels: float = POINTING_TOLERANCE_PX,
                       reference: int = POINTING_REFERENCE_SIZE) -> float:
    """The pointing game's tolerance scaled to an image of ``size = (height, width)``.

    The paper counts a hit within 15 pixels of the object on PASCAL VOC / COCO photos, about
    500 pixels on their longer side, that is 3% of the longer side. The same share is kept
    here: ``pixels * max(height, width) / reference``. That gives 6.7 pixels at 224 x 224 and
    1.9 pixels at 64 x 64 (15 pixels on a 64 x 64 image would be almost a quarter of it:
    nearly every peak close to the object would count as a hit).
    """
    h, w = (int(s) for s in size)
    if h <= 0 or w <= 0:
        raise ValueError(f"size must be a positive (height, width); got {size}.")
    return float(pixels) * max(h, w) / float(reference)


def peak_locations(maps) -> np.ndarray:
    """The location ``(x, y)`` of each map's maximum, int64 ``(n, 2)``; ``(-1, -1)`` for no peak.

    Ties: when several pixels share the maximum exactly (a plateau, e.g. after
    nearest-neighbour upsampling or clipping), the peak is the tied pixel nearest to the
    centroid of all tied pixels (the middle of a plateau), and among equally near ones the
    first in row-major order. The rule is deterministic and does not favour a corner of
    the image, as taking the first maximum (``argmax``) would.

    A map without a peak, that is one whose maximum is not positive or which is constant
    (an all-zero map included), gets ``(-1, -1)``.
    """
    maps = as_maps(maps)
    n, h, w = maps.shape
    top = maps.max(axis=(1, 2))
    no_peak = (top <= 0) | (top <= maps.min(axis=(1, 2)))
    tied = maps == top[:, None, None]
    count = tied.sum(axis=(1, 2)).astype(np.float64)
    ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    cy = tied.sum(axis=2) @ ys / count
    cx = tied.sum(axis=1) @ xs / count
    d2 = (ys[None, :, None] - cy[:, None, None]) ** 2 + (xs[None, None, :] - cx[:, None, None]) ** 2
    d2[~tied] = np.inf
    flat = np.argmin(d2.reshape(n, -1), axis=1)  # the first of equal minima: row-major order
    peaks = np.stack([flat % w, flat // w], axis=1).astype(np.int64)
    peaks[no_peak] = -1
    return peaks


def pointing_game(maps, *, masks=None, boxes=None, tolerance: float | str = "auto") -> np.ndarray:
    """The pointing game: is each map's maximum on the object? Returns bool ``(n,)`` hits.

    A hit when the map's peak (see `peak_locations` for the tie rule) lies inside the
    ground truth, or within ``tolerance`` pixels of it (Euclidean distance between pixel
    centres to the nearest ground-truth pixel); otherwise a miss. A map without a peak
    (all zero, constant, or with no positive value) is a miss. The accuracy is
    ``hits.mean()``.

    Args:
        maps: float ``(n, H, W)`` (or an `Explanation`).
        masks: bool ``(n, H, W)`` ground-truth masks; or
        boxes: ``(n, 4)`` or ``(n, K, 4)`` boxes ``(x0, y0, x1, y1)``, exclusive ends.
        tolerance: pixels; ``"auto"`` (the default) scales the paper's 15 pixels at about 500
            pixels to the maps' size (`pointing_tolerance`: 1.9 px at 64 x 64, 6.7 px at
            224 x 224); ``15`` reproduces the paper's setting on full-size photos; ``0``
            demands the peak be exactly on the object.
    """
    maps = as_maps(maps)
    region = region_masks(maps, masks, boxes)
    n, h, w = maps.shape
    if isinstance(tolerance, str):
        if tolerance != "auto":
            raise ValueError(f"tolerance must be a number of pixels or 'auto'; got {tolerance!r}.")
        tolerance = pointing_tolerance((h, w))
    tolerance = float(tolerance)
    if not np.isfinite(tolerance) or tolerance < 0:
        raise ValueError(f"tolerance must be a non-negative number of pixels; got {tolerance}.")
    peaks = peak_locations(maps)
    has_peak = peaks[:, 0] >= 0
    px, py = np.maximum(peaks[:, 0], 0), np.maximum(peaks[:, 1], 0)
    if tolerance == 0:
        hit = region[np.arange(n), py, px]
    else:
        # Squared distances are exact integers; the square root is compared, so that a
        # tolerance of exactly sqrt(d2) counts as a hit.
        ys, xs = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
        d2 = (ys[None, :, None] - py[:, None, None]) ** 2 + (xs[None, None, :] - px[:, None, None]) ** 2
        d2 = np.where(region, d2, np.inf)
        hit = np.sqrt(d2.reshape(n, -1).min(axis=1)) <= tolerance
    return hit & has_peak


def energy_pointing_game(maps, *, masks=None, boxes=None) -> np.ndarray:
    """The share of each map's positive energy inside the ground truth, float32 ``(n,)`` in [0, 1].

    ``sum(max(map, 0) inside) / sum(max(map, 0))``, the energy-based pointing game of
    Score-CAM (which used boxes; masks are tighter). A map with no positive value scores 0.
    """
    maps = as_maps(maps)
    region = region_masks(maps, masks, boxes)
    positive = np.maximum(maps, 0).astype(np.float64)
    total = positive.sum(axis=(1, 2))
    inside = (positive * region).sum(axis=(1, 2))
    share = np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    return share.astype(np.float32)


def _check_threshold(threshold: float) -> float:
    threshold = float(threshold)
    if not 0.0 <= threshold < 1.0:
        raise ValueError(
            f"threshold is a fraction of each map's maximum in [0, 1); got {threshold} "
            "(the CAM paper uses 0.2)."
        )
    return threshold


def threshold_regions(maps, threshold: float = 0.2) -> np.ndarray:
    """Where each map is above ``threshold`` times its own maximum: bool ``(n, H, W)``.

    The CAM paper's segmentation step ("the regions of which the value is above 20% of the
    max value of the CAM"). The comparison is strict, so a map with no positive value gives
    an empty region.
    """
    maps = as_maps(maps)
    threshold = _check_threshold(threshold)
    top = np.maximum(maps.max(axis=(1, 2)), 0)
    return (maps > threshold * top[:, None, None]) & (top > 0)[:, None, None]


def largest_component_boxes(maps, threshold: float = 0.2, connectivity: int = 8) -> np.ndarray:
    """The CAM paper's box: the bounding box of the largest connected region above threshold.

    Each map is cut at ``threshold`` times its maximum (`threshold_regions`), its connected
    components are labelled (``connectivity`` 8 or 4; one call to `scipy.ndimage.label` for
    the whole batch, components never cross images) and the tight box of the largest one is
    returned, int64 ``(n, 4)`` ``(x0, y0, x1, y1)`` with exclusive ends. Among components of
    equal size the first in row-major order (of its first pixel) wins. A map with nothing
    above threshold gets ``(-1, -1, -1, -1)``, an empty box (IoU 0 with anything).
    """
    from scipy import ndimage

    regions = threshold_regions(maps, threshold)
    if connectivity not in (4, 8):
        raise ValueError(f"connectivity must be 4 or 8; got {connectivity}.")
    n, h, w = regions.shape
    structure = np.zeros((3, 3, 3), dtype=bool)
    structure[1] = ndimage.generate_binary_structure(2, 1 if connectivity == 4 else 2)
    labels, count = ndimage.label(regions, structure=structure)
    boxes = np.full((n, 4), -1, dtype=np.int64)
    if count == 0:
        return boxes
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    owner = np.zeros(count, dtype=np.int64)  # the image each label lies in
    owner[labels[labels > 0] - 1] = np.nonzero(labels > 0)[0]
    ids = np.arange(count)
    # Sort by image, then size (largest first), then label (first found first).
    order = np.lexsort((ids, -sizes, owner))
    images, first = np.unique(owner[order], return_index=True)
    best = np.zeros(n, dtype=np.int64)  # label 0 is the background: never selected
    best[images] = order[first] + 1
    selected = labels == best[:, None, None]
    selected &= (best > 0)[:, None, None]
    rows, cols = selected.any(axis=2), selected.any(axis=1)
    y0, y1 = rows.argmax(axis=1), h - rows[:, ::-1].argmax(axis=1)
    x0, x1 = cols.argmax(axis=1), w - cols[:, ::-1].argmax(axis=1)
    found = best > 0
    boxes[found] = np.stack([x0, y0, x1, y1], axis=1)[found]
    return boxes


def box_iou(predicted, truth) -> np.ndarray:
    """Intersection over union of box pairs, float32 ``(n,)``.

    ``predicted`` is ``(n, 4)``; ``truth`` is ``(n, 4)`` or ``(n, K, 4)`` with ``-1`` rows as
    padding, in which case each predicted box scores its best IoU over the image's boxes.
    Boxes are ``(x0, y0, x1, y1)`` with exclusive ends, so a box's area is
    ``(x1 - x0) * (y1 - y0)``. An empty predicted box (``x1 <= x0`` or ``y1 <= y0``, such as
    the ``(-1, -1, -1, -1)`` of a map with nothing above threshold) has IoU 0.
    """
    pred = np.asarray(predicted)
    if pred.ndim == 1:
        pred = pred[None]
    if pred.ndim != 2 or pred.shape[1] != 4:
        raise ValueError(f"Predicted boxes must have shape (n, 4); got {np.shape(predicted)}.")
    pred = pred.astype(np.int64)
    gt = as_boxes(truth, len(pred))
    padding = (gt == -1).all(axis=-1)
    p = pred[:, None, :]
    iw = np.clip(np.minimum(p[..., 2], gt[..., 2]) - np.maximum(p[..., 0], gt[..., 0]), 0, None)
    ih = np.clip(np.minimum(p[..., 3], gt[..., 3]) - np.maximum(p[..., 1], gt[..., 1]), 0, None)
    inter = (iw * ih).astype(np.float64)
    area_p = (np.clip(p[..., 2] - p[..., 0], 0, None) * np.clip(p[..., 3] - p[..., 1], 0, None))
    area_g = (gt[..., 2] - gt[..., 0]) * (gt[..., 3] - gt[..., 1])
    iou = inter / (area_p + area_g - inter)  # area_g > 0 for every real box, so no 0 / 0
    iou[padding] = -1.0
    return iou.max(axis=1).astype(np.float32)


def box_localisation(maps, *, boxes=None, masks=None, threshold: float = 0.2,
                     iou_threshold: float = 0.5, predicted=None, labels=None) -> dict:
    """The CAM paper's localisation protocol (Zhou et al. 2016, sec. 3.1 and 4.1).

    Each map is cut at ``threshold`` (20%) of its maximum, the box of the largest connected
    component is taken (`largest_component_boxes`), and it is correct when its IoU with the
    ground-truth box is at least ``iou_threshold`` (0.5). The paper also requires the right
    class: pass the predicted and true class indices (``predicted``, ``labels``) to require
    ``predicted == labels`` as well. The paper reports the localisation error, ``1 - accuracy``.

    Args:
        maps: float ``(n, H, W)`` (or an `Explanation`).
        boxes: ground-truth boxes ``(n, 4)`` or ``(n, K, 4)`` (best IoU over K); or
        masks: bool ``(n, H, W)`` masks, whose tight boxes are used.

    Returns:
        A dict: ``"boxes"`` int64 ``(n, 4)``, the predicted boxes; ``"iou"`` float32 ``(n,)``;
        ``"correct"`` bool ``(n,)``; ``"accuracy"`` and ``"mean_iou"`` floats.
    """
    maps = as_maps(maps)
    if (masks is None) == (boxes is None):
        raise ValueError("Give the ground truth as exactly one of boxes= or masks=.")
    if boxes is None:
        from ..boxes import boxes_from_masks

        region = region_masks(maps, masks=masks)
        boxes = boxes_from_masks(region)
    gt = as_boxes(boxes, len(maps), maps.shape[1:])
    iou_threshold = float(iou_threshold)
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1]; got {iou_threshold}.")
    pred = largest_component_boxes(maps, threshold)
    iou = box_iou(pred, gt)
    correct = iou >= iou_threshold
    if (predicted is None) != (labels is None):
        raise ValueError(
            "To require the right class, give both predicted= and labels= (class indices)."
        )
    if predicted is not None:
        n = len(maps)
        correct &= as_targets(predicted, n, "predicted") == as_targets(labels, n, "labels")
    return {"boxes": pred, "iou": iou, "correct": correct,
            "accuracy": float(correct.mean()), "mean_iou": float(iou.mean())}


def _region_overlap(maps, masks, threshold) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    maps = as_maps(maps)
    region = threshold_regions(maps, threshold)
    truth = as_masks(masks, maps.shape)
    if not truth.any(axis=(1, 2)).all():
        bad = np.flatnonzero(~truth.any(axis=(1, 2)))
        raise ValueError(f"The masks of images {bad[:10].tolist()} are empty.")
    inter = (region & truth).sum(axis=(1, 2)).astype(np.float64)
    return inter, region.sum(axis=(1, 2)), truth.sum(axis=(1, 2))


def mask_iou(maps, masks, threshold: float = 0.2) -> np.ndarray:
    """IoU of each map's region above ``threshold`` of its maximum with the mask, float32 ``(n,)``.

    The region is `threshold_regions` (all components, not only the largest). A map with
    no positive value has an empty region, IoU 0.
    """
    inter, region, truth = _region_overlap(maps, masks, threshold)
    return (inter / (region + truth - inter)).astype(np.float32)


def mask_coverage(maps, masks, threshold: float = 0.2) -> np.ndarray:
    """The share of each mask covered by the map's region above threshold, float32 ``(n,)``.

    ``|region & mask| / |mask|``: 1 when the map covers the whole object. It rewards maps
    that spread (the paper's claim for global average pooling over max pooling); read it
    beside `mask_iou`, which also penalises spreading beyond the object.
    """
    inter, _, truth = _region_overlap(maps, masks, threshold)
    return (inter / truth).astype(np.float32)


def localisation_scores(maps, *, masks=None, boxes=None, tolerance: float | str = "auto",
                        threshold: float = 0.2, iou_threshold: float = 0.5) -> dict[str, float]:
    """Every localisation score of a batch of maps, averaged: one row of a results table.

    The pointing games use ``masks`` when given, else ``boxes``; the box protocol uses
    ``boxes`` when given, else the masks' tight boxes; ``mask_iou`` and ``mask_coverage``
    need ``masks`` and are left out without them.

    Returns:
        ``{"pointing_game", "energy_pointing_game", "box_iou", "localisation_accuracy"
        [, "mask_iou", "mask_coverage"]}``, each a float in [0, 1] (mean over images).
    """
    maps = as_maps(maps)
    if masks is None and boxes is None:
        raise ValueError("Give the ground truth: masks= (bool, (n, H, W)) and/or boxes= ((n, 4)).")
    truth = {"masks": masks} if masks is not None else {"boxes": boxes}
    box_truth = {"boxes": boxes} if boxes is not None else {"masks": masks}
    boxes_result = box_localisation(maps, threshold=threshold, iou_threshold=iou_threshold, **box_truth)
    scores = {
        "pointing_game": float(pointing_game(maps, tolerance=tolerance, **truth).mean()),
        "energy_pointing_game": float(energy_pointing_game(maps, **truth).mean()),
        "box_iou": boxes_result["mean_iou"],
        "localisation_accuracy": boxes_result["accuracy"],
    }
    if masks is not None:
        scores["mask_iou"] = float(mask_iou(maps, masks, threshold).mean())
        scores["mask_coverage"] = float(mask_coverage(maps, masks, threshold).mean())
    return scores
