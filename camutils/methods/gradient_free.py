"""The two gradient-free one-pass methods, CAM and Eigen-CAM: their rules (their rows are in
`camutils.methods.registry`). Both read the "forward" pass (`camutils.methods.passes`)."""

from __future__ import annotations

from .passes import Pass

__all__ = ["cam_weights", "eigencam_map", "cam_applies", "cam_target"]


def cam_weights(p: Pass):
    """Zhou et al. 2016, sec. 2: ``M_c(x, y) = sum_k w^c_k f_k(x, y)``.

    ``w^c_k`` is the weight from channel ``k`` of the pooled features to class ``c``: column
    ``c`` of the kernel of the Dense layer after the global pooling (its bias is left out, as
    in the paper). Since ``S_c = sum_k w^c_k GAP(f_k) + b_c``, the map is the class score
    before pooling, position by position. A target that is a linear combination of the
    logits (`camutils.targets.Target.linear_terms`: a contrast ``S_a - S_b``, a regression
    unit times its sign) has the same combination of the columns as its weights.
    """
    import tensorflow as tf

    kernel = tf.cast(p.feature.dense_layer().kernel, tf.float32)  # (C, classes)
    weights = None
    for classes, coefficients in p.target.linear_terms(p.state):
        # Only the target columns are gathered (transposing the whole kernel first would
        # copy all of it on every call: 5 MB for an ImageNet head).
        columns = tf.gather(kernel, tf.maximum(classes, 0), axis=1)  # (C, N, k)
        term = tf.transpose(columns, [1, 2, 0]) * coefficients[..., None]
        weights = term if weights is None else weights + term
    return weights  # (N, k, C)


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


def cam_applies(feature) -> None:
    """Raise a ValueError that suggests Grad-CAM where CAM is not defined: unless the layer
    reaches the logits through global pooling and one Dense layer (checked before any pass
    runs)."""
    feature.cam_head()


def cam_target(target) -> None:
    """Raise a ValueError where the target is not a linear function of the logits (a
    probability, a region, a detection, a similarity, a function): the CAM identity
    ``S = mean(M) + b`` holds only for those (checked before any pass runs)."""
    if not target.linear:
        raise ValueError(
            f"CAM cannot explain the target {target.describe()}: CAM's map is the Dense "
            "layer's weights applied to the feature maps, so it explains a score that is a "
            "linear function of the logits (a class's logit, a label, a contrast between "
            "classes, a regression unit), and this one is not.")
