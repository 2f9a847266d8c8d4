"""camutils: Class Activation Mapping for Keras 3, and the helpers of the CAM course.

    import camutils
    explanation = camutils.explain(model, images, method="gradcam")
    camutils.plot.gallery(images, explanation.maps)

The public names below are imported on first use, so that ``import camutils`` stays quick
(TensorFlow is only loaded when a name that needs it is touched).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> the module that defines it. Submodules are public too (camutils.plot, ...).
_EXPORTS: dict[str, str] = {
    # images and sample photos
    "load_image": "images",
    "resize": "images",
    "collage": "images",
    "load_sample": "samples",
    "sample_names": "samples",
    # plots
    "overlay": "plot",
    "show_overlay": "plot",
    "gallery": "plot",
    # notebooks
    "setup_notebook": "environment",
    "environment_report": "environment",
    "doctor": "preflight",
    # explanations (camutils core)
    "explain": "methods",
    "Explanation": "methods",
    "TopK": "methods",
    "METHODS": "methods",
    "cam": "methods",
    "gradcam": "methods",
    "gradcam_plus_plus": "methods",
    "xgradcam": "methods",
    "hirescam": "methods",
    "layercam": "methods",
    "scorecam": "methods",
    "ablationcam": "methods",
    "eigencam": "methods",
    "guided_backprop": "methods",
    "guided_gradcam": "methods",
    "spatial_layers": "targets",
    "resolve_layer": "targets",
    # models and data
    "load_model": "zoo",
    "list_models": "zoo",
    "make_shapes": "datasets",
    "make_scenes": "datasets",
    "make_shortcut": "datasets",
    "SHAPE_CLASSES": "datasets",
    "load_course_model": "course_models",
    "Explorer": "widgets",
}

_SUBMODULES = {
    "images", "samples", "plot", "environment", "exercises", "methods", "targets", "zoo",
    "datasets", "metrics", "widgets", "imagenet", "preflight",
}

__all__ = sorted(_EXPORTS) + sorted(_SUBMODULES)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'camutils' has no attribute {name!r}")


def __dir__():
    return __all__ + ["__version__"]
