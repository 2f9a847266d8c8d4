"""Pictures of explanations: a map over an image, with a colour bar; galleries.

The default colour map is ``inferno``: perceptually uniform, so equal steps in importance
look like equal steps in colour, and it stays readable in grey scale and for most colour-blind
readers. ``jet``, common in CAM papers, is accepted but not the default: its bright bands
(cyan, yellow) invent edges that are not in the map.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .checks import positive_int
from .images import resize, to_rgb_uint8

__all__ = ["DEFAULT_CMAP", "colorize", "overlay", "show_overlay", "gallery", "show_explanation"]

DEFAULT_CMAP = "inferno"


def _colormap(cmap):
    import matplotlib

    try:
        return matplotlib.colormaps[cmap] if isinstance(cmap, str) else cmap
    except KeyError:
        from .suggestions import did_you_mean

        raise ValueError(
            f"Unknown colour map {cmap!r}.{did_you_mean(cmap, list(matplotlib.colormaps))}"
            " Perceptually uniform choices: inferno, viridis, magma, cividis."
        ) from None


def _as_map(heatmap) -> np.ndarray:
    m = np.asarray(heatmap, dtype=np.float32)
    if m.ndim == 3 and m.shape[-1] == 1:
        m = m[..., 0]
    if m.ndim != 2:
        raise ValueError(f"A map must have shape (height, width); got {m.shape}.")
    if not np.all(np.isfinite(m)):
        raise ValueError("The map contains NaN or infinite values.")
    return np.clip(m, 0.0, 1.0)


def colorize(heatmap, cmap=DEFAULT_CMAP) -> np.ndarray:
    """A map with values in [0, 1] as an RGB uint8 image through a colour map."""
    rgba = _colormap(cmap)(_as_map(heatmap))
    return (rgba[..., :3] * 255.0 + 0.5).astype(np.uint8)


def overlay(image, heatmap, alpha: float = 0.5, cmap=DEFAULT_CMAP) -> np.ndarray:
    """Blend a map (values in [0, 1]) over an image; returns RGB uint8 of the image's size.

    The map is resized (bilinear) to the image when their sizes differ. ``alpha`` is the
    weight of the colour map: 0 shows only the image, 1 only the map.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1]; got {alpha}.")
    image = to_rgb_uint8(image)
    m = _as_map(heatmap)
    if m.shape != image.shape[:2]:
        m = resize(m, image.shape[:2], interpolation="bilinear")
    blended = (1.0 - alpha) * image.astype(np.float32) + alpha * colorize(m, cmap).astype(np.float32)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def _colorbar(fig, axes, cmap, label: str):
    import matplotlib.cm
    import matplotlib.colors

    mappable = matplotlib.cm.ScalarMappable(matplotlib.colors.Normalize(0.0, 1.0), _colormap(cmap))
    bar = fig.colorbar(mappable, ax=axes, fraction=0.046, pad=0.03, shrink=0.9)
    bar.set_label(label)
    return bar


def show_overlay(image, heatmap, ax=None, alpha: float = 0.5, cmap=DEFAULT_CMAP,
                 title: str | None = None, colorbar: bool = True,
                 label: str = "relative importance"):
    """Draw `overlay` on a matplotlib axis (a new figure when ``ax`` is None); returns the axis."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(3.2, 3.0))
    ax.imshow(overlay(image, heatmap, alpha, cmap))
    ax.set_axis_off()
    if title:
        ax.set_title(title, fontsize=9)
    if colorbar:
        _colorbar(ax.figure, ax, cmap, label)
    return ax


def gallery(images, maps=None, titles: Sequence[str] | None = None, cols: int = 4,
            alpha: float = 0.5, cmap=DEFAULT_CMAP, tile_inches: float = 2.0,
            colorbar: bool = True, suptitle: str | None = None,
            label: str = "relative importance"):
    """A grid of images, each with its map overlaid when ``maps`` is given; returns the figure.

    ``images`` is a batch or a list (one image is repeated when there are several maps, so
    one photo with the maps of several methods or classes is one call). ``maps`` is a list or
    array of 2-D maps in [0, 1]. One colour bar serves the whole grid.
    """
    import matplotlib.pyplot as plt

    images = [images] if isinstance(images, np.ndarray) and images.ndim in (2, 3) else list(images)
    maps = None if maps is None else [np.asarray(m) for m in maps]
    if not images:
        raise ValueError("gallery needs at least one image.")
    count = len(images) if maps is None else len(maps)
    if maps is not None and len(images) == 1:
        images = images * count
    if maps is not None and len(images) != count:
        raise ValueError(f"gallery got {len(images)} images but {count} maps: give one map per "
                         "image, or one image for all the maps.")
    if titles is not None and len(titles) != count:
        raise ValueError(f"gallery got {len(titles)} titles for {count} panels.")
    cols = min(positive_int(cols, "cols"), count)
    rows = int(np.ceil(count / cols))
    extra = 0.6 if colorbar and maps is not None else 0.0
    fig, axes = plt.subplots(rows, cols, figsize=(cols * tile_inches + extra, rows * tile_inches + 0.3),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= count:
            continue
        shown = to_rgb_uint8(images[i]) if maps is None else overlay(images[i], maps[i], alpha, cmap)
        ax.imshow(shown)
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if colorbar and maps is not None:
        _colorbar(fig, axes.ravel().tolist(), cmap, label)
    if suptitle:
        fig.suptitle(suptitle, fontsize=11)
    return fig


def show_explanation(explanation, images=None, cols: int = 4, **kwargs):
    """A gallery of an `Explanation`: each image with its map, titled with its class and score.

    ``images`` defaults to ``explanation.images`` (what a zoo model saw); pass them for a plain
    Keras model. Top-k explanations show each image's k maps in a row.
    """
    images = explanation.images if images is None else images
    if images is None:
        raise ValueError("This explanation carries no images: pass images=... (the uint8 "
                         "pictures the model saw, at its input size).")
    maps = np.asarray(explanation.maps)
    index = np.asarray(explanation.class_index)
    score = np.asarray(explanation.score)
    names = getattr(explanation, "class_names", None)
    images = list(images)
    if maps.ndim == 4:  # top-k: (N, k, H, W)
        k = maps.shape[1]
        images = [im for im in images for _ in range(k)]
        maps, index, score = maps.reshape(-1, *maps.shape[2:]), index.ravel(), score.ravel()
        cols = k
    titles = [
        f"{names[i] if names is not None else f'class {i}'} ({s:.2f})"
        for i, s in zip(index.tolist(), score.tolist())
    ]
    kwargs.setdefault("suptitle", f"{explanation.method} at {explanation.layer}")
    return gallery(images, maps, titles=titles, cols=cols, **kwargs)
