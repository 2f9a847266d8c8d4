"""A target adds no pass: Grad-CAM with each ready-made target against one forward pass.

    python -m benchmarks --targets           # the three models, one process (~2 min)

A target's choice (the top class, the predicted mask, the strongest detection) and its
score are a few ops on the outputs of the same compiled pass (`camutils.targets`), so a
gradient method with any target must keep the gradient methods' budget: at most
`GRADIENT_BUDGET` x one forward pass. Measured at batch `BATCH` on:

* EfficientNet-Lite0 (224 x 224, the sample photos, its CAM layer ``head_relu6``): the
  default target (the top class's logit), a class's probability, a contrast between two
  classes, the similarity of the logits to a reference photo's, and a function;
* the course segmenter (64 x 64 scenes, its last convolutional block ``decoder32_relu``):
  a class's region over the predicted mask, and over a given mask;
* the course detector (64 x 64 scenes, its last convolutional block ``neck_relu``): the
  strongest detection (chosen in the graph), and a given cell.

As on EfficientNet-Lite0, the budget is judged at the last convolutional layer, where the
backward pass from the score to the layer is small. Rows for information, not judged: on
the segmenter and the detector, Grad-CAM of one output value at the same layer (a function
that reads one number: the least any target can cost, so that the table separates what the
target costs from what the backward pass to the layer and the maps cost), and the region
at the segmenter's default layer ``decoder16_relu``, from which the backward pass also runs
through the 32 x 32 decoder block (about a third of the network's arithmetic), whatever the
target.

Each model is one interleaved block (`benchmarks.timing`): the baseline is the plain
compiled forward pass (`camutils.model_cache.compiled_forward`), the candidates are
``camutils.explain(model, images, "gradcam", target=..., layer=...)``, warm (traced once
before the rounds); the judged figure is the median paired CPU-time ratio, the wall-time
ratio kept beside it, as for the other ratio budgets.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

__all__ = ["BATCH", "GRADIENT_BUDGET", "TARGET_MODELS", "measure_targets", "target_cases"]

BATCH = 32
#: The gradient methods' ratio budget (`benchmarks.budgets.COST_BUDGETS`).
GRADIENT_BUDGET = 1.2
#: The models measured, in order.
TARGET_MODELS = ("efficientnet_lite0", "shapes_segmenter", "shapes_detector")
_ROUNDS = {"efficientnet_lite0": (4, 6, 60.0), "shapes_segmenter": (7, 11, 20.0),
           "shapes_detector": (7, 11, 20.0)}


@dataclass
class Case:
    """A model with its inputs and the targets measured on it: ``targets`` maps a label to
    ``(target, layer, judged)`` (``judged``: whether the budget applies to the row)."""

    model: object
    inputs: np.ndarray
    targets: dict
    class_names: list


def _scenes(n: int) -> np.ndarray:
    import camutils
    from camutils.course.architecture import normalize_images

    return normalize_images(camutils.make_scenes(n, seed=21, objects=(1, 3)).images)


def _one_value(outputs):
    """One number of each image's output: Grad-CAM of it costs the backward pass to the
    layer and the maps, and nothing a target computes."""
    return outputs[:, 0, 0, 0]


def target_cases(name: str, batch: int = BATCH) -> Case:
    """The model ``name`` (one of `TARGET_MODELS`), its inputs and its targets."""
    import tensorflow as tf

    import camutils
    from camutils import targets as T

    zoo = camutils.load_model(name)
    if name == "efficientnet_lite0":
        photos = [camutils.load_sample(s) for s in camutils.sample_names()]
        inputs, _ = zoo.preprocess(photos)
        inputs = inputs[np.arange(batch) % len(inputs)]
        reference = zoo.predict_inputs(inputs[:1])[0]
        tabby, tiger = zoo.class_names.index("tabby"), zoo.class_names.index("tiger_cat")

        def log_odds(outputs):  # a function: the tabby's logit against the log-sum-exp
            return outputs[:, tabby] - tf.reduce_logsumexp(outputs, axis=1)

        layer = zoo.cam_layer
        targets = {"top class's logit (default)": (None, layer, True),
                   "Class(tabby, probability)": (T.Class(tabby, score="probability"), layer,
                                                 True),
                   "Contrast(tabby, tiger cat)": (T.Contrast(tabby, tiger), layer, True),
                   "Similarity(a photo's logits)": (T.Similarity(reference), layer, True),
                   "a function of the logits": (log_odds, layer, True)}
    elif name == "shapes_segmenter":
        inputs = _scenes(batch)
        mask = np.zeros((64, 64), np.float32)
        mask[16:48, 16:48] = 1.0
        targets = {"one output value (the floor)": (_one_value, "decoder32_relu", False),
                   "Region(circle, predicted mask)": (T.Region("circle"), "decoder32_relu", True),
                   "Region(circle, a given mask)": (T.Region("circle", mask=mask),
                                                    "decoder32_relu", True),
                   "Region(circle, predicted mask) at the default layer":
                       (T.Region("circle"), zoo.cam_layer, False)}
    elif name == "shapes_detector":
        inputs = _scenes(batch)
        targets = {"one output value (the floor)": (_one_value, zoo.cam_layer, False),
                   "Detection(the strongest)": (T.Detection(rank=0), zoo.cam_layer, True),
                   "Detection(a given cell)": (T.Detection(cell=(8, 8), label="circle"),
                                               zoo.cam_layer, True)}
    else:
        raise ValueError(f"No target benchmark for {name!r}; models: {', '.join(TARGET_MODELS)}.")
    return Case(zoo.model, np.ascontiguousarray(inputs, np.float32), targets,
                list(zoo.class_names))


def _explainer(case: Case, target, layer: str) -> Callable:
    import camutils

    return lambda: camutils.explain(case.model, case.inputs, "gradcam", target=target,
                                    layer=layer, class_names=case.class_names)


def measure_model(name: str, progress: bool = True) -> dict:
    """One model's block: the forward pass and Grad-CAM with each of its targets."""
    from camutils.model_cache import compiled_forward

    from .timing import Block, run_block

    case = target_cases(name)
    forward = compiled_forward(case.model)
    candidates = {label: _explainer(case, target, layer)
                  for label, (target, layer, _) in case.targets.items()}
    low, high, budget = _ROUNDS[name]
    base, results = run_block(Block(f"{name} targets", lambda: np.asarray(forward(case.inputs)),
                                    candidates, low, high, budget), progress=progress)
    return {"batch": len(case.inputs), "input_size": list(case.inputs.shape[1:3]),
            "baseline": base.as_dict(),
            "candidates": {label: {**t.as_dict(), "layer": case.targets[label][1],
                                   "judged": case.targets[label][2]}
                           for label, t in results.items()},
            "rounds": len(base.samples)}


def measure_targets(models=TARGET_MODELS, progress: bool = True) -> dict:
    """Every model's block, with the date and the machine."""
    from .machine import describe_machine

    started = time.perf_counter()
    machine = describe_machine()
    results = {name: measure_model(name, progress) for name in models}
    return {"date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "machine": machine, "budget": GRADIENT_BUDGET, "models": results,
            "seconds": time.perf_counter() - started}
