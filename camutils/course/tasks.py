"""The zoo's tasks as the command line and the explorer show them: what a model predicts for
an image, and what its maps naturally explain.

    rows = predictions(zoo, outputs, k=5)        # per image: [(index, name, value), ...]
    target = natural_target(zoo, "star", outputs)  # Region("star") for the segmenter, ...

`camutils.zoo.ZooModel.task` says what a model's outputs are (``classification``,
``multilabel``, ``segmentation``, ``detection`` in the course detector's format,
`camutils.course.detection`, or ``regression``). For each task:

============== ========================================== ==================================
task           what it predicts (``predictions``)          what a class or label name explains
============== ========================================== ==================================
classification the top classes, softmax probability         `Class` (default: the top class)
multilabel     the labels by sigmoid probability            `Label` (default: the top label)
segmentation   the classes by share of the pixels           `Region` over the predicted mask
                                                            (default: each image's largest
                                                            predicted class but background)
detection      the detections, heat-map probability         `Detection` at the strongest cell
                                                            of that class (default: each
                                                            image's strongest detection)
regression     the value of each unit                       `Regression` of that unit
============== ========================================== ==================================
"""

from __future__ import annotations

import numpy as np

from .. import targets as T
from ..scores import softmax
from . import detection

__all__ = ["TASKS", "predictions", "natural_target", "values_are_fractions", "BACKGROUND_NAME"]

TASKS = ("classification", "multilabel", "segmentation", "detection", "regression")
#: The segmenters' background class, left out of the default region.
BACKGROUND_NAME = "background"


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, np.float64)))


def _task(zoo) -> str:
    task = getattr(zoo, "task", "classification")
    if task not in TASKS:
        raise ValueError(f"Unknown task {task!r} of model {zoo.name!r}; tasks: {', '.join(TASKS)}.")
    return task


def values_are_fractions(zoo) -> bool:
    """Whether `predictions` gives fractions (probabilities, shares of pixels), not values."""
    return _task(zoo) != "regression"


def _ranked(values: np.ndarray, names, k: int) -> list[list[tuple[int, str, float]]]:
    order = np.argsort(-values, axis=1, kind="stable")[:, :min(k, values.shape[1])]
    return [[(int(i), str(names[i]), float(v[i])) for i in row] for row, v in zip(order, values)]


def predictions(zoo, outputs: np.ndarray, k: int = 5) -> list[list[tuple[int, str, float]]]:
    """For each image, what the model predicts: at most ``k`` rows ``(index, name, value)``,
    best first (see the module's table; the value is a fraction but for regression)."""
    task, names = _task(zoo), zoo.class_names
    outputs = np.asarray(outputs, np.float32)
    if task == "classification":
        return _ranked(softmax(outputs), names, k)
    if task == "multilabel":
        return _ranked(_sigmoid(outputs), names, k)
    if task == "segmentation":
        predicted = outputs.argmax(-1).reshape(len(outputs), -1)
        shares = np.stack([np.bincount(p, minlength=outputs.shape[-1]) / p.size
                           for p in predicted])
        return [[row for row in rows if row[2] > 0] for rows in _ranked(shares, names, k)]
    if task == "detection":
        found = detection.decode_detections(outputs, max_detections=k)
        return [[(int(c), str(names[c]), float(s)) for c, s in zip(classes, scores) if c >= 0]
                for classes, scores in zip(found.classes, found.scores)]
    return [[(i, str(names[i]), float(v)) for i, v in enumerate(row)] for row in outputs]


def _largest_region(zoo, outputs: np.ndarray) -> list[int]:
    """Each image's predicted class with the most pixels, the background left out (unless
    it is all the image holds)."""
    counts = np.stack([np.bincount(p.ravel(), minlength=outputs.shape[-1])
                       for p in outputs.argmax(-1)]).astype(np.float64)
    names = [str(n).lower() for n in zoo.class_names]
    if BACKGROUND_NAME in names:
        background = names.index(BACKGROUND_NAME)
        others = np.delete(np.arange(counts.shape[1]), background)
        has_object = counts[:, others].sum(1) > 0
        counts[has_object, background] = -1.0
    return [int(c) for c in counts.argmax(1)]


def natural_target(zoo, index: int | None = None, outputs: np.ndarray | None = None):
    """The target that a class, label or unit ``index`` (None: the default) naturally means
    for ``zoo``'s task, for a batch whose model outputs are ``outputs`` (the segmentation
    and detection targets read them: which region, which cell). See the module's table."""
    task = _task(zoo)
    if task == "classification":
        return None if index is None else T.Class(int(index))
    if task == "multilabel":
        return T.Class() if index is None else T.Label(int(index))
    if task == "regression":
        return T.Regression(0 if index is None else int(index))
    if outputs is None:
        raise ValueError(f"The natural target of a {task} model depends on its outputs: pass "
                         "the model's outputs for the batch.")
    outputs = np.asarray(outputs)
    if task == "segmentation":
        if index is not None:
            return T.Region(int(index))
        classes = _largest_region(zoo, outputs)
        return T.Region(classes[0] if len(classes) == 1 else classes)
    if index is None:
        return T.Detection(rank=0)
    heat_channels = outputs.shape[-1] - 4
    if not 0 <= int(index) < heat_channels:
        raise ValueError(f"The detector has {heat_channels} classes (0 to {heat_channels - 1}); "
                         f"{zoo.class_names[int(index)]!r} is not one of them.")
    heat = outputs[..., int(index)].reshape(len(outputs), -1)
    cells = np.stack(np.unravel_index(heat.argmax(1), outputs.shape[1:3]), axis=1)
    return T.Detection(cell=cells, label=int(index))
