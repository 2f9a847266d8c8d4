"""Running a Keras model on TensorFlow tensors, layer by layer, with hooks.

The model is *run* rather than rebuilt: a Sequential model layer by layer, a functional
model node by node through its own graph runner (the one ``Model.call`` uses), nested
models recursively. A hook can read (tap) or replace any layer's output on the way, by its
path (``"conv2"``, ``"outer/inner"``). No Keras model is built, no layer is called on
symbolic Keras tensors (which would add nodes to the user's layers), nothing is cloned and
no attribute is changed. The Keras internals this needs are in
`camutils.methods.keras_internals`.
"""

from __future__ import annotations

from .keras_internals import call_layer, is_graph_model, run_graph

__all__ = ["ModelRunner", "flat"]


class ModelRunner:
    """Runs a Keras model on TensorFlow tensors, layer by layer, with hooks.

    Args:
        taps: path -> function(tensor) -> tensor, applied to that layer's output.
        replace: path -> tensor used instead of that layer's output (the layer is not called,
            so whatever only fed it is pruned from the graph by TensorFlow).
        record: function(path, layer, args, output) called after every layer call.
        attention: path -> function(scores), for MultiHeadAttention layers: the layer is
            called with ``return_attention_scores=True`` (public Keras API, which works on
            a layer first called without it), the function gets its attention
            probabilities, and the model goes on with the layer's output as before.
        watch: function(tensor) called on the tensor arguments of those attention layers
            before they run (a gradient tape's ``watch``: the probabilities are made and
            used inside the layer, so the tape must see the layer's inputs to take
            gradients with respect to them).
    """

    def __init__(self, taps=None, replace=None, record=None, attention=None, watch=None):
        self.taps = taps or {}
        self.replace = replace or {}
        self.record = record
        self.attention = attention or {}
        self.watch = watch

    def run(self, model, inputs, prefix: str = ""):
        """The model's outputs (in its own output structure) for ``inputs``."""
        import keras

        if isinstance(model, keras.Sequential):
            x = inputs
            for layer in model.layers:
                x = self._call(prefix, layer, x)
            return x
        return run_graph(model, inputs, lambda layer, *a, **k: self._call(prefix, layer, *a, **k))

    def _call(self, prefix, layer, *args, **kwargs):
        path = prefix + layer.name
        if path in self.replace:
            out = self.replace[path]
        elif is_graph_model(layer):
            out = self.run(layer, args[0] if len(args) == 1 else list(args), prefix=path + "/")
        elif path in self.attention:
            if self.watch is not None:
                import tensorflow as tf

                for tensor in flat((args, kwargs)):
                    if tf.is_tensor(tensor) and tensor.dtype.is_floating:
                        self.watch(tensor)
            returned = kwargs.get("return_attention_scores", False)
            out, scores = call_layer(layer, *args, **{**kwargs, "return_attention_scores": True})
            self.attention[path](scores)
            out = (out, scores) if returned else out
        else:
            out = call_layer(layer, *args, **kwargs)
        if path in self.taps:
            out = self.taps[path](out)
        if self.record is not None:
            self.record(path, layer, args, out)
        return out


def flat(structure) -> list:
    """The tensors of a (nested) output structure, in order."""
    import keras

    return list(keras.tree.flatten(structure))
