"""camutils.metrics.faithfulness on a tiny model whose evidence is known exactly.

The model reads only a fixed region of the image: logit 0 is a weighted sum of the pixels
in the region (positive weights) plus a negative bias, logit 1 is 0. So the probability of
class 0 is ``sigmoid(sum(weight * pixel) + BIAS)``, and the "perfect" map is each pixel's
contribution ``weight * pixel``: curves and drops can be computed by hand. The images are
bright in the region and dark elsewhere, so that a blurred image (the insertion baseline)
loses most of the evidence.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from camutils.metrics import (
    average_drop, baseline_images, curve_auc, deletion_curve, faithfulness_scores,
    insertion_curve,
)

SIZE = (8, 8)
REGION = (slice(2, 5), slice(3, 7))  # rows 2..4, columns 3..6: 12 pixels
BIAS = -3.7  # about halfway between the logit of an image and that of its blurred copy


def _pixel_weights(seed=0):
    rng = np.random.default_rng(seed)
    w = np.zeros(SIZE)
    w[REGION] = rng.uniform(0.1, 0.3, w[REGION].shape)
    return w


def _region_model(softmax=False, weights=None):
    import keras

    weights = _pixel_weights() if weights is None else weights
    inputs = keras.Input((*SIZE, 3))
    x = keras.layers.Flatten()(inputs)
    outputs = keras.layers.Dense(2, activation="softmax" if softmax else None)(x)
    model = keras.Model(inputs, outputs)
    kernel = np.zeros((SIZE[0] * SIZE[1] * 3, 2), np.float32)
    kernel[:, 0] = np.repeat(weights.ravel(), 3)  # Flatten order: (row, column, channel)
    model.layers[-1].set_weights([kernel, np.array([BIAS, 0.0], np.float32)])
    return model


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(1)
    images = rng.uniform(0.0, 0.2, (4, *SIZE, 3)).astype(np.float32)
    images[:, REGION[0], REGION[1]] = rng.uniform(0.6, 1.0, (4, 3, 4, 3))
    weights = _pixel_weights()
    contribution = weights[None] * images.sum(axis=3)   # exactly what logit 0 adds up
    perfect = (contribution / contribution.max(axis=(1, 2), keepdims=True)).astype(np.float32)
    random = rng.uniform(0, 1, perfect.shape).astype(np.float32)
    return SimpleNamespace(model=_region_model(), images=images, contribution=contribution,
                           perfect=perfect, random=random)


# --------------------------------------------------------------------------- curves by hand


def test_deletion_curve_by_hand(setup):
    pixels = SIZE[0] * SIZE[1]
    result = deletion_curve(setup.model, setup.images, setup.perfect, steps=pixels,
                            progress=False)
    assert result["fractions"].tolist() == pytest.approx(np.arange(pixels + 1) / pixels)
    assert result["target"].tolist() == [0, 0, 0, 0]
    # Removing the k most contributing pixels (zero baseline) leaves the rest of the logit.
    ordered = -np.sort(-setup.contribution.reshape(4, -1), axis=1)
    remaining = ordered.sum(axis=1, keepdims=True) - np.concatenate(
        [np.zeros((4, 1)), np.cumsum(ordered, axis=1)], axis=1)
    np.testing.assert_allclose(result["scores"], _sigmoid(remaining + BIAS), atol=1e-5)
    # The area is the trapezoid rule over the curve.
    curve = _sigmoid(remaining + BIAS)
    expected_auc = ((curve[:, 1:] + curve[:, :-1]) / 2).mean(axis=1)
    np.testing.assert_allclose(result["auc"], expected_auc, atol=1e-5)
    assert result["mean_auc"] == pytest.approx(expected_auc.mean(), abs=1e-5)


def test_fewer_steps_sample_the_same_curve(setup):
    fine = deletion_curve(setup.model, setup.images, setup.perfect, steps=64, progress=False)
    coarse = deletion_curve(setup.model, setup.images, setup.perfect, steps=8, progress=False)
    np.testing.assert_allclose(coarse["scores"], fine["scores"][:, ::8], atol=1e-6)
    assert coarse["scores"].shape == (4, 9)


def test_insertion_curve_by_hand_with_a_zero_baseline(setup):
    result = insertion_curve(setup.model, setup.images, setup.perfect, steps=64,
                             baseline="zero", progress=False)
    ordered = -np.sort(-setup.contribution.reshape(4, -1), axis=1)
    inserted = np.concatenate([np.zeros((4, 1)), np.cumsum(ordered, axis=1)], axis=1)
    np.testing.assert_allclose(result["scores"], _sigmoid(inserted + BIAS), atol=1e-5)


# --------------------------------------------------------------------------- perfect vs random


def test_a_perfect_map_deletes_faster_and_inserts_faster_than_a_random_one(setup):
    common = dict(steps=16, progress=False)
    deletion_perfect = deletion_curve(setup.model, setup.images, setup.perfect, **common)
    deletion_random = deletion_curve(setup.model, setup.images, setup.random, **common)
    insertion_perfect = insertion_curve(setup.model, setup.images, setup.perfect, **common)
    insertion_random = insertion_curve(setup.model, setup.images, setup.random, **common)
    assert np.all(deletion_perfect["auc"] < deletion_random["auc"])
    assert np.all(insertion_perfect["auc"] > insertion_random["auc"])
    # Both curves start and end at the same images whatever the map.
    np.testing.assert_allclose(deletion_perfect["scores"][:, [0, -1]],
                               deletion_random["scores"][:, [0, -1]], atol=1e-6)
    np.testing.assert_allclose(insertion_perfect["scores"][:, [0, -1]],
                               insertion_random["scores"][:, [0, -1]], atol=1e-6)


def test_batch_size_does_not_change_the_result(setup):
    one = deletion_curve(setup.model, setup.images, setup.random, steps=8, batch_size=1,
                         progress=False)
    many = deletion_curve(setup.model, setup.images, setup.random, steps=8, batch_size=7,
                          progress=False)
    np.testing.assert_allclose(one["scores"], many["scores"], atol=1e-6)


def test_target_class_and_explanation_objects(setup):
    p0 = deletion_curve(setup.model, setup.images, setup.perfect, steps=4, progress=False)
    p1 = deletion_curve(setup.model, setup.images, setup.perfect, target=1, steps=4,
                        progress=False)
    np.testing.assert_allclose(p0["scores"] + p1["scores"], 1.0, atol=1e-6)
    explained = SimpleNamespace(maps=setup.perfect, class_index=np.ones(4, np.int64))
    from_explanation = deletion_curve(setup.model, setup.images, explained, steps=4,
                                      progress=False)
    np.testing.assert_allclose(from_explanation["scores"], p1["scores"], atol=1e-7)
    assert from_explanation["target"].tolist() == [1, 1, 1, 1]


def test_a_model_ending_in_softmax_is_read_as_probabilities(setup):
    with_softmax = _region_model(softmax=True)
    a = deletion_curve(setup.model, setup.images, setup.random, steps=4, progress=False)
    b = deletion_curve(with_softmax, setup.images, setup.random, steps=4, progress=False)
    np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-6)
    # Reading probabilities as logits would be wrong, and visibly so.
    c = deletion_curve(with_softmax, setup.images, setup.random, steps=4, progress=False,
                       output="logits")
    assert np.abs(c["scores"] - a["scores"]).max() > 0.05


# --------------------------------------------------------------------------- zoo models


def _unit_range(pixels):
    return np.asarray(pixels, np.float32) / 255.0


def _tiny_zoo(model, normalize=_unit_range):
    from camutils.zoo import ZooModel

    return ZooModel(
        name="tiny", model=model, input_size=SIZE, class_names=["region", "other"],
        cam_layer="dense", prepare=lambda images: np.stack(images), normalize=normalize,
    )


def test_a_zoo_model_is_perturbed_in_pixels_then_normalised(setup):
    pixels = np.rint(setup.images * 255).astype(np.uint8)
    zoo = _tiny_zoo(setup.model)
    via_zoo = deletion_curve(zoo, pixels, setup.perfect, steps=8, progress=False)
    via_inputs = deletion_curve(setup.model, pixels / np.float32(255), setup.perfect, steps=8,
                                progress=False)
    # "zero" is a black pixel for the zoo model and 0 of the input for the plain model:
    # with normalize = pixels / 255 they coincide.
    np.testing.assert_allclose(via_zoo["scores"], via_inputs["scores"], atol=1e-5)
    # The blurred baseline is rounded to uint8 pixels for the zoo model: close, not equal.
    blur_zoo = insertion_curve(zoo, pixels, setup.perfect, steps=8, progress=False)
    blur_inputs = insertion_curve(setup.model, pixels / np.float32(255), setup.perfect, steps=8,
                                  progress=False)
    np.testing.assert_allclose(blur_zoo["scores"], blur_inputs["scores"], atol=2e-2)


def test_zero_means_zero_of_the_input_for_a_zoo_model_too(setup):
    from camutils.metrics._scoring import zero_pixel

    def centred(pixels):  # EfficientNet-Lite0's normaliser
        return (np.asarray(pixels, np.float32) - 127.0) / 128.0

    mean = np.array([124.0, 117.0, 104.0], np.float32)

    def mean_subtracted(pixels):  # caffe-style, per channel
        return np.asarray(pixels, np.float32) - mean

    assert zero_pixel(_tiny_zoo(setup.model)).tolist() == [0, 0, 0]
    assert zero_pixel(_tiny_zoo(setup.model, centred)).tolist() == [127, 127, 127]
    assert zero_pixel(_tiny_zoo(setup.model, mean_subtracted)).tolist() == mean.tolist()
    # Deleting to "zero" through a centred zoo model is deleting to 0 of its input.
    pixels = np.rint(setup.images * 255).astype(np.uint8)
    zoo = _tiny_zoo(setup.model, centred)
    via_zoo = deletion_curve(zoo, pixels, setup.perfect, steps=8, progress=False)
    via_inputs = deletion_curve(setup.model, centred(pixels), setup.perfect, steps=8,
                                progress=False)
    np.testing.assert_allclose(via_zoo["scores"], via_inputs["scores"], atol=1e-5)
    # A number is a constant pixel value: 0 is black, which is not 0 of this input.
    black = deletion_curve(zoo, pixels, setup.perfect, steps=8, baseline=0, progress=False)
    assert np.abs(black["scores"][:, -1] - via_zoo["scores"][:, -1]).min() > 0.01
    # Average drop fades the pixels towards that colour: image * map in input space.
    half = np.full((4, *SIZE), 0.5, np.float32)
    drop_zoo = average_drop(zoo, pixels, half, progress=False)
    drop_inputs = average_drop(setup.model, centred(pixels), half, progress=False)
    np.testing.assert_allclose(drop_zoo["masked"], drop_inputs["masked"], atol=2e-2)


def test_a_zoo_model_wants_the_images_it_sees(setup):
    zoo = _tiny_zoo(setup.model)
    wrong = np.zeros((4, 10, 10, 3), np.uint8)
    with pytest.raises(ValueError, match="as the network sees them"):
        deletion_curve(zoo, wrong, setup.perfect, progress=False)


# --------------------------------------------------------------------------- average drop


def test_average_drop_by_hand(setup):
    half = np.full((4, *SIZE), 0.5, np.float32)
    result = average_drop(setup.model, setup.images, half, progress=False)
    evidence = setup.contribution.sum(axis=(1, 2))
    y, o = _sigmoid(evidence + BIAS), _sigmoid(evidence / 2 + BIAS)  # image * 0.5 halves the evidence
    np.testing.assert_allclose(result["original"], y, atol=1e-6)
    np.testing.assert_allclose(result["masked"], o, atol=1e-6)
    assert result["average_drop"] == pytest.approx(100 * np.mean((y - o) / y), abs=1e-4)
    assert result["increase_in_confidence"] == 0.0
    # For class 1 the same mask raises the confidence on every image.
    other = average_drop(setup.model, setup.images, half, target=1, progress=False)
    assert other["increase_in_confidence"] == 100.0
    assert other["average_drop"] == 0.0


def test_an_all_ones_mask_drops_nothing(setup):
    ones = np.ones((4, *SIZE), np.float32)
    for target in (None, 1):
        result = average_drop(setup.model, setup.images, ones, target=target, progress=False)
        assert result["average_drop"] == pytest.approx(0.0, abs=1e-9)
        assert result["increase_in_confidence"] == 0.0
        np.testing.assert_array_equal(result["original"], result["masked"])


def test_a_map_that_keeps_the_evidence_drops_less_than_one_that_removes_it(setup):
    keeps = np.zeros((4, *SIZE), np.float32)
    keeps[:, REGION[0], REGION[1]] = 1.0
    removes = 1.0 - keeps
    kept = average_drop(setup.model, setup.images, keeps, progress=False)
    removed = average_drop(setup.model, setup.images, removes, progress=False)
    assert kept["average_drop"] == pytest.approx(0.0, abs=1e-6)
    assert removed["average_drop"] > 20.0
    assert np.all(kept["drop"] < removed["drop"])
    # The perfect (soft) map keeps more than the random one.
    perfect = average_drop(setup.model, setup.images, setup.perfect, progress=False)
    random = average_drop(setup.model, setup.images, setup.random, progress=False)
    assert perfect["average_drop"] < random["average_drop"]


def test_faithfulness_scores_is_one_row(setup):
    row = faithfulness_scores(setup.model, setup.images, setup.perfect, steps=8, progress=False)
    assert set(row) == {"deletion_auc", "insertion_auc", "average_drop", "increase_in_confidence"}
    assert all(isinstance(v, float) for v in row.values())
    deletion = deletion_curve(setup.model, setup.images, setup.perfect, steps=8, progress=False)
    assert row["deletion_auc"] == pytest.approx(deletion["mean_auc"], abs=1e-7)


# --------------------------------------------------------------------------- pieces and errors


def test_baselines():
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 1, (2, 12, 12, 3)).astype(np.float32)
    assert np.all(baseline_images(images, "zero") == 0)
    np.testing.assert_allclose(baseline_images(images, "mean")[:, 5, 7],
                               images.mean(axis=(1, 2)), atol=1e-6)
    blurred = baseline_images(images, "blur")
    assert blurred.shape == images.shape
    assert blurred.std(axis=(1, 2)).max() < images.std(axis=(1, 2)).min() / 2
    np.testing.assert_allclose(blurred.mean(axis=(1, 2)), images.mean(axis=(1, 2)), atol=0.05)
    flat = np.full((1, 12, 12, 3), 0.4, np.float32)
    np.testing.assert_allclose(baseline_images(flat, "blur"), 0.4, atol=1e-6)
    assert np.all(baseline_images(images, 0.25) == 0.25)
    assert np.all(baseline_images(images, lambda x: 1 - x) == 1 - images)
    with pytest.raises(ValueError, match="Unknown baseline"):
        baseline_images(images, "noise")
    with pytest.raises(ValueError, match="does not broadcast"):
        baseline_images(images, np.zeros((5, 5)))


def test_curve_auc_by_hand():
    assert curve_auc([[0, 0.5, 1], [1, 1, 1]], [0, 0.5, 1]).tolist() == pytest.approx([0.5, 1.0])
    assert curve_auc([1, 0, 0, 0], [0, 1 / 3, 2 / 3, 1]).tolist() == pytest.approx([1 / 6])
    with pytest.raises(ValueError, match="one x value per point"):
        curve_auc([[0, 1]], [0, 0.5, 1])


def test_errors_say_what_is_wrong(setup):
    with pytest.raises(ValueError, match="input resolution"):
        deletion_curve(setup.model, setup.images, np.zeros((4, 4, 4), np.float32), progress=False)
    with pytest.raises(ValueError, match="one map per image"):
        deletion_curve(setup.model, setup.images, setup.perfect[:2], progress=False)
    with pytest.raises(ValueError, match="steps"):
        deletion_curve(setup.model, setup.images, setup.perfect, steps=0, progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        average_drop(setup.model, setup.images, setup.perfect * 3, progress=False)
    with pytest.raises(ValueError, match="Target classes"):
        deletion_curve(setup.model, setup.images, setup.perfect, target=5, steps=2, progress=False)
    with pytest.raises(TypeError, match="Keras model or a camutils.zoo.ZooModel"):
        deletion_curve(object(), setup.images, setup.perfect, progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        deletion_curve(setup.model, setup.images, setup.perfect, batch_size=0, progress=False)


def test_a_single_output_unit_is_refused_with_a_hint():
    import keras

    inputs = keras.Input((*SIZE, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(keras.layers.Flatten()(inputs)))
    images = np.zeros((1, *SIZE, 3), np.float32)
    with pytest.raises(ValueError, match="single output unit"):
        deletion_curve(model, images, np.ones((1, *SIZE), np.float32), steps=2, progress=False)
