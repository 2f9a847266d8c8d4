"""The perturbation family: Score-CAM and Ablation-CAM, batched.

Both weigh channel ``k`` by how the class score reacts when the network sees only what the
channel highlights (Score-CAM) or everything but the channel (Ablation-CAM). That takes one
network evaluation per image and channel, so the work runs in batches of ``batch_size``
evaluations, each a compiled call on a batch-agnostic signature, with a progress bar.

    Score-CAM     the whole network, on images masked by each upsampled channel
    Ablation-CAM  only the head (the layers after the explained one), on activations with
                  one channel set to zero
"""

from __future__ import annotations

import numpy as np

from ..checks import positive_int
from ..model_errors import nonfinite_error
from .pipeline import (
    check_finite, compiled, explanation, finish, finite_flags, forward_with_gradients,
    pass_checks, prepare, signature,
)

__all__ = ["scorecam", "ablationcam"]

_AUTO_PROGRESS_BATCHES = 8


def _progress(total: int, batch_size: int, progress, description: str):
    from tqdm.auto import tqdm

    batches = -(-total // batch_size)
    show = batches >= _AUTO_PROGRESS_BATCHES if progress is None else bool(progress)
    return tqdm(total=total, desc=description, unit="eval", disable=not show, leave=False)


def _activation_specs(request):
    import tensorflow as tf

    h, w, _ = request.feature.activation_shape
    return tf.TensorSpec((None, h, w, None), tf.float32, name="activations")


def _pass_function(request, method: str, max_channels: int | None = None):
    """Compiled first pass: ``(activations (N, h, w, M), classes, scores, finite)``, where
    ``finite`` is `finite_flags` of the activations and the logits.

    With ``max_channels``, only each image's ``max_channels`` channels of highest mean
    activation are kept (``M = max_channels``). The cache key is built from the same
    arguments that build the function.
    """
    import tensorflow as tf

    feature, target = request.feature, request.target

    def build():
        def graph(images, given):
            p = forward_with_gradients(feature, images, given, target.mode, target.k, False)
            finite = finite_flags(p.activations, p.logits)
            activations = p.activations
            if max_channels is not None:
                most_active = tf.math.top_k(tf.reduce_mean(activations, axis=[1, 2]),
                                            k=max_channels).indices
                activations = tf.gather(activations, most_active, axis=3, batch_dims=1)
            return activations, p.classes, p.scores, finite

        return graph

    return compiled(request, ("pass", method, max_channels, target.mode, target.k), build,
                    signature(request))


def _combine_function(request):
    """Compiled last step: ``weights (N, M, k)`` and activations -> raw maps, maps and
    `finite_flags` of the raw maps before the ReLU."""
    import tensorflow as tf

    def build():
        def graph(images, activations, weights):
            raw = tf.einsum("nhwm,nmk->nkhw", activations, weights)
            finite = finite_flags(raw)
            return (*finish(raw, tf.shape(images)[1:3]), finite)

        return graph

    spec = signature(request)[0]
    weights = tf.TensorSpec((None, None, request.target.k), tf.float32, name="weights")
    return compiled(request, ("combine", request.target.k), build,
                    [spec, _activation_specs(request), weights])


def _first_pass(request, method: str, max_channels: int | None = None):
    """The first pass's activations, classes and scores, checked to be finite."""
    activations, classes, scores, finite = _pass_function(request, method, max_channels)(
        request.images, request.target.given)
    check_finite(request, finite, pass_checks(request, method)[:2])
    return activations, classes, scores


def _combine(request, method: str, activations, weights):
    """The raw maps and maps from the channel weights, checked to be finite."""
    raw, maps, finite = _combine_function(request)(request.images, activations, weights)
    check_finite(request, finite, (pass_checks(request, method)[3],))
    return raw, maps


def _check_weights(request, values: np.ndarray, what: str) -> None:
    """Raise `NonFiniteError` when the batched evaluations ``(N, M, k)`` are not finite."""
    finite = np.isfinite(values.reshape(len(values), -1)).all(axis=1)
    if not finite.all():
        raise nonfinite_error(request.model, what, np.flatnonzero(~finite), request.images)


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


def _batched(request, batch_function, activations, classes, batch_size, progress,
             description) -> np.ndarray:
    """Run ``batch_function`` over every (image, channel) pair; float32 ``(N, M, k)``."""
    import tensorflow as tf

    n_images, channels = len(request.images), int(activations.shape[3])
    images = tf.convert_to_tensor(request.images)
    results = np.zeros((n_images, channels, request.target.k), np.float32)
    with _progress(n_images * channels, batch_size, progress, description) as bar:
        for n0, n1, k0, k1 in _rectangles(n_images, channels, batch_size):
            out = batch_function(images, activations, classes, *map(tf.constant, (n0, n1, k0, k1)))
            results[n0:n1, k0:k1] = out.numpy()
            bar.update((n1 - n0) * (k1 - k0))
    return results


def _batch_signature(request):
    import tensorflow as tf

    index = [tf.TensorSpec((), tf.int32, name=n) for n in ("n0", "n1", "k0", "k1")]
    return [
        signature(request)[0], _activation_specs(request),
        tf.TensorSpec((None, request.target.k), tf.int32, name="classes"), *index,
    ]


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


def _target_scores(values, classes, m):
    """``values (g * m, classes)`` -> ``(g, m, k)``: each pair's target columns."""
    import tensorflow as tf

    per_pair = tf.repeat(classes, m, axis=0)
    picked = tf.gather(values, per_pair, batch_dims=1)
    return tf.reshape(picked, tf.stack([-1, m, tf.shape(classes)[1]]))


# --------------------------------------------------------------------------- Score-CAM


def scorecam(model, images, target=None, layer=None, *, class_names=None, output=None,
             max_channels: int | None = None, batch_size: int = 32, progress=None):
    """Score-CAM (Wang et al. 2020): channels weighted by the score of the image they mask.

    For each channel ``k``: ``H_k = s(Up(A^k))``, the channel upsampled to the input size and
    min-max normalised to [0, 1] (``s``, 0 for a constant channel); the weight is the
    class's softmax probability on the masked image ``X * H_k``: ``w_k = softmax(f(X *
    H_k))_c`` (the paper's channel-wise increase of confidence, CIC, without subtracting a
    baseline image's score, as the authors' code and tf-keras-vis do);
    ``map = ReLU(sum_k w_k A^k)``. Masks are upsampled like the maps (bilinear, half-pixel
    centres).

    Cost: ``N * channels`` forward passes of the whole network (in batches).

    Args:
        max_channels: use only this many channels per image, those with the highest mean
            activation (None: all channels).
        batch_size: masked images per forward pass.
        progress: show a progress bar (None: only for long runs).
        (the other arguments are those of `camutils.methods.gradcam`)
    """
    import tensorflow as tf

    request = prepare(model, images, target, layer, class_names, output)
    batch_size = positive_int(batch_size, "batch_size")
    feature = request.feature
    channels = feature.activation_shape[-1]
    max_channels = positive_int(max_channels, "max_channels", none=True)
    if max_channels is not None and channels is not None:
        max_channels = min(max_channels, channels)

    activations, classes, scores = _first_pass(request, "scorecam", max_channels)

    def build():
        def graph(images, acts, classes, n0, n1, k0, k1):
            block = tf.transpose(acts[n0:n1, :, :, k0:k1], [0, 3, 1, 2])  # (g, m, h, w)
            m = tf.shape(block)[1]
            masks = tf.image.resize(_flatten_pairs(block)[..., None], tf.shape(images)[1:3],
                                    "bilinear")  # (g m, H, W, 1)
            low = tf.reduce_min(masks, axis=[1, 2, 3], keepdims=True)
            high = tf.reduce_max(masks, axis=[1, 2, 3], keepdims=True)
            masks = tf.math.divide_no_nan(masks - low, high - low)
            masks = tf.reshape(masks, tf.concat([[n1 - n0, m], tf.shape(masks)[1:]], axis=0))
            masked = _flatten_pairs(images[n0:n1, None] * tf.cast(masks, images.dtype))
            probabilities = tf.nn.softmax(feature.logits(masked))
            return _target_scores(probabilities, classes[n0:n1], m)

        return graph

    batch = compiled(request, ("scorecam-batch", request.target.k), build,
                     _batch_signature(request))
    weights = _batched(request, batch, activations, classes, batch_size, progress, "Score-CAM")
    _check_weights(request, weights, "the class probabilities of the images masked by each "
                   f"channel of layer {feature.layer!r}")
    raw, maps = _combine(request, "scorecam", activations, weights)
    return explanation(request, "scorecam", maps, raw, classes, scores)


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


def ablationcam(model, images, target=None, layer=None, *, class_names=None, output=None,
                batch_size: int = 128, progress=None):
    """Ablation-CAM (Desai and Ramaswamy 2020): channels weighted by the score they carry.

    ``w_k = (S - S_k) / |S|``, where ``S_k`` is the class's logit when channel ``k`` of the
    layer's output is set to zero (the paper's eq. divides by ``S``; dividing by ``|S|``
    gives the same map for a positive score and keeps a negative score from flipping it);
    ``map = ReLU(sum_k w_k A^k)``.

    Cost: ``N * channels`` passes of the head only: the layers after the explained one, on
    ablated activations (the layers before it do not run again).

    Args:
        batch_size: ablated activation maps per pass of the head.
        progress: show a progress bar (None: only for long runs).
        (the other arguments are those of `camutils.methods.gradcam`)
    """
    import tensorflow as tf

    request = prepare(model, images, target, layer, class_names, output)
    batch_size = positive_int(batch_size, "batch_size")
    feature = request.feature
    activations, classes, scores = _first_pass(request, "ablationcam")

    def build():
        def graph(images, acts, classes, n0, n1, k0, k1):
            # Every channel is here: give the head the layer's static sizes (the signature
            # leaves the channels open for Score-CAM's selections).
            acts = tf.ensure_shape(acts, (None, *feature.activation_shape))
            keep = 1.0 - tf.one_hot(tf.range(k0, k1), tf.shape(acts)[3], dtype=acts.dtype)
            m = k1 - k0
            inputs = tf.repeat(images[n0:n1], m, axis=0)  # pruned unless a path bypasses
            if feature.pooling is None:
                ablated = _flatten_pairs(acts[n0:n1, None] * keep[None, :, None, None, :])
                logits = feature.head(inputs, ablated)
            else:
                logits = feature.head(inputs, _ablated_pooled(feature, acts[n0:n1], keep),
                                      at=feature.pooling)
            return _target_scores(logits, classes[n0:n1], m)

        return graph

    batch = compiled(request, ("ablationcam-batch", request.target.k), build,
                     _batch_signature(request))
    ablated = _batched(request, batch, activations, classes, batch_size, progress,
                       "Ablation-CAM")
    _check_weights(request, ablated, "the logits with each channel of layer "
                   f"{feature.layer!r} set to zero")
    weights = tf.math.divide_no_nan(scores[:, None, :] - ablated, tf.abs(scores)[:, None, :])
    raw, maps = _combine(request, "ablationcam", activations, weights)
    return explanation(request, "ablationcam", maps, raw, classes, scores)
