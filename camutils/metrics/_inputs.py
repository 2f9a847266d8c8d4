"""Checking and converting the arrays the metrics take: maps, masks, boxes and class targets.

Every metric accepts one map or a batch; these helpers turn what was given into the batch
form, ``maps`` float32 ``(n, H, W)``, ``masks`` bool ``(n, H, W)``, ``boxes`` int64
``(n, K, 4)``, and say exactly what was wrong when that is impossible.
"""

from __future__ import annotations

import numpy as np

from ..checks import stacked

__all__ = ["as_maps", "as_masks", "as_boxes", "boxes_to_masks", "region_masks", "as_targets"]


def as_maps(maps) -> np.ndarray:
    """Maps as float32 ``(n, H, W)``. Accepts an `Explanation` (its ``.maps``) or one ``(H, W)`` map."""
    if hasattr(maps, "maps") and not isinstance(maps, np.ndarray):
        maps = maps.maps
    a = stacked(maps, "map", "maps must be at the input resolution, one size for all "
                "(explanation.maps are; resize others with camutils.resize).")
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3:
        raise ValueError(
            f"Maps must have shape (n, height, width) or (height, width); got {a.shape}. "
            "Pass the maps of an explanation (explanation.maps), one per image."
        )
    if a.shape[0] == 0 or a.shape[1] == 0 or a.shape[2] == 0:
        raise ValueError(f"The maps are empty (shape {a.shape}).")
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)
            or a.dtype == bool):
        raise ValueError(f"Maps must be numbers; got dtype {a.dtype}.")
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        bad = np.flatnonzero(~np.isfinite(a).all(axis=(1, 2)))
        raise ValueError(
            f"The maps of images {bad[:10].tolist()} contain NaN or infinite values; "
            "a metric cannot rank them. Check the method that produced them."
        )
    return a


def as_masks(masks, shape: tuple[int, int, int], what: str = "masks") -> np.ndarray:
    """Ground-truth masks as bool ``(n, H, W)``, checked against the maps' ``shape``."""
    a = stacked(masks, "mask", "give one mask per map, at the maps' resolution.")
    if a.ndim == 2:
        a = a[None]
    if a.dtype != bool:
        if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)) \
                or not np.isin(a, (0, 1)).all():
            raise ValueError(
                f"{what} must be boolean (or 0 / 1) arrays; got dtype {a.dtype} with other "
                "values. Threshold them first, e.g. mask > 0.5."
            )
        a = a.astype(bool)
    if a.shape != tuple(shape):
        raise ValueError(
            f"{what} have shape {a.shape} but the maps have shape {tuple(shape)}: give one "
            "mask per map, at the maps' resolution (the input resolution of the network)."
        )
    return a


def as_boxes(boxes, n: int, size: tuple[int, int] | None = None) -> np.ndarray:
    """Boxes as int64 ``(n, K, 4)`` ``(x0, y0, x1, y1)``, exclusive ends.

    Accepts one box ``(4,)``, one per image ``(n, 4)``, or several per image ``(n, K, 4)``,
    where rows of ``-1`` are padding (as `camutils.course.shapes.ShapeScenes` pads). Each image
    needs at least one real box, and a real box must have ``x1 > x0`` and ``y1 > y0``.
    """
    a = stacked(boxes, "box list", "give each image the same number of boxes, padding the "
                "shorter lists with rows of -1 (as camutils.course.shapes.ShapeScenes does).")
    if a.ndim == 1:
        a = a[None]
    if a.ndim == 2:
        a = a[:, None]
    if a.ndim != 3 or a.shape[-1] != 4:
        raise ValueError(
            f"Boxes must have shape (n, 4) or (n, K, 4) as (x0, y0, x1, y1); got {np.shape(boxes)}."
        )
    if not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise ValueError(f"Boxes must be numbers; got dtype {a.dtype}.")
    if np.issubdtype(a.dtype, np.floating):
        if not np.all(np.isfinite(a)):
            raise ValueError("The boxes contain NaN or infinite values.")
        a = np.rint(a)
    a = a.astype(np.int64)
    if a.shape[0] != n:
        raise ValueError(f"Got {a.shape[0]} boxes (or box lists) for {n} maps: give one per map.")
    padding = (a == -1).all(axis=-1)
    if padding.all(axis=1).any():
        bad = np.flatnonzero(padding.all(axis=1))
        raise ValueError(f"Images {bad[:10].tolist()} have no box (only -1 padding).")
    empty = ~padding & ((a[..., 2] <= a[..., 0]) | (a[..., 3] <= a[..., 1]))
    if empty.any():
        i, k = np.argwhere(empty)[0]
        raise ValueError(
            f"Box {a[i, k].tolist()} of image {i} is empty: boxes are (x0, y0, x1, y1) with "
            "exclusive ends, so x1 > x0 and y1 > y0."
        )
    if size is not None:
        h, w = size
        outside = ~padding & ((a[..., 2] <= 0) | (a[..., 3] <= 0) | (a[..., 0] >= w) | (a[..., 1] >= h))
        if outside.any():
            i, k = np.argwhere(outside)[0]
            raise ValueError(
                f"Box {a[i, k].tolist()} of image {i} lies entirely outside the {h} x {w} map. "
                "Boxes are in pixels of the maps (the network's input), (x0, y0, x1, y1)."
            )
    return a


def boxes_to_masks(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Rasterise ``(n, K, 4)`` boxes into bool ``(n, H, W)`` masks (the union of each image's boxes)."""
    h, w = size
    x0, y0, x1, y1 = (boxes[..., i][..., None] for i in range(4))  # (n, K, 1)
    padding = (boxes == -1).all(axis=-1)[..., None]
    ys, xs = np.arange(h), np.arange(w)
    inside_y = (ys >= y0) & (ys < y1) & ~padding  # (n, K, H)
    inside_x = (xs >= x0) & (xs < x1) & ~padding  # (n, K, W)
    return (inside_y[..., :, None] & inside_x[..., None, :]).any(axis=1)


def region_masks(maps: np.ndarray, masks=None, boxes=None) -> np.ndarray:
    """The ground-truth region of each map as a bool mask: ``masks`` or rasterised ``boxes``.

    Exactly one of ``masks`` and ``boxes`` must be given. An empty region is an error.
    """
    if (masks is None) == (boxes is None):
        raise ValueError(
            "Give the ground truth as exactly one of masks= (bool, (n, H, W)) or "
            "boxes= ((n, 4) or (n, K, 4) as (x0, y0, x1, y1), exclusive ends)."
        )
    if masks is not None:
        region = as_masks(masks, maps.shape)
    else:
        region = boxes_to_masks(as_boxes(boxes, len(maps), maps.shape[1:]), maps.shape[1:])
    empty = ~region.any(axis=(1, 2))
    if empty.any():
        raise ValueError(
            f"The ground truth of images {np.flatnonzero(empty)[:10].tolist()} is empty: "
            "every image needs at least one ground-truth pixel."
        )
    return region


def as_targets(target, n: int, what: str = "target") -> np.ndarray | None:
    """``None``, one class index for all images, or one per image, as int64 ``(n,)``."""
    if target is None:
        return None
    a = np.asarray(target)
    if a.ndim == 0:
        a = np.full(n, a)
    if a.ndim != 1 or len(a) != n:
        raise ValueError(f"{what} must be one class index or one per image ({n}); got shape {a.shape}.")
    if not np.issubdtype(a.dtype, np.integer):
        if np.issubdtype(a.dtype, np.floating) and np.all(a == np.rint(a)):
            a = a.astype(np.int64)
        else:
            raise ValueError(f"{what} must hold integer class indices; got dtype {a.dtype}.")
    return a.astype(np.int64)
