"""The perturbation family, Score-CAM and Ablation-CAM: their rules and options (their rows
are in `camutils.methods.registry`), and `run_per_channel`, the driver of every method whose
cost class is "per channel".

Both weigh channel ``k`` by how the class score reacts when the network sees only what the
channel highlights (Score-CAM) or everything but the channel (Ablation-CAM). That takes one
network evaluation per image and channel, so the driver runs them in blocks of at most
``batch_size`` evaluations, each a compiled call on a batch-agnostic signature, with a
progress bar:

    the "forward" pass (`camutils.methods.passes`, shared with CAM and Eigen-CAM)
      -> optionally, each image's ``max_channels`` most active channels
      -> the rule on each block of (images, channels): the channels' weights (g, m, k)
      -> the weighted sum of the channels -> ReLU, upsampling, normalisation

    Score-CAM     the whole network, on images masked by each upsampled channel
    Ablation-CAM  only the head (the layers after the explained one), on activations with
                  one channel set to zero

Both re-evaluate the target (`camutils.targets`) on the outputs of their perturbed passes,
with the state the first pass chose (its classes, its predicted mask, its detection): the
perturbed image is scored on what the unperturbed one's map explains.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model_errors import nonfinite_error
from .options import Option, optional_flag, optional_positive, positive
from .passes import run_pass
from .pipeline import check_finite_flags, compiled, explanation, make_maps, map_check, signature

__all__ = ["ChannelBlock", "run_per_channel", "scorecam_weights", "ablationcam_weights",
           "MAX_CHANNELS", "PROGRESS", "batch_size_option"]

_AUTO_PROGRESS_BATCHES = 8

#: Use only each image's most active channels (Score-CAM's option; read by the driver).
MAX_CHANNELS = Option("max_channels", None, optional_positive,
                      "use only this many channels per image, those with the highest mean "
                      "activation (None: all channels)")
#: Show a progress bar (read by the driver).
PROGRESS = Option("progress", None, optional_flag,
                  "show a progress bar (None: only for long runs)")


def batch_size_option(default: int, what: str) -> Option:
    """The ``batch_size`` option of a per-channel method: ``what`` one evaluation is."""
    return Option("batch_size", default, positive, f"{what} per compiled call")


#: The options the driver reads; every other option goes to the rule.
_DRIVER_OPTIONS = ("max_channels", "batch_size", "progress")


@dataclass
class ChannelBlock:
    """What a per-channel rule sees: a block of images ``[n0, n1)`` and of channels
    ``[k0, k1)``, in graph code. Tensors; ``g = n1 - n0`` images, ``m = k1 - k0`` channels.

    Attributes:
        feature: the `camutils.methods.feature_model.FeatureModel`.
        images: ``(g, H, W, C)``, the block's images.
        activations: ``(g, h, w, M)``, every channel the method uses of those images.
        channels: ``(g, h, w, m)``, the block's channels.
        first, last: the block's channels are ``[first, last)`` of the ``M``.
        classes: int32 ``(g, k)``, the target classes.
        scores: ``(g, k)``, their scores (from the first pass).
        target: the `camutils.targets.Target`.
        state: the target's state from the first pass (a dict of ``(g, ...)`` tensors).
    """

    feature: Any
    images: Any
    activations: Any
    first: Any
    last: Any
    classes: Any
    scores: Any
    target: Any = None
    state: Any = None

    @property
    def channels(self):
        return self.activations[..., self.first:self.last]

    def rescore(self, outputs, m, confidence: bool = False):
        """The target re-evaluated on the outputs of ``g * m`` perturbed inputs (each image's
        ``m`` in a row), with each image's state: ``(g, m, k)``. ``confidence``: Score-CAM's
        weight (`camutils.targets.Target.confidence`) instead of the score."""
        import tensorflow as tf

        values = self.feature.logits_of(outputs)
        state = {name: tf.repeat(value, m, axis=0) for name, value in self.state.items()}
        rate = self.target.confidence if confidence else self.target.score
        scores = tf.cast(rate(outputs, values, state), tf.float32)
        return tf.reshape(scores, tf.stack([-1, m, tf.shape(self.scores)[1]]))


def _progress(total: int, batch_size: int, progress, description: str):
    from tqdm.auto import tqdm

    batches = -(-total // batch_size)
    show = batches >= _AUTO_PROGRESS_BATCHES if progress is None else bool(progress)
    return tqdm(total=total, desc=description, unit="eval", disable=not show, leave=False)


def _most_active(activations, max_channels: int | None):
    """Each image's ``max_channels`` channels of highest mean activation (all: None)."""
    import tensorflow as tf

    if max_channels is None or max_channels >= activations.shape[-1]:
        return activations
    most_active = tf.math.top_k(tf.reduce_mean(activations, axis=[1, 2]), k=max_channels).indices
    return tf.gather(activations, most_active, axis=3, batch_dims=1)


def _rectangles(images: int, channels: int, batch_size: int):
    """Batches as ``(n0, n1, k0, k1)``: images ``[n0, n1)`` x channels ``[k0, k1)``.

    A batch never mixes partial images: either one image and up to ``batch_size`` of its
    channels, or several whole images. Each batch is then built with one broadcast
    multiplication, without gathering copies of the inputs.
    """
    if channels >= batch_size:
        for n in range(images):
            for k in range(0, channels, batch_size):
                yield n, n + 1, k, min(k + batch_size, channels)
    else:
        group = max(1, batch_size // channels)
        for n in range(0, images, group):
            yield n, min(n + group, images), 0, channels


def _block_function(request, rule, options: dict, state: dict):
    """The compiled rule on one block: ``(images, activations, classes, scores, state, n0,
    n1, k0, k1) -> weights (g, m, k)``, cached per model, layer, rule (and its options),
    target and the shapes of its state."""
    import tensorflow as tf

    feature, bound = request.feature, request.target
    k = bound.k

    def build():
        def graph(images, activations, classes, scores, state, n0, n1, k0, k1):
            block = ChannelBlock(feature, images[n0:n1], activations[n0:n1], k0, k1,
                                 classes[n0:n1], scores[n0:n1], bound.target,
                                 {name: value[n0:n1] for name, value in state.items()})
            return rule(block, **options)

        return graph

    h, w, _ = feature.activation_shape
    index = [tf.TensorSpec((), tf.int32, name=n) for n in ("n0", "n1", "k0", "k1")]
    state_specs = {name: tf.TensorSpec((None, *value.shape[1:]), value.dtype, name=name)
                   for name, value in state.items()}
    specs = [signature(request)[0],
             tf.TensorSpec((None, h, w, None), tf.float32, name="activations"),
             tf.TensorSpec((None, k), tf.int32, name="classes"),
             tf.TensorSpec((None, k), tf.float32, name="scores"), state_specs, *index]
    shapes = tuple((name, tuple(s.shape[1:]), s.dtype.name) for name, s in
                   sorted(state_specs.items()))
    return compiled(request, ("per channel", rule, tuple(sorted(options.items())),
                              bound.key, shapes), build, specs)


def run_per_channel(request, method, options: dict):
    """Explain ``request`` with a per-channel ``method`` (a row of the method table): the
    forward pass, its rule on every block of (images, channels), then the maps.

    ``options`` are checked; ``max_channels``, ``batch_size`` and ``progress`` are the
    driver's (`MAX_CHANNELS`, `batch_size_option`, `PROGRESS`), the others the rule's.
    """
    import tensorflow as tf

    p = run_pass(request, "forward")
    activations = _most_active(p.activations, options.get("max_channels"))
    block = _block_function(request, method.rule,
                            {k: v for k, v in options.items() if k not in _DRIVER_OPTIONS},
                            p.state)
    n_images, channels = len(request.images), int(activations.shape[3])
    images = tf.convert_to_tensor(request.images)
    weights = np.zeros((n_images, channels, request.target.k), np.float32)
    batch_size = options["batch_size"]
    with _progress(n_images * channels, batch_size, options.get("progress"),
                   method.label) as bar:
        for n0, n1, k0, k1 in _rectangles(n_images, channels, batch_size):
            out = block(images, activations, p.classes, p.scores, p.state,
                        *map(tf.constant, (n0, n1, k0, k1)))
            weights[n0:n1, k0:k1] = out.numpy()
            bar.update((n1 - n0) * (k1 - k0))
    finite = np.isfinite(weights.reshape(n_images, -1)).all(axis=1)
    if not finite.all():
        raise nonfinite_error(
            request.model, f"the {method.label} weights of the channels of layer "
            f"{request.feature.layer!r} (one network evaluation per channel)",
            np.flatnonzero(~finite), request.images)
    raw, maps, finite, _ = make_maps("weights", tf.transpose(weights, [0, 2, 1]), activations,
                                     request.size)
    check_finite_flags(request, finite, (map_check(method.name, "weights"),))
    return explanation(request, method.name, maps, raw, p.classes, p.scores)


def _flatten_pairs(tensor):
    """``(g, m, ...)`` -> ``(g * m, ...)``."""
    import tensorflow as tf

    shape = tf.shape(tensor)
    flat = tf.reshape(tensor, tf.concat([[shape[0] * shape[1]], shape[2:]], axis=0))
    # Keep the static sizes of the trailing axes: layers that read them (Flatten up to
    # Keras 3.10 builds its reshape from them) fail on unknown sizes.
    if tensor.shape.rank is not None:
        flat.set_shape([None, *tensor.shape[2:]])
    return flat


# --------------------------------------------------------------------------- Score-CAM


def scorecam_weights(b: ChannelBlock):
    """Wang et al. 2020 (Score-CAM), eqs. 3-5: ``w_k = softmax(f(X * H_k))_c`` with
    ``H_k = s(Up(A^k))``.

    Each channel is upsampled to the input size (bilinear, half-pixel centres, as the maps
    are) and min-max normalised to [0, 1] (``s``; 0 for a constant channel); the weight is
    the target's confidence on the image masked by it (for a class, its softmax
    probability; `camutils.targets.Target.confidence`): the paper's channel-wise increase
    of confidence (CIC) without subtracting a baseline image's score, as the authors' code
    and tf-keras-vis do.
    """
    import tensorflow as tf

    block = tf.transpose(b.channels, [0, 3, 1, 2])  # (g, m, h, w)
    m = tf.shape(block)[1]
    size = tf.shape(b.images)[1:3]
    masks = tf.image.resize(_flatten_pairs(block)[..., None], size, "bilinear")  # (g m, H, W, 1)
    low = tf.reduce_min(masks, axis=[1, 2, 3], keepdims=True)
    high = tf.reduce_max(masks, axis=[1, 2, 3], keepdims=True)
    masks = tf.math.divide_no_nan(masks - low, high - low)
    masks = tf.reshape(masks, tf.concat([tf.shape(block)[:2], tf.shape(masks)[1:]], axis=0))
    masked = _flatten_pairs(b.images[:, None] * tf.cast(masks, b.images.dtype))
    return b.rescore(b.feature.outputs(masked), m, confidence=True)


# --------------------------------------------------------------------------- Ablation-CAM


def _ablated_pooled(feature, acts, keep):
    """The pooling's outputs for ``acts (g, h, w, C)`` with channel ``k`` zeroed, for each
    row ``k`` of ``keep (m, C)``: ``(g * m, ..., C)``.

    Global average or max pooling works channel by channel, and pools a channel of zeros
    to zero, so pooling the ablated maps equals zeroing entry ``k`` of the pooled vector:
    the ``g * m`` ablated maps are never built (for a 7 x 7 x 1280 layer, 49 times less
    memory to write and read), and the layers after the pooling run as before.
    """
    import tensorflow as tf

    pooled = feature.pool(acts)  # (g, C), or (g, 1, 1, C) with keepdims
    # (1, m, 1, ..., C), with every size but m known statically where the pooling's is
    channels = pooled.shape[-1] if pooled.shape[-1] is not None else tf.shape(keep)[1]
    keep = tf.reshape(tf.cast(keep, pooled.dtype),
                      [1, -1, *[1] * (len(pooled.shape) - 2), channels])
    return _flatten_pairs(pooled[:, None] * keep)  # (g, m, ..., C) -> (g m, ..., C)


def ablationcam_weights(b: ChannelBlock):
    """Desai and Ramaswamy 2020 (Ablation-CAM), eq. 3: ``w_k = (S - S_k) / |S|``, where
    ``S_k`` is the class's logit when channel ``k`` of the layer's output is set to zero.

    ``S`` is the target's score (by default the class's logit), re-evaluated on the head's
    outputs. The paper divides by ``S``; dividing by ``|S|`` gives the same map for a
    positive score and keeps a negative score from flipping it. Only the head runs (the
    layers after the explained one, on the ablated activations; the layers before it do not
    run again; a token layer's prefix tokens are kept and only its grid is ablated), and
    where the layer reaches the logits through a global pooling alone (and the target reads
    only the explained output), only the layers after the pooling (`_ablated_pooled`).
    """
    import tensorflow as tf

    feature = b.feature
    # Every channel is here: give the head the layer's static sizes (the signature leaves
    # the channels open for Score-CAM's selections).
    acts = tf.ensure_shape(b.activations, (None, *feature.activation_shape))
    keep = 1.0 - tf.one_hot(tf.range(b.first, b.last), tf.shape(acts)[3], dtype=acts.dtype)
    m = b.last - b.first
    inputs = tf.repeat(b.images, m, axis=0)  # pruned unless a path bypasses the layer
    if feature.pooling is None or b.target.whole_outputs:
        prefix = feature.prefix_tokens(b.images)  # a token layer's, kept as they are
        prefix = None if prefix is None else tf.repeat(prefix, m, axis=0)
        outputs = feature.head_outputs(
            inputs, _flatten_pairs(acts[:, None] * keep[None, :, None, None, :]),
            prefix=prefix)
    else:
        outputs = feature.head_outputs(inputs, _ablated_pooled(feature, acts, keep),
                                       at=feature.pooling)
    ablated = b.rescore(outputs, m)  # (g, m, k)
    return tf.math.divide_no_nan(b.scores[:, None, :] - ablated, tf.abs(b.scores)[:, None, :])
