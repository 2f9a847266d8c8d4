"""camutils.plot: overlays blend the right colours; galleries have the right panels."""

import matplotlib
import numpy as np
import pytest

from camutils import plot


def test_colorize_uses_the_colour_map():
    m = np.array([[0.0, 1.0]])
    rgb = plot.colorize(m, "gray")
    assert rgb.tolist() == [[[0, 0, 0], [255, 255, 255]]]
    inferno = plot.colorize(m)
    expected = (np.array(matplotlib.colormaps["inferno"]([0.0, 1.0]))[:, :3] * 255 + 0.5).astype(np.uint8)
    np.testing.assert_array_equal(inferno[0], expected)


def test_overlay_blends_and_resizes():
    image = np.full((8, 6, 3), 100, np.uint8)
    small = np.ones((4, 3), np.float32)
    out = plot.overlay(image, small, alpha=0.5, cmap="gray")
    assert out.shape == (8, 6, 3) and out.dtype == np.uint8
    assert np.all(out == 178)  # (100 + 255) / 2 rounded
    np.testing.assert_array_equal(plot.overlay(image, small, alpha=0.0), image)


def test_overlay_rejects_bad_maps_and_alpha():
    image = np.zeros((4, 4, 3), np.uint8)
    with pytest.raises(ValueError, match="NaN"):
        plot.overlay(image, np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match=r"\(height, width\)"):
        plot.overlay(image, np.zeros((2, 4, 4)))
    with pytest.raises(ValueError, match="alpha"):
        plot.overlay(image, np.zeros((4, 4)), alpha=2)
    with pytest.raises(ValueError, match="viridis"):
        plot.overlay(image, np.zeros((4, 4)), cmap="viridiss")


def test_show_overlay_adds_a_colour_bar():
    ax = plot.show_overlay(np.zeros((4, 4, 3), np.uint8), np.eye(4), title="t")
    fig = ax.figure
    assert len(fig.axes) == 2  # the image and its colour bar
    assert fig.axes[1].get_ylabel() == "relative importance"
    assert ax.get_title() == "t"


def test_gallery_one_image_many_maps():
    maps = [np.eye(5) * v for v in (0.2, 0.5, 1.0)]
    fig = plot.gallery(np.zeros((5, 5, 3), np.uint8), maps, titles=["a", "b", "c"], cols=2)
    image_axes = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in image_axes] == ["a", "b", "c"]
    assert len(fig.axes) == 4 + 1  # a 2 x 2 grid and one colour bar


def test_gallery_checks_counts():
    with pytest.raises(ValueError, match="2 images but 3 maps"):
        plot.gallery([np.zeros((2, 2, 3))] * 2, [np.zeros((2, 2))] * 3)
    with pytest.raises(ValueError, match="titles"):
        plot.gallery([np.zeros((2, 2, 3))] * 2, titles=["one"])
    with pytest.raises(ValueError, match="at least one"):
        plot.gallery([])


class _Explanation:
    method, layer = "gradcam", "conv"
    maps = np.stack([np.eye(4), np.ones((4, 4))]).astype(np.float32)
    class_index = np.array([2, 0])
    score = np.array([1.5, -0.25])
    class_names = ["circle", "square", "star"]
    images = np.zeros((2, 4, 4, 3), np.uint8)


def test_show_explanation_titles_with_class_and_score():
    fig = plot.show_explanation(_Explanation())
    titles = [ax.get_title() for ax in fig.axes if ax.images]
    assert titles == ["star (logit 1.50)", "circle (logit -0.25)"]
    assert "gradcam at conv" in fig._suptitle.get_text()


# --------------------------------------------------------------------------- the figure style


def _texts_overlap(fig) -> list[tuple[str, str]]:
    """Pairs of visible texts (titles, the figure's title) whose boxes intersect."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = fig.canvas if hasattr(fig.canvas, "get_renderer") else FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for ax in fig.axes for t in (ax.title,) if t.get_text().strip()]
    if fig._suptitle is not None:
        texts.append(fig._suptitle)
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in texts]
    return [(a, b) for i, (a, box_a) in enumerate(boxes) for b, box_b in boxes[i + 1:]
            if box_a.overlaps(box_b)]


def test_the_course_style_is_sharp_and_readable():
    import matplotlib

    plot.use_course_style()
    rc = matplotlib.rcParams
    assert rc["figure.dpi"] == 96 and rc["savefig.dpi"] >= 2 * rc["figure.dpi"]
    sizes = [rc[key] for key in ("font.size", "axes.titlesize", "axes.labelsize", "xtick.labelsize",
                                 "ytick.labelsize", "legend.fontsize", "figure.titlesize")]
    assert all(isinstance(s, float) and s >= plot.MIN_FONT_POINTS for s in sizes), sizes
    assert rc["image.cmap"] == plot.DEFAULT_CMAP


def test_figures_go_to_a_notebook_sharp_as_jpeg_or_png():
    import matplotlib.pyplot as plt
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        plot.use_course_style()
        photo_like, _ = plt.subplots(figsize=(3, 2))
        photo_like.axes[0].imshow(np.random.default_rng(0).random((100, 120)))
        lines, ax = plt.subplots(figsize=(3, 2))
        ax.plot([0, 1], [1, 0])
        for fig, shown, other in ((photo_like, "image/jpeg", "image/png"), (lines, "image/png", "image/jpeg")):
            data, metadata = shell.display_formatter.format(fig)
            assert shown in data and other not in data
            size = metadata[shown]
            assert size["width"] > 0
            import base64, io
            from PIL import Image

            with Image.open(io.BytesIO(base64.b64decode(data[shown]))) as picture:
                assert abs(picture.size[0] - 2 * size["width"]) <= 1   # drawn at twice its pixels
        plt.close("all")
    finally:
        InteractiveShell.clear_instance()


def test_the_librarys_figures_read_at_notebook_width_and_show_their_scale():
    plot.use_course_style()
    photos = np.zeros((8, 224, 224, 3), np.uint8)
    maps = np.random.default_rng(1).random((8, 224, 224)).astype(np.float32)
    figures = [plot.gallery(photos, maps, titles=[f"class {i} (0.93)" for i in range(8)], cols=4,
                            tile_inches=1.8, suptitle="gradcam at head_relu6"),
               plot.show_overlay(photos[0], maps[0], title="Grad-CAM").figure,
               plot.show_explanation(_Explanation())]
    for fig in figures:
        assert plot.displayed_font_points(fig) >= plot.MIN_FONT_POINTS
        assert any(ax.get_ylabel() == "relative importance" for ax in fig.axes)   # a colour bar
        assert _texts_overlap(fig) == []


def test_the_font_check_sees_small_text_and_wide_figures():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 3))
    ax.set_title("small", fontsize=6)
    assert plot.displayed_font_points(fig) == 6
    wide, ax = plt.subplots(figsize=(18.8, 3))
    ax.set_title("shrunk to half", fontsize=10)
    assert plot.displayed_font_points(wide) == pytest.approx(5, rel=0.1)
    plt.close("all")
