"""The shapes world: synthetic images whose ground truth is known.

Every image shows coloured shapes on a textured, noisy background with clutter (thin
strokes and small lumpy blobs that belong to no class). The truth comes with it: the
class of every object, its pixel mask and its box, so a class activation map can be checked
against where the object really is.

    data = camutils.make_shapes(1000, seed=0)      # one object per image, for training
    data.images.shape, data.labels[:5], data.class_names
    scenes = camutils.make_scenes(8, seed=1)       # 2 objects of different classes each
    leaky = camutils.make_shortcut(1000, leak=True)  # a marker whose colour gives the label away

Design choices, so that a network has to look at the shape:
- The classes differ by shape only. Colour is drawn independently of the class (any hue,
  kept apart from the background), size is drawn independently of the class and measured
  as the radius of the disc with the same area, and every shape is rotated at random.
- The object is anywhere in the image (never always central), entirely inside it.
- The background is a random two-colour gradient with a low-frequency texture and pixel
  noise; clutter is drawn under the objects.

Everything is seeded: the same arguments give the same arrays (numpy's generators and
OpenCV's drawing are deterministic). Images are
RGB uint8, sizes are ``(height, width)``, boxes are ``(x0, y0, x1, y1)`` with exclusive ends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..boxes import boxes_from_masks

__all__ = [
    "SHAPE_CLASSES", "SEGMENT_CLASSES", "BACKGROUND", "IMAGE_SIZE", "MARKER_COLORS",
    "ShapeImages", "ShapeScenes",
    "ShortcutImages", "make_shapes", "make_scenes", "make_shortcut", "boxes_from_masks",
]

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ellipse")
"""The class names, in label order."""

BACKGROUND: int = len(SHAPE_CLASSES)
"""The background's index in a per-pixel label map (`ShapeScenes.label_maps`): after the
shapes, so that a shape's index is the same for every course model."""

SEGMENT_CLASSES: tuple[str, ...] = (*SHAPE_CLASSES, "background")
"""The classes of a per-pixel label map, in index order: the six shapes, then the background."""

IMAGE_SIZE: tuple[int, int] = (64, 64)
"""Default ``(height, width)`` of the images (the course models' input size)."""

MARKER_COLORS: np.ndarray = np.array(
    [[230, 25, 25], [25, 200, 25], [30, 60, 235], [240, 220, 20], [220, 30, 220], [20, 215, 225]],
    dtype=np.uint8,
)
"""The shortcut marker's colour for each class (red, green, blue, yellow, magenta, cyan)."""

_SHIFT = 4                  # sub-pixel precision of OpenCV drawing: coordinates x 16
_SCALE = 1 << _SHIFT
_MIN_LUMA_CONTRAST = 70.0   # least brightness difference between an object and its background
_LUMA = np.array([0.299, 0.587, 0.114])
_BG_TINT = 30.0             # how far a background's colour strays from grey


# ---------------------------------------------------------------------------- containers
@dataclass
class ShapeImages:
    """Single-object images (`make_shapes`).

    Attributes:
        images: ``(n, H, W, 3)`` uint8 RGB.
        labels: ``(n,)`` int64 class indices into `class_names`.
        masks: ``(n, H, W)`` bool, the object's pixels.
        boxes: ``(n, 4)`` int64 ``(x0, y0, x1, y1)``, the mask's tight box, exclusive ends.
        class_names: the class names, in label order.
        seed: the seed the images were generated from.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    class_names: tuple[str, ...] = SHAPE_CLASSES
    seed: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def sizes(self) -> np.ndarray:
        """Each object's size ``(n,)`` float32: the radius in pixels of the disc with the
        area of its mask, ``sqrt(pixels / pi)`` (the world's measure of size, see
        `make_shapes`' ``radius``; measured on the drawn mask, so a little off the radius
        it was drawn with)."""
        return np.sqrt(self.masks.sum(axis=(1, 2)) / np.pi).astype(np.float32)


@dataclass
class ShapeScenes:
    """Multi-object scenes (`make_scenes`): several objects of distinct classes, not touching.

    Per-object arrays are padded to ``max_objects = labels.shape[1]`` objects per scene;
    padding slots have label ``-1``, an all-False mask and box ``(-1, -1, -1, -1)``.

    Attributes:
        images: ``(n, H, W, 3)`` uint8 RGB.
        labels: ``(n, max_objects)`` int64 class of each object (``-1`` for padding).
        masks: ``(n, max_objects, H, W)`` bool, each object's pixels (disjoint).
        boxes: ``(n, max_objects, 4)`` int64 ``(x0, y0, x1, y1)``, exclusive ends.
        counts: ``(n,)`` int64, how many objects each scene holds.
        class_names: the class names, in label order.
        seed: the seed the scenes were generated from.
    """

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    counts: np.ndarray
    class_names: tuple[str, ...] = SHAPE_CLASSES
    seed: int = 0

    def __len__(self) -> int:
        return len(self.images)

    def objects(self, i: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """The objects of scene ``i`` as ``(label, mask, box)`` triples, padding left out."""
        return [(int(self.labels[i, j]), self.masks[i, j], self.boxes[i, j])
                for j in range(int(self.counts[i]))]

    def multi_hot(self) -> np.ndarray:
        """Which classes each scene holds: ``(n, classes)`` float32, 1 where present."""
        present = np.zeros((len(self), len(self.class_names)), np.float32)
        rows, slots = np.nonzero(self.labels >= 0)
        present[rows, self.labels[rows, slots]] = 1.0
        return present

    def label_maps(self) -> np.ndarray:
        """Each pixel's class ``(n, H, W)`` uint8: an object's pixels hold its class index,
        the others `BACKGROUND` (names in `SEGMENT_CLASSES`). Objects never overlap."""
        maps = np.full(self.masks.shape[:1] + self.masks.shape[2:], BACKGROUND, np.uint8)
        for j in range(self.labels.shape[1]):
            mask = self.masks[:, j]
            maps[mask] = np.broadcast_to(self.labels[:, j, None, None], mask.shape)[mask]
        return maps


@dataclass
class ShortcutImages(ShapeImages):
    """Single-object images with a small square marker in one corner (`make_shortcut`).

    The marker is a 1-pixel white frame around a square of one of `MARKER_COLORS`. With
    ``leak=True`` its colour is ``MARKER_COLORS[label]``: it gives the label away. With
    ``leak=False`` its colour is drawn at random, independently of the label, so it carries
    no information (it is still there, so the test differs from training only by the leak).

    Attributes (besides those of `ShapeImages`):
        marker_masks: ``(n, H, W)`` bool, the marker's pixels (frame included).
        marker_boxes: ``(n, 4)`` int64 ``(x0, y0, x1, y1)`` of the marker, exclusive ends.
        marker_labels: ``(n,)`` int64, the class whose colour the marker shows.
        leak: whether ``marker_labels == labels`` by construction.
    """

    marker_masks: np.ndarray = field(default=None)
    marker_boxes: np.ndarray = field(default=None)
    marker_labels: np.ndarray = field(default=None)
    leak: bool = True


# ---------------------------------------------------------------------------- geometry
def _polygon(n_points: int, radius: float = 1.0, phase: float = np.pi / 2) -> np.ndarray:
    angles = phase + np.arange(n_points) * 2 * np.pi / n_points
    return radius * np.stack([np.cos(angles), -np.sin(angles)], axis=1)


def _star(points: int = 5, inner: float = 0.55) -> np.ndarray:
    outer = _polygon(points)
    inner_pts = _polygon(points, inner, phase=np.pi / 2 + np.pi / points)
    return np.stack([outer, inner_pts], axis=1).reshape(-1, 2)


def _ellipse(ratio: float = 0.5, n_points: int = 48) -> np.ndarray:
    """An ellipse whose minor axis is ``ratio`` times its major axis (1)."""
    return _polygon(n_points) * (1.0, ratio)


def _cross(arm: float = 0.38) -> np.ndarray:
    a = arm
    return np.array([[-a, -1], [a, -1], [a, -a], [1, -a], [1, a], [a, a],
                     [a, 1], [-a, 1], [-a, a], [-1, a], [-1, -a], [-a, -a]], dtype=float)


def _area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


# Each class's outline, scaled so that a shape of "size" r has the area of a disc of radius
# r: size says nothing about the class. All shapes are filled (no holes), so that "inside
# the object" is a region a map can point at.
_TEMPLATES: list[np.ndarray] = [
    _polygon(48),                       # circle
    _polygon(4, phase=np.pi / 4),       # square
    _polygon(3),                        # triangle
    _star(),                            # star
    _cross(),                           # cross
    _ellipse(),                         # ellipse
]
_TEMPLATES = [t * np.sqrt(np.pi / _area(t)) for t in _TEMPLATES]
_EXTENT = np.array([np.linalg.norm(t, axis=1).max() for t in _TEMPLATES])  # circumradius per unit size
assert len(_TEMPLATES) == len(SHAPE_CLASSES)


def _shape_outline(label: int, size: float, angle: float, cx: float, cy: float) -> np.ndarray:
    """Pixel coordinates of one shape's outline."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return _TEMPLATES[label] @ rot.T * size + (cx, cy)


def _fixed(points: np.ndarray) -> np.ndarray:
    """Float pixel coordinates (pixel centres at integers) as OpenCV's fixed-point int32."""
    return np.round(points * _SCALE).astype(np.int32).reshape(-1, 1, 2)


def _draw_shape(alpha: np.ndarray, label: int, size: float, angle: float, cx: float, cy: float) -> None:
    """Draw one anti-aliased shape into the uint8 coverage image ``alpha`` (in place)."""
    cv2.fillPoly(alpha, [_fixed(_shape_outline(label, size, angle, cx, cy))], 255, cv2.LINE_AA, _SHIFT)


# ---------------------------------------------------------------------------- backgrounds
def _interp_matrix(out_len: int, in_len: int) -> np.ndarray:
    """Linear interpolation weights ``(out_len, in_len)``, grid ends on the image's ends."""
    pos = np.arange(out_len) * (in_len - 1) / max(out_len - 1, 1)
    lo = np.minimum(np.floor(pos).astype(int), in_len - 2)
    frac = pos - lo
    m = np.zeros((out_len, in_len))
    m[np.arange(out_len), lo] = 1 - frac
    m[np.arange(out_len), lo + 1] = frac
    return m


def _backgrounds(rng: np.random.Generator, n: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Textured two-colour gradients ``(n, h, w, 3)`` float32 and their mean colours ``(n, 3)``.

    Both the gradient and the texture are smooth, so they are built on a coarse 9 x 9 grid
    and upsampled once, bilinearly (``up_h @ grid @ up_w.T``, batched).
    """
    coarse = 9
    # Muted colours: a grey level plus a moderate tint, so that objects stand out by shape.
    c1 = np.clip(rng.uniform(20, 235, (n, 1)) + rng.normal(0, _BG_TINT, (n, 3)), 0, 255)
    c2 = np.clip(c1 + rng.normal(0, 45, (n, 1)) + rng.normal(0, _BG_TINT / 2, (n, 3)), 0, 255)
    theta = rng.uniform(0, 2 * np.pi, n)
    g = np.linspace(-0.5, 0.5, coarse)
    t = np.clip(g[None, None, :] * np.cos(theta)[:, None, None]
                + g[None, :, None] * np.sin(theta)[:, None, None] + 0.5, 0, 1)  # (n, y, x)
    grid = c1[:, :, None, None] + (c2 - c1)[:, :, None, None] * t[:, None]      # (n, 3, y, x)
    amp = rng.uniform(6, 22, n)[:, None, None, None]
    grid += amp * rng.normal(0, 1, grid.shape)
    up_h = _interp_matrix(h, coarse).astype(np.float32)
    up_w = _interp_matrix(w, coarse).astype(np.float32)
    bg = (up_h @ grid.astype(np.float32) @ up_w.T).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(bg), ((c1 + c2) / 2).astype(np.float32)


def _object_colors(rng: np.random.Generator, bg_means: np.ndarray) -> np.ndarray:
    """One colour per row of ``bg_means`` that stands out from it.

    Any hue, but the brightness (luma) differs from the background's by at least
    `_MIN_LUMA_CONTRAST`, lighter or darker at random: the edge is always visible.
    """
    n = len(bg_means)
    candidates = rng.uniform(0, 255, (n, 24, 3))
    contrast = np.abs((candidates - bg_means[:, None]) @ _LUMA)
    ok = contrast >= _MIN_LUMA_CONTRAST
    # First candidate that stands out, else the one that stands out most.
    pick = np.where(ok.any(1), ok.argmax(1), contrast.argmax(1))
    return candidates[np.arange(n), pick].astype(np.float32)


def _draw_clutter(rng: np.random.Generator, images: np.ndarray, bg_means: np.ndarray,
                  draw: bool = True) -> None:
    """Thin strokes (lines and arcs) and small irregular blobs, drawn in place.

    1 to 3 strokes per image, mostly 1 pixel wide, in colours near the background's (they
    texture it without shouting); 0 to 2 blobs of any colour: lumpy polygons 3 to 9 pixels
    across, with random corners, that match no class. With ``draw=False`` the random numbers
    are drawn all the same (so that the rest of the image does not change) but nothing is drawn.
    """
    n, h, w, _ = images.shape
    side = max(h, w)
    k = 3  # at most 3 strokes and 2 blobs per image; parameters drawn for all at once
    n_strokes, n_blobs = rng.integers(1, k + 1, n), rng.integers(0, k, n)
    stroke_colors = np.clip(bg_means[:, None] + rng.normal(0, 50, (n, k, 3)), 0, 255)
    blob_colors = rng.uniform(0, 255, (n, k, 3))
    colors = np.rint(np.concatenate([stroke_colors, blob_colors], 1)).astype(int).tolist()
    is_line = (rng.random((n, k)) < 0.5).tolist()
    thickness = np.where(rng.random((n, k)) < 0.7, 1, 2).tolist()
    starts = _fixed_all(rng.uniform(0, 1, (n, k, 2)) * (w, h))
    ends = _fixed_all(rng.uniform(0, 1, (n, k, 2)) * (w, h) + rng.normal(0, side / 3, (n, k, 2)))
    arc_axes = _fixed_all(rng.uniform(6, side / 2.5, (n, k, 2)))
    corners = 6
    turn = (np.arange(corners) + rng.uniform(-0.3, 0.3, (n, k, corners))) * (2 * np.pi / corners)
    reach = rng.uniform(1.5, 4.5, (n, k, corners))
    blob_centres = rng.uniform(0, 1, (n, k, 1, 2)) * (w, h)
    blobs = np.round((blob_centres + reach[..., None] * np.stack([np.cos(turn), np.sin(turn)], -1))
                     * _SCALE).astype(np.int32)                          # (n, k, corners, 2)
    angles = rng.uniform(0, 180, (n, k)).tolist()
    arc_from = rng.uniform(0, 360, (n, k)).tolist()
    arc_span = rng.uniform(40, 160, (n, k)).tolist()
    if not draw:
        return
    aa = cv2.LINE_AA
    for i in range(n):
        canvas = images[i]
        for j in range(n_strokes[i]):
            if is_line[i][j]:
                cv2.line(canvas, starts[i][j], ends[i][j], colors[i][j], thickness[i][j], aa, _SHIFT)
            else:
                a0 = arc_from[i][j]
                cv2.ellipse(canvas, starts[i][j], arc_axes[i][j], angles[i][j], a0, a0 + arc_span[i][j],
                            colors[i][j], thickness[i][j], aa, _SHIFT)
        for j in range(n_blobs[i]):
            cv2.fillPoly(canvas, [blobs[i, j]], colors[i][k + j], aa, _SHIFT)


def _fixed_all(points: np.ndarray) -> list:
    """Float pixel coordinates ``(..., 2)`` as nested lists of OpenCV fixed-point tuples."""
    fixed = np.round(points * _SCALE).astype(np.int64).clip(-(1 << 24), 1 << 24)
    return [[tuple(p) for p in row] for row in fixed.tolist()]


def _finish(rng: np.random.Generator, canvas: np.ndarray) -> np.ndarray:
    """Add per-image pixel noise (uniform, standard deviation 3 to 12) and round to uint8."""
    sigma = rng.uniform(3, 12, len(canvas)).astype(np.float32)[:, None, None, None]
    noise = rng.random(canvas.shape, dtype=np.float32)
    noise -= 0.5
    noise *= sigma * np.float32(np.sqrt(12.0))
    noise += canvas
    return np.clip(np.rint(noise, out=noise), 0, 255, out=noise).astype(np.uint8)


def _composite(canvas: np.ndarray, alpha: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """Blend one colour per image over ``canvas`` with uint8 coverage ``alpha`` (n, H, W)."""
    blend = colors[:, None, None, :] - canvas
    blend *= alpha[..., None] * np.float32(1 / 255)
    blend += canvas
    return blend


# ---------------------------------------------------------------------------- validation
def _check_common(n, size, radius) -> tuple[int, int, int, tuple[float, float]]:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int (the number of images); got {n!r}.")
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    try:
        h, w = (int(s) for s in size)
    except (TypeError, ValueError):
        raise ValueError(f"size must be an int or (height, width); got {size!r}.") from None
    if h < 24 or w < 24:
        raise ValueError(f"size must be at least 24 x 24 pixels; got {(h, w)}.")
    lo, hi = (float(r) for r in radius)
    if not 2.0 <= lo <= hi:
        raise ValueError(
            f"radius must be (min, max) with 2 <= min <= max (the radius of the disc with the "
            f"object's area, in pixels); got {tuple(radius)}."
        )
    if 2 * hi * _EXTENT.max() + 2 > min(h, w):
        raise ValueError(
            f"radius max {hi} is too large for images of size {(h, w)}: the largest shape would "
            f"not fit. Use at most {(min(h, w) - 2) / (2 * _EXTENT.max()):.1f}."
        )
    return int(n), h, w, (lo, hi)


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}.")
    return int(seed)


# ---------------------------------------------------------------------------- generators
_CHUNK = 64  # images generated at once: small arrays stay in cache and memory stays low


def _chunks(n: int, progress: bool | None, what: str):
    """Slices of at most `_CHUNK` images, with a progress bar for large requests."""
    slices = [slice(a, min(n, a + _CHUNK)) for a in range(0, n, _CHUNK)]
    if progress or (progress is None and n >= 20_000):
        from tqdm.auto import tqdm

        return tqdm(slices, desc=f"generating {n} {what}", unit="chunk")
    return slices


def _single_object(rng, h, w, radius, labels, keep_out=None, clutter=True):
    """Backgrounds with clutter, one object each; ``keep_out`` boxes (n, 4) are avoided."""
    n = len(labels)
    canvas, bg_means = _backgrounds(rng, n, h, w)
    sizes = rng.uniform(*radius, n)
    angles = rng.uniform(0, 2 * np.pi, n)
    colors = _object_colors(rng, bg_means)
    half = _EXTENT[labels] * sizes + 1.0  # the shape's half-extent, with a pixel of margin
    cx, cy = rng.uniform(half, w - 1 - half), rng.uniform(half, h - 1 - half)
    if keep_out is not None:
        for _ in range(200):
            hit = _overlaps(cx, cy, half, keep_out)
            if not hit.any():
                break
            cx[hit] = rng.uniform(half[hit], w - 1 - half[hit])
            cy[hit] = rng.uniform(half[hit], h - 1 - half[hit])
        else:  # pragma: no cover - the keep-out region is small, this does not happen
            raise RuntimeError("Could not place the objects clear of the marker; use larger images.")
    canvas_u8 = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    _draw_clutter(rng, canvas_u8, bg_means, draw=clutter)
    alpha = np.zeros((n, h, w), np.uint8)
    for i in range(n):
        _draw_shape(alpha[i], int(labels[i]), sizes[i], angles[i], cx[i], cy[i])
    return _composite(canvas_u8.astype(np.float32), alpha, colors), alpha >= 128


def _overlaps(cx, cy, half, boxes) -> np.ndarray:
    """Whether the square of half-side ``half`` around (cx, cy) meets each box."""
    x0, y0, x1, y1 = (boxes[:, k] for k in range(4))
    return (cx + half > x0) & (cx - half < x1) & (cy + half > y0) & (cy - half < y1)


def make_shapes(n: int, seed: int = 0, size: int | tuple[int, int] = IMAGE_SIZE,
                radius: tuple[float, float] = (8.0, 12.0), classes: list[int] | None = None,
                balanced: bool = True, clutter: bool = True, progress: bool | None = None) -> ShapeImages:
    """Single-object shapes images with masks and boxes, for training and testing.

    Args:
        n: how many images.
        seed: the random seed; the same arguments always give the same images.
        size: ``(height, width)`` of the images (default 64 x 64), or one int for a square.
        radius: ``(min, max)`` of the object's size, as the radius in pixels of the disc
            with the same area (so that size says nothing about the class).
        classes: restrict to these class indices (default: all of `SHAPE_CLASSES`).
        balanced: ``True`` gives every class the same count (up to one), in random order;
            ``False`` draws each label independently.
        clutter: draw the distractor strokes and blobs; ``False`` gives the very same images
            (same seed) without them, e.g. to show what the clutter is.
        progress: show a progress bar (default: only from 20,000 images).

    Returns:
        a `ShapeImages` with ``images``, ``labels``, ``masks``, ``boxes``, ``class_names``.

    Generation is vectorised apart from the OpenCV drawing calls: a few thousand 64 x 64
    images per second on one CPU core.
    """
    n, h, w, radius = _check_common(n, size, radius)
    seed = _check_seed(seed)
    rng = np.random.default_rng([seed, 1])
    labels = _labels(rng, n, classes, balanced)
    images = np.empty((n, h, w, 3), np.uint8)
    masks = np.empty((n, h, w), bool)
    for part in _chunks(n, progress, "shapes images"):
        canvas, masks[part] = _single_object(rng, h, w, radius, labels[part], clutter=clutter)
        images[part] = _finish(rng, canvas)
    return ShapeImages(images, labels, masks, boxes_from_masks(masks), SHAPE_CLASSES, seed)


def _labels(rng, n, classes, balanced) -> np.ndarray:
    pool = np.arange(len(SHAPE_CLASSES)) if classes is None else np.asarray(classes, dtype=np.int64)
    if pool.ndim != 1 or pool.size == 0 or pool.min() < 0 or pool.max() >= len(SHAPE_CLASSES):
        raise ValueError(
            f"classes must be a non-empty list of class indices in 0..{len(SHAPE_CLASSES) - 1} "
            f"({', '.join(f'{i}={c}' for i, c in enumerate(SHAPE_CLASSES))}); got {classes!r}."
        )
    if balanced:
        labels = np.resize(pool, n)
        rng.shuffle(labels)
    else:
        labels = rng.choice(pool, n)
    return labels.astype(np.int64)


def make_scenes(n: int, seed: int = 0, objects: int | tuple[int, int] = 2,
                size: int | tuple[int, int] = IMAGE_SIZE,
                radius: tuple[float, float] = (7.0, 10.0), gap: float = 3.0,
                clutter: bool = True, progress: bool | None = None) -> ShapeScenes:
    """Scenes with several objects of distinct classes that do not overlap.

    For class-discriminative demos: the map for one class should light up its own object.

    Args:
        n: how many scenes.
        seed: the random seed; the same arguments always give the same scenes.
        objects: objects per scene, an int (every scene) or ``(min, max)`` (drawn per scene).
            Per-object arrays are padded to the maximum (see `ShapeScenes`).
        size: ``(height, width)`` (default 64 x 64), or one int for a square.
        radius: ``(min, max)`` object size (radius of the disc with the same area), pixels.
            The default is a little smaller than `make_shapes`' so that three objects fit.
        gap: the least distance in pixels between two objects.
        clutter: draw the distractor strokes and blobs (``False``: the same scenes without).
        progress: show a progress bar (default: only from 20,000 scenes).

    Raises:
        ValueError: a bad argument, or objects that cannot be placed without overlap (the
            message says to use fewer or smaller objects or larger images).
    """
    n, h, w, radius = _check_common(n, size, radius)
    seed = _check_seed(seed)
    lo_k, hi_k = (objects, objects) if isinstance(objects, (int, np.integer)) else tuple(objects)
    if not 1 <= lo_k <= hi_k <= len(SHAPE_CLASSES):
        raise ValueError(
            f"objects must be an int or (min, max) between 1 and {len(SHAPE_CLASSES)} (the "
            f"classes in a scene are distinct); got {objects!r}."
        )
    rng = np.random.default_rng([seed, 2])
    counts = rng.integers(lo_k, hi_k + 1, n)
    labels = np.full((n, hi_k), -1, np.int64)
    for i in range(n):
        labels[i, :counts[i]] = rng.permutation(len(SHAPE_CLASSES))[:counts[i]]
    images = np.empty((n, h, w, 3), np.uint8)
    masks = np.zeros((n, hi_k, h, w), bool)
    for part in _chunks(n, progress, "scenes"):
        m = part.stop - part.start
        canvas, bg_means = _backgrounds(rng, m, h, w)
        canvas_u8 = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
        _draw_clutter(rng, canvas_u8, bg_means, draw=clutter)
        alpha = np.zeros((m, hi_k, h, w), np.uint8)
        for k in range(m):
            i = part.start + k
            _place_scene(rng, alpha[k], labels[i, :counts[i]], radius, gap)
        canvas = canvas_u8.astype(np.float32)
        for j in range(hi_k):
            canvas = _composite(canvas, alpha[:, j], _object_colors(rng, bg_means))
        masks[part] = alpha >= 128
        images[part] = _finish(rng, canvas)
    return ShapeScenes(images, labels, masks, boxes_from_masks(masks), counts.astype(np.int64),
                       SHAPE_CLASSES, seed)


def _place_scene(rng, alpha: np.ndarray, labels: np.ndarray, radius, gap: float,
                 tries: int = 100, restarts: int = 20) -> None:
    """Draw the objects of one scene into ``alpha`` (objects, H, W), ``gap`` pixels apart.

    Each object gets a random size, angle and position; a position is accepted when the
    drawn shape keeps ``gap`` pixels from those already placed (checked on the pixels, so
    that a triangle's empty corners do not waste room). A scene that cannot be completed
    starts over.
    """
    h, w = alpha.shape[1:]
    pad = max(1, int(np.ceil(gap)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * pad + 1, 2 * pad + 1))
    for _ in range(restarts):
        alpha[:] = 0
        taken = np.zeros((h, w), np.uint8)
        for j, label in enumerate(labels):
            size = rng.uniform(*radius)
            angle = rng.uniform(0, 2 * np.pi)
            half = _EXTENT[label] * size + 1.0
            for _ in range(tries):
                cx, cy = rng.uniform(half, w - 1 - half), rng.uniform(half, h - 1 - half)
                alpha[j] = 0
                _draw_shape(alpha[j], int(label), size, angle, cx, cy)
                if not np.any(taken & (alpha[j] > 0)):
                    taken |= cv2.dilate((alpha[j] > 0).astype(np.uint8), kernel)
                    break
            else:
                break  # this object found no room: start the scene over
        else:
            return
    raise ValueError(
        f"Could not place {len(labels)} objects without overlap in a {h} x {w} image: use "
        f"fewer objects, a smaller radius or a larger size."
    )


def make_shortcut(n: int, seed: int = 0, leak: bool = True, size: int | tuple[int, int] = IMAGE_SIZE,
                  radius: tuple[float, float] = (8.0, 12.0), marker_size: int = 8,
                  clutter: bool = True, progress: bool | None = None) -> ShortcutImages:
    """Shapes images with a small corner marker that leaks the label, or not.

    The marker is a square of ``marker_size`` pixels (a 1-pixel white frame around a
    coloured centre) in a random corner of the image; the object never
    overlaps it. With ``leak=True`` the centre's colour is ``MARKER_COLORS[label]``, so a
    network can score perfectly by reading the marker alone, like a hospital's tag on an
    X-ray that correlates with the diagnosis. With ``leak=False`` the marker is still
    present but its colour is drawn at random, independently of the label: a network that
    learnt the shortcut falls to about chance (1 in 6), one that learnt the shapes does not.
    The colour, not the position, carries the leak: a global-pooling network is nearly
    blind to where things are, but it sees colours anywhere.

    Args:
        n, seed, size, radius, clutter, progress: as in `make_shapes`. For the same ``seed``,
            ``leak=True`` and ``leak=False`` draw different images (the streams are separate).
        leak: whether the marker's colour gives the label away.
        marker_size: the marker's side in pixels (3 to a quarter of the image's side).

    Returns:
        a `ShortcutImages`: the fields of `ShapeImages` plus ``marker_masks``,
        ``marker_boxes``, ``marker_labels`` (the class the marker's colour stands for) and
        ``leak``. ``marker_masks`` lets a notebook measure how much of a map's energy lies on
        the marker rather than on the object.
    """
    n, h, w, radius = _check_common(n, size, radius)
    seed = _check_seed(seed)
    if isinstance(marker_size, bool) or not isinstance(marker_size, (int, np.integer)) \
            or not 3 <= marker_size <= min(h, w) // 4:
        raise ValueError(f"marker_size must be an int from 3 to {min(h, w) // 4}; got {marker_size!r}.")
    rng = np.random.default_rng([seed, 3, int(bool(leak))])
    labels = _labels(rng, n, None, True)
    marker_labels = labels.copy() if leak else rng.integers(0, len(SHAPE_CLASSES), n).astype(np.int64)
    corner = rng.integers(0, 4, n)
    inset = 0
    mx0 = np.where(corner % 2 == 0, inset, w - inset - marker_size)
    my0 = np.where(corner < 2, inset, h - inset - marker_size)
    marker_boxes = np.stack([mx0, my0, mx0 + marker_size, my0 + marker_size], axis=1).astype(np.int64)
    frame = _box_masks(marker_boxes, h, w)
    core = _box_masks(marker_boxes + np.array([1, 1, -1, -1]), h, w)
    keep_out = marker_boxes + np.array([-2, -2, 2, 2])
    images = np.empty((n, h, w, 3), np.uint8)
    masks = np.empty((n, h, w), bool)
    for part in _chunks(n, progress, "shortcut images"):
        canvas, masks[part] = _single_object(rng, h, w, radius, labels[part],
                                             keep_out=keep_out[part], clutter=clutter)
        canvas = np.where(frame[part, :, :, None], np.float32(245.0), canvas)
        colors = MARKER_COLORS[marker_labels[part]][:, None, None, :].astype(np.float32)
        canvas = np.where(core[part, :, :, None], colors, canvas)
        images[part] = _finish(rng, canvas)
    return ShortcutImages(images, labels, masks, boxes_from_masks(masks), SHAPE_CLASSES, seed,
                          marker_masks=frame, marker_boxes=marker_boxes,
                          marker_labels=marker_labels, leak=bool(leak))


def _box_masks(boxes: np.ndarray, h: int, w: int) -> np.ndarray:
    """Boolean masks ``(n, h, w)`` of boxes ``(x0, y0, x1, y1)`` (exclusive ends)."""
    ys, xs = np.arange(h)[None], np.arange(w)[None]
    in_y = (ys >= boxes[:, 1:2]) & (ys < boxes[:, 3:4])
    in_x = (xs >= boxes[:, 0:1]) & (xs < boxes[:, 2:3])
    return in_y[:, :, None] & in_x[:, None, :]
