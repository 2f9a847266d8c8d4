"""The method table, and `explain`, the one entry point.

Every method is one row of `METHOD_TABLE`: its canonical name, its plain function, the
label the papers use, the other names `explain` accepts, its kind (the family: how the map
is made) and its cost class (what one call costs). Everything that lists methods reads the
table when it runs: `explain` and `canonical_name`, the command line's ``--method`` help,
the explorer's menus, the benchmarks' method lists and budgets, and the exports
(``camutils.gradcam``, ``camutils.methods.gradcam``). Adding a method is its rule (a few
lines in a family module, citing the paper's equation) and one row here; CONTRIBUTING.md
shows a worked example.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..checks import positive_int
from ..model_errors import NonFiniteError
from ..suggestions import ranked
from .explanation import Explanation
from .gradient import gradcam, gradcam_plus_plus, hirescam, layercam, xgradcam
from .gradient_free import cam, eigencam
from .guided import guided_backprop, guided_gradcam
from .inputs import check_options, image_array
from .perturbation import ablationcam, scorecam

__all__ = [
    "Method", "METHOD_TABLE", "KINDS", "COSTS", "METHODS", "method_table", "method_info",
    "method_names", "explain", "method_function", "canonical_name",
]

#: The kinds of method (their family: how the map is made).
KINDS = {
    "gradient-free": "weights or a map from the layer's activations alone (and the head's weights)",
    "gradient": "weights or a map from the gradients of the class logit at the layer",
    "perturbation": "channel weights from the network's response to perturbed inputs",
    "guided": "a map at the input's resolution from guided input gradients",
}

#: The cost classes: what one call costs, in passes of the network (the benchmarks and
#: their budgets are derived from these).
COSTS = {
    "forward": "one forward pass",
    "forward+svd": "one forward pass and an SVD of each image's activations",
    "layer gradient": "one forward pass and the backward pass from the logits to the layer",
    "input gradient": "one forward pass and the backward passes to the input pixels",
    "per channel": "one pass of the network (or of its head) per image and channel",
}


@dataclass(frozen=True)
class Method:
    """One row of the method table.

    Attributes:
        name: the canonical name (``"gradcam++"``): `Explanation.method`, the CLI's and the
            explorer's value.
        function: the plain function, ``f(model, images, target=None, layer=None, *,
            class_names=None, output=None, **options) -> Explanation``.
        label: the name as the papers write it (``"Grad-CAM++"``), for menus and tables.
        aliases: other names `explain` accepts (compared without case, ``-``, ``_``, ``.`` and
            spaces); the name, the label and the function's name are always accepted.
        kind: the family, one of `KINDS`.
        cost: the cost class, one of `COSTS`.
        paper: the paper it implements (authors, year).
    """

    name: str
    function: Callable
    label: str
    aliases: tuple[str, ...] = ()
    kind: str = "gradient"
    cost: str = "layer gradient"
    paper: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"Method {self.name!r}: kind must be one of {', '.join(KINDS)}.")
        if self.cost not in COSTS:
            raise ValueError(f"Method {self.name!r}: cost must be one of {', '.join(COSTS)}.")

    @property
    def keys(self) -> tuple[str, ...]:
        """Every name this method is found by, normalised."""
        return tuple(dict.fromkeys(
            _key(n) for n in (self.name, self.label, self.function.__name__, *self.aliases)))


#: Every method, in the order the course presents them.
METHOD_TABLE: list[Method] = [
    Method("cam", cam, "CAM", ("classactivationmap", "classactivationmapping"),
           "gradient-free", "forward", "Zhou et al. 2016"),
    Method("gradcam", gradcam, "Grad-CAM", (), "gradient", "layer gradient",
           "Selvaraju et al. 2017"),
    Method("gradcam++", gradcam_plus_plus, "Grad-CAM++", ("gradcampp", "gradcamplus"),
           "gradient", "layer gradient", "Chattopadhyay et al. 2018"),
    Method("xgradcam", xgradcam, "XGrad-CAM", (), "gradient", "layer gradient", "Fu et al. 2020"),
    Method("hirescam", hirescam, "HiResCAM", (), "gradient", "layer gradient",
           "Draelos and Carin 2020"),
    Method("layercam", layercam, "LayerCAM", (), "gradient", "layer gradient", "Jiang et al. 2021"),
    Method("scorecam", scorecam, "Score-CAM", ("fasterscorecam",), "perturbation", "per channel",
           "Wang et al. 2020"),
    Method("ablationcam", ablationcam, "Ablation-CAM", (), "perturbation", "per channel",
           "Desai and Ramaswamy 2020"),
    Method("eigencam", eigencam, "Eigen-CAM", (), "gradient-free", "forward+svd",
           "Muhammad and Yeasin 2020"),
    Method("guided_backprop", guided_backprop, "Guided Backprop",
           ("guidedbackpropagation", "guidedbp"), "guided", "input gradient",
           "Springenberg et al. 2015"),
    Method("guided_gradcam", guided_gradcam, "Guided Grad-CAM", (), "guided", "input gradient",
           "Selvaraju et al. 2017"),
]


def method_table() -> tuple[Method, ...]:
    """The rows of `METHOD_TABLE` as they are now (read at every call, never copied)."""
    return tuple(METHOD_TABLE)


def method_names() -> list[str]:
    """The canonical names, in table order."""
    return [m.name for m in method_table()]


class _Functions(Mapping):
    """``{canonical name: plain function}``, read from the method table at every access."""

    def __getitem__(self, name):
        for method in method_table():
            if method.name == name:
                return method.function
        raise KeyError(name)

    def __iter__(self):
        return iter(method_names())

    def __len__(self):
        return len(method_table())

    def __repr__(self):
        return f"METHODS({', '.join(method_names())})"


#: Every method's plain function by its canonical name (a live view of the table).
METHODS: Mapping[str, Callable] = _Functions()


def _key(name: str) -> str:
    """Names are compared after lower-casing and dropping "-", "_", " " and "."."""
    return re.sub(r"[-_ .]", "", name.lower())


def method_info(method: str) -> Method:
    """The table row of ``method`` (any of its names); ValueError if unknown."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a name such as 'gradcam', not {type(method).__name__}.")
    key = _key(method)
    for row in method_table():
        if key in row.keys:
            return row
    listed = ranked(method, method_names(), key=_key)
    raise ValueError(f"Unknown method {method!r}. Methods, closest first: {', '.join(listed)}.")


def canonical_name(method: str) -> str:
    """The canonical name of ``method`` ("Grad-CAM" -> "gradcam"); ValueError if unknown."""
    return method_info(method).name


def method_function(method: str):
    """The plain function of a method, by any of its names."""
    return method_info(method).function


def explain(model, images, method: str = "gradcam", target=None, layer=None, *,
            class_names=None, output=None, chunk_size: int | None = None, **options):
    """Explain a Keras model's decision on a batch of images with a CAM method.

    Args:
        model: a Keras Sequential or functional model; nested models (a pretrained base
            inside a Sequential) are looked into; a model ending in softmax is explained on
            the logits beneath it. The model is never modified.
        images: the model's input batch ``(N, H, W, C)``, already preprocessed (floats as the
            model expects them); one image ``(H, W, C)`` is a batch of one.
        method: a name from the method table (`method_names()`: "cam", "gradcam",
            "gradcam++", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
            "eigencam", "guided_backprop", "guided_gradcam"), or an obvious alias
            ("Grad-CAM", "gradcam_plus_plus", ...).
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
    chunk_size = positive_int(chunk_size, "chunk_size", none=True)
    run = functools.partial(function, model, layer=layer, class_names=class_names,
                            output=output, **options)
    images = image_array(images)
    count = len(images) if images.ndim == 4 else 1
    if chunk_size is None or count <= chunk_size:
        return run(images, target)
    per_image = isinstance(target, (list, tuple, np.ndarray)) and len(target) == count
    parts = []
    for start in range(0, count, chunk_size):
        try:
            parts.append(run(images[start:start + chunk_size],
                             target[start:start + chunk_size] if per_image else target))
        except NonFiniteError as error:  # name the images in the whole batch, not the chunk
            raise error.shifted(start) from None
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
