"""The one pipeline every CAM method runs on.

    resolve the layer -> FeatureModel: images -> (activations, logits)
      -> the method's rule: channel weights (N, k, C), or a map (N, k, h, w)
      -> weighted sum of the activation channels -> ReLU
      -> bilinear upsampling to the input size -> min-max normalisation -> Explanation

A method contributes only its `Rule`. For each ``(model, layer, output, rule, target kind)``
the whole chain, forward pass, gradients, rule, upsampling and normalisation, is one
``tf.function`` with a batch-agnostic signature: traced once, reused for any batch size, and
free of Python loops over images or channels. Compiled functions live in a cache that belongs
to the model weakly (`camutils.model_cache`), so they die with it.

Conventions
    * Upsampling: ``tf.image.resize(..., "bilinear")`` (half-pixel centres, as OpenCV and
      PyTorch's ``align_corners=False``): cell ``(i, j)`` of an ``h x w`` map covers input
      pixels ``[i H/h, (i+1) H/h) x [j W/w, (j+1) W/w)``.
    * Normalisation: per image (and target), min-max after the ReLU and the upsampling:
      ``(M - min M) / (max M - min M)``. A constant map, all-zero ones included, becomes all
      zero (its range is compared with `CONSTANT_TOLERANCE` times its maximum, so that
      rounding in the upsampling is not stretched into a map). Since the ReLU leaves a zero
      somewhere in most maps, this is usually a division by the maximum.
    * Never NaN: NaN in a raw map becomes 0 and +inf the largest float32 before the ReLU.
    * Non-finite values are an error, never a map: the compiled function also returns, per
      image, whether the activations, the logits, the gradients and the rule's weights or
      map were all finite (a few reductions, folded into the same graph: no extra pass),
      and `check_finite` raises `camutils.model_errors.NonFiniteError` on the result, naming
      the images and the cause (NaN weights, or values that overflowed).
    * Compiled functions are called as concrete functions, so they run as graphs even under
      ``tf.config.run_functions_eagerly(True)``: that debugging switch is for the user's own
      functions, and a method's graph cannot run eagerly (the logits beneath a softmax are
      found in the graph, and guided backpropagation overrides gradients in it).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..model_cache import model_cache
from ..model_errors import nonfinite_error, run_model
from .explanation import Explanation
from .feature_model import FeatureModel, feature_model
from .keras_internals import traced_once
from .inputs import Target, image_batch, resolve_target

__all__ = [
    "Pass", "Rule", "Request", "prepare", "run_rule", "rule_chain", "capture_rule",
    "RuleCaptured", "finish", "choose_classes", "finite_flags", "check_finite", "pass_checks",
]


@dataclass
class Pass:
    """What one forward (and backward) pass gives a rule. All float32 except ``classes``.

    Attributes:
        activations: ``(N, h, w, C)``, the layer's output ``A``.
        gradients: ``(N, k, h, w, C)``, ``dS/dA`` for each target's logit ``S``; None for
            rules that need no gradients.
        logits: ``(N, classes)``.
        classes: int32 ``(N, k)``, the target classes.
        scores: ``(N, k)``, their logits.
        feature: the `camutils.methods.feature_model.FeatureModel` (for rules that read weights).
    """

    activations: Any
    gradients: Any
    logits: Any
    classes: Any
    scores: Any
    feature: Any


@dataclass(frozen=True)
class Rule:
    """A method's weight rule, and the options it is run with.

    Attributes:
        name: the method's name, as reported in `Explanation.method`.
        fn: ``fn(p: Pass, **options) -> (N, k, C)`` channel weights (``kind="weights"``) or
            ``-> (N, k, h, w)`` map before the ReLU (``kind="map"``). A module-level function
            of its arguments only (no closure): its options reach it as data, from
            ``options``, which is also part of the compiled function's cache key, so the key
            and the computation cannot drift apart.
        kind: ``"weights"`` or ``"map"``.
        gradients: whether ``fn`` reads `Pass.gradients`.
        options: ``((name, value), ...)``, passed to ``fn`` as keyword arguments (hashable
            values; `Rule.make` sorts them).
    """

    name: str
    fn: Callable
    kind: str = "weights"
    gradients: bool = True
    options: tuple = ()

    def __post_init__(self):
        if getattr(self.fn, "__closure__", None):
            raise TypeError(
                f"The rule of {self.name!r} closes over variables; pass them as options "
                "(Rule.make(..., option=value)) so that they are part of the cache key.")

    @classmethod
    def make(cls, name: str, fn: Callable, kind: str = "weights", gradients: bool = True,
             **options) -> "Rule":
        """A rule whose ``options`` are the given keyword arguments."""
        return cls(name, fn, kind, gradients, tuple(sorted(options.items())))

    def __call__(self, p: Pass):
        """The rule's weights (or map) for one pass."""
        return self.fn(p, **dict(self.options))


@dataclass
class Request:
    """A checked call: the model opened at its layer, the image batch and the target."""

    model: Any
    feature: FeatureModel
    images: np.ndarray
    target: Target
    class_names: list | None

    @property
    def cache(self) -> dict:
        return model_cache(self.model)


def prepare(model, images, target=None, layer=None, class_names=None, output=None) -> Request:
    """Check every argument and open the model at its layer (cached)."""
    feature = feature_model(model, layer, output)
    batch = image_batch(images, feature.input_shape, feature.input_dtype, feature.model_name)
    resolved = resolve_target(target, len(batch), feature.num_classes, class_names)
    names = None if class_names is None else [str(n) for n in class_names]
    return Request(model, feature, batch, resolved, names)


# --------------------------------------------------------------------------- graph pieces


def choose_classes(logits, given, mode: str, k: int):
    """int32 ``(N, k)`` target classes: the top-k logits, or the given ones."""
    import tensorflow as tf

    if mode == "top":
        return tf.math.top_k(logits, k=k, sorted=True).indices
    return tf.cast(given, tf.int32)


def weighted_sum(activations, weights):
    """``sum_c weights[n, k, c] * activations[n, :, :, c]`` -> ``(N, k, h, w)``."""
    import tensorflow as tf

    return tf.einsum("nhwc,nkc->nkhw", activations, weights)


def finish(raw, size):
    """ReLU, upsample and normalise ``raw`` ``(N, k, h, w)`` -> ``(raw, maps (N, k, H, W))``.

    ``size`` is the input's ``(H, W)`` (a tensor or a pair).
    """
    import tensorflow as tf

    raw = tf.where(tf.math.is_nan(raw), tf.zeros_like(raw), raw)
    raw = tf.clip_by_value(raw, 0.0, np.finfo(np.float32).max)
    shape = tf.shape(raw)
    flat = tf.reshape(raw, tf.concat([[-1], shape[2:4], [1]], axis=0))
    upsampled = tf.image.resize(flat, size, method="bilinear")
    upsampled = tf.reshape(upsampled, tf.concat([shape[:2], tf.shape(upsampled)[1:3]], axis=0))
    return raw, normalise(upsampled)


#: A map whose range (max - min) is at most this fraction of its maximum counts as constant.
CONSTANT_TOLERANCE = 1e-5


def normalise(maps):
    """Min-max normalise each map ``(..., H, W)`` to [0, 1]; constant maps become all zero.

    A map is constant when its range is at most `CONSTANT_TOLERANCE` times its largest
    absolute value (or zero): float rounding in upsampling must not be stretched into a map.
    """
    import tensorflow as tf

    low = tf.reduce_min(maps, axis=[-2, -1], keepdims=True)
    high = tf.reduce_max(maps, axis=[-2, -1], keepdims=True)
    spread = high - low
    scale = tf.maximum(tf.abs(high), tf.abs(low))
    constant = spread <= CONSTANT_TOLERANCE * scale
    spread = tf.where(constant, tf.zeros_like(spread), spread)
    normalised = tf.math.divide_no_nan(maps - low, spread)
    return tf.clip_by_value(normalised, 0.0, 1.0)


def signature(request: Request, *extra):
    """The batch-agnostic input signature ``(images, given classes, *extra)``."""
    import tensorflow as tf

    feature = request.feature
    return [
        tf.TensorSpec((None, *feature.input_shape[1:]), feature.input_dtype, name="images"),
        tf.TensorSpec((None, request.target.k), tf.int32, name="given"),
        *extra,
    ]


class Compiled:
    """A cached ``tf.function`` of a request's model, called as its concrete function.

    A concrete function runs as a graph whatever ``tf.config.run_functions_eagerly`` says
    (see the module's notes), and accepts any batch size of its signature. An image too
    small for the model's layers raises a clear error (`camutils.model_errors.run_model`).
    """

    def __init__(self, model, function):
        self.model = model
        self.function = function.get_concrete_function()

    def __call__(self, images, *args):
        return run_model(self.model, self.function, images, *args)


def compiled(request: Request, key: tuple, build: Callable[[], Callable],
             input_signature) -> Compiled:
    """The cached ``tf.function`` for ``key`` (built by ``build()`` on first use), to call as
    a `Compiled`."""
    import tensorflow as tf

    cache = request.cache
    full_key = ("compiled", request.feature.layer, request.feature.output) + key
    if full_key not in cache:
        function = tf.function(build(), input_signature=input_signature, autograph=False)
        # Each model, layer and method has its own function, traced once; TensorFlow's
        # "frequent retracing" warning counts traces per source line and would misfire.
        traced_once(function)
        cache[full_key] = function
    return Compiled(request.model, cache[full_key])


def finite_flags(*tensors):
    """bool ``(N, len(tensors))``: whether each image's values in each tensor (batch first)
    are all finite. None, or a tensor that is not floating point, counts as finite.

    A handful of reductions, meant to be folded into a method's compiled function and
    checked once on its result with `check_finite`.
    """
    import tensorflow as tf

    batch = next(t for t in tensors if t is not None)
    flags = []
    for tensor in tensors:
        if tensor is None or not tensor.dtype.is_floating:
            flags.append(tf.ones(tf.shape(batch)[:1], tf.bool))
            continue
        axes = list(range(1, len(tensor.shape)))
        flags.append(tf.reduce_all(tf.math.is_finite(tensor), axis=axes) if axes
                     else tf.math.is_finite(tensor))
    return tf.stack(flags, axis=1)


def check_finite(request: Request, flags, checked) -> None:
    """Raise `NonFiniteError` for the first of ``checked`` (descriptions, in the order of
    ``flags``' columns, the order in which the values are computed) that is not finite."""
    flags = np.asarray(flags)
    if flags.all():
        return
    column = int(np.flatnonzero(~flags.all(axis=0))[0])
    raise nonfinite_error(request.model, checked[column], np.flatnonzero(~flags[:, column]),
                          request.images)


def pass_checks(request: Request, method: str) -> tuple[str, str, str, str]:
    """What `finite_flags` of ``(activations, logits, gradients, raw map)`` checks."""
    layer = request.feature.layer
    beneath = " (beneath its softmax)" if request.feature.softmax else ""
    return (f"the activations of layer {layer!r}", f"the model's logits{beneath}",
            f"the gradients of the class scores with respect to layer {layer!r}",
            f"the values of the {method} map before its ReLU")


def forward_with_gradients(feature, images, given, mode: str, k: int, gradients: bool):
    """One pass: float32 activations, logits, classes, scores and (optionally) gradients."""
    import tensorflow as tf

    if gradients:
        with tf.GradientTape(persistent=k > 1, watch_accessed_variables=False) as tape:
            activations, logits = feature.forward(images, watch=tape.watch)
            classes = choose_classes(logits, given, mode, k)
            scores = tf.gather(logits, classes, batch_dims=1)
            totals = [tf.reduce_sum(scores[:, j]) for j in range(k)]
        grads = tf.stack([
            tf.cast(tape.gradient(total, activations,
                                  unconnected_gradients=tf.UnconnectedGradients.ZERO),
                    tf.float32)
            for total in totals
        ], axis=1)
    else:
        activations, logits = feature.forward(images)
        classes = choose_classes(logits, given, mode, k)
        scores = tf.gather(logits, classes, batch_dims=1)
        grads = None
    return Pass(tf.cast(activations, tf.float32), grads, logits, classes, scores, feature)


def rule_chain(feature, rule: Rule, images, given, mode: str, k: int):
    """The whole single-pass chain in graph code: ``(maps, raw, Pass, finite)`` for a batch.

    Forward (and backward) pass, the rule, the weighted sum, ReLU, upsampling and
    normalisation, and `finite_flags` of the activations, logits, gradients and raw map (for
    `check_finite` with `pass_checks`): what `run_rule` compiles, and what `camutils.dataset`
    runs on each replica of a `tf.distribute` strategy (the same computation per image by
    construction).
    """
    import tensorflow as tf

    p = forward_with_gradients(feature, images, given, mode, k, rule.gradients)
    out = rule(p)
    raw = weighted_sum(p.activations, out) if rule.kind == "weights" else out
    finite = finite_flags(p.activations, p.logits, p.gradients, raw)
    raw, maps = finish(raw, tf.shape(images)[1:3])
    return maps, raw, p, finite


class RuleCaptured(Exception):
    """Raised by `run_rule` inside `capture_rule`: the call stopped before running."""


_CAPTURE: ContextVar[list | None] = ContextVar("camutils_capture_rule", default=None)


@contextmanager
def capture_rule():
    """Inside this block, a single-pass method's call checks its arguments, then stops with
    `RuleCaptured` instead of running; the list it yields then holds its ``(Request, Rule)``.

        with capture_rule() as captured:
            try:
                explain(model, probe, "gradcam", layer=layer)
            except RuleCaptured:
                pass
        request, rule = captured[0]       # (empty: the method is not single-pass)

    `camutils.dataset` uses it to run any single-pass method of the method table inside its
    own compiled step (with `rule_chain`), without a table of its own.
    """
    captured: list = []
    token = _CAPTURE.set(captured)
    try:
        yield captured
    finally:
        _CAPTURE.reset(token)


def run_rule(request: Request, rule: Rule) -> Explanation:
    """Explain ``request`` with a single-pass ``rule`` (CAM, the Grad-CAM family, Eigen-CAM)."""
    feature, target = request.feature, request.target
    mode, k = target.mode, target.k
    captured = _CAPTURE.get()
    if captured is not None:
        captured.append((request, rule))
        raise RuleCaptured(rule.name)

    def build():
        def graph(images, given):
            maps, raw, p, finite = rule_chain(feature, rule, images, given, mode, k)
            return maps, raw, p.classes, p.scores, finite

        return graph

    function = compiled(request, ("rule", rule, mode, k), build, signature(request))
    maps, raw, classes, scores, finite = function(request.images, target.given)
    check_finite(request, finite, pass_checks(request, rule.name))
    return explanation(request, rule.name, maps, raw, classes, scores)


def explanation(request: Request, method: str, maps, raw, classes, scores, layer=None,
                extras=None) -> Explanation:
    """Assemble the `Explanation` (numpy arrays; the k axis dropped for single targets)."""
    arrays = [np.asarray(a) for a in (maps, raw, classes, scores)]
    if request.target.squeeze:
        arrays = [a[:, 0] for a in arrays]
    maps, raw, classes, scores = arrays
    extras = {
        name: (np.asarray(v)[:, 0] if request.target.squeeze else np.asarray(v))
        for name, v in (extras or {}).items()
    }
    return Explanation(
        maps=maps.astype(np.float32), raw=raw.astype(np.float32),
        class_index=classes.astype(np.int64), score=scores.astype(np.float64),
        layer=request.feature.layer if layer is None else layer, method=method,
        class_names=request.class_names, extras=extras,
    )
