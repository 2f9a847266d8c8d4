"""The baselines every method is measured against.

Plain forward pass
    ``model(images, training=False)`` compiled once with ``tf.function`` (batch-agnostic
    signature), the logits fetched as numpy: what any user of the model pays for a batch.

Score-CAM reference: the forward passes it must run
    Score-CAM needs the layer's activations of the ``N`` images (one forward pass of the
    batch), then weighs each channel by the network's output on the image masked by that
    channel: ``N x M`` more images through the whole network, where ``M`` is the number of
    channels used (all ``C``, or ``max_channels``). The reference runs the plain forward pass
    on the ``N`` images, then on ``N x M`` images in batches of the sizes Score-CAM uses
    (``batch_size`` masked images per pass, camutils' default 32), built beforehand: the
    network's arithmetic and nothing else (no masks, no maps).

Ablation-CAM reference: the passes it must run
    Ablation-CAM needs the activations of the ``N`` images (one forward pass of the batch),
    then weighs channel ``k`` by the drop of the class's logit when channel ``k`` of the
    layer's output is zero: the head (the layers from the explained layer to the logits)
    evaluated ``N x C`` times. The reference runs the plain forward pass on the ``N`` images,
    then the head, compiled, on ``N x C`` activation maps (the layer's real output,
    repeated) in batches of Ablation-CAM's sizes (``batch_size``, default 128), built
    beforehand: no ablated copies are made.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = ["References", "batch_sizes", "SCORECAM_BATCH", "ABLATION_BATCH"]

SCORECAM_BATCH = 32   # camutils.scorecam's default batch_size
ABLATION_BATCH = 128  # camutils.ablationcam's default batch_size


def batch_sizes(images: int, channels: int, batch_size: int) -> list[int]:
    """The sizes of the batches camutils' perturbation methods run, in order.

    They follow `camutils.methods.perturbation`'s batching: one image and up to
    ``batch_size`` of its channels per batch, or several whole images per batch.
    """
    from camutils.methods.perturbation import _rectangles

    return [(n1 - n0) * (k1 - k0) for n0, n1, k0, k1 in _rectangles(images, channels,
                                                                     batch_size)]


class References:
    """The baselines of one model and layer, compiled once (batch-agnostic signatures).

    Args:
        model: the Keras model (logits out).
        layer: the layer the perturbation methods explain.
    """

    def __init__(self, model, layer: str):
        from camutils.methods.feature_model import feature_model
        from camutils.model_cache import cached, compiled_forward

        self.feature = feature = feature_model(model, layer)
        self._forward = compiled_forward(model)

        def head():
            import tensorflow as tf

            images = tf.TensorSpec((None, *feature.input_shape[1:]), feature.input_dtype)
            activations = tf.TensorSpec((None, *feature.activation_shape), tf.float32)
            return tf.function(lambda x, a: feature.head(x, a),
                               input_signature=[images, activations], autograph=False)

        # In the model's one cache (camutils.model_cache), like everything compiled for it.
        self._head = cached(model, ("benchmark head", feature.layer), head)

    def forward(self, images) -> np.ndarray:
        """The plain forward pass: logits as numpy."""
        return np.asarray(self._forward(images))

    def scorecam(self, images: np.ndarray, channels: int,
                 batch_size: int = SCORECAM_BATCH) -> tuple[Callable[[], None], int]:
        """``(run, passes)``: the batch's forward pass, then ``len(images) x channels``
        forward passes batched like Score-CAM's; ``passes`` counts the latter."""
        import tensorflow as tf

        sizes = batch_sizes(len(images), channels, batch_size)
        batches = {size: tf.constant(images[np.arange(size) % len(images)])
                   for size in set(sizes)}
        batch = tf.constant(images)

        def run():
            np.asarray(self._forward(batch))
            for size in sizes:
                np.asarray(self._forward(batches[size]))

        return run, sum(sizes)

    def ablationcam(self, images: np.ndarray,
                    batch_size: int = ABLATION_BATCH) -> tuple[Callable[[], None], int]:
        """``(run, passes)``: the batch's forward pass, then ``len(images) x C`` head passes
        batched like Ablation-CAM's; ``passes`` counts the latter."""
        import tensorflow as tf

        activations, _ = self.feature(images)
        sizes = batch_sizes(len(images), activations.shape[-1], batch_size)
        batches = {}
        for size in set(sizes):
            pick = np.arange(size) % len(images)
            batches[size] = (tf.constant(images[pick]), tf.constant(activations[pick]))
        batch = tf.constant(images)

        def run():
            np.asarray(self._forward(batch))
            for size in sizes:
                np.asarray(self._head(*batches[size]))

        return run, sum(sizes)
