"""Notebook 03 (Grad-CAM): the weights from gradients, the weights from the Dense layer,
the post's resize fixed, and the counterfactual map."""

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


# --------------------------------------------------------------------------- 03.gradcam_weights


def _demo_gradcam_weights():
    _, gradients = _features_and_gradients(0)
    right = gradients.mean(axis=(0, 1))
    wrong = gradients.sum(axis=(0, 1))  # forgets the 1/Z of global average pooling
    return right, wrong, {"gradients": gradients}


@exercise(
    "03.gradcam_weights",
    "Grad-CAM's channel weights from the gradients",
    """
    `gradients` holds dy^c/dA for one image: the gradient of the class score y^c with
    respect to every activation of the layer, shape (h, w, channels). Compute Grad-CAM's
    weight of every channel,

        alpha_k = 1/Z * sum over positions (i, j) of gradients[i, j, k],   Z = h * w,

    as an array of shape (channels,). (Selvaraju et al. 2017, eq. 1: the gradients are
    "global-average-pooled".)
    """,
    hints=[
        "One weight per channel: average over the two spatial axes, keep the last one.",
        "gradients.mean(axis=(0, 1)) averages over height and width.",
    ],
    solution="""
    alpha = gradients.mean(axis=(0, 1))
    """,
    demo=_demo_gradcam_weights,
)
def check_gradcam_weights(answer, gradients):
    gradients = np.asarray(gradients, np.float64)
    h, w, channels = gradients.shape
    expected = gradients.mean(axis=(0, 1))
    got = _array(answer, "weights")
    scale = float(np.abs(expected).max())
    if got.shape != expected.shape:
        if got.shape == (h, w):
            raise Wrong(f"Your result has shape {got.shape}, one value per position: you "
                        "averaged over the channels. Average over the positions instead, one "
                        f"weight per channel ({channels},).")
        raise Wrong(f"Your weights have shape {got.shape}; expected ({channels},), one per "
                    "channel.")
    if _close(got, expected, scale):
        return "alpha_k is the average gradient of channel k: how much the score rises per unit of that channel, on average."
    if _close(got, gradients.sum(axis=(0, 1)), scale * h * w):
        raise Wrong(f"You summed over the positions: Grad-CAM averages them (divide by "
                    f"Z = h * w = {h * w}).")
    if _close(got, np.maximum(gradients, 0).mean(axis=(0, 1)), scale):
        raise Wrong("You kept only the positive gradients: Grad-CAM averages all of them (the "
                    "ReLU comes later, on the weighted sum of the channels).")
    if _close(got, np.abs(gradients).mean(axis=(0, 1)), scale):
        raise Wrong("You averaged absolute values: keep the sign, a negative weight means the "
                    "channel speaks against the class.")
    if _close(got, gradients.max(axis=(0, 1)), scale):
        raise Wrong("You took the largest gradient of each channel: Grad-CAM takes the mean.")
    raise Wrong("The values are not the mean of each channel's gradients over the h * w "
                "positions.")


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
