"""The attention family: attention rollout and its gradient-weighted form, the transformer's
own baselines beside the CAM family (their rows are in `camutils.methods.registry`).

Both read an attention pass (`camutils.methods.passes`): the model run once with every
self-attention layer returning its probabilities ``A_l`` ``(N, heads, T, T)``, layer ``l = 1
... L`` in call order (`camutils.methods.attention`), and for the gradient-weighted form
the gradients ``dS/dA_l`` of the target's score. They follow how information flows from
token to token through the layers, residual connections included, into a matrix ``R``
``(T, T)``; row ``q`` of ``R`` says how much of token ``q``'s last representation comes from
each input token. The map is the class token's row (the first prefix token; without prefix
tokens, the mean of every token's row, which a pooling head reads) over the grid tokens,
reshaped to the token grid. Neither method has a layer: `Explanation.layer` is
``"attention"``.

Notation: ``I`` the identity ``(T, T)``, ``E_h`` the mean over heads, ``(.)^+`` the positive
part, ``⊙`` the element-wise product.
"""

from __future__ import annotations

from .attention import attention_layers
from .options import Option, one_of
from .passes import Pass

__all__ = ["rollout_map", "gradient_rollout_map", "HEAD_FUSIONS", "HEAD_FUSION",
           "rollout_applies"]

#: How attention rollout fuses the heads of a layer.
HEAD_FUSIONS = {
    "mean": "their mean (the paper's)",
    "max": "their maximum per entry (sharper maps, as in some implementations)",
    "min": "their minimum per entry",
}
#: Attention rollout's option.
HEAD_FUSION = Option("head_fusion", "mean", one_of(HEAD_FUSIONS),
                     "how the heads of a layer are fused: 'mean' (the paper's), 'max' or 'min'")


def _tf():
    import tensorflow as tf

    return tf


def _grid_map(p: Pass, flow):
    """``flow`` ``(N, k, T, T)`` -> the map ``(N, k, h, w)``: the class token's row over the
    grid tokens (without prefix tokens, the mean of the rows)."""
    tf = _tf()
    grid = attention_layers(p.feature).grid
    rows = flow[:, :, 0] if grid.prefix else tf.reduce_mean(flow, axis=2)  # (N, k, T)
    return tf.reshape(rows[..., grid.prefix:], [-1, tf.shape(flow)[1], grid.height, grid.width])


def rollout_map(p: Pass, head_fusion: str = "mean"):
    """Abnar and Zuidema 2020, sec. 3 (attention rollout), with the residual connections
    accounted for as in their eq. for the raw attention ``A = 0.5 W_att + 0.5 I``:

        Ã_l = 0.5 E_h(A_l) + 0.5 I          (rows re-normalised to sum to 1)
        R = Ã_L Ã_{L-1} ... Ã_1

    Class-agnostic: every target of an image gets the same map (the target only sets
    `Explanation.class_index` and ``score``). ``head_fusion`` replaces ``E_h`` by the
    maximum or minimum over heads.
    """
    tf = _tf()
    fuse = {"mean": tf.reduce_mean, "max": tf.reduce_max, "min": tf.reduce_min}[head_fusion]
    flow, half_identity = None, None
    for attention in p.attentions:
        fused = fuse(attention, axis=1)  # (N, T, T)
        if half_identity is None:
            half_identity = 0.5 * tf.eye(tf.shape(fused)[-1], dtype=fused.dtype)
        mixed = 0.5 * fused + half_identity
        if head_fusion != "mean":  # the mean of probability rows sums to 1 already
            mixed = mixed / tf.reduce_sum(mixed, axis=-1, keepdims=True)
        flow = mixed if flow is None else tf.linalg.matmul(mixed, flow)
    k = tf.shape(p.classes)[1]
    return _grid_map(p, tf.tile(flow[:, None], tf.stack([1, k, 1, 1])))


def gradient_rollout_map(p: Pass):
    """Chefer, Gur and Wolf 2021 ("Generic Attention-model Explainability", eqs. 5 and 6):
    each layer's attention weighted by its gradient, the positive part averaged over heads,
    and accumulated with the residual connection's identity:

        Ā_l = E_h((dS/dA_l ⊙ A_l)^+)
        R_0 = I,   R_l = R_{l-1} + Ā_l R_{l-1}

    One map per target: the gradients are those of each target's score.
    """
    tf = _tf()
    flow = None
    for attention, gradient in zip(p.attentions, p.attention_gradients):
        weighted = tf.reduce_mean(tf.nn.relu(gradient * attention[:, None]), axis=2)  # (N,k,T,T)
        if flow is None:
            flow = tf.eye(tf.shape(weighted)[-1], batch_shape=tf.shape(weighted)[:2],
                          dtype=weighted.dtype)
        flow = flow + tf.linalg.matmul(weighted, flow)
    return _grid_map(p, flow)


def rollout_applies(feature) -> None:
    """Raise a ValueError that says what was found and what would work where the model has
    no self-attention layers to roll out (checked before any pass runs)."""
    attention_layers(feature)
