"""camutils.methods.layers and .feature_model: finding the explained layer and opening the
model at it."""

import gc
import re
import weakref

import numpy as np
import pytest

import _models as M

import keras  # noqa: E402
from camutils.methods.feature_model import feature_model  # noqa: E402
from camutils.methods.layers import resolve_layer, resolve_output, spatial_layers  # noqa: E402


@pytest.fixture(scope="module")
def functional():
    return M.gap_model(name="functional")


@pytest.fixture(scope="module")
def nested():
    return M.nested_model()


# --------------------------------------------------------------------------- spatial_layers


def test_spatial_layers_functional_in_call_order(functional):
    assert spatial_layers(functional) == ["conv1", "conv2"]


def test_spatial_layers_sequential():
    model = M.sequential_model()
    assert spatial_layers(model) == ["conv1", "conv2"]


def test_spatial_layers_look_into_nested_models(nested):
    layers = spatial_layers(nested)
    assert layers == ["base/conv1", "base/conv2", "base/top_activation", "base"]


def _logits_and_an_unused_branch():
    """Outputs: the logits (from conv "used") and conv "unused", which they do not read."""
    inputs = keras.Input((16, 16, 3))
    used = keras.layers.Conv2D(4, 3, padding="same", name="used")(inputs)
    unused = keras.layers.Conv2D(4, 3, padding="same", name="unused")(inputs)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(used))
    return keras.Model(inputs, [logits, unused])


def test_spatial_layers_leave_out_layers_the_logits_do_not_depend_on():
    model = _logits_and_an_unused_branch()
    assert "unused" not in spatial_layers(model, output=0)
    assert spatial_layers(model, output=0) == ["used"]


def test_spatial_layers_per_output_of_a_multi_output_model():
    inputs = keras.Input((16, 16, 3))
    a = keras.layers.Conv2D(4, 3, padding="same", name="a")(inputs)
    b = keras.layers.Conv2D(4, 3, padding="same", name="b")(inputs)
    pool = keras.layers.GlobalAveragePooling2D
    model = keras.Model(inputs, [keras.layers.Dense(2, name="from_a")(pool()(a)),
                                 keras.layers.Dense(2, name="from_b")(pool()(b))])
    assert spatial_layers(model, output="from_a") == ["a"]
    assert spatial_layers(model, output=1) == ["b"]
    assert sorted(spatial_layers(model)) == ["a", "b"]  # parallel branches


# --------------------------------------------------------------------------- resolve_layer


def test_default_layer_is_the_last_spatial_layer(functional):
    assert resolve_layer(functional) == "conv2"


def test_layer_by_name_index_object_and_path(functional, nested):
    assert resolve_layer(functional, "conv1") == "conv1"
    assert resolve_layer(functional, 1) == "conv1"  # layers[0] is the InputLayer
    assert resolve_layer(functional, -3) == "conv2"  # conv2, pool, logits at the end
    assert resolve_layer(functional, functional.get_layer("conv1")) == "conv1"
    assert resolve_layer(nested, "base/conv1") == "base/conv1"
    inner = nested.get_layer("base").get_layer("conv2")
    assert resolve_layer(nested, inner) == "base/conv2"
    assert resolve_layer(nested, 0) == "base"


def test_naming_a_layer_means_that_layer_not_a_nearby_conv(nested):
    # top_activation is an Activation layer, not a convolution: it must be used as named.
    assert resolve_layer(nested, "base/top_activation") == "base/top_activation"


def test_unknown_layer_lists_candidates_closest_first(nested):
    with pytest.raises(ValueError) as error:
        resolve_layer(nested, "top_activaton")
    message = str(error.value)
    assert "'top_activaton'" in message
    listed = re.findall(r"'([^']+)'", message.split("closest names first:")[1])
    assert listed[0] == "base/top_activation"
    assert set(listed[:4]) == {"base/conv1", "base/conv2", "base/top_activation", "base"}


def test_unknown_layer_in_a_nested_model_mentions_paths(nested):
    with pytest.raises(ValueError, match="outer/inner"):
        resolve_layer(nested, "conv1")


def test_layer_without_spatial_output_is_named_with_candidates(functional):
    with pytest.raises(ValueError) as error:
        resolve_layer(functional, "pool")
    message = str(error.value)
    assert "'pool'" in message and "GlobalAveragePooling2D" in message
    assert "no spatial output" in message and "'conv1'" in message and "'conv2'" in message


def test_input_layer_and_out_of_range_index_are_errors(functional):
    with pytest.raises(ValueError, match="not a layer the model calls"):
        resolve_layer(functional, 0)
    with pytest.raises(ValueError, match="out of range.*'conv2'"):
        resolve_layer(functional, 42)


def test_layer_of_another_model_is_an_error(functional):
    other = M.gap_model(name="other")
    with pytest.raises(ValueError, match="not part of model 'functional'"):
        resolve_layer(functional, other.get_layer("conv1"))


def test_layer_that_the_logits_do_not_depend_on_is_an_error():
    model = _logits_and_an_unused_branch()
    with pytest.raises(ValueError, match="do not depend on layer 'unused'.*'used'"):
        resolve_layer(model, "unused", output=0)


def test_shared_layer_is_ambiguous():
    inputs = keras.Input((16, 16, 3))
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    x = shared(shared(inputs))
    logits = keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inputs, logits)
    assert "shared" not in spatial_layers(model)
    with pytest.raises(ValueError, match="called 2 times"):
        resolve_layer(model, "shared")


def test_wrong_layer_type_is_a_type_error(functional):
    with pytest.raises(TypeError, match="layer must be"):
        resolve_layer(functional, 1.5)


# --------------------------------------------------------------------------- models and outputs


def test_unbuilt_sequential_model_says_how_to_build_it():
    model = keras.Sequential([keras.layers.Conv2D(2, 3), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="keras.Input"):
        spatial_layers(model)


def test_subclassed_model_is_refused_with_advice():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = keras.layers.Conv2D(2, 3)

        def call(self, x):
            return self.conv(x)

    with pytest.raises(TypeError, match="functional or Sequential"):
        spatial_layers(Net())


def test_not_a_model_is_a_type_error():
    with pytest.raises(TypeError, match="Keras model"):
        spatial_layers("model.keras")


def test_multi_output_needs_an_output_and_lists_them():
    model = M.multi_output_model()
    with pytest.raises(ValueError) as error:
        resolve_output(model)
    message = str(error.value)
    assert "2 outputs" in message and "'species'" in message and "'colour'" in message
    assert resolve_output(model, "colour") == 1
    assert resolve_output(model, -2) == 0
    with pytest.raises(ValueError, match="no output named 'color'.*'colour'"):
        resolve_output(model, "color")
    with pytest.raises(ValueError, match="out of range"):
        resolve_output(model, 2)


def test_dict_outputs_by_key():
    model = M.multi_output_model(as_dict=True)
    index = resolve_output(model, "species")
    assert model.outputs[index].shape[-1] == 5


# --------------------------------------------------------------------------- the feature model


def test_feature_model_logits_match_the_model(nested):
    x = M.images(3)
    features = feature_model(nested, "base/conv2")
    activations, logits = features(x)
    assert activations.shape == (3, 8, 8, 6)
    np.testing.assert_allclose(logits, nested.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
    inner = keras.Model(nested.get_layer("base").inputs,
                        nested.get_layer("base").get_layer("conv2").output)
    np.testing.assert_allclose(activations, inner.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


class _DoublesUnlessInference(keras.layers.Layer):
    """The identity when called with ``training=False``; doubles its input otherwise.

    Its ``training`` defaults to True, so a layer call that does not pass ``training=False``
    (as ``model(x, training=False)`` does) gives a different result.
    """

    def call(self, inputs, training=True):
        return inputs * 2.0 if training else inputs


def _with_training_sensitive_layer(outer: str):
    pool, dense = keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3, name="logits")
    inputs = keras.Input((*M.SIZE, 3))
    x = M.conv_stack(inputs, (4,))
    x = _DoublesUnlessInference(name="doubles")(x)
    if outer == "functional":
        return keras.Model(inputs, dense(pool(x)))
    base = keras.Model(inputs, x, name="base")
    return keras.Sequential([keras.Input((*M.SIZE, 3)), base, pool, dense])


@pytest.mark.parametrize("outer", ["functional", "nested"])
def test_layers_run_in_inference_mode_as_in_model_call_training_false(outer):
    model = _with_training_sensitive_layer(outer)
    x = M.images(2)
    inference = np.asarray(model(x, training=False))
    assert not np.allclose(inference, np.asarray(model(x, training=True)))  # it matters
    _, logits = feature_model(model, "base/conv1" if outer == "nested" else "conv1")(x)
    np.testing.assert_allclose(logits, inference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("softmax", ["dense", "layer", "activation"])
def test_logits_are_read_beneath_the_softmax(softmax):
    model = M.gap_model(softmax=softmax)
    x = M.images(2)
    _, logits = feature_model(model)(x)
    probabilities = model.predict(x, verbose=0)
    assert feature_model(model).softmax
    assert not np.allclose(logits, probabilities)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    np.testing.assert_allclose(shifted / shifted.sum(axis=1, keepdims=True), probabilities,
                               rtol=1e-5, atol=1e-6)


def test_feature_model_is_cached_per_model_layer_and_output(functional):
    assert feature_model(functional, "conv1") is feature_model(functional, 1)
    assert feature_model(functional, "conv1") is not feature_model(functional)


def test_head_replaces_the_layer_output_and_keeps_shortcuts():
    model = M.skip_model()
    x = M.images(2)
    branch = feature_model(model, "branch")
    conv1 = feature_model(model, "conv1")
    import tensorflow as tf

    activations, logits = branch(x)
    head = tf.function(branch.head)
    np.testing.assert_allclose(head(x, activations), logits, rtol=1e-5, atol=1e-6)
    zeroed = head(x, np.zeros_like(activations)).numpy()
    shortcut, _ = conv1(x)  # with the branch zeroed only the shortcut reaches the pooling
    dense = model.get_layer("logits")
    expected = shortcut.mean(axis=(1, 2)) @ dense.kernel.numpy() + dense.bias.numpy()
    np.testing.assert_allclose(zeroed, expected, rtol=1e-5, atol=1e-5)


def test_cam_head_is_recognised_and_refused_with_reasons():
    gap = feature_model(M.gap_model(dropout=0.3))
    assert gap.cam_head().pooling == "average" and gap.cam_head().dense == "logits"
    assert gap.cam_head().chain == ("GlobalAveragePooling2D", "Dense")  # Dropout: a no-op
    assert feature_model(M.gap_model(head="gmp")).cam_head().pooling == "max"
    assert feature_model(M.nested_model()).cam_head().dense == "logits"
    with pytest.raises(ValueError, match="Flatten -> Dense.*method='gradcam'"):
        feature_model(M.gap_model(head="flatten")).cam_head()
    with pytest.raises(ValueError, match="Conv2D -> GlobalAveragePooling2D -> Dense"):
        feature_model(M.gap_model(), "conv1").cam_head()


def test_nothing_about_the_model_changes(nested):
    before_weights = [w.copy() for w in nested.get_weights()]
    before_config = nested.get_config()
    before_layers = [layer.name for layer in nested.layers]
    inner = nested.get_layer("base").get_layer("conv1")
    before_nodes = len(inner._inbound_nodes)
    trainable = [w.trainable for w in nested.weights]
    features = feature_model(nested, "base/conv1")
    features(M.images(2))
    assert nested.get_config() == before_config
    assert [layer.name for layer in nested.layers] == before_layers
    assert len(inner._inbound_nodes) == before_nodes
    assert [w.trainable for w in nested.weights] == trainable
    for before, after in zip(before_weights, nested.get_weights()):
        np.testing.assert_array_equal(before, after)


def test_cache_does_not_keep_the_model_alive():
    model = M.gap_model(name="short_lived")
    features = feature_model(model)
    features(M.images(1))
    reference = weakref.ref(model)
    del model
    gc.collect()
    assert reference() is None
