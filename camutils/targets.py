"""The old home of layer resolution and the feature model (kept so that old code runs).

It held no targets: its parts now live in `camutils.methods`, one module per job:

- `camutils.methods.layers`: `spatial_layers`, `resolve_layer`, `resolve_output`, `get_layer`;
- `camutils.methods.model_graph`: `describe_model`, `ModelGraph`, `CamHead`;
- `camutils.methods.feature_model`: `FeatureModel`, `feature_model`;
- `camutils.methods.model_runner`: running a model layer by layer with hooks;
- `camutils.methods.keras_internals`: every Keras-internal API that camutils touches;
- `camutils.model_cache`: `model_cache`, the one per-model cache.

``from camutils.targets import resolve_layer`` (and the others above) keeps working.
"""

from .methods.feature_model import FeatureModel, feature_model
from .methods.layers import get_layer, resolve_layer, resolve_output, spatial_layers
from .methods.model_graph import CamHead, ModelGraph, describe_model
from .model_cache import model_cache

__all__ = [
    "spatial_layers", "resolve_layer", "get_layer", "resolve_output", "feature_model",
    "FeatureModel", "CamHead", "ModelGraph", "describe_model", "model_cache",
]
