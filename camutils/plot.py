"""Pictures of explanations: a map over an image, with a colour bar; galleries; the course's
figure style.

The default colour map is ``inferno``: perceptually uniform, so equal steps in importance
look like equal steps in colour, and it stays readable in grey scale and for most colour-blind
readers. ``jet``, common in CAM papers, is accepted but not the default: its bright bands
(cyan, yellow) invent edges that are not in the map.

Figures for today's screens (`use_course_style`, which every notebook's setup applies): a
figure inch is a screen inch (96 CSS pixels), so a font's points are points on the screen;
in a notebook each figure is drawn at twice its pixels and shown at its size, sharp on a
high-density screen, as JPEG when it shows photos or pixel-level maps (a fraction of a PNG's
bytes in the notebook file) and as PNG otherwise; no text is smaller than `MIN_FONT_POINTS` at
the width of a notebook (`NOTEBOOK_WIDTH_INCHES`; a wider figure is shown shrunk). A colour
that carries a value gets a colour bar.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from .checks import positive_int
from .images import resize, to_rgb_uint8

__all__ = ["DEFAULT_CMAP", "colorize", "overlay", "show_overlay", "gallery", "show_explanation",
           "STYLE", "use_course_style", "displayed_font_points", "figure_image", "show_saved"]

DEFAULT_CMAP = "inferno"

#: The width of a notebook's output area on a laptop screen (about 900 CSS pixels).
NOTEBOOK_WIDTH_INCHES = 9.4
#: The smallest text a course figure shows, in points at notebook width.
MIN_FONT_POINTS = 8.0
#: Figures are drawn at this many pixels per inch and shown at 96 (a CSS inch).
SCREEN_DPI, SHARP_DPI = 96, 192
#: Figures holding an image of at least this many pixels go to the notebook as JPEG.
PIXEL_LEVEL = 64 * 64

STYLE = {
    "figure.dpi": SCREEN_DPI,
    "savefig.dpi": SHARP_DPI,
    "figure.facecolor": "white",
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "xtick.labelsize": 8.5,
    "ytick.labelsize": 8.5,
    "legend.fontsize": 8.5,
    "legend.title_fontsize": 9,
    "figure.titlesize": 11,
    "image.cmap": DEFAULT_CMAP,
}


def _pixel_level(fig) -> bool:
    """Whether the figure shows a photo or a pixel-level map (an image of many pixels)."""
    return any(np.prod(image.get_array().shape[:2]) >= PIXEL_LEVEL
               for ax in fig.axes for image in ax.get_images() if image.get_array() is not None)


def figure_image(fig, fmt: str | None = None, quality: int = 75) -> tuple[bytes, dict]:
    """The figure as ``(bytes, {"width": ..., "height": ...})``: drawn at `SHARP_DPI`, its
    displayed size in CSS pixels; ``fmt`` "jpeg" or "png", by default JPEG for a figure that
    shows photos or pixel-level maps."""
    import io

    fmt = fmt or ("jpeg" if _pixel_level(fig) else "png")
    buffer = io.BytesIO()
    options = {"pil_kwargs": {"quality": quality}} if fmt == "jpeg" else {}
    fig.canvas.print_figure(buffer, format=fmt, dpi=SHARP_DPI, bbox_inches="tight",
                            facecolor="white", **options)
    data = buffer.getvalue()
    from PIL import Image

    with Image.open(io.BytesIO(data)) as picture:
        width, height = picture.size
    scale = SCREEN_DPI / SHARP_DPI
    return data, {"width": int(round(width * scale)), "height": int(round(height * scale))}


def _formatter(fmt: str):
    def render(fig):
        if fig.axes and ("jpeg" if _pixel_level(fig) else "png") != fmt:
            return None          # the other format shows this figure
        import base64

        data, size = figure_image(fig, fmt)
        return base64.b64encode(data).decode("ascii"), size
    return render


def use_course_style() -> None:
    """Apply `STYLE` to matplotlib, and in a notebook show figures sharp (`figure_image`)."""
    import matplotlib

    import matplotlib.pyplot as plt

    plt.close(plt.figure())   # resolves the backend: a notebook's inline one sets itself up now
    matplotlib.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is None or not hasattr(shell, "display_formatter"):
        return
    from matplotlib.figure import Figure

    formatters = shell.display_formatter.formatters
    for mime, fmt in (("image/png", "png"), ("image/jpeg", "jpeg")):
        formatters[mime].for_type(Figure, _formatter(fmt))


def show_saved(path, quality: int = 80) -> None:
    """Show a figure saved at `SHARP_DPI` (the audit report's, say) in a notebook at its size,
    sharp, as JPEG: a fraction of the PNG's bytes in the notebook file."""
    import io

    from IPython.display import Image, display
    from PIL import Image as Picture

    with Picture.open(path) as picture:
        buffer = io.BytesIO()
        picture.convert("RGB").save(buffer, format="JPEG", quality=quality)
        width = int(round(picture.size[0] * SCREEN_DPI / SHARP_DPI))
    display(Image(data=buffer.getvalue(), format="jpeg", width=width))


def displayed_font_points(fig) -> float:
    """The smallest text of the figure, in points as a reader sees it in a notebook: its size,
    times the share of it left when a figure wider than the notebook is shrunk to fit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    width = fig.get_tightbbox(canvas.get_renderer()).width
    shrink = min(1.0, NOTEBOOK_WIDTH_INCHES / max(width, 1e-9))
    sizes = [text.get_fontsize() for text in fig.findobj(_is_text) if text.get_text().strip()
             and text.get_visible()]
    return min(sizes, default=float("inf")) * shrink


def _is_text(artist) -> bool:
    from matplotlib.text import Text

    return isinstance(artist, Text)


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
        ax.set_title(title)
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
        fig.suptitle(suptitle)
    return fig


def show_explanation(explanation, images=None, cols: int = 4, **kwargs):
    """A gallery of an `Explanation`: each image with its map, titled with its class and the
    logit explained (``tiger_cat (logit 9.26)``).

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
        f"{names[i] if names is not None else f'class {i}'} (logit {s:.2f})"
        for i, s in zip(index.tolist(), score.tolist())
    ]
    kwargs.setdefault("suptitle", f"{explanation.method} at {explanation.layer}")
    return gallery(images, maps, titles=titles, cols=cols, **kwargs)
