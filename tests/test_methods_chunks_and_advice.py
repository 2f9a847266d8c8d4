"""explain(..., chunk_size=n) equals one call over the whole batch; CAM errors give advice that helps."""

import numpy as np
import pytest

import camutils
from camutils.methods import TopK

from _models import gap_model


@pytest.fixture(scope="module")
def model_and_images():
    model = gap_model()
    images = np.random.default_rng(3).random((7, *model.input_shape[1:])).astype("float32")
    return model, images


@pytest.mark.parametrize("method", ["cam", "gradcam", "scorecam", "guided_gradcam"])
@pytest.mark.parametrize("target", [None, 1, "per_image", TopK(2)])
def test_chunks_join_to_the_whole(model_and_images, method, target):
    model, images = model_and_images
    if target == "per_image":
        target = [0, 1, 2, 0, 1, 2, 0]
    whole = camutils.explain(model, images, method, target=target)
    joined = camutils.explain(model, images, method, target=target, chunk_size=3)
    for name in ("maps", "raw", "class_index", "score"):
        np.testing.assert_allclose(getattr(joined, name), getattr(whole, name), rtol=1e-5, atol=1e-6)
    assert joined.extras.keys() == whole.extras.keys()
    assert (joined.layer, joined.method) == (whole.layer, whole.method)


def test_bad_chunk_size(model_and_images):
    model, images = model_and_images
    with pytest.raises(ValueError, match="chunk_size"):
        camutils.explain(model, images, chunk_size=0)


def test_cam_error_suggests_moving_the_layer_only_when_that_helps():
    flatten = gap_model(head="flatten")
    with pytest.raises(ValueError, match="gradcam") as info:
        camutils.explain(flatten, np.zeros((1, *flatten.input_shape[1:]), "float32"), "cam")
    assert "just before the global pooling" not in str(info.value)

    gap = gap_model()
    first_conv = camutils.methods.spatial_layers(gap)[0]
    with pytest.raises(ValueError, match="just before the global pooling"):
        camutils.explain(gap, np.zeros((1, *gap.input_shape[1:]), "float32"), "cam", layer=first_conv)
