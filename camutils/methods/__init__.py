"""The CAM method family on one pipeline.

    from camutils.methods import explain, TopK
    e = explain(model, images, method="gradcam")             # maps (N, H, W) in [0, 1]
    e = explain(model, images, method="cam", target=TopK(3))  # maps (N, 3, H, W)

Every method is also a plain function with the same signature (`cam`, `gradcam`, ...): each
row of the method table (`camutils.methods.registry.METHOD_TABLE`) is importable here by
its function's name, and `METHODS` maps each canonical name to its function.

One module per job:

- `registry`: the method table (a row carries a method whole: its rule, kind, cost class,
  options) and `explain`; the plain functions are generated from the rows;
- `pipeline`: what every method shares (the checked call, the maps made of a rule's output,
  the compiled functions' cache, the finiteness checks);
- `passes`: the compiled passes, one per model, layer, target and kind, that the rules read;
- `gradient_free`, `gradient`, `perturbation`, `guided`, `rollout`: the rules, family by family (and
  `perturbation`'s driver of the per-channel methods);
- `options`: a method's options (default, check, meaning);
- `explanation`, `inputs`: what a method returns, and the checks of the images it is given
  (the target, what a map explains, is `camutils.targets`);
- `layers`, `model_graph`, `feature_model`, `model_runner`: the Keras graph code (which layer,
  what the model looks like, the model opened at a layer, running it with hooks);
- `tokens`, `attention`: a transformer's token layers read as grids, and its self-attention
  layers (for `rollout`, the attention family's rules);
- `keras_internals`: every Keras-internal API that camutils touches.
"""

from ..targets import TopK
from .explanation import Explanation
from .feature_model import token_grid
from .layers import resolve_layer, spatial_layers
from .registry import (
    METHOD_TABLE, METHODS, Method, canonical_name, explain, method_function, method_info,
    method_names, method_table,
)

_FIXED = [
    "explain", "Explanation", "TopK", "METHODS", "METHOD_TABLE", "Method", "canonical_name",
    "method_function", "method_info", "method_names", "method_table", "resolve_layer",
    "spatial_layers", "token_grid",
]


def _functions() -> dict:
    """Each method's plain function by the function's name (``gradcam_plus_plus``, ...)."""
    return {m.function.__name__: m.function for m in method_table()}


def __getattr__(name: str):
    functions = _functions()
    if name in functions:
        return functions[name]
    if name == "__all__":
        return _FIXED + list(functions)
    raise AttributeError(f"module 'camutils.methods' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_functions()))
