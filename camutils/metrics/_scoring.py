"""Where perturbations happen, and the class probabilities of perturbed images, in batches.

Faithfulness metrics change an image and watch the model's confidence. The change must
happen where it means something:

- a plain Keras model takes float inputs, so they are perturbed as given, in the model's
  input space;
- a `camutils.zoo.ZooModel` takes photos: the uint8 pixels it sees (after its crop and
  resize, at its ``input_size``) are perturbed, rounded back to uint8 and only then
  normalised, so every perturbed image is a real image.

The baseline "zero" means the same in both: the value 0 of the model's input, as in the
RISE code (where 0 of an input standardised by mean and standard deviation is the dataset's
mean colour). For a plain model that is 0 itself; for a zoo model it is the uint8 colour
whose normalised value is nearest to 0, found by normalising every level 0..255 (so it
assumes a per-pixel normaliser): mid-grey 127 for EfficientNet-Lite0's ``(x - 127) / 128``,
black for the course models' ``x / 255``. A plain number as a baseline is a constant in
the perturbation space: ``0`` is 0 of the input for a plain model, a black pixel for a zoo
model.

`PerturbationSpace` holds the images in that space as float32 ``(n, H, W, C)`` and turns a
batch of perturbed images into class probabilities through one compiled forward pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..checks import stacked
from ..model_cache import compiled_forward
from ..model_errors import check_finite_values, run_model
from ..scores import softmax

__all__ = ["PerturbationSpace", "perturbation_space", "zero_pixel", "softmax"]

def _ends_in_softmax(model) -> bool:
    """Whether the model's last layer applies a softmax (so its outputs are probabilities)."""
    import keras

    layer = model
    while hasattr(layer, "layers") and layer.layers:
        layer = layer.layers[-1]
    if isinstance(layer, keras.layers.Softmax):
        return True
    activation = getattr(layer, "activation", None)
    return activation is keras.activations.softmax or getattr(activation, "__name__", "") == "softmax"


@dataclass
class PerturbationSpace:
    """Images in the space where they are perturbed, and the model that scores them.

    Attributes:
        images: float32 ``(n, H, W, C)``: the model's float inputs, or a zoo model's uint8
            pixels as floats in [0, 255].
        pixels: ``True`` for a zoo model (perturbed values are rounded to uint8 and then
            normalised), ``False`` for a plain Keras model (perturbed values go in as they are).
        model: the Keras model that is run.
        normalize: for a zoo model, its uint8 -> float input function.
        probabilities_out: whether the model already outputs probabilities (ends in softmax);
            otherwise its outputs are logits and a softmax is applied.
        zero: float32 ``(C,)``, the value in this space that the model's input sees as 0
            (the "zero" baseline).
    """

    images: np.ndarray
    pixels: bool
    model: Any
    normalize: Callable[[np.ndarray], np.ndarray] | None
    probabilities_out: bool
    zero: np.ndarray

    @property
    def size(self) -> tuple[int, int]:
        return self.images.shape[1], self.images.shape[2]

    def to_inputs(self, batch: np.ndarray) -> np.ndarray:
        """The model's float32 input for a batch in this space."""
        if self.pixels:
            batch = np.rint(np.clip(batch, 0, 255)).astype(np.uint8)
            return np.asarray(self.normalize(batch), dtype=np.float32)
        return np.asarray(batch, dtype=np.float32)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Class probabilities ``(b, classes)`` (float64) for a batch in this space.

        Raises `camutils.model_errors.NonFiniteError` when the model's outputs are NaN or
        infinite (a metric of them would mean nothing).
        """
        inputs = self.to_inputs(batch)
        outputs = np.asarray(run_model(self.model, compiled_forward(self.model), inputs))
        if outputs.ndim != 2:
            raise ValueError(
                f"The model's output has shape {outputs.shape}; the faithfulness metrics need "
                "one score per class, (batch, classes)."
            )
        check_finite_values(self.model, outputs,
                            "the model's outputs on the images a metric scores", inputs,
                            name_images=False)
        if self.probabilities_out:
            return outputs.astype(np.float64)
        if outputs.shape[1] == 1:
            raise ValueError(
                "The model has a single output unit, so a softmax over classes is always 1. "
                "Give it one output per class (logits), or pass output='probabilities' if the "
                "single unit is already the probability of the class."
            )
        return softmax(outputs)


def perturbation_space(model, inputs, output: str = "auto") -> PerturbationSpace:
    """Put ``inputs`` in the space where ``model``'s inputs are meaningfully perturbed.

    Args:
        model: a Keras model, whose ``inputs`` are its float32 ``(n, H, W, C)`` input; or a
            `camutils.zoo.ZooModel`, whose ``inputs`` are RGB uint8 images exactly as the
            network sees them (``(n, *input_size, 3)``: ``explanation.images`` from
            ``zoo.explain``, or ``zoo.preprocess(photos)[1]``).
        output: ``"auto"`` (a model whose last layer is a softmax outputs probabilities,
            any other outputs logits), ``"logits"`` or ``"probabilities"``.
    """
    from ..zoo.model import ZooModel

    if output not in ("auto", "logits", "probabilities"):
        raise ValueError(f"output must be 'auto', 'logits' or 'probabilities'; got {output!r}.")
    if isinstance(model, ZooModel):
        keras_model, normalize, pixels = model.model, model.normalize, True
        images = _zoo_images(model, inputs)
        zero = zero_pixel(model)
    elif hasattr(model, "layers") and callable(model):
        keras_model, normalize, pixels = model, None, False
        images = stacked(inputs, "image", "a batch is one array, so every image needs the "
                         "model's input size: resize them first (camutils.resize).")
        if images.ndim == 3:
            images = images[None]
        if images.ndim != 4:
            raise ValueError(
                f"The model's inputs must be a batch of images, (n, height, width, channels); "
                f"got shape {images.shape}."
            )
        if not (np.issubdtype(images.dtype, np.floating) or np.issubdtype(images.dtype, np.integer)):
            raise ValueError(f"The inputs must be numbers; got dtype {images.dtype}.")
        images = images.astype(np.float32)
        zero = np.zeros(images.shape[3], np.float32)
    else:
        raise TypeError(
            f"model must be a Keras model or a camutils.zoo.ZooModel; got {type(model).__name__}."
        )
    if output == "auto":
        probabilities_out = _ends_in_softmax(keras_model)
    else:
        probabilities_out = output == "probabilities"
    return PerturbationSpace(images, pixels, keras_model, normalize, probabilities_out, zero)


def zero_pixel(zoo) -> np.ndarray:
    """The uint8 colour (per channel) that a zoo model's normaliser maps nearest to 0.

    Every level 0..255 is normalised, in images of the model's input size (so that any
    normaliser that accepts its own input works); returns float32 ``(3,)``.
    """
    h, w = (int(s) for s in zoo.input_size)
    count = -(-256 // (h * w))  # enough images of h x w pixels for 256 levels
    levels = np.resize(np.arange(256, dtype=np.uint8), count * h * w).reshape(count, h, w)
    normalised = np.asarray(zoo.normalize(np.repeat(levels[..., None], 3, axis=3)), np.float64)
    values = normalised.reshape(-1, normalised.shape[-1])[:256]  # the levels 0..255, in order
    return np.abs(values).argmin(axis=0).astype(np.float32)


def _zoo_images(zoo, inputs) -> np.ndarray:
    from ..images import as_batch

    batch = as_batch(inputs)
    size = tuple(int(s) for s in zoo.input_size)
    wrong = [i for i, im in enumerate(batch) if im.shape[:2] != size]
    if wrong:
        raise ValueError(
            f"Images {wrong[:10]} are {batch[wrong[0]].shape[0]} x {batch[wrong[0]].shape[1]}, but "
            f"{zoo.name} sees {size[0]} x {size[1]} images. Pass the images as the network sees "
            "them (after its crop and resize), which is where the maps lie: explanation.images "
            "from the zoo model's explain(...), or its preprocess(photos)[1]."
        )
    return np.stack(batch).astype(np.float32)
