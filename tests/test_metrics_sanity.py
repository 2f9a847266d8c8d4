"""camutils.metrics.sanity: rank correlation by hand, and the randomisation tests on a
constructed model whose maps depend on what its weights encode.

The constructed model sees coloured squares: its first convolution has one detector per
colour (red, green, blue, twice), the second blurs each detector's output, and class ``c``
adds up the detectors of colour ``c`` and subtracts the others. Its Grad-CAM for a class
lights up the square of that colour, so randomising the weights must change the maps.
"""

from types import SimpleNamespace

import numpy as np
import pytest

import camutils
from camutils.metrics import (
    SIMILARITIES, cascading_randomisation, independent_randomisation, randomisable_layers,
    randomised_copy, rank_correlation, signed_maps, ssim,
)
from camutils.metrics.sanity import _randomise_layer

S = 16


def _colour_model():
    import keras

    inputs = keras.Input((S, S, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs, name="colours")
    detect = np.zeros((3, 3, 3, 6), np.float32)
    for c in range(6):
        detect[1, 1, :, c] = -0.5
        detect[1, 1, c % 3, c] = 1.0
    model.get_layer("conv1").set_weights([detect, np.full(6, -0.3, np.float32)])
    blur = np.zeros((3, 3, 6, 6), np.float32)
    for c in range(6):
        blur[:, :, c, c] = 1 / 9
    model.get_layer("conv2").set_weights([blur, np.zeros(6, np.float32)])
    classes = np.full((6, 3), -0.5, np.float32)
    for c in range(6):
        classes[c, c % 3] = 1.0
    model.get_layer("logits").set_weights([classes, np.zeros(3, np.float32)])
    return model


def _squares(n, seed=0):
    """Grey noise with two squares of two different colours per image."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.2, 0.4, (n, S, S, 3)).astype(np.float32)
    colours = np.eye(3, dtype=np.float32) * 0.8 + 0.1
    for i in range(n):
        for colour in rng.permutation(3)[:2]:
            r, c = rng.integers(0, S - 4, 2)
            images[i, r:r + 4, c:c + 4] = colours[colour]
    return images


@pytest.fixture(scope="module")
def setup():
    return SimpleNamespace(model=_colour_model(), images=_squares(8))


# --------------------------------------------------------------------------- correlation


def test_rank_correlation_by_hand():
    a = np.array([[[1, 2], [3, 4]]], np.float32)
    same_order = a * 10 + 3
    swapped = np.array([[[1, 3], [2, 4]]], np.float32)   # d = (0, 1, 1, 0): 1 - 6 * 2 / 60
    reversed_ = -a
    assert rank_correlation(a, same_order).tolist() == pytest.approx([1.0])
    assert rank_correlation(a, swapped).tolist() == pytest.approx([0.8])
    assert rank_correlation(a, reversed_).tolist() == pytest.approx([-1.0])
    # Ties share their average rank: ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4).
    tied = np.array([[[0, 0], [3, 4]]], np.float32)
    r = np.array([1.5, 1.5, 3, 4]) - 2.5
    expected = (r * (np.arange(1, 5) - 2.5)).sum() / np.sqrt((r ** 2).sum() * 5)
    assert rank_correlation(a, tied).tolist() == pytest.approx([expected])


def test_rank_correlation_of_constant_maps_is_defined():
    varied = np.array([[[1, 2], [3, 4]]], np.float32)
    zeros = np.zeros((1, 2, 2), np.float32)
    ones = np.ones((1, 2, 2), np.float32)
    assert rank_correlation(varied, zeros).tolist() == [0.0]
    assert rank_correlation(zeros, ones).tolist() == [0.0]
    assert rank_correlation(zeros, zeros).tolist() == [1.0]
    with pytest.raises(ValueError, match="same shape"):
        rank_correlation(zeros, np.zeros((1, 3, 2)))


# --------------------------------------------------------------------------- layers and copies


def test_layers_are_listed_from_the_top_down_with_nested_paths():
    from _models import gap_model, nested_model

    assert randomisable_layers(gap_model()) == ["logits", "conv2", "conv1"]
    assert randomisable_layers(nested_model()) == ["logits", "base/conv2", "base/conv1"]


def test_the_copy_has_the_weights_but_not_the_variables(setup):
    copy = randomised_copy(setup.model)
    for a, b in zip(copy.get_weights(), setup.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    copy.get_layer("logits").kernel.assign(np.zeros((6, 3), np.float32))
    assert np.abs(setup.model.get_layer("logits").get_weights()[0]).sum() > 0


def test_initializers_draw_new_weights_even_for_a_seeded_initializer():
    from _models import gap_model

    model = gap_model(seed=3)   # its initializers carry seeds that reproduce the weights
    copy = randomised_copy(model)
    layer = copy.get_layer("conv1")
    before = [w.copy() for w in layer.get_weights()]
    _randomise_layer(layer, "initializers", (0, 0, 0))
    after = layer.get_weights()
    assert not np.allclose(before[0], after[0])
    assert not np.allclose(before[1], after[1])
    # Same key, same weights: the randomisation is deterministic.
    _randomise_layer(layer, "initializers", (0, 0, 0))
    np.testing.assert_array_equal(after[0], layer.get_weights()[0])


def test_batch_norm_under_both_rules():
    import keras

    layer = keras.layers.BatchNormalization()
    layer.build((None, 4))
    trained = [np.array([1.5, 0.5, 2.0, 1.0]), np.array([0.1, -0.2, 0.3, 0.0]),
               np.array([5.0, 6.0, 7.0, 8.0]), np.array([2.0, 3.0, 4.0, 5.0])]
    layer.set_weights([w.astype(np.float32) for w in trained])
    _randomise_layer(layer, "initializers", (1, 2, 3))
    gamma, beta, mean, variance = layer.get_weights()
    assert gamma.tolist() == [1] * 4 and beta.tolist() == [0] * 4
    assert mean.tolist() == [0] * 4 and variance.tolist() == [1] * 4
    layer.set_weights([w.astype(np.float32) for w in trained])
    _randomise_layer(layer, "normal", (1, 2, 3))
    gamma, beta, mean, variance = layer.get_weights()
    assert not np.allclose(gamma, trained[0]) and not np.allclose(beta, trained[1])
    np.testing.assert_array_equal(mean, trained[2])       # statistics are kept
    np.testing.assert_array_equal(variance, trained[3])


# --------------------------------------------------------------------------- the tests


def test_the_users_model_is_never_touched(setup):
    before = [w.copy() for w in setup.model.get_weights()]
    cascading_randomisation(setup.model, setup.images, progress=False)
    independent_randomisation(setup.model, setup.images, progress=False, init="normal")
    for a, b in zip(before, setup.model.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_the_correlation_falls_as_layers_are_randomised(setup):
    runs = [cascading_randomisation(setup.model, setup.images, method="gradcam", seed=seed,
                                    init="normal", progress=False) for seed in range(5)]
    assert runs[0]["layers"] == ["logits", "conv2", "conv1"]
    assert runs[0]["correlation"].shape == (3, 8)
    mean = np.mean([run["mean_correlation"] for run in runs], axis=0)
    # Starting from 1 (the original maps), each further layer randomised lowers it.
    assert mean[0] < 0.8
    assert np.all(np.diff(mean) < -0.1)
    assert abs(mean[-1]) < 0.2       # a fully random model's maps: no agreement left
    # With the layers' own initializers the maps are destroyed as well.
    default = [cascading_randomisation(setup.model, setup.images, seed=seed, progress=False)
               for seed in range(3)]
    assert np.mean([run["mean_correlation"] for run in default], axis=0).max() < 0.6


def test_a_map_that_ignores_the_weights_fails_the_sanity_check(setup):
    """An "explanation" that is an edge map of the image keeps correlation 1 at every step."""

    def edges(model, inputs, method=None, target=None, layer=None, **options):
        grey = np.asarray(inputs).mean(axis=3)
        gy, gx = np.gradient(grey, axis=(1, 2))
        logits = np.asarray(model(inputs))
        return SimpleNamespace(maps=np.hypot(gx, gy).astype(np.float32),
                               class_index=logits.argmax(axis=1))

    result = cascading_randomisation(setup.model, setup.images, explainer=edges, progress=False)
    np.testing.assert_allclose(result["correlation"], 1.0)


def test_every_step_explains_the_original_class(setup):
    calls, counterfactual = [], []

    def recording(model, inputs, method=None, target=None, layer=None, **options):
        explanation = camutils.explain(model, inputs, method=method, target=target, layer=layer,
                                       **options)
        # Grad-CAM's signed map takes a second, counterfactual call per step
        (counterfactual if options.get("counterfactual") else calls).append(
            (target, explanation.class_index))
        return explanation

    result = cascading_randomisation(setup.model, setup.images, explainer=recording,
                                     progress=False)
    original = calls[0][1]
    assert calls[0][0] is None     # the original is explained on its own top class
    assert len(calls) == 4 and len(counterfactual) == 4
    for target, explained in calls[1:] + counterfactual:
        np.testing.assert_array_equal(target, original)
        np.testing.assert_array_equal(explained, original)
    np.testing.assert_array_equal(result["target"], original)


def test_independent_randomisation_restores_the_other_layers(setup):
    snapshots = []

    def recording(model, inputs, method=None, target=None, layer=None, **options):
        if not options.get("counterfactual"):  # the signed map's second call: same weights
            snapshots.append([w.copy() for w in model.get_layer("logits").get_weights()])
        return camutils.explain(model, inputs, method=method, target=target, layer=layer,
                                **options)

    trained = setup.model.get_layer("logits").get_weights()
    independent = independent_randomisation(setup.model, setup.images, explainer=recording,
                                            seed=4, progress=False)
    # calls: original, step "logits" (random), step "conv2" (logits restored), step "conv1"
    assert not np.allclose(snapshots[1][0], trained[0])
    np.testing.assert_array_equal(snapshots[2][0], trained[0])
    np.testing.assert_array_equal(snapshots[3][0], trained[0])
    cascade = cascading_randomisation(setup.model, setup.images, seed=4, progress=False)
    # The first step is the same in both modes; later ones differ.
    np.testing.assert_allclose(independent["correlation"][0], cascade["correlation"][0])
    assert not np.allclose(independent["correlation"][1:], cascade["correlation"][1:])


def test_seeds_groups_and_kept_maps(setup):
    a = cascading_randomisation(setup.model, setup.images, seed=1, progress=False)
    b = cascading_randomisation(setup.model, setup.images, seed=1, progress=False)
    c = cascading_randomisation(setup.model, setup.images, seed=2, progress=False)
    np.testing.assert_array_equal(a["correlation"], b["correlation"])
    assert not np.array_equal(a["correlation"], c["correlation"])
    grouped = cascading_randomisation(setup.model, setup.images, layers=[["logits"], ["conv2", "conv1"]],
                                      keep_maps=True, progress=False)
    assert grouped["layers"] == ["logits", "conv2+conv1"]
    assert grouped["maps"].shape == grouped["signed_maps"].shape == (2, 8, S, S)
    np.testing.assert_allclose(rank_correlation(np.abs(grouped["original_signed_maps"]),
                                                np.abs(grouped["signed_maps"][1])), grouped["rank_abs"][1])
    np.testing.assert_allclose(
        rank_correlation(grouped["original_maps"], grouped["maps"][1]), grouped["correlation"][1])


def test_a_zoo_model_is_checked_on_the_images_it_sees(setup):
    from camutils.zoo import ZooModel

    zoo = ZooModel(name="colours", model=setup.model, input_size=(S, S),
                   class_names=["red", "green", "blue"], cam_layer="conv1",
                   prepare=lambda images: np.stack(images),
                   normalize=lambda pixels: np.asarray(pixels, np.float32) / 255.0)
    pixels = np.rint(setup.images * 255).astype(np.uint8)
    via_zoo = cascading_randomisation(zoo, pixels, seed=0, progress=False)
    via_model = cascading_randomisation(setup.model, pixels / np.float32(255), layer="conv1",
                                        seed=0, progress=False)
    np.testing.assert_allclose(via_zoo["correlation"], via_model["correlation"], atol=1e-5)


def test_errors_say_what_is_wrong(setup):
    with pytest.raises(ValueError, match="no layer 'conv9'.*logits, conv2, conv1"):
        cascading_randomisation(setup.model, setup.images, layers=["conv9"], progress=False)
    with pytest.raises(ValueError, match="no weights"):
        cascading_randomisation(setup.model, setup.images, layers=["pool"], progress=False)
    with pytest.raises(ValueError, match="one map per image"):
        cascading_randomisation(setup.model, setup.images, target=camutils.methods.TopK(2),
                                progress=False)
    with pytest.raises(ValueError, match="mode"):
        cascading_randomisation(setup.model, setup.images, mode="sideways", progress=False)
    with pytest.raises(ValueError, match="init"):
        cascading_randomisation(setup.model, setup.images, init="uniform", progress=False)


# --------------------------------------------------------------------------- the paper's measures


def test_ssim_by_hand_and_its_invariances():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(3)
    a = rng.uniform(size=(2, 12, 12))
    b = rng.uniform(size=(2, 12, 12))
    np.testing.assert_allclose(ssim(a, a), 1.0)
    np.testing.assert_allclose(ssim(a, 5 * a), 1.0)          # scaled by its own maximum first
    expected = [structural_similarity(x / x.max(), y / y.max(), data_range=1.0) for x, y in zip(a, b)]
    np.testing.assert_allclose(ssim(a, b), expected, rtol=1e-6)
    signed = a - 0.5
    # Raw SSIM cannot see a flipped sign where the local means are away from zero (the mean
    # and the structure terms both flip, and their product does not)
    assert all(structural_similarity(x + 1, -(x + 1), data_range=4.0) > 0.8 for x in signed)
    # min-max scaled, a flip is the complement 1 - m: dissimilar ...
    assert np.all(ssim(signed, -signed, signed=True) < -0.5)
    np.testing.assert_allclose(ssim(signed, 3 * signed + 1, signed=True), 1.0, atol=1e-6)
    np.testing.assert_allclose(ssim(np.abs(signed), np.abs(-signed)), 1.0)   # ... unless abs
    with pytest.raises(ValueError, match="non-negative"):
        ssim(signed, signed)


def test_signed_gradcam_map_is_the_weighted_sum_before_the_relu(setup):
    import keras
    import tensorflow as tf

    model, x = setup.model, setup.images
    explanation = camutils.explain(model, x, method="gradcam", layer="conv2")
    feature = keras.Model(model.input, [model.get_layer("conv2").output, model.output])
    with tf.GradientTape() as tape:
        a, logits = feature(x, training=False)
        score = tf.gather(logits, explanation.class_index, batch_dims=1)
    g = tape.gradient(score, a).numpy()
    raw = np.einsum("nhwc,nc->nhw", a.numpy(), g.mean(axis=(1, 2)))
    assert raw.min() < 0 < raw.max()        # both signs present, so the test can tell
    signed = signed_maps(explanation, model, x, "gradcam", "conv2")
    # conv2 keeps the input's 16 x 16: no upsampling; float32 sums in another order
    np.testing.assert_allclose(signed, raw, rtol=1e-4, atol=1e-5 * np.abs(raw).max())


def test_guided_maps_are_signed_by_their_input_gradients(setup):
    explanation = camutils.explain(setup.model, setup.images, method="guided_backprop")
    np.testing.assert_array_equal(signed_maps(explanation),
                                  explanation.extras["gradients"].sum(axis=-1))


def test_a_flipped_sign_is_unchanged_with_absolute_values_and_inverted_without(setup):
    """An explainer whose signed map flips sign on the randomised copy: with absolute values
    nothing changed (rank 1, SSIM 1); without them the rank correlation is -1."""
    grey = setup.images.mean(axis=3)
    base = np.gradient(grey, axis=2) + 0.1 * grey        # a signed map of the image alone

    def flipping(model, inputs, method=None, target=None, layer=None, **options):
        sign = 1.0 if model is setup.model else -1.0
        return SimpleNamespace(maps=np.maximum(sign * base, 0).astype(np.float32),
                               signed_maps=(sign * base).astype(np.float32),
                               class_index=np.zeros(len(inputs), np.int64))

    result = cascading_randomisation(setup.model, setup.images, explainer=flipping, progress=False)
    np.testing.assert_allclose(result["rank_abs"], 1.0, atol=1e-6)
    np.testing.assert_allclose(result["ssim_abs"], 1.0, atol=1e-6)
    np.testing.assert_allclose(result["rank_no_abs"], -1.0, atol=1e-6)
    assert np.all(result["ssim_no_abs"] < 0)
    assert np.all(result["correlation"] < 0.5)           # the drawn maps: different places
    assert set(SIMILARITIES) <= set(result)


def test_gradcam_loses_its_places_when_its_features_are_random(setup):
    """On the colour model Grad-CAM depends on the detectors: randomising them moves the map
    with or without absolute values, and guided backpropagation keeps more of its map."""
    gradcam = cascading_randomisation(setup.model, setup.images, method="gradcam", seed=0,
                                      progress=False)
    assert gradcam["rank_abs"].shape == gradcam["correlation"].shape == (3, 8)
    assert gradcam["rank_abs"][-1].mean() < 0.5 and gradcam["ssim_abs"][-1].mean() < 0.5
