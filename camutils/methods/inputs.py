"""Checking what the user passed: the image batch and the target classes (a method's options
are checked by its row: `camutils.methods.options`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..checks import stacked
from ..model_errors import NonFiniteError
from ..suggestions import did_you_mean
from .explanation import TopK

__all__ = ["image_array", "image_batch", "resolve_target", "Target"]

_RESIZE = ("a batch is one array, so every image needs the model's input size: resize them "
           "first (camutils.resize, or a zoo model's preprocess(), which crops and resizes "
           "each photo).")


def image_array(images) -> np.ndarray:
    """``images`` (numpy, a tensor, or a list of images) as one numpy array; a list of images
    of different sizes raises a ValueError that names two of them and says to resize."""
    return stacked(images, "image", _RESIZE)


def image_batch(images, input_shape: tuple, input_dtype: str, model_name: str) -> np.ndarray:
    """The model's input batch as a numpy array, after checking it.

    Args:
        images: ``(N, H, W, C)`` (or one ``(H, W, C)`` image, taken as a batch of one),
            already preprocessed for the model: numpy, a tensor or nested lists.
        input_shape: the model's input shape ``(None, H, W, C)`` (None where free).

    Raises:
        ValueError: wrong number of dimensions, a shape the model does not take, images
            of different sizes, an empty batch or images without pixels.
        camutils.model_errors.NonFiniteError: NaN or infinite values (a ValueError; the
            message says which images).
        TypeError: not numbers.
    """
    array = image_array(images)
    if array.dtype == object or not (
        np.issubdtype(array.dtype, np.number) or array.dtype == np.bool_
    ):
        raise TypeError(
            f"Images must be numbers (the model's preprocessed input), got dtype {array.dtype}."
        )
    expected = tuple(input_shape[1:])
    if array.ndim == len(expected):
        array = array[None]
    if array.ndim != len(expected) + 1:
        raise ValueError(
            f"Model {model_name!r} takes a batch of shape {_shape(input_shape)}; got an array of "
            f"shape {array.shape}. Pass a batch (N, height, width, channels) or one image "
            "(height, width, channels)."
        )
    if array.shape[0] == 0:
        raise ValueError("The batch of images is empty: pass at least one image.")
    if 0 in array.shape[1:-1]:
        size = " x ".join(str(s) for s in array.shape[1:-1])
        raise ValueError(f"The images have no pixels ({size}): pass real images, of the size "
                         "the model expects.")
    if any(e is not None and e != a for e, a in zip(expected, array.shape[1:])):
        hint = ""
        if array.shape[-1] not in (expected[-1], None) and array.shape[1] == expected[-1]:
            hint = " It looks channels-first: use (N, height, width, channels)."
        raise ValueError(
            f"Model {model_name!r} takes a batch of shape {_shape(input_shape)}; got "
            f"{array.shape}.{hint} Resize and preprocess the images for the model first "
            "(a zoo model's preprocess() does it)."
        )
    array = array.astype(input_dtype, copy=False)
    finite = np.isfinite(array)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(len(array), -1).all(axis=1))
        nans, infs = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        raise NonFiniteError(
            f"The images contain {nans} NaN and {infs} infinite value(s) (in {{images}}); a "
            "map of them would mean nothing. Check the preprocessing (a division by zero?).",
            bad)
    return array


def _shape(shape: tuple) -> str:
    return "(" + ", ".join("N" if i == 0 else ("any" if s is None else str(s))
                           for i, s in enumerate(shape)) + ")"


class Target:
    """The resolved target of an explanation.

    Attributes:
        mode: ``"top"`` (the classes are the highest logits, chosen in the graph) or
            ``"given"`` (the classes are in ``given``).
        k: the number of targets per image.
        given: int32 ``(N, k)``: the classes (zeros in ``"top"`` mode).
        squeeze: whether the result drops the ``k`` axis (one target per image).
    """

    def __init__(self, mode: str, k: int, given: np.ndarray, squeeze: bool):
        self.mode, self.k, self.given, self.squeeze = mode, k, given, squeeze

    @property
    def key(self) -> tuple:
        """What a compiled pass depends on: ``(mode, k)`` (the classes are its input)."""
        return (self.mode, self.k)


def _class_of(value, num_classes: int, class_names, where: str = "") -> int:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"Target{where} {value!r} is a bool; pass a class index or name.")
    if isinstance(value, (int, np.integer)):
        index = int(value)
        if not 0 <= index < num_classes:
            raise ValueError(
                f"Class index {index}{where} is out of range: the model has {num_classes} "
                f"classes (0 to {num_classes - 1})."
            )
        return index
    if isinstance(value, str):
        if class_names is None:
            raise ValueError(
                f"Target{where} {value!r} is a class name, but no class_names were given: "
                "pass class_names=[...] (one per class), or a class index."
            )
        names = list(class_names)
        if value in names:
            return names.index(value)
        lowered = [str(n).lower() for n in names]
        if value.lower() in lowered:
            return lowered.index(value.lower())
        hint = did_you_mean(value, names, n=5, cutoff=0.5) or " No class name is close to it."
        raise ValueError(f"Unknown class name {value!r}{where}.{hint}")
    raise TypeError(
        f"Target{where} must be a class index or a class name, not {type(value).__name__}."
    )


def resolve_target(target, n: int, num_classes: int, class_names=None) -> Target:
    """Turn the user's ``target`` into a `Target` for a batch of ``n`` images.

    ``target`` is None (each image's top class), an int or a class name (the same class for
    every image), a sequence with one int or name per image, or `TopK` (the ``k`` top
    classes of each image).
    """
    if class_names is not None and len(class_names) != num_classes:
        raise ValueError(
            f"class_names has {len(class_names)} names but the model has {num_classes} classes."
        )
    if target is None:
        return Target("top", 1, np.zeros((n, 1), np.int32), True)
    if isinstance(target, TopK):
        if target.k > num_classes:
            raise ValueError(
                f"TopK({target.k}) asks for more classes than the model has ({num_classes})."
            )
        return Target("top", int(target.k), np.zeros((n, target.k), np.int32), False)
    if isinstance(target, (str, int, np.integer, bool, np.bool_)):
        index = _class_of(target, num_classes, class_names)
        return Target("given", 1, np.full((n, 1), index, np.int32), True)
    if isinstance(target, np.ndarray) and target.ndim == 0:
        return resolve_target(target.item(), n, num_classes, class_names)
    if isinstance(target, (Sequence, np.ndarray)):
        values = list(target)
        if len(values) != n:
            raise ValueError(
                f"Got {len(values)} targets for {n} image(s): pass one target per image, or "
                "a single int / name for all of them."
            )
        indices = [
            _class_of(v.item() if isinstance(v, np.generic) else v, num_classes, class_names,
                      f" (image {i})")
            for i, v in enumerate(values)
        ]
        return Target("given", 1, np.asarray(indices, np.int32)[:, None], True)
    raise TypeError(
        "target must be None, a class index, a class name, one of those per image, or "
        f"camutils.methods.TopK(k); got {type(target).__name__}."
    )
