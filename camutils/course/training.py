"""Training the course's shapes networks, deterministically (the code behind the shipped weights).

    model, facts = train_course_model("gap")                       # 2 to 4 minutes on 2 cores
    model, facts = train_course_model("gap", with_config("gap", epochs=2))

`tools/train_course_models.py` runs this for every variant and writes the weights and the
manifest; ``load_course_model(variant, retrain=True)`` runs it in a notebook. Every random
number comes from a fixed seed and TensorFlow's op determinism is switched on. ``facts``
records the configuration, the time, and the loss and accuracy after every epoch (the
manifest keeps them, and a test retrains the first epoch to check that it is reproduced).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from typing import Callable

import numpy as np

from . import detection
from .architecture import SPECS, VARIANTS, build_course_model, check_variant, normalize_images
from .shapes import make_scenes, make_shapes, make_shortcut

__all__ = ["TrainingConfig", "TRAINING", "with_config", "seed_everything", "course_data",
           "training_targets", "SCENE_OBJECTS", "SIZE_RADIUS", "train_course_model",
           "save_weights"]

SCENE_OBJECTS = (1, 3)
"""Objects per scene for the multi-label model, the segmenter and the detector."""
SIZE_RADIUS = (5.0, 15.0)
"""The range of object sizes the size model learns (pixels; `make_shapes`' ``radius``)."""


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
# Every pixel of a scene teaches the segmenter: 6 epochs reach a mean IoU of 0.97.
TRAINING["segmenter"] = TrainingConfig(epochs=6)
# The transformer leaves its plateau later than a CNN (about 2 epochs), and a gentler rate
# keeps its attention from collapsing early.
TRAINING["vit"] = TrainingConfig(epochs=10, learning_rate=1e-3)


def with_config(variant: str, **changes) -> TrainingConfig:
    """The shipped training configuration of a variant with some fields changed."""
    return replace(TRAINING[check_variant(variant)], **changes)


def course_data(variant: str, n: int, seed: int, leak: bool = True):
    """The images a variant learns from, with their ground truth: single shapes
    (`make_shapes`; for the size model with sizes from `SIZE_RADIUS`), with the leaking
    marker for the shortcut variant (`make_shortcut`), or scenes of `SCENE_OBJECTS` shapes
    (`make_scenes`) for the multi-label model, the segmenter and the detector."""
    variant = check_variant(variant)
    if variant == "shortcut":
        return make_shortcut(n, seed=seed, leak=leak)
    if variant == "size":
        return make_shapes(n, seed=seed, radius=SIZE_RADIUS)
    if SPECS[variant].task in ("multilabel", "segmentation", "detection"):
        return make_scenes(n, seed=seed, objects=SCENE_OBJECTS)
    return make_shapes(n, seed=seed)


def training_targets(variant: str, data) -> np.ndarray:
    """What a variant learns to output for `course_data`'s images: class indices, the
    scenes' multi-hot labels, per-pixel label maps, detection targets
    (`camutils.course.detection.encode_targets`) or the objects' sizes ``(n, 1)``."""
    task = SPECS[check_variant(variant)].task
    if task == "multilabel":
        return data.multi_hot()
    if task == "segmentation":
        return data.label_maps()
    if task == "detection":
        return detection.encode_targets(data.labels, data.boxes)
    if task == "regression":
        return data.sizes()[:, None]
    return data.labels


def _loss_and_metric(variant: str):
    """The loss a variant is trained with, and the metric reported per epoch (name, object)."""
    import keras

    task = SPECS[variant].task
    if task == "classification":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True), ("accuracy", "accuracy")
    if task == "multilabel":
        return (keras.losses.BinaryCrossentropy(from_logits=True),
                ("label_accuracy", keras.metrics.BinaryAccuracy(threshold=0.0, name="label_accuracy")))
    if task == "segmentation":
        return (keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                ("pixel_accuracy", keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")))
    if task == "regression":
        return keras.losses.MeanSquaredError(), ("mae", keras.metrics.MeanAbsoluteError(name="mae"))
    return detection.detection_loss, None


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and TensorFlow and make TensorFlow's ops deterministic."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def train_course_model(variant: str, config: TrainingConfig | None = None, progress: bool = True,
                       log: Callable[[str], None] | None = print, epochs_to_run: int | None = None,
                       steps_to_run: int | None = None):
    """Train a course model from scratch, deterministically; return ``(model, facts)``.

    ``facts`` holds the configuration, the training time in seconds, the final training loss
    and metric (``final_train_loss``; ``final_train_accuracy`` for a classifier,
    ``_label_accuracy`` for the multi-label model, ``_pixel_accuracy`` for the segmenter,
    ``_mae`` for the size model, none for the detector), and ``"epochs"``: the training loss
    and metric after each epoch.
    ``epochs_to_run`` stops after that many epochs of ``config``'s schedule (the learning
    rate follows the whole schedule, so they are the first epochs of the full run: what the
    reproduction test compares with the shipped run's). ``steps_to_run`` stops after that
    many batches of the first epoch (the same batches, in the same order, at the same learning
    rates as the full run's first ones); its one entry in ``"epochs"`` has ``"steps"``.

    The run is deterministic for a given machine, library versions and oneDNN setting
    (seeds fixed, TensorFlow op determinism on). The shipped weights were trained with
    TensorFlow's oneDNN kernels on (the script's default; the manifest records it); a process
    started with ``TF_ENABLE_ONEDNN_OPTS=0``, as the course's notebooks and tests are, trains
    about twice as slowly and rounds differently, so its weights differ slightly while its
    scores stay close (within a point of accuracy).
    """
    import keras
    from tqdm.auto import tqdm

    variant = check_variant(variant)
    config = config or TRAINING[variant]
    seed_everything(config.seed)
    model = build_course_model(variant)
    steps_per_epoch = -(-config.images_per_epoch // config.batch_size)
    total = steps_per_epoch * config.epochs
    warmup = min(int(config.warmup_epochs * steps_per_epoch), total - 1)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=total - warmup, warmup_target=config.learning_rate, warmup_steps=warmup)
    loss_function, metric = _loss_and_metric(variant)
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss_function,
                  metrics=[metric[1]] if metric else [])
    run = config.epochs if epochs_to_run is None else min(int(epochs_to_run), config.epochs)
    steps = steps_per_epoch
    if steps_to_run is not None:
        run, steps = 1, max(1, min(int(steps_to_run), steps_per_epoch))
    bar = tqdm(total=steps * run, desc=f"training shapes_{variant}",
               unit="batch", disable=not progress)
    start = time.perf_counter()
    last: dict = {}
    epochs: list[dict] = []
    names = ["loss"] + ([metric[0]] if metric else [])

    class _Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            bar.update(1)
            if logs and batch % 10 == 0:
                bar.set_postfix({k: f"{float(logs[k]):.3f}" for k in names if k in logs})

    try:
        for epoch in range(run):
            data = course_data(variant, config.images_per_epoch, config.data_seed + epoch)
            images, targets = normalize_images(data.images), training_targets(variant, data)
            if steps < steps_per_epoch:  # the epoch's first batches (generated whole: seeded)
                first = steps * config.batch_size
                images, targets = images[:first], targets[:first]
            history = model.fit(images, targets, batch_size=config.batch_size, epochs=1,
                                shuffle=False, verbose=0, callbacks=[_Progress()])
            last = {k: float(history.history[k][-1]) for k in names}
            partial = {"steps": steps} if steps < steps_per_epoch else {}
            epochs.append({"epoch": epoch + 1, **partial,
                           **{k: round(v, 6) for k, v in last.items()}})
    finally:
        bar.close()
    seconds = time.perf_counter() - start
    if log:
        final = ", ".join(f"{k} {v:.3f}" for k, v in last.items())
        log(f"shapes_{variant}: trained in {seconds:.0f} s (final epoch: {final}).")
    return model, {"config": asdict(config), "train_seconds": round(seconds, 1),
                   **{f"final_train_{k}": round(v, 4) for k, v in last.items()},
                   "epochs": epochs}


def save_weights(model, variant: str, path) -> None:
    """Write a trained model's weights (and nothing else: no optimizer state) to ``path``."""
    clean = build_course_model(variant)
    clean.set_weights(model.get_weights())
    clean.save_weights(os.fspath(path))
