"""Every user error gets a message that says what was wrong and how to fix it."""

import re

import numpy as np
import pytest

import _models as M

import tensorflow  # noqa: E402,F401
from camutils import methods as cm  # noqa: E402

NAMES = ["cat", "dog", "horse", "zebra", "tabby cat"]


@pytest.fixture(scope="module")
def model():
    return M.gap_model(classes=5)


@pytest.fixture(scope="module")
def x():
    return M.images(2)


def test_unknown_method_lists_methods_closest_first(model, x):
    with pytest.raises(ValueError) as error:
        cm.explain(model, x, "gradcamm")
    message = str(error.value)
    listed = message.split("closest first:")[1].strip(" .").split(", ")
    assert listed[0] == "gradcam"
    assert set(listed) == set(cm.METHODS)


@pytest.mark.parametrize("alias, name", [
    ("Grad-CAM", "gradcam"), ("grad_cam", "gradcam"), ("gradcam_plus_plus", "gradcam++"),
    ("Grad-CAM++", "gradcam++"), ("score-cam", "scorecam"), ("Guided Grad-CAM", "guided_gradcam"),
    ("guided-backprop", "guided_backprop"), ("HiResCAM", "hirescam"), ("X-Grad-CAM", "xgradcam"),
])
def test_aliases(alias, name):
    assert cm.canonical_name(alias) == name
    assert cm.method_function(alias) is cm.METHODS[name]


def test_unknown_option_names_the_methods_options(model, x):
    with pytest.raises(TypeError, match="no option 'max_channels'.*counterfactual"):
        cm.explain(model, x, "gradcam", max_channels=3)
    with pytest.raises(TypeError, match="options are: none"):
        cm.explain(model, x, "cam", counterfactual=True)


def test_cam_on_a_head_that_is_not_pooling_dense_suggests_gradcam(x):
    model = M.gap_model(head="flatten")
    with pytest.raises(ValueError) as error:
        cm.cam(model, x)
    message = str(error.value)
    assert "Flatten -> Dense" in message and "method='gradcam'" in message
    cm.gradcam(model, x)  # ... which works


def test_cam_at_an_earlier_layer_says_why(model, x):
    with pytest.raises(ValueError, match="'conv1' reaches the logits through Conv2D"):
        cm.cam(model, x, layer="conv1")


def test_class_index_out_of_range(model, x):
    with pytest.raises(ValueError, match=r"Class index 5 is out of range.*5 classes \(0 to 4\)"):
        cm.gradcam(model, x, target=5)
    with pytest.raises(ValueError, match=r"Class index -1 is out of range"):
        cm.gradcam(model, x, target=-1)
    with pytest.raises(ValueError, match=r"Class index 9 \(image 1\) is out of range"):
        cm.gradcam(model, x, target=[0, 9])


def test_unknown_class_name_suggests_close_names(model, x):
    with pytest.raises(ValueError) as error:
        cm.gradcam(model, x, target="tabby", class_names=NAMES)
    message = str(error.value)
    assert "Unknown class name 'tabby'" in message and "'tabby cat'" in message
    with pytest.raises(ValueError, match="No class name is close"):
        cm.gradcam(model, x, target="submarine", class_names=NAMES)


def test_class_name_without_class_names(model, x):
    with pytest.raises(ValueError, match="no class_names were given"):
        cm.gradcam(model, x, target="cat")


def test_class_names_of_the_wrong_length(model, x):
    with pytest.raises(ValueError, match="class_names has 2 names but the model has 5"):
        cm.gradcam(model, x, class_names=["a", "b"])


def test_one_target_per_image(model, x):
    with pytest.raises(ValueError, match="Got 3 targets for 2 image"):
        cm.gradcam(model, x, target=[0, 1, 2])


def test_bad_target_types(model, x):
    with pytest.raises(TypeError, match="bool"):
        cm.gradcam(model, x, target=True)
    with pytest.raises(TypeError, match="TopK"):
        cm.gradcam(model, x, target=2.5)
    with pytest.raises(ValueError, match="positive int"):
        cm.TopK(0)
    with pytest.raises(ValueError, match="more classes than the model has"):
        cm.gradcam(model, x, target=cm.TopK(6))


def test_wrong_input_shape(model, x):
    with pytest.raises(ValueError) as error:
        cm.gradcam(model, np.zeros((2, 32, 32, 3), np.float32))
    message = str(error.value)
    assert "(N, 16, 16, 3)" in message and "(2, 32, 32, 3)" in message
    with pytest.raises(ValueError, match="channels-first"):
        cm.gradcam(model, np.zeros((2, 3, 16, 16), np.float32))
    with pytest.raises(ValueError, match="got an array of shape \\(16,\\)"):
        cm.gradcam(model, np.zeros(16, np.float32))


def test_empty_batch(model):
    with pytest.raises(ValueError, match="empty"):
        cm.gradcam(model, np.zeros((0, 16, 16, 3), np.float32))


def test_nan_and_infinite_inputs_name_the_images(model, x):
    bad = x.copy()
    bad[1, 3, 4, 0] = np.nan
    bad[1, 5, 5, 1] = np.inf
    with pytest.raises(ValueError) as error:
        cm.gradcam(model, bad)
    message = str(error.value)
    assert "1 NaN and 1 infinite" in message and "[1]" in message


def test_non_numeric_images(model):
    with pytest.raises(TypeError, match="numbers"):
        cm.gradcam(model, np.full((1, 16, 16, 3), "a"))


def test_unknown_layer_lists_candidates(model, x):
    with pytest.raises(ValueError) as error:
        cm.explain(model, x, "gradcam", layer="conv3")
    listed = re.findall(r"'([^']+)'", str(error.value).split("closest names first:")[1])
    assert listed[:2] in (["conv1", "conv2"], ["conv2", "conv1"])


def test_layer_without_spatial_output(model, x):
    with pytest.raises(ValueError, match="'logits' \\(Dense\\) has no spatial output.*'conv2'"):
        cm.explain(model, x, "layercam", layer="logits")


def test_multi_output_model_needs_output(x):
    model = M.multi_output_model()
    with pytest.raises(ValueError, match="2 outputs; choose.*output="):
        cm.gradcam(model, x)


def test_perturbation_options_are_checked(model, x):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        cm.scorecam(model, x, batch_size=0)
    with pytest.raises(ValueError, match="max_channels must be a positive int"):
        cm.scorecam(model, x, max_channels=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        cm.ablationcam(model, x, batch_size=2.5)
