"""The course's shapes networks as zoo models: loaded from their shipped weights, or retrained.

    gap = camutils.load_model("shapes_gap")        # or load_course_model("gap")
    gap.top_k(camutils.make_shapes(4, seed=7).images, k=1)
    segmenter = load_course_model("segmenter")    # and "multilabel", "detector", "size", "vit"
    segmenter.task, segmenter.class_names, segmenter.cam_layer

The shipped weights (``data/shapes_<variant>.weights.h5``) were trained by
``tools/train_course_models.py`` with `camutils.course.training.train_course_model`, the
same code that ``load_course_model(variant, retrain=True)`` runs; ``data/course_models.json``
records for each one its sha256, how it was trained (seed, epochs, command, versions, the
loss after each epoch) and what it scores on a freshly generated test set
(`camutils.course.evaluation`). The architecture is in `camutils.course.architecture`.

It is the course networks' one entry point: it re-exports the architecture, the training
configuration and the training functions beside the loader.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from .architecture import (
    CAM_LAYER, INPUT_SIZE, SPECS, VARIANTS, build_course_model, check_variant, normalize_images,
)
from .evaluation import TEST_SEED, TEST_SIZE, evaluate_course_model
from .training import (
    TRAINING, TrainingConfig, save_weights, seed_everything, train_course_model, with_config,
)

__all__ = [
    "VARIANTS", "SPECS", "CAM_LAYER", "INPUT_SIZE", "MANIFEST", "TEST_SEED", "TEST_SIZE",
    "TrainingConfig", "TRAINING", "build_course_model", "train_course_model",
    "evaluate_course_model", "load_course_model", "read_manifest", "weights_file",
    "file_sha256", "save_weights", "seed_everything", "with_config", "normalize_images",
]

MANIFEST = "course_models.json"


def _prepare(images) -> np.ndarray:
    """A batch of RGB uint8 images, resized to `INPUT_SIZE` where needed."""
    from ..images import resize

    return np.stack([im if im.shape[:2] == INPUT_SIZE else resize(im, INPUT_SIZE) for im in images])


def _data_dir():
    from importlib.resources import files

    return files("camutils.data")


def weights_file(variant: str) -> str:
    """The file name of a variant's shipped weights (inside ``camutils.data``)."""
    return f"shapes_{check_variant(variant)}.weights.h5"


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


def load_course_model(variant: str, retrain: bool = False, config: TrainingConfig | None = None,
                      progress: bool = True):
    """A course model as a `camutils.zoo.ZooModel`, from its shipped weights or retrained.

    Args:
        variant: one of `VARIANTS` (``"shapes_gap"`` also works): the classifiers ``"gap"``,
            ``"gmp"``, ``"flatten"``, ``"shortcut"`` and ``"vit"``, and ``"multilabel"``,
            ``"segmenter"``, ``"detector"`` and ``"size"`` (what each outputs:
            `camutils.course.architecture.SPECS`, also the returned model's ``task`` and
            ``class_names``).
        retrain: train afresh with the code of ``tools/train_course_models.py`` instead of
            loading the shipped weights (2 to 4 minutes on a 2-core CPU for the classifiers,
            5 to 11 for the others, twice that with oneDNN off as in the notebooks; it says
            how long the shipped run took and shows a progress bar). See
            `train_course_model` on how close a retrained model comes.
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

    from ..zoo.model import ZooModel

    variant = check_variant(variant)
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
    spec = SPECS[variant]
    return ZooModel(
        name=f"shapes_{variant}",
        model=model,
        input_size=INPUT_SIZE,
        class_names=list(spec.output_names),
        cam_layer=spec.cam_layer,
        prepare=_prepare,
        normalize=normalize_images,
        offline=True,
        info=info,
        task=spec.task,
    )


def _manifest_or_empty() -> dict:
    try:
        return read_manifest()
    except FileNotFoundError:
        return {}
