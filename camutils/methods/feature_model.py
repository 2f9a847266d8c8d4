"""A model opened at one layer: images -> ``(activations, logits)``, without modifying it.

    feature = feature_model(model, "conv2")     # cached with the model
    activations, logits = feature(images)       # compiled; numpy out
    feature.head(images, new_activations)       # the logits with the layer's output replaced

Every CAM method looks at one layer's output (the *activations*) and at the *logits*.
`FeatureModel` gives both from one run of the user's model (`camutils.methods.model_runner`),
inside the method's one TensorFlow graph; it also runs the rest of the network from the layer
(the *head*) for Ablation-CAM, and reads the class weights of a CAM head.

A token layer ``(batch, tokens, features)`` is read through its `tokens` grid
(`camutils.methods.tokens`): `to_grid` drops the prefix tokens and reshapes the rest to the
``(batch, h, w, features)`` map every rule reads, and `head` puts a map back in token form.
"""

from __future__ import annotations

import weakref
from typing import Callable

from ..model_cache import cached
from ..model_errors import check_finite_values, run_model
from .keras_internals import call_layer, traced_once
from .layers import get_layer, resolve_layer, resolve_output
from .model_graph import CamHead, describe_model, logits_beneath_softmax
from .model_runner import ModelRunner, flat
from .tokens import TokenGrid, TokenOptions, is_token_sequence

__all__ = ["FeatureModel", "feature_model", "token_grid"]


class FeatureModel:
    """A model opened at one layer: images -> ``(activations, logits)``.

    Built once per ``(model, layer, output, token options)`` by `feature_model` and cached
    with the model (weakly: the cache dies with the model). Its methods are plain TensorFlow code meant to
    be called inside a ``tf.function``; calling the object itself runs a compiled version.

    Attributes:
        layer: the layer's path.
        output: the index of the explained output.
        activation_shape: ``(height, width, channels)`` of the layer's output as a grid
            (None where the model does not fix it).
        tokens: the `TokenGrid` of a token layer (None for a feature map).
        token_options: what the user said about the grid (`TokenOptions`).
        key: what the compiled functions of this feature model are cached by.
        num_classes: the number of logits.
        input_shape: the model's input shape ``(None, height, width, channels)``.
        softmax: whether the output is a softmax (the logits are read beneath it).
        pooling: the path of the global pooling layer through which alone the layer reaches
            the logits (only layers that are the identity at inference before it), or None.
    """

    def __init__(self, model, layer: str, output: int, tokens: TokenOptions | None = None):
        graph = describe_model(model)
        self._model = weakref.ref(model)
        self.model_name = model.name
        self.layer = layer
        self.output = output
        self.token_options = tokens or TokenOptions()
        self.key = (layer, output, self.token_options)
        call = graph.call(layer)
        self.tokens = self._token_grid(graph, call)
        self.activation_shape = call.shape[1:] if self.tokens is None else (
            self.tokens.height, self.tokens.width, call.shape[-1])
        self.activation_dtype = call.dtype
        self.num_classes = graph.output_shapes[output][-1]
        self.input_shape = graph.input_shape
        self.input_dtype = graph.input_dtype
        self.softmax = graph.softmax_outputs[output]
        self._head = graph.heads.get((layer, output))
        self.pooling = graph.poolings.get((layer, output))
        if self.tokens is not None and self.tokens.prefix:
            # a pooling over every token pools the prefix too: no shortcut through it
            self.pooling = None
        self._compiled = None

    def _token_grid(self, graph, call) -> TokenGrid | None:
        """The grid of a token layer (ValueError when it cannot be found or the options
        contradict it); None for a feature map, where grid options are an error."""
        if is_token_sequence(call.shape):
            return graph.token_grid(self.layer, self.token_options)
        if self.token_options.given:
            raise ValueError(
                f"{self.token_options} describe a token layer (batch, tokens, features), but "
                f"layer {self.layer!r} gives {call.shape}, a feature map already: leave them "
                "out, or name a token layer.")
        return None

    def _get_model(self):
        model = self._model()
        if model is None:
            raise ReferenceError("The model of this FeatureModel no longer exists.")
        return model

    def logits_of(self, outputs):
        """The float32 logits of the explained output, from the model's ``outputs`` (read
        beneath the softmax when the output is one)."""
        import tensorflow as tf

        logits, _ = logits_beneath_softmax(flat(outputs)[self.output])
        return tf.cast(logits, tf.float32)

    def run(self, images, watch: Callable | None = None):
        """``(layer output, model outputs)`` for a batch: one run of the model, the layer's
        output tapped on the way (and ``watch(layer output)`` called first, for gradients).
        The layer's output keeps its dtype; `to_grid` makes activations of it."""
        captured = []

        def tap(tensor):
            if watch is not None:
                watch(tensor)
            captured.append(tensor)
            return tensor

        outputs = ModelRunner(taps={self.layer: tap}).run(self._get_model(), images)
        return captured[0], outputs

    def to_grid(self, tensor):
        """The layer's output (or its gradient) as a spatial grid ``(N, h, w, C)`` float32.

        The one step between what the layer gives and what every rule reads: a feature map
        is a grid already; a token sequence ``(N, tokens, features)`` loses its prefix
        tokens and the rest is reshaped to its grid (`tokens`); the gradients pass through
        the same step.
        """
        import tensorflow as tf

        tensor = tf.cast(tensor, tf.float32)
        return tensor if self.tokens is None else self.tokens.to_grid(tensor)

    def prefix_tokens(self, images):
        """The prefix tokens of the layer's output for ``images`` ``(N, prefix, features)``
        (graph code; only the model up to the layer runs), or None when there are none."""
        if self.tokens is None or not self.tokens.prefix:
            return None
        return self.run(images)[0][:, :self.tokens.prefix]

    def run_attention(self, images, paths, watch: Callable | None = None):
        """``(attention probabilities, model outputs)``: one run of the model in which each
        MultiHeadAttention layer of ``paths`` also returns its probabilities ``(N, heads,
        T, S)`` (in their own dtype, in the order of ``paths``). ``watch`` (a gradient
        tape's) is called on each attention layer's inputs before it runs, so that the
        probabilities' gradients can be taken."""
        scores = {}

        def tap(path):
            def keep(tensor):
                scores[path] = tensor
            return keep

        runner = ModelRunner(attention={p: tap(p) for p in paths}, watch=watch)
        outputs = runner.run(self._get_model(), images)
        return [scores[p] for p in paths], outputs

    def forward(self, images, watch: Callable | None = None):
        """``(activations, logits)`` for a batch, both float32; ``watch(layer output)`` is
        called first."""
        tapped, outputs = self.run(images, watch)
        return self.to_grid(tapped), self.logits_of(outputs)

    def outputs(self, images):
        """The model's outputs (in its own structure) for a batch of images."""
        return ModelRunner().run(self._get_model(), images)

    def logits(self, images):
        """The logits of the whole network for a batch of images."""
        return self.logits_of(self.outputs(images))

    def head_outputs(self, images, activations, at: str | None = None, prefix=None):
        """The model's outputs when the layer's output is replaced by ``activations`` (a
        grid).

        Only the part of the network after the layer runs (what feeds only the layer is
        pruned from the graph); ``images`` feed any path that bypasses the layer. A token
        layer's output is rebuilt from the grid after its ``prefix`` tokens
        (`prefix_tokens`; needed when it has some).

        ``at`` names another layer whose output is replaced instead (e.g. `pooling`, with
        the output of `pool`); ``activations`` must then have that layer's output dtype.
        """
        import tensorflow as tf

        if at is None:
            if self.tokens is not None:
                activations = self.tokens.from_grid(activations, prefix)
            replaced = {self.layer: tf.cast(activations, self.activation_dtype)}
        else:
            replaced = {at: activations}
        return ModelRunner(replace=replaced).run(self._get_model(), images)

    def head(self, images, activations, at: str | None = None, prefix=None):
        """The logits when the layer's output is replaced by ``activations`` (see
        `head_outputs`)."""
        return self.logits_of(self.head_outputs(images, activations, at, prefix))

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
        if self.tokens is not None:  # no prefix tokens here (see __init__)
            activations = self.tokens.from_grid(activations)
        return call_layer(layer, tf.cast(activations, self.activation_dtype))

    def cam_head(self) -> CamHead:
        """The pooling -> Dense head after the layer (raises ValueError when there is none)."""
        head = self._head
        if head is None:  # a layer the graph does not read as spatial (a token layer whose
            # grid the user gave): its head was not traced
            head = f"no global pooling -> Dense head was traced after layer {self.layer!r}"
        if isinstance(head, CamHead) and self.tokens is not None and self.tokens.prefix:
            head = (f"layer {self.layer!r} reaches the logits through {' -> '.join(head.chain)}"
                    f", which pools its {self.tokens.prefix} prefix token(s) with the grid's "
                    "tokens, so the class weights do not map the score onto the grid alone")
        if not isinstance(head, CamHead):
            # Moving the layer only helps when a global pooling lies further down the head.
            closer = (", or choose the layer just before the global pooling"
                      if "GlobalAveragePooling" in head or "GlobalMaxPooling" in head else "")
            raise ValueError(
                f"CAM is not defined here: {head}. CAM (Zhou et al. 2016) needs the layer's "
                "output to reach the logits through GlobalAveragePooling2D (or "
                "GlobalMaxPooling2D; for tokens without a prefix, the 1D ones) and one Dense "
                "layer, with only Dropout-like layers between. Use method='gradcam', which works with any head (on a pooling -> "
                f"Dense head it gives the same map up to a constant){closer}."
            )
        return head

    def dense_layer(self):
        """The Dense layer of the CAM head, whose kernel holds the class weights."""
        return get_layer(self._get_model(), self.cam_head().dense)

    def __call__(self, images):
        """Run the compiled model: numpy ``(activations, logits)`` for a batch of images.

        Raises `camutils.model_errors.NonFiniteError` when either is NaN or infinite, and a
        clear ValueError when the images are too small for the model's layers. Runs as a
        graph even under ``tf.config.run_functions_eagerly(True)`` (see
        `camutils.methods.pipeline`).
        """
        import tensorflow as tf

        if self._compiled is None:
            spec = tf.TensorSpec(self.input_shape, dtype=self.input_dtype)
            self._compiled = tf.function(
                lambda images: self.forward(images),
                input_signature=[spec], autograph=False,
            )
            traced_once(self._compiled)
        model = self._get_model()
        activations, logits = (t.numpy() for t in run_model(
            model, self._compiled.get_concrete_function(), images))
        check_finite_values(model, activations, f"the activations of layer {self.layer!r}",
                            images)
        check_finite_values(model, logits, "the model's logits", images)
        return activations, logits

    def __repr__(self) -> str:
        tokens = "" if self.tokens is None else f", tokens={self.tokens.describe()!r}"
        return (
            f"FeatureModel(model={self.model_name!r}, layer={self.layer!r}, "
            f"output={self.output}, activations={self.activation_shape}, "
            f"classes={self.num_classes}{tokens})"
        )


def feature_model(model, layer=None, output=None, tokens: TokenOptions | None = None
                  ) -> FeatureModel:
    """The cached `FeatureModel` of ``model`` at ``layer`` (see `resolve_layer`); ``tokens``
    says what the user said about a token layer's grid."""
    tokens = tokens or TokenOptions()
    index = resolve_output(model, output)
    path = resolve_layer(model, layer, index, tokens)
    return cached(model, ("feature", path, index, tokens),
                  lambda: FeatureModel(model, path, index, tokens))


def token_grid(model, layer=None, *, output=None, grid=None, prefix_tokens=None
               ) -> TokenGrid | None:
    """How camutils reads a token layer as a grid: its `camutils.methods.tokens.TokenGrid`
    (``prefix`` tokens, then a ``height x width`` grid, and ``describe()`` says how that was
    found); None for a feature map.

        camutils.token_grid(vit)                      # the layer explained by default
        camutils.token_grid(vit, "encoder3_out").describe()
        # '65 tokens: 1 prefix token, then an 8 x 8 grid (from the 8 x 8 feature map ...)'

    ``layer``, ``output``, ``grid`` and ``prefix_tokens`` as in `camutils.explain`; the same
    errors where no grid, or several, fit.
    """
    from .tokens import TokenOptions

    return feature_model(model, layer, output, TokenOptions.of(grid, prefix_tokens)).tokens
