"""camutils: Class Activation Mapping for Keras 3, and the helpers of the CAM course.

    import camutils
    explanation = camutils.explain(model, images, method="gradcam")
    camutils.plot.gallery(images, explanation.maps)
    camutils.explain(model, images, target=camutils.targets.Contrast("cat", "dog"), ...)

The public names below are imported on first use, so that ``import camutils`` stays quick
(TensorFlow is only loaded when a name that needs it is touched). This is the package's one
lazy export: the table `_EXPORTS` (name -> module), read by the module's ``__getattr__``, and
the method table, from which each method's plain function (``camutils.gradcam``, ...) is read.
The subpackages import their modules plainly (`camutils.methods` reads the plain functions
from the method table too).
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
    "NonFiniteError": "model_errors",
    "METHODS": "methods",
    # every method's plain function (cam, gradcam, ...) comes from the method table
    "spatial_layers": "methods",
    "resolve_layer": "methods",
    "token_grid": "methods",
    # models and data
    "load_model": "zoo",
    "list_models": "zoo",
    "make_shapes": "course",
    "make_scenes": "course",
    "make_shortcut": "course",
    "SHAPE_CLASSES": "course",
    "load_course_model": "course",
    "claim": "course",
    "Explorer": "widgets",
    # whole datasets: streamed to shards, resumable, distributed; and their audit
    "explain_dataset": "dataset",
    "audit": "dataset",
}

_SUBMODULES = {
    "images", "samples", "plot", "environment", "preflight", "methods", "zoo", "metrics",
    "widgets", "course", "model_cache", "model_errors", "dataset", "atomic", "targets",
}


def _method_functions() -> dict:
    """Each method's plain function by its function's name, from the method table."""
    from .methods.registry import method_table

    return {m.function.__name__: m.function for m in method_table()}


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        value = getattr(module, name)
        globals()[name] = value
        return value
    if name == "__all__":
        return sorted(_EXPORTS) + sorted(_method_functions()) + sorted(_SUBMODULES)
    if not name.startswith("__"):
        functions = _method_functions()
        if name in functions:
            return functions[name]
    raise AttributeError(f"module 'camutils' has no attribute {name!r}")


def __dir__():
    return __getattr__("__all__") + ["__version__"]
