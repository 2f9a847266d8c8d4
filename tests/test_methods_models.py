"""Every kind of Keras model is explained: Sequential, functional, nested, softmax, multi-output."""

import numpy as np
import pytest

import _models as M

import keras  # noqa: E402
from camutils import methods as cm  # noqa: E402

NAMES = ["cat", "dog", "horse", "zebra", "bird"]


def _check(e, n, size=(16, 16), method=None):
    assert e.maps.shape == (n, *size) and e.maps.dtype == np.float32
    assert np.isfinite(e.maps).all() and e.maps.min() >= 0 and e.maps.max() <= 1
    assert e.raw.dtype == np.float32 and e.raw.min() >= 0
    assert e.class_index.shape == (n,) and e.score.shape == (n,)
    if method is not None:
        assert e.method == method


@pytest.fixture(scope="module")
def nested():
    """One nested model for every method (each method compiles its own function on it)."""
    return M.nested_model(seed=1)


@pytest.mark.parametrize("method", M.cnn_methods())
def test_every_method_on_a_pretrained_style_base_nested_in_a_sequential(nested, method):
    model = nested
    x = M.images(3)
    e = cm.explain(model, x, method, layer="base/top_activation", class_names=NAMES)
    _check(e, 3, method=method)
    assert e.layer == ("input" if method == "guided_backprop" else "base/top_activation")
    assert e.labels == [NAMES[i] for i in e.class_index]
    assert e.images is None
    if method not in ("guided_backprop", "guided_gradcam"):
        assert e.raw.shape == (3, 8, 8)
    again = cm.explain(model, x, method, layer="base/top_activation", class_names=NAMES)
    np.testing.assert_array_equal(e.maps, again.maps)  # deterministic
    np.testing.assert_array_equal(e.raw, again.raw)


def test_sequential_model():
    model = M.sequential_model(seed=2)
    x = M.images(2)
    for method in ("cam", "gradcam", "ablationcam"):
        _check(cm.explain(model, x, method), 2, method=method)
    assert cm.gradcam(model, x).layer == "conv2"


def test_nested_in_a_functional_model_with_a_layer_before_the_base():
    model = M.nested_model(outer="functional", seed=3)
    x = M.images(2)
    e = cm.cam(model, x, layer="base/top_activation")
    _check(e, 2)
    g = cm.gradcam(model, x, layer="base/top_activation")
    np.testing.assert_allclose(g.maps, e.maps, atol=1e-5)  # GAP -> Dense through the nesting


def test_default_layer_of_a_nested_model_is_the_base_output():
    model = M.nested_model(seed=1)
    x = M.images(2)
    default = cm.gradcam(model, x)
    assert default.layer == "base"
    inner = cm.gradcam(model, x, layer="base/top_activation")
    np.testing.assert_allclose(default.raw, inner.raw, rtol=1e-6)  # the same tensor


def test_sequential_inside_a_sequential():
    inner = keras.Sequential([keras.Input((16, 16, 3)),
                              keras.layers.Conv2D(4, 3, padding="same", activation="relu",
                                                  name="conv")], name="features")
    model = keras.Sequential([keras.Input((16, 16, 3)), inner,
                              keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])
    e = cm.cam(model, M.images(2), layer="features/conv")
    _check(e, 2)
    assert e.layer == "features/conv" and e.raw.shape == (2, 16, 16)


@pytest.mark.parametrize("softmax", ["dense", "layer", "activation"])
def test_models_ending_in_softmax(softmax):
    model = M.gap_model(softmax=softmax, seed=4)
    x = M.images(2)
    e = cm.gradcam(model, x)
    _check(e, 2)
    probabilities = model.predict(x, verbose=0)
    assert not np.allclose(e.score, probabilities.max(axis=1))  # scores are logits
    assert np.all(e.class_index == probabilities.argmax(axis=1))


def test_sequential_ending_in_softmax():
    model = M.sequential_model(softmax=True, seed=5)
    e = cm.cam(model, M.images(2))
    _check(e, 2)
    probabilities = model.predict(M.images(2), verbose=0)
    assert not np.allclose(e.score, probabilities.max(axis=1))  # logits, not probabilities


@pytest.mark.parametrize("as_dict", [False, True])
def test_multi_output_models(as_dict):
    model = M.multi_output_model(as_dict=as_dict, seed=6)
    x = M.images(2)
    species = cm.gradcam(model, x, output="species")
    colour = cm.gradcam(model, x, output="colour")
    _check(species, 2)
    assert species.class_index.max() < 5 and colour.class_index.max() < 3
    assert not np.allclose(species.raw, colour.raw)
    by_index = cm.gradcam(model, x, output=model.outputs.index(
        next(t for t in model.outputs if t.shape[-1] == 3)))
    np.testing.assert_allclose(by_index.raw, colour.raw)
    with pytest.raises(ValueError, match="Class index 4 is out of range.*3 classes"):
        cm.gradcam(model, x, target=4, output="colour")


class _NeedsStaticSizes(keras.layers.Layer):
    """The identity, for inputs whose sizes (all but the batch's) are known when traced.

    Keras up to 3.10 builds Flatten's reshape from the static sizes and fails on unknown ones.
    """

    def call(self, inputs):
        if any(size is None for size in inputs.shape[1:]):
            raise ValueError(f"traced with unknown sizes: {inputs.shape}")
        return inputs


def _keepdims_flatten_model(check: str | None):
    """conv -> [check] -> GAP(keepdims) -> [check] -> Flatten -> Dense: the same weights
    whatever ``check`` ("before" or "after" the pooling, or None) is."""
    inputs = keras.Input((*M.SIZE, 3))
    x = M.conv_stack(inputs, (4, 6), seed=4)
    if check == "before":
        x = _NeedsStaticSizes(name=f"static_{check}")(x)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name="pool")(x)
    if check == "after":
        x = _NeedsStaticSizes(name=f"static_{check}")(x)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(5, kernel_initializer=M._init(8))(x))


@pytest.fixture(scope="module")
def keepdims_maps():
    """Each method's maps of two images on `_keepdims_flatten_model` (checks "before",
    "after" or None), computed once per model and method."""
    models = {check: _keepdims_flatten_model(check) for check in ("before", "after", None)}
    maps = {}

    def explained(method, check):
        if (method, check) not in maps:
            maps[method, check] = cm.explain(models[check], M.images(2), method,
                                             layer="conv2").maps
        return maps[method, check]

    return explained


@pytest.mark.parametrize("check", ["before", "after"])
@pytest.mark.parametrize("method", M.cnn_methods())
def test_layers_after_the_explained_one_see_static_sizes(keepdims_maps, method, check):
    np.testing.assert_allclose(keepdims_maps(method, check), keepdims_maps(method, None),
                               rtol=1e-5, atol=1e-6)


def test_fully_convolutional_model_takes_any_size():
    inputs = keras.Input((None, None, 3))
    h = keras.layers.Conv2D(4, 3, strides=2, padding="same", activation="relu", name="conv")(inputs)
    logits = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inputs, logits)
    small = cm.cam(model, M.images(2, size=(16, 16)))
    large = cm.cam(model, M.images(1, size=(24, 32)))
    assert small.maps.shape == (2, 16, 16) and large.maps.shape == (1, 24, 32)
    assert large.raw.shape == (1, 12, 16)


def test_targets_by_name_and_per_image():
    model = M.gap_model(seed=8)
    x = M.images(3)
    e = cm.gradcam(model, x, target="horse", class_names=NAMES)
    assert e.class_index.tolist() == [2, 2, 2] and e.labels == ["horse"] * 3
    e = cm.gradcam(model, x, target=["cat", 4, np.int64(1)], class_names=NAMES)
    assert e.class_index.tolist() == [0, 4, 1]
    e = cm.gradcam(model, x, target=np.array([3, 3, 0]))
    assert e.class_index.tolist() == [3, 3, 0] and e.labels is None
    e = cm.gradcam(model, x, target="Horse", class_names=NAMES)  # case-insensitive fallback
    assert e.class_index.tolist() == [2, 2, 2]


def test_topk_labels_and_repr():
    model = M.gap_model(seed=8)
    e = cm.explain(model, M.images(2), "scorecam", target=cm.TopK(2), class_names=NAMES)
    assert e.top_k and e.maps.shape == (2, 2, 16, 16) and e.raw.shape == (2, 2, 8, 8)
    assert len(e.labels) == 2 and len(e.labels[0]) == 2
    assert e.labels[0][0] == NAMES[e.class_index[0, 0]]
    assert "scorecam" in repr(e) and "(2, 2, 16, 16)" in repr(e)


def test_images_may_be_a_tensor_or_lists():
    import tensorflow as tf

    model = M.gap_model(seed=8)
    x = M.images(1)
    a = cm.gradcam(model, tf.constant(x))
    b = cm.gradcam(model, x[0].tolist())
    np.testing.assert_array_equal(a.maps, b.maps)


def test_progress_bar_on_request(capsys):
    model = M.gap_model(seed=8)
    cm.scorecam(model, M.images(1), progress=True, batch_size=2)
    assert "Score-CAM" in capsys.readouterr().err
    cm.ablationcam(model, M.images(1), progress=False, batch_size=2)
    assert "Ablation-CAM" not in capsys.readouterr().err


def test_camutils_top_level_exports():
    import camutils

    assert camutils.explain is cm.explain and camutils.TopK is cm.TopK
    assert camutils.METHODS is cm.METHODS and camutils.gradcam_plus_plus is cm.gradcam_plus_plus
    assert callable(camutils.spatial_layers) and callable(camutils.resolve_layer)
