"""When running a model goes wrong, one clear error that says what happened and what to do.

    NonFiniteError                            NaN or infinite logits, activations, gradients
    check_finite_values(model, values, what)  raise it when host arrays are not finite
    nonfinite_error(model, what, images)      the error, with its cause found
    run_model(model, function, inputs)        call a compiled function of the model: an
                                              image too small for its layers is a clear
                                              ValueError

The causes are looked for only once something has failed, so the way that works pays
nothing for them:

- Non-finite values: the model's variables are read; NaN or infinite weights (a training run
  that diverged, a damaged weights file) are named. If every weight is finite, the values
  overflowed inside the network, which points at the preprocessing (the images' range is
  given).
- An image too small for an any-size model's layers (a 3 x 3 image through two valid
  convolutions): TensorFlow's "Graph execution error" is replaced by Keras' shape inference
  on the same input shape, which also finds the smallest square size the model runs on.
  (Some graphs give NaN instead of an error there, a global pooling of an empty map: the
  size is looked at before the weights.)
"""

from __future__ import annotations

from typing import Callable

import numpy as np

__all__ = [
    "NonFiniteError", "nonfinite_weights", "nonfinite_error", "check_finite_values", "run_model",
    "input_size_error",
]

#: The largest square size `input_size_error` tries when it looks for the smallest one.
LARGEST_SIZE_TRIED = 4096


class NonFiniteError(ValueError):
    """NaN or infinite values (in the images, or the model's logits, activations, gradients
    or maps), so no map or score made from them would mean anything.

    Attributes:
        images: the indices of the images concerned (None when they are not named).
    """

    def __init__(self, message: str, images=None):
        self.template = message
        self.images = None if images is None else tuple(int(i) for i in images)
        text = message if self.images is None else message.replace("{images}",
                                                                   _images(self.images))
        super().__init__(text)

    def shifted(self, offset: int) -> "NonFiniteError":
        """The same error with the images counted from ``offset`` (a chunk's first image)."""
        if self.images is None:
            return self
        return NonFiniteError(self.template, [i + offset for i in self.images])


def _describe_counts(nan: int, inf: int) -> str:
    parts = ([f"{nan} NaN"] if nan else []) + ([f"{inf} infinite"] if inf else [])
    return ", ".join(parts)


def nonfinite_weights(model, limit: int = 5) -> list[str]:
    """The model's variables that hold NaN or infinite values, as ``"'conv1/kernel' (108
    NaN)"`` (at most ``limit``, then how many more)."""
    found = []
    for variable in getattr(model, "weights", None) or ():
        try:
            values = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable)
            finite = np.isfinite(values)
        except (TypeError, ValueError):  # not a float variable
            continue
        if finite.all():
            continue
        nan = int(np.isnan(values).sum())
        name = getattr(variable, "path", None) or getattr(variable, "name", "?")
        found.append(f"{name!r} ({_describe_counts(nan, int(values.size - finite.sum() - nan))})")
    if len(found) > limit:
        found = found[:limit] + [f"and {len(found) - limit} more"]
    return found


def _images(indices) -> str:
    text = str([int(i) for i in indices[:10]])
    if len(indices) > 10:
        text = text[:-1] + ", ...]"
    return f"image{'s' if len(indices) > 1 else ''} {text}"


def nonfinite_error(model, what: str, images=None, inputs=None) -> ValueError:
    """The `NonFiniteError` for ``what`` (``"the model's logits"``), with its cause.

    Images too small for the model's layers can give NaN instead of an error (a global
    pooling of an empty map): then the error is `input_size_error`'s.

    Args:
        images: the indices of the images concerned (None: not named).
        inputs: the model's inputs, whose range is reported when the weights are finite.
    """
    if inputs is not None:
        too_small = input_size_error(model, np.shape(inputs))
        if too_small is not None:
            return too_small
    where = "" if images is None else " for {images}"
    message = (f"{what[:1].upper()}{what[1:]} are NaN or infinite{where}, so no map or score "
               "made from them would mean anything.")
    broken = nonfinite_weights(model)
    if broken:
        message += (f" The model's weights are not all finite: {', '.join(broken)}. Such a "
                    "model cannot be explained: reload or retrain it (a training run that "
                    "diverged, or a damaged weights file, leaves NaN weights).")
    else:
        span = ""
        if inputs is not None:
            values = np.asarray(inputs)
            if values.size and np.issubdtype(values.dtype, np.number):
                span = (f" (the images' values lie in [{float(values.min()):.3g}, "
                        f"{float(values.max()):.3g}])")
        message += (" The model's weights are all finite, so the values most likely "
                    f"overflowed float32 inside the network{span}. Check the preprocessing: "
                    "are the images scaled as the model expects (a zoo model's preprocess() "
                    "does it)?")
    return NonFiniteError(message, images)


def check_finite_values(model, values, what: str, inputs=None, name_images: bool = True) -> None:
    """Raise `nonfinite_error` when ``values`` (a batch, one row per image) are not all finite.

    ``name_images=False`` counts the rows instead of naming them (when they are not the
    user's images, e.g. the perturbed copies a metric scores).
    """
    values = np.asarray(values)
    rows = values.reshape(len(values), -1) if values.ndim else values.reshape(1, 1)
    finite = np.isfinite(rows).all(axis=1)
    if finite.all():
        return
    bad = np.flatnonzero(~finite)
    if name_images:
        raise nonfinite_error(model, what, bad, inputs)
    raise nonfinite_error(model, f"{what} ({len(bad)} of the {len(finite)} in a batch)",
                          None, inputs)


# --------------------------------------------------------------------------- too small


def _single_input(model):
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):
        return None
    if not inputs or len(inputs) != 1:
        return None
    return inputs[0]


def _spatial_probe(model):
    """``model`` with every 4-D layer output as an output as well (None when it has none
    that can be read): shape inference on it shows a map shrunk to nothing on the way."""
    import keras

    outputs = []
    for layer in model.layers:
        try:
            output = layer.output
        except (AttributeError, ValueError):  # never called, or called several times
            continue
        if len(getattr(output, "shape", ())) == 4:
            outputs.append(output)
    try:
        return keras.Model(model.inputs, [*outputs, *model.outputs]) if outputs else None
    except Exception:  # not a graph network (a subclassed model)
        return None


def _shape_problem(model, shape: tuple, dtype, probe=None) -> str | None:
    """Keras' reason why ``model`` cannot take inputs of ``shape`` (None when it can).

    Keras raises for a size that shrinks below zero; older versions (3.3) let a layer shrink a map
    to zero size, which fails only when the graph runs, so ``probe`` (`_spatial_probe`)
    looks for an empty map too.
    """
    import keras

    try:
        specs = (probe or model).compute_output_spec(keras.KerasTensor(shape, dtype=dtype))
    except Exception as error:  # Keras raises ValueError for a size that shrinks to nothing
        text = str(error).strip()
        return text.splitlines()[0].rstrip(".") if text else type(error).__name__
    for spec in (specs if isinstance(specs, (list, tuple)) else [specs]):
        if len(spec.shape) == 4 and 0 in spec.shape[1:3]:
            return f"a layer's output is {spec.shape[1]} x {spec.shape[2]}"
    return None


def _smallest_square(model, channels, dtype, probe=None) -> int | None:
    """The smallest ``s`` such that ``model`` takes ``s x s`` images (None: none up to
    `LARGEST_SIZE_TRIED`). Assumes that larger sizes work once one does (as for strided
    and valid convolutions and pooling): doubling, then bisection. ``probe``: as for
    `_shape_problem`."""
    works = lambda s: _shape_problem(model, (1, s, s, channels), dtype, probe) is None  # noqa: E731
    high = 1
    while not works(high):
        high *= 2
        if high > LARGEST_SIZE_TRIED:
            return None
    low = high // 2  # fails (or is 0)
    while high - low > 1:
        middle = (low + high) // 2
        if works(middle):
            high = middle
        else:
            low = middle
    return high


def input_size_error(model, shape) -> ValueError | None:
    """The error to raise when ``model`` failed on a batch of ``shape`` because its images
    are too small for its layers; None when that is not the reason (or cannot be told)."""
    tensor = _single_input(model)
    shape = tuple(int(s) for s in shape)
    if tensor is None or len(shape) != 4 or len(tensor.shape) != 4:
        return None
    if tensor.shape[1] is not None and tensor.shape[2] is not None:
        return None  # fixed size: the images were checked against it
    dtype = getattr(tensor, "dtype", "float32")
    probe = _spatial_probe(model)
    reason = _shape_problem(model, (1, *shape[1:]), dtype, probe)
    if reason is None:
        return None
    smallest = _smallest_square(model, shape[3], dtype, probe)
    if smallest is None:
        return None  # no size works: something else is wrong
    return ValueError(
        f"Model {model.name!r} cannot run on {shape[1]} x {shape[2]} images: its layers "
        f"shrink them to nothing (Keras: {reason}). Its input takes any size, but the "
        f"smallest square size it runs on is {smallest} x {smallest}: pass larger images "
        "(resize them, e.g. with camutils.resize, to the size the model was trained on)."
    )


def run_model(model, function: Callable, inputs, *args):
    """``function(inputs, *args)``, a compiled function of ``model``; an image too small for
    the model's layers raises `input_size_error` instead of TensorFlow's graph error."""
    import tensorflow as tf

    try:
        return function(inputs, *args)
    except tf.errors.InvalidArgumentError:
        error = input_size_error(model, np.shape(inputs))
        if error is None:
            raise
    raise error
