"""Notebook 09 (beyond one label): a target as a function of the outputs, one detection's
score (the pattern for any detector), and the edge band of a mask."""

from __future__ import annotations

import numpy as np

from ..shapes import SHAPE_CLASSES
from . import Wrong, exercise

STAR, CROSS = SHAPE_CLASSES.index("star"), SHAPE_CLASSES.index("cross")


def _per_image(answer, outputs, *args):
    """The answer's values on ``outputs`` (and ``args``), traced in a tf.function as
    camutils traces a target (so ``.numpy()`` or a Python loop over images fails here as
    it would there), as a numpy array."""
    import tensorflow as tf

    tensors = [tf.constant(outputs)] + [tf.constant(a) for a in args]
    result = tf.function(lambda *t: answer(*t), autograph=False)(*tensors)
    return np.asarray(result)


def _one_per_image(got: np.ndarray, n: int) -> np.ndarray:
    if got.shape not in ((n,), (n, 1)):
        raise Wrong(f"A target gives one value per image: shape ({n},); yours has shape "
                    f"{got.shape}.")
    return got.reshape(n)


# --------------------------------------------------------------------------- 09.star_not_cross


def _logits(seed: int = 91) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 3, (7, len(SHAPE_CLASSES))).astype(np.float32)


def _star_not_cross(outputs):
    return outputs[:, STAR] - outputs[:, CROSS]


def _demo_star_not_cross():
    def right(outputs):
        return outputs[:, STAR] - outputs[:, CROSS]

    def star_only(outputs):  # "why star", not "why star rather than cross"
        return outputs[:, STAR]

    return right, star_only, {}


@exercise(
    "09.star_not_cross",
    "Why a star rather than a cross? A target as a function",
    """
    Write `star_not_cross(outputs)`: the score that asks why the classifier says "star"
    rather than "cross", as a function camutils can trace into its compiled pass.

        outputs   the GAP classifier's logits, a tensor (N, 6) in SHAPE_CLASSES order
        STAR      the index of "star", CROSS that of "cross" (defined above)

    Return one value per image, shape (N,): the star's logit minus the cross's. Use tensor
    operations (indexing and arithmetic work on tensors); no loop over the images.
    """,
    [
        "outputs[:, i] is column i of the logits: one value per image.",
        "The contrast of two classes is the difference of their logits.",
        "return outputs[:, STAR] - outputs[:, CROSS]",
    ],
    """
    def star_not_cross(outputs):
        return outputs[:, STAR] - outputs[:, CROSS]
    """,
    demo=_demo_star_not_cross,
    minutes=5,
    reference=_star_not_cross,
)
def _check_star_not_cross(answer):
    logits = _logits()
    got = _one_per_image(_per_image(answer, logits), len(logits))
    expected = logits[:, STAR] - logits[:, CROSS]
    if np.allclose(got, -expected, atol=1e-5):
        raise Wrong("The sign is the other way round: that is why a cross rather than a star.")
    if not np.allclose(got, expected, atol=1e-5):
        raise Wrong(f"On logits whose star - cross differences are {np.round(expected, 2)[:3]}"
                    f"..., your function gives {np.round(got, 2)[:3]}...: the score is the "
                    "star's logit minus the cross's.")
    return "camutils.targets.Contrast('star', 'cross') computes the same score."


# --------------------------------------------------------------------------- 09.detection_score


def _detector_case(seed: int = 92):
    rng = np.random.default_rng(seed)
    outputs = rng.normal(0, 2, (5, 16, 16, 10)).astype(np.float32)
    cells = np.stack([rng.integers(0, 16, 5), rng.integers(0, 16, 5)], axis=1).astype(np.int32)
    cells[0] = (3, 12)  # a cell whose row and column differ, so that swapping them shows
    labels = rng.integers(0, 6, 5).astype(np.int32)
    return outputs, cells, labels


def _detection_score(outputs, cells, labels):
    import tensorflow as tf

    n = tf.range(tf.shape(outputs)[0])
    index = tf.stack([n, tf.cast(cells[:, 0], tf.int32), tf.cast(cells[:, 1], tf.int32),
                      tf.cast(labels, tf.int32)], axis=1)
    return tf.gather_nd(outputs, index)


def _demo_detection_score():
    import tensorflow as tf

    def right(outputs, cells, labels):
        n = tf.range(tf.shape(outputs)[0])
        return tf.gather_nd(outputs, tf.stack([n, cells[:, 0], cells[:, 1], labels], axis=1))

    def column_first(outputs, cells, labels):  # (col, row): the transposed cell
        n = tf.range(tf.shape(outputs)[0])
        return tf.gather_nd(outputs, tf.stack([n, cells[:, 1], cells[:, 0], labels], axis=1))

    return right, column_first, {}


@exercise(
    "09.detection_score",
    "The score of one detection: the pattern for any detector",
    """
    Write `detection_score(outputs, cells, labels)`: the one number of a detector's output
    that a detection's map explains (camutils.targets.Detection computes it for the course
    detector; for another detector you write this function).

        outputs   the detector's outputs, a tensor (N, 16, 16, 10): channels 0-5 are the
                  centre heat-map logits of the six classes
        cells     int tensor (N, 2): each image's detection cell, (row, col)
        labels    int tensor (N,): each detection's class

    Return (N,): outputs[i, row_i, col_i, label_i] for each image i. With tensors the
    per-image indexing is tf.gather_nd; no loop over the images.
    """,
    [
        "tf.gather_nd(outputs, index) picks outputs[index[i]] for each row of an int index "
        "(N, 4).",
        "Each row of the index is (image, row, col, class); tf.range(tf.shape(outputs)[0]) "
        "gives the images.",
        "index = tf.stack([tf.range(tf.shape(outputs)[0]), cells[:, 0], cells[:, 1], labels], "
        "axis=1)",
    ],
    """
    def detection_score(outputs, cells, labels):
        images = tf.range(tf.shape(outputs)[0])
        index = tf.stack([images, cells[:, 0], cells[:, 1], labels], axis=1)
        return tf.gather_nd(outputs, index)
    """,
    demo=_demo_detection_score,
    minutes=8,
    reference=_detection_score,
)
def _check_detection_score(answer):
    outputs, cells, labels = _detector_case()
    got = _one_per_image(_per_image(answer, outputs, cells, labels), len(outputs))
    expected = outputs[np.arange(len(outputs)), cells[:, 0], cells[:, 1], labels]
    swapped = outputs[np.arange(len(outputs)), cells[:, 1], cells[:, 0], labels]
    if not np.allclose(got, expected, atol=1e-6):
        if np.allclose(got, swapped, atol=1e-6):
            raise Wrong("Those are the values at (col, row): a cell is (row, col), and the "
                        "output's axes are (image, row, col, channel).")
        raise Wrong(f"For the cells {cells[:2].tolist()} and classes {labels[:2].tolist()} of "
                    f"the first two images, the scores are {np.round(expected[:2], 3)}; yours "
                    f"are {np.round(got[:2], 3)}.")
    return "The same scores as camutils.targets.Detection(cell=cells, label=labels)."


# --------------------------------------------------------------------------- 09.edge_band


def _edge_band(masks, width):
    from scipy import ndimage

    masks = np.asarray(masks, bool)
    inside = np.stack([ndimage.distance_transform_edt(m) for m in masks])
    return masks & (inside <= width)


def _masks() -> np.ndarray:
    """Three masks: a disc, a square touching nothing, and an empty one."""
    yy, xx = np.mgrid[:32, :32]
    disc = (yy - 15.5) ** 2 + (xx - 12.5) ** 2 <= 8.5 ** 2
    square = np.zeros((32, 32), bool)
    square[6:20, 14:28] = True
    return np.stack([disc, square, np.zeros((32, 32), bool)])


def _demo_edge_band():
    from scipy import ndimage

    def right(masks, width):
        depth = np.stack([ndimage.distance_transform_edt(m) for m in masks])
        return np.asarray(masks, bool) & (depth <= width)

    def outside_ring(masks, width):  # the band outside the object, not inside it
        depth = np.stack([ndimage.distance_transform_edt(~m) for m in masks])
        return ~np.asarray(masks, bool) & (depth <= width)

    return right, outside_ring, {}


@exercise(
    "09.edge_band",
    "The edge of a shape: a band inside its mask",
    """
    Write `edge_band(masks, width)`: for each mask, its pixels that lie at most `width`
    pixels from the outside of the object.

        masks     bool (n, H, W): the objects' masks
        width     a distance in pixels (2 below)
        depth     a pixel's Euclidean distance to the nearest pixel outside the mask:
                  scipy.ndimage.distance_transform_edt(mask) computes it for one mask

    Return bool (n, H, W): the pixels of each mask whose depth is at most `width` (an empty
    mask has none). The rest of each mask is its interior.
    """,
    [
        "distance_transform_edt(mask) is 0 outside the mask and, inside, the distance to the "
        "nearest pixel outside it.",
        "Compute it mask by mask (np.stack over a list) and compare with width.",
        "Keep only pixels of the mask: masks & (depth <= width).",
    ],
    """
    def edge_band(masks, width):
        depth = np.stack([ndimage.distance_transform_edt(m) for m in masks])
        return masks & (depth <= width)
    """,
    demo=_demo_edge_band,
    minutes=10,
    reference=_edge_band,
)
def _check_edge_band(answer):
    masks = _masks()
    for width in (1, 2, 3.5):
        got = np.asarray(answer(masks, width))
        expected = _edge_band(masks, width)
        if got.shape != expected.shape:
            raise Wrong(f"Expected one band per mask, shape {expected.shape}; got {got.shape}.")
        got = got.astype(bool)
        if (got & ~masks).any():
            raise Wrong("Your band has pixels outside the masks: the edge band lies inside "
                        "each object.")
        if not np.array_equal(got, expected):
            extra, missing = int((got & ~expected).sum()), int((expected & ~got).sum())
            raise Wrong(f"With width {width}: {extra} pixel(s) too many and {missing} missing. "
                        "A pixel belongs to the band when its Euclidean distance to the "
                        "outside is at most width.")
    return "The band of width 2 is the object's outer two pixels."
