"""The explorer, driven in plain Python: set widget values, click buttons, read what it shows.

Each control is checked by what it changes in the explorer's output (the overlay array, the
top-k list, the status line, the images sent to the browser), not only by the absence of an
exception. Tiny Keras models behind the zoo's `ZooModel` interface keep it quick; one test
uses EfficientNet-Lite0.
"""

from __future__ import annotations

import asyncio
import datetime
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

SIZE = (32, 32)


def _tiny_zoo(name: str, seed: int = 0, classes: int = 4, head: str = "gap", prefix="class"):
    from _models import gap_model

    from camutils.images import resize
    from camutils.zoo import ZooModel

    model = gap_model(size=SIZE, channels=(6, 8), classes=classes, seed=seed, head=head,
                      name=name)
    return ZooModel(
        name=name, model=model, input_size=SIZE,
        class_names=[f"{prefix}_{i}" for i in range(classes)], cam_layer="conv2",
        prepare=lambda batch: np.stack([resize(im, SIZE) for im in batch]),
        normalize=lambda seen: np.asarray(seen, np.float32) / 255.0,
    )


@pytest.fixture(scope="module")
def tiny():
    return _tiny_zoo("tiny", seed=0, classes=4)


@pytest.fixture(scope="module")
def other():
    return _tiny_zoo("other", seed=5, classes=3, head="flatten", prefix="kind")


def _images():
    rng = np.random.default_rng(0)
    stripes = np.zeros((40, 48, 3), np.uint8)
    stripes[:, ::6] = (250, 200, 30)
    return {"chelsea": "chelsea", "coffee": "coffee",
            "noise": rng.integers(0, 256, (36, 36, 3), dtype=np.uint8), "stripes": stripes}


def _explorer(models, **kwargs):
    from camutils.widgets import Explorer

    kwargs.setdefault("images", _images())
    kwargs.setdefault("debounce", 0)
    return Explorer(models=models, **kwargs)


@pytest.fixture
def explorer(tiny, other):
    return _explorer({"tiny": tiny, "other": other})


def _decode(png: bytes) -> np.ndarray:
    from camutils.widgets.render import decode_image

    return decode_image(png)


# ------------------------------------------------------------------------------ start


def test_starts_with_a_map_scores_and_a_ready_status(explorer, tiny):
    assert explorer.status_level == "ready", explorer.status
    assert "Grad-CAM" in explorer.status and "conv2" in explorer.status
    assert explorer.overlay_image.shape == (*SIZE, 3) and explorer.overlay_image.dtype == np.uint8
    assert explorer.compare_image is None
    # the top-k list is the model's softmax, best first
    inputs, _ = tiny.preprocess(explorer.original_image)
    logits = tiny.predict_inputs(inputs)[0].astype(np.float64)
    probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [i for i, _, _ in explorer.top_k] == np.argsort(-probabilities).tolist()
    np.testing.assert_allclose([p for _, _, p in explorer.top_k],
                               np.sort(probabilities)[::-1], rtol=1e-5)
    assert [n for _, n, _ in explorer.top_k] == [tiny.class_names[i] for i, _, _ in explorer.top_k]
    # what is sent to the browser is what the attributes say
    np.testing.assert_array_equal(_decode(explorer.overlay_view.value), explorer.overlay_image)
    np.testing.assert_array_equal(_decode(explorer.image_view.value), explorer.seen_image)
    for _, name, _ in explorer.top_k:
        assert name in explorer.top_k_html.value
    # the map is the library's map for the top class, blended at the slider's opacity
    from camutils import explain, overlay

    expected = explain(tiny.model, inputs, "gradcam", layer="conv2")
    assert int(explorer.explanation.class_index[0]) == explorer.top_k[0][0]
    np.testing.assert_allclose(explorer.explanation.maps, expected.maps, atol=1e-6)
    np.testing.assert_array_equal(
        explorer.overlay_image,
        overlay(explorer.seen_image, expected.maps[0], explorer.alpha_slider.value, "inferno"))


def test_the_explorer_displays_as_its_widget(explorer, caplog):
    displayed = []
    hooks = hasattr(explorer.image_view, "on_displayed")  # ipywidgets 7; 8 has none
    if hooks:
        explorer.image_view.on_displayed(lambda widget, **kwargs: displayed.append(widget))
    with caplog.at_level("WARNING"):
        bundle = explorer._repr_mimebundle_(include=None, exclude=None)  # as IPython calls it
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == explorer.widget.model_id
    # the on-displayed hooks ran down to the pictures, and none failed (ipywidgets logs a
    # failing hook outside IPython, and shows its traceback in a notebook)
    assert displayed == ([explorer.image_view] if hooks else [])
    assert not [r for r in caplog.records if "callback" in r.getMessage().lower()], caplog.text


def test_bad_arguments_say_what_to_pass(tiny):
    with pytest.raises(ValueError, match="Did you mean 'chelsea'"):
        _explorer({"tiny": tiny}, image="chelsa")
    with pytest.raises(ValueError, match="not among the explorer's models: tiny"):
        _explorer({"tiny": tiny}, model="vgg16")
    with pytest.raises(ValueError, match="Unknown method 'gradkam'"):
        _explorer({"tiny": tiny}, method="gradkam")
    with pytest.raises(TypeError, match="must be a ZooModel"):
        _explorer({"tiny": 42})


# ------------------------------------------------------------------------------ controls


def test_method_changes_the_map(explorer):
    before, count = explorer.overlay_image.copy(), explorer.explain_count
    explorer.method_select.value = "eigencam"
    assert explorer.explanation.method == "eigencam"
    assert "Eigen-CAM" in explorer.status and explorer.status_level == "ready"
    assert not np.array_equal(explorer.overlay_image, before)
    assert explorer.explain_count == count + 1
    assert "Eigen-CAM" in explorer.overlay_title.value
    # back to Grad-CAM: served from the cache, the same picture as before
    explorer.method_select.value = "gradcam"
    assert explorer.explain_count == count + 1
    assert "from the cache" in explorer.status
    np.testing.assert_array_equal(explorer.overlay_image, before)


def test_compare_shows_a_second_method_side_by_side(explorer):
    assert explorer._compare_panel.layout.display == "none"
    explorer.compare_select.value = "eigencam"
    assert explorer.compare_explanation.method == "eigencam"
    assert explorer.compare_image.shape == explorer.overlay_image.shape
    assert not np.array_equal(explorer.compare_image, explorer.overlay_image)
    np.testing.assert_array_equal(_decode(explorer.compare_view.value), explorer.compare_image)
    assert explorer._compare_panel.layout.display is None
    assert "Eigen-CAM" in explorer.compare_title.value
    explorer.compare_select.value = ""
    assert explorer.compare_image is None and explorer._compare_panel.layout.display == "none"


def test_opacity_reblends_without_recomputing(explorer):
    count, explanation = explorer.explain_count, explorer.explanation
    before = explorer.overlay_image.copy()
    explorer.alpha_slider.value = 0.9
    assert explorer.explain_count == count and explorer.explanation is explanation
    assert not np.array_equal(explorer.overlay_image, before)
    np.testing.assert_array_equal(_decode(explorer.overlay_view.value), explorer.overlay_image)
    explorer.alpha_slider.value = 0.0  # no map at all: the image as the network saw it
    np.testing.assert_array_equal(explorer.overlay_image, explorer.seen_image)
    assert explorer.explain_count == count


def test_inside_an_event_loop_opacity_is_debounced_and_reading_applies_it(tiny):
    """As in a kernel: slider events coalesce; the attributes still show the latest value."""
    renders = []

    async def drag():
        explorer = _explorer({"tiny": tiny}, debounce=0.05)
        original = explorer._render
        explorer._reblend.function = lambda: (renders.append(1), original())
        shown = explorer.overlay_view.value
        for alpha in (0.6, 0.7, 0.8, 0.9):
            explorer.alpha_slider.value = alpha
        assert explorer._reblend.pending and renders == []
        assert explorer.overlay_view.value == shown  # nothing redrawn during the drag
        await asyncio.sleep(0.3)
        assert renders == [1] and explorer.overlay_view.value != shown  # once, at the end
        explorer.alpha_slider.value = 0.0
        assert explorer._reblend.pending
        np.testing.assert_array_equal(explorer.overlay_image, explorer.seen_image)  # applied
        assert not explorer._reblend.pending and renders == [1, 1]

    asyncio.run(drag())


def test_colour_map_reblends_and_changes_the_colour_bar(explorer):
    from camutils.plot import colorize

    count, before, bar = explorer.explain_count, explorer.overlay_image.copy(), \
        explorer.colorbar_view.value
    explorer.cmap_select.value = "viridis"
    assert explorer.explain_count == count
    assert not np.array_equal(explorer.overlay_image, before)
    assert explorer.colorbar_view.value != bar
    top_of_bar = _decode(explorer.colorbar_view.value)[0, 0]
    np.testing.assert_array_equal(top_of_bar, colorize(np.ones((1, 1)), "viridis")[0, 0])


def test_layer_choices_are_the_spatial_layers_and_change_the_map(explorer, tiny):
    from camutils.methods.layers import spatial_layers

    assert list(explorer.layer_select.options) == spatial_layers(tiny.model)
    assert explorer.layer_select.value == tiny.cam_layer
    before = explorer.overlay_image.copy()
    explorer.layer_select.value = "conv1"
    assert explorer.explanation.layer == "conv1" and "conv1" in explorer.status
    assert not np.array_equal(explorer.overlay_image, before)


def test_class_dropdown_offers_the_top_k_and_explains_the_choice(explorer):
    values = [value for _, value in explorer.class_select.options]
    assert values[1:] == [index for index, _, _ in explorer.top_k]
    second_index, second_name, _ = explorer.top_k[1]
    before = explorer.overlay_image.copy()
    explorer.class_select.value = second_index
    assert int(explorer.explanation.class_index[0]) == second_index
    assert explorer.target == second_index
    assert f"'{second_name}'" in explorer.status
    assert not np.array_equal(explorer.overlay_image, before)
    assert f"<tr style=\"font-weight:bold\"><td style=\"padding:1px 6px\">{second_name}" \
        in explorer.top_k_html.value
    explorer.class_select.value = -1  # back to each image's top class
    assert explorer.target is None
    assert int(explorer.explanation.class_index[0]) == explorer.top_k[0][0]


def test_class_search_by_name_with_the_button(tiny):
    explorer = _explorer({"tiny": tiny}, top_k=2)
    outside = [i for i in range(4) if i not in {index for index, _, _ in explorer.top_k}][0]
    explorer.class_search.value = ""
    explorer.class_search.value = tiny.class_names[outside].upper().replace("_", " ")
    assert int(explorer.explanation.class_index[0]) == outside
    assert explorer.class_select.value == outside
    assert (f"{tiny.class_names[outside]} (chosen)", outside) in explorer.class_select.options
    # the button does the same for what is typed
    other = [i for i in range(4) if i != outside][0]
    explorer.class_search.options = ()  # the combobox holds the text only
    with explorer._hold():
        explorer.class_search.value = str(other)
    explorer.search_button.click()
    assert int(explorer.explanation.class_index[0]) == other


def test_unknown_class_keeps_the_map_and_suggests_names(explorer):
    before = explorer.overlay_image.copy()
    count = explorer.explain_count
    with explorer._hold():
        explorer.class_search.value = "clas_3"
    explorer.search_button.click()
    assert explorer.status_level == "error"
    assert "Class not found" in explorer.status and "'class_3'" in explorer.status
    np.testing.assert_array_equal(explorer.overlay_image, before)
    assert explorer.explain_count == count
    assert "camutils-status-error" in explorer.status_html.value


def test_chosen_class_is_kept_when_the_image_changes(explorer):
    chosen = explorer.top_k[-1][0]
    explorer.class_select.value = chosen
    top_before = list(explorer.top_k)
    explorer.image_select.value = "noise"
    assert explorer.top_k != top_before
    assert int(explorer.explanation.class_index[0]) == chosen
    assert explorer.class_select.value == chosen


def test_image_changes_the_scores_and_the_map(explorer):
    before_top, before_seen = list(explorer.top_k), explorer.seen_image.copy()
    before = explorer.overlay_image.copy()
    explorer.image_select.value = "stripes"
    assert explorer.top_k != before_top
    assert not np.array_equal(explorer.seen_image, before_seen)
    assert not np.array_equal(explorer.overlay_image, before)
    np.testing.assert_array_equal(_decode(explorer.image_view.value), explorer.seen_image)


def _upload(upload, name: str, content: bytes) -> None:
    """What the browser sends when a file is chosen, in the installed ipywidgets' protocol:
    8.x sets the value (a tuple of dicts); 7.x sends the files' metadata and bytes and bumps
    a counter, and the widget builds its read-only value from them."""
    import ipywidgets

    if ipywidgets.__version__.startswith("7."):
        metadata = {"name": name, "type": "image/png", "size": len(content), "lastModified": 0}
        upload.set_state({"metadata": [metadata], "data": [memoryview(content)],
                          "_counter": upload._counter + 1})
    else:
        upload.value = ({"name": name, "type": "image/png", "size": len(content),
                         "content": memoryview(content),
                         "last_modified": datetime.datetime(2024, 1, 1,
                                                            tzinfo=datetime.timezone.utc)},)


def test_uploaded_image_is_added_and_shown(explorer):
    from camutils.widgets import png_bytes

    red = np.zeros((50, 70, 3), np.uint8)
    red[..., 0] = 255
    _upload(explorer.upload, "red.png", png_bytes(red))
    assert explorer.image_select.value == "upload: red.png"
    assert np.all(explorer.seen_image == (255, 0, 0))
    assert explorer.status_level == "ready"
    assert len(explorer.upload.value) == 0  # ready for the next file
    # the same name again gets a label of its own
    _upload(explorer.upload, "red.png", png_bytes(red[:, :, ::-1]))
    assert explorer.image_select.value == "upload: red.png (2)"
    assert np.all(explorer.seen_image == (0, 0, 255))


def test_a_file_that_is_not_an_image_reports_its_name(explorer):
    before = explorer.image_select.value
    _upload(explorer.upload, "notes.txt", b"not an image at all")
    assert explorer.status_level == "error"
    assert "Upload failed" in explorer.status and "'notes.txt'" in explorer.status
    assert explorer.image_select.value == before


def test_model_switch_changes_classes_layers_and_scores(explorer, other):
    explorer.model_select.value = "other"
    assert explorer.zoo_model is other
    assert {name for _, name, _ in explorer.top_k} == set(other.class_names)
    assert explorer.layer_select.value == other.cam_layer
    assert explorer.status_level == "ready"
    # CAM is undefined on a Flatten head: the error is shown, not raised
    explorer.method_select.value = "cam"
    assert explorer.status_level == "error" and "CAM failed" in explorer.status
    assert "gradcam" in explorer.status
    assert explorer.overlay_image is None
    blank = _decode(explorer.overlay_view.value)
    assert blank.shape == (*SIZE, 3) and len(np.unique(blank)) == 1
    explorer.model_select.value = "tiny"  # CAM applies to the GAP model
    assert explorer.status_level == "ready" and explorer.explanation.method == "cam"


def test_a_model_that_cannot_load_shows_its_message(tiny):
    from camutils.zoo.keras_apps import WeightsUnavailableError

    def offline():
        raise WeightsUnavailableError("The model 'big' needs the network once, to download its "
                                      "weights. Pre-fetch them while online.")

    explorer = _explorer({"tiny": tiny, "big": offline})
    explorer.model_select.value = "big"
    assert explorer.status_level == "error"
    assert "Model 'big' is not available" in explorer.status
    assert "Pre-fetch them while online" in explorer.status
    assert explorer.zoo_model is None and explorer.overlay_image is None
    assert explorer.top_k_html.value == "<i>no scores yet</i>"
    explorer.method_select.value = "eigencam"  # nothing to explain: still no crash
    assert explorer.status_level == "error"
    explorer.model_select.value = "tiny"
    assert explorer.status_level == "ready" and explorer.explanation.method == "eigencam"


def test_zoo_lists_offline_models_unless_asked(monkeypatch):
    from camutils.widgets.explorer import Explorer
    from camutils.zoo import list_models

    loaders, _ = Explorer._model_loaders(None, False, None)
    assert list(loaders) == list(list_models(offline_only=True))
    assert "vgg16" not in loaders
    loaders, labels = Explorer._model_loaders(None, True, None)
    assert "vgg16" in loaders and labels["vgg16"] == " (online only)"


def test_slow_methods_show_progress_and_use_the_most_active_channels(tiny):
    explorer = _explorer({"tiny": tiny}, scorecam_channels=3)
    seen = {}
    real = explorer._explain_function

    def spy(*args, **kwargs):
        seen.update(kwargs, visibility=explorer.progress.layout.visibility,
                    level=explorer.status_level, status=explorer.status)
        return real(*args, **kwargs)

    explorer._explain_function = spy
    explorer.method_select.value = "scorecam"
    assert seen["visibility"] == "visible" and seen["level"] == "busy"
    assert "Score-CAM on the 3 most active channels" in seen["status"]
    assert seen["max_channels"] == 3 and seen["progress"] is False  # no kernel: no widget bar
    assert explorer.progress.layout.visibility == "hidden"
    assert explorer.status_level == "ready" and explorer.explanation.method == "scorecam"
    seen.clear()
    explorer.method_select.value = "hirescam"  # a one-pass method: no progress indicator
    assert seen["visibility"] == "hidden" and "max_channels" not in seen


def test_the_channel_option_follows_the_method_row_not_its_name(tiny, monkeypatch):
    import dataclasses

    from camutils.methods import registry

    row = dataclasses.replace(registry.method_info("scorecam"), name="scorecam_twin",
                              label="Score-CAM twin", aliases=(), function_name="")
    monkeypatch.setattr(registry, "METHOD_TABLE", [*registry.METHOD_TABLE, row])
    explorer = _explorer({"tiny": tiny}, scorecam_channels=3)
    seen = {}
    real = explorer._explain_function
    explorer._explain_function = lambda *a, **k: seen.update(k) or real(*a, **k)
    explorer.method_select.value = "scorecam_twin"
    assert seen["max_channels"] == 3 and explorer.explanation.method == "scorecam_twin"
    seen.clear()
    explorer.method_select.value = "ablationcam"  # per channel, but no such option
    assert "max_channels" not in seen and explorer.status_level == "ready"


def test_course_task_models_offer_their_labels_and_classes(course_zoo):
    """The multi-label model's labels and the segmenter's classes are the class choices;
    each explains its natural target (a label; the predicted region of the class), and the
    region's map peaks on that object."""
    import camutils
    from camutils.course.shapes import SHAPE_CLASSES

    scenes = camutils.make_scenes(1, seed=3, objects=3)
    explorer = _explorer({"multilabel": course_zoo("multilabel"),
                          "segmenter": course_zoo("segmenter")},
                         images={"scene": scenes.images[0]})
    present = [int(c) for c in scenes.labels[0]]
    offered = {value for _, value in explorer.class_select.options}
    assert set(present) <= offered  # the labels present, by probability
    explorer.class_select.value = present[1]
    assert explorer.explanation.target == f"Label({present[1]})"
    explorer.model_select.value = "segmenter"
    assert {value for _, value in explorer.class_select.options} >= set(present)
    for slot, label in enumerate(present):
        explorer.show_class(SHAPE_CLASSES[label])
        e = explorer.explanation
        assert e.target.startswith(f"Region({label}") and explorer.status_level == "ready"
        peak = np.unravel_index(e.maps[0].argmax(), e.maps[0].shape)
        assert scenes.masks[0, slot][peak], SHAPE_CLASSES[label]


def test_explorer_on_efficientnet_lite0_explains_the_cat(lite0, monkeypatch):
    from camutils.widgets import Explorer, explorer as explorer_module
    from camutils.zoo import imagenet

    # the zoo's model, loaded once for the session (the explorer shares its loads the same way)
    monkeypatch.setitem(explorer_module._SHARED_MODELS, "efficientnet_lite0", lite0)
    explorer = Explorer(model="efficientnet_lite0", image="chelsea", debounce=0)
    assert explorer.status_level == "ready", explorer.status
    cats = {imagenet.class_index(n) for n in ("tabby", "tiger_cat", "Egyptian_cat")}
    assert explorer.top_k[0][0] in cats
    assert explorer.overlay_image.shape == (224, 224, 3)
    assert explorer.layer_select.value == "head_relu6"
    assert "vgg16" not in explorer.model_select.options
    assert explorer.show_class("tabby cat")
    assert int(explorer.explanation.class_index[0]) == imagenet.class_index("tabby")
    assert not explorer.show_class("cat")
    assert "tabby" in explorer.status and "tiger_cat" in explorer.status


def test_online_only_zoo_model_chosen_offline_shows_the_zoo_message(tmp_path, monkeypatch):
    """Offline by construction, whatever this machine has cached or can reach: the Keras
    weights cache is an empty folder, and the probe of the weights' host fails."""
    from camutils.zoo import keras_apps
    from camutils.widgets import Explorer

    monkeypatch.setattr(keras_apps, "_keras_cache_dir", lambda: tmp_path)
    monkeypatch.setattr(keras_apps, "check_reachable",
                        lambda url, timeout=3.0: "no network here (simulated)")
    assert not keras_apps.weights_are_cached("vgg16")
    explorer = Explorer(include_online=True, image="chelsea", debounce=0)  # Lite0 is shared
    assert explorer.status_level == "ready"
    assert ("vgg16 (online only)", "vgg16") in explorer.model_select.options
    explorer.model_select.value = "vgg16"
    assert explorer.status_level != "ready"
    assert "Model 'vgg16' is not available" in explorer.status
    assert "needs the network once" in explorer.status and "efficientnet_lite0" in explorer.status
    assert "no network here (simulated)" in explorer.status
    assert explorer.overlay_image is None and explorer.layer_select.options == ()
    assert list(tmp_path.iterdir()) == []  # nothing was downloaded


# ------------------------------------------------------------------------------ pieces


def test_default_images_are_the_samples_and_drawable_shapes():
    from camutils.course.shapes import SHAPE_CLASSES
    from camutils.images import load_image
    from camutils.samples import sample_names
    from camutils.widgets import default_images

    images = default_images()
    assert [s for s in images.values() if isinstance(s, str)] == sample_names()
    shapes = {label: source for label, source in images.items() if callable(source)}
    assert [label.split(": ")[1] for label in shapes][:3] == list(SHAPE_CLASSES[:3])
    assert [label.split(": ")[1] for label in shapes][3:] == ["scene 3", "scene 8"]
    drawn = [load_image(source()) for source in shapes.values()]
    assert all(image.ndim == 3 and image.dtype == np.uint8 for image in drawn)
    assert not np.array_equal(drawn[0], drawn[1])


def test_debouncer_calls_once_after_a_burst_inside_an_event_loop():
    from camutils.widgets import Debouncer

    calls = []
    debounce = Debouncer(lambda: calls.append(len(calls)), delay=0.05)

    async def burst():
        for _ in range(5):
            debounce()
        assert debounce.pending and calls == []
        await asyncio.sleep(0.2)
        assert not debounce.pending
        debounce()
        debounce.flush()  # made at once, and not again later
        await asyncio.sleep(0.1)

    asyncio.run(burst())
    assert calls == [0, 1]


def test_debouncer_without_an_event_loop_calls_at_once():
    from camutils.widgets import Debouncer

    calls = []
    debounce = Debouncer(lambda: calls.append(1), delay=10.0)
    debounce()
    debounce()
    assert calls == [1, 1] and not debounce.pending
    with pytest.raises(ValueError, match="at least 0"):
        Debouncer(lambda: None, delay=-1)


def test_lru_cache_keeps_the_most_recently_used():
    from camutils.widgets import LRUCache

    cache, made = LRUCache(2), []

    def make(key):
        return lambda: made.append(key) or key * 10

    assert cache.get_or_compute(1, make(1)) == 10
    assert cache.get_or_compute(2, make(2)) == 20
    assert cache.get_or_compute(1, make(1)) == 10  # a hit: 1 is now the most recent
    cache.get_or_compute(3, make(3))  # evicts 2, the least recently used
    assert 1 in cache and 3 in cache and 2 not in cache and len(cache) == 2
    assert made == [1, 2, 3]
    with pytest.raises(ValueError, match="capacity"):
        LRUCache(0)


def test_colour_bar_runs_from_one_at_the_top_to_zero_at_the_bottom():
    from camutils.plot import colorize
    from camutils.widgets import colorbar_image

    bar = colorbar_image("magma", height=100, bar_width=10, label_width=30)
    assert bar.shape == (100, 40, 3) and bar.dtype == np.uint8
    np.testing.assert_array_equal(bar[0, :10], np.repeat(colorize(np.ones((1, 1)), "magma")[0], 10, 0))
    np.testing.assert_array_equal(bar[-1, :10], np.repeat(colorize(np.zeros((1, 1)), "magma")[0], 10, 0))
    assert (bar[:, 10:] < 128).any()  # tick labels are drawn
    with pytest.raises(ValueError, match="Unknown colour map"):
        colorbar_image("not-a-map")


def test_top_k_table_and_status_line_escape_text():
    from camutils.widgets import top_k_html
    from camutils.widgets.render import status_html

    table = top_k_html([(3, "<b>cat</b>", 0.75), (1, "dog", 0.25)], target=1)
    assert "&lt;b&gt;cat&lt;/b&gt;" in table and "75.0%" in table and "25.0%" in table
    assert table.index("font-weight:bold") > table.index("cat")  # the target row is dog
    assert "Pre & post" not in status_html("Pre & post", "ready")
    assert "Pre &amp; post" in status_html("Pre & post", "error")
    with pytest.raises(ValueError, match="Unknown status level"):
        status_html("x", "fine")


def test_decode_image_reads_png_and_rejects_other_bytes():
    from camutils.widgets import png_bytes
    from camutils.widgets.render import decode_image

    image = np.random.default_rng(1).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(png_bytes(image)), image)
    with pytest.raises(ValueError, match="Cannot read 'x.bin' as an image"):
        decode_image(b"\x00\x01", "'x.bin'")


def test_find_class_understands_imagenet_lemmas_indices_and_suggests():
    from camutils.zoo import imagenet
    from camutils.widgets import find_class

    names = imagenet.class_names()
    assert find_class("tabby cat", names) == imagenet.class_index("tabby")
    assert find_class("  281 ", names) == 281
    with pytest.raises(ValueError, match="contain it: .*tabby"):
        find_class("cat", names)
    with pytest.raises(ValueError, match="out of range"):
        find_class("1000", names)
    small = ["circle", "square", "tri_angle"]
    assert find_class("Tri angle", small) == 2
    with pytest.raises(ValueError, match="Did you mean 'square'"):
        find_class("squre", small)
    with pytest.raises(ValueError, match="Type a class name"):
        find_class("  ", small)


def test_the_course_vit_is_offered_with_its_token_layers_and_rollout():
    """The zoo's course ViT in the explorer: its token layers in the layer menu (the zoo's
    default chosen), a Grad-CAM map on the 8 x 8 token grid, and attention rollout."""
    from camutils.widgets import Explorer, explorer as explorer_module

    assert "shapes_vit" in Explorer._model_loaders(None, False, None)[0]
    explorer = Explorer(model="shapes_vit", image="shapes world: circle", debounce=0)
    assert explorer.status_level == "ready", explorer.status
    assert {"patch_tokens", "encoder4_norm1", "block2_relu"} <= set(explorer.layer_select.options)
    assert explorer.layer_select.value == explorer.zoo_model.cam_layer
    assert explorer.explanation.raw.shape[1:] == (8, 8)
    assert explorer.top_k[0][1] == "circle"
    explorer.method_select.value = "rollout"
    assert explorer.status_level == "ready", explorer.status
    assert explorer.explanation.layer == "attention" and "from the attention layers" in explorer.status
    explorer_module._SHARED_MODELS.pop("shapes_vit", None)
