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
    assert titles == ["star (1.50)", "circle (-0.25)"]
    assert "gradcam at conv" in fig._suptitle.get_text()
