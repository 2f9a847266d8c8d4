"""Method names, their aliases, and `explain`, the one entry point."""

from __future__ import annotations

import dataclasses
import difflib
import functools
import re

import numpy as np

from .gradient_free import cam, eigencam
from .gradient import gradcam, gradcam_plus_plus, hirescam, layercam, xgradcam
from .guided import guided_backprop, guided_gradcam
from .explanation import Explanation
from .inputs import check_options
from .perturbation import ablationcam, scorecam

__all__ = ["METHODS", "explain", "method_function", "canonical_name"]

#: Every method by its canonical name, in the order the course presents them.
METHODS = {
    "cam": cam,
    "gradcam": gradcam,
    "gradcam++": gradcam_plus_plus,
    "xgradcam": xgradcam,
    "hirescam": hirescam,
    "layercam": layercam,
    "scorecam": scorecam,
    "ablationcam": ablationcam,
    "eigencam": eigencam,
    "guided_backprop": guided_backprop,
    "guided_gradcam": guided_gradcam,
}

# Names are compared after lower-casing and dropping "-", "_", " " and ".".
_ALIASES = {
    "cam": "cam", "classactivationmap": "cam", "classactivationmapping": "cam",
    "gradcam": "gradcam",
    "gradcam++": "gradcam++", "gradcamplusplus": "gradcam++", "gradcampp": "gradcam++",
    "gradcamplus": "gradcam++",
    "xgradcam": "xgradcam",
    "hirescam": "hirescam",
    "layercam": "layercam",
    "scorecam": "scorecam", "fasterscorecam": "scorecam",
    "ablationcam": "ablationcam",
    "eigencam": "eigencam",
    "guidedbackprop": "guided_backprop", "guidedbackpropagation": "guided_backprop",
    "guidedbp": "guided_backprop",
    "guidedgradcam": "guided_gradcam",
}


def _key(name: str) -> str:
    return re.sub(r"[-_ .]", "", name.lower())


def canonical_name(method: str) -> str:
    """The canonical name of ``method`` ("Grad-CAM" -> "gradcam"); ValueError if unknown."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a name such as 'gradcam', not {type(method).__name__}.")
    key = _key(method)
    if key in _ALIASES:
        return _ALIASES[key]
    ranked = sorted(
        METHODS, key=lambda m: -difflib.SequenceMatcher(None, key, _key(m)).ratio()
    )
    raise ValueError(
        f"Unknown method {method!r}. Methods, closest first: {', '.join(ranked)}."
    )


def method_function(method: str):
    """The plain function of a method, by any of its names."""
    return METHODS[canonical_name(method)]


def explain(model, images, method: str = "gradcam", target=None, layer=None, *,
            class_names=None, output=None, chunk_size: int | None = None, **options):
    """Explain a Keras model's decision on a batch of images with a CAM method.

    Args:
        model: a Keras Sequential or functional model; nested models (a pretrained base
            inside a Sequential) are looked into; a model ending in softmax is explained on
            the logits beneath it. The model is never modified.
        images: the model's input batch ``(N, H, W, C)``, already preprocessed (floats as the
            model expects them); one image ``(H, W, C)`` is a batch of one.
        method: one of `METHODS` ("cam", "gradcam", "gradcam++", "xgradcam", "hirescam",
            "layercam", "scorecam", "ablationcam", "eigencam", "guided_backprop",
            "guided_gradcam"), or an obvious alias ("Grad-CAM", "gradcam_plus_plus", ...).
        target: None (each image's top class), a class index, a class name (with
            ``class_names``), one of those per image, or ``TopK(k)`` (k maps per image).
        layer: None (the last spatial layer the logits depend on), a layer name, an
            ``"outer/inner"`` path into a nested model, an index into ``model.layers`` or a
            layer object. Naming a layer means that layer's output.
        class_names: one name per class: allows name targets and fills
            `Explanation.labels`.
        output: for a multi-output model, the output to explain (index or name).
        chunk_size: explain at most this many images per call of the compiled pipeline and
            join the results (the same maps; bounds memory on large batches: a few hundred
            64 x 64 images, or a few dozen 224 x 224 ones, per chunk). None: all at once.
        **options: the method's own options, e.g. ``counterfactual=True`` (gradcam),
            ``max_channels`` / ``batch_size`` (scorecam), ``batch_size`` (ablationcam).

    Returns:
        An `Explanation`: ``maps`` in [0, 1] at the input size, ``raw`` maps at the layer's
        resolution, ``class_index``, ``score`` (logits), ``layer`` and ``method``.
    """
    function = method_function(method)
    check_options(function, options)
    run = functools.partial(function, model, layer=layer, class_names=class_names,
                            output=output, **options)
    count = len(images) if np.ndim(images) == 4 else 1
    if chunk_size is None or count <= chunk_size:
        return run(images, target)
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}.")
    per_image = isinstance(target, (list, tuple, np.ndarray)) and len(target) == count
    parts = [
        run(images[start:start + chunk_size],
            target[start:start + chunk_size] if per_image else target)
        for start in range(0, count, chunk_size)
    ]
    return _join(parts)


def _join(parts: list[Explanation]) -> Explanation:
    """One `Explanation` from the explanations of consecutive chunks of a batch."""
    first = parts[0]
    stack = lambda name: np.concatenate([getattr(p, name) for p in parts])  # noqa: E731
    extras = {key: np.concatenate([p.extras[key] for p in parts]) for key in first.extras}
    return dataclasses.replace(
        first, maps=stack("maps"), raw=stack("raw"), class_index=stack("class_index"),
        score=stack("score"), extras=extras,
        images=None if first.images is None else stack("images"),
    )
