"""Guided backpropagation and Guided Grad-CAM: their rules (their rows are in
`camutils.methods.registry`), on the "input gradient" pass, without touching the user's model.

Guided backpropagation (Springenberg et al. 2015) is the gradient of the class's logit with
respect to the input pixels, where every ReLU passes a gradient back only where both its
input and the incoming gradient are positive.

How the ReLUs are changed without changing the model: the pass (`camutils.methods.passes`)
runs the model once, inside its ``tf.function``, under ``gradient_override_map``
(`camutils.methods.passes.guided_relus`), which tags the ``Relu`` and ``Relu6`` operations
of that graph only; the input gradient is taken with ``tf.gradients``, which honours the
tags, and the gradients at the layer with ``tf.GradientTape``, which does not (it looks an
op's gradient up by the op's type): one forward pass gives both. No layer, activation or
weight is modified, and nothing outside that one compiled function sees the change. For
ReLU6 the guided gradient passes where ``0 < x < 6`` and the incoming gradient is positive.
Other activations (leaky ReLU, ELU, GELU, swish) keep their ordinary gradients, so on
networks built from them the result is closer to a plain input gradient.

Channels: each rule gives the values per pixel and colour channel; the map takes, per pixel,
the largest absolute value over channels (as saliency maps do), and the per-channel values
are kept in ``Explanation.extras["gradients"]`` for RGB displays.
"""

from __future__ import annotations

from .gradient import gradcam_weights
from .passes import Pass
from .pipeline import rectify, upsample, weighted_sum

__all__ = ["guided_backprop_gradients", "guided_gradcam_gradients"]


def guided_backprop_gradients(p: Pass):
    """Springenberg et al. 2015, sec. 3.4: ``dS/dX`` with every ReLU's gradient guided,
    ``R_l = (f_l > 0) (R_{l+1} > 0) R_{l+1}``; per pixel and colour channel
    ``(N, k, H, W, C)``."""
    return p.input_gradients


def guided_gradcam_gradients(p: Pass):
    """Selvaraju et al. 2017, sec. 3 ("Guided Grad-CAM"): the guided input gradients times
    the Grad-CAM map upsampled to the input's size, ``dS/dX (guided) * Up(ReLU(sum_k w_k
    A^k))`` with Grad-CAM's weights ``w_k = 1/Z sum_ij dS/dA^k_ij`` (ordinary gradients)."""
    import tensorflow as tf

    cam = rectify(weighted_sum(p.activations, gradcam_weights(p)))
    return p.input_gradients * upsample(cam, tf.shape(p.input_gradients)[2:4])[..., None]
