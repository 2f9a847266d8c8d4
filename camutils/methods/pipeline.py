"""The one pipeline every CAM method runs on.

    resolve the layer -> FeatureModel (the model opened at the layer)
      -> the target (`camutils.targets`): checked against the model's output, its
         per-image data an input of the compiled pass
      -> the pass (`camutils.methods.passes`): one compiled function per model, layer,
         target and kind of pass, shared by every rule that reads it
      -> the method's rule (its row of the method table): channel weights (N, k, C), a map
         (N, k, h, w), or values per input pixel (N, k, H, W, C)
      -> weighted sum of the activation channels -> ReLU
      -> bilinear upsampling to the input size -> min-max normalisation -> Explanation

This module holds what every method shares: the checked call (`prepare`), the steps from a
rule's output to the maps (`make_maps`), the compiled functions' cache (`compiled`), the
finiteness checks and the `Explanation` assembled at the end. The passes are in
`camutils.methods.passes`; the methods' rules in one module per family.

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
    * Non-finite values are an error, never a map: the compiled pass also returns, per
      image, whether the activations, the logits and the gradients were all finite (a few
      reductions, folded into the same graph: no extra pass), `make_maps` does the same for
      the rule's output, and `check_finite_flags` raises
      `camutils.model_errors.NonFiniteError` on them, naming the images and the cause (NaN
      weights, or values that overflowed).
    * Compiled functions are called as concrete functions, so they run as graphs even under
      ``tf.config.run_functions_eagerly(True)``: that debugging switch is for the user's own
      functions, and a pass cannot run eagerly (the logits beneath a softmax are found in
      the graph, and guided backpropagation overrides gradients in it). A rule is plain
      TensorFlow code: it runs on the pass's outputs as they come (eagerly, after the
      compiled pass), or inside a larger compiled step (`camutils.dataset`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..model_cache import model_cache
from ..model_errors import nonfinite_error, run_model
from .explanation import Explanation
from ..targets import Bound, Output, as_target, bind
from .feature_model import FeatureModel, feature_model
from .inputs import image_batch
from .keras_internals import traced_once
from .layers import resolve_output
from .model_graph import describe_model
from .tokens import TokenOptions

__all__ = [
    "Request", "prepare", "GIVES", "make_maps", "compiled_maps", "map_check", "finish",
    "rectify", "normalise",
    "weighted_sum", "upsample", "finite_flags", "check_finite_flags", "compiled", "signature",
    "explanation", "output_of",
]

#: What a rule gives (a row's ``gives``), and how `make_maps` makes the maps of it.
GIVES = {
    "weights": "channel weights (N, k, C): the map is their weighted sum of the layer's "
               "activation channels, then ReLU, upsampling and normalisation",
    "map": "a map (N, k, h, w) at the layer's resolution, before its ReLU, upsampling and "
           "normalisation",
    "pixels": "values per input pixel and colour channel (N, k, H, W, C): the map is their "
              "largest absolute value over the colour channels, normalised (the values are "
              "kept in Explanation.extras['gradients'])",
}


@dataclass
class Request:
    """A checked call: the model opened at its layer, the image batch and the target
    (`camutils.targets.Bound`: the target checked against the model's output, with its
    per-image data)."""

    model: Any
    feature: FeatureModel
    images: np.ndarray
    target: Bound
    class_names: list | None

    def rows(self, start: int, stop: int) -> "Request":
        """The same call for images ``[start, stop)`` (a chunk of the batch)."""
        return Request(self.model, self.feature, self.images[start:stop],
                       self.target.rows(start, stop), self.class_names)

    @property
    def cache(self) -> dict:
        return model_cache(self.model)

    @property
    def size(self) -> tuple[int, int]:
        """The images' ``(height, width)``."""
        return tuple(int(s) for s in self.images.shape[1:3])


def output_of(model, output=None) -> Output:
    """The explained output of ``model`` as targets are checked against it
    (`camutils.targets.Output`); ``output`` as `resolve_output` takes it."""
    import keras
    import tensorflow as tf

    graph = describe_model(model)
    index = resolve_output(model, output)
    try:  # the model's own output structure (a tensor, a list or a dict)
        specs = keras.tree.map_structure(
            lambda t: tf.TensorSpec((None, *t.shape[1:]), t.dtype), model.output)
    except (AttributeError, ValueError):  # a Sequential never called on a Keras tensor
        flat = [tf.TensorSpec((None, *s[1:]), tf.float32) for s in graph.output_shapes]
        specs = flat[0] if len(flat) == 1 else flat
    return Output(graph.model_name, tuple(graph.output_shapes[index]), None,
                  tuple(graph.input_shape), bool(graph.softmax_outputs[index]), specs, index,
                  len(graph.output_shapes))


def prepare(model, images, target=None, layer=None, class_names=None, output=None,
            tokens: TokenOptions | None = None) -> Request:
    """Check every argument and open the model at its layer (cached): the images, then the
    target against the model's output (`camutils.targets.bind`), then the layer (``tokens``:
    what the user said about a token layer's grid); nothing runs before all three are
    checked."""
    target = as_target(target)
    graph = describe_model(model)
    if output is None and target.whole_outputs and len(graph.output_shapes) > 1:
        output = 0  # a function reads every output; the layer is one the first depends on
    explained = output_of(model, output)
    batch = image_batch(images, graph.input_shape, graph.input_dtype, graph.model_name)
    bound = bind(target, explained, len(batch), class_names)
    feature = feature_model(model, layer, explained.index, tokens)
    names = None if class_names is None else [str(n) for n in class_names]
    return Request(model, feature, batch, bound, names)


def weighted_sum(activations, weights):
    """``sum_c weights[n, k, c] * activations[n, :, :, c]`` -> ``(N, k, h, w)``."""
    import tensorflow as tf

    return tf.einsum("nhwc,nkc->nkhw", activations, weights)


def upsample(maps, size):
    """Bilinear upsampling of ``maps`` ``(N, k, h, w)`` to ``size`` ``(H, W)``."""
    import tensorflow as tf

    shape = tf.shape(maps)
    flat = tf.reshape(maps, tf.concat([[-1], shape[2:4], [1]], axis=0))
    upsampled = tf.image.resize(flat, size, method="bilinear")
    return tf.reshape(upsampled, tf.concat([shape[:2], tf.shape(upsampled)[1:3]], axis=0))


def rectify(raw):
    """The ReLU of a raw map, never NaN: NaN becomes 0 and +inf the largest float32."""
    import tensorflow as tf

    raw = tf.where(tf.math.is_nan(raw), tf.zeros_like(raw), raw)
    return tf.clip_by_value(raw, 0.0, np.finfo(np.float32).max)


def finish(raw, size):
    """ReLU, upsample and normalise ``raw`` ``(N, k, h, w)`` -> ``(raw, maps (N, k, H, W))``.

    ``size`` is the input's ``(H, W)`` (a tensor or a pair).
    """
    raw = rectify(raw)
    return raw, normalise(upsample(raw, size))


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


def make_maps(gives: str, out, activations, size):
    """A rule's output -> ``(raw, maps, finite, extras)``.

    ``gives`` says what ``out`` is (`GIVES`); ``activations`` ``(N, h, w, C)`` are the
    layer's, for channel weights; ``size`` the input's ``(H, W)``. ``finite`` is
    `finite_flags` of the values before the ReLU (one column); ``extras`` what the
    `Explanation` keeps beside the maps.
    """
    import tensorflow as tf

    if gives == "pixels":
        finite = finite_flags(out)
        raw = tf.reduce_max(tf.abs(out), axis=-1)  # per pixel, over the colour channels
        return raw, normalise(raw), finite, {"gradients": out}
    raw = weighted_sum(activations, out) if gives == "weights" else out
    finite = finite_flags(raw)
    raw, maps = finish(raw, size)
    return raw, maps, finite, {}


_COMPILED_MAPS: dict = {}


def compiled_maps(gives: str):
    """`make_maps` for channel weights or a map, as one compiled (concrete) function per
    kind of output, for any model and batch: ``(out, activations, size) -> (raw, maps,
    finite)``. The same ops as `make_maps`; after a pass, one call instead of some fifteen
    eager ones (on a small network that is a tenth of a forward pass)."""
    import tensorflow as tf

    if gives not in ("weights", "map"):
        raise ValueError(f"compiled_maps makes maps of weights or a map, not {gives!r}.")
    if gives not in _COMPILED_MAPS:
        rank = 3 if gives == "weights" else 4

        def graph(out, activations, size):
            return make_maps(gives, out, activations, size)[:3]

        function = tf.function(graph, autograph=False, input_signature=[
            tf.TensorSpec((None,) * rank, tf.float32),
            tf.TensorSpec((None, None, None, None), tf.float32),
            tf.TensorSpec((2,), tf.int32)])
        traced_once(function)
        _COMPILED_MAPS[gives] = function.get_concrete_function()
    return _COMPILED_MAPS[gives]


def map_check(method: str, gives: str) -> str:
    """What `make_maps`' ``finite`` flags check, for the messages."""
    return (f"the values of the {method} map" if gives == "pixels"
            else f"the values of the {method} map before its ReLU")


# --------------------------------------------------------------------------- compiling


def signature(request: Request, *extra):
    """The batch-agnostic input signature ``(images, the target's data, *extra)``; the
    data is a dict of arrays, one row per image (`camutils.targets.Bound.specs`)."""
    import tensorflow as tf

    feature = request.feature
    return [
        tf.TensorSpec((None, *feature.input_shape[1:]), feature.input_dtype, name="images"),
        request.target.specs(),
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
    a `Compiled`. The cache key is ``("compiled", layer, output, *key, token options)``."""
    import tensorflow as tf

    cache = request.cache
    layer, output, tokens = request.feature.key
    full_key = ("compiled", layer, output) + key + (tokens,)
    if full_key not in cache:
        function = tf.function(build(), input_signature=input_signature, autograph=False)
        # Each model, layer and pass has its own function, traced once; TensorFlow's
        # "frequent retracing" warning counts traces per source line and would misfire.
        traced_once(function)
        cache[full_key] = function
    return Compiled(request.model, cache[full_key])


# --------------------------------------------------------------------------- finiteness


def finite_flags(*tensors):
    """bool ``(N, len(tensors))``: whether each image's values in each tensor (batch first)
    are all finite. None, or a tensor that is not floating point, counts as finite.

    A handful of reductions, meant to be folded into a compiled pass (or run after it on
    a rule's output) and checked on the host with `check_finite_flags`.
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


def check_finite_flags(request: Request, flags, checked) -> None:
    """Raise `NonFiniteError` for the first of ``checked`` (descriptions, in the order of
    ``flags``' columns, the order in which the values are computed) that is not finite."""
    flags = np.asarray(flags)
    if flags.all():
        return
    column = int(np.flatnonzero(~flags.all(axis=0))[0])
    raise nonfinite_error(request.model, checked[column], np.flatnonzero(~flags[:, column]),
                          request.images)


# --------------------------------------------------------------------------- the result


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
        class_names=request.class_names, extras=extras, target=request.target.description,
    )
