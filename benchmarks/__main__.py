"""``python -m benchmarks``: measure, keep the results, write docs/benchmarks.md.

    python -m benchmarks                      # both models (what `make bench` runs), ~6 min
    python -m benchmarks --models shapes_gap  # one model (the other's last results are kept)
    python -m benchmarks --course             # also execute every notebook (minutes)
    python -m benchmarks --dataset            # also explain_dataset's throughput and memory (~2 min)
    python -m benchmarks --targets            # also Grad-CAM with each ready-made target (~2 min)
    python -m benchmarks --make-test          # also time `make test` (many minutes)
    python -m benchmarks --skip-models        # only re-render the docs from stored results

Each model runs in its own process. Results are stored in ``benchmarks/results/``
(``models.json``, ``course.json``, ``dataset.json``, ``targets.json``) so that a partial run keeps the other
figures, each with the date it was measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .budgets import evaluate
from .course import ROOT, measure_make_test, measure_notebooks, merge_notebooks
from .machine import describe_machine
from .report import write_report
from .results import (DatasetResult, ModelResult, StoredModels, load_dataset, load_models,
                      read_json, save_dataset, save_models, write_json)
from .subjects import SUBJECTS

RESULTS = ROOT / "benchmarks" / "results"
# When each model's blocks start hurrying, as a share of --time-limit from the start (the
# models run in the order of SUBJECTS: EfficientNet-Lite0 first, the shapes networks after).
DEADLINE_SHARE = {"efficientnet_lite0": 0.7, "shapes_gap": 0.88, "shapes_vit": 0.95}
DOCS = ROOT / "docs"


def run_model(name: str, settings: dict | None = None,
              deadline: float | None = None) -> ModelResult:
    """Benchmark one zoo model in a fresh process; its `ModelResult`.

    ``deadline`` (a ``time.time()``) is when its blocks start running one round each.

    Raises:
        RuntimeError: the process failed (its last lines of output are in the message).
    """
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    env.setdefault("MPLBACKEND", "Agg")
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / f"{name}.json"
        command = [sys.executable, "-m", "benchmarks.model_bench", name, str(output)]
        if settings is not None:
            settings_path = Path(folder) / "settings.json"
            write_json(settings_path, settings)
            command += ["--settings", str(settings_path)]
        if deadline is not None:
            command += ["--deadline", str(deadline)]
        completed = subprocess.run(command, cwd=ROOT, env=env, stderr=subprocess.PIPE,
                                   text=True)
        if completed.returncode != 0 or not output.is_file():
            tail = "\n".join(completed.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"Benchmarking {name} failed (exit status "
                               f"{completed.returncode}):\n{tail}")
        return load_models(output).models[name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(SUBJECTS), choices=SUBJECTS,
                        help="the models to measure (default: all)")
    parser.add_argument("--skip-models", action="store_true",
                        help="measure no model; re-use the stored results")
    parser.add_argument("--course", action="store_true",
                        help="also execute every notebook (time and peak memory)")
    parser.add_argument("--notebooks", nargs="*", default=None,
                        help="with --course: only notebooks whose names contain these words")
    parser.add_argument("--make-test", action="store_true", help="also time `make test`")
    parser.add_argument("--dataset", action="store_true",
                        help="also measure explain_dataset: throughput against a forward-only "
                             "tf.data pipeline, and peak memory of 1,000 and 10,000 images")
    parser.add_argument("--targets", action="store_true",
                        help="also measure Grad-CAM with each ready-made target on "
                             "EfficientNet-Lite0, the course segmenter and detector")
    parser.add_argument("--time-limit", type=float, default=540.0,
                        help="seconds the models may take in all; past each model's share "
                             "every block runs one round (default: 540)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="where to write the docs")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where the JSON results are kept")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    stored = load_models(args.results / "models.json")
    models, run = stored.models, stored.run
    if not args.skip_models:
        machine = describe_machine()
        clock = time.time()
        for name in args.models:
            print(f"== {name} (one process) ==", file=sys.stderr, flush=True)
            deadline = clock + args.time_limit * DEADLINE_SHARE.get(name, 1.0)
            models[name] = run_model(name, deadline=deadline)
            models[name].machine = machine
        run = {"machine": machine, "wall_s": time.perf_counter() - started,
               "load_average_end": describe_machine()["load_average"],
               "command": "python -m benchmarks" + ("" if args.models == list(SUBJECTS)
                                                    else " --models " + " ".join(args.models))}
        save_models(args.results / "models.json", StoredModels(run, models))

    # The zoo models in their usual order (EfficientNet-Lite0 first), then any others.
    models = {name: models[name] for name in
              [n for n in SUBJECTS if n in models] + [n for n in models if n not in SUBJECTS]}
    course = read_json(args.results / "course.json") or {}
    if args.course:
        measured = measure_notebooks(args.notebooks)
        # only some notebooks (--notebooks): the others keep their last figures
        course["notebooks"] = merge_notebooks(course.get("notebooks"), measured) \
            if args.notebooks else measured
        write_json(args.results / "course.json", course)
    if args.make_test:
        course["make_test"] = measure_make_test()
        write_json(args.results / "course.json", course)

    dataset = load_dataset(args.results / "dataset.json")
    if args.dataset:
        from .dataset_bench import measure_dataset

        dataset = DatasetResult.from_dict(measure_dataset())
        save_dataset(args.results / "dataset.json", dataset)

    targets = read_json(args.results / "targets.json")
    if args.targets:
        from .targets_bench import measure_targets

        targets = measure_targets()
        write_json(args.results / "targets.json", targets)

    markdown, plot = write_report(models, course, run, args.docs, dataset, targets)
    rows = evaluate(models, course, dataset, targets)
    width = max(len(r.budget) for r in rows)
    for r in rows:
        print(f"{r.budget:<{width}}  {r.status:<12}  {r.measured}")
    print(f"Wrote {markdown} and {plot} in {time.perf_counter() - started:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
