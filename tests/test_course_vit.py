"""The course ViT (issue 23): a standard structure whose token grid can be found from the
model, attention scores taken without rebuilding it, serialization of its custom layers,
and its accuracy against the GAP CNN's on the same images (its predictions with oneDNN on and
off: platform_tests/test_onednn.py)."""

import keras
import numpy as np
import pytest

import camutils
from camutils.course import models as cm
from camutils.course import vit
from camutils.course.shapes import SHAPE_CLASSES, make_shapes

FRESH_SEED = 626_262   # used by no training run and no other test


@pytest.fixture(scope="module")
def shipped():
    return camutils.load_model("shapes_vit")


@pytest.fixture(scope="module")
def fresh():
    return make_shapes(600, seed=FRESH_SEED)


def test_structure_gives_the_grid_and_the_prefix_tokens(shipped):
    model = shipped.model
    patches = model.get_layer("patch_embedding")
    step = vit.PATCH_SIZE // vit.STEM_STRIDE
    assert isinstance(patches, keras.layers.Conv2D) and patches.input is model.get_layer("block2_relu").output
    assert patches.kernel_size == patches.strides == (step, step)
    assert tuple(patches.input.shape[1:3]) == (64 // vit.STEM_STRIDE,) * 2
    grid = patches.output.shape[1:3]
    assert tuple(grid) == (64 // vit.PATCH_SIZE, 64 // vit.PATCH_SIZE) == (8, 8)
    tokens = vit.PREFIX_TOKENS + grid[0] * grid[1]
    blocks = vit.attention_layers(model)
    assert [b.name for b in blocks] == [f"encoder{i}_attention" for i in range(1, vit.DEPTH + 1)]
    for i in range(1, vit.DEPTH + 1):
        assert tuple(model.get_layer(f"encoder{i}_out").output.shape[1:]) == (tokens, vit.DIM)
        assert isinstance(model.get_layer(f"encoder{i}_norm1"), keras.layers.LayerNormalization)
    assert tuple(model.get_layer(shipped.cam_layer).output.shape[1:]) == (65, vit.DIM)
    assert isinstance(model.get_layer("class_token"), vit.ClassToken)
    assert keras.saving.get_registered_object("camutils>ClassToken") is vit.ClassToken
    assert keras.saving.get_registered_object("camutils>PositionEmbedding") is vit.PositionEmbedding
    assert model.output.shape[1:] == (len(SHAPE_CLASSES),) and model.count_params() < 250_000
    assert shipped.task == "classification" and shipped.class_names == list(SHAPE_CLASSES)


def test_the_class_token_comes_first_and_the_readout_reads_it():
    layer = vit.ClassToken()
    tokens = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    out = np.asarray(layer(tokens))
    assert out.shape == (2, 4, 4)
    np.testing.assert_array_equal(out[:, 1:], tokens)
    np.testing.assert_array_equal(out[:, 0], 0)      # starts at zero, learnt in training
    model = vit.build_vit(depth=1)
    readout = keras.Model(model.input, [model.get_layer("final_norm").output,
                                        model.get_layer("class_token_readout").output])
    normed, read = readout(np.random.default_rng(0).random((2, 64, 64, 3), np.float32))
    np.testing.assert_array_equal(np.asarray(read), np.asarray(normed)[:, 0])


def test_saved_model_loads_with_its_custom_layers(shipped, fresh, tmp_path):
    path = tmp_path / "vit.keras"
    shipped.model.save(path)
    again = keras.saving.load_model(path)
    inputs = shipped.normalize(fresh.images[:8])
    np.testing.assert_allclose(np.asarray(again(inputs)), np.asarray(shipped.model(inputs)),
                               atol=1e-6)
    assert keras.models.model_from_json(shipped.model.to_json()).count_params() == \
        shipped.model.count_params()


def test_attention_scores_without_rebuilding_the_model(shipped, fresh):
    """Each attention layer called again on its input gives its scores, and the same output
    as inside the model (so the scores are the ones the model used)."""
    model = shipped.model
    inputs = shipped.normalize(fresh.images[:6])
    scores = vit.attention_scores(model, inputs, batch_size=4)
    assert len(scores) == vit.DEPTH
    for s in scores:
        assert s.shape == (6, vit.HEADS, 65, 65) and s.dtype == np.float32
        np.testing.assert_allclose(s.sum(-1), 1.0, atol=1e-5)
        assert s.min() >= 0
    probe = keras.Model(model.input, [model.get_layer(f"encoder{i}_{part}").output
                                      for i in range(1, vit.DEPTH + 1)
                                      for part in ("norm1", "attention")])
    outputs = probe(inputs)
    for k, layer in enumerate(vit.attention_layers(model)):
        query, inside = outputs[2 * k], outputs[2 * k + 1]
        again, _ = layer(query, query, return_attention_scores=True)
        np.testing.assert_allclose(np.asarray(again), np.asarray(inside), atol=1e-5)


def test_vit_accuracy_is_close_to_the_gap_cnn_on_the_same_images(shipped, fresh):
    manifest = cm.read_manifest()["models"]
    vit_accuracy = (shipped.logits(fresh.images, 200).argmax(1) == fresh.labels).mean()
    gap = camutils.load_model("shapes_gap")
    gap_accuracy = (gap.logits(fresh.images, 200).argmax(1) == fresh.labels).mean()
    # 600 images: within 2 points of the 3000-image figure
    assert vit_accuracy == pytest.approx(manifest["vit"]["test_accuracy"], abs=0.02)
    assert manifest["vit"]["test_accuracy"] >= manifest["gap"]["test_accuracy"] - 0.03
    assert vit_accuracy >= gap_accuracy - 0.04
