"""Notebook 05 (evaluating explanations): a pointing-game hit, the energy in a box, the area
under a deletion curve, and the rank correlation of two maps, each by hand."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise

# --------------------------------------------------------------------------- shared helpers


def _blob_maps(seed: int, n: int = 12, size: tuple[int, int] = (24, 40)) -> np.ndarray:
    """Smooth float32 maps ``(n, H, W)`` with one bump each at a random place, plus noise.

    Wider than tall, and the bumps sit away from the diagonal, so that reading (row, column)
    as (x, y) gives a different pixel. Continuous values: no two pixels tie for the maximum.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    maps = []
    for _ in range(n):
        cy, cx = rng.uniform(2, h - 2), rng.uniform(2, w - 2)
        while abs(cy - cx) < 6:  # keep (y, x) and (x, y) apart
            cy, cx = rng.uniform(2, h - 2), rng.uniform(2, w - 2)
        bump = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * rng.uniform(2, 5) ** 2))
        maps.append(bump + 0.05 * rng.standard_normal((h, w)) - 0.1)  # some negative values
    return np.asarray(maps, np.float32)


def _blob_masks(maps: np.ndarray, seed: int) -> np.ndarray:
    """Masks that contain the peak for about half of the maps and miss it for the others."""
    rng = np.random.default_rng(seed)
    n, h, w = maps.shape
    masks = np.zeros(maps.shape, bool)
    for i, m in enumerate(maps):
        y, x = np.unravel_index(np.argmax(m), m.shape)
        if i % 2 == 1:  # move the mask away from the peak
            y, x = (y + h // 2) % h, (x + w // 2) % w
        ry, rx = rng.integers(2, 4), rng.integers(2, 5)
        masks[i, max(0, y - ry):y + ry + 1, max(0, x - rx):x + rx + 1] = True
    return masks


def _reference_hits(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    n = len(maps)
    flat = np.asarray(maps).reshape(n, -1).argmax(axis=1)
    return np.asarray(masks).reshape(n, -1)[np.arange(n), flat]


def _unique_peak(maps: np.ndarray) -> np.ndarray:
    """Which maps have exactly one pixel at their maximum (others have no single peak)."""
    top = maps.max(axis=(1, 2), keepdims=True)
    return (maps == top).sum(axis=(1, 2)) == 1


# --------------------------------------------------------------------------- 05.pointing_hit


def _demo_pointing_hit():
    def right(maps, masks):
        n, h, w = np.shape(maps)
        flat = np.asarray(maps).reshape(n, -1).argmax(axis=1)
        ys, xs = np.unravel_index(flat, (h, w))
        return np.asarray(masks)[np.arange(n), ys, xs]

    def swapped(maps, masks):  # reads numpy's (row, column) as (x, y)
        n, h, w = np.shape(maps)
        flat = np.asarray(maps).reshape(n, -1).argmax(axis=1)
        ys, xs = np.unravel_index(flat, (h, w))
        return np.asarray(masks)[np.arange(n), np.minimum(xs, h - 1), np.minimum(ys, w - 1)]

    return right, swapped, {}


@exercise(
    "05.pointing_hit",
    "The pointing game, by hand",
    """
    Write a function `pointing_hits(maps, masks)` that plays the pointing game with no
    tolerance: for each map, find its peak (the pixel of its maximum, the first one as
    np.argmax gives it) and say whether the object's mask is True there.

    `maps` is a float array (n, height, width); `masks` is a bool array of the same shape.
    Return a bool array (n,). The checker tries maps wider than tall (and the maps and
    masks you pass as `maps=`, `masks=`).
    """,
    hints=[
        "np.argmax on each map flattened to one row gives a flat index: "
        "maps.reshape(n, -1).argmax(axis=1).",
        "np.unravel_index(flat, (height, width)) turns it into (rows, columns) = (y, x).",
        "masks[np.arange(n), ys, xs] reads each image's mask at its own peak.",
    ],
    solution="""
    def pointing_hits(maps, masks):
        n, h, w = maps.shape
        ys, xs = np.unravel_index(maps.reshape(n, -1).argmax(axis=1), (h, w))
        return masks[np.arange(n), ys, xs]
    """,
    demo=_demo_pointing_hit,
    minutes=8,
)
def check_pointing_hit(pointing_hits, maps=None, masks=None):
    cases = []
    for seed in (0, 1):
        m = _blob_maps(seed)
        cases.append((m, _blob_masks(m, seed + 10)))
    if maps is not None:
        if masks is None:
            raise Wrong("Pass masks= together with maps= (one bool mask per map).")
        maps, masks = np.asarray(maps, np.float32), np.asarray(masks, bool)
        keep = _unique_peak(maps)  # a tied maximum has no single answer
        cases.append((maps[keep], masks[keep]))
    for number, (m, k) in enumerate(cases, start=1):
        got = np.asarray(pointing_hits(m.copy(), k.copy()))
        expected = _reference_hits(m, k)
        if got.shape != expected.shape:
            raise Wrong(f"Batch {number}: the result has shape {got.shape}; expected "
                        f"{expected.shape}, one hit or miss per map.")
        if got.dtype != bool:
            if not np.isin(got, (0, 1)).all():
                raise Wrong("Return True / False per map (a bool array), not coordinates or "
                            "scores.")
            got = got.astype(bool)
        if not np.array_equal(got, expected):
            i = int(np.flatnonzero(got != expected)[0])
            y, x = np.unravel_index(int(np.argmax(m[i])), m[i].shape)
            raise Wrong(f"Batch {number}, map {i} ({m.shape[1]} x {m.shape[2]}): its peak is at "
                        f"row {y}, column {x}, where the mask is {bool(k[i, y, x])}; you said "
                        f"{bool(got[i])}. Rows are y, columns are x.")
    checked = sum(len(m) for m, _ in cases)
    return f"{checked} maps checked: a hit is the mask's value at the map's peak."


# --------------------------------------------------------------------------- 05.energy_share


def _demo_energy_share():
    def right(maps, boxes):
        maps = np.maximum(np.asarray(maps, np.float64), 0)
        inside = np.zeros_like(maps)
        for i, (x0, y0, x1, y1) in enumerate(np.asarray(boxes)):
            inside[i, y0:y1, x0:x1] = maps[i, y0:y1, x0:x1]
        total = maps.sum(axis=(1, 2))
        return np.divide(inside.sum(axis=(1, 2)), total, out=np.zeros_like(total), where=total > 0)

    def no_relu(maps, boxes):  # keeps the negative values: they cancel energy inside the box
        maps = np.asarray(maps, np.float64)
        inside = np.array([m[y0:y1, x0:x1].sum() for m, (x0, y0, x1, y1) in zip(maps, boxes)])
        total = maps.sum(axis=(1, 2))
        return np.divide(inside, total, out=np.zeros_like(total), where=total != 0)

    return right, no_relu, {}


def _energy_cases():
    maps = _blob_maps(3, n=10)
    rng = np.random.default_rng(4)
    n, h, w = maps.shape
    boxes = []
    for _ in range(n):
        x0, y0 = int(rng.integers(0, w - 8)), int(rng.integers(0, h - 6))
        boxes.append((x0, y0, x0 + int(rng.integers(4, 12)), y0 + int(rng.integers(3, 9))))
    boxes = np.minimum(np.asarray(boxes), [w, h, w, h])
    maps[-1] = -np.abs(maps[-1])  # a map with no positive value: its share is 0
    return maps, boxes


def _reference_energy(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    positive = np.maximum(np.asarray(maps, np.float64), 0)
    n, h, w = positive.shape
    ys, xs = np.arange(h), np.arange(w)
    x0, y0, x1, y1 = (np.asarray(boxes)[:, i, None, None] for i in range(4))
    rows, cols = ys[None, :, None], xs[None, None, :]
    inside = (rows >= y0) & (rows < y1) & (cols >= x0) & (cols < x1)
    total = positive.sum(axis=(1, 2))
    return np.divide((positive * inside).sum(axis=(1, 2)), total, out=np.zeros_like(total),
                     where=total > 0)


@exercise(
    "05.energy_share",
    "The energy-based pointing game, by hand",
    """
    Write a function `energy_share(maps, boxes)` that returns, for each map, the share of its
    positive energy that lies inside its box:

        share = sum of max(map, 0) inside the box / sum of max(map, 0) over the whole map

    `maps` is float (n, height, width); `boxes` is int (n, 4), one (x0, y0, x1, y1) per map in
    pixels with exclusive ends (x0 <= x < x1, y0 <= y < y1). A map with no positive value
    scores 0 (not NaN). Return a float array (n,) of values in [0, 1].
    """,
    hints=[
        "Clip first: positive = np.maximum(maps, 0). Negative values are not energy.",
        "A box (x0, y0, x1, y1) is the slice m[y0:y1, x0:x1]: rows are y, and the end is "
        "already exclusive in Python slices.",
        "Guard the division: np.divide(inside, total, out=np.zeros_like(total), "
        "where=total > 0).",
    ],
    solution="""
    def energy_share(maps, boxes):
        positive = np.maximum(maps, 0).astype(np.float64)
        inside = np.array([m[y0:y1, x0:x1].sum() for m, (x0, y0, x1, y1) in zip(positive, boxes)])
        total = positive.sum(axis=(1, 2))
        return np.divide(inside, total, out=np.zeros_like(total), where=total > 0)
    """,
    demo=_demo_energy_share,
    minutes=8,
)
def check_energy_share(energy_share, maps=None, boxes=None):
    cases = [_energy_cases()]
    if maps is not None:
        if boxes is None:
            raise Wrong("Pass boxes= together with maps= (one (x0, y0, x1, y1) box per map).")
        cases.append((np.asarray(maps, np.float32), np.asarray(boxes, np.int64)))
    for number, (m, b) in enumerate(cases, start=1):
        with np.errstate(all="ignore"):
            got = np.asarray(energy_share(m.copy(), b.copy()), np.float64)
        expected = _reference_energy(m, b)
        if got.shape != expected.shape:
            raise Wrong(f"Batch {number}: the result has shape {got.shape}; expected "
                        f"{expected.shape}, one share per map.")
        if not np.all(np.isfinite(got)):
            bad = int(np.flatnonzero(~np.isfinite(got))[0])
            raise Wrong(f"Batch {number}, map {bad}: NaN or inf. A map with no positive value "
                        "has no energy: its share is 0 (guard the division).")
        if np.allclose(got, expected, atol=1e-5):
            continue
        i = int(np.flatnonzero(~np.isclose(got, expected, atol=1e-5))[0])
        x0, y0, x1, y1 = (int(v) for v in b[i])
        raw = np.asarray(m[i], np.float64)
        total_raw = raw.sum()
        if total_raw != 0 and np.isclose(got[i], raw[y0:y1, x0:x1].sum() / total_raw, atol=1e-5):
            raise Wrong(f"Batch {number}, map {i}: you kept the negative values. Energy is "
                        "np.maximum(map, 0): negative values would cancel positive ones.")
        positive = np.maximum(raw, 0)
        if positive.sum() > 0 and np.isclose(
                got[i], positive[x0:x1, y0:y1].sum() / positive.sum(), atol=1e-5):
            raise Wrong(f"Batch {number}, map {i}: you sliced [x0:x1, y0:y1]; rows are y, so "
                        "the box is m[y0:y1, x0:x1].")
        if positive.sum() > 0 and np.isclose(
                got[i], positive[y0:y1 + 1, x0:x1 + 1].sum() / positive.sum(), atol=1e-5):
            raise Wrong(f"Batch {number}, map {i}: you included row y1 and column x1; the ends "
                        "are exclusive, as in a Python slice.")
        raise Wrong(f"Batch {number}, map {i} with box {(x0, y0, x1, y1)}: expected a share of "
                    f"{expected[i]:.4f}, got {got[i]:.4f}.")
    return "The share of positive energy inside the box, 0 for a map with none."


# --------------------------------------------------------------------------- 05.trapezoid_auc


def _demo_trapezoid_auc():
    def right(fractions, scores):
        scores = np.atleast_2d(scores)
        heights = (scores[:, 1:] + scores[:, :-1]) / 2
        return (heights * np.diff(fractions)).sum(axis=1)

    def left_sum(fractions, scores):  # a Riemann sum of the left ends, not the trapezoids
        scores = np.atleast_2d(scores)
        return (scores[:, :-1] * np.diff(fractions)).sum(axis=1)

    return right, left_sum, {}


def _auc_cases():
    rng = np.random.default_rng(5)
    even = np.linspace(0, 1, 11)
    curves = np.sort(rng.uniform(0, 1, size=(4, 11)), axis=1)[:, ::-1]  # falling, like deletion
    uneven = np.array([0.0, 0.05, 0.1, 0.2, 0.4, 0.7, 1.0])
    rising = np.sort(rng.uniform(0, 1, size=(3, 7)), axis=1)              # rising, like insertion
    return [(even, curves), (uneven, rising)]


def _reference_auc(fractions, scores) -> np.ndarray:
    scores = np.atleast_2d(np.asarray(scores, np.float64))
    fractions = np.asarray(fractions, np.float64)
    return ((scores[:, 1:] + scores[:, :-1]) / 2 * np.diff(fractions)).sum(axis=1)


@exercise(
    "05.trapezoid_auc",
    "The area under a deletion curve",
    """
    Write a function `auc(fractions, scores)` that returns the area under each curve by the
    trapezoid rule. `fractions` (points,) are the x values (the share of pixels removed,
    from 0 to 1, not necessarily evenly spaced); `scores` (n, points) are the class
    probabilities, one curve per row. Return a float array (n,).

    Each pair of neighbouring points makes a trapezoid of width fractions[j+1] - fractions[j]
    and mean height (scores[:, j] + scores[:, j+1]) / 2; the area is their sum.
    """,
    hints=[
        "np.diff(fractions) gives the widths, one fewer than the points.",
        "The mean heights are (scores[:, 1:] + scores[:, :-1]) / 2.",
        "Multiply the heights by the widths and sum along axis 1. "
        "(scipy.integrate.trapezoid(scores, fractions, axis=1) does the same: try it to check.)",
    ],
    solution="""
    def auc(fractions, scores):
        heights = (scores[:, 1:] + scores[:, :-1]) / 2
        return (heights * np.diff(fractions)).sum(axis=1)
    """,
    demo=_demo_trapezoid_auc,
    minutes=5,
)
def check_trapezoid_auc(auc, fractions=None, scores=None):
    cases = _auc_cases()
    if fractions is not None:
        if scores is None:
            raise Wrong("Pass scores= together with fractions= (one curve per row).")
        cases.append((np.asarray(fractions, np.float64),
                      np.atleast_2d(np.asarray(scores, np.float64))))
    for number, (x, y) in enumerate(cases, start=1):
        got = np.asarray(auc(x.copy(), y.copy()), np.float64).reshape(-1)
        expected = _reference_auc(x, y)
        if got.shape != expected.shape:
            raise Wrong(f"Case {number}: got {got.size} areas for {len(y)} curves; return one "
                        "area per row of scores.")
        if np.allclose(got, expected, rtol=1e-5, atol=1e-7):
            continue
        if np.allclose(got, y.mean(axis=1), atol=1e-7):
            raise Wrong(f"Case {number}: you took the mean of the scores. That weighs every "
                        "point equally, the two ends included; the trapezoid rule gives the "
                        "end points half a step and uses the x spacing.")
        if np.allclose(got, (y[:, :-1] * np.diff(x)).sum(axis=1), atol=1e-7) or np.allclose(
                got, (y[:, 1:] * np.diff(x)).sum(axis=1), atol=1e-7):
            raise Wrong(f"Case {number}: that is a sum of rectangles (one end of each step); "
                        "the trapezoid rule averages both ends.")
        even = (y[:, 1:] + y[:, :-1]).sum(axis=1) / 2 / (len(x) - 1)
        if not np.allclose(np.diff(x), np.diff(x)[0]) and np.allclose(got, even, atol=1e-7):
            raise Wrong(f"Case {number} has uneven steps: use the widths np.diff(fractions), not "
                        "1 / (points - 1).")
        raise Wrong(f"Case {number}: expected areas {np.round(expected, 4).tolist()}, got "
                    f"{np.round(got, 4).tolist()}.")
    return "Trapezoids: widths from the fractions, heights the mean of neighbouring scores."


# --------------------------------------------------------------------------- 05.spearman


def _demo_spearman():
    def right(a, b):
        from scipy.stats import rankdata

        ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
        return float(np.corrcoef(ra, rb)[0, 1])

    def pearson(a, b):  # correlates the values, not their ranks
        return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])

    return right, pearson, {}


def _spearman_cases():
    rng = np.random.default_rng(6)
    base = rng.uniform(0, 1, size=(9, 11))
    return [
        # a monotone but non-linear transform: ranks agree perfectly, values do not
        ("a map and its cube", base, base ** 3 + 0.2 * base ** 9),
        ("two unrelated maps", base, rng.uniform(0, 1, size=(9, 11))),
        # many exact zeros, as after a ReLU: ties must get their average rank
        ("two maps with many zeros", np.maximum(base - 0.5, 0),
         np.maximum(base + 0.3 * rng.standard_normal((9, 11)) - 0.5, 0)),
    ]


def _reference_spearman(a, b) -> float:
    from scipy.stats import rankdata

    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    return float(np.corrcoef(ra, rb)[0, 1])


@exercise(
    "05.spearman",
    "The rank correlation of two maps",
    """
    The sanity check compares maps with the Spearman rank correlation: replace every pixel's
    value by its rank within its map, then take the ordinary (Pearson) correlation of the
    two rank arrays. Tied values share the average of their ranks (maps after a ReLU have
    many exact zeros).

    Write a function `spearman(a, b)` that returns the rank correlation of two maps of the
    same shape as one float. `scipy.stats.rankdata` ranks with averaged ties.
    """,
    hints=[
        "Flatten each map: np.ravel(a). Then ra = scipy.stats.rankdata(np.ravel(a)).",
        "np.corrcoef(ra, rb)[0, 1] is the Pearson correlation of the ranks.",
    ],
    solution="""
    from scipy.stats import rankdata

    def spearman(a, b):
        ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
        return float(np.corrcoef(ra, rb)[0, 1])
    """,
    demo=_demo_spearman,
    minutes=5,
)
def check_spearman(spearman, a=None, b=None):
    cases = _spearman_cases()
    if a is not None:
        if b is None:
            raise Wrong("Pass b= together with a= (two maps of the same shape).")
        cases.append(("your two maps", np.asarray(a, np.float64), np.asarray(b, np.float64)))
    for name, x, y in cases:
        got = np.asarray(spearman(x.copy(), y.copy()), np.float64)
        if got.size != 1:
            raise Wrong(f"On {name}: return one number, not an array of shape {got.shape}.")
        got = float(got.reshape(()))
        expected = _reference_spearman(x, y)
        if abs(got - expected) <= 1e-6:
            continue
        if abs(got - float(np.corrcoef(np.ravel(x), np.ravel(y))[0, 1])) <= 1e-6:
            raise Wrong(f"On {name}: that is the correlation of the values (Pearson). Rank "
                        "the pixels first: a map and any increasing function of it must "
                        "correlate perfectly.")
        first = np.argsort(np.argsort(np.ravel(x), kind="stable"), kind="stable")
        second = np.argsort(np.argsort(np.ravel(y), kind="stable"), kind="stable")
        if abs(got - float(np.corrcoef(first, second)[0, 1])) <= 1e-6:
            raise Wrong(f"On {name}: tied values got different ranks (argsort breaks ties by "
                        "position). Give ties their average rank: scipy.stats.rankdata.")
        raise Wrong(f"On {name}: expected {expected:.4f}, got {got:.4f}.")
    return "Ranks, then Pearson: insensitive to any increasing rescaling of a map."
