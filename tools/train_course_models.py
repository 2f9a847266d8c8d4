"""Train the course's small shapes models and write their weights and manifest to data/.

    python tools/train_course_models.py                      # all nine, minutes each
    python tools/train_course_models.py --variants gap gmp   # some of them
    python tools/train_course_models.py --out /tmp/models    # somewhere else (e.g. to compare)
    python tools/train_course_models.py --out /tmp/models --variants gap --epochs-to-run 1
                                                             # the first epoch of the full run
    python tools/train_course_models.py --out /tmp/models --variants gap --steps-to-run 96
                                                             # its first 96 batches
    python tools/train_course_models.py --evaluate-only      # re-score the shipped weights

Each variant is trained from scratch, deterministically, by
`camutils.course.training.train_course_model` (the code that ``load_course_model(variant,
retrain=True)`` runs), then evaluated on a freshly generated test set
(`camutils.course.evaluation`). The weights go to ``<out>/shapes_<variant>.weights.h5`` and
``<out>/course_models.json`` records, per model, its task and output format, the file's
sha256, the test scores, the seeds, the epochs, the training loss and metric after each
epoch, the date, the exact command and the library versions. Entries of variants not
trained in this run are kept.

``--epochs-to-run N`` stops after the first N epochs of the shipped schedule, and
``--steps-to-run N`` after the first N batches of its first epoch (the reproduction test
compares them with the manifest's); ``--evaluate-only`` trains nothing and
rewrites only the scores of the shipped weights (after a change to how they are measured).

TensorFlow's oneDNN kernels are switched on for training unless TF_ENABLE_ONEDNN_OPTS is
already set (they train about twice as fast on a CPU); the setting is recorded in the manifest.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
sys.path.insert(0, str(REPO))


def _command() -> str:
    """The command line as typed from the repository root, without machine paths."""
    script = Path(sys.argv[0]).resolve()
    try:
        script = script.relative_to(REPO)
    except ValueError:
        script = Path(script.name)
    return shlex.join(["python", script.as_posix(), *sys.argv[1:]])


def main(argv: list[str] | None = None) -> int:
    from camutils.course import models as cm
    from camutils.course.shapes import SHAPE_CLASSES

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", nargs="+", default=list(cm.VARIANTS), choices=cm.VARIANTS,
                        help="which models to train (default: all)")
    parser.add_argument("--out", type=Path, default=REPO / "data",
                        help="folder for the weights and the manifest (default: the repository's data/)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--epochs-to-run", type=int, default=None, metavar="N",
                        help="stop after the first N epochs of the shipped schedule")
    parser.add_argument("--steps-to-run", type=int, default=None, metavar="N",
                        help="stop after the first N batches of the first epoch")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="train nothing: re-score the shipped weights and rewrite their scores")
    args = parser.parse_args(argv)

    import keras
    import numpy as np
    import tensorflow as tf

    args.out.mkdir(parents=True, exist_ok=True)
    manifest_path = args.out / cm.MANIFEST
    manifest = json.loads(manifest_path.read_text()) if manifest_path.is_file() else {}
    manifest.update({
        "description": "The course's shapes models: weights trained by "
                       "tools/train_course_models.py; scores on a freshly generated test set.",
        "class_names": list(SHAPE_CLASSES),
        "input_size": list(cm.INPUT_SIZE),
        "cam_layer": cm.CAM_LAYER,
        "normalize": "RGB uint8 / 255",
    })
    models = manifest.setdefault("models", {})
    if args.evaluate_only:
        for variant in args.variants:
            scores = cm.evaluate_course_model(cm.load_course_model(variant).model, variant)
            models[variant].update(scores)
            print(f"shapes_{variant}: {scores}", flush=True)
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"Wrote {manifest_path}")
        return 0
    for variant in args.variants:
        model, facts = cm.train_course_model(variant, progress=not args.no_progress,
                                             epochs_to_run=args.epochs_to_run,
                                             steps_to_run=args.steps_to_run)
        path = args.out / cm.weights_file(variant)
        cm.save_weights(model, variant, path)
        partial = len(facts["epochs"]) < facts["config"]["epochs"] or "steps" in facts["epochs"][-1]
        # a partly trained model's scores say nothing: its entry records the epochs only
        scores = {} if partial else cm.evaluate_course_model(model, variant)
        spec = cm.SPECS[variant]
        models[variant] = {
            "task": spec.task,
            "output": spec.output,
            "cam_layer": spec.cam_layer,
            "file": path.name,
            "sha256": cm.file_sha256(path),
            "size_bytes": path.stat().st_size,
            "parameters": int(model.count_params()),
            **scores,
            **facts,
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d"),
            "command": _command(),
            "versions": {"python": platform.python_version(), "tensorflow": tf.__version__,
                         "keras": keras.__version__, "numpy": np.__version__},
            "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS") != "0",
            "cpus": os.cpu_count(),
        }
        if partial:
            models[variant]["epochs_run"] = len(facts["epochs"])
        summary = {k: v for k, v in scores.items() if k not in ("test_seed", "test_images")}
        print(f"shapes_{variant}: {path.name} ({path.stat().st_size / 1024:.0f} KiB), {summary}",
              flush=True)
        manifest["models"] = {v: models[v] for v in cm.VARIANTS if v in models}
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
    print(f"Wrote {manifest_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
