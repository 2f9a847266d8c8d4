"""`explain_dataset`: explain a folder, a list of files or a tf.data.Dataset, in shards.

    run = camutils.explain_dataset(lite0, "photos/", "gradcam", out="maps/")
    run.images, run.unreadable, run.complete

The images flow through a tf.data pipeline (`camutils.dataset.sources`: decoded by
`camutils.images` in a parallel map, batched, prefetched) into one compiled step per batch,
and the results stream to disk shard by shard (`camutils.dataset.format`), so memory stays
flat whatever the dataset's size. A one-pass method of the method table (CAM, the Grad-CAM
family, Eigen-CAM) runs as `camutils.methods.passes.one_pass_chain`, the pass and the rule that
`camutils.explain` runs, in one compiled step, inside ``strategy.run``: with a `tf.distribute`
strategy, each replica explains its own batches, and each worker of a multi-worker strategy
its own shards.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from ..checks import positive_int
from . import format as fmt
from .sources import Source, View, _Failures, collect, image_pipeline

__all__ = ["explain_dataset", "DatasetRun", "load_results", "TOP_CLASSES", "DEFAULT_SHARD_IMAGES"]

#: How many of the most probable classes each image's row keeps.
TOP_CLASSES = 5
#: The shard size aimed at by default (rounded down to a multiple of the batch size).
DEFAULT_SHARD_IMAGES = 1024


@dataclass
class DatasetRun:
    """What `explain_dataset` did, and where the results are.

    Attributes:
        out: the output folder (see `camutils.dataset.format` for what is in it).
        manifest: the run's manifest (its arguments, the class names, the map size).
        images: how many images the whole run covers.
        explained: images read and explained by this call.
        unreadable: ``(id, message)`` of each image this call could not read (skipped).
        resumed_shards: the shards complete before this call (their images were skipped).
        resumed_unreadable: ``(id, message)`` of the unreadable images in those shards.
        written_shards: the shards this call wrote.
        worker, workers: this process's place among the strategy's workers.
        seconds: the wall time of this call.
        complete: whether every shard of the run is written (``index.csv`` exists).
    """

    out: Path
    manifest: dict
    images: int
    explained: int = 0
    unreadable: list = field(default_factory=list)
    resumed_shards: list = field(default_factory=list)
    resumed_unreadable: list = field(default_factory=list)
    written_shards: list = field(default_factory=list)
    worker: int = 0
    workers: int = 1
    seconds: float = 0.0
    complete: bool = False

    def table(self) -> list[dict]:
        """Every image's row (the CSV tables), as dicts of strings."""
        return fmt.read_table(self.out)

    def load(self) -> dict:
        """Every array of the run, joined over its shards (see `load_results`)."""
        return load_results(self.out)

    def __repr__(self) -> str:
        return (f"DatasetRun(out={str(self.out)!r}, images={self.images}, explained="
                f"{self.explained}, unreadable={len(self.unreadable)}, complete={self.complete})")


def load_results(out) -> dict:
    """Every array of the run in ``out`` (`camutils.dataset.format.FIELDS`), joined over its
    complete shards in index order, plus ``"error"`` (the messages). For a dataset too large
    for memory, read the shards one at a time with `camutils.dataset.iter_shards`."""
    shards = list(fmt.iter_shards(out))
    if not shards:
        fmt.read_manifest(out)  # a clear error when ``out`` holds no run
        raise ValueError(f"The run in {str(out)!r} has no complete shard yet.")
    joined = {name: np.concatenate([s.arrays[name] for s in shards]) for name in fmt.FIELDS}
    joined["error"] = np.asarray(sum((s.errors for s in shards), []), dtype=str)
    return joined


# --------------------------------------------------------------------------- the model


@dataclass
class _Subject:
    name: str
    model: object
    layer: object
    class_names: list | None
    view: View
    preprocessing: str


def _subject(model, layer, class_names, preprocess) -> _Subject:
    """The Keras model, its default layer, class names and the image -> input view."""
    from ..zoo.model import ZooModel

    if isinstance(model, ZooModel):
        zoo = model
        names = list(zoo.class_names) if class_names is None else list(class_names)
        keras_model = zoo.model
        chosen = zoo.cam_layer if layer is None else layer
        view = View(tuple(keras_model.input_shape[1:]),
                    lambda image: np.asarray(zoo.prepare([image]))[0],
                    lambda seen: np.asarray(zoo.normalize(seen[None]), np.float32)[0])
        description = f"the zoo model {zoo.name!r}'s own (prepare, then normalize)"
        name = zoo.name
    elif hasattr(model, "layers") and hasattr(model, "input_shape"):
        keras_model, names, chosen, name = model, class_names, layer, model.name
        shape = tuple(keras_model.input_shape[1:])
        if preprocess is None:
            if len(shape) != 3 or None in shape or shape[2] != 3:
                raise ValueError(
                    f"Model {name!r} takes inputs of shape {tuple(keras_model.input_shape)}; the "
                    "default preprocessing (resize to the input size, scale to [0, 1]) needs a "
                    "fixed (height, width, 3) input. Pass preprocess=f, a function from one RGB "
                    "uint8 image to the model's input.")
            from ..images import resize

            size = shape[:2]
            view = View(shape, lambda image: resize(image, size),
                        lambda seen: np.asarray(seen, np.float32) / 255.0)
            description = f"resized to {size[0]} x {size[1]} (no crop), divided by 255"
        else:
            view = None
            description = ""
    else:
        raise TypeError(f"model must be a Keras model or a camutils zoo model "
                        f"(camutils.load_model), not {type(model).__name__}.")
    if preprocess is not None:
        if not callable(preprocess):
            raise TypeError("preprocess must be a function from one RGB uint8 image to the "
                            "model's input.")
        view = View(tuple(keras_model.input_shape[1:]), None, preprocess)
        description = f"preprocess={getattr(preprocess, '__qualname__', repr(preprocess))}"
    if any(s is None for s in view.input_shape):
        raise ValueError(f"Model {name!r} takes inputs of shape {tuple(keras_model.input_shape)}: "
                         "explain_dataset batches images, so it needs a fixed input size.")
    return _Subject(name, keras_model, chosen, names, view, description)


def _model_fingerprint(model) -> str:
    """A sha256 of the model's layer structure and weights (changes when either does)."""
    digest = hashlib.sha256(json.dumps([model.name, str(model.input_shape),
                                        str(model.output_shape)]).encode())
    for weight in model.weights:
        digest.update(str(getattr(weight, "path", weight.name)).encode())
        digest.update(np.ascontiguousarray(np.asarray(weight)).tobytes())
    return digest.hexdigest()


# --------------------------------------------------------------------------- the step


@dataclass
class _Plan:
    """How each batch is explained: a compiled one-pass step, or the method's function."""

    layer: str
    map_shape: tuple
    target: int | None
    step: Callable | None  # inputs (per replica) -> dict of arrays
    fallback: Callable | None  # (inputs numpy) -> dict of arrays
    checks: tuple = ()  # what each column of the step's "finite" flags checks


def _plan(subject: _Subject, method: str, target, options: dict, strategy, want_maps: bool):
    """How each batch is explained, from the method's row: a one-pass method runs in one
    compiled step (`_compiled_plan`), a per-channel one through `explain` (`_explain_plan`)."""
    from ..methods.registry import method_info

    row = method_info(method)
    if row.gives == "pixels":
        raise ValueError(
            f"explain_dataset keeps each map at the layer's resolution; {row.label} gives maps "
            "at the input's resolution (one float per pixel), too large to keep for a whole "
            "dataset. Use a CAM method (gradcam, gradcam++, layercam, ...), or explain batches "
            "yourself with camutils.explain.")
    if target is not None and not isinstance(target, (int, np.integer, str)) \
            or isinstance(target, bool):
        raise TypeError("explain_dataset explains one class per image: target must be None "
                        "(each image's top class), a class index or a class name; run it once "
                        "per class for more.")
    options = row.checked_options(options)
    if row.passes == "one":
        return _compiled_plan(subject, row, target, options, strategy, want_maps)
    if strategy is not None:
        from ..methods.registry import method_table

        one_pass = ", ".join(m.name for m in method_table()
                             if m.passes == "one" and m.gives != "pixels")
        raise ValueError(
            f"{row.label} runs many passes per image from Python, so it cannot run inside "
            "a tf.distribute strategy; run it with strategy=None (or choose a one-pass "
            f"method: {one_pass}).")
    return _explain_plan(subject, row, target, options)


def _target_index(subject: _Subject, target) -> int | None:
    """The class ``target`` names (None: each image's top class)."""
    from ..methods.pipeline import output_of
    from ..targets import bind

    # checked against the output even for None: a segmenter's is no class output
    bound = bind(target, output_of(subject.model), 1, subject.class_names)
    return None if target is None else int(bound.data["classes"][0, 0])


def _explain_plan(subject: _Subject, row, target, options: dict) -> _Plan:
    """A per-channel method: its own function explains each batch (in Python)."""
    from ..methods.feature_model import feature_model
    from ..methods.layers import resolve_layer

    model = subject.model
    layer = resolve_layer(model, subject.layer)
    opened = feature_model(model, layer)

    def fallback(inputs):
        e = row.function(model, inputs, target, layer, class_names=subject.class_names,
                         **options)
        _, logits = opened(inputs)  # the logits (beneath a softmax, if the model has one)
        return {"raw": e.raw, "class_index": e.class_index, "score": e.score,
                "logits": np.asarray(logits, np.float32), "maps": e.maps}

    shape = tuple(int(n) for n in opened.activation_shape[:2])
    return _Plan(layer, shape, _target_index(subject, target), None, fallback)


def _compiled_plan(subject: _Subject, row, target, options: dict, strategy,
                   want_maps: bool) -> _Plan:
    """A one-pass method: its pass and rule in one compiled step per batch
    (`camutils.methods.passes.one_pass_chain`, the functions `explain` runs), inside
    ``strategy.run`` when there is a strategy."""
    import tensorflow as tf

    from ..methods.feature_model import feature_model
    from ..methods.passes import chain_checks, one_pass_chain
    from ..model_cache import cached
    from ..targets import Bound, Class

    model = subject.model
    feature = feature_model(model, subject.layer)
    if row.applies is not None:
        row.applies(feature)
    index = _target_index(subject, target)
    mode = "top" if index is None else "given"
    chosen = Class() if index is None else Class(index)
    resolved = Bound(chosen, 1, {}, chosen.describe())

    def replica_step(images):
        n = tf.shape(images)[0]
        data = {} if index is None else {"classes": tf.fill([n, 1], tf.constant(index,
                                                                                tf.int32))}
        maps, raw, p, finite = one_pass_chain(feature, row, options, images, data, resolved)
        result = {"raw": raw[:, 0], "class_index": p.classes[:, 0], "score": p.scores[:, 0],
                  "logits": p.logits, "finite": finite}
        if want_maps:
            result["maps"] = maps[:, 0]
        return result

    def build():  # without a strategy: the step itself, compiled once per model and rule
        spec = tf.TensorSpec((None, *feature.input_shape[1:]), tf.float32)
        return tf.function(replica_step, input_signature=[spec], autograph=False)

    # Called as concrete functions (as camutils.methods.pipeline calls its own), so that the
    # step runs as a graph even under tf.config.run_functions_eagerly(True).
    if strategy is None:
        key = ("dataset-step", feature.layer, feature.output, row.name, row.rule,
               tuple(sorted(options.items())), mode, index, want_maps)
        step = cached(model, key, build).get_concrete_function()
    else:  # made concrete for the distributed dataset's element spec, in _run
        step = tf.function(lambda images: strategy.run(replica_step, args=(images,)),
                           autograph=False)
    h, w = feature.activation_shape[:2]
    return _Plan(feature.layer, (int(h), int(w)), index, step, None, chain_checks(feature, row))


# --------------------------------------------------------------------------- explain_dataset


def _shard_size(shard_size, batch_size: int) -> int:
    if shard_size is None:
        return batch_size * max(1, DEFAULT_SHARD_IMAGES // batch_size)
    shard_size = positive_int(shard_size, "shard_size")
    if shard_size % batch_size:
        raise ValueError(
            f"shard_size ({shard_size}) must be a multiple of batch_size ({batch_size}): each "
            "shard is then explained in the same batches in every run, which is what makes a "
            "resumed run give identical results.")
    return shard_size


def _jsonable_options(options: dict) -> dict:
    try:
        return json.loads(json.dumps(options))
    except TypeError:
        raise TypeError(f"explain_dataset records the method's options in its manifest, so "
                        f"they must be numbers, strings or booleans; got {options!r}.") from None


def _strategy_info(strategy) -> dict:
    if strategy is None:
        return {"kind": None, "replicas": 1}
    return {"kind": type(strategy).__name__, "replicas": int(strategy.num_replicas_in_sync)}


def explain_dataset(model, source, method: str = "gradcam", target=None, layer=None, *,
                    out, batch_size: int = 32, shard_size: int | None = None,
                    strategy=None, labels=None, class_names=None, preprocess=None,
                    progress: bool = True, **options) -> DatasetRun:
    """Explain every image of a folder, a list of files or a ``tf.data.Dataset``, streaming
    the results to ``out`` in shards.

    Args:
        model: a zoo model (`camutils.load_model`: its preprocessing, class names and CAM
            layer are used) or a Keras model (images are then resized to its input size, no
            crop, and divided by 255, unless ``preprocess`` is given).
        source: a folder (searched recursively, sorted by path), a list of image paths, or a
            ``tf.data.Dataset`` of single images: uint8 images are preprocessed as files are,
            float images are taken as the model's input; elements may be ``(image, label)``
            or dicts with ``"image"``, ``"label"`` and ``"id"``.
        method: a method of the method table whose map is at the layer's resolution: a
            one-pass one (cam, gradcam, gradcam++, xgradcam, hirescam, layercam, eigencam),
            or a per-channel one (scorecam, ablationcam; not with a strategy).
        target: None (each image's top class), a class index or a class name.
        layer: the layer to explain (default: the zoo model's CAM layer, or the last spatial
            layer).
        out: the output folder (created). Re-run with the same arguments, a run resumes after
            its last complete shard; other arguments into the same folder are refused.
        batch_size: images per batch on each replica (the per-replica batch: a run with a
            strategy of R replicas explains R batches per step, each image in the same
            computation as without the strategy).
        shard_size: images per shard, a multiple of ``batch_size`` (default: about 1024).
        strategy: a ``tf.distribute`` strategy, e.g. ``MirroredStrategy`` (several GPUs or
            CPUs of one machine) or ``MultiWorkerMirroredStrategy`` (each worker writes its
            own shards: shard k goes to worker k mod the number of workers). The model may
            be built outside its scope (explaining needs no training variables).
        labels: for files: None, ``"folders"`` (the first folder under ``source``) or one
            label (class index or name) per image.
        class_names: one name per class (default: the zoo model's).
        preprocess: a function from one RGB uint8 image to the model's float input, instead
            of the default.
        progress: show a progress bar (throughput and time left) on stderr.
        **options: the method's own options (e.g. ``counterfactual=True`` for Grad-CAM).

    Returns:
        A `DatasetRun`; the results are in ``out`` (`camutils.dataset.format`), readable
        with numpy and pandas alone, or with `load_results` / `iter_shards`.

    Raises:
        ArgumentsDiffer: ``out`` holds a run with other arguments.
        camutils.model_errors.NonFiniteError: the model's activations, logits, gradients or
            maps are NaN or infinite on an image (the message names the images and the cause).
        ValueError: an argument is unusable.
    """
    return explain_with_callback(model, source, method, target, layer, out=out,
                                 batch_size=batch_size, shard_size=shard_size,
                                 strategy=strategy, labels=labels, class_names=class_names,
                                 preprocess=preprocess, progress=progress, options=options)


def explain_with_callback(model, source, method="gradcam", target=None, layer=None, *, out,
                          batch_size=32, shard_size=None, strategy=None, labels=None,
                          class_names=None, preprocess=None, progress=True, options=None,
                          on_batch=None, bar=None) -> DatasetRun:
    """`explain_dataset`, calling ``on_batch(rows, unreadable)`` after each batch with its
    rows (numpy arrays by field, plus ``"seen"``, the uint8 images the network saw,
    ``"maps"``, the maps at the input's size, and ``"probabilities"``) and the
    ``(index, message)`` of its unreadable images; ``bar``, a tqdm bar to update instead of
    a new one. The command line writes its overlays this way."""
    started = time.perf_counter()
    from ..methods.registry import canonical_name

    method = canonical_name(method)
    batch_size = positive_int(batch_size, "batch_size")
    shard_size = _shard_size(shard_size, batch_size)
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out={str(out)!r} is a file; pass a folder (it is created).")
    subject = _subject(model, layer, class_names, preprocess)
    found = collect(source, labels, subject.class_names, exclude=out)
    options = _jsonable_options(options or {})
    want = on_batch is not None
    plan = _plan(subject, method, target, options, strategy, want_maps=want)
    return _run(subject, found, method, plan, options, out, batch_size, shard_size, strategy,
                progress, started, on_batch=on_batch, keep_seen=want, bar=bar)


def _arguments(subject: _Subject, found: Source, method: str, plan: _Plan, options: dict,
               batch_size: int, shard_size: int) -> dict:
    model = subject.model
    return {
        "model": {"name": subject.name, "fingerprint": _model_fingerprint(model),
                  "input_shape": list(subject.view.input_shape),
                  "classes": int(model.output_shape[-1])},
        "method": method, "options": options, "target": plan.target, "layer": plan.layer,
        "batch_size": batch_size, "shard_size": shard_size,
        "source": {"kind": found.kind, "images": len(found),
                   "fingerprint": found.fingerprint()},
        "labels": None if found.labels is None else "given",
        "preprocessing": subject.preprocessing,
    }


def _manifest(arguments: dict, subject: _Subject, found: Source, plan: _Plan, strategy) -> dict:
    import tensorflow as tf

    from .. import __version__

    shards = fmt.shard_count(len(found), arguments["shard_size"])
    return {
        "format": fmt.FORMAT, "format_version": fmt.FORMAT_VERSION,
        "arguments": arguments,
        "images": len(found), "shards": shards,
        "shard_files": "shards/shard-NNNNN.npz (arrays) and shards/shard-NNNNN.csv (table); "
                       "shard k holds the images with index in [k * shard_size, (k + 1) * "
                       "shard_size); index.csv joins the tables when the run is complete",
        "map_shape": list(plan.map_shape),
        "class_names": subject.class_names,
        "label_names": found.label_names,
        "source_root": found.root,
        "fields": fmt.FIELDS,
        "csv_columns": list(fmt.CSV_COLUMNS),
        "strategy": _strategy_info(strategy),
        "versions": {"camutils": __version__, "tensorflow": tf.__version__},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


class _Buffers:
    """The rows of the shards being filled; a shard is written as soon as it is full."""

    def __init__(self, run: "_Writer"):
        self.run = run
        self.open: dict[int, dict] = {}

    def add(self, rows: dict) -> None:
        w = self.run
        for position in range(len(rows["index"])):
            index = int(rows["index"][position])
            k = index // w.shard_size
            shard = self.open.get(k)
            if shard is None:
                shard = self.open[k] = w.empty_shard(k)
            row = index - k * w.shard_size
            for name, values in rows.items():
                if name in shard["arrays"]:
                    shard["arrays"][name][row] = values[position]
            if not rows["ok"][position]:
                shard["errors"][row] = w.failures.pop(index)
                w.result.unreadable.append((w.source.ids[index], shard["errors"][row]))
            shard["filled"] += 1
            if shard["filled"] == len(shard["arrays"]["index"]):
                w.write(k, self.open.pop(k))


@dataclass
class _Writer:
    out: Path
    source: Source
    shard_size: int
    map_shape: tuple
    classes: int
    class_names: list | None
    label_names: list | None
    failures: _Failures
    result: DatasetRun

    def empty_shard(self, k: int) -> dict:
        start = k * self.shard_size
        n = min(len(self.source), start + self.shard_size) - start
        top = min(TOP_CLASSES, self.classes)
        indices = np.arange(start, start + n, dtype=np.int64)
        labels = (self.source.labels[start:start + n] if self.source.labels is not None
                  else np.full(n, -1, np.int64))
        arrays = {
            "index": indices, "id": np.asarray(self.source.ids[start:start + n], dtype=str),
            "ok": np.zeros(n, bool), "label": np.asarray(labels, np.int64),
            "class_index": np.full(n, -1, np.int64), "score": np.full(n, np.nan, np.float32),
            "probability": np.full(n, np.nan, np.float32),
            "top_index": np.full((n, top), -1, np.int64),
            "top_probability": np.full((n, top), np.nan, np.float32),
            "raw": np.zeros((n, *self.map_shape), np.float32),
        }
        return {"arrays": arrays, "errors": [""] * n, "filled": 0}

    def write(self, k: int, shard: dict) -> None:
        fmt.write_shard(self.out, k, shard["arrays"], shard["errors"], self.class_names,
                        self.label_names)
        self.result.written_shards.append(k)


class _NonFinite(Exception):
    """Non-finite values in a batch: ``what`` (or a whole message), and the images' indices."""

    def __init__(self, what: str, indices, described: bool = True):
        super().__init__(what)
        self.what, self.indices, self.described = what, [int(i) for i in indices], described

    def error(self, model, found: Source):
        """The `NonFiniteError` to raise: its cause (camutils.model_errors), with the ids of
        the images, and a word on the shards kept."""
        from ..model_errors import NonFiniteError, nonfinite_error

        message = self.what if self.described else str(nonfinite_error(model, self.what))
        ids = ", ".join(repr(found.ids[i]) for i in self.indices[:3])
        more = ", ..." if len(self.indices) > 3 else ""
        return NonFiniteError(f"{message} (the run's image(s) {ids}{more}; the shards written "
                              "so far are kept.)")


def _rows(plan: _Plan, strategy, batch: dict) -> dict:
    """Explain one (distributed) batch; numpy rows with every field, in no particular order."""
    from ..scores import softmax

    def local(value):
        if strategy is None:
            return [np.asarray(value)]
        return [np.asarray(v) for v in strategy.experimental_local_results(value)]

    index = np.concatenate(local(batch["index"]))
    ok = np.concatenate(local(batch["ok"]))
    label = np.concatenate(local(batch["label"]))
    if plan.step is not None:
        outputs = plan.step(batch["input"])
        parts = {name: np.concatenate(local(value)) for name, value in outputs.items()}
    else:
        inputs = np.asarray(batch["input"])
        parts = {"raw": np.zeros((len(index), *plan.map_shape), np.float32),
                 "class_index": np.full(len(index), -1, np.int64),
                 "score": np.full(len(index), np.nan, np.float32),
                 "logits": None}
        if ok.any():
            from ..model_errors import NonFiniteError

            try:
                result = plan.fallback(inputs[ok])
            except NonFiniteError as error:
                raise _NonFinite(str(error), index[ok][list(error.images or [])]) from None
            logits = np.zeros((len(index), result["logits"].shape[1]), np.float32)
            logits[ok] = result["logits"]
            for name in ("raw", "class_index", "score"):
                parts[name][ok] = result[name]
            parts["logits"] = logits
            if "seen" in batch:
                parts["maps"] = np.zeros((len(index), *inputs.shape[1:3]), np.float32)
                parts["maps"][ok] = result["maps"]
        else:
            return {"index": index, "ok": ok, "label": label}
    rows = {"index": index, "ok": ok, "label": label, "raw": parts["raw"],
            "class_index": parts["class_index"].astype(np.int64),
            "score": parts["score"].astype(np.float32)}
    if "finite" in parts:  # the step's flags: activations, logits, gradients, raw map
        flags = parts["finite"] | ~ok[:, None]
        if not flags.all():
            column = int(np.flatnonzero(~flags.all(axis=0))[0])
            raise _NonFinite(plan.checks[column], index[~flags[:, column]], described=False)
    probabilities = softmax(parts["logits"])
    rows["probabilities"] = probabilities
    top = min(TOP_CLASSES, probabilities.shape[1])
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top]
    rows["top_index"] = order.astype(np.int64)
    rows["top_probability"] = np.take_along_axis(probabilities, order, 1).astype(np.float32)
    rows["probability"] = probabilities[np.arange(len(index)), rows["class_index"]].astype(
        np.float32)
    for name in ("raw", "top_probability", "probability", "score"):
        rows[name][~ok] = np.nan if name != "raw" else 0.0
    rows["class_index"][~ok] = -1
    rows["top_index"][~ok] = -1
    if "maps" in parts:
        rows["maps"] = parts["maps"]
    if "seen" in batch:
        rows["seen"] = np.concatenate(local(batch["seen"]))
    return rows


def _run(subject, found, method, plan, options, out, batch_size, shard_size, strategy,
         progress, started, on_batch=None, keep_seen=False, bar=None) -> DatasetRun:
    import tensorflow as tf
    from tqdm.auto import tqdm

    arguments = _arguments(subject, found, method, plan, options, batch_size, shard_size)
    manifest = _manifest(arguments, subject, found, plan, strategy)
    out.mkdir(parents=True, exist_ok=True)
    try:
        stored = fmt.read_manifest(out)
    except FileNotFoundError:
        if (out / fmt.SHARDS).exists():
            raise ValueError(f"{str(out)!r} holds shards but no manifest: it is not a run "
                             "camutils can resume. Write to another folder.") from None
        fmt.write_manifest(out, manifest)
        stored = manifest
    fmt.check_arguments(out, stored["arguments"], arguments)
    shards = stored["shards"]
    done = fmt.complete_shards(out)
    failures = _Failures()
    result = DatasetRun(out, stored, len(found))
    assignment: dict = {}

    def make_dataset(context):
        worker, workers = context.input_pipeline_id, context.num_input_pipelines
        mine = [k for k in range(shards) if k % workers == worker]
        todo = [k for k in mine if k not in done]
        assignment.update(worker=worker, workers=workers, mine=mine, todo=todo)
        indices = [np.arange(k * shard_size, min(len(found), (k + 1) * shard_size))
                   for k in todo]
        indices = np.concatenate(indices) if indices else np.zeros(0, np.int64)
        return image_pipeline(found, indices, subject.view, batch_size, failures, keep_seen)

    if strategy is None:
        batches = make_dataset(tf.distribute.InputContext())
    else:
        batches = strategy.distribute_datasets_from_function(make_dataset)
        if plan.step is not None:
            plan.step = plan.step.get_concrete_function(batches.element_spec["input"])
    result.worker, result.workers = assignment["worker"], assignment["workers"]
    result.resumed_shards = sorted(k for k in assignment["mine"] if k in done)
    result.resumed_unreadable = _unreadable_rows(out, result.resumed_shards)
    writer = _Writer(out, found, shard_size, plan.map_shape, int(subject.model.output_shape[-1]),
                     subject.class_names,
                     found.label_names, failures, result)
    buffers = _Buffers(writer)
    size = lambda ks: sum(min(len(found), (k + 1) * shard_size) - k * shard_size  # noqa: E731
                          for k in ks)
    worker_note = f" (worker {result.worker + 1} of {result.workers})" if result.workers > 1 else ""
    own_bar = bar is None
    if own_bar:
        bar = tqdm(desc=f"{method} on {subject.name}{worker_note}", unit="image",
                   disable=not progress, file=sys.stderr, smoothing=0.1)
    bar.reset(total=size(assignment["mine"]))
    bar.update(size(result.resumed_shards))
    try:
        for batch in batches:
            try:
                rows = _rows(plan, strategy, batch)
            except _NonFinite as failure:
                raise failure.error(subject.model, found) from None
            before = len(result.unreadable)
            buffers.add(rows)
            if on_batch is not None and len(rows["index"]):
                on_batch(rows, [(int(i), m) for i, m in zip(
                    rows["index"][~rows["ok"]], (m for _, m in result.unreadable[before:]))])
            result.explained += int(rows["ok"].sum())
            bar.update(len(rows["index"]))
            if result.unreadable:
                bar.set_postfix(unreadable=len(result.unreadable), refresh=False)
    finally:
        if own_bar:
            bar.close()
    result.complete = fmt.write_index(out, shards) is not None or \
        (out / fmt.INDEX).is_file()
    if result.complete:
        _remove_leftovers(out)
    result.seconds = time.perf_counter() - started
    return result


def _unreadable_rows(out: Path, shards: list) -> list:
    """``(index, id, message)`` of the unreadable images of complete ``shards`` (whose files
    `fmt.check_shards` checks: a damaged one is named, with what to do)."""
    return [(int(r["index"]), r["id"], r["error"])
            for rows in fmt.check_shards(out, shards).values() for r in rows if r["ok"] != "True"]


def _remove_leftovers(out: Path) -> None:
    """Temporary files of interrupted runs (never read; removed once the run is complete)."""
    from ..atomic import is_temporary

    for path in (out / fmt.SHARDS).iterdir():
        if is_temporary(path):
            try:
                path.unlink()
            except OSError:
                pass
