"""Token grids and attention rollout (issue 23) on small transformers built here (not the
course's): Grad-CAM on the token grid by hand with tf.GradientTape (prefix tokens dropped,
reshaped to the grid) against camutils with no options, and with explicit options on a
model with two prefix tokens; rollout and gradient-weighted rollout against numpy from the
attention matrices of MultiHeadAttention(..., return_attention_scores=True); CAM on a
pooling head over tokens; how grids are inferred; the bad inputs' one-line errors."""

import numpy as np
import pytest

import _models as M

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

import camutils  # noqa: E402
from camutils.methods.tokens import TokenOptions, fitting_grids, infer_grid  # noqa: E402

GRID = (4, 4)   # 16 x 16 images, 4 x 4 patches


@pytest.fixture(scope="module")
def vit():
    return M.tiny_vit(prefix=1, seed=4)


@pytest.fixture(scope="module")
def images():
    return M.images(3, seed=8)


def _hand_gradcam(model, layer, images, prefix, grid):
    """Grad-CAM at a token layer by hand: the tokens and the top logit's gradient, the
    prefix dropped, the rest reshaped to the grid, then Selvaraju et al.'s eq. 1."""
    probe = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        tokens, logits = probe(images)
        top = tf.argmax(logits, axis=1)
        score = tf.reduce_sum(tf.gather(logits, top, batch_dims=1))
    gradients = tape.gradient(score, tokens).numpy()
    shape = (len(images), *grid, tokens.shape[-1])
    activations = tokens.numpy()[:, prefix:].reshape(shape)
    gradients = gradients[:, prefix:].reshape(shape)
    weights = gradients.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0), top.numpy()


def test_gradcam_on_the_token_grid_matches_the_hand_computation_with_no_options(vit, images):
    """No layer, no grid: camutils picks the last block's attention input (its patch
    tokens are the last ones that reach the class token) and finds 1 prefix token and a
    4 x 4 grid from the patch embedding."""
    e = camutils.explain(vit, images)
    assert e.layer == "block2_norm1"
    expected, top = _hand_gradcam(vit, "block2_norm1", images, 1, GRID)
    assert e.raw.shape == (3, *GRID) and expected.max() > 0
    np.testing.assert_array_equal(e.class_index, top)
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6 * expected.max())
    # after the last attention, the patch tokens reach the logits by no path: all zero
    assert not camutils.explain(vit, images, layer="block2_out").maps.any()


def test_gradcam_with_explicit_options_on_two_prefix_tokens(images):
    model = M.tiny_vit(prefix=2, seed=5, name="two_prefix_vit")
    e = camutils.explain(model, images, "gradcam", layer="block1_out", grid=GRID,
                         prefix_tokens=2)
    expected, _ = _hand_gradcam(model, "block1_out", images, 2, GRID)
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6 * expected.max())
    # the same grid is found from the model, and the options are checked against it
    np.testing.assert_allclose(camutils.explain(model, images, layer="block1_out").raw, e.raw,
                               rtol=1e-6)
    with pytest.raises(ValueError, match=r"has 18 tokens, but grid=\(4, 4\) and "
                                         r"prefix_tokens=1 needs 1 \+ 4 x 4 = 17"):
        camutils.explain(model, images, layer="block1_out", grid=GRID, prefix_tokens=1)


def _attention_by_hand(model, images, depth=2):
    """Each block's attention probabilities, by calling its MultiHeadAttention layer with
    return_attention_scores=True on its input, and the gradients of the top logit with
    respect to them: the model's forward pass written out layer by layer."""
    get = model.get_layer
    with tf.GradientTape(persistent=True) as tape:
        x = get("prefix_tokens")(get("patch_tokens")(get("patch_embedding")(images)))
        attentions = []
        for i in range(1, depth + 1):
            y = get(f"block{i}_norm1")(x)
            y, scores = get(f"block{i}_attention")(y, y, return_attention_scores=True)
            attentions.append(scores)
            x = get(f"block{i}_add")([x, y])
            y = get(f"block{i}_mlp2")(get(f"block{i}_mlp1")(get(f"block{i}_norm2")(x)))
            x = get(f"block{i}_out")([x, y])
        logits = get("logits")(get("readout")(get("class_token")(get("final_norm")(x))))
        score = tf.reduce_sum(tf.reduce_max(logits, axis=1))
    np.testing.assert_allclose(logits, model(images), rtol=1e-5, atol=1e-5)
    gradients = tape.gradient(score, attentions)
    return [a.numpy() for a in attentions], [g.numpy() for g in gradients]


def test_rollout_and_its_gradient_weighted_form_match_numpy(vit, images):
    attentions, gradients = _attention_by_hand(vit, images)
    tokens = attentions[0].shape[-1]
    assert tokens == 1 + 16
    eye = np.eye(tokens)
    # Abnar and Zuidema 2020: A~ = 0.5 mean_h(A) + 0.5 I, rows normalised; R = A~_2 A~_1
    flow = None
    for a in attentions:
        mixed = 0.5 * a.mean(axis=1) + 0.5 * eye
        mixed /= mixed.sum(-1, keepdims=True)
        flow = mixed if flow is None else mixed @ flow
    expected = flow[:, 0, 1:].reshape(-1, *GRID)
    e = camutils.explain(vit, images, "rollout")
    assert e.layer == "attention" and e.method == "rollout"
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6)
    # Chefer, Gur and Wolf 2021: A_ = mean_h((dS/dA * A)^+); R = I; R += A_ R per layer
    flow = np.broadcast_to(eye, (len(images), tokens, tokens))
    for a, g in zip(attentions, gradients):
        flow = flow + np.maximum(a * g, 0).mean(axis=1) @ flow
    expected = flow[:, 0, 1:].reshape(-1, *GRID)
    e = camutils.explain(vit, images, "gradient_rollout")
    assert expected.max() > 0
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6 * expected.max())


def test_the_attention_pass_explains_any_target(vit, images):
    """Rollout and its gradient-weighted form read the target like every pass: a function of
    the outputs equals the class index it picks, a contrast weighs the gradients by the
    difference of two logits (so differs from either), rollout ignores the target (its
    flow is the same), and a score that is not finite is blamed on the target, not on the
    attention probabilities."""
    from camutils import targets

    by_index = camutils.explain(vit, images, "gradient_rollout", target=2)
    by_function = camutils.explain(vit, images, "gradient_rollout",
                                   target=lambda logits: logits[:, 2])
    np.testing.assert_allclose(by_function.raw, by_index.raw, rtol=1e-5,
                               atol=1e-7 * by_index.raw.max())
    np.testing.assert_allclose(by_function.score, by_index.score, rtol=1e-6)
    contrast = camutils.explain(vit, images, "gradient_rollout", target=targets.Contrast(2, 0),
                                chunk_size=2)
    assert contrast.raw.shape == by_index.raw.shape
    assert not np.allclose(contrast.raw, by_index.raw, atol=1e-3 * by_index.raw.max())
    class0 = camutils.explain(vit, images, "rollout", target=0)
    np.testing.assert_allclose(contrast.score, by_index.score - class0.score, rtol=1e-5,
                               atol=1e-5)
    plain = camutils.explain(vit, images, "rollout", target=targets.Class(1, score="probability"))
    np.testing.assert_allclose(plain.raw, camutils.explain(vit, images, "rollout").raw, rtol=1e-6)
    assert plain.target == "Class(1, probability)"
    with pytest.raises(camutils.NonFiniteError, match="target") as error:
        camutils.explain(vit, images, "rollout", target=lambda logits: tf.math.log(logits[:, 0] * 0.0))
    assert "attention" not in str(error.value).split("the target")[0]


def test_cam_on_a_pooling_head_over_tokens_is_gradcam_times_the_positions(images):
    """Without prefix tokens, GlobalAveragePooling1D -> Dense is a CAM head: Grad-CAM's
    raw map is CAM's divided by the 16 positions, and Ablation-CAM's pooled shortcut runs."""
    model = M.tiny_vit(prefix=0, head="gap", seed=7, name="gap_vit")
    cam = camutils.explain(model, images, "cam")
    assert cam.layer == "final_norm"  # every token reaches a pooling head
    grad = camutils.explain(model, images, "gradcam", layer="final_norm")
    np.testing.assert_allclose(cam.raw, 16 * grad.raw, rtol=1e-4, atol=1e-6 * cam.raw.max())
    ablation = camutils.explain(model, images, "ablationcam", layer="final_norm")
    assert ablation.raw.shape == (3, *GRID) and np.isfinite(ablation.raw).all()


def test_perturbation_methods_keep_the_prefix_tokens(vit, images):
    """Score-CAM and Ablation-CAM on a token layer with a class token: maps on the grid;
    Ablation-CAM's head sees the class token as it was (zeroing one channel of the grid
    only), so an ablation of nothing would give back each image's own score."""
    for method in ("scorecam", "ablationcam"):
        e = camutils.explain(vit, images, method, layer="block1_out")
        assert e.raw.shape == (3, *GRID) and np.isfinite(e.maps).all()
    from camutils.methods.feature_model import feature_model

    feature = feature_model(vit, "block1_out")

    @tf.function(autograph=False)
    def rebuilt(x):  # the layer's output as a grid, and back
        return feature.head(x, feature.to_grid(feature.run(x)[0]), prefix=feature.prefix_tokens(x))

    np.testing.assert_allclose(rebuilt(tf.constant(images)), vit(images), rtol=1e-5, atol=1e-5)


def test_grids_are_inferred_from_the_input_size():
    assert fitting_grids(197, (224, 224)) == [(1, 14, 14)]            # ViT-B/16
    assert infer_grid(198, (224, 224)).prefix == 2                    # DeiT: + distillation
    assert (infer_grid(261, (224, 224)).prefix, infer_grid(261, (224, 224)).height) == (5, 16)
    assert fitting_grids(49, (224, 224)) == [(0, 7, 7)]              # a Swin stage
    assert fitting_grids(33, (64, 128)) == [(1, 4, 8)]               # not square
    grid = infer_grid(65, (64, 64), patches=("patch_embedding", (8, 8)))
    assert (grid.prefix, grid.height, grid.width) == (1, 8, 8) and "patch_embedding" in grid.source
    with pytest.raises(ValueError, match="fit several grids on the 12 x 12 input: 4 x 4 after "
                                         "1 prefix token; 3 x 3 after 8 prefix tokens"):
        infer_grid(17, (12, 12))
    assert infer_grid(17, (12, 12), options=TokenOptions(prefix=1)).height == 4
    with pytest.raises(ValueError, match="prefix_tokens must be a whole number"):
        TokenOptions.of(prefix_tokens=-1)
    with pytest.raises(ValueError, match="grid must be \\(rows, columns\\)"):
        TokenOptions.of(grid=(4,))


def _hidden_attention_block():
    class HiddenAttention(keras.layers.Layer):
        """A transformer block whose attention runs inside its own call()."""

        def build(self, shape):
            self.attention = keras.layers.MultiHeadAttention(2, 4, name="inner_attention")
            self.attention.build(shape, shape)

        def call(self, x):
            return x + self.attention(x, x)

    return HiddenAttention(name="hidden_block")


@pytest.fixture(scope="module")
def awkward():
    """12 x 12 images cut into 16 tokens by a Reshape (no feature map before them): 16 and
    17 tokens fit 4 x 4 and 3 x 3 grids alike; 8 tokens (after pooling pairs) fit none."""
    layers = keras.layers
    inputs = keras.Input((12, 12, 3), name="image")
    x = layers.Reshape((16, 27), name="pixel_patches")(inputs)
    x = layers.Dense(8, name="embed")(x)
    x = M.prefix_tokens_layer()(1, name="prefix_tokens")(x)
    x = _hidden_attention_block()(x)
    x = layers.MaxPooling1D(2, name="halved")(x)
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    return keras.Model(inputs, layers.Dense(3, name="logits")(x), name="awkward")


@pytest.mark.parametrize("layer, options, message", [
    (None, {}, "Model 'awkward' has token layers but no grid found for any: Layer 'halved'"),
    ("hidden_block", {}, r"has 17 tokens, which fit several grids on the 12 x 12 input: 4 x 4 "
                         r"after 1 prefix token; 3 x 3 after 8 prefix tokens\. Say which with "
                         r"grid=\(h, w\) and prefix_tokens=p"),
    ("halved", {}, r"Layer 'halved' \(MaxPooling1D\) of model 'awkward' has 8 tokens, which fit "
                   r"no grid on the 12 x 12 input"),
    ("pool", {}, r"Layer 'pool' \(GlobalAveragePooling1D\) has no spatial output: one position "
                 r"per image, shape \(None, 8\).*Choose a layer before it"),
    ("prefix_tokens", {"grid": (4, 5)}, r"has 17 tokens, but grid=\(4, 5\) needs 20; grids that "
                                        r"fit 17 tokens on the 12 x 12 input: 4 x 4 after 1"),
    ("embed", {"grid": (4, 4), "prefix_tokens": 0, "method": "rollout"},
     r"Model 'awkward' has no keras.layers.MultiHeadAttention layer that output 0 depends "
     r"on.*inside 'hidden_block' \(HiddenAttention\), a subclassed layer"),
])
def test_bad_token_layers_get_a_one_line_error(awkward, layer, options, message):
    images = M.images(1, size=(12, 12))
    options = dict(options)
    method = options.pop("method", "gradcam")
    with pytest.raises(ValueError, match=message) as error:
        camutils.explain(awkward, images, method, layer=layer, **options)
    assert "\n" not in str(error.value)


def test_explicit_options_resolve_an_ambiguous_grid(awkward):
    e = camutils.explain(awkward, M.images(2, size=(12, 12)), "layercam",
                         layer="prefix_tokens", prefix_tokens=1)
    assert e.raw.shape == (2, 4, 4) and e.maps.shape == (2, 12, 12)
