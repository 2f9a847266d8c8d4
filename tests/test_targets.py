"""Targets (camutils.targets): each ready-made target and a user function against Grad-CAM
computed by hand with tf.GradientTape on a small model of its kind; Score-CAM with a target
against a hand computation; every bad input refused before anything runs.

Tolerance of the hand comparisons: both sides compute the same float32 values by different
graphs (a Keras probe model and a GradientTape here, camutils' compiled pass there), so
sums of a few hundred products are reassociated, and oneDNN may reorder them further. Each
such sum is then off by a few units in the last place (float32: ~1e-7 relative); a relative
tolerance of 1e-4 of the map's largest value leaves two orders of magnitude of margin and
still fails on any real difference (a wrong class, sign, mask or cell changes a map by
tens of percent).
"""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import camutils as cm
from camutils import targets as T
from camutils.model_cache import model_cache
from camutils.model_errors import NonFiniteError

import _models as M

LAYER = "conv2"
RTOL = 1e-4


@pytest.fixture(scope="module")
def models():
    return {
        "classifier": M.gap_model(classes=5),
        "multilabel": M.dense_head_model(5, "sigmoid", name="multilabel"),
        "regression": M.dense_head_model(1, seed=1, name="regression"),
        "embedding": M.dense_head_model(8, name="embedding"),
        "segmenter": M.segmenter_model(classes=4),
        "detector": M.detector_model(classes=6),
    }


@pytest.fixture(scope="module")
def x():
    return M.images(4, seed=3)


def run_chain(model, images, tape=None):
    """``(activations at LAYER, outputs)``: the test models are chains of layers, run here
    one by one in plain Keras (watching the layer's output on ``tape``)."""
    x = tf.constant(images)
    activations = None
    for layer in model.layers[1:]:
        x = layer(x)
        if layer.name == LAYER:
            activations = x
            if tape is not None:
                tape.watch(activations)
    return activations, x


def hand_gradcam(model, images, score):
    """Grad-CAM of ``score(outputs) -> (N,)`` at `LAYER`, by hand: the layers run one by
    one under a tape, the mean gradient per channel, the ReLU of the weighted sum. Returns
    ``(raw maps (N, h, w), scores (N,))``."""
    with tf.GradientTape() as tape:
        activations, outputs = run_chain(model, images, tape)
        scores = score(outputs)
        total = tf.reduce_sum(scores)
    gradients = tape.gradient(total, activations)
    weights = tf.reduce_mean(gradients, axis=[1, 2])
    raw = tf.nn.relu(tf.einsum("nhwc,nc->nhw", activations, weights))
    return raw.numpy(), scores.numpy()


def assert_maps(raw, hand):
    scale = max(float(np.abs(hand).max()), 1e-12)
    np.testing.assert_allclose(raw, hand, rtol=RTOL, atol=RTOL * scale)


def _logit(p):
    return tf.math.log(p) - tf.math.log1p(-p)


def outputs_of(model, images):
    return model(tf.constant(images)).numpy()


# --------------------------------------------------------------------------- by hand


def _cases(models, x):
    """(name, model, target, score by hand on the outputs, expected class index)."""
    classifier = outputs_of(models["classifier"], x)
    top = classifier.argmax(1)
    seg = outputs_of(models["segmenter"], x)
    predicted = seg.argmax(-1)
    region_class = int(np.bincount(predicted.ravel(), minlength=4).argmax())
    predicted_mask = (predicted == region_class).astype(np.float32)
    given_mask = np.zeros(seg.shape[1:3], np.float32)
    given_mask[4:10, 6:12] = 1.0
    detections = cm.course.detection.decode_detections(outputs_of(models["detector"], x),
                                                       max_detections=3, min_score=0.0)
    rows, cols = detections.cells[:, 1, 0], detections.cells[:, 1, 1]
    second = detections.classes[:, 1]
    n = np.arange(len(x))
    reference = outputs_of(models["embedding"], M.images(1, seed=9))[0]
    unit_reference = reference / np.linalg.norm(reference)

    def pick(columns):
        return lambda o: tf.gather(o, tf.constant(columns), batch_dims=1)

    return [
        ("class, top", "classifier", None, pick(top), top),
        ("class, probability", "classifier", T.Class(1, score="probability"),
         lambda o: tf.nn.softmax(o)[:, 1], 1),
        ("class, log-probability", "classifier", T.Class("c3", score="log_probability"),
         lambda o: tf.nn.log_softmax(o)[:, 3], 3),
        ("contrast", "classifier", T.Contrast(1, 3), lambda o: o[:, 1] - o[:, 3], 1),
        ("label, beneath the sigmoid", "multilabel", T.Label(2), lambda o: _logit(o[:, 2]), 2),
        ("regression, lowers", "regression", T.Regression(0, sign=-1), lambda o: -o[:, 0], 0),
        ("region, predicted mask", "segmenter", T.Region(region_class),
         lambda o: tf.reduce_sum(o[..., region_class] * predicted_mask, axis=[1, 2]),
         region_class),
        ("region, given mask", "segmenter", T.Region(0, mask=given_mask),
         lambda o: tf.reduce_sum(o[..., 0] * given_mask, axis=[1, 2]), 0),
        ("detection, rank 1", "detector", T.Detection(rank=1),
         lambda o: tf.gather_nd(o, np.stack([n, rows, cols, second], 1)), second),
        ("detection, cell", "detector", T.Detection(cell=(1, 2), label=4),
         lambda o: o[:, 1, 2, 4], 4),
        ("detection, box", "detector", T.Detection(box=(4, 8, 10, 15), label="c5"),
         lambda o: o[:, 2, 1, 5], 5),  # centre (7, 11.5): row 11.5 // 4 = 2, col 7 // 4 = 1
        ("similarity", "embedding", T.Similarity(reference),
         lambda o: tf.reduce_sum(tf.math.l2_normalize(o, axis=1) * unit_reference, axis=1), -1),
        ("a function", "classifier",
         lambda outputs: 2.0 * outputs[:, 1] - tf.reduce_sum(outputs ** 2, axis=1),
         lambda o: 2.0 * o[:, 1] - tf.reduce_sum(o ** 2, axis=1), -1),
    ]


NAMES = [f"c{i}" for i in range(6)]


def test_gradcam_of_every_target_matches_a_gradient_tape(models, x):
    for name, kind, target, score, classes in _cases(models, x):
        model = models[kind]
        names = {"classifier": NAMES[:5], "detector": NAMES + ["width", "height", "dx", "dy"]
                 }.get(kind)
        e = cm.explain(model, x, "gradcam", target=target, layer=LAYER, class_names=names)
        raw, scores = hand_gradcam(model, x, score)
        assert e.raw.shape == raw.shape and e.maps.shape == x.shape[:3], name
        assert_maps(e.raw, raw)
        np.testing.assert_allclose(e.score, scores, rtol=1e-5, atol=1e-5, err_msg=name)
        np.testing.assert_array_equal(e.class_index, np.broadcast_to(classes, len(x)), name)
        assert e.target == T.as_target(target).describe(), name
        assert raw.max() > 0, f"{name}: a map of zeros would test nothing"


def test_topk_and_labels_give_one_map_per_target(models, x):
    classifier = models["classifier"]
    e = cm.explain(classifier, x, "gradcam", target=T.TopK(2), layer=LAYER)
    second = outputs_of(classifier, x).argsort(1)[:, -2]
    raw, _ = hand_gradcam(classifier, x, lambda o: tf.gather(o, second, batch_dims=1))
    assert e.maps.shape == (len(x), 2, *x.shape[1:3])
    assert_maps(e.raw[:, 1], raw)

    multilabel = models["multilabel"]
    probabilities = outputs_of(multilabel, x)
    e = cm.explain(multilabel, x, "gradcam", target=T.Labels(0.5), layer=LAYER)
    assert e.maps.shape == (len(x), 5, *x.shape[1:3]) and e.target == "Labels(probability > 0.5)"
    for i in range(len(x)):
        above = [int(c) for c in np.argsort(-probabilities[i]) if probabilities[i, c] > 0.5]
        assert 0 < len(above) < 5  # some slots filled, some padding: both are checked
        np.testing.assert_array_equal(e.class_index[i], above + [-1] * (5 - len(above)))
        for slot, label in enumerate(above):
            raw, _ = hand_gradcam(multilabel, x[i:i + 1], lambda o: _logit(o[:, label]))
            assert_maps(e.raw[i, slot], raw[0])
        assert not e.maps[i, len(above):].any() and not e.score[i, len(above):].any()


def test_cam_explains_linear_targets_and_names_the_methods_for_the_others(models, x):
    classifier = models["classifier"]
    contrast = cm.explain(classifier, x, "cam", target=T.Contrast(1, 3), layer=LAYER)
    grad = cm.explain(classifier, x, "gradcam", target=T.Contrast(1, 3), layer=LAYER)
    # On a GAP -> Dense head Grad-CAM's raw map is CAM's divided by the number of positions.
    assert_maps(contrast.raw / np.prod(contrast.raw.shape[1:]), grad.raw)
    lowered = cm.explain(models["regression"], x, "cam", target=T.Regression(sign=-1),
                         layer=LAYER)
    assert_maps(lowered.raw / np.prod(lowered.raw.shape[1:]),
                cm.explain(models["regression"], x, "gradcam", target=T.Regression(sign=-1),
                           layer=LAYER).raw)
    with pytest.raises(ValueError, match=r"linear function of the logits.*Methods that apply "
                                         r"here: gradcam, gradcam\+\+"):
        cm.explain(classifier, x, "cam", target=T.Class(1, score="probability"))


# --------------------------------------------------------------------------- Score-CAM


def hand_scorecam(model, images, confidence):
    """Score-CAM at `LAYER` by hand: each channel upsampled (bilinear) and min-max
    normalised masks the image; its weight is ``confidence(outputs of the masked image)``."""
    activations = run_chain(model, images)[0].numpy()
    weights = np.zeros(activations.shape[::3], np.float32)
    for c in range(activations.shape[3]):
        mask = tf.image.resize(activations[..., c:c + 1], images.shape[1:3], "bilinear").numpy()
        low = mask.min(axis=(1, 2, 3), keepdims=True)
        span = mask.max(axis=(1, 2, 3), keepdims=True) - low
        mask = np.divide(mask - low, span, out=np.zeros_like(mask), where=span > 0)
        weights[:, c] = confidence(model(tf.constant(images * mask)).numpy())
    return np.maximum(np.einsum("nhwc,nc->nhw", activations, weights), 0)


def test_scorecam_reevaluates_the_target_with_the_first_pass_choice(models, x):
    segmenter = models["segmenter"]
    predicted = outputs_of(segmenter, x).argmax(-1)
    region = int(np.bincount(predicted.ravel(), minlength=4).argmax())
    mask = (predicted == region).astype(np.float32)  # the unperturbed image's prediction

    def mean_probability(outputs):
        probability = tf.nn.softmax(outputs).numpy()[..., region]
        return (probability * mask).sum((1, 2)) / mask.sum((1, 2))

    e = cm.explain(segmenter, x, "scorecam", target=T.Region(region), layer=LAYER,
                   progress=False)
    assert_maps(e.raw, hand_scorecam(segmenter, x, mean_probability))

    regression = models["regression"]
    e = cm.explain(regression, x, "scorecam", target=T.Regression(0, sign=-1), layer=LAYER,
                   progress=False)
    assert_maps(e.raw, hand_scorecam(regression, x, lambda o: -o[:, 0]))


def test_ablationcam_reevaluates_a_function(models, x):
    classifier = models["classifier"]

    def score(outputs):
        return outputs[:, 1] - 0.5 * outputs[:, 2]

    e = cm.explain(classifier, x, "ablationcam", target=score, layer=LAYER, progress=False)
    acts = run_chain(classifier, x)[0].numpy()
    pooled = acts.mean(axis=(1, 2))
    kernel, bias = classifier.get_layer("logits").get_weights()
    full = (pooled @ kernel + bias) @ np.array([0, 1, -0.5, 0, 0])
    weights = np.stack([(full - ((pooled * (np.arange(6) != c)) @ kernel + bias)
                         @ np.array([0, 1, -0.5, 0, 0])) / np.abs(full) for c in range(6)], 1)
    assert_maps(e.raw, np.maximum(np.einsum("nhwc,nc->nhw", acts, weights), 0))


# --------------------------------------------------------------------------- bad input


def _compiled(model) -> list:
    return [key for key in model_cache(model) if isinstance(key, tuple) and key[0] == "compiled"]


@pytest.mark.parametrize("kind, target, match", [
    ("classifier", T.Region(1), r"per-pixel output of shape \(N, height, width, classes\); "
                                r"model 'gap_model', whose output has shape \(N, 5\)"),
    ("segmenter", None, r"needs an output of shape \(N, classes\); model 'segmenter', whose "
                        r"output has shape \(N, 16, 16, 4\).*Region"),
    ("segmenter", T.Region(1, mask=np.ones((8, 8))), r"mask .* has shape \(8, 8\); .*shape "
                                                     r"\(N, 16, 16, 4\).*must be \(16, 16\)"),
    ("segmenter", T.Region(1, mask=np.zeros((16, 16))), r"empty for image\(s\) \[0, 1, 2, 3\]"),
    ("detector", T.Detection(box=(10, 10, 20, 12), label=0), r"not a box inside the image: "
                                                             r"the model takes 16 x 16 images"),
    ("detector", T.Detection(cell=(4, 0), label=0), r"outside the 4 x 4 grid"),
    ("multilabel", T.Label(5), r"Label index 5 is out of range: the model has 5 labels .*"
                               r"shape \(N, 5\)"),
    ("classifier", lambda o: o, r"returns shape \(N, 5\) on the outputs of model 'gap_model'.*one value per image"),
    ("classifier", lambda o: tf.reduce_sum(o), r"returns one value for the whole batch"),
    ("classifier", lambda o: o["logits"], r"failed on the outputs of model 'gap_model'"),
    ("embedding", T.Similarity(np.ones(5)), r"reference embedding has shape \(5,\); model "
                                           r"'embedding', whose output has shape \(N, 8\)"),
    ("classifier", T.Contrast(2, 2), r"compares a class with itself"),
])
def test_a_target_that_does_not_fit_is_refused_before_anything_runs(models, x, kind, target,
                                                                    match):
    model = models[kind]
    before = _compiled(model)
    with pytest.raises((ValueError, TypeError), match=match):
        cm.explain(model, x, "gradcam", target=target, layer=LAYER)
    assert _compiled(model) == before


def test_targets_check_their_own_arguments():
    for make, match in [(lambda: T.Labels(1.5), "threshold"), (lambda: T.Labels(0.5, 0), "max_"),
                        (lambda: T.Regression(0, sign=2), r"sign is \+1"),
                        (lambda: T.Class(1, score="odds"), "score must be one of"),
                        (lambda: T.Detection(box=(0, 0, 4, 4)), "needs its label"),
                        (lambda: T.Score(3), "needs a function"),
                        (lambda: T.as_target(2.5), "score\\(outputs\\)")]:
        with pytest.raises((ValueError, TypeError), match=match):
            make()


def test_a_nonfinite_score_names_the_images(models, x):
    classifier = models["classifier"]
    outputs = outputs_of(classifier, x)[:, 0]
    cut = float(np.median(outputs))
    negative = np.flatnonzero(outputs - cut <= 0)  # the log of these is NaN or -inf
    assert 0 < len(negative) < len(x)
    with pytest.raises(NonFiniteError, match="score function") as error:
        cm.explain(classifier, x, "gradcam", target=lambda o: tf.math.log(o[:, 0] - cut),
                   layer=LAYER)
    assert error.value.images == tuple(negative)


def test_chunks_slice_per_image_target_data(models, x):
    segmenter = models["segmenter"]
    masks = np.zeros((len(x), 16, 16), np.float32)
    for i in range(len(x)):
        masks[i, i * 3:i * 3 + 5, 2:9] = 1.0
    target = T.Region([0, 1, 2, 3], mask=masks)
    whole = cm.explain(segmenter, x, "gradcam", target=target, layer=LAYER)
    chunked = cm.explain(segmenter, x, "gradcam", target=target, layer=LAYER, chunk_size=3)
    np.testing.assert_allclose(chunked.raw, whole.raw, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(chunked.class_index, [0, 1, 2, 3])
