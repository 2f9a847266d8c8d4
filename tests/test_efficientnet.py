"""EfficientNet-Lite0 with its ImageNet weights, offline: architecture, conversion,
preprocessing, predictions on real photos, and where its class activation maps fall."""

import os
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest

import keras  # noqa: E402

import camutils  # noqa: E402
from camutils.zoo import efficientnet  # noqa: E402
from camutils.images import collage, collage_boxes  # noqa: E402
from camutils.zoo.torch_pickle import load_state_dict  # noqa: E402

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat
ESPRESSO = 967


@pytest.fixture(scope="module")
def state_dict():
    return load_state_dict(efficientnet.weights_path(), sha256=efficientnet.WEIGHTS_SHA256)


def class_activation_maps(zoo, inputs, classes):
    """CAM by hand (Zhou et al., 2016): the last feature maps weighted by the classifier's
    weights of each class. Returns (images, classes, h, w)."""
    features = keras.Model(zoo.model.input, zoo.model.get_layer(zoo.cam_layer).output)(inputs)
    kernel = np.asarray(zoo.model.get_layer("logits").kernel)
    return np.einsum("bhwc,ck->bkhw", np.asarray(features), kernel[:, list(classes)])


# --- architecture -----------------------------------------------------------------------


def test_architecture_facts(lite0):
    model = lite0.model
    assert sum(int(np.prod(w.shape)) for w in model.trainable_weights) == 4_652_008
    assert lite0.input_size == (224, 224)
    assert tuple(model.get_layer(lite0.cam_layer).output.shape) == (None, 7, 7, 1280)
    assert tuple(model.get_layer("stem_conv").output.shape) == (None, 112, 112, 32)
    convs = [l for l in model.layers if isinstance(l, (keras.layers.Conv2D,
                                                        keras.layers.DepthwiseConv2D))]
    assert convs and all(l.padding == "same" for l in convs)
    norms = [l for l in model.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(norms) == 49 and all(l.epsilon == 1e-3 for l in norms)
    relus = [l for l in model.layers if isinstance(l, keras.layers.ReLU)]
    assert relus and all(float(l.max_value) == 6.0 for l in relus)
    # No squeeze-and-excitation (it would multiply features by a gating vector).
    assert not any(isinstance(l, keras.layers.Multiply) for l in model.layers)
    # The head: last spatial layer -> GAP -> dropout 0.2 -> Dense 1000 logits.
    assert [l.name for l in model.layers[-4:]] == [lite0.cam_layer, "avg_pool", "dropout", "logits"]
    assert model.get_layer("dropout").rate == 0.2
    assert model.get_layer("logits").activation is keras.activations.linear
    assert model.output.shape[-1] == len(lite0.class_names) == 1000


def test_residual_blocks_are_those_with_stride_one_and_equal_channels(lite0):
    adds = sorted(l.name for l in lite0.model.layers if isinstance(l, keras.layers.Add))
    # 16 blocks; the first of each stage changes shape, so 16 - 7 stages = 9 are residual.
    assert adds == sorted(f"{b}_add" for b in ["block2b", "block3b", "block4b", "block4c",
                                               "block5b", "block5c", "block6b", "block6c",
                                               "block6d"])


# --- weight conversion ------------------------------------------------------------------


def test_conversion_uses_every_tensor_with_keras_layouts(state_dict):
    converted = efficientnet.convert_state_dict(state_dict)
    used = sum(len(w) for w in converted.values())
    assert used == sum(1 for k in state_dict if not k.endswith("num_batches_tracked")) == 247
    stem = state_dict["_conv_stem.weight"]  # (out, in, kh, kw)
    assert converted["stem_conv"][0].shape == (3, 3, 3, 32)
    assert converted["stem_conv"][0][2, 1, 0, 5] == stem[5, 0, 2, 1]
    depthwise = state_dict["_blocks.3._depthwise_conv.weight"]  # (144, 1, 5, 5)
    assert converted["block3a_dwconv"][0].shape == (5, 5, 144, 1)
    assert converted["block3a_dwconv"][0][4, 0, 100, 0] == depthwise[100, 0, 4, 0]
    np.testing.assert_array_equal(converted["logits"][0], state_dict["_fc.weight"].T)
    gamma, beta, mean, var = converted["head_bn"]
    np.testing.assert_array_equal(mean, state_dict["_bn1.running_mean"])
    np.testing.assert_array_equal(var, state_dict["_bn1.running_var"])


def test_loaded_model_holds_the_converted_weights(lite0, state_dict):
    kernel = lite0.model.get_layer("block7a_project_conv").get_weights()[0]
    np.testing.assert_array_equal(
        kernel, np.transpose(state_dict["_blocks.15._project_conv.weight"], (2, 3, 1, 0)))
    moving_variance = lite0.model.get_layer("stem_bn").get_weights()[3]
    np.testing.assert_array_equal(moving_variance, state_dict["_bn0.running_var"])


def test_conversion_refuses_other_checkpoints(state_dict):
    missing = dict(state_dict)
    del missing["_blocks.7._bn1.bias"]
    with pytest.raises(ValueError, match=r"_blocks\.7\._bn1\.bias"):
        efficientnet.convert_state_dict(missing)
    extra = dict(state_dict, **{"_blocks.0._se_reduce.weight": np.zeros((8, 32, 1, 1))})
    with pytest.raises(ValueError, match="does not use"):
        efficientnet.convert_state_dict(extra)


# --- preprocessing ----------------------------------------------------------------------


def test_prepare_is_a_centre_crop_of_224_256_then_bicubic_resize(lite0):
    chelsea = camutils.load_sample("chelsea")  # 300 x 451
    assert chelsea.shape == (300, 451, 3)
    side = round(300 * 224 / 256)  # 262
    top, left = (300 - side) // 2, (451 - side) // 2
    expected = cv2.resize(chelsea[top:top + side, left:left + side], (224, 224),
                          interpolation=cv2.INTER_CUBIC)
    inputs, seen = lite0.preprocess(chelsea)
    assert seen.dtype == np.uint8 and seen.shape == (1, 224, 224, 3)
    np.testing.assert_array_equal(seen[0], expected)
    assert inputs.dtype == np.float32
    np.testing.assert_allclose(inputs, (expected[None].astype(np.float32) - 127) / 128)


def test_normalize_maps_0_127_255():
    values = efficientnet.normalize_images(np.array([[[[0, 127, 255]]]], np.uint8))
    np.testing.assert_allclose(values.ravel(), [-127 / 128, 0.0, 1.0])


def test_bad_input_size_is_explained():
    with pytest.raises(ValueError, match="at least 32"):
        efficientnet.load_efficientnet_lite0(input_size=(16, 224))


# --- predictions on real photos ---------------------------------------------------------


def test_chelsea_is_a_cat_and_coffee_is_espresso(lite0):
    chelsea, coffee = lite0.top_k(["chelsea", "coffee"], k=5)
    assert chelsea[0][0] in CAT_CLASSES, chelsea
    assert coffee[0][0] == ESPRESSO and coffee[0][1] == "espresso", coffee
    for row in (chelsea, coffee):
        probabilities = [p for _, _, p in row]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
        assert all(lite0.class_names[i] == name for i, name, _ in row)
    # The three leading guesses for the cat are all cats.
    assert {i for i, _, _ in chelsea[:3]} <= set(CAT_CLASSES)


def test_a_batch_gives_the_same_logits_as_single_images(lite0):
    together = lite0.logits(["chelsea", "coffee"])
    apart = np.concatenate([lite0.logits("chelsea"), lite0.logits("coffee")])
    np.testing.assert_allclose(together, apart, atol=1e-4)
    eager = np.asarray(lite0.model(lite0.preprocess("coffee")[0], training=False))
    np.testing.assert_allclose(apart[1:], eager, atol=1e-4)


# --- class activation maps --------------------------------------------------------------


def test_cam_layer_is_the_last_spatial_layer_of_a_gap_network(lite0):
    """Averaging a class's CAM over space and adding the bias gives that class's logit."""
    inputs, _ = lite0.preprocess("coffee")
    cams = class_activation_maps(lite0, inputs, range(1000))[0]
    bias = np.asarray(lite0.model.get_layer("logits").bias)
    np.testing.assert_allclose(cams.mean(axis=(1, 2)) + bias, lite0.logits("coffee")[0],
                               rtol=1e-3, atol=1e-3)


def test_camutils_cam_equals_cam_by_hand(lite0):
    explanation = lite0.explain(["chelsea", "coffee"], method="cam")
    inputs, seen = lite0.preprocess(["chelsea", "coffee"])
    np.testing.assert_array_equal(explanation.images, seen)
    assert explanation.layer == lite0.cam_layer
    classes = explanation.class_index
    assert classes[0] in CAT_CLASSES and classes[1] == ESPRESSO
    by_hand = class_activation_maps(lite0, inputs, classes)[[0, 1], [0, 1]]
    np.testing.assert_allclose(explanation.raw, np.maximum(by_hand, 0), rtol=1e-4, atol=1e-4)


def test_espresso_cam_peaks_on_the_cup(lite0):
    explanation = lite0.explain("coffee", method="cam", target="espresso")  # a 600 x 400 photo
    cam = explanation.maps[0]
    assert cam.shape == (224, 224) and explanation.class_index[0] == ESPRESSO
    # The cup, rim to base with its handle, is (x0, y0, x1, y1) = (170, 15, 410, 300) in the
    # photo; the network sees its central 350 x 350 square (from x 125, y 25) at 224 x 224.
    scale = 224 / 350
    x0, y0, x1, y1 = ((170 - 125) * scale, max(0, (15 - 25) * scale),
                      (410 - 125) * scale, (300 - 25) * scale)
    cup = np.zeros(cam.shape, bool)
    cup[int(y0):int(y1), int(x0):int(x1)] = True
    peak_y, peak_x = np.unravel_index(np.argmax(cam), cam.shape)
    assert cup[peak_y, peak_x], (peak_x, peak_y)
    assert cam[cup].mean() > 2 * cam[~cup].mean()
    assert cam[cup].sum() / cam.sum() > 0.7  # the box is about 54% of the image


def test_cams_are_class_discriminative_on_a_cat_beside_a_coffee():
    """On one 224 x 448 image with the cat left and the coffee right, the cat's CAM lies on
    the cat and the espresso's on the coffee."""
    wide = efficientnet.load_efficientnet_lite0(input_size=(224, 448))
    scene = collage(["chelsea", "coffee"], tile_size=(224, 224), cols=2)
    (cat_x0, _, cat_x1, _), (cup_x0, _, cup_x1, _) = collage_boxes(2, (224, 224), cols=2)
    inputs = wide.normalize(scene[None])
    logits = wide.predict_inputs(inputs)[0]
    cat = CAT_CLASSES[int(np.argmax(logits[list(CAT_CLASSES)]))]
    top5 = set(np.argsort(-logits)[:5])
    assert ESPRESSO in top5 and cat in top5
    explanation = camutils.explain(wide.model, np.repeat(inputs, 2, axis=0), method="cam",
                                   target=[cat, ESPRESSO], layer=wide.cam_layer)
    assert explanation.maps.shape == (2, 224, 448)
    for cam, (x0, x1) in zip(explanation.maps, [(cat_x0, cat_x1), (cup_x0, cup_x1)]):
        _, peak_x = np.unravel_index(np.argmax(cam), cam.shape)
        assert x0 <= peak_x < x1
        assert cam[:, x0:x1].sum() / cam.sum() > 0.75


# --- offline and torch-free -------------------------------------------------------------


def test_loading_and_predicting_never_imports_torch(tmp_path):
    script = textwrap.dedent("""
        import sys

        class BlockTorch:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] == "torch":
                    raise ImportError("torch must not be needed: " + name)

        sys.meta_path.insert(0, BlockTorch())
        import camutils

        lite0 = camutils.load_model("efficientnet_lite0")
        print(lite0.top_k("coffee", k=1)[0][0][1])
        print(sorted(m for m in sys.modules if m.split(".")[0] == "torch"))
    """)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", TF_ENABLE_ONEDNN_OPTS="0")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split("\n")[-3:-1] == ["espresso", "[]"]


def test_a_replaced_weights_file_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / efficientnet.WEIGHTS_FILE
    fake.write_bytes(b"not the weights")
    monkeypatch.setattr(efficientnet, "weights_path", lambda: str(fake))
    with pytest.raises(ValueError, match="sha256"):
        efficientnet.load_efficientnet_lite0()
