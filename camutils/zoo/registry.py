"""The zoo's registry: every model by name, with a one-line description, loaded on demand.

    camutils.list_models()                       # {"efficientnet_lite0": "...", ...}
    camutils.load_model("efficientnet_lite0")    # a `camutils.zoo.ZooModel`

Each entry's loader is imported only when that model is loaded, so listing the zoo is quick.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..suggestions import did_you_mean
from .model import ZooModel

__all__ = ["ZooEntry", "load_model", "list_models"]


@dataclass(frozen=True)
class ZooEntry:
    """One model of the zoo.

    Attributes:
        loader: where the function that loads it lives, ``"module:function"`` (imported only
            when the model is loaded, so that the registry depends on no loader: the course's
            shapes networks, loaded from `camutils.course.models`, themselves use the zoo's
            `ZooModel`).
        arguments: fixed keyword arguments of the loader (e.g. the course model's variant).
        description: one line for listings.
        offline: whether its weights are available without the network.
    """

    loader: str
    arguments: tuple = ()
    description: str = ""
    offline: bool = True

    def load(self, **kwargs) -> ZooModel:
        module, _, function = self.loader.partition(":")
        return getattr(importlib.import_module(module), function)(**dict(self.arguments), **kwargs)


def _course(variant: str, description: str) -> ZooEntry:
    return ZooEntry("camutils.course.models:load_course_model", (("variant", variant),),
                    description)


def _keras_app(name: str, description: str) -> ZooEntry:
    return ZooEntry("camutils.zoo.keras_apps:load_keras_application", (("name", name),),
                    f"{description} (needs the network once)", offline=False)


_REGISTRY: dict[str, ZooEntry] = {
    "efficientnet_lite0": ZooEntry("camutils.zoo.efficientnet:load_efficientnet_lite0", (),
                                   "EfficientNet-Lite0, ImageNet (offline)"),
    "shapes_gap": _course("gap", "shapes world, global average pooling -> Dense"),
    "shapes_gmp": _course("gmp", "shapes world, global max pooling -> Dense"),
    "shapes_flatten": _course("flatten", "shapes world, Flatten -> Dense (no CAM)"),
    "shapes_shortcut": _course("shortcut", "shapes world, trained on a leaking marker"),
    "shapes_multilabel": _course("multilabel", "shapes scenes, multi-label (a sigmoid per class)"),
    "shapes_segmenter": _course("segmenter", "shapes scenes, per-pixel classes (background too)"),
    "shapes_detector": _course("detector", "shapes scenes, CenterNet-style boxes and classes"),
    "shapes_size": _course("size", "shapes world, regression of the object's size (pixels)"),
    "shapes_vit": _course("vit", "shapes world, a small vision transformer (8 x 8 patches)"),
    "vgg16": _keras_app("vgg16", "Keras VGG16, ImageNet"),
    "resnet50": _keras_app("resnet50", "Keras ResNet50, ImageNet"),
    "mobilenet_v2": _keras_app("mobilenet_v2", "Keras MobileNetV2, ImageNet"),
    "xception": _keras_app("xception", "Keras Xception, ImageNet"),
}


def list_models(offline_only: bool = False) -> dict[str, str]:
    """The zoo's model names with a one-line description each."""
    return {n: e.description for n, e in _REGISTRY.items() if e.offline or not offline_only}


def load_model(name: str, **kwargs) -> ZooModel:
    """Load a zoo model by name (see `list_models`)."""
    key = name.lower().replace("-", "_")
    if key not in _REGISTRY:
        raise ValueError(f"Unknown model {name!r}.{did_you_mean(key, _REGISTRY, cutoff=0.4)} "
                         f"Available: {', '.join(_REGISTRY)}.")
    return _REGISTRY[key].load(**kwargs)
