"""The gradient family: Grad-CAM, Grad-CAM++, XGrad-CAM, HiResCAM and LayerCAM: their rules
and options (their rows are in `camutils.methods.registry`).

Every rule here reads the same "layer gradient" pass (`camutils.methods.passes`): one compiled
function per model, layer and target gives the activations, their gradients and the scores,
and each rule is a few lines of TensorFlow on them, run after it.

Notation (all per image and per target class c): ``A`` is the layer's output, ``A^k_ij`` its
channel ``k`` at position ``(i, j)``, ``Z = h * w`` the number of positions, ``S`` the class's
logit and ``g^k_ij = dS / dA^k_ij``. Every map is ``ReLU(sum_k w_k A^k)`` (or a per-position
version of it) before upsampling and normalisation (see `camutils.methods.pipeline`).
"""

from __future__ import annotations

from .options import Option, flag, one_of
from .passes import Pass

__all__ = ["gradcam_weights", "gradcam_plus_plus_weights", "xgradcam_weights", "hirescam_map",
           "layercam_map", "ALPHA_NORMALISATIONS", "COUNTERFACTUAL", "ALPHA_NORMALISATION"]

_SPATIAL = [2, 3]  # the (h, w) axes of gradients (N, k, h, w, C)


def _tf():
    import tensorflow as tf

    return tf


# --------------------------------------------------------------------------- weight rules


def gradcam_weights(p: Pass, counterfactual: bool = False):
    """Selvaraju et al. 2017, eq. 1: ``w_k = 1/Z sum_ij g^k_ij``.

    Counterfactual maps (sec. "Counterfactual Explanations") negate the gradient:
    ``w_k = 1/Z sum_ij -g^k_ij``, the regions whose evidence lowers the class.
    """
    grads = -p.gradients if counterfactual else p.gradients
    return _tf().reduce_mean(grads, axis=_SPATIAL)


#: How Grad-CAM++'s coefficients ``alpha^k_ij`` are normalised over the positions of each
#: channel. The paper leaves it open; its implementations differ, and the maps with them.
ALPHA_NORMALISATIONS = {
    "positive": "divided by their sum over the positions where the gradient is positive "
                "(the authors' released code, since May 2018; the default)",
    "all": "divided by their sum over all positions (tf-keras-vis, and the authors' first "
           "release)",
    "none": "not normalised (pytorch-grad-cam)",
}

#: Grad-CAM's option.
COUNTERFACTUAL = Option("counterfactual", False, flag,
                        "explain what speaks against the class (negated gradients)")
#: Grad-CAM++'s option (checked here, once: the rule trusts it).
ALPHA_NORMALISATION = Option(
    "alpha_normalisation", "positive", one_of(ALPHA_NORMALISATIONS),
    "how the coefficients are normalised over each channel's positions: 'positive' (the "
    "authors' released code, the default), 'all' (tf-keras-vis) or 'none' "
    "(pytorch-grad-cam); on a global-average-pooling -> Dense head the three give the same "
    "normalised map")


def gradcam_plus_plus_weights(p: Pass, alpha_normalisation: str = "positive"):
    """Chattopadhyay et al. 2018, eqs. 19 and 10, with exponential scores ``Y = exp(S)``:

        alpha^k_ij = g^2 / (2 g^2 + sum_ab A^k_ab g^3)     (with g = g^k_ij)
        w_k = sum_ij alpha^k_ij ReLU(g^k_ij)

    ``alpha`` is 0 where ``g^2`` or the denominator is 0. Its normalisation over the
    positions of each channel (`ALPHA_NORMALISATIONS`):

    * ``"positive"`` (default): ``alpha / sum_{ij: g^k_ij > 0} alpha^k_ij``, as in the authors'
      released code (``alphas_thresholding``): only the positions that enter the weight
      enter its normaliser, so ``w_k`` is an alpha-weighted mean of the positive gradients.
      Where ``A >= 0`` every such ``alpha`` is positive: the normaliser cannot cancel.
    * ``"all"``: ``alpha / sum_ij alpha^k_ij``, as in tf-keras-vis (and the authors' first
      release). Negative-gradient positions contribute nothing to ``w_k`` but enter the
      normaliser, where their ``alpha = 1 / (2 + g sum A)`` can be large, of either sign.
    * ``"none"``: ``alpha`` as it is, as in pytorch-grad-cam.

    A normaliser of exactly 0 leaves ``alpha`` unchanged (as the authors' code does). The
    paper's ``dY/dA = exp(S) g`` carries one positive factor ``exp(S)`` per image and class;
    it is left out (it would overflow for logits above ~88 and does not change the
    normalised map), so raw maps are ``exp(S)`` times smaller than tf-keras-vis's.
    """
    tf = _tf()
    g = p.gradients
    a = p.activations[:, None]  # (N, 1, h, w, C)
    g2 = g * g
    g3 = g2 * g
    total = tf.reduce_sum(a, axis=_SPATIAL, keepdims=True)
    denominator = 2.0 * g2 + total * g3
    safe = tf.where(denominator != 0.0, denominator, tf.ones_like(denominator))
    alpha = tf.where((g2 != 0.0) & (denominator != 0.0), g2 / safe, tf.zeros_like(g2))
    if alpha_normalisation != "none":
        counted = alpha if alpha_normalisation == "all" else tf.where(g > 0.0, alpha,
                                                                       tf.zeros_like(alpha))
        alpha_sum = tf.reduce_sum(counted, axis=_SPATIAL, keepdims=True)
        alpha = alpha / tf.where(alpha_sum != 0.0, alpha_sum, tf.ones_like(alpha_sum))
    return tf.reduce_sum(alpha * tf.nn.relu(g), axis=_SPATIAL)


def xgradcam_weights(p: Pass):
    """Fu et al. 2020 (XGrad-CAM), the axiom-derived weights:
    ``w_k = sum_ij (A^k_ij / sum_ab A^k_ab) g^k_ij`` (0 for a channel whose sum is 0)."""
    tf = _tf()
    a = p.activations[:, None]
    total = tf.reduce_sum(a, axis=_SPATIAL, keepdims=True)
    return tf.reduce_sum(tf.math.divide_no_nan(a, total) * p.gradients, axis=_SPATIAL)


def hirescam_map(p: Pass):
    """Draelos and Carin 2020 (HiResCAM): ``M_ij = sum_k g^k_ij A^k_ij``, the gradient
    multiplied element-wise by the activations instead of averaged first."""
    return _tf().reduce_sum(p.gradients * p.activations[:, None], axis=-1)


def layercam_map(p: Pass):
    """Jiang et al. 2021 (LayerCAM): ``M_ij = sum_k ReLU(g^k_ij) A^k_ij``, a weight per
    position from the positive gradients only."""
    tf = _tf()
    return tf.reduce_sum(tf.nn.relu(p.gradients) * p.activations[:, None], axis=-1)
