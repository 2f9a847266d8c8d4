"""`ZooModel`: a Keras model with everything needed to explain it.

    lite0 = camutils.load_model("efficientnet_lite0")      # offline ImageNet network
    inputs, seen = lite0.preprocess(photos)                # what the network sees
    lite0.top_k(photos, k=5)                               # [(index, name, probability), ...]
    explanation = lite0.explain(photos, method="cam")      # maps overlay on `seen`

A `ZooModel` knows its preprocessing, input size, class names and default CAM layer, so
that a map always lands on the pixels the network actually saw (after crop and resize).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..checks import positive_int
from ..model_cache import compiled_forward
from ..model_errors import check_finite_values, run_model
from ..scores import softmax

__all__ = ["ZooModel"]


@dataclass
class ZooModel:
    """A Keras model with everything needed to explain it.

    Attributes:
        name: the zoo name (``"efficientnet_lite0"``, ``"shapes_gap"``, ...).
        model: the Keras model. Its outputs are logits where the network allows it.
        input_size: ``(height, width)`` of the network's input.
        class_names: one name per output class.
        cam_layer: the layer (name or ``outer/inner`` path) that CAM methods use by default.
        prepare: function from a batch of RGB uint8 images (any size) to a batch of RGB
            uint8 images of ``input_size`` as the network sees them (crop and resize).
        normalize: function from that uint8 batch to the float32 network input.
        offline: whether the weights are available without the network.
        info: free-form facts (source of the weights, licence, accuracy, ...).
        task: what the outputs are: ``"classification"`` (class logits, one class per image),
            ``"multilabel"`` (a logit per label, sigmoid), ``"segmentation"`` (per-pixel
            class logits), ``"detection"`` (the course detector's format,
            `camutils.course.detection`) or ``"regression"``. `class_names` names the
            output's last axis.
    """

    name: str
    model: Any
    input_size: tuple[int, int]
    class_names: list[str] = field(repr=False)
    cam_layer: str
    prepare: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    normalize: Callable[[np.ndarray], np.ndarray] = field(repr=False)
    offline: bool = True
    info: dict = field(default_factory=dict, repr=False)
    task: str = "classification"

    def preprocess(self, images) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(inputs, seen)``: the float32 network input and the uint8 images it shows.

        ``images`` is one image or a batch, in any form `camutils.load_image` accepts
        (paths, arrays, sample names); each is converted to RGB uint8 first.
        """
        from ..images import as_batch

        seen = self.prepare(as_batch(images))
        return self.normalize(seen), seen

    def logits(self, images, batch_size: int = 32) -> np.ndarray:
        """The model's outputs (logits) for ``images``, shape ``(n, classes)``, float32.

        Images are preprocessed and run in batches of ``batch_size`` through a compiled
        (``tf.function``) forward pass, with a progress bar when there are many batches.
        """
        inputs, _ = self.preprocess(images)
        return self.predict_inputs(inputs, batch_size)

    def predict_inputs(self, inputs: np.ndarray, batch_size: int = 32) -> np.ndarray:
        """Run already preprocessed ``inputs`` (float32, as `normalize` returns) in batches.

        Raises `camutils.model_errors.NonFiniteError` (naming the images and the cause) when
        the outputs are NaN or infinite.
        """
        from tqdm.auto import tqdm

        batch_size = positive_int(batch_size, "batch_size")
        forward = compiled_forward(self.model)
        starts = range(0, len(inputs), batch_size)
        outputs = [
            np.asarray(run_model(self.model, forward,
                                 np.asarray(inputs[i:i + batch_size], np.float32)))
            for i in tqdm(starts, desc=f"{self.name} forward", unit="batch",
                          disable=len(starts) <= 4, leave=False)
        ]
        outputs = np.concatenate(outputs, axis=0).astype(np.float32, copy=False)
        check_finite_values(self.model, outputs, "the model's outputs", inputs)
        return outputs

    def top_k(self, images, k: int = 5) -> list[list[tuple[int, str, float]]]:
        """For each image, the ``k`` most probable classes as ``(index, name, probability)``."""
        k = positive_int(k, "k")
        logits = self.logits(images)
        k = min(k, logits.shape[1])
        probs = softmax(logits)
        order = np.argsort(-probs, axis=1)[:, :k]
        return [
            [(int(i), self.class_names[i], float(p[i])) for i in row]
            for row, p in zip(order, probs)
        ]

    def explain(self, images, method: str = "gradcam", target=None, layer=None, **options):
        """Preprocess ``images`` and explain them; the result's ``images`` are the seen pixels."""
        from ..methods import explain

        inputs, seen = self.preprocess(images)
        explanation = explain(
            self.model, inputs, method=method, target=target,
            layer=self.cam_layer if layer is None else layer,
            class_names=self.class_names, **options,
        )
        explanation.images = seen
        return explanation
