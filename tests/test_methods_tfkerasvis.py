"""Agreement with tf-keras-vis 0.8.7 (a test-only dependency) on unnormalised maps.

tf-keras-vis is pointed at the same layer (``seek_penultimate_conv_layer=False``) and asked
for raw maps (``expand_cam=False, normalize_cam=False``). Its Score-CAM upsamples the masks
with corner-aligned interpolation (scipy ``zoom``) where camutils uses half-pixel centres, so
Score-CAM is compared at a layer with the input's resolution, where no upsampling happens.
Its Grad-CAM++ keeps the paper's factor ``exp(S)`` and normalises the coefficients over all
positions, camutils' ``alpha_normalisation="all"`` (see `camutils.methods.gradient`).
"""

import warnings

import numpy as np
import pytest

import _models as M

import tf_keras_vis  # noqa: E402,F401  (a test dependency: pip install -e ".[test]")
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from tf_keras_vis.gradcam import Gradcam
    from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.scorecam import Scorecam
    from tf_keras_vis.utils.scores import CategoricalScore

from camutils import methods as cm  # noqa: E402

RAW = dict(seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)


@pytest.fixture(scope="module")
def model():
    # Flatten head: the gradients vary over positions, so the methods really differ.
    return M.gap_model(channels=(4, 6), head="flatten", first_stride=1, seed=7)


@pytest.fixture(scope="module")
def x():
    return M.images(3, seed=2)


CLASSES = [1, 3, 0]


def _assert_agree(ours, theirs):
    theirs = np.asarray(theirs)
    assert ours.shape == theirs.shape
    scale = np.abs(theirs).max()
    assert scale > 0
    assert np.abs(ours - theirs).max() <= 1e-5 * scale


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_gradcam_agrees(model, x, layer):
    theirs = Gradcam(model)(CategoricalScore(CLASSES), x, penultimate_layer=layer, **RAW)
    _assert_agree(cm.gradcam(model, x, CLASSES, layer).raw, theirs)


def test_layercam_agrees(model, x):
    theirs = Layercam(model)(CategoricalScore(CLASSES), x, penultimate_layer="conv2", **RAW)
    _assert_agree(cm.layercam(model, x, CLASSES, "conv2").raw, theirs)


def test_gradcam_plus_plus_agrees_up_to_the_papers_exp_score(model, x):
    theirs = GradcamPlusPlus(model)(CategoricalScore(CLASSES), x, penultimate_layer="conv2",
                                    **RAW)
    ours = cm.gradcam_plus_plus(model, x, CLASSES, "conv2", alpha_normalisation="all")
    _assert_agree(ours.raw * np.exp(ours.score)[:, None, None], theirs)


def test_scorecam_agrees(model, x):
    theirs = Scorecam(model)(CategoricalScore(CLASSES), x, penultimate_layer="conv1",
                             **RAW)
    _assert_agree(cm.scorecam(model, x, CLASSES, "conv1").raw, theirs)


def test_gradcam_agrees_inside_a_nested_model(x):
    # tf-keras-vis cannot reach inside a nested model: compare with a flat copy of it.
    import keras

    nested = M.nested_model(seed=5)
    base = nested.get_layer("base")
    flat_in = keras.Input((16, 16, 3))
    h = flat_in
    for layer in base.layers[1:] + nested.layers[1:]:
        copy = type(layer).from_config(layer.get_config())
        h = copy(h)
        copy.set_weights(layer.get_weights())
    flat = keras.Model(flat_in, h)
    theirs = Gradcam(flat)(CategoricalScore(CLASSES), x, penultimate_layer="conv2", **RAW)
    _assert_agree(cm.gradcam(nested, x, CLASSES, "base/conv2").raw, theirs)
