"""The zoo's registry: every model by name, with a one-line description, loaded on demand.

    camutils.list_models()                       # {"efficientnet_lite0": "...", ...}
    camutils.load_model("efficientnet_lite0")    # a `camutils.zoo.ZooModel`

Each entry's loader is imported only when that model is loaded, so listing the zoo is quick.
"""

from __future__ import annotations

from typing import Callable

from ..suggestions import did_you_mean
from .model import ZooModel

__all__ = ["load_model", "list_models"]


# name -> (loader returning a ZooModel, one-line description). Loaders import lazily.
def _lite0(**kwargs):
    from .efficientnet import load_efficientnet_lite0

    return load_efficientnet_lite0(**kwargs)


def _course(variant: str):
    def load(**kwargs):
        from ..course.models import load_course_model

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
        raise ValueError(f"Unknown model {name!r}.{did_you_mean(key, _REGISTRY, cutoff=0.4)} "
                         f"Available: {', '.join(_REGISTRY)}.")
    return _REGISTRY[key][0](**kwargs)
