"""The CAM explorer: an ipywidgets app over `camutils.explain` and the model zoo.

    explorer = camutils.widgets.Explorer()          # EfficientNet-Lite0 on the sample photos
    explorer                                         # shows it in JupyterLab, Binder or Colab

Its state changes only through its widgets' values (``explorer.method_select.value =
"scorecam"`` does what choosing Score-CAM in the browser does), and what it shows is readable
as attributes, so the whole app is tested in plain Python:

    overlay_image        the blended map, RGB uint8 at the model's input size (None on error)
    compare_image        the same for the second method (None when no comparison is asked)
    seen_image           the image as the network saw it (after crop and resize)
    top_k                [(class index, name, value), ...]: what the model predicts for the
                         current image (probabilities; for a segmenter the classes' shares
                         of the pixels, for a detector its detections, for a regression
                         model its values: `camutils.course.tasks.predictions`)
    target               the class (label) explained, or None for the default; what it
                         explains follows the model's task (`camutils.course.tasks`: a
                         label, a predicted region, the strongest detection of the class)
    explanation          the current `camutils.Explanation` (compare_explanation for the other)
    status, status_level the status line and "ready", "busy" or "error"

Responsiveness: zoo models are loaded once per name (shared by every explorer in the
process), camutils caches the compiled explainer per model and layer, and explanations are
kept in a small LRU cache, so going back to an earlier choice costs nothing. Opacity and
colour map only re-blend the cached map, debounced. Score-CAM and Ablation-CAM show a
progress indicator and a progress bar while they run. Only core ipywidgets are used (no
front-end extension), so it works wherever ipywidgets does.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, Callable, Mapping

import numpy as np

from .classes import find_class
from .compat import clear_upload, uploaded_files, widget_mimebundle
from .render import blank_image, colorbar_image, decode_image, png_bytes, status_html, top_k_html
from .timing import Debouncer, LRUCache

__all__ = ["Explorer", "COLOUR_MAPS", "method_labels", "slow_methods", "default_images",
           "shared_zoo_model"]

#: Colour maps offered: perceptually uniform first; jet last, for comparison only.
COLOUR_MAPS = ("inferno", "viridis", "magma", "plasma", "cividis", "jet")


def method_labels() -> dict[str, str]:
    """Each method's label by its canonical name, from the method table (the menu's order)."""
    from ..methods.registry import method_table

    return {m.name: m.label for m in method_table()}


def slow_methods() -> frozenset[str]:
    """Methods that run one pass per channel (the table's "per channel" cost): they get a
    progress indicator, and Score-CAM uses only the most active channels
    (``scorecam_channels``)."""
    from ..methods.registry import method_table

    return frozenset(m.name for m in method_table() if m.cost == "per channel")


_TOP_CLASS = -1  # the class dropdown's value for "each image's top class"
_NO_COMPARISON = ""

_SHARED_MODELS: dict[str, Any] = {}


def shared_zoo_model(name: str):
    """`camutils.zoo.load_model(name)`, loaded once per process and shared by explorers."""
    from ..zoo import load_model

    if name not in _SHARED_MODELS:
        _SHARED_MODELS[name] = load_model(name)
    return _SHARED_MODELS[name]


def default_images() -> dict[str, Any]:
    """The explorer's image choices: the offline sample photos and a few shapes-world images.

    Returns ``{label: source}`` where a source is a sample name or a function returning an
    RGB uint8 array (the shapes images are drawn on first use).
    """
    from ..course.shapes import SHAPE_CLASSES
    from ..samples import SAMPLES

    images: dict[str, Any] = {f"{name} ({s.description})": name for name, s in SAMPLES.items()}
    for index, shape in enumerate(SHAPE_CLASSES[:3]):
        images[f"shapes world: {shape}"] = _shape_image(index, seed=7 + index)
    for seed in (3, 8):  # scenes of several shapes, for the multi-label model, the segmenter
        images[f"shapes world: scene {seed}"] = _scene_image(seed)  # and the detector
    return images


def _scene_image(seed: int) -> Callable[[], np.ndarray]:
    def draw():
        from ..course.shapes import make_scenes

        return make_scenes(1, seed=seed, objects=3).images[0]

    return draw


def _shape_image(label: int, seed: int) -> Callable[[], np.ndarray]:
    def draw():
        from ..course.shapes import make_shapes

        return make_shapes(1, seed=seed, classes=[label]).images[0]

    return draw


def _in_kernel() -> bool:
    """Whether we run inside a Jupyter kernel (where tqdm draws a widget progress bar)."""
    shell = sys.modules.get("IPython") and sys.modules["IPython"].get_ipython()
    return bool(shell is not None and getattr(shell, "kernel", None) is not None)


def _message(error: BaseException) -> str:
    """An exception as one readable line (its type only when its message is empty)."""
    text = str(error).strip().strip("'\"") if str(error).strip() else type(error).__name__
    return " ".join(text.split())


class Explorer:
    """An interactive CAM explorer (image, model, method, class, layer, opacity, colour map).

    Args:
        model: the zoo name of the first model shown, or a `camutils.zoo.ZooModel`
            (default: the first of ``models``, EfficientNet-Lite0 for the zoo).
        image: the label or source name of the first image (e.g. ``"chelsea"``).
        method: the first method (any name `camutils.explain` accepts).
        models: the models to choose from: None (the zoo: offline models, plus the
            online-only ones with ``include_online``), or a mapping ``name -> ZooModel`` or
            ``name -> function returning a ZooModel`` (loaded on first choice), or a list of
            zoo names and ZooModels.
        include_online: with ``models=None``, also list the zoo's online-only models; chosen
            on an offline machine they show the zoo's message instead of a map.
        images: ``{label: source}``, a source being a sample name, a path, an RGB array or a
            function returning one (default: `default_images`). Uploaded files are added.
        compare: a second method shown side by side (None: no comparison).
        alpha: the opacity of the map over the image, in [0, 1].
        cmap: the colour map (see `COLOUR_MAPS`; any matplotlib name works).
        top_k: how many classes the score table lists.
        scorecam_channels: Score-CAM uses this many of the most active channels (None: all;
            all 1280 of EfficientNet-Lite0 take about a minute on a laptop CPU).
        debounce: seconds to wait after the last opacity or colour-map event before
            re-blending (inside a kernel; elsewhere the update is immediate).
        display_width: width in pixels of each picture in the browser.
    """

    def __init__(self, model=None, image: str | None = None, method: str = "gradcam", *,
                 models=None, include_online: bool = False, images: Mapping | None = None,
                 compare: str | None = None, alpha: float = 0.5, cmap: str = "inferno",
                 top_k: int = 5, scorecam_channels: int | None = 64, debounce: float = 0.15,
                 display_width: int = 256):
        from ..checks import positive_int
        from ..methods import canonical_name
        from ..methods import explain as explain_function
        from ..plot import overlay

        top_k = positive_int(top_k, "top_k")
        scorecam_channels = positive_int(scorecam_channels, "scorecam_channels", none=True)
        display_width = positive_int(display_width, "display_width")
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {alpha}.")
        self._overlay = overlay
        self._explain_function = explain_function
        self.top_k_count = int(top_k)
        self.scorecam_channels = scorecam_channels
        self.display_width = int(display_width)

        self._loaders, descriptions = self._model_loaders(models, include_online, model)
        self._sources: dict[str, Any] = dict(default_images() if images is None else images)
        if not self._sources:
            raise ValueError("The explorer needs at least one image: pass images={label: source}.")
        self._start_state()

        first_model = model.name if hasattr(model, "model") else model
        if first_model is None:
            first_model = next(iter(self._loaders))
        if first_model not in self._loaders:
            raise ValueError(f"Model {first_model!r} is not among the explorer's models: "
                             f"{', '.join(self._loaders)}.")
        method = canonical_name(method)
        compare = _NO_COMPARISON if compare is None else canonical_name(compare)
        first_image = self._image_label(image) if image is not None else next(iter(self._sources))

        self._build_controls(first_image, first_model, descriptions, method, compare, alpha, cmap)
        self._build_views()
        self.widget = self._layout()
        self._wire_callbacks(debounce)
        self._load_model()

    # ------------------------------------------------------------------ building the app

    def _start_state(self) -> None:
        """The caches, and what is shown (readable in Python), before anything is loaded."""
        self._image_cache: dict[str, np.ndarray] = {}
        self._inputs_cache = LRUCache(16)   # (model, image) -> (inputs, seen, rows, outputs)
        self._explanations = LRUCache(48)   # (model, image, method, target, layer) -> Explanation
        self._layers: dict[str, list[str]] = {}
        self._colorbars: dict[str, bytes] = {}
        self._holding = 0
        self._chosen_class: int | None = None   # a class picked by search, kept across images
        self.explain_count = 0                  # explanations computed (cache misses)

        # what is shown, readable in Python
        self.zoo_model = None
        self.original_image: np.ndarray | None = None
        self.seen_image: np.ndarray | None = None
        self.inputs: np.ndarray | None = None
        self.top_k: list[tuple[int, str, float]] = []
        self.outputs: np.ndarray | None = None  # the model's outputs for the current image
        self.explanation = None
        self.compare_explanation = None
        self._overlay_image: np.ndarray | None = None
        self._compare_image: np.ndarray | None = None
        self.status = ""
        self.status_level = "ready"
        self.last_seconds = 0.0

    def _build_controls(self, first_image: str, first_model: str, descriptions: dict,
                        method: str, compare: str, alpha: float, cmap: str) -> None:
        """The controls: image, upload, model, method, comparison, class, layer, opacity,
        colour map, and the progress bar."""
        import ipywidgets as w

        wide = w.Layout(width="300px")
        self.image_select = w.Dropdown(options=list(self._sources), value=first_image,
                                       description="Image", layout=wide)
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="Upload")
        self.model_select = w.Dropdown(
            options=[(f"{name}{descriptions.get(name, '')}", name) for name in self._loaders],
            value=first_model, description="Model", layout=wide)
        method_options = [(label, name) for name, label in method_labels().items()]
        self.method_select = w.Dropdown(options=method_options, value=method,
                                        description="Method")
        self.compare_select = w.Dropdown(options=[("(none)", _NO_COMPARISON)] + method_options,
                                         value=compare, description="Compare")
        self.class_select = w.Dropdown(options=[("top class", _TOP_CLASS)], value=_TOP_CLASS,
                                       description="Class", layout=wide)
        self.class_search = w.Combobox(placeholder="any class by name, e.g. tabby",
                                       ensure_option=False, continuous_update=False,
                                       description="Find class", layout=wide)
        self.search_button = w.Button(description="Show class", icon="search",
                                      tooltip="Explain the class named in 'Find class'")
        self.layer_select = w.Dropdown(options=[], description="Layer", layout=wide)
        self.alpha_slider = w.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05,
                                          description="Opacity", readout_format=".2f")
        self.cmap_select = w.Dropdown(options=_with(COLOUR_MAPS, cmap), value=cmap,
                                      description="Colours")
        self.progress = w.IntProgress(value=0, min=0, max=1, description="Working",
                                      bar_style="info",
                                      layout=w.Layout(visibility="hidden", width="300px"))

    def _build_views(self) -> None:
        """What is shown: the pictures, their titles, the colour bar, the scores, the status
        line and the log; each picture has a CSS class that the browser test finds it by."""
        import ipywidgets as w

        self.status_html = w.HTML()
        self.log = w.Output(layout=w.Layout(max_height="60px"))
        size = dict(width=self.display_width)
        self.image_view = w.Image(format="png", **size)
        self.overlay_view = w.Image(format="png", **size)
        self.compare_view = w.Image(format="png", **size)
        self.colorbar_view = w.Image(format="png")
        self.overlay_title = w.HTML()
        self.compare_title = w.HTML()
        self.top_k_html = w.HTML()
        for widget, css in [(self.image_view, "camutils-image"),
                            (self.overlay_view, "camutils-overlay"),
                            (self.compare_view, "camutils-compare"),
                            (self.method_select, "camutils-method"),
                            (self.compare_select, "camutils-compare-method"),
                            (self.status_html, "camutils-status-line")]:
            widget.add_class(css)

    def _layout(self):
        """The controls in rows above the pictures, in one box (what a notebook displays)."""
        import ipywidgets as w

        self._compare_panel = w.VBox([self.compare_title, self.compare_view])
        pictures = w.HBox([
            w.VBox([w.HTML("<b>What the network sees</b>"), self.image_view]),
            w.VBox([self.overlay_title, self.overlay_view]),
            w.VBox([w.HTML("&nbsp;"), self.colorbar_view]),
            self._compare_panel,
            w.VBox([w.HTML("<b>Top classes</b>"), self.top_k_html]),
        ])
        app = w.VBox([
            w.HBox([self.image_select, self.upload]),
            w.HBox([self.model_select, self.layer_select]),
            w.HBox([self.method_select, self.compare_select]),
            w.HBox([self.class_select, self.class_search, self.search_button]),
            w.HBox([self.alpha_slider, self.cmap_select]),
            w.HBox([self.status_html, self.progress]),
            self.log,
            pictures,
        ])
        app.add_class("camutils-explorer")
        return app

    def _wire_callbacks(self, debounce: float) -> None:
        """Each control to what it recomputes (the event handlers below)."""
        self._reblend = Debouncer(self._render, debounce)
        self.image_select.observe(self._on_image, "value")
        self.upload.observe(self._on_upload, "value")
        self.model_select.observe(self._on_model, "value")
        self.method_select.observe(self._on_explanation_change, "value")
        self.compare_select.observe(self._on_explanation_change, "value")
        self.layer_select.observe(self._on_explanation_change, "value")
        self.class_select.observe(self._on_class, "value")
        self.class_search.observe(self._on_search, "value")
        self.search_button.on_click(lambda _: self.show_class(self.class_search.value))
        self.alpha_slider.observe(lambda _: self._reblend(), "value")
        self.cmap_select.observe(lambda _: self._reblend(), "value")

    # ------------------------------------------------------------------ display and helpers

    def _repr_mimebundle_(self, **kwargs):
        return widget_mimebundle(self.widget, **kwargs)

    def __repr__(self) -> str:
        return (f"Explorer(model={self.model_select.value!r}, image={self.image_select.value!r}, "
                f"method={self.method_select.value!r}, status={self.status!r})")

    @contextlib.contextmanager
    def _hold(self):
        """Change several widgets without each change triggering a recomputation."""
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1

    def _set_status(self, message: str, level: str) -> None:
        self.status, self.status_level = message, level
        self.status_html.value = status_html(message, level)

    def _fail(self, context: str, error: BaseException) -> None:
        self._set_status(f"{context}: {_message(error)}", "error")

    @staticmethod
    def _model_loaders(models, include_online: bool, first) -> tuple[dict, dict]:
        """``({name: loader}, {name: ' - description'})`` from the ``models`` argument."""
        from ..zoo import list_models

        loaders: dict[str, Callable[[], Any]] = {}
        descriptions: dict[str, str] = {}
        if models is None:
            offline = list_models(offline_only=True)
            for name, description in list_models(offline_only=not include_online).items():
                loaders[name] = (lambda n=name: shared_zoo_model(n))
                if name not in offline:
                    descriptions[name] = " (online only)"
        else:
            items = models.items() if isinstance(models, Mapping) else [
                (m.name if hasattr(m, "model") else m, m) for m in models]
            for name, entry in items:
                if hasattr(entry, "model"):
                    loaders[name] = (lambda e=entry: e)
                elif callable(entry):
                    loaders[name] = entry
                elif isinstance(entry, str):
                    loaders[name] = (lambda n=entry: shared_zoo_model(n))
                else:
                    raise TypeError(f"models[{name!r}] must be a ZooModel, a function returning "
                                    f"one, or a zoo name; got {type(entry).__name__}.")
        if hasattr(first, "model"):  # the model object given wins over loading it by name
            loaders = {first.name: (lambda e=first: e),
                       **{n: f for n, f in loaders.items() if n != first.name}}
        if not loaders:
            raise ValueError("The explorer needs at least one model: pass models=[...].")
        return loaders, descriptions

    def _image_label(self, image: str) -> str:
        if image in self._sources:
            return image
        for label, source in self._sources.items():
            if isinstance(source, str) and source == image:
                return label
        from ..suggestions import did_you_mean

        raise ValueError(f"No image {image!r} in the explorer."
                         f"{did_you_mean(image, list(self._sources), cutoff=0.3)}")

    def _image(self, label: str) -> np.ndarray:
        if label not in self._image_cache:
            from ..images import load_image

            source = self._sources[label]
            self._image_cache[label] = load_image(source() if callable(source) else source)
        return self._image_cache[label]

    def add_image(self, label: str, image) -> str:
        """Add an image (array, path or sample name) to the choices and show it.

        A label already in use gets a number (``"upload: cat.png (2)"``); the label used is
        returned.
        """
        from ..images import load_image

        array = load_image(image)
        unique, count = label, 1
        while unique in self._sources:
            count += 1
            unique = f"{label} ({count})"
        self._sources[unique] = array
        self._image_cache[unique] = array
        with self._hold():
            self.image_select.options = list(self._sources)
        self.image_select.value = unique
        return unique

    # ------------------------------------------------------------------ event handlers

    def _on_model(self, _change) -> None:
        if not self._holding:
            self._load_model()

    def _on_image(self, _change) -> None:
        if not self._holding:
            self._update_image()

    def _on_explanation_change(self, _change) -> None:
        if not self._holding:
            self._update_explanation()

    def _on_class(self, change) -> None:
        if self._holding:
            return
        value = change["new"] if change is not None else self.class_select.value
        self._chosen_class = None if value == _TOP_CLASS else int(value)
        self._update_explanation()

    def _on_search(self, change) -> None:
        if not self._holding and change["new"].strip():
            self.show_class(change["new"])

    def _on_upload(self, change) -> None:
        if self._holding or not change["new"]:
            return
        files = uploaded_files(change["new"])
        with self._hold():
            clear_upload(self.upload)
        for name, content in files:
            try:
                array = decode_image(content, repr(name))
            except ValueError as error:
                self._fail("Upload failed", error)
                return
            self.add_image(f"upload: {name}", array)

    # ------------------------------------------------------------------ the pipeline

    def _load_model(self) -> None:
        from ..methods.layers import spatial_layers

        name = self.model_select.value
        self._clear_results()
        self._set_status(f"Loading {name} ...", "busy")
        try:
            zoo = self._loaders[name]()
            if name not in self._layers:
                self._layers[name] = spatial_layers(zoo.model)
        except Exception as error:  # any failure is shown in the UI, never raised into it
            self.zoo_model = None
            with self._hold():
                self.layer_select.options = []
                self.class_select.options = [("top class", _TOP_CLASS)]
            self._render()
            self._fail(f"Model {name!r} is not available", error)
            return
        self.zoo_model = zoo
        layers = self._layers[name]
        default = zoo.cam_layer if zoo.cam_layer in layers else layers[-1]
        with self._hold():
            self.layer_select.options = layers
            self.layer_select.value = default
            self.class_search.options = tuple(str(n) for n in zoo.class_names)
            self.class_search.value = ""
        if self._chosen_class is not None and self._chosen_class >= len(zoo.class_names):
            self._chosen_class = None
        self._update_image()

    def _clear_results(self) -> None:
        self.explanation = self.compare_explanation = None
        self._overlay_image = self._compare_image = None

    @property
    def overlay_image(self) -> np.ndarray | None:
        """The map blended over the image (RGB uint8), as shown; None when there is no map.

        A debounced opacity or colour-map change that is still pending is applied first, so
        the value is always what the current controls ask for.
        """
        self._reblend.flush()
        return self._overlay_image

    @property
    def compare_image(self) -> np.ndarray | None:
        """The second method's blended map, as shown; None without a comparison."""
        self._reblend.flush()
        return self._compare_image

    def _update_image(self) -> None:
        zoo = self.zoo_model
        if zoo is None:
            return
        label = self.image_select.value
        try:
            image = self._image(label)
            inputs, seen, rows, outputs = self._inputs_cache.get_or_compute(
                (zoo.name, label), lambda: self._prepare(zoo, image))
        except Exception as error:
            self._clear_results()
            self._render()
            self._fail(f"Image {label!r} could not be used", error)
            return
        self.original_image, self.seen_image, self.inputs, self.top_k = image, seen, inputs, rows
        self.outputs = outputs
        self.image_view.value = png_bytes(seen)
        self._update_class_options()
        self._update_explanation()

    def _prepare(self, zoo, image: np.ndarray):
        """``(inputs, seen image, prediction rows, outputs)`` of one image for one model."""
        from ..course.tasks import predictions

        inputs, seen = zoo.preprocess(image)
        outputs = zoo.predict_inputs(inputs)
        return inputs, seen[0], predictions(zoo, outputs, self.top_k_count)[0], outputs

    def _update_class_options(self) -> None:
        from ..course.tasks import values_are_fractions

        fractions = values_are_fractions(self.zoo_model)
        options = [("top class", _TOP_CLASS)]
        options += [(f"{name} ({p:.1%})" if fractions else f"{name} ({p:.3g})", index)
                    for index, name, p in self.top_k]
        chosen = self._chosen_class
        if chosen is not None and chosen not in {index for index, _, _ in self.top_k}:
            options.append((f"{self.zoo_model.class_names[chosen]} (chosen)", chosen))
        with self._hold():
            self.class_select.options = options
            self.class_select.value = _TOP_CLASS if chosen is None else chosen

    def show_class(self, text: str) -> bool:
        """Explain the class named ``text`` (a name, any ImageNet lemma, or an index).

        Unknown names leave the map as it is and put the closest names in the status line.
        Returns whether the class was found.
        """
        zoo = self.zoo_model
        if zoo is None:
            self._set_status("Choose a model that loads before choosing a class.", "error")
            return False
        try:
            index = find_class(text, zoo.class_names)
        except ValueError as error:
            self._fail("Class not found", error)
            return False
        self._chosen_class = index
        self._update_class_options()
        self._update_explanation()
        return True

    @property
    def target(self) -> int | None:
        """The class being explained: an index, or None for the image's top class."""
        return self._chosen_class

    def _update_explanation(self) -> None:
        zoo = self.zoo_model
        if zoo is None or self.inputs is None:
            return
        method, layer = self.method_select.value, self.layer_select.value
        compare = self.compare_select.value
        self._clear_results()
        try:
            self.explanation, seconds = self._explain(zoo, method, layer)
        except Exception as error:
            self._render()
            self._fail(f"{method_labels().get(method, method)} failed", error)
            return
        problem = None
        if compare != _NO_COMPARISON:
            try:
                self.compare_explanation, more = self._explain(zoo, compare, layer)
                seconds += more
            except Exception as error:
                problem = (f"{method_labels().get(compare, compare)} (comparison) failed", error)
        self.last_seconds = seconds
        self._render()
        if problem:
            self._fail(*problem)
            return
        e = self.explanation
        how = "from the cache" if seconds == 0.0 else f"in {seconds:.2f} s"
        methods = method_labels().get(method, method)
        if self.compare_explanation is not None:
            methods += f" beside {method_labels().get(compare, compare)}"
        score = f"logit {float(e.score[0]):.2f}" if zoo.task == "classification" else \
            f"{e.target}, score {float(e.score[0]):.2f}"
        where = "from the attention layers" if e.layer == "attention" else f"at layer {e.layer}"
        self._set_status(f"{methods} for '{_shown_class(zoo, e)}' ({score}) {where}, {how}.",
                         "ready")

    def _explain(self, zoo, method: str, layer: str):
        """The explanation of the current image (cached); returns it and the seconds spent."""
        from ..course.tasks import natural_target
        from ..methods.registry import method_info

        channels = "max_channels" in method_info(method).option_names
        key = (zoo.name, self.image_select.value, method, self._chosen_class, layer,
               self.scorecam_channels if channels else None)
        if key in self._explanations:
            return self._explanations.get_or_compute(key, None), 0.0
        label = method_labels().get(method, method)
        options: dict[str, Any] = {}
        slow = method in slow_methods()
        if slow:
            options["progress"] = _in_kernel()
            if channels and self.scorecam_channels is not None:
                options["max_channels"] = int(self.scorecam_channels)
            channels = f" on the {self.scorecam_channels} most active channels" \
                if "max_channels" in options else ""
            self._set_status(f"Computing {label}{channels}: one forward pass per channel ...",
                             "busy")
            self.progress.value, self.progress.description = 0, label
            self.progress.layout.visibility = "visible"
        else:
            self._set_status(f"Computing {label} ...", "busy")
        start = time.perf_counter()
        bar = bool(options.get("progress"))  # tqdm's widget bar, drawn in the log area
        try:
            with self.log if bar else contextlib.nullcontext():
                target = natural_target(zoo, self._chosen_class, self.outputs)
                explanation = self._explain_function(
                    zoo.model, self.inputs, method=method, target=target,
                    layer=layer, class_names=zoo.class_names, **options)
        finally:
            if slow:
                self.progress.value = 1
                self.progress.layout.visibility = "hidden"
            if bar:
                self.log.clear_output()
        seconds = max(time.perf_counter() - start, 1e-6)
        explanation.images = self.seen_image[None]
        self.explain_count += 1
        self._explanations.get_or_compute(key, lambda: explanation)
        return explanation, seconds

    def _render(self) -> None:
        """Blend the cached maps with the current opacity and colour map; update the views."""
        alpha, cmap = float(self.alpha_slider.value), self.cmap_select.value
        size = tuple(self.zoo_model.input_size) if self.zoo_model is not None else (224, 224)
        if self.seen_image is not None:
            size = self.seen_image.shape[:2]
        try:
            if cmap not in self._colorbars:
                self._colorbars[cmap] = png_bytes(colorbar_image(cmap, height=size[0]))
        except ValueError as error:
            self._fail("Colour map", error)
            return
        self.colorbar_view.value = self._colorbars[cmap]
        self._reblend.cancel()
        self._overlay_image = self._blend(self.explanation, alpha, cmap)
        self._compare_image = self._blend(self.compare_explanation, alpha, cmap)
        self.overlay_view.value = png_bytes(
            self._overlay_image if self._overlay_image is not None else blank_image(size))
        self.overlay_title.value = self._title(self.explanation, self.method_select.value)
        comparing = self.compare_select.value != _NO_COMPARISON
        self._compare_panel.layout.display = None if comparing else "none"
        if comparing:
            self.compare_view.value = png_bytes(
                self._compare_image if self._compare_image is not None else blank_image(size))
            self.compare_title.value = self._title(self.compare_explanation,
                                                   self.compare_select.value)
        from ..course.tasks import values_are_fractions

        target = None if self.explanation is None else int(self.explanation.class_index[0])
        fractions = self.zoo_model is None or values_are_fractions(self.zoo_model)
        self.top_k_html.value = top_k_html(self.top_k if self.zoo_model is not None else [],
                                           target, percent=fractions)

    def _blend(self, explanation, alpha: float, cmap: str):
        if explanation is None or self.seen_image is None:
            return None
        return self._overlay(self.seen_image, explanation.maps[0], alpha, cmap)

    def _title(self, explanation, method: str) -> str:
        import html

        label = method_labels().get(method, method)
        if explanation is None or self.zoo_model is None:
            return f"<b>{html.escape(label)}</b>"
        name = _shown_class(self.zoo_model, explanation)
        return f"<b>{html.escape(label)}</b>: {html.escape(str(name))}"

    def flush(self) -> None:
        """Apply a pending (debounced) opacity or colour-map change now."""
        self._reblend.flush()


def _shown_class(zoo, explanation) -> str:
    """The name of the class (label, unit) the first map explains, or its target."""
    index = int(explanation.class_index[0])
    return str(zoo.class_names[index]) if 0 <= index < len(zoo.class_names) else \
        str(explanation.target)


def _with(options: tuple[str, ...], value: str) -> list[str]:
    return list(options) if value in options else [value, *options]
