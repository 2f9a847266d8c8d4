"""The passes: one compiled function per (model, layer, output, target, kind of pass), whose
outputs every rule of that kind reads.

    p = run_pass(request, "layer gradient")     # compiled once, then reused by every rule
    gradcam_weights(p)                          # a rule: plain TensorFlow on p's tensors

A rule never compiles anything of its own: switching from Grad-CAM to LayerCAM on the same
model and layer runs the same compiled pass (no new trace) and applies another rule to its
outputs. The kinds are named by the method table's cost classes:

    "forward"          activations, logits, target classes and scores (CAM, Eigen-CAM, and
                       the first pass of Score-CAM and Ablation-CAM)
    "layer gradient"   and the gradients of each target's score with respect to the
                       activations (the Grad-CAM family)
    "input gradient"   the forward pass under guided ReLUs, the ordinary gradients at the
                       layer, and the guided gradients with respect to the input pixels
                       (guided backpropagation and Guided Grad-CAM)
    "attention"        the logits, target classes and scores, and the attention
                       probabilities of every self-attention layer (attention rollout)
    "attention gradient"  and the gradients of the scores with respect to those
                       probabilities (gradient-weighted rollout)

Each pass runs the model once, in this order, one function per step:

    images -> FeatureModel.run: the model's outputs, the layer's output tapped on the way
      -> FeatureModel.to_grid: the layer's output as a grid (N, h, w, C) (and its gradients)
      -> class_scores: the explained score of each image and target, from the outputs
         (the target's `select` and `score`: `camutils.targets`)
      -> the gradients of those scores (for the gradient kinds)

`class_scores` is the one place where the score is computed from the model's outputs, and
`to_grid` the one place where a layer's output becomes a spatial grid. A target adds no
pass: its choice (the top class, a predicted mask, the strongest detection) and its score
are a few ops on the outputs of the same run.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..model_errors import NonFiniteError
from .pipeline import (
    Request, check_finite_flags, compiled, compiled_maps, explanation, finite_flags, make_maps,
    map_check, signature,
)

__all__ = ["Pass", "PASS_KINDS", "class_scores", "layer_pass", "run_pass", "pass_checks",
           "check_pass_flags", "SCORES_COLUMN", "scores_column",
           "guided_relus", "run_one_pass", "one_pass_chain", "chain_checks"]

#: The kinds of pass, and what each adds to the one before.
PASS_KINDS = {
    "forward": "activations, logits, target classes and scores",
    "layer gradient": "the gradients of the scores with respect to the activations",
    "input gradient": "the forward pass under guided ReLUs; the ordinary gradients at the "
                      "layer, and the guided gradients with respect to the input pixels",
    "attention": "logits, target classes and scores, and the attention probabilities of "
                 "every self-attention layer",
    "attention gradient": "the gradients of the scores with respect to the attention "
                          "probabilities",
}
_ATTENTION_KINDS = ("attention", "attention gradient")


@dataclass
class Pass:
    """What one pass gives a rule. Tensors, float32 except ``classes``.

    Attributes:
        activations: ``(N, h, w, C)``, the layer's output ``A`` as a grid (None in an
            attention pass).
        logits: the explained output's values, beneath its softmax if it has one:
            ``(N, classes)`` for a classifier, ``(N, H, W, classes)`` for a segmenter, ...
        classes: int32 ``(N, k)``, the class (label, unit) of each target, -1 for none.
        scores: ``(N, k)``, the explained score of each target (by default its logit).
        feature: the `camutils.methods.feature_model.FeatureModel` (for rules that read
            weights).
        target: the `camutils.targets.Target` (for rules that re-evaluate it or read its
            linear terms).
        state: the target's state (`camutils.targets.Target.select`): a dict of batch-first
            tensors, ``classes`` among them.
        gradients: ``(N, k, h, w, C)``, ``dS/dA`` for each target's score ``S`` (None in a
            forward pass).
        input_gradients: ``(N, k, H, W, C)``, the guided gradients of each score with
            respect to the input pixels (None but in an input-gradient pass).
        attentions: in an attention pass, one ``(N, heads, T, T)`` per self-attention
            layer, first layer first (`camutils.methods.attention`): the probabilities
            ``A`` with which each query token (row) reads each token (column).
        attention_gradients: in an "attention gradient" pass, one ``(N, k, heads, T, T)``
            per layer: ``dS/dA`` for each target's score ``S``.
        finite: bool ``(N, checks)``, `finite_flags` of the values above (see
            `pass_checks`).
    """

    activations: Any
    logits: Any
    classes: Any
    scores: Any
    feature: Any
    gradients: Any = None
    input_gradients: Any = None
    attentions: Any = None
    attention_gradients: Any = None
    finite: Any = None
    target: Any = None
    state: Any = None


def class_scores(feature, outputs, data, target):
    """The explained score of each image and target, from the model's ``outputs``:
    ``(values, state, scores (N, k))``.

    ``values`` are the explained output's (beneath its softmax, for a model that ends in
    one); ``target`` is a `camutils.targets.Target` and ``data`` its per-image data (the
    pass's input). The target chooses in the graph what each map explains (``state``, with
    the ``classes``), then scores it. Everything a pass explains goes through this one
    function of the outputs.
    """
    import tensorflow as tf

    values = feature.logits_of(outputs)
    state = target.select(values, data)
    scores = tf.cast(target.score(outputs, values, state), tf.float32)
    return values, state, scores


def _gradients(tape, totals, source, grid):
    """``(N, k, ...)``: the gradient of each total with respect to ``source``, through
    ``grid`` (the step to a spatial grid), as float32."""
    import tensorflow as tf

    zero = tf.UnconnectedGradients.ZERO
    return tf.stack([grid(tf.cast(tape.gradient(total, source, unconnected_gradients=zero),
                                  tf.float32))
                     for total in totals], axis=1)


def layer_pass(feature, images, data, target, kind: str) -> Pass:
    """One pass of ``kind`` (`PASS_KINDS`) in graph code: the `Pass` for a batch, its
    ``finite`` flags folded in.

    ``target`` is a `camutils.targets.Bound` (its `Target` and ``k``); ``data`` its
    per-image data (a dict of tensors).
    """
    import tensorflow as tf

    chosen = target.target
    if kind in _ATTENTION_KINDS:
        return attention_pass(feature, images, data, target, kind == "attention gradient")
    if kind == "forward":
        tapped, outputs = feature.run(images)
        activations = feature.to_grid(tapped)
        values, state, scores = class_scores(feature, outputs, data, chosen)
        return Pass(activations, values, state["classes"], scores, feature,
                    finite=finite_flags(activations, values, scores), target=chosen,
                    state=state)
    guided = kind == "input gradient"
    if not guided and kind != "layer gradient":
        raise ValueError(f"Unknown kind of pass {kind!r}; kinds: {', '.join(PASS_KINDS)}.")
    with tf.GradientTape(persistent=target.k > 1, watch_accessed_variables=False) as tape:
        with guided_relus() if guided else contextlib.nullcontext():
            tapped, outputs = feature.run(images, watch=tape.watch)
        values, state, scores = class_scores(feature, outputs, data, chosen)
        totals = [tf.reduce_sum(scores[:, j]) for j in range(target.k)]
    activations = feature.to_grid(tapped)
    # The tape takes the ordinary gradients even where the ReLUs are guided: it looks an
    # op's gradient up by the op's type, whereas tf.gradients honours the override.
    gradients = _gradients(tape, totals, tapped, feature.to_grid)
    common = dict(target=chosen, state=state)
    if not guided:
        return Pass(activations, values, state["classes"], scores, feature, gradients,
                    finite=finite_flags(activations, values, scores, gradients), **common)
    inputs = tf.stack([
        tf.cast(tf.gradients(total, images,
                             unconnected_gradients=tf.UnconnectedGradients.ZERO)[0],
                tf.float32)
        for total in totals], axis=1)
    return Pass(activations, values, state["classes"], scores, feature, gradients, inputs,
                finite=finite_flags(activations, values, scores, gradients, inputs), **common)


def attention_pass(feature, images, data, target, gradients: bool) -> Pass:
    """An attention pass in graph code (see `layer_pass`): the model run once with every
    self-attention layer returning its probabilities (`camutils.methods.attention`), and
    with ``gradients`` the gradients of the scores with respect to them."""
    import tensorflow as tf

    from .attention import attention_layers

    paths = attention_layers(feature).paths
    chosen = target.target
    with tf.GradientTape(persistent=target.k > 1, watch_accessed_variables=False) as tape:
        attentions, outputs = feature.run_attention(images, paths,
                                                    tape.watch if gradients else None)
        values, state, scores = class_scores(feature, outputs, data, chosen)
        totals = [tf.reduce_sum(scores[:, j]) for j in range(target.k)]
    grads = None
    if gradients:
        zero = tf.UnconnectedGradients.ZERO
        per_target = [tape.gradient(total, attentions, unconnected_gradients=zero)
                      for total in totals]
        grads = [tf.stack([tf.cast(g[layer], tf.float32) for g in per_target], axis=1)
                 for layer in range(len(paths))]
    attentions = [tf.cast(a, tf.float32) for a in attentions]
    flags = [_all_finite(attentions)] + ([] if grads is None else [_all_finite(grads)])
    finite = tf.concat([finite_flags(values, scores), *[f[:, None] for f in flags]], axis=1)
    return Pass(None, values, state["classes"], scores, feature, attentions=attentions,
                attention_gradients=grads, finite=finite, target=chosen, state=state)


def _all_finite(tensors):
    """bool ``(N,)``: whether each image's values in every tensor are finite."""
    import tensorflow as tf

    return tf.reduce_all(finite_flags(*tensors), axis=1)


#: The column of a pass's ``finite`` flags that checks the target's scores (after the
#: activations and the logits; an attention pass has no activations column).
SCORES_COLUMN = 2


def scores_column(kind: str) -> int:
    """The column of a ``kind`` pass's ``finite`` flags that checks the target's scores."""
    return SCORES_COLUMN - 1 if kind in _ATTENTION_KINDS else SCORES_COLUMN


def pass_checks(feature, kind: str, target: str = "the target") -> tuple[str, ...]:
    """What the columns of a ``kind`` pass's ``finite`` flags check, in order (``target``
    describes the target, for the scores' column)."""
    beneath = " (beneath its softmax)" if feature.softmax else ""
    if kind in _ATTENTION_KINDS:
        checks = (f"the model's logits{beneath}", f"the scores of {target}",
                  "the attention probabilities")
        return checks + (("the gradients of the scores with respect to the attention "
                          "probabilities",) if kind == "attention gradient" else ())
    checks = (f"the activations of layer {feature.layer!r}", f"the model's logits{beneath}",
              f"the scores of {target}")
    if kind != "forward":
        checks += (f"the gradients of the scores with respect to layer {feature.layer!r}",)
    if kind == "input gradient":
        checks += ("the guided gradients of the scores with respect to the input pixels",)
    return checks


def check_pass_flags(request: Request, flags, kind: str) -> None:
    """`check_finite_flags` of a pass, where scores that are not finite from outputs that
    are raise a `NonFiniteError` that blames the target's score (a function's log of 0)."""
    flags = np.asarray(flags)
    column = scores_column(kind)
    scores = ~flags[:, column] & flags[:, :column].all(axis=1)
    if scores.any():
        description = request.target.description
        raise NonFiniteError(
            f"The scores of the target {description} are NaN or infinite for {{images}}, "
            "while the model's outputs there are finite: the target's score made them (a "
            "function that takes the log of 0 or divides by 0?). Fix the score function, or "
            "leave those images out.", np.flatnonzero(scores))
    check_finite_flags(request, flags, pass_checks(request.feature, kind,
                                                   request.target.description))


_FIELDS = ("activations", "logits", "classes", "scores", "gradients", "input_gradients",
           "attentions", "attention_gradients", "finite", "state")


def run_pass(request: Request, kind: str) -> Pass:
    """The ``kind`` pass of a request's images: compiled once per model, layer, output,
    target (its kind, number of maps and data shapes: a class index or a mask is an
    input, not a constant) and kind of pass, then reused by every rule and batch size. Its
    values are checked to be finite (`NonFiniteError` otherwise)."""
    feature, target = request.feature, request.target

    def build():
        def graph(images, data):
            p = layer_pass(feature, images, data, target, kind)
            return {name: getattr(p, name) for name in _FIELDS if getattr(p, name) is not None}

        return graph

    function = compiled(request, ("pass", kind, target.key), build, signature(request))
    values = function(request.images, target.data)
    check_pass_flags(request, values["finite"], kind)
    return Pass(feature=feature, target=target.target,
                **{name: values.get(name) for name in _FIELDS})


# --------------------------------------------------------------------------- guided ReLUs

_GUIDED_RELU = "CamutilsGuidedRelu"
_GUIDED_RELU6 = "CamutilsGuidedRelu6"
_CONV_INPUT = "CamutilsConv2DInputGradient"
_DEPTHWISE_INPUT = "CamutilsDepthwiseInputGradient"
_registered = False


def _guided_relu(op, grad):
    import tensorflow as tf

    return tf.raw_ops.ReluGrad(gradients=tf.nn.relu(grad), features=op.inputs[0])


def _guided_relu6(op, grad):
    import tensorflow as tf

    return tf.raw_ops.Relu6Grad(gradients=tf.nn.relu(grad), features=op.inputs[0])


def _plain(op) -> bool:
    """NHWC, stride 1, no dilation: the convolutions whose input gradient is a forward one."""
    return (op.get_attr("data_format") == b"NHWC" and list(op.get_attr("strides")) == [1] * 4
            and list(op.get_attr("dilations")) == [1] * 4)


def _backprop_attrs(op) -> dict:
    return {name: op.get_attr(name) for name in
            ("strides", "padding", "explicit_paddings", "dilations", "data_format")}


def _conv_input_gradient(op, grad):
    """Conv2D's gradient with respect to its input only (the filter's is not asked for in
    the input-gradient pass): a 1 x 1 convolution's is the forward convolution of the
    gradient with the transposed kernel, which runs faster on a CPU than the backprop op."""
    import tensorflow as tf

    images, kernel = op.inputs
    if _plain(op) and kernel.shape[0] == 1 and kernel.shape[1] == 1:
        return tf.nn.conv2d(grad, tf.transpose(kernel, [0, 1, 3, 2]), 1, "VALID"), None
    return tf.raw_ops.Conv2DBackpropInput(input_sizes=tf.shape(images), filter=kernel,
                                          out_backprop=grad, **_backprop_attrs(op)), None


def _depthwise_input_gradient(op, grad):
    """DepthwiseConv2dNative's gradient with respect to its input only: with stride 1,
    "SAME" padding and an odd square kernel, the forward depthwise convolution of the
    gradient with the kernel flipped in space (faster on a CPU than the backprop op)."""
    import tensorflow as tf

    images, kernel = op.inputs
    k = kernel.shape
    if _plain(op) and op.get_attr("padding") == b"SAME" and k[0] == k[1] and k[0] % 2 == 1 \
            and k[3] == 1:
        return tf.nn.depthwise_conv2d(grad, tf.reverse(kernel, [0, 1]), [1] * 4, "SAME"), None
    return tf.raw_ops.DepthwiseConv2dNativeBackpropInput(
        input_sizes=tf.shape(images), filter=kernel, out_backprop=grad,
        **_backprop_attrs(op)), None


def _register_guided_gradients() -> None:
    """Register the gradients of the input-gradient pass with TensorFlow (once).

    Guided backpropagation (Springenberg et al. 2015) passes a gradient back through a ReLU
    only where both its input and the incoming gradient are positive: the ordinary ReLU
    gradient of the incoming gradient's positive part (for ReLU6, where ``0 < x < 6``). The
    convolutions' gradients are the same values as TensorFlow's, computed for the input
    only, by forward convolutions where that is faster.
    """
    global _registered
    if _registered:
        return
    import tensorflow as tf

    for name, function in ((_GUIDED_RELU, _guided_relu), (_GUIDED_RELU6, _guided_relu6),
                           (_CONV_INPUT, _conv_input_gradient),
                           (_DEPTHWISE_INPUT, _depthwise_input_gradient)):
        try:
            tf.RegisterGradient(name)(function)
        except KeyError:  # already registered (module reloaded)
            pass
    _registered = True


def guided_relus():
    """A context in which the ``Relu`` and ``Relu6`` operations built get guided gradients
    (for ``tf.gradients``, in this graph only: no layer, activation or weight changes), and
    the convolutions input-only ones (`_conv_input_gradient`, `_depthwise_input_gradient`).

    Which activations are "ReLU-like": those TensorFlow computes with a ``Relu`` op (Keras
    ``"relu"``, ``layers.ReLU()``) or a ``Relu6`` op (``"relu6"``, ``layers.ReLU(6.0)`` as
    in EfficientNet-Lite0 and MobileNet). Other activations (leaky ReLU, ELU, GELU, swish)
    keep their ordinary gradients.
    """
    import tensorflow as tf

    _register_guided_gradients()
    graph = tf.compat.v1.get_default_graph()
    return graph.gradient_override_map({
        "Relu": _GUIDED_RELU, "Relu6": _GUIDED_RELU6,
        "Conv2D": _CONV_INPUT, "DepthwiseConv2dNative": _DEPTHWISE_INPUT})


# --------------------------------------------------------------------------- one-pass methods


def run_one_pass(request: Request, method, options: dict):
    """Explain ``request`` with a one-pass ``method`` (a row of the method table): its
    pass (compiled once, shared with every rule of its kind), then its rule on the pass's
    outputs, then `make_maps`. ``options`` are the rule's, checked."""
    import tensorflow as tf

    p = run_pass(request, method.pass_kind)
    out = method.rule(p, **options)
    if method.gives == "pixels":
        raw, maps, finite, extras = make_maps(method.gives, out, p.activations, request.size)
    else:  # one compiled call (the same ops)
        activations = p.activations  # unread for a map; an attention pass has none
        if activations is None:
            activations = tf.zeros((0, 0, 0, 0), tf.float32)
        raw, maps, finite = compiled_maps(method.gives)(
            tf.cast(out, tf.float32), activations, tf.constant(request.size, tf.int32))
        extras = {}
    check_finite_flags(request, finite, (map_check(method.name, method.gives),))
    return explanation(request, method.name, maps, raw, p.classes, p.scores,
                       layer=method.map_source, extras=extras)


def one_pass_chain(feature, method, options: dict, images, data, target):
    """A one-pass method's whole chain in graph code, for a compiled step of one's own
    (`camutils.dataset` runs it on every replica of a ``tf.distribute`` strategy):
    ``(maps, raw, Pass, finite)``, where ``finite`` has the pass's columns and the map's
    (described by `chain_checks`). The same functions as `run_one_pass`, in one graph."""
    import tensorflow as tf

    p = layer_pass(feature, images, data, target, method.pass_kind)
    raw, maps, finite, _ = make_maps(method.gives, method.rule(p, **options), p.activations,
                                     tf.shape(images)[1:3])
    return maps, raw, p, tf.concat([p.finite, finite], axis=1)


def chain_checks(feature, method) -> tuple[str, ...]:
    """What the columns of `one_pass_chain`'s ``finite`` flags check, in order."""
    return (*pass_checks(feature, method.pass_kind), map_check(method.name, method.gives))
