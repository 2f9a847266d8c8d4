"""Notebook 02 (CAM on real photos): preprocessing, CAM by hand, the logit from the map, the tile."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise

# --------------------------------------------------------------------------- shared helpers


def _smooth_images(seed: int = 2) -> list[np.ndarray]:
    """A few seeded RGB uint8 test pictures of different shapes, with structure at all scales.

    Coarse random blobs (so that cropping or not cropping changes the picture) plus a colour
    gradient (so that swapped channels are visible); smooth enough that two bicubic
    implementations agree closely.
    """
    import cv2

    rng = np.random.default_rng(seed)
    images = []
    for height, width in [(120, 180), (150, 100), (96, 96)]:
        coarse = rng.uniform(0, 255, size=(6, 6, 3)).astype(np.float32)
        blobs = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
        ramp = np.linspace(0, 60, width, dtype=np.float32)[None, :, None] * np.array(
            [1.0, 0.3, -0.6], np.float32)
        images.append(np.clip(blobs + ramp, 0, 255).astype(np.uint8))
    return images


def _lite0_reference(image: np.ndarray) -> np.ndarray:
    """EfficientNet-Lite0's input for one image, exactly as `camutils.load_model` prepares it."""
    from ...zoo.efficientnet import CROP_FRACTION, INPUT_SIZE, normalize_images
    from ...images import center_crop_resize

    return normalize_images(center_crop_resize([image], INPUT_SIZE, CROP_FRACTION))[0]


def _close(a, b, scale: float) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-4, atol=1e-5 * max(scale, 1.0))


# --------------------------------------------------------------------------- 02.preprocess


def _demo_preprocess():
    def right(image):
        from camutils.images import center_crop, resize

        square = center_crop(image, 224 / 256)
        view = resize(square, (224, 224), interpolation="bicubic")
        return (view.astype(np.float32) - 127.0) / 128.0

    def unit_scaled(image):  # a common habit from other networks: x / 255
        from camutils.images import center_crop, resize

        view = resize(center_crop(image, 224 / 256), (224, 224), interpolation="bicubic")
        return view.astype(np.float32) / 255.0

    return right, unit_scaled, {}


@exercise(
    "02.preprocess",
    "EfficientNet-Lite0's preprocessing, by hand",
    """
    Write a function `preprocess(image)` that turns one RGB uint8 photo of any size into the
    input EfficientNet-Lite0 expects: a float32 array of shape (224, 224, 3).

      1. crop the central square whose side is 224/256 of the photo's shorter side,
      2. resize it to 224 x 224 with bicubic interpolation,
      3. map each value x in 0..255 to (x - 127) / 128.

    `camutils.images.center_crop(image, 224 / 256)` and
    `camutils.resize(image, (224, 224), interpolation="bicubic")` do steps 1 and 2.
    The checker compares your function with the zoo's preprocessing on a few pictures of
    different shapes (and on `images=` if you pass them).
    """,
    hints=[
        "Step 1 is center_crop(image, 224 / 256); step 2 is resize(square, (224, 224), "
        "interpolation='bicubic').",
        "Convert to float32 before subtracting: uint8 arithmetic wraps around (0 - 127 = 129).",
        "The result should lie in [-127/128, 1]: about -0.99 for black, 1.0 for white.",
    ],
    solution="""
    from camutils.images import center_crop, resize

    def preprocess(image):
        square = center_crop(image, 224 / 256)
        view = resize(square, (224, 224), interpolation="bicubic")
        return (view.astype(np.float32) - 127.0) / 128.0
    """,
    demo=_demo_preprocess,
    minutes=8,
)
def check_preprocess(preprocess, images=None):
    from ...images import resize, to_rgb_uint8

    pictures = _smooth_images() + [to_rgb_uint8(im) for im in (images or [])]
    for number, image in enumerate(pictures, start=1):
        name = f"picture {number} ({image.shape[0]} x {image.shape[1]})"
        got = np.asarray(preprocess(image.copy()))
        if got.shape != (224, 224, 3):
            raise Wrong(f"On {name} the result has shape {got.shape}; expected (224, 224, 3) "
                        "(one image, no batch axis).")
        if not np.issubdtype(got.dtype, np.floating):
            raise Wrong(f"The result has dtype {got.dtype}: convert to float32 before the "
                        "arithmetic.")
        got = got.astype(np.float64)
        expected = _lite0_reference(image).astype(np.float64)
        # One grey level on average: room for another bicubic implementation, not for a
        # different crop, scale or channel order.
        tolerance = 1.0 / 128.0
        if np.abs(got - expected).mean() <= tolerance:
            continue
        if got.min() >= 0.0 and np.abs(got * 255.0 - (expected * 128.0 + 127.0)).mean() <= 1.0:
            raise Wrong("Your values run from 0 to 1 (x / 255). This network was trained on "
                        "(x - 127) / 128, from about -1 to 1.")
        if np.abs(got[..., ::-1] - expected).mean() <= tolerance:
            raise Wrong("The colour channels are in the wrong order (BGR): the network expects "
                        "RGB, which is what camutils.load_image returns.")
        squashed = (resize(image, (224, 224), interpolation="bicubic").astype(np.float64)
                    - 127.0) / 128.0
        if np.abs(got - squashed).mean() <= tolerance:
            raise Wrong("You resized the whole photo to 224 x 224: crop the central square "
                        "(224/256 of the shorter side) first, so that the object keeps its "
                        "shape and its scale is the one the network was trained on.")
        raise Wrong(f"On {name} your input differs from Lite0's by "
                    f"{np.abs(got - expected).mean() * 128:.1f} grey levels on average: check "
                    "the crop (central square, 224/256 of the shorter side), the size and the "
                    "scaling.")
    return "Crop, bicubic resize and (x - 127) / 128: this is what the network sees."


# --------------------------------------------------------------------------- 02.cam_by_hand


def _reference_cam(features, weights, class_index) -> np.ndarray:
    """The raw CAM of one class for one image's features (h, w, channels)."""
    return np.einsum("hwk,k->hw", np.asarray(features), np.asarray(weights)[:, int(class_index)])


def _demo_cam_by_hand():
    rng = np.random.default_rng(0)
    features = rng.uniform(0, 6, size=(3, 4, 8)).astype(np.float32)
    weights = rng.normal(size=(8, 5)).astype(np.float32)
    context = {"features": features, "weights": weights, "class_index": 3}
    right = np.einsum("hwk,k->hw", features, weights[:, 3])
    wrong = np.maximum(right, 0.0)  # a ReLU: the raw map keeps its negative evidence
    return right, wrong, context


@exercise(
    "02.cam_by_hand",
    "The CAM of another class, by hand",
    """
    Compute the raw class activation map of the class `class_index` for one image:

        M(y, x) = sum_k  weights[k, class_index] * features[y, x, k]

    `features` is the image's last spatial layer, shape (h, w, channels); `weights` is the
    Dense layer's kernel, shape (channels, classes). Give the (h, w) map before any ReLU,
    upsampling or normalisation. One `np.einsum` does it.
    """,
    hints=[
        "Take the class's column of the kernel: weights[:, class_index] has one weight per "
        "channel.",
        "np.einsum('hwk,k->hw', features, w) multiplies each channel by its weight and sums "
        "over k.",
    ],
    solution="""
    cam_second = np.einsum("hwk,k->hw", features, weights[:, class_index])
    """,
    demo=_demo_cam_by_hand,
    minutes=5,
    reference=_reference_cam,
)
def check_cam_by_hand(answer, features, weights, class_index):
    features = np.asarray(features, np.float64)
    weights = np.asarray(weights, np.float64)
    expected = np.einsum("hwk,k->hw", features, weights[:, int(class_index)])
    got = np.asarray(answer, np.float64)
    scale = float(np.abs(expected).max())
    if got.shape != expected.shape:
        if got.shape == expected.T.shape:
            raise Wrong(f"Your map has shape {got.shape}, the transpose of {expected.shape}: "
                        "keep the (height, width) order of the features.")
        raise Wrong(f"Your map has shape {got.shape}; expected {expected.shape}, the spatial "
                    "size of the features (no upsampling yet).")
    if not np.all(np.isfinite(got)):
        raise Wrong("Your map contains NaN or infinite values.")
    if _close(got, expected, scale):
        return (f"M = sum_k w_k f_k for class {int(class_index)}; its mean plus the bias is "
                "that class's logit.")
    if _close(got, np.maximum(expected, 0.0), scale):
        raise Wrong("You applied a ReLU: give the raw map, with its negative values (they are "
                    "evidence against the class, and the logit needs them).")
    peak = expected.max()
    if peak > 0 and (_close(got, expected / peak, 1.0)
                     or _close(got, np.maximum(expected, 0.0) / peak, 1.0)):
        raise Wrong("Your map is normalised: give the raw weighted sum, without dividing by "
                    "its maximum.")
    all_maps = np.einsum("hwk,kc->chw", features, weights)
    for other in range(all_maps.shape[0]):
        if other != int(class_index) and _close(got, all_maps[other], scale):
            raise Wrong(f"That is the map of class {other}; use column {int(class_index)} of "
                        "the weights.")
    raise Wrong("The values are not sum_k weights[k, class_index] * features[:, :, k].")


# --------------------------------------------------------------------------- 02.logit_from_map


def _demo_logit_from_map():
    rng = np.random.default_rng(1)
    cam_map = rng.normal(2.0, 3.0, size=(7, 7)).astype(np.float32)
    bias = -0.75
    right = float(cam_map.mean() + bias)
    wrong = float(cam_map.sum() + bias)  # GAP averages: forgetting to divide by h * w
    return right, wrong, {"cam_map": cam_map, "bias": bias}


@exercise(
    "02.logit_from_map",
    "The logit from the map",
    """
    The network's head is global average pooling followed by a Dense layer, so a class's
    logit can be read off its raw CAM. Given the raw map `cam_map` (h, w), before any ReLU,
    and the class's bias `bias`, compute the class's logit as one number.
    """,
    hints=[
        "Global average pooling averages each channel over the h * w positions; the Dense "
        "layer is linear, so the average can be taken after the weighted sum.",
        "logit = (mean of the map over all positions) + bias.",
    ],
    solution="""
    logit = float(cam_map.mean() + bias)
    """,
    demo=_demo_logit_from_map,
    minutes=3,
)
def check_logit_from_map(answer, cam_map, bias):
    cam_map = np.asarray(cam_map, np.float64)
    bias = float(bias)
    got = np.asarray(answer, np.float64)
    if got.size != 1:
        raise Wrong(f"Give one number (the logit), not an array of shape {got.shape}.")
    got = float(got.reshape(()))
    expected = cam_map.mean() + bias

    def near(value):
        return abs(got - value) <= 1e-4 * max(1.0, abs(value))

    if near(expected):
        return "logit = mean(M) + b: the map spreads the logit over the image."
    if near(cam_map.sum() + bias):
        raise Wrong("You summed the map: global average pooling takes the mean, so divide by "
                    "the number of positions (h * w).")
    if near(cam_map.mean()):
        raise Wrong("Almost: the Dense layer adds the class's bias after the average.")
    if near(np.maximum(cam_map, 0.0).mean() + bias):
        raise Wrong("You dropped the negative values (a ReLU): the logit counts the evidence "
                    "against the class too.")
    raise Wrong(f"Your logit {got:.4f} is not the map's mean plus the bias.")


# --------------------------------------------------------------------------- 02.which_tile


def _demo_which_tile():
    def right(heat_map, boxes):
        y, x = np.unravel_index(np.argmax(heat_map), np.shape(heat_map))
        for index, (x0, y0, x1, y1) in enumerate(boxes):
            if x0 <= x < x1 and y0 <= y < y1:
                return index
        return None

    def swapped(heat_map, boxes):  # reads numpy's (row, column) as (x, y)
        x, y = np.unravel_index(np.argmax(heat_map), np.shape(heat_map))
        for index, (x0, y0, x1, y1) in enumerate(boxes):
            if x0 <= x < x1 and y0 <= y < y1:
                return index
        return None

    return right, swapped, {}


def _tile_cases():
    """Maps over a 2 x 3 collage of 20 x 30 tiles, each with its peak in a known tile."""
    from ...images import collage_boxes

    boxes = collage_boxes(6, (20, 30), cols=3, pad=2)
    height = max(b[3] for b in boxes) + 2
    width = max(b[2] for b in boxes) + 2
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    rng = np.random.default_rng(3)
    cases = []
    for index in (4, 0, 2, 5, 1, 3):
        x0, y0, x1, y1 = boxes[index]
        cy, cx = rng.uniform(y0 + 3, y1 - 3), rng.uniform(x0 + 3, x1 - 3)
        decoy = boxes[(index + 3) % 6]  # a weaker bump in another tile
        dy, dx = (decoy[1] + decoy[3]) / 2, (decoy[0] + decoy[2]) / 2
        heat = (np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 18.0)
                + 0.6 * np.exp(-((yy - dy) ** 2 + (xx - dx) ** 2) / 18.0))
        cases.append((heat.astype(np.float32), boxes, index))
    return cases


def _peak_tile(heat_map, boxes):
    y, x = np.unravel_index(int(np.argmax(heat_map)), np.shape(heat_map))
    hits = [i for i, (x0, y0, x1, y1) in enumerate(boxes) if x0 <= x < x1 and y0 <= y < y1]
    return hits[0] if hits else None


@exercise(
    "02.which_tile",
    "Which tile does a map point to?",
    """
    Write a function `which_tile(heat_map, boxes)` that returns the index of the box that
    contains the map's maximum (its peak), or None if the peak lies in no box.

    `heat_map` is a (height, width) array; `boxes` is a list of (x0, y0, x1, y1) boxes in
    pixels with exclusive ends, as `camutils.images.collage_boxes` returns them: x runs
    along the width (columns), y along the height (rows). The checker tries collages that
    are wider than tall (and the maps you pass as `maps=`, `boxes=`).
    """,
    hints=[
        "np.unravel_index(np.argmax(heat_map), heat_map.shape) gives the peak as (row, column).",
        "A row is a y coordinate and a column an x coordinate: numpy's order is (y, x).",
        "The peak (x, y) is in box (x0, y0, x1, y1) when x0 <= x < x1 and y0 <= y < y1.",
    ],
    solution="""
    def which_tile(heat_map, boxes):
        y, x = np.unravel_index(np.argmax(heat_map), np.shape(heat_map))
        for index, (x0, y0, x1, y1) in enumerate(boxes):
            if x0 <= x < x1 and y0 <= y < y1:
                return index
        return None
    """,
    demo=_demo_which_tile,
    minutes=8,
    reference=_peak_tile,
)
def check_which_tile(which_tile, maps=None, boxes=None):
    cases = _tile_cases()
    if maps is not None:
        if boxes is None:
            raise Wrong("Pass boxes= together with maps= (the boxes of the collage's tiles).")
        cases += [(np.asarray(m, np.float32), list(boxes), _peak_tile(m, boxes)) for m in maps]
    for number, (heat, tile_boxes, expected) in enumerate(cases, start=1):
        got = which_tile(heat.copy(), list(tile_boxes))
        if got is None and expected is None:
            continue
        if got is None or isinstance(got, bool) or not isinstance(got, (int, np.integer)):
            raise Wrong(f"Map {number}: expected the tile index {expected}, got {got!r}.")
        if int(got) != expected:
            x0, y0, x1, y1 = tile_boxes[expected]
            raise Wrong(f"Map {number} ({heat.shape[0]} x {heat.shape[1]}) peaks in tile "
                        f"{expected}, the box x in [{x0}, {x1}), y in [{y0}, {y1}); you said "
                        f"{int(got)}. Check the order of (row, column) against (x, y).")
    return "The peak's tile, with rows as y and columns as x."
