"""Notebook 06 (a case study in shortcut learning): where a map's energy goes, the accuracy
of a shortcut model when the leak is partial, and an augmentation that breaks the shortcut."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise

# --------------------------------------------------------------------------- 06.energy_split


def _split_cases() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Small maps with a marker square and an object disc that never overlap.

    Some maps peak on the marker, some on the object, some elsewhere; all have negative
    values; the last has no positive value at all (its shares are 0).
    """
    rng = np.random.default_rng(60)
    n, h, w = 9, 20, 28
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    maps = np.empty((n, h, w))
    marker = np.zeros((n, h, w), bool)
    obj = np.zeros((n, h, w), bool)
    for i in range(n):
        my, mx = (1, 1) if i % 2 == 0 else (h - 5, w - 5)
        marker[i, my:my + 4, mx:mx + 4] = True
        cy, cx = rng.uniform(8, 12), rng.uniform(10, 18)
        obj[i] = (yy - cy) ** 2 + (xx - cx) ** 2 <= rng.uniform(9, 20)
        py, px = [(my + 2, mx + 2), (cy, cx), (rng.uniform(0, h), rng.uniform(0, w))][i % 3]
        bump = np.exp(-((yy - py) ** 2 + (xx - px) ** 2) / (2 * rng.uniform(2, 4) ** 2))
        maps[i] = 3 * bump + 0.3 * rng.standard_normal((h, w)) - 0.4
    maps[-1] = -np.abs(maps[-1]) - 0.1  # no positive value: no energy
    assert not (marker & obj).any()
    return maps.astype(np.float32), marker, obj


def _reference_split(maps, marker_masks, object_masks) -> np.ndarray:
    positive = np.maximum(np.asarray(maps, np.float64), 0)
    marker = np.asarray(marker_masks, bool)
    obj = np.asarray(object_masks, bool)
    parts = np.stack([(positive * marker).sum(axis=(1, 2)), (positive * obj).sum(axis=(1, 2)),
                      (positive * ~(marker | obj)).sum(axis=(1, 2))], axis=1)
    total = positive.sum(axis=(1, 2))[:, None]
    return np.divide(parts, total, out=np.zeros_like(parts), where=total > 0)


def _demo_energy_split():
    def right(maps, marker_masks, object_masks):
        positive = np.maximum(maps, 0).astype(np.float64)
        total = positive.sum(axis=(1, 2))
        parts = [(positive * region).sum(axis=(1, 2))
                 for region in (marker_masks, object_masks, ~(marker_masks | object_masks))]
        shares = np.stack(parts, axis=1)
        return np.divide(shares, total[:, None], out=np.zeros_like(shares), where=total[:, None] > 0)

    def mean_values(maps, marker_masks, object_masks):  # compares average values, not energy
        positive = np.maximum(maps, 0).astype(np.float64)
        rest = ~(marker_masks | object_masks)
        return np.stack([(positive * r).sum(axis=(1, 2)) / np.maximum(r.sum(axis=(1, 2)), 1)
                         for r in (marker_masks, object_masks, rest)], axis=1)

    return right, mean_values, {}


@exercise(
    "06.energy_split",
    "Where does a map's energy go?",
    """
    Write a function `energy_split(maps, marker_masks, object_masks)` that returns, for each
    map, the shares of its positive energy that lie on the marker, on the object and
    elsewhere, as a float array (n, 3):

        energy            = max(map, 0)                  (negative values are not energy)
        share on a region = sum of energy inside the region / sum of energy over the map

    `maps` is float (n, height, width); `marker_masks` and `object_masks` are bool arrays of
    the same shape, which never overlap. "Elsewhere" is every pixel on neither. The three
    shares of a map add up to 1; a map with no positive value has no energy: give it
    (0, 0, 0), not NaN. No Python loop over the images is needed.
    The checker compares your function with its own on a few small maps (and on `maps=`,
    `marker_masks=`, `object_masks=` if you pass them).
    """,
    hints=[
        "positive = np.maximum(maps, 0); then (positive * marker_masks).sum(axis=(1, 2)) is "
        "the energy on the marker, one number per map.",
        "Elsewhere is ~(marker_masks | object_masks). Stack the three sums with axis=1.",
        "Divide by positive.sum(axis=(1, 2)), guarded: np.divide(parts, total[:, None], "
        "out=np.zeros_like(parts), where=total[:, None] > 0).",
    ],
    solution="""
    def energy_split(maps, marker_masks, object_masks):
        positive = np.maximum(maps, 0).astype(np.float64)
        elsewhere = ~(marker_masks | object_masks)
        parts = np.stack([(positive * region).sum(axis=(1, 2))
                          for region in (marker_masks, object_masks, elsewhere)], axis=1)
        total = positive.sum(axis=(1, 2))[:, None]
        return np.divide(parts, total, out=np.zeros_like(parts), where=total > 0)
    """,
    demo=_demo_energy_split,
    minutes=10,
    reference=_reference_split,
)
def check_energy_split(energy_split, maps=None, marker_masks=None, object_masks=None):
    if not callable(energy_split):
        raise Wrong("Give the function itself, energy_split, not its result.")
    cases = [_split_cases()]
    given = [maps is None, marker_masks is None, object_masks is None]
    if not all(given):
        if any(given):
            raise Wrong("Pass maps=, marker_masks= and object_masks= together (or none of them).")
        cases.append((np.asarray(maps, np.float32), np.asarray(marker_masks, bool),
                      np.asarray(object_masks, bool)))
    for number, (m, marker, obj) in enumerate(cases, start=1):
        with np.errstate(all="ignore"):
            got = np.asarray(energy_split(m.copy(), marker.copy(), obj.copy()), np.float64)
        expected = _reference_split(m, marker, obj)
        if got.shape == expected.shape[::-1]:
            raise Wrong(f"Batch {number}: the result has shape {got.shape}; give one row per "
                        f"map, {expected.shape} (stack with axis=1).")
        if got.shape != expected.shape:
            raise Wrong(f"Batch {number}: the result has shape {got.shape}; expected "
                        f"{expected.shape}: (marker, object, elsewhere) for each map.")
        if not np.all(np.isfinite(got)):
            i = int(np.flatnonzero(~np.isfinite(got).all(axis=1))[0])
            raise Wrong(f"Batch {number}, map {i}: NaN or inf. A map with no positive value has "
                        "no energy: its shares are (0, 0, 0) (guard the division).")
        if np.allclose(got, expected, atol=1e-5):
            continue
        bad = np.flatnonzero(~np.isclose(got, expected, atol=1e-5).all(axis=1))
        i = int(bad[0])
        raw = np.asarray(m[i], np.float64)
        regions = (marker[i], obj[i], ~(marker[i] | obj[i]))
        positive = np.maximum(raw, 0)
        if positive.sum() == 0 and np.isclose(got[i].sum(), 1.0):
            raise Wrong(f"Batch {number}, map {i} has no positive value, so no energy anywhere: "
                        "its shares are (0, 0, 0); 'elsewhere' is not 1 - marker - object here.")
        if raw.sum() != 0 and np.allclose(got[i], [raw[r].sum() / raw.sum() for r in regions],
                                          atol=1e-5):
            raise Wrong(f"Batch {number}, map {i}: you kept the negative values. Energy is "
                        "np.maximum(map, 0): negative values would cancel positive ones.")
        if np.allclose(got[i], [positive[r].mean() if r.any() else 0.0 for r in regions],
                       atol=1e-5):
            raise Wrong(f"Batch {number}, map {i}: these are the mean values on each region. The "
                        "share is the region's sum of energy divided by the whole map's sum: a "
                        "small region can hold a large share.")
        if np.allclose(got[i], expected[i][[1, 0, 2]], atol=1e-5):
            raise Wrong(f"Batch {number}, map {i}: the marker and object columns are swapped: "
                        "the order is (marker, object, elsewhere).")
        raise Wrong(f"Batch {number}, map {i}: expected shares {np.round(expected[i], 4).tolist()}, "
                    f"got {np.round(got[i], 4).tolist()}.")
    return ("Energy on the marker, on the object and elsewhere, as shares of the map's total "
            "positive energy.")


# --------------------------------------------------------------------------- 06.partial_leak


def _reference_partial_leak(confusion, fraction: float) -> float:
    counts = np.asarray(confusion, np.float64)
    rates = counts / counts.sum(axis=1, keepdims=True)   # P(prediction | marker colour)
    k = len(counts)
    return float(fraction * np.mean(np.diag(rates)) + (1 - fraction) / k)


def _demo_partial_leak():
    confusion = np.array([[40, 5, 5, 0], [2, 12, 4, 2], [0, 0, 30, 0], [10, 0, 0, 50]])
    fraction = 0.4
    right = _reference_partial_leak(confusion, fraction)
    wrong = fraction * np.trace(confusion) / confusion.sum()  # forgets the random markers
    return right, wrong, {"confusion": confusion, "fraction": fraction}


@exercise(
    "06.partial_leak",
    "Predict the accuracy at a new site from a confusion matrix",
    """
    A model reads only the marker. Its behaviour is summed up by a confusion matrix measured
    on images whose marker colour was random: `confusion[m, p]` counts the images whose
    marker shows class m and which the model classified as class p (rows: marker colour,
    columns: prediction). Rows may hold different numbers of images.

    At a new site, a fraction `fraction` of the images carry a marker that agrees with the
    label (the leak); the others carry a marker whose colour is drawn uniformly among all K
    classes, independently of the label (it agrees by chance 1 time in K). The labels are
    balanced. Predict the model's accuracy there, as a fraction in [0, 1] (a float).
    Assume the prediction depends only on the marker, as the matrix suggests.
    """,
    hints=[
        "Turn the counts into rates first: rates = confusion / confusion.sum(axis=1, "
        "keepdims=True) is P(prediction | marker colour); rows may differ in size.",
        "A leaking image with label c is right with probability rates[c, c]; averaged over "
        "balanced labels, that is np.mean(np.diag(rates)).",
        "An image with a random marker is right with probability (1/K) sum_m rates[m, c]; "
        "averaged over the K labels that is 1/K, since each row of rates adds up to 1.",
        "fraction * np.mean(np.diag(rates)) + (1 - fraction) / K.",
    ],
    solution="""
    rates = confusion / confusion.sum(axis=1, keepdims=True)
    K = len(confusion)
    predicted_accuracy = fraction * np.mean(np.diag(rates)) + (1 - fraction) / K
    """,
    demo=_demo_partial_leak,
    minutes=10,
    reference=lambda confusion, fraction: _reference_partial_leak(
        np.asarray(confusion, np.float64), float(fraction)),
)
def check_partial_leak(answer, confusion, fraction):
    counts = np.asarray(confusion, np.float64)
    if counts.ndim != 2 or counts.shape[0] != counts.shape[1] or (counts.sum(axis=1) <= 0).any():
        raise ValueError("confusion must be a square matrix of counts with no empty row.")
    fraction = float(fraction)
    expected = _reference_partial_leak(counts, fraction)
    try:
        got = float(np.asarray(answer, np.float64).reshape(()))
    except (TypeError, ValueError):
        raise Wrong(f"Give one number (the predicted accuracy), not {type(answer).__name__} "
                    f"of shape {np.shape(answer)}.") from None
    if not np.isfinite(got):
        raise Wrong("Your answer is NaN or infinite.")
    if abs(got - expected) <= 1e-3:
        return (f"About {expected:.1%}: the leaking images are right as often as the model reads "
                f"the marker right, the others about 1 time in {len(counts)}.")
    if 1.0 < got <= 100.0 and abs(got / 100 - expected) <= 1e-3:
        raise Wrong("That looks like a percentage: give the accuracy as a fraction in [0, 1].")
    k = len(counts)
    rates = counts / counts.sum(axis=1, keepdims=True)
    if abs(got - fraction * np.mean(np.diag(rates))) <= 1e-3:
        raise Wrong("You counted only the leaking images. The others are sometimes right too: "
                    f"their random marker agrees with the label 1 time in {k}.")
    pooled = np.trace(counts) / counts.sum()
    if abs(got - (fraction * pooled + (1 - fraction) / k)) <= 1e-3:
        raise Wrong("The rows hold different numbers of images: turn each row into rates "
                    "(divide by its own sum) before taking the diagonal, so that every class "
                    "counts equally (the labels are balanced).")
    if abs(got - (fraction + (1 - fraction) / k)) <= 1e-3:
        raise Wrong("That assumes the model reads every marker right. Use the diagonal of the "
                    "matrix: how often each marker colour gives its own class.")
    raise Wrong(f"Not {got:.4f}. Split the images: a share `fraction` that leak, and the rest "
                "whose marker is random.")


# --------------------------------------------------------------------------- 06.break_marker


def _marker_reader_accuracy(images, marker_masks, labels, levels: int = 4) -> float:
    """How well a lookup table from the marker's mean colour predicts the label, held out.

    Each image's marker pixels are averaged to one RGB colour, quantised to ``levels`` per
    channel. A table (colour bin -> most frequent label) is fitted on the even-numbered
    images and scored on the odd-numbered ones (bins not seen in fitting predict the most
    frequent label). Any colour code that depends on the label, whatever it is, is read by
    such a table; a marker that carries no information leaves it at chance.
    """
    images = np.asarray(images, np.float64)
    masks = np.asarray(marker_masks, bool)
    labels = np.asarray(labels, np.int64)
    count = np.maximum(masks.sum(axis=(1, 2)), 1)[:, None]
    mean_colour = (images * masks[..., None]).sum(axis=(1, 2)) / count
    q = np.clip((mean_colour * levels / 256.0).astype(np.int64), 0, levels - 1)
    bins = (q[:, 0] * levels + q[:, 1]) * levels + q[:, 2]
    k = int(labels.max()) + 1
    fit, test = np.arange(0, len(labels), 2), np.arange(1, len(labels), 2)
    table = np.zeros((levels ** 3, k), np.int64)
    np.add.at(table, (bins[fit], labels[fit]), 1)
    fallback = int(np.bincount(labels[fit], minlength=k).argmax())
    guess = np.where(table.sum(axis=1) > 0, table.argmax(axis=1), fallback)
    return float(np.mean(guess[bins[test]] == labels[test]))


def _default_batch():
    from ..shapes import make_shortcut

    data = make_shortcut(360, seed=66, leak=True)
    return data.images, data.marker_masks, data.labels


def _random_marker_colours(images, marker_masks, rng):
    """Every marker repainted in a random colour: the marker stays, its colour tells nothing."""
    colours = rng.integers(0, 256, size=(len(images), 3))
    return np.where(np.asarray(marker_masks)[..., None], colours[:, None, None, :],
                    images).astype(np.uint8)


def _demo_break_marker():
    def right(images, marker_masks, rng):
        colours = rng.integers(0, 256, size=(len(images), 3))
        return np.where(marker_masks[..., None], colours[:, None, None, :], images).astype(np.uint8)

    def inverted(images, marker_masks, rng):  # new colours, but still one per class: still leaks
        return np.where(marker_masks[..., None], 255 - images, images).astype(np.uint8)

    return right, inverted, {}


@exercise(
    "06.break_marker",
    "An augmentation that breaks the shortcut",
    """
    Write a function `break_marker(images, marker_masks, rng)` that returns a new batch of
    images in which the marker no longer tells the label. `images` is uint8
    (n, height, width, 3), `marker_masks` bool (n, height, width), the marker's pixels, and
    `rng` a `np.random.Generator` to draw any random numbers from.

    Change only the marker's pixels (the object and the background must stay exactly as
    they are: they are what the network should learn from), and return uint8 images of the
    same shape. Two ideas that work: give every marker a random colour, or paint every
    marker over with the same colour.

    The checker runs your function on a batch of leaking images (or on `images=`,
    `marker_masks=`, `labels=` if you pass them) and then tries to read the label from
    the marker's mean colour with a lookup table, fitted on half the batch and scored on the
    other half. With the leak it reads nearly every label; after your augmentation it must
    do no better than chance, about 1 in 6.
    """,
    hints=[
        "np.where(marker_masks[..., None], new_colours, images) replaces only the marker's "
        "pixels; marker_masks[..., None] broadcasts over the 3 colour channels.",
        "One random colour per image: rng.integers(0, 256, size=(len(images), 3)), shaped "
        "(n, 1, 1, 3) to broadcast over each image's pixels.",
        "A colour that is still a function of the old colour (inverted, shifted, swapped "
        "between classes) still tells the label: the table learns any fixed code.",
    ],
    solution="""
    def break_marker(images, marker_masks, rng):
        colours = rng.integers(0, 256, size=(len(images), 3))
        return np.where(marker_masks[..., None], colours[:, None, None, :], images).astype(np.uint8)
    """,
    demo=_demo_break_marker,
    minutes=8,
    reference=_random_marker_colours,
)
def check_break_marker(break_marker, images=None, marker_masks=None, labels=None):
    if not callable(break_marker):
        raise Wrong("Give the function itself, break_marker, not its result.")
    given = [images is None, marker_masks is None, labels is None]
    if all(given):
        images, marker_masks, labels = _default_batch()
    elif any(given):
        raise Wrong("Pass images=, marker_masks= and labels= together (or none of them).")
    images = np.asarray(images)
    marker_masks = np.asarray(marker_masks, bool)
    labels = np.asarray(labels, np.int64)
    chance = 1.0 / (int(labels.max()) + 1)
    before = _marker_reader_accuracy(images, marker_masks, labels)
    out = break_marker(images.copy(), marker_masks.copy(), np.random.default_rng(6))
    if out is None:
        raise Wrong("Your function returns None: return the new batch of images.")
    out = np.asarray(out)
    if out.shape != images.shape:
        raise Wrong(f"Your images have shape {out.shape}; expected {images.shape}, the same as "
                    "the input.")
    if out.dtype != np.uint8:
        raise Wrong(f"Your images are {out.dtype}; return uint8, as the input (use "
                    ".astype(np.uint8) after np.where, or work on a copy).")
    outside = ~marker_masks
    changed = (out != images).any(axis=-1) & outside
    if changed.any():
        i = int(np.flatnonzero(changed.any(axis=(1, 2)))[0])
        raise Wrong(f"Image {i}: {int(changed[i].sum())} pixels outside the marker changed. Touch "
                    "only the marker: the object and background are what the network must "
                    "learn from.")
    after = _marker_reader_accuracy(out, marker_masks, labels)
    if after > chance + 0.12:
        unchanged = (out == images).all(axis=(1, 2, 3)).mean()
        detail = (f" ({unchanged:.0%} of the images came back unchanged)" if unchanged > 0 else "")
        raise Wrong(f"The marker still gives the label away: a lookup table from its mean colour "
                    f"reads {after:.0%} of the held-out labels (chance is {chance:.0%}; before your "
                    f"augmentation {before:.0%}){detail}. The new colour must not depend on the "
                    "old one.")
    return (f"From the marker's colour a lookup table now reads {after:.0%} of the labels "
            f"(before: {before:.0%}; chance: {chance:.0%}). Trained on such images, a network "
            "gains nothing from the marker.")
