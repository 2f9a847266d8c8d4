"""What one symbolic run of a model tells about it: its layers, outputs and CAM heads.

    graph = describe_model(model)          # cached with the model
    graph.spatial()                        # paths of the spatial layers the logits depend on
    graph.heads[("last_conv", 0)]          # CamHead(pooling="average", dense="logits", ...)

The model is traced once (symbolically, batch size unknown) by `camutils.methods.model_runner`,
recording every layer call; the traced TensorFlow graph then says which layers each output
depends on, whether an output is a softmax (its logits are the softmax's input), and how each
spatial layer reaches the logits (for CAM: global pooling, then one Dense layer). The result
is plain data (no tensors, no model), kept in the model's cache (`camutils.model_cache`).

Logits beneath a softmax
    Scores are logits. When the chosen output is produced by a softmax (a ``Dense`` with
    ``activation="softmax"``, a ``Softmax`` layer or ``Activation("softmax")``, also inside a
    nested model), the logits are read from the traced graph: they are the input of that
    softmax operation. The model is not changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..model_cache import cached
from .keras_internals import is_graph_model, output_names, traced_once
from .model_runner import ModelRunner, flat
from .tokens import TokenGrid, TokenOptions, infer_grid, is_token_sequence

__all__ = ["ModelGraph", "CamHead", "describe_model", "is_spatial", "logits_beneath_softmax"]

# Layers that do nothing at inference time: allowed between the pooling and the Dense of a
# CAM head (and before the pooling).
_IDENTITY_AT_INFERENCE = {
    "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
    "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Identity",
}
_POOLINGS = {"GlobalAveragePooling2D": "average", "GlobalMaxPooling2D": "max",
             "GlobalAveragePooling1D": "average", "GlobalMaxPooling1D": "max"}
# Ops that pass a tensor through unchanged (for following tensors across layer boundaries).
_PASS_THROUGH_OPS = {"Identity", "Cast"}


def _pass_through(tensor):
    """Follow Identity / Cast ops back to the tensor that was passed in."""
    while tensor.op.type in _PASS_THROUGH_OPS and len(tensor.op.inputs) == 1:
        tensor = tensor.op.inputs[0]
    return tensor


def logits_beneath_softmax(tensor):
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
    attention: tuple | None = None  # a MultiHeadAttention's (query, key) token counts


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
    patches: dict[str, tuple | None] = field(default_factory=dict)
    grids: dict[str, TokenGrid | str] = field(default_factory=dict)

    def call(self, path: str) -> _LayerCall:
        return next(c for c in self.calls if c.path == path)

    def spatial(self, output: int | None = None) -> list[str]:
        """Paths whose output is one spatial tensor that the output(s) depend on: a feature
        map, or a token sequence whose grid is found from the model (`grids`)."""
        wanted = set().union(*self.depends) if output is None else self.depends[output]
        return [
            c.path for c in self.calls
            if (is_spatial(c.shape) or isinstance(self.grids.get(c.path), TokenGrid))
            and self.call_counts[c.path] == 1 and c.path in wanted
        ]

    def token_grid(self, path: str, options: TokenOptions | None = None) -> TokenGrid:
        """The grid of the token layer at ``path`` (inferred, or as ``options`` say):
        a ValueError that names the token count and the grids that fit when it cannot be
        found, or when the options contradict it."""
        options = options or TokenOptions()
        found = self.grids.get(path)
        if isinstance(found, TokenGrid) and not options.given:
            return found
        call = self.call(path)
        return infer_grid(call.shape[1], self.input_shape[1:3], self.patches.get(path), options,
                          where=f"Layer {path!r} ({call.class_name}) of model "
                                f"{self.model_name!r}")

    def attention(self, output: int) -> list[str]:
        """Paths of the MultiHeadAttention layers (called once) that ``output`` depends on,
        in call order."""
        return [c.path for c in self.calls if c.attention is not None
                and self.call_counts[c.path] == 1 and c.path in self.depends[output]]


def is_spatial(shape) -> bool:
    if shape is None or len(shape) != 4:
        return False
    h, w = shape[1], shape[2]
    return not (h == 1 and w == 1)


def _check_model(model) -> None:
    import keras

    if not isinstance(model, keras.Model):
        raise TypeError(
            f"Expected a Keras model, got {type(model).__name__}. Pass a keras.Model "
            "(Sequential or functional)."
        )
    if not is_graph_model(model):
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


def _analyse(model) -> ModelGraph:
    """Trace the model once (symbolically, batch size unknown) and describe its layers."""
    import tensorflow as tf

    keras_input = model.inputs[0]
    spec = tf.TensorSpec((None, *keras_input.shape[1:]), dtype=keras_input.dtype)
    records: list[tuple] = []
    results: dict[str, Any] = {}

    def trace(images):
        runner = ModelRunner(record=lambda p, l, a, o: records.append((p, l, flat(a), o)))
        outputs = flat(runner.run(model, images))
        results["outputs"] = outputs
        return outputs

    tracer = tf.function(trace, autograph=False)
    traced_once(tracer)  # one trace per model, by design
    tracer.get_concrete_function(spec)
    outputs = results["outputs"]

    calls, counts = [], {}
    for path, layer, args, out in records:
        counts[path] = counts.get(path, 0) + 1
        if counts[path] > 1:
            continue
        single = tf.is_tensor(out)
        calls.append(_LayerCall(
            path, type(layer).__name__, is_graph_model(layer),
            tuple(out.shape) if single else None, out.dtype.name if single else None,
            _attention_tokens(layer, args),
        ))

    logits, softmax, depends = [], [], []
    for out in outputs:
        lg, is_softmax = logits_beneath_softmax(out)
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
        output_names=output_names(model),
        output_shapes=[tuple(o.shape) for o in outputs],
        softmax_outputs=softmax,
        calls=calls,
        call_counts=counts,
        depends=depends,
    )
    _find_token_grids(graph)
    consumers = _Consumers(records)
    for index, out in enumerate(outputs):
        for path in graph.spatial(index):
            chain = consumers.head_chain(path, out)
            graph.heads[(path, index)] = _match_head(chain, path)
            graph.poolings[(path, index)] = _leading_pooling(chain)
    return graph


def _attention_tokens(layer, args) -> tuple | None:
    """For a MultiHeadAttention call: the token counts of its query and of its key/value
    (``layer(query, value, key=None, ...)``); None for any other layer."""
    import keras

    if not isinstance(layer, keras.layers.MultiHeadAttention):
        return None
    shapes = [tuple(a.shape) for a in args[:2]]
    return tuple(s[1] if len(s) == 3 else None for s in shapes)


def _find_token_grids(graph: ModelGraph) -> None:
    """Each token layer's grid (or why none was found), from the feature map called last
    before it (the patch embedding) and the input size (`camutils.methods.tokens`)."""
    patches = None
    for call in graph.calls:
        if is_spatial(call.shape):
            patches = (call.path, tuple(call.shape[1:3]))
        elif is_token_sequence(call.shape):
            graph.patches[call.path] = patches if patches and None not in patches[1] else None
            try:
                graph.grids[call.path] = graph.token_grid(call.path, TokenOptions())
            except ValueError as error:
                graph.grids[call.path] = str(error)


class _Consumers:
    """Which layer calls consume each tensor of a traced run (indexed once per model, so
    that walking from every spatial layer to the logits stays linear in the chain's length).
    """

    def __init__(self, records):
        import tensorflow as tf

        self.outputs = {p: o for p, _, _, o in reversed(records)}  # each path's first call
        self.by_input: dict[str, list] = {}
        for record in records:
            _, layer, inputs, out = record
            if is_graph_model(layer) or not tf.is_tensor(out):
                continue
            returned = _pass_through(out).name
            for name in {_pass_through(i).name for i in inputs if tf.is_tensor(i)}:
                if name != returned:  # not a layer that returned its input
                    self.by_input.setdefault(name, []).append(record)
        self._reaches: dict[str, set[str]] = {}

    def head_chain(self, path: str, output) -> list:
        """``(path, layer)`` of each layer between ``path`` and ``output``, in order.

        The walk follows the layer's output while exactly one layer consumes it on the way
        to ``output``; it ends with ``(None, "(a branch)")`` where the path forks or merges,
        and stops after a layer with several inputs.
        """
        target = _pass_through(output).name
        if output.name not in self._reaches:
            self._reaches[output.name] = _ancestors(output)
        reaches = self._reaches[output.name]
        tensor = self.outputs[path]
        chain: list = []
        while _pass_through(tensor).name != target and len(chain) <= 64:
            consumers = [r for r in self.by_input.get(_pass_through(tensor).name, ())
                         if r[3].name in reaches]
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


def describe_model(model) -> ModelGraph:
    """The cached analysis of ``model`` (its layer calls, outputs and CAM heads)."""
    _check_model(model)
    return cached(model, "graph", lambda: _analyse(model))
