"""Which layer to explain, and the model opened at that layer.

Every CAM method looks at one layer's output (the *activations*) and at the *logits*. This
module finds that layer and builds, once per ``(model, layer, output)``, a `FeatureModel`: a
function from a batch of images to ``(activations, logits)`` that runs the user's model as it
is, inside one TensorFlow graph.

    camutils.targets.spatial_layers(model)          # ['conv1', 'conv2', 'base/top_conv', ...]
    camutils.targets.resolve_layer(model, None)     # the last one the logits depend on
    camutils.targets.resolve_layer(model, "base/top_conv")   # a layer inside a nested model

How the model is opened, without modifying it
    The model is *run* rather than rebuilt: a Sequential model layer by layer, a functional
    model node by node through its own graph runner (the one ``Model.call`` uses), nested
    models recursively. The chosen layer's output is picked up on the way. No Keras model is
    built, no layer is called on symbolic Keras tensors (which would add nodes to the user's
    layers), nothing is cloned and no attribute is changed.

Layer paths
    A layer of the model itself is named by its name (``"conv2"``); a layer inside a nested
    model by the path of names from the outside in (``"efficientnet/top_conv"``). Naming a
    layer means exactly that layer's output: nothing moves to a nearby convolution.

Logits beneath a softmax
    Scores are logits. When the chosen output is produced by a softmax (a ``Dense`` with
    ``activation="softmax"``, a ``Softmax`` layer or ``Activation("softmax")``, also inside a
    nested model), the logits are read from the traced graph: they are the input of that
    softmax operation. The model is not changed.

Keras internals used
    In this module only; each is in every Keras minor release from 3.3 (the lower bound is
    3.3.3) to 3.15, and the tests pass on 3.3.3, 3.5.0, 3.8.0, 3.10.0, 3.12.4 and 3.15.1
    (docs/platforms.md):
    ``keras.src.models.functional.Functional`` (to tell functional models from subclassed
    ones), ``Functional._run_through_graph(inputs, operation_fn)`` (the graph runner of
    ``Functional.call``), ``Functional._standardize_inputs`` (used where present),
    ``Functional._outputs_struct`` and ``KerasTensor._keras_history`` (output names; read
    with a default). Which layers take ``training=False``: ``Layer._call_context_args``
    from Keras 3.10, ``Layer._call_has_training_arg`` before it (a feature check, not a
    version check).
"""

from __future__ import annotations

import difflib
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = [
    "spatial_layers", "resolve_layer", "get_layer", "resolve_output", "feature_model",
    "FeatureModel", "CamHead", "describe_model",
]

# Layers that do nothing at inference time: allowed between the pooling and the Dense of a
# CAM head (and before the pooling).
_IDENTITY_AT_INFERENCE = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
}
_POOLINGS = {"GlobalAveragePooling2D": "average", "GlobalMaxPooling2D": "max"}
# Ops that pass a tensor through unchanged (for following tensors across layer boundaries).
_PASS_THROUGH_OPS = {"Identity", "Cast"}
_MAX_LISTED = 12


# --------------------------------------------------------------------------- running a model


def _keras():
    import keras

    return keras


def _is_graph_model(layer) -> bool:
    """Functional and Sequential models: the ones whose inner layers can be reached."""
    keras = _keras()
    from keras.src.models.functional import Functional

    return isinstance(layer, (Functional, keras.Sequential))


def _takes_training(layer) -> bool:
    """Whether ``Functional.call(training=False)`` passes ``training=False`` to ``layer``.

    Keras 3.10 and later list the arguments it passes in ``Layer._call_context_args``;
    earlier versions pass ``training`` where ``Layer._call_has_training_arg`` is set.
    """
    context = getattr(layer, "_call_context_args", None)
    if context is not None:
        return "training" in context
    return bool(getattr(layer, "_call_has_training_arg", False))


def _call_layer(layer, *args, **kwargs):
    """Call one layer in inference mode, as ``Functional.call(training=False)`` does."""
    if _takes_training(layer):
        kwargs["training"] = False
    return layer(*args, **kwargs)


class _Runner:
    """Runs a Keras model on TensorFlow tensors, layer by layer, with hooks.

    Args:
        taps: path -> function(tensor) -> tensor, applied to that layer's output.
        replace: path -> tensor used instead of that layer's output (the layer is not called,
            so whatever only fed it is pruned from the graph by TensorFlow).
        record: function(path, layer, args, output) called after every layer call.
    """

    def __init__(self, taps=None, replace=None, record=None):
        self.taps = taps or {}
        self.replace = replace or {}
        self.record = record

    def run(self, model, inputs, prefix: str = ""):
        """The model's outputs (in its own output structure) for ``inputs``."""
        keras = _keras()
        if isinstance(model, keras.Sequential):
            x = inputs
            for layer in model.layers:
                x = self._call(prefix, layer, x)
            return x
        if hasattr(model, "_standardize_inputs"):
            inputs = model._standardize_inputs(inputs)
        return model._run_through_graph(
            inputs, operation_fn=lambda op: (lambda *a, **k: self._call(prefix, op, *a, **k))
        )

    def _call(self, prefix, layer, *args, **kwargs):
        path = prefix + layer.name
        if path in self.replace:
            out = self.replace[path]
        elif _is_graph_model(layer):
            out = self.run(layer, args[0] if len(args) == 1 else list(args), prefix=path + "/")
        else:
            out = _call_layer(layer, *args, **kwargs)
        if path in self.taps:
            out = self.taps[path](out)
        if self.record is not None:
            self.record(path, layer, args, out)
        return out


def _flat(structure) -> list:
    return list(_keras().tree.flatten(structure))


def _pass_through(tensor):
    """Follow Identity / Cast ops back to the tensor that was passed in."""
    while tensor.op.type in _PASS_THROUGH_OPS and len(tensor.op.inputs) == 1:
        tensor = tensor.op.inputs[0]
    return tensor


def _logits_beneath_softmax(tensor):
    """``tensor`` itself, or the input of the softmax that produced it (a graph tensor)."""
    source = _pass_through(tensor)
    if source.op.type == "Softmax":
        return source.op.inputs[0], True
    return tensor, False


def _ancestors(tensor) -> set[str]:
    """Names of every tensor that ``tensor`` depends on (itself included)."""
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        t = stack.pop()
        if t.name in seen:
            continue
        seen.add(t.name)
        stack.extend(t.op.inputs)
    return seen


# --------------------------------------------------------------------------- model analysis


@dataclass(frozen=True)
class CamHead:
    """How a layer reaches the logits when CAM applies: pooling, then one Dense layer.

    Attributes:
        pooling: ``"average"`` or ``"max"`` (global pooling over the layer's positions).
        dense: the path of the Dense layer whose kernel holds the class weights.
        chain: class names of the layers between the layer and the logits, in order.
    """

    pooling: str
    dense: str
    chain: tuple[str, ...]


@dataclass
class _LayerCall:
    path: str
    class_name: str
    is_model: bool
    shape: tuple | None  # static shape of a single-tensor output (batch first), else None
    dtype: str | None


@dataclass
class ModelGraph:
    """What one symbolic run of a model tells about it (plain data: no tensors, no model)."""

    model_name: str
    input_shape: tuple
    input_dtype: str
    output_names: list[list[str]]
    output_shapes: list[tuple]
    softmax_outputs: list[bool]
    calls: list[_LayerCall]
    call_counts: dict[str, int]
    depends: list[set[str]]
    heads: dict[tuple[str, int], CamHead | str] = field(default_factory=dict)
    poolings: dict[tuple[str, int], str | None] = field(default_factory=dict)

    def call(self, path: str) -> _LayerCall:
        return next(c for c in self.calls if c.path == path)

    def spatial(self, output: int | None = None) -> list[str]:
        """Paths whose output is one spatial tensor that the output(s) depend on."""
        wanted = set().union(*self.depends) if output is None else self.depends[output]
        return [
            c.path for c in self.calls
            if _is_spatial(c.shape) and self.call_counts[c.path] == 1 and c.path in wanted
        ]


def _is_spatial(shape) -> bool:
    if shape is None or len(shape) != 4:
        return False
    h, w = shape[1], shape[2]
    return not (h == 1 and w == 1)


def _check_model(model) -> None:
    keras = _keras()
    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected a Keras model, got {type(model).__name__}. Pass a keras.Model "
            "(Sequential or functional)."
        )
    if not _is_graph_model(model):
        raise TypeError(
            f"Model {model.name!r} is a subclassed keras.Model ({type(model).__name__}); its "
            "layers cannot be reached from outside its call(). Build it as a functional or "
            "Sequential model (a subclassed model may be used as one layer inside them)."
        )
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        raise ValueError(
            f"Model {model.name!r} has no input shape yet. Start it with "
            "keras.Input(shape=(height, width, channels)), or call it once on a batch of "
            "images, then explain it."
        ) from None
    if len(inputs) != 1:
        raise ValueError(
            f"Model {model.name!r} has {len(inputs)} inputs; camutils explains models with "
            "one image input."
        )
    if len(inputs[0].shape) != 4:
        raise ValueError(
            f"Model {model.name!r} takes inputs of shape {tuple(inputs[0].shape)}; CAM methods "
            "need images: an input of shape (batch, height, width, channels)."
        )


def _output_names(model) -> list[list[str]]:
    """For each output (in ``model.outputs`` order) the names it may be chosen by."""
    outputs = model.outputs
    names = [[] for _ in outputs]
    struct = getattr(model, "_outputs_struct", None)
    if isinstance(struct, dict):
        by_id = {id(t): k for k, t in struct.items()}
        for i, t in enumerate(outputs):
            if id(t) in by_id:
                names[i].append(str(by_id[id(t)]))
    for i, t in enumerate(outputs):
        history = getattr(t, "_keras_history", None)
        if history is not None and history[0].name not in names[i]:
            names[i].append(history[0].name)
    return names


def _analyse(model) -> ModelGraph:
    """Trace the model once (symbolically, batch size unknown) and describe its layers."""
    import tensorflow as tf

    keras_input = model.inputs[0]
    spec = tf.TensorSpec((None, *keras_input.shape[1:]), dtype=keras_input.dtype)
    records: list[tuple] = []
    results: dict[str, Any] = {}

    def trace(images):
        runner = _Runner(record=lambda p, l, a, o: records.append((p, l, _flat(a), o)))
        outputs = _flat(runner.run(model, images))
        results["outputs"] = outputs
        return outputs

    tracer = tf.function(trace, autograph=False)
    tracer._omit_frequent_tracing_warning = True  # one trace per model, by design
    tracer.get_concrete_function(spec)
    outputs = results["outputs"]

    calls, counts = [], {}
    for path, layer, _, out in records:
        counts[path] = counts.get(path, 0) + 1
        if counts[path] > 1:
            continue
        single = tf.is_tensor(out)
        calls.append(_LayerCall(
            path, type(layer).__name__, _is_graph_model(layer),
            tuple(out.shape) if single else None, out.dtype.name if single else None,
        ))

    logits, softmax, depends = [], [], []
    for out in outputs:
        lg, is_softmax = _logits_beneath_softmax(out)
        logits.append(lg)
        softmax.append(is_softmax)
        ancestors = _ancestors(lg)
        depends.append({
            path for path, _, _, o in records if tf.is_tensor(o) and o.name in ancestors
        })

    graph = ModelGraph(
        model_name=model.name,
        input_shape=tuple(spec.shape),
        input_dtype=spec.dtype.name,
        output_names=_output_names(model),
        output_shapes=[tuple(o.shape) for o in outputs],
        softmax_outputs=softmax,
        calls=calls,
        call_counts=counts,
        depends=depends,
    )
    for index, out in enumerate(outputs):
        for path in graph.spatial(index):
            chain = _head_chain(records, path, out)
            graph.heads[(path, index)] = _match_head(chain, path)
            graph.poolings[(path, index)] = _leading_pooling(chain)
    return graph


def _head_chain(records, path: str, output) -> list:
    """``(path, layer)`` of each layer between ``path`` and ``output``, in order.

    The walk follows the layer's output while exactly one layer consumes it on the way to
    ``output``; it ends with ``(None, "(a branch)")`` where the path forks or merges, and
    stops after a layer with several inputs.
    """
    import tensorflow as tf

    leaves = [r for r in records if not _is_graph_model(r[1])]
    target = _pass_through(output).name
    reaches = _ancestors(output)
    tensor = next(o for p, _, _, o in records if p == path)
    chain: list = []  # (path, layer) of each layer between `path` and the output
    while _pass_through(tensor).name != target and len(chain) <= 64:
        name = _pass_through(tensor).name
        consumers = [
            r for r in leaves
            if tf.is_tensor(r[3]) and r[3].name in reaches
            and _pass_through(r[3]).name != name  # not a layer that returned its input
            and any(tf.is_tensor(i) and _pass_through(i).name == name for i in r[2])
        ]
        if len(consumers) != 1:
            chain.append((None, "(a branch)"))
            break
        consumer_path, consumer, inputs, out = consumers[0]
        chain.append((consumer_path, consumer))
        if len(inputs) != 1:
            break
        tensor = out
    return chain


def _leading_pooling(chain: list) -> str | None:
    """The path of the global pooling layer that the chain starts with, or None.

    Only layers that are the identity at inference time may come before it. When this is
    a path, the explained layer reaches the logits only through that pooling, and the
    pooling of a channel set to zero is zero (for average and max pooling alike): the rest
    of the head can be run on pooled vectors instead of whole activation maps.
    """
    for item_path, item in chain:
        if isinstance(item, str):
            return None
        name = type(item).__name__
        if name in _IDENTITY_AT_INFERENCE or (
            name == "Activation" and _activation_name(item) == "linear"
        ):
            continue
        if name in _POOLINGS and getattr(item, "data_format", "channels_last") == "channels_last":
            return item_path
        return None
    return None


def _activation_name(layer) -> str:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", str(activation))


def _is_softmax_layer(layer, name: str) -> bool:
    return name == "Softmax" or (name == "Activation" and _activation_name(layer) == "softmax")


def _match_head(chain: list, path: str) -> CamHead | str:
    """Check ``chain`` against identity* pooling (identity|Flatten)* Dense (softmax|identity)*."""
    names = tuple(c if isinstance(c, str) else type(c).__name__ for _, c in chain)
    described = " -> ".join(names) or "nothing"
    reason = (
        f"layer {path!r} reaches the logits through {described}, not through global average "
        "(or max) pooling followed by one Dense layer"
    )
    pooling, dense = None, None
    for (item_path, item), name in zip(chain, names):
        if isinstance(item, str):
            return reason
        if name in _IDENTITY_AT_INFERENCE or (
            name == "Activation" and _activation_name(item) == "linear"
        ):
            continue
        if dense is None and pooling is None and name in _POOLINGS:
            if getattr(item, "data_format", "channels_last") != "channels_last":
                return reason
            pooling = _POOLINGS[name]
        elif dense is None and pooling is not None and name == "Flatten":
            continue
        elif dense is None and pooling is not None and name == "Dense":
            if _activation_name(item) not in ("linear", "softmax"):
                return reason + f" (its Dense layer has a {_activation_name(item)} activation)"
            dense = item_path
        elif dense is not None and _is_softmax_layer(item, name):
            continue
        else:
            return reason
    if pooling is None or dense is None:
        return reason
    return CamHead(pooling=pooling, dense=dense, chain=names)


# --------------------------------------------------------------------------- per-model cache

_CACHE: "weakref.WeakKeyDictionary[Any, dict]" = weakref.WeakKeyDictionary()


def model_cache(model) -> dict:
    """A dict that lives as long as ``model`` and is dropped with it (never keeps it alive).

    Whatever is stored in it must not hold a strong reference to the model itself.
    """
    try:
        return _CACHE.setdefault(model, {})
    except TypeError:  # not weak-referenceable: no caching
        return {}


def describe_model(model) -> ModelGraph:
    """The cached analysis of ``model`` (its layer calls, outputs and CAM heads)."""
    _check_model(model)
    cache = model_cache(model)
    if "graph" not in cache:
        cache["graph"] = _analyse(model)
    return cache["graph"]


# --------------------------------------------------------------------------- public lookups


def _closest_first(name: str, candidates: list[str]) -> list[str]:
    key = name.lower()
    return sorted(
        candidates,
        key=lambda c: -max(
            difflib.SequenceMatcher(None, key, c.lower()).ratio(),
            difflib.SequenceMatcher(None, key, c.rsplit("/", 1)[-1].lower()).ratio(),
        ),
    )


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
            close = difflib.get_close_matches(output, every, n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise ValueError(
                f"Model {graph.model_name!r} has no output named {output!r}.{hint} Its "
                f"outputs: {described}."
            )
        index = matches[0]
    else:
        raise TypeError(f"output must be None, an int or a str, not {type(output).__name__}.")
    shape = graph.output_shapes[index]
    if len(shape) != 2:
        raise ValueError(
            f"Output {index} of model {graph.model_name!r} has shape {shape}; CAM methods "
            "explain a classification output of shape (batch, classes)."
        )
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


def _find_path(model, graph: ModelGraph, layer) -> str | None:
    """The path of a layer object inside ``model`` (nested models searched), or None."""

    def search(container, prefix):
        for child in getattr(container, "layers", []):
            path = prefix + child.name
            if child is layer:
                return path
            if _is_graph_model(child):
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


def resolve_layer(model, layer=None, output=None) -> str:
    """The path of the layer whose output is explained.

    Args:
        model: a Keras Sequential or functional model.
        layer: None (the last spatial layer that the logits depend on), a layer name, a path
            ``"outer/inner"`` into a nested model, an int index into ``model.layers``
            (negative allowed, as in ``model.layers[index]``) or a layer object.
        output: for multi-output models, the output (index or name) the logits come from.

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
    known = {c.path: c for c in graph.calls}

    if layer is None:
        if not candidates:
            raise ValueError(
                f"Model {graph.model_name!r} has no layer with a spatial output "
                "(batch, height, width, channels) that its logits depend on, so there is "
                "nothing to map. Is it an image classifier?"
            )
        return candidates[-1]

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
    elif isinstance(layer, str):
        path = layer.strip("/")
        if path not in known:
            raise ValueError(
                f"Model {graph.model_name!r} has no layer {layer!r}. Candidate spatial "
                f"layers, closest names first: {_listing(_closest_first(path, candidates))}. "
                "A layer inside a nested model is named by its path, e.g. 'outer/inner'."
            )
    elif isinstance(layer, _keras().layers.Layer):
        found = _find_path(model, graph, layer)
        if found is None or found not in known:
            raise ValueError(
                f"Layer {layer.name!r} is not part of model {graph.model_name!r}. Candidate "
                f"spatial layers: {_listing(_closest_first(layer.name, candidates))}."
            )
        path = found
    else:
        raise TypeError(
            "layer must be None, a name or 'outer/inner' path, an int index or a layer "
            f"object, not {type(layer).__name__}."
        )

    call = known[path]
    if graph.call_counts[path] > 1:
        raise ValueError(
            f"Layer {path!r} is called {graph.call_counts[path]} times in the model, so its "
            f"output is ambiguous. Candidate spatial layers: {_listing(candidates)}."
        )
    if not _is_spatial(call.shape):
        shape = call.shape if call.shape is not None else "several tensors"
        raise ValueError(
            f"Layer {path!r} ({call.class_name}) has no spatial output: its output has shape "
            f"{shape}, and CAM methods need (batch, height, width, channels) with more than one "
            f"position. Candidate spatial layers, closest names first: "
            f"{_listing(_closest_first(path, candidates))}."
        )
    if path not in candidates:
        raise ValueError(
            f"The logits of output {index} do not depend on layer {path!r}, so it cannot "
            f"explain them. Candidate spatial layers: {_listing(candidates)}."
        )
    return path


# --------------------------------------------------------------------------- the feature model


class FeatureModel:
    """A model opened at one layer: images -> ``(activations, logits)``.

    Built once per ``(model, layer, output)`` by `feature_model` and cached with the model
    (weakly: the cache dies with the model). Its methods are plain TensorFlow code meant to
    be called inside a ``tf.function``; calling the object itself runs a compiled version.

    Attributes:
        layer: the layer's path.
        output: the index of the explained output.
        activation_shape: ``(height, width, channels)`` of the layer's output (None where
            the model does not fix it).
        num_classes: the number of logits.
        input_shape: the model's input shape ``(None, height, width, channels)``.
        softmax: whether the output is a softmax (the logits are read beneath it).
        pooling: the path of the global pooling layer through which alone the layer reaches
            the logits (only layers that are the identity at inference before it), or None.
    """

    def __init__(self, model, layer: str, output: int):
        graph = describe_model(model)
        self._model = weakref.ref(model)
        self.model_name = model.name
        self.layer = layer
        self.output = output
        self.activation_shape = graph.call(layer).shape[1:]
        self.activation_dtype = graph.call(layer).dtype
        self.num_classes = graph.output_shapes[output][-1]
        self.input_shape = graph.input_shape
        self.input_dtype = graph.input_dtype
        self.softmax = graph.softmax_outputs[output]
        self._head = graph.heads.get((layer, output))
        self.pooling = graph.poolings.get((layer, output))
        self._compiled = None

    def _get_model(self):
        model = self._model()
        if model is None:
            raise ReferenceError("The model of this FeatureModel no longer exists.")
        return model

    def _logits(self, outputs):
        import tensorflow as tf

        logits, _ = _logits_beneath_softmax(_flat(outputs)[self.output])
        return tf.cast(logits, tf.float32)

    def forward(self, images, watch: Callable | None = None):
        """``(activations, logits)`` for a batch; ``watch(activations)`` is called first.

        The activations keep the layer's dtype (watch them for gradients); the logits are
        float32.
        """
        captured = []

        def tap(tensor):
            if watch is not None:
                watch(tensor)
            captured.append(tensor)
            return tensor

        outputs = _Runner(taps={self.layer: tap}).run(self._get_model(), images)
        return captured[0], self._logits(outputs)

    def logits(self, images):
        """The logits of the whole network for a batch of images."""
        return self._logits(_Runner().run(self._get_model(), images))

    def head(self, images, activations, at: str | None = None):
        """The logits when the layer's output is replaced by ``activations``.

        Only the part of the network after the layer runs (what feeds only the layer is
        pruned from the graph); ``images`` feed any path that bypasses the layer.

        ``at`` names another layer whose output is replaced instead (e.g. `pooling`, with
        the output of `pool`); ``activations`` must then have that layer's output dtype.
        """
        import tensorflow as tf

        if at is None:
            replaced = {self.layer: tf.cast(activations, self.activation_dtype)}
        else:
            replaced = {at: activations}
        return self._logits(_Runner(replace=replaced).run(self._get_model(), images))

    def pool(self, activations):
        """The output of the `pooling` layer for the layer's ``activations`` (a graph op).

        Raises ValueError when the layer does not reach the logits through global pooling.
        """
        import tensorflow as tf

        if self.pooling is None:
            raise ValueError(
                f"Layer {self.layer!r} does not reach the logits through a global pooling "
                "layer alone, so its activations cannot be pooled on their own."
            )
        layer = get_layer(self._get_model(), self.pooling)
        return _call_layer(layer, tf.cast(activations, self.activation_dtype))

    def cam_head(self) -> CamHead:
        """The pooling -> Dense head after the layer (raises ValueError when there is none)."""
        head = self._head
        if not isinstance(head, CamHead):
            # Moving the layer only helps when a global pooling lies further down the head.
            closer = (", or choose the layer just before the global pooling"
                      if "GlobalAveragePooling" in head or "GlobalMaxPooling" in head else "")
            raise ValueError(
                f"CAM is not defined here: {head}. CAM (Zhou et al. 2016) needs the layer's "
                "output to reach the logits through GlobalAveragePooling2D (or "
                "GlobalMaxPooling2D) and one Dense layer, with only Dropout-like layers "
                "between. Use method='gradcam', which works with any head (on a pooling -> "
                f"Dense head it gives the same map up to a constant){closer}."
            )
        return head

    def dense_layer(self):
        """The Dense layer of the CAM head, whose kernel holds the class weights."""
        return get_layer(self._get_model(), self.cam_head().dense)

    def __call__(self, images):
        """Run the compiled model: numpy ``(activations, logits)`` for a batch of images."""
        import tensorflow as tf

        if self._compiled is None:
            spec = tf.TensorSpec(self.input_shape, dtype=self.input_dtype)
            self._compiled = tf.function(
                lambda x: tuple(tf.cast(t, tf.float32) for t in self.forward(x)),
                input_signature=[spec], autograph=False,
            )
            self._compiled._omit_frequent_tracing_warning = True
        activations, logits = self._compiled(images)
        return activations.numpy(), logits.numpy()

    def __repr__(self) -> str:
        return (
            f"FeatureModel(model={self.model_name!r}, layer={self.layer!r}, "
            f"output={self.output}, activations={self.activation_shape}, "
            f"classes={self.num_classes})"
        )


def feature_model(model, layer=None, output=None) -> FeatureModel:
    """The cached `FeatureModel` of ``model`` at ``layer`` (see `resolve_layer`)."""
    index = resolve_output(model, output)
    path = resolve_layer(model, layer, index)
    cache = model_cache(model)
    key = ("feature", path, index)
    if key not in cache:
        cache[key] = FeatureModel(model, path, index)
    return cache[key]
