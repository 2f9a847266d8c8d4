"""The attention layers of a model, for the methods that read attention (rollout and its
gradient-weighted form: `camutils.methods.rollout`).

    layers = attention_layers(feature)     # AttentionLayers(paths=[...], grid=TokenGrid(...))

They are the ``keras.layers.MultiHeadAttention`` layers that the explained output depends
on, in call order, each called once, each a self-attention over the same tokens (query and
key of one length ``T``). The model is not changed or rebuilt: the pass runs it once with
those layers called with ``return_attention_scores=True`` (`camutils.methods.model_runner`),
public Keras API that works on a layer first called without it (Keras 3.3 to 3.15). The
tokens are laid out as a grid the same way as a token layer's (`camutils.methods.tokens`).

What is not reachable: attention computed inside a subclassed layer (a custom transformer
block whose ``call`` calls its own MultiHeadAttention, as keras-hub's encoders do), since
camutils runs a model layer by layer and does not open a subclassed layer's ``call``.
Those models get a clear error (their token layers still work with every CAM method).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model_cache import cached
from .keras_internals import flash_attention_on, is_graph_model, sublayers
from .layers import get_layer
from .model_graph import describe_model
from .tokens import TokenGrid

__all__ = ["AttentionLayers", "attention_layers"]


@dataclass(frozen=True)
class AttentionLayers:
    """The self-attention layers a method rolls out, and how their tokens form a grid."""

    paths: tuple[str, ...]
    grid: TokenGrid


def _hidden_attention(model) -> list[str]:
    """Names of the layers (at any depth of graph models) that hold MultiHeadAttention
    layers inside their own ``call`` (subclassed layers), for the error message."""
    import keras

    found = []

    def search(container, prefix):
        for layer in getattr(container, "layers", []):
            path = prefix + layer.name
            if is_graph_model(layer):
                search(layer, path + "/")
            elif not isinstance(layer, keras.layers.MultiHeadAttention) and any(
                    isinstance(s, keras.layers.MultiHeadAttention) for s in sublayers(layer)):
                found.append(f"{path!r} ({type(layer).__name__})")

    search(model, "")
    return found


def _find(feature) -> AttentionLayers:
    model = feature._get_model()
    graph = describe_model(model)
    paths = graph.attention(feature.output)
    name = graph.model_name
    if not paths:
        hidden = _hidden_attention(model)
        where = (f" Its attention runs inside {', '.join(hidden[:3])}, a subclassed layer whose "
                 "call() camutils does not open; its token layers work with every CAM method "
                 "(method='gradcam')." if hidden else
                 " Rollout needs a transformer built from keras.layers.MultiHeadAttention "
                 "layers; on this model use a CAM method (method='gradcam').")
        raise ValueError(f"Model {name!r} has no keras.layers.MultiHeadAttention layer that "
                         f"output {feature.output} depends on, so there is no attention to "
                         f"roll out.{where}")
    counts = {p: graph.call(p).attention for p in paths}
    cross = [f"{p!r} (queries {q}, keys {k})" for p, (q, k) in counts.items()
             if q is None or q != k]
    if cross:
        raise ValueError(f"Rollout multiplies self-attention matrices over one token sequence, "
                         f"but in model {name!r} {', '.join(cross)} attend from one sequence "
                         "to another; explain a token layer with a CAM method instead.")
    lengths = sorted({q for q, _ in counts.values()})
    if len(lengths) > 1:
        raise ValueError(f"The attention layers of model {name!r} attend over token sequences "
                         f"of different lengths ({', '.join(map(str, lengths))}: "
                         "a hierarchical transformer?), which rollout cannot chain; explain a "
                         "token layer with a CAM method instead.")
    flash = [p for p in paths if flash_attention_on(get_layer(model, p))]
    if flash:
        raise ValueError(f"Flash attention is on for {flash[0]!r}: it cannot return the "
                         "attention probabilities that rollout reads. Turn it off with "
                         "keras.config.disable_flash_attention() before building the layers, or "
                         "use a CAM method (method='gradcam').")
    grid = graph.token_grid(paths[0], feature.token_options)
    return AttentionLayers(tuple(paths), grid)


def attention_layers(feature) -> AttentionLayers:
    """The self-attention layers that the explained output of ``feature`` (a
    `camutils.methods.feature_model.FeatureModel`) depends on, and their token grid; a
    ValueError that says what was found and what would work otherwise. Cached with the
    model."""
    return cached(feature._get_model(), ("attention layers", feature.output,
                                         feature.token_options), lambda: _find(feature))
