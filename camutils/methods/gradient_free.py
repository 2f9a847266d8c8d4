"""The two gradient-free single-pass methods: CAM and Eigen-CAM."""

from __future__ import annotations

from .pipeline import Pass, Rule, prepare, run_rule

__all__ = ["cam", "eigencam"]


def cam_weights(p: Pass):
    """Zhou et al. 2016, sec. 2: ``M_c(x, y) = sum_k w^c_k f_k(x, y)``.

    ``w^c_k`` is the weight from channel ``k`` of the pooled features to class ``c``: column
    ``c`` of the kernel of the Dense layer after the global pooling (its bias is left out, as
    in the paper). Since ``S_c = sum_k w^c_k GAP(f_k) + b_c``, the map is the class score
    before pooling, position by position.
    """
    import tensorflow as tf

    kernel = tf.cast(p.feature.dense_layer().kernel, tf.float32)  # (C, classes)
    # Only the target columns are gathered (transposing the whole kernel first would copy
    # all of it on every call: 5 MB for an ImageNet head).
    return tf.transpose(tf.gather(kernel, p.classes, axis=1), [1, 2, 0])  # (N, k, C)


def eigencam_map(p: Pass):
    """Muhammad and Yeasin 2020 (Eigen-CAM): ``M = A V_1``, the projection of the
    activations (reshaped to ``(h w) x C``) on their first right singular vector.

    Class-agnostic: every target of an image gets the same map. The activations are not
    centred (as in the paper). The sign of a singular vector is arbitrary; it is chosen so
    that the projection sums to a non-negative value (for non-negative activations this is
    the Perron vector, whose projection is non-negative everywhere).
    """
    import tensorflow as tf

    a = p.activations
    shape = tf.shape(a)
    flat = tf.reshape(a, tf.stack([shape[0], shape[1] * shape[2], shape[3]]))
    singular, left, _ = tf.linalg.svd(flat, full_matrices=False)
    projection = left[:, :, 0] * singular[:, :1]  # (N, hw) = A v_1
    sign = tf.where(tf.reduce_sum(projection, axis=1, keepdims=True) < 0.0, -1.0, 1.0)
    projection = tf.reshape(projection * sign, shape[:3])
    k = tf.shape(p.classes)[1]
    return tf.tile(projection[:, None], tf.stack([1, k, 1, 1]))


def cam(model, images, target=None, layer=None, *, class_names=None, output=None):
    """CAM (Zhou et al. 2016): the class's Dense weights applied to the feature maps.

    Needs a network whose ``layer`` reaches the logits through global average (or global
    max) pooling and one Dense layer (Dropout-like layers may sit between); anything else
    raises a ValueError that suggests Grad-CAM. See `cam_weights` for the equation; the
    arguments are those of `camutils.methods.gradcam`.
    """
    request = prepare(model, images, target, layer, class_names, output)
    request.feature.cam_head()  # a clear error before anything is traced
    return run_rule(request, Rule("cam", cam_weights, gradients=False))


def eigencam(model, images, target=None, layer=None, *, class_names=None, output=None):
    """Eigen-CAM (Muhammad and Yeasin 2020): the first principal direction of the features.

    Class-agnostic (the target only sets `Explanation.class_index` and ``score``). See
    `eigencam_map`; the arguments are those of `camutils.methods.gradcam`.
    """
    request = prepare(model, images, target, layer, class_names, output)
    return run_rule(request, Rule("eigencam", eigencam_map, kind="map", gradients=False))
