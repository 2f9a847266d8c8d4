"""The course's shapes models: architecture, shipped weights and manifest, and the acceptance
checks of issue 4 (accuracy, CAM pointing game, the shortcut's collapse, retraining). The
models of issues 22 and 23 have their own checks in test_course_task_models.py and
test_course_vit.py; their files and manifest entries are checked here with the others'."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import camutils
from camutils.course import models as cm
from camutils.course.shapes import SHAPE_CLASSES, make_scenes, make_shapes, make_shortcut

REPO = Path(__file__).resolve().parent.parent
CNN_CLASSIFIERS = ("gap", "gmp", "flatten", "shortcut")
# A test seed used nowhere else: not a training seed, not the manifest's test seed.
FRESH_SEED = 424_242


@pytest.fixture(scope="module")
def fresh():
    return make_shapes(1200, seed=FRESH_SEED)


@pytest.fixture(scope="module")
def gap_cam_by_hand(course_zoo, fresh):
    """CAM by hand (`plain_cam`) of the GAP model on the fresh images, for their labels."""
    return plain_cam(course_zoo("gap").model, fresh.images, fresh.labels)


@pytest.fixture(scope="module")
def clean_shortcut():
    """Shortcut images without the leak: the marker's colour drawn at random."""
    return make_shortcut(900, seed=FRESH_SEED, leak=False)


def feature_model(model):
    import keras

    return keras.Model(model.input, [model.get_layer(cm.CAM_LAYER).output, model.output])


def plain_cam(model, images, classes):
    """CAM by hand: features x dense weights (one einsum), bilinear upsampling to 64 x 64."""
    import tensorflow as tf

    feats, _ = feature_model(model)(images.astype(np.float32) / 255.0, training=False)
    w = model.get_layer("logits").kernel.numpy()
    maps = np.einsum("nhwk,kn->nhw", np.asarray(feats), w[:, classes])
    return np.asarray(tf.image.resize(maps[..., None], images.shape[1:3], "bilinear"))[..., 0]


def accuracy(zoo_model, data):
    return float((zoo_model.logits(data.images, batch_size=256).argmax(1) == data.labels).mean())


# ---------------------------------------------------------------------------- architecture
@pytest.mark.parametrize("variant", CNN_CLASSIFIERS)
def test_architecture_outputs_logits_and_names_the_cam_layer(variant):
    model = cm.build_course_model(variant)
    assert model.input.shape[1:] == (64, 64, 3)
    assert model.output.shape[1:] == (len(SHAPE_CLASSES),)
    head = model.get_layer("logits")
    assert head.__class__.__name__ == "Dense" and head.activation.__name__ == "linear"
    cam = model.get_layer(cm.CAM_LAYER)
    assert cam.output.shape[1] == cam.output.shape[2] and cam.output.shape[1] >= 8
    assert model.count_params() < 250_000
    for layer in model.layers:
        if layer.__class__.__name__ == "BatchNormalization":
            assert layer.momentum == pytest.approx(0.9)


def test_heads_differ_as_documented():
    kinds = {v: [type(l).__name__ for l in cm.build_course_model(v).layers] for v in CNN_CLASSIFIERS}
    assert "GlobalAveragePooling2D" in kinds["gap"] and "GlobalMaxPooling2D" not in kinds["gap"]
    assert "GlobalMaxPooling2D" in kinds["gmp"]
    assert "Flatten" in kinds["flatten"] and kinds["flatten"].count("Dense") == 2
    assert kinds["shortcut"] == kinds["gap"]
    # the pooling variants feed the pooled CAM layer straight into the logits
    for v in ("gap", "gmp", "shortcut"):
        model = cm.build_course_model(v)
        assert model.get_layer("logits").input.shape[-1] == model.get_layer(cm.CAM_LAYER).output.shape[-1]


def test_cam_refuses_the_flatten_head_and_grad_cam_works_there(course_zoo):
    images = make_shapes(4, seed=FRESH_SEED + 2)
    flatten = course_zoo("flatten")
    inputs = flatten.normalize(images.images)
    with pytest.raises(ValueError, match="gradcam"):
        camutils.explain(flatten.model, inputs, "cam", target=images.labels, layer=cm.CAM_LAYER)
    maps = camutils.explain(flatten.model, inputs, "gradcam", target=images.labels,
                            layer=cm.CAM_LAYER).maps
    assert maps.shape == (4, 64, 64) and maps.min() >= 0 and np.isfinite(maps).all()


def test_unknown_variant_suggests_the_closest():
    with pytest.raises(ValueError, match="Did you mean 'gap'"):
        cm.build_course_model("gapp")
    assert cm.build_course_model("shapes_gmp").name == "shapes_gmp"


# ---------------------------------------------------------------------------- manifest and files
# The scores each task's manifest entry must give (besides the common keys).
TASK_SCORES = {
    "classification": ("test_accuracy",),
    "multilabel": ("mean_f1", "f1", "exact_match_accuracy", "pointing_game_cam"),
    "segmentation": ("mean_iou", "iou", "pixel_accuracy"),
    "detection": ("mean_ap_at_0.5", "ap_at_0.5", "box_recall_at_0.5", "box_precision_at_0.5"),
    "regression": ("mae", "rmse", "r2", "pointing_game_cam"),
}


def test_manifest_records_every_model_and_how_it_was_trained(course_manifest):
    assert course_manifest["class_names"] == list(SHAPE_CLASSES)
    assert course_manifest["cam_layer"] == cm.CAM_LAYER and course_manifest["input_size"] == [64, 64]
    assert list(course_manifest["models"]) == list(cm.VARIANTS)
    for variant, entry in course_manifest["models"].items():
        spec = cm.SPECS[variant]
        assert (entry["task"], entry["output"], entry["cam_layer"]) == (
            spec.task, spec.output, spec.cam_layer)
        for key in ("file", "sha256", "config", "date", "command", "versions", "train_seconds",
                    "test_seed", "test_images", "parameters", "final_train_loss",
                    *TASK_SCORES[spec.task]):
            assert key in entry, (variant, key)
        if variant not in CNN_CLASSIFIERS:  # trained since the script records every epoch
            assert len(entry["epochs"]) == entry["config"]["epochs"]
        assert entry["command"].startswith("python tools/train_course_models.py")
        assert set(entry["versions"]) >= {"tensorflow", "keras"}
        config = entry["config"]
        training_seeds = range(config["data_seed"], config["data_seed"] + config["epochs"])
        assert entry["test_seed"] not in training_seeds and FRESH_SEED not in training_seeds
        if variant in CNN_CLASSIFIERS:
            assert "pointing_game_gradcam" in entry
        if variant in ("gap", "gmp", "shortcut"):
            assert "pointing_game_cam" in entry


@pytest.mark.parametrize("variant", cm.VARIANTS)
def test_shipped_weights_are_small_and_match_their_hash(variant, course_manifest):
    entry = course_manifest["models"][variant]
    path = REPO / "data" / entry["file"]
    assert path.is_file()
    assert path.stat().st_size == entry["size_bytes"] < 1_000_000
    assert cm.file_sha256(path) == entry["sha256"]


@pytest.fixture()
def private_data(tmp_path, monkeypatch):
    """A copy of data/ that a test may damage, used in place of camutils.data."""
    for name in ["course_models.json"] + [cm.weights_file(v) for v in cm.VARIANTS]:
        shutil.copy(REPO / "data" / name, tmp_path / name)
    monkeypatch.setattr(cm, "_data_dir", lambda: tmp_path)
    return tmp_path


def test_a_damaged_weights_file_is_refused(private_data):
    path = private_data / cm.weights_file("gap")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="does not match the manifest.*retrain"):
        cm.load_course_model("gap")
    cm.load_course_model("gmp")  # the others still load


def test_missing_files_say_how_to_get_them(private_data):
    (private_data / cm.weights_file("flatten")).unlink()
    with pytest.raises(FileNotFoundError, match="train_course_models.py"):
        cm.load_course_model("flatten")
    (private_data / "course_models.json").unlink()
    with pytest.raises(FileNotFoundError, match="train_course_models.py"):
        cm.load_course_model("gap")


# ---------------------------------------------------------------------------- the zoo entry
def test_zoo_model_knows_its_classes_size_layer_and_preprocessing(course_zoo):
    gap = course_zoo("gap")
    assert gap.name == "shapes_gap" and gap.offline
    assert gap.class_names == list(SHAPE_CLASSES) and gap.input_size == (64, 64)
    assert gap.cam_layer == cm.CAM_LAYER
    data = make_shapes(3, seed=FRESH_SEED + 1)
    inputs, seen = gap.preprocess(data.images)
    np.testing.assert_array_equal(seen, data.images)
    assert inputs.dtype == np.float32 and 0 <= inputs.min() and inputs.max() <= 1
    np.testing.assert_allclose(inputs, data.images / 255.0, atol=1e-6)
    # images of another size are resized to the input size
    big = np.repeat(np.repeat(data.images[0], 2, axis=0), 3, axis=1)
    assert gap.preprocess(big)[1].shape == (1, 64, 64, 3)
    top = gap.top_k(data.images, k=2)
    assert len(top) == 3 and top[0][0][1] in SHAPE_CLASSES


# ---------------------------------------------------------------------------- acceptance
@pytest.mark.parametrize("variant", ["gap", "gmp", "flatten"])
def test_accuracy_on_a_fresh_test_set_is_at_least_97_percent(variant, course_zoo, fresh):
    assert accuracy(course_zoo(variant), fresh) >= 0.97


def test_gap_cam_peaks_inside_the_object_on_95_percent_of_images(course_zoo, fresh, gap_cam_by_hand):
    gap = course_zoo("gap")
    inputs = gap.normalize(fresh.images)
    maps = np.concatenate([
        camutils.explain(gap.model, inputs[i:i + 400], method="cam", target=fresh.labels[i:i + 400],
                         layer=gap.cam_layer).maps for i in range(0, len(inputs), 400)])
    n = len(maps)
    peaks = maps.reshape(n, -1).argmax(1)
    inside = fresh.masks.reshape(n, -1)[np.arange(n), peaks]
    assert inside.mean() >= 0.95
    # CAM by hand (features x dense weights) peaks at the same pixels, and the library's
    # pointing game (what the manifest's figure uses) scores it the same
    by_hand = gap_cam_by_hand
    assert (by_hand.reshape(n, -1).argmax(1) == peaks).mean() > 0.99
    assert camutils.metrics.pointing_game(by_hand, masks=fresh.masks, tolerance=0).mean() == \
        pytest.approx(inside.mean(), abs=0.01)


def test_shortcut_model_reads_the_marker_and_collapses_without_it(course_zoo, clean_shortcut):
    shortcut = course_zoo("shortcut")
    leaky = make_shortcut(900, seed=FRESH_SEED, leak=True)
    clean = clean_shortcut
    with_leak, without = accuracy(shortcut, leaky), accuracy(shortcut, clean)
    assert with_leak >= 0.97
    assert without <= with_leak - 0.30
    # without the leak it follows the marker, not the shape
    follows = (shortcut.logits(clean.images, 256).argmax(1) == clean.marker_labels).mean()
    assert follows > 0.8


def test_shapes_models_do_not_fall_for_the_marker(course_zoo, clean_shortcut):
    """The GAP model trained on plain shapes ignores the marker it never saw."""
    assert accuracy(course_zoo("gap"), clean_shortcut) >= 0.9


def test_gap_maps_cover_more_of_the_object_than_gmp_maps(course_zoo, fresh, gap_cam_by_hand):
    """The CAM paper's claim, as notebook 01 measures it: the region above a fraction of the
    map's maximum covers more of the object with GAP than with GMP (which marks a part)."""
    covered, iou = {}, {}
    for variant in ("gap", "gmp"):
        maps = gap_cam_by_hand if variant == "gap" else plain_cam(course_zoo(variant).model,
                                                                  fresh.images, fresh.labels)
        maps = np.maximum(maps, 0)
        top = maps.max(axis=(1, 2), keepdims=True)
        for t in (0.2, 0.5):
            region = maps >= t * top
            covered[variant, t] = ((region & fresh.masks).sum((1, 2)) / fresh.masks.sum((1, 2))).mean()
        iou[variant] = camutils.metrics.mask_iou(maps, fresh.masks, 0.5).mean()
    for t in (0.2, 0.5):
        assert covered["gap", t] > covered["gmp", t]
    assert covered["gmp", 0.5] < 0.5 < covered["gap", 0.5]
    assert iou["gap"] > iou["gmp"]


def test_gap_maps_of_two_classes_peak_on_their_own_objects(course_zoo):
    scenes = make_scenes(300, seed=FRESH_SEED, objects=2)
    model = course_zoo("gap").model
    both = np.ones(len(scenes), bool)
    for j in range(2):
        maps = plain_cam(model, scenes.images, scenes.labels[:, j])
        both &= camutils.metrics.pointing_game(maps, masks=scenes.masks[:, j], tolerance=0)
    assert both.mean() >= 0.8


def test_manifest_scores_are_what_the_shipped_weights_score(course_zoo, course_manifest):
    entry = course_manifest["models"]["gap"]
    data = make_shapes(entry["test_images"], seed=entry["test_seed"])
    gap = course_zoo("gap")
    maps = camutils.explain(gap.model, gap.normalize(data.images), "cam", target=data.labels,
                            layer=cm.CAM_LAYER, chunk_size=500).maps
    # oneDNN (training) and Eigen (tests) kernels round differently: a borderline image may flip
    tolerance = 2 / entry["test_images"]
    assert accuracy(gap, data) == pytest.approx(entry["test_accuracy"], abs=tolerance)
    hits = camutils.metrics.pointing_game(maps, masks=data.masks, tolerance=0)
    assert hits.mean() == pytest.approx(entry["pointing_game_cam"], abs=tolerance)


# ---------------------------------------------------------------------------- training
TINY = cm.TrainingConfig(epochs=1, images_per_epoch=48, batch_size=16)


def test_training_is_deterministic_and_retrain_uses_the_same_code(capsys):
    first, facts = cm.train_course_model("gap", TINY, progress=False, log=None)
    retrained = cm.load_course_model("gap", retrain=True, config=TINY, progress=False)
    assert "Retraining shapes_gap" in capsys.readouterr().out
    assert retrained.info["source"] == "retrained in this session"
    assert facts["config"]["epochs"] == 1
    for a, b in zip(first.get_weights(), retrained.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    other, _ = cm.train_course_model("gap", cm.with_config("gap", epochs=1, images_per_epoch=48,
                                                          batch_size=16, seed=1), progress=False, log=None)
    assert any(not np.array_equal(a, b) for a, b in zip(first.get_weights(), other.get_weights()))


def test_config_without_retrain_is_refused():
    with pytest.raises(ValueError, match="retrain=True"):
        cm.load_course_model("gap", config=TINY)


def _run_training_script(out: Path, entry: dict, *args: str, variant: str = "gap") -> dict:
    """Run tools/train_course_models.py for one variant as the shipped run did (oneDNN as
    recorded); the manifest entry it writes."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1" if entry["onednn"] else "0")
    subprocess.run([sys.executable, str(REPO / "tools" / "train_course_models.py"),
                    "--variants", variant, "--out", str(out), "--no-progress", *args],
                   check=True, cwd=REPO, env=env, timeout=3600)
    return json.loads((out / "course_models.json").read_text())["models"][variant]


def test_the_training_script_reproduces_the_shipped_run(tmp_path, course_manifest):
    """The script still trains the shipped model: shown on its first 96 batches.

    Training is deterministic (`test_training_is_deterministic_and_retrain_uses_the_same_code`),
    so a run is fixed by its code, configuration, data and seeds. The manifest keeps, beside
    the shipped run, a reference run of the same script (``reproduction``: the loss and
    accuracy after each of its 8 epochs, and its test accuracy, which matches the shipped
    model's; ``first_steps``: the loss and accuracy after the first 96 batches of the first
    epoch). Here the script trains those 96 batches (at the learning rates of the full
    schedule) and must land where the reference run was: the same configuration, the same
    training loss within 0.1 % (exactly on the same kind of machine). Other kernels round
    differently: with oneDNN off this project's CPU lands 0.023 % away, a quarter of the
    margin. A change moves it further: another initialisation seed by 2 %, another data seed
    or a learning rate of 0.0025 instead of 0.002 by 0.13-0.14 % (measured when this test was
    written). The full 8-epoch run is
    `test_retraining_with_the_script_reproduces_the_shipped_accuracy` (``pytest -m retrain``).
    """
    entry = course_manifest["models"]["gap"]
    reference = entry["reproduction"]
    # the reference run is a reproduction of the shipped one
    assert abs(reference["test_accuracy"] - entry["test_accuracy"]) <= 0.01
    assert len(reference["epochs"]) == entry["config"]["epochs"]
    expected = reference["first_steps"]
    again = _run_training_script(tmp_path, entry, "--steps-to-run", str(expected["steps"]))
    assert again["config"] == entry["config"]
    assert again["epochs_run"] == 1 and len(again["epochs"]) == 1
    first = again["epochs"][0]
    assert first["steps"] == expected["steps"]
    assert first["loss"] == pytest.approx(expected["loss"], rel=1e-3)
    assert first["accuracy"] == pytest.approx(expected["accuracy"], abs=0.01)


@pytest.mark.retrain
def test_retraining_with_the_script_reproduces_the_shipped_accuracy(tmp_path, course_manifest):
    """The whole run (about 80 s on an idle 2-core CPU, several minutes on a busy one): not
    part of `make test`, which runs the first-epoch check above; run it with
    ``pytest -m retrain``."""
    entry = course_manifest["models"]["gap"]
    again = _run_training_script(tmp_path, entry)
    assert abs(again["test_accuracy"] - entry["test_accuracy"]) <= 0.01
    assert again["test_seed"] == entry["test_seed"]


# The headline score of each task, and how far a full retraining on another CPU may land from
# the shipped run (on the same kind of machine the run is reproduced bit for bit).
RETRAIN_SCORES = {"multilabel": ("mean_f1", 0.01), "size": ("r2", 0.01),
                  "segmenter": ("mean_iou", 0.01), "detector": ("mean_ap_at_0.5", 0.01),
                  "vit": ("test_accuracy", 0.015)}


@pytest.mark.retrain
@pytest.mark.parametrize("variant", list(RETRAIN_SCORES))
def test_retraining_the_newer_models_reproduces_their_scores(variant, tmp_path, course_manifest):
    """Each model of notebooks 09 and 10 trained again in full by the script (5 to 20 minutes
    each on a busy 2-core CPU): the same configuration, a score within a point of the shipped
    one's, and the same first-epoch loss within a few percent (later epochs may drift apart
    where another CPU rounds differently)."""
    entry = course_manifest["models"][variant]
    again = _run_training_script(tmp_path, entry, variant=variant)
    assert again["config"] == entry["config"] and again["test_seed"] == entry["test_seed"]
    key, tolerance = RETRAIN_SCORES[variant]
    assert abs(again[key] - entry[key]) <= tolerance
    assert again["epochs"][0]["loss"] == pytest.approx(entry["epochs"][0]["loss"], rel=0.05)
