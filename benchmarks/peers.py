"""What a user would pick instead of camutils: tf-keras-vis 0.8.7 and the Keras example.

Each `Peer` knows how to run the other implementation as its users run it (the timed call)
and how to get its unnormalised maps at the layer's resolution (the agreement check), and
which camutils method computes the same thing.

tf-keras-vis is pointed at exactly the layer camutils explains: by default it moves a named
layer that is not a convolution (EfficientNet-Lite0's ``head_relu6`` is a ReLU) to the
convolution before it, so ``seek_penultimate_conv_layer=False`` is passed everywhere. Its
timed calls keep its defaults otherwise (maps resized to the input and normalised, as
camutils returns them).

The Keras example ("Grad-CAM class activation visualization", keras.io) is a few lines of
eager TensorFlow: a model that returns the layer's output and the predictions, one
``GradientTape``, the mean gradient per channel, a weighted sum, ReLU and a division by the
maximum. It is written below for a batch (the example handles one image); its model is
built once, outside the timed call, which favours it.

Known differences of definition (checked, not hidden):
    * Grad-CAM++: tf-keras-vis keeps the paper's factor ``exp(S)``; camutils leaves it out
      (see `camutils.methods.gradient`), so camutils' raw map times ``exp(S)`` is compared.
    * Score-CAM: tf-keras-vis upsamples the masks with corner-aligned interpolation (scipy
      ``zoom``), camutils with half-pixel centres like its maps; the two agree exactly only
      at a layer with the input's resolution, which is checked where the model has one.
      With ``max_N`` tf-keras-vis keeps, for the whole batch, the union of each image's
      ``max_N`` channels of highest standard deviation; camutils' ``max_channels`` keeps
      each image's channels of highest mean. Both run a forward pass per kept channel and
      image; the channels differ, so those maps are compared by correlation only.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

__all__ = [
    "Peer", "gradient_peers", "scorecam_peer", "keras_recipe", "agreement", "tfkv_union_size",
    "TFKV_VERSION",
]

TFKV_VERSION = "0.8.7"
_RAW = dict(seek_penultimate_conv_layer=False, expand_cam=False, normalize_cam=False)


@dataclass
class Peer:
    """Another implementation of a camutils method.

    Attributes:
        name: e.g. ``"tf-keras-vis Gradcam"``.
        method: the camutils method it implements (``"gradcam"``, ...).
        run: ``(images, classes) -> maps``, the call a user of that library makes (timed).
        raw: ``(images, classes) -> maps`` before normalisation, at the layer's resolution.
        ours: ``(Explanation) -> maps`` comparable with ``raw`` (camutils' raw maps, times
            any factor that the definitions differ by).
        options: the camutils method's options that make it compute the same thing.
        exact: whether the maps are expected to agree to float rounding.
    """

    name: str
    method: str
    run: Callable[[np.ndarray, np.ndarray], Any]
    raw: Callable[[np.ndarray, np.ndarray], np.ndarray]
    ours: Callable[[Any], np.ndarray] = field(default=lambda e: e.raw)
    options: dict = field(default_factory=dict)
    exact: bool = True


def _tfkv():
    """The tf-keras-vis classes (imported quietly: it uses deprecated scipy names)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from tf_keras_vis.gradcam import Gradcam
        from tf_keras_vis.gradcam_plus_plus import GradcamPlusPlus
        from tf_keras_vis.layercam import Layercam
        from tf_keras_vis.scorecam import Scorecam
        from tf_keras_vis.utils.scores import CategoricalScore
    return Gradcam, GradcamPlusPlus, Layercam, Scorecam, CategoricalScore


def _quiet(function: Callable) -> Callable:
    """``function`` with Python warnings silenced (tf-keras-vis warns on every call) and
    its standard output dropped (its Scorecam runs Keras ``predict``, which prints a
    progress bar)."""

    def call(*args, **kwargs):
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            return function(*args, **kwargs)

    return call


def keras_recipe(model, layer: str):
    """The Keras example's Grad-CAM, batched: ``(run, raw)``, each ``(images, classes)``.

    ``classes`` None means each image's top prediction, as in the example.
    """
    import keras
    import tensorflow as tf

    grad_model = keras.Model(model.input, [model.get_layer(layer).output, model.output])

    def heatmaps(images, classes=None):
        with tf.GradientTape() as tape:
            layer_output, predictions = grad_model(images)
            if classes is None:
                classes = tf.argmax(predictions, axis=1)
            class_channel = tf.gather(predictions, classes, axis=1, batch_dims=1)
        grads = tape.gradient(class_channel, layer_output)
        pooled_grads = tf.reduce_mean(grads, axis=(1, 2))
        return tf.maximum(tf.einsum("nhwc,nc->nhw", layer_output, pooled_grads), 0.0)

    def run(images, classes=None):
        heatmap = heatmaps(images, classes)
        return (heatmap / tf.reduce_max(heatmap, axis=(1, 2), keepdims=True)).numpy()

    def raw(images, classes):
        return heatmaps(images, classes).numpy()

    return run, raw


def gradient_peers(model, layer: str) -> list[Peer]:
    """tf-keras-vis Gradcam, GradcamPlusPlus and Layercam, and the Keras example."""
    Gradcam, GradcamPlusPlus, Layercam, _, CategoricalScore = _tfkv()
    peers = []
    for cls, method in ((Gradcam, "gradcam"), (GradcamPlusPlus, "gradcam++"),
                        (Layercam, "layercam")):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            explainer = cls(model)  # clones the model once (its default), outside the timing

        def run(images, classes, explainer=explainer):
            return explainer(CategoricalScore(list(classes)), images, penultimate_layer=layer,
                             seek_penultimate_conv_layer=False)

        def raw(images, classes, explainer=explainer):
            return np.asarray(explainer(CategoricalScore(list(classes)), images,
                                        penultimate_layer=layer, **_RAW))

        ours = (lambda e: e.raw * np.exp(e.score.astype(np.float64))[:, None, None]) \
            if method == "gradcam++" else (lambda e: e.raw)
        # tf-keras-vis normalises Grad-CAM++'s coefficients over all positions
        options = {"alpha_normalisation": "all"} if method == "gradcam++" else {}
        peers.append(Peer(f"tf-keras-vis {cls.__name__}", method, _quiet(run), _quiet(raw),
                          ours, options))
    run, raw = keras_recipe(model, layer)
    peers.append(Peer("Keras example (GradientTape)", "gradcam", run, raw))
    return peers


def scorecam_peer(model, layer: str, max_n: int | None = None, batch_size: int = 32) -> Peer:
    """tf-keras-vis Scorecam (``max_N=None``: every channel), batched like camutils."""
    _, _, _, Scorecam, CategoricalScore = _tfkv()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer = Scorecam(model)

    def run(images, classes):
        return explainer(CategoricalScore(list(classes)), images, penultimate_layer=layer,
                         seek_penultimate_conv_layer=False, max_N=max_n,
                         batch_size=batch_size)

    def raw(images, classes):
        return np.asarray(explainer(CategoricalScore(list(classes)), images,
                                    penultimate_layer=layer, max_N=max_n,
                                    batch_size=batch_size, **_RAW))

    name = "tf-keras-vis Scorecam" + (f" (max_N={max_n})" if max_n else "")
    options = {"max_channels": max_n} if max_n else {}
    return Peer(name, "scorecam", _quiet(run), _quiet(raw), options=options, exact=False)


def tfkv_union_size(activations: np.ndarray, max_n: int | None) -> int:
    """How many channels tf-keras-vis Scorecam keeps for this batch of activations.

    With ``max_N`` it keeps the union over the batch of each image's ``max_N`` channels
    of highest spatial standard deviation, and runs every image with every kept channel.
    """
    channels = activations.shape[-1]
    if not max_n or max_n >= channels:
        return channels
    std = activations.reshape(len(activations), -1, channels).std(axis=1)
    top = np.argsort(-std, axis=1)[:, :max_n]
    return len(np.unique(top))


def agreement(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """How closely two batches of raw maps agree.

    Returns ``max_rel_diff`` (the largest absolute difference over the largest absolute
    value of ``theirs``) and ``correlation`` (Pearson, over all pixels of the batch).
    """
    ours = np.asarray(ours, np.float64)
    theirs = np.asarray(theirs, np.float64)
    if ours.shape != theirs.shape:
        return {"max_rel_diff": float("nan"), "correlation": float("nan"),
                "note": f"shapes differ: {ours.shape} vs {theirs.shape}"}
    scale = np.abs(theirs).max()
    rel = float(np.abs(ours - theirs).max() / scale) if scale > 0 else float(
        np.abs(ours).max() > 0)
    a, b = ours.ravel() - ours.mean(), theirs.ravel() - theirs.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    correlation = float((a * b).sum() / denominator) if denominator > 0 else float("nan")
    return {"max_rel_diff": rel, "correlation": correlation}
