"""The ready-made targets: what score a map explains.

A class activation map explains one number per image, the *score*: by default the top
class's logit. ``target=`` chooses another score, and every method uses it (the gradient
methods differentiate it, Score-CAM and Ablation-CAM re-evaluate it on their perturbed
passes, CAM explains it where the head allows the CAM identity):

    from camutils import targets
    camutils.explain(model, x, target=targets.Class("star", score="probability"))
    camutils.explain(model, x, target=targets.Contrast("star", "cross"))   # why star, not cross
    camutils.explain(multilabel, x, target=targets.Labels(threshold=0.5))  # one map per label
    camutils.explain(size_model, x, target=targets.Regression(sign=-1))   # what lowers it
    camutils.explain(segmenter, x, target=targets.Region("circle"), layer="decoder16_relu")
    camutils.explain(detector, x, target=targets.Detection(rank=0), layer="neck_relu")
    camutils.explain(embedder, x, target=targets.Similarity(reference_embedding))
    camutils.explain(model, x, target=lambda outputs: outputs[:, 3] - outputs[:, 5])

Any callable ``score(outputs) -> one value per image`` works (`Score`): ``outputs`` is the
model's output tensor (its list or dict for a multi-output model), as the model returns it;
the function is traced into the same compiled pass as the method, never called eagerly per
image. A target that does not fit the model is refused before anything runs, with a
message that names the model's output shape and what the target needs.

Writing a target of one's own (a detector of another format, say) is a small subclass of
`Target`: `bind` checks it against the model's `Output` and returns its per-image data,
`select` picks what each image's maps explain (in the graph, from the outputs), `score`
computes the scores from the outputs; `Detection` is the worked example.

How it runs (`camutils.methods.passes.class_scores` is the one place that calls a target):
in the compiled pass, ``state = target.select(values, data)`` (``values``: the explained
output, beneath its softmax; ``data``: what `bind` returned, one row per image), then
``target.score(outputs, values, state)`` gives the ``(N, k)`` scores whose gradients the
gradient methods take. Score-CAM and Ablation-CAM feed the first pass's ``state`` back in
and call `Target.confidence` / `Target.score` on the outputs of their perturbed passes, so
a choice made in the graph (the top class, the predicted mask, the strongest detection)
stays the one of the unperturbed image.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .suggestions import did_you_mean

__all__ = [
    "Output", "Target", "Bound", "Class", "TopK", "Contrast", "Label", "Labels", "Regression",
    "Region", "Detection", "Similarity", "Score", "as_target", "bind", "SCORE_KINDS",
]

#: What a `Class` target's score is.
SCORE_KINDS = {
    "logit": "the class's logit (beneath the softmax, if the model has one): the default",
    "probability": "its softmax probability (saturates: small gradients where the model is "
                   "sure)",
    "log_probability": "its log-softmax: the logit minus the log-sum-exp of all logits",
}


# --------------------------------------------------------------------------- the output


@dataclass(frozen=True)
class Output:
    """What a target is checked against: the explained output of a model.

    Attributes:
        model_name: the model's name (for messages).
        shape: the output's shape, batch first (``None`` for the batch and free sizes).
        names: one name per entry of the output's last axis (class, label or unit
            names), or None.
        input_shape: the model's input shape ``(None, H, W, C)``.
        softmax: whether the output is a softmax (targets read the logits beneath it).
        specs: ``tf.TensorSpec`` of each of the model's outputs, in its own structure (a
            spec, a list or a dict), for checking a callable.
        index: which of the model's outputs is explained.
        count: how many outputs the model has.
    """

    model_name: str
    shape: tuple
    names: tuple | None
    input_shape: tuple
    softmax: bool = False
    specs: Any = None
    index: int = 0
    count: int = 1

    @property
    def shown(self) -> str:
        """The shape as messages write it: ``(N, 64, 64, 7)``."""
        return "(" + ", ".join("N" if i == 0 else ("any" if s is None else str(s))
                               for i, s in enumerate(self.shape)) + ")"

    @property
    def size(self) -> int | None:
        """The size of the last axis (classes, labels, units, channels)."""
        return self.shape[-1] if len(self.shape) > 1 else 1

    def __str__(self) -> str:
        which = f"output {self.index} of model" if self.count > 1 else "model"
        return f"{which} {self.model_name!r}, whose output has shape {self.shown}"


# --------------------------------------------------------------------------- the base


class Target:
    """What a map explains: one score per image and map, computed from the model's outputs.

    A subclass sets what it needs and overrides:

    * `bind` (numpy, before anything runs): check the target against the model's
      `Output` (raise a ValueError that names the output's shape and what the target
      needs) and return its per-image data, a dict of arrays with one row per image;
    * `select` (graph): the state of each image's maps from the explained ``values`` and
      the data: a dict of batch-first tensors holding at least ``"classes"``, int32
      ``(N, k)`` (the class, label or unit each map explains, -1 for none);
    * `score` (graph): the ``(N, k)`` scores, differentiable in the outputs;
    * optionally `confidence` (Score-CAM's weight on a masked image: by default the score)
      and `linear_terms` (when the score is a linear function of the output's values,
      which is what CAM can explain).

    Attributes:
        squeeze: whether the result drops the ``k`` axis (one map per image).
        whole_outputs: whether `score` reads every output of the model (a callable), not
            only the explained one.
    """

    squeeze: bool = True
    whole_outputs: bool = False

    def maps_per_image(self, output: Output) -> int:
        """``k``: how many maps each image gets."""
        return 1

    def bind(self, output: Output, n: int) -> dict:
        """Check the target against ``output`` for ``n`` images; its data (one row each)."""
        return {}

    def select(self, values, data: dict) -> dict:
        """Graph code: the state of each image's maps (``"classes"`` at least)."""
        raise NotImplementedError

    def score(self, outputs, values, state: dict):
        """Graph code: the ``(N, k)`` float32 scores."""
        raise NotImplementedError

    def confidence(self, outputs, values, state: dict):
        """Score-CAM's weight of a masked image (Wang et al. 2020, eq. 4): how much the
        model still finds the target there. The score itself, unless the output has a
        probability (a class's softmax, a label's sigmoid)."""
        return self.score(outputs, values, state)

    def linear_terms(self, state: dict):
        """The score as ``sum_t coefficient_t * values[class_t]`` where it is linear in the
        values: a list of ``(classes int32 (N, k), coefficients float32 (N, k))``; None
        where it is not (then CAM does not apply)."""
        return None

    @property
    def linear(self) -> bool:
        """Whether the score is a linear function of the output's values (`linear_terms`):
        what CAM can explain."""
        return False

    @property
    def key(self) -> tuple:
        """What a compiled pass depends on (besides the data's shapes)."""
        return (type(self).__name__,)

    def describe(self) -> str:
        """The target in a few words (kept in `Explanation.target`)."""
        return type(self).__name__

    def __repr__(self) -> str:
        return self.describe()


@dataclass
class Bound:
    """A target checked against a model's output for a batch: what a call runs.

    Attributes:
        target: the `Target`.
        k: maps per image.
        data: its per-image data (numpy arrays, one row per image).
        description: `Target.describe`, for the `Explanation`.
    """

    target: Target
    k: int
    data: dict
    description: str

    @property
    def squeeze(self) -> bool:
        return self.target.squeeze

    @property
    def key(self) -> tuple:
        """The target's key and the shapes of its data (the compiled signature)."""
        shapes = tuple((name, a.shape[1:], a.dtype.str) for name, a in sorted(self.data.items()))
        return (*self.target.key, self.k, shapes)

    def specs(self) -> dict:
        """A batch-agnostic ``tf.TensorSpec`` per data array."""
        import tensorflow as tf

        return {name: tf.TensorSpec((None, *a.shape[1:]), tf.as_dtype(a.dtype), name=name)
                for name, a in self.data.items()}

    def rows(self, start: int, stop: int) -> "Bound":
        """The same target for images ``[start, stop)`` of the batch."""
        return Bound(self.target, self.k, {n: a[start:stop] for n, a in self.data.items()},
                     self.description)


def as_target(target) -> Target:
    """The `Target` that ``target`` means: None (each image's top class), a class index or
    name, one of those per image, `TopK`, a `Target`, or a callable ``score(outputs)``."""
    if target is None:
        return Class()
    if isinstance(target, Target):
        return target
    if isinstance(target, (str, int, np.integer, bool, np.bool_, Sequence, np.ndarray)):
        if isinstance(target, (bool, np.bool_)):
            raise TypeError(f"Target {target!r} is a bool; pass a class index or name.")
        return Class(target)
    if callable(target):
        return Score(target)
    raise TypeError(
        "target must be None, a class index, a class name, one of those per image, "
        "camutils.targets.TopK(k), a ready-made target of camutils.targets (Class, Contrast, "
        "Label, Labels, Regression, Region, Detection, Similarity) or a function "
        f"score(outputs) -> one value per image; got {type(target).__name__}.")


def bind(target, output: Output, n: int, class_names=None) -> Bound:
    """Check ``target`` (anything `as_target` takes) against ``output`` for ``n`` images.

    ``class_names`` (the caller's, when given) name the output's last axis.
    """
    resolved = as_target(target)
    if class_names is not None:
        if len(output.shape) > 1 and output.size is not None and len(class_names) != output.size:
            raise ValueError(f"class_names has {len(class_names)} names but the model has "
                             f"{output.size} classes (the last axis of {output}).")
        output = Output(output.model_name, output.shape, tuple(str(c) for c in class_names),
                        output.input_shape, output.softmax, output.specs, output.index,
                        output.count)
    data = {name: np.asarray(a) for name, a in resolved.bind(output, n).items()}
    for name, array in data.items():
        if len(array) != n:  # a subclass's bug, not the user's
            raise RuntimeError(f"{resolved.describe()}.bind gave {len(array)} rows of {name!r} "
                               f"for {n} images.")
    return Bound(resolved, int(resolved.maps_per_image(output)), data, resolved.describe())


# --------------------------------------------------------------------------- helpers


def _tf():
    import tensorflow as tf

    return tf


_PLURAL = {"class": "classes"}


def _entry(value, output: Output, what: str, where: str = "") -> int:
    """The index of one class, label or unit (an int, or a name among ``output.names``)."""
    count = output.size
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool):
        raise TypeError(f"{what.capitalize()}{where} {value!r} is a bool; pass an index or a name.")
    if isinstance(value, int):
        if not 0 <= value < count:
            raise ValueError(f"{what.capitalize()} index {value}{where} is out of range: the "
                             f"model has {count} {_PLURAL.get(what, what + 's')} (0 to "
                             f"{count - 1}): {output}.")
        return value
    if isinstance(value, str):
        if output.names is None:
            raise ValueError(f"{what.capitalize()}{where} {value!r} is a name, but no "
                             "class_names were given: pass class_names=[...] (one per entry "
                             f"of the output's last axis), or an index.")
        names = list(output.names)
        if value in names:
            return names.index(value)
        lowered = [n.lower() for n in names]
        if value.lower() in lowered:
            return lowered.index(value.lower())
        hint = did_you_mean(value, names, n=5, cutoff=0.5) or f" No {what} name is close to it."
        raise ValueError(f"Unknown {what} name {value!r}{where}.{hint}")
    raise TypeError(f"{what.capitalize()}{where} must be an index or a name, not "
                    f"{type(value).__name__}.")


def _per_image(value, n: int, output: Output, what: str) -> np.ndarray:
    """int32 ``(n, 1)``: one index for every image, or one given per image."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        values = list(value)
        if len(values) != n:
            raise ValueError(f"Got {len(values)} targets for {n} image(s): pass one {what} per "
                             "image, or a single index / name for all of them.")
        indices = [_entry(v, output, what, f" (image {i})") for i, v in enumerate(values)]
        return np.asarray(indices, np.int32)[:, None]
    return np.full((n, 1), _entry(value, output, what), np.int32)


def _needs(output: Output, ranks: tuple[int, ...], target: str, needs: str,
           instead: str = "") -> None:
    """A ValueError unless the output's rank is one of ``ranks``."""
    if len(output.shape) not in ranks:
        raise ValueError(f"{target} needs {needs}; {output}.{instead}")


def _suggestion(output: Output) -> str:
    """Which targets fit an output of this shape (for messages)."""
    if len(output.shape) == 4:
        return (" For a per-pixel output explain a region (camutils.targets.Region) or, for "
                "a detector, one detection (camutils.targets.Detection).")
    if len(output.shape) == 2:
        return ""
    return " Pass a function score(outputs) that reduces it to one value per image."


def _shown(value) -> str:
    """A class, label or unit as a description shows it (``'star'``, ``3``, ``one per
    image``)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (Sequence, np.ndarray)) and not isinstance(value, str):
        return "one per image"
    return repr(value)


def _gather(values, classes):
    """``values[n, classes[n, j]]`` -> ``(N, k)``; a class of -1 gives 0."""
    tf = _tf()
    safe = tf.maximum(classes, 0)
    picked = tf.gather(values, safe, batch_dims=1)
    return tf.where(classes >= 0, picked, tf.zeros_like(picked))


def _beneath_sigmoid(values):
    """The input of the sigmoid that produced ``values`` (a graph tensor), or ``values``."""
    tensor = values
    while getattr(tensor, "op", None) is not None and tensor.op.type in ("Identity", "Cast") \
            and len(tensor.op.inputs) == 1:
        tensor = tensor.op.inputs[0]
    if getattr(tensor, "op", None) is not None and tensor.op.type == "Sigmoid":
        return _tf().cast(tensor.op.inputs[0], values.dtype)
    return values


# --------------------------------------------------------------------------- classes


class Class(Target):
    """A class of a softmax or logit head: its logit (the default), probability or
    log-probability.

        Class()                       # each image's top class (target=None)
        Class("star")                 # one class for every image (target="star")
        Class([0, 3, 3])              # one class per image
        Class(2, score="probability")

    CAM applies to the logit (the CAM identity: on a pooling -> Dense head the logit is the
    map's mean plus the bias); the probability and log-probability are not linear in the
    logits, so CAM refuses them. Score-CAM weighs a channel by the class's softmax
    probability on the masked image (the paper's eq. 4), whichever score is explained.

    Args:
        cls: None (the top class, chosen in the graph), an index, a name (with
            ``class_names``), or one of those per image.
        score: one of `SCORE_KINDS`.
        k: with ``cls=None``, explain the ``k`` top classes, one map each (`TopK`).
    """

    def __init__(self, cls=None, score: str = "logit", *, k: int = 1):
        if score not in SCORE_KINDS:
            raise ValueError(f"score must be one of {', '.join(SCORE_KINDS)}; got {score!r}.")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"TopK(k) needs a positive int k, got {k!r}.")
        if cls is not None and k != 1:
            raise ValueError("k (the top classes) is for cls=None; a given class is one map.")
        self.cls, self.kind, self.k = cls, score, int(k)

    @property
    def top(self) -> bool:
        return self.cls is None

    def maps_per_image(self, output: Output) -> int:
        return self.k

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (2,), f"A class target ({self.describe()})",
               "an output of shape (N, classes)", _suggestion(output))
        if self.top:
            if self.k > output.size:
                raise ValueError(f"TopK({self.k}) asks for more classes than the model has "
                                 f"({output.size}, the last axis of {output}).")
            return {}
        return {"classes": _per_image(self.cls, n, output, "class")}

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        if self.top:
            return {"classes": tf.math.top_k(values, k=self.k, sorted=True).indices}
        return {"classes": tf.cast(data["classes"], tf.int32)}

    def score(self, outputs, values, state: dict):
        tf = _tf()
        if self.kind == "probability":
            values = tf.nn.softmax(values)
        elif self.kind == "log_probability":
            values = tf.nn.log_softmax(values)
        return _gather(values, state["classes"])

    def confidence(self, outputs, values, state: dict):
        return _gather(_tf().nn.softmax(values), state["classes"])

    def linear_terms(self, state: dict):
        if self.kind != "logit":
            return None
        classes = state["classes"]
        return [(classes, _tf().ones_like(classes, dtype="float32"))]

    @property
    def linear(self) -> bool:
        return self.kind == "logit"

    @property
    def key(self) -> tuple:
        return ("class", self.top, self.kind)

    def describe(self) -> str:
        if self.top:
            which = "the top class" if self.k == 1 else f"the top {self.k} classes"
        else:
            which = _shown(self.cls)
        return f"Class({which}, {self.kind})"


class TopK(Class):
    """The ``k`` highest logits of each image, explained one map per class, best first.

        explanation = camutils.explain(model, images, target=TopK(3))
        explanation.maps.shape        # (N, 3, H, W), best class first
        explanation.class_index       # (N, 3)
    """

    squeeze = False

    def __init__(self, k: int = 5, score: str = "logit"):
        super().__init__(None, score, k=k)

    def __eq__(self, other) -> bool:
        return isinstance(other, TopK) and (self.k, self.kind) == (other.k, other.kind)

    def __hash__(self) -> int:
        return hash(("TopK", self.k, self.kind))


class Contrast(Target):
    """Why class A rather than class B: ``logit A - logit B`` (each an index or name, or one
    per image). Linear in the logits: CAM applies (its weights are the difference of the two
    classes' Dense weights). `Explanation.class_index` holds A."""

    def __init__(self, cls, other):
        self.cls, self.other = cls, other

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (2,), f"A contrast ({self.describe()})",
               "an output of shape (N, classes)", _suggestion(output))
        a = _per_image(self.cls, n, output, "class")
        b = _per_image(self.other, n, output, "class")
        if np.any(a == b):
            raise ValueError(f"{self.describe()} compares a class with itself (image "
                             f"{int(np.flatnonzero(a[:, 0] == b[:, 0])[0])}): its score is 0 "
                             "everywhere. Choose two different classes.")
        return {"classes": a, "others": b}

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        return {"classes": tf.cast(data["classes"], tf.int32),
                "others": tf.cast(data["others"], tf.int32)}

    def score(self, outputs, values, state: dict):
        return _gather(values, state["classes"]) - _gather(values, state["others"])

    def linear_terms(self, state: dict):
        tf = _tf()
        one = tf.ones_like(state["classes"], dtype=tf.float32)
        return [(state["classes"], one), (state["others"], -one)]

    linear = True

    @property
    def key(self) -> tuple:
        return ("contrast",)

    def describe(self) -> str:
        return f"Contrast({_shown(self.cls)} rather than {_shown(self.other)})"


# --------------------------------------------------------------------------- multi-label


class Label(Target):
    """One label of a multi-label head (a sigmoid per label): its logit, read beneath the
    sigmoid where the model ends in one. An index or a name, or one per image. CAM applies
    where the head is pooling -> Dense. Score-CAM weighs by the label's sigmoid
    probability."""

    def __init__(self, label):
        self.label = label

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (2,), f"A label target ({self.describe()})",
               "an output of shape (N, labels)", _suggestion(output))
        return {"classes": _per_image(self.label, n, output, "label")}

    def select(self, values, data: dict) -> dict:
        return {"classes": _tf().cast(data["classes"], "int32")}

    def score(self, outputs, values, state: dict):
        return _gather(_beneath_sigmoid(values), state["classes"])

    def confidence(self, outputs, values, state: dict):
        return _tf().sigmoid(self.score(outputs, values, state))

    def linear_terms(self, state: dict):
        classes = state["classes"]
        return [(classes, _tf().ones_like(classes, dtype="float32"))]

    linear = True

    @property
    def key(self) -> tuple:
        return ("label",)

    def describe(self) -> str:
        return f"Label({_shown(self.label)})"


class Labels(Target):
    """Every label whose sigmoid probability is above ``threshold``: one map per label.

    Each image gets ``k`` maps, ``k`` = ``max_labels`` (default: every label of the head),
    its labels in order of probability, best first; the slots past its last label above
    the threshold have `Explanation.class_index` -1, score 0 and an all-zero map. The labels
    are chosen in the graph, from the same pass that gives the gradients (no extra pass).
    """

    squeeze = False

    def __init__(self, threshold: float = 0.5, max_labels: int | None = None):
        if not 0.0 < float(threshold) < 1.0:
            raise ValueError(f"threshold is a probability between 0 and 1; got {threshold!r}.")
        if max_labels is not None and (isinstance(max_labels, bool) or int(max_labels) < 1):
            raise ValueError(f"max_labels must be a positive int or None; got {max_labels!r}.")
        self.threshold = float(threshold)
        self.max_labels = None if max_labels is None else int(max_labels)

    def maps_per_image(self, output: Output) -> int:
        return output.size if self.max_labels is None else min(self.max_labels, output.size)

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (2,), f"A multi-label target ({self.describe()})",
               "an output of shape (N, labels)", _suggestion(output))
        return {}

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        logits = _beneath_sigmoid(values)
        k = int(values.shape[-1]) if self.max_labels is None else \
            min(self.max_labels, int(values.shape[-1]))
        top = tf.math.top_k(logits, k=k, sorted=True)
        above = tf.sigmoid(top.values) > self.threshold
        return {"classes": tf.where(above, top.indices, -tf.ones_like(top.indices))}

    def score(self, outputs, values, state: dict):
        return _gather(_beneath_sigmoid(values), state["classes"])

    def confidence(self, outputs, values, state: dict):
        tf = _tf()
        probability = tf.sigmoid(self.score(outputs, values, state))
        return tf.where(state["classes"] >= 0, probability, tf.zeros_like(probability))

    def linear_terms(self, state: dict):
        tf = _tf()
        classes = state["classes"]
        return [(tf.maximum(classes, 0), tf.cast(classes >= 0, tf.float32))]

    linear = True

    @property
    def key(self) -> tuple:
        return ("labels", self.threshold, self.max_labels)

    def describe(self) -> str:
        most = "" if self.max_labels is None else f", at most {self.max_labels}"
        return f"Labels(probability > {self.threshold:g}{most})"


# --------------------------------------------------------------------------- regression


class Regression(Target):
    """One unit of a regression output and its sign: ``sign * output[unit]``.

    ``sign=+1`` explains what raises the output, ``sign=-1`` what lowers it. The unit is an
    index or a name (one per image allowed). Linear: CAM applies (with the unit's Dense
    weights times the sign).
    """

    def __init__(self, unit=0, sign: int = 1):
        if sign not in (1, -1) or isinstance(sign, bool):
            raise ValueError(f"sign is +1 (what raises the output) or -1 (what lowers it); "
                             f"got {sign!r}.")
        self.unit, self.sign = unit, int(sign)

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (1, 2), f"A regression target ({self.describe()})",
               "an output of shape (N, units)", _suggestion(output))
        return {"classes": _per_image(self.unit, n, output, "unit")}

    def select(self, values, data: dict) -> dict:
        return {"classes": _tf().cast(data["classes"], "int32")}

    def score(self, outputs, values, state: dict):
        tf = _tf()
        if len(values.shape) == 1:
            values = values[:, None]
        return float(self.sign) * _gather(values, state["classes"])

    def linear_terms(self, state: dict):
        classes = state["classes"]
        return [(classes, float(self.sign) * _tf().ones_like(classes, dtype="float32"))]

    linear = True

    @property
    def key(self) -> tuple:
        return ("regression", self.sign)

    def describe(self) -> str:
        return (f"Regression(unit {_shown(self.unit)}, what "
                f"{'raises' if self.sign > 0 else 'lowers'} it)")


# --------------------------------------------------------------------------- segmentation


class Region(Target):
    """A region of a segmentation output: the class's per-pixel logits summed over a mask.

        Region("circle")                 # over the model's own predicted mask of circles
        Region(2, mask=ground_truth)     # over a given mask, (H, W) or (N, H, W)

    The output is ``(N, H, W, classes)`` per-pixel logits (beneath a softmax, if the model
    has one); a given mask has the output's height and width (0/1 or weights). The
    predicted mask (the pixels whose top class is this one) is chosen in the graph from the
    pass's outputs and held fixed (no gradient flows through the choice); where the model
    predicts none of the class, the score is 0 and the map all zero. Score-CAM weighs a
    masked image by the class's mean softmax probability over the region.
    """

    def __init__(self, cls, mask=None):
        self.cls = cls
        self.mask = None if mask is None else np.asarray(mask)

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (4,), f"A region target ({self.describe()})",
               "a per-pixel output of shape (N, height, width, classes)",
               " For a classifier explain a class (camutils.targets.Class).")
        data = {"classes": _per_image(self.cls, n, output, "class")}
        if self.mask is None:
            return data
        height, width = output.shape[1:3]
        mask = self.mask
        fits = mask.ndim in (2, 3) and mask.shape[-2:] == (height, width) and \
            (mask.ndim == 2 or len(mask) == n)
        if not fits:
            raise ValueError(
                f"The mask of {self.describe()} has shape {mask.shape}; {output}, so the mask "
                f"must be ({height}, {width}) or ({n}, {height}, {width}) (one per image, at "
                "the output's resolution).")
        if not (np.issubdtype(mask.dtype, np.number) or mask.dtype == np.bool_):
            raise TypeError(f"The mask of {self.describe()} must be numbers or booleans, not "
                            f"{mask.dtype}.")
        mask = np.broadcast_to(mask.astype(np.float32), (n, height, width))
        if not np.isfinite(mask).all():
            raise ValueError(f"The mask of {self.describe()} has NaN or infinite values.")
        empty = np.flatnonzero(~(mask != 0).reshape(n, -1).any(axis=1))
        if len(empty):
            raise ValueError(f"The mask of {self.describe()} is empty for image(s) "
                             f"{empty[:10].tolist()}: a region needs at least one pixel.")
        return {**data, "mask": np.ascontiguousarray(mask)}

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        classes = tf.cast(data["classes"], tf.int32)
        if "mask" in data:
            mask = tf.cast(data["mask"], tf.float32)
        else:
            predicted = tf.argmax(values, axis=-1, output_type=tf.int32)  # (N, H, W)
            mask = tf.cast(tf.equal(predicted, classes[:, :, None]), tf.float32)
        return {"classes": classes, "mask": tf.stop_gradient(mask)}

    def _class_map(self, values, state):
        """``values[n, :, :, class_n]`` ``(N, H, W)``, as a product with the class's one-hot
        vector (whose gradient is a product too, where a gather's is a scatter)."""
        tf = _tf()
        one_hot = tf.one_hot(state["classes"][:, 0], tf.shape(values)[-1], dtype=values.dtype)
        return tf.reduce_sum(values * one_hot[:, None, None, :], axis=-1)

    def score(self, outputs, values, state: dict):
        tf = _tf()
        one_hot = tf.one_hot(state["classes"][:, 0], tf.shape(values)[-1], dtype=values.dtype)
        # sum_ij values[n, i, j, c] mask[n, i, j], as one contraction (and its gradient one
        # outer product): mask (x) one-hot
        return tf.einsum("nhwc,nhw,nc->n", values, state["mask"], one_hot)[:, None]

    def confidence(self, outputs, values, state: dict):
        tf = _tf()
        probability = self._class_map(tf.nn.softmax(values), state)
        area = tf.reduce_sum(state["mask"], axis=[1, 2])
        mean = tf.math.divide_no_nan(tf.reduce_sum(probability * state["mask"], axis=[1, 2]),
                                     area)
        return mean[:, None]

    @property
    def key(self) -> tuple:
        return ("region",)

    def describe(self) -> str:
        where = "the model's predicted mask" if self.mask is None else "a given mask"
        return f"Region({_shown(self.cls)}, {where})"


# --------------------------------------------------------------------------- detection


class Detection(Target):
    """One detection of the course detector's output (`camutils.course.detection`): its
    class's centre heat-map logit at its cell, ``outputs[i, row, col, class]``.

        Detection()                              # each image's strongest detection
        Detection(rank=1)                        # its second strongest
        Detection(box=(x0, y0, x1, y1), label="star")   # the cell of the box's centre
        Detection(cell=(row, col), label=2)      # a cell (one per image: arrays (N, 2), (N,))

    The output is ``(N, rows, cols, classes + 4)``: ``classes`` heat-map logits, then the
    box's width and height and the centre's offset (CenterNet's format, "Objects as
    Points", 2019). A detection by rank is a peak of the heat maps (a cell whose logit is
    the largest of its 3 x 3 neighbourhood, as `decode_detections` finds them), chosen in
    the graph; a box is given in input pixels ``(x0, y0, x1, y1)``. Score-CAM weighs by the
    heat map's sigmoid probability.

    The pattern for another detector: the score of one detection is one number of the
    output (or a few: objectness times class probability for a YOLO-style head), picked
    by what identifies the detection (anchor, cell, class). A function does it:

        def score(outputs):                      # YOLO-style (N, cells, 5 + classes)
            return outputs[:, anchor, 4] * outputs[:, anchor, 5 + cls]
        camutils.explain(yolo, x, target=score, layer=...)

    or a subclass of this class that overrides `bind`, `select` and `score`.

    Args:
        rank: the detection's rank among each image's peaks (0: the strongest).
        box: a box ``(x0, y0, x1, y1)`` in input pixels, or one per image ``(N, 4)``.
        cell: a cell ``(row, col)``, or one per image ``(N, 2)``.
        label: the class of a box or cell (an index or name, or one per image).
        classes: how many heat-map channels lead the output (default: all but the last 4).
    """

    def __init__(self, rank: int = 0, *, box=None, cell=None, label=None,
                 classes: int | None = None):
        if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)) or rank < 0:
            raise ValueError(f"rank must be a non-negative int; got {rank!r}.")
        if box is not None and cell is not None:
            raise ValueError("Give a detection's box or its cell, not both.")
        if (box is not None or cell is not None) != (label is not None):
            raise ValueError("A detection given by its box or cell needs its label (class), "
                             "and a label needs a box or cell; or give only rank=.")
        self.rank, self.box, self.cell, self.label = int(rank), box, cell, label
        self.classes = classes

    def _heat_channels(self, output: Output) -> int:
        return output.size - 4 if self.classes is None else int(self.classes)

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (4,), f"A detection target ({self.describe()})",
               "a detector's output of shape (N, rows, cols, classes + 4) (heat maps, box "
               "size, offset)", " For a classifier explain a class (camutils.targets.Class).")
        rows, cols, channels = output.shape[1:]
        heat = self._heat_channels(output)
        if not 1 <= heat <= channels:
            raise ValueError(f"{self.describe()} reads {heat} heat-map channels; {output}.")
        if self.box is None and self.cell is None:
            if self.rank >= rows * cols * heat:
                raise ValueError(f"{self.describe()}: the output has only {rows * cols * heat} "
                                 f"cells and classes ({output}).")
            return {}
        names = None if output.names is None else output.names[:heat]
        heads = Output(output.model_name, (None, heat), names, output.input_shape,
                       index=output.index, count=output.count)
        classes = _per_image(self.label, n, heads, "class")
        if self.cell is not None:
            cells = np.asarray(self.cell)
            cells = np.broadcast_to(cells, (n, 2)) if cells.shape == (2,) else cells
            if cells.shape != (n, 2) or not np.issubdtype(cells.dtype, np.integer):
                raise ValueError(f"cell must be (row, col) or one per image ({n}, 2) of ints; "
                                 f"got {np.asarray(self.cell).shape}.")
            bad = (cells[:, 0] < 0) | (cells[:, 0] >= rows) | (cells[:, 1] < 0) | \
                (cells[:, 1] >= cols)
            if bad.any():
                raise ValueError(f"Cell {cells[np.flatnonzero(bad)[0]].tolist()} is outside "
                                 f"the {rows} x {cols} grid of {output}.")
        else:
            cells = self._cells_of_boxes(output, n)
        return {"classes": classes, "cells": np.ascontiguousarray(cells, np.int32)}

    def _cells_of_boxes(self, output: Output, n: int) -> np.ndarray:
        height, width = output.input_shape[1:3]
        rows, cols = output.shape[1:3]
        boxes = np.asarray(self.box, np.float64)
        boxes = np.broadcast_to(boxes, (n, 4)) if boxes.shape == (4,) else boxes
        if boxes.shape != (n, 4):
            raise ValueError(f"box must be (x0, y0, x1, y1) or one per image ({n}, 4); got "
                             f"shape {np.asarray(self.box).shape}.")
        outside = ~np.isfinite(boxes).all(1) | (boxes[:, 0] < 0) | (boxes[:, 1] < 0) | \
            (boxes[:, 2] > width) | (boxes[:, 3] > height) | (boxes[:, 2] <= boxes[:, 0]) | \
            (boxes[:, 3] <= boxes[:, 1])
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            raise ValueError(
                f"Box {boxes[i].tolist()} (image {i}) is not a box inside the image: the model "
                f"takes {height} x {width} images (x from 0 to {width}, y from 0 to {height}, "
                f"x0 < x1, y0 < y1), and {output}.")
        centre_x = (boxes[:, 0] + boxes[:, 2]) / 2
        centre_y = (boxes[:, 1] + boxes[:, 3]) / 2
        row = np.minimum((centre_y * rows / height).astype(np.int64), rows - 1)
        col = np.minimum((centre_x * cols / width).astype(np.int64), cols - 1)
        return np.stack([row, col], axis=1)

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        if "cells" in data:
            return {"classes": tf.cast(data["classes"], tf.int32),
                    "cells": tf.cast(data["cells"], tf.int32)}
        heat = values[..., :self._heat_channels_static(values)]
        peaks = tf.equal(heat, tf.nn.max_pool2d(heat, 3, 1, "SAME"))
        flat = tf.reshape(tf.where(peaks, heat, tf.fill(tf.shape(heat), -np.inf)),
                          [tf.shape(heat)[0], -1])
        index = tf.math.top_k(flat, k=self.rank + 1, sorted=True).indices[:, self.rank]
        channels, cols = tf.shape(heat)[3], tf.shape(heat)[2]
        classes = index % channels
        row, col = index // (channels * cols), (index // channels) % cols
        return {"classes": classes[:, None], "cells": tf.stack([row, col], axis=1)}

    def _heat_channels_static(self, values) -> int:
        return int(values.shape[-1]) - 4 if self.classes is None else int(self.classes)

    def score(self, outputs, values, state: dict):
        tf = _tf()
        cells, classes = state["cells"], state["classes"][:, 0]
        n = tf.range(tf.shape(cells)[0])
        index = tf.stack([n, cells[:, 0], cells[:, 1], classes], axis=1)
        return tf.gather_nd(values, index)[:, None]

    def confidence(self, outputs, values, state: dict):
        return _tf().sigmoid(self.score(outputs, values, state))

    @property
    def key(self) -> tuple:
        return ("detection", self.rank if self.box is None and self.cell is None else None,
                self.classes)

    def describe(self) -> str:
        if self.box is not None:
            return f"Detection(a box's cell, label {_shown(self.label)})"
        if self.cell is not None:
            return f"Detection(a cell, label {_shown(self.label)})"
        return f"Detection(rank {self.rank})"


# --------------------------------------------------------------------------- similarity


class Similarity(Target):
    """The cosine similarity of the output (an embedding ``(N, D)``) to a reference
    embedding ``(D,)`` (or one per image, ``(N, D)``): what makes the image similar to the
    reference. Compute the reference with the same model (for example the embedding of a
    reference image)."""

    def __init__(self, reference):
        self.reference = np.asarray(reference)

    def bind(self, output: Output, n: int) -> dict:
        _needs(output, (2,), "A similarity target",
               "an embedding output of shape (N, features)", _suggestion(output))
        reference = self.reference
        size = output.size
        if not np.issubdtype(reference.dtype, np.number):
            raise TypeError(f"The reference embedding must be numbers, not {reference.dtype}.")
        if reference.ndim == 2 and reference.shape[0] == 1:
            reference = reference[0]
        fits = reference.shape == (size,) or reference.shape == (n, size)
        if not fits:
            raise ValueError(f"The reference embedding has shape {reference.shape}; {output}, "
                             f"so the reference must have {size} values ({size},) or one per "
                             f"image ({n}, {size}).")
        reference = np.broadcast_to(reference.astype(np.float32), (n, size))
        if not np.isfinite(reference).all():
            raise ValueError("The reference embedding has NaN or infinite values.")
        norms = np.linalg.norm(reference, axis=1)
        if (norms == 0).any():
            raise ValueError("The reference embedding is all zero: it has no direction to be "
                             "similar to.")
        return {"reference": np.ascontiguousarray(reference / norms[:, None])}

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        return {"classes": -tf.ones([tf.shape(values)[0], 1], tf.int32),
                "reference": tf.cast(data["reference"], tf.float32)}

    def score(self, outputs, values, state: dict):
        tf = _tf()
        unit = tf.math.l2_normalize(values, axis=1, epsilon=1e-12)
        return tf.reduce_sum(unit * state["reference"], axis=1, keepdims=True)

    @property
    def key(self) -> tuple:
        return ("similarity",)

    def describe(self) -> str:
        return f"Similarity(cosine to a reference of {self.reference.shape[-1]} values)"


# --------------------------------------------------------------------------- functions


#: The shapes each function returned on each output structure (`Score.bind`'s check).
_CHECKED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


class Score(Target):
    """Any function ``score(outputs) -> one value per image``, traced into the compiled pass.

    ``outputs`` is the model's output tensor as the model returns it (a softmax output is
    the probabilities), or its list / dict for a multi-output model. The function must
    return ``(N,)`` (or ``(N, 1)``) values; it is checked on the outputs' shapes before
    anything runs. Each function object is traced once per model and layer: define it
    once, not in a loop. CAM does not apply (a function is not known to be linear in the
    logits); the gradient methods, Score-CAM and Ablation-CAM do.

    Args:
        function: the score function (TensorFlow ops on the outputs).
        name: how `Explanation.target` names it (default: the function's name).
    """

    whole_outputs = True

    def __init__(self, function: Callable, name: str | None = None):
        if not callable(function):
            raise TypeError(f"Score needs a function, not {type(function).__name__}.")
        self.function = function
        self.name = name or getattr(function, "__name__", type(function).__name__)

    def bind(self, output: Output, n: int) -> dict:
        import tensorflow as tf

        shape = self._traced_shape(output, tf)
        if shape.rank is None:
            return {}
        dims = shape.as_list()
        # the first axis is the batch: unknown, or the batch's size (a function that closes
        # over per-image constants knows it)
        per_image = (len(dims) == 1 or (len(dims) == 2 and dims[1] == 1)) and \
            dims[0] in (None, n)
        if not per_image:
            what = ("one value for the whole batch" if not dims else "shape (" + ", ".join(
                "N" if d is None else str(d) for d in dims) + ")")
            raise ValueError(
                f"The target function {self.name!r} returns {what} on the outputs of "
                f"{output}; a target needs one value per image, shape (N,): reduce the other "
                "axes (e.g. tf.reduce_sum(x, axis=[1, 2])) and keep the batch axis first.")
        return {}

    def _traced_shape(self, output: Output, tf):
        """The shape the function returns on the outputs' specs (traced once per function
        and output structure: a call with the same function checks nothing again)."""
        key = repr(output.specs)
        try:
            known = _CHECKED.setdefault(self.function, {})
        except TypeError:  # a function that cannot be weakly referenced: checked each time
            known = {}
        if key not in known:
            known[key] = self._trace(output, tf)
        return known[key]

    def _trace(self, output: Output, tf):
        specs = output.specs
        holder = {}

        def trace(structure):
            holder["out"] = tf.convert_to_tensor(self.function(structure))
            return holder["out"]

        try:
            tf.function(trace, autograph=False).get_concrete_function(specs)
        except Exception as error:  # the user's function: any error, named
            raise ValueError(f"The target function {self.name!r} failed on the outputs of "
                             f"{output} ({type(error).__name__}: "
                             f"{' '.join(str(error).split())[:300]}).") from None
        result = holder["out"]
        if not (result.dtype.is_floating or result.dtype.is_integer):
            raise TypeError(f"The target function {self.name!r} returns {result.dtype.name} "
                            "values; it must return numbers.")
        return result.shape

    def select(self, values, data: dict) -> dict:
        tf = _tf()
        return {"classes": -tf.ones([tf.shape(values)[0], 1], tf.int32)}

    def score(self, outputs, values, state: dict):
        tf = _tf()
        result = tf.cast(self.function(outputs), tf.float32)
        with tf.control_dependencies([tf.debugging.assert_equal(
                tf.size(result), tf.shape(values)[0],
                message=f"The target function {self.name!r} must return one value per image")]):
            return tf.reshape(result, [-1, 1])

    @property
    def key(self) -> tuple:
        return ("score", self.function)

    def describe(self) -> str:
        return f"Score({self.name})"
