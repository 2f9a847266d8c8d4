"""The model zoo: every model the course uses, behind one interface.

    lite0 = camutils.load_model("efficientnet_lite0")      # offline ImageNet network
    inputs, seen = lite0.preprocess(photos)                # what the network sees
    lite0.top_k(photos, k=5)                               # [(index, name, probability), ...]
    explanation = lite0.explain(photos, method="cam")      # maps overlay on `seen`

A `ZooModel` knows its preprocessing, input size, class names and default CAM layer, so
that a map always lands on the pixels the network actually saw (after crop and resize).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = ["ZooModel", "load_model", "list_models", "center_crop_resize"]


@dataclass
class ZooModel:
    """A Keras model with everything needed to explain it.

    Attributes:
        name: the zoo name (``"efficientnet_lite0"``, ``"shapes_gap"``, ...).
        model: the Keras model. Its outputs are logits where the network allows it.
        input_size: ``(height, width)`` of the network's input.
        class_names: one name per output class.
        cam_layer: the layer (name or ``outer/inner`` path) that CAM methods use by default.
        prepare: function from a batch of RGB uint8 images (any size) to a batch of RGB
            uint8 images of ``input_size`` as the network sees them (crop and resize).
        normalize: function from that uint8 batch to the float32 network input.
        offline: whether the weights are available without the network.
        info: free-form facts (source of the weights, licence, accuracy, ...).
    """

    name: str
    model: Any
    input_size: tuple[int, int]
    class_names: list[str] = field(repr=False)
    cam_layer: str
    prepare: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    normalize: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    offline: bool = True
    info: dict = field(default_factory=dict, repr=False)
    _forward: Any = field(default=None, init=False, repr=False, compare=False)

    def preprocess(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(inputs, seen)``: the float32 network input and the uint8 images it shows.

        ``images`` is one image or a batch, in any form `camutils.load_image` accepts
        (paths, arrays, sample names); each is converted to RGB uint8 first.
        """
        from .images import as_batch

        seen = self.prepare(as_batch(images))
        return self.normalize(seen), seen

    def logits(self, images, batch_size: int = 32) -> np.ndarray:
        """The model's outputs (logits) for ``images``, shape ``(n, classes)``, float32.

        Images are preprocessed and run in batches of ``batch_size`` through a compiled
        (``tf.function``) forward pass, with a progress bar when there are many batches.
        """
        inputs, _ = self.preprocess(images)
        return self.predict_inputs(inputs, batch_size)

    def predict_inputs(self, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Run already preprocessed ``inputs`` (float32, as `normalize` returns) in batches."""
        from tqdm.auto import tqdm

        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1; got {batch_size}.")
        if self._forward is None or self._forward[0] is not self.model:
            import tensorflow as tf

            model = self.model
            # One trace for every batch size: the batch axis is left open in the signature.
            spec = tf.TensorSpec((None, *model.input_shape[1:]), tf.float32)
            self._forward = (model, tf.function(lambda x: model(x, training=False),
                                                input_signature=[spec]))
        forward = self._forward[1]
        starts = range(0, len(inputs), batch_size)
        outputs = [
            np.asarray(forward(np.asarray(inputs[i:i + batch_size], np.float32)))
            for i in tqdm(starts, desc=f"{self.name} forward", unit="batch",
                          disable=len(starts) <= 4, leave=False)
        ]
        return np.concatenate(outputs, axis=0).astype(np.float32, copy=False)

    def top_k(self, images, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """For each image, the ``k`` most probable classes as ``(index, name, probability)``."""
        if k < 1:
            raise ValueError(f"k must be at least 1; got {k}.")
        logits = self.logits(images)
        k = min(k, logits.shape[1])
        shifted = logits - logits.max(axis=1, keepdims=True)
        probs = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        order = np.argsort(-probs, axis=1)[:, :k]
        return [
            [(int(i), self.class_names[i], float(p[i])) for i in row]
            for row, p in zip(order, probs)
        ]

    def explain(self, images, method: str = "gradcam", target=None, layer=None, **options):
        """Preprocess ``images`` and explain them; the result's ``images`` are the seen pixels."""
        from .methods import explain

        inputs, seen = self.preprocess(images)
        explanation = explain(
            self.model, inputs, method=method, target=target,
            layer=self.cam_layer if layer is None else layer,
            class_names=self.class_names, **options,
        )
        explanation.images = seen
        return explanation


def center_crop_resize(images, size: tuple[int, int], crop_fraction: float = 0.875) -> np.ndarray:
    """The usual ImageNet evaluation view: a central crop, resized (bicubic) to ``size``.

    For each image, the largest central region with the aspect ratio of ``size`` is scaled by
    ``crop_fraction`` (224/256 = 0.875 by default; for a square ``size``, a square whose side
    is that fraction of the shorter side) and resized to ``size = (height, width)``.

    Returns the RGB uint8 batch ``(n, height, width, 3)``.
    """
    from .images import as_batch, resize

    if not 0.0 < crop_fraction <= 1.0:
        raise ValueError(f"crop_fraction must be in (0, 1]; got {crop_fraction}.")
    height, width = (int(s) for s in size)
    aspect = width / height
    views = []
    for image in as_batch(images):
        h, w = image.shape[:2]
        ch, cw = (h, h * aspect) if w / h > aspect else (w / aspect, w)
        ch, cw = max(1, round(ch * crop_fraction)), max(1, round(cw * crop_fraction))
        top, left = (h - ch) // 2, (w - cw) // 2
        views.append(resize(image[top:top + ch, left:left + cw], (height, width),
                            interpolation="bicubic"))
    return np.stack(views)


# name -> (loader returning a ZooModel, one-line description). Loaders import lazily.
def _lite0(**kwargs):
    from .efficientnet import load_efficientnet_lite0

    return load_efficientnet_lite0(**kwargs)


def _course(variant: str):
    def load(**kwargs):
        from .course_models import load_course_model

        return load_course_model(variant, **kwargs)

    return load


def _keras_app(name: str):
    def load(**kwargs):
        from .keras_apps import load_keras_application

        return load_keras_application(name, **kwargs)

    return load


_REGISTRY: dict[str, tuple[Callable[..., ZooModel], str, bool]] = {
    "efficientnet_lite0": (_lite0, "EfficientNet-Lite0, ImageNet (offline)", True),
    "shapes_gap": (_course("gap"), "shapes world, global average pooling -> Dense", True),
    "shapes_gmp": (_course("gmp"), "shapes world, global max pooling -> Dense", True),
    "shapes_flatten": (_course("flatten"), "shapes world, Flatten -> Dense (no CAM)", True),
    "shapes_shortcut": (_course("shortcut"), "shapes world, trained on a leaking marker", True),
    "vgg16": (_keras_app("vgg16"), "Keras VGG16, ImageNet (needs the network once)", False),
    "resnet50": (_keras_app("resnet50"), "Keras ResNet50, ImageNet (needs the network once)", False),
    "mobilenet_v2": (_keras_app("mobilenet_v2"), "Keras MobileNetV2, ImageNet (needs the network once)", False),
    "xception": (_keras_app("xception"), "Keras Xception, ImageNet (needs the network once)", False),
}


def list_models(offline_only: bool = False) -> dict[str, str]:
    """The zoo's model names with a one-line description each."""
    return {n: d for n, (_, d, off) in _REGISTRY.items() if off or not offline_only}


def load_model(name: str, **kwargs) -> ZooModel:
    """Load a zoo model by name (see `list_models`)."""
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, _REGISTRY, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} Available: {', '.join(_REGISTRY)}."
        )
    return _REGISTRY[key][0](**kwargs)

