"""Notebook 04 (beyond Grad-CAM): XGrad-CAM's weight rule, which methods are class-agnostic,
one Score-CAM weight, and Ablation-CAM's weights on a global-average-pooling head, by hand."""

from __future__ import annotations

import re

import numpy as np

from . import Wrong, exercise


def _close(a, b, scale: float, rtol: float = 1e-4) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-6 * max(scale, 1e-12))


def _numbers(answer, what: str) -> np.ndarray:
    """The answer as a float64 array; Wrong if it is not numeric."""
    got = np.asarray(answer)
    if not np.issubdtype(got.dtype, np.number):
        raise Wrong(f"Give {what} as numbers (a numpy array or a float), not "
                    f"{type(answer).__name__}.")
    return got.astype(np.float64)


def _activations_and_gradients(seed: int, shape=(5, 6, 12)):
    """A small ``(h, w, C)`` activation (non-negative, as after a ReLU, with one channel that
    is zero everywhere) and a gradient that varies from position to position."""
    rng = np.random.default_rng(seed)
    activations = np.maximum(rng.normal(0.3, 1.0, size=shape), 0).astype(np.float32)
    activations[..., 3] = 0.0  # a channel that never fires: its sum is 0
    gradients = rng.normal(0.0, 0.05, size=shape).astype(np.float32)
    return activations, gradients


# --------------------------------------------------------------------------- 04.xgradcam_weights


def _xgradcam_reference(activations, gradients) -> np.ndarray:
    a = np.asarray(activations, np.float64)
    g = np.asarray(gradients, np.float64)
    total = a.sum(axis=(0, 1), keepdims=True)
    share = np.divide(a, total, out=np.zeros_like(a), where=total != 0)
    return (share * g).sum(axis=(0, 1))


def _demo_xgradcam_weights():
    activations, gradients = _activations_and_gradients(0)
    right = _xgradcam_reference(activations, gradients)
    wrong = gradients.mean(axis=(0, 1))  # Grad-CAM's rule, not XGrad-CAM's
    return right, wrong, {"activations": activations, "gradients": gradients}


@exercise(
    "04.xgradcam_weights",
    "XGrad-CAM's channel weights",
    """
    `activations` is one image's layer output A, shape (h, w, channels), and `gradients`
    the gradient of the class score with respect to it, dS/dA, same shape. Grad-CAM weighs
    channel k by the plain mean of its gradients. XGrad-CAM (Fu et al. 2020) weighs each
    position's gradient by that position's share of the channel's activation:

        alpha_k = sum over (i, j) of  A[i, j, k] / (sum over (a, b) of A[a, b, k])  *  dS/dA[i, j, k]

    Return the weights as an array of shape (channels,). A channel whose activations are
    all zero gets weight 0 (it contributes nothing to the map anyway): divide safely.
    Give either the weights or a function `xgradcam_weights(activations, gradients)` that
    computes them (the checker then calls it on `activations=`, `gradients=`).
    """,
    hints=[
        "First the denominators: activations.sum(axis=(0, 1)) gives one sum per channel.",
        "np.divide(a, total, out=np.zeros_like(a), where=total != 0) divides without NaN; "
        "then multiply by the gradients and sum over the two spatial axes.",
    ],
    solution="""
    total = activations.sum(axis=(0, 1), keepdims=True)
    share = np.divide(activations, total, out=np.zeros_like(activations), where=total != 0)
    alpha = (share * gradients).sum(axis=(0, 1))
    """,
    demo=_demo_xgradcam_weights,
    minutes=8,
    reference=_xgradcam_reference,
)
def check_xgradcam_weights(answer, activations, gradients):
    a = np.asarray(activations, np.float64)
    g = np.asarray(gradients, np.float64)
    h, w, channels = a.shape
    expected = _xgradcam_reference(a, g)
    if callable(answer):
        answer = answer(np.array(activations), np.array(gradients))
        if answer is None:
            raise Wrong("Your function returned None: return the weights.")
    got = _numbers(answer, "the weights")
    if got.shape != expected.shape:
        if got.shape == (h, w):
            raise Wrong(f"Your result has shape {got.shape}, one value per position: you "
                        f"summed over the channels. Sum over the positions instead, one weight "
                        f"per channel ({channels},).")
        raise Wrong(f"Your weights have shape {got.shape}; expected ({channels},), one per "
                    "channel.")
    silent = a.sum(axis=(0, 1)) == 0
    if not np.all(np.isfinite(got)):
        bad = np.flatnonzero(~np.isfinite(got))
        if np.all(silent[bad]):
            raise Wrong(f"Channel {int(bad[0])} is zero everywhere, so its sum is 0 and 0 / 0 "
                        "gave NaN: give such a channel weight 0 (np.divide with where=...).")
        raise Wrong("Your weights contain NaN or infinite values.")
    scale = float(np.abs(expected).max())
    if _close(got, expected, scale):
        return ("Each gradient counts in proportion to how active its position is: where a "
                "channel is silent, its gradient does not count.")
    if _close(got, g.mean(axis=(0, 1)), scale):
        raise Wrong("That is Grad-CAM's weight, the plain mean of the gradients. XGrad-CAM "
                    "weighs each gradient by A[i, j, k] / sum(A[:, :, k]).")
    if _close(got, (a * g).sum(axis=(0, 1)), scale):
        raise Wrong("You weighed the gradients by the activations but did not divide by each "
                    "channel's sum of activations.")
    if _close(got, (a * g).mean(axis=(0, 1)), scale):
        raise Wrong("You averaged A * dS/dA over the positions: divide by each channel's sum of "
                    "activations instead of by the number of positions.")
    total = a.sum(axis=(0, 1))
    if _close(got, np.divide(g.sum(axis=(0, 1)), total, out=np.zeros(channels), where=total != 0),
              scale):
        raise Wrong("You divided the summed gradients by the summed activations: the "
                    "activation weighs each gradient position by position, before the sum.")
    raise Wrong("The values are not sum_ij A[i, j, k] / sum_ab A[a, b, k] * dS/dA[i, j, k] for "
                "each channel k.")


# --------------------------------------------------------------------------- 04.class_agnostic

_NAMES = {
    "cam": "cam", "gradcam": "gradcam", "gradcam++": "gradcam++", "gradcamplusplus": "gradcam++",
    "gradcampp": "gradcam++", "xgradcam": "xgradcam", "hirescam": "hirescam",
    "layercam": "layercam", "scorecam": "scorecam", "ablationcam": "ablationcam",
    "eigencam": "eigencam",
}

_WHY_CLASS = {
    "cam": "its weights are the class's column of the Dense kernel",
    "gradcam": "its weights are the gradients of the class's score",
    "gradcam++": "its weights are the gradients of the class's score",
    "xgradcam": "its weights are the gradients of the class's score",
    "hirescam": "it multiplies the activations by the gradients of the class's score",
    "layercam": "it multiplies the activations by the gradients of the class's score",
    "scorecam": "its weights are the class's probability on each masked image",
    "ablationcam": "its weights are the drops of the class's score",
}


def _method_key(name) -> str:
    if not isinstance(name, str):
        raise Wrong(f"Name methods with strings such as 'gradcam', not {type(name).__name__}.")
    key = re.sub(r"[-_ .]", "", name.lower())
    if key not in _NAMES:
        raise Wrong(f"{name!r} is not a method of this notebook; use names such as "
                    f"{', '.join(sorted(set(_NAMES.values())))}.")
    return _NAMES[key]


def _same_for_every_class(maps) -> np.ndarray:
    """Per image: whether all of its k maps ``(k, h, w)`` are equal (to float rounding)."""
    maps = np.asarray(maps, np.float64)
    if maps.ndim != 4:
        raise ValueError(f"maps per method must be (images, classes, h, w); got {maps.shape}.")
    scale = np.abs(maps).max(axis=(1, 2, 3), keepdims=True)
    spread = np.abs(maps - maps[:, :1]).max(axis=(1, 2, 3), keepdims=True)
    return (spread <= 1e-5 * np.maximum(scale, 1e-12)).reshape(len(maps))


def _demo_class_agnostic():
    rng = np.random.default_rng(4)
    maps = {m: np.maximum(rng.normal(size=(3, 2, 4, 4)), 0).astype(np.float32)
            for m in ("cam", "gradcam", "scorecam")}
    shared = np.maximum(rng.normal(size=(3, 1, 4, 4)), 0).astype(np.float32)
    maps["eigencam"] = np.repeat(shared, 2, axis=1)
    return {"Eigen-CAM"}, {"eigencam", "scorecam"}, {"maps": maps}


@exercise(
    "04.class_agnostic",
    "Which methods are class-agnostic?",
    """
    A method is class-agnostic when it draws the same map whatever class you ask about.
    Read the weight rules in the table above and predict which of the methods it lists are
    class-agnostic. Give your answer as a set of method names, e.g. {"cam", "scorecam"}
    (any spelling of camutils' names works: "Grad-CAM++", "gradcam++", ...); an empty set
    says that none is.

    The checker does not compare your answer with a list: it measures. `maps` holds, for
    each method, the raw maps of the top three classes of a few shapes images, shape
    (images, 3, h, w); a method is class-agnostic when the three maps of every image are
    equal.
    """,
    hints=[
        "Look for a rule in which no class index c appears: no class weight, no gradient of "
        "a class's score, no class probability.",
        "Only one rule works on the activations alone: it takes their first principal "
        "component.",
    ],
    solution="""
    agnostic = {"eigencam"}
    """,
    demo=_demo_class_agnostic,
    minutes=5,
    giveaways=[
        r"Eigen-?CAM\b[^.\n]{0,100}(class-agnostic|ignores the class|no class|never (asks|reads)"
        r"[^.\n]{0,40}class|same map (in both|whatever|for (every|each|any) class)|one map per image)",
        r"(class-agnostic|ignores the class|whatever the class)[^.\n]{0,60}Eigen-?CAM",
    ],
)
def check_class_agnostic(answer, maps):
    names = {answer} if isinstance(answer, str) else answer
    try:
        chosen = {_method_key(n) for n in names}
    except TypeError:
        raise Wrong("Give a set of method names, e.g. {\"cam\"} or set() for none.") from None
    measured = {_method_key(m): _same_for_every_class(a) for m, a in maps.items()}
    unknown = chosen - set(measured)
    if unknown:
        raise Wrong(f"{', '.join(sorted(unknown))} was not measured here; choose among "
                    f"{', '.join(sorted(measured))}.")
    expected = {m for m, same in measured.items() if same.all()}
    for method in sorted(chosen - expected):
        differ = int((~measured[method]).sum())
        why = _WHY_CLASS.get(method, "its maps depend on the class")
        raise Wrong(f"{method} is not class-agnostic: its maps differ between classes on "
                    f"{differ} of {len(measured[method])} images ({why}).")
    for method in sorted(expected - chosen):
        raise Wrong(f"You left out {method}: its maps are the same for every class on all "
                    f"{len(measured[method])} images. Which class index appears in its rule?")
    return (f"Measured: {', '.join(sorted(expected)) or 'none'} gives one map per image, "
            "whatever the class. Such a map shows what the layer sees, not why the network "
            "chose a class.")


# --------------------------------------------------------------------------- 04.scorecam_weight


def _upsample_bilinear(channel, size) -> np.ndarray:
    """``(h, w)`` -> ``size`` with bilinear interpolation and half-pixel centres (as
    ``tf.image.resize(..., "bilinear")`` and OpenCV's INTER_LINEAR when enlarging)."""
    import cv2

    height, width = size
    return cv2.resize(np.asarray(channel, np.float32), (width, height),
                      interpolation=cv2.INTER_LINEAR).astype(np.float64)


def _scale01(x) -> np.ndarray:
    low, high = x.min(), x.max()
    return (x - low) / (high - low) if high > low else np.zeros_like(x)


def _softmax(logits) -> np.ndarray:
    from ...scores import softmax

    return softmax(logits)


def _masked_logits(image, mask, predict) -> np.ndarray:
    masked = (np.asarray(image, np.float32) * mask[..., None].astype(np.float32))[None]
    return np.asarray(predict(masked), np.float64)[0]


def _demo_scorecam_weight():
    rng = np.random.default_rng(7)
    image = rng.uniform(0, 1, size=(8, 8, 3)).astype(np.float32)
    channel = np.maximum(rng.normal(0.2, 1.0, size=(4, 4)), 0).astype(np.float32)
    kernel = rng.normal(0, 0.3, size=(8 * 8 * 3, 5)).astype(np.float32)

    def predict(batch):  # a linear "network": flattened pixels -> 5 logits
        batch = np.asarray(batch, np.float32)
        return batch.reshape(len(batch), -1) @ kernel

    context = {"image": image, "channel": channel, "predict": predict, "class_index": 2}
    mask = _scale01(_upsample_bilinear(channel, image.shape[:2]))
    logits = _masked_logits(image, mask, predict)
    right = float(_softmax(logits)[2])
    wrong = float(logits[2])  # the logit, not the probability
    return right, wrong, context


@exercise(
    "04.scorecam_weight",
    "One Score-CAM weight, by hand",
    """
    Score-CAM weighs channel k by how much the network still believes in the class when it
    sees only what the channel highlights. Compute that weight for one channel:

      1. upsample `channel` (h, w) to the image's (height, width) with bilinear
         interpolation (tf.image.resize(channel[..., None], (height, width), "bilinear"));
      2. rescale it to [0, 1]: (x - min) / (max - min) (all zeros if it is constant);
      3. multiply `image` (height, width, 3), the network's input, by this mask, pixel by
         pixel (the same mask for the three colour channels);
      4. run `predict` on it as a batch of one and take the softmax probability of class
         `class_index`.

    Give the weight as one float.
    """,
    hints=[
        "mask = tf.image.resize(channel[..., None], image.shape[:2], 'bilinear')[..., 0].numpy(); "
        "then mask = (mask - mask.min()) / (mask.max() - mask.min()).",
        "logits = predict((image * mask[..., None])[None])[0]; the weight is "
        "np.exp(logits[c]) / np.exp(logits).sum() (subtract logits.max() first for safety).",
    ],
    solution="""
    mask = tf.image.resize(channel[..., None], image.shape[:2], "bilinear")[..., 0].numpy()
    mask = (mask - mask.min()) / (mask.max() - mask.min())
    logits = np.asarray(predict((image * mask[..., None])[None]))[0]
    p = np.exp(logits - logits.max())
    weight = float(p[class_index] / p.sum())
    """,
    demo=_demo_scorecam_weight,
    minutes=10,
)
def check_scorecam_weight(answer, image, channel, predict, class_index):
    got = _numbers(answer, "the weight")
    if got.size != 1:
        raise Wrong(f"Give one number (the weight of this one channel); got an array of shape "
                    f"{got.shape}.")
    got = float(got.ravel()[0])
    if not np.isfinite(got):
        raise Wrong("Your weight is NaN or infinite.")
    size = np.shape(image)[:2]
    upsampled = _upsample_bilinear(channel, size)
    mask = _scale01(upsampled)
    logits = _masked_logits(image, mask, predict)
    expected = float(_softmax(logits)[class_index])

    def near(value) -> bool:
        return abs(got - value) <= 5e-4 + 1e-3 * abs(value)

    if near(expected):
        return (f"The class keeps probability {expected:.3f} when the network sees only what "
                "this channel highlights: that is the channel's weight.")
    if near(float(logits[class_index])):
        raise Wrong("That is the class's logit on the masked image: Score-CAM uses its softmax "
                    "probability (step 4).")
    if near(float(_softmax(_masked_logits(image, np.ones(size), predict))[class_index])):
        raise Wrong("That is the probability on the whole image: multiply the image by the "
                    "mask first (step 3).")
    if near(float(_softmax(_masked_logits(image, upsampled, predict))[class_index])):
        raise Wrong("The mask was not rescaled to [0, 1]: subtract its minimum and divide by "
                    "its range (step 2).")
    top = upsampled.max()
    if top > 0 and near(float(_softmax(_masked_logits(image, upsampled / top, predict))[class_index])):
        raise Wrong("You divided the mask by its maximum only: subtract its minimum first, so "
                    "that the least active place is masked out completely (step 2).")
    factor = (size[0] // np.shape(channel)[0], size[1] // np.shape(channel)[1])
    nearest = _scale01(np.kron(np.asarray(channel, np.float64), np.ones(factor)))
    if nearest.shape == tuple(size) and near(float(_softmax(_masked_logits(image, nearest, predict))[class_index])):
        raise Wrong("You upsampled by repeating cells (nearest neighbour): Score-CAM's masks "
                    "are bilinear, like the maps (step 1).")
    raise Wrong(f"The weight should be the class's softmax probability on the masked image "
                f"(about {expected:.3f} here); yours is {got:.4f}. Check the steps one by one.")


# --------------------------------------------------------------------------- 04.ablation_on_gap


def _ablation_reference(features, kernel, bias, class_index) -> np.ndarray:
    pooled = np.asarray(features, np.float64).mean(axis=(0, 1))
    w = np.asarray(kernel, np.float64)[:, class_index]
    score = pooled @ w + float(np.asarray(bias, np.float64)[class_index])
    return w * pooled / abs(score)


def _demo_ablation_on_gap():
    rng = np.random.default_rng(11)
    features = np.maximum(rng.normal(0.2, 1.0, size=(4, 4, 10)), 0).astype(np.float32)
    kernel = rng.normal(0, 1.0, size=(10, 3)).astype(np.float32)
    bias = (rng.normal(0, 0.1, size=3) + [0.0, 3.0, 0.0]).astype(np.float32)  # S is about 2
    context = {"features": features, "kernel": kernel, "bias": bias, "class_index": 1}
    right = _ablation_reference(features, kernel, bias, 1)
    wrong = kernel[:, 1].astype(np.float64)  # CAM's weights
    return right, wrong, context


@exercise(
    "04.ablation_on_gap",
    "Ablation-CAM's weights without ablating anything",
    """
    Ablation-CAM sets channel k of the layer to zero, runs the rest of the network, and
    weighs the channel by the relative drop of the class's score S:

        alpha_k = (S - S_k) / |S|,   S_k = the score with channel k zeroed.

    On a network whose head is global average pooling and a Dense layer,
    S = sum_k kernel[k, c] * mean(A^k) + bias[c], so S_k needs no network at all.
    Given one image's `features` A (h, w, channels), the Dense layer's `kernel`
    (channels, classes) and `bias` (classes,), and the class `class_index`, return all
    the weights alpha_k, shape (channels,), without a loop.
    """,
    hints=[
        "Zeroing channel k removes exactly one term from the sum: S - S_k = kernel[k, c] * "
        "mean(A^k).",
        "pooled = features.mean(axis=(0, 1)); S = pooled @ kernel[:, c] + bias[c]; then "
        "alpha = kernel[:, c] * pooled / abs(S).",
    ],
    solution="""
    pooled = features.mean(axis=(0, 1))
    score = pooled @ kernel[:, class_index] + bias[class_index]
    alpha = kernel[:, class_index] * pooled / abs(score)
    """,
    demo=_demo_ablation_on_gap,
    minutes=10,
)
def check_ablation_on_gap(answer, features, kernel, bias, class_index):
    features = np.asarray(features, np.float64)
    kernel = np.asarray(kernel, np.float64)
    channels = kernel.shape[0]
    expected = _ablation_reference(features, kernel, bias, class_index)
    got = _numbers(answer, "the weights")
    if got.shape != expected.shape:
        raise Wrong(f"Your weights have shape {got.shape}; expected ({channels},), one per "
                    "channel.")
    if not np.all(np.isfinite(got)):
        raise Wrong("Your weights contain NaN or infinite values.")
    scale = float(np.abs(expected).max())
    if _close(got, expected, scale):
        return ("On this head Ablation-CAM is CAM with each channel's weight multiplied by its "
                "mean activation (and divided by |S|): busy channels count more.")
    pooled = features.mean(axis=(0, 1))
    column = kernel[:, class_index]
    score = pooled @ column + float(np.asarray(bias, np.float64)[class_index])
    if _close(got, column, float(np.abs(column).max())):
        raise Wrong("Those are CAM's weights (the Dense column). Ablation-CAM measures how much "
                    "of the score each channel carries: kernel[k, c] * mean(A^k), over |S|.")
    if _close(got, column * pooled, scale * abs(score)):
        raise Wrong("Almost: that is the drop S - S_k. Divide it by |S| to make it relative.")
    if _close(got, column * pooled / score, scale) and score < 0:
        raise Wrong("Divide by |S|, not by S: with a negative score the sign would flip every "
                    "weight.")
    if _close(got, column * pooled.sum() / abs(score), scale):
        raise Wrong("Use each channel's own mean activation, not one number for all channels.")
    raise Wrong("The values are not kernel[k, c] * mean(A^k) / |S| for each channel k.")
