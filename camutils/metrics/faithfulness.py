"""Faithfulness: does the model really rely on the pixels a heat map points at?

    deletion = deletion_curve(model, inputs, maps)           # remove the top pixels first
    insertion = insertion_curve(model, inputs, maps)         # add the top pixels first
    deletion["mean_auc"], insertion["mean_auc"]              # lower / higher is better
    drop = average_drop(model, inputs, maps)                 # keep only what the map shows
    row = faithfulness_scores(model, inputs, maps)           # all of them, one table row

``model`` is either a plain Keras model with its float inputs ``(n, H, W, C)``, perturbed
as they are (in the model's input space), or a `camutils.zoo.ZooModel` with RGB uint8
images as the network sees them (``explanation.images`` of ``zoo.explain``), whose pixels
are perturbed, rounded to uint8 and then normalised. The baseline ``"zero"`` is the value 0
of the model's input in both cases, as in the RISE code: 0 itself for a plain model; for a
zoo model the pixel colour its normaliser maps to 0 (mid-grey 127 for EfficientNet-Lite0,
black for the course's shapes models; see `camutils.metrics._scoring`). ``maps`` are
``(n, H, W)`` at the same resolution (an `Explanation` is accepted, and then supplies the
target classes too).

Scores are class probabilities (the softmax of the logits; a model that ends in softmax is
read as it is), of the ``target`` class: the explained class (``explanation.class_index``),
or by default the model's top class on the unperturbed image. Perturbed images go through
the model in batches of ``batch_size``, many steps and images per batch, through one
compiled forward pass, with a progress bar (``progress=False`` turns it off).

Papers:
- Deletion / insertion: V. Petsiuk, A. Das, K. Saenko, "RISE: Randomized Input Sampling
  for Explanation of Black-box Models", BMVC 2018, sec. 4.1.
- Average drop / increase in confidence: A. Chattopadhay, A. Sarkar, P. Howlader,
  V. N. Balasubramanian, "Grad-CAM++: Generalized Gradient-based Visual Explanations for
  Deep Convolutional Networks", WACV 2018, sec. 5.1.
"""

from __future__ import annotations

import numpy as np

from ..checks import positive_int
from ._inputs import as_maps, as_targets
from ._scoring import PerturbationSpace, perturbation_space

__all__ = [
    "BASELINES", "baseline_images", "deletion_curve", "insertion_curve", "curve_auc",
    "average_drop", "faithfulness_scores",
]

BASELINES = ("zero", "mean", "blur")
"""The named baselines: a constant 0, each image's mean colour, a Gaussian blur of the image."""

BLUR_SIGMA = 5.0
BLUR_SIZE = 11
"""The insertion baseline's blur in the RISE code: an 11 x 11 Gaussian kernel with sigma 5."""


def baseline_images(images: np.ndarray, baseline="zero", blur_sigma: float = BLUR_SIGMA,
                    blur_size: int = BLUR_SIZE, zero=0.0) -> np.ndarray:
    """What perturbed pixels are replaced by (deletion) or drawn from (insertion).

    Args:
        images: float32 ``(n, H, W, C)`` in the perturbation space.
        baseline: ``"zero"`` (the constant ``zero``), ``"mean"`` (each image's mean value per
            channel), ``"blur"`` (each image blurred by a ``blur_size`` x ``blur_size``
            Gaussian kernel of standard deviation ``blur_sigma``, borders reflected: the
            RISE code blurs with 11 and 5 but pads with zeros, which darkens the borders), a
            number (a constant), an array broadcastable to ``images``, or a function from
            ``images`` to such an array.
        zero: what ``"zero"`` stands for: 0 of the model's input, in the perturbation space
            (a number or one value per channel; the metrics pass the model's).

    Returns:
        float32, broadcastable to ``images`` (a view for the constant baselines).
    """
    images = np.asarray(images, dtype=np.float32)
    if callable(baseline):
        base = np.asarray(baseline(images), dtype=np.float32)
    elif isinstance(baseline, str):
        if baseline == "zero":
            base = np.broadcast_to(np.asarray(zero, np.float32), (1, 1, 1, images.shape[3]))
        elif baseline == "mean":
            base = images.mean(axis=(1, 2), keepdims=True)
        elif baseline == "blur":
            base = _blur(images, blur_sigma, blur_size)
        else:
            raise ValueError(
                f"Unknown baseline {baseline!r}: use one of {', '.join(BASELINES)}, a number, "
                "an array or a function of the images."
            )
    else:
        base = np.asarray(baseline, dtype=np.float32)
    try:
        return np.broadcast_to(base, images.shape)
    except ValueError:
        raise ValueError(
            f"The baseline has shape {base.shape}, which does not broadcast to the images' "
            f"{images.shape}."
        ) from None


def _blur(images: np.ndarray, sigma: float, size: int) -> np.ndarray:
    """Gaussian blur of the whole batch in one call (over height and width only)."""
    from scipy import ndimage

    sigma, size = float(sigma), int(size)
    if sigma <= 0 or size < 1 or size % 2 == 0:
        raise ValueError(
            f"The blur needs sigma > 0 and an odd kernel size; got sigma={sigma}, size={size}."
        )
    radius = size // 2
    return ndimage.gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="reflect",
                                   radius=(0, radius, radius, 0)).astype(np.float32)


def _batches(total: int, batch_size: int, progress: bool, desc: str):
    from tqdm.auto import tqdm

    batch_size = positive_int(batch_size, "batch_size")
    starts = range(0, total, batch_size)
    return tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False)


def _maps_and_targets(space: PerturbationSpace, maps, target, batch_size: int,
                      progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Check the maps against the images; resolve the target classes."""
    if target is None and hasattr(maps, "class_index") and not isinstance(maps, np.ndarray):
        target = maps.class_index
    maps = as_maps(maps)
    n = len(space.images)
    if maps.shape[0] != n:
        raise ValueError(f"Got {maps.shape[0]} maps for {n} images: give one map per image.")
    if maps.shape[1:] != space.size:
        raise ValueError(
            f"The maps are {maps.shape[1]} x {maps.shape[2]} but the images are "
            f"{space.size[0]} x {space.size[1]}: maps must be at the input resolution "
            "(explanation.maps are; resize others with camutils.resize)."
        )
    targets = as_targets(target, n)
    if targets is None:
        targets = _probabilities(space, space.images, batch_size, progress, "top class").argmax(axis=1)
    return maps, targets


def _probabilities(space: PerturbationSpace, images: np.ndarray, batch_size: int,
                   progress: bool, desc: str) -> np.ndarray:
    parts = [space.probabilities(images[s:s + batch_size])
             for s in _batches(len(images), batch_size, progress, desc)]
    return np.concatenate(parts, axis=0)


def _check_targets(targets: np.ndarray, classes: int) -> None:
    if targets.min() < 0 or targets.max() >= classes:
        raise ValueError(
            f"Target classes must be in 0..{classes - 1} (the model has {classes} classes); "
            f"got {targets.min()}..{targets.max()}."
        )


def _curve(model, inputs, maps, target, *, mode: str, steps: int, baseline, batch_size: int,
           blur_sigma: float, blur_size: int, output: str, progress: bool,
           space: PerturbationSpace | None = None) -> dict:
    space = space or perturbation_space(model, inputs, output)
    maps, targets = _maps_and_targets(space, maps, target, batch_size, progress)
    images = space.images
    n, h, w, _ = images.shape
    pixels = h * w
    steps = positive_int(steps, "steps")
    if not 1 <= steps <= pixels:
        raise ValueError(f"steps must be between 1 and the number of pixels ({pixels}); got {steps}.")
    base = baseline_images(images, baseline, blur_sigma, blur_size, zero=space.zero)
    counts = np.rint(np.linspace(0, pixels, steps + 1)).astype(np.int64)
    # The rank of every pixel in order of decreasing map value (ties: row-major order).
    order = np.argsort(-maps.reshape(n, -1), axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(pixels)[None, :], axis=1)

    points = steps + 1
    scores = np.empty(n * points, dtype=np.float64)
    for start in _batches(n * points, batch_size, progress, mode):
        pair = np.arange(start, min(start + batch_size, n * points))
        image, step = np.divmod(pair, points)
        switched = (ranks[image] < counts[step][:, None]).reshape(-1, h, w, 1)
        if mode == "deletion":
            batch = np.where(switched, base[image], images[image])
        else:
            batch = np.where(switched, images[image], base[image])
        probabilities = space.probabilities(batch)
        _check_targets(targets, probabilities.shape[1])
        scores[pair] = probabilities[np.arange(len(pair)), targets[image]]
    scores = scores.reshape(n, points).astype(np.float32)
    fractions = (counts / pixels).astype(np.float32)
    auc = curve_auc(scores, fractions)
    return {"fractions": fractions, "scores": scores, "auc": auc,
            "mean_auc": float(auc.mean()), "target": targets}


def deletion_curve(model, inputs, maps, target=None, *, steps: int = 50, baseline="zero",
                   batch_size: int = 32, blur_sigma: float = BLUR_SIGMA, blur_size: int = BLUR_SIZE,
                   output: str = "auto", progress: bool = True) -> dict:
    """The deletion curve (RISE): the class probability as the most salient pixels are removed.

    Pixels are removed in order of decreasing map value (ties in row-major order), in
    ``steps`` equal steps from none to all, by replacing them with the ``baseline``
    (`baseline_images`). A faithful map makes the probability fall fast: a low area under
    the curve (AUC) is better. The default baseline is the paper's for deletion, ``"zero"``.
    The paper removes 224 pixels per step on 224 x 224 images (224 steps); the default 50
    steps costs less than a quarter of that and moves the AUC by well under 0.01 on smooth
    curves.

    Args:
        model: a Keras model (``inputs``: its float inputs ``(n, H, W, C)``) or a
            `camutils.zoo.ZooModel` (``inputs``: uint8 images as the network sees them).
        maps: ``(n, H, W)`` at the images' resolution, or an `Explanation`.
        target: the class whose probability is followed: one index, one per image, or
            ``None`` (the explanation's classes, else the top class on the original image).
        steps: number of steps (the curve has ``steps + 1`` points).
        baseline: ``"zero"``, ``"mean"``, ``"blur"``, a number, an array or a function
            (see `baseline_images`).
        batch_size: perturbed images per forward pass.
        output: ``"auto"``, ``"logits"`` or ``"probabilities"`` (what the model outputs).
        progress: show a progress bar.

    Returns:
        ``{"fractions": (steps + 1,), "scores": (n, steps + 1), "auc": (n,), "mean_auc":
        float, "target": (n,)}``; fractions are the share of pixels removed at each point.
    """
    return _curve(model, inputs, maps, target, mode="deletion", steps=steps, baseline=baseline,
                  batch_size=batch_size, blur_sigma=blur_sigma, blur_size=blur_size,
                  output=output, progress=progress)


def insertion_curve(model, inputs, maps, target=None, *, steps: int = 50, baseline="blur",
                    batch_size: int = 32, blur_sigma: float = BLUR_SIGMA, blur_size: int = BLUR_SIZE,
                    output: str = "auto", progress: bool = True) -> dict:
    """The insertion curve (RISE): the class probability as the most salient pixels are added.

    Starting from the ``baseline`` image, the original pixels are put back in order of
    decreasing map value (ties in row-major order), in ``steps`` equal steps. A faithful map
    makes the probability rise fast: a high AUC is better. The default baseline is the
    paper's for insertion, ``"blur"`` (a blurred copy of the image, so that the start
    carries no sharp evidence but is not an unnatural flat image). Arguments and result as
    for `deletion_curve`; fractions are the share of pixels inserted.
    """
    return _curve(model, inputs, maps, target, mode="insertion", steps=steps, baseline=baseline,
                  batch_size=batch_size, blur_sigma=blur_sigma, blur_size=blur_size,
                  output=output, progress=progress)


def curve_auc(scores, fractions) -> np.ndarray:
    """Area under each curve by the trapezoid rule, float32 ``(n,)``.

    ``scores`` is ``(n, points)`` (or one curve), ``fractions`` the x values in [0, 1];
    with scores in [0, 1] the area is in [0, 1] too. For equal steps it equals the RISE
    code's ``(sum - first / 2 - last / 2) / (points - 1)``.
    """
    scores = np.atleast_2d(np.asarray(scores, dtype=np.float64))
    fractions = np.asarray(fractions, dtype=np.float64)
    if fractions.ndim != 1 or len(fractions) != scores.shape[1] or len(fractions) < 2:
        raise ValueError(
            f"fractions must be one x value per point ({scores.shape[1]}), at least two; "
            f"got shape {fractions.shape}."
        )
    heights = (scores[:, 1:] + scores[:, :-1]) / 2.0
    return (heights * np.diff(fractions)).sum(axis=1).astype(np.float32)


def average_drop(model, inputs, maps, target=None, *, baseline="zero", batch_size: int = 32,
                 output: str = "auto", progress: bool = True) -> dict:
    """Average drop and increase in confidence (Grad-CAM++, sec. 5.1), in percent.

    The explanation map is used as a soft mask on the input: ``O`` is the probability of
    the target class for ``image * map``, ``Y`` for the image itself (softmax scores, as in
    the paper). Over the ``n`` images::

        average drop           = 100 / n * sum(max(0, Y - O) / Y)    (lower is better)
        increase in confidence = 100 / n * #{O > Y}                  (higher is better)

    An all-ones map leaves the input unchanged: its drop is 0. With another ``baseline``
    the masked input is ``image * map + baseline * (1 - map)``; the default ``"zero"`` is
    the paper's ``image * map`` in the model's input space (for a zoo model, the pixels fade
    towards the colour whose input value is 0; see the module's notes).

    Args:
        model, inputs, target, batch_size, output, progress: as for `deletion_curve`.
        maps: ``(n, H, W)`` in [0, 1] (normalised maps, as `camutils.explain` returns).
        baseline: as for `baseline_images`.

    Returns:
        ``{"average_drop": float, "increase_in_confidence": float, "drop": (n,) percent,
        "increase": (n,) bool, "original": (n,) Y, "masked": (n,) O, "target": (n,)}``.
    """
    space = perturbation_space(model, inputs, output)
    return _average_drop(space, maps, target, baseline, batch_size, progress)


def _average_drop(space: PerturbationSpace, maps, target, baseline, batch_size: int,
                  progress: bool) -> dict:
    maps, targets = _maps_and_targets(space, maps, target, batch_size, progress)
    if maps.min() < -1e-6 or maps.max() > 1 + 1e-6:
        raise ValueError(
            f"Average drop uses the map as a mask, so it must lie in [0, 1]; got values in "
            f"[{maps.min():.3g}, {maps.max():.3g}]. Pass normalised maps (explanation.maps)."
        )
    images = space.images
    mask = np.clip(maps, 0, 1)[..., None]
    base = baseline_images(images, baseline, zero=space.zero)
    n = len(images)
    # Originals and masked images go through the model together, in batches.
    probabilities_y = np.empty(n)
    probabilities_o = np.empty(n)
    for start in _batches(2 * n, batch_size, progress, "average drop"):
        index = np.arange(start, min(start + batch_size, 2 * n))
        image = index % n
        masked = index >= n
        batch = images[image].copy()
        if masked.any():
            m = mask[image[masked]]
            # x * m + b * (1 - m): exactly x where m == 1, exactly b where m == 0.
            batch[masked] = batch[masked] * m + base[image[masked]] * (1 - m)
        probabilities = space.probabilities(batch)
        _check_targets(targets, probabilities.shape[1])
        p = probabilities[np.arange(len(index)), targets[image]]
        probabilities_y[image[~masked]] = p[~masked]
        probabilities_o[image[masked]] = p[masked]
    y, o = probabilities_y, probabilities_o
    drop = 100.0 * np.divide(np.maximum(0.0, y - o), y, out=np.zeros_like(y), where=y > 0)
    increase = o > y
    return {
        "average_drop": float(drop.mean()),
        "increase_in_confidence": float(100.0 * increase.mean()),
        "drop": drop.astype(np.float32), "increase": increase,
        "original": y.astype(np.float32), "masked": o.astype(np.float32), "target": targets,
    }


def faithfulness_scores(model, inputs, maps, target=None, *, steps: int = 50,
                        batch_size: int = 32, output: str = "auto",
                        progress: bool = True) -> dict[str, float]:
    """Every faithfulness score of a batch of maps with the papers' defaults: one table row.

    Returns:
        ``{"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence"}``:
        deletion with the zero baseline, insertion with the blur baseline (AUCs in [0, 1]),
        average drop and increase in confidence in percent.
    """
    space = perturbation_space(model, inputs, output)
    if target is None and hasattr(maps, "class_index") and not isinstance(maps, np.ndarray):
        target = maps.class_index
    maps, targets = _maps_and_targets(space, maps, target, batch_size, progress)
    common = dict(steps=steps, batch_size=batch_size, blur_sigma=BLUR_SIGMA, blur_size=BLUR_SIZE,
                  output=output, progress=progress, space=space)
    deletion = _curve(model, None, maps, targets, mode="deletion", baseline="zero", **common)
    insertion = _curve(model, None, maps, targets, mode="insertion", baseline="blur", **common)
    drop = _average_drop(space, maps, targets, "zero", batch_size, progress)
    return {
        "deletion_auc": deletion["mean_auc"],
        "insertion_auc": insertion["mean_auc"],
        "average_drop": drop["average_drop"],
        "increase_in_confidence": drop["increase_in_confidence"],
    }
