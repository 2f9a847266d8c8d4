"""Notebook 03 (Grad-CAM): Grad-CAM from scratch with tf.GradientTape, the weights from the
Dense layer, the post's resize fixed, and the counterfactual map."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise


def _close(a, b, scale: float, rtol: float = 1e-4) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-6 * max(scale, 1e-12))


def _array(answer, what: str) -> np.ndarray:
    got = np.asarray(answer)
    if not np.issubdtype(got.dtype, np.number):
        raise Wrong(f"Give {what} as a numeric array, not {type(answer).__name__}.")
    got = got.astype(np.float64)
    if not np.all(np.isfinite(got)):
        raise Wrong(f"Your {what} contains NaN or infinite values.")
    return got


def _features_and_gradients(seed: int):
    """A small (h, w, C) activation (non-negative, as after a ReLU) and its gradient."""
    rng = np.random.default_rng(seed)
    features = np.maximum(rng.normal(0.5, 1.0, size=(4, 6, 10)), 0).astype(np.float32)
    gradients = rng.normal(0.0, 0.05, size=(4, 6, 10)).astype(np.float32)
    return features, gradients


# --------------------------------------------------------------------------- 03.gradcam_tape


def _tiny_model(head: str, seed: int):
    """A small functional network (16 x 16 x 3 -> conv -> conv "last" -> head -> 4 logits)."""
    import keras

    init = keras.initializers.GlorotUniform(seed=seed)
    bias = keras.initializers.RandomUniform(-0.1, 0.1, seed=seed + 1)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", kernel_initializer=init,
                            bias_initializer=bias, name="first")(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu",
                            kernel_initializer=init, bias_initializer=bias, name="last")(x)
    if head == "gap":
        x = keras.layers.GlobalAveragePooling2D()(x)
    else:
        x = keras.layers.Flatten()(x)
        x = keras.layers.Dense(12, activation="relu", kernel_initializer=init)(x)
    outputs = keras.layers.Dense(4, kernel_initializer=init, bias_initializer=bias, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"tiny_{head}")


def _tiny_images(n: int, seed: int):
    return np.random.default_rng(seed).uniform(0, 1, size=(n, 16, 16, 3)).astype(np.float32)


def _reference_gradcam(model, images, layer_name, classes=None):
    from ...methods import explain

    return np.asarray(explain(model, images, method="gradcam", target=classes, layer=layer_name).raw,
                      np.float64)


def _demo_gradcam_tape():
    import tensorflow as tf
    import keras

    def grad_cam(model, images, layer_name):
        feature_model = keras.Model(model.input, [model.get_layer(layer_name).output, model.output])
        with tf.GradientTape() as tape:
            activations, logits = feature_model(images, training=False)
            scores = tf.gather(logits, tf.argmax(logits, axis=1), batch_dims=1)
        gradients = tape.gradient(scores, activations)
        weights = tf.reduce_mean(gradients, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nhwc,nc->nhw", activations, weights)).numpy()

    def without_relu(model, images, layer_name):
        feature_model = keras.Model(model.input, [model.get_layer(layer_name).output, model.output])
        with tf.GradientTape() as tape:
            activations, logits = feature_model(images, training=False)
            scores = tf.reduce_max(logits, axis=1)
        gradients = tape.gradient(scores, activations)
        return tf.einsum("nhwc,nc->nhw", activations, tf.reduce_mean(gradients, axis=(1, 2))).numpy()

    context = {"model": _tiny_model("flatten", 3), "images": _tiny_images(3, 4), "layer_name": "last"}
    return grad_cam, without_relu, context


def _diagnose(got, expected, model, images, layer_name, where: str):
    n, h, w = expected.shape
    scale = float(np.abs(expected).max()) or 1.0
    if got.shape == (n, w, h) and h != w:
        raise Wrong(f"{where}: your maps have shape {got.shape}, expected {expected.shape}: keep "
                    "the layer's (height, width) order.")
    if got.ndim == 4 and got.shape[:3] == expected.shape:
        raise Wrong(f"{where}: your maps have shape {got.shape}: sum the weighted channels "
                    "(the last axis), giving one (h, w) map per image.")
    if got.shape != expected.shape:
        raise Wrong(f"{where}: your maps have shape {got.shape}; expected {expected.shape}, one "
                    "map per image at the layer's resolution (before any upsampling).")
    if _close(got, expected, scale):
        return True
    if _close(np.maximum(got, 0), expected, scale):
        raise Wrong(f"{where}: your maps have negative values: Grad-CAM keeps the positive part "
                    "(a ReLU on the weighted sum).")
    if _close(got, expected * h * w, scale * h * w):
        raise Wrong(f"{where}: your maps are {h * w} times too large: average the gradients "
                    "over the positions (mean, not sum).")
    first = _reference_gradcam(model, images, layer_name, classes=[0] * n)
    if _close(got, first, scale):
        raise Wrong(f"{where}: you explained class 0 for every image: take each image's own top "
                    "class (tf.argmax of its logits) and gather its score with batch_dims=1.")
    raise Wrong(f"{where}: your maps differ from camutils' Grad-CAM by up to "
                f"{float(np.abs(got - expected).max() / scale):.0%} of the largest value. "
                "Check the class score (a logit, one per image), the gradient's mean over "
                "(height, width), and the weighted sum over channels.")


@exercise(
    "03.gradcam_tape",
    "Grad-CAM from scratch, in one function",
    """
    Write `grad_cam(model, images, layer_name)`: the raw Grad-CAM maps of a Keras model for
    each image's top class, with `tf.GradientTape`, in one function and with no loop over
    images or channels.

      1. a feature model: `keras.Model(model.input, [model.get_layer(layer_name).output,
         model.output])` returns the layer's activations A (n, h, w, channels) and the
         logits in one pass;
      2. inside the tape, the score y^c of each image: its largest logit;
      3. the gradients dy^c/dA, averaged over (h, w): the channel weights alpha (n, channels);
      4. the weighted sum of the channels, and a ReLU: maps (n, h, w).

    Return a numpy array (n, h, w), at the layer's resolution, before any upsampling or
    normalisation. The checker compares it with camutils' Grad-CAM on the model you pass
    (`model=`, `images=`, `layer_name=`) and on a small network with a Flatten head.
    """,
    hints=[
        "tape.gradient(scores, activations) of a vector of scores differentiates their sum; "
        "each image's score depends only on its own activations, so each gets its own gradient.",
        "scores = tf.gather(logits, tf.argmax(logits, axis=1), batch_dims=1) picks each image's "
        "top logit.",
        "weights = tf.reduce_mean(gradients, axis=(1, 2)); maps = tf.nn.relu(tf.einsum("
        "'nhwc,nc->nhw', activations, weights)).",
    ],
    solution="""
    def grad_cam(model, images, layer_name):
        feature_model = keras.Model(model.input, [model.get_layer(layer_name).output, model.output])
        with tf.GradientTape() as tape:
            activations, logits = feature_model(images, training=False)
            scores = tf.gather(logits, tf.argmax(logits, axis=1), batch_dims=1)
        gradients = tape.gradient(scores, activations)
        weights = tf.reduce_mean(gradients, axis=(1, 2))
        return tf.nn.relu(tf.einsum("nhwc,nc->nhw", activations, weights)).numpy()
    """,
    demo=_demo_gradcam_tape,
    minutes=15,
)
def check_gradcam_tape(grad_cam, model=None, images=None, layer_name=None):
    if not callable(grad_cam):
        raise Wrong("Give the function itself: ex.check(grad_cam, model=..., images=..., "
                    "layer_name=...).")
    cases = [("On a small Flatten-head network", _tiny_model("flatten", 1), _tiny_images(3, 2), "last")]
    if model is not None:
        cases.insert(0, (f"On {getattr(model, 'name', 'your model')!r}", model, images, layer_name))
    for where, m, x, layer in cases:
        expected = _reference_gradcam(m, x, layer)
        got = _array(grad_cam(m, x, layer), "maps")
        _diagnose(got, expected, m, x, layer, where)
    return ("Forward pass, tape, mean gradient per channel, weighted sum, ReLU: that is all of "
            "Grad-CAM, and it works on any differentiable head.")


# --------------------------------------------------------------------------- 03.weights_from_dense


def _demo_weights_from_dense():
    rng = np.random.default_rng(1)
    kernel = rng.normal(size=(12, 5)).astype(np.float32)
    context = {"kernel": kernel, "class_index": 2, "map_size": (8, 8)}
    right = kernel[:, 2] / 64.0
    wrong = kernel[:, 2]  # CAM's weights, without the 1/Z of the pooling
    return right, wrong, context


@exercise(
    "03.weights_from_dense",
    "Grad-CAM's weights without a gradient",
    """
    On a global-average-pooling -> Dense network the gradient is known in advance. Given the
    Dense layer's `kernel` (channels, classes), a class `class_index` and the size
    `map_size = (h, w)` of the pooled layer, predict Grad-CAM's channel weights alpha^c of
    that class, an array of shape (channels,), without computing any gradient.
    """,
    hints=[
        "y^c = sum_k kernel[k, c] * (1/Z) sum_ij A^k_ij + b^c. Differentiate with respect to "
        "one activation A^k_ij: what is left?",
        "Every position gets the same gradient kernel[k, c] / Z, so its average over the "
        "positions is kernel[k, c] / Z, with Z = h * w.",
    ],
    solution="""
    h, w = map_size
    alpha_predicted = W[:, class_index] / (h * w)
    """,
    demo=_demo_weights_from_dense,
    minutes=5,
)
def check_weights_from_dense(answer, kernel, class_index, map_size):
    kernel = np.asarray(kernel, np.float64)
    c = int(class_index)
    h, w = (int(s) for s in map_size)
    z = h * w
    expected = kernel[:, c] / z
    got = _array(answer, "weights")
    scale = float(np.abs(expected).max())
    if got.shape != expected.shape:
        if got.shape == (kernel.shape[1],):
            raise Wrong(f"Your weights have shape {got.shape}: that is a row of the kernel. "
                        "The class's weights are a column, kernel[:, class_index].")
        raise Wrong(f"Your weights have shape {got.shape}; expected ({len(kernel)},), one per "
                    "channel.")
    if _close(got, expected, scale):
        return (f"alpha^c = w^c / {z}: Grad-CAM's map is CAM's map divided by h * w, the same "
                "picture once normalised.")
    if _close(got, kernel[:, c], scale * z):
        raise Wrong(f"These are CAM's weights w^c. Global average pooling divides by "
                    f"Z = h * w = {z}, and so does the gradient.")
    for wrong_z, what in ((h, "h"), (w, "w"), (h + w, "h + w"), (z * z, "Z squared")):
        if wrong_z != z and _close(got, kernel[:, c] / wrong_z, scale):
            raise Wrong(f"You divided by {what} = {wrong_z}: the pooling averages over all "
                        f"Z = h * w = {z} positions.")
    for other in range(kernel.shape[1]):
        if other != c and _close(got, kernel[:, other] / z, scale):
            raise Wrong(f"That is column {other} of the kernel; use column {c}.")
    raise Wrong("The values are not the class's Dense weights divided by the number of "
                "positions.")


# --------------------------------------------------------------------------- 03.fix_resize


def _to_image_size(heatmap, image):
    """The map resized (bilinear) to the image's (height, width)."""
    from ...images import resize

    return resize(np.asarray(heatmap, np.float32), np.shape(image)[:2], interpolation="bilinear")


def _demo_fix_resize():
    import cv2

    def right(heatmap, image):
        height, width = image.shape[:2]
        return cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)

    def half_fixed(heatmap, image):  # the names fixed, the call not: a transposed map
        height, width = image.shape[:2]
        return cv2.resize(heatmap, (height, width), interpolation=cv2.INTER_LINEAR)

    return right, half_fixed, {}


def _resize_cases(extra_images=()):
    """(heat map, image) pairs: non-square images of both orientations and a square one."""
    rng = np.random.default_rng(4)
    shapes = [((7, 7), (300, 451)), ((14, 14), (600, 512)), ((6, 9), (90, 135)),
              ((7, 7), (64, 64))]
    shapes += [((7, 7), tuple(np.shape(im)[:2])) for im in extra_images]
    cases = []
    for map_size, image_size in shapes:
        heat = rng.uniform(0, 1, size=map_size).astype(np.float32)
        image = np.zeros((*image_size, 3), np.uint8)
        cases.append((heat, image))
    return cases


@exercise(
    "03.fix_resize",
    "Fix the post's resize",
    """
    Write `to_image_size(heatmap, image)`: the float32 map `heatmap` (h, w) resized with
    bilinear interpolation to the size of `image`, an RGB array (height, width, 3) that
    need not be square. Name the sizes for what they are: a numpy shape is (height, width,
    channels), and OpenCV's `cv2.resize(src, dsize)` takes dsize = (width, height).
    The checker tries wide, tall and square images (and `images=` if you pass them).
    """,
    hints=[
        "height, width = image.shape[:2]",
        "cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR); or "
        "camutils.resize(heatmap, (height, width)), which takes camutils' (height, width) "
        "order.",
    ],
    solution="""
    def to_image_size(heatmap, image):
        height, width = image.shape[:2]
        return cv2.resize(heatmap, (width, height), interpolation=cv2.INTER_LINEAR)
    """,
    demo=_demo_fix_resize,
    minutes=5,
    reference=_to_image_size,
)
def check_fix_resize(to_image_size, images=None):
    import cv2

    for heat, image in _resize_cases(images or ()):
        height, width = image.shape[:2]
        got = np.asarray(to_image_size(heat.copy(), image.copy()))
        if got.ndim == 3 and got.shape[-1] == 1:
            got = got[..., 0]
        if got.shape != (height, width):
            if got.shape == (width, height):
                raise Wrong(f"For an image of height {height} and width {width} your map has "
                            f"shape {got.shape}: it is transposed. A numpy shape is (height, "
                            "width); cv2.resize wants (width, height).")
            raise Wrong(f"For an image of shape {image.shape} your map has shape {got.shape}; "
                        f"expected ({height}, {width}).")
        got = got.astype(np.float64)
        if not np.all(np.isfinite(got)):
            raise Wrong("Your map contains NaN or infinite values.")
        expected = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
        if np.abs(got - expected).mean() > 1e-3:
            nearest = cv2.resize(heat, (width, height), interpolation=cv2.INTER_NEAREST)
            if np.abs(got - nearest).mean() <= 1e-3:
                raise Wrong("Nearest-neighbour interpolation gives blocks: use bilinear "
                            "(cv2.INTER_LINEAR).")
            raise Wrong(f"For an image of shape {image.shape} the values differ from a "
                        "bilinear resize of the map: do not normalise or change the map, only "
                        "resize it.")
    return "Height and width named for what they are, and the map fits the image."


# --------------------------------------------------------------------------- 03.counterfactual_map


def _counterfactual(features, gradients):
    weights = -np.asarray(gradients, np.float64).mean(axis=(0, 1))
    return np.maximum(np.einsum("hwk,k->hw", np.asarray(features, np.float64), weights), 0)


def _demo_counterfactual_map():
    features, gradients = _features_and_gradients(2)
    right = _counterfactual(features, gradients)
    plain = np.maximum(np.einsum("hwk,k->hw", features, gradients.mean(axis=(0, 1))), 0)
    span = plain.max() - plain.min()
    wrong = 1.0 - (plain - plain.min()) / span  # "the opposite of the map": not a counterfactual
    return right, wrong, {"features": features, "gradients": gradients}


@exercise(
    "03.counterfactual_map",
    "A counterfactual map by hand",
    """
    Given one image's activations `features` (h, w, channels) and the gradients of a class
    score `gradients` (same shape), compute the raw counterfactual Grad-CAM map (h, w):

        ReLU( sum_k  (-alpha_k) * features[:, :, k] ),   alpha_k = mean of gradients[:, :, k]

    It shows where the activations argue *against* the class: the channels whose gradient
    is negative, weighed by how much they are present. Give the map before upsampling or
    normalisation.
    """,
    hints=[
        "alpha = gradients.mean(axis=(0, 1)); negate it before the weighted sum.",
        "The ReLU comes last: np.maximum(np.einsum('hwk,k->hw', features, -alpha), 0).",
        "It is not 1 minus the Grad-CAM map: the places with no evidence for the class are "
        "not the places with evidence against it.",
    ],
    solution="""
    alpha = gradients.mean(axis=(0, 1))
    counterfactual = np.maximum(np.einsum("hwk,k->hw", features, -alpha), 0)
    """,
    demo=_demo_counterfactual_map,
    minutes=5,
)
def check_counterfactual_map(answer, features, gradients):
    features = np.asarray(features, np.float64)
    gradients = np.asarray(gradients, np.float64)
    expected = _counterfactual(features, gradients)
    got = _array(answer, "map")
    raw = np.einsum("hwk,k->hw", features, gradients.mean(axis=(0, 1)))
    scale = float(np.abs(raw).max())
    if got.shape != expected.shape:
        raise Wrong(f"Your map has shape {got.shape}; expected {expected.shape}, the layer's "
                    "(h, w), before any upsampling.")
    if _close(got, expected, scale):
        return "ReLU(sum_k -alpha_k A^k): the evidence against the class, where it is."
    if _close(got, np.maximum(raw, 0), scale):
        raise Wrong("That is the ordinary Grad-CAM map: negate the weights (or the gradients) "
                    "first.")
    if _close(got, -np.maximum(raw, 0), scale) or _close(got, np.minimum(-raw, 0), scale):
        raise Wrong("You negated after the ReLU: the result is never positive. Negate the "
                    "weights, then apply the ReLU.")
    if _close(got, -raw, scale):
        raise Wrong("Almost: apply the ReLU at the end, keeping only the counter-evidence.")
    plain = np.maximum(raw, 0)
    span = plain.max() - plain.min()
    if span > 0 and _close(got, 1.0 - (plain - plain.min()) / span, 1.0):
        raise Wrong("That is 1 minus the normalised Grad-CAM map: it lights up everything "
                    "without evidence *for* the class, background included. A counterfactual "
                    "map shows evidence *against* it: negate the weights instead.")
    peak = expected.max()
    if peak > 0 and _close(got, expected / peak, 1.0):
        raise Wrong("Your map is normalised: give the raw map, without dividing by its "
                    "maximum.")
    raise Wrong("The values are not ReLU(sum_k -alpha_k features[:, :, k]).")
