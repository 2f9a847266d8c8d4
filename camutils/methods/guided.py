"""Guided backpropagation and Guided Grad-CAM, without touching the user's model.

Guided backpropagation (Springenberg et al. 2015) is the gradient of the class's logit with
respect to the input pixels, where every ReLU passes a gradient back only where both its
input and the incoming gradient are positive.

How the ReLUs are changed without changing the model: the model runs inside a
``tf.function`` under ``gradient_override_map``, which tags the ``Relu`` and ``Relu6``
operations of that graph only, and the input gradient is taken with ``tf.gradients`` (which
honours the tags; ``tf.GradientTape`` does not). No layer, activation or weight is modified,
and nothing outside that one compiled function sees the change.

Which activations are "ReLU-like": those TensorFlow computes with a ``Relu`` op (Keras
``"relu"``, ``layers.ReLU()``) or a ``Relu6`` op (``"relu6"``, ``layers.ReLU(6.0)`` as in
EfficientNet-Lite0 and MobileNet). For ReLU6 the guided gradient passes where ``0 < x < 6``
and the incoming gradient is positive. Other activations (leaky ReLU, ELU, GELU, swish) keep
their ordinary gradients, so on networks built from them the result is closer to a plain
input gradient.

Channels: the gradient has the input's colour channels; a map takes, per pixel, the largest
absolute value over channels (as saliency maps do). The per-channel gradients are kept in
``Explanation.extras["gradients"]`` for RGB displays.
"""

from __future__ import annotations

from .gradient import gradcam_weights
from .pipeline import (
    check_finite, choose_classes, compiled, explanation, finish, finite_flags,
    forward_with_gradients, normalise, pass_checks, prepare, signature, weighted_sum,
)

__all__ = ["guided_backprop", "guided_gradcam"]

_GUIDED_RELU = "CamutilsGuidedRelu"
_GUIDED_RELU6 = "CamutilsGuidedRelu6"
_registered = False


def _register_gradients() -> None:
    """Register the guided gradients of Relu and Relu6 with TensorFlow (once)."""
    global _registered
    if _registered:
        return
    import tensorflow as tf

    def guided_relu(op, grad):
        keep = (op.inputs[0] > 0) & (grad > 0)
        return tf.where(keep, grad, tf.zeros_like(grad))

    def guided_relu6(op, grad):
        x = op.inputs[0]
        keep = (x > 0) & (x < 6) & (grad > 0)
        return tf.where(keep, grad, tf.zeros_like(grad))

    for name, function in ((_GUIDED_RELU, guided_relu), (_GUIDED_RELU6, guided_relu6)):
        try:
            tf.RegisterGradient(name)(function)
        except KeyError:  # already registered (module reloaded)
            pass
    _registered = True


def _guided_input_gradients(feature, images, classes):
    """``(N, k, H, W, C)`` guided gradients of each target's logit w.r.t. the images."""
    import tensorflow as tf

    graph = tf.compat.v1.get_default_graph()
    with graph.gradient_override_map({"Relu": _GUIDED_RELU, "Relu6": _GUIDED_RELU6}):
        logits = feature.logits(images)
    scores = tf.gather(logits, classes, batch_dims=1)
    k = classes.shape[1]
    grads = [
        tf.gradients(tf.reduce_sum(scores[:, j]), images,
                     unconnected_gradients=tf.UnconnectedGradients.ZERO)[0]
        for j in range(k)
    ]
    return tf.cast(tf.stack(grads, axis=1), tf.float32), logits


def _guided_checks(request, method: str) -> tuple[str, str]:
    """What `finite_flags` of ``(guided logits, guided gradients)`` checks."""
    return (pass_checks(request, method)[1],
            "the guided gradients of the class scores with respect to the input pixels")


def _reduce_channels(gradients):
    """Per pixel, the largest absolute value over the colour channels."""
    import tensorflow as tf

    return tf.reduce_max(tf.abs(gradients), axis=-1)


def guided_backprop(model, images, target=None, layer=None, *, class_names=None,
                    output=None):
    """Guided backpropagation (Springenberg et al. 2015), at the input's resolution.

    ``layer`` plays no part (the map is over input pixels; `Explanation.layer` is
    ``"input"``); it is accepted so that every method has the same signature. Maps and raw
    maps are ``(N, H, W)``; the gradients per colour channel are in ``extras["gradients"]``.
    See the module docstring for how ReLU and ReLU6 are handled.
    """
    import tensorflow as tf

    _register_gradients()
    request = prepare(model, images, target, None, class_names, output)
    feature, target_ = request.feature, request.target

    def build():
        def graph(images, given):
            # The classes come from an ordinary forward pass (same values as the guided one).
            plain = feature.logits(images)
            classes = choose_classes(plain, given, target_.mode, target_.k)
            grads, logits = _guided_input_gradients(feature, images, classes)
            scores = tf.gather(logits, classes, batch_dims=1)
            raw = _reduce_channels(grads)
            finite = finite_flags(plain, logits, grads)
            return normalise(raw), raw, classes, scores, grads, finite

        return graph

    function = compiled(request, ("guided_backprop", target_.mode, target_.k), build,
                        signature(request))
    maps, raw, classes, scores, grads, finite = function(request.images, target_.given)
    checks = _guided_checks(request, "guided_backprop")
    check_finite(request, finite, (checks[0], *checks))
    return explanation(request, "guided_backprop", maps, raw, classes, scores, layer="input",
                       extras={"gradients": grads})


def guided_gradcam(model, images, target=None, layer=None, *, class_names=None,
                   output=None):
    """Guided Grad-CAM (Selvaraju et al. 2017, sec. 3): guided backpropagation times Grad-CAM.

    The guided input gradients ``(N, H, W, C)`` are multiplied by the upsampled raw Grad-CAM
    map of ``layer``; the map takes the largest absolute value over colour channels. Maps and
    raw maps are ``(N, H, W)``; the per-channel products are in ``extras["gradients"]``. The
    Grad-CAM part uses ordinary gradients (a separate pass), the guided part the guided ones.
    """
    import tensorflow as tf

    _register_gradients()
    request = prepare(model, images, target, layer, class_names, output)
    feature, target_ = request.feature, request.target

    def build():
        def graph(images, given):
            p = forward_with_gradients(feature, images, given, target_.mode, target_.k, True)
            cam_raw = weighted_sum(p.activations, gradcam_weights(p))
            cam_finite = finite_flags(p.activations, p.logits, p.gradients, cam_raw)
            cam_raw, _ = finish(cam_raw, tf.shape(images)[1:3])
            size = tf.shape(images)[1:3]
            shape = tf.shape(cam_raw)
            flat = tf.reshape(cam_raw, tf.concat([[-1], shape[2:4], [1]], axis=0))
            upsampled = tf.image.resize(flat, size, method="bilinear")
            upsampled = tf.reshape(upsampled, tf.concat([shape[:2], size], axis=0))
            grads, guided_logits = _guided_input_gradients(feature, images, p.classes)
            product = grads * upsampled[..., None]
            raw = _reduce_channels(product)
            finite = tf.concat([cam_finite, finite_flags(guided_logits, grads, product)], axis=1)
            return normalise(raw), raw, p.classes, p.scores, product, finite

        return graph

    function = compiled(request, ("guided_gradcam", target_.mode, target_.k), build,
                        signature(request))
    maps, raw, classes, scores, product, finite = function(request.images, target_.given)
    check_finite(request, finite, (*pass_checks(request, "Grad-CAM"),
                                   *_guided_checks(request, "guided_gradcam"),
                                   "the values of the guided_gradcam map"))
    return explanation(request, "guided_gradcam", maps, raw, classes, scores,
                       extras={"gradients": product})
