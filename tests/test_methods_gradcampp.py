"""Grad-CAM++'s three conventions for normalising its coefficients, each against a hand
computation: the authors' released code ("positive", the default), tf-keras-vis ("all") and
pytorch-grad-cam ("none").

    alpha_ij = g_ij^2 / (2 g_ij^2 + sum_ab A_ab g_ij^3),   w = sum_ij alpha_ij ReLU(g_ij)

"positive" divides alpha by its sum over the positions where g > 0, "all" by its sum over
all positions, "none" not at all.
"""

import numpy as np
import pytest

import _models as M

from camutils import methods as cm
from camutils.methods.gradient import ALPHA_NORMALISATIONS, gradcam_plus_plus_weights
from camutils.methods.passes import Pass

CONVENTIONS = ["positive", "all", "none"]


def _pass(activations, gradients):
    """A Pass for one image, one target and one channel: A (h, w), g (h, w)."""
    a = np.asarray(activations, np.float32)[None, :, :, None]            # (1, h, w, 1)
    g = np.asarray(gradients, np.float32)[None, None, :, :, None]        # (1, 1, h, w, 1)
    return Pass(activations=a, logits=None, classes=None, scores=None, feature=None,
                gradients=g)


# One channel on a 2 x 2 grid, worked out on paper. sum A = 1 + 2 + 3 + 0 = 6.
#   position  A    g      g^2     2 g^2 + 6 g^3          alpha = g^2 / (...)
#   (0, 0)    1    0.5    0.25    0.5 + 0.75   = 1.25     0.2
#   (0, 1)    2   -0.25   0.0625  0.125 - 0.09375 = 0.03125   2.0
#   (1, 0)    3    0.25   0.0625  0.125 + 0.09375 = 0.21875   0.2857142857 (= 2/7)
#   (1, 1)    0    0      0       0                      0 (no gradient)
# ReLU(g) = 0.5, 0, 0.25, 0, so sum alpha ReLU(g) = 0.2 * 0.5 + (2/7) * 0.25 = 0.1 + 1/14.
A = [[1.0, 2.0], [3.0, 0.0]]
G = [[0.5, -0.25], [0.25, 0.0]]
UNNORMALISED = 0.1 + 1 / 14
BY_HAND = {
    "none": UNNORMALISED,
    # over g > 0: (0, 0) and (1, 0), sum 0.2 + 2/7
    "positive": UNNORMALISED / (0.2 + 2 / 7),
    # over all positions: 0.2 + 2 + 2/7 + 0; the negative-gradient position dominates it
    "all": UNNORMALISED / (0.2 + 2.0 + 2 / 7),
}


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_matches_the_worked_example(convention):
    weight = float(np.asarray(gradcam_plus_plus_weights(_pass(A, G), convention))[0, 0, 0])
    # float32 arithmetic on numbers of order 1: agreement to 1e-6 relative
    assert weight == pytest.approx(BY_HAND[convention], rel=1e-6)


def test_the_worked_example_tells_the_conventions_apart():
    values = sorted(BY_HAND.values())
    assert values[1] > 1.5 * values[0] and values[2] > 1.5 * values[1]


def test_positive_normaliser_ignores_negative_gradients_and_cannot_cancel():
    # Where g < 0 and 2 + g sum(A) is near 0, alpha = 1 / (2 + g sum A) explodes and the
    # "all" normaliser with it; the weight under "positive" does not see that position.
    g_near_pole = [[0.5, -2 / 6 + 1e-4], [0.25, 0.0]]
    positive = float(np.asarray(gradcam_plus_plus_weights(_pass(A, g_near_pole), "positive")).ravel()[0])
    assert positive == pytest.approx(BY_HAND["positive"], rel=1e-5)
    every = float(np.asarray(gradcam_plus_plus_weights(_pass(A, g_near_pole), "all")).ravel()[0])
    assert abs(every) < 0.01 * positive


def test_unknown_convention_lists_the_three():
    with pytest.raises(ValueError, match="positive.*all.*none"):
        cm.gradcam_plus_plus(M.gap_model(), M.images(1), alpha_normalisation="authors")
    assert set(ALPHA_NORMALISATIONS) == set(CONVENTIONS)


@pytest.fixture(scope="module")
def flatten_model():
    # A Flatten head: the gradient varies over positions, so the conventions differ.
    return M.gap_model(channels=(4, 6), head="flatten", first_stride=1, seed=11)


@pytest.fixture(scope="module")
def x():
    return M.images(3, seed=4)


def _activations_and_gradients(model, x, classes, layer="conv2"):
    import keras
    import tensorflow as tf

    feature = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        a, logits = feature(x, training=False)
        score = tf.gather(logits, classes, batch_dims=1)
    return a.numpy().astype(np.float64), tape.gradient(score, a).numpy().astype(np.float64)


def _by_hand(a, g, convention):
    """Grad-CAM++ raw maps with explicit loops over images and channels (float64)."""
    n, h, w, channels = a.shape
    maps = np.zeros((n, h, w))
    for i in range(n):
        for k in range(channels):
            ak, gk = a[i, :, :, k], g[i, :, :, k]
            denominator = 2 * gk ** 2 + ak.sum() * gk ** 3
            alpha = np.zeros_like(gk)
            ok = (gk != 0) & (denominator != 0)
            alpha[ok] = gk[ok] ** 2 / denominator[ok]
            if convention == "positive":
                total = alpha[gk > 0].sum()
            elif convention == "all":
                total = alpha.sum()
            else:
                total = 1.0
            alpha = alpha / (total if total != 0 else 1.0)
            maps[i] += (alpha * np.maximum(gk, 0)).sum() * ak
    return np.maximum(maps, 0)


@pytest.mark.parametrize("convention", CONVENTIONS)
def test_each_convention_matches_a_hand_computation_on_a_flatten_head(flatten_model, x, convention):
    classes = [0, 3, 4]
    a, g = _activations_and_gradients(flatten_model, x, classes)
    expected = _by_hand(a, g, convention)
    ours = cm.gradcam_plus_plus(flatten_model, x, classes, "conv2", alpha_normalisation=convention)
    assert expected.max() > 0
    # float32 in the library against float64 here: 1e-4 of each map's maximum (measured:
    # 3e-7). "all" divides by a sum that nearly cancels (on this model sum |alpha| is up to
    # 170 times |sum alpha|), of terms 1 / (2 + g sum A) that are themselves near a pole,
    # which amplifies float32 rounding: 1e-3 of the maximum (measured: 7e-4).
    scale = expected.max(axis=(1, 2), keepdims=True)
    allowed = 1e-4 if convention != "all" else 1e-3
    assert np.all(np.abs(ours.raw - expected) <= allowed * scale)


def test_the_conventions_give_different_maps_on_a_flatten_head(flatten_model, x):
    maps = {c: cm.gradcam_plus_plus(flatten_model, x, [0, 3, 4], "conv2", alpha_normalisation=c).maps
            for c in CONVENTIONS}
    for first, second in [("positive", "all"), ("positive", "none"), ("all", "none")]:
        assert np.abs(maps[first] - maps[second]).max() > 0.05, (first, second)


def test_the_default_is_the_authors_convention(flatten_model, x):
    default = cm.gradcam_plus_plus(flatten_model, x, [0, 3, 4], "conv2")
    positive = cm.gradcam_plus_plus(flatten_model, x, [0, 3, 4], "conv2", alpha_normalisation="positive")
    np.testing.assert_array_equal(default.raw, positive.raw)
    via_explain = cm.explain(flatten_model, x, "Grad-CAM++", [0, 3, 4], "conv2", alpha_normalisation="none")
    none = cm.gradcam_plus_plus(flatten_model, x, [0, 3, 4], "conv2", alpha_normalisation="none")
    np.testing.assert_array_equal(via_explain.raw, none.raw)


def test_on_a_gap_head_the_conventions_agree_once_normalised(x):
    # The gradient is w / Z at every position: for w > 0 every position counts under both
    # "positive" and "all" (the same sum); for w < 0 ReLU(g) = 0 and the weight is 0 either
    # way. "none" keeps alpha = 1 / (2 + g sum A), a per-channel factor: maps differ.
    model = M.gap_model(seed=3)
    positive = cm.gradcam_plus_plus(model, x, alpha_normalisation="positive")
    every = cm.gradcam_plus_plus(model, x, alpha_normalisation="all")
    np.testing.assert_allclose(positive.raw, every.raw, rtol=1e-5, atol=1e-6 * positive.raw.max())
