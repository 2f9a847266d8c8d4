"""Everything measured on one model, in one process: `benchmark_subject`.

Before any timing, each peer's raw maps are compared with camutils' on the same model,
inputs, classes and layer (`benchmarks.peers.agreement`). Then, for each batch size:

* single-pass block: baseline the plain forward pass; candidates every single-pass
  camutils method that applies to the model and layer (CAM where the head allows it, the
  Grad-CAM family, Eigen-CAM, the guided methods; rollout and its gradient-weighted form
  on a transformer);
* peers block: baseline the forward pass; candidates the gradient peers (tf-keras-vis
  Gradcam, GradcamPlusPlus, Layercam, the Keras example) and the camutils methods they
  implement, so that each pair is timed in the same rounds;
* Ablation-CAM block: baseline the passes it must run (`benchmarks.references`);
* Score-CAM blocks: baseline the passes it must run; candidates camutils and tf-keras-vis
  Scorecam (with ``max_N``, and on every channel where the settings ask for it).

Run as a script (``python -m benchmarks.model_bench NAME OUTPUT.json [SETTINGS.json]``)
it loads the zoo subject and writes its results as JSON: `benchmarks.__main__` starts one
such process per model, so that no model's caches, memory or threads touch another's.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from . import peers as P
from .references import ABLATION_BATCH, SCORECAM_BATCH
from .results import ModelResult, StoredModels, save_models
from .subjects import Subject
from .timing import Block, run_block, timed

__all__ = ["Settings", "SETTINGS", "benchmark_subject", "single_pass_methods",
           "measure_latency", "main"]


def single_pass_methods() -> tuple[str, ...]:
    """The camutils methods that run one forward (and backward) pass, in the table's order:
    every method of the method table but those that run a pass per channel (which have
    their own blocks)."""
    from camutils.methods.registry import method_table

    return tuple(m.name for m in method_table() if m.cost != "per channel")



@dataclass
class Rounds:
    """Bounds of a timing block (see `benchmarks.timing.Block`)."""

    min_rounds: int = 3
    max_rounds: int = 7
    budget_s: float = 30.0


@dataclass
class Settings:
    """What to measure on one model, and how long to try.

    Attributes:
        batches: the batch sizes.
        single: rounds of the single-pass block, per batch size (str keys, for JSON).
        peers_rounds: rounds of the block of gradient peers, per batch size.
        perturbation: rounds of the Score-CAM and Ablation-CAM blocks, per batch size.
        scorecam_channels: ``max_channels`` of camutils' Score-CAM (and ``max_N`` of
            tf-keras-vis') in the Score-CAM block; None runs every channel.
        full_scorecam: also run Score-CAM on every channel (with tf-keras-vis' full
            Scorecam) at these batch sizes.
        peer_memory_limit_gb: tf-keras-vis Scorecam builds every masked image in memory at
            once; it is not run where that would take more than this.
        peer_cpu_limit_s: nor where the forward passes it must run would cost more than
            this many CPU seconds (at this run's measured cost per image).
        slow_peer_rounds: per batch size, the most rounds tf-keras-vis Scorecam takes part
            in (default 2; it is several times slower than camutils and dominates the run
            time, so one or two runs settle the comparison).
        agreement_batch: images used for the agreement checks.
        methods: the single-pass methods to time.
        peers: whether to run the peers at all.
        per_channel: whether to run the Score-CAM and Ablation-CAM blocks.
        progress: show progress bars.
        deadline: ``time.time()`` after which every block runs a single round (so that the
            whole run keeps to its time limit on a busy machine); None: no deadline.
    """

    batches: tuple[int, ...] = (1, 8, 32)
    single: dict[str, Rounds] = field(default_factory=dict)
    peers_rounds: dict[str, Rounds] = field(default_factory=dict)
    perturbation: dict[str, Rounds] = field(default_factory=dict)
    scorecam_channels: int | None = 8
    full_scorecam: tuple[int, ...] = ()
    peer_memory_limit_gb: float = 2.0
    peer_cpu_limit_s: float = 15.0
    slow_peer_rounds: dict[str, int] = field(default_factory=dict)
    agreement_batch: int = 4
    methods: tuple[str, ...] = field(default_factory=single_pass_methods)
    peers: bool = True
    per_channel: bool = True
    progress: bool = True
    deadline: float | None = None

    def rounds(self, kind: str, batch: int) -> Rounds:
        table = {"single": self.single, "peers": self.peers_rounds,
                 "perturbation": self.perturbation}[kind]
        return table.get(str(batch), Rounds())

    @classmethod
    def from_dict(cls, data: dict) -> "Settings":
        data = dict(data)
        for key in ("single", "peers_rounds", "perturbation"):
            data[key] = {k: Rounds(**v) for k, v in data.get(key, {}).items()}
        for key in ("batches", "full_scorecam", "methods"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)


#: The settings `make bench` uses for each zoo model: about 5 minutes in all on a quiet
#: 2-core CPU. Blocks stop adding rounds after their time budget, and the parent gives each
#: model a deadline after which blocks run one round, so that a busy machine keeps within
#: 10 minutes too.
SETTINGS = {
    "efficientnet_lite0": Settings(
        single={"1": Rounds(9, 15, 8), "8": Rounds(5, 9, 20), "32": Rounds(7, 9, 60)},
        peers_rounds={"1": Rounds(3, 3, 0), "8": Rounds(2, 2, 0), "32": Rounds(2, 2, 0)},
        perturbation={"1": Rounds(3, 7, 5), "8": Rounds(3, 5, 10), "32": Rounds(3, 3, 0)},
        scorecam_channels=4, slow_peer_rounds={"1": 3, "8": 1, "32": 1},
    ),
    "shapes_gap": Settings(
        single={"1": Rounds(5, 9, 5), "8": Rounds(5, 9, 5), "32": Rounds(5, 9, 8)},
        peers_rounds={"1": Rounds(3, 5, 3), "8": Rounds(3, 5, 3), "32": Rounds(3, 5, 5)},
        perturbation={"1": Rounds(3, 5, 3), "8": Rounds(3, 5, 3), "32": Rounds(3, 5, 5)},
        scorecam_channels=4, full_scorecam=(1, 8, 32), agreement_batch=8,
        slow_peer_rounds={"1": 3, "8": 2, "32": 1},
    ),
    # The design's ViT budgets are one-pass ones (Grad-CAM, rollout); no peer explains a
    # token grid.
    "shapes_vit": Settings(
        single={"1": Rounds(5, 9, 5), "8": Rounds(5, 9, 5), "32": Rounds(7, 11, 10)},
        peers=False, per_channel=False,
    ),
}


def _log(progress: bool, message: str) -> None:
    if progress:
        print(message, file=sys.stderr, flush=True)


def _explainer(subject: Subject, method: str, images: np.ndarray, **options) -> Callable:
    import camutils

    return lambda: camutils.explain(subject.model, images, method, layer=subject.layer,
                                    **options)


# --------------------------------------------------------------------------- agreement


def _input_resolution_layer(subject: Subject) -> str | None:
    """The last spatial layer with the input's height and width (None when there is none)."""
    from camutils.methods.layers import spatial_layers
    from camutils.methods.model_graph import describe_model

    graph = describe_model(subject.model)
    size = tuple(graph.input_shape[1:3])
    found = [p for p in spatial_layers(subject.model)
             if tuple(graph.call(p).shape[1:3]) == size]
    return found[-1] if found else None


def check_agreement(subject: Subject, peer_list: list, images: np.ndarray,
                    classes: np.ndarray) -> list[dict]:
    """Each peer's raw maps against camutils' on the same images, classes and layer."""
    import camutils

    rows = []
    for peer in peer_list:
        options = dict(peer.options, **({"progress": False} if peer.method == "scorecam"
                                        else {}))
        ours = camutils.explain(subject.model, images, peer.method, target=list(classes),
                                layer=subject.layer, **options)
        theirs = peer.raw(images, classes)
        row = {"peer": peer.name, "method": peer.method, "layer": subject.layer,
               "images": len(images), "exact": peer.exact,
               **P.agreement(peer.ours(ours), theirs)}
        rows.append(row)
    exact_layer = _input_resolution_layer(subject)
    full = [p for p in peer_list if p.method == "scorecam" and not p.options]
    if exact_layer is not None and full:
        # Score-CAM at a layer with the input's resolution: no mask upsampling, so the
        # two definitions coincide and the maps must agree to rounding.
        peer = P.scorecam_peer(subject.model, exact_layer)
        ours = camutils.explain(subject.model, images, "scorecam", target=list(classes),
                                layer=exact_layer, progress=False)
        rows.append({"peer": peer.name, "method": "scorecam", "layer": exact_layer,
                     "images": len(images), "exact": True,
                     **P.agreement(ours.raw, peer.raw(images, classes))})
    return rows


def _applies(subject: Subject, method: str) -> bool:
    """Whether ``method`` is defined on the subject's model and layer (its row's
    ``applies``: CAM needs a pooling -> Dense head)."""
    from camutils.methods.feature_model import feature_model
    from camutils.methods.registry import method_info

    row = method_info(method)
    if row.applies is None:
        return True
    try:
        row.applies(feature_model(subject.model, subject.layer))
        return True
    except ValueError:
        return False


# --------------------------------------------------------------------------- blocks


@dataclass
class Spec:
    """A block to run: what `benchmarks.timing.Block` needs, and what to record with it."""

    kind: str  # "single", "peers" or "perturbation" (which `Settings` rounds apply)
    name: str
    baseline: Callable
    candidates: dict
    per_baseline: int = 1
    limits: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)


def _run(settings: Settings, batch: int, spec: Spec) -> dict:
    """Run ``spec`` (warm already); its JSON record. After the deadline: one round."""
    rounds = settings.rounds(spec.kind, batch)
    hurried = settings.deadline is not None and time.time() > settings.deadline
    if hurried:
        rounds = Rounds(1, 1, 0.0)
    base, results = run_block(
        Block(spec.name, spec.baseline, spec.candidates, rounds.min_rounds, rounds.max_rounds,
              rounds.budget_s, per_baseline=spec.per_baseline, warmup=False,
              limits=spec.limits),
        progress=settings.progress)
    record = {"baseline": base.as_dict(),
              "candidates": {k: v.as_dict() for k, v in results.items()},
              "rounds": len(base.samples) and max(len(v.samples) for v in results.values()),
              "seconds": base.elapsed, "hurried": hurried}
    record.update(spec.extra)
    return record


def _warm_up(spec: Spec) -> dict[str, float]:
    """Call every callable of ``spec`` once; their first-call wall seconds."""
    first = {"(baseline)": timed(spec.baseline)[0]}
    for name, candidate in spec.candidates.items():
        first[name] = timed(candidate)[0]
    return first


def _single_pass_spec(subject, settings, batch, images, refs) -> Spec:
    methods = [m for m in settings.methods if _applies(subject, m)]
    return Spec("single", f"{subject.name} b{batch} single-pass", lambda: refs.forward(images),
                {method: _explainer(subject, method, images) for method in methods})


def _peers_spec(subject, settings, batch, images, classes, refs, gradient_peers) -> Spec:
    """The gradient peers beside the camutils methods they implement (same rounds)."""
    candidates = {}
    for peer in gradient_peers:
        candidates[peer.name] = (lambda peer=peer: peer.run(images, classes))
        candidates.setdefault(peer.method, _explainer(subject, peer.method, images))
    return Spec("peers", f"{subject.name} b{batch} peers", lambda: refs.forward(images),
                candidates, per_baseline=2,
                extra={"peer_of": {p.name: p.method for p in gradient_peers}})


def _ablation_spec(subject, batch, images, refs) -> Spec:
    reference, passes = refs.ablationcam(images, ABLATION_BATCH)
    return Spec("perturbation", f"{subject.name} b{batch} Ablation-CAM", reference,
                {"ablationcam": _explainer(subject, "ablationcam", images, progress=False)},
                extra={"passes": passes, "batch_size": ABLATION_BATCH})


def _scorecam_spec(subject, settings, batch, images, classes, refs, channels: int | None,
                   activations: np.ndarray, forward_cpu_per_image: float | None) -> Spec:
    """Score-CAM on ``channels`` channels per image (None: all) against its passes.

    tf-keras-vis' Scorecam joins when it fits: it builds every masked image in memory at
    once, and its forward passes alone can cost many times camutils' whole Score-CAM; in
    both cases it is left out, with the measured reason.
    """
    total = activations.shape[-1]
    kept = total if channels is None else min(channels, total)
    reference, passes = refs.scorecam(images, kept, SCORECAM_BATCH)
    options = {} if channels is None else {"max_channels": channels}
    candidates = {"scorecam": _explainer(subject, "scorecam", images, progress=False,
                                         **options)}
    skipped, peer_of, peer_images = {}, {}, None
    if settings.peers:
        peer = P.scorecam_peer(subject.model, subject.layer, channels, SCORECAM_BATCH)
        union = P.tfkv_union_size(activations, channels)
        masked = len(images) * union
        # tf-keras-vis holds the tiled images, the masks and their product at once.
        gigabytes = 3 * masked * images[0].nbytes / 1e9
        cpu = None if forward_cpu_per_image is None else masked * forward_cpu_per_image
        what = (f"{masked} masked images ({len(images)} images x {union} channels"
                + (f", the union of each image's top {channels})" if channels else ")"))
        if gigabytes > settings.peer_memory_limit_gb:
            skipped[peer.name] = {"masked_images": masked, "memory_gb": gigabytes,
                                  "estimated_cpu_s": cpu,
                                  "reason": f"it would build {what} in memory at once, "
                                            f"about {gigabytes:.1f} GB"}
        elif cpu is not None and cpu > settings.peer_cpu_limit_s:
            skipped[peer.name] = {
                "masked_images": masked, "memory_gb": gigabytes, "estimated_cpu_s": cpu,
                "reason": f"it runs {what}: their forward passes alone cost about {cpu:.0f} "
                          f"s of CPU at this run's measured cost per image (camutils' whole "
                          f"Score-CAM: {passes + len(images)} images), so it cannot be "
                          "faster; left out to keep the run within 10 minutes"}
        else:
            candidates[peer.name] = lambda: peer.run(images, classes)
            peer_of[peer.name] = "scorecam"
            peer_images = masked
    label = "all channels" if channels is None else f"max_channels={channels}"
    return Spec("perturbation", f"{subject.name} b{batch} Score-CAM ({label})", reference,
                candidates,
                limits={name: settings.slow_peer_rounds.get(str(batch), 2) for name in peer_of},
                extra={"passes": passes, "channels": kept, "batch_size": SCORECAM_BATCH,
                       "peer_of": peer_of, "peer_masked_images": peer_images,
                       "skipped": skipped})


# --------------------------------------------------------------------------- latency

#: The method whose first map is timed (the default of `camutils.explain`).
FIRST_METHOD = "gradcam"


def measure_latency(subject: Subject, warm_calls: int = 5) -> dict:
    """The first map of the model and the cost of switching methods, on one image.

    camutils' cache of the model is emptied first, so the first map pays for everything a
    new model costs (its analysis, tracing and compiling its pass); then each other one-pass
    method that reads the same pass (from the method table) is called once, and the first
    method again ``warm_calls`` times. Returns ``{"first_map": {"method", "wall_s",
    "cpu_s"}, "switch": {method: wall s}, "switch_cpu": {method: CPU s}, "warm_s": median
    wall s, "warm_cpu_s": median CPU s}`` (the method switch is judged on CPU time, as the
    ratio budgets are: see `benchmarks.timing`).
    """
    import camutils
    from camutils.methods.registry import method_info, method_table
    from camutils.model_cache import model_cache

    model_cache(subject.model).clear()
    image = subject.inputs(1)
    first = method_info(FIRST_METHOD)
    wall, cpu = time.perf_counter(), time.process_time()
    camutils.explain(subject.model, image, first.name, layer=subject.layer)
    latency = {"first_map": {"method": first.name, "wall_s": time.perf_counter() - wall,
                             "cpu_s": time.process_time() - cpu}, "switch": {}, "switch_cpu": {}}
    for row in method_table():
        if row.name != first.name and row.passes == "one" and \
                row.pass_kind == first.pass_kind and _applies(subject, row.name):
            latency["switch"][row.name], latency["switch_cpu"][row.name] = timed(
                lambda: camutils.explain(subject.model, image, row.name, layer=subject.layer))
    warm = [timed(lambda: camutils.explain(subject.model, image, first.name,
                                           layer=subject.layer)) for _ in range(warm_calls)]
    latency["warm_s"] = float(np.median([w for w, _ in warm]))
    latency["warm_cpu_s"] = float(np.median([c for _, c in warm]))
    return latency


# --------------------------------------------------------------------------- the run


def benchmark_subject(subject: Subject, settings: Settings | None = None) -> ModelResult:
    """Measure every method and peer on ``subject``; its `benchmarks.results.ModelResult`.

    Every callable is first called once at the smallest batch size (tracing; camutils'
    functions and the references are traced once for all batch sizes), then the batch
    sizes run from the largest down, so that a run that reaches its deadline hurries
    through the small batches, not through the ones the budgets are judged on.
    """
    from .references import References

    settings = settings or Settings()
    started = time.perf_counter()
    _log(settings.progress, f"[{subject.name}] first map and method switch")
    latency = measure_latency(subject)
    refs = References(subject.model, subject.layer)
    largest = subject.inputs(max(settings.batches))
    activations_all, logits = refs.feature(largest)
    classes_all = logits.argmax(axis=1)  # each image's top class, as the methods pick it

    gradient_peers = P.gradient_peers(subject.model, subject.layer) if settings.peers else []
    result = {
        "model": subject.name, "layer": subject.layer, "weights": subject.weights,
        "facts": subject.facts, "settings": _settings_dict(settings),
        "agreement": [], "first_call": {}, "latency": latency, "batches": {},
    }
    if settings.peers:
        _log(settings.progress, f"[{subject.name}] agreement with the peers")
        agreement_images = subject.inputs(settings.agreement_batch)
        score_peers = [P.scorecam_peer(subject.model, subject.layer, settings.scorecam_channels)]
        if settings.full_scorecam:
            score_peers.append(P.scorecam_peer(subject.model, subject.layer, None))
        agreement_classes = refs.feature(agreement_images)[1].argmax(axis=1)
        result["agreement"] = check_agreement(subject, gradient_peers + score_peers,
                                              agreement_images, agreement_classes)

    def specs(batch: int, entry: dict):
        """``(key, make)`` for each block at ``batch``; ``make()`` builds its `Spec` (lazily:
        the Score-CAM blocks read the forward pass's cost from ``entry["single"]``)."""
        images, classes = largest[:batch], classes_all[:batch]
        activations = activations_all[:batch]

        def cpu_per_image():
            single = entry.get("single")
            return None if single is None else single["baseline"]["cpu_median_s"] / batch

        yield "single", lambda: _single_pass_spec(subject, settings, batch, images, refs)
        if gradient_peers:
            yield "peers", lambda: _peers_spec(subject, settings, batch, images, classes, refs,
                                               gradient_peers)
        if not settings.per_channel:
            return
        yield "ablationcam", lambda: _ablation_spec(subject, batch, images, refs)
        yield "scorecam", lambda: _scorecam_spec(
            subject, settings, batch, images, classes, refs, settings.scorecam_channels,
            activations, cpu_per_image())
        if batch in settings.full_scorecam:
            yield "scorecam_full", lambda: _scorecam_spec(
                subject, settings, batch, images, classes, refs, None, activations,
                cpu_per_image())

    smallest = min(settings.batches)
    _log(settings.progress, f"[{subject.name}] first calls at batch {smallest}")
    for key, make in specs(smallest, {}):
        result["first_call"][key] = _warm_up(make())
    if settings.full_scorecam and smallest not in settings.full_scorecam:
        for key, make in specs(min(settings.full_scorecam), {}):
            if key == "scorecam_full":
                result["first_call"][key] = _warm_up(make())

    for batch in sorted(settings.batches, reverse=True):
        entry: dict = {}
        for key, make in specs(batch, entry):
            _log(settings.progress, f"[{subject.name}] batch {batch}: {key}")
            entry[key] = _run(settings, batch, make())
        result["batches"][str(batch)] = entry
    result["seconds"] = time.perf_counter() - started
    return ModelResult.from_dict(result)


def _settings_dict(settings: Settings) -> dict:
    data = asdict(settings)
    data["batches"] = list(settings.batches)
    return data


def environment() -> dict:
    """Versions and threading of this process (what the figures depend on)."""
    import keras
    import tensorflow as tf

    return {
        "python": platform.python_version(), "tensorflow": tf.__version__,
        "keras": keras.__version__, "numpy": np.__version__,
        "tf_keras_vis": _version("tf-keras-vis"),
        "onednn": os.environ.get("TF_ENABLE_ONEDNN_OPTS", "(TensorFlow's default)"),
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
    }


def _version(distribution: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.model_bench NAME OUTPUT.json [--settings S.json]
    [--deadline EPOCH]``: benchmark one zoo model and write its results."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m benchmarks.model_bench",
                                     description="Benchmark one zoo model (JSON out).")
    parser.add_argument("name", help="the zoo model (see benchmarks.subjects.SUBJECTS)")
    parser.add_argument("output", help="where to write the JSON results")
    parser.add_argument("--settings", help="a JSON file of Settings (default: SETTINGS)")
    parser.add_argument("--deadline", type=float, default=None,
                        help="time.time() after which each block runs one round")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    from .subjects import load_subject

    if args.settings:
        with open(args.settings) as handle:
            settings = Settings.from_dict(json.load(handle))
    else:
        settings = replace(SETTINGS.get(args.name, Settings()))
    if args.deadline is not None:
        settings.deadline = args.deadline
    started = time.perf_counter()
    subject = load_subject(args.name)
    loaded = time.perf_counter() - started
    result = benchmark_subject(subject, settings)
    result.load_s = loaded
    result.environment = environment()
    save_models(args.output, StoredModels(models={subject.name: result}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
