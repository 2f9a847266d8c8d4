"""What a course model scores on a freshly generated test set (the manifest's figures).

    evaluate_course_model(model, "gap")   # {"test_accuracy": 0.999, "pointing_game_cam": ...}

Every figure is computed with the library, as a learner would: maps from `camutils.explain`
(CAM and Grad-CAM at the CAM layer, for the true class) and scores from `camutils.metrics`
(the pointing game with no tolerance, the IoU of the region above a fraction of the map's
maximum, the share of the map's energy on a region).
"""

from __future__ import annotations

import numpy as np

from .architecture import CAM_LAYER, check_variant, normalize_images
from .shapes import make_shortcut
from .training import course_data

__all__ = ["TEST_SEED", "TEST_SIZE", "evaluate_course_model"]

TEST_SEED = 90_001
"""Seed of the test sets; training uses seeds from `TrainingConfig.data_seed` upwards."""
TEST_SIZE = 3000
_CHUNK = 500  # images explained per call (bounds memory)


def _maps(model, inputs, classes, method: str) -> np.ndarray:
    from ..methods import explain

    return explain(model, inputs, method=method, target=list(classes), layer=CAM_LAYER,
                   chunk_size=_CHUNK).maps


def _predict(model, inputs) -> np.ndarray:
    from ..model_cache import compiled_forward

    forward = compiled_forward(model)
    return np.concatenate([np.asarray(forward(inputs[i:i + _CHUNK]))
                           for i in range(0, len(inputs), _CHUNK)])


def evaluate_course_model(model, variant: str, n: int = TEST_SIZE, seed: int = TEST_SEED) -> dict:
    """What a trained model scores on a freshly generated test set.

    Returns ``test_accuracy``; the pointing game (no tolerance) of its CAM (pooling
    variants) and of its Grad-CAM on the true class; the mean IoU with the masks of the CAM's
    region above 20% and 50% of its maximum; and for the shortcut variant the accuracy
    without the leak, the share of the CAM's energy on the marker (with and without it) and
    how often the CAM peaks on the marker.
    """
    from .. import metrics

    variant = check_variant(variant)
    data = course_data(variant, n, seed)
    inputs = normalize_images(data.images)
    logits = _predict(model, inputs)
    facts = {"test_seed": seed, "test_images": n,
             "test_accuracy": round(float((logits.argmax(1) == data.labels).mean()), 4)}
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
