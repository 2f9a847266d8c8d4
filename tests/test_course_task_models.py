"""The course models beyond one label (issue 22): the multi-label model, the segmenter, the
detector and the size regressor. Their output formats, the detector's decoding and scores,
and the shipped weights' scores on a fresh test set against the manifest's."""

import numpy as np
import pytest

import camutils
from camutils.boxes import pairwise_box_iou
from camutils.course import detection as det
from camutils.course import models as cm
from camutils.course.evaluation import multilabel_scores, regression_scores, segmentation_scores
from camutils.course.shapes import SEGMENT_CLASSES, SHAPE_CLASSES, make_scenes, make_shapes
from camutils.course.training import SCENE_OBJECTS, SIZE_RADIUS, training_targets

# A test seed used nowhere else: not a training seed, not the manifest's test seed.
FRESH_SEED = 515_151
TASK_MODELS = ("multilabel", "segmenter", "detector", "size")
OUTPUT_SHAPES = {"multilabel": (6,), "segmenter": (64, 64, 7), "detector": (16, 16, 10), "size": (1,)}


@pytest.fixture(scope="module")
def scenes():
    return make_scenes(400, seed=FRESH_SEED, objects=SCENE_OBJECTS)


def outputs_of(zoo_model, images):
    return zoo_model.predict_inputs(zoo_model.normalize(images), batch_size=200)


# ---------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("variant", TASK_MODELS)
def test_outputs_and_layers_are_as_documented(variant):
    spec = cm.SPECS[variant]
    model = cm.build_course_model(variant)
    assert model.input.shape[1:] == (64, 64, 3)
    assert tuple(model.output.shape[1:]) == OUTPUT_SHAPES[variant]
    assert str(OUTPUT_SHAPES[variant][0]) in spec.output and len(spec.output_names) == model.output.shape[-1]
    assert model.count_params() < 250_000
    cam = model.get_layer(spec.cam_layer).output
    assert len(cam.shape) == 4 and cam.shape[1] >= 8
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            assert layer.momentum == pytest.approx(0.9)
    if variant in ("multilabel", "size"):  # GAP -> Dense: the CAM identity holds
        head = model.layers[-1]
        assert head.__class__.__name__ == "Dense" and head.activation.__name__ == "linear"
        assert model.layers[-2].__class__.__name__ == "GlobalAveragePooling2D"
        assert model.layers[-3].name == cm.CAM_LAYER


def test_training_targets_fit_the_outputs(scenes):
    """What each task learns has the shape of what its model outputs (the detector's target
    carries one more channel: where an object's centre is)."""
    small = make_scenes(6, seed=FRESH_SEED + 1, objects=SCENE_OBJECTS)
    np.testing.assert_array_equal(training_targets("multilabel", small), small.multi_hot())
    assert training_targets("segmenter", small).shape == (6, 64, 64)
    assert training_targets("detector", small).shape == (6, 16, 16, det.TARGET_CHANNELS)
    shapes = make_shapes(6, seed=FRESH_SEED, radius=SIZE_RADIUS)
    assert training_targets("size", shapes).shape == (6, 1)


# ---------------------------------------------------------------------------- detection format
def perfect_outputs(labels, boxes) -> np.ndarray:
    """Detector outputs that say exactly what the encoded targets say."""
    target = det.encode_targets(labels, boxes)
    out = np.zeros(target.shape[:-1] + (det.CHANNELS,), np.float32)
    heat = np.clip(target[..., det.HEATMAP], 1e-6, 1 - 1e-6)
    out[..., det.HEATMAP] = np.log(heat / (1 - heat))
    out[..., det.SIZE] = target[..., det.SIZE]
    out[..., det.OFFSET] = target[..., det.OFFSET]
    return out


def test_decoding_the_encoded_truth_gives_back_every_box(scenes):
    outputs = perfect_outputs(scenes.labels, scenes.boxes)
    found = det.decode_detections(outputs, max_detections=5, min_score=0.5)
    np.testing.assert_array_equal(found.counts, scenes.counts)
    for i in range(len(scenes)):
        k = scenes.counts[i]
        assert sorted(found.classes[i, :k]) == sorted(scenes.labels[i, :k])
        for j in range(k):
            slot = list(found.classes[i]).index(scenes.labels[i, j])
            np.testing.assert_allclose(found.boxes[i, slot], scenes.boxes[i, j], atol=1e-3)
            row, col = found.cells[i, slot]
            assert outputs[i, row, col, scenes.labels[i, j]] == outputs[i, ..., scenes.labels[i, j]].max()
        assert (found.classes[i, k:] == -1).all() and (found.boxes[i, k:] == -1).all()
    scores = det.evaluate_detections(outputs, scenes.labels, scenes.boxes)
    assert scores["mean_ap_at_0.5"] == 1.0 and scores["box_recall_at_0.5"] == 1.0
    assert scores["box_precision_at_0.5"] == 1.0


def test_decoding_a_hand_made_output():
    out = np.full((1, 16, 16, det.CHANNELS), -10.0, np.float32)
    out[0, 5, 9, 3] = 2.0                                   # a star, centre in cell (5, 9)
    out[0, 5, 10, 3] = 1.0                                  # its neighbour: not a peak
    out[0, 12, 2, 0] = -1.0                                 # a weak circle: below 0.3
    out[0, 5, 9, det.SIZE] = (10.0, 6.0)
    out[0, 5, 9, det.OFFSET] = (0.5, 0.25)
    found = det.decode_detections(out, max_detections=3)
    assert found.classes.tolist() == [[3, -1, -1]] and found.cells[0, 0].tolist() == [5, 9]
    assert found.scores[0, 0] == pytest.approx(1 / (1 + np.exp(-2.0)))
    np.testing.assert_allclose(found.boxes[0, 0], [38 - 5, 21 - 3, 38 + 5, 21 + 3])
    assert det.decode_detections(out, max_detections=3, min_score=0.2).classes[0, 1] == 0
    with pytest.raises(ValueError, match="16, 16, 10|rows, cols, 10"):
        det.decode_detections(out[..., :6])
    with pytest.raises(ValueError, match="min_score"):
        det.decode_detections(out, min_score=1.5)


def test_average_precision_of_a_ranked_list():
    """Two objects of class 0; three detections: a hit, a miss scored above the second hit.
    Precision 1 at recall 0.5, 2/3 at recall 1: AP = 0.5 * 1 + 0.5 * 2/3."""
    truth = np.array([[[0, 0, 10, 10], [20, 20, 30, 30]]])
    found = det.Detections(
        boxes=np.array([[[0, 0, 10, 10], [40, 40, 50, 50], [21, 21, 31, 31]]], np.float32),
        classes=np.array([[0, 0, 0]]), scores=np.array([[0.9, 0.8, 0.7]], np.float32),
        cells=np.zeros((1, 3, 2), np.int64))
    ap, recall = det.average_precision(found, np.array([[0, 0]]), truth)
    assert ap[0] == pytest.approx(0.5 + 0.5 * 2 / 3) and recall[0] == 1.0
    assert np.isnan(ap[1:]).all()  # classes without objects
    # a box of IoU under 0.5 does not count: (21, 21, 31, 31) vs (20, 20, 30, 30) is 81/119
    ap_strict, _ = det.average_precision(found, np.array([[0, 0]]), truth, iou=0.7)
    assert ap_strict[0] == pytest.approx(0.5)


def test_pairwise_box_iou():
    a = np.array([[0, 0, 10, 10], [5, 5, 15, 15], [3, 3, 3, 8]])
    b = np.array([[0, 0, 10, 10], [10, 10, 20, 20]])
    np.testing.assert_allclose(pairwise_box_iou(a, b), [[1, 0], [25 / 175, 25 / 175], [0, 0]])


def test_detection_loss_terms(scenes):
    """The box terms are the L1 errors at the centre cells (size x 0.1, offset x 1) per
    object; the heat-map term is small on the truth and grows when a centre is missed."""
    import keras

    labels, boxes = scenes.labels[:16], scenes.boxes[:16]
    target = keras.ops.convert_to_tensor(det.encode_targets(labels, boxes))
    right = perfect_outputs(labels, boxes)

    def loss(out):
        return np.asarray(det.detection_loss(target, keras.ops.convert_to_tensor(out)))

    assert loss(right).shape == (16,) and (loss(right) < 0.2).all()
    wrong_size, wrong_offset = right.copy(), right.copy()
    wrong_size[..., det.SIZE] += 3.0               # 3 px off in width and in height
    wrong_offset[..., det.OFFSET] -= 0.25           # a quarter cell off in x and in y
    np.testing.assert_allclose(loss(wrong_size) - loss(right), 0.1 * 6, atol=1e-4)
    np.testing.assert_allclose(loss(wrong_offset) - loss(right), 0.5, atol=1e-4)
    missed = right.copy()
    missed[..., det.HEATMAP] = -5.0                # no centre anywhere
    assert (loss(missed) > loss(right) + 1).all()


# ---------------------------------------------------------------------------- scores
def test_scores_of_known_predictions():
    present = np.array([[1, 0, 0, 0, 0, 0], [1, 1, 0, 0, 0, 0]], np.float32)
    logits = np.where(present > 0, 3.0, -3.0)
    logits[1, 1] = -1.0                           # one label missed
    scores = multilabel_scores(logits, present)
    assert scores["f1"]["circle"] == 1.0 and scores["f1"]["square"] == 0.0
    assert scores["f1"]["star"] == 1.0            # never present, never predicted
    assert scores["exact_match_accuracy"] == 0.5
    maps = np.array([[[0, 6], [6, 6]]])
    onehot = np.eye(7)[[[0, 6], [0, 6]]][None] * 5.0   # predicts class 0 at two pixels
    seg = segmentation_scores(onehot, maps)
    # the scores are rounded to 4 decimals, as the manifest keeps them
    assert seg["iou"]["circle"] == 0.5 and seg["iou"]["background"] == pytest.approx(2 / 3, abs=1e-4)
    assert np.isnan(seg["iou"]["star"]) and seg["mean_iou"] == pytest.approx((0.5 + 2 / 3) / 2, abs=1e-4)
    reg = regression_scores([1.0, 2.0, 3.0], [1.0, 2.0, 5.0])
    assert reg["mae"] == pytest.approx(2 / 3, abs=1e-4) and reg["r2"] == pytest.approx(1 - 4 / (78 / 9), abs=1e-4)


# ---------------------------------------------------------------------------- shipped models
@pytest.mark.parametrize("variant", TASK_MODELS)
def test_zoo_entry_knows_its_task_outputs_and_layer(variant, course_zoo, course_manifest):
    model = course_zoo(variant)
    spec = cm.SPECS[variant]
    entry = course_manifest["models"][variant]
    assert model.task == spec.task == entry["task"] and entry["output"] == spec.output
    assert model.cam_layer == spec.cam_layer == entry["cam_layer"]
    assert model.class_names == list(spec.output_names)
    assert model.info["sha256"] == entry["sha256"]


def test_multilabel_model_on_fresh_scenes(course_zoo, scenes, course_manifest):
    entry = course_manifest["models"]["multilabel"]
    model = course_zoo("multilabel")
    logits = outputs_of(model, scenes.images)
    scores = multilabel_scores(logits, scenes.multi_hot())
    # 400 scenes: a few labels more or fewer than on the manifest's 3000
    assert scores["mean_f1"] == pytest.approx(entry["mean_f1"], abs=0.02)
    assert scores["exact_match_accuracy"] == pytest.approx(entry["exact_match_accuracy"], abs=0.03)
    assert scores["mean_f1"] >= 0.97
    # every object's label lights up its own object: CAM per label peaks inside it
    first = camutils.explain(model.model, model.normalize(scenes.images), "cam",
                             target=scenes.labels[:, 0], layer=model.cam_layer).maps
    hits = camutils.metrics.pointing_game(first, masks=scenes.masks[:, 0], tolerance=0)
    assert hits.mean() == pytest.approx(entry["pointing_game_cam"], abs=0.05)


def test_segmenter_on_fresh_scenes(course_zoo, scenes, course_manifest):
    entry = course_manifest["models"]["segmenter"]
    logits = outputs_of(course_zoo("segmenter"), scenes.images)
    assert logits.shape == (len(scenes), 64, 64, len(SEGMENT_CLASSES))
    scores = segmentation_scores(logits, scenes.label_maps())
    assert scores["mean_iou"] == pytest.approx(entry["mean_iou"], abs=0.03)
    for name in SEGMENT_CLASSES:
        assert scores["iou"][name] == pytest.approx(entry["iou"][name], abs=0.06)


def test_detector_on_fresh_scenes(course_zoo, scenes, course_manifest):
    entry = course_manifest["models"]["detector"]
    outputs = outputs_of(course_zoo("detector"), scenes.images)
    scores = det.evaluate_detections(outputs, scenes.labels, scenes.boxes)
    assert scores["mean_ap_at_0.5"] == pytest.approx(entry["mean_ap_at_0.5"], abs=0.03)
    assert scores["box_recall_at_0.5"] == pytest.approx(entry["box_recall_at_0.5"], abs=0.03)
    found = det.decode_detections(outputs)
    # one box per object, mostly: the counts agree on most scenes
    assert (found.counts == scenes.counts).mean() >= 0.9


def test_size_model_on_fresh_shapes(course_zoo, course_manifest):
    entry = course_manifest["models"]["size"]
    shapes = make_shapes(400, seed=FRESH_SEED, radius=SIZE_RADIUS)
    predicted = outputs_of(course_zoo("size"), shapes.images)
    assert predicted.shape == (400, 1)
    scores = regression_scores(predicted[:, 0], shapes.sizes())
    assert scores["mae"] == pytest.approx(entry["mae"], abs=0.1)
    assert scores["r2"] == pytest.approx(entry["r2"], abs=0.02) and scores["r2"] >= 0.95
    # size says nothing about the class: the error is small for every class
    errors = np.abs(predicted[:, 0] - shapes.sizes())
    assert max(errors[shapes.labels == c].mean() for c in range(len(SHAPE_CLASSES))) < 2 * entry["mae"]
