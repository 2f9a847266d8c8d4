"""The zoo's interface (`ZooModel`, the registry, the shared preprocessing) on tiny models,
and the offline ImageNet class names."""


import numpy as np
import pytest

import camutils
from camutils.zoo import imagenet, registry as zoo
from camutils.zoo import ZooModel, center_crop_resize, list_models, load_model

# --- the registry -----------------------------------------------------------------------


def test_list_models_and_the_offline_ones():
    every = list_models()
    assert {"efficientnet_lite0", "shapes_gap", "shapes_gmp", "shapes_flatten",
            "shapes_shortcut", "vgg16", "resnet50", "mobilenet_v2", "xception"} <= set(every)
    offline = list_models(offline_only=True)
    assert "efficientnet_lite0" in offline and "shapes_gap" in offline
    assert not {"vgg16", "resnet50", "mobilenet_v2", "xception"} & set(offline)
    assert all(isinstance(d, str) and d for d in every.values())
    assert camutils.list_models is list_models and camutils.load_model is load_model


def test_an_unknown_model_suggests_the_closest_name():
    with pytest.raises(ValueError, match="'efficientnet_lite0'") as info:
        load_model("efficientnet_lite")
    assert "Available:" in str(info.value)


def test_names_are_matched_without_case_or_hyphens(monkeypatch):
    calls = []
    loader = lambda **kwargs: calls.append(kwargs) or "loaded"  # noqa: E731
    from camutils.zoo import efficientnet

    monkeypatch.setattr(efficientnet, "load_efficientnet_lite0", loader)
    assert load_model("EfficientNet-Lite0", input_size=256) == "loaded"
    assert calls == [{"input_size": 256}]


@pytest.mark.parametrize("name, variant", [("shapes_gap", "gap"), ("shapes_gmp", "gmp"),
                                           ("shapes_flatten", "flatten"),
                                           ("shapes_shortcut", "shortcut")])
def test_course_models_are_loaded_by_variant(monkeypatch, name, variant):
    from camutils.course import models

    monkeypatch.setattr(models, "load_course_model",
                        lambda variant, **kwargs: (variant, kwargs))
    assert load_model(name, retrain=True) == (variant, {"retrain": True})


# --- the shared preprocessing -----------------------------------------------------------


def striped(height, width):
    """An image whose red channel is the column index and green channel the row index."""
    rows, cols = np.mgrid[0:height, 0:width]
    return np.stack([cols, rows, np.zeros_like(rows)], axis=-1).astype(np.uint8)


def test_center_crop_resize_takes_the_central_square():
    image = striped(100, 200)
    view = center_crop_resize(image, (50, 50), crop_fraction=1.0)
    assert view.shape == (1, 50, 50, 3) and view.dtype == np.uint8
    red, green = view[0, ..., 0].astype(int), view[0, ..., 1].astype(int)
    assert 48 <= red.min() and red.max() <= 151  # columns 50..149 of 200
    assert green.min() <= 2 and green.max() >= 97  # every row


def test_center_crop_resize_crops_a_fraction_with_the_target_aspect():
    image = striped(200, 200)
    view = center_crop_resize([image, image], (40, 80), crop_fraction=0.5)
    assert view.shape == (2, 40, 80, 3)
    red, green = view[0, ..., 0].astype(int), view[0, ..., 1].astype(int)
    # Aspect 2: the largest central region is 100 x 200; half of it is 50 x 100, centred.
    assert 48 <= red.min() <= 52 and 147 <= red.max() <= 151
    assert 73 <= green.min() <= 77 and 122 <= green.max() <= 126


def test_center_crop_resize_rejects_a_bad_fraction():
    with pytest.raises(ValueError, match="crop_fraction"):
        center_crop_resize(striped(10, 10), (5, 5), crop_fraction=0.0)


# --- ZooModel on a tiny GAP network -----------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    import keras

    keras.utils.set_random_seed(0)
    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, name="logits")(x)
    model = keras.Model(inputs, outputs)
    return ZooModel(
        name="tiny", model=model, input_size=(16, 16), class_names=["a", "b", "c"],
        cam_layer="features",
        prepare=lambda images: center_crop_resize(images, (16, 16), 1.0),
        normalize=lambda images: np.asarray(images, np.float32) / 255.0,
    )


def photos(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 24, 20, 3), dtype=np.uint8)


def test_preprocess_returns_inputs_and_the_seen_pixels(tiny):
    inputs, seen = tiny.preprocess(photos(2))
    assert seen.shape == (2, 16, 16, 3) and seen.dtype == np.uint8
    assert inputs.dtype == np.float32
    np.testing.assert_allclose(inputs, seen / 255.0, atol=1e-7)


def test_logits_are_the_models_outputs_in_any_batch_size(tiny):
    images = photos(10)
    inputs, _ = tiny.preprocess(images)
    eager = np.asarray(tiny.model(inputs, training=False))
    np.testing.assert_allclose(tiny.logits(images), eager, atol=1e-5)
    np.testing.assert_allclose(tiny.logits(images, batch_size=3), eager, atol=1e-5)
    np.testing.assert_allclose(tiny.predict_inputs(inputs, batch_size=1), eager, atol=1e-5)
    with pytest.raises(ValueError, match="batch_size"):
        tiny.logits(images, batch_size=0)


def test_the_compiled_forward_is_traced_once_for_every_batch_size(tiny):
    for n in (1, 2, 3, 5, 8):
        tiny.predict_inputs(tiny.preprocess(photos(n))[0], batch_size=4)
    from camutils.model_cache import compiled_forward

    assert compiled_forward(tiny.model).experimental_get_tracing_count() == 1


def test_top_k_is_sorted_softmax_of_the_logits(tiny):
    images = photos(3, seed=1)
    logits = tiny.logits(images)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    rows = tiny.top_k(images, k=2)
    assert len(rows) == 3
    for row, p in zip(rows, probabilities):
        assert [i for i, _, _ in row] == list(np.argsort(-p)[:2])
        assert [name for _, name, _ in row] == [tiny.class_names[i] for i, _, _ in row]
        np.testing.assert_allclose([q for _, _, q in row], np.sort(p)[::-1][:2], rtol=1e-5)
    assert len(tiny.top_k(images, k=10)[0]) == 3  # k is capped at the number of classes
    with pytest.raises(ValueError, match="k must be"):
        tiny.top_k(images, k=0)


def test_replacing_the_model_is_seen_by_the_compiled_forward(tiny):
    import keras

    images = photos(2, seed=2)
    before = tiny.logits(images)
    other = keras.models.clone_model(tiny.model)
    for w in other.weights:
        w.assign(np.full(w.shape, 0.01, np.float32))
    original = tiny.model
    try:
        tiny.model = other
        after = tiny.logits(images)
    finally:
        tiny.model = original
    assert not np.allclose(before, after)
    np.testing.assert_allclose(after, np.asarray(other(tiny.preprocess(images)[0])), atol=1e-5)


def test_repr_is_short(tiny):
    text = repr(tiny)
    assert "tiny" in text and "features" in text
    assert "class_names" not in text and "<lambda>" not in text


def test_explain_overlays_on_the_seen_pixels(tiny):
    images = photos(2, seed=3)
    explanation = tiny.explain(images, method="cam")
    _, seen = tiny.preprocess(images)
    np.testing.assert_array_equal(explanation.images, seen)
    assert np.asarray(explanation.maps).shape[:3] == (2, 16, 16)
    assert explanation.layer == "features"
    np.testing.assert_array_equal(explanation.class_index, tiny.logits(images).argmax(axis=1))


# --- ImageNet class names ---------------------------------------------------------------


def test_the_1000_class_names():
    names = imagenet.class_names()
    assert len(names) == 1000 and all(names)
    assert names[0] == "tench" and names[999] == "toilet_tissue"
    assert names[281:286] == ["tabby", "tiger_cat", "Persian_cat", "Siamese_cat", "Egyptian_cat"]
    assert names[967] == "espresso"
    wordnet = [c.wordnet_id for c in imagenet.classes()]
    assert wordnet == sorted(wordnet) and len(set(wordnet)) == 1000  # ILSVRC order
    assert all(c.lemmas[0].replace(" ", "_") == c.name for c in imagenet.classes())


@pytest.mark.parametrize("name, index", [("tabby", 281), ("Tabby Cat", 281), ("tiger-cat", 282),
                                         ("n02124075", 285), ("ESPRESSO", 967), (967, 967),
                                         ("Cardigan", 264), ("cardigan", 474)])
def test_class_index_lookups(name, index):
    assert imagenet.class_index(name) == index


def test_an_ambiguous_name_lists_its_classes():
    with pytest.raises(ValueError, match=r"134 .*517 ") as info:
        imagenet.class_index("crane")
    assert "Pass the index" in str(info.value)


def test_an_unknown_name_suggests_close_ones():
    with pytest.raises(ValueError, match="'espresso'"):
        imagenet.class_index("expresso")
    with pytest.raises(IndexError):
        imagenet.class_index(1000)


def test_search_classes_matches_whole_words():
    found = dict(imagenet.search_classes("cat"))
    assert {281, 282, 283, 284, 285} <= set(found)
    assert imagenet.class_index("catamaran") not in found
    assert imagenet.class_info(282).lemmas == ("tiger cat",)
