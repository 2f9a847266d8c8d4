"""Checking what the user passed: the image batch (the target is checked by
`camutils.targets.bind`, a method's options by its row: `camutils.methods.options`)."""

from __future__ import annotations

import numpy as np

from ..checks import stacked
from ..model_errors import NonFiniteError

__all__ = ["image_array", "image_batch"]

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
