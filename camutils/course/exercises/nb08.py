"""Notebook 08 (auditing a dataset): a shortcut statistic computed from the shards alone."""

from __future__ import annotations

import numpy as np

from . import Wrong, exercise

# --------------------------------------------------------------------------- 08.corner_peaks


def _near_edge(index: np.ndarray, size: int) -> np.ndarray:
    quarter = size // 4
    return (index < quarter) | (index >= size - quarter)


def _reference(raw, classes, num_classes) -> np.ndarray:
    raw = np.asarray(raw)
    n, h, w = raw.shape
    row, col = np.divmod(raw.reshape(n, -1).argmax(axis=1), w)
    corner = _near_edge(row, h) & _near_edge(col, w)
    counts = np.bincount(classes, minlength=num_classes)
    hits = np.bincount(classes, weights=corner, minlength=num_classes)
    return np.divide(hits, counts, out=np.full(num_classes, np.nan), where=counts > 0)


def _cases():
    """Maps (8 x 12, not square) whose peaks sit in corner blocks, at the edge but not in a
    corner, and inside; three classes, the last without any map."""
    rng = np.random.default_rng(80)
    n = 30
    raw = rng.random((n, 8, 12)).astype(np.float32)
    places = [(0, 0), (1, 10), (7, 2), (6, 11), (0, 5), (4, 0), (3, 6), (7, 6), (2, 3)]
    for i in range(n):
        y, x = places[i % len(places)]
        raw[i, y, x] = 5.0
    classes = np.arange(n) % 2
    return raw, classes, 3


def _demo():
    def right(raw, classes, num_classes):
        n, h, w = raw.shape
        row, col = np.divmod(raw.reshape(n, -1).argmax(axis=1), w)
        near = lambda i, size: (i < size // 4) | (i >= size - size // 4)  # noqa: E731
        corner = near(row, h) & near(col, w)
        counts = np.bincount(classes, minlength=num_classes)
        hits = np.bincount(classes, weights=corner, minlength=num_classes)
        return np.divide(hits, counts, out=np.full(num_classes, np.nan), where=counts > 0)

    def corner_cells_only(raw, classes, num_classes):  # the four corner cells, not the blocks
        n, h, w = raw.shape
        row, col = np.divmod(raw.reshape(n, -1).argmax(axis=1), w)
        corner = np.isin(row, [0, h - 1]) & np.isin(col, [0, w - 1])
        counts = np.bincount(classes, minlength=num_classes)
        hits = np.bincount(classes, weights=corner, minlength=num_classes)
        return np.divide(hits, counts, out=np.full(num_classes, np.nan), where=counts > 0)

    raw, classes, num_classes = _cases()
    return right, corner_cells_only, {"raw": raw, "classes": classes, "num_classes": num_classes}


@exercise(
    "08.corner_peaks",
    "Where do the maps peak? From the shards, with numpy alone",
    """
    Write `corner_peaks(raw, classes, num_classes)`: for each class, the share of its maps
    whose peak lies in a corner block of the map.

        raw          float (n, h, w): the raw maps, as the shards store them
        classes      int (n,): the class each map explains
        peak         the cell of a map's largest value (argmax over its h x w cells)
        corner block a cell in the first or last quarter of the rows (h // 4 of them) and
                     in the first or last quarter of the columns (w // 4)

    Return a float array (num_classes,): the share of each class's maps that peak in a corner
    block, NaN for a class without maps. Maps need not be square. A map spread evenly over
    the image would peak in a corner block about a quarter of the time.
    """,
    [
        "np.argmax on raw.reshape(n, -1) gives the flat cell of each peak; np.divmod(flat, w) "
        "turns it into (row, column).",
        "A row is near an edge when row < h // 4 or row >= h - h // 4; a corner block needs "
        "both the row and the column near an edge.",
        "np.bincount(classes, minlength=num_classes) counts the maps of each class; with "
        "weights=in_corner it counts those that peak in a corner. Divide with np.divide(..., "
        "where=counts > 0) so that an empty class gives NaN.",
    ],
    """
    def corner_peaks(raw, classes, num_classes):
        n, h, w = raw.shape
        row, col = np.divmod(raw.reshape(n, -1).argmax(axis=1), w)
        near = lambda i, size: (i < size // 4) | (i >= size - size // 4)
        in_corner = near(row, h) & near(col, w)
        counts = np.bincount(classes, minlength=num_classes)
        hits = np.bincount(classes, weights=in_corner, minlength=num_classes)
        return np.divide(hits, counts, out=np.full(num_classes, np.nan), where=counts > 0)
    """,
    demo=_demo,
    minutes=10,
    reference=_reference,
)
def _check_corner_peaks(answer, raw=None, classes=None, num_classes=None, audited=None):
    """``audited``: the audit's per-class column for ``raw``; the answer must reproduce it."""
    cases = [_cases()]
    if raw is not None:
        cases.insert(0, (np.asarray(raw), np.asarray(classes), int(num_classes)))
    for maps, labels, count in cases:
        got = np.asarray(answer(maps, labels, count), dtype=np.float64)
        if audited is not None and maps is cases[0][0] and raw is not None:
            audit = np.asarray(audited, dtype=np.float64)
            if got.shape == audit.shape and not np.allclose(got, audit, atol=1e-9, equal_nan=True):
                raise Wrong(f"On these shards the audit's column reads {np.round(audit, 3).tolist()};"
                            f" yours reads {np.round(got, 3).tolist()}.")
        expected = _reference(maps, labels, count)
        if got.shape != expected.shape:
            raise Wrong(f"Expected one share per class, shape {expected.shape}; got {got.shape}.")
        if not np.array_equal(np.isnan(got), np.isnan(expected)):
            raise Wrong("A class without maps has no share: give it NaN (and only it).")
        known = ~np.isnan(expected)
        if not np.allclose(got[known], expected[known], atol=1e-9):
            raise Wrong(f"For maps of {maps.shape[1]} x {maps.shape[2]} cells the shares should "
                        f"be {np.round(expected, 3).tolist()}; yours are "
                        f"{np.round(got, 3).tolist()}. Is a corner block a quarter of the rows "
                        "and a quarter of the columns, at both ends?")
    if audited is not None and raw is not None:
        return "Your numbers are the audit's 'corner peaks' column, from the shards alone."
    return "Your function computes the audit's 'corner peaks' column."
