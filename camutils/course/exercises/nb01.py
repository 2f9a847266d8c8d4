"""Notebook 01 (CAM from scratch): CAM by hand, logits from maps, nearest upsampling, mask IoU."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise


def _close(a, b, scale: float = 1.0) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


def _check_array(got, expected_shape: tuple[int, ...], what: str) -> np.ndarray:
    got = np.asarray(got)
    if got.dtype == object or not (np.issubdtype(got.dtype, np.floating)
                                   or np.issubdtype(got.dtype, np.integer)):
        raise Wrong(f"Give {what} as a numeric numpy array, not {type(got).__name__} of "
                    f"dtype {got.dtype}.")
    if got.shape != tuple(expected_shape):
        raise Wrong(f"Your {what} has shape {got.shape}; expected {tuple(expected_shape)}.")
    got = got.astype(np.float64)
    if not np.all(np.isfinite(got)):
        raise Wrong(f"Your {what} contains NaN or infinite values.")
    return got


# --------------------------------------------------------------------------- 01.cam_by_hand


def _reference_cams(features, weights, classes) -> np.ndarray:
    """The raw CAM of ``classes[i]`` for every image ``i``."""
    return np.einsum("nhwk,kn->nhw", np.asarray(features), np.asarray(weights)[:, np.asarray(classes)])


def _demo_cam_by_hand():
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 3, size=(3, 4, 4, 5)).astype(np.float32)
    weights = rng.normal(size=(5, 6)).astype(np.float32)
    classes = np.array([2, 0, 5])
    right = np.einsum("nhwk,kn->nhw", features, weights[:, classes])
    wrong = np.einsum("nhwk,k->nhw", features, weights[:, classes[0]])  # one class for all
    return right, wrong, {"features": features, "weights": weights, "classes": classes}


@exercise(
    "01.cam_by_hand",
    "The CAM of another class, for a whole batch",
    """
    For every image of the batch, compute the raw class activation map of the class
    `classes[i]` (one class per image):

        M_i(y, x) = sum_k  weights[k, classes[i]] * features[i, y, x, k]

    `features` has shape (n, h, w, channels), the last convolutional layer's activations;
    `weights` is the Dense layer's kernel, shape (channels, classes). Give an array of shape
    (n, h, w): the maps at the layer's resolution, before any ReLU, upsampling or
    normalisation. One `np.einsum` does it, with no Python loop.
    """,
    hints=[
        "weights[:, classes] picks one column of weights per image: shape (channels, n).",
        "In np.einsum, a letter that appears in both inputs and in the output is matched, not "
        "summed: the image index n must be in all three.",
        "np.einsum('nhwk,kn->nhw', features, weights[:, classes]).",
    ],
    solution="""
    cams_other = np.einsum("nhwk,kn->nhw", features, weights[:, classes])
    """,
    demo=_demo_cam_by_hand,
    minutes=8,
    reference=_reference_cams,
)
def check_cam_by_hand(answer, features, weights, classes):
    features = np.asarray(features, np.float64)
    weights = np.asarray(weights, np.float64)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(classes) != len(features):
        raise ValueError(f"The context has {len(features)} images but {len(classes)} classes.")
    expected = np.einsum("nhwk,kn->nhw", features, weights[:, classes])
    got = np.asarray(answer)
    if got.ndim == 4 and got.shape[-1] == 1:
        raise Wrong(f"Your maps have shape {got.shape}: drop the trailing channel axis "
                    f"(sum over k), giving {expected.shape}.")
    swapped = expected.transpose(0, 2, 1)
    if got.shape == swapped.shape and got.shape != expected.shape:
        raise Wrong(f"Your maps have shape {got.shape}: keep the (height, width) order of the "
                    "features.")
    got = _check_array(got, expected.shape, "maps")
    scale = float(np.abs(expected).max())
    if _close(got, expected, scale):
        return ("One einsum gives every image the map of its own class: "
                "M(y, x) = sum_k w_k f_k(y, x).")
    if _close(got, swapped, scale):
        raise Wrong("Your maps are transposed: keep the (height, width) order of the features "
                    "('nhwk,kn->nhw').")
    if _close(got, np.maximum(expected, 0.0), scale):
        raise Wrong("You applied a ReLU: give the raw maps, negative values included (they are "
                    "evidence against the class, and the logit needs them).")
    h, w = expected.shape[1:]
    if _close(got, expected / (h * w), scale):
        raise Wrong("You divided by the number of positions: the map is the plain weighted sum "
                    "of the channels; the average comes later (it gives the logit).")
    if _close(got, features.sum(axis=-1), scale) or _close(got, features.mean(axis=-1), scale):
        raise Wrong("Your maps ignore the weights: each channel k must be multiplied by its "
                    "weight for the image's class, weights[k, classes[i]].")
    all_maps = np.einsum("nhwk,kc->nchw", features, weights)
    per_image = [[c for c in range(weights.shape[1]) if _close(got[i], all_maps[i, c], scale)]
                 for i in range(len(got))]
    wrong_images = [i for i, found in enumerate(per_image) if classes[i] not in found]
    if wrong_images and all(per_image[i] for i in wrong_images):
        i = wrong_images[0]
        raise Wrong(f"Image {i} got the map of class {per_image[i][0]}, but its class is "
                    f"{int(classes[i])}: each image needs the column weights[:, classes[i]] "
                    "(match the image index n in the einsum).")
    raise Wrong("The values are not sum_k weights[k, classes[i]] * features[i, :, :, k].")


# --------------------------------------------------------------------------- 01.logits_from_maps


def _reference_logits(maps, bias) -> np.ndarray:
    """Every logit of a GAP -> Dense head from the raw maps of every class."""
    return np.asarray(maps).mean(axis=(2, 3)) + np.asarray(bias)


def _demo_logits_from_maps():
    rng = np.random.default_rng(1)
    maps = rng.normal(0.5, 2.0, size=(2, 6, 4, 4)).astype(np.float32)
    bias = rng.normal(size=6).astype(np.float32)
    right = maps.mean(axis=(2, 3)) + bias
    wrong = maps.sum(axis=(2, 3)) + bias  # sums instead of averaging
    return right, wrong, {"maps": maps, "bias": bias}


@exercise(
    "01.logits_from_maps",
    "Every logit from the maps, without running the network",
    """
    `maps` holds the raw CAMs of every class for a batch of images, shape
    (n, classes, h, w), before any ReLU. `bias` is the Dense layer's bias, shape (classes,).
    The network ends in global average pooling and that Dense layer. Compute all the logits,
    shape (n, classes), from the maps and the bias alone.
    """,
    hints=[
        "Global average pooling averages over the h * w positions, and the Dense layer is "
        "linear: the average can be taken after the weighted sum, that is, of the map.",
        "Average over the two spatial axes (axis=(2, 3)), then add the bias; broadcasting "
        "adds bias[c] to column c.",
    ],
    solution="""
    logits_from_maps = all_maps.mean(axis=(2, 3)) + b
    """,
    demo=_demo_logits_from_maps,
    minutes=5,
    reference=_reference_logits,
)
def check_logits_from_maps(answer, maps, bias):
    maps = np.asarray(maps, np.float64)
    bias = np.asarray(bias, np.float64).reshape(-1)
    if maps.ndim != 4 or maps.shape[1] != len(bias):
        raise ValueError(f"maps must be (n, classes, h, w) with classes = len(bias) = "
                         f"{len(bias)}; got {maps.shape}.")
    expected = maps.mean(axis=(2, 3)) + bias
    got = np.asarray(answer)
    if got.shape == expected.shape[::-1] and got.shape != expected.shape:
        raise Wrong(f"Your logits have shape {got.shape}: give one row per image, "
                    f"{expected.shape}.")
    got = _check_array(got, expected.shape, "logits")
    scale = float(np.abs(expected).max())
    if _close(got, expected, scale):
        return "logit_c = mean over (x, y) of M_c + b_c, for every class at once."
    if _close(got, maps.sum(axis=(2, 3)) + bias, scale):
        raise Wrong("You summed over the positions: global average pooling takes the mean "
                    "(divide by h * w).")
    if _close(got, maps.mean(axis=(2, 3)), scale):
        raise Wrong("Almost: the Dense layer adds each class's bias after the average.")
    if _close(got, np.maximum(maps, 0.0).mean(axis=(2, 3)) + bias, scale):
        raise Wrong("You dropped the negative values (a ReLU): the logit counts the evidence "
                    "against the class too.")
    if _close(got, maps.max(axis=(2, 3)) + bias, scale):
        raise Wrong("You took each map's maximum: this network pools by averaging, so the "
                    "logit is the map's mean plus the bias.")
    raise Wrong("Your logits are not the maps' means plus the bias.")


# --------------------------------------------------------------------------- 01.upsample_nearest


def _demo_upsample_nearest():
    def right(small, factor):
        return np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)

    def tiled(small, factor):  # np.tile repeats the whole map, not each cell
        return np.tile(small, (factor, factor))

    return right, tiled, {}


@exercise(
    "01.upsample_nearest",
    "Nearest-neighbour upsampling, by hand",
    """
    Write `upsample_nearest(small, factor)`: it takes a 2-D map `small` of shape (h, w) and
    an int `factor`, and returns the map of shape (h * factor, w * factor) in which every
    cell of `small` becomes a factor x factor block of equal values. No interpolation: the
    big map holds exactly the same numbers as the small one.
    The checker tries square and non-square maps and several factors.
    """,
    hints=[
        "np.repeat(a, factor, axis=0) repeats every row `factor` times, in place.",
        "Repeat along the rows (axis 0), then along the columns (axis 1). np.tile is not the "
        "same: it repeats the whole map side by side.",
    ],
    solution="""
    def upsample_nearest(small, factor):
        return np.repeat(np.repeat(small, factor, axis=0), factor, axis=1)
    """,
    demo=_demo_upsample_nearest,
    minutes=5,
)
def check_upsample_nearest(upsample_nearest):
    rng = np.random.default_rng(5)
    cases = [(rng.normal(size=(8, 8)).astype(np.float32), 8),
             (rng.normal(size=(3, 5)).astype(np.float32), 4),
             (np.arange(6, dtype=np.float32).reshape(2, 3), 3),
             (rng.normal(size=(4, 2)).astype(np.float32), 1)]
    for small, factor in cases:
        h, w = small.shape
        name = f"a {h} x {w} map with factor {factor}"
        got = np.asarray(upsample_nearest(small.copy(), factor))
        expected = np.kron(small, np.ones((factor, factor), np.float32))
        if got.shape != expected.shape:
            if got.shape == expected.shape[::-1]:
                raise Wrong(f"On {name} your result has shape {got.shape}: rows and columns "
                            "are swapped.")
            raise Wrong(f"On {name} your result has shape {got.shape}; expected "
                        f"{expected.shape}.")
        got = got.astype(np.float64)
        if np.allclose(got, expected, atol=1e-6):
            continue
        if np.allclose(got, np.tile(small, (factor, factor)), atol=1e-6):
            raise Wrong("You tiled the whole map (np.tile): each *cell* must become a block, "
                        "so repeat every row and every column in place (np.repeat).")
        blocks = got.reshape(h, factor, w, factor)
        if not np.allclose(blocks, blocks[:, :1, :, :1], atol=1e-6):
            raise Wrong(f"On {name} the blocks are not constant: nearest-neighbour upsampling "
                        "copies each value, it does not interpolate.")
        raise Wrong(f"On {name} the blocks do not hold the small map's values in place.")
    return "Each cell became a block: the big map holds the same numbers, nothing more."


# --------------------------------------------------------------------------- 01.threshold_iou


def _reference_iou(heat_map, mask, fraction) -> float:
    """`camutils.metrics.mask_iou` of one map: IoU of ``map > fraction * max`` with ``mask``."""
    from ...metrics import mask_iou

    return float(mask_iou(np.asarray(heat_map, np.float32)[None], np.asarray(mask, bool)[None],
                          fraction)[0])


def _iou_cases():
    """(name, map, mask, fraction): raw maps (not in [0, 1]), a map with nothing positive."""
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float64)
    disc = (yy - 14) ** 2 + (xx - 18) ** 2 <= 36
    bump = 7.5 * np.exp(-((yy - 13) ** 2 + (xx - 16) ** 2) / 40.0)     # maximum 7.5
    wide = 0.4 * np.exp(-((yy - 16) ** 2 + (xx - 16) ** 2) / 150.0)    # maximum 0.4
    signed = bump - 2.0                                                 # negative outside
    return [
        ("a map whose maximum is 7.5, at 20%", bump, disc, 0.2),
        ("the same map at 50%", bump, disc, 0.5),
        ("a wide map whose maximum is 0.4, at 50%", wide, disc, 0.5),
        ("a map with negative values, at 20%", signed, disc, 0.2),
        ("a map with no positive value", -bump, disc, 0.2),
        ("a map of zeros", np.zeros_like(bump), disc, 0.2),
    ]


def _demo_threshold_iou():
    def right(heat_map, mask, fraction):
        region = heat_map > fraction * heat_map.max()
        return (region & mask).sum() / (region | mask).sum()

    def coverage(heat_map, mask, fraction):  # the share of the mask covered, not the IoU
        region = heat_map > fraction * heat_map.max()
        return (region & mask).sum() / mask.sum()

    return right, coverage, {}


@exercise(
    "01.threshold_iou",
    "Threshold a map and measure its IoU with the object's mask",
    """
    Write `iou_at(heat_map, mask, fraction)`: `heat_map` is a 2-D float map (any scale, maybe
    with negative values), `mask` a boolean array of the same shape (the object's pixels) and
    `fraction` a number such as 0.2. Select the region where the map is *above* `fraction`
    times the map's own maximum, and return the intersection over union of that region with
    the mask, a float in [0, 1]:

        IoU = |region AND mask| / |region OR mask|

    A map with no positive value (all zeros, say) selects nothing: its IoU is 0.0, never NaN.
    The checker compares your function with `camutils.metrics.mask_iou` on a few maps (and
    on `maps=`, `masks=` if you pass them).
    """,
    hints=[
        "The threshold is relative: fraction * heat_map.max(), not fraction itself (a raw map "
        "can have any scale).",
        "With boolean arrays, & is AND and | is OR; .sum() counts the True pixels.",
        "Use a strict >: then a map of zeros selects nothing (0 > 0 is False), and its IoU "
        "is 0 / |mask| = 0.",
    ],
    solution="""
    def iou_at(heat_map, mask, fraction):
        region = heat_map > fraction * heat_map.max()
        return float((region & mask).sum() / (region | mask).sum())
    """,
    demo=_demo_threshold_iou,
    minutes=8,
)
def check_threshold_iou(iou_at, maps=None, masks=None, fraction: float = 0.5):
    cases = _iou_cases()
    if maps is not None:
        if masks is None:
            raise Wrong("Pass masks= together with maps= (one boolean mask per map).")
        cases += [(f"your map {i}", np.asarray(m, np.float64), np.asarray(k, bool), fraction)
                  for i, (m, k) in enumerate(zip(maps, masks))]
    for name, heat_map, mask, frac in cases:
        with np.errstate(all="ignore"):
            got = iou_at(heat_map.copy(), mask.copy(), frac)
        got = np.asarray(got, dtype=np.float64)
        if got.size != 1:
            raise Wrong(f"On {name} you returned an array of shape {got.shape}: return one "
                        "number.")
        got = float(got.reshape(()))
        expected = _reference_iou(heat_map, mask, frac)
        if not np.isfinite(got):
            raise Wrong(f"On {name} you returned {got}: when the map has no positive value, "
                        "return 0.0.")
        if abs(got - expected) <= 1e-6:
            continue
        region = heat_map > frac * heat_map.max() if heat_map.max() > 0 else np.zeros_like(mask)
        if heat_map.max() > 0 and abs(got - (region & mask).sum() / mask.sum()) <= 1e-6:
            raise Wrong(f"On {name} you returned the share of the mask that is covered "
                        "(intersection / mask). The IoU divides by the union, so that a region "
                        "that spills beyond the object is penalised too.")
        absolute = heat_map > frac
        union = (absolute | mask).sum()
        if union and abs(got - (absolute & mask).sum() / union) <= 1e-6:
            raise Wrong(f"On {name} you compared the map with {frac} itself; the threshold is "
                        f"relative to the map's maximum: {frac} * heat_map.max().")
        if heat_map.max() <= 0:
            raise Wrong(f"On {name} you returned {got:.3f}; a map with nothing positive "
                        "selects nothing, so its IoU is 0. Select with a strict > (with >=, "
                        "a map of zeros selects every pixel).")
        raise Wrong(f"On {name} your IoU is {got:.4f}; expected {expected:.4f}.")
    return "Threshold relative to the maximum, then intersection over union."
