"""The methods' equations, checked numerically against independent computations."""

import numpy as np
import pytest

import _models as M

import tensorflow as tf  # noqa: E402
from camutils import methods as cm  # noqa: E402
from camutils.methods.feature_model import feature_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return M.gap_model(channels=(4, 6), classes=5, seed=3)


@pytest.fixture(scope="module")
def x():
    return M.images(4, seed=1)


def _layer_and_kernel(model, x, layer="conv2"):
    activations, logits = feature_model(model, layer)(x)
    dense = model.get_layer("logits")
    return activations, logits, dense.kernel.numpy(), dense.bias.numpy()


def _resize(raw, size):
    return tf.image.resize(raw[..., None], size, "bilinear").numpy()[..., 0]


def test_cam_is_the_class_weights_applied_to_the_feature_maps(model, x):
    activations, logits, kernel, _ = _layer_and_kernel(model, x)
    classes = [0, 1, 2, 4]
    e = cm.cam(model, x, classes)
    expected = np.einsum("nhwc,cn->nhw", activations, kernel[:, classes])
    np.testing.assert_allclose(e.raw, np.maximum(expected, 0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(e.class_index, classes)
    np.testing.assert_allclose(e.score, logits[np.arange(4), classes], rtol=1e-5)


def test_cam_averaged_over_positions_plus_bias_is_the_logit(model, x):
    # The defining property of CAM on a GAP network: S_c = mean_xy M_c(x, y) + b_c.
    activations, logits, kernel, bias = _layer_and_kernel(model, x)
    unclipped = np.einsum("nhwc,ck->nkhw", activations, kernel)
    np.testing.assert_allclose(unclipped.mean(axis=(2, 3)) + bias, logits, rtol=1e-4, atol=1e-5)


def test_gradcam_equals_cam_divided_by_the_number_of_positions(model, x):
    c = cm.cam(model, x, target=cm.TopK(5))
    g = cm.gradcam(model, x, target=cm.TopK(5))
    h, w = c.raw.shape[-2:]
    assert c.raw.max() > 0
    np.testing.assert_allclose(g.raw, c.raw / (h * w), rtol=1e-5, atol=1e-7 * c.raw.max())
    np.testing.assert_allclose(g.maps, c.maps, atol=1e-5)


def test_hirescam_equals_cam_divided_by_the_number_of_positions(model, x):
    c = cm.cam(model, x, target=cm.TopK(3))
    r = cm.hirescam(model, x, target=cm.TopK(3))
    h, w = c.raw.shape[-2:]
    np.testing.assert_allclose(r.raw, c.raw / (h * w), rtol=1e-5, atol=1e-7 * c.raw.max())


def test_on_a_max_pooling_head_gradcam_is_still_cam_but_hirescam_is_not(x):
    # With GMP the gradient is W_kc at each channel's maximum and 0 elsewhere: its mean is
    # still W_kc / (h w), so Grad-CAM = CAM / (h w); HiResCAM keeps only the maxima.
    model = M.gap_model(head="gmp", seed=3)
    c = cm.cam(model, x)
    g = cm.gradcam(model, x)
    r = cm.hirescam(model, x)
    h, w = c.raw.shape[-2:]
    np.testing.assert_allclose(g.raw, c.raw / (h * w), rtol=1e-5, atol=1e-7 * c.raw.max())
    assert not np.allclose(r.maps, c.maps, atol=1e-2)
    assert (r.raw > 0).sum() < (c.raw > 0).sum()


@pytest.mark.parametrize("softmax", ["dense", "layer", "activation"])
def test_softmax_model_is_explained_on_its_logits(softmax, x):
    model = M.gap_model(softmax=softmax, seed=3)
    twin = M.logits_twin(model) if softmax == "dense" else _strip_softmax(model)
    for method in ("gradcam", "cam", "layercam"):
        a = cm.explain(model, x, method)
        b = cm.explain(twin, x, method)
        np.testing.assert_allclose(a.raw, b.raw, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(a.score, b.score, rtol=1e-5)
        np.testing.assert_array_equal(a.class_index, b.class_index)


def _strip_softmax(model):
    import keras

    return keras.Model(model.inputs, model.get_layer("logits").output)


def test_image_alone_equals_the_same_image_in_a_batch(model, x):
    for method in ("cam", "gradcam", "gradcam++", "scorecam", "ablationcam", "eigencam",
                   "guided_gradcam"):
        batch = cm.explain(model, x, method)
        alone = cm.explain(model, x[2], method)
        assert alone.maps.shape == (1, 16, 16)
        np.testing.assert_allclose(alone.maps[0], batch.maps[2], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(alone.raw[0], batch.raw[2], rtol=1e-4,
                                   atol=1e-6 * max(batch.raw[2].max(), 1e-12))


def test_maps_are_the_upsampled_raw_maps_divided_by_their_maximum():
    model = M.gap_model(size=(16, 24), seed=5)  # not square: height and width must not swap
    x = M.images(2, size=(16, 24))
    e = cm.gradcam(model, x)
    assert e.raw.shape == (2, 8, 12) and e.maps.shape == (2, 16, 24)
    up = _resize(e.raw, (16, 24))
    low, high = up.min(axis=(1, 2), keepdims=True), up.max(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(e.maps, (up - low) / (high - low), atol=1e-6)


def test_counterfactual_gradcam_negates_the_weights(model, x):
    activations, _, kernel, _ = _layer_and_kernel(model, x)
    h, w = activations.shape[1:3]
    e = cm.gradcam(model, x, target=cm.TopK(5), counterfactual=True)
    negated = -np.einsum("nhwc,cnk->nkhw", activations, kernel[:, e.class_index]) / (h * w)
    np.testing.assert_allclose(e.raw, np.maximum(negated, 0), rtol=1e-5, atol=1e-8)
    assert e.raw.max() > 0
    plain = cm.gradcam(model, x, target=cm.TopK(5))
    assert not np.allclose(plain.maps, e.maps)


def test_xgradcam_layercam_gradcam_plus_plus_by_hand(model, x):
    activations, _, kernel, _ = _layer_and_kernel(model, x)
    classes = cm.cam(model, x).class_index
    h, w = activations.shape[1:3]
    g = np.broadcast_to(kernel[:, classes].T[:, None, None, :] / (h * w), activations.shape)

    total = activations.sum(axis=(1, 2), keepdims=True)
    x_weights = (np.divide(activations, total, out=np.zeros_like(activations),
                           where=total != 0) * g).sum(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwc,nc->nhw", activations, x_weights), 0)
    np.testing.assert_allclose(cm.xgradcam(model, x).raw, expected, rtol=1e-4, atol=1e-8)

    expected = np.maximum((np.maximum(g, 0) * activations).sum(-1), 0)
    np.testing.assert_allclose(cm.layercam(model, x).raw, expected, rtol=1e-4, atol=1e-8)

    g2, g3 = g**2, g**3
    denominator = 2 * g2 + total * g3
    safe = np.where(denominator == 0, 1, denominator)
    alpha = np.where((g2 != 0) & (denominator != 0), g2 / safe, 0)
    alpha_sum = alpha.sum(axis=(1, 2), keepdims=True)
    alpha = np.divide(alpha, alpha_sum, out=np.zeros_like(alpha), where=alpha_sum != 0)
    pp_weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwc,nc->nhw", activations, pp_weights), 0)
    np.testing.assert_allclose(cm.gradcam_plus_plus(model, x).raw, expected, rtol=1e-4,
                               atol=1e-8)


def test_ablationcam_by_hand_on_a_linear_head(model, x):
    # With GAP -> Dense, zeroing channel k lowers S_c by W_kc * mean(A_k).
    activations, logits, kernel, _ = _layer_and_kernel(model, x)
    classes = cm.cam(model, x).class_index
    drop = kernel[:, classes].T * activations.mean(axis=(1, 2))
    scores = logits[np.arange(len(x)), classes]
    weights = drop / np.abs(scores)[:, None]
    expected = np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0)
    e = cm.ablationcam(model, x, batch_size=5)
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-7)


def test_ablationcam_runs_shortcuts_around_the_layer():
    model = M.skip_model(seed=2)
    x = M.images(3)
    branch, logits = feature_model(model, "branch")(x)
    shortcut, _ = feature_model(model, "conv1")(x)
    dense = model.get_layer("logits")
    kernel, bias = dense.kernel.numpy(), dense.bias.numpy()
    classes = logits.argmax(axis=1)
    scores = logits[np.arange(3), classes]
    channels = branch.shape[-1]
    ablated = np.stack([
        ((shortcut + branch * (np.arange(channels) != k)).mean(axis=(1, 2)) @ kernel + bias)
        [np.arange(3), classes]
        for k in range(channels)
    ], axis=1)
    weights = (scores[:, None] - ablated) / np.abs(scores)[:, None]
    expected = np.maximum(np.einsum("nhwc,nc->nhw", branch, weights), 0)
    e = cm.ablationcam(model, x, layer="branch")
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-7)


def test_eigencam_is_the_first_principal_projection(model, x):
    activations, _, _, _ = _layer_and_kernel(model, x)
    e = cm.eigencam(model, x, target=cm.TopK(2))
    for n in range(len(x)):
        flat = activations[n].reshape(-1, activations.shape[-1]).astype(np.float64)
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        projection = flat @ vt[0]
        projection *= 1 if projection.sum() >= 0 else -1
        expected = np.maximum(projection, 0).reshape(activations.shape[1:3])
        np.testing.assert_allclose(e.raw[n, 0], expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_array_equal(e.raw[n, 0], e.raw[n, 1])  # class-agnostic


def test_scorecam_max_channels_keeps_the_most_active_channels(model, x):
    activations, _, _, _ = _layer_and_kernel(model, x)
    full = cm.scorecam(model, x)
    every = cm.scorecam(model, x, max_channels=activations.shape[-1] + 10)
    np.testing.assert_allclose(every.raw, full.raw, rtol=1e-5, atol=1e-8)
    one = cm.scorecam(model, x, max_channels=1)
    top = activations.mean(axis=(1, 2)).argmax(axis=1)
    for n in range(len(x)):
        channel = activations[n, :, :, top[n]]
        ratio = one.raw[n].max() / channel.max()
        assert ratio > 0
        np.testing.assert_allclose(one.raw[n], ratio * channel, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("batch_size", [1, 4, 13, 1000])
def test_perturbation_results_do_not_depend_on_the_batch_size(model, x, batch_size):
    reference_s = cm.scorecam(model, x, batch_size=6)
    reference_a = cm.ablationcam(model, x, batch_size=6)
    s = cm.scorecam(model, x, batch_size=batch_size)
    a = cm.ablationcam(model, x, batch_size=batch_size)
    np.testing.assert_allclose(s.raw, reference_s.raw, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(a.raw, reference_a.raw, rtol=1e-5, atol=1e-8)


def test_topk_maps_equal_maps_of_each_class(model, x):
    top = cm.gradcam(model, x, target=cm.TopK(3))
    assert top.maps.shape == (4, 3, 16, 16) and top.raw.shape == (4, 3, 8, 8)
    assert top.class_index.shape == (4, 3) and top.score.shape == (4, 3)
    assert np.all(np.diff(top.score, axis=1) <= 0)  # best class first
    for j in range(3):
        single = cm.gradcam(model, x, target=top.class_index[:, j])
        np.testing.assert_allclose(top.raw[:, j], single.raw, rtol=1e-5, atol=1e-8)
        np.testing.assert_allclose(top.score[:, j], single.score, rtol=1e-6)


def _guided_reference(model, x, classes, top=None):
    """Guided backprop with its own forward pass: custom-gradient ReLUs (ReLU6 with
    ``top=6``), the model's weights."""

    @tf.custom_gradient
    def guided_relu(v):
        def grad(dy):
            keep = (v > 0) & (dy > 0) & ((v < top) if top else True)
            return tf.where(keep, dy, tf.zeros_like(dy))

        return (tf.nn.relu(v) if top is None else tf.minimum(tf.nn.relu(v), top)), grad

    images = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        h = images
        for name, stride in (("conv1", 2), ("conv2", 1)):
            layer = model.get_layer(name)
            h = tf.nn.conv2d(h, layer.kernel, stride, "SAME") + layer.bias
            h = guided_relu(h)
        pooled = tf.reduce_mean(h, axis=[1, 2])
        logits = pooled @ model.get_layer("logits").kernel + model.get_layer("logits").bias
        score = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    return tape.gradient(score, images).numpy()


def test_guided_backprop_matches_an_independent_implementation(model, x):
    e = cm.guided_backprop(model, x)
    expected = _guided_reference(model, x, e.class_index)
    gradients = e.extras["gradients"]
    assert gradients.shape == x.shape
    np.testing.assert_allclose(gradients, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(e.raw, np.abs(expected).max(axis=-1), rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())
    assert e.layer == "input"


def test_guided_backprop_differs_from_the_plain_gradient_and_leaves_the_model_alone(model, x):
    images = tf.constant(x)

    def plain_gradient():
        with tf.GradientTape() as tape:
            tape.watch(images)
            score = tf.reduce_sum(model(images)[:, 0])
        return tape.gradient(score, images).numpy()

    before = plain_gradient()
    guided = cm.guided_backprop(model, x, target=0).extras["gradients"]
    after = plain_gradient()
    np.testing.assert_array_equal(before, after)
    assert not np.allclose(guided, before, atol=1e-6)


def test_guided_backprop_handles_relu6():
    model = M.gap_model(activation="relu6", seed=4)
    x = M.images(2) * 8.0  # large enough for some units to saturate at 6
    e = cm.guided_backprop(model, x)
    activations, _ = feature_model(model, "conv1")(x)
    assert (activations >= 6).any()
    assert np.isfinite(e.maps).all() and e.maps.max() == 1.0
    expected = _guided_reference(model, x, e.class_index, top=6.0)
    np.testing.assert_allclose(e.extras["gradients"], expected, rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


def test_guided_gradcam_is_guided_backprop_times_upsampled_gradcam(model, x):
    g = cm.gradcam(model, x)
    guided = cm.guided_backprop(model, x).extras["gradients"]
    e = cm.guided_gradcam(model, x)
    up = _resize(g.raw, (16, 16))
    expected = guided * up[..., None]
    np.testing.assert_allclose(e.extras["gradients"], expected, rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())
    np.testing.assert_allclose(e.raw, np.abs(expected).max(axis=-1), rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())
    assert e.layer == "conv2"


def test_guided_gradcam_takes_ordinary_gradients_at_the_layer_in_its_one_pass(model, x):
    # At conv1 a guided ReLU (conv2's) lies between the layer and the logits: the Grad-CAM
    # part must use the ordinary gradients there, the guided part the guided ones.
    g = cm.gradcam(model, x, layer="conv1")
    guided = cm.guided_backprop(model, x).extras["gradients"]
    e = cm.guided_gradcam(model, x, layer="conv1")
    expected = guided * _resize(g.raw, (16, 16))[..., None]
    np.testing.assert_allclose(e.extras["gradients"], expected, rtol=1e-4,
                               atol=1e-6 * np.abs(expected).max())


# --------------------------------------------------------------------------- by hand, where
# the gradient varies over positions (a Flatten head), against tf.GradientTape


@pytest.fixture(scope="module")
def flatten_model():
    return M.gap_model(channels=(4, 6), head="flatten", seed=7)


def _tape_activations_and_gradients(model, x, layer="conv2"):
    """A and dS/dA for each image's top class, by a plain GradientTape on a Keras model that
    returns the layer's output and the logits (the Keras example's recipe)."""
    import keras

    opened = keras.Model(model.input, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        activations, logits = opened(tf.constant(x), training=False)
        classes = tf.argmax(logits, axis=1)
        score = tf.reduce_sum(tf.gather(logits, classes, batch_dims=1))
    gradients = tape.gradient(score, activations)
    return activations.numpy(), gradients.numpy(), classes.numpy()


def test_xgradcam_by_hand_where_its_weights_differ_from_gradcams(flatten_model, x):
    a, g, classes = _tape_activations_and_gradients(flatten_model, x)
    assert g.std(axis=(1, 2)).max() > 0.1 * np.abs(g).max()  # the gradient varies
    total = a.sum(axis=(1, 2), keepdims=True)
    weights = (np.divide(a, total, out=np.zeros_like(a), where=total != 0) * g).sum(axis=(1, 2))
    expected = np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0)
    e = cm.xgradcam(flatten_model, x)
    np.testing.assert_array_equal(e.class_index, classes)
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6 * expected.max())
    # Grad-CAM's weights (the mean gradient) give another map here, whatever its scale
    mean_weights = g.mean(axis=(1, 2))
    gradcam = np.maximum(np.einsum("nhwc,nc->nhw", a, mean_weights), 0)
    np.testing.assert_allclose(cm.gradcam(flatten_model, x).raw, gradcam, rtol=1e-4,
                               atol=1e-6 * gradcam.max())
    unit = lambda m: m / m.max(axis=(1, 2), keepdims=True)  # noqa: E731
    assert np.abs(unit(expected) - unit(gradcam)).max() > 0.1


@pytest.mark.parametrize("channels", [16, 32])
def test_eigencam_sign_makes_the_projection_positive_on_wide_layers(channels):
    # On layers of 16 and more channels the SVD's first vector comes out with either sign;
    # for non-negative activations the right one is the Perron vector, whose projection is
    # non-negative everywhere (and not all zero).
    model = M.gap_model(channels=(8, channels), seed=2)
    images = M.images(4, seed=2)
    activations, _ = feature_model(model, "conv2")(images)
    e = cm.eigencam(model, images)
    for n in range(len(images)):
        flat = activations[n].reshape(-1, channels).astype(np.float64)
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        projection = flat @ vt[0]
        projection *= np.sign(projection.sum())
        assert projection.min() > -1e-6 * projection.max()  # the Perron vector
        expected = np.maximum(projection, 0).reshape(activations.shape[1:3])
        assert e.raw[n].max() > 0
        np.testing.assert_allclose(e.raw[n], expected, rtol=1e-4, atol=1e-5 * expected.max())


def test_scorecam_equation_by_hand(model, x):
    """w_k = softmax(f(X * s(Up(A^k))))_c, s the min-max normalisation of each upsampled
    channel: each of the C masked images run through the model, here, one by one."""
    activations, logits, _, _ = _layer_and_kernel(model, x)
    classes = logits.argmax(axis=1)
    weights = np.zeros(activations.shape[::3], np.float32)  # (N, C)
    for n in range(len(x)):
        for k in range(activations.shape[-1]):
            mask = _resize(activations[n, None, :, :, k], x.shape[1:3])[0]
            low, high = mask.min(), mask.max()
            mask = (mask - low) / (high - low) if high > low else np.zeros_like(mask)
            masked_logits = np.asarray(model(x[n:n + 1] * mask[None, :, :, None]))[0]
            probabilities = np.exp(masked_logits - masked_logits.max())
            weights[n, k] = (probabilities / probabilities.sum())[classes[n]]
    expected = np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0)
    e = cm.scorecam(model, x)
    np.testing.assert_array_equal(e.class_index, classes)
    np.testing.assert_allclose(e.raw, expected, rtol=1e-4, atol=1e-6 * expected.max())


@pytest.mark.parametrize("padding", ["same", "valid"])
def test_the_input_gradient_pass_gives_tensorflows_gradients_through_every_convolution(padding):
    # No ReLU to guide: guided backpropagation is then the plain input gradient, through
    # the input-only gradients of 1 x 1, 3 x 3 and 5 x 5 convolutions and depthwise ones
    # (stride 1 and 2, depth multiplier 1 and 2), computed by forward convolutions where
    # that is faster.
    import keras

    inputs = keras.Input((16, 16, 3))
    h = keras.layers.Conv2D(8, 3, strides=2, padding=padding, name="stem")(inputs)
    h = keras.layers.Conv2D(6, 1, name="pointwise")(h)
    h = keras.layers.DepthwiseConv2D(3, padding=padding, name="depthwise")(h)
    h = keras.layers.DepthwiseConv2D(5, padding="same", name="depthwise5")(h)
    h = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2,
                                     name="depthwise_s2")(h)
    h = keras.layers.Conv2D(5, 3, padding="same", name="last")(h)
    h = keras.layers.GlobalAveragePooling2D()(h)
    model = keras.Model(inputs, keras.layers.Dense(4, name="logits")(h))
    x = M.images(3, seed=5)
    e = cm.guided_backprop(model, x, target=1)
    images = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(images)
        score = tf.reduce_sum(model(images)[:, 1])
    expected = tape.gradient(score, images).numpy()
    np.testing.assert_allclose(e.extras["gradients"], expected, rtol=1e-4,
                               atol=1e-5 * np.abs(expected).max())
