"""The course's own small networks, trained on the shapes world (`camutils.datasets`).

    gap = camutils.load_model("shapes_gap")        # or load_course_model("gap")
    gap.top_k(camutils.make_shapes(4, seed=7).images, k=1)

Four variants share one convolutional trunk and differ in the head. The trunk takes a
64 x 64 RGB image to an 8 x 8 x 96 feature map, the layer ``last_conv_relu``:

    stem_conv 5x5/2 (24) -> block1_conv (32) -> pool1 -> block2_conv (48) -> block3_conv (64)
      -> pool2 -> block4_conv (96) -> last_conv_relu

(every convolution is followed by BatchNorm, momentum 0.9, and a ReLU). The heads:

========== ============================================================ ==================
variant    head                                                         CAM applies?
========== ============================================================ ==================
gap        GlobalAveragePooling2D -> Dense(6) logits                    yes (the paper's)
gmp        GlobalMaxPooling2D -> Dense(6) logits                        yes (the paper's
                                                                        max-pooling variant)
flatten    MaxPooling2D -> Flatten -> Dense(32) -> BN -> ReLU -> Dense(6) no; Grad-CAM does
shortcut   as gap, trained on `make_shortcut` images whose marker leaks yes
           the label
========== ============================================================ ==================

Why 8 x 8: with a 16 x 16 map the units see parts of a shape rather than all of it, and a
GAP network's CAM then peaks on edges and corners, often a pixel or two outside the object;
one more pooling stage gives units that see whole shapes, and CAMs that peak on them.

Outputs are logits (no softmax). The input is the RGB uint8 image divided by 255.

The shipped weights (``data/shapes_<variant>.weights.h5``) were trained by
``tools/train_course_models.py`` with `train_course_model`, the same code that
``load_course_model(variant, retrain=True)`` runs; ``data/course_models.json`` records for
each one its sha256, how it was trained (seed, epochs, command, versions) and what it scores
on a freshly generated test set. Training is deterministic: every random number comes from
a fixed seed and TensorFlow's op determinism is switched on.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

from .datasets import IMAGE_SIZE, SHAPE_CLASSES, make_shapes, make_shortcut

__all__ = [
    "VARIANTS", "CAM_LAYER", "INPUT_SIZE", "TrainingConfig", "TRAINING", "build_course_model",
    "train_course_model", "evaluate_course_model", "load_course_model", "read_manifest",
    "weights_file", "class_activation_maps", "grad_cam_maps", "pointing_game", "threshold_iou",
    "file_sha256", "save_weights", "seed_everything", "with_config", "normalize_images",
]

VARIANTS: tuple[str, ...] = ("gap", "gmp", "flatten", "shortcut")
CAM_LAYER = "last_conv_relu"
"""The output of the last convolution block (after its ReLU): 8 x 8 x 96."""
INPUT_SIZE: tuple[int, int] = IMAGE_SIZE
MANIFEST = "course_models.json"
TEST_SEED = 90_001
"""Seed of the test sets; training uses seeds from `TrainingConfig.data_seed` upwards."""
TEST_SIZE = 3000

# The trunk, as (layer name, channels, kernel size, stride); "pool..." is a 2 x 2 max-pooling.
# A strided 5 x 5 stem keeps training cheap on a CPU.
_TRUNK = (
    ("stem", 24, 5, 2),      # 64 x 64 -> 32 x 32
    ("block1", 32, 3, 1),
    ("pool1", 0, 2, 2),      # -> 16 x 16
    ("block2", 48, 3, 1),
    ("block3", 64, 3, 1),
    ("pool2", 0, 2, 2),      # -> 8 x 8
    ("block4", 96, 3, 1),    # its ReLU is the CAM layer
)
_BN_MOMENTUM = 0.9                     # Keras' default 0.99 does not settle in a short run


@dataclass(frozen=True)
class TrainingConfig:
    """How a course model is trained.

    Every epoch sees ``images_per_epoch`` freshly generated images (seed ``data_seed +
    epoch``), so the network never sees the same image twice and the test set (seed
    `TEST_SEED`) is disjoint from all of them.
    """

    seed: int = 0                   # weight initialisation (keras.utils.set_random_seed)
    data_seed: int = 1000           # first training-data seed
    epochs: int = 8
    images_per_epoch: int = 6000
    batch_size: int = 16            # many small steps learn faster than few large ones here
    learning_rate: float = 2e-3     # Adam: linear warm-up to this, then cosine decay to zero
    warmup_epochs: float = 1.0      # without a warm-up, a run can die at the start (all ReLUs off)


TRAINING: dict[str, TrainingConfig] = {variant: TrainingConfig() for variant in VARIANTS}
# The Flatten head learns each position separately and needs more examples to converge.
TRAINING["flatten"] = TrainingConfig(epochs=10)


def _check_variant(variant: str) -> str:
    key = str(variant).lower().removeprefix("shapes_")
    if key not in VARIANTS:
        import difflib

        close = difflib.get_close_matches(key, VARIANTS, n=2, cutoff=0.3)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(f"Unknown course model {variant!r}.{hint} The variants are: "
                         f"{', '.join(VARIANTS)}.")
    return key


# ---------------------------------------------------------------------------- architecture
def build_course_model(variant: str, num_classes: int = len(SHAPE_CLASSES),
                       input_size: tuple[int, int] = INPUT_SIZE):
    """The untrained Keras model of a variant (see the module's table).

    The layers are named for teaching: ``stem_conv`` and ``block1_conv`` ... ``block4_conv``,
    each followed by ``..._bn`` and ``..._relu`` (except that block4's ReLU is
    ``last_conv_relu``, the CAM layer), with ``pool1`` and ``pool2``; then the head: ``gap``
    or ``gmp``, or ``head_pool``/``flatten``/``fc``/``fc_bn``/``fc_relu``; and ``logits``.
    """
    import keras
    from keras import layers

    variant = _check_variant(variant)
    inputs = keras.Input((*input_size, 3), name="image")
    x = inputs
    for i, (name, channels, kernel, stride) in enumerate(_TRUNK):
        if name.startswith("pool"):
            x = layers.MaxPooling2D(kernel, strides=stride, name=name)(x)
            continue
        x = layers.Conv2D(channels, kernel, strides=stride, padding="same", use_bias=False,
                          name=f"{name}_conv")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name=f"{name}_bn")(x)
        x = layers.ReLU(name=CAM_LAYER if i == len(_TRUNK) - 1 else f"{name}_relu")(x)
    if variant in ("gap", "shortcut"):
        x = layers.GlobalAveragePooling2D(name="gap")(x)
    elif variant == "gmp":
        x = layers.GlobalMaxPooling2D(name="gmp")(x)
    else:
        x = layers.MaxPooling2D(2, name="head_pool")(x)   # 8 x 8 -> 4 x 4
        x = layers.Flatten(name="flatten")(x)
        # BatchNorm keeps the fc units alive: 1536 positive inputs and Adam's first steps
        # would otherwise push every unit below zero for good (dead ReLUs, chance accuracy).
        x = layers.Dense(32, use_bias=False, name="fc")(x)
        x = layers.BatchNormalization(momentum=_BN_MOMENTUM, name="fc_bn")(x)
        x = layers.ReLU(name="fc_relu")(x)
    outputs = layers.Dense(num_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name=f"shapes_{variant}")


def normalize_images(images: np.ndarray) -> np.ndarray:
    """RGB uint8 ``(n, H, W, 3)`` to the network's float32 input in [0, 1]."""
    return np.asarray(images, dtype=np.float32) / np.float32(255.0)


def _prepare(images) -> np.ndarray:
    """A batch of RGB uint8 images, resized to `INPUT_SIZE` where needed."""
    from .images import resize

    return np.stack([im if im.shape[:2] == INPUT_SIZE else resize(im, INPUT_SIZE) for im in images])


# ---------------------------------------------------------------------------- data
def _dataset(variant: str, n: int, seed: int, leak: bool = True):
    if variant == "shortcut":
        return make_shortcut(n, seed=seed, leak=leak)
    return make_shapes(n, seed=seed)


# ---------------------------------------------------------------------------- training
def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_course_model(variant: str, config: TrainingConfig | None = None, progress: bool = True,
                       log: Callable[[str], None] | None = print):
    """Train a course model from scratch, deterministically; return ``(model, facts)``.

    ``facts`` holds the configuration, the training time in seconds and the final training
    loss. The run is deterministic for a given machine, library versions and oneDNN setting
    (seeds fixed, TensorFlow op determinism on). The shipped weights were trained with
    TensorFlow's oneDNN kernels on (the script's default; the manifest records it); a process
    started with ``TF_ENABLE_ONEDNN_OPTS=0``, as the course's notebooks and tests are, trains
    about twice as slowly and rounds differently, so its weights differ slightly while its
    scores stay close (within a point of accuracy).
    """
    import keras
    from tqdm.auto import tqdm

    variant = _check_variant(variant)
    config = config or TRAINING[variant]
    seed_everything(config.seed)
    model = build_course_model(variant)
    steps_per_epoch = -(-config.images_per_epoch // config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup)
    model.compile(optimizer=keras.optimizers.Adam(schedule),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    bar = tqdm(total=steps_per_epoch * config.epochs, desc=f"training shapes_{variant}",
               unit="batch", disable=not progress)
    start = time.perf_counter()
    loss = accuracy = float("nan")

    class _Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            bar.update(1)
            if logs and batch % 10 == 0:
                bar.set_postfix(loss=f"{float(logs['loss']):.3f}", acc=f"{float(logs['accuracy']):.3f}")

    try:
        for epoch in range(config.epochs):
            data = _dataset(variant, config.images_per_epoch, config.data_seed + epoch)
            history = model.fit(normalize_images(data.images), data.labels,
                                batch_size=config.batch_size, epochs=1, shuffle=False,
                                verbose=0, callbacks=[_Progress()])
            loss, accuracy = history.history["loss"][-1], history.history["accuracy"][-1]
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    if log:
        log(f"shapes_{variant}: trained in {seconds:.0f} s (final epoch: loss {loss:.3f}, "
            f"training accuracy {accuracy:.3f}).")
    return model, {"config": asdict(config), "train_seconds": round(seconds, 1),
                   "final_train_loss": round(float(loss), 4),
                   "final_train_accuracy": round(float(accuracy), 4)}


# ---------------------------------------------------------------------------- maps
def _features_and_logits(model, inputs: np.ndarray, batch_size: int = 256):
    """The CAM layer's activations and the logits, batched (a plain feature model)."""
    import keras
    import tensorflow as tf

    feature_model = keras.Model(model.input, [model.get_layer(CAM_LAYER).output, model.output])

    @tf.function(autograph=False)
    def run(x):
        return feature_model(x, training=False)

    feats, logits = zip(*[(np.asarray(f), np.asarray(z)) for f, z in
                          (run(tf.constant(inputs[i:i + batch_size]))
                           for i in range(0, len(inputs), batch_size))])
    return np.concatenate(feats), np.concatenate(logits)


def _upsample(maps: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of ``(n, h, w)`` maps to ``size`` (pixel centres aligned)."""
    import tensorflow as tf

    return np.asarray(tf.image.resize(maps[..., None], size, method="bilinear"))[..., 0]


def class_activation_maps(model, images: np.ndarray, classes: np.ndarray,
                          upsample: bool = True) -> np.ndarray:
    """CAM by hand (Zhou et al., 2016, eq. 2): ``M_c(x, y) = sum_k w_k^c f_k(x, y)``.

    The features ``f`` are the CAM layer's activations and ``w`` the final Dense layer's
    weights: one ``einsum``. Defined for the gap, gmp and shortcut variants (pooling then
    Dense). Returns float32 maps ``(n, H, W)`` at input resolution (``upsample=True``) or at
    the layer's 8 x 8, not normalised, before any ReLU.
    """
    dense = model.get_layer("logits")
    if dense.input.shape[-1] != model.get_layer(CAM_LAYER).output.shape[-1]:
        raise ValueError(f"CAM needs global pooling right before the logits; model "
                         f"{model.name!r} has another head. Use grad_cam_maps instead.")
    inputs = normalize_images(images)
    feats, _ = _features_and_logits(model, inputs)
    weights = np.asarray(dense.kernel)[:, np.asarray(classes)]           # (channels, n)
    maps = np.einsum("nhwk,kn->nhw", feats, weights).astype(np.float32)
    return _upsample(maps, inputs.shape[1:3]) if upsample else maps


def grad_cam_maps(model, images: np.ndarray, classes: np.ndarray, upsample: bool = True) -> np.ndarray:
    """Grad-CAM (Selvaraju et al., 2017) at the CAM layer, with a plain GradientTape.

    Channel weights are the spatial means of the gradients of the class logit; the map is
    ``ReLU(sum_k alpha_k^c A_k)``. Works for every variant (also flatten, where CAM does not).
    """
    import keras
    import tensorflow as tf

    feature_model = keras.Model(model.input, [model.get_layer(CAM_LAYER).output, model.output])
    inputs = normalize_images(images)
    classes = np.asarray(classes)
    out = []
    for i in range(0, len(inputs), 256):
        x = tf.constant(inputs[i:i + 256])
        with tf.GradientTape() as tape:
            feats, logits = feature_model(x, training=False)
            score = tf.gather(logits, classes[i:i + 256], batch_dims=1)
        grads = tape.gradient(score, feats)
        alpha = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        out.append(np.asarray(tf.nn.relu(tf.reduce_sum(alpha * feats, axis=-1))))
    maps = np.concatenate(out).astype(np.float32)
    return _upsample(maps, inputs.shape[1:3]) if upsample else maps


def pointing_game(maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Per image, whether the map's maximum falls on the object's mask (bool ``(n,)``).

    Maps and masks share the same ``(n, H, W)`` shape; ties take the first maximum.
    """
    n, h, w = masks.shape
    peak = maps.reshape(n, -1).argmax(axis=1)
    return masks.reshape(n, -1)[np.arange(n), peak]


def threshold_iou(maps: np.ndarray, masks: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """Per image, the IoU of ``map >= threshold * max(map)`` (map after ReLU) with the mask.

    A map that is zero everywhere selects nothing (IoU 0).
    """
    positive = np.maximum(maps, 0)
    top = positive.reshape(len(maps), -1).max(axis=1)[:, None, None]
    selected = (positive >= threshold * top) & (top > 0)
    inter = (selected & masks).sum(axis=(1, 2))
    union = (selected | masks).sum(axis=(1, 2))
    return inter / np.maximum(union, 1)


# ---------------------------------------------------------------------------- evaluation
def evaluate_course_model(model, variant: str, n: int = TEST_SIZE, seed: int = TEST_SEED) -> dict:
    """What a trained model scores on a freshly generated test set.

    Returns ``test_accuracy``; the pointing game of its CAM (pooling variants) and of its
    Grad-CAM on the true class; the mean IoU of CAMs thresholded at 20% and 50% of their
    maximum with the masks; and for the shortcut variant the accuracy without the leak and
    the share of the CAM's positive energy that lies on the marker (with and without it) and
    how often the CAM peaks on the marker.
    """
    variant = _check_variant(variant)
    data = _dataset(variant, n, seed)
    _, logits = _features_and_logits(model, normalize_images(data.images))
    facts = {"test_seed": seed, "test_images": n,
             "test_accuracy": round(float((logits.argmax(1) == data.labels).mean()), 4)}
    if variant != "flatten":
        cams = class_activation_maps(model, data.images, data.labels)
        facts["pointing_game_cam"] = round(float(pointing_game(cams, data.masks).mean()), 4)
        for t in (0.2, 0.5):
            facts[f"cam_iou_at_{t}"] = round(float(threshold_iou(cams, data.masks, t).mean()), 4)
    grads = grad_cam_maps(model, data.images, data.labels)
    facts["pointing_game_gradcam"] = round(float(pointing_game(grads, data.masks).mean()), 4)
    if variant == "shortcut":
        facts["marker_energy_cam"] = _marker_share(cams, data)
        facts["cam_peak_on_marker"] = round(float(pointing_game(cams, data.marker_masks).mean()), 4)
        clean = make_shortcut(n, seed=seed, leak=False)
        _, logits = _features_and_logits(model, normalize_images(clean.images))
        predicted = logits.argmax(1)
        facts["test_accuracy_no_leak"] = round(float((predicted == clean.labels).mean()), 4)
        facts["agrees_with_marker_no_leak"] = round(float((predicted == clean.marker_labels).mean()), 4)
        facts["marker_energy_cam_no_leak"] = _marker_share(
            class_activation_maps(model, clean.images, predicted), clean)
    return facts


def _marker_share(maps: np.ndarray, data) -> float:
    """Mean share of each map's positive energy that lies on the marker."""
    positive = np.maximum(maps, 0)
    total = positive.sum(axis=(1, 2))
    on_marker = (positive * data.marker_masks).sum(axis=(1, 2))
    return round(float(np.mean(on_marker / np.maximum(total, 1e-12))), 4)


# ---------------------------------------------------------------------------- files
def save_weights(model, variant: str, path) -> None:
    """Write a trained model's weights (and nothing else: no optimizer state) to ``path``."""
    clean = build_course_model(variant)
    clean.set_weights(model.get_weights())
    clean.save_weights(os.fspath(path))


def _data_dir():
    from importlib.resources import files

    return files("camutils.data")


def weights_file(variant: str) -> str:
    """The file name of a variant's shipped weights (inside ``camutils.data``)."""
    return f"shapes_{_check_variant(variant)}.weights.h5"


def read_manifest() -> dict:
    """``data/course_models.json``: per variant, file, sha256, scores and how it was trained."""
    path = _data_dir() / MANIFEST
    if not path.is_file():
        raise FileNotFoundError(
            f"The course models' manifest {MANIFEST} is missing from camutils.data. Train the "
            f"models with: python tools/train_course_models.py"
        )
    return json.loads(path.read_text(encoding="utf-8"))


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ---------------------------------------------------------------------------- loading
def load_course_model(variant: str, retrain: bool = False, config: TrainingConfig | None = None,
                      progress: bool = True):
    """A course model as a `camutils.zoo.ZooModel`, from its shipped weights or retrained.

    Args:
        variant: ``"gap"``, ``"gmp"``, ``"flatten"`` or ``"shortcut"`` (``"shapes_gap"`` also works).
        retrain: train afresh with the code of ``tools/train_course_models.py`` instead of
            loading the shipped weights (2 to 4 minutes on a 2-core CPU, twice that with
            oneDNN off as in the notebooks; it says how long the shipped run took and shows a
            progress bar). See `train_course_model` on how close a retrained model comes.
        config: with ``retrain``, a `TrainingConfig` to use instead of the shipped one
            (e.g. ``TrainingConfig(epochs=2)`` for a quick look).
        progress: show a progress bar while retraining.

    Raises:
        FileNotFoundError: the weights or the manifest are missing (the message says how to
            train them).
        ValueError: the weights file's sha256 differs from the manifest's (a damaged or
            replaced file; the message says how to restore or retrain it).
    """
    from importlib.resources import as_file

    from .zoo import ZooModel

    variant = _check_variant(variant)
    if config is not None and not retrain:
        raise ValueError("config is only used when retraining: pass retrain=True as well.")
    manifest = read_manifest() if not retrain else _manifest_or_empty()
    entry = manifest.get("models", {}).get(variant, {})
    if retrain:
        config = config or TRAINING[variant]
        took = entry.get("train_seconds")
        slower = entry.get("onednn") and os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0"
        print(f"Retraining shapes_{variant} from scratch ({config.epochs} epochs of "
              f"{config.images_per_epoch} images)"
              + (f"; the shipped run took {took:.0f} s on a 2-core CPU" if took else "")
              + (" with oneDNN on, which this process has off: expect about twice as long."
                 if took and slower else "."))
        model, facts = train_course_model(variant, config, progress=progress)
        info = {"source": "retrained in this session", **facts}
    else:
        if not entry:
            raise FileNotFoundError(f"data/{MANIFEST} has no entry for {variant!r}: train it with "
                                    f"python tools/train_course_models.py --variants {variant}")
        resource = _data_dir() / entry["file"]
        if not resource.is_file():
            raise FileNotFoundError(
                f"The weights file {entry['file']} of shapes_{variant} is missing from camutils.data. "
                f"Restore it from the repository or retrain: python tools/train_course_models.py "
                f"--variants {variant}, or load_course_model({variant!r}, retrain=True)."
            )
        model = build_course_model(variant)
        with as_file(resource) as path:
            actual = file_sha256(path)
            if actual != entry["sha256"]:
                raise ValueError(
                    f"The weights file {entry['file']} does not match the manifest (sha256 "
                    f"{actual[:12]}... instead of {entry['sha256'][:12]}...): it is damaged or was "
                    f"replaced. Restore it with git (git checkout data/{entry['file']}) or retrain "
                    f"all models with python tools/train_course_models.py, which rewrites the manifest."
                )
            model.load_weights(os.fspath(path))
        info = {"source": f"camutils.data/{entry['file']}", **entry}
    return ZooModel(
        name=f"shapes_{variant}",
        model=model,
        input_size=INPUT_SIZE,
        class_names=list(SHAPE_CLASSES),
        cam_layer=CAM_LAYER,
        prepare=_prepare,
        normalize=normalize_images,
        offline=True,
        info=info,
    )


def _manifest_or_empty() -> dict:
    try:
        return read_manifest()
    except FileNotFoundError:
        return {}


def with_config(variant: str, **changes) -> TrainingConfig:
    """The shipped training configuration of a variant with some fields changed."""
    return replace(TRAINING[_check_variant(variant)], **changes)
