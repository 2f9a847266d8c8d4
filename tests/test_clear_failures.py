"""Careless arguments: one clear error, whatever the batch.

- Options that must be positive ints refuse strings and booleans, whatever the batch.
- A ragged list of images (or maps): which items differ, and how to fix it.
"""

import numpy as np
import pytest

import _models as M

import tensorflow  # noqa: E402,F401

from camutils import methods as cm  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return M.gap_model(classes=5, seed=32)


# ------------------------------------------------------------------------- positive ints


@pytest.mark.parametrize("value", ["2", True, 2.0, 0, -1])
@pytest.mark.parametrize("count", [1, 2, 3])
def test_chunk_size_is_checked_whatever_the_batch(model, value, count):
    with pytest.raises(ValueError, match="chunk_size must be a positive int or None, got"):
        cm.explain(model, M.images(count), chunk_size=value)


def test_chunk_size_still_works(model):
    x = M.images(3)
    np.testing.assert_allclose(cm.explain(model, x, chunk_size=np.int64(2)).maps,
                               cm.explain(model, x).maps, atol=1e-6)


@pytest.mark.parametrize("option, value", [("batch_size", "2"), ("batch_size", True),
                                           ("steps", "4"), ("steps", True), ("steps", 2.5)])
def test_the_metrics_options_are_positive_ints(model, option, value):
    from camutils.metrics import deletion_curve

    maps = np.ones((1, *M.SIZE), np.float32)
    options = {"steps": 4, "batch_size": 8, option: value}
    with pytest.raises(ValueError, match=f"{option} must be a positive int, got"):
        deletion_curve(model, M.images(1), maps, target=0, progress=False, **options)


@pytest.mark.parametrize("value", ["3", True, 0])
def test_top_classes_and_the_gallery_take_positive_ints(value):
    from camutils.plot import gallery
    from camutils.scores import top_classes

    with pytest.raises(ValueError, match="k must be a positive int"):
        top_classes(np.zeros((1, 4)), value)
    with pytest.raises(ValueError, match="cols must be a positive int"):
        gallery(M.images(2), cols=value)


# ------------------------------------------------------------------------- ragged lists


@pytest.mark.parametrize("call", ["explain", "gradcam"])
def test_a_ragged_list_of_images_names_the_sizes(model, call):
    x = M.images(3)
    ragged = [x[0], x[1], x[2, :8]]
    run = (lambda: cm.explain(model, ragged)) if call == "explain" else \
        (lambda: cm.gradcam(model, ragged))
    with pytest.raises(ValueError) as info:
        run()
    message = str(info.value)
    assert "different shapes" in message
    assert "image 0 is (16, 16, 3) but image 2 is (8, 16, 3)" in message
    assert "resize" in message and "inhomogeneous" not in message


def test_a_ragged_list_of_maps_names_the_sizes():
    from camutils.metrics import pointing_game

    with pytest.raises(ValueError, match=r"map 0 is \(4, 4\) but map 1 is \(4, 5\)"):
        pointing_game([np.ones((4, 4)), np.ones((4, 5))], boxes=[[0, 0, 2, 2]] * 2)


@pytest.mark.parametrize("option, value", [("top_k", "3"), ("top_k", True),
                                           ("scorecam_channels", "64"),
                                           ("scorecam_channels", 0), ("display_width", 2.5)])
def test_the_explorers_options_are_positive_ints(option, value):
    from camutils.widgets import Explorer

    with pytest.raises(ValueError, match=f"{option} must be a positive int"):
        Explorer(models={}, **{option: value})
