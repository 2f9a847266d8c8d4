"""The method table, and `explain`, the one entry point.

A method is one row of `METHOD_TABLE`: its rule (a few lines in its family's module, citing
the paper's equation), what the rule gives, its kind (the family) and cost class (what one
call costs, which also says which compiled pass it reads and whether it needs one pass or
many), its options with their defaults and checks, its names and its paper. Everything
that lists or runs methods reads the rows when it runs: `explain` and `canonical_name`, the
plain functions (``camutils.gradcam``, ... are generated from the rows), the command line's
``--method`` help, the explorer's menus, `camutils.explain_dataset`, and the benchmarks'
method lists and budgets. Adding a method is its rule and one row; CONTRIBUTING.md shows a
worked example.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..checks import positive_int
from ..model_errors import NonFiniteError
from ..suggestions import ranked
from .explanation import Explanation
from .gradient import (
    ALPHA_NORMALISATION, COUNTERFACTUAL, gradcam_plus_plus_weights, gradcam_weights,
    hirescam_map, layercam_map, xgradcam_weights,
)
from .gradient_free import cam_applies, cam_target, cam_weights, eigencam_map
from .guided import guided_backprop_gradients, guided_gradcam_gradients
from .inputs import image_array
from .options import Option, checked_options
from .passes import run_one_pass
from .perturbation import (
    MAX_CHANNELS, PROGRESS, ablationcam_weights, batch_size_option, run_per_channel,
    scorecam_weights,
)
from .pipeline import GIVES, Request, prepare
from .rollout import HEAD_FUSION, gradient_rollout_map, rollout_applies, rollout_map
from .tokens import GRID_HELP, PREFIX_HELP, TokenOptions

__all__ = [
    "Method", "Cost", "Option", "METHOD_TABLE", "KINDS", "COSTS", "GIVES", "METHODS",
    "method_table", "method_info", "method_names", "explain", "method_function",
    "canonical_name",
]

#: The kinds of method (their family: how the map is made).
KINDS = {
    "gradient-free": "weights or a map from the layer's activations alone (and the head's weights)",
    "gradient": "weights or a map from the gradients of the class logit at the layer",
    "perturbation": "channel weights from the network's response to perturbed inputs",
    "guided": "a map at the input's resolution from guided input gradients",
    "attention": "a map on the token grid from the attention probabilities of a "
                 "transformer's self-attention layers (and their gradients)",
}


@dataclass(frozen=True)
class Cost:
    """A cost class: what one call costs, which compiled pass it reads, and whether that
    pass is all (``passes="one"``: the pass, then the rule on its outputs) or the start of
    many (``"many"``: a pass of the network, or of its head, per image and channel)."""

    description: str
    pass_kind: str
    passes: str = "one"


#: The cost classes (the benchmarks and their budgets are derived from these).
COSTS = {
    "forward": Cost("one forward pass", "forward"),
    "forward+svd": Cost("one forward pass and an SVD of each image's activations", "forward"),
    "layer gradient": Cost("one forward pass and the backward pass from the logits to the "
                           "layer", "layer gradient"),
    "input gradient": Cost("one forward pass and the backward pass to the input pixels",
                           "input gradient"),
    "per channel": Cost("one forward pass, then one pass of the network (or of its head) per "
                        "image and channel", "forward", passes="many"),
    "attention": Cost("one forward pass that also returns every self-attention layer's "
                      "probabilities", "attention"),
    "attention gradient": Cost("one forward pass with the attention probabilities and the "
                               "backward pass from the logits to the first attention layer",
                               "attention gradient"),
}

#: How each number of passes runs a row: (request, row, checked options) -> Explanation.
_RUNNERS = {"one": run_one_pass, "many": run_per_channel}

_ARGUMENTS = """\
    model: a Keras Sequential or functional model (nested models are fine); a model ending
        in softmax is explained on the logits beneath it. The model is never modified.
    images: the model's input batch ``(N, H, W, C)``, already preprocessed (or one image).
    target: what the map explains (`camutils.targets`): None (each image's top class), a
        class index, a class name (needs ``class_names``), one of those per image, `TopK`
        (k maps per image), a ready-made target (``Class``, ``Contrast``, ``Label``,
        ``Labels``, ``Regression``, ``Region``, ``Detection``, ``Similarity``) or any
        function ``score(outputs) -> one value per image``.
{layer}
    class_names: one name per class (for name targets and `Explanation.labels`).
    output: for a multi-output model, which output (index or name) to explain.
    chunk_size: explain at most this many images per call of the compiled pipeline and join
        the results (the same maps; bounds memory on large batches). None: all at once.
{grid}
{prefix}"""

_LAYER = ("None (the last spatial layer the logits depend on), a name, an ``\"outer/inner\"`` "
          "path, an index into ``model.layers`` or a layer object. Naming a layer means that "
          "layer's output.")
_NO_LAYER = {
    "guided": "not used: the map is over the input's pixels (`Explanation.layer` is "
              "``\"input\"``); accepted so that every method has the same signature.",
    "attention": "not used: the map comes from every self-attention layer, on their token "
                 "grid (`Explanation.layer` is ``\"attention\"``); accepted so that every "
                 "method has the same signature.",
}


@dataclass(frozen=True)
class Method:
    """One row of the method table: a method, whole.

    Attributes:
        name: the canonical name (``"gradcam++"``): `Explanation.method`, the CLI's and the
            explorer's value.
        label: the name as the papers write it (``"Grad-CAM++"``), for menus and tables.
        rule: what the method computes, a module-level function of its family's module that
            cites its equation: for a one-pass cost class ``rule(p: Pass, **options)``
            (`camutils.methods.passes.Pass`), for "per channel" ``rule(b: ChannelBlock,
            **options)`` (`camutils.methods.perturbation.ChannelBlock`), giving ``gives``.
        kind: the family, one of `KINDS`.
        cost: the cost class, one of `COSTS`: which compiled pass the rule reads, and
            whether it needs one pass or many.
        gives: what the rule returns, one of `GIVES` (``"weights"``, ``"map"``,
            ``"pixels"``).
        options: the method's options (`Option`: name, default, check, meaning), the
            keyword arguments of its plain function and of `explain`.
        aliases: other names `explain` accepts (compared without case, ``-``, ``_``, ``.`` and
            spaces); the name, the label and the function's name are always accepted.
        paper: the paper it implements (authors, year).
        summary: what it does, in one line (the plain function's docstring starts with it).
        function_name: the plain function's name (``camutils.gradcam_plus_plus``); the
            canonical name when it is a Python name.
        applies: ``applies(feature)`` raises a clear error where the method is not defined
            for the model and layer (CAM without a pooling -> Dense head), before any pass.
        target_check: ``target_check(target)`` raises a clear error where the method cannot
            explain a `camutils.targets.Target` (CAM: a score that is not linear in the
            logits), before any pass.
        at_layer: False for a method whose map does not come from a layer (guided
            backpropagation): the layer argument is then not used.
        function: the plain function, generated from the row (not an argument).
    """

    name: str
    label: str
    rule: Callable
    kind: str = "gradient"
    cost: str = "layer gradient"
    gives: str = "weights"
    options: tuple[Option, ...] = ()
    aliases: tuple[str, ...] = ()
    paper: str = ""
    summary: str = ""
    function_name: str = ""
    applies: Callable | None = None
    target_check: Callable | None = None
    at_layer: bool = True
    function: Callable = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        for what, value, allowed in (("kind", self.kind, KINDS), ("cost", self.cost, COSTS),
                                     ("gives", self.gives, GIVES)):
            if value not in allowed:
                raise ValueError(f"Method {self.name!r}: {what} must be one of "
                                 f"{', '.join(allowed)}; got {value!r}.")
        function_name = self.function_name or self.name
        if not function_name.isidentifier():
            raise ValueError(f"Method {self.name!r}: its name is not a Python name, so the row "
                             "needs function_name= (the plain function's name).")
        if getattr(self.rule, "__closure__", None):
            raise TypeError(
                f"The rule of {self.name!r} closes over variables; make them options of the "
                "row (Option(...)), so that they reach the rule as keyword arguments.")
        names = [o.name for o in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"Method {self.name!r}: two options share a name ({names}).")
        object.__setattr__(self, "function_name", function_name)
        object.__setattr__(self, "function", _plain_function(self))

    @property
    def map_source(self) -> str | None:
        """`Explanation.layer` of a method whose map comes from no one layer: ``"input"``
        (guided methods: the pixels) or ``"attention"`` (rollout); None for the others,
        whose `Explanation.layer` is the layer's path."""
        if self.at_layer:
            return None
        return "attention" if self.kind == "attention" else "input"

    @property
    def passes(self) -> str:
        """``"one"`` (one compiled pass, then the rule) or ``"many"`` (a pass per channel)."""
        return COSTS[self.cost].passes

    @property
    def pass_kind(self) -> str:
        """The compiled pass its rule reads (`camutils.methods.passes.PASS_KINDS`)."""
        return COSTS[self.cost].pass_kind

    @property
    def keys(self) -> tuple[str, ...]:
        """Every name this method is found by, normalised."""
        return tuple(dict.fromkeys(
            _key(n) for n in (self.name, self.label, self.function_name, *self.aliases)))

    @property
    def option_names(self) -> tuple[str, ...]:
        return tuple(o.name for o in self.options)

    def checked_options(self, given: dict) -> dict:
        """Every option with its value: the given ones checked, the others their defaults
        (TypeError for an option the method does not have, ValueError for a bad value)."""
        return checked_options(self.name, self.options, given)

    def run(self, model, images, target=None, layer=None, class_names=None, output=None,
            options: dict | None = None, tokens: TokenOptions | None = None) -> Explanation:
        """Explain one batch with checked ``options`` (see `explain`); ``tokens``: the grid
        options of a token layer."""
        request = prepare(model, images, target, layer if self.at_layer else None,
                          class_names, output, tokens)
        self.check(request)
        return self.run_request(request, options)

    def check(self, request: Request) -> None:
        """Raise a ValueError, before any pass, where the method is not defined for the
        request's model, layer or target; the message lists the methods that are."""
        try:
            _check_row(self, request)
        except ValueError as error:
            fits = [m.name for m in method_table() if m.name != self.name and
                    _fits(m, request)]
            raise ValueError(f"{error} Methods that apply here: {', '.join(fits)}.") from None

    def run_request(self, request: Request, options: dict | None = None) -> Explanation:
        """Explain a checked request (`check` first) with checked ``options``."""
        return _RUNNERS[self.passes](request, self, options or {})


def _check_row(row: Method, request: Request) -> None:
    if row.applies is not None:
        row.applies(request.feature)
    if row.target_check is not None:
        row.target_check(request.target.target)


def _fits(row: Method, request: Request) -> bool:
    try:
        _check_row(row, request)
        return True
    except ValueError:
        return False


def _plain_function(row: Method) -> Callable:
    """The row's plain function: `explain` with the method fixed, a real function with the
    row's name, signature (its options as keyword arguments) and docstring."""

    def method(model, images, target=None, layer=None, *, class_names=None, output=None,
               chunk_size=None, grid=None, prefix_tokens=None, **options):
        return _explain(row, model, images, target, layer, class_names, output, chunk_size,
                        options, TokenOptions.of(grid, prefix_tokens))

    P = inspect.Parameter
    parameters = [P("model", P.POSITIONAL_OR_KEYWORD), P("images", P.POSITIONAL_OR_KEYWORD),
                  P("target", P.POSITIONAL_OR_KEYWORD, default=None),
                  P("layer", P.POSITIONAL_OR_KEYWORD, default=None)]
    parameters += [P(n, P.KEYWORD_ONLY, default=None)
                   for n in ("class_names", "output", "chunk_size", "grid", "prefix_tokens")]
    parameters += [P(o.name, P.KEYWORD_ONLY, default=o.default) for o in row.options]
    method.__signature__ = inspect.Signature(parameters, return_annotation="Explanation")
    method.__name__ = method.__qualname__ = row.function_name
    method.__module__ = "camutils.methods"
    method.__doc__ = _docstring(row)
    return method


def _argument(name: str, text: str) -> str:
    return textwrap.fill(f"{name}: {text}", 92, initial_indent="    ",
                         subsequent_indent="        ")


def _docstring(row: Method) -> str:
    rule = inspect.cleandoc(row.rule.__doc__ or "")
    arguments = _ARGUMENTS.format(
        layer=_argument("layer", _LAYER if row.at_layer else _NO_LAYER[row.kind]),
        grid=_argument("grid", GRID_HELP + "."),
        prefix=_argument("prefix_tokens", PREFIX_HELP + "."))
    options = "".join("\n" + _argument(o.name, f"{o.help} (default: {o.default!r}).")
                      for o in row.options)
    return (f"{row.label} ({row.paper}): {row.summary}\n\n"
            f"The rule (`{row.rule.__module__}.{row.rule.__name__}`):\n\n{rule}\n\n"
            f"Cost: {COSTS[row.cost].description}.\n\n"
            f"Args:\n{arguments}{options}\n\n"
            "Returns:\n    An `Explanation` (see `camutils.explain`).")


#: Every method, in the order the course presents them.
METHOD_TABLE: list[Method] = [
    Method("cam", "CAM", cam_weights, "gradient-free", "forward", applies=cam_applies,
           target_check=cam_target,
           aliases=("classactivationmap", "classactivationmapping"), paper="Zhou et al. 2016",
           summary="the class's Dense weights applied to the feature maps. Needs a network "
                   "whose layer reaches the logits through global average (or max) pooling "
                   "and one Dense layer (Dropout-like layers may sit between); anything else "
                   "raises a ValueError that suggests Grad-CAM."),
    Method("gradcam", "Grad-CAM", gradcam_weights, options=(COUNTERFACTUAL,),
           paper="Selvaraju et al. 2017",
           summary="channels weighted by their mean gradient. Works on any head; on a global-"
                   "average-pooling -> Dense network its raw map is exactly CAM's divided by "
                   "the number of positions."),
    Method("gradcam++", "Grad-CAM++", gradcam_plus_plus_weights, options=(ALPHA_NORMALISATION,),
           aliases=("gradcampp", "gradcamplus"), function_name="gradcam_plus_plus",
           paper="Chattopadhyay et al. 2018",
           summary="positive gradients weighted per position."),
    Method("xgradcam", "XGrad-CAM", xgradcam_weights, paper="Fu et al. 2020",
           summary="gradients weighted by the normalised activations."),
    Method("hirescam", "HiResCAM", hirescam_map, gives="map", paper="Draelos and Carin 2020",
           summary="gradient times activation, summed over channels. On a global-average-"
                   "pooling -> Dense network it equals CAM divided by the number of "
                   "positions."),
    Method("layercam", "LayerCAM", layercam_map, gives="map", paper="Jiang et al. 2021",
           summary="positive gradient times activation, per position; meaningful at early "
                   "layers too (fine-grained maps)."),
    Method("scorecam", "Score-CAM", scorecam_weights, "perturbation", "per channel",
           options=(MAX_CHANNELS, batch_size_option(32, "masked images"), PROGRESS),
           aliases=("fasterscorecam",), paper="Wang et al. 2020",
           summary="channels weighted by the score of the image they mask."),
    Method("ablationcam", "Ablation-CAM", ablationcam_weights, "perturbation", "per channel",
           options=(batch_size_option(128, "ablated activation maps"), PROGRESS),
           paper="Desai and Ramaswamy 2020",
           summary="channels weighted by the score they carry."),
    Method("eigencam", "Eigen-CAM", eigencam_map, "gradient-free", "forward+svd", gives="map",
           paper="Muhammad and Yeasin 2020",
           summary="the first principal direction of the features; class-agnostic (the "
                   "target only sets `Explanation.class_index` and ``score``)."),
    Method("rollout", "Attention rollout", rollout_map, "attention", "attention", gives="map",
           options=(HEAD_FUSION,), at_layer=False, applies=rollout_applies,
           aliases=("attentionrollout",), paper="Abnar and Zuidema 2020",
           summary="how much of the class token's last representation flows from each patch "
                   "token through every self-attention layer, residual paths included; for "
                   "transformers built from keras.layers.MultiHeadAttention. Class-agnostic."),
    Method("gradient_rollout", "Gradient-weighted rollout", gradient_rollout_map, "attention",
           "attention gradient", gives="map", at_layer=False, applies=rollout_applies,
           aliases=("gradrollout", "gradientweightedrollout", "gradientrollout",
                    "attentiongradientrollout"),
           paper="Chefer, Gur and Wolf 2021",
           summary="rollout of each layer's attention weighted by the target's gradient "
                   "(positive part, averaged over heads): class-specific; for transformers "
                   "built from keras.layers.MultiHeadAttention."),
    Method("guided_backprop", "Guided Backprop", guided_backprop_gradients, "guided",
           "input gradient", gives="pixels", at_layer=False,
           aliases=("guidedbackpropagation", "guidedbp"), paper="Springenberg et al. 2015",
           summary="the input gradient through guided ReLUs, at the input's resolution. Maps "
                   "and raw maps are (N, H, W); the gradients per colour channel are in "
                   "extras['gradients']."),
    Method("guided_gradcam", "Guided Grad-CAM", guided_gradcam_gradients, "guided",
           "input gradient", gives="pixels", paper="Selvaraju et al. 2017",
           summary="guided backpropagation times the upsampled Grad-CAM map. Maps and raw "
                   "maps are (N, H, W); the per-channel products are in extras['gradients']."),
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
            class_names=None, output=None, chunk_size: int | None = None, grid=None,
            prefix_tokens=None, **options):
    """Explain a Keras model's decision on a batch of images with a CAM method.

    Args:
        model: a Keras Sequential or functional model; nested models (a pretrained base
            inside a Sequential) are looked into; a model ending in softmax is explained on
            the logits beneath it. The model is never modified.
        images: the model's input batch ``(N, H, W, C)``, already preprocessed (floats as the
            model expects them); one image ``(H, W, C)`` is a batch of one.
        method: a name from the method table (`method_names()`: "cam", "gradcam",
            "gradcam++", "xgradcam", "hirescam", "layercam", "scorecam", "ablationcam",
            "eigencam", "rollout", "gradient_rollout", "guided_backprop", "guided_gradcam"),
            or an obvious alias ("Grad-CAM", "gradcam_plus_plus", ...).
        target: what the maps explain (`camutils.targets`): None (each image's top class),
            a class index, a class name (with ``class_names``), one of those per image,
            ``TopK(k)`` (k maps per image), a ready-made target (``targets.Class(c,
            score="probability")``, ``Contrast(a, b)``, ``Label(l)``, ``Labels(threshold)``,
            ``Regression(unit, sign)``, ``Region(c, mask)``, ``Detection(rank)``,
            ``Similarity(reference)``) or any function ``score(outputs)`` that gives one
            value per image (traced into the compiled pass). A target that does not fit the
            model raises a ValueError before anything runs.
        layer: None (the last spatial layer the logits depend on; on a transformer, the last
            token layer whose grid tokens reach them, see `camutils.methods.layers`), a layer
            name, an ``"outer/inner"`` path into a nested model, an index into
            ``model.layers`` or a layer object. Naming a layer means that layer's output: a
            feature map ``(batch, height, width, channels)`` or tokens ``(batch, tokens,
            features)``, whose grid and prefix tokens are found from the model (the patch
            embedding and the input size; `camutils.methods.tokens`).
        class_names: one name per class: allows name targets and fills
            `Explanation.labels`.
        output: for a multi-output model, the output to explain (index or name).
        chunk_size: explain at most this many images per call of the compiled pipeline and
            join the results (the same maps; bounds memory on large batches: a few hundred
            64 x 64 images, or a few dozen 224 x 224 ones, per chunk). None: all at once.
        grid: for a token layer, its grid ``(rows, columns)`` of patch tokens, where the
            model does not tell it (None: found from the model; an error names the grids
            that fit when it cannot be).
        prefix_tokens: for a token layer, how many tokens come before the grid's (class,
            distillation, register tokens); None: found from the model.
        **options: the method's own options (its row's), e.g. ``counterfactual=True``
            (gradcam), ``max_channels`` / ``batch_size`` (scorecam), ``batch_size``
            (ablationcam); ``help(camutils.<method>)`` lists them.

    Returns:
        An `Explanation`: ``maps`` in [0, 1] at the input size, ``raw`` maps at the layer's
        resolution, ``class_index``, ``score`` (the target's scores: by default logits),
        ``layer``, ``method`` and ``target`` (what the maps explain).
    """
    return _explain(method_info(method), model, images, target, layer, class_names, output,
                    chunk_size, options, TokenOptions.of(grid, prefix_tokens))


def _explain(row: Method, model, images, target, layer, class_names, output, chunk_size,
             options: dict, tokens: TokenOptions | None = None) -> Explanation:
    """`explain` with the row found: options checked, every argument checked (the whole
    batch at once, before anything runs), the batch run in chunks."""
    options = row.checked_options(options)
    chunk_size = positive_int(chunk_size, "chunk_size", none=True)
    request = prepare(model, image_array(images), target, layer if row.at_layer else None,
                      class_names, output, tokens)
    row.check(request)
    count = len(request.images)
    if chunk_size is None or count <= chunk_size:
        return row.run_request(request, options)
    parts = []
    for start in range(0, count, chunk_size):
        try:
            parts.append(row.run_request(request.rows(start, start + chunk_size), options))
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
