"""What a course model scores on a freshly generated test set (the manifest's figures).

    evaluate_course_model(model, "gap")   # {"test_accuracy": 0.999, "pointing_game_cam": ...}

Each task has its scores: accuracy for a classifier; per-label and mean F1 and exact-match
accuracy for the multi-label model; per-class and mean IoU for the segmenter; mean average
precision and box recall at IoU 0.5 for the detector (`camutils.course.detection`); mean
absolute error and R^2 for the size model. Where the library can already explain a model
(CAM at ``last_conv_relu``, for a class, a label or the regression unit), the map's scores
are computed with the library, as a learner would: maps from `camutils.explain` and scores
from `camutils.metrics` (the pointing game with no tolerance, the IoU of the region above a
fraction of the map's maximum, the share of the map's energy on a region).
"""

from __future__ import annotations

import numpy as np

from . import detection
from .architecture import CAM_LAYER, SPECS, check_variant, normalize_images
from .shapes import SEGMENT_CLASSES, SHAPE_CLASSES, make_shortcut
from .training import course_data

__all__ = ["TEST_SEED", "TEST_SIZE", "evaluate_course_model", "multilabel_scores",
           "segmentation_scores", "regression_scores"]

TEST_SEED = 90_001
"""Seed of the test sets; training uses seeds from `TrainingConfig.data_seed` upwards."""
TEST_SIZE = 3000
_CHUNK = 500  # images explained per call (bounds memory)


def _maps(model, inputs, classes, method: str) -> np.ndarray:
    from ..methods import explain

    if not len(inputs):
        return np.zeros((0, *inputs.shape[1:3]), np.float32)
    return explain(model, inputs, method=method, target=list(classes), layer=CAM_LAYER,
                   chunk_size=_CHUNK).maps


def _predict(model, inputs) -> np.ndarray:
    from ..model_cache import compiled_forward

    forward = compiled_forward(model)
    return np.concatenate([np.asarray(forward(inputs[i:i + _CHUNK]))
                           for i in range(0, len(inputs), _CHUNK)])


def evaluate_course_model(model, variant: str, n: int = TEST_SIZE, seed: int = TEST_SEED) -> dict:
    """What a trained model scores on a freshly generated test set.

    For a classifier: ``test_accuracy``; the pointing game (no tolerance) of its CAM (pooling
    variants) and of its Grad-CAM on the true class; the mean IoU with the masks of the CAM's
    region above 20% and 50% of its maximum; and for the shortcut variant the accuracy
    without the leak, the share of the CAM's energy on the marker (with and without it) and
    how often the CAM peaks on the marker. (The ViT's maps need the token-grid support of
    the methods: only its accuracy for now.) The other tasks: see `multilabel_scores`,
    `segmentation_scores`, `camutils.course.detection.evaluate_detections` and
    `regression_scores`, and for the multi-label and size models the CAM's pointing game.
    """
    from .. import metrics

    variant = check_variant(variant)
    data = course_data(variant, n, seed)
    inputs = normalize_images(data.images)
    outputs = _predict(model, inputs)
    facts = {"test_seed": seed, "test_images": n}
    task = SPECS[variant].task
    if task != "classification":
        return {**facts, **_TASK_SCORES[task](model, inputs, outputs, data)}
    logits = outputs
    facts["test_accuracy"] = round(float((logits.argmax(1) == data.labels).mean()), 4)
    if variant == "vit":
        return facts
    if variant != "flatten":
        cams = _maps(model, inputs, data.labels, "cam")
        facts["pointing_game_cam"] = round(float(
            metrics.pointing_game(cams, masks=data.masks, tolerance=0).mean()), 4)
        for t in (0.2, 0.5):
            facts[f"cam_iou_at_{t}"] = round(float(metrics.mask_iou(cams, data.masks, t).mean()), 4)
    grads = _maps(model, inputs, data.labels, "gradcam")
    facts["pointing_game_gradcam"] = round(float(
        metrics.pointing_game(grads, masks=data.masks, tolerance=0).mean()), 4)
    if variant == "shortcut":
        facts["marker_energy_cam"] = _energy(cams, data.marker_masks)
        facts["cam_peak_on_marker"] = round(float(
            metrics.pointing_game(cams, masks=data.marker_masks, tolerance=0).mean()), 4)
        clean = make_shortcut(n, seed=seed, leak=False)
        clean_inputs = normalize_images(clean.images)
        predicted = _predict(model, clean_inputs).argmax(1)
        facts["test_accuracy_no_leak"] = round(float((predicted == clean.labels).mean()), 4)
        facts["agrees_with_marker_no_leak"] = round(float((predicted == clean.marker_labels).mean()), 4)
        facts["marker_energy_cam_no_leak"] = _energy(
            _maps(model, clean_inputs, predicted, "cam"), clean.marker_masks)
    return facts


def _energy(maps: np.ndarray, masks: np.ndarray) -> float:
    """Mean share of each map's positive energy that lies on ``masks``."""
    from .. import metrics

    return round(float(metrics.energy_pointing_game(maps, masks=masks).mean()), 4)


def _round(values) -> float:
    return round(float(values), 4)


def multilabel_scores(logits: np.ndarray, present: np.ndarray) -> dict:
    """Scores of multi-label ``logits (n, labels)`` against ``present (n, labels)`` (0/1) at
    probability 0.5 (logit 0): F1 per label and their mean (macro F1), and the exact-match
    accuracy (every label of the image right)."""
    predicted, truth = np.asarray(logits) > 0, np.asarray(present) > 0.5
    tp = (predicted & truth).sum(0)
    denominator = predicted.sum(0) + truth.sum(0)
    f1 = np.divide(2 * tp, denominator, out=np.ones(len(tp)), where=denominator > 0)
    return {"mean_f1": _round(f1.mean()),
            "f1": {name: _round(v) for name, v in zip(SHAPE_CLASSES, f1)},
            "exact_match_accuracy": _round((predicted == truth).all(1).mean())}


def segmentation_scores(logits: np.ndarray, label_maps: np.ndarray) -> dict:
    """Per-class IoU of the predicted label maps (argmax of ``logits (n, H, W, classes)``)
    with ``label_maps (n, H, W)``, accumulated over all pixels of all images, and their mean
    over the classes (background included), with the pixel accuracy."""
    predicted = np.asarray(logits).argmax(-1).ravel()
    truth = np.asarray(label_maps).ravel().astype(np.int64)
    k = len(SEGMENT_CLASSES)
    confusion = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    tp = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - tp
    iou = np.divide(tp, union, out=np.full(k, np.nan), where=union > 0)
    return {"mean_iou": _round(np.nanmean(iou)),
            "iou": {name: _round(v) for name, v in zip(SEGMENT_CLASSES, iou)},
            "pixel_accuracy": _round(tp.sum() / confusion.sum())}


def regression_scores(predicted: np.ndarray, truth: np.ndarray) -> dict:
    """Mean absolute error, root mean squared error and R^2 (1 - residual / total sum of
    squares) of ``predicted`` against ``truth``."""
    predicted, truth = np.ravel(predicted).astype(np.float64), np.ravel(truth).astype(np.float64)
    residual = predicted - truth
    r2 = 1 - (residual ** 2).sum() / ((truth - truth.mean()) ** 2).sum()
    return {"mae": _round(np.abs(residual).mean()), "rmse": _round(np.sqrt((residual ** 2).mean())),
            "r2": _round(r2)}


def _multilabel(model, inputs, logits, scenes) -> dict:
    """Scores, and the CAM of each object's label: does it peak inside that object?"""
    from .. import metrics

    facts = multilabel_scores(logits, scenes.multi_hot())
    hits = []
    for j in range(scenes.labels.shape[1]):
        rows = np.nonzero(scenes.labels[:, j] >= 0)[0]
        maps = _maps(model, inputs[rows], scenes.labels[rows, j], "cam")
        hits.append(metrics.pointing_game(maps, masks=scenes.masks[rows, j], tolerance=0))
    facts["pointing_game_cam"] = _round(np.concatenate(hits).mean())
    return facts


def _segmentation(model, inputs, logits, scenes) -> dict:
    return segmentation_scores(logits, scenes.label_maps())


def _detection(model, inputs, outputs, scenes) -> dict:
    return detection.evaluate_detections(outputs, scenes.labels, scenes.boxes)


def _regression(model, inputs, outputs, shapes) -> dict:
    """Scores, and whether the CAM of the output peaks on the object."""
    from .. import metrics

    facts = regression_scores(outputs[:, 0], shapes.sizes())
    maps = _maps(model, inputs, np.zeros(len(inputs), np.int64), "cam")
    facts["pointing_game_cam"] = _round(
        metrics.pointing_game(maps, masks=shapes.masks, tolerance=0).mean())
    return facts


_TASK_SCORES = {"multilabel": _multilabel, "segmentation": _segmentation,
                "detection": _detection, "regression": _regression}
