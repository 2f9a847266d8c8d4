"""The benchmark results, typed: the schema of ``benchmarks/results/models.json``, read and
written here and nowhere else.

    stored = load_models(RESULTS / "models.json")      # a `StoredModels`
    lite0 = stored.models["efficientnet_lite0"]           # a `ModelResult`
    lite0.candidate("32", "cam").cpu_ratio                # a `Measured`'s figure
    save_models(RESULTS / "models.json", stored)

A model's result holds, per batch size (a str key, as in JSON), its blocks by key:
``"single"`` (the single-pass methods against the forward pass), ``"peers"`` (the gradient
peers beside the camutils methods they implement), ``"ablationcam"``, ``"scorecam"`` and
``"scorecam_full"`` (the perturbation methods against the passes they must run). Each block has
a baseline and candidates, each a `Measured`. Fields unknown to this schema are kept as they
are (``extra``), so that an older or newer file is read and written back without loss.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

__all__ = [
    "Measured", "BlockResult", "ModelResult", "StoredModels", "PERTURBATION_BLOCKS", "block_key",
    "load_models", "save_models", "DatasetResult", "load_dataset", "save_dataset",
    "read_json", "write_json",
]

#: The blocks in which a perturbation method is timed against the passes it must run.
PERTURBATION_BLOCKS = {"ablationcam": "ablationcam", "scorecam": "scorecam",
                       "scorecam_full": "scorecam"}

_NAN = float("nan")


def block_key(method: str) -> str:
    """The block a method is timed in: its own (named by the method) when its row needs many
    passes (a pass per channel: Score-CAM, Ablation-CAM), else ``"single"``."""
    from camutils.methods.registry import method_info

    try:
        many = method_info(method).passes == "many"
    except ValueError:  # not a method of the table (a peer, or a method since removed)
        many = False
    return method if many else "single"


def _split(cls, data: dict) -> tuple[dict, dict]:
    """``data`` split into the dataclass's own fields and the rest."""
    names = {f.name for f in fields(cls)} - {"extra"}
    return ({k: v for k, v in data.items() if k in names},
            {k: v for k, v in data.items() if k not in names})


@dataclass
class Measured:
    """One callable's figures in a block (`benchmarks.timing.Timings.as_dict`).

    ``median_s`` / ``cpu_median_s``: median wall and CPU seconds per call; ``ratio`` /
    ``cpu_ratio``: median over rounds of the run's time over the neighbouring baseline run's;
    ``ratio_of_medians``: the ratio of the wall medians; the samples of each round.
    """

    first_s: float = _NAN
    median_s: float = _NAN
    cpu_median_s: float = _NAN
    ratio: float = _NAN
    cpu_ratio: float | None = None  # None in results measured before CPU times were kept
    ratio_of_medians: float = _NAN
    samples_s: list = field(default_factory=list)
    cpu_s: list = field(default_factory=list)
    baseline_s: list = field(default_factory=list)
    baseline_cpu_s: list = field(default_factory=list)
    extra: dict = field(default_factory=dict)

    @property
    def judged_ratio(self) -> float:
        """The figure a ratio budget is judged on: the paired CPU-time ratio, or the paired
        wall-time ratio for results without CPU times."""
        return self.ratio if self.cpu_ratio is None else self.cpu_ratio

    @classmethod
    def from_dict(cls, data: dict) -> "Measured":
        own, rest = _split(cls, data)
        return cls(**own, extra=rest)

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "extra"}
        if self.cpu_ratio is None:
            del data["cpu_ratio"]
        return {**data, **self.extra}


@dataclass
class BlockResult:
    """A block of interleaved rounds: the baseline, the candidates, and what was run.

    ``passes``, ``channels``, ``batch_size``: for the perturbation blocks, the passes the
    reference runs, the channels used and the batch size; ``peer_of``: peer name -> the
    camutils method it implements; ``skipped``: peer name -> why it was not run;
    ``peer_masked_images``: the masked images tf-keras-vis' Score-CAM builds.
    """

    baseline: Measured
    candidates: dict[str, Measured]
    rounds: int = 0
    seconds: float = _NAN
    hurried: bool = False
    passes: int | None = None
    channels: int | None = None
    batch_size: int | None = None
    peer_of: dict | None = None
    peer_masked_images: int | None = None
    skipped: dict | None = None
    extra: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "BlockResult":
        own, rest = _split(cls, data)
        own["baseline"] = Measured.from_dict(own["baseline"])
        own["candidates"] = {k: Measured.from_dict(v) for k, v in own["candidates"].items()}
        return cls(**own, extra=rest)

    def to_dict(self) -> dict:
        data = {"baseline": self.baseline.to_dict(),
                "candidates": {k: v.to_dict() for k, v in self.candidates.items()},
                "rounds": self.rounds, "seconds": self.seconds, "hurried": self.hurried}
        for name in ("passes", "channels", "batch_size", "peer_of", "peer_masked_images",
                     "skipped"):
            if getattr(self, name) is not None:  # (None is not written)
                data[name] = getattr(self, name)
        return {**data, **self.extra}


@dataclass
class ModelResult:
    """Everything measured on one model (`benchmarks.model_bench.benchmark_subject`)."""

    model: str
    layer: str
    weights: str = ""
    facts: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)
    agreement: list = field(default_factory=list)
    first_call: dict = field(default_factory=dict)
    latency: dict = field(default_factory=dict)
    batches: dict[str, dict[str, BlockResult]] = field(default_factory=dict)
    seconds: float = _NAN
    load_s: float | None = None
    environment: dict = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def batch_sizes(self) -> list[str]:
        """The batch sizes measured, smallest first (str keys)."""
        return sorted(self.batches, key=int)

    def block(self, batch: str, key: str) -> BlockResult | None:
        return self.batches.get(str(batch), {}).get(key)

    def candidate(self, batch: str, method: str) -> Measured | None:
        """The timings of ``method`` at ``batch``: from its own block, or from the
        single-pass block (None if not measured)."""
        block = self.block(batch, block_key(method))
        return None if block is None else block.candidates.get(method)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelResult":
        own, rest = _split(cls, data)
        own["batches"] = {b: {k: BlockResult.from_dict(v) for k, v in entry.items()}
                          for b, entry in own.get("batches", {}).items()}
        return cls(**own, extra=rest)

    def to_dict(self) -> dict:
        data = {}
        for f in fields(self):
            if f.name == "extra" or (f.name == "load_s" and self.load_s is None) or \
                    (f.name == "latency" and not self.latency):  # (not in older results)
                continue
            value = getattr(self, f.name)
            if f.name == "batches":
                value = {b: {k: v.to_dict() for k, v in entry.items()} for b, entry in value.items()}
            data[f.name] = value
        return {**data, **self.extra}


@dataclass
class StoredModels:
    """``models.json``: the run that measured them (machine, wall time, command) and each
    model's result."""

    run: dict = field(default_factory=dict)
    models: dict[str, ModelResult] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict) -> "StoredModels":
        return cls(run=data.get("run", {}),
                   models={k: ModelResult.from_dict(v) for k, v in data.get("models", {}).items()})

    def to_dict(self) -> dict:
        return {"run": self.run, "models": {k: v.to_dict() for k, v in self.models.items()}}


def load_models(path) -> StoredModels:
    """Read ``models.json`` (an empty `StoredModels` when the file does not exist)."""
    data = read_json(path)
    return StoredModels() if data is None else StoredModels.from_dict(data)


def save_models(path, stored: StoredModels) -> None:
    """Write ``models.json`` (indented, one trailing newline)."""
    write_json(path, stored.to_dict())


def read_json(path) -> dict | None:
    """A results file's data (None when it does not exist)."""
    path = Path(path)
    if not path.is_file():
        return None
    with open(path) as handle:
        return json.load(handle)


def write_json(path, data: dict) -> None:
    """A results file, indented, with one trailing newline (numpy values as plain numbers)."""
    from camutils.atomic import atomic_write_json

    atomic_write_json(path, data)


@dataclass
class DatasetResult:
    """``dataset.json``: explain_dataset's throughput and memory (`benchmarks.dataset_bench`).

    ``throughput``: the images, batch, the interleaved timings of the baseline (a
    forward-only tf.data pipeline) and the candidate (explain_dataset, Grad-CAM) as
    `Measured` dicts, their images per second, and ``throughput_ratio_wall`` /
    ``throughput_ratio_cpu`` / ``throughput_ratio`` (the smaller: judged). ``memory``: one run
    per image count (``images``, ``peak_rss_mib``, ``seconds``, ...) and ``peak_ratio``.
    """

    date: str = ""
    machine: dict = field(default_factory=dict)
    environment: dict = field(default_factory=dict)
    throughput: dict = field(default_factory=dict)
    memory: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    @property
    def throughput_ratio(self) -> float | None:
        return self.throughput.get("throughput_ratio")

    @property
    def memory_ratio(self) -> float | None:
        return self.memory.get("peak_ratio")

    def timings(self, which: str) -> Measured | None:
        """The `Measured` of ``"baseline"`` or ``"candidate"`` (None if not measured)."""
        data = self.throughput.get(which)
        return None if data is None else Measured.from_dict(data)

    @classmethod
    def from_dict(cls, data: dict) -> "DatasetResult":
        own, rest = _split(cls, data)
        return cls(**own, extra=rest)

    def to_dict(self) -> dict:
        data = {k: v for k, v in asdict(self).items() if k != "extra"}
        return {**data, **self.extra}


def load_dataset(path) -> DatasetResult | None:
    """Read ``dataset.json`` (None when it does not exist)."""
    data = read_json(path)
    return None if data is None else DatasetResult.from_dict(data)


def save_dataset(path, result: DatasetResult) -> None:
    """Write ``dataset.json`` (indented, one trailing newline)."""
    write_json(path, result.to_dict())


def is_missing(value) -> bool:
    """Whether a figure is absent (None or NaN)."""
    return value is None or (isinstance(value, float) and math.isnan(value))
