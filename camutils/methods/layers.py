"""Which layer to explain: layer paths, the spatial layers of a model, and clear errors.

    spatial_layers(model)                 # ['conv1', 'conv2', 'base/top_conv', ...]
    resolve_layer(model, None)            # the last one the logits depend on
    resolve_layer(model, "base/top_conv") # a layer inside a nested model

Spatial layers
    A feature map ``(batch, height, width, channels)``, or a token sequence ``(batch,
    tokens, features)`` whose grid is found from the model (`camutils.methods.tokens`).

The automatic choice (``layer=None``)
    On a CNN, the last spatial layer the logits depend on. On a model with token layers (a
    vision transformer, a hybrid), the last token layer whose *grid* tokens still reach the
    score: in a ViT whose head reads the class token, the patch tokens after the last
    block's attention reach the logits by no path (every later layer works token by token),
    so their gradients are zero; the input of that attention (the last block's first
    LayerNormalization, in a pre-norm ViT) is the last layer where they count. Which layers
    those are is measured once per model: one forward and backward pass of a fixed random
    image, the sum of the logits differentiated with respect to every token layer. The
    choice is logged (logger ``camutils``, level INFO) and is `Explanation.layer`.

Layer paths
    A layer of the model itself is named by its name (``"conv2"``); a layer inside a nested
    model by the path of names from the outside in (``"efficientnet/top_conv"``). Naming a
    layer means exactly that layer's output: nothing moves to a nearby convolution.

Every error names what was wrong and lists the candidate layers (closest names first).
"""

from __future__ import annotations

import logging

import numpy as np

from ..model_cache import cached
from ..suggestions import did_you_mean, ranked
from .keras_internals import is_graph_model, traced_once
from .model_graph import ModelGraph, describe_model, is_spatial, logits_beneath_softmax
from .model_runner import ModelRunner, flat
from .tokens import TokenOptions, is_token_sequence

logger = logging.getLogger("camutils")

__all__ = ["spatial_layers", "resolve_layer", "resolve_output", "get_layer"]

_MAX_LISTED = 12


def _is_layer(value) -> bool:
    import keras

    return isinstance(value, keras.layers.Layer)


def _closest_first(name: str, candidates: list[str]) -> list[str]:
    """The candidate paths, closest to ``name`` first (by the whole path or its last part)."""
    return ranked(name, candidates, forms=lambda c: (c, c.rsplit("/", 1)[-1]))


def _listing(candidates: list[str]) -> str:
    if not candidates:
        return "(none)"
    shown = ", ".join(repr(c) for c in candidates[:_MAX_LISTED])
    more = len(candidates) - _MAX_LISTED
    return shown + (f" and {more} more (see camutils.spatial_layers(model))" if more > 0 else "")


def resolve_output(model, output=None) -> int:
    """The index (in ``model.outputs``) of the output to explain.

    ``output`` is None (only for single-output models), an index (negative allowed) or a
    name: the output's key when the model returns a dict, or the name of the layer that
    produces it.
    """
    graph = describe_model(model)
    count = len(graph.output_names)
    described = ", ".join(
        f"{i}: {'/'.join(repr(n) for n in names) or '(unnamed)'} {shape}"
        for i, (names, shape) in enumerate(zip(graph.output_names, graph.output_shapes))
    )
    if output is None:
        if count == 1:
            index = 0
        else:
            raise ValueError(
                f"Model {graph.model_name!r} has {count} outputs; choose the one to explain "
                f"with output=<index or name>. Its outputs: {described}."
            )
    elif isinstance(output, (int, np.integer)) and not isinstance(output, bool):
        if not -count <= int(output) < count:
            raise ValueError(
                f"output={output} is out of range: model {graph.model_name!r} has {count} "
                f"output(s): {described}."
            )
        index = int(output) % count
    elif isinstance(output, str):
        matches = [i for i, names in enumerate(graph.output_names) if output in names]
        if not matches:
            every = [n for names in graph.output_names for n in names]
            hint = did_you_mean(output, every, cutoff=0.4)
            raise ValueError(
                f"Model {graph.model_name!r} has no output named {output!r}.{hint} Its "
                f"outputs: {described}."
            )
        index = matches[0]
    else:
        raise TypeError(f"output must be None, an int or a str, not {type(output).__name__}.")
    return index


def spatial_layers(model, output=None) -> list[str]:
    """The layers whose output is spatial and that the logits depend on, in call order.

    Each is a name, or an ``outer/inner`` path for a layer inside a nested model. "Spatial"
    means one 4-D output ``(batch, height, width, channels)`` with more than one position.
    Layers called more than once (shared layers) are left out: their output is ambiguous.

    Args:
        model: a Keras Sequential or functional model (nested models are looked into).
        output: for a multi-output model, only layers that this output (index or name)
            depends on; None: layers that any output depends on.
    """
    graph = describe_model(model)
    index = None if output is None else resolve_output(model, output)
    return graph.spatial(index)


def _find_path(model, layer) -> str | None:
    """The path of a layer object inside ``model`` (nested models searched), or None."""

    def search(container, prefix):
        for child in getattr(container, "layers", []):
            path = prefix + child.name
            if child is layer:
                return path
            if is_graph_model(child):
                found = search(child, path + "/")
                if found:
                    return found
        return None

    return search(model, "")


def get_layer(model, path: str):
    """The layer object at ``path`` (``"name"`` or ``"outer/inner"``) inside ``model``."""
    container = model
    for part in path.split("/"):
        try:
            container = container.get_layer(part)
        except (ValueError, AttributeError):
            raise ValueError(f"Model {model.name!r} has no layer at path {path!r}.") from None
    return container


def resolve_layer(model, layer=None, output=None, tokens: TokenOptions | None = None) -> str:
    """The path of the layer whose output is explained.

    Args:
        model: a Keras Sequential or functional model.
        layer: None (the last spatial layer that the logits depend on; on a model with
            token layers, the last token layer whose grid tokens reach them: see the
            module's notes), a layer name, a path ``"outer/inner"`` into a nested model, an
            int index into ``model.layers`` (negative allowed, as in ``model.layers[index]``)
            or a layer object.
        output: for multi-output models, the output (index or name) the logits come from.
        tokens: what the user said about a token layer's grid (`TokenOptions`), for the
            automatic choice.

    Returns:
        The layer's path (its name for a layer of the model itself).

    Raises:
        ValueError: the layer is unknown, is not in the model, has no spatial output, or the
            logits do not depend on it. The message lists the candidate spatial layers
            (closest names first).
    """
    graph = describe_model(model)
    index = resolve_output(model, output)
    candidates = graph.spatial(index)
    if layer is None:
        token_layers = _token_layers(graph, index, tokens or TokenOptions())
        if token_layers:
            return _automatic_token_layer(model, graph, index, token_layers,
                                          tokens or TokenOptions())
        if not candidates:
            unknown = [p for p, g in graph.grids.items()
                       if isinstance(g, str) and p in graph.depends[index]]
            if unknown:  # token layers whose grid could not be found
                raise ValueError(
                    f"Model {graph.model_name!r} has token layers but no grid found for any: "
                    f"{graph.grids[unknown[-1]].rstrip('.')}, for layer={unknown[-1]!r}.")
            raise ValueError(
                f"Model {graph.model_name!r} has no layer with a spatial output "
                "(batch, height, width, channels) or token grid (batch, tokens, features) "
                "that its logits depend on, so there is nothing to map. Is it an image "
                "classifier?"
            )
        _check_default_fits(graph, index, candidates)
        return candidates[-1]
    path = _named_path(model, graph, layer, candidates)
    _check_explainable(graph, path, index, candidates)
    return path


def _check_default_fits(graph: ModelGraph, index: int, candidates: list[str]) -> None:
    """The default layer (the last spatial one) is the natural one for a head that pools or
    flattens to ``(batch, values)``; for a per-pixel output (a segmenter, a detector) the
    last spatial layers are the output's own logits: a ValueError asks for a layer."""
    shape = graph.output_shapes[index]
    if len(shape) <= 2:
        return
    shown = "(N, " + ", ".join(str(s) for s in shape[1:]) + ")"
    raise ValueError(
        f"Model {graph.model_name!r} has an output of shape {shown}, so its last spatial "
        "layers are the output's own logits, not features: name the layer to explain with "
        "layer=... (a segmenter's or detector's last decoder block is a good start). "
        f"Candidate spatial layers: {_listing(list(reversed(candidates)))}.")


def _named_path(model, graph: ModelGraph, layer, candidates: list[str]) -> str:
    """The path of the layer that ``layer`` (an index, a name or path, or a layer object)
    names: a layer the model calls, or a ValueError listing the candidates."""
    known = {c.path for c in graph.calls}
    if isinstance(layer, (int, np.integer)) and not isinstance(layer, bool):
        layers = model.layers
        if not -len(layers) <= int(layer) < len(layers):
            raise ValueError(
                f"Layer index {layer} is out of range: model {graph.model_name!r} has "
                f"{len(layers)} layers. Candidate spatial layers: {_listing(candidates)}."
            )
        path = layers[int(layer)].name
        if path not in known:  # e.g. an InputLayer: its output is the image itself
            raise ValueError(
                f"model.layers[{layer}] is {path!r}, which is not a layer the model calls "
                f"(an input?). Candidate spatial layers: {_listing(candidates)}."
            )
        return path
    if isinstance(layer, str):
        path = layer.strip("/")
        if path not in known:
            raise ValueError(
                f"Model {graph.model_name!r} has no layer {layer!r}. Candidate spatial "
                f"layers, closest names first: {_listing(_closest_first(path, candidates))}. "
                "A layer inside a nested model is named by its path, e.g. 'outer/inner'."
            )
        return path
    if _is_layer(layer):
        found = _find_path(model, layer)
        if found is None or found not in known:
            raise ValueError(
                f"Layer {layer.name!r} is not part of model {graph.model_name!r}. Candidate "
                f"spatial layers: {_listing(_closest_first(layer.name, candidates))}."
            )
        return found
    raise TypeError(
        "layer must be None, a name or 'outer/inner' path, an int index or a layer "
        f"object, not {type(layer).__name__}."
    )


def _token_layers(graph: ModelGraph, index: int, options: TokenOptions) -> list[str]:
    """The token layers called once that output ``index`` depends on and whose grid is
    found (with ``options``), in call order."""
    found = []
    for call in graph.calls:
        if not is_token_sequence(call.shape) or graph.call_counts[call.path] > 1 \
                or call.path not in graph.depends[index]:
            continue
        try:
            graph.token_grid(call.path, options)
        except ValueError:
            continue
        found.append(call.path)
    return found


def _reaching_token_layers(model, graph: ModelGraph, index: int, paths: list[str],
                           options: TokenOptions) -> list[str]:
    """Those of ``paths`` whose grid tokens reach the logits of output ``index``: the
    gradient of the logits' sum, for a fixed random image, is not zero on them (measured
    once per model, output and options; see the module's notes)."""

    def measure():
        import tensorflow as tf

        shape = (1, *graph.input_shape[1:])
        if None in shape:  # a free input size: no image to try
            return list(paths)
        rng = np.random.default_rng(0)
        integer = np.issubdtype(np.dtype(graph.input_dtype), np.integer)
        image = rng.integers(0, 256, shape) if integer else rng.random(shape)
        prefix = {p: graph.token_grid(p, options).prefix for p in paths}

        def probe(images):
            tapped = {}
            with tf.GradientTape(watch_accessed_variables=False) as tape:
                def tap(path):
                    def watch(tensor):
                        tape.watch(tensor)
                        tapped[path] = tensor
                        return tensor
                    return watch

                outputs = flat(ModelRunner(taps={p: tap(p) for p in paths}).run(model, images))
                logits, _ = logits_beneath_softmax(outputs[index])
                total = tf.reduce_sum(tf.cast(logits, tf.float32))
            gradients = tape.gradient(total, [tapped[p] for p in paths],
                                      unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return [tf.reduce_max(tf.abs(tf.cast(g[:, prefix[p]:], tf.float32)))
                    for p, g in zip(paths, gradients)]

        function = traced_once(tf.function(probe, autograph=False))
        sizes = function(tf.constant(image, graph.input_dtype))
        return [p for p, size in zip(paths, sizes) if float(size) > 0.0]

    return cached(model, ("token layers reaching the logits", index, options), measure)


def _automatic_token_layer(model, graph: ModelGraph, index: int, paths: list[str],
                           options: TokenOptions) -> str:
    """The last of the token layers ``paths`` whose grid tokens reach the logits (the last
    token layer when none do, as with an all-zero head); the choice is logged, once per
    model, output and options."""

    def choose():
        reaching = _reaching_token_layers(model, graph, index, paths, options)
        path = reaching[-1] if reaching else paths[-1]
        logger.info("model %r, no layer given: explaining token layer %r, the last whose grid "
                    "tokens reach the logits (%s). Pass layer= to choose another.",
                    graph.model_name, path, graph.token_grid(path, options).describe())
        return path

    return cached(model, ("automatic token layer", index, options), choose)


def _check_explainable(graph: ModelGraph, path: str, index: int, candidates: list[str]) -> None:
    """A ValueError unless the layer at ``path`` is called once, has a spatial output (a
    feature map or a token sequence: its grid is checked by the feature model) and feeds
    output ``index``'s logits."""
    call = graph.call(path)
    if graph.call_counts[path] > 1:
        raise ValueError(
            f"Layer {path!r} is called {graph.call_counts[path]} times in the model, so its "
            f"output is ambiguous. Candidate spatial layers: {_listing(candidates)}."
        )
    if is_token_sequence(call.shape):
        if path not in graph.depends[index]:
            raise ValueError(
                f"The logits of output {index} do not depend on layer {path!r}, so it cannot "
                f"explain them. Candidate spatial layers: {_listing(candidates)}.")
        return
    if _pooled(call.shape):
        raise ValueError(
            f"Layer {path!r} ({call.class_name}) has no spatial output: one position per "
            f"image, shape {call.shape}, no grid left to map (it comes after pooling, or after "
            "the class token is read out). Choose a layer before it; candidate spatial "
            f"layers, closest names first: {_listing(_closest_first(path, candidates))}."
        )
    if not is_spatial(call.shape):
        shape = call.shape if call.shape is not None else "several tensors"
        raise ValueError(
            f"Layer {path!r} ({call.class_name}) has no spatial output: its output has shape "
            f"{shape}, and CAM methods need a feature map (batch, height, width, channels) or "
            "tokens (batch, tokens, features) with more than one position. Candidate spatial "
            f"layers, closest names first: {_listing(_closest_first(path, candidates))}."
        )
    if path not in candidates:
        raise ValueError(
            f"The logits of output {index} do not depend on layer {path!r}, so it cannot "
            f"explain them. Candidate spatial layers: {_listing(candidates)}."
        )


def _pooled(shape) -> bool:
    """One position per image: ``(batch, features)``, ``(batch, 1, features)`` or ``(batch,
    1, 1, channels)``."""
    if shape is None:
        return False
    return len(shape) == 2 or (len(shape) == 3 and shape[1] == 1) or (
        len(shape) == 4 and shape[1] == 1 and shape[2] == 1)
