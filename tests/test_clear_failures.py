"""Broken models, hostile inputs and careless arguments: one clear error, never a silent
wrong result.

- A model whose weights are NaN, or inputs so large that the logits overflow: every method
  (and the zoo's scores and the metrics) raises `NonFiniteError`, which says what was not
  finite and why (the variables with NaN weights, or the images' range); maps that are
  returned are always finite and in [0, 1].
- An image too small for an any-size model's layers, or one with no pixels: a message with
  the smallest size that works, from every entry point that runs the model.
- ``tf.config.run_functions_eagerly(True)``: every method still works, with the same maps.
- Options that must be positive ints refuse strings and booleans, whatever the batch.
- A ragged list of images (or maps): which items differ, and how to fix it.
"""

import numpy as np
import pytest

import _models as M

import tensorflow as tf  # noqa: E402

from camutils import methods as cm  # noqa: E402
from camutils.model_errors import NonFiniteError  # noqa: E402

METHODS = M.cnn_methods()


def _with_weights(model, change):
    """``model`` with ``change(name, array)`` applied to each of its variables."""
    for variable in model.weights:
        variable.assign(change(variable.path, variable.numpy()))
    return model


def _noise(n, h, w):
    return np.random.default_rng(h * 100 + w).uniform(0, 1, (n, h, w, 3)).astype(np.float32)


def _assert_valid(explanation):
    assert np.isfinite(explanation.maps).all() and np.isfinite(explanation.raw).all()
    assert explanation.maps.min() >= 0.0 and explanation.maps.max() <= 1.0
    assert np.isfinite(explanation.score).all()


# ------------------------------------------------------------------------- NaN and overflow


@pytest.fixture(scope="module")
def nan_model():
    """Every weight NaN (what a training run that diverged leaves behind)."""
    model = M.gap_model(classes=5, seed=31, name="diverged")
    return _with_weights(model, lambda name, w: np.full_like(w, np.nan))


@pytest.fixture(scope="module")
def model():
    return M.gap_model(classes=5, seed=32)


@pytest.mark.parametrize("method", METHODS)
def test_nan_weights_raise_and_name_the_variables(nan_model, method):
    with pytest.raises(NonFiniteError) as info:
        cm.explain(nan_model, M.images(2), method)
    message = str(info.value)
    assert "NaN" in message and "images [0, 1]" in message
    assert "'conv1/kernel' (108 NaN)" in message and "reload or retrain" in message


@pytest.mark.parametrize("method", METHODS)
def test_overflowing_inputs_raise_and_say_why(model, method):
    huge = M.images(3) * np.float32(1e38)
    huge[1] = M.images(1)[0]  # one sane image: only the others are named
    with pytest.raises(NonFiniteError) as info:
        cm.explain(model, huge, method)
    message = str(info.value)
    assert "images [0, 2]" in message and "overflowed" in message
    assert "weights are all finite" in message and "preprocessing" in message


@pytest.fixture(scope="module")
def nan_hidden_by_relu_model():
    return _with_weights(M.gap_model(classes=5, seed=33),
                         lambda name, w: np.full_like(w, np.nan) if name == "conv1/kernel" else w)


@pytest.mark.parametrize("method", METHODS)
def test_nan_weights_hidden_by_a_relu_give_an_error_or_finite_maps(nan_hidden_by_relu_model,
                                                                   method):
    # conv1's NaN outputs become 0 after its ReLU, so the logits are finite; the input
    # gradients (guided methods) are not. Either way: a clear error or valid maps.
    model = nan_hidden_by_relu_model
    try:
        explanation = cm.explain(model, M.images(2), method)
    except NonFiniteError as error:
        assert "'conv1/kernel' (108 NaN)" in str(error)
    else:
        _assert_valid(explanation)


def test_a_nan_in_one_channel_of_the_head_is_named():
    model = _with_weights(M.gap_model(classes=5, seed=34),
                          lambda name, w: np.where(np.arange(w.size).reshape(w.shape) == 3,
                                                   np.inf, w) if name == "logits/kernel" else w)
    with pytest.raises(NonFiniteError, match=r"logits.*'logits/kernel' \(1 infinite\)"):
        cm.gradcam(model, M.images(2))


def test_the_zoo_scores_of_a_broken_model_raise():
    from camutils.zoo import ZooModel

    model = _with_weights(M.gap_model(classes=3, seed=35),
                          lambda name, w: np.full_like(w, np.nan))
    zoo = ZooModel(name="broken", model=model, input_size=M.SIZE, class_names=["a", "b", "c"],
                   cam_layer="conv2", prepare=lambda batch: np.asarray(batch),
                   normalize=lambda seen: np.asarray(seen, np.float32) / 255.0)
    pixels = (M.images(2) * 255).astype(np.uint8)
    with pytest.raises(NonFiniteError, match="model's outputs .* images \\[0, 1\\]"):
        zoo.top_k(pixels, k=2)


def test_the_metrics_of_a_broken_model_raise(nan_model):
    from camutils.metrics import average_drop, deletion_curve

    maps = np.random.default_rng(0).uniform(0, 1, (2, *M.SIZE)).astype(np.float32)
    with pytest.raises(NonFiniteError, match="'conv1/kernel'"):
        deletion_curve(nan_model, M.images(2), maps, target=0, steps=4, progress=False)
    with pytest.raises(NonFiniteError, match="'conv1/kernel'"):
        average_drop(nan_model, M.images(2), maps, target=0, progress=False)


def test_a_feature_model_of_a_broken_model_raises(nan_model):
    from camutils.methods.feature_model import feature_model

    with pytest.raises(NonFiniteError, match="'conv1/kernel'"):
        feature_model(nan_model, "conv2")(M.images(1))


# ------------------------------------------------------------------------- too small


@pytest.fixture(scope="module")
def any_size():
    """Any input size, but two valid 3 x 3 convolutions (the first with stride 2): the
    smallest square image it runs on is 7 x 7."""
    import keras

    inputs = keras.Input((None, None, 3), name="image")
    x = M.conv_stack(inputs, (4, 6), seed=36, padding="valid")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(5, kernel_initializer="ones", name="logits")(x)
    return keras.Model(inputs, outputs, name="any_size")


@pytest.mark.parametrize("method", ["cam", "gradcam", "scorecam", "ablationcam",
                                    "guided_backprop", "guided_gradcam"])
def test_an_image_too_small_for_the_layers_says_the_smallest_size(any_size, method):
    with pytest.raises(ValueError) as info:
        cm.explain(any_size, _noise(1, 6, 8), method)
    message = str(info.value)
    assert "'any_size' cannot run on 6 x 8 images" in message
    assert "smallest square size it runs on is 7 x 7" in message
    assert "Graph execution error" not in message
    _assert_valid(cm.explain(any_size, _noise(1, 7, 7), method))


def test_an_image_too_small_for_the_metrics_and_the_feature_model(any_size):
    from camutils.metrics import deletion_curve
    from camutils.methods.feature_model import feature_model

    small = _noise(1, 4, 4)
    with pytest.raises(ValueError, match="smallest square size it runs on is 7 x 7"):
        deletion_curve(any_size, small, np.ones((1, 4, 4), np.float32), target=0, steps=2,
                       progress=False)
    with pytest.raises(ValueError, match="cannot run on 4 x 4 images"):
        feature_model(any_size, "conv2")(small)


@pytest.mark.parametrize("shape", [(1, 0, 0, 3), (1, 0, 9, 3), (2, 9, 0, 3)])
def test_an_image_without_pixels_is_refused(any_size, shape):
    with pytest.raises(ValueError, match=r"no pixels \(\d+ x \d+\)"):
        cm.gradcam(any_size, np.zeros(shape, np.float32))


# ------------------------------------------------------------------------- eager mode


@pytest.fixture
def eagerly():
    tf.config.run_functions_eagerly(True)
    try:
        yield
    finally:
        tf.config.run_functions_eagerly(False)


def test_every_method_works_with_functions_run_eagerly(model, eagerly):
    x = M.images(2, seed=3)
    fresh = M.gap_model(classes=5, seed=32)  # the same weights, nothing traced yet
    for method in METHODS:
        eager = cm.explain(fresh, x, method)
        tf.config.run_functions_eagerly(False)
        try:
            compiled = cm.explain(model, x, method)
        finally:
            tf.config.run_functions_eagerly(True)
        np.testing.assert_allclose(eager.maps, compiled.maps, atol=1e-5, err_msg=method)
        np.testing.assert_array_equal(eager.class_index, compiled.class_index)


def test_a_feature_model_works_with_functions_run_eagerly(model, eagerly):
    from camutils.methods.feature_model import feature_model

    activations, logits = feature_model(model, "conv2")(M.images(2))
    np.testing.assert_allclose(logits, np.asarray(model(M.images(2))), atol=1e-5)
    assert activations.shape == (2, 8, 8, 6)


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


@pytest.mark.parametrize("bad", ["nan input", "huge input"])
def test_chunks_name_the_images_of_the_whole_batch(model, bad):
    x = M.images(5)
    if bad == "nan input":
        x[3, 0, 0, 0] = np.nan
    else:
        x[3] *= np.float32(1e38)
    with pytest.raises(NonFiniteError) as info:
        cm.explain(model, x, "gradcam", chunk_size=2)
    assert info.value.images == (3,) and "image [3]" in str(info.value)
